"""Tools a test needs (hadolint, promtool, kubectl, checkov, the Prometheus parser): skipped on a developer's
machine that lacks one, a failure under ``NBSHIP_E2E_REQUIRED=1`` (CI), where ``.ci/setup`` installs them all."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def missing_tool(message: str) -> BaseException:
    """What to raise for want of a tool: a failure in CI, a skip elsewhere (``raise missing_tool(...)``)."""
    if os.environ.get("NBSHIP_E2E_REQUIRED") == "1":
        return pytest.fail.Exception(f"{message} (CI installs it: .ci/setup)")
    return pytest.skip.Exception(message, allow_module_level=True)


def require_module(name: str, install: str) -> ModuleType:
    """``importlib.import_module(name)``, or ``missing_tool`` naming how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise missing_tool(f"{name} is not installed ({install})") from None
