"""A tool nbship needs but the machine lacks is one clear sentence and exit 3, never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.notebooks import code, write_notebook

RunCli = Callable[..., tuple[int, str, str]]


def _one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


def test_no_kubectl_on_path_is_exit_3_with_one_sentence(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    code_, out, err = run_cli("status", str(tmp_path), "--env", "staging")
    assert code_ == 3 and out == ""
    assert _one_error(err) == "error: kubectl not found"
    assert "hint: install kubectl" in err


def test_serve_without_fastapi_is_exit_3_naming_what_is_missing(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec

    def without_fastapi(name: str, *args: object) -> object:
        return None if name == "fastapi" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", without_fastapi)
    notebook = write_notebook(tmp_path / "m.ipynb", code("def predict(inputs):\n    return inputs", "predict"))
    code_, out, err = run_cli("serve", str(notebook))
    assert code_ == 3 and out == ""
    assert "fastapi missing from the environment that runs nbship" in _one_error(err)


def test_without_any_resolver_lock_is_exit_3(run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbship.deps import resolve

    monkeypatch.setattr(resolve, "uv_binary", lambda: (None, "no uv binary (test)"))
    monkeypatch.setattr(resolve, "piptools_version", lambda: None)
    notebook = write_notebook(
        tmp_path / "m.ipynb",
        code("import json", "setup"),
        code("def predict(inputs):\n    return json.dumps(inputs)", "predict"),
    )
    code_, out, err = run_cli("lock", str(notebook))
    assert code_ == 3 and out == ""
    assert "pip-tools is not installed" in _one_error(err)
