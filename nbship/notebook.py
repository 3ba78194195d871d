"""Stage 1: an ``.ipynb`` file → ``Notebook``, its cells with their serving roles.

The tag grammar lives here, as one table (``ROLES``): a cell takes a role from the tag ``nbship:<role>``,
from a first line ``# nbship: <role>``, or (papermill's convention) from the plain tag ``parameters``.
Untagged cells are exploration and are never exported.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nbship.errors import NotebookError

Role = Literal["setup", "load", "parameters", "preprocess", "predict", "postprocess", "example", "skip"]

# role → what the cell holds (the README's table is written from this one)
ROLES: Mapping[Role, str] = {
    "setup": "imports, constants, helper functions and classes",
    "load": "loads the model and other artifacts",
    "parameters": "literal assignments (`threshold = 0.5`)",
    "preprocess": "defines `preprocess(payload)`",
    "predict": "defines `predict(inputs)` (required)",
    "postprocess": "defines `postprocess(prediction)`",
    "example": "assigns `example = {…}`; its last expression runs the pipeline",
    "skip": "anything",
}

# roles whose code goes into the service package
EXPORTED_ROLES: frozenset[Role] = frozenset(
    {"setup", "load", "parameters", "preprocess", "predict", "postprocess"}
)

TAG_PREFIX = "nbship:"
_DIRECTIVE = re.compile(r"^\s*#\s*nbship\s*:\s*([A-Za-z_-]+)\s*$")
CellKind = Literal["code", "markdown", "raw"]


@dataclass(frozen=True)
class Output:
    """One saved output of a code cell, reduced to what nbship reads: its type and mime bundle."""

    output_type: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cell:
    """A notebook cell. ``number`` is its 1-based position among all cells, as a user counts them."""

    number: int
    kind: CellKind
    source: str
    role: Role | None = None
    # a role-like tag or directive nbship does not know (reported by the checks)
    unknown_role: str | None = None
    # more than one role was given
    conflicting_roles: tuple[str, ...] = ()
    cell_id: str | None = None
    outputs: tuple[Output, ...] = ()

    @property
    def exported(self) -> bool:
        return self.kind == "code" and self.role in EXPORTED_ROLES

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()


@dataclass(frozen=True)
class Notebook:
    path: Path
    sha256: str
    cells: tuple[Cell, ...]
    python_version: str | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def with_role(self, role: Role) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if c.kind == "code" and c.role == role)

    @property
    def exported_cells(self) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if c.exported)


def parse_notebook(path: Path) -> Notebook:
    """Read ``path`` as a Python notebook and resolve each cell's role.

    nbformat reads it as Jupyter opens it: nbformat 3 and older are upgraded to nbformat 4 in memory (the file
    is left as it is), sources and outputs are normalised, and the result is validated against nbformat 4's schema.

    Raises:
        NotebookError: the file is missing, not JSON, not a notebook, invalid (naming the cell), or not Python.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such file") from None
    except OSError as e:
        raise NotebookError(f"{path}: cannot read it ({e.strerror})") from None
    try:
        # utf-8-sig: a byte-order mark some editors write is not part of the JSON
        text = raw.decode("utf-8-sig")
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f" (line {e.lineno}, column {e.colno})" if isinstance(e, json.JSONDecodeError) else ""
        raise NotebookError(
            f"{path}: is not valid JSON{where}, so it cannot be a notebook",
            hint="Was it saved completely? Open it in Jupyter and save it again.",
        ) from None
    if not isinstance(doc, dict) or "nbformat" not in doc or not isinstance(doc.get("cells", []), list):
        raise NotebookError(f"{path}: is JSON but not a Jupyter notebook (no 'nbformat' and 'cells')")
    if doc.get("nbformat") == 4 and "cells" not in doc:
        raise NotebookError(f"{path}: is JSON but not a Jupyter notebook (no 'cells')")
    for number, cell in enumerate(doc.get("cells", []), start=1):
        if not isinstance(cell, dict):
            raise NotebookError(f"{path}: cell {number} is not a valid notebook cell")
    # the language first: a notebook of another language is told so, whatever nbformat would say of it
    metadata = doc.get("metadata")
    language = _language(metadata) if isinstance(metadata, dict) else None
    if language is not None and language.lower() != "python":
        raise NotebookError(
            f"{path}: runs a {language} kernel; nbship serves Python notebooks only",
        )
    nb, invalid = _read_as_v4(path, text, doc.get("nbformat"))
    if invalid is not None:
        raise NotebookError(_schema_problem(path, invalid),
                            hint="Open it in Jupyter and save it again, or fix the field the message names.")
    upgraded = "orig_nbformat" in nb["metadata"]
    cells = tuple(_parse_cell(i, c, upgraded) for i, c in enumerate(nb["cells"], start=1))
    return Notebook(
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        cells=cells,
        python_version=_python_version(nb["metadata"]),
    )


