"""Service metrics in the Prometheus text exposition format (0.0.4), written by hand.

Hand-written rather than ``prometheus_client`` because every update happens on the event-loop thread, so
plain integers need no locks and a request costs a dict increment and a bisect; the service then has no
dependency beyond FastAPI and uvicorn. Every series carries ``model`` and ``version`` labels, and every other
label value comes from a closed set (``METHODS`` plus ``other``; the app's route templates or ``unmatched``;
the statuses the service answers), so a client cannot create series at will.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


class Histogram:
    """Counts per bucket of ``bounds`` (ascending; one more bucket for +Inf), their sum and their count."""

    __slots__ = ("bounds", "counts", "total", "count")

    def __init__(self, bounds: tuple[float, ...] = BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str, labels: str) -> list[str]:
        """The ``_bucket`` (cumulative), ``_sum`` and ``_count`` series of ``name`` with ``labels``."""
        out, cumulative = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            cumulative += n
            out.append(f'{name}_bucket{{{labels},le="{_number(bound)}"}} {cumulative}')
        out.append(f"{name}_sum{{{labels}}} {_number(self.total)}")
        out.append(f"{name}_count{{{labels}}} {self.count}")
        return out


class Metrics:
    """Counters, gauges and the latency histogram of one service; updated only from the event loop."""

    def __init__(self, model: str, version: str) -> None:
        self.base = f'model="{escape(model)}",version="{escape(version)}"'
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[str, Histogram] = {}
        self.in_flight = 0
        self.prediction_errors: dict[str, int] = {"exception": 0, "timeout": 0}
        self.load_seconds: float | None = None
        self.warmup_seconds: float | None = None
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method if method in METHODS else "other", route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        histogram = self.latency.get(route)
        if histogram is None:
            histogram = self.latency[route] = Histogram()
        histogram.observe(seconds)

    def add_gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """A gauge read when scraped (queue depth, busy workers, readiness)."""
        self.gauges[name] = (help_text, read)

    def render(self) -> str:
        base = self.base
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")

        family("nbship_requests_total", "counter", "HTTP requests answered, by method, route and status.")
        for (method, route, status), n in sorted(self.requests.items()):
            labels = f'{base},method="{escape(method)}",route="{escape(route)}",status="{status}"'
            out.append(f"nbship_requests_total{{{labels}}} {n}")
        family("nbship_request_duration_seconds", "histogram", "Time from request to complete response.")
        for route, h in sorted(self.latency.items()):
            out += h.lines("nbship_request_duration_seconds", f'{base},route="{escape(route)}"')
        family("nbship_requests_in_flight", "gauge", "HTTP requests being processed now.")
        out.append(f"nbship_requests_in_flight{{{base}}} {self.in_flight}")
        family("nbship_prediction_errors_total", "counter", "Predictions that raised or exceeded the timeout.")
        for kind, n in sorted(self.prediction_errors.items()):
            out.append(f'nbship_prediction_errors_total{{{base},kind="{kind}"}} {n}')
        if self.load_seconds is not None:
            family("nbship_model_load_seconds", "gauge", "Time the load cells took at start-up.")
            out.append(f"nbship_model_load_seconds{{{base}}} {_number(self.load_seconds)}")
        if self.warmup_seconds is not None:
            family("nbship_warmup_seconds", "gauge", "Time of the warm-up prediction on the notebook's example.")
            out.append(f"nbship_warmup_seconds{{{base}}} {_number(self.warmup_seconds)}")
        for name, (help_text, read) in sorted(self.gauges.items()):
            family(name, "gauge", help_text)
            out.append(f"{name}{{{base}}} {_number(read())}")
        return "\n".join(out) + "\n"
