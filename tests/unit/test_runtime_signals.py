"""Model signals: the distribution of the answers per model version, and sampled, scrubbed payload logs."""

from __future__ import annotations

import json

from nbship.render.monitoring import UNIT_BUCKETS, prediction_signals
from nbship.runtime.signals import MAX_CLASSES, PayloadLog, PredictionSignals
from tests.tools import require_module

prometheus_parser = require_module("prometheus_client.parser", "pip install prometheus-client")


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for f in prometheus_parser.text_string_to_metric_families(text)
            for s in f.samples]


def test_the_fields_are_chosen_from_the_examples_output() -> None:
    churn = prediction_signals({"churn_probability": 0.94, "risk": "high", "will_churn": True})
    assert [(f["field"], f["kind"]) for f in churn] == [
        ("churn_probability", "numeric"), ("risk", "label"), ("will_churn", "label")]
    assert churn[0]["buckets"] == list(UNIT_BUCKETS)  # a probability: buckets over [0, 1]
    assert prediction_signals({"matches": [{"score": 0.9}]}) == []  # lists vary in shape: left out
    (price,) = prediction_signals(1234.5)
    assert price["field"] == "value" and price["buckets"][-1] == 1e6 and price["buckets"][0] == 0.001
    (delta,) = prediction_signals({"delta": -3.0})
    assert delta["buckets"][0] == -1e6 and 0.0 in delta["buckets"]


def test_numeric_answers_fill_a_histogram_and_labels_a_counter_per_version() -> None:
    fields = prediction_signals({"score": 0.5, "label": "positive"})
    signals = PredictionSignals("sentiment", "2.0.0", fields)
    for answer in ({"score": 0.12, "label": "negative"}, {"score": 0.93, "label": "positive"},
                   {"score": 0.97, "label": "positive"}, {"score": None, "label": None}):
        signals.observe(answer)
    found = samples(signals.render())
    assert all(labels["model"] == "sentiment" and labels["version"] == "2.0.0" for _, labels, _ in found)
    classes = {labels["class"]: v for name, labels, v in found if name == "nbship_prediction_class_total"}
    assert classes == {"negative": 1, "positive": 2}
    buckets = {labels["le"]: v for name, labels, v in found if name == "nbship_prediction_value_bucket"}
    assert buckets["0.15"] == 1 and buckets["0.9"] == 1 and buckets["0.95"] == 2 and buckets["+Inf"] == 3
    count = next(v for name, _, v in found if name == "nbship_prediction_value_count")
    assert count == 3


def test_class_labels_are_bounded_whatever_the_model_answers() -> None:
    signals = PredictionSignals("m", "1", [{"field": "value", "kind": "label"}])
    for i in range(MAX_CLASSES + 50):
        signals.observe(f"id-{i}")
    classes = {labels["class"] for _, labels, _ in samples(signals.render())}
    assert len(classes) == MAX_CLASSES + 1 and "other" in classes


def test_nothing_is_exported_without_fields() -> None:
    assert PredictionSignals("m", "1", []).render() == ""


def test_payloads_are_sampled_and_declared_fields_scrubbed_at_any_depth() -> None:
    draws = iter([0.5, 0.05, 0.2])
    log = PayloadLog(0.1, ["SSN", "email"], draw=lambda: next(draws))
    assert [log.sampled(), log.sampled(), log.sampled()] == [False, True, False]
    body = json.dumps({"ssn": "123-45-6789", "customer": {"Email": "a@b.c", "age": 41},
                       "rows": [{"email": "x@y.z", "tenure": 3}]}).encode()
    logged = log.text(body)
    assert "123-45-6789" not in logged and "a@b.c" not in logged and "x@y.z" not in logged
    assert json.loads(logged) == {"ssn": "[scrubbed]", "customer": {"Email": "[scrubbed]", "age": 41},
                                  "rows": [{"email": "[scrubbed]", "tenure": 3}]}
    assert log.text(b"ssn=123-45-6789") == "[not JSON, 15 bytes]"  # cannot be scrubbed: not logged
    assert PayloadLog(1.0, []).sampled()
