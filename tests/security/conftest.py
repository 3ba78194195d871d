"""Adversarial requests against a real uvicorn process serving the fixture build context on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.service._harness import Running, build_context, start

Serve = Callable[..., Running]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """Start the fixture service with ``nbship.json`` ``service`` overrides; stopped after the test."""
    started: list[Running] = []

    def run(env: dict[str, str] | None = None, **service: Any) -> Running:
        running = start(build_context(tmp_path / f"ctx{len(started)}", **service), env)
        started.append(running)
        return running

    yield run
    for running in started:
        running.terminate()


class HealthWatch:
    """Polls ``/healthz`` on its own connection every ``interval`` seconds and keeps each latency and status."""

    def __init__(self, url: str, interval: float = 0.01) -> None:
        self.url, self.interval = url, interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                status = client.get("/healthz").status_code
                self.samples.append((time.perf_counter() - started, status))
                time.sleep(self.interval)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        while not self.samples and self._thread.is_alive():  # the connection is open before the attack starts
            time.sleep(0.005)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(15)

    @property
    def worst(self) -> float:
        return max(seconds for seconds, _ in self.samples)

    def percentile(self, share: float) -> float:
        ordered = sorted(seconds for seconds, _ in self.samples)
        return ordered[min(len(ordered) - 1, int(len(ordered) * share))]
