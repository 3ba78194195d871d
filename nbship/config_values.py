"""``nbship.yaml``'s rules for strings that reach the build context as they are written.

Config values end up in Dockerfile instructions, shell lines of ``RUN``, YAML manifests and comments. Templates
quote what they can (``shell_quote``, ``tojson``); these rules refuse at load time, with the key and the line,
what no quoting makes safe: a line break anywhere, shell characters in a path, a resource name or an image
reference that is not one. Each function returns the value or raises ``ValueError`` for pydantic to locate.
"""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
# letters, digits and . _ - / only: such a path reaches a Dockerfile or a shell line unchanged, quoted or not
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._\-]+(?:/[A-Za-z0-9._\-]+)*/?$")
# an extended resource name: an optional DNS prefix, then a name (nvidia.com/gpu, amd.com/gpu)
_RESOURCE_NAME = re.compile(
    r"^(?:[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
# an image reference as `docker pull` takes it: [registry[:port]/]path[:tag][@sha256:digest]
_IMAGE_REF = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._\-]*(?::[0-9]+)?(?:/[A-Za-z0-9._\-]+)*(?::[A-Za-z0-9_][A-Za-z0-9._\-]{0,127})?"
    r"(?:@sha256:[0-9a-f]{64})?$")


def one_line(value: Any) -> Any:
    """Every string in ``value`` (a string, or a list or mapping of them) is one line without control characters."""
    for text in _strings(value):
        if _CONTROL.search(text):
            raise ValueError("must not contain a line break or other control character")
    return value


def has_control_character(text: str) -> bool:
    return _CONTROL.search(text) is not None


def safe_path(value: str) -> str:
    if not _SAFE_PATH.match(value):
        raise ValueError("may hold only letters, digits, '.', '_', '-' and '/' (no spaces or shell characters)")
    return value


def resource_name(value: str) -> str:
    if not _RESOURCE_NAME.match(value):
        raise ValueError("must be an extended resource name such as nvidia.com/gpu")
    return value


def image_reference(value: str) -> str:
    if len(value) > 255 or not _IMAGE_REF.match(value):
        raise ValueError("must be an image reference such as registry.example.com/team/churn:1.0")
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (*_strings(k), *_strings(v))]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _strings(v)]
    return []
