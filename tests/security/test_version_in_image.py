"""Issue 13 point 7: ``/version`` in the container reports the lock's sha256, and the smoke test checks it.

Needs the rig (dockerd, ``python:3.11-slim``); the builder stage downloads the lock's wheels, hence ``network``.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from nbship.deps import pip_settings
from nbship.errors import ImageError
from nbship.image.build import BuildOptions, build_context
from nbship.image.builder import RunLimits
from tests.fixtures.image_context import make_image_context
from tests.images import rig_engine

pytestmark = [pytest.mark.docker, pytest.mark.network, pytest.mark.slow]
OPTIONS = BuildOptions(repository="nbship-e2e-version", limits=RunLimits(10**9, 512 * 2**20))


@pytest.fixture(scope="module")
def builder() -> Any:
    return rig_engine()


def version_of(builder: Any, image: str) -> dict[str, Any]:
    container = builder.run(image, port=8080, limits=OPTIONS.limits, environment={})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(container.url + "/version", timeout=2) as response:
                    return dict(json.loads(response.read()))
            except OSError:
                if time.monotonic() > deadline or not container.running():
                    raise AssertionError(container.logs(40)) from None
                time.sleep(0.2)
    finally:
        container.remove(5)


def test_version_reports_the_lock_in_the_container_and_the_smoke_test_checks_it(builder: Any, tmp_path: Path) -> None:
    context = make_image_context(tmp_path / "ctx")
    record = build_context(builder, context, OPTIONS, pip=lambda: pip_settings().for_builder())
    assert record.smoke is not None and record.smoke.passed, record.smoke
    lock = hashlib.sha256((context / "requirements.lock").read_bytes()).hexdigest()
    version = version_of(builder, record.image_id)
    assert version["lock_sha256"] == lock and version["name"] == "tiny" and version["version"] == "0.1.0"

    # An image whose runtime stage lacks the lock (as before the fix) fails the smoke test on /version.
    lockless = tmp_path / "lockless"
    make_image_context(lockless)
    dockerfile = lockless / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("COPY requirements.lock /app/\n", ""))
    with pytest.raises(ImageError) as raised:
        build_context(builder, lockless, replace(OPTIONS, repository="nbship-e2e-lockless"),
                      pip=lambda: pip_settings().for_builder())
    assert f"GET /version does not describe this build: lock_sha256 is None, expected {lock!r}" in str(
        raised.value.message)
