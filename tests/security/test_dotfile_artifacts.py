"""Issue 13, follow-up: a dotfile named directly by an exported cell (`load_dotenv(".env")`, `open(".netrc")`) or
declared under `artifacts:` is refused as an artifact, with an error at its cell and line pointing at `secrets:`.

Before, such a file shipped in the image like any other artifact (only dotfiles inside artifact folders were left
out).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from nbship.check import inspect_notebook
from nbship.errors import CheckFailedError
from nbship.project import render_project
from tests.notebooks import code, write_notebook

Run = Callable[..., tuple[int, str, str]]
PREDICT = code("def predict(inputs):\n    return {'y': inputs['x'] * len(labels)}", "predict")


def project(tmp_path: Path, load: str, setup: str = "import json") -> Path:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / ".env").write_text("OPENAI_API_KEY=placeholder\n")
    (tmp_path / ".netrc").write_text("machine pypi.internal login ci password placeholder\n")
    (tmp_path / "labels.json").write_text('["a", "b"]')
    return write_notebook(tmp_path / "nb.ipynb", code(setup, "setup"), code(load, "load"), PREDICT)


def test_a_dotfile_a_load_cell_reads_is_an_error_at_its_line(tmp_path: Path, run_cli: Run) -> None:
    notebook = project(tmp_path, "from dotenv import load_dotenv\nload_dotenv('.env')\n"
                                 "auth = open('.netrc').read()\nlabels = json.load(open('labels.json'))")

    exit_code, out, _ = run_cli("check", "--no-verify", "--output", "json", notebook)

    assert exit_code == 1
    refused = [f for f in json.loads(out)["findings"] if f["code"] == "artifact-dotfile"]
    assert [(f["severity"], f["cell"], f["line"]) for f in refused] == [("error", 2, 2), ("error", 2, 3)]
    assert refused[0]["message"].startswith("'.env' is a dotfile")
    assert "`secrets:`" in refused[0]["hint"] and "{env: NAME, secret: <secret name>, key: <key>}" in refused[0]["hint"]


def test_nothing_is_rendered_so_the_dotfile_never_reaches_the_context(tmp_path: Path) -> None:
    notebook = project(tmp_path / "p", "labels = json.load(open('labels.json'))",
                       setup="import json\nfrom dotenv import load_dotenv\nload_dotenv('.env')")

    with pytest.raises(CheckFailedError) as caught:
        render_project(notebook, tmp_path / "ctx", verify=False, lock=False)

    assert [(str(f.location), f.code) for f in caught.value.findings if f.severity == "error"] == [
        ("nb.ipynb, cell 1, line 3", "artifact-dotfile")]
    assert not (tmp_path / "ctx").exists()


def test_a_dotfile_declared_under_artifacts_is_refused(tmp_path: Path) -> None:
    notebook = project(tmp_path, "labels = json.load(open('labels.json'))")
    (tmp_path / "nbship.yaml").write_text("artifacts:\n  - path: .netrc\n")

    result = inspect_notebook(notebook, verify=False)

    assert [(str(f.location), f.message.split(" is ")[0]) for f in result.errors] == [
        ("nbship.yaml", "artifacts: .netrc")]


def test_ordinary_files_still_ship(tmp_path: Path) -> None:
    notebook = project(tmp_path, "labels = json.load(open('./labels.json'))")

    result = inspect_notebook(notebook, verify=False)

    assert result.errors == ()
    assert result.spec is not None
    assert [a.path for a in result.spec.artifacts] == ["labels.json"]
