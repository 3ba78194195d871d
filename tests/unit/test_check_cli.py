"""``nbship check``: the broken-notebook corpus, each with its one clear error; exit codes; JSON; parity."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.notebooks import code, write_notebook

Run = Callable[..., tuple[int, str, str]]
PREDICT = code("def predict(inputs):\n    return {'y': inputs['x'] * 2}", "predict")


def example(result: Any) -> Any:
    return code("example = {'x': 1.5}\npredict(example)", "example", result=result)


# name → (cells, the one error line expected on stderr)
CORPUS: dict[str, tuple[tuple[Any, ...], str]] = {
    "no-predict": ((code("import os", "setup"),), "error: nb.ipynb: no predict function"),
    "untagged-dependency": (
        (code("factor = 3"), code("def predict(inputs):\n    return inputs * factor", "predict")),
        "error: nb.ipynb, cell 2, line 2: predict uses 'factor', defined only in untagged cell 1",
    ),
    "shell-escape": (
        (code("!curl -O http://models/m.bin", "load"), PREDICT),
        "error: nb.ipynb, cell 1, line 1: !curl -O http://models/m.bin cannot be exported",
    ),
    "secret": (
        (code("aws_key = 'AKIA" + "Q3ZT7WMPL2RXVN4H" + "'", "setup"), PREDICT),
        "error: nb.ipynb, cell 1, line 1: looks like",
    ),
    "missing-artifact": (
        (code("import pickle\nmodel = pickle.load(open('model.pkl', 'rb'))", "load"), PREDICT),
        "error: nb.ipynb, cell 1, line 2: 'model.pkl' does not exist beside the notebook",
    ),
    "parameters-not-literal": (
        (code("k = len('abc')", "parameters"), PREDICT),
        "error: nb.ipynb, cell 1, line 1: a parameters cell holds only assignments of literal values",
    ),
    "stale-output": (
        (PREDICT, example({"y": 4.0})),
        "error: nb.ipynb, cell 2: the exported code answers the example differently from the notebook: "
        "$.y: expected 4.0, got 3.0",
    ),
    "crash-in-predict": (
        (code("def predict(inputs):\n    return inputs['nope']", "predict"), example({"y": 3.0})),
        "error: nb.ipynb, cell 1, line 2: the exported code raised KeyError: 'nope' during the example",
    ),
    "output-not-literal": (
        (PREDICT, code("example = {'x': 1.5}\npredict(example)", "example", result=None)),
        "error: nb.ipynb, cell 2: the example cell has no saved output",
    ),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_broken_notebook_gives_its_one_clear_error(tmp_path: Path, run_cli: Run, name: str) -> None:
    cells, expected = CORPUS[name]
    path = write_notebook(tmp_path / "nb.ipynb", *cells)
    code_, out, err = run_cli("check", path)
    assert code_ == 1, err
    error_lines = [line for line in err.splitlines() if line.startswith("error: nb.ipynb")]
    assert len(error_lines) == 1, err
    assert error_lines[0].startswith(expected)
    assert "Traceback" not in err and out == ""


def test_a_good_notebook_passes_with_parity(tmp_path: Path, run_cli: Run) -> None:
    path = write_notebook(tmp_path / "nb.ipynb", PREDICT, example({"y": 3.0000000001}))
    code_, _, err = run_cli("check", path)
    assert code_ == 0, err
    assert "the example gives the notebook's output" in err
    # predict takes a dict: requests cannot share a call, which check notes without a warning
    assert "batching off: not batchable: predict's input is a dict" in " ".join(err.split())
    assert "not batched" not in err.split("ok: ")[0]  # no warning about it before the summary


def test_json_output_is_one_document_on_stdout(tmp_path: Path, run_cli: Run) -> None:
    path = write_notebook(tmp_path / "nb.ipynb", code("x = 1\n%matplotlib inline", "setup"), code("y = x"))
    code_, out, _ = run_cli("check", path, "--no-verify", "--output", "json")
    doc = json.loads(out)
    assert code_ == 1 and doc["ok"] is False and doc["batching"] is None  # no spec while an error blocks it
    assert {(f["severity"], f["code"], f["cell"], f["line"]) for f in doc["findings"]} == {
        ("warning", "magic-removed", 1, 2),
        ("error", "no-predict", None, None),
        ("warning", "no-example", None, None),
    }


def test_unreadable_notebook_and_bad_usage_exit_codes(tmp_path: Path, run_cli: Run) -> None:
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{")
    code_, _, err = run_cli("check", bad)
    assert code_ == 1 and err.startswith(f"error: {bad}: is not valid JSON") and "Traceback" not in err
    code_, _, err = run_cli("check", bad, "--no-such-flag")
    assert code_ == 2 and "no-such-flag" in err


def test_no_verify_skips_the_parity_run(tmp_path: Path, run_cli: Run) -> None:
    path = write_notebook(tmp_path / "nb.ipynb", PREDICT, example({"y": 4.0}))
    code_, _, err = run_cli("check", path, "--no-verify")
    assert code_ == 0, err


def test_on_github_actions_findings_become_annotations_on_the_notebook_file(
    tmp_path: Path, run_cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    path = write_notebook(
        tmp_path / "nb.ipynb",
        code("import os"),
        code("x = 1\n%matplotlib inline\ndef predict(inputs):\n    return y", "predict"),
    )
    code_, out, _ = run_cli("check", path, "--no-verify")
    assert code_ == 1
    file_lines = path.read_text().split("\n")
    annotations = [line for line in out.splitlines() if line.startswith("::")]
    assert len(annotations) == 3  # the warning, the error, and no-example
    error = next(a for a in annotations if a.startswith("::error "))
    line = int(error.split("line=")[1].split(",")[0])
    assert "return y" in file_lines[line - 1]  # points at the notebook file's own line for cell 2, line 4
    assert f"file={path.as_posix()}" in error and "predict uses 'y'" in error


def test_in_ci_the_lock_is_frozen_by_default(tmp_path: Path, run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from tests.conftest import EXAMPLES

    shutil.copytree(EXAMPLES / "text-sentiment", tmp_path / "nb")
    notebook = tmp_path / "nb" / "sentiment.ipynb"
    (tmp_path / "nb" / "requirements.lock").unlink()
    monkeypatch.setenv("CI", "true")
    code_, out, err = run_cli("render", notebook, "--out", tmp_path / "ctx")
    assert code_ == 1 and "requirements.lock is missing (--frozen)" in err and out == ""
    assert not (tmp_path / "ctx").exists() and not (tmp_path / "nb" / "requirements.lock").exists()
