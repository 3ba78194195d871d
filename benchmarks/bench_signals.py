"""Benchmark: what model signals and payload sampling cost a prediction (issue 14, point 5).

Per answer of the tabular example's shape (``churn_probability``, ``risk``, ``will_churn``), in the same run:

- ``observe``: ``PredictionSignals.observe`` (a histogram and two class counters, under a lock), the work a
  prediction now does beyond ``json.dumps`` of its answer; ``dumps`` is that ``json.dumps``, for scale;
- ``render``: ``/metrics``' model-signal part after 100,000 answers;
- ``sampled``: the per-request draw of ``PayloadLog.sampled`` at 1 %, and ``scrub+dumps`` of a 20-field payload
  with two sensitive fields (the cost a sampled request pays).

Medians of ``--rounds`` rounds of ``--n`` calls, in nanoseconds per call.

    .venv/bin/python benchmarks/bench_signals.py [--rounds 7] [--n 100000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nbship.render.monitoring import prediction_signals  # noqa: E402
from nbship.runtime.signals import PayloadLog, PredictionSignals  # noqa: E402

ANSWERS = [{"churn_probability": (i % 100) / 100, "risk": ("low", "medium", "high")[i % 3], "will_churn": i % 2 == 0}
           for i in range(1000)]
PAYLOAD = json.dumps({**{f"feature_{i}": i * 1.5 for i in range(18)}, "email": "a@b.c", "ssn": "123"}).encode()


def per_call(function: Callable[[int], object], n: int, rounds: int) -> float:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter_ns()
        for i in range(n):
            function(i)
        timings.append((time.perf_counter_ns() - started) / n)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    signals = PredictionSignals("churn-model", "1.0.0", prediction_signals(ANSWERS[0]))
    log = PayloadLog(0.01, ["email", "ssn"])
    observe = per_call(lambda i: signals.observe(ANSWERS[i % 1000]), args.n, args.rounds)
    dumps = per_call(lambda i: json.dumps(ANSWERS[i % 1000], allow_nan=False), args.n, args.rounds)
    render = per_call(lambda i: signals.render(), max(args.n // 1000, 10), args.rounds)
    sampled = per_call(lambda i: log.sampled(), args.n, args.rounds)
    scrub = per_call(lambda i: log.text(PAYLOAD), max(args.n // 10, 10), args.rounds)
    print(f"observe        {observe:9.0f} ns per answer")
    print(f"dumps          {dumps:9.0f} ns per answer (for scale; ratio observe/dumps {observe / dumps:.2f})")
    print(f"render         {render:9.0f} ns per /metrics (signals part, {len(signals.render().splitlines())} lines)")
    print(f"sampled        {sampled:9.0f} ns per request (the 1 % draw)")
    print(f"scrub+dumps    {scrub:9.0f} ns per sampled payload (20 fields, 2 sensitive)")


if __name__ == "__main__":
    main()
