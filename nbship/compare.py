"""Comparing a service's response with the notebook's saved output: the parity rule of check and smoke test.

JSON-like values must be equal, except that numbers compare with a relative tolerance (1e-6 by default), so a
float that went through JSON, numpy or another BLAS still matches. ``True`` is not ``1``.
"""

from __future__ import annotations

import math
from typing import Any


def same_response(expected: Any, actual: Any, rel_tol: float = 1e-6, path: str = "$") -> list[str]:
    """The differences between ``expected`` and ``actual``, each naming its JSON path; empty when they match."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return [] if expected is actual else [f"{path}: expected {expected!r}, got {actual!r}"]
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        if math.isclose(expected, actual, rel_tol=rel_tol, abs_tol=0.0) or (
            math.isnan(expected) and math.isnan(actual)
        ):
            return []
        return [f"{path}: expected {expected!r}, got {actual!r}"]
    if isinstance(expected, dict) and isinstance(actual, dict):
        differences = []
        for key in sorted(set(expected) | set(actual), key=str):
            if key not in actual:
                differences.append(f"{path}.{key}: missing from the response")
            elif key not in expected:
                differences.append(f"{path}.{key}: not in the notebook's output")
            else:
                differences += same_response(expected[key], actual[key], rel_tol, f"{path}.{key}")
        return differences
    if isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple)):
        if len(expected) != len(actual):
            return [f"{path}: expected {len(expected)} items, got {len(actual)}"]
        return [
            d for i, (e, a) in enumerate(zip(expected, actual)) for d in same_response(e, a, rel_tol, f"{path}[{i}]")
        ]
    return [] if expected == actual else [f"{path}: expected {expected!r}, got {actual!r}"]
