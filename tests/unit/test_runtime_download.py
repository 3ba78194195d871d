"""The runtime's downloads against a real HTTP server on 127.0.0.1: https:// and hf:// (the hub's resolve endpoint)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from nbship.runtime.artifacts import ArtifactError, Progress, fetch_file, fetch_remote_artifacts, read_credentials
from nbship.runtime.manifest import RemoteArtifactEntry, manifest_text, read_manifest
from nbship.runtime.sources import check_uri, hf_location, opener_for
from tests.fixtures.fileserver import FileServer, file_server

DATA = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(DATA).hexdigest()


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append({"message": record.getMessage(), **getattr(record, "fields", {})})

    def of(self, event: str) -> list[dict[str, object]]:
        return [e for e in self.events if e.get("event") == event]


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("nbship.download")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture
def server() -> Iterator[FileServer]:
    with file_server(FileServer(files={"/m/model.bin": DATA})) as state:
        yield state


def fetch(server: FileServer, target: Path, sha: str = SHA, path: str = "/m/model.bin", **kw: object) -> object:
    uri = server.url + path
    return fetch_file(target, uri, sha, opener=lambda: opener_for(uri), sleep=lambda s: None, **kw)  # type: ignore[arg-type]


def test_a_good_download_lands_verified_and_a_second_run_fetches_nothing(
    server: FileServer, tmp_path: Path, lines: Lines
) -> None:
    target = tmp_path / "weights" / "model.bin"
    first = fetch(server, target)
    assert target.read_bytes() == DATA and first.downloaded  # type: ignore[attr-defined]
    assert not list(target.parent.glob("*.part"))
    assert [e["bytes"] for e in lines.of("download-done")] == [len(DATA)]
    again = fetch(server, target)
    assert not again.downloaded and len(server.seen) == 1  # type: ignore[attr-defined]


def test_a_dropped_connection_is_retried_and_resumes_the_partial_file(
    server: FileServer, tmp_path: Path, lines: Lines
) -> None:
    server.faults["/m/model.bin"] = ["drop:300000", "503"]
    target = tmp_path / "w" / "model.bin"
    fetch(server, target)
    assert target.read_bytes() == DATA
    assert [s.range for s in server.seen] == [None, "bytes=300000-", "bytes=300000-"]
    retries = lines.of("download-retry")
    assert len(retries) == 2 and "HTTP 503" in str(retries[1]["error"])
    assert [r["delay_seconds"] for r in retries] == [1.0, 2.0]  # exponential backoff
    assert lines.of("download-resume")[0]["bytes"] == 300000


def test_a_partial_file_left_by_a_killed_attempt_is_resumed(server: FileServer, tmp_path: Path) -> None:
    target = tmp_path / "w" / "model.bin"
    target.parent.mkdir()
    target.with_name("model.bin.part").write_bytes(DATA[:5000])
    fetch(server, target)
    assert target.read_bytes() == DATA and server.seen[0].range == "bytes=5000-"


def test_a_hash_mismatch_fails_at_once_and_leaves_nothing(server: FileServer, tmp_path: Path) -> None:
    target = tmp_path / "w" / "model.bin"
    with pytest.raises(ArtifactError, match=f"sha256 is {SHA}, expected {'0' * 64}; refusing to load it"):
        fetch(server, target, sha="0" * 64)
    assert len(server.seen) == 1 and not any(target.parent.glob("model.bin*"))


def test_a_stale_partial_file_is_downloaded_again_once_before_a_mismatch_counts(
    server: FileServer, tmp_path: Path, lines: Lines
) -> None:
    target = tmp_path / "w" / "model.bin"
    target.parent.mkdir()
    target.with_name("model.bin.part").write_bytes(b"x" * 5000)  # from another version of the file
    fetch(server, target)
    assert target.read_bytes() == DATA and [s.range for s in server.seen] == ["bytes=5000-", None]
    assert lines.of("download-restart")


def test_refused_credentials_and_a_missing_file_fail_fast(server: FileServer, tmp_path: Path) -> None:
    server.faults["/m/model.bin"] = ["403"]
    with pytest.raises(ArtifactError, match=r"refused the credentials \(HTTP 403\)"):
        fetch(server, tmp_path / "w" / "model.bin")
    with pytest.raises(ArtifactError, match="HTTP 404"):
        fetch(server, tmp_path / "w" / "other.bin", path="/m/missing.bin")
    assert len(server.seen) == 2  # neither was retried


def test_transient_failures_give_up_after_the_attempts_with_the_cause(server: FileServer, tmp_path: Path) -> None:
    server.faults["/m/model.bin"] = ["500", "500", "500"]
    with pytest.raises(ArtifactError, match="download failed after 3 attempts: .*HTTP 500"):
        fetch(server, tmp_path / "w" / "model.bin", attempts=3)


def test_progress_is_logged_every_ten_seconds_or_hundred_megabytes(lines: Lines) -> None:
    now = [0.0]
    progress = Progress("w/model.bin", 1_000_000_000, 0, clock=lambda: now[0])
    for done, at in ((50_000_000, 1.0), (100_000_000, 2.0), (120_000_000, 5.0), (130_000_000, 12.5)):
        now[0] = at
        progress.update(done)
    logged = lines.of("download-progress")
    assert [e["bytes"] for e in logged] == [100_000_000, 130_000_000]  # 100 MB at 2 s; 10 s later at 12.5 s
    assert "100.0 MB of 1000.0 MB (10%)" in str(logged[0]["message"])


def test_the_manifest_entries_download_with_a_summary_line(server: FileServer, tmp_path: Path, lines: Lines) -> None:
    entries = [RemoteArtifactEntry("weights/model.bin", server.url + "/m/model.bin", SHA)]
    fetched = fetch_remote_artifacts(tmp_path, entries, backoff=0)
    assert [f.path for f in fetched] == ["weights/model.bin"]
    summary = lines.of("downloaded")[0]
    assert summary["bytes"] == len(DATA) and isinstance(summary["download_seconds"], float)


def test_a_secret_folder_becomes_the_client_environment_by_key_name(tmp_path: Path) -> None:
    (tmp_path / "AWS_ACCESS_KEY_ID").write_text("AKIA\n")
    (tmp_path / "HF_TOKEN").write_text("hf_x")
    (tmp_path / "..data").mkdir()  # what a mounted Secret also holds
    assert read_credentials(tmp_path) == {"AWS_ACCESS_KEY_ID": "AKIA", "HF_TOKEN": "hf_x"}
    assert read_credentials(tmp_path / "absent") == {}


@pytest.mark.parametrize(("uri", "problem"), [
    ("gs://bucket/key", "unknown scheme gs://"),
    ("weights.bin", "unknown scheme in 'weights.bin'"),
    ("s3://bucket", "expected s3://bucket/key"),
    ("hf://org/repo/model.safetensors", "a pinned revision"),
    ("hf://org/repo@main", "expected hf://org/repo/path"),
])
def test_uris_nbship_cannot_download_are_refused_with_the_form_expected(uri: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_uri(uri)


def test_hf_uris_name_repo_type_repository_path_and_revision() -> None:
    assert hf_location("hf://org/enc/onnx/model.onnx@v1.2") == ("model", "org/enc", "onnx/model.onnx", "v1.2")
    assert hf_location("hf://datasets/org/vocab/v.txt@abc123") == ("dataset", "org/vocab", "v.txt", "abc123")


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FileServer]:
    state = FileServer(hub={("org/enc", "v1", "onnx/model.onnx"): DATA}, hub_token="hf_secret")
    with file_server(state):
        monkeypatch.setenv("HF_ENDPOINT", state.url)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")  # no cached login from the machine running the tests
        yield state


def test_hf_downloads_through_the_resolve_endpoint_and_keeps_the_token_from_storage(
    hub: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    uri = "hf://org/enc/onnx/model.onnx@v1"
    fetch_file(tmp_path / "w" / "model.onnx", uri, SHA, opener=lambda: opener_for(uri), sleep=lambda s: None)
    assert (tmp_path / "w" / "model.onnx").read_bytes() == DATA
    resolve, storage = hub.seen
    assert resolve.path == "/org/enc/resolve/v1/onnx/model.onnx" and resolve.authorization == "Bearer hf_secret"
    assert storage.path.startswith("/storage/") and storage.authorization is None


def test_hf_token_from_a_secret_folder_and_a_refused_token(hub: FileServer, tmp_path: Path, lines: Lines) -> None:
    secret = tmp_path / "secrets" / "hub"
    secret.mkdir(parents=True)
    (secret / "HF_TOKEN").write_text("hf_secret")
    entry = RemoteArtifactEntry("w/model.onnx", "hf://org/enc/onnx/model.onnx@v1", SHA, credentials="hub")
    fetch_remote_artifacts(tmp_path / "app", [entry], credentials_dir=tmp_path / "secrets")
    assert (tmp_path / "app" / "w" / "model.onnx").read_bytes() == DATA
    assert lines.of("download-credentials")[0]["keys"] == ["HF_TOKEN"]  # names, never values
    assert "hf_secret" not in json.dumps(lines.events)
    with pytest.raises(ArtifactError, match=r"refused the credentials \(HTTP 401\).*credentials Secret"):
        fetch_remote_artifacts(tmp_path / "other", [replace(entry, credentials=None)], credentials_dir=tmp_path)


def test_the_init_container_entry_point_exits_1_naming_the_cause(
    server: FileServer, tmp_path: Path, lines: Lines
) -> None:
    from nbship.runtime.download import main

    logger = logging.getLogger("nbship")
    before = list(logger.handlers)
    entry = RemoteArtifactEntry("weights/model.bin", server.url + "/m/model.bin", "1" * 64)
    service = read_manifest(Path(__file__).resolve().parents[1] / "fixtures" / "service")
    (tmp_path / "nbship.json").write_text(manifest_text(replace(service, remote_artifacts=(entry,))))
    try:
        assert main([str(tmp_path)]) == 1
        assert "expected " + "1" * 64 in str(lines.of("download-failed")[0]["error"])
        fixed = replace(service, remote_artifacts=(replace(entry, sha256=SHA),))
        (tmp_path / "nbship.json").write_text(manifest_text(fixed))
        assert main([str(tmp_path)]) == 0 and (tmp_path / "weights" / "model.bin").read_bytes() == DATA
        assert main([str(tmp_path)]) == 0 and lines.of("download-cached")[0]["paths"] == ["weights/model.bin"]
    finally:
        for handler in set(logger.handlers) - set(before):  # its JSON handler writes to this test's stderr
            logger.removeHandler(handler)


def test_pods_sharing_a_volume_download_a_file_once(server: FileServer, tmp_path: Path) -> None:
    import threading

    target = tmp_path / "shared" / "model.bin"
    results: list[object] = []
    barrier = threading.Barrier(3)

    def pod() -> None:
        barrier.wait()
        results.append(fetch(server, target))

    threads = [threading.Thread(target=pod) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert target.read_bytes() == DATA and len(server.seen) == 1
    assert sorted(bool(r.downloaded) for r in results) == [False, False, True]  # type: ignore[attr-defined]


def test_the_summary_counts_verifying_files_already_in_place(server: FileServer, tmp_path: Path, lines: Lines) -> None:
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "model.bin").write_bytes(DATA)
    entries = [RemoteArtifactEntry("weights/model.bin", server.url + "/m/model.bin", SHA)]
    fetch_remote_artifacts(tmp_path, entries)
    summary = lines.of("downloaded")[0]
    assert (summary["downloaded_files"], summary["bytes"], server.seen) == (0, 0, [])
    assert isinstance(summary["download_seconds"], float)


def test_the_init_container_writes_under_the_download_dir_it_is_given(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbship.runtime.download import main

    logger = logging.getLogger("nbship")
    before = list(logger.handlers)
    (tmp_path / "app").mkdir()
    entry = RemoteArtifactEntry("weights/model.bin", server.url + "/m/model.bin", SHA)
    service = read_manifest(Path(__file__).resolve().parents[1] / "fixtures" / "service")
    (tmp_path / "app" / "nbship.json").write_text(manifest_text(replace(service, remote_artifacts=(entry,))))
    monkeypatch.setenv("NBSHIP_DOWNLOAD_DIR", str(tmp_path / "volume" / "svc"))
    try:
        assert main([str(tmp_path / "app")]) == 0
    finally:
        for handler in set(logger.handlers) - set(before):
            logger.removeHandler(handler)
    assert (tmp_path / "volume" / "svc" / "weights" / "model.bin").read_bytes() == DATA
    assert not (tmp_path / "app" / "weights").exists()
