"""The one subprocess wrapper: an argument list, never a shell, argv logged when verbose."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger("nbship.proc")


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` and capture its output as text.

    Raises:
        FileNotFoundError: the program does not exist.
        subprocess.TimeoutExpired: it ran longer than ``timeout``.
        subprocess.CalledProcessError: ``check`` is set and it exited non-zero.
    """
    args = [os.fspath(a) for a in argv]
    log.debug("run: %s", " ".join(args))
    return subprocess.run(
        args,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )
