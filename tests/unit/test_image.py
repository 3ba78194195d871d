"""The image stage with a fake engine: content tags and reuse, the smoke test's verdicts, push, the build record."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from nbship.deps.pipconf import BuilderPipSettings
from nbship.errors import ConfigError, EnvironmentMissingError, ExitCode, ImageError
from nbship.image.build import BuildRecord, write_build_record
from nbship.image.builder import (
    PushProgress,
    RunLimits,
    build_image,
    context_hash,
    hand_over_pip_ca,
    image_tags,
    pip_build_args,
    push_image,
    run_limits,
)
from nbship.image.ref import ImageRef
from nbship.image.smoke import SmokeResult, smoke_test
from nbship.render.dockerfile import PIP_CA_BUNDLE
from nbship.runtime.manifest import ExampleEntry, ImageEntry, Manifest, NotebookRef, ServiceEntry, manifest_text
from tests.fakes import FakeBuilder, FakeContainer

EXAMPLE = {"request": {"x": [1.0, 2.0]}, "response": {"label": "ok", "y": [1.5, 2.0]}, "cell": 9}


LOCK_TEXT = "fastapi==0.1 \\\n    --hash=sha256:00\n"
LOCK_SHA256 = hashlib.sha256(LOCK_TEXT.encode()).hexdigest()


def write_context(root: Path, *, postprocess: str = "def postprocess(p):\n    return p\n") -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "postprocessing.py").write_text(postprocess)
    (root / "requirements.lock").write_text(LOCK_TEXT)
    manifest = Manifest(
        nbship_version="0.0.0", name="churn", version="1.0", package="pkg", notebook=NotebookRef("churn.ipynb", "n"),
        modules=("postprocessing",), stages={"predict": "postprocessing"}, image=ImageEntry("churn"),
        example=ExampleEntry(**EXAMPLE), service=ServiceEntry(port=8080),
    )
    (root / "nbship.json").write_text(manifest_text(manifest))
    (root / "Dockerfile").write_text("FROM python:3.11-slim\n")
    return root


class FakeService:
    """A real HTTP server on 127.0.0.1 standing in for the container's service."""

    def __init__(
        self, answer: Any, *, ready_after: int = 0, status: int = 200, version: dict[str, Any] | None = None
    ) -> None:
        self.answer, self.ready_after, self.status, self.readyz_calls = answer, ready_after, status, 0
        self.version = version or {"name": "churn", "version": "1.0", "lock_sha256": LOCK_SHA256}
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def reply(self, code: int, document: Any) -> None:
                body = json.dumps(document).encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/version":
                    self.reply(200, service.version)
                    return
                service.readyz_calls += 1
                ready = service.readyz_calls > service.ready_after
                self.reply(200 if ready else 503, {"status": "ready" if ready else "loading"})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                self.reply(service.status, service.answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service_factory() -> Iterator[Callable[..., FakeService]]:
    started: list[FakeService] = []

    def make(answer: Any, **options: Any) -> FakeService:
        started.append(FakeService(answer, **options))
        return started[-1]

    yield make
    for service in started:
        service.close()


def test_identical_contexts_give_the_identical_tag(tmp_path: Path) -> None:
    a, b = write_context(tmp_path / "a"), write_context(tmp_path / "b")
    assert context_hash(a) == context_hash(b)
    (b / "pkg" / "__pycache__").mkdir()
    (b / "pkg" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (b / "nbship-build.json").write_text("{}")
    (b / ".nbship" / "pip").mkdir(parents=True)
    (b / PIP_CA_BUNDLE).write_text("-----BEGIN CERTIFICATE-----")
    assert context_hash(a) == context_hash(b), "caches, the record and the CA bundle do not change the image"


def test_any_change_to_the_context_or_platform_changes_the_tag(tmp_path: Path) -> None:
    root = write_context(tmp_path / "a")
    before = context_hash(root)
    (root / "pkg" / "postprocessing.py").write_text("def postprocess(p):\n    return p  # changed\n")
    edited = context_hash(root)
    assert edited != before
    os.chmod(root / "pkg" / "postprocessing.py", 0o755)
    assert context_hash(root) != edited
    assert context_hash(root, "linux/arm64") != context_hash(root)


def test_tags_content_tag_first_then_extras_never_latest_alone() -> None:
    tags = image_tags("reg.local:5000/churn", "1.0", "f" * 64, ["latest", "reg.local:5000/other:v1", "latest"])
    assert tags == ("reg.local:5000/churn:1.0-ffffffffffff", "reg.local:5000/churn:latest", "reg.local:5000/other:v1")
    with pytest.raises(ImageError, match="not a valid Docker tag"):
        image_tags("churn", "1.0", "f" * 64, ["bad tag!"])


def test_build_then_reuse_the_existing_image(tmp_path: Path) -> None:
    root = write_context(tmp_path / "ctx")
    builder = FakeBuilder()
    lines: list[str] = []
    first = build_image(
        builder,
        root,
        repository="churn",
        version="1.0",
        prepare=lambda: {"PIP_INDEX_URL": "https://i"},
        labels={"org.opencontainers.image.created": "2026-01-01"},
        on_line=lines.append,
    )
    assert not first.reused and lines == ["Step 1/1 : FROM python:3.11-slim"]
    assert builder.builds[0]["tag"] == first.tags[0] == f"churn:1.0-{context_hash(root)[:12]}"
    assert builder.builds[0]["buildargs"] == {"PIP_INDEX_URL": "https://i"}
    assert builder.builds[0]["labels"] == {"org.opencontainers.image.created": "2026-01-01"}
    again = build_image(
        builder, root, repository="churn", version="1.0", extra_tags=["stable"], prepare=lambda: pytest.fail("read")
    )
    assert again.reused and again.image_id == first.image_id and len(builder.builds) == 1
    assert builder.images["churn:stable"] == first.image_id
    (root / "pkg" / "postprocessing.py").write_text("def postprocess(p):\n    return 1\n")
    assert not build_image(builder, root, repository="churn", version="1.0").reused


def test_pip_settings_become_build_args_and_the_ca_file(tmp_path: Path) -> None:
    settings = BuilderPipSettings(
        index_url="https://user:pw@idx.example/simple",
        extra_index_urls=("https://a/simple", "https://b/simple"),
        trusted_hosts=(),
        cert=None,
        dropped=(),
    )
    assert pip_build_args(settings) == {
        "PIP_INDEX_URL": "https://user:pw@idx.example/simple",
        "PIP_EXTRA_INDEX_URL": "https://a/simple https://b/simple",
    }
    ca = tmp_path / "ca.crt"
    ca.write_text("CERT")
    root = write_context(tmp_path / "ctx")
    hand_over_pip_ca(root, ca)
    assert (root / PIP_CA_BUNDLE).read_text() == "CERT"
    hand_over_pip_ca(root, None)
    assert not (root / PIP_CA_BUNDLE).exists(), "a stale CA bundle from an earlier build is removed"
    with pytest.raises(ImageError, match="CA bundle"):
        hand_over_pip_ca(root, tmp_path / "missing.crt")


def test_smoke_passes_when_the_answer_matches_within_tolerance(
    tmp_path: Path, service_factory: Callable[..., FakeService]
) -> None:
    service = service_factory({"label": "ok", "y": [1.5 * (1 + 1e-9), 2.0]}, ready_after=2)
    builder = FakeBuilder(container=FakeContainer(service.url))
    result = smoke_test(builder, "img", write_context(tmp_path / "ctx"), limits=RunLimits(10**9, 2**29))
    assert result.passed and result.problem is None and result.uid == 10001
    assert result.load_seconds == 0.25 and result.ready_seconds is not None
    assert builder.runs == [{"image": "img", "port": 8080, "limits": RunLimits(10**9, 2**29)}]
    assert builder.container is not None and builder.container.removed


def test_smoke_fails_on_a_different_answer_with_the_log_tail(
    tmp_path: Path, service_factory: Callable[..., FakeService]
) -> None:
    service = service_factory({"label": "ok", "y": [1.6, 2.0]})
    builder = FakeBuilder(container=FakeContainer(service.url))
    result = smoke_test(builder, "img", write_context(tmp_path / "ctx"))
    assert not result.passed and "differs from the notebook's output (cell 9)" in (result.problem or "")
    assert result.differences == ("$.y[0]: expected 1.5, got 1.6",)
    assert "line two" in result.log_tail
    assert builder.container is not None and builder.container.removed


def test_smoke_fails_when_the_service_runs_as_root(tmp_path: Path, service_factory: Callable[..., FakeService]) -> None:
    service = service_factory(EXAMPLE["response"])
    builder = FakeBuilder(container=FakeContainer(service.url, uid=0))
    result = smoke_test(builder, "img", write_context(tmp_path / "ctx"))
    assert not result.passed and "runs as root" in (result.problem or "")


def test_smoke_fails_on_an_error_status(tmp_path: Path, service_factory: Callable[..., FakeService]) -> None:
    service = service_factory({"detail": "boom"}, status=500)
    result = smoke_test(FakeBuilder(container=FakeContainer(service.url)), "img", write_context(tmp_path / "c"))
    assert not result.passed and "POST /predict answered 500" in (result.problem or "")


def test_smoke_fails_when_version_does_not_report_the_lock(
    tmp_path: Path, service_factory: Callable[..., FakeService]
) -> None:
    service = service_factory(EXAMPLE["response"], version={"name": "churn", "version": "1.0", "lock_sha256": None})
    result = smoke_test(FakeBuilder(container=FakeContainer(service.url)), "img", write_context(tmp_path / "c"))
    assert not result.passed
    assert result.problem == f"GET /version does not describe this build: lock_sha256 is None, expected {LOCK_SHA256!r}"


def test_smoke_fails_when_the_container_exits_before_ready(tmp_path: Path) -> None:
    container = FakeContainer("http://127.0.0.1:9", alive=False, log="Traceback: load cell 5 failed\n")
    result = smoke_test(FakeBuilder(container=container), "img", write_context(tmp_path / "ctx"), ready_timeout=5)
    assert not result.passed and "exited before it was ready" in (result.problem or "")
    assert "load cell 5 failed" in result.log_tail and container.removed


def test_push_reports_one_digest_for_all_tags() -> None:
    progress: list[PushProgress] = []
    digest = push_image(FakeBuilder(), ["r/a:1", "r/a:2"], progress.append)
    assert digest == "sha256:" + "d" * 64 and len(progress) == 2
    with pytest.raises(ImageError, match="different digests"):
        push_image(FakeBuilder(digests={"r/a:2": "sha256:e"}), ["r/a:1", "r/a:2"], progress.append)


def test_build_record_has_what_later_steps_read(tmp_path: Path) -> None:
    smoke = SmokeResult(True, uid=10001, ready_seconds=1.5, load_seconds=0.25, seconds=2.0)
    record = BuildRecord(
        image=ImageRef.parse("reg:5000/churn:1.0-abc"),
        tags=("reg:5000/churn:1.0-abc",),
        image_id="sha256:1",
        context_hash="abc",
        reused=False,
        notebook_sha256="n" * 64,
        lock_sha256="l" * 64,
        base_image="python:3.11-slim",
        platform=None,
        image_bytes=200,
        base_image_bytes=150,
        durations={"build": 12.3456},
        smoke=smoke,
        digest="sha256:d",
        pushed=("reg:5000/churn:1.0-abc",),
    )
    path = tmp_path / "nbship-build.json"
    write_build_record(path, record)
    document = json.loads(path.read_text())
    assert document["image_by_digest"] == "reg:5000/churn@sha256:d"
    assert document["sizes"] == {"image_bytes": 200, "base_image_bytes": 150}
    assert document["durations"] == {"build": 12.346} and document["model_load_seconds"] == 0.25
    assert document["smoke"]["passed"] is True and document["notebook_sha256"] == "n" * 64
    assert not list(tmp_path.glob("*.part"))


def test_run_limits_from_kubernetes_quantities() -> None:
    assert run_limits("250m", "512Mi") == RunLimits(250_000_000, 512 * 2**20)
    assert run_limits("2", "1G") == RunLimits(2_000_000_000, 10**9)
    with pytest.raises(ConfigError, match="resources.limits.memory"):
        run_limits("1", "12Q")


def test_no_engine_is_an_environment_error_with_the_serve_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    from nbship.image.docker_engine import connect

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(EnvironmentMissingError) as raised:
        connect()
    assert raised.value.exit_code == ExitCode.ENVIRONMENT
    assert "no Docker engine reachable at unix:///nonexistent/docker.sock" in raised.value.message
    assert "nbship serve" in (raised.value.hint or "")


class FakeAPI:
    """The low-level docker API as the adapter uses it: streams of decoded events."""

    def __init__(self, build: list[dict[str, Any]] = [], push: list[dict[str, Any]] = []) -> None:  # noqa: B006
        self.build_events, self.push_events = build, push

    def build(self, **options: Any) -> Iterator[dict[str, Any]]:
        return iter(self.build_events)

    def push(self, repository: str, **options: Any) -> Iterator[dict[str, Any]]:
        return iter(self.push_events)


@dataclass
class FakeClient:
    api: FakeAPI


DOCKERFILE = """# comment
FROM python:3.11-slim AS builder
ARG PIP_INDEX_URL
# a comment inside the continued RUN
RUN python3 -m venv /opt/venv \\
 && /opt/venv/bin/python -m pip install -r /tmp/build/requirements.lock
FROM python:3.11-slim
"""


def test_instruction_lines_follow_continuations_and_skip_comments() -> None:
    from nbship.image.docker_engine import instruction_lines

    lines = instruction_lines(DOCKERFILE)
    assert [n for n, _ in lines] == [2, 3, 5, 7]
    assert lines[2][1].startswith("RUN python3 -m venv /opt/venv && /opt/venv/bin/python -m pip install")


def test_a_failing_step_names_its_dockerfile_line_and_output_tail(tmp_path: Path) -> None:
    from nbship.image.docker_engine import DockerBuilder

    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    events = [
        {"stream": "Step 1/4 : FROM python:3.11-slim AS builder\n"},
        {"stream": " ---> 123\n"},
        {"stream": "Step 3/4 : RUN python3 -m venv /opt/venv  && ...\n"},
        {"stream": "ERROR: Could not find a version that satisfies the requirement nbfx==9\n"},
        {"error": "The command '/bin/sh -c python3 -m venv' returned a non-zero code: 1"},
    ]
    builder = DockerBuilder(FakeClient(FakeAPI(build=events)))  # type: ignore[arg-type]
    seen: list[str] = []
    with pytest.raises(ImageError) as raised:
        builder.build(tmp_path, "t:1", buildargs={}, labels={}, platform=None, on_line=seen.append)
    message = raised.value.message
    assert f"{tmp_path / 'Dockerfile'}, line 5: RUN python3 -m venv /opt/venv" in message
    assert "returned a non-zero code: 1" in message and "satisfies the requirement nbfx==9" in message
    assert raised.value.exit_code == ExitCode.IMAGE and seen[0].startswith("Step 1/4")


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        ("unauthorized: authentication required", "docker login 127.0.0.1:5000"),
        ("Get https://127.0.0.1:5000/v2/: dial tcp 127.0.0.1:5000: connect: connection refused", "reachable"),
    ],
)
def test_push_failures_are_image_errors_with_a_hint(error: str, hint: str) -> None:
    from nbship.image.docker_engine import DockerBuilder

    events = [{"status": "The push refers to repository [127.0.0.1:5000/churn]"}, {"error": error}]
    builder = DockerBuilder(FakeClient(FakeAPI(push=events)))  # type: ignore[arg-type]
    with pytest.raises(ImageError, match="push of 127.0.0.1:5000/churn:1 failed") as raised:
        builder.push("127.0.0.1:5000/churn:1", lambda p: None)
    assert hint in (raised.value.hint or "")


