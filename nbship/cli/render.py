"""``nbship render``: write the build context of a notebook's service."""

from __future__ import annotations

from pathlib import Path

import typer

from nbship.cli._options import ConfigOption, FrozenOption


def render(
    notebook: Path = typer.Argument(..., help="The notebook to render.", show_default=False),
    out: Path = typer.Option(Path("build"), "--out", "-o", help="The build context directory to write."),
    config: Path | None = ConfigOption,
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip the parity run of the example."),
    frozen: bool | None = FrozenOption,
) -> None:
    """Check a notebook, lock its dependencies and write its build context (package, service, lock, Dockerfile).

    Example: nbship render examples/notebooks/tabular-churn/churn.ipynb --out build/churn
    """
    from nbship.cli._console import ci_default, console, report_findings
    from nbship.project import render_project

    result = render_project(notebook, out, config=config, verify=not no_verify, frozen=ci_default(frozen))
    report_findings(result.findings)
    console().print(f"wrote {result.out} (package {result.spec.package})", markup=False)
