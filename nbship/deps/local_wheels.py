"""Lock stage, local-only pins: a pinned version whose files exist only in a local find-links folder.

pip's ``find-links`` folders (a CPU build of torch, ``torch-2.13.0+cpu-….whl`` in ``/opt/wheels``) take part in
resolving on this machine, but the image's builder installs from indexes only: a pin that only such a folder
provides would fail ``docker build`` minutes later. A pin is local-only when every file hash the lock lists for
it is the hash of a file in a local find-links folder (an index would have added the hashes of its own files).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from nbship.deps.lockfile import LockEntry
from nbship.deps.pipconf import PipSettings
from nbship.runtime.artifacts import file_sha256


@dataclass(frozen=True)
class LocalOnlyPin:
    name: str
    version: str
    files: tuple[Path, ...]  # the local files that provide it

    @property
    def folder(self) -> Path:
        return self.files[0].parent


def local_only_pins(entries: Iterable[LockEntry], settings: PipSettings) -> list[LocalOnlyPin]:
    """The pins of ``entries`` that only a local find-links folder of ``settings`` provides."""
    folders = [f for f in (_local_folder(link) for link in settings.find_links) if f is not None]
    if not folders:
        return []
    found = []
    for entry in entries:
        if not entry.hashes:
            continue
        files = [p for folder in folders for p in _files_of(folder, entry.name, entry.version)]
        if not files:
            continue
        local = {"sha256:" + file_sha256(p) for p in files}
        if set(entry.hashes) <= local:
            found.append(LocalOnlyPin(entry.name, entry.version, tuple(sorted(files))))
    return found


def describe_local_only(pins: Sequence[LocalOnlyPin]) -> tuple[str, str]:
    """One message naming the pins and where they are, and what to do about it."""
    listed = "; ".join(f"{p.name}=={p.version} (only in {p.folder})" for p in pins)
    public = ", ".join(f"{p.name}=={p.version.split('+')[0]}" for p in pins)
    message = (f"{'a pin exists' if len(pins) == 1 else 'pins exist'} only in a local find-links folder, which "
               f"the image's builder cannot reach: {listed}")
    hint = (f"Pin a version an index serves (requirements in nbship.yaml, e.g. {public}), or add the index that "
            "serves this build to pip's configuration (e.g. extra-index-url https://download.pytorch.org/whl/cpu "
            "for torch's CPU builds); then run `nbship lock` again.")
    return message, hint


def _local_folder(link: str) -> Path | None:
    parts = urlsplit(link)
    if parts.scheme in ("http", "https"):
        return None
    path = Path(unquote(parts.path)) if parts.scheme == "file" else Path(link)
    return path if path.is_dir() else None


def _files_of(folder: Path, name: str, version: str) -> list[Path]:
    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        canonicalize_name,
        parse_sdist_filename,
        parse_wheel_filename,
    )
    from packaging.version import InvalidVersion, Version

    try:
        wanted = (canonicalize_name(name), Version(version))
    except InvalidVersion:
        return []
    found = []
    for path in folder.iterdir():
        try:
            if path.name.endswith(".whl"):
                project, got, _, _ = parse_wheel_filename(path.name)
            elif path.name.endswith((".tar.gz", ".zip")):
                project, got = parse_sdist_filename(path.name)
            else:
                continue
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
            continue
        if (project, got) == wanted and path.is_file():
            found.append(path)
    return found
