"""Batch decoding and the schema's limits, without a server: item limit, NaN paths, capped errors, deep nesting."""

from __future__ import annotations

import json

import pytest

from nbship.runtime.batch import decode_array, read_batch
from nbship.runtime.schema import MAX_ERRORS, build_schema, nonfinite_errors
from nbship.runtime.service import Refusal

EXAMPLE = {"x": 1.0, "tags": ["a"], "meta": None}
SCHEMA = build_schema(None, EXAMPLE, "toy")


def test_the_item_limit_is_met_before_the_rest_of_the_body_is_decoded() -> None:
    items, _ = decode_array(b' [ {"a": 1} , [2] ,"3"] ', 3)
    assert items == [{"a": 1}, [2], "3"]
    with pytest.raises(Refusal) as raised:
        decode_array(b"[1, 2, 3, 4, this is never decoded", 3)
    assert raised.value.status == 413
    assert decode_array(b"[]", 3) == ([], set())


@pytest.mark.parametrize("body, kind", [
    (b'{"not": "a list"}', "list_type"), (b"[1, 2", "json_invalid"), (b"[1,]", "json_invalid"),
    (b"[1] 2", "json_invalid"), (b"\xff[", "json_invalid"), (b"[" * 50_000 + b"]" * 50_000, "json_too_deep"),
])
def test_a_body_that_is_not_an_array_is_422_with_its_reason(body: bytes, kind: str) -> None:
    with pytest.raises(Refusal) as raised:
        decode_array(body, 256)
    assert raised.value.status == 422 and raised.value.detail[0]["type"] == kind


def test_nan_and_infinity_are_found_with_their_path() -> None:
    body = b'{"x": NaN, "tags": ["a"], "meta": {"deep": [1, -Infinity]}}'
    assert [(e["loc"], e["msg"]) for e in nonfinite_errors(body)] == [
        (["body", "x"], "Input should be a finite number (got NaN)"),
        (["body", "meta", "deep", 1], "Input should be a finite number (got -Infinity)"),
    ]
    assert nonfinite_errors(b'{"x": 1.0, "tags": ["NaN"]}') == []  # a string is not a number
    batch = read_batch(SCHEMA, b'[{"x": 1, "tags": [], "meta": null}, {"x": Infinity, "tags": [], "meta": null}]', 9)
    assert batch.valid == [(0, {"x": 1, "tags": [], "meta": None})]
    assert batch.answers[1] == {"status": 422, "detail": [
        {"loc": ["body", 1, "x"], "msg": "Input should be a finite number (got Infinity)", "type": "finite_number"}]}


def test_an_overflowing_number_is_refused_by_an_inferred_schema() -> None:
    with pytest.raises(Exception) as raised:
        SCHEMA.parse(b'{"x": 1e999, "tags": [], "meta": null}')
    assert [e["type"] for e in raised.value.errors] == ["finite_number"]  # type: ignore[attr-defined]


def test_error_lists_are_capped() -> None:
    noisy = json.dumps([{f"k{i}": i for i in range(100)}]).encode()
    (answer,) = read_batch(SCHEMA, noisy, 9).answers
    assert answer is not None and len(answer["detail"]) == MAX_ERRORS + 1
    # 100 extra keys and 2 missing fields: ten shown, the other 92 counted
    assert answer["detail"][-1] == {"loc": ["body", 0], "msg": "and 92 more error(s)", "type": "too_many_errors"}


def test_metric_method_labels_come_from_a_closed_set() -> None:
    from nbship.runtime.metrics import Metrics

    metrics = Metrics("toy", "1")
    for method in ("GET", "PURGE", "FOO0", "FOO1", "get"):
        metrics.observe(method, "unmatched", 404, 0.001)
    assert sorted(metrics.requests) == [("GET", "unmatched", 404), ("other", "unmatched", 404)]
    assert metrics.requests[("other", "unmatched", 404)] == 4


def test_the_config_requires_room_for_the_queue() -> None:
    from pydantic import ValidationError

    from nbship.config import Server

    assert Server().max_connections == 64 and Server().max_batch_items == 256
    with pytest.raises(ValidationError, match=r"max_connections \(8\) must be at least max_concurrency \+ queue_size"):
        Server(max_connections=8, queue_size=16)
    assert Server(max_connections=8).queue_size is None  # admission by time: no count for connections to cover
