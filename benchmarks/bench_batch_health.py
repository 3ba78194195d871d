"""Benchmark: ``/healthz`` latency while the worst allowed request is in flight (issue 13, point 1).

Starts the service fixture (``tests/fixtures/service``) with the default limits (``max_body_bytes`` 10 MiB,
``max_batch_items`` 256) and, for each scenario, polls ``/healthz`` every 10 ms on its own keep-alive connection
while one request is sent, repeated ``--rounds`` times. Printed per scenario: the request's own time, and the
median, 99th percentile and worst ``/healthz`` latency. "idle" is the same polling with nothing in flight, so
the machine's own noise is visible beside the figures. Scenarios:

- ``flood``: 300,000 empty objects (900 KB), the request of the issue; refused with 413 after 257 elements.
- ``batch-invalid``: 256 items of about 40 KB of numbers each, filling the body limit; each item answers 422.
- ``batch-valid``: 256 valid items, each sleeping 5 ms in the model (1.3 s of work on one worker).
- ``predict-10mib``: one ``/predict`` payload of 10 MiB of numbers (validated on a thread, refused with 422).

    .venv/bin/python benchmarks/bench_batch_health.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fixtures.service._harness import EXAMPLE, build_context, start  # noqa: E402

MAX_BODY = 10 * 1024 * 1024
LIMIT = 256


def bodies() -> dict[str, tuple[str, bytes]]:
    per_item = (MAX_BODY - 100 * LIMIT) // LIMIT // 5  # "1.5, " is 5 bytes; about 100 bytes for the rest
    invalid = json.dumps([{**EXAMPLE, "pad": [1.5] * per_item}] * LIMIT).encode()
    valid = json.dumps([{**EXAMPLE, "mode": "slow", "delay": 0.005}] * LIMIT).encode()
    huge = json.dumps({**EXAMPLE, "x": [1.5] * ((MAX_BODY - 100) // 5)}).encode()
    return {
        "idle": ("", b""),
        "flood": ("/predict/batch", b"[" + b",".join([b"{}"] * 300_000) + b"]"),
        "batch-invalid": ("/predict/batch", invalid),
        "batch-valid": ("/predict/batch", valid),
        "predict-10mib": ("/predict", huge),
    }


def measure(url: str, path: str, body: bytes) -> tuple[float, int, list[float]]:
    samples: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                started = time.perf_counter()
                client.get("/healthz")
                samples.append(time.perf_counter() - started)
                time.sleep(0.01)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    time.sleep(0.2)
    started = time.perf_counter()
    status = 0
    if path:
        with httpx.Client(base_url=url, timeout=60) as client:
            status = client.post(path, content=body, headers={"content-type": "application/json"}).status_code
    else:
        time.sleep(1.0)
    seconds = time.perf_counter() - started
    time.sleep(0.1)
    stop.set()
    poller.join()
    return seconds, status, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    scenarios = bodies()
    with tempfile.TemporaryDirectory() as tmp:
        context = build_context(Path(tmp) / "ctx", max_body_bytes=MAX_BODY, max_batch_items=LIMIT,
                                predict_timeout_seconds=30.0)
        running = start(context)
        try:
            results: dict[str, list[tuple[float, int, list[float]]]] = {name: [] for name in scenarios}
            for _ in range(args.rounds):  # interleaved, so that machine noise spreads over every scenario
                for name, (path, body) in scenarios.items():
                    results[name].append(measure(running.url, path, body))
        finally:
            running.terminate()
    print(f"/healthz latency while one request is in flight; {args.rounds} rounds, poll every 10 ms")
    print(f"{'scenario':<15}{'body':>10}{'status':>8}{'request s':>11}{'median ms':>11}{'p99 ms':>9}{'worst ms':>10}")
    for name, rounds in results.items():
        samples = sorted(s for _, _, round_samples in rounds for s in round_samples)
        p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
        request = statistics.median(seconds for seconds, _, _ in rounds)
        statuses = "/".join(sorted({str(status) for _, status, _ in rounds})) if scenarios[name][0] else "-"
        size = f"{len(scenarios[name][1]) / 1e6:.1f} MB" if scenarios[name][1] else "-"
        print(f"{name:<15}{size:>10}{statuses:>8}{request:>11.3f}{statistics.median(samples) * 1e3:>11.1f}"
              f"{p99 * 1e3:>9.1f}{samples[-1] * 1e3:>10.1f}")


if __name__ == "__main__":
    main()
