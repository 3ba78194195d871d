"""Model signals over real HTTP: the answers' distribution on /metrics, and a sampled, scrubbed payload log."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from nbship.render.monitoring import prediction_signals
from tests.fixtures.service._harness import EXAMPLE, Running, build_context, start
from tests.tools import require_module

pytestmark = pytest.mark.slow
prometheus_parser = require_module("prometheus_client.parser", "pip install prometheus-client")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    context = build_context(tmp_path_factory.mktemp("signals") / "ctx", log_payloads=True, payload_sample_rate=1.0,
                            sensitive_fields=["y"])
    manifest = json.loads((context / "nbship.json").read_text(encoding="utf-8"))
    manifest["signals"] = prediction_signals({"score": -0.57, "positive": False})  # the fixture's answer shape
    (context / "nbship.json").write_text(json.dumps(manifest), encoding="utf-8")
    running = start(context)
    yield running
    assert running.terminate() == 0


def test_the_answers_distribution_is_on_metrics_per_version(service: Running) -> None:
    with httpx.Client(base_url=service.url, timeout=10) as client:
        for x in (1.0, 2.0, 8.0):
            assert client.post("/predict", json={**EXAMPLE, "x": x}).status_code == 200
        assert client.post("/predict/batch", json=[EXAMPLE]).status_code == 200
        text = client.get("/metrics").text
    found = [(s.name, s.labels, s.value) for f in prometheus_parser.text_string_to_metric_families(text)
             for s in f.samples]
    count = [v for name, labels, v in found if name == "nbship_prediction_value_count" and labels["field"] == "score"]
    classes = {labels["class"]: v for name, labels, v in found if name == "nbship_prediction_class_total"}
    assert count == [4] and sum(classes.values()) == 4 and set(classes) <= {"true", "false"}
    assert all(labels["version"] == "1.2.3" for name, labels, _ in found if name.startswith("nbship_prediction_"))


def test_a_sampled_request_logs_payload_and_answer_without_the_sensitive_field(service: Running) -> None:
    secret = 123.456
    answer = httpx.post(service.url + "/predict", json={**EXAMPLE, "y": secret},
                        headers={"X-Request-ID": "sampled-1"}, timeout=10)
    assert answer.status_code == 200
    for _ in range(100):
        lines = [e for e in service.log_lines() if e.get("request_id") == "sampled-1" and "payload" in e]
        if lines:
            break
        time.sleep(0.02)
    (line,) = lines
    assert json.loads(line["payload"]) == {**EXAMPLE, "y": "[scrubbed]"}
    assert json.loads(line["answer"]) == answer.json()
    assert str(secret) not in json.dumps(service.log_lines())