def _read_as_v4(path: Path, text: str, version: object) -> tuple[Any, Any]:
    """The adapter to nbformat: the notebook as nbformat 4, and nbformat's schema validation error if it has one.

    nbformat's exceptions are translated here, once.

    Raises:
        NotebookError: nbformat cannot read or upgrade it.
    """
    import nbformat

    captured: dict[str, Any] = {}
    try:
        with warnings.catch_warnings():
            # nbformat warns when it adds the cell ids older notebooks lack, as Jupyter does silently
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=4, capture_validation_error=captured)  # type: ignore[no-untyped-call]
    except nbformat.NBFormatError:
        raise NotebookError(
            f"{path}: uses nbformat {version!r}, which nbformat {nbformat.__version__} cannot read",
            hint="nbship reads nbformat 1 to 4, as Jupyter does.",
        ) from None
    except nbformat.ValidationError as e:
        raise NotebookError(f"{path}: is not a valid notebook: {_shorten(e.message)}") from e
    except (AttributeError, TypeError, KeyError, ValueError) as e:  # nbformat meeting a structure it cannot read
        raise NotebookError(f"{path}: is not a valid notebook: nbformat cannot read it ({_shorten(str(e))})") from e
    return nb, captured.get("ValidationError")


def _schema_problem(path: Path, error: Any) -> str:
    """``churn.ipynb, cell 3: outputs[0]: 'execution_count' is a required property`` from nbformat's error."""
    keys = list(error.relative_path)
    where = str(path)
    if len(keys) >= 2 and keys[0] == "cells" and isinstance(keys[1], int):
        where += f", cell {keys[1] + 1}"
        keys = keys[2:]
    field_path = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys).lstrip(".")
    if error.validator in ("oneOf", "anyOf"):  # its message is the whole offending object
        subject = field_path or ("the cell" if where != str(path) else "it")
        return f"{where}: {subject} does not match nbformat 4's schema"
    return f"{where}: {field_path + ': ' if field_path else ''}{_shorten(error.message)} (nbformat 4's schema)"


def _shorten(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= 160 else line[:157] + "..."


def _language(metadata: Mapping[str, Any]) -> str | None:
    kernelspec, info = metadata.get("kernelspec"), metadata.get("language_info")
    lang = (kernelspec.get("language") if isinstance(kernelspec, dict) else None) or (
        info.get("name") if isinstance(info, dict) else None)
    return str(lang) if lang else None


def _python_version(metadata: Mapping[str, Any]) -> str | None:
    version = str((metadata.get("language_info") or {}).get("version") or "")
    m = re.match(r"^(\d+)\.(\d+)", version)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def _parse_cell(number: int, cell: Any, upgraded: bool) -> Cell:
    kind: CellKind = cell["cell_type"]
    source = str(cell.get("source") or "")
    outputs = tuple(
        Output(output_type=str(o.get("output_type", "")), data=dict(o.get("data") or {}))
        for o in cell.get("outputs") or []
    )
    declared = _declared_roles(cell.get("metadata") or {}, source)
    known = [r for r in declared if r in ROLES]
    unknown = [r for r in declared if r not in ROLES]
    distinct = list(dict.fromkeys(known))
    return Cell(
        number=number,
        kind=kind,
        source=source,
        role=distinct[0] if len(distinct) == 1 else None,  # type: ignore[arg-type]
        unknown_role=unknown[0] if unknown else None,
        conflicting_roles=tuple(distinct) if len(distinct) > 1 else (),
        # an upgraded notebook's ids are invented by nbformat at each reading
        cell_id=None if upgraded else cell.get("id"),
        outputs=outputs,
    )


def _declared_roles(metadata: Mapping[str, Any], source: str) -> list[str]:
    roles: list[str] = []
    for tag in metadata.get("tags") or []:
        tag = str(tag).strip()
        if tag.lower().startswith(TAG_PREFIX):
            roles.append(tag[len(TAG_PREFIX):].strip().lower())
        elif tag == "parameters":  # papermill's convention
            roles.append("parameters")
    first_line = source.split("\n", 1)[0]
    m = _DIRECTIVE.match(first_line)
    if m:
        roles.append(m.group(1).lower())
    return roles


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|\s+|[^\s{}\[\]:,"]+')


def source_file_lines(text: str) -> dict[int, list[int]]:
    """Cell number → the line of the ``.ipynb`` file that holds each line of its source.

    Used to point CI annotations at the notebook file itself. A source saved as one string maps all its lines to
    the line of that string. nbformat 3's ``input`` is mapped too.
    """
    found: dict[int, list[int]] = {}
    stack: list[list[Any]] = []  # [kind, key or index, expecting a key?]
    line = 1
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token.isspace():
            line += token.count("\n")
            continue
        top = stack[-1] if stack else None
        if token in "{[":
            stack.append(["obj" if token == "{" else "arr", 0 if token == "[" else None, token == "{"])
        elif token in "}]":
            stack.pop()
        elif token == ",":
            if top is not None and top[0] == "arr":
                top[1] += 1
            elif top is not None:
                top[2] = True
        elif token == ":":
            continue
        elif top is not None and top[0] == "obj" and top[2]:
            top[1], top[2] = json.loads(token), False
        elif token.startswith('"'):
            path = [frame[1] for frame in stack]
            if len(path) in (3, 4) and path[0] == "cells" and path[2] == "source":
                found.setdefault(int(path[1]) + 1, []).append(line)
            # nbformat 3: worksheets[0].cells[i].input (a second worksheet, which Jupyter never wrote, is not mapped)
            elif len(path) in (5, 6) and path[:3] == ["worksheets", 0, "cells"] and path[4] in ("input", "source"):
                found.setdefault(int(path[3]) + 1, []).append(line)
    return found
