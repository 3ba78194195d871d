"""``nbship lock`` end to end in-process: a real notebook, pip settings from PIP_* variables, the wheelhouse."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.deps_env import WHEELHOUSE, install
from tests.notebooks import code, write_notebook

RunCli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A notebook importing nbfx_alpha (installed in this "kernel"), pip configured for the wheelhouse only."""
    env = install(tmp_path / "site-packages", ("nbfx-alpha", "1.0.0"), ("nbfx-beta", "1.0.0"))
    monkeypatch.syspath_prepend(str(env))
    for key in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(WHEELHOUSE))
    return write_notebook(
        tmp_path / "project" / "demo.ipynb",
        code("%pip install nbfx-exploration-only\n"),  # untagged: not the service's, and not on any index
        code("%pip install nbfx-gamma\nimport os\nimport nbfx_alpha\n", "setup"),
        code("def predict(inputs):\n    return nbfx_alpha.__version__\n", "predict"),
    )


def test_lock_writes_the_lock_and_reports_json(project: Path, run_cli: RunCli) -> None:
    code_, out, err = run_cli("lock", project, "--output", "json")
    assert code_ == 0, err
    document = json.loads(out)
    assert document["resolved"] is True
    assert document["pins"]["nbfx-alpha"] == "1.0.0"
    assert document["pins"]["nbfx-gamma"] == "1.0.0"  # the %pip line of an exported cell
    assert "nbfx-exploration-only" not in document["pins"]
    lock = project.parent / "requirements.lock"
    assert document["lock"] == str(lock)
    assert lock.read_text().startswith("# requirements.lock: written by `nbship lock` for demo.ipynb")


def test_a_second_lock_is_up_to_date_and_frozen_passes(project: Path, run_cli: RunCli) -> None:
    assert run_cli("lock", project)[0] == 0
    code_, out, err = run_cli("lock", project)
    assert code_ == 0 and out == ""
    assert "requirements.lock is up to date" in err
    assert run_cli("lock", project, "--frozen")[0] == 0


def test_frozen_with_a_stale_lock_exits_1_naming_the_change(project: Path, run_cli: RunCli) -> None:
    assert run_cli("lock", project)[0] == 0
    (project.parent / "nbship.yaml").write_text("requirements:\n  - nbfx-beta<2\n")
    code_, _, err = run_cli("lock", project, "--frozen")
    assert code_ == 1
    assert "error: requirements.lock is stale (--frozen): nbship.yaml `requirements:` changed" in err
    assert "hint: run `nbship lock demo.ipynb`" in err


def test_a_bad_resolver_name_is_a_usage_error(project: Path, run_cli: RunCli) -> None:
    code_, _, err = run_cli("lock", project, "--resolver", "poetry")
    assert code_ == 2 and "'poetry' is not one of 'uv', 'pip-tools'" in err
