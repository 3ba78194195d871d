"""Parity run, observation: the files the notebook's code opens for reading under its folder, and from where.

``nbship check`` runs the exported code in the notebook's own folder with this audit hook (``sys.addaudithook``
on the ``open`` event), so a file the load cells read through a path nbship could not work out statically still
ships, and one it found but nobody opened is pointed out. Only files read under ``folder`` count; hidden folders
(``.venv``, ``.git``), caches and Python sources do not.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from .provenance import CellLocator

_IGNORED_SUFFIXES = (".py", ".pyc", ".pyi", ".so", ".ipynb")
_WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class OpenRecorder:
    """Collects ``relative path → (generated module file, line)`` of the first read of each file under ``folder``."""

    def __init__(self, folder: Path, package_dir: Path) -> None:
        self.folder = os.path.realpath(folder) + os.sep
        # the cheap test first: most opens are the interpreter's imports, far from the notebook's folder
        self.prefixes = (self.folder, os.path.abspath(folder) + os.sep)
        self.package_dir = os.path.realpath(package_dir) + os.sep
        self.opened: dict[str, tuple[str, int] | None] = {}
        self._busy = False

    def install(self) -> None:
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if event != "open" or self._busy or len(args) < 3:
            return
        self._busy = True
        try:
            self._record(*args[:3])
        finally:
            self._busy = False

    def _record(self, path: Any, mode: Any, flags: Any) -> None:
        if path is None or isinstance(path, int):
            return
        if isinstance(mode, str) and any(c in mode for c in "wax+"):
            return
        if mode is None and isinstance(flags, int) and flags & _WRITING:
            return
        text = os.fsdecode(path)
        if text.endswith(_IGNORED_SUFFIXES) or not os.path.abspath(text).startswith(self.prefixes):
            return
        full = os.path.realpath(text)
        if not full.startswith(self.folder):
            return
        relative = full[len(self.folder):].replace(os.sep, "/")
        if any(part.startswith(".") or part == "__pycache__" for part in relative.split("/")):
            return
        if relative not in self.opened and os.path.isfile(full):
            self.opened[relative] = self._caller()

    def _caller(self) -> tuple[str, int] | None:
        frame = sys._getframe(2)
        while frame is not None:
            if os.path.realpath(frame.f_code.co_filename).startswith(self.package_dir):
                return frame.f_code.co_filename, frame.f_lineno
            frame = frame.f_back  # type: ignore[assignment]
        return None

    def report(self, locator: CellLocator) -> dict[str, str | None]:
        """``relative path → "nb.ipynb cell 3 line 2"`` (None when no notebook code was on the stack)."""
        found: dict[str, str | None] = {}
        for relative, caller in sorted(self.opened.items()):
            where = None
            if caller is not None:
                filename, line = caller
                where = locator.describe(Path(filename).stem, line, filename)
            found[relative] = where
        return found
