"""``nbship build``: the notebook's image, built, smoke-tested and optionally pushed, with ``nbship-build.json``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from nbship.cli._options import ConfigOption, FrozenOption, Output, OutputOption

if TYPE_CHECKING:
    from rich.console import Console

    from nbship.image.build import BuildOptions, BuildProgress, BuildRecord


def build(
    notebook: Path = typer.Argument(
        ..., help="The notebook, or a build context written by `nbship render`.", show_default=False
    ),
    out: Path = typer.Option(Path("build"), "--out", "-o", help="Where to render the build context."),
    config: Path | None = ConfigOption,
    frozen: bool | None = FrozenOption,
    tag: list[str] | None = typer.Option(
        None, "--tag", "-t", help="Another tag (repeatable); the content tag is always there.", show_default=False
    ),
    repository: str | None = typer.Option(
        None, "--repository", help="Image repository (default: nbship.yaml, then the name).", show_default=False
    ),
    platform: str | None = typer.Option(
        None, "--platform", help="linux/amd64 or linux/arm64 (default: the engine's own).", show_default=False
    ),
    push: bool = typer.Option(False, "--push", help="Push every tag, with your Docker config's credentials."),
    no_smoke: bool = typer.Option(False, "--no-smoke", help="Skip running the image on the notebook's example."),
    record: Path | None = typer.Option(
        None, "--record", help="Where to write the build record (default: nbship-build.json in the build context).",
        show_default=False,
    ),
    output: Output = OutputOption,
) -> None:
    """Build the notebook's image through the Docker engine, smoke-test it, and push it with --push.

    Example: nbship build examples/notebooks/tabular-churn/churn.ipynb --push --repository 127.0.0.1:5000/churn
    """
    from nbship.cli._console import console, print_json
    from nbship.image.build import BuildOptions

    options = BuildOptions(extra_tags=tuple(tag or ()), platform=platform, smoke=not no_smoke, push=push)
    result, record = build_and_record(notebook, out, options, config=config, frozen=frozen, repository=repository,
                                      record=record)
    if output is Output.json:
        print_json(result.as_json())
        return
    reused = " (reused: nothing changed)" if result.reused else ""
    console().print(f"built {result.image}{reused}", markup=False, soft_wrap=True)
    if result.smoke:
        console().print(f"smoke test passed: ready in {result.smoke.ready_seconds:.1f} s, uid {result.smoke.uid}")
    if result.digest:
        console().print(f"pushed {', '.join(result.pushed)} @ {result.digest}", markup=False, soft_wrap=True)
    console().print(f"wrote {record}", markup=False)


def build_and_record(
    notebook: Path, out: Path, options: BuildOptions, *, config: Path | None, frozen: bool | None,
    repository: str | None, record: Path | None = None,
) -> tuple[BuildRecord, Path]:
    """Build a notebook (rendered into ``out``) or a build context, showing progress; the record and where it is.

    Raises:
        NbshipError: as ``nbship.project.build``.
    """
    from dataclasses import replace

    from nbship.cli._console import ci_default, console
    from nbship.cli._github import append_summary, build_summary
    from nbship.image.build import build_labels
    from nbship.image.docker_engine import connect
    from nbship.project import build
    from nbship.spec import Overrides

    options = replace(options, labels=build_labels(notebook if notebook.is_dir() else notebook.parent))
    builder = connect()
    with _Display(console()) as display:
        result, written = build(builder, notebook, out, options, display.progress, config=config,
                                frozen=ci_default(frozen), overrides=Overrides(repository=repository), record=record)
    append_summary(build_summary(result.as_json()))
    return result, written


class _Display:
    """Rich progress on a terminal; plain lines otherwise (CI logs)."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn

        from nbship.image.build import BuildProgress

        self.console, self.live = console, console.is_terminal
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            console=console,
            transient=True,
        )
        self.task = self.bar.add_task("starting", total=None)
        self.layers: dict[str, Any] = {}
        self.progress: BuildProgress = BuildProgress(stage=self.stage, line=self.line, push=self.push)

    def __enter__(self) -> _Display:
        if self.live:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.bar.stop()

    def stage(self, text: str) -> None:
        self.console.print(text, markup=False, soft_wrap=True, highlight=False)

    def line(self, text: str) -> None:
        if not self.live:
            self.console.print("  " + text, markup=False, soft_wrap=True, highlight=False)
        elif text.startswith("Step "):
            self.bar.update(self.task, description=text[:100])

    def push(self, event: Any) -> None:
        if not self.live:
            if self.layers.get(event.layer) != event.status:
                self.layers[event.layer] = event.status
                self.console.print(f"  {event.layer}: {event.status}", markup=False, highlight=False)
            return
        if event.layer not in self.layers:
            self.layers[event.layer] = self.bar.add_task(f"layer {event.layer}", total=event.total)
        self.bar.update(
            self.layers[event.layer],
            completed=event.current or 0,
            total=event.total,
            description=f"layer {event.layer}: {event.status}",
        )
