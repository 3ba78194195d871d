"""Config stage, located errors: pydantic's validation errors of nbship.yaml as ``file, line N: key: problem``.

Each error names the line of its key (read from the YAML node tree) and, for an unknown key, the nearest known one.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError


def key_line(path: Path, keys: tuple[str, ...]) -> int | None:
    """The 1-based line of the dotted key ``keys`` in the YAML file ``path`` (already validated), or None."""
    import yaml

    try:
        return key_lines(yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)).get(keys)
    except (OSError, yaml.YAMLError):
        return None


def describe(error: ValidationError, path: Path, lines: dict[tuple[str, ...], int], root: type[BaseModel]) -> str:
    """One line per problem: the file, the line of the key, the dotted key, what was expected and what was there."""
    problems = []
    for item in error.errors():
        loc = tuple(str(p) for p in item["loc"])
        key = ".".join(loc) or "(top level)"
        line = _nearest_line(loc, lines)
        where = f"{path.name}, line {line}" if line else path.name
        if item["type"] == "extra_forbidden":
            message = f"unknown key '{key}'"
            suggestion = _did_you_mean(loc, root)
            if suggestion:
                message += f" (did you mean '{suggestion}'?)"
        else:
            reason = str(item["msg"]).removeprefix("Value error, ")
            got = item.get("input")
            shown = f" (got {got!r})" if not isinstance(got, (dict, list)) and got is not None else ""
            message = f"{key}: {_expected(item['type'], reason)}{shown}"
        problems.append(f"{where}: {message}")
    return "\n".join(problems)


def _expected(kind: str, reason: str) -> str:
    names = {
        "int_parsing": "expected an integer",
        "int_type": "expected an integer",
        "float_parsing": "expected a number",
        "bool_parsing": "expected true or false",
        "string_type": "expected a string",
        "list_type": "expected a list",
        "dict_type": "expected a mapping",
        "model_type": "expected a mapping",
        "missing": "is required",
    }
    return names.get(kind, reason)


def _did_you_mean(loc: tuple[str, ...], root: type[BaseModel]) -> str | None:
    model = root
    for part in loc[:-1]:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None) if field else None
        nested = _model_of(annotation)
        if nested is None:
            return None
        model = nested
    matches = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1, cutoff=0.6)
    return ".".join((*loc[:-1], matches[0])) if matches else None


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def key_lines(node: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """Map each dotted key path in the YAML document to its 1-based line."""
    import yaml

    found: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, str(key.value))
            found[path] = key.start_mark.line + 1
            found.update(key_lines(value, path))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            path = (*prefix, str(i))
            found[path] = item.start_mark.line + 1
            found.update(key_lines(item, path))
    return found


def _nearest_line(loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> int | None:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None
