"""Lock stage: imports + ``%pip`` lines + config → ``requirements.lock`` (pinned, hashed) → ``Lockfile``.

``ensure_lock`` infers requirements from the exported code's imports (pinned to the versions installed where
the notebook ran), merges the user's own (nbship.yaml, requirements.in, ``%pip install``) and the service's,
and re-resolves only when one of those inputs changed; ``lock_status`` says whether the lock beside the
notebook is fresh, stale (and why) or missing, without resolving. See ``docs/architecture.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from nbship.deps.lockfile import LOCK_FILE
from nbship.deps.pipconf import BuilderPipSettings, PipSettings, pip_settings, scrub_credentials
from nbship.extract import ImportRef, PipRequirement

if TYPE_CHECKING:
    from nbship.deps.inputs import LockInputs
    from nbship.deps.lockfile import LockEntry

# The service's own runtime dependencies, with the ranges nbship is tested with (the image and `nbship serve`).
# httptools and uvloop are uvicorn's own production picks (of `uvicorn[standard]`, only the parser and the loop):
# uvicorn uses them when importable, instead of the pure-Python h11 parser and the stdlib asyncio loop. The lower
# bounds are the first releases with CPython 3.13 wheels for manylinux x86_64 and aarch64 (the image is Linux).
SERVICE_REQUIREMENTS: tuple[str, ...] = (
    "fastapi>=0.110,<1",
    "uvicorn>=0.29,<1",
    "httptools>=0.6.3,<1",
    "uvloop>=0.21,<1",
)

__all__ = [
    "LOCK_FILE",
    "SERVICE_REQUIREMENTS",
    "BuilderPipSettings",
    "LockRequest",
    "LockStatus",
    "Lockfile",
    "PipSettings",
    "ensure_lock",
    "lock_status",
    "pip_settings",
    "scrub_credentials",
]


@dataclass(frozen=True)
class LockRequest:
    """Everything a lock depends on. ``platform`` is the image's (``linux/amd64`` or ``linux/arm64``)."""

    notebook: Path
    imports: tuple[ImportRef, ...]
    pip_requirements: tuple[PipRequirement, ...]
    config_requirements: tuple[str, ...]
    python_version: str
    platform: Literal["linux/amd64", "linux/arm64"] = "linux/amd64"
    resolver: Literal["uv", "pip-tools"] = "uv"
    frozen: bool = False
    upgrade: bool = False
    upgrade_packages: tuple[str, ...] = ()
    # the clients of the remote artifacts' schemes (boto3 for s3://): part of the service, only when declared
    download_requirements: tuple[str, ...] = ()

    @property
    def lock_path(self) -> Path:
        return self.notebook.parent / LOCK_FILE


@dataclass(frozen=True)
class Lockfile:
    """The lock beside the notebook. ``resolved`` is False when it was up to date and no resolver ran."""

    path: Path
    text: str
    input_hash: str
    resolver: str
    pins: Mapping[str, str]
    resolved: bool = False
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class LockStatus:
    state: Literal["fresh", "stale", "missing"]
    path: Path
    reasons: tuple[str, ...] = ()
    resolver: str | None = None  # which resolver wrote the existing lock

    def as_json(self) -> dict[str, object]:
        return {"state": self.state, "path": str(self.path), "reasons": list(self.reasons),
                "resolver": self.resolver}


def lock_status(request: LockRequest, *, search_path: Sequence[str] | None = None) -> LockStatus:
    """Whether the lock beside the notebook matches its inputs; never resolves (for ``nbship check``).

    ``search_path`` is where installed distributions are looked up (default: this environment's sys.path).

    Raises:
        LockError: a requirement is invalid, or an import cannot be mapped to a distribution.
    """
    from nbship.deps.lockfile import parse_lock, stale_reasons

    path = request.lock_path
    previous = path.read_text(encoding="utf-8") if path.is_file() else None
    parsed = parse_lock(previous) if previous is not None else None
    inputs = _inputs(request, parsed.modules if parsed else {}, search_path)
    if parsed is None:
        return LockStatus("missing", path, (f"no {LOCK_FILE} beside {request.notebook.name}",))
    reasons = stale_reasons(parsed, inputs, python_version=request.python_version, platform=request.platform)
    return LockStatus("stale" if reasons else "fresh", path, tuple(reasons), parsed.header.get("resolver"))


