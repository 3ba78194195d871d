"""Remote artifacts: downloaded at start-up with retries, verified by sha256 before any load cell runs."""

from __future__ import annotations

import hashlib
import os
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class ArtifactError(Exception):
    """A remote artifact could not be downloaded, or its sha256 does not match."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_remote_artifacts(
    root: Path, artifacts: Sequence[dict[str, Any]], *, attempts: int = 4, backoff: float = 0.5
) -> None:
    """Make each artifact present at ``root / path`` with its declared sha256.

    Raises:
        ArtifactError: after ``attempts`` failed downloads, or on a hash mismatch.
    """
    for artifact in artifacts:
        target = root / artifact["path"]
        if target.is_file() and file_sha256(target) == artifact["sha256"]:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        for attempt in range(1, attempts + 1):
            try:
                with urllib.request.urlopen(artifact["uri"], timeout=30) as response, open(partial, "wb") as out:
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                break
            except OSError as e:
                if attempt == attempts:
                    raise ArtifactError(f"{artifact['uri']}: download failed after {attempts} attempts: {e}") from e
                time.sleep(backoff * 2 ** (attempt - 1))
        actual = file_sha256(partial)
        if actual != artifact["sha256"]:
            partial.unlink()
            raise ArtifactError(
                f"{artifact['uri']}: sha256 is {actual}, expected {artifact['sha256']}; refusing to load it"
            )
        os.replace(partial, target)
