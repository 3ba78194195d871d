"""``nbship check``: prove the notebook's serving cells are complete, safe and give the notebook's answer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nbship.cli._options import ConfigOption, Output, OutputOption

if TYPE_CHECKING:
    from nbship.check import CheckResult


def check(
    notebook: Path = typer.Argument(..., help="The notebook to check.", show_default=False),
    config: Path | None = ConfigOption,
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip the parity run of the example."),
    output: Output = OutputOption,
) -> None:
    """Check a notebook: roles, names, IPython syntax, secrets, artifacts, and parity with its saved output.

    Example: nbship check examples/notebooks/tabular-churn/churn.ipynb --output json
    """
    from nbship.cli._console import console, print_json, report_findings
    from nbship.cli._github import emit_annotations
    from nbship.errors import CheckFailedError
    from nbship.project import check_notebook

    result = check_notebook(notebook, config_path=config, verify=not no_verify)
    emit_annotations(result.findings, notebook, to_stderr=output is Output.json)
    if output is Output.json:
        print_json({
            "notebook": str(notebook),
            "ok": not result.errors,
            "findings": [f.as_json() for f in result.findings],
            "batching": _batching(result),
        })
    if result.errors:
        if output is Output.json:
            raise typer.Exit(int(CheckFailedError(result.findings).exit_code))
        raise CheckFailedError(result.findings)
    report_findings(result.findings)
    exported = len(result.code.cells)
    console().print(f"ok: {notebook.name}: {exported} exported cells"
                    + ("" if no_verify else ", the example gives the notebook's output"), markup=False)
    batching = _batching(result)
    if batching is not None:
        console().print(f"batching {'on' if batching['enabled'] else 'off'}: {batching['note']}", markup=False)


def _batching(result: CheckResult) -> dict[str, object] | None:
    """What ``nbship.json`` will say about batching (None while an error blocks the spec)."""
    if result.spec is None:
        return None
    entry = result.spec.batching
    return {"enabled": entry.enabled, "note": entry.note, "sizes": list(entry.sizes)}
