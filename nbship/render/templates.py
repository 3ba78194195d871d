"""Render stage, shared part: the one Jinja environment every template of the build context goes through.

Templates live in the top-level ``templates/`` directory; the package finds them as its ``templates`` resource
through jinja2's ``PackageLoader``: in the wheel ``pyproject.toml`` force-includes them as ``nbship/templates``,
and in a source checkout (an editable install) ``nbship/templates`` is a symbolic link to ``../templates``.
"""

from __future__ import annotations

import re
import shlex
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2 import Environment

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


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
        ValueError: the package has no ``templates`` folder (a broken installation, not something a user causes).
    """
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("nbship", "templates"),
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
