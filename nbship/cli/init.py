"""``nbship init``: propose cell roles and write a commented nbship.yaml."""

from __future__ import annotations

from pathlib import Path

import typer


def init(
    notebook: Path = typer.Argument(..., help="The notebook to prepare.", show_default=False),
    apply: bool = typer.Option(False, "--apply", help="Write the proposed tags into the notebook."),
    force: bool = typer.Option(False, "--force", help="Replace an existing nbship.yaml."),
) -> None:
    """Propose a role for each code cell (shown as a table) and write a commented nbship.yaml beside the notebook.

    Example: nbship init churn.ipynb --apply
    """
    from rich.table import Table

    from nbship.cli._console import console
    from nbship.config import CONFIG_FILE
    from nbship.notebook import parse_notebook
    from nbship.scaffold import apply_roles, config_template, propose_roles

    parsed = parse_notebook(notebook)
    proposals = propose_roles(parsed)
    table = Table("cell", "role", "why", "first line", title=f"{notebook.name}: proposed roles")
    for p in proposals:
        role = p.proposed or "-"
        table.add_row(str(p.cell), role if not p.changes else f"{role} (new)", p.reason, p.first_line[:60])
    out = console()
    out.print(table)
    config = notebook.parent / CONFIG_FILE
    if config.exists() and not force:
        out.print(f"kept {config} (--force replaces it)", markup=False)
    else:
        config.write_text(config_template(parsed), encoding="utf-8")
        out.print(f"wrote {config}", markup=False)
    if apply:
        changed = apply_roles(notebook, proposals)
        out.print(f"tagged {changed} cells in {notebook}", markup=False)
    elif any(p.changes for p in proposals):
        out.print("run again with --apply to write the new tags; then: nbship check " + str(notebook), markup=False)
