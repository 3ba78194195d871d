"""Notebooks for tests, built in code (never hand-edited .ipynb files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}
LANGUAGE = {"name": "python", "version": "3.11.7"}


def code(source: str, role: str | None = None, *, result: Any = None, tags: list[str] | None = None) -> Any:
    """A code cell; ``role`` becomes the tag ``nbship:<role>``; ``result`` its saved ``text/plain`` output."""
    all_tags = list(tags or []) + ([f"nbship:{role}"] if role else [])
    cell = new_code_cell(source, metadata={"tags": all_tags} if all_tags else {})
    if result is not None:
        cell.outputs = [
            new_output("execute_result", data={"text/plain": repr(result)}, execution_count=1)
        ]
        cell.execution_count = 1
    return cell


def markdown(text: str) -> Any:
    return new_markdown_cell(text)


def write_notebook(path: Path, *cells: Any, language: dict[str, str] | None = None) -> Path:
    nb = new_notebook(cells=list(cells), metadata={"kernelspec": KERNEL, "language_info": language or LANGUAGE})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path
