"""Parity stage: a rendered build context → findings, by running its package on the notebook's example.

``verify_parity`` runs ``python -m nbship_runtime.selftest`` in a fresh interpreter inside the build context
(with local copies standing in for remote artifacts, ``stage_remote_copies``) and compares its answer with the
example cell's saved output, as the smoke test later does for the image. ``run_parity(observe=True)`` runs it
in the notebook's folder instead and returns the files the code opened there (``nbship.observed`` turns them
into artifacts).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from nbship.batching import probe_in
from nbship.errors import Finding, Location
from nbship.spec import ProjectSpec


def stage_remote_copies(spec: ProjectSpec, root: Path) -> list[Path]:
    """Link the local copies of remote artifacts under ``root``: the one beside the notebook (its sha256 checked
    by ``nbship check``), else the user cache's, downloaded once (``nbship.weights``).

    For the runs on this machine (the parity check, ``nbship serve``); in the image the init container downloads
    them. Returns what it put there, for the caller to remove (the links only: the copies stay).

    Raises:
        EnvironmentMissingError, UserError: as ``nbship.weights.local_copy``.
    """
    import shutil

    from nbship.weights import local_copy

    staged = []
    for remote in spec.remote_artifacts:
        target = root / remote.path
        if target.exists():
            continue
        local = local_copy(remote, spec.source_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.symlink_to(local.resolve())
        except OSError:  # no symlinks here (Windows without the privilege)
            shutil.copyfile(local, target)
        staged.append(target)
    return staged


def verify_parity(spec: ProjectSpec, root: Path, *, timeout: float = 600) -> list[Finding]:
    """Point 7: run the rendered package in a fresh interpreter and compare its answer with the saved output."""
    return run_parity(spec, root, timeout=timeout)[0]


Opened = dict[str, str | None]


def run_parity(
    spec: ProjectSpec, root: Path, *, timeout: float = 600, observe: bool = False
) -> tuple[list[Finding], Opened | None, dict[str, Any] | None]:
    """Parity; with ``observe``, the run happens in the notebook's folder and also returns the files the code
    opened there (relative path → ``"nb.ipynb cell 3 line 2"``). Third, the batching probe's evidence
    (``nbship.batching.judge`` decides), None when the run failed."""
    import subprocess
    import sys
    import tempfile

    from nbship import _proc

    if spec.example is None:
        return [], None, None
    where = Location(spec.notebook_file, spec.example.cell, None)
    staged = stage_remote_copies(spec, root)
    # -P: the notebook's folder (the working directory) must not shadow modules, as it would not in the image
    argv = [sys.executable, *(["-P"] if sys.version_info >= (3, 11) else []), "-m", "nbship_runtime.selftest"]
    with tempfile.TemporaryDirectory(prefix="nbship-opened-") as tmp:
        opened_file = Path(tmp) / "opened.json"
        if observe:
            argv += [str(root), "--opened", str(opened_file)]
        try:
            done = _proc.run(argv, cwd=spec.source_dir if observe else root, timeout=timeout,
                             env=_clean_env(root))
        except subprocess.TimeoutExpired:
            return [Finding("error", "parity",
                            f"the exported code did not answer the example within {timeout:.0f} s", where)], None, None
        finally:
            for path in staged:
                path.unlink(missing_ok=True)
        opened = json.loads(opened_file.read_text(encoding="utf-8")) if opened_file.is_file() else None
    evidence = probe_in(done.stdout) if done.returncode == 0 else None
    return _parity_findings(spec, done, where), opened, evidence


def _parity_findings(spec: ProjectSpec, done: subprocess.CompletedProcess[str], where: Location) -> list[Finding]:
    from nbship.compare import same_response

    assert spec.example is not None
    if done.returncode != 0:
        try:
            report = json.loads(done.stderr.strip().splitlines()[-1])
        except (ValueError, IndexError):
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            return [Finding("error", "parity", f"the exported code failed:\n{tail}", where)]
        frames = report["where"]
        cell_where = where
        if frames:
            _file, _, rest = frames[-1].partition(" cell ")
            cell_no, _, line_no = rest.partition(" line ")
            cell_where = Location(spec.notebook_file, int(cell_no), int(line_no))
        return [Finding("error", "parity", f"the exported code raised {report['error']} during {report['stage']}",
                        cell_where, "It ran in the notebook's kernel: does it depend on state from an untagged "
                        "cell or on the order the cells were run in?")]
    actual = json.loads(done.stdout.strip().splitlines()[-1])
    differences = same_response(spec.example.response, actual)
    if not differences:
        return []
    shown = "; ".join(differences[:5])
    return [Finding(
        "error", "parity",
        f"the exported code answers the example differently from the notebook: {shown}\n"
        f"  notebook: {json.dumps(spec.example.response, sort_keys=True)[:300]}\n"
        f"  exported: {json.dumps(actual, sort_keys=True)[:300]}",
        where, "The notebook's output may be stale (run it again and save), or the exported cells depend on "
               "state from untagged cells.",
    )]


def _clean_env(root: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("NBSHIP_PARAM_")}
    env["PYTHONPATH"] = str(root)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env
