"""Issue 13 point 6: when every worker hangs in ``predict``, liveness fails, so the platform restarts the pod."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.fixtures.service._harness import EXAMPLE
from tests.security.conftest import Serve

pytestmark = pytest.mark.slow
HANG = {**EXAMPLE, "mode": "slow", "delay": 3600}


def test_liveness_fails_once_every_worker_is_stuck_past_the_deadline_times_the_factor(serve: Serve) -> None:
    service = serve(predict_timeout_seconds=0.5, max_concurrency=2, queue_size=0)  # stalled after 3 × 0.5 s
    with httpx.Client(base_url=service.url, timeout=10) as client:
        one = client.post("/predict", json=HANG)
        time.sleep(2.0)
        one_stuck = client.get("/healthz")  # the other worker still serves
        served = client.post("/predict", json=EXAMPLE)
        two = client.post("/predict", json=HANG)
        just_stuck = client.get("/healthz")  # the second hang is younger than 1.5 s
        time.sleep(1.8)
        dead, v2_dead = client.get("/healthz"), client.get("/v2/health/live")
    assert one.status_code == two.status_code == 504
    assert one_stuck.status_code == 200 and served.status_code == 200 and just_stuck.status_code == 200
    assert dead.status_code == 503 and dead.json()["status"] == "stalled"
    assert "every worker" in dead.json()["detail"] and v2_dead.status_code == 503
    assert any(line.get("event") == "stalled" for line in service.log_lines())
