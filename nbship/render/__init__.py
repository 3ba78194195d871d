"""Stage 5: ``ProjectSpec`` → the files of the build context (``nbship.project.render_project`` writes them).

``build_files(spec)`` is pure: it sees only the spec and returns ``{relative path: content}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nbship.render.monitoring import prediction_signals
from nbship.render.package import render_package
from nbship.render.writer import Content
from nbship.spec import ProjectSpec

RUNTIME_PACKAGE = "nbship_runtime"


def writable_dirs(spec: ProjectSpec) -> list[str]:
    """The folders (relative to the service's root) that remote artifacts are downloaded into."""
    from pathlib import PurePosixPath

    return sorted({PurePosixPath(r.path).parent.as_posix() for r in spec.remote_artifacts})


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
        "remote_artifacts": [
            {"path": r.path, "uri": r.uri, "sha256": r.sha256,
             **({"credentials": r.credentials} if r.credentials else {})}
            for r in spec.remote_artifacts
        ],
        # folders the service writes at start-up; with a read-only root filesystem each needs a writable mount
        "writable_dirs": writable_dirs(spec),
        "example": (
            {"request": spec.example.request, "response": spec.example.response, "cell": spec.example.cell}
            if spec.example else None
        ),
        # the distributions of the answers the service exports, chosen from the example's output
        "signals": prediction_signals(spec.example.response) if spec.example else [],
        "service": {
            "port": spec.config.port,
            "max_concurrency": server.max_concurrency,
            "queue_size": server.queue_size,
            "max_body_bytes": server.max_body_bytes,
            "max_batch_items": server.max_batch_items,
            "max_connections": server.max_connections,
            "body_timeout_seconds": server.body_timeout_seconds,
            "log_payloads": server.log_payloads,
            "payload_sample_rate": server.payload_sample_rate,
            "sensitive_fields": sorted(server.sensitive_fields),
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
        if artifact.is_dir:  # file by file: exactly what the artifact's sha256 covers, no dotfile, no outside link
            for name in artifact.files:
                files[f"{artifact.path}/{name}"] = spec.source_dir / artifact.path / name
        else:
            files[artifact.path] = spec.source_dir / artifact.path
    if lock_text is not None:
        files["requirements.lock"] = lock_text
        files.update(render_dockerfile(dockerfile_context(spec, lock_text)))
    files.update(render_manifests(spec))
    return files
