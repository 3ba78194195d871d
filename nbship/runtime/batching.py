"""Adaptive batching: many requests' payloads through one ``predict`` call, and its proof on the example.

``Batcher(pipeline, finish, enabled)`` is what a worker of the pool (``executor.py``) calls with the payloads of
every request it took from the queue: ``preprocess`` and ``postprocess`` run per payload, ``predict`` once on
the combined inputs (``combine.py``), and each payload gets its own answer or its own exception. When the
combined call raises, or its output cannot be split, the payloads run again one by one, so that one bad
payload answers 500 alone. Disabled (not proven at check time, or ``server.batching: false``), it runs them one
by one and the pool does not merge requests.

``probe(pipeline, example)`` is the check-time half (``selftest.py`` runs it): the example, and variants of it
with other numbers or longer texts, answered alone and then in batches of 1, 2 and 7; ``nbship check`` compares
the answers with parity's rule. Variants matter: a ``predict`` that normalises by its batch gives the same answer for
seven copies of one row, but not for seven different rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from .combine import NotBatchable, combine, split
from .logs import SERVICE
from .pipeline import Pipeline, to_jsonable

log = logging.getLogger(SERVICE)
PROBE_SIZES = (1, 2, 7)
_VARIANTS = 6


class BatchDeadline(Exception):
    """The request's deadline passed before its payload was started (it has answered 504 already)."""


class Batcher:
    """Runs payloads through the pipeline, ``predict`` once for all of them when ``enabled``."""

    def __init__(self, pipeline: Pipeline, finish: Callable[[Any], Any], enabled: bool,
                 observe_model: Callable[[int, float], None] | None = None) -> None:
        self.pipeline = pipeline
        self.finish = finish  # the pipeline's answer → what a request receives (jsonable, encoded)
        self.enabled = enabled
        self.observe_model = observe_model  # (rows, seconds) of each predict call

    def _predict(self, value: Any, rows: int) -> Any:
        started = time.perf_counter()
        output = self.pipeline.predict(value)
        if self.observe_model is not None:
            self.observe_model(rows, time.perf_counter() - started)
        return output

    def one(self, payload: Any) -> Any:
        """One payload alone; its answer, or the exception it raised."""
        try:
            pipeline = self.pipeline
            return self.finish(pipeline.postprocess(self._predict(pipeline.preprocess(payload), 1)))
        except Exception as e:
            return e

    def __call__(self, payloads: Sequence[Any], deadlines: Sequence[float]) -> list[Any]:
        """Per payload, its answer or exception; a payload whose deadline has passed is not started."""
        if not self.enabled or len(payloads) == 1:
            return [BatchDeadline() if time.monotonic() > d else self.one(p) for p, d in zip(payloads, deadlines)]
        results: list[Any] = [None] * len(payloads)
        inputs: list[tuple[int, Any]] = []
        for index, (payload, deadline) in enumerate(zip(payloads, deadlines, strict=True)):
            if time.monotonic() > deadline:
                results[index] = BatchDeadline()
                continue
            try:
                inputs.append((index, self.pipeline.preprocess(payload)))
            except Exception as e:
                results[index] = e
        if not inputs:
            return results
        parts = [value for _, value in inputs]
        try:
            outputs = self.predict_rows(parts)
        except Exception as e:  # one payload may be at fault: each runs alone, with its own answer
            log.debug(f"batched predict failed ({type(e).__name__}: {e}); running {len(parts)} alone")
            outputs = None
        for position, (index, value) in enumerate(inputs):
            try:
                output = outputs[position] if outputs is not None else self._predict(value, 1)
                results[index] = self.finish(self.pipeline.postprocess(output))
            except Exception as e:
                results[index] = e
        return results

    def predict_rows(self, parts: Sequence[Any]) -> list[Any]:
        """``predict`` once on the combined ``parts``; its output split back into one piece per part.

        Raises:
            NotBatchable: the parts do not combine, or the output does not split into them.
            Exception: whatever ``predict`` raised.
        """
        batch, sizes = combine(parts)
        return split(self._predict(batch, sum(sizes)), sizes, parts)


def variants(value: Any, step: int) -> Any:
    """``value`` changed by ``step`` (1 to 6): steps 1-3 change its numbers (ints shifted, floats scaled),
    steps 4-6 its texts (repeated, so lengths differ); booleans and None are kept."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return " ".join([value] * (step - 2)) if step > 3 else value
    if isinstance(value, int):
        return value + step if step <= 3 else value
    if isinstance(value, float):
        return value * (1 + 0.37 * step) + 0.5 * step if step <= 3 else value
    if isinstance(value, dict):
        return {key: variants(item, step) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [variants(item, step) for item in value]
    return value


def probe(pipeline: Pipeline, example: Any) -> dict[str, Any]:
    """The check-time evidence: single answers of the example and its variants, and the batched ones.

    Returns ``{"singles": [...], "batches": {"1": [[index, answer], ...], ...}}``, or ``{"error": why}`` when
    batching cannot even be tried (an input or output of a kind not batched, a batched call that raised).
    """
    batcher = Batcher(pipeline, to_jsonable, enabled=True)
    payloads, singles = [example], [to_jsonable(pipeline(example))]
    for step in range(1, _VARIANTS + 1):
        candidate = variants(example, step)
        if candidate in payloads:
            continue
        answer = batcher.one(candidate)
        if not isinstance(answer, Exception):  # a variant the code refuses alone proves nothing
            payloads.append(candidate)
            singles.append(answer)
    batches: dict[str, list[list[Any]]] = {}
    for size in PROBE_SIZES:
        chosen = [index % len(payloads) for index in range(size)]
        try:
            parts = [pipeline.preprocess(payloads[index]) for index in chosen]
            outputs = batcher.predict_rows(parts)
            answers = [to_jsonable(pipeline.postprocess(output)) for output in outputs]
        except NotBatchable as e:
            return {"error": str(e)}
        except Exception as e:
            return {"error": f"a batch of {size} raised {type(e).__name__}: {e}"}
        batches[str(size)] = [[index, answer] for index, answer in zip(chosen, answers, strict=True)]
    return {"singles": singles, "batches": batches}
