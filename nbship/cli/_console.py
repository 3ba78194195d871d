"""The one stderr console of the CLI: progress, warnings and errors. stdout carries data only."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from nbship.errors import Finding, NbshipError


_ci_flag = False


def set_ci() -> None:
    """``--ci``: behave as under a CI runner even without ``CI=true``."""
    global _ci_flag
    _ci_flag = True
    console.cache_clear()


def ci_mode() -> bool:
    return _ci_flag or os.environ.get("CI", "").lower() in ("1", "true", "yes")


def ci_default(frozen: bool | None) -> bool:
    """``--frozen``/``--no-frozen`` as given, else frozen in CI: CI checks the committed lock, never resolves."""
    return ci_mode() if frozen is None else frozen


@lru_cache(maxsize=1)
def console() -> Console:
    """stderr; in CI no animations (plain lines) and colour only when asked (FORCE_COLOR).

    Off a terminal (a CI log, a pipe, a file) nothing is wrapped: rich would break lines at 80 columns there, and a
    finding split in two is missed by a script that greps for it. On a terminal rich wraps at its width.
    """
    from rich.console import Console

    soft_wrap = not stderr_is_terminal()
    if ci_mode():
        forced = "FORCE_COLOR" in os.environ
        return Console(stderr=True, highlight=False, force_terminal=forced, no_color=not forced, soft_wrap=soft_wrap)
    return Console(stderr=True, highlight=False, no_color="NO_COLOR" in os.environ, soft_wrap=soft_wrap)


def stderr_is_terminal() -> bool:
    """The real stream, not rich's guess: FORCE_COLOR makes rich treat a CI log as a terminal."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def report_error(error: NbshipError) -> None:
    from nbship.errors import CheckFailedError, ExitCode

    if isinstance(error, CheckFailedError):
        report_findings(error.findings)
    out = console()
    label = "interrupted" if error.exit_code == ExitCode.INTERRUPTED else "error"
    out.print(f"{label}: {error.message}", markup=False, soft_wrap=True, style="bold red")
    if error.hint:
        out.print("hint: " + error.hint, markup=False, soft_wrap=True)


def report_findings(findings: Iterable[Finding]) -> None:
    out = console()
    for f in findings:
        style = "red" if f.severity == "error" else "yellow"
        out.print(f"{f.severity}: {f}", style=style, markup=False, soft_wrap=True)
        if f.hint:
            out.print(f"  hint: {f.hint}", markup=False, soft_wrap=True)


def print_json(document: Any) -> None:
    """Write one JSON document on stdout (the ``--output json`` contract)."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()