def test_push_reads_the_digest_and_reports_layer_progress() -> None:
    from nbship.image.docker_engine import DockerBuilder

    events = [
        {"status": "Pushing", "id": "a1", "progressDetail": {"current": 5, "total": 10}},
        {"status": "Pushed", "id": "a1", "progressDetail": {}},
        {"status": "1: digest: sha256:abc size: 1"},
        {"aux": {"Tag": "1", "Digest": "sha256:abc", "Size": 1}},
    ]
    progress: list[PushProgress] = []
    builder = DockerBuilder(FakeClient(FakeAPI(push=events)))  # type: ignore[arg-type]
    assert builder.push("reg:5000/churn:1", progress.append) == "sha256:abc"
    assert progress == [PushProgress("a1", "Pushing", 5, 10), PushProgress("a1", "Pushed", None, None)]


def test_build_context_records_the_run_and_hands_over_pip(
    tmp_path: Path, service_factory: Callable[..., FakeService]
) -> None:
    from nbship.image.build import BuildOptions, BuildProgress, build_context

    root = write_context(tmp_path / "ctx")
    ca = tmp_path / "ca.crt"
    ca.write_text("CERT")
    service = service_factory(EXAMPLE["response"])
    builder = FakeBuilder(container=FakeContainer(service.url), images={"python:3.11-slim": "sha256:base"})
    pip = BuilderPipSettings(None, ("https://idx/simple",), ("idx",), ca, ("find-links /opt/wheels: local",))
    stages: list[str] = []
    record = build_context(
        builder,
        root,
        BuildOptions(repository="reg/churn", push=True),
        BuildProgress(stage=stages.append),
        pip=lambda: pip,
    )
    assert builder.builds[0]["buildargs"] == {"PIP_EXTRA_INDEX_URL": "https://idx/simple", "PIP_TRUSTED_HOST": "idx"}
    assert (root / PIP_CA_BUNDLE).read_text() == "CERT"
    assert any("find-links /opt/wheels" in s for s in stages)
    document = record.as_json()
    assert document["base_image"] == "python:3.11-slim" and document["sizes"]["base_image_bytes"] == 1000
    assert document["digest"] == "sha256:" + "d" * 64 and document["pushed"] == [str(record.image)]
    assert document["smoke"]["passed"] and set(document["durations"]) == {"build", "smoke", "push"}


