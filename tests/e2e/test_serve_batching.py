"""Adaptive batching over real HTTP: a rendered notebook served by uvicorn, concurrent requests through one predict."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.batching_notebooks import INDEPENDENT, rows_notebook
from tests.fixtures.service._harness import Running, start

pytestmark = pytest.mark.slow
PAUSE = 0.4  # each predict call sleeps this long, so requests sent meanwhile wait for the one worker


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    from nbship.project import render_project

    folder = tmp_path_factory.mktemp("batching")
    notebook = rows_notebook(folder / "nb", INDEPENDENT, 3.0, pause=PAUSE, config="server:\n  max_concurrency: 1\n")
    render_project(notebook, folder / "ctx", lock=False)  # the parity run proves batching
    running = start(folder / "ctx", timeout=60)
    yield running
    assert running.terminate() == 0


def counters(client: httpx.Client) -> dict[str, float]:
    text = client.get("/metrics").text
    wanted = ("nbship_batch_size_count", "nbship_batch_size_sum", "nbship_batch_model_seconds_count",
              "nbship_batching_enabled")
    return {name: float(re.search(rf"^{name}{{[^}}]*}} (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
            for name in wanted}


def test_concurrent_requests_are_answered_through_one_predict_call(service: Running) -> None:
    with httpx.Client(base_url=service.url, timeout=30) as client:
        before = counters(client)
        assert before["nbship_batching_enabled"] == 1

        def ask(x: float) -> tuple[int, object]:
            response = client.post("/predict", json={"x": x})
            return response.status_code, response.json()

        with ThreadPoolExecutor(8) as threads:
            first = threads.submit(ask, 0.5)
            time.sleep(PAUSE / 3)  # the worker is in predict for the first request: the others queue
            rest = [threads.submit(ask, float(x)) for x in range(1, 7)]
            answers = [first.result()] + [f.result() for f in rest]
        assert answers == [(200, {"y": 1.0})] + [(200, {"y": 2.0 * x}) for x in range(1, 7)]
        after = counters(client)
    assert after["nbship_batch_model_seconds_count"] - before["nbship_batch_model_seconds_count"] == 2
    assert after["nbship_batch_size_count"] - before["nbship_batch_size_count"] == 2
    assert after["nbship_batch_size_sum"] - before["nbship_batch_size_sum"] == 7


def test_predict_batch_and_v2_infer_make_one_predict_call_for_their_items(service: Running) -> None:
    with httpx.Client(base_url=service.url, timeout=30) as client:
        before = counters(client)
        batch = client.post("/predict/batch", json=[{"x": 1}, {"x": 1e308}, {"x": 2.5}, {"x": 4}])
        infer = client.post("/v2/models/rows/infer", json={"inputs": [
            {"name": "payload", "shape": [3], "datatype": "JSON", "data": [{"x": 1}, {"x": 2}, {"x": 3}]}]})
        after = counters(client)
    items = batch.json()["items"]
    assert [item.get("result") for item in items] == [{"y": 2.0}, None, {"y": 5.0}, {"y": 8.0}]
    assert items[1]["status"] == 500  # 2e308 is not JSON: that item fails alone, after the one batched call
    assert infer.status_code == 200, infer.text
    assert infer.json()["outputs"][0]["data"] == [{"y": 2.0}, {"y": 4.0}, {"y": 6.0}]
    assert after["nbship_batch_model_seconds_count"] - before["nbship_batch_model_seconds_count"] == 2


def test_the_manifest_says_why_batching_is_on(service: Running) -> None:
    log = Path(service.log_path).read_text()
    assert '"event": "batching"' in log and "proven on the example" in log
