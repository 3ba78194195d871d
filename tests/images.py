"""The rig's container engine and registry, for the tests that build or run real images (marker ``docker``).

Each helper skips the test, naming what is missing, when the rig is not up; under ``NBSHIP_E2E_REQUIRED=1`` that
skip is a failure (tests/conftest.py).
"""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest

REGISTRY = "127.0.0.1:5000"  # the registry as this host pushes to it
BASE_IMAGE = "python:3.11-slim"


def registry_up() -> bool:
    try:
        with urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=2):
            return True
    except OSError:
        return False


def rig_engine(*, registry: bool = False) -> Any:
    """nbship's own Docker engine wrapper on the rig, with the base image present (and, if asked, the registry)."""
    from nbship.errors import EnvironmentMissingError
    from nbship.image.docker_engine import connect

    try:
        engine = connect()
    except EnvironmentMissingError as e:
        pytest.skip(f"no Docker engine: {e.message}")
    if engine.image_id(BASE_IMAGE) is None:
        pytest.skip(f"the rig is not up (bash shared/docker/up.sh): no {BASE_IMAGE}")
    if registry and not registry_up():
        pytest.skip(f"the rig is not up (bash shared/docker/up.sh): no registry on {REGISTRY}")
    return engine


def docker_sdk() -> Any:
    """A docker SDK client for stand-in images built without nbship's image stage."""
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env()
        client.ping()
    except Exception as e:  # noqa: BLE001 - any engine problem means "not on this machine"
        pytest.skip(f"no Docker engine: {e}")
    return client


def build_and_push(client: Any, folder: Path, ref: str) -> str:
    """Build ``folder`` (its Dockerfile) as ``ref`` with the docker SDK, push it; the reference by digest."""
    client.images.build(path=str(folder), tag=ref, rm=True)
    digest = ""
    for line in client.images.push(ref, stream=True, decode=True):
        if "error" in line:
            raise RuntimeError(line["error"])
        digest = line.get("aux", {}).get("Digest", digest)
    return f"{ref.rsplit(':', 1)[0]}@{digest}"
