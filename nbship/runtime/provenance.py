"""Mapping a traceback in the generated package back to notebook cells and lines, via ``nbship.json``."""

from __future__ import annotations

import traceback
from pathlib import Path
from types import TracebackType
from typing import Any


def locate(manifest: dict[str, Any], module: str, line: int) -> str | None:
    """``inference``, 14 → ``churn.ipynb cell 7 line 3``; None when the line is not a cell's."""
    for cell in manifest.get("cells", []):
        if cell["module"] == module and cell["first_line"] <= line <= cell["last_line"]:
            return f"{manifest['notebook']['file']} cell {cell['cell']} line {line - cell['first_line'] + 1}"
    return None


def notebook_frames(manifest: dict[str, Any], root: Path, tb: TracebackType | None) -> list[str]:
    """The notebook locations of the traceback's frames that are in the generated package, innermost last."""
    package_dir = (root / manifest["package"]).resolve()
    found = []
    for frame in traceback.extract_tb(tb):
        path = Path(frame.filename).resolve()
        if path.parent == package_dir and frame.lineno is not None:
            where = locate(manifest, path.stem, frame.lineno)
            if where:
                found.append(where)
    return found
