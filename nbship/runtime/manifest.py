"""The render → runtime hand-off: ``nbship.json``, one typed, versioned record with one writer and one reader.

``nbship.render`` builds a ``Manifest`` and writes it with ``manifest_text``; the runtime (``load_pipeline``,
the service, the self-test) and the image's smoke test read it with ``read_manifest``, which refuses a file
written for another version of the format. This module is part of the static runtime copied into every build
context, so it imports nothing outside the standard library.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_FILE = "nbship.json"
MANIFEST_VERSION = 1


class ManifestError(ValueError):
    """``nbship.json`` is missing a field, or was written for a version of the format this runtime cannot read."""


@dataclass(frozen=True)
class NotebookRef:
    file: str
    sha256: str


@dataclass(frozen=True)
class CellRange:
    """Where an exported cell's code sits in the generated package (tracebacks map back through it)."""

    cell: int
    role: str
    sha256: str
    module: str
    first_line: int
    last_line: int


@dataclass(frozen=True)
class ParameterEntry:
    name: str
    env: str  # NBSHIP_PARAM_<NAME>
    default: Any
    type: str


@dataclass(frozen=True)
class ArtifactEntry:
    path: str
    size: int
    sha256: str
    cell: int | None
    dir: bool = False


@dataclass(frozen=True)
class RemoteArtifactEntry:
    path: str
    uri: str
    sha256: str
    credentials: str | None = None  # a Secret mounted into the download's init container only


@dataclass(frozen=True)
class ExampleEntry:
    request: Any
    response: Any
    cell: int


@dataclass(frozen=True)
class ServiceEntry:
    port: int = 8080
    max_concurrency: int = 4
    queue_size: int | None = None  # a hard cap on waiting requests; None: admission by expected wait alone
    max_batch_size: int = 32
    max_body_bytes: int = 10 * 1024 * 1024
    max_batch_items: int = 256
    max_connections: int = 64
    body_timeout_seconds: float = 10.0
    log_payloads: bool = False
    payload_sample_rate: float = 1.0
    sensitive_fields: tuple[str, ...] = ()  # masked in logged payloads
    predict_timeout_seconds: float = 30.0
    shutdown_grace_seconds: float = 30.0


@dataclass(frozen=True)
class BatchingEntry:
    """Whether the service merges waiting requests into one ``predict`` call: proven by ``nbship check`` on the
    example (batches of ``sizes`` answered as each payload alone), and not turned off by ``server.batching``."""

    enabled: bool = False
    note: str = "not proven (no check-time run recorded)"  # why it is off, or what was proven
    sizes: tuple[int, ...] = ()


@dataclass(frozen=True)
class ImageEntry:
    """The image the build stage makes of this context: its repository and the limits its smoke test runs under."""

    repository: str
    cpu_limit: str | None = None
    memory_limit: str | None = None


@dataclass(frozen=True)
class Manifest:
    nbship_version: str
    name: str
    version: str
    package: str
    notebook: NotebookRef
    modules: tuple[str, ...]
    stages: dict[str, str | None]  # preprocess / predict / postprocess → module, None when absent
    image: ImageEntry
    cells: tuple[CellRange, ...] = ()
    parameters: tuple[ParameterEntry, ...] = ()
    settings: dict[str, str] = field(default_factory=dict)
    artifacts: tuple[ArtifactEntry, ...] = ()
    remote_artifacts: tuple[RemoteArtifactEntry, ...] = ()
    writable_dirs: tuple[str, ...] = ()  # folders written at start-up: writable mounts under a read-only root
    example: ExampleEntry | None = None
    signals: tuple[dict[str, Any], ...] = ()  # output fields whose distribution the service exports
    service: ServiceEntry = ServiceEntry()
    batching: BatchingEntry = BatchingEntry()

    def as_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["manifest_version"] = MANIFEST_VERSION
        return document


def manifest_text(manifest: Manifest) -> str:
    """The file's bytes: sorted keys, no timestamp, so rendering twice gives identical bytes."""
    return json.dumps(manifest.as_json(), indent=2, sort_keys=True) + "\n"


def check_version(
    document: Any, key: str, version: int, where: str, error: type[ValueError], reads: str
) -> dict[str, Any]:
    """``document`` if it is a JSON object whose ``key`` is ``version``; else ``error`` naming ``where``.

    Shared by every versioned hand-off file (``nbship.json`` here, ``nbship-build.json`` in ``nbship.image.record``);
    ``reads`` ends the message (which versions the reader knows, and what to do).
    """
    if not isinstance(document, dict):
        raise error(f"{where}: not a JSON object")
    found = document.get(key)
    if found != version:
        raise error(f"{where}: {key} {found!r} is not {version}, {reads}")
    return document


def parse_manifest(document: Any, where: str = MANIFEST_FILE) -> Manifest:
    """The ``Manifest`` of a decoded ``nbship.json``.

    Raises:
        ManifestError: not an object, another format version, or a field missing or of the wrong shape.
    """
    check_version(document, "manifest_version", MANIFEST_VERSION, where, ManifestError,
                  "the only version this runtime reads (render the build context again with the nbship that builds it)")
    try:
        example = document.get("example")
        return Manifest(
            nbship_version=str(document["nbship_version"]),
            name=str(document["name"]),
            version=str(document["version"]),
            package=str(document["package"]),
            notebook=NotebookRef(**document["notebook"]),
            modules=tuple(document["modules"]),
            stages=dict(document["stages"]),
            image=ImageEntry(**document["image"]),
            cells=tuple(CellRange(**c) for c in document.get("cells", [])),
            parameters=tuple(ParameterEntry(**p) for p in document.get("parameters", [])),
            settings=dict(document.get("settings", {})),
            artifacts=tuple(ArtifactEntry(**a) for a in document.get("artifacts", [])),
            remote_artifacts=tuple(RemoteArtifactEntry(**r) for r in document.get("remote_artifacts", [])),
            writable_dirs=tuple(document.get("writable_dirs", [])),
            example=ExampleEntry(**example) if example is not None else None,
            signals=tuple(dict(s) for s in document.get("signals", [])),
            service=_service(document.get("service", {})),
            batching=_batching(document.get("batching", {})),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ManifestError(f"{where}: not a valid manifest ({type(e).__name__}: {e})") from None


def _service(document: dict[str, Any]) -> ServiceEntry:
    if "sensitive_fields" in document:
        document = {**document, "sensitive_fields": tuple(document["sensitive_fields"])}
    return ServiceEntry(**document)


def _batching(document: dict[str, Any]) -> BatchingEntry:
    return BatchingEntry(**{**document, "sizes": tuple(document.get("sizes", ()))})


def read_manifest(root: Path) -> Manifest:
    """``root/nbship.json``, checked.

    Raises:
        OSError: the file cannot be read.
        ManifestError: as ``parse_manifest``, or the file is not JSON.
    """
    path = root / MANIFEST_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ManifestError(f"{path}: not valid JSON ({e})") from None
    return parse_manifest(document, str(path))
