"""The /metrics text: valid Prometheus exposition, every series labelled with the model name and version."""

from __future__ import annotations

from nbship.runtime.metrics import Metrics
from tests.tools import require_module

prometheus_parser = require_module("prometheus_client.parser", "pip install prometheus-client")


def families(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    found: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in prometheus_parser.text_string_to_metric_families(text):
        found[family.name] = [(s.name, s.labels, s.value) for s in family.samples]
    return found


def test_counts_latency_in_flight_errors_and_load_time() -> None:
    metrics = Metrics("churn", "1.0")
    metrics.observe("POST", "/predict", 200, 0.004)
    metrics.observe("POST", "/predict", 200, 0.2)
    metrics.observe("POST", "/predict", 422, 0.0001)
    metrics.observe("GET", "/healthz", 200, 0.0002)
    metrics.in_flight = 3
    metrics.prediction_errors["timeout"] += 2
    metrics.load_seconds = 1.5
    metrics.add_gauge("nbship_predictions_queued", "waiting", lambda: 4)
    found = families(metrics.render())

    requests = {(s[1]["route"], s[1]["status"]): s[2] for s in found["nbship_requests"]}
    assert requests == {("/predict", "200"): 2, ("/predict", "422"): 1, ("/healthz", "200"): 1}
    buckets = {
        s[1]["le"]: s[2]
        for s in found["nbship_request_duration_seconds"]
        if s[0].endswith("_bucket") and s[1]["route"] == "/predict"
    }
    assert buckets["0.001"] == 1 and buckets["0.005"] == 2 and buckets["0.25"] == 3 and buckets["+Inf"] == 3
    counts = [s[2] for s in found["nbship_request_duration_seconds"] if s[0].endswith("_count")]
    assert sorted(counts) == [1, 3]
    assert found["nbship_requests_in_flight"][0][2] == 3
    errors = {s[1]["kind"]: s[2] for s in found["nbship_prediction_errors"]}
    assert errors == {"exception": 0, "timeout": 2}
    assert found["nbship_model_load_seconds"][0][2] == 1.5
    assert found["nbship_predictions_queued"][0][2] == 4
    for samples in found.values():
        for _, labels, _ in samples:
            assert labels["model"] == "churn" and labels["version"] == "1.0"


def test_label_values_are_escaped() -> None:
    metrics = Metrics('we"ird\\name', "1\n2")
    metrics.observe("GET", "/x", 200, 0.01)
    found = families(metrics.render())
    labels = found["nbship_requests"][0][1]
    assert labels["model"] == 'we"ird\\name' and labels["version"] == "1\n2"


def test_nothing_observed_is_still_valid_and_labelled() -> None:
    found = families(Metrics("m", "v").render())
    assert found["nbship_requests_in_flight"] == [("nbship_requests_in_flight", {"model": "m", "version": "v"}, 0)]
    assert "nbship_model_load_seconds" not in found
