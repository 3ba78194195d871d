"""Where remote artifacts come from: one opener per URI scheme, each reading credentials its ecosystem's way.

- ``https://`` (and ``http://``, for stores inside a cluster): the standard library; a ``Range`` request resumes.
- ``s3://bucket/key``: boto3, so ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
  ``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION`` and profiles (``AWS_PROFILE``, ``~/.aws/config``) mean exactly
  what they mean to boto3; ``AWS_REGION`` (read by the other AWS SDKs) fills in when boto3 finds no region, and
  then us-east-1. S3-compatible stores (MinIO, Ceph, R2) are reached through ``AWS_ENDPOINT_URL``.
- ``hf://[datasets/|spaces/]org/repo/path@revision``: the hub's ``resolve`` endpoint on ``HF_ENDPOINT``, with the
  token ``huggingface_hub`` finds (``HF_TOKEN``, then the login cache). The token is sent to the hub only, never
  along a redirect to its file storage.

Each opener answers ``open(offset)`` with a ``Body`` that starts at ``offset`` when the server honoured the range,
or at 0 when it did not. Its errors are ``TransientError`` (worth another attempt) or ``RefusedError`` (credentials
refused: retrying cannot help) or ``SourceError`` (any other permanent failure, such as a missing object).
The client libraries are imported only when their scheme is used; they are in the image's lock only then.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

SCHEMES = ("https", "http", "s3", "hf")
# The client library each scheme needs in the image (and in the environment running ``nbship serve``).
SCHEME_REQUIREMENTS: Mapping[str, tuple[str, ...]] = {
    "s3": ("boto3>=1.28,<2",),  # 1.28 is the first to read AWS_ENDPOINT_URL
    "hf": ("huggingface_hub>=0.20,<3",),
}
SCHEME_MODULES: Mapping[str, str] = {"s3": "boto3", "hf": "huggingface_hub"}
_HF_REPO_TYPES = {"datasets": "dataset", "spaces": "space"}
CHUNK = 1 << 20


class SourceError(Exception):
    """A download failed for a reason another attempt cannot fix (a missing object, a bad URI)."""


class RefusedError(SourceError):
    """The server refused the credentials (or their absence)."""


class TransientError(Exception):
    """A download failed for a reason that may pass: a dropped connection, a timeout, a 5xx or 429."""


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Body:
    stream: Readable
    start: int  # the offset of the first byte of ``stream``: the requested one, or 0 when the range was ignored
    total: int | None  # the whole file's size, when the server said


class Opener(Protocol):
    def __call__(self, offset: int) -> Body: ...


def scheme_of(uri: str) -> str:
    return uri.partition("://")[0].lower() if "://" in uri else ""


def check_uri(uri: str) -> str:
    """The URI's scheme, once its form is known to be one nbship downloads.

    Raises:
        ValueError: an unknown scheme, or a form the scheme does not accept (said in words).
    """
    scheme = scheme_of(uri)
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme + '://' if scheme else 'in ' + repr(uri)}; "
                         "nbship downloads https://, http://, s3://bucket/key and hf://org/repo/path@revision")
    if scheme == "s3":
        s3_location(uri)
    elif scheme == "hf":
        hf_location(uri)
    return scheme


def s3_location(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise ValueError(f"{uri}: expected s3://bucket/key, naming one object")
    return bucket, key


def hf_location(uri: str) -> tuple[str, str, str, str]:
    """``(repo_type, repo_id, path, revision)`` of ``hf://[datasets/|spaces/]org/repo/path@revision``."""
    rest, at, revision = uri[len("hf://"):].rpartition("@")
    parts = rest.split("/")
    repo_type = "model"
    if parts and parts[0] in _HF_REPO_TYPES:
        repo_type = _HF_REPO_TYPES[parts.pop(0)]
    if not at or not revision or len(parts) < 3 or not all(parts):
        raise ValueError(f"{uri}: expected hf://org/repo/path/in/repo@revision (a pinned revision: a commit or tag)")
    return repo_type, "/".join(parts[:2]), "/".join(parts[2:]), revision


