"""Stage 3b, pickled artifacts: the globals a pickle refers to (``sklearn.pipeline.Pipeline``, ``__main__.X``),
read from its bytes without unpickling it.

A pickle names every class and function it needs as ``module`` + ``name``; loading it imports them. nbship needs
two things from that list before any build: the modules to put in the lock, and the notebook's own functions and
classes (``__main__.X``), which must be defined by an exported cell for the service to load the pickle.

The opcodes are walked with the standard library's opcode table (``pickletools``), keeping only what a
``STACK_GLOBAL`` needs (the last two strings pushed and the memo). Files that interleave raw bytes with the
pickle stream (joblib writes numpy buffers between frames) are followed by resynchronising on the next
well-formed protocol-4 frame. Torch checkpoints are zip files whose ``data.pkl`` members are read the same way.
Compressed joblib files give nothing.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nbship.errors import Finding, Location

if TYPE_CHECKING:
    from nbship.artifacts import ArtifactRef
    from nbship.names import Definition
    from nbship.notebook import Notebook

PICKLE_SUFFIXES = frozenset({".joblib", ".pkl", ".pickle"})
TORCH_SUFFIXES = frozenset({".pt", ".pth", ".bin", ".ckpt"})
MAIN_MODULES = frozenset({"__main__", "__mp_main__"})
_FRAME = 0x95
_STRINGS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING",
                      "BINSTRING", "STRING"})
_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_OPCODES = {op.code: op for op in pickletools.opcodes}
_NOT_PUSHING = frozenset({"FRAME", "PROTO", "MEMOIZE", "STOP", *_PUTS})


class _Desync(Exception):
    def __init__(self, at: int) -> None:
        self.at = at


def pickle_globals(path: Path, limit: int = 256 << 20) -> set[tuple[str, str]]:
    """Every ``(module, name)`` a pickle-based file refers to; empty for any other file (or one over ``limit``)."""
    suffix = path.suffix.lower()
    if suffix not in PICKLE_SUFFIXES | TORCH_SUFFIXES or not path.is_file() or path.stat().st_size > limit:
        return set()
    if suffix in TORCH_SUFFIXES and zipfile.is_zipfile(path):
        found: set[tuple[str, str]] = set()
        try:
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    if member == "data.pkl" or member.endswith("/data.pkl"):
                        found |= globals_in(archive.read(member))
        except (zipfile.BadZipFile, OSError, RuntimeError):
            return found
        return found
    data = path.read_bytes()
    if suffix in TORCH_SUFFIXES and not data.startswith(b"\x80"):
        return set()  # not a pickle (a raw weights file)
    return globals_in(data)


def main_references(path: Path) -> set[str]:
    """The notebook's own names (``__main__.X``, ``__mp_main__.X``) a pickle-based file needs, as top-level names."""
    return {name.split(".")[0] for module, name in pickle_globals(path) if module in MAIN_MODULES}


def globals_in(data: bytes) -> set[tuple[str, str]]:
    """The ``(module, name)`` pairs of ``GLOBAL``, ``INST`` and ``STACK_GLOBAL`` opcodes in ``data``."""
    found: set[tuple[str, str]] = set()
    memo: dict[int, str | None] = {}  # kept across the raw bytes between frames, reset by each pickle's STOP
    position = 0
    while position < len(data):
        try:
            position = _walk(data, position, len(data), found, memo)
            memo.clear()
        except _Desync as stop:
            position = _next_frame(data, stop.at)
    return found


