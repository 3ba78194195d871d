"""Errors in generated code are mapped back to the notebook cell and line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import TracebackType

from nbship.runtime.manifest import Manifest, read_manifest
from nbship.runtime.provenance import CellLocator, notebook_frames

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "service"


def manifest() -> Manifest:
    return read_manifest(FIXTURE)


def traceback_at(path: Path, line: int) -> TracebackType:
    """A real traceback whose frame is ``path`` at ``line`` (code compiled under that file name)."""
    code = compile("\n" * (line - 1) + "1 / 0", str(path), "exec")
    try:
        exec(code, {})
    except ZeroDivisionError as e:
        assert e.__traceback__ is not None
        return e.__traceback__
    raise AssertionError("unreachable")


def test_the_fixture_manifest_agrees_with_its_markers() -> None:
    for cell in manifest().cells:
        lines = (FIXTURE / "toy" / f"{cell.module}.py").read_text(encoding="utf-8").splitlines()
        assert lines[cell.first_line - 2] == f"# nbship: toy.ipynb cell {cell.cell} ({cell.role})"
        assert cell.last_line == len(lines)


def test_a_frame_in_the_package_names_the_cell_and_its_line() -> None:
    tb = traceback_at(FIXTURE / "toy" / "inference.py", 15)
    assert CellLocator(FIXTURE, manifest()).locate(tb) == "toy.ipynb cell 7 line 4"
    assert notebook_frames(manifest(), FIXTURE, tb) == ["toy.ipynb cell 7 line 4"]


def test_without_line_ranges_the_marker_above_is_used() -> None:
    bare = replace(manifest(), cells=())
    tb = traceback_at(FIXTURE / "toy" / "loading.py", 13)
    assert CellLocator(FIXTURE, bare).locate(tb) == "toy.ipynb cell 5 line 4"


def test_frames_outside_notebook_code_are_not_blamed() -> None:
    assert CellLocator(FIXTURE, manifest()).locate(traceback_at(FIXTURE / "elsewhere.py", 3)) is None
    header = traceback_at(FIXTURE / "toy" / "inference.py", 5)  # the import lines before the first marker
    assert CellLocator(FIXTURE, manifest()).locate(header) is None
