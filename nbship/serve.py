"""Local serving: a rendered build context's service run here as a child process, without Docker.

The service runs as a child process (``python main.py`` in the build context, exactly what the image runs), so
``--reload`` can re-render and restart it with fresh imports. The child is supervised with ``subprocess.Popen``
rather than ``_proc.run``: it is long-lived, its log streams to this terminal, and signals are forwarded to it.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nbship.errors import NbshipError, UserError


@dataclass(frozen=True)
class ServeEvents:
    """Where the supervisor reports: the service started (its build context and pid), a change, a failed render."""

    started: Callable[[Path, int], None] = lambda context, pid: None
    changed: Callable[[], None] = lambda: None
    render_failed: Callable[[NbshipError], None] = lambda error: None


def supervise(
    render: Callable[[], Path],
    watched: Sequence[Path],
    *,
    name: str,
    host: str,
    port: int | None,
    reload: bool,
    events: ServeEvents = ServeEvents(),
) -> None:
    """Run the service of the build context ``render()`` returns until it exits or SIGTERM/Ctrl-C; with ``reload``,
    call ``render`` again when a ``watched`` file changes and restart on the fresh context (a failed render keeps the
    last good service running).

    Raises:
        UserError: the service exited with an error of its own (a load cell or a parameter failed).
    """
    context = render()
    child = _start(context, host, port)
    events.started(context, child.pid)
    stopping = False

    def terminate(*_: object) -> None:
        nonlocal stopping
        stopping = True
        child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, terminate)
    stamp = _stamp(watched)
    try:
        while not stopping and (child.poll() is None or reload):
            time.sleep(0.3)
            if not reload or _stamp(watched) == stamp:
                continue
            stamp = _stamp(watched)
            events.changed()
            try:
                fresh = render()
            except NbshipError as e:  # keep the last good service running while the notebook is fixed
                events.render_failed(e)
                continue
            _stop(child)
            shutil.rmtree(context, ignore_errors=True)
            context = fresh
            child = _start(context, host, port)
    except KeyboardInterrupt:  # Ctrl-C reached the child too (same process group): let it drain
        pass
    code = _stop(child)
    if code not in (0, -signal.SIGINT, -signal.SIGTERM):
        raise UserError(f"the {name} service exited with code {code}; its log is above",
                        hint="a load cell or a parameter failed at start-up: run `nbship check` on the notebook")


def require_server() -> None:
    """The service runs on FastAPI and uvicorn in this environment: say so in one sentence when they are missing.

    Raises:
        EnvironmentMissingError: either package cannot be imported here.
    """
    from importlib.util import find_spec

    from nbship.errors import EnvironmentMissingError

    missing = [name for name in ("fastapi", "uvicorn") if find_spec(name) is None]
    if missing:
        raise EnvironmentMissingError(
            f"{' and '.join(missing)} missing from the environment that runs nbship, so the service cannot start here",
            hint="reinstall nbship (pip install --force-reinstall nbship): they are among its dependencies",
        )


def _start(context: Path, host: str, port: int | None) -> subprocess.Popen[bytes]:
    import os
    import subprocess
    import sys

    env = {**os.environ, "NBSHIP_HOST": host, **({"NBSHIP_PORT": str(port)} if port else {})}
    return subprocess.Popen([sys.executable, "main.py"], cwd=context, env=env)


def _stop(child: subprocess.Popen[bytes], grace: float = 30) -> int:
    import signal
    import subprocess

    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    try:
        return child.wait(grace)
    except subprocess.TimeoutExpired:
        child.kill()
        return child.wait()


def _stamp(paths: Sequence[Path]) -> tuple[tuple[int, int], ...]:
    return tuple((p.stat().st_mtime_ns, p.stat().st_size) if p.exists() else (-1, -1) for p in paths)
