"""``nbship deploy NOTEBOOK``: render, build, smoke-test and push first, then deploy what was built."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.notebooks import code, write_notebook

RunCli = Callable[..., tuple[int, str, str]]


def _notebook(tmp_path: Path) -> Path:
    return write_notebook(tmp_path / "nb" / "double.ipynb",
                          code("def predict(inputs):\n    return inputs", "predict"))


def test_a_notebook_without_a_registry_is_a_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    code_, out, err = run_cli("deploy", str(_notebook(tmp_path)), "--env", "staging")
    assert code_ == 2 and out == ""
    assert "name a registry" in err and "--repository" in err


def test_a_notebook_is_built_and_pushed_then_its_record_deployed(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbship.cli.build
    import nbship.cli.deploy
    import nbship.deploy.apply
    from nbship.deploy.apply import DeployResult

    built: list[dict[str, Any]] = []

    def fake_build(notebook: Path, out: Path, options: Any, **kwargs: Any) -> tuple[Any, Path]:
        built.append({"notebook": notebook, "out": out, "repository": kwargs["repository"], "push": options.push})
        (out / "k8s").mkdir(parents=True)
        from nbship.image.record import BuildRecord, write_build_record
        from nbship.image.ref import ImageRef

        built_record = BuildRecord(
            image=ImageRef.parse("r.example/m:1-abc"), tags=("r.example/m:1-abc",), image_id="sha256:1",
            context_hash="abc", reused=True, notebook_sha256="n", lock_sha256="l", base_image="python:3.11-slim",
            platform=None, image_bytes=None, base_image_bytes=None, durations={}, digest="sha256:" + "a" * 64,
            pushed=("r.example/m:1-abc",), git_commit="c0ffee")
        record = out / "nbship-build.json"
        write_build_record(record, built_record)
        return built_record, record

    deployed: list[tuple[Any, Any]] = []

    def fake_deploy(client: Any, target: Any, choice: Any, **kwargs: Any) -> DeployResult:
        deployed.append((target, choice))
        return DeployResult("m", "m-staging", str(choice.reference), 1, None, (), 1.0)

    monkeypatch.setattr(nbship.cli.build, "build_and_record", fake_build)
    monkeypatch.setattr(nbship.cli.deploy, "_connect", lambda context: object())
    monkeypatch.setattr(nbship.deploy.apply, "deploy", fake_deploy)
    out = tmp_path / "ctx"
    code_, stdout, err = run_cli("deploy", str(_notebook(tmp_path)), "--env", "staging", "--repository",
                                 "r.example/m", "--out", str(out), "--output", "json")
    assert code_ == 0, err
    assert built == [{"notebook": tmp_path / "nb" / "double.ipynb", "out": out, "repository": "r.example/m",
                      "push": True}]
    ((target, choice),) = deployed
    assert target.context_dir == out and target.env == "staging"
    assert str(choice.reference) == "r.example/m@sha256:" + "a" * 64 and choice.git_commit == "c0ffee"
    assert json.loads(stdout)["image"] == str(choice.reference)
