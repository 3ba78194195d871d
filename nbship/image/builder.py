"""Image stage: a rendered build context → a built, smoke-tested and optionally pushed image.

The engine sits behind the small ``ImageBuilder`` protocol (the docker SDK implementation is
``nbship.image.docker_engine.DockerBuilder``; the unit tests use a fake). This module holds what does not depend on
the engine: the content-hash tag, reuse of an existing image and the push (the smoke test is ``smoke.py``).
``nbship.image.build`` chains them into the build record.

The tag is ``<repository>:<version>-<12 hex of the context hash>``. The hash covers every file of the build
context (path, executable bit, bytes) and the target platform, but not the CA bundle handed to the builder
(``render.dockerfile.PIP_CA_BUNDLE``): it changes how pip reaches the index, not what ``--require-hashes``
installs. Values that change on every build (``created``, ``revision``) go in as labels through the SDK,
outside the context, so identical inputs keep the identical tag and the existing image is reused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from nbship.errors import ConfigError, ImageError
from nbship.image.ref import ImageRef
from nbship.render.dockerfile import PIP_CA_BUNDLE

if TYPE_CHECKING:
    from nbship.deps.pipconf import BuilderPipSettings

RECORD_FILE = "nbship-build.json"  # the build record (nbship.image.record), never part of the image
_NOT_HASHED_DIRS = frozenset({"__pycache__", ".git", ".ipynb_checkpoints"})
_NOT_HASHED_FILES = frozenset({PIP_CA_BUNDLE, RECORD_FILE})
# the manifests sit in the build context but are not in the image: changing replicas must not change the tag
_NOT_HASHED_TOP_DIRS = frozenset({"k8s"})


@dataclass(frozen=True)
class RunLimits:
    """The container's ceiling, in the engine's units (from the config's ``resources.limits``)."""

    nano_cpus: int | None = None
    memory_bytes: int | None = None


_MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def run_limits(cpu: str | None, memory: str | None) -> RunLimits:
    """``RunLimits`` from Kubernetes quantities (``250m``, ``1``; ``512Mi``, ``1G``).

    Raises:
        ConfigError: a quantity is not in Kubernetes units.
    """
    nano_cpus = None
    if cpu:
        try:
            nano_cpus = int(float(cpu[:-1]) * 1e6) if cpu.endswith("m") else int(float(cpu) * 1e9)
        except ValueError:
            raise ConfigError(f"nbship.yaml: resources.limits.cpu: {cpu!r} is not a CPU quantity") from None
    memory_bytes = None
    if memory:
        number, unit = memory.rstrip("".join(_MEMORY_UNITS)), memory.lstrip("0123456789.")
        try:
            memory_bytes = int(float(number) * _MEMORY_UNITS[unit]) if unit else int(memory)
        except (KeyError, ValueError):
            raise ConfigError(f"nbship.yaml: resources.limits.memory: {memory!r} is not a memory quantity") from None
    return RunLimits(nano_cpus, memory_bytes)


@dataclass(frozen=True)
class PushProgress:
    layer: str
    status: str
    current: int | None = None
    total: int | None = None


class ContainerHandle(Protocol):
    """A started container, as the smoke test needs it."""

    url: str  # http://127.0.0.1:<published port>

    def running(self) -> bool: ...

    def process_uid(self) -> int: ...

    def logs(self, tail: int) -> str: ...

    def remove(self, grace_seconds: int) -> None: ...


class ImageBuilder(Protocol):
    """What nbship needs from a container engine."""

    def image_id(self, ref: str) -> str | None: ...

    def image_size(self, ref: str) -> int | None: ...

    def build(
        self,
        context: Path,
        tag: str,
        *,
        buildargs: Mapping[str, str],
        labels: Mapping[str, str],
        platform: str | None,
        on_line: Callable[[str], None],
    ) -> str: ...

    def tag(self, image: str, ref: str) -> None: ...

    def run(
        self, image: str, *, port: int, limits: RunLimits, environment: Mapping[str, str], writable: Sequence[str] = (),
        seeded: Mapping[str, Path] | None = None,
    ) -> ContainerHandle:
        """Start ``image`` as the pod runs it: read-only root, ``/tmp`` and ``writable`` as empty writable mounts,
        except the ``seeded`` ones: these host folders are mounted there instead (downloaded weights)."""
        ...

    def push(self, ref: str, on_progress: Callable[[PushProgress], None]) -> str: ...


@dataclass(frozen=True)
class BuiltImage:
    image_id: str
    tags: tuple[str, ...]
    context_hash: str
    reused: bool
    seconds: float


def context_hash(root: Path, platform: str | None = None) -> str:
    """sha256 of the build context's files (see the module docstring) and the target platform."""
    digest = hashlib.sha256(f"platform={platform or ''}\n".encode())
    for dirpath, dirnames, filenames in os.walk(root):
        top = Path(dirpath) == Path(root)
        dirnames[:] = sorted(
            d for d in dirnames if d not in _NOT_HASHED_DIRS and not (top and d in _NOT_HASHED_TOP_DIRS)
        )
        for name in sorted(filenames):
            path = Path(dirpath, name)
            relative = path.relative_to(root).as_posix()
            if relative in _NOT_HASHED_FILES or name.endswith((".pyc", ".pyo")):
                continue
            executable = "x" if os.access(path, os.X_OK) else "-"
            digest.update(f"{relative}\0{executable}\0".encode())
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            digest.update(b"\0")
    return digest.hexdigest()


def image_tags(repository: str, version: str, content_hash: str, extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The content tag first, then each ``--tag`` (a bare tag names the same repository).

    Raises:
        ImageError: an extra tag is not a valid Docker tag.
    """
    tags = [f"{repository}:{version}-{content_hash[:12]}"]
    for item in extra:
        given = ImageRef.parse(item)
        ref = str(given) if given.tag else f"{repository}:{item}"
        tag = ImageRef.parse(ref).tag or ""
        if (
            not tag
            or len(tag) > 128
            or not (tag[0].isalnum() or tag[0] == "_")
            or any(not (c.isalnum() or c in "_.-") for c in tag)
        ):
            raise ImageError(f"--tag {item!r}: not a valid Docker tag", hint="letters, digits, '_', '.', '-'")
        if ref not in tags:
            tags.append(ref)
    return tuple(tags)


def hand_over_pip_ca(context: Path, ca_bundle: Path | None) -> None:
    """Put ``ca_bundle`` where the builder stage copies it from, or remove a stale one.

    Raises:
        ImageError: the CA bundle cannot be read.
    """
    target = context / PIP_CA_BUNDLE
    if ca_bundle is None:
        target.unlink(missing_ok=True)
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ca_bundle, target)
    except OSError as e:
        raise ImageError(f"pip's CA bundle {ca_bundle}: {e.strerror}", hint="check `pip config list`") from e


def pip_build_args(settings: BuilderPipSettings) -> dict[str, str]:
    """The build arguments the builder stage declares, from the host's pip settings (empty ones left out)."""
    values = {
        "PIP_INDEX_URL": settings.index_url or "",
        "PIP_EXTRA_INDEX_URL": " ".join(settings.extra_index_urls),
        "PIP_TRUSTED_HOST": " ".join(settings.trusted_hosts),
    }
    return {name: value for name, value in values.items() if value}


def build_image(
    builder: ImageBuilder,
    context: Path,
    *,
    repository: str,
    version: str,
    extra_tags: Sequence[str] = (),
    platform: str | None = None,
    prepare: Callable[[], Mapping[str, str]] = dict,
    labels: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] = lambda line: None,
) -> BuiltImage:
    """Build ``context`` under its content tag, or reuse the image that already has it; then add ``extra_tags``.

    ``prepare`` runs only when a build is needed and returns its build arguments (reading pip's settings
    takes a second: a reused image does without).

    Raises:
        ImageError: a build step failed (the builder names the Dockerfile line), or a tag is invalid.
    """
    started = time.perf_counter()
    content = context_hash(context, platform)
    tags = image_tags(repository, version, content, extra_tags)
    image_id = builder.image_id(tags[0])
    reused = image_id is not None
    if image_id is None:
        image_id = builder.build(
            context, tags[0], buildargs=prepare(), labels=labels or {}, platform=platform, on_line=on_line
        )
    for ref in tags[1:]:
        builder.tag(image_id, ref)
    return BuiltImage(image_id, tags, content, reused, time.perf_counter() - started)


def push_image(builder: ImageBuilder, tags: Sequence[str], on_progress: Callable[[PushProgress], None]) -> str:
    """Push every tag; the digest of the image (the same for all its tags).

    Raises:
        ImageError: the registry refused the credentials or could not be reached.
    """
    digests = {builder.push(ref, on_progress) for ref in tags}
    if len(digests) != 1:
        raise ImageError(f"the registry reported different digests for one image: {sorted(digests)}")
    return digests.pop()