def test_build_context_smoke_failure_keeps_the_image_and_says_so(
    tmp_path: Path, service_factory: Callable[..., FakeService]
) -> None:
    from nbship.image.build import BuildOptions, build_context

    service = service_factory({"label": "no", "y": [1.5, 2.0]})
    builder = FakeBuilder(container=FakeContainer(service.url))
    with pytest.raises(ImageError) as raised:
        build_context(builder, write_context(tmp_path / "ctx"), BuildOptions(repository="reg/churn", push=True))
    assert "$.label: expected 'ok', got 'no'" in raised.value.message and "line two" in raised.value.message
    assert "kept for debugging" in (raised.value.hint or "") and raised.value.exit_code == ExitCode.IMAGE
    assert len(builder.images) == 1, "the image stays; nothing was pushed"


def test_build_context_refuses_an_incomplete_context(tmp_path: Path) -> None:
    from nbship.image.build import BuildOptions, build_context

    root = write_context(tmp_path / "ctx")
    (root / "requirements.lock").unlink()
    with pytest.raises(ImageError, match="missing requirements.lock"):
        build_context(FakeBuilder(), root, BuildOptions())


def test_cli_without_an_engine_exits_3_with_the_serve_hint(
    tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    code, out, err = run_cli("build", str(write_context(tmp_path / "ctx")), "--record", str(tmp_path / "r.json"))
    assert code == 3 and out == ""
    assert "error: no Docker engine reachable" in err and "nbship serve" in err
    assert not (tmp_path / "r.json").exists()


def test_the_smoke_test_gets_s3_and_hf_weights_from_this_machine_never_its_credentials(
    tmp_path: Path, service_factory: Callable[..., FakeService], monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from nbship.image.build import BuildOptions, build_context

    root = write_context(tmp_path / "ctx")
    manifest = json.loads((root / "nbship.json").read_text())
    weights, other = b"w" * 1000, b"o" * 10
    entries = [
        {"path": "weights/enc.bin", "uri": "s3://models/enc.bin", "sha256": hashlib.sha256(weights).hexdigest()},
        {"path": "weights/vocab.txt", "uri": "https://x/vocab.txt", "sha256": hashlib.sha256(other).hexdigest()},
    ]
    (root / "nbship.json").write_text(json.dumps({**manifest, "remote_artifacts": entries}))
    notebook_dir = tmp_path / "project"
    (notebook_dir / "weights").mkdir(parents=True)
    (notebook_dir / "weights" / "enc.bin").write_bytes(weights)  # the local copy beside the notebook
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "never-in-a-container")
    builder = FakeBuilder(container=FakeContainer(service_factory(EXAMPLE["response"]).url))
    build_context(builder, root, BuildOptions(repository="reg/churn"),
                  pip=lambda: BuilderPipSettings(None, (), (), None, ()), source_dir=notebook_dir)
    # the s3:// file is mounted where the init container would put it; the https:// one downloads in the container
    assert builder.seeds == [{"/app/weights": {"enc.bin": weights}}]
    assert builder.environments == [{}]