def ensure_lock(
    request: LockRequest,
    *,
    settings: PipSettings | None = None,
    search_path: Sequence[str] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Lockfile:
    """Return an up-to-date lock, resolving only when an input changed (or an upgrade is asked for).

    ``settings`` default to pip's settings read from ``environ`` (only read when a resolver runs).

    Raises:
        LockError: under ``frozen``, a stale or missing lock (naming what changed); otherwise an invalid
            requirement, an unknown import, or a failed resolution (the previous lock is left untouched).
        EnvironmentMissingError: no resolver can run.
        UsageError: ``frozen`` together with an upgrade.
    """
    from nbship import __version__
    from nbship.deps.infer import installed_versions
    from nbship.deps.lockfile import foreign_lines, parse_lock, render_lock, stale_reasons, write_atomic
    from nbship.deps.resolve import resolve
    from nbship.errors import LockError, UsageError

    upgrading = request.upgrade or bool(request.upgrade_packages)
    if request.frozen and upgrading:
        raise UsageError("--frozen and --upgrade/--upgrade-package exclude each other")
    path = request.lock_path
    previous = path.read_text(encoding="utf-8") if path.is_file() else None
    parsed = parse_lock(previous) if previous is not None else None
    inputs = _inputs(request, parsed.modules if parsed else {}, search_path)
    reasons = (
        stale_reasons(parsed, inputs, python_version=request.python_version, platform=request.platform)
        if parsed is not None
        else [f"no {LOCK_FILE} beside {request.notebook.name}"]
    )
    if parsed is not None and previous is not None and not reasons and not upgrading:
        return Lockfile(path, previous, inputs.input_hash, parsed.header.get("resolver", "?"), parsed.pins)
    if request.frozen:
        raise LockError(
            f"{LOCK_FILE} is {'missing' if parsed is None else 'stale'} (--frozen): " + "; ".join(reasons),
            hint=f"run `nbship lock {request.notebook.name}` and commit {LOCK_FILE}",
        )
    settings = settings if settings is not None else pip_settings(environ)
    resolution = resolve(
        inputs.requirements,
        settings=settings,
        resolver=request.resolver,
        python_version=request.python_version,
        platform=request.platform,
        previous=previous,
        preferences=installed_versions(search_path),
        upgrade=request.upgrade,
        upgrade_packages=request.upgrade_packages,
        notebook=request.notebook.name,
    )
    text = render_lock(
        resolution.entries, inputs, notebook=request.notebook.name, nbship_version=__version__,
        resolver=resolution.resolver, python_version=request.python_version, platform=request.platform,
    )
    foreign = foreign_lines(text)
    if foreign:  # a requirement's URL carried a credential past the scan: the image installs from this file
        raise LockError(f"{LOCK_FILE} not written: " + "; ".join(foreign),
                        hint="remove the credentials from the requirement and give them to pip's configuration")
    write_atomic(path, text)
    pins = {e.name: e.version for e in resolution.entries}
    notes = (*resolution.notes, *inputs.notes, *_changes(parsed.pins if parsed else {}, pins),
             *_local_only_notes(resolution.entries, settings))
    return Lockfile(path, text, inputs.input_hash, resolution.resolver, pins, True, notes)


def _inputs(
    request: LockRequest, known: Mapping[str, tuple[str, ...]], search_path: Sequence[str] | None
) -> LockInputs:
    from dataclasses import replace

    from nbship.deps.infer import infer_requirements, optional_left_out
    from nbship.deps.inputs import collect_inputs, parse_spec, read_requirements_in, spec_name

    requirements_in = read_requirements_in(request.notebook.parent)
    named = [parse_spec(s, "nbship.yaml")[0] for s in request.config_requirements]
    named += [parse_spec(s, "requirements.in")[0] for _, s in requirements_in]
    named += [n for n in (spec_name(p.spec) for p in request.pip_requirements) if n]
    inferred = infer_requirements(
        request.imports, request.notebook,
        exclude=[parse_spec(s, "")[0] for s in (*SERVICE_REQUIREMENTS, *request.download_requirements)],
        covered=named, known=known, search_path=search_path,
    )
    inputs = collect_inputs(
        notebook=request.notebook, pip_requirements=request.pip_requirements,
        config_requirements=request.config_requirements, requirements_in=requirements_in,
        service_requirements=(*SERVICE_REQUIREMENTS, *request.download_requirements), inferred=inferred,
        target=f"python {request.python_version} {request.platform}",
    )
    left_out = optional_left_out(request.imports, inferred, request.notebook, covered=named)
    return replace(inputs, notes=(*inputs.notes, *left_out)) if left_out else inputs


def _local_only_notes(entries: Sequence[LockEntry], settings: PipSettings) -> list[str]:
    """A pin only a local find-links folder provides, said now rather than by ``docker build`` later."""
    from nbship.deps.local_wheels import describe_local_only, local_only_pins

    pins = local_only_pins(entries, settings)
    if not pins:
        return []
    message, hint = describe_local_only(pins)
    return [f"{message}. {hint}"]


def _changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """What a re-lock changed, for the user to review before committing."""
    changed = [f"{n} {before[n]} → {after[n]}" for n in sorted(after) if n in before and before[n] != after[n]]
    added = [f"{n} {after[n]} added" for n in sorted(after) if n not in before] if before else []
    removed = [f"{n} {before[n]} removed" for n in sorted(before) if n not in after]
    return changed + added + removed

