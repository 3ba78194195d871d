"""Render stage, Kubernetes part for remote artifacts: ``ProjectSpec`` → the init container's and volumes' context.

An init container of the service's own image (``python -m nbship_runtime.download``) downloads and verifies the
remote artifacts into one volume before the model container starts; the model container mounts the same volume,
one ``subPath`` per download folder. The volume is an emptyDir with ``downloads.size_limit`` by default, or an
existing PVC (restarts and new pods reuse the files), or a generic ephemeral volume of that size. Each Secret named
in ``credentials:`` is mounted read-only in the init container only, never in the model container, and never
becomes an environment variable of the pod.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from nbship.errors import ConfigError
from nbship.render.context import CredentialVolume, DownloadContext, WritableDir

if TYPE_CHECKING:
    from nbship.spec import ProjectSpec

INIT_CONTAINER = "download"
DOWNLOAD_VOLUME = "downloads"
# The init container mounts the whole volume here and creates the download folders itself, as the service's
# user: a subPath kubelet creates on a fresh volume is root's and not writable (kubernetes/kubernetes#41638).
DOWNLOAD_MOUNT = "/var/lib/nbship/downloads"
CREDENTIALS_DIR = "/var/run/secrets/nbship"  # the runtime's default (nbship/runtime/artifacts.py)


def writable_dirs(spec: ProjectSpec) -> tuple[WritableDir, ...]:
    """``/tmp`` (an emptyDir of its own), then each folder remote artifacts are downloaded into.

    Raises:
        ConfigError: a remote artifact sits at the top of the build context, or shares its folder with a
            shipped artifact (the volume mounted there would hide it).
    """
    for folder, remote in ((posixpath.dirname(r.path), r) for r in spec.remote_artifacts):
        if folder in ("", "."):
            raise ConfigError(
                f"nbship.yaml: artifacts: {remote.path}: a remote artifact needs its own folder "
                "(the root filesystem is read-only in the cluster; nbship mounts a writable volume there)",
                hint=f"download it to a folder, e.g. path: weights/{remote.path}",
            )
        for local in spec.artifacts:
            if local.path == folder or local.path.startswith(folder + "/"):
                raise ConfigError(
                    f"nbship.yaml: artifacts: {remote.path}: its folder {folder}/ also holds the shipped "
                    f"artifact {local.path}, which the writable volume for downloads would hide",
                    hint="put remote artifacts in a folder of their own",
                )
    folders = sorted({posixpath.dirname(r.path) for r in spec.remote_artifacts})
    return (WritableDir("tmp", "/tmp", "256Mi"),
            *(WritableDir(DOWNLOAD_VOLUME, f"/app/{f}", sub_path=_prefix(spec) + f) for f in folders))


def _prefix(spec: ProjectSpec) -> str:
    """On a PVC shared by several services, each keeps its files under its own name."""
    return f"{spec.name}/" if spec.downloads.claim else ""


def download_context(spec: ProjectSpec) -> DownloadContext | None:
    """The init container's volumes and settings, or None when the notebook declares no remote artifact."""
    if not spec.remote_artifacts:
        return None
    downloads = spec.downloads
    secrets = sorted({r.credentials for r in spec.remote_artifacts if r.credentials})
    return DownloadContext(
        container=INIT_CONTAINER,
        volume=DOWNLOAD_VOLUME,
        kind=downloads.kind,
        size_limit=downloads.size_limit,
        claim=downloads.claim,
        storage_class=downloads.storage_class,
        credentials=tuple(
            CredentialVolume(f"credentials-{i}", s, f"{CREDENTIALS_DIR}/{s}") for i, s in enumerate(secrets)
        ),
        attempts=downloads.attempts,
        env=downloads.env,
        mount_path=DOWNLOAD_MOUNT,
        download_dir=f"{DOWNLOAD_MOUNT}/{_prefix(spec)}".rstrip("/"),
    )
