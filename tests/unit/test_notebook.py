"""Reading notebooks: roles from tags and directives, and one clear sentence for every unreadable file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbship.errors import NotebookError
from nbship.notebook import parse_notebook
from tests.notebooks import code, markdown, write_notebook


def test_roles_come_from_tags_directives_and_papermill(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "nb.ipynb",
        code("import numpy as np", "setup"),
        code("# nbship: load\nmodel = 1"),
        code("threshold = 0.5", tags=["parameters"]),
        code("df.describe()"),
        markdown("# Notes"),
    )
    nb = parse_notebook(path)
    assert [c.role for c in nb.cells] == ["setup", "load", "parameters", None, None]
    assert [c.number for c in nb.exported_cells] == [1, 2, 3]
    assert nb.python_version == "3.11"


def test_unknown_and_conflicting_roles_are_kept_for_the_checks(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "nb.ipynb", code("x = 1", tags=["nbship:serve"]),
                          code("# nbship: load\ny = 2", "setup"))
    first, second = parse_notebook(path).cells
    assert first.role is None and first.unknown_role == "serve"
    assert second.role is None and set(second.conflicting_roles) == {"setup", "load"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"cells": [', "is not valid JSON"),
        (b"\xff\xfe not text", "is not valid JSON"),
        (b'{"hello": "world"}', "is JSON but not a Jupyter notebook"),
        (json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": []}).encode(), "uses nbformat 3"),
        (json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": [],
                     "metadata": {"kernelspec": {"language": "R", "name": "ir", "display_name": "R"}}}).encode(),
         "runs a R kernel"),
    ],
)
def test_unreadable_files_give_one_sentence_naming_the_file(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_bytes(content)
    with pytest.raises(NotebookError) as info:
        parse_notebook(path)
    assert str(path) in info.value.message and expected in info.value.message


def test_old_nbformat_says_how_to_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": []}))
    with pytest.raises(NotebookError) as info:
        parse_notebook(path)
    assert info.value.hint is not None and "nbconvert --to notebook --nbformat 4" in info.value.hint


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match="no such file"):
        parse_notebook(tmp_path / "nope.ipynb")
