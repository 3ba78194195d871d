"""Model signals: what the model answers, not just how HTTP went; and sampled, scrubbed payload logs.

HTTP metrics stay green while predictions drift. ``PredictionSignals`` exports the distribution of the answers
per model version (every series carries ``model`` and ``version``): a histogram per numeric output field
(``nbship_prediction_value``) and a counter per class label of each text or boolean field
(``nbship_prediction_class_total``). Which fields, and the buckets, were chosen at render time from the notebook's
example output (``nbship.json`` ``signals``). Observations come from the prediction worker threads, so they take
a lock; a class field counts at most ``MAX_CLASSES`` distinct labels, the rest as ``other``, which bounds the
number of series whatever the model answers.

``PayloadLog`` decides per request whether to log its payloads (``server.payload_sample_rate``) and replaces the
values of the declared sensitive fields, at any depth, before anything reaches the log.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterable
from typing import Any

from .metrics import Histogram, escape

MAX_CLASSES = 32
OTHER = "other"
SCRUBBED = "[scrubbed]"
_PAYLOAD_LOG_LIMIT = 65536


class PredictionSignals:
    """Distributions of the answers, per output field, in the Prometheus text format."""

    def __init__(self, model: str, version: str, fields: list[dict[str, Any]]) -> None:
        self.base = f'model="{escape(model)}",version="{escape(version)}"'
        self.numeric = {str(f["field"]): Histogram(tuple(sorted(float(b) for b in f["buckets"])))
                        for f in fields if f["kind"] == "numeric"}
        self.classes: dict[str, dict[str, int]] = {str(f["field"]): {} for f in fields if f["kind"] == "label"}
        self.lock = threading.Lock()

    def observe(self, answer: Any) -> None:
        """Count one jsonable answer: its top-level fields (or the answer itself, as the field ``value``)."""
        values = answer if isinstance(answer, dict) else {"value": answer}
        with self.lock:
            for field, histogram in self.numeric.items():
                value = values.get(field)
                if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
                    histogram.observe(float(value))
            for field, counts in self.classes.items():
                value = values.get(field)
                if value is None or isinstance(value, (dict, list)):
                    continue
                label = ("true" if value else "false") if isinstance(value, bool) else str(value)
                if label not in counts and len(counts) >= MAX_CLASSES:
                    label = OTHER
                counts[label] = counts.get(label, 0) + 1

    def render(self) -> str:
        if not self.numeric and not self.classes:
            return ""
        out: list[str] = []
        with self.lock:
            if self.numeric:
                out += ["# HELP nbship_prediction_value Distribution of the numeric outputs, per field.",
                        "# TYPE nbship_prediction_value histogram"]
            for field, h in sorted(self.numeric.items()):
                out += h.lines("nbship_prediction_value", f'{self.base},field="{escape(field)}"')
            if self.classes:
                out += ["# HELP nbship_prediction_class_total Answers per class label, per field.",
                        "# TYPE nbship_prediction_class_total counter"]
            for field, counts in sorted(self.classes.items()):
                for label, n in sorted(counts.items()):
                    labels = f'{self.base},field="{escape(field)}",class="{escape(label)}"'
                    out.append(f"nbship_prediction_class_total{{{labels}}} {n}")
        return "\n".join(out) + "\n"


def scrub(value: Any, sensitive: frozenset[str]) -> Any:
    """``value`` with every entry whose key is declared sensitive (case-insensitive) replaced, at any depth."""
    if isinstance(value, dict):
        return {k: SCRUBBED if str(k).lower() in sensitive else scrub(v, sensitive) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, sensitive) for v in value]
    return value


class PayloadLog:
    """Which requests log their payloads (a random sample), and the payload as it may be logged."""

    def __init__(self, rate: float, sensitive: Iterable[str], draw: Any = random.random) -> None:
        self.rate = rate
        self.sensitive = frozenset(s.lower() for s in sensitive)
        self.draw = draw

    def sampled(self) -> bool:
        return bool(self.rate >= 1.0 or self.draw() < self.rate)

    def text(self, body: bytes) -> str:
        """The body as it may be logged: JSON with the sensitive fields scrubbed, else only its size."""
        try:
            document = json.loads(body)
        except ValueError:
            return f"[not JSON, {len(body)} bytes]"  # cannot be scrubbed, so not logged
        return json.dumps(scrub(document, self.sensitive), separators=(",", ":"))[:_PAYLOAD_LOG_LIMIT]