def _walk(data: bytes, start: int, end: int, found: set[tuple[str, str]], memo: dict[int, str | None]) -> int:
    """Read opcodes from ``start`` to ``end`` (or past one pickle's STOP); returns where it stopped.

    Raises:
        _Desync: an unknown opcode or a truncated argument (raw bytes, or not a pickle at all).
    """
    stream = io.BytesIO(data)
    stream.seek(start)
    pushed: list[str | None] = []
    while stream.tell() < end:
        at = stream.tell()
        op = _OPCODES.get(chr(data[at]))
        if op is None:
            raise _Desync(at)
        stream.seek(at + 1)
        try:
            arg = op.arg.reader(stream) if op.arg is not None else None
        except (ValueError, UnicodeDecodeError, OverflowError) as e:
            raise _Desync(at) from e
        if stream.tell() > end:
            raise _Desync(at)
        name = op.name
        if name in _STRINGS:
            pushed.append(arg if isinstance(arg, str) else None)
        elif name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif name in _PUTS:
            memo[int(arg or 0)] = pushed[-1] if pushed else None
        elif name in _GETS:
            pushed.append(memo.get(int(arg or 0)))
        elif name == "STACK_GLOBAL":
            module, qualname = (pushed[-2], pushed[-1]) if len(pushed) >= 2 else (None, None)
            if module and qualname:
                found.add((module, qualname))
            pushed.append(None)
        elif name in ("GLOBAL", "INST"):
            module, _, qualname = str(arg).partition(" ")
            found.add((module, qualname))
            pushed.append(None)
        elif name == "STOP":
            return stream.tell()
        elif name not in _NOT_PUSHING:
            pushed.append(None)
        del pushed[:-2]
    return stream.tell()


def _next_frame(data: bytes, after: int) -> int:
    """The start of the next well-formed protocol-4 frame after ``after``, or the end of ``data``."""
    at = data.find(bytes([_FRAME]), after + 1)
    while at != -1:
        length = int.from_bytes(data[at + 1:at + 9], "little")
        if length > 0 and at + 9 + length <= len(data):
            try:
                _walk(data, at + 9, at + 9 + length, set(), {})
                return at
            except _Desync:
                pass
        at = data.find(bytes([_FRAME]), at + 1)
    return len(data)


def notebook_reference_findings(
    notebook: Notebook, base: Path, artifacts: Sequence[ArtifactRef], exported: Mapping[str, Definition]
) -> list[Finding]:
    """Errors for pickled artifacts that need a notebook function or class no exported cell defines in time.

    A pickle records ``TfidfVectorizer(preprocessor=clean_text)`` as a reference to ``__main__.clean_text``; the
    service resolves it to the exported definition, so that definition must be in a tagged cell that runs before
    the cell that loads the pickle.
    """
    findings = []
    for artifact in artifacts:
        paths = [base / artifact.path]
        if artifact.is_dir:
            paths = [p for p in (base / artifact.path).rglob("*") if p.is_file()]
        for path in paths:
            shown = path.relative_to(base).as_posix()
            where = Location(notebook.name, artifact.cell, artifact.line)
            for name in sorted(main_references(path)):
                finding = _reference_finding(notebook, shown, name, exported.get(name), artifact.cell)
                if finding is not None:
                    findings.append(Finding("error", finding[0], finding[1], where, finding[2]))
    return findings


def _reference_finding(
    notebook: Notebook, shown: str, name: str, definition: Definition | None, loading_cell: int | None
) -> tuple[str, str, str] | None:
    """(code, message, hint) when ``name`` is not exported in time for the cell loading ``shown``."""
    from nbship.names import MODULE_ORDER, ROLE_MODULE, propose_role, untagged_definition

    pickled = f"(pickled as __main__.{name})"
    if definition is not None:
        loader = notebook.cells[loading_cell - 1].role if loading_cell else None
        module = ROLE_MODULE.get(loader) if loader else None
        if module is None or MODULE_ORDER.index(definition.module) <= MODULE_ORDER.index(module):
            return None
        return ("pickle-defined-late",
                f"'{shown}' needs the notebook's {name} {pickled}, but cell {definition.cell} defines it in "
                f"a stage that runs after this {loader} cell",
                f"Move {name} into a cell tagged nbship:setup, which runs before the load cells.")
    cell = untagged_definition(notebook, name)
    if cell is not None:
        role = (propose_role(notebook.cells[cell - 1].source) or ("setup", ""))[0]
        return ("pickle-untagged", f"'{shown}' needs the notebook's {name} {pickled}, defined only in untagged "
                f"cell {cell}", f"Tag cell {cell} nbship:{role}, so the service loads {shown} with it.")
    return ("pickle-undefined", f"'{shown}' needs __main__.{name}, which no cell of this notebook defines",
            f"Define {name} in a cell tagged nbship:setup (the pickle was made elsewhere), or save the model "
            "again from this notebook.")
