"""Lock stage, resolution against the local wheelhouse: uv and pip-tools agree, failures name their source."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nbship import _proc
from nbship.deps import LockRequest, ensure_lock
from nbship.deps import resolve as resolve_module
from nbship.deps.pipconf import PipSettings
from nbship.errors import EnvironmentMissingError, LockError
from nbship.extract import ImportRef, PipRequirement
from tests.fixtures.deps_env import install, offline, serve_index, sha256, wheel

RESOLVERS = ["uv", pytest.param("pip-tools", marks=pytest.mark.slow)]
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture
def env(tmp_path: Path) -> Path:
    return install(tmp_path / "site-packages", ("nbfx-alpha", "1.0.0"), ("nbfx-beta", "1.0.0"))


def _request(tmp_path: Path, resolver: str, **kwargs: Any) -> LockRequest:
    notebook = tmp_path / "project" / "demo.ipynb"
    notebook.parent.mkdir(parents=True, exist_ok=True)
    fields: dict[str, Any] = dict(
        notebook=notebook,
        imports=(ImportRef("nbfx_alpha", 2, 1),),
        pip_requirements=(),
        config_requirements=(),
        python_version=PYTHON,
        platform="linux/amd64",
        resolver=resolver,
    )
    fields.update(kwargs)
    return LockRequest(**fields)


def test_uv_and_pip_tools_write_the_same_lock_body(tmp_path: Path, env: Path) -> None:
    bodies = {}
    for resolver in ("uv", "pip-tools"):
        request = _request(tmp_path / resolver, resolver, config_requirements=("nbfx-gamma",))
        lock = ensure_lock(request, settings=offline(), search_path=[str(env)])
        assert lock.resolver.startswith(resolver + " ")
        bodies[resolver] = lock.text.split("\n#\n", 1)[1]
        assert lock.pins == {
            "nbfx-alpha": "1.0.0",
            "nbfx-beta": "1.0.0",
            "nbfx-gamma": "1.0.0",
            "fastapi": "0.120.0",
            "uvicorn": "0.30.0",
            "httptools": "0.6.4",
            "uvloop": "0.21.0",
        }
    assert bodies["uv"] == bodies["pip-tools"]
    assert f"nbfx-alpha==1.0.0 \\\n    --hash={sha256(wheel('nbfx-alpha', '1.0.0'))}\n" in bodies["uv"]


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_a_conflict_names_both_requirements_and_leaves_the_lock_untouched(
    tmp_path: Path, env: Path, resolver: str
) -> None:
    ok = _request(tmp_path, resolver)
    before = ensure_lock(ok, settings=offline(), search_path=[str(env)]).text
    broken = _request(
        tmp_path,
        resolver,
        config_requirements=("nbfx-alpha==1.1.0",),
        pip_requirements=(PipRequirement("nbfx-gamma", 4, 2),),
    )
    with pytest.raises(LockError) as caught:
        ensure_lock(broken, settings=offline(), search_path=[str(env)])
    message = caught.value.message
    assert "conflict" in message
    assert "nbfx-alpha==1.1.0  (from nbship.yaml: requirements[0])" in message
    assert "nbfx-gamma  (from demo.ipynb, cell 4, line 2 (%pip install))" in message
    assert len(message.splitlines()) <= 12
    assert "Traceback" not in message
    assert ok.lock_path.read_text() == before


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_a_package_missing_from_the_index_is_named_with_its_source(tmp_path: Path, env: Path, resolver: str) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "requirements.in").write_text("# extra\nnbfx-zzz>=1\n")
    with pytest.raises(LockError) as caught:
        ensure_lock(_request(tmp_path, resolver), settings=offline(), search_path=[str(env)])
    assert "nbfx-zzz is not on the package index" in caught.value.message
    assert "nbfx-zzz>=1  (from requirements.in, line 2)" in caught.value.message
    assert not (tmp_path / "project" / "requirements.lock").exists()


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_an_unreachable_index_says_so_without_credentials(tmp_path: Path, env: Path, resolver: str) -> None:
    settings = PipSettings(index_url="http://alice:s3cret@127.0.0.1:9/simple", retries="0", timeout="5")
    with pytest.raises(LockError) as caught:
        ensure_lock(_request(tmp_path, resolver), settings=settings, search_path=[str(env)])
    error = caught.value
    assert "the package index cannot be reached" in error.message
    assert "s3cret" not in error.message + (error.hint or "")
    assert "127.0.0.1:9" in error.message


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_credentials_reach_the_index_but_never_a_command_line_or_the_lock(
    tmp_path: Path, env: Path, resolver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    argvs: list[list[str]] = []
    real_run = _proc.run

    def recording_run(argv: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        argvs.append([os.fspath(a) for a in argv])
        return real_run(argv, **kwargs)

    monkeypatch.setattr(_proc, "run", recording_run)
    with serve_index(tmp_path / "index", "alice", "s3cret") as (base, seen):
        url = base.replace("http://", "http://alice:s3cret@") + "/simple"
        lock = ensure_lock(_request(tmp_path, resolver), settings=PipSettings(index_url=url), search_path=[str(env)])
    assert lock.pins["nbfx-alpha"] == "1.0.0"
    assert any(path.startswith("/simple/nbfx-alpha") for path in seen)  # the authenticated index was used
    assert "s3cret" not in lock.text and "127.0.0.1" not in lock.text
    assert argvs and not any("s3cret" in word for argv in argvs for word in argv)


def test_pip_tools_takes_over_with_a_notice_when_uv_cannot_run(
    tmp_path: Path, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uv

    broken = tmp_path / "uv"
    broken.write_bytes(b"\x7fELF not really a program")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(uv, "find_uv_bin", lambda: str(broken))
    resolve_module.uv_binary.cache_clear()
    try:
        lock = ensure_lock(_request(tmp_path, "uv"), settings=offline(), search_path=[str(env)])
    finally:
        resolve_module.uv_binary.cache_clear()
    assert lock.resolver.startswith("pip-tools ")
    (notice,) = [n for n in lock.notes if "uv cannot run" in n]
    assert "locking with pip-tools instead" in notice and "\n" not in notice
    assert lock.pins["nbfx-alpha"] == "1.0.0"


def test_pip_tools_refuses_a_python_version_it_cannot_resolve_for(tmp_path: Path, env: Path) -> None:
    other = "3.10" if PYTHON != "3.10" else "3.12"
    with pytest.raises(EnvironmentMissingError, match=f"not for the image's {other}") as caught:
        ensure_lock(_request(tmp_path, "pip-tools", python_version=other), settings=offline(), search_path=[str(env)])
    assert caught.value.hint and "--resolver uv" in caught.value.hint


def test_uv_resolves_for_another_python_version(tmp_path: Path, env: Path) -> None:
    other = "3.12" if PYTHON != "3.12" else "3.11"
    lock = ensure_lock(
        _request(tmp_path, "uv", python_version=other, platform="linux/arm64"),
        settings=offline(),
        search_path=[str(env)],
    )
    assert f"# python: {other}\n# platform: linux/arm64\n" in lock.text
