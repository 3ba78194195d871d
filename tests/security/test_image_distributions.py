"""Issue 13, point 14: the image's virtualenv holds exactly the locked distributions.

`python -m venv` seeds pip, and setuptools before Python 3.12; the Dockerfile removed pip only, so an unpinned
setuptools stayed in every image. The installers the lock does not pin are now removed after the install.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nbship.render.dockerfile import locked_pins, unlocked_installers
from tests.images import REGISTRY, rig_engine

# every distribution importlib.metadata finds in the image's venv, by normalised name
_LIST = ("import importlib.metadata as m, json; print(json.dumps(sorted("
         "[d.metadata['Name'], d.version, str(d.locate_file(''))] for d in m.distributions())))")


def test_installers_are_removed_unless_the_lock_pins_them() -> None:
    assert unlocked_installers("fastapi==0.1 \\\n    --hash=sha256:00\n") == ("setuptools", "wheel", "pip")
    assert unlocked_installers("setuptools==75.1.0 \\\n    --hash=sha256:00\nwheel==0.45\n") == ("pip",)


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.slow
def test_the_images_distributions_are_exactly_the_locked_ones(tmp_path: Path) -> None:
    import docker

    from nbship.deps import pip_settings
    from nbship.image.build import BuildOptions, build_context
    from nbship.image.builder import RunLimits
    from tests.fixtures.image_context import make_image_context

    engine = rig_engine()
    context = make_image_context(tmp_path / "ctx")  # python:3.11-slim, whose venv seeds pip and setuptools
    options = BuildOptions(repository=f"{REGISTRY}/nbship-e2e-tiny", limits=RunLimits(10**9, 512 * 2**20), push=False)
    record = build_context(engine, context, options, pip=lambda: pip_settings().for_builder())

    output = docker.from_env().containers.run(record.image_id, ["python", "-c", _LIST], remove=True, user="10001")
    found = {_normalise(name): (version, where) for name, version, where in json.loads(output)}

    locked = locked_pins((context / "requirements.lock").read_text())
    assert all(where.startswith("/opt/venv/") for _, where in found.values()), found
    assert {name: version for name, (version, _) in found.items()} == locked


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
