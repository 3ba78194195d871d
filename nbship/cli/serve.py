"""``nbship serve``: render the notebook into a temporary build context and run its service here, without Docker."""

from __future__ import annotations

from pathlib import Path

import typer

from nbship.cli._options import ConfigOption


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
    from nbship.cli._console import console, report_error, report_findings
    from nbship.project import serve_notebook
    from nbship.serve import ServeEvents

    events = ServeEvents(
        started=lambda context, pid: console().print(f"serving {notebook.name} from {context} (pid {pid})",
                                                     markup=False),
        changed=lambda: console().print(f"{notebook.name} changed: re-rendering", markup=False),
        render_failed=report_error,
    )
    serve_notebook(notebook, host=host, port=port, reload=reload, config=config, verify=verify, events=events,
                   on_findings=report_findings)
