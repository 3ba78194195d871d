"""Render stage, shared part: the one Jinja environment every template of the build context goes through.

Templates live in the top-level ``templates/`` directory of a source checkout and are shipped in the wheel as
``nbship/templates`` (``pyproject.toml`` force-includes them); ``environment()`` finds either.
"""

from __future__ import annotations

import re
import shlex
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2 import Environment

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def templates_dir() -> Path:
    """The directory holding ``docker/``, ``k8s/`` and the other template families.

    Raises:
        FileNotFoundError: neither the wheel's ``nbship/templates`` nor a checkout's ``templates/`` exists
            (a broken installation, not something a user can cause).
    """
    for candidate in (_PACKAGE_DIR / "templates", _PACKAGE_DIR.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"nbship's templates are missing (looked in {_PACKAGE_DIR} and its parent)")


def shell_quote(value: object) -> str:
    """Quote ``value`` for a POSIX shell, so a name like ``foo$(touch x)`` reaches a ``RUN`` line inert."""
    return shlex.quote(str(value))


def dockerfile_quote(value: object) -> str:
    """A double-quoted Dockerfile word (``LABEL``, ``ENV`` values): backslash, quote and ``$`` escaped."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return '"' + text.replace("\n", " ") + '"'


def comment_text(value: object) -> str:
    """Text for a ``#`` comment: a line break in a name (a notebook called ``x\\nRUN …``) cannot end the comment."""
    return _CONTROL.sub("?", str(value))


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The cached environment: strict about undefined names, whitespace-faithful, with ``shell_quote``.

    Raises:
        FileNotFoundError: as ``templates_dir``.
    """
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(str(templates_dir())),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["shell_quote"] = shell_quote
    env.filters["dockerfile_quote"] = dockerfile_quote
    env.filters["comment"] = comment_text
    return env
