"""``nbship render``: a real package that behaves like the notebook, byte-identical twice, never half-written."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import joblib
import pytest

from nbship.errors import CheckFailedError, UserError
from nbship.project import render_project
from tests.notebooks import code, write_notebook

Run = Callable[..., tuple[int, str, str]]


def demo(tmp_path: Path, expected: dict[str, object] | None = None) -> Path:
    (tmp_path / "artifacts").mkdir(exist_ok=True)
    joblib.dump({"w": 2.0}, tmp_path / "artifacts" / "model.joblib")
    return write_notebook(
        tmp_path / "Demo Model.ipynb",
        code("import joblib\nimport numpy as np\n%matplotlib inline\ndef double(x):\n    return x * 2", "setup"),
        code("threshold = 5.0", "parameters"),
        code("model = joblib.load('artifacts/model.joblib')", "load"),
        code("scratch = 1"),
        code("def preprocess(payload):\n    return np.array(payload['values']) * model['w']", "preprocess"),
        code("# nbship: predict\ndef predict(inputs):\n    return double(inputs).sum()"),
        code("def postprocess(prediction):\n"
             "    return {'score': float(prediction), 'hot': bool(prediction > threshold)}", "postprocess"),
        code("example = {'values': [1.0, 2.5]}\npostprocess(predict(preprocess(example)))", "example",
             result=expected or {"score": 14.0, "hot": True}),
    )


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_rendered_package_answers_like_the_notebook_with_parameter_overrides(tmp_path: Path) -> None:
    out = render_project(demo(tmp_path), tmp_path / "ctx", lock=False).out
    files = tree(out)
    assert {"demo_model/inference.py", "demo_model/loading.py", "nbship.json", "main.py",
            "artifacts/model.joblib", "nbship_runtime/pipeline.py"} <= set(files)
    assert not any(name.endswith(".ipynb") for name in files)
    script = ("import json; from pathlib import Path; from nbship_runtime.pipeline import load_pipeline;"
              "p = load_pipeline(Path('.')); print(json.dumps(p({'values': [1.0, 0.0]})))")
    env = {"PYTHONPATH": str(out), "NBSHIP_PARAM_THRESHOLD": "4.5", "PATH": ""}
    done = subprocess.run([sys.executable, "-c", script], cwd=out, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"score": 4.0, "hot": False}


def test_generated_modules_carry_provenance_and_the_manifest_maps_lines_back(tmp_path: Path) -> None:
    out = render_project(demo(tmp_path), tmp_path / "ctx", lock=False).out
    inference = (out / "demo_model" / "inference.py").read_text()
    assert "# nbship: Demo Model.ipynb cell 6 (predict)" in inference
    assert "from .shared import double" in inference
    manifest = json.loads((out / "nbship.json").read_text())
    (cell,) = [c for c in manifest["cells"] if c["role"] == "predict"]
    lines = inference.split("\n")
    assert lines[cell["first_line"] - 1] == "# nbship: predict"  # the cell's own first line
    assert lines[cell["last_line"] - 1] == "    return double(inputs).sum()"
    assert manifest["parameters"] == [
        {"name": "threshold", "env": "NBSHIP_PARAM_THRESHOLD", "default": 5.0, "type": "float"}]
    assert [a["path"] for a in manifest["artifacts"]] == ["artifacts/model.joblib"]
    assert manifest["example"]["request"] == {"values": [1.0, 2.5]}


def test_rendering_twice_is_byte_identical(tmp_path: Path) -> None:
    notebook = demo(tmp_path)
    first = tree(render_project(notebook, tmp_path / "a", verify=False, lock=False).out)
    second = tree(render_project(notebook, tmp_path / "b", verify=False, lock=False).out)
    assert first == second


def test_a_failed_render_leaves_the_previous_context_untouched(tmp_path: Path) -> None:
    notebook = demo(tmp_path)
    out = render_project(notebook, tmp_path / "ctx", lock=False).out
    before = tree(out)
    demo(tmp_path, expected={"score": 99.0, "hot": True})  # stale saved output: parity fails
    with pytest.raises(CheckFailedError):
        render_project(notebook, out, lock=False)
    assert tree(out) == before
    assert [p.name for p in tmp_path.iterdir() if "nbship-tmp" in p.name] == []
    with pytest.raises(CheckFailedError):
        render_project(notebook, tmp_path / "fresh", lock=False)
    assert not (tmp_path / "fresh").exists()


def test_render_refuses_to_replace_a_folder_it_did_not_write(tmp_path: Path) -> None:
    precious = tmp_path / "src"
    precious.mkdir()
    (precious / "keep.py").write_text("x = 1\n")
    with pytest.raises(UserError, match="is not a build context written by nbship"):
        render_project(demo(tmp_path), precious, lock=False)
    assert (precious / "keep.py").read_text() == "x = 1\n"


def test_render_cli_writes_a_buildable_context_from_the_committed_lock(tmp_path: Path, run_cli: Run) -> None:
    import shutil

    from tests.conftest import EXAMPLES

    shutil.copytree(EXAMPLES / "tabular-churn", tmp_path / "churn")
    notebook = tmp_path / "churn" / "churn.ipynb"
    code_, out, err = run_cli("render", notebook, "--out", tmp_path / "ctx", "--frozen")
    assert code_ == 0, err
    assert out == "" and f"wrote {tmp_path / 'ctx'}" in err
    context = tmp_path / "ctx"
    assert (context / "requirements.lock").read_text() == (tmp_path / "churn" / "requirements.lock").read_text()
    assert "USER 10001:10001" in (context / "Dockerfile").read_text()
    (tmp_path / "churn" / "requirements.in").write_text("requests\n")  # a new input: the lock is stale
    code_, _, err = run_cli("render", notebook, "--out", tmp_path / "ctx", "--frozen")
    assert code_ == 1 and "requirements.lock is stale (--frozen)" in err and "requirements.in" in err
