"""s3:// downloads against a real S3 API on 127.0.0.1 (moto in server mode): a good download with each way of
giving credentials, a wrong hash, a dropped connection then success, and refused credentials."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbship.runtime.artifacts import ArtifactError, fetch_remote_artifacts
from nbship.runtime.manifest import RemoteArtifactEntry
from tests.fixtures.s3server import S3Server, cutting_proxy, moto_command, moto_server

pytestmark = [pytest.mark.slow]

DATA = hashlib.sha256(b"seed").digest() * 40000  # 1.28 MB
SHA = hashlib.sha256(DATA).hexdigest()
URI = "s3://models/encoder/v3/model.bin"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    if moto_command() is None:
        pytest.fail("moto_server is not installed: pip install 'moto[server]' (a dev dependency)")
    with moto_server() as server:
        server.put("models", "encoder/v3/model.bin", DATA)
        yield server


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Nothing from the machine running the tests: no profile, no variables."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


@pytest.fixture
def events() -> Iterator[list[dict[str, object]]]:
    seen: list[dict[str, object]] = []

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append({"message": record.getMessage(), **getattr(record, "fields", {})})

    handler = Handler()
    logger = logging.getLogger("nbship.download")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield seen
    logger.removeHandler(handler)


def entry(sha: str = SHA, credentials: str | None = None) -> list[RemoteArtifactEntry]:
    return [RemoteArtifactEntry("weights/model.bin", URI, sha, credentials)]


def test_a_good_download_with_the_aws_variables(s3: S3Server, aws_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key, value in s3.admin_env().items():
        aws_env.setenv(key, value)
    aws_env.delenv("AWS_DEFAULT_REGION")
    aws_env.setenv("AWS_REGION", "eu-west-1")  # the other SDKs' variable is read too
    fetched = fetch_remote_artifacts(tmp_path, entry())
    assert (tmp_path / "weights" / "model.bin").read_bytes() == DATA and fetched[0].downloaded


def test_a_good_download_with_a_profile_as_boto3_reads_it(
    s3: S3Server, aws_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "config").write_text(f"[profile store]\nregion = us-east-1\nendpoint_url = {s3.endpoint}\n"
                                     "s3 =\n  addressing_style = path\n")
    (tmp_path / "credentials").write_text("[store]\naws_access_key_id = admin\naws_secret_access_key = admin\n")
    aws_env.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    aws_env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    aws_env.setenv("AWS_PROFILE", "store")
    fetch_remote_artifacts(tmp_path / "app", entry())
    assert (tmp_path / "app" / "weights" / "model.bin").read_bytes() == DATA


def test_a_wrong_hash_fails_at_once_and_keeps_nothing(
    s3: S3Server, aws_env: pytest.MonkeyPatch, tmp_path: Path, events: list[dict[str, object]]
) -> None:
    for key, value in s3.admin_env().items():
        aws_env.setenv(key, value)
    with pytest.raises(ArtifactError, match=f"{URI}: sha256 is {SHA}, expected {'e' * 64}; refusing to load it"):
        fetch_remote_artifacts(tmp_path, entry("e" * 64))
    assert not list((tmp_path / "weights").glob("model.bin*"))  # no .part either
    assert not [e for e in events if e.get("event") == "download-retry"]


def test_a_dropped_connection_then_success_resumes_where_it_stopped(
    s3: S3Server, aws_env: pytest.MonkeyPatch, tmp_path: Path, events: list[dict[str, object]]
) -> None:
    with cutting_proxy(s3.port, after=300_000) as proxy:
        for key, value in {**s3.admin_env(), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}"}.items():
            aws_env.setenv(key, value)
        fetch_remote_artifacts(tmp_path, entry(), backoff=0.1)
    assert (tmp_path / "weights" / "model.bin").read_bytes() == DATA
    kinds = [e.get("event") for e in events]
    assert kinds.index("download-start") < kinds.index("download-retry") < kinds.index("download-resume")
    resumed_at = next(e["bytes"] for e in events if e.get("event") == "download-resume")
    assert 0 < int(resumed_at) < len(DATA)  # the second request asked only for the rest
    assert proxy.connections == 2


def test_refused_credentials_fail_at_once_naming_the_cause(aws_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with moto_server() as server:  # a store of its own: authentication stays on once switched on
        server.put("models", "encoder/v3/model.bin", DATA)
        key_id, secret = server.reader_keys()
        aws_env.setenv("AWS_ENDPOINT_URL", server.endpoint)
        secrets = tmp_path / "secrets"
        (secrets / "wrong").mkdir(parents=True)
        (secrets / "wrong" / "AWS_ACCESS_KEY_ID").write_text(key_id)
        (secrets / "wrong" / "AWS_SECRET_ACCESS_KEY").write_text("not-the-secret")
        with pytest.raises(ArtifactError, match=r"refused the credentials \(SignatureDoesNotMatch\)"):
            fetch_remote_artifacts(tmp_path / "a", entry(credentials="wrong"), credentials_dir=secrets)
        (secrets / "unknown").mkdir()
        (secrets / "unknown" / "AWS_ACCESS_KEY_ID").write_text("AKIAUNKNOWN000000000")
        (secrets / "unknown" / "AWS_SECRET_ACCESS_KEY").write_text("x")
        with pytest.raises(ArtifactError, match=r"refused the credentials \(InvalidAccessKeyId\)"):
            fetch_remote_artifacts(tmp_path / "b", entry(credentials="unknown"), credentials_dir=secrets)
        (secrets / "reader").mkdir()
        (secrets / "reader" / "AWS_ACCESS_KEY_ID").write_text(key_id)
        (secrets / "reader" / "AWS_SECRET_ACCESS_KEY").write_text(secret)
        fetch_remote_artifacts(tmp_path / "c", entry(credentials="reader"), credentials_dir=secrets)
        assert (tmp_path / "c" / "weights" / "model.bin").read_bytes() == DATA
