"""Options shared by several commands, declared once."""

from __future__ import annotations

import typer

ConfigOption = typer.Option(
    None, "--config", "-c", help="nbship.yaml to use (default: the one beside the notebook).", show_default=False
)
OutputOption = typer.Option(
    "text", "--output", help="text, or json: one JSON document on stdout.", case_sensitive=False
)

FrozenOption = typer.Option(
    None,
    "--frozen/--no-frozen",
    help="Fail when requirements.lock is missing or stale instead of resolving (default: on in CI).",
    show_default=False,
)
