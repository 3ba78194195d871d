"""Stage 3b: the files the service needs → ``ArtifactRef``s with size and sha256.

Relative paths in ``load`` and ``parameters`` cells that point at existing files or folders beside the notebook
are artifacts, whether written as literals or built by expressions (``artifact_paths``); a path with an
artifact's extension that does not exist is an error, as is a path that leaves the notebook's folder, and a
dotfile (``.env``, ``.netrc``), which holds credentials, never ships.
``artifacts:`` in nbship.yaml adds more, or declares remote ones (downloaded and verified at start-up, never
copied into the build context).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nbship.artifact_paths import path_uses
from nbship.config import Artifact
from nbship.errors import Finding, Location
from nbship.extract import CleanCell
from nbship.runtime.artifacts import file_sha256  # the runtime verifies downloads with the same function
from nbship.runtime.sources import SCHEME_REQUIREMENTS, scheme_of

ARTIFACT_SUFFIXES = frozenset(
    ".joblib .pkl .pickle .pt .pth .onnx .h5 .hdf5 .keras .json .csv .tsv .parquet .feather .npy .npz .bin "
    ".safetensors .txt .model .ckpt .tflite .pb .yaml .yml .msgpack .ubj .cbm .lgb .xgb .vocab .spm .gz .zip "
    ".tar .index".split()
)
_UNCOPYABLE = re.compile(r"[$\\\"'*?\[\]\x00-\x1f\x7f]")
_SKIPPED = frozenset({"__pycache__", ".ipynb_checkpoints"})
_NOT_SHIPPED_SUFFIXES = (".ipynb", ".pyc", ".pyo", ".pyd")  # .dockerignore drops bytecode: it never ships


@dataclass(frozen=True)
class ArtifactRef:
    path: str  # POSIX, relative to the notebook's folder
    size: int
    sha256: str
    cell: int | None  # None when it comes from nbship.yaml
    is_dir: bool = False
    line: int | None = None
    files: tuple[str, ...] = ()  # of a folder: what ships, POSIX, relative to it; the sha256 covers exactly these


@dataclass(frozen=True)
class RemoteArtifact:
    path: str
    uri: str
    sha256: str
    credentials: str | None = None  # name of the Kubernetes Secret holding the client's variables

    @property
    def scheme(self) -> str:
        return scheme_of(self.uri)


@dataclass(frozen=True)
class _FolderScan:
    shipped: tuple[str, ...]  # POSIX paths relative to the folder, in hash order
    dotfiles: tuple[str, ...]  # left out of the image
    escaping: tuple[str, ...]  # symlinks that leave the notebook's folder, or point nowhere


def _scan_folder(base: Path, folder: Path) -> _FolderScan:
    """What of ``folder`` ships: its files, following symlinks that stay inside ``base`` (the notebook's folder).

    Dotfiles and dot-folders (``.env``, ``.git/``) are left out, as are caches and compiled bytecode, which the
    build context ignores anyway. A symlink whose target leaves ``base`` or does not exist is reported instead of
    followed: copying through it would put files from elsewhere (``keys -> ~/.ssh``) into the image.
    """
    shipped: list[str] = []
    dotfiles: list[str] = []
    escaping: list[str] = []
    walked: set[Path] = set()

    def visit(directory: Path, prefix: str) -> None:
        real = directory.resolve()
        if real in walked:  # a link back to a folder already walked
            return
        walked.add(real)
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            relative = prefix + entry.name
            if entry.name in _SKIPPED or entry.name.endswith(_NOT_SHIPPED_SUFFIXES):
                continue
            if entry.name.startswith("."):
                dotfiles.append(relative + ("/" if entry.is_dir() else ""))
                continue
            if entry.is_symlink():
                target = Path(entry.path).resolve()
                if not target.is_relative_to(base) or not target.exists():
                    escaping.append(relative)
                    continue
            if entry.is_dir():
                visit(Path(entry.path), relative + "/")
            elif entry.is_file():
                shipped.append(relative)

    visit(folder, "")
    # the order of the hash as before: by path components
    return _FolderScan(tuple(sorted(shipped, key=lambda r: r.split("/"))), tuple(dotfiles), tuple(escaping))


def describe_artifact(base: Path, relative: str, cell: int | None, line: int | None = None,
                      scan: _FolderScan | None = None) -> ArtifactRef:
    """The artifact at ``base / relative``, file or folder, with its size and sha256.

    A folder's hash covers exactly the files that ship (``files``), each by path and content.
    """
    target = base / relative
    if target.is_dir():
        scan = scan or _scan_folder(base, target)
        digest = hashlib.sha256()
        size = 0
        for name in scan.shipped:
            digest.update(f"{name}\0{file_sha256(target / name)}\n".encode())
            size += (target / name).stat().st_size
        return ArtifactRef(relative, size, digest.hexdigest(), cell, is_dir=True, line=line, files=scan.shipped)
    return ArtifactRef(relative, target.stat().st_size, file_sha256(target), cell, line=line)


def find_artifacts(
    notebook: Path, cells: tuple[CleanCell, ...], declared: list[Artifact]
) -> tuple[list[ArtifactRef], list[RemoteArtifact], list[Finding]]:
    """Artifacts referenced by load/parameters cells and declared in the config, with their hashes."""
    base = notebook.parent.resolve()
    found: dict[str, ArtifactRef] = {}
    findings: list[Finding] = []

    def problem(message: str, cell: int | None, line: int | None, hint: str | None = None) -> None:
        where = Location(notebook.name, cell, line) if cell is not None else Location("nbship.yaml")
        findings.append(Finding("error", "artifact", message, where, hint))

    def add(relative: str, cell: int | None, line: int | None) -> None:
        if relative in found:
            return
        where = Location(notebook.name, cell, line) if cell is not None else Location("nbship.yaml")
        if _UNCOPYABLE.search(relative):
            # COPY reads its sources as patterns (and may expand $VARIABLES), even in its JSON form
            findings.append(Finding("error", "artifact", f"'{relative}' has a character the image build cannot copy "
                                    "literally ($, \\, quotes, *, ?, [ ] or a control character)", where,
                                    "Rename the file or folder."))
            return
        scan = _scan_folder(base, base / relative) if (base / relative).is_dir() else None
        if scan is not None and (scan.escaping or scan.dotfiles or not scan.shipped):
            problems = _folder_findings(relative, scan, where)
            findings.extend(problems)
            if any(f.severity == "error" for f in problems) or not scan.shipped:
                return
        found[relative] = describe_artifact(base, relative, cell, line, scan)

    remote = [
        RemoteArtifact(a.path, a.uri, a.sha256, a.credentials.secret if a.credentials else None)
        for a in declared if a.uri and a.sha256
    ]
    remote_paths = {PurePosixPath(r.path).as_posix() for r in remote}
    for use in path_uses(cells, ("load", "parameters", "setup")):
        assert use.text is not None or not use.literal
        if use.text is None:
            continue  # reported after the parity run, unless the load cells opened what it names
        path = Path(use.text)
        if use.role == "setup":  # a file a setup cell reads ships; anything else there is not judged
            target = (base / path).resolve()
            if not path.is_absolute() and target.is_file() and target.is_relative_to(base) \
                    and target != notebook.resolve():
                relative = PurePosixPath(posixpath.normpath(PurePosixPath(*path.parts).as_posix())).as_posix()
                if _is_dotfile(relative):
                    findings.append(_dotfile_finding(f"'{use.text}'", Location(notebook.name, use.cell, use.line)))
                elif relative not in remote_paths:
                    found.setdefault(relative, describe_artifact(base, relative, use.cell, use.line))
            continue
        shown = f"'{use.text}'" if use.literal else f"'{use.text}' ({use.expression})"
        looks_like_file = path.suffix.lower() in ARTIFACT_SUFFIXES and " " not in use.text
        if path.is_absolute():
            if looks_like_file or (path.exists() and len(path.parts) > 1):
                problem(f"{shown} is an absolute path, which will not exist in the image", use.cell, use.line,
                        "Use a path relative to the notebook's folder.")
            continue
        target = (base / path).resolve()
        relative = PurePosixPath(posixpath.normpath(PurePosixPath(*path.parts).as_posix())).as_posix()
        if relative in remote_paths:
            continue
        if not target.exists():
            if looks_like_file:
                problem(f"{shown} does not exist beside the notebook", use.cell, use.line,
                        "Create the file (run the training cells), or declare it as a remote artifact in "
                        "nbship.yaml.")
            continue
        if target == notebook.resolve():
            continue
        if not target.is_relative_to(base):
            problem(f"{shown} is outside the notebook's folder", use.cell, use.line,
                    "Move the file under the notebook's folder so it can be copied into the image.")
            continue
        if target == base or (use.base_only and target.is_dir()):
            continue
        if _is_dotfile(relative):
            findings.append(_dotfile_finding(shown, Location(notebook.name, use.cell, use.line)))
            continue
        add(relative, use.cell, use.line)
    for artifact in declared:
        if artifact.uri:
            local = base / artifact.path
            if local.is_file() and file_sha256(local) != artifact.sha256:
                problem(f"artifacts: the local copy of {artifact.path} does not match its declared sha256", None,
                        None, "Update sha256 in nbship.yaml or the file.")
            continue
        if not (base / artifact.path).exists():
            problem(f"artifacts: {artifact.path} does not exist beside the notebook", None, None)
            continue
        relative = PurePosixPath(artifact.path).as_posix().rstrip("/")
        if _is_dotfile(relative):
            findings.append(_dotfile_finding(f"artifacts: {artifact.path}", Location("nbship.yaml")))
            continue
        if not (base / relative).resolve().is_relative_to(base):
            problem(f"artifacts: {artifact.path} is a symlink that leaves the notebook's folder", None, None,
                    "Copy the file under the notebook's folder, or declare it as a remote artifact.")
            continue
        add(relative, None, None)
    remote_dirs = {PurePosixPath(r.path).parent for r in remote}
    for shipped in found.values():
        if any(PurePosixPath(shipped.path).is_relative_to(d) for d in remote_dirs if d != PurePosixPath(".")):
            problem(f"artifacts: {shipped.path} shares a folder with a remote artifact; that folder is mounted "
                    "empty and writable in the pod, which would hide it", shipped.cell, None,
                    "Keep remote artifacts in a folder of their own.")
    if PurePosixPath(".") in remote_dirs:
        problem("artifacts: a remote artifact must be in a sub-folder (weights/model.bin), which is mounted writable",
                None, None)
    return sorted(found.values(), key=lambda a: a.path), remote, findings


def download_requirements(declared: list[Artifact]) -> tuple[str, ...]:
    """The client libraries the image needs for the declared remote artifacts: boto3 only with s3://, and so on."""
    schemes = sorted({scheme_of(a.uri) for a in declared if a.uri})
    return tuple(r for s in schemes for r in SCHEME_REQUIREMENTS.get(s, ()))


def _is_dotfile(relative: str) -> bool:
    """``.env``, ``.netrc``, ``config/.env``, ``.aws/credentials``: a dotfile, or a file in a dot-folder."""
    return any(part.startswith(".") and part not in (".", "..") for part in PurePosixPath(relative).parts)


def _dotfile_finding(shown: str, where: Location) -> Finding:
    return Finding(
        "error", "artifact-dotfile", f"{shown} is a dotfile (.env, .netrc, …): these hold credentials, and nbship "
        "does not copy them into the image", where,
        "Put each value the service needs in a Kubernetes Secret and list it under `secrets:` in nbship.yaml "
        "({env: NAME, secret: <secret name>, key: <key>}): the service reads it from os.environ. A file that holds "
        "no secret: rename it so that its name does not start with a dot.")


def _folder_findings(relative: str, scan: _FolderScan, where: Location) -> list[Finding]:
    found = []
    for link in scan.escaping:
        found.append(Finding(
            "error", "artifact-symlink", f"{relative}/{link} is a symlink that leaves the notebook's folder (or points "
            "nowhere); it would copy files from elsewhere into the image", where,
            "Remove the link, or replace it with a copy of the files the service needs."))
    if scan.dotfiles:
        shown = ", ".join(f"{relative}/{d}" for d in scan.dotfiles[:5]) + (" …" if len(scan.dotfiles) > 5 else "")
        found.append(Finding("warning", "artifact-dotfile", f"left out of the image: {shown} (dotfiles in artifact "
                             "folders are not shipped)", where,
                             "Rename a file the service needs so it does not start with a dot."))
    if not scan.shipped and not scan.escaping:
        found.append(Finding("warning", "artifact-empty", f"{relative}/ holds no file to ship; it is not copied",
                             where))
    return found


def pickled_modules(path: Path) -> set[str]:
    """Top-level modules a pickle-based file (pickle, joblib, torch) needs to load, read without unpickling it.

    A model saved by scikit-learn needs scikit-learn installed to load, even when the notebook's exported cells
    never import it; the lock adds these.
    """
    from nbship.pickles import pickle_globals

    tops = {module.split(".")[0] for module, _ in pickle_globals(path)}
    return {m for m in tops if not m.startswith("_") and m not in ("builtins", "copyreg")}
