"""Errors mapped back to the notebook: a traceback frame in the generated package → ``churn.ipynb cell 7 line 3``.

``nbship.json`` lists, per exported cell, the module and the line range its code occupies
(``first_line..last_line``, the line after the cell's ``# nbship: <notebook> cell <n> (<role>)`` marker being
the cell's line 1; the extractor keeps line numbers by blanking removed lines). When the manifest has no
range for a line, the nearest marker above it in the module file is used instead.
"""

from __future__ import annotations

import linecache
import os
import re
import traceback
from pathlib import Path
from types import TracebackType

from .manifest import Manifest

_MARKER = re.compile(r"^# nbship: (?P<notebook>.+) cell (?P<cell>\d+) \((?P<role>[a-z]+)\)\s*$")


class CellLocator:
    """Finds the notebook cell and line of the innermost generated-package frame of a traceback."""

    def __init__(self, root: Path, manifest: Manifest) -> None:
        self.package_dir = os.path.realpath(root / manifest.package)
        self.notebook = manifest.notebook.file
        self.cells: dict[str, list[tuple[int, int, int]]] = {}
        for cell in manifest.cells:
            self.cells.setdefault(cell.module, []).append((cell.first_line, cell.last_line, cell.cell))

    def frames(self, tb: TracebackType | None) -> list[str]:
        """Every traceback frame that is notebook code, outermost first, as ``"churn.ipynb cell 7 line 3"``."""
        found = []
        for frame in traceback.extract_tb(tb):
            directory, name = os.path.split(os.path.realpath(frame.filename))
            if directory != self.package_dir or not name.endswith(".py") or frame.lineno is None:
                continue
            where = self.describe(name[:-3], frame.lineno, frame.filename)
            if where is not None:
                found.append(where)
        return found

    def locate(self, tb: TracebackType | None) -> str | None:
        """The innermost notebook frame (where the error happened), or None when no notebook code is involved."""
        found = self.frames(tb)
        return found[-1] if found else None

    def describe(self, module: str, line: int, filename: str) -> str | None:
        for first, last, cell in self.cells.get(module, ()):
            if first <= line <= last:
                return f"{self.notebook} cell {cell} line {line - first + 1}"
        for number in range(line - 1, 0, -1):
            match = _MARKER.match(linecache.getline(filename, number))
            if match:
                return f"{match['notebook']} cell {match['cell']} line {line - number}"
        return None  # module header or import lines: not a notebook cell


def notebook_frames(manifest: Manifest, root: Path, tb: TracebackType | None) -> list[str]:
    """The notebook frames of a traceback, outermost first (``selftest`` reports them to ``nbship check``)."""
    return CellLocator(root, manifest).frames(tb)


def summary(error: BaseException) -> str:
    """``ZeroDivisionError: division by zero``, the last line of a traceback."""
    return "".join(traceback.format_exception_only(type(error), error)).strip()
