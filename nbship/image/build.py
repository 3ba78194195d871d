"""Image stage, whole run: a rendered build context → image, smoke test, push → ``BuildRecord``.

``build_context`` needs only the context (``nbship.project.build_notebook`` renders it first): it hands pip's
settings to the builder stage, builds or reuses the content-tagged image, smoke-tests it, pushes it, and
returns the record written to
``nbship-build.json`` (image, tags, digest, notebook sha256, lock hash, base image, sizes, durations, the
smoke result and the model load time it measured).
"""

from __future__ import annotations

import datetime
import hashlib
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nbship.errors import ImageError
from nbship.image.builder import (
    ImageBuilder,
    PushProgress,
    RunLimits,
    build_image,
    hand_over_pip_ca,
    pip_build_args,
    push_image,
    run_limits,
)
from nbship.image.record import RECORD_FILE, BuildRecord, write_build_record
from nbship.image.ref import ImageRef
from nbship.image.smoke import SmokeResult, context_manifest, smoke_test
from nbship.weights import seed_folders

if TYPE_CHECKING:
    from nbship.deps.pipconf import BuilderPipSettings

__all__ = ["RECORD_FILE", "BuildOptions", "BuildProgress", "BuildRecord", "build_context", "write_build_record"]


@dataclass(frozen=True)
class BuildOptions:
    repository: str | None = None  # default: the manifest's, resolved by the spec at render time
    extra_tags: tuple[str, ...] = ()
    platform: str | None = None
    smoke: bool = True
    push: bool = False
    limits: RunLimits | None = None  # default: the manifest's (the config's resources.limits)
    ready_timeout: float = 120.0
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildProgress:
    """Where the run reports: a stage starting, a line of build output, a layer's push progress."""

    stage: Callable[[str], None] = lambda text: None
    line: Callable[[str], None] = lambda text: None
    push: Callable[[PushProgress], None] = lambda progress: None


def base_image_of(dockerfile: str) -> str:
    """The image of the last ``FROM`` (the runtime stage's base)."""
    froms = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM ") and len(line.split()) > 1]
    return froms[-1] if froms else "?"


def build_context(
    builder: ImageBuilder,
    context: Path,
    options: BuildOptions,
    progress: BuildProgress = BuildProgress(),
    *,
    pip: Callable[[], BuilderPipSettings] | None = None,
    source_dir: Path | None = None,
) -> BuildRecord:
    """Build, smoke-test and optionally push the rendered build context at ``context``.

    The smoke test gets the ``s3://`` and ``hf://`` weights from this machine (beside the notebook in
    ``source_dir``, else the user cache, downloaded with the user's own credentials), never credentials.

    ``pip`` reads the host's pip settings for the builder stage (index URLs as build arguments, the CA
    bundle); it is called only when the image must be built.

    Raises:
        ImageError: the context is incomplete, a build step failed, the smoke test failed (the image is kept
            and named in the message), or the push failed.
    """
    missing = [name for name in ("Dockerfile", "nbship.json", "requirements.lock") if not (context / name).is_file()]
    if missing:
        raise ImageError(
            f"{context}: not a complete build context (missing {', '.join(missing)})",
            hint="run `nbship render` and `nbship lock`, or pass the notebook to `nbship build`",
        )
    manifest = context_manifest(context)
    repository = options.repository or manifest.image.repository
    port = manifest.service.port
    durations: dict[str, float] = {}

    def prepare() -> dict[str, str]:
        settings = pip() if pip else None
        hand_over_pip_ca(context, settings.cert if settings else None)
        for note in settings.dropped if settings else ():
            progress.stage(f"note: pip setting not used in the image: {note}")
        return pip_build_args(settings) if settings else {}

    progress.stage(f"building {repository}")
    built = build_image(
        builder,
        context,
        repository=repository,
        version=manifest.version,
        extra_tags=options.extra_tags,
        platform=options.platform,
        prepare=prepare,
        labels=options.labels,
        on_line=progress.line,
    )
    durations["build"] = built.seconds
    smoke: SmokeResult | None = None
    if options.smoke:
        progress.stage(f"smoke test of {built.tags[0]}")
        with tempfile.TemporaryDirectory(prefix="nbship-weights-") as staging:
            seeded = seed_folders(manifest.remote_artifacts, Path(staging), source_dir)
            limits = options.limits or run_limits(manifest.image.cpu_limit, manifest.image.memory_limit)
            smoke = smoke_test(builder, built.image_id, context, limits=limits,
                               ready_timeout=options.ready_timeout, seeded=seeded)
        durations["smoke"] = smoke.seconds
        if not smoke.passed:
            details = "".join(f"\n  {d}" for d in smoke.differences[:20])
            raise ImageError(
                f"smoke test of {built.tags[0]} failed: {smoke.problem}{details}\n"
                f"container log (last lines):\n{smoke.log_tail.rstrip() or '(empty)'}",
                hint=f"the image is kept for debugging: docker run --rm -p {port}:{port} {built.tags[0]}",
            )
    digest: str | None = None
    if options.push:
        progress.stage(f"pushing {', '.join(built.tags)}")
        started = time.perf_counter()
        digest = push_image(builder, built.tags, progress.push)
        durations["push"] = time.perf_counter() - started
    repository = built.tags[0].rsplit(":", 1)[0]
    commit = options.labels.get("org.opencontainers.image.revision")
    lock_sha256 = hashlib.sha256((context / "requirements.lock").read_bytes()).hexdigest()
    _pin(context, f"{repository}@{digest}" if digest else built.tags[0], commit, lock_sha256, progress)
    dockerfile = (context / "Dockerfile").read_text(encoding="utf-8")
    base = base_image_of(dockerfile)
    return BuildRecord(
        image=ImageRef.parse(built.tags[0]),
        tags=built.tags,
        image_id=built.image_id,
        context_hash=built.context_hash,
        reused=built.reused,
        notebook_sha256=manifest.notebook.sha256,
        lock_sha256=lock_sha256,
        git_commit=commit,
        base_image=base,
        platform=options.platform,
        image_bytes=builder.image_size(built.image_id),
        base_image_bytes=builder.image_size(base),
        durations=durations,
        smoke=smoke,
        digest=digest,
        pushed=built.tags if digest else (),
    )


def _pin(context: Path, image: str, commit: str | None, lock_sha256: str, progress: BuildProgress) -> None:
    """Pin what was built (by digest once pushed) into the context's ``k8s/``: ``kubectl apply -k`` deploys it."""
    from nbship.render.pin import pin_manifests

    try:
        pin_manifests(context, image, {"git-commit": commit, "lock-sha256": lock_sha256})
    except (FileNotFoundError, ValueError) as e:  # no k8s/, or rendered by an nbship without pins
        progress.stage(f"note: k8s/ not pinned to {image} ({e})")


def build_labels(source_dir: Path) -> dict[str, str]:
    """The labels that change on every build (``created``, ``revision``, ``source``): passed outside the context."""
    from nbship import _proc

    labels = {
        "org.opencontainers.image.created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    }
    for key, argv in (
        ("org.opencontainers.image.revision", ["git", "rev-parse", "HEAD"]),
        ("org.opencontainers.image.source", ["git", "remote", "get-url", "origin"]),
    ):
        try:
            done = _proc.run(argv, cwd=source_dir, timeout=10)
        except (OSError, subprocess.TimeoutExpired):  # no git: the label is simply absent
            continue
        if done.returncode == 0 and done.stdout.strip():
            from nbship.deps import scrub_credentials

            labels[key] = scrub_credentials(done.stdout.strip())
    return labels
