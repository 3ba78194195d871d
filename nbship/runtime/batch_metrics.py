"""What an operator needs to see batching work: payloads per batch, time in the queue, model time per batch.

Updated from the worker threads (once per batch, and once per request for its queue wait), so each update takes
a lock; rendered in the Prometheus text format after ``Metrics.render`` on ``/metrics``. Series carry only the
``model`` and ``version`` labels of the service.
"""

from __future__ import annotations

import threading

from .metrics import BUCKETS, Histogram

SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class BatchMetrics:
    """``nbship_batch_size``, ``nbship_queue_wait_seconds``, ``nbship_batch_model_seconds``; ``enabled`` as a gauge."""

    def __init__(self, base: str, enabled: bool) -> None:
        self.base = base  # the model and version labels, as Metrics.base
        self.enabled = enabled
        self._lock = threading.Lock()
        self.sizes = Histogram(tuple(float(b) for b in SIZE_BUCKETS))
        self.waits = Histogram(BUCKETS)
        self.model = Histogram(BUCKETS)

    def observe_batch(self, payloads: int) -> None:
        with self._lock:
            self.sizes.observe(float(payloads))

    def observe_wait(self, seconds: float) -> None:
        with self._lock:
            self.waits.observe(seconds)

    def observe_model(self, rows: int, seconds: float) -> None:
        with self._lock:
            self.model.observe(seconds)

    def render(self) -> str:
        families = (
            ("nbship_batch_size", "Payloads per call of the pipeline (one request, or several merged).", self.sizes),
            ("nbship_queue_wait_seconds", "Time a request waited for a worker.", self.waits),
            ("nbship_batch_model_seconds", "Time of one predict call (a whole batch when batching).", self.model),
        )
        out = ["# HELP nbship_batching_enabled 1 when requests are batched into one predict call (proven at check).",
               "# TYPE nbship_batching_enabled gauge", f"nbship_batching_enabled{{{self.base}}} {int(self.enabled)}"]
        with self._lock:
            for name, help_text, histogram in families:
                out += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram", *histogram.lines(name, self.base)]
        return "\n".join(out) + "\n"
