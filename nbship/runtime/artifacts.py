"""Remote artifacts: downloaded with retries, resumed, verified by sha256 before any load cell runs.

The same code runs in three places: the pod's init container (``python -m nbship_runtime.download``), the
service's start-up (``load_pipeline``: a file already present with its hash is not fetched again), and nbship's
local loop (into the user's cache). Per file:

- a file already in place with the declared sha256 is kept; otherwise it is downloaded to ``<name>.part``;
- a transient failure (dropped connection, timeout, 5xx) is retried with exponential backoff, resuming the
  partial file with a range request; a partial file left by an earlier, killed attempt is resumed too;
- refused credentials, a missing object and a sha256 mismatch fail at once, naming the cause;
- a progress line every 10 s or 100 MB, whichever comes first; a summary line with the seconds it took;
- an exclusive lock on the file while it is fetched, so pods sharing a cache volume download it once.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .manifest import RemoteArtifactEntry
from .sources import CHUNK, Opener, RefusedError, SourceError, TransientError, opener_for

log = logging.getLogger("nbship.download")
CREDENTIALS_DIR = "/var/run/secrets/nbship"  # each referenced Secret is mounted in a folder of its name
PROGRESS_SECONDS = 10.0
PROGRESS_BYTES = 100 * 1000 * 1000
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ArtifactError(Exception):
    """A remote artifact could not be downloaded, or its sha256 does not match."""


@dataclass(frozen=True)
class Fetched:
    path: str
    size: int
    seconds: float
    downloaded: bool  # False when the file was already there with its hash


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_credentials(directory: Path) -> dict[str, str]:
    """A mounted Secret as environment variables: each file named like one (AWS_ACCESS_KEY_ID, HF_TOKEN)."""
    if not directory.is_dir():
        return {}
    return {
        p.name: p.read_text(encoding="utf-8").strip()
        for p in sorted(directory.iterdir())
        if _ENV_NAME.match(p.name) and p.is_file()
    }


class Progress:
    """Logs how far a download is, at most every ``seconds`` or ``every`` bytes."""

    def __init__(self, label: str, total: int | None, done: int, *, clock: Callable[[], float] = time.monotonic,
                 seconds: float = PROGRESS_SECONDS, every: int = PROGRESS_BYTES) -> None:
        self.label, self.total, self.clock, self.seconds, self.every = label, total, clock, seconds, every
        self.started = self.last_time = clock()
        self.first = self.last_bytes = done

    def update(self, done: int) -> None:
        now = self.clock()
        if now - self.last_time < self.seconds and done - self.last_bytes < self.every:
            return
        rate = (done - self.first) / max(now - self.started, 1e-9)
        share = f" of {self.total / 1e6:.1f} MB ({100 * done / self.total:.0f}%)" if self.total else ""
        log.info(f"{self.label}: {done / 1e6:.1f} MB{share}, {rate / 1e6:.1f} MB/s",
                 extra={"fields": {"event": "download-progress", "path": self.label, "bytes": done,
                                   "total_bytes": self.total, "bytes_per_second": round(rate)}})
        self.last_time, self.last_bytes = now, done


@contextmanager
def _exclusive(target: Path) -> Iterator[None]:
    """Hold a lock beside ``target`` (pods sharing a volume wait for the one downloading it)."""
    try:
        import fcntl
    except ImportError:  # not on POSIX: no other process shares the user's cache in practice
        yield
        return
    with open(target.with_name(f".{target.name}.lock"), "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch_file(
    target: Path, uri: str, sha256: str, *, opener: Callable[[], Opener], label: str | None = None,
    attempts: int = 5, backoff: float = 1.0, sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Fetched:
    """Make ``target`` hold the file at ``uri`` with ``sha256``; ``opener()`` makes the scheme's client.

    Raises:
        ArtifactError: refused credentials, a missing object, a sha256 mismatch, or ``attempts`` transient failures.
    """
    label = label or target.name
    started = clock()
    if target.is_file() and file_sha256(target) == sha256:
        return Fetched(label, target.stat().st_size, 0.0, False)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(target):
        if target.is_file() and file_sha256(target) == sha256:  # another pod finished it while we waited
            return Fetched(label, target.stat().st_size, clock() - started, False)
        part = target.with_name(target.name + ".part")
        try:
            open_at = opener()
        except SourceError as e:
            raise ArtifactError(str(e)) from None
        actual, resumed = _download(part, uri, open_at, label, attempts, backoff, sleep, clock)
        if actual != sha256 and resumed:
            # the partial file may be left from another version of the file: one clean attempt before failing
            log.warning(f"{label}: sha256 differs after resuming a partial file; downloading it again from the start",
                        extra={"fields": {"event": "download-restart", "path": label}})
            part.unlink()
            actual, _ = _download(part, uri, open_at, label, attempts, backoff, sleep, clock)
        if actual != sha256:
            part.unlink(missing_ok=True)
            raise ArtifactError(f"{uri}: sha256 is {actual}, expected {sha256}; refusing to load it "
                                "(the file at the source changed, or nbship.yaml declares the wrong hash)")
        os.replace(part, target)
    seconds = clock() - started
    size = target.stat().st_size
    log.info(f"{label}: verified, {size / 1e6:.1f} MB in {seconds:.1f} s",
             extra={"fields": {"event": "download-done", "path": label, "bytes": size, "seconds": round(seconds, 3)}})
    return Fetched(label, size, seconds, True)


def _hash_prefix(f: Any, length: int, digest: Any) -> None:
    f.seek(0)
    while length > 0 and (chunk := f.read(min(CHUNK, length))):
        digest.update(chunk)
        length -= len(chunk)


def _download(
    part: Path, uri: str, open_at: Opener, label: str, attempts: int, backoff: float,
    sleep: Callable[[float], None], clock: Callable[[], float],
) -> tuple[str, bool]:
    """Fill ``part`` from ``uri``, resuming what is there; the whole file's sha256, and whether it resumed."""
    resumed = False
    carried: Any = None  # the digest of what an earlier attempt of this run wrote: no need to read it again
    for attempt in range(1, attempts + 1):
        offset = part.stat().st_size if part.exists() else 0
        try:
            body = open_at(offset)
            try:
                digest = hashlib.sha256()
                if body.start:
                    resumed = True
                    if carried is not None and carried[0] == body.start:
                        digest = carried[1].copy()
                    else:  # a partial file left by an earlier run: hashed again, then written after
                        with open(part, "rb") as earlier:
                            _hash_prefix(earlier, body.start, digest)
                    with open(part, "r+b") as cut:
                        cut.truncate(body.start)
                    log.info(f"{label}: resuming at {body.start / 1e6:.1f} MB",
                             extra={"fields": {"event": "download-resume", "path": label, "bytes": body.start}})
                else:
                    log.info(f"{label}: downloading {uri}", extra={"fields": {
                        "event": "download-start", "path": label, "uri": uri, "total_bytes": body.total}})
                done = body.start
                progress = Progress(label, body.total, done, clock=clock)
                with open(part, "ab" if body.start else "wb") as out:
                    try:
                        while chunk := body.stream.read(CHUNK):
                            out.write(chunk)
                            digest.update(chunk)
                            done += len(chunk)
                            progress.update(done)
                    finally:
                        carried = (done, digest)  # every byte written is in the digest, and no other
                if body.total is not None and done < body.total:
                    raise TransientError(f"{uri}: the connection closed at {done} of {body.total} bytes")
                return digest.hexdigest(), resumed
            finally:
                body.stream.close()
        except RefusedError as e:
            raise ArtifactError(f"{e}; check the credentials Secret named in nbship.yaml "
                                "(or, locally, your environment and profile)") from None
        except SourceError as e:
            raise ArtifactError(str(e)) from None
        except (TransientError, OSError, http.client.HTTPException) as e:
            if attempt == attempts:
                raise ArtifactError(f"{uri}: download failed after {attempts} attempts: {e}") from None
            delay = min(backoff * 2 ** (attempt - 1), 60.0)
            kept = part.stat().st_size if part.exists() else 0
            log.warning(f"{label}: attempt {attempt} of {attempts} failed ({e}); retrying in {delay:g} s, "
                        f"keeping {kept / 1e6:.1f} MB", extra={"fields": {
                            "event": "download-retry", "path": label, "attempt": attempt, "error": str(e),
                            "delay_seconds": delay, "bytes": kept}})
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def fetch_remote_artifacts(
    root: Path, artifacts: Sequence[RemoteArtifactEntry], *, attempts: int = 5, backoff: float = 1.0,
    credentials_dir: Path | None = None, environ: Mapping[str, str] | None = None,
) -> list[Fetched]:
    """Make each artifact present at ``root / path`` with its declared sha256 (the manifest's entries).

    An entry's ``credentials`` names a Secret, mounted as a folder under ``credentials_dir`` (by default
    ``$NBSHIP_CREDENTIALS_DIR`` or /var/run/secrets/nbship); its keys become the client's environment for that
    download only. Without the folder (the main container, ``nbship serve``) the process environment is used.

    Raises:
        ArtifactError: as ``fetch_file``.
    """
    env = os.environ if environ is None else environ
    base = credentials_dir or Path(env.get("NBSHIP_CREDENTIALS_DIR", CREDENTIALS_DIR))
    started = time.monotonic()
    fetched = []
    for artifact in artifacts:
        path, uri, secret = artifact.path, artifact.uri, artifact.credentials

        def opener(path: str = path, uri: str = uri, secret: Any = secret) -> Opener:
            credentials = read_credentials(base / str(secret)) if secret else {}
            if credentials:  # the names only: a value never reaches a log
                log.info(f"{path}: credentials from Secret {secret}: {', '.join(sorted(credentials))}",
                         extra={"fields": {"event": "download-credentials", "path": path,
                                           "secret": secret, "keys": sorted(credentials)}})
            return opener_for(uri, credentials)

        fetched.append(fetch_file(root / path, uri, artifact.sha256, opener=opener, label=path,
                                  attempts=attempts, backoff=backoff))
    if fetched:  # the time counts verification too: the model container checks every file before it loads
        seconds = time.monotonic() - started
        size = sum(f.size for f in fetched if f.downloaded)
        fresh = sum(1 for f in fetched if f.downloaded)
        log.info(f"remote artifacts ready: {fresh} of {len(fetched)} file(s) downloaded ({size / 1e6:.1f} MB), "
                 f"{seconds:.1f} s", extra={"fields": {"event": "downloaded", "files": len(fetched),
                                                       "downloaded_files": fresh, "bytes": size,
                                                       "download_seconds": round(seconds, 3)}})
    return fetched
