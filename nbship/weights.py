"""Local loop, remote artifacts: a ``RemoteArtifact`` → the file to use on this machine.

``nbship check`` (its parity run) and ``nbship serve`` use the copy beside the notebook when there is one (its
sha256 is checked by ``nbship check``). Otherwise the file is downloaded once into the user cache, by the same
runtime code the pod's init container runs, with the credentials of the user's own environment: ``AWS_*``
variables and profiles for ``s3://``, ``HF_TOKEN`` or the ``huggingface-cli login`` token for ``hf://``.

The cache is ``$NBSHIP_CACHE_DIR``, else ``$XDG_CACHE_HOME/nbship``, else ``~/.cache/nbship``; a file lives under
``weights/<sha256>/<name>`` and is only ever moved there after its sha256 was verified, so finding it is enough.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from nbship.artifacts import RemoteArtifact
from nbship.errors import EnvironmentMissingError, UserError
from nbship.runtime.manifest import RemoteArtifactEntry


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where downloaded weights are kept between runs."""
    if environ.get("NBSHIP_CACHE_DIR"):
        return Path(environ["NBSHIP_CACHE_DIR"]) / "weights"
    base = Path(environ["XDG_CACHE_HOME"]) if environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "nbship" / "weights"


def local_copy(remote: RemoteArtifact, source_dir: Path, cache: Path | None = None) -> Path:
    """The local file standing in for ``remote``: beside the notebook, else in the cache (downloaded once).

    Raises:
        EnvironmentMissingError: the scheme's client library is not installed here.
        UserError: the download failed: refused credentials, a missing object, a sha256 mismatch (named).
    """
    import importlib.util

    from nbship.runtime.artifacts import ArtifactError, fetch_file
    from nbship.runtime.sources import SCHEME_MODULES, SCHEME_REQUIREMENTS, opener_for

    beside = source_dir / remote.path
    if beside.is_file():
        return beside
    cached = (cache or cache_dir()) / remote.sha256 / PurePosixPath(remote.path).name
    if cached.is_file():
        return cached
    module = SCHEME_MODULES.get(remote.scheme)
    if module is not None and importlib.util.find_spec(module) is None:
        raise EnvironmentMissingError(
            f"nbship.yaml: artifacts: {remote.path}: downloading {remote.scheme}:// here needs {module}",
            hint=f"pip install 'nbship[{remote.scheme}]' (or '{SCHEME_REQUIREMENTS[remote.scheme][0]}'), "
                 f"or put a copy at {remote.path} beside the notebook",
        )
    try:
        fetch_file(cached, remote.uri, remote.sha256, opener=lambda: opener_for(remote.uri), label=remote.path)
    except ArtifactError as e:
        raise UserError(
            f"nbship.yaml: artifacts: {remote.path}: {e}",
            hint=_credentials_hint(remote.scheme) + f"; or put a copy at {remote.path} beside the notebook",
        ) from None
    return cached


def seed_folders(
    entries: Sequence[RemoteArtifactEntry], staging: Path, source_dir: Path | None = None
) -> dict[str, Path]:
    """For the smoke test: host folders holding local copies of the ``s3://`` and ``hf://`` artifacts of a
    manifest, by the path the container sees them at (``/app/<folder>``).

    The smoke test's container gets none of this machine's credentials (a profile or a hub login would not even
    work there), so these folders are mounted where the init container would have put the files; ``https://``
    artifacts are still downloaded in the container, as in the pod, and timed.

    Raises:
        EnvironmentMissingError, UserError: as ``local_copy``.
    """
    import shutil

    from nbship.runtime.sources import SCHEME_MODULES

    folders: dict[str, Path] = {}
    for entry in entries:
        remote = RemoteArtifact(entry.path, entry.uri, entry.sha256)
        if remote.scheme not in SCHEME_MODULES:
            continue
        local = local_copy(remote, source_dir or staging / "no-source")
        folder = PurePosixPath(remote.path).parent
        host = staging.joinpath(*folder.parts)
        host.mkdir(parents=True, exist_ok=True)
        for part in (staging, *[staging.joinpath(*folder.parts[:i + 1]) for i in range(len(folder.parts))]):
            part.chmod(0o777)  # the container's user (10001) reads these, and writes an https:// file beside
        target = host / PurePosixPath(remote.path).name
        try:
            if not local.stat().st_mode & 0o004:  # a link shares the mode: the container's user could not read it
                raise PermissionError(local)
            os.link(local, target)
        except OSError:  # another filesystem, or not readable by others
            shutil.copyfile(local, target)
            target.chmod(0o644)
        folders[f"/app/{folder.as_posix()}"] = host
    return folders


def _credentials_hint(scheme: str) -> str:
    if scheme == "s3":
        return ("locally the download uses your AWS environment: AWS_PROFILE or AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY, and AWS_ENDPOINT_URL for an S3-compatible store")
    if scheme == "hf":
        return "locally the download uses HF_TOKEN or your `huggingface-cli login`, and HF_ENDPOINT for another hub"
    return "check the URL and the sha256 in nbship.yaml"
