"""The generated service over real HTTP: a uvicorn process serving the fixture build context on 127.0.0.1."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.service._harness import EXAMPLE, Running, build_context, start

pytestmark = pytest.mark.slow
SCORE = -0.57167  # tanh(0.25 * 1 - 0.5 * 2 + 0.1), rounded by the fixture's postprocess


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    context = build_context(tmp_path_factory.mktemp("serve") / "ctx")
    (context / "requirements.lock").write_text("fastapi==0.1\n", encoding="utf-8")
    running = start(context, {"NBSHIP_IMAGE": "registry.example/toy:1.2.3", "NBSHIP_GIT_COMMIT": "abc123"})
    yield running
    assert running.terminate() == 0


@pytest.fixture
def client(service: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=10) as c:
        yield c


def entries(service: Running, **match: Any) -> list[dict[str, Any]]:
    return [e for e in service.log_lines() if all(e.get(k) == v for k, v in match.items())]


def wait_for_entry(service: Running, **match: Any) -> dict[str, Any]:
    for _ in range(100):
        found = entries(service, **match)
        if found:
            return found[-1]
        time.sleep(0.02)
    raise AssertionError(f"no log line with {match}")


def test_predict_answers_the_pipeline_with_request_id_and_model_version(client: httpx.Client) -> None:
    response = client.post("/predict", json=EXAMPLE)
    assert response.status_code == 200
    assert response.json() == {"score": SCORE, "positive": False}
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert response.headers["x-model-version"] == "1.2.3"
    echoed = client.post("/predict", json=EXAMPLE, headers={"X-Request-ID": "trace-42"})
    assert echoed.headers["x-request-id"] == "trace-42"


@pytest.mark.parametrize("path", ["/healthz", "/nowhere", "/metrics", "/v2/health/live"])
def test_every_response_carries_the_headers(client: httpx.Client, path: str) -> None:
    response = client.get(path, headers={"X-Request-ID": "abc"})
    assert response.headers["x-request-id"] == "abc" and response.headers["x-model-version"] == "1.2.3"


def test_a_payload_failing_the_schema_is_422_with_field_path_and_reason(client: httpx.Client) -> None:
    response = client.post("/predict", json={**EXAMPLE, "x": "one", "extra": 1})
    assert response.status_code == 422
    detail = {tuple(e["loc"]): e["msg"] for e in response.json()["detail"]}
    assert detail == {("body", "x"): "Input should be a number", ("body", "extra"): "Extra inputs are not permitted"}
    malformed = client.post("/predict", content=b'{"x": 1,', headers={"content-type": "application/json"})
    assert malformed.status_code == 422 and malformed.json()["detail"][0]["type"] == "json_invalid"


def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(client: httpx.Client) -> None:
    declared = client.post("/predict", content=b" " * 5000)  # limit 4096 in the fixture
    assert declared.status_code == 413 and declared.headers["x-request-id"]
    streamed = client.post("/predict", content=iter([b" " * 1000] * 5))  # chunked: no Content-Length
    assert streamed.status_code == 413
    assert client.post("/predict", json=EXAMPLE).status_code == 200


def test_a_pipeline_error_is_500_with_request_id_and_the_cell_only_in_the_log(
    client: httpx.Client, service: Running
) -> None:
    response = client.post("/predict", json={**EXAMPLE, "mode": "fail"}, headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.json()["request_id"] == "boom-1"
    assert "Traceback" not in response.text and "ZeroDivisionError" not in response.text
    error = wait_for_entry(service, event="prediction_failed", request_id="boom-1")
    assert error["where"] == "toy.ipynb cell 7 line 4"
    assert "toy.ipynb cell 7 line 4" in error["message"] and "ZeroDivisionError" in error["message"]
    assert "Traceback" in error["traceback"]


def test_a_slow_prediction_is_504_and_does_not_block_the_next_request(client: httpx.Client) -> None:
    with ThreadPoolExecutor(2) as threads:
        started = time.monotonic()
        slow = threads.submit(client.post, "/predict", json={**EXAMPLE, "mode": "slow", "delay": 3})
        time.sleep(0.2)
        fast = client.post("/predict", json=EXAMPLE)
        fast_done = time.monotonic() - started
        assert fast.status_code == 200 and fast_done < 2.0  # well before the slow one's 3 s sleep ends
        assert slow.result().status_code == 504
        assert time.monotonic() - started < 2.5  # answered at the 1 s deadline, not after the 3 s sleep
    assert client.post("/predict", json=EXAMPLE).status_code == 200


def test_batch_answers_each_item_on_its_own(client: httpx.Client) -> None:
    response = client.post("/predict/batch", json=[EXAMPLE, {"x": 1}, {**EXAMPLE, "mode": "fail"}])
    assert response.status_code == 200
    items = response.json()["items"]
    assert items[0] == {"status": 200, "result": {"score": SCORE, "positive": False}}
    assert items[1]["status"] == 422 and ["body", 1, "y"] in [e["loc"] for e in items[1]["detail"]]
    assert items[2]["status"] == 500
    assert client.post("/predict/batch", json={"not": "a list"}).status_code == 422


def test_kserve_v2_endpoints(client: httpx.Client) -> None:
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").json() == {"ready": True}
    metadata = client.get("/v2/models/toy").json()
    assert metadata["name"] == "toy" and metadata["versions"] == ["1.2.3"]
    assert client.get("/v2/models/toy/ready").status_code == 200
    assert client.get("/v2/models/other").status_code == 404
    tensor = {"name": "payload", "shape": [2], "datatype": "BYTES", "data": [json.dumps(EXAMPLE)] * 2}
    answer = client.post("/v2/models/toy/infer", json={"id": "r1", "inputs": [tensor]}).json()
    assert answer["id"] == "r1" and answer["model_name"] == "toy" and answer["model_version"] == "1.2.3"
    (output,) = answer["outputs"]
    assert output["shape"] == [2]
    assert [json.loads(d) for d in output["data"]] == [{"score": SCORE, "positive": False}] * 2
    as_json = {"inputs": [{"name": "payload", "shape": [1], "datatype": "JSON", "data": [EXAMPLE]}]}
    assert client.post("/v2/models/toy/infer", json=as_json).json()["outputs"][0]["data"] == [
        {"score": SCORE, "positive": False}
    ]
    bad = {"inputs": [{"name": "payload", "shape": [1], "datatype": "JSON", "data": [{"x": 1}]}]}
    refused = client.post("/v2/models/toy/infer", json=bad)
    assert refused.status_code == 400 and "element 0" in refused.json()["error"]


def test_health_readiness_and_version(client: httpx.Client, service: Running) -> None:
    assert client.get("/healthz").json() == {"status": "alive"}
    assert client.get("/readyz").json() == {"status": "ready"}
    version = client.get("/version").json()
    lock = (service.log_path.parent / "requirements.lock").read_bytes()
    import hashlib

    assert version == {
        "name": "toy",
        "version": "1.2.3",
        "nbship_version": "0.1.0",
        "notebook": "toy.ipynb",
        "notebook_sha256": "0" * 64,
        "lock_sha256": hashlib.sha256(lock).hexdigest(),
        "image": "registry.example/toy:1.2.3",
        "git_commit": "abc123",
    }


def test_metrics_count_requests_latency_errors_and_load_time(client: httpx.Client) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    client.post("/predict", json=EXAMPLE)
    client.post("/predict", json={**EXAMPLE, "mode": "fail"})
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = [s for f in text_string_to_metric_families(response.text) for s in f.samples]
    assert all(s.labels["model"] == "toy" and s.labels["version"] == "1.2.3" for s in samples)
    by_name: dict[str, list[Any]] = {}
    for s in samples:
        by_name.setdefault(s.name, []).append(s)
    ok = [
        s for s in by_name["nbship_requests_total"] if s.labels["route"] == "/predict" and s.labels["status"] == "200"
    ]
    assert ok and ok[0].value >= 1
    assert any(s.labels["status"] == "500" for s in by_name["nbship_requests_total"])
    assert [s.value for s in by_name["nbship_prediction_errors_total"] if s.labels["kind"] == "exception"][0] >= 1
    assert any(s.labels["route"] == "/predict" for s in by_name["nbship_request_duration_seconds_count"])
    assert by_name["nbship_model_load_seconds"][0].value > 0
    assert by_name["nbship_requests_in_flight"][0].value == 1  # this scrape itself


def test_openapi_shows_the_inferred_schema_with_the_example(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    body = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["example"] == EXAMPLE
    schema = document["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
    assert {k: v["type"] for k, v in schema["properties"].items()} == {
        "x": "number",
        "y": "number",
        "mode": "string",
        "delay": "number",
    }
    assert {"/predict/batch", "/v2/models/{name}/infer", "/metrics", "/readyz"} <= set(document["paths"])
    assert client.get("/docs").status_code == 200


def test_one_json_log_line_per_request_without_payload(client: httpx.Client, service: Running) -> None:
    client.post("/predict", json={**EXAMPLE, "mode": "secret-ish"}, headers={"X-Request-ID": "log-1"})
    line = wait_for_entry(service, logger="nbship.access", request_id="log-1")
    assert line["route"] == "/predict" and line["status"] == 200 and line["model_version"] == "1.2.3"
    assert isinstance(line["latency_ms"], float) and re.match(r"\d{4}-\d\d-\d\dT", line["time"])
    assert "payload" not in line and "secret-ish" not in json.dumps(line)
    assert len(entries(service, logger="nbship.access", request_id="log-1")) == 1


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """Two workers, two queue places, a generous timeout; payloads logged; a parameter overridden."""
    context = build_context(tmp_path_factory.mktemp("tight") / "ctx", predict_timeout_seconds=10.0, log_payloads=True)
    running = start(context, {"NBSHIP_PARAM_THRESHOLD": "-0.9"})
    yield running
    assert running.terminate() == 0


def test_beyond_concurrency_and_queue_requests_get_503_with_retry_after(tight: Running) -> None:
    slow = {**EXAMPLE, "mode": "slow", "delay": 1.5}
    with httpx.Client(base_url=tight.url, timeout=20) as client, ThreadPoolExecutor(6) as threads:
        responses = list(threads.map(lambda _: client.post("/predict", json=slow), range(6)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 200, 200, 503, 503]
    refused = [r for r in responses if r.status_code == 503]
    assert all(r.headers["retry-after"] == "1" and r.json()["request_id"] for r in refused)


def test_parameters_come_from_the_environment_and_payloads_are_logged_when_enabled(tight: Running) -> None:
    with httpx.Client(base_url=tight.url) as client:
        response = client.post("/predict", json=EXAMPLE, headers={"X-Request-ID": "param-1"})
    assert response.json() == {"score": SCORE, "positive": True}  # threshold -0.9 instead of 0.5
    line = wait_for_entry(tight, logger="nbship.access", request_id="param-1")
    assert json.loads(line["payload"]) == EXAMPLE


def test_a_model_declared_in_the_notebook_is_the_schema(tmp_path: Path) -> None:
    context = build_context(tmp_path / "ctx")
    shared = context / "toy" / "shared.py"
    shared.write_text(
        shared.read_text(encoding="utf-8")
        + (
            "\n\nfrom pydantic import BaseModel, Field\n\n\n"
            "class Point(BaseModel):\n"
            "    x: float = Field(ge=0)\n    y: float\n    mode: str = 'ok'\n    delay: float = 0.0\n"
        ),
        encoding="utf-8",
    )
    preprocessing = context / "toy" / "preprocessing.py"
    preprocessing.write_text(
        '"""Preprocessing."""\n\nfrom .shared import Point\n\n\n'
        "def preprocess(payload: Point):\n    return (payload.x, payload.y, payload.mode)\n",
        encoding="utf-8",
    )
    running = start(context)
    try:
        with httpx.Client(base_url=running.url) as client:
            assert client.post("/predict", json={"x": 1, "y": 2}).json() == {"score": SCORE, "positive": False}
            refused = client.post("/predict", json={"x": -1, "y": 2})
            assert refused.status_code == 422
            assert [(e["loc"], e["type"]) for e in refused.json()["detail"]] == [(["body", "x"], "greater_than_equal")]
            document = client.get("/openapi.json").json()
            component = document["components"]["schemas"]["PredictRequest"]
            assert component["title"] == "Point" and component["required"] == ["x", "y"]
    finally:
        assert running.terminate() == 0


def test_a_large_body_is_answered_like_a_small_one(tmp_path: Path) -> None:
    """Small bodies are answered on the middleware's fast path, large ones (validated on a thread) by the route:
    the client cannot tell them apart but by the size."""
    running = start(build_context(tmp_path / "ctx", max_body_bytes=1024 * 1024))
    padded = json.dumps(EXAMPLE).replace(",", "," + " " * 100_000, 1).encode()  # JSON whitespace: same payload
    try:
        with httpx.Client(base_url=running.url, timeout=10) as client:
            answers = [client.post("/predict", content=body, headers={"X-Request-ID": f"size-{len(body)}",
                                                                       "content-type": "application/json"})
                       for body in (json.dumps(EXAMPLE).encode(), padded)]
            refused = client.post("/predict", content=padded.replace(b'"x"', b'"X"'))
            metrics = client.get("/metrics").text
    finally:
        running.terminate()
    assert [a.status_code for a in answers] == [200, 200] and answers[0].json() == answers[1].json()
    assert all(a.headers["x-model-version"] == "1.2.3" and a.headers["content-type"] == "application/json"
               for a in answers)
    assert [a.headers["x-request-id"] for a in answers] == [f"size-{len(json.dumps(EXAMPLE))}", f"size-{len(padded)}"]
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "x"]
    lines = [e for e in running.log_lines() if e.get("logger") == "nbship.access" and e.get("path") == "/predict"]
    assert [(e["route"], e["status"]) for e in lines] == [("/predict", 200), ("/predict", 200), ("/predict", 422)]
    assert 'nbship_requests_total{model="toy",version="1.2.3",method="POST",route="/predict",status="200"} 2' in metrics
