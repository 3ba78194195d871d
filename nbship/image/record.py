"""The build → deploy hand-off: ``nbship-build.json``, one typed, versioned record with one writer and one reader.

``nbship build`` writes it (``write_build_record``); ``nbship deploy`` reads it (``read_build_record``) for the
image to pin by digest and the model load time the smoke test measured. CI reads the same JSON. A record written
for another version of the format is refused with a message saying so, never half-read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbship.image.builder import RECORD_FILE
from nbship.image.ref import ImageRef
from nbship.image.smoke import SmokeResult
from nbship.runtime.manifest import check_version

__all__ = ["RECORD_FILE", "RECORD_VERSION", "BuildRecord", "RecordError", "read_build_record", "write_build_record"]

RECORD_VERSION = 1


class RecordError(ValueError):
    """The build record cannot be read: not JSON, another format version, or a field missing."""


@dataclass(frozen=True)
class BuildRecord:
    """``nbship-build.json``: what later steps (deploy) and CI read."""

    image: ImageRef  # the content tag
    tags: tuple[str, ...]
    image_id: str
    context_hash: str
    reused: bool
    notebook_sha256: str
    lock_sha256: str
    base_image: str
    platform: str | None
    image_bytes: int | None
    base_image_bytes: int | None
    durations: Mapping[str, float]
    smoke: SmokeResult | None = None
    digest: str | None = None
    pushed: tuple[str, ...] = ()
    git_commit: str | None = None  # of the build's source (the image's OCI revision label)

    @property
    def image_by_digest(self) -> ImageRef | None:
        return ImageRef(self.image.repository, digest=self.digest) if self.digest else None

    def as_json(self) -> dict[str, Any]:
        return {
            "record_version": RECORD_VERSION,
            "image": str(self.image),
            "tags": list(self.tags),
            "image_id": self.image_id,
            "context_hash": self.context_hash,
            "reused": self.reused,
            "digest": self.digest,
            "pushed": list(self.pushed),
            "image_by_digest": str(self.image_by_digest) if self.image_by_digest else None,
            "notebook_sha256": self.notebook_sha256,
            "lock_sha256": self.lock_sha256,
            "git_commit": self.git_commit,
            "base_image": self.base_image,
            "platform": self.platform,
            "sizes": {"image_bytes": self.image_bytes, "base_image_bytes": self.base_image_bytes},
            "durations": {k: round(v, 3) for k, v in sorted(self.durations.items())},
            "smoke": self.smoke.as_json() if self.smoke else None,
            "model_load_seconds": self.smoke.load_seconds if self.smoke else None,
            # downloads + load cells + warm-up: what nbship deploy sizes the startup probe from
            "model_startup_seconds": self.smoke.startup_seconds if self.smoke else None,
            "model_download_seconds": self.smoke.download_seconds if self.smoke else None,
        }


def write_build_record(path: Path, record: BuildRecord) -> None:
    """Write the record atomically (a reader never sees half a file)."""
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(record.as_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(partial, path)


def parse_build_record(document: Any, where: str = RECORD_FILE) -> BuildRecord:
    """The ``BuildRecord`` of a decoded ``nbship-build.json``.

    Raises:
        RecordError: not an object, another format version, or a field missing or of the wrong shape.
    """
    check_version(document, "record_version", RECORD_VERSION, where, RecordError,
                  "the only build record version this nbship reads")
    try:
        smoke = document["smoke"]
        sizes = document["sizes"]
        return BuildRecord(
            image=ImageRef.parse(str(document["image"])),
            tags=tuple(str(t) for t in document["tags"]),
            image_id=str(document["image_id"]),
            context_hash=str(document["context_hash"]),
            reused=bool(document["reused"]),
            notebook_sha256=str(document["notebook_sha256"]),
            lock_sha256=str(document["lock_sha256"]),
            base_image=str(document["base_image"]),
            platform=document["platform"],
            image_bytes=sizes["image_bytes"],
            base_image_bytes=sizes["base_image_bytes"],
            durations={str(k): float(v) for k, v in document["durations"].items()},
            smoke=_smoke(smoke) if smoke is not None else None,
            digest=document["digest"],
            pushed=tuple(str(t) for t in document["pushed"]),
            git_commit=document.get("git_commit"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise RecordError(f"{where}: not a valid build record ({type(e).__name__}: {e})") from None


def _smoke(document: dict[str, Any]) -> SmokeResult:
    return SmokeResult(
        passed=bool(document["passed"]),
        problem=document["problem"],
        differences=tuple(str(d) for d in document["differences"]),
        uid=document["uid"],
        ready_seconds=document["ready_seconds"],
        load_seconds=document["load_seconds"],
        seconds=float(document["seconds"]),
        warmup_seconds=document.get("warmup_seconds"),
        download_seconds=document.get("download_seconds"),
    )


def read_build_record(path: Path) -> BuildRecord:
    """The record at ``path``.

    Raises:
        OSError: it cannot be read.
        RecordError: as ``parse_build_record``, or it is not JSON.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise RecordError(f"{path}: not valid JSON ({e})") from None
    return parse_build_record(document, str(path))
