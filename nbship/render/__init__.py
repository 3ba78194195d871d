"""Stage 5: ``ProjectSpec`` → the files of the build context (``nbship.project.render_project`` writes them).

``build_files(spec)`` is pure: it sees only the spec and returns ``{relative path: content}``.
"""

from __future__ import annotations

from pathlib import Path

from nbship.names import ROLE_MODULE
from nbship.render.monitoring import prediction_signals
from nbship.render.package import render_package
from nbship.render.writer import Content
from nbship.runtime.manifest import (
    MANIFEST_FILE,
    ArtifactEntry,
    CellRange,
    ExampleEntry,
    ImageEntry,
    Manifest,
    NotebookRef,
    ParameterEntry,
    RemoteArtifactEntry,
    manifest_text,
)
from nbship.spec import ProjectSpec

RUNTIME_PACKAGE = "nbship_runtime"


def writable_dirs(spec: ProjectSpec) -> list[str]:
    """The folders (relative to the service's root) that remote artifacts are downloaded into."""
    from pathlib import PurePosixPath

    return sorted({PurePosixPath(r.path).parent.as_posix() for r in spec.remote_artifacts})


def manifest(spec: ProjectSpec, cells: tuple[CellRange, ...]) -> Manifest:
    """The build context's ``nbship.json``: what the runtime and the smoke test read."""
    stages = {role: ROLE_MODULE[role] for role in ("preprocess", "predict", "postprocess")}
    present = {p.name for p in spec.modules}
    limits = dict(spec.limits)
    return Manifest(
        nbship_version=spec.nbship_version,
        name=spec.name,
        version=spec.version,
        package=spec.package,
        notebook=NotebookRef(spec.notebook_file, spec.notebook_sha256),
        modules=tuple(p.name for p in spec.modules),
        stages={role: module if module in present else None for role, module in stages.items()},
        image=ImageEntry(spec.repository, limits.get("cpu"), limits.get("memory")),
        cells=cells,
        parameters=tuple(ParameterEntry(p.name, p.env, p.default, p.type_name) for p in spec.parameters),
        settings=dict(spec.settings),
        artifacts=tuple(ArtifactEntry(a.path, a.size, a.sha256, a.cell, a.is_dir) for a in spec.artifacts),
        remote_artifacts=tuple(
            RemoteArtifactEntry(r.path, r.uri, r.sha256, r.credentials) for r in spec.remote_artifacts
        ),
        writable_dirs=tuple(writable_dirs(spec)),
        example=ExampleEntry(spec.example.request, spec.example.response, spec.example.cell) if spec.example else None,
        # the distributions of the answers the service exports, chosen from the example's output
        signals=tuple(prediction_signals(spec.example.response)) if spec.example else (),
        service=spec.service,
        batching=spec.batching,  # the check-time proof, or why the service does not batch
    )


def build_files(spec: ProjectSpec, lock_text: str | None = None) -> dict[str, Content]:
    """Every file of the build context, from the spec (and the lock, without which there is no Dockerfile)."""
    from nbship.render.dockerfile import dockerfile_context, render_dockerfile
    from nbship.render.k8s import render_manifests
    from nbship.render.templates import environment

    package_files, cells = render_package(spec)
    files: dict[str, Content] = dict(package_files)
    files[MANIFEST_FILE] = manifest_text(manifest(spec, cells))
    files["main.py"] = environment().get_template("app/main.py.jinja").render()  # it needs nothing from the spec
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
