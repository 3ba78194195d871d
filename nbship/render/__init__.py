"""Stage 5: ``ProjectSpec`` → the files of the build context, written atomically by ``render_project``.

``build_files(spec)`` is pure: it sees only the spec and returns ``{relative path: content}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nbship.errors import CheckFailedError, Finding
from nbship.render.package import render_package
from nbship.render.writer import Content, write_tree
from nbship.spec import ProjectSpec

if TYPE_CHECKING:
    from nbship.deps import Lockfile

RUNTIME_PACKAGE = "nbship_runtime"


@dataclass(frozen=True)
class RenderResult:
    out: Path
    spec: ProjectSpec
    findings: tuple[Finding, ...]
    lock: Lockfile | None = None


def writable_dirs(spec: ProjectSpec) -> list[str]:
    """The folders (relative to the service's root) that remote artifacts are downloaded into."""
    from pathlib import PurePosixPath

    return sorted({PurePosixPath(r.path).parent.as_posix() for r in spec.remote_artifacts})


def stage_remote_copies(spec: ProjectSpec, root: Path) -> list[Path]:
    """Put the local copies of remote artifacts (checked against their sha256 by ``nbship check``) under ``root``.

    For the runs on this machine (the parity check, ``nbship serve``); in the image the runtime downloads them.
    Returns what it put there, for the caller to remove.
    """
    import shutil

    staged = []
    for remote in spec.remote_artifacts:
        local, target = spec.source_dir / remote.path, root / remote.path
        if local.is_file() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local, target)
            staged.append(target)
    return staged


def manifest(spec: ProjectSpec, cells: list[dict[str, Any]]) -> dict[str, Any]:
    server, timeouts = spec.config.server, spec.config.timeouts
    stages = {"preprocess": "preprocessing", "predict": "inference", "postprocess": "postprocessing"}
    present = {p.name for p in spec.modules}
    return {
        "nbship_version": spec.nbship_version,
        "name": spec.name,
        "version": spec.version,
        "package": spec.package,
        "notebook": {"file": spec.notebook_file, "sha256": spec.notebook_sha256},
        "cells": cells,
        "modules": [p.name for p in spec.modules],
        "stages": {role: module if module in present else None for role, module in stages.items()},
        "parameters": [
            {"name": p.name, "env": p.env, "default": p.default, "type": p.type_name} for p in spec.parameters
        ],
        "settings": dict(spec.settings),
        "artifacts": [
            {"path": a.path, "size": a.size, "sha256": a.sha256, "cell": a.cell, "dir": a.is_dir}
            for a in spec.artifacts
        ],
        "remote_artifacts": [{"path": r.path, "uri": r.uri, "sha256": r.sha256} for r in spec.remote_artifacts],
        # folders the service writes at start-up; with a read-only root filesystem each needs a writable mount
        "writable_dirs": writable_dirs(spec),
        "example": (
            {"request": spec.example.request, "response": spec.example.response, "cell": spec.example.cell}
            if spec.example else None
        ),
        "service": {
            "port": spec.config.port,
            "max_concurrency": server.max_concurrency,
            "queue_size": server.queue_size,
            "max_body_bytes": server.max_body_bytes,
            "log_payloads": server.log_payloads,
            "predict_timeout_seconds": timeouts.predict_seconds,
            "shutdown_grace_seconds": timeouts.shutdown_grace_seconds,
        },
    }


def build_files(spec: ProjectSpec, lock_text: str | None = None) -> dict[str, Content]:
    """Every file of the build context, from the spec (and the lock, without which there is no Dockerfile)."""
    from nbship.render.dockerfile import dockerfile_context, render_dockerfile
    from nbship.render.k8s import render_manifests
    from nbship.render.templates import environment

    package_files, cells = render_package(spec)
    files: dict[str, Content] = dict(package_files)
    files["nbship.json"] = json.dumps(manifest(spec, cells), indent=2, sort_keys=True) + "\n"
    files["main.py"] = environment().get_template("app/main.py.jinja").render(spec=spec)
    files[RUNTIME_PACKAGE] = Path(__file__).resolve().parent.parent / "runtime"
    for artifact in spec.artifacts:
        files[artifact.path] = spec.source_dir / artifact.path
    if lock_text is not None:
        files["requirements.lock"] = lock_text
        files.update(render_dockerfile(dockerfile_context(spec, lock_text)))
    files.update(render_manifests(spec))
    return files


def render_project(
    notebook: Path,
    out: Path,
    *,
    config: Path | None = None,
    verify: bool = True,
    lock: bool = True,
    frozen: bool = False,
    platform: Literal["linux/amd64", "linux/arm64"] = "linux/amd64",
) -> RenderResult:
    """Check the notebook, lock its dependencies, then write its build context to ``out``.

    The parity run happens on the complete tree before it replaces ``out``. With ``lock=False`` the context has
    no ``requirements.lock`` and no Dockerfile (enough to serve it, not to build an image).

    Raises:
        NotebookError, ConfigError: the inputs cannot be read.
        CheckFailedError: a check or the parity run failed; ``out`` is left as it was.
        LockError: the lock cannot be made, or is stale or missing under ``frozen``.
    """
    from nbship.check import inspect_notebook, verify_parity

    result = inspect_notebook(notebook, config_path=config, verify=verify)
    if result.errors or result.spec is None:
        raise CheckFailedError(result.findings)
    spec = result.spec
    lockfile = None
    if lock:
        from nbship.deps import ensure_lock
        from nbship.deps.request import request_from

        request = request_from(notebook, result.code, spec.config, spec.artifacts,
                               python_version=spec.python_version, platform=platform, frozen=frozen)
        lockfile = ensure_lock(request)

    def parity(tmp: Path) -> None:
        problems = verify_parity(spec, tmp) if verify else []
        if problems:
            raise CheckFailedError((*result.findings, *problems))

    write_tree(build_files(spec, lockfile.text if lockfile else None), out, before_commit=parity)
    return RenderResult(out=out.resolve(), spec=spec, findings=result.findings, lock=lockfile)
