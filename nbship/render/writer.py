"""Writing a build context atomically: all of it appears at once, or nothing changes."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Union

from nbship.errors import UserError

Content = Union[str, bytes, Path]  # a Path is copied from that file or folder  # noqa: UP007 (a runtime alias)
MARKER = "nbship.json"


def write_tree(files: Mapping[str, Content], out: Path, before_commit: Callable[[Path], None] | None = None) -> None:
    """Write ``files`` under ``out``, replacing a previous build context there.

    ``before_commit(tmp)`` runs on the complete tree before it replaces ``out``; if it raises, ``out`` is
    untouched and the temporary tree is removed.

    Raises:
        UserError: ``out`` exists, is not empty and is not a build context nbship wrote.
    """
    out = out.resolve()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise UserError(
            f"{out}: exists and is not a build context written by nbship; refusing to replace it",
            hint="Choose another --out directory, or empty this one.",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.nbship-tmp-", dir=out.parent))
    try:
        for relative, content in sorted(files.items()):
            target = tmp / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                if content.is_dir():
                    shutil.copytree(content, target, ignore=shutil.ignore_patterns("__pycache__", "*.ipynb",
                                                                                   ".ipynb_checkpoints"))
                else:
                    shutil.copyfile(content, target)
            elif isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        if before_commit is not None:
            before_commit(tmp)
        _clear_caches(tmp)
        if out.exists():
            old = out.with_name(f".{out.name}.nbship-old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _clear_caches(root: Path) -> None:
    for cache in root.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
