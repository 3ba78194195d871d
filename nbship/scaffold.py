"""``nbship init``: propose a role for each code cell, write the tags, and write a commented ``nbship.yaml``.

Tags are written into the notebook's JSON as loaded, so outputs, metadata, ids and key order stay as they were.
The commented configuration is generated from the schema in ``nbship.config``, so it cannot drift from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbship.analysis import propose_role
from nbship.errors import NotebookError
from nbship.notebook import TAG_PREFIX, Notebook, Role


@dataclass(frozen=True)
class Proposal:
    cell: int
    current: Role | None
    proposed: Role | None
    reason: str
    first_line: str

    @property
    def changes(self) -> bool:
        return self.current is None and self.proposed is not None


def propose_roles(notebook: Notebook) -> list[Proposal]:
    """One proposal per code cell; cells that already have a role keep it."""
    proposals = []
    for cell in notebook.cells:
        if cell.kind != "code" or not cell.source.strip():
            continue
        first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
        if cell.role is not None:
            proposals.append(Proposal(cell.number, cell.role, cell.role, "already tagged", first))
            continue
        guess = propose_role(cell.source)
        role, reason = guess if guess is not None else (None, "exploration")
        proposals.append(Proposal(cell.number, None, role, reason, first))
    return proposals


def apply_roles(path: Path, proposals: list[Proposal]) -> int:
    """Add the tag ``nbship:<role>`` to each untagged cell with a proposal; returns how many cells changed.

    Raises:
        NotebookError: the file cannot be rewritten.
    """
    text = path.read_text(encoding="utf-8")
    doc = json.loads(text)
    indent = _indent(text)
    # nbformat 3 keeps its cells in worksheets; nbformat reads them in this order, so the numbers agree
    cells = doc["cells"] if "cells" in doc else [c for sheet in doc.get("worksheets", []) for c in sheet["cells"]]
    changed = 0
    for proposal in proposals:
        if not proposal.changes:
            continue
        cell = cells[proposal.cell - 1]
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        tags.append(f"{TAG_PREFIX}{proposal.proposed}")
        changed += 1
    if changed:
        tmp = path.with_name(f".{path.name}.nbship-tmp")
        try:
            tmp.write_text(json.dumps(doc, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")
            tmp.replace(path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise NotebookError(f"{path}: cannot write the tags ({e.strerror})") from None
    return changed


def _indent(text: str) -> int:
    """The indentation the notebook was saved with (Jupyter uses 1)."""
    for line in text.splitlines()[1:3]:
        stripped = line.lstrip(" ")
        if stripped:
            return len(line) - len(stripped)
    return 1


def config_template(notebook: Notebook) -> str:
    """A commented nbship.yaml: every key of the schema with its default and description; detected values set."""
    from pydantic import BaseModel

    from nbship.config import Config
    from nbship.spec import service_name

    detected: dict[str, Any] = {"name": service_name(notebook.path), "python": notebook.python_version}
    lines = [
        f"# nbship.yaml for {notebook.name}: every key is optional; commented keys show their defaults.",
        "# Reference: the README's configuration section, generated from the same schema.",
    ]

    def emit(model: type[BaseModel], indent: str, values: dict[str, Any], commented: bool) -> None:
        for key, field in model.model_fields.items():
            description = f"  # {field.description}" if field.description else ""
            value = values.get(key, field.get_default(call_default_factory=True))
            prefix = "# " if commented or key not in detected or indent else ""
            if isinstance(value, BaseModel):
                lines.append(f"{prefix}{indent}{key}:{description}")
                emit(type(value), indent + "  ", dict(value), True)
            else:
                lines.append(f"{prefix}{indent}{key}: {_yaml(value)}{description}")

    detected = {k: v for k, v in detected.items() if v is not None}
    emit(Config, "", detected, False)
    return "\n".join(lines) + "\n"


def _yaml(value: Any) -> str:
    import yaml

    if hasattr(value, "model_dump"):
        value = value.model_dump()
    elif isinstance(value, list):
        value = [v.model_dump() if hasattr(v, "model_dump") else v for v in value]
    return str(yaml.safe_dump(value, default_flow_style=True, width=1000)).strip().removesuffix("...").strip()


def config_reference() -> str:
    """The README's configuration table, generated from the schema (a test keeps the README in step)."""
    from pydantic import BaseModel

    from nbship.config import Config

    rows = ["| key | default | meaning |", "|---|---|---|"]

    def walk(model: type[BaseModel], prefix: str, values: dict[str, Any]) -> None:
        for key, field in model.model_fields.items():
            value = values.get(key, field.get_default(call_default_factory=True))
            if isinstance(value, BaseModel):
                walk(type(value), f"{prefix}{key}.", dict(value))
                continue
            shown = _yaml(value).replace("|", "\\|")
            rows.append(f"| `{prefix}{key}` | `{shown}` | {field.description or ''} |")

    walk(Config, "", {})
    return "\n".join(rows) + "\n"
