"""The rendered queries select series the service really exports: matched against a scraped ``/metrics``.

The KEDA trigger once filtered on ``service=``, a label the service never emits, so the autoscaler saw nothing.
Here every selector of the KEDA query and of the alerts is parsed and matched against the series of a running
service after it answered requests, with the ``namespace`` target label a Kubernetes scrape adds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from nbship.config import Config
from nbship.render.monitoring import alert_rules, keda_query
from tests.fixtures.service._harness import EXAMPLE, Running, build_context, start
from tests.tools import require_module

pytestmark = pytest.mark.slow
prometheus_parser = require_module("prometheus_client.parser", "pip install prometheus-client")
NAMESPACE = "toy-staging"
_SELECTOR = re.compile(r"([a-z_:]+)\{([^}]*)\}")
_MATCHER = re.compile(r'([a-z_]+)(=~|!~|!=|=)"((?:[^"\\]|\\.)*)"')


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start(build_context(tmp_path_factory.mktemp("monitoring") / "ctx"))
    yield running
    running.terminate()


def scraped(running: Running) -> list[tuple[str, dict[str, str]]]:
    """Every sample of /metrics, labelled as Prometheus stores it (with the target's namespace)."""
    assert httpx.post(running.url + "/predict", json=EXAMPLE, timeout=10).status_code == 200
    httpx.post(running.url + "/predict", json={"x": "not a number"}, timeout=10)
    text = httpx.get(running.url + "/metrics", timeout=10).text
    return [(s.name, {**s.labels, "namespace": NAMESPACE})
            for family in prometheus_parser.text_string_to_metric_families(text) for s in family.samples]


def matches(op: str, expected: str, actual: str | None) -> bool:
    value = actual or ""
    if op == "=":
        return value == expected
    if op == "!=":
        return value != expected
    full = re.fullmatch(expected.replace("\\\\", "\\"), value) is not None
    return full if op == "=~" else not full


def selected(selector: str, samples: list[tuple[str, dict[str, str]]]) -> list[dict[str, str]]:
    name, matchers = _SELECTOR.fullmatch(selector).groups()  # type: ignore[union-attr]
    parsed = _MATCHER.findall(matchers)
    assert parsed, selector
    return [labels for sample, labels in samples
            if sample == name and all(matches(op, value, labels.get(key)) for key, op, value in parsed)]


def test_the_keda_query_selects_the_in_flight_gauge_of_this_service(service: Running) -> None:
    samples = scraped(service)
    (selector,) = _SELECTOR.finditer(keda_query("toy", NAMESPACE))
    found = selected(selector.group(0), samples)
    assert len(found) == 1 and found[0]["model"] == "toy"
    other = keda_query("toy", "elsewhere")
    assert selected(next(_SELECTOR.finditer(other)).group(0), samples) == []


def test_every_alert_selects_series_the_service_exports(service: Running) -> None:
    samples = scraped(service)
    config = Config.model_validate({"slo": {"latency_p95_seconds": 0.5}})
    for rule in alert_rules("toy", NAMESPACE, config.slo):
        for selector in _SELECTOR.finditer(rule.expr):
            text = selector.group(0)
            if 'status=~"5.."' in text or 'status="503"' in text:
                # no request failed: the selector without its status matchers must still select /predict
                text = re.sub(r',status(=~|!=|=)"[^"]*"', "", text)
            found = selected(text, samples)
            assert found, f"{rule.alert}: {selector.group(0)} selects nothing the service exports"
            assert all(labels.get("route", "/predict") == "/predict" for labels in found), rule.alert