@contextmanager
def environment(overlay: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``overlay`` applied, restored afterwards: a client reads its credentials as usual."""
    saved = {k: os.environ.get(k) for k in overlay}
    os.environ.update(overlay)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def opener_for(uri: str, credentials: Mapping[str, str] | None = None, *, timeout: float = 30) -> Opener:
    """The opener of ``uri``; ``credentials`` (AWS_*, HF_TOKEN, …) are seen as environment variables by its client.

    Raises:
        SourceError: an unknown scheme, or the scheme's client library is not installed.
    """
    try:
        scheme = check_uri(uri)
    except ValueError as e:
        raise SourceError(str(e)) from None
    overlay = dict(credentials or {})
    if scheme == "s3":
        return _s3_opener(uri, overlay, timeout)
    if scheme == "hf":
        return _hf_opener(uri, overlay, timeout)
    return _http_opener(uri, {}, timeout)


def _import(scheme: str) -> Any:
    import importlib

    module = SCHEME_MODULES[scheme]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SourceError(f"{scheme}:// needs the {module} package, which is not installed here "
                          f"(pip install '{SCHEME_REQUIREMENTS[scheme][0]}')") from None


def _http_opener(url: str, headers: Mapping[str, str], timeout: float, shown: str | None = None) -> Opener:
    def open_at(offset: int) -> Body:
        request = urllib.request.Request(url)
        for key, value in headers.items():
            # unredirected: a redirect to another host (a CDN, signed storage URL) must not receive the token
            request.add_unredirected_header(key, value)
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        try:
            response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (scheme checked)
        except urllib.error.HTTPError as e:
            e.close()
            where = shown or url
            if e.code in (401, 403):
                raise RefusedError(f"{where}: the server refused the credentials (HTTP {e.code})") from None
            if e.code == 416:
                return Body(_Empty(), offset, offset)
            if e.code in (408, 425, 429) or e.code >= 500:
                raise TransientError(f"{where}: HTTP {e.code}") from None
            raise SourceError(f"{where}: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError) as e:
            raise TransientError(f"{shown or url}: {getattr(e, 'reason', e)}") from None
        length = response.headers.get("Content-Length")
        if response.status == 206:
            total = response.headers.get("Content-Range", "").rpartition("/")[2]
            return Body(response, offset, int(total) if total.isdigit() else None)
        return Body(response, 0, int(length) if length and length.isdigit() else None)

    return open_at


class _Empty:
    """What a 416 (the range starts at the end) reads as: nothing more."""

    def read(self, size: int = -1) -> bytes:
        return b""

    def close(self) -> None:
        pass


def _hf_opener(uri: str, overlay: dict[str, str], timeout: float) -> Opener:
    hub = _import("hf")
    repo_type, repo_id, path, revision = hf_location(uri)
    with environment(overlay):
        endpoint = os.environ.get("HF_ENDPOINT") or hub.constants.ENDPOINT
        token = os.environ.get("HF_TOKEN") or hub.get_token()
    url = hub.hf_hub_url(repo_id, path, repo_type=repo_type, revision=revision, endpoint=endpoint.rstrip("/"))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return _http_opener(url, headers, timeout, shown=uri)


_REFUSED_CODES = frozenset({
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
    "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem", "403", "401",
})


def _s3_opener(uri: str, overlay: dict[str, str], timeout: float) -> Opener:
    boto3 = _import("s3")
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    bucket, key = s3_location(uri)
    with environment(overlay):  # the client resolves credentials, region and endpoint when it is created
        try:
            session = boto3.session.Session()
            # boto3 reads AWS_DEFAULT_REGION and the profile's region; the other AWS SDKs read AWS_REGION, and an
            # S3-compatible store usually answers to us-east-1
            region = session.region_name or os.environ.get("AWS_REGION") or "us-east-1"
            client = session.client("s3", region_name=region, config=Config(
                connect_timeout=timeout, read_timeout=timeout, retries={"mode": "standard"}))
        except BotoCoreError as e:
            raise SourceError(f"{uri}: {e}") from None

    def open_at(offset: int) -> Body:
        extra = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            answer = client.get_object(Bucket=bucket, Key=key, **extra)
        except NoCredentialsError:
            raise RefusedError(f"{uri}: no AWS credentials found (AWS_ACCESS_KEY_ID / AWS_PROFILE)") from None
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code in _REFUSED_CODES:
                raise RefusedError(f"{uri}: the store refused the credentials ({code})") from None
            if code == "InvalidRange":
                return Body(_Empty(), offset, offset)
            if status >= 500 or status == 429 or code in ("SlowDown", "RequestTimeout", "InternalError"):
                raise TransientError(f"{uri}: {code or status}") from None
            raise SourceError(f"{uri}: {code or status} ({e.response.get('Error', {}).get('Message', '')})") from None
        except BotoCoreError as e:
            raise TransientError(f"{uri}: {e}") from None
        size = answer.get("ContentRange", "").rpartition("/")[2]
        start = offset if answer.get("ContentRange") else 0
        total = int(size) if size.isdigit() else answer.get("ContentLength")
        return Body(_S3Stream(answer["Body"], uri), start, total)

    return open_at


class _S3Stream:
    """botocore's streaming body with its read errors (a dropped connection) turned into ``TransientError``."""

    def __init__(self, body: Any, uri: str) -> None:
        self._body, self._uri = body, uri

    def read(self, size: int = -1) -> bytes:
        try:
            data: bytes = self._body.read(size)
        except Exception as e:  # botocore raises urllib3's and its own errors here, with no common base
            raise TransientError(f"{self._uri}: connection lost while reading ({type(e).__name__})") from None
        return data

    def close(self) -> None:
        self._body.close()
