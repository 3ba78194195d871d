"""nbformat 3 notebooks (IPython 2, common in older public repositories) are read as Jupyter opens them: upgraded to
nbformat 4 in memory, then checked, tagged and served like their nbformat-4 equivalent. The file stays nbformat 3."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from nbformat import v3

from nbship.notebook import parse_notebook, source_file_lines
from tests.notebooks import code, markdown, write_notebook

Run = Callable[..., tuple[int, str, str]]

SETUP = "import math"
PREDICT = "def predict(inputs):\n    return {'y': math.floor(inputs['x'] * 2)}"
EXAMPLE = "example = {'x': 1.5}\npredict(example)"
ANSWER = {"y": 3}


def v3_code(source: str, role: str | None = None, result: Any = None) -> Any:
    cell = v3.new_code_cell(input=source, metadata={"tags": [f"nbship:{role}"]} if role else {})
    if result is not None:  # IPython 2's saved result: a "pyout" output with a prompt number
        cell.outputs = [v3.new_output("pyout", output_text=repr(result), prompt_number=1)]
        cell.prompt_number = 1
    return cell


def write_v3(path: Path, *, tagged: bool = True) -> Path:
    cells = [
        v3.new_heading_cell("Doubling", level=1),
        v3_code(SETUP, "setup" if tagged else None),
        v3_code(PREDICT, "predict" if tagged else None),
        v3_code(EXAMPLE, "example" if tagged else None, result=ANSWER),
    ]
    nb = v3.new_notebook(worksheets=[v3.new_worksheet(cells=cells)], metadata=v3.new_metadata(name="double"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(v3.writes_json(nb), encoding="utf-8")
    return path


def write_v4(path: Path) -> Path:
    return write_notebook(path, markdown("# Doubling"), code(SETUP, "setup"), code(PREDICT, "predict"),
                          code(EXAMPLE, "example", result=ANSWER))


def test_an_nbformat_3_notebook_reads_as_its_nbformat_4_equivalent(tmp_path: Path) -> None:
    old = parse_notebook(write_v3(tmp_path / "v3" / "nb.ipynb"))
    new = parse_notebook(write_v4(tmp_path / "v4" / "nb.ipynb"))
    assert json.loads(old.path.read_text())["nbformat"] == 3
    # ids: nbformat 4.5 saves them; an upgraded notebook has none of its own
    assert [replace(c, cell_id=None) for c in old.cells] == [replace(c, cell_id=None) for c in new.cells]
    assert [c.role for c in old.cells] == [None, "setup", "predict", "example"]
    assert old.cells[3].outputs[0].data == {"text/plain": repr(ANSWER)}


def test_check_passes_an_nbformat_3_notebook_with_parity(tmp_path: Path, run_cli: Run) -> None:
    path = write_v3(tmp_path / "nb.ipynb")
    code_, out, err = run_cli("check", path)
    assert code_ == 0, err
    assert "ok: nb.ipynb: 2 exported cells, the example gives the notebook's output" in err
    assert json.loads(path.read_text())["nbformat"] == 3  # read, never rewritten


def test_init_tags_an_nbformat_3_notebook_in_place(tmp_path: Path, run_cli: Run) -> None:
    path = write_v3(tmp_path / "nb.ipynb", tagged=False)
    code_, _, err = run_cli("init", path, "--apply")
    assert code_ == 0, err
    assert "tagged 3 cells" in err
    saved = json.loads(path.read_text())
    assert saved["nbformat"] == 3
    assert [c.role for c in parse_notebook(path).cells] == [None, "setup", "predict", "example"]


def test_annotation_lines_point_into_an_nbformat_3_file(tmp_path: Path) -> None:
    text = write_v3(tmp_path / "nb.ipynb").read_text()
    lines = text.splitlines()
    positions = source_file_lines(text)
    assert "def predict(inputs)" in lines[positions[3][0] - 1]
    assert "math.floor" in lines[positions[3][1] - 1]


@pytest.mark.slow
def test_an_nbformat_3_notebook_is_served_like_its_nbformat_4_equivalent(tmp_path: Path) -> None:
    import httpx

    from nbship.project import render_project
    from tests.fixtures.service._harness import start

    answers = []
    for name, write in (("v3", write_v3), ("v4", write_v4)):
        path = write(tmp_path / name / "nb.ipynb")
        render_project(path, tmp_path / f"ctx-{name}", lock=False)
        running = start(tmp_path / f"ctx-{name}")
        try:
            response: Any = httpx.post(running.url + "/predict", json={"x": 2.5}, timeout=30)
            assert response.status_code == 200, response.text
            answers.append(response.json())
        finally:
            assert running.terminate() == 0
    assert answers == [{"y": 5}, {"y": 5}]
