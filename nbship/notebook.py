"""Stage 1: an ``.ipynb`` file → ``Notebook``, its cells with their serving roles.

The tag grammar lives here, as one table (``ROLES``): a cell takes a role from the tag ``nbship:<role>``,
from a first line ``# nbship: <role>``, or (papermill's convention) from the plain tag ``parameters``.
Untagged cells are exploration and are never exported.
"""

from __future__ import annotations

import hashlib
import json
import re
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
    """Read ``path`` as an nbformat-4 Python notebook and resolve each cell's role.

    Raises:
        NotebookError: the file is missing, not JSON, not a notebook, an old nbformat, or not Python.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such file") from None
    except OSError as e:
        raise NotebookError(f"{path}: cannot read it ({e.strerror})") from None
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f" (line {e.lineno}, column {e.colno})" if isinstance(e, json.JSONDecodeError) else ""
        raise NotebookError(
            f"{path}: is not valid JSON{where}, so it cannot be a notebook",
            hint="Was it saved completely? Open it in Jupyter and save it again.",
        ) from None
    if not isinstance(doc, dict) or "nbformat" not in doc or not isinstance(doc.get("cells", []), list):
        raise NotebookError(f"{path}: is JSON but not a Jupyter notebook (no 'nbformat' and 'cells')")
    major = doc.get("nbformat")
    if not isinstance(major, int) or major < 4:
        raise NotebookError(
            f"{path}: uses nbformat {major}, nbship reads nbformat 4",
            hint=f"Upgrade it: jupyter nbconvert --to notebook --nbformat 4 --inplace {path}",
        )
    if "cells" not in doc:
        raise NotebookError(f"{path}: is JSON but not a Jupyter notebook (no 'cells')")
    metadata = doc.get("metadata") or {}
    language = _language(metadata)
    if language is not None and language.lower() != "python":
        raise NotebookError(
            f"{path}: runs a {language} kernel; nbship serves Python notebooks only",
        )
    cells = tuple(_parse_cell(i, c, path) for i, c in enumerate(doc["cells"], start=1))
    return Notebook(
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        cells=cells,
        python_version=_python_version(metadata),
    )


def _language(metadata: Mapping[str, Any]) -> str | None:
    kernelspec = metadata.get("kernelspec") or {}
    info = metadata.get("language_info") or {}
    lang = kernelspec.get("language") or info.get("name")
    return str(lang) if lang else None


def _python_version(metadata: Mapping[str, Any]) -> str | None:
    version = str((metadata.get("language_info") or {}).get("version") or "")
    m = re.match(r"^(\d+)\.(\d+)", version)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def _source(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _parse_cell(number: int, cell: Any, path: Path) -> Cell:
    if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
        raise NotebookError(f"{path}: cell {number} is not a valid notebook cell")
    kind: CellKind = cell["cell_type"]
    source = _source(cell.get("source"))
    outputs = tuple(
        Output(output_type=str(o.get("output_type", "")), data=dict(o.get("data") or {}))
        for o in cell.get("outputs") or []
        if isinstance(o, dict)
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
        cell_id=cell.get("id"),
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
    the line of that string.
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
    return found
