"""Property-based fuzzing of the service's OpenAPI document (schemathesis): no input yields a 5xx.

Bounded: at most 30 generated requests per operation and mode (valid and invalid data), 2 s per request.
The fixture's fault paths (a payload asking for a sleep or a failure) are switched off through their
parameter, as a real model has none. Schemathesis' strategies are driven with Hypothesis directly (its pytest
plugin fails under pytest 9: 'Function' object has no attribute '_nodeid').
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.service._harness import build_context, start

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

pytestmark = pytest.mark.slow


def test_no_generated_request_gets_a_server_error(tmp_path: Any) -> None:
    context = build_context(tmp_path / "ctx", predict_timeout_seconds=5.0, max_concurrency=2, queue_size=64)
    running = start(context, {"NBSHIP_PARAM_ALLOW_FAULTS": "false"})
    server_errors: list[str] = []
    operations = 0
    try:
        schema = schemathesis.openapi.from_url(running.url + "/openapi.json")
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1
            for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

                @given(case=operation.as_strategy(mode))
                @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
                def fuzz(case: Any) -> None:
                    response = case.call(timeout=2)
                    if response.status_code >= 500:
                        server_errors.append(
                            f"{case.method} {case.formatted_path}: {response.status_code} "
                            f"{response.text[:200]} for {case.body!r}"[:600]
                        )

                try:
                    fuzz()
                except Unsatisfiable:  # nothing to make invalid (a GET without parameters)
                    assert mode is schemathesis.GenerationMode.NEGATIVE
    finally:
        assert running.terminate() == 0
    assert operations == 12  # every route of the document was fuzzed
    assert server_errors == []
    access = [e for e in running.log_lines() if e.get("logger") == "nbship.access"]
    assert len(access) > operations * 5 and not [e for e in access if e["status"] >= 500]
    statuses = {e["status"] for e in access if e["route"] == "/predict"}
    assert {200, 422} <= statuses  # both valid and invalid payloads were generated
