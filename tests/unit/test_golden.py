"""Golden files: each example notebook's rendered build context, byte for byte (``--update-golden`` rewrites)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from nbship.check import inspect_notebook
from nbship.render import build_files
from tests.conftest import EXAMPLES

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
NOTEBOOKS = sorted(EXAMPLES.glob("*/*.ipynb"))


def rendered_text(notebook: Path) -> dict[str, str]:
    """The rendered files that nbship writes itself (not the copied runtime or artifacts)."""
    result = inspect_notebook(notebook, verify=False)
    assert result.spec is not None, [str(f) for f in result.errors]
    spec = dataclasses.replace(result.spec, nbship_version="0.0.0+golden")
    lock = (notebook.parent / "requirements.lock").read_text()
    files = build_files(spec, lock)
    return {name: text for name, text in files.items() if isinstance(text, str) and name != "requirements.lock"}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.parent.name for p in NOTEBOOKS])
def test_rendered_context_matches_golden_files(notebook: Path, update_golden: bool) -> None:
    files = rendered_text(notebook)
    folder = GOLDEN / notebook.parent.name
    if update_golden:
        for old in folder.rglob("*"):
            if old.is_file():
                old.unlink()
        for name, text in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
    expected = {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
                for p in sorted(folder.rglob("*")) if p.is_file()}
    assert sorted(files) == sorted(expected), "files added or removed: run pytest --update-golden and review"
    for name, text in files.items():
        assert text == expected[name], f"{name} differs from tests/golden: run pytest --update-golden and review"


def test_there_are_at_least_three_examples() -> None:
    assert len(NOTEBOOKS) >= 3
