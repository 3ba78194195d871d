"""A pin only a local find-links folder provides is reported at lock time, not by docker build minutes later."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nbship.deps import LockRequest, ensure_lock
from nbship.deps.local_wheels import local_only_pins
from nbship.deps.lockfile import LockEntry
from nbship.deps.pipconf import PipSettings
from nbship.errors import LockError
from nbship.extract import ImportRef
from nbship.project import refuse_local_only_pins
from tests.fixtures.deps_env import WHEELHOUSE, install, offline, sha256, wheel

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def cpu_build(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    path.write_bytes(b"a local CPU build")
    return path


def test_a_pin_whose_every_hash_is_a_local_file_is_local_only(tmp_path: Path) -> None:
    local = cpu_build(tmp_path / "wheels")
    settings = PipSettings(find_links=(str(tmp_path / "wheels"),))
    only_local = LockEntry("torch", "torch==2.13.0+cpu", "2.13.0+cpu", (sha256(local),))
    also_indexed = LockEntry("torch", "torch==2.13.0+cpu", "2.13.0+cpu", (sha256(local), "sha256:" + "0" * 64))
    other_version = LockEntry("torch", "torch==2.13.0", "2.13.0", ("sha256:" + "1" * 64,))
    (pin,) = local_only_pins([only_local], settings)
    assert (pin.name, pin.version, pin.files) == ("torch", "2.13.0+cpu", (local,))
    assert local_only_pins([also_indexed, other_version], settings) == []
    assert local_only_pins([only_local], PipSettings(find_links=("https://example.invalid/links",))) == []
    assert local_only_pins([only_local], PipSettings(find_links=(local.parent.as_uri(),))) != []


def test_lock_says_which_pin_and_what_to_do(tmp_path: Path) -> None:
    env = install(tmp_path / "site-packages", ("nbfx-alpha", "1.0.0"), ("nbfx-beta", "1.0.0"))
    notebook = tmp_path / "project" / "demo.ipynb"
    notebook.parent.mkdir(parents=True)
    request = LockRequest(notebook=notebook, imports=(ImportRef("nbfx_alpha", 2, 1),), pip_requirements=(),
                          config_requirements=(), python_version=PYTHON, platform="linux/amd64")
    lock = ensure_lock(request, settings=offline(), search_path=[str(env)])
    (note,) = [n for n in lock.notes if "find-links" in n]
    assert f"nbfx-alpha==1.0.0 (only in {WHEELHOUSE})" in note
    assert "the image's builder cannot reach" in note and "then run `nbship lock` again" in note
    assert sha256(wheel("nbfx-alpha", "1.0.0")) in lock.text


def test_build_stops_before_docker_naming_the_pin(tmp_path: Path) -> None:
    local = cpu_build(tmp_path / "wheels")
    text = f"torch==2.13.0+cpu \\\n    --hash={sha256(local)}\n"
    settings = PipSettings(find_links=(str(tmp_path / "wheels"),))
    with pytest.raises(LockError) as raised:
        refuse_local_only_pins(text, settings)
    assert raised.value.message.startswith("requirements.lock: a pin exists only in a local find-links folder")
    assert f"torch==2.13.0+cpu (only in {tmp_path / 'wheels'})" in raised.value.message
    assert raised.value.hint is not None and "torch==2.13.0" in raised.value.hint
    refuse_local_only_pins(text, PipSettings())  # no local folder: nothing to say
