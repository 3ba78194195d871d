"""Options shared by several commands, declared once."""

from __future__ import annotations

from enum import Enum

import typer


class Output(str, Enum):
    """``--output``: text for people, or one JSON document on stdout."""

    text = "text"
    json = "json"


class Resolver(str, Enum):
    """``--resolver``: the programs that resolve a lock."""

    uv = "uv"
    pip_tools = "pip-tools"


class Overlay(str, Enum):
    """``--env``: the overlays ``nbship render`` writes under ``k8s/overlays``."""

    staging = "staging"
    production = "production"


ConfigOption = typer.Option(
    None, "--config", "-c", help="nbship.yaml to use (default: the one beside the notebook).", show_default=False
)
OutputOption = typer.Option(
    Output.text, "--output", help="text, or json: one JSON document on stdout.", case_sensitive=False
)

FrozenOption = typer.Option(
    None,
    "--frozen/--no-frozen",
    help="Fail when requirements.lock is missing or stale instead of resolving (default: on in CI).",
    show_default=False,
)
