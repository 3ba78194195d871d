"""Lock stage, ``ensure_lock`` / ``lock_status``: re-resolve only on change, --frozen, upgrades."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from nbship.deps import LockRequest, ensure_lock, lock_status
from nbship.deps.pipconf import PipSettings
from nbship.errors import LockError, UsageError
from nbship.extract import ImportRef, PipRequirement
from tests.fixtures.deps_env import install, offline

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
# resolving against this fails at once: a call that must not resolve proves it did not
UNREACHABLE = PipSettings(index_url="http://127.0.0.1:9/simple", retries="0", timeout="2")


@pytest.fixture
def env(tmp_path: Path) -> Path:
    return install(tmp_path / "site-packages", ("nbfx-alpha", "1.0.0"), ("nbfx-beta", "1.0.0"))


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    path = tmp_path / "project" / "demo.ipynb"
    path.parent.mkdir(parents=True)
    return path


def _request(notebook: Path, **kwargs: Any) -> LockRequest:
    fields: dict[str, Any] = dict(
        notebook=notebook,
        imports=(ImportRef("nbfx_alpha", 2, 1),),
        pip_requirements=(),
        config_requirements=(),
        python_version=PYTHON,
        platform="linux/amd64",
    )
    fields.update(kwargs)
    return LockRequest(**fields)


def test_an_unchanged_relock_runs_no_resolver(notebook: Path, env: Path) -> None:
    first = ensure_lock(_request(notebook), settings=offline(), search_path=[str(env)])
    assert first.resolved
    mtime = first.path.stat().st_mtime_ns
    again = ensure_lock(_request(notebook), settings=UNREACHABLE, search_path=[str(env)])
    assert not again.resolved
    assert again.text == first.text and again.pins == first.pins
    assert again.path.stat().st_mtime_ns == mtime


def test_a_changed_input_relocks_keeping_the_earlier_pins(notebook: Path, env: Path) -> None:
    first = ensure_lock(_request(notebook), settings=offline(), search_path=[str(env)])
    assert first.pins["nbfx-beta"] == "1.0.0"  # the version the notebook's environment has
    second = ensure_lock(
        _request(notebook, config_requirements=("nbfx-gamma",)), settings=offline(), search_path=[str(env)]
    )
    assert second.resolved
    assert second.pins["nbfx-gamma"] == "1.0.0" and second.pins["nbfx-beta"] == "1.0.0"
    assert "nbfx-gamma 1.0.0 added" in second.notes


def test_upgrade_package_moves_only_that_package(notebook: Path, env: Path) -> None:
    ensure_lock(_request(notebook), settings=offline(), search_path=[str(env)])
    upgraded = ensure_lock(
        _request(notebook, upgrade_packages=("nbfx-beta",)), settings=offline(), search_path=[str(env)]
    )
    assert upgraded.resolved
    assert (upgraded.pins["nbfx-beta"], upgraded.pins["nbfx-alpha"]) == ("2.0.0", "1.0.0")
    assert "nbfx-beta 1.0.0 → 2.0.0" in upgraded.notes


def test_upgrade_moves_everything_not_pinned_by_the_user_or_the_environment(notebook: Path, env: Path) -> None:
    request = _request(notebook, imports=(), config_requirements=("nbfx-alpha",))
    first = ensure_lock(request, settings=offline(), search_path=[str(env)])
    assert (first.pins["nbfx-alpha"], first.pins["nbfx-beta"]) == ("1.0.0", "1.0.0")
    upgraded = ensure_lock(
        _request(notebook, imports=(), config_requirements=("nbfx-alpha",), upgrade=True),
        settings=offline(),
        search_path=[str(env)],
    )
    assert (upgraded.pins["nbfx-alpha"], upgraded.pins["nbfx-beta"]) == ("1.1.0", "2.0.0")


def test_frozen_with_a_missing_lock_fails(notebook: Path, env: Path) -> None:
    with pytest.raises(LockError, match="requirements.lock is missing") as caught:
        ensure_lock(_request(notebook, frozen=True), settings=UNREACHABLE, search_path=[str(env)])
    assert caught.value.hint and "nbship lock demo.ipynb" in caught.value.hint
    assert caught.value.exit_code == 1


def test_frozen_with_a_stale_lock_names_what_changed(notebook: Path, env: Path) -> None:
    ensure_lock(_request(notebook), settings=offline(), search_path=[str(env)])
    before = (notebook.parent / "requirements.lock").read_text()
    changed = _request(notebook, frozen=True, pip_requirements=(PipRequirement("nbfx-gamma", 3, 1),))
    with pytest.raises(LockError, match=r"stale \(--frozen\): the notebook's %pip install lines changed"):
        ensure_lock(changed, settings=UNREACHABLE, search_path=[str(env)])
    (notebook.parent / "requirements.in").write_text("nbfx-gamma\n")
    with pytest.raises(LockError, match="requirements.in changed"):
        ensure_lock(_request(notebook, frozen=True), settings=UNREACHABLE, search_path=[str(env)])
    assert (notebook.parent / "requirements.lock").read_text() == before


def test_frozen_accepts_a_fresh_lock_whichever_resolver_wrote_it(notebook: Path, env: Path) -> None:
    ensure_lock(_request(notebook, resolver="uv"), settings=offline(), search_path=[str(env)])
    lock = ensure_lock(
        _request(notebook, resolver="pip-tools", frozen=True), settings=UNREACHABLE, search_path=[str(env)]
    )
    assert not lock.resolved and lock.resolver.startswith("uv ")


def test_frozen_in_a_job_without_the_notebooks_environment(notebook: Path, env: Path, tmp_path: Path) -> None:
    ensure_lock(_request(notebook), settings=offline(), search_path=[str(env)])
    # CI: nbfx_alpha is not installed, and not in the fallback table; the lock's module map knows it
    lock = ensure_lock(_request(notebook, frozen=True), settings=UNREACHABLE, search_path=[str(tmp_path / "ci")])
    assert lock.pins["nbfx-alpha"] == "1.0.0"


def test_a_new_version_in_the_notebooks_environment_makes_the_lock_stale(
    notebook: Path, env: Path, tmp_path: Path
) -> None:
    ensure_lock(_request(notebook), settings=offline(), search_path=[str(env)])
    newer = install(tmp_path / "newer", ("nbfx-alpha", "1.1.0"), ("nbfx-beta", "2.0.0"))
    status = lock_status(_request(notebook), search_path=[str(newer)])
    assert status.state == "stale"
    assert status.reasons == (
        "nbfx-alpha 1.1.0 is installed here (import nbfx_alpha, cell 2, line 1) but the lock pins 1.0.0",
    )
    relocked = ensure_lock(_request(notebook), settings=offline(), search_path=[str(newer)])
    assert relocked.pins["nbfx-alpha"] == "1.1.0"


def test_lock_status_reports_missing_stale_and_fresh(notebook: Path, env: Path) -> None:
    assert lock_status(_request(notebook), search_path=[str(env)]).state == "missing"
    ensure_lock(_request(notebook), settings=offline(), search_path=[str(env)])
    fresh = lock_status(_request(notebook), search_path=[str(env)])
    assert (fresh.state, fresh.reasons) == ("fresh", ())
    assert fresh.resolver and fresh.resolver.startswith("uv ")
    stale = lock_status(_request(notebook, python_version="3.99"), search_path=[str(env)])
    assert stale.state == "stale" and "the target changed (now Python 3.99" in stale.reasons[0]
    assert stale.as_json()["state"] == "stale"


def test_frozen_and_upgrade_exclude_each_other(notebook: Path) -> None:
    with pytest.raises(UsageError):
        ensure_lock(_request(notebook, frozen=True, upgrade=True), settings=UNREACHABLE)


def test_a_declared_s3_artifact_puts_boto3_in_the_lock_inputs_and_only_then(notebook: Path, env: Path) -> None:
    from nbship.deps import _inputs

    ensure_lock(_request(notebook), settings=offline(), search_path=[str(env)])
    assert lock_status(_request(notebook), search_path=[str(env)]).state == "fresh"
    with_s3 = _request(notebook, download_requirements=("boto3>=1.28,<2",))
    status = lock_status(with_s3, search_path=[str(env)])
    assert status.state == "stale" and any("service" in r for r in status.reasons), status.reasons
    specs = [r.spec for r in _inputs(with_s3, {}, [str(env)]).requirements]
    assert "boto3<2,>=1.28" in specs  # normalised
    assert not [s for s in (r.spec for r in _inputs(_request(notebook), {}, [str(env)]).requirements) if "boto3" in s]


def test_an_optional_import_not_installed_locks_without_it_and_says_so(notebook: Path, env: Path) -> None:
    imports = (ImportRef("nbfx_alpha", 2, 1), ImportRef("ipywidgets", 3, 2, optional=True))
    assert lock_status(_request(notebook, imports=imports), search_path=[str(env)]).state == "missing"
    lock = ensure_lock(_request(notebook, imports=imports), settings=offline(), search_path=[str(env)])
    assert "nbfx-alpha" in lock.pins and "ipywidgets" not in lock.text
    assert any(n.startswith("demo.ipynb, cell 3, line 2: optional 'import ipywidgets'") for n in lock.notes)
