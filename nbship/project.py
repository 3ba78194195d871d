"""The pipeline, chained: the only module that calls more than one stage.

Each stage is a function with typed input and output (``docs/architecture.md``); the commands of ``nbship.cli``
call exactly one function here, or one stage directly:

- ``check_notebook``: notebook → ``CheckResult`` (static checks, the lock's state, parity on a throwaway render);
- ``render_project``: notebook → checked ``ProjectSpec`` → lock → build context on disk (``RenderResult``);
- ``build_notebook``: ``render_project``, then the image stage's ``build_context`` → ``BuildRecord``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from nbship.check import CheckResult, inspect_notebook, lock_findings
from nbship.errors import CheckFailedError, Finding, ImageError, LockError
from nbship.parity import run_parity
from nbship.render import build_files
from nbship.render.writer import write_tree
from nbship.spec import Overrides, ProjectSpec, repository_choice

if TYPE_CHECKING:
    from nbship.deps import Lockfile, PipSettings
    from nbship.image.build import BuildOptions, BuildProgress, BuildRecord
    from nbship.image.builder import ImageBuilder
    from nbship.serve import ServeEvents


def check_notebook(path: Path, *, config_path: Path | None = None, verify: bool = True) -> CheckResult:
    """Everything ``nbship check`` proves: the static checks, with ``verify`` parity on a throwaway render
    (observing the files the code opens, which then ship too), and the lock's state.

    Raises:
        NotebookError, ConfigError: as ``inspect_notebook``.
    """
    result = inspect_notebook(path, config_path=config_path, verify=verify)
    if verify:
        result = observed_parity(result)
    return result.with_findings(lock_findings(result))


def observed_parity(result: CheckResult) -> CheckResult:
    """Run the exported code on the example in the notebook's folder, recording the files it opens there.

    A file opened but not found statically becomes an artifact of the returned spec; a statically found one
    never opened, and a path expression that could not be evaluated and names nothing opened, are pointed out.
    """
    from nbship.batching import judge as judge_batching
    from nbship.observed import apply_observation

    spec = result.spec
    if spec is None:
        return result
    # remote artifacts without a local copy are downloaded into the context: run there, unobserved
    observe = all((spec.source_dir / r.path).is_file() for r in spec.remote_artifacts)
    with tempfile.TemporaryDirectory(prefix="nbship-check-") as tmp:
        context = Path(tmp) / "context"
        files = build_files(spec)
        if observe:  # the code runs in the notebook's folder and reads its artifacts there
            files = {k: v for k, v in files.items() if k not in {a.path for a in spec.artifacts}}
        write_tree(files, context)
        problems, opened, evidence = run_parity(spec, context, observe=observe)
    if problems:
        return result.with_findings(problems)
    spec, notes = apply_observation(spec, result.notebook, result.code.cells, opened)
    spec = replace(spec, batching_proof=judge_batching(spec, evidence))
    return replace(result, spec=spec).with_findings(notes)


@dataclass(frozen=True)
class RenderResult:
    out: Path
    spec: ProjectSpec
    findings: tuple[Finding, ...]
    lock: Lockfile | None = None


def render_project(
    notebook: Path,
    out: Path,
    *,
    config: Path | None = None,
    verify: bool = True,
    lock: bool = True,
    frozen: bool = False,
    platform: Literal["linux/amd64", "linux/arm64"] = "linux/amd64",
    overrides: Overrides = Overrides(),
) -> RenderResult:
    """Check the notebook, lock its dependencies, then write its build context to ``out``.

    The parity run (in the notebook's folder, observing the files the code opens) happens before anything is
    written. With ``lock=False`` the context has
    no ``requirements.lock`` and no Dockerfile (enough to serve it, not to build an image).

    Raises:
        NotebookError, ConfigError: the inputs cannot be read.
        CheckFailedError: a check or the parity run failed; ``out`` is left as it was.
        LockError: the lock cannot be made, or is stale or missing under ``frozen``.
    """
    result = inspect_notebook(notebook, config_path=config, verify=verify, overrides=overrides)
    if verify and not result.errors:
        result = observed_parity(result)  # the files the code opened ship too
    if result.errors or result.spec is None:
        raise CheckFailedError(result.findings)
    spec = result.spec
    lockfile = None
    if lock:
        from nbship.deps import ensure_lock
        from nbship.deps.request import request_from

        request = request_from(notebook, result.code, result.config, spec.artifacts,
                               python_version=spec.python_version, platform=platform, frozen=frozen)
        lockfile = ensure_lock(request)
    write_tree(build_files(spec, lockfile.text if lockfile else None), out)
    if lockfile is not None:
        pin_content_tag(out, spec.repository, spec.version)
    return RenderResult(out=out.resolve(), spec=spec, findings=result.findings, lock=lockfile)


def refuse_local_only_pins(lock_text: str, settings: PipSettings) -> None:
    """Stop before ``docker build`` when a pin exists only in a local find-links folder the builder cannot reach.

    Raises:
        LockError: naming the pins, where they are, and what to do.
    """
    from nbship.deps.local_wheels import describe_local_only, local_only_pins
    from nbship.deps.lockfile import parse_lock

    pins = local_only_pins(parse_lock(lock_text).entries, settings)
    if pins:
        message, hint = describe_local_only(pins)
        raise LockError(f"requirements.lock: {message}", hint=hint)


def pin_content_tag(out: Path, repository: str, version: str) -> None:
    """Pin the tag ``nbship build`` will give this context (default platform) and the lock's sha256 into ``k8s/``.

    The content hash leaves ``k8s/`` out, so the pin does not change the tag it names.
    """
    import hashlib

    from nbship.image.builder import context_hash, image_tags
    from nbship.render.pin import pin_manifests

    tag = image_tags(repository, version, context_hash(out))[0]
    lock_sha256 = hashlib.sha256((out / "requirements.lock").read_bytes()).hexdigest()
    pin_manifests(out, tag, {"lock-sha256": lock_sha256})


def build_notebook(
    builder: ImageBuilder,
    notebook: Path,
    out: Path,
    options: BuildOptions,
    progress: BuildProgress | None = None,
    *,
    config: Path | None = None,
    frozen: bool = False,
    overrides: Overrides = Overrides(),
) -> BuildRecord:
    """Lock (or check the lock), render into ``out``, then ``build_context`` with the spec's repository and limits.

    Raises:
        LockError: the lock is stale or missing under ``frozen``, or cannot be resolved.
        CheckFailedError, NotebookError, ConfigError: the notebook cannot be rendered.
        ImageError: as ``build_context``.
    """

    from nbship.deps import pip_settings
    from nbship.image.build import BuildProgress, build_context

    progress = progress or BuildProgress()
    platform = options.platform or "linux/amd64"
    if platform not in ("linux/amd64", "linux/arm64"):
        raise ImageError(f"--platform {platform}: nbship locks for linux/amd64 or linux/arm64 only")
    progress.stage(f"{'checking the lock' if frozen else 'locking'} and rendering {notebook.name} into {out}")
    rendered = render_project(notebook, out, config=config, frozen=frozen, platform=platform,  # type: ignore[arg-type]
                              overrides=overrides)
    if rendered.lock is not None:
        refuse_local_only_pins(rendered.lock.text, pip_settings())
    # the rendered manifest carries the repository and limits the spec resolved (the flag included)
    return build_context(builder, out, options, progress, pip=lambda: pip_settings().for_builder(),
                         source_dir=notebook.parent)


def build(
    builder: ImageBuilder,
    source: Path,
    out: Path,
    options: BuildOptions,
    progress: BuildProgress | None = None,
    *,
    config: Path | None = None,
    frozen: bool = False,
    overrides: Overrides = Overrides(),
    record: Path | None = None,
) -> tuple[BuildRecord, Path]:
    """``nbship build``: a notebook (rendered into ``out`` first) or a rendered build context → its image, and
    ``nbship-build.json`` written to ``record`` (default: in the build context). Returns the record and its path.

    Raises:
        as ``build_notebook`` and ``build_directory``.
    """
    from nbship.image.builder import RECORD_FILE
    from nbship.image.record import write_build_record

    if source.is_dir():
        result = build_directory(builder, source, options, progress, overrides=overrides)
    else:
        result = build_notebook(builder, source, out, options, progress, config=config, frozen=frozen,
                                overrides=overrides)
    path = record or (source if source.is_dir() else out) / RECORD_FILE
    write_build_record(path, result)
    return result, path


def build_directory(
    builder: ImageBuilder,
    context: Path,
    options: BuildOptions,
    progress: BuildProgress | None = None,
    *,
    overrides: Overrides = Overrides(),
) -> BuildRecord:
    """``build_context`` on a context ``nbship render`` wrote: the repository the run chose (flag, then
    ``NBSHIP_REPOSITORY``) beats the one rendered into its manifest, as it would have at render time.

    Raises:
        ImageError: as ``build_context``.
    """
    import os

    from nbship.deps import pip_settings
    from nbship.image.build import BuildProgress, build_context

    chosen = replace(options, repository=repository_choice(overrides.repository, os.environ))
    return build_context(builder, context, chosen, progress or BuildProgress(),
                         pip=lambda: pip_settings().for_builder())


def serve_notebook(
    notebook: Path,
    *,
    host: str,
    port: int | None,
    reload: bool,
    config: Path | None = None,
    verify: bool = False,
    events: ServeEvents | None = None,
    on_findings: Callable[[tuple[Finding, ...]], None] = lambda findings: None,
) -> None:
    """``nbship serve``: render without a lock into a temporary folder (local copies standing in for remote
    artifacts) and supervise the service, re-rendering on change with ``reload``.

    Raises:
        EnvironmentMissingError: FastAPI or uvicorn is missing here.
        NotebookError, ConfigError, CheckFailedError: the first render failed.
        UserError: the service exited with an error of its own.
    """
    from nbship.parity import stage_remote_copies
    from nbship.serve import ServeEvents, require_server, supervise

    require_server()
    with tempfile.TemporaryDirectory(prefix="nbship-serve-") as tmp:
        generation = 0

        def render() -> Path:
            nonlocal generation
            generation += 1  # a fresh directory each time: the running service keeps its files until replaced
            # serving runs in this environment: no lock needed; local copies stand in for remote artifacts
            result = render_project(notebook, Path(tmp) / f"context-{generation}", config=config, verify=verify,
                                    lock=False)
            stage_remote_copies(result.spec, result.out)
            on_findings(result.findings)
            return result.out

        watched = [notebook, config or notebook.parent / "nbship.yaml"]
        supervise(render, watched, name=notebook.name, host=host, port=port, reload=reload,
                  events=events or ServeEvents())
