"""GitHub Actions: check findings as ``::error file=…,line=…::`` annotations pointing into the notebook file,
and short summaries appended to ``$GITHUB_STEP_SUMMARY``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nbship.errors import Finding


def enabled() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _escape(text: str, *, property: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property else text


def workflow_commands(findings: Iterable[Finding], notebook: Path) -> list[str]:
    """One workflow command per finding; the line is the notebook file's own line for that cell line."""
    from nbship.notebook import source_file_lines

    try:
        positions = source_file_lines(notebook.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        positions = {}
    commands = []
    for finding in findings:
        where = finding.location
        file = notebook if where.file == notebook.name else notebook.parent / where.file
        properties = [f"file={_escape(_repository_path(file), property=True)}"]
        lines = positions.get(where.cell or 0, []) if file == notebook else []
        line = None
        if lines:
            line = lines[min((where.line or 1), len(lines)) - 1]
        elif file != notebook and where.line:
            line = where.line
        if line is not None:
            properties.append(f"line={line}")
        properties.append(f"title={_escape('nbship ' + finding.code, property=True)}")
        message = str(finding) + (f"\n{finding.hint}" if finding.hint else "")
        commands.append(f"::{finding.severity} {','.join(properties)}::{_escape(message)}")
    return commands


def _repository_path(path: Path) -> str:
    """GitHub wants paths relative to the checkout."""
    workspace = os.environ.get("GITHUB_WORKSPACE")
    resolved = path.resolve()
    if workspace and resolved.is_relative_to(Path(workspace).resolve()):
        return resolved.relative_to(Path(workspace).resolve()).as_posix()
    return path.as_posix()


def emit_annotations(findings: Iterable[Finding], notebook: Path, *, to_stderr: bool) -> None:
    """Print the annotations when running on GitHub Actions (stderr when stdout carries a JSON document)."""
    if not enabled():
        return
    stream = sys.stderr if to_stderr else sys.stdout
    for command in workflow_commands(findings, notebook):
        print(command, file=stream)


def append_summary(markdown: str) -> None:
    """Append to the job's step summary, when there is one."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(markdown.rstrip("\n") + "\n")


def build_summary(record: dict[str, Any]) -> str:
    """The step summary of ``nbship build``: image, digest, smoke test, sizes."""
    smoke: dict[str, Any] = record.get("smoke") or {}
    sizes: dict[str, Any] = record.get("sizes") or {}
    rows = [
        ("image", f"`{record.get('image')}`"),
        ("digest", f"`{record.get('digest')}`" if record.get("digest") else "not pushed"),
        ("reused", "yes" if record.get("reused") else "no"),
        ("smoke test", ("passed" if smoke.get("passed") else "failed") if smoke else "skipped"),
        ("model load", f"{record.get('model_load_seconds')} s" if record.get("model_load_seconds") else "-"),
        ("image size", f"{int(sizes.get('image_bytes') or 0) / 2**20:.1f} MiB"),
    ]
    return "### nbship build\n\n| | |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)


def deploy_summary(result: dict[str, Any], ok: bool) -> str:
    """The step summary of ``nbship deploy``."""
    if not ok:
        return (f"### nbship deploy failed\n\n{result.get('error')}\n\n"
                f"Rolled back to revision {result.get('rolled_back_to')}.\n")
    return (f"### nbship deploy\n\n`{result.get('image')}` → deployment/{result.get('deployment')} in "
            f"{result.get('namespace')}, revision {result.get('revision')} ({result.get('seconds')} s)\n")
