"""Issue 13 point 2: the V2 ``infer`` tensor shape is bounded before it is multiplied; a bad one is a fast 400."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.fixtures.service._harness import EXAMPLE
from tests.security.conftest import HealthWatch, Serve

pytestmark = pytest.mark.slow


def infer(client: httpx.Client, shape: object, data: list[object], raw_shape: str | None = None) -> httpx.Response:
    tensor = {"name": "payload", "shape": shape, "datatype": "JSON", "data": data}
    body = json.dumps({"inputs": [tensor]})
    if raw_shape is not None:  # integers too large for json.dumps to be the point
        body = body.replace('"shape": null', f'"shape": {raw_shape}')
    return client.post("/v2/models/toy/infer", content=body, headers={"content-type": "application/json"})


def test_a_shape_of_huge_or_many_dimensions_is_refused_at_once(serve: Serve) -> None:
    service = serve(max_body_bytes=10 * 1024 * 1024)
    huge = "[" + ",".join(["9" * 4000] * 100) + "]"  # 400 KB: math.prod blocked the loop for a second
    with httpx.Client(base_url=service.url, timeout=30) as client, HealthWatch(service.url) as watch:
        started = time.perf_counter()
        refused = infer(client, None, [EXAMPLE], raw_shape=huge)
        seconds = time.perf_counter() - started
        many = infer(client, [1] * 9, [EXAMPLE])
        wide = infer(client, [100_000, 0], [])
        negative = infer(client, [-1], [EXAMPLE])
        too_many = infer(client, [257], [EXAMPLE] * 257)
        fine = infer(client, [2], [EXAMPLE] * 2)
    assert refused.status_code == 400 and "shape" in refused.json()["error"] and seconds < 0.5
    assert many.status_code == 400 and "shape" in many.json()["error"]
    assert wide.status_code == 400 and "max_batch_items" in wide.json()["error"]
    assert negative.status_code == 400
    assert too_many.status_code == 413 and "max_batch_items" in too_many.json()["error"]
    assert fine.status_code == 200 and len(fine.json()["outputs"][0]["data"]) == 2
    assert watch.worst < 1.0
