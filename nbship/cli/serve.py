"""``nbship serve``: render the notebook into a temporary build context and run its service here, without Docker.

The service runs as a child process (``python main.py`` in the build context, exactly what the image runs), so
``--reload`` can re-render and restart it with fresh imports. The child is supervised with ``subprocess.Popen``
rather than ``_proc.run``: it is long-lived, its log streams to this terminal, and signals are forwarded to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nbship.cli._options import ConfigOption

if TYPE_CHECKING:
    import subprocess


def serve(
    notebook: Path = typer.Argument(..., help="The notebook to serve.", show_default=False),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 for every one)."),
    port: int | None = typer.Option(None, "--port", "-p", help="Port (default: `port` in nbship.yaml, 8080).",
                                       show_default=False),
    reload: bool = typer.Option(False, "--reload", help="Re-render and restart when the notebook or config changes."),
    config: Path | None = ConfigOption,
    verify: bool = typer.Option(False, "--verify", help="Run the parity check of the example before serving."),
) -> None:
    """Serve a notebook's model locally with uvicorn: the fast inner loop, and the fallback without Docker.

    Example: nbship serve examples/notebooks/tabular-churn/churn.ipynb --port 8080 --reload
    """
    import shutil
    import signal
    import tempfile
    import time

    from nbship.cli._console import console, report_error, report_findings
    from nbship.errors import NbshipError, UserError
    from nbship.parity import stage_remote_copies
    from nbship.project import render_project

    _require_server()
    watched = [notebook, config or notebook.parent / "nbship.yaml"]
    with tempfile.TemporaryDirectory(prefix="nbship-serve-") as tmp:
        generation = 0

        def render() -> Path:
            nonlocal generation
            generation += 1  # a fresh directory each time: the running service keeps its files until replaced
            # serving runs in this environment: no lock needed; local copies stand in for remote artifacts
            result = render_project(notebook, Path(tmp) / f"context-{generation}", config=config, verify=verify,
                                    lock=False)
            stage_remote_copies(result.spec, result.out)
            report_findings(result.findings)
            return result.out

        context = render()
        child = _start(context, host, port)
        console().print(f"serving {notebook.name} from {context} (pid {child.pid})", markup=False)
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
                console().print(f"{notebook.name} changed: re-rendering", markup=False)
                try:
                    fresh = render()
                except NbshipError as e:  # keep the last good service running while the notebook is fixed
                    report_error(e)
                    continue
                _stop(child)
                shutil.rmtree(context, ignore_errors=True)
                context = fresh
                child = _start(context, host, port)
        except KeyboardInterrupt:  # Ctrl-C reached the child too (same process group): let it drain
            pass
        code = _stop(child)
    if code not in (0, -signal.SIGINT, -signal.SIGTERM):
        raise UserError(f"the {notebook.name} service exited with code {code}; its log is above",
                        hint="a load cell or a parameter failed at start-up: run `nbship check` on the notebook")


def _require_server() -> None:
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


def _stamp(paths: list[Path]) -> tuple[tuple[int, int], ...]:
    return tuple((p.stat().st_mtime_ns, p.stat().st_size) if p.exists() else (-1, -1) for p in paths)
