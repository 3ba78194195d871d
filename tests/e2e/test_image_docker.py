"""The image stage on a real Docker engine: build (the CA hand-over lets pip reach the index), smoke, push, pull.

Needs the rig of ``.ci/run`` (dockerd, the ``python:3.11-slim`` lookalike without this machine's CA bundle,
a registry on 127.0.0.1:5000); the builder stage downloads the lock's wheels from PyPI, hence ``network``.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from nbship.deps import BuilderPipSettings, pip_settings
from nbship.errors import ImageError
from nbship.image.build import BuildOptions, BuildRecord, build_context
from nbship.image.builder import RunLimits
from tests.fixtures.image_context import make_image_context
from tests.images import REGISTRY, rig_engine

pytestmark = [pytest.mark.docker, pytest.mark.network, pytest.mark.slow]

OPTIONS = BuildOptions(repository=f"{REGISTRY}/nbship-e2e-tiny", limits=RunLimits(10**9, 512 * 2**20), push=True)


def host_pip() -> BuilderPipSettings:
    return pip_settings().for_builder()


@pytest.fixture(scope="module")
def builder() -> Any:
    return rig_engine(registry=True)


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image_context(tmp_path_factory.mktemp("image") / "ctx")


@pytest.fixture(scope="module")
def built(builder: Any, context: Path) -> BuildRecord:
    return build_context(builder, context, OPTIONS, pip=host_pip)


def _host_only_certificate() -> str:
    """A line of a CA certificate this machine trusts and the base image does not (the TLS proxy's)."""
    import subprocess

    base = subprocess.run(
        ["docker", "run", "--rm", "python:3.11-slim", "cat", "/etc/ssl/certs/ca-certificates.crt"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    host = Path("/etc/ssl/certs/ca-certificates.crt").read_text()
    for block in host.split("-----END CERTIFICATE-----"):
        lines = [line for line in block.splitlines() if line and not line.startswith("-----")]
        if len(lines) > 3 and lines[2] not in base:
            return lines[2]
    pytest.skip("this machine trusts no CA the base image lacks: nothing to look for")


def _image_files(image_id: str) -> Iterator[tuple[str, bytes]]:
    import docker

    client = docker.from_env()
    container = client.containers.create(image_id)
    try:
        stream = io.BytesIO(b"".join(container.export()))
    finally:
        container.remove(force=True)
    with tarfile.open(fileobj=stream) as tar:
        for member in tar:
            data = b""
            if member.isfile() and member.size < 8 * 2**20:
                extracted = tar.extractfile(member)
                data = extracted.read() if extracted else b""
            yield member.name, data


def test_image_builds_answers_the_example_and_is_pushed(builder: Any, built: BuildRecord) -> None:
    assert built.smoke is not None and built.smoke.passed, built.smoke
    assert built.smoke.uid == 10001 and built.smoke.load_seconds is not None
    assert str(built.image).startswith(f"{REGISTRY}/nbship-e2e-tiny:0.1.0-{built.context_hash[:12]}")
    assert built.digest and built.digest.startswith("sha256:")
    assert built.base_image == "python:3.11-slim" and built.image_bytes and built.base_image_bytes
    import docker

    pulled = docker.from_env().images.pull(f"{REGISTRY}/nbship-e2e-tiny@{built.digest}")
    assert pulled.id == built.image_id, "the digest pulled back is the image that was smoke-tested"


def test_no_pip_settings_or_ca_bundle_reach_the_final_image(builder: Any, built: BuildRecord) -> None:
    import docker

    image = docker.from_env().images.get(built.image_id)
    history = json.dumps(image.history())
    for secret in ("ca.pem", "PIP_CERT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "/tmp/build"):
        assert secret not in history
    assert not any(k.startswith("PIP_") for k in image.attrs["Config"]["Env"])
    marker = _host_only_certificate().encode()
    names = []
    for name, data in _image_files(built.image_id):
        names.append(name)
        assert marker not in data, f"{name} holds this machine's CA certificate"
    assert not [n for n in names if n.startswith("tmp/build") or n.endswith("ca.pem")]
    assert "opt/venv/bin/python" in names and not [n for n in names if n.startswith("opt/venv/bin/pip")]
    assert not [n for n in names if "/.cache/pip" in n]
    assert "app/tiny/__pycache__/postprocessing.cpython-311.pyc" in names, "bytecode is compiled at build time"


def test_identical_context_reuses_the_image(builder: Any, context: Path, built: BuildRecord) -> None:
    again = build_context(builder, context, replace(OPTIONS, push=False, smoke=False))
    assert again.reused and again.image_id == built.image_id and again.durations["build"] < 2


def test_code_only_change_reuses_dependency_and_artifact_layers(
    builder: Any, context: Path, built: BuildRecord, tmp_path: Path
) -> None:
    import docker

    changed = tmp_path / "ctx"
    shutil.copytree(context, changed)
    module = changed / "tiny" / "postprocessing.py"
    # unique per run: an image of the same content left by an earlier run would be reused, not rebuilt
    module.write_text(module.read_text() + f"# a one-line change {uuid.uuid4().hex}\n")
    lines: list[str] = []
    from nbship.image.build import BuildProgress

    record = build_context(
        builder,
        changed,
        replace(OPTIONS, push=False),
        BuildProgress(line=lines.append),
        pip=host_pip,
    )
    assert record.image != built.image and not record.reused and record.smoke and record.smoke.passed
    client = docker.from_env()
    before = client.images.get(built.image_id).attrs["RootFS"]["Layers"]
    after = client.images.get(record.image_id).attrs["RootFS"]["Layers"]
    shared = next(i for i, (a, b) in enumerate(zip(before, after)) if a != b)
    # only the code layers differ: nbship_runtime is unchanged too, so at most package + manifest + bytecode
    assert len(after) - shared <= 3 and len(before) == len(after)
    install = lines.index(next(line for line in lines if "--require-hashes" in line))
    assert lines[install + 1].strip() == "---> Using cache"


def test_smoke_failure_keeps_the_image_and_shows_the_log(builder: Any, context: Path, tmp_path: Path) -> None:
    broken = tmp_path / "ctx"
    shutil.copytree(context, broken)
    manifest = json.loads((broken / "nbship.json").read_text())
    manifest["example"]["response"]["y"][0] = 99.0
    (broken / "nbship.json").write_text(json.dumps(manifest))
    with pytest.raises(ImageError) as raised:
        build_context(builder, broken, replace(OPTIONS, push=False), pip=host_pip)
    message = raised.value.message
    assert "$.y[0]: expected 99.0, got 1.5" in message and '"event": "ready"' in message
    kept = (raised.value.hint or "").rsplit(" ", 1)[-1]
    assert "kept for debugging" in (raised.value.hint or "") and builder.image_id(kept) is not None


def test_failing_build_step_names_the_dockerfile_line(builder: Any, context: Path, tmp_path: Path) -> None:
    bad = tmp_path / "ctx"
    shutil.copytree(context, bad)
    (bad / "requirements.lock").write_text("six==1.16.0 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    with pytest.raises(ImageError) as raised:
        build_context(builder, bad, replace(OPTIONS, push=False), pip=host_pip)
    message = raised.value.message
    line = next(
        n for n, text in enumerate((bad / "Dockerfile").read_text().splitlines(), 1) if text.startswith("RUN if")
    )
    assert f"Dockerfile, line {line}: RUN if [ -f /tmp/build/ca.pem ]" in message
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in message


def test_push_to_an_unreachable_registry_is_an_image_error(builder: Any, built: BuildRecord) -> None:
    from nbship.image.builder import push_image

    ref = "127.0.0.1:5999/nbship-e2e-tiny:unreachable"
    builder.tag(built.image_id, ref)
    with pytest.raises(ImageError, match="push of 127.0.0.1:5999/nbship-e2e-tiny:unreachable failed") as raised:
        push_image(builder, [ref], lambda progress: None)
    assert "reachable" in (raised.value.hint or "")


def test_cli_prints_the_build_record_as_json(
    builder: Any, context: Path, built: BuildRecord, tmp_path: Path, run_cli: Any
) -> None:
    record = tmp_path / "nbship-build.json"
    code, out, err = run_cli(
        "build",
        str(context),
        "--repository",
        OPTIONS.repository,
        "--no-smoke",
        "-t",
        "e2e",
        "--output",
        "json",
        "--record",
        str(record),
    )
    assert code == 0, err
    document = json.loads(out)
    assert document == json.loads(record.read_text())
    assert document["image"] == str(built.image) and document["reused"] is True
    assert document["tags"] == [str(built.image), f"{OPTIONS.repository}:e2e"]
    assert document["notebook_sha256"] == "1" * 64 and document["lock_sha256"] == built.lock_sha256


EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples" / "notebooks"


def _examples() -> list[Any]:
    names = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()) if EXAMPLES.is_dir() else []
    # the GPU example's encoder is a remote artifact: its container would download it from the internet
    return [pytest.param(n, marks=pytest.mark.allow_skip) if n == "gpu-embeddings" else n for n in names]


@pytest.mark.parametrize("example", _examples())
def test_example_notebook_builds_answers_and_pulls_back_by_digest(builder: Any, example: str, tmp_path: Path) -> None:
    from nbship.config import load_config
    from nbship.project import build_notebook

    source = tmp_path / example
    shutil.copytree(EXAMPLES / example, source)  # the lock is written beside the notebook: work on a copy
    notebook = next(source.glob("*.ipynb"))
    config, _ = load_config(notebook)
    if config.artifacts and any(a.uri for a in config.artifacts):
        pytest.skip(f"{example}: its remote artifact would be downloaded from outside this machine")
    options = BuildOptions(repository=f"{REGISTRY}/nbship-e2e-{example}", push=True)
    record = build_notebook(builder, notebook, tmp_path / "context", options)
    assert record.smoke is not None and record.smoke.passed and record.smoke.uid == 10001
    assert record.digest is not None and record.lock_sha256 and record.notebook_sha256
    import docker

    pulled = docker.from_env().images.pull(f"{REGISTRY}/nbship-e2e-{example}@{record.digest}")
    assert pulled.id == record.image_id
    # uvicorn imports uvloop and httptools only to use them (loop and http "auto"): the serving process has their
    # compiled modules mapped, instead of falling back to asyncio and the pure-Python h11 parser
    port = json.loads((tmp_path / "context" / "nbship.json").read_text())["service"]["port"]
    mapped = _serving_process_maps(builder, record.image_id, port)
    assert re.search(r"/site-packages/uvloop/loop\.cpython-\S+\.so$", mapped, re.M), "the service runs on asyncio"
    assert re.search(r"/site-packages/httptools/parser/parser\.cpython-\S+\.so$", mapped, re.M), "it parses with h11"


def _serving_process_maps(builder: Any, image: str, port: int) -> str:
    """``/proc/1/maps`` of the service (PID 1) once it answers ``/readyz``: the shared objects it has loaded."""
    container = builder.run(image, port=port, limits=RunLimits(), environment={})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(container.url + "/readyz", timeout=2) as response:
                    assert response.status == 200
                break
            except OSError:
                if time.monotonic() > deadline or not container.running():
                    raise AssertionError(container.logs(40)) from None
                time.sleep(0.2)
        code, output = container.container.exec_run(["cat", "/proc/1/maps"], user="10001")
        assert code == 0, output
        return bytes(output).decode("utf-8", "replace")
    finally:
        container.remove(5)
