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

Then the memory that 24 uploads of all but the last byte of a 4 MiB body hold in the service (RSS growth), with
``server.max_connections`` 4 and, for comparison, 1000 (in effect no limit).

    .venv/bin/python benchmarks/bench_batch_health.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
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


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def upload_memory(tmp: Path, max_connections: int, clients: int = 24, body_limit: int = 4 * 2**20) -> float:
    """MiB of RSS growth while ``clients`` uploads of all but one byte of a ``body_limit`` body are held."""
    context = build_context(tmp / f"mem{max_connections}", max_body_bytes=body_limit, max_connections=max_connections,
                            body_timeout_seconds=30.0)
    running = start(context)
    sockets: list[socket.socket] = []
    try:
        before = rss_bytes(running.process.pid)
        head = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: {body_limit}\r\n\r\n".encode()

        def upload() -> None:
            sock = socket.create_connection(("127.0.0.1", running.port), timeout=10)
            sockets.append(sock)
            with contextlib.suppress(OSError):  # refused (503) and closed before the body was read
                sock.sendall(head + b" " * (body_limit - 1))

        threads = [threading.Thread(target=upload) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        time.sleep(1.0)
        return (rss_bytes(running.process.pid) - before) / 2**20
    finally:
        for sock in sockets:
            sock.close()
        running.terminate()


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
        memory = {limit: statistics.median(upload_memory(Path(tmp) / str(i), limit) for i in range(args.rounds))
                  for limit in (4, 1000)}
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

    print()
    print("RSS held by 24 uploads of 4 MiB (all but the last byte), median of the rounds:")
    for limit, mib in memory.items():
        print(f"  max_connections {limit:>4}: {mib:6.1f} MiB (bodies admitted: {min(limit, 24) * 4} MiB)")
    print(f"  ratio: {memory[1000] / memory[4]:.1f}x")


if __name__ == "__main__":
    main()
