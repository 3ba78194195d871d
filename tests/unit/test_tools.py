"""A test that needs a missing tool skips on a developer's machine and fails in CI."""

from __future__ import annotations

import pytest

from tests.tools import require_module


def test_a_missing_tool_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NBSHIP_E2E_REQUIRED", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no_such_parser is not installed"):
        require_module("no_such_parser", "pip install it")
    monkeypatch.setenv("NBSHIP_E2E_REQUIRED", "1")
    with pytest.raises(pytest.fail.Exception, match=r"no_such_parser is not installed .*CI installs it"):
        require_module("no_such_parser", "pip install it")
    assert require_module("json", "stdlib").dumps([]) == "[]"
