"""Render stage, monitoring part: the Prometheus queries and Prometheus Operator objects of one service.

Every query selects the service's series by the labels the service itself exports (``model``, see
``nbship/runtime/metrics.py``) and by ``namespace``, the target label every Kubernetes scrape configuration adds
(ServiceMonitor, PodMonitor and the usual ``prometheus.io/scrape`` job alike). The namespace is an overlay's, so
the queries are rendered per overlay: the PrometheusRule sits in ``k8s/overlays/<env>/`` and the KEDA trigger's
query is patched there.

Alerts (``nbship.yaml`` ``slo:`` sets the thresholds):

- ``NbshipHighErrorRatio``: 5xx answers other than 503 over the prediction routes' answers, over 5 minutes;
- ``NbshipLatencyAboveSlo``: p95 of the prediction routes above ``slo.latency_p95_seconds`` (only when declared);
- ``NbshipPodNotReady``: a pod's ``nbship_ready`` stayed 0 for 10 minutes (loading, failing or draining);
- ``NbshipLoadShedding``: 503 answers (queue full, not ready) over the prediction routes' answers.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from nbship.render.context import AlertRule

if TYPE_CHECKING:
    from nbship.resolved import Slo

# The routes that run the model, as the service labels them (the route template, not the path).
PREDICTION_ROUTES = ("/predict", "/predict/batch", "/v2/models/{name}/infer")
RATE_WINDOW = "5m"
MAX_SIGNAL_FIELDS = 8
# a score or probability in [0, 1]: 20 equal buckets; anything else: powers of √10 from 0.001 to 10⁶
UNIT_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
WIDE_BUCKETS = tuple(float(f"{10 ** (k / 2):.3g}") for k in range(-6, 13))

def _routes_regex() -> str:
    # PromQL regexes are anchored; a path parameter matches any one segment (no backslashes to escape twice)
    return "|".join(re.sub(r"\{[^}]+\}", "[^/]+", route) for route in PREDICTION_ROUTES)


def selector(name: str, namespace: str, *more: str) -> str:
    """The label matchers of one service's series in one namespace, with ``more`` matchers appended."""
    return "{" + ",".join((f'model="{name}"', f'namespace="{namespace}"', *more)) + "}"


def keda_query(name: str, namespace: str) -> str:
    """The KEDA trigger's query: requests in flight, summed over the service's pods in ``namespace``."""
    return f"sum(nbship_requests_in_flight{selector(name, namespace)})"


def alert_rules(name: str, namespace: str, slo: Slo) -> tuple[AlertRule, ...]:
    """The alerts of one service in one namespace, thresholds from ``slo:``."""
    routes = f'route=~"{_routes_regex()}"'
    by = "sum by (namespace, model)"
    answers = f"{by} (rate(nbship_requests_total{selector(name, namespace, routes)}[{RATE_WINDOW}]))"
    errors = selector(name, namespace, routes, 'status=~"5.."', 'status!="503"')
    shed = selector(name, namespace, routes, 'status="503"')
    rules = [
        AlertRule(
            "NbshipHighErrorRatio",
            f"{by} (rate(nbship_requests_total{errors}[{RATE_WINDOW}])) / {answers} > {slo.error_ratio:g}",
            "5m", "critical",
            f"{name}: more than {slo.error_ratio:.2%} of predictions fail",
            "{{ $value | humanizePercentage }} of the prediction requests answered 5xx (503 aside) over "
            f"{RATE_WINDOW}; the service log has each failure with its notebook cell.",
        ),
    ]
    if slo.latency_p95_seconds is not None:
        buckets = selector(name, namespace, routes)
        rules.append(AlertRule(
            "NbshipLatencyAboveSlo",
            f"histogram_quantile(0.95, sum by (namespace, model, le) "
            f"(rate(nbship_request_duration_seconds_bucket{buckets}[{RATE_WINDOW}]))) > {slo.latency_p95_seconds:g}",
            "10m", "warning",
            f"{name}: p95 latency above the {slo.latency_p95_seconds:g} s objective",
            "p95 of the prediction routes is {{ $value | humanizeDuration }} over " + RATE_WINDOW + ".",
        ))
    rules += [
        AlertRule(
            "NbshipPodNotReady",
            f"max by (namespace, model, pod) (nbship_ready{selector(name, namespace)}) == 0",
            "10m", "warning",
            f"{name}: a pod has not been ready for 10 minutes",
            "pod {{ $labels.pod }} is loading, failing its warm-up or draining; kubectl describe and its log say why.",
        ),
        AlertRule(
            "NbshipLoadShedding",
            f"{by} (rate(nbship_requests_total{shed}[{RATE_WINDOW}])) / {answers} > {slo.load_shed_ratio:g}",
            "5m", "warning",
            f"{name}: shedding load (503)",
            "{{ $value | humanizePercentage }} of the prediction requests were refused with 503 over "
            f"{RATE_WINDOW}: more replicas, or a larger server.max_concurrency / queue_size.",
        ),
    ]
    return tuple(rules)


def prediction_signals(response: Any) -> list[dict[str, Any]]:
    """Which output fields the service exports a distribution of, chosen from the example's output.

    A top-level number becomes a histogram (``numeric``; unit buckets when the example lies in [0, 1]), a
    top-level string or boolean a counter per class (``label``). A bare scalar answer is the field ``value``;
    lists and nested objects are left out (their shape varies per answer).
    """
    fields = response if isinstance(response, dict) else {"value": response}
    chosen: list[dict[str, Any]] = []
    for name, value in sorted(fields.items())[:MAX_SIGNAL_FIELDS]:
        if isinstance(value, (str, bool)):
            chosen.append({"field": name, "kind": "label"})
        elif isinstance(value, (int, float)):
            buckets = UNIT_BUCKETS if 0 <= value <= 1 else WIDE_BUCKETS
            if value < 0:
                buckets = tuple(sorted({-b for b in WIDE_BUCKETS} | {0.0} | set(WIDE_BUCKETS)))
            chosen.append({"field": name, "kind": "numeric", "buckets": list(buckets)})
    return chosen
