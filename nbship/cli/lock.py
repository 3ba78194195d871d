"""``nbship lock``: pin what the notebook ran with into ``requirements.lock``, with hashes."""

from __future__ import annotations

from pathlib import Path

import typer

from nbship.cli._options import ConfigOption, FrozenOption, Output, OutputOption, Resolver


def lock(
    notebook: Path = typer.Argument(..., help="The notebook whose dependencies to lock.", show_default=False),
    config: Path | None = ConfigOption,
    resolver: Resolver | None = typer.Option(
        None, "--resolver", help="uv (default, fast) or pip-tools; default: `resolver:` in nbship.yaml.",
        show_default=False,
    ),
    python: str | None = typer.Option(
        None, "--python", help="Python version of the image (default: nbship.yaml, then the notebook's).",
        show_default=False,
    ),
    platform: str = typer.Option("linux/amd64", "--platform", help="linux/amd64 or linux/arm64."),
    upgrade: bool = typer.Option(False, "--upgrade", "-U", help="Re-resolve everything to the newest allowed."),
    upgrade_package: list[str] | None = typer.Option(
        None, "--upgrade-package", "-P", help="Upgrade only this package (repeatable).", show_default=False
    ),
    frozen: bool | None = FrozenOption,
    output: Output = OutputOption,
) -> None:
    """Lock the notebook's dependencies into requirements.lock beside it; re-resolves only when an input changed.

    Example: nbship lock examples/notebooks/tabular-churn/churn.ipynb --frozen
    """
    from nbship.cli._console import ci_default, console, print_json
    from nbship.deps import ensure_lock
    from nbship.deps.request import lock_request
    from nbship.errors import UsageError

    if platform not in ("linux/amd64", "linux/arm64"):
        raise UsageError(f"--platform must be linux/amd64 or linux/arm64 (got {platform!r})")
    request = lock_request(
        notebook, config_path=config, resolver=resolver.value if resolver else None,
        python=python, platform=platform,  # type: ignore[arg-type]
        frozen=ci_default(frozen), upgrade=upgrade, upgrade_packages=upgrade_package or (),
    )
    result = ensure_lock(request)
    if output is Output.json:
        print_json({
            "lock": str(result.path), "resolved": result.resolved, "resolver": result.resolver,
            "input_hash": result.input_hash, "pins": dict(result.pins), "notes": list(result.notes),
        })
        return
    out = console()
    for note in result.notes:
        out.print(f"note: {note}", markup=False, soft_wrap=True)
    if result.resolved:
        out.print(f"locked {notebook.name}: {len(result.pins)} pins with {result.resolver} → {result.path}",
                  markup=False, soft_wrap=True)
    else:
        out.print(f"{result.path.name} is up to date (written by {result.resolver}; no resolution)", markup=False)
