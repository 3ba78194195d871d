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
        (json.dumps({"nbformat": 5, "nbformat_minor": 0, "cells": []}).encode(), "uses nbformat 5, which nbformat"),
        (json.dumps({"nbformat": 3, "nbformat_minor": 0}).encode(), "is not a valid notebook: "),
        (json.dumps({"nbformat": 4, "nbformat_minor": 4, "metadata": {}, "cells": [3]}).encode(),
         "cell 1 is not a valid notebook cell"),
        (json.dumps({"nbformat": 4, "nbformat_minor": 4, "metadata": {"kernelspec": 3}, "cells": []}).encode(),
         ": metadata.kernelspec: 3 is not of type 'object' (nbformat 4's schema)"),
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


CODE_CELL = {"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": [], "execution_count": None}


@pytest.mark.parametrize(
    ("second_cell", "expected"),
    [
        ({k: v for k, v in CODE_CELL.items() if k != "outputs"}, "cell 2: 'outputs' is a required property"),
        ({**CODE_CELL, "outputs": [{"output_type": "execute_result", "data": {}, "metadata": {}}]},
         "cell 2: outputs[0]: 'execution_count' is a required property"),
        ({**CODE_CELL, "cell_type": "weird"}, "cell 2: the cell does not match nbformat 4's schema"),
    ],
)
def test_a_cell_nbformat_finds_invalid_is_named(tmp_path: Path, second_cell: dict[str, object], expected: str) -> None:
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 4, "metadata": {}, "cells": [CODE_CELL, second_cell]}))
    with pytest.raises(NotebookError) as info:
        parse_notebook(path)
    assert info.value.message.startswith(f"{path}, {expected}")
    assert "\n" not in info.value.message


def test_another_language_is_named_before_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 4, "cells": [{"cell_type": "code"}],
                                "metadata": {"kernelspec": {"language": "julia", "name": "julia-1.10"}}}))
    with pytest.raises(NotebookError, match="runs a julia kernel"):
        parse_notebook(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match="no such file"):
        parse_notebook(tmp_path / "nope.ipynb")
