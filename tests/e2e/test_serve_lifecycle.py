"""Start-up and shutdown of the real service process: fail fast on a broken load, drain on SIGTERM."""

from __future__ import annotations

import hashlib
import json
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.fixtures.service._harness import EXAMPLE, build_context, start

pytestmark = pytest.mark.slow


def test_a_failing_load_cell_exits_non_zero_naming_the_cell_and_never_serves(tmp_path: Path) -> None:
    running = start(build_context(tmp_path / "ctx"), {"NBSHIP_PARAM_FAIL_LOAD": "true"}, wait=False)
    assert running.process.wait(30) == 3  # uvicorn's start-up failure code
    failures = [e for e in running.log_lines() if e.get("event") == "startup_failed"]
    assert len(failures) == 1
    assert failures[0]["where"] == "toy.ipynb cell 5 line 4"
    assert "RuntimeError: the model file is corrupt" in failures[0]["message"]
    assert not any(e.get("logger") == "nbship.access" for e in running.log_lines())
    with pytest.raises(httpx.ConnectError):
        httpx.get(running.url + "/healthz", timeout=1)


def test_a_failing_warm_up_on_the_example_also_stops_start_up(tmp_path: Path) -> None:
    context = build_context(tmp_path / "ctx")
    manifest = json.loads((context / "nbship.json").read_text(encoding="utf-8"))
    manifest["example"]["request"]["mode"] = "fail"
    (context / "nbship.json").write_text(json.dumps(manifest), encoding="utf-8")
    running = start(context, wait=False)
    assert running.process.wait(30) == 3
    (failure,) = [e for e in running.log_lines() if e.get("event") == "startup_failed"]
    assert failure["where"] == "toy.ipynb cell 7 line 4"
    assert "warm-up prediction" in failure["message"] and "ZeroDivisionError" in failure["message"]


def test_a_parameter_override_of_the_wrong_type_stops_start_up(tmp_path: Path) -> None:
    running = start(build_context(tmp_path / "ctx"), {"NBSHIP_PARAM_THRESHOLD": "high"}, wait=False)
    assert running.process.wait(30) == 3  # uvicorn's start-up failure code
    (failure,) = [e for e in running.log_lines() if e.get("event") == "startup_failed"]
    assert "parameter threshold: expected float, got 'high'" in failure["message"]


def test_sigterm_turns_not_ready_finishes_every_accepted_request_and_exits_zero(tmp_path: Path) -> None:
    context = build_context(tmp_path / "ctx", predict_timeout_seconds=10.0, shutdown_grace_seconds=10, queue_size=3)
    running = start(context, {"NBSHIP_DRAIN_SECONDS": "2"})
    slow = {**EXAMPLE, "mode": "slow", "delay": 1.0}
    with httpx.Client(base_url=running.url, timeout=20) as client, ThreadPoolExecutor(4) as threads:
        # two running, two queued (one place left): the last ones finish about 2 s after SIGTERM
        in_flight = [threads.submit(client.post, "/predict", json=slow) for _ in range(4)]
        deadline = time.monotonic() + 5
        while 'nbship_predictions_queued{model="toy",version="1.2.3"} 2' not in client.get("/metrics").text:
            assert time.monotonic() < deadline, "requests never reached the service"
            time.sleep(0.02)
        sent = time.monotonic()
        running.process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        with httpx.Client(base_url=running.url, timeout=5) as fresh:  # a new connection during the drain
            readiness = fresh.get("/readyz")
            assert readiness.status_code == 503 and readiness.json() == {"status": "draining"}
            assert fresh.get("/v2/health/ready").status_code == 503
            assert fresh.post("/predict", json=EXAMPLE).status_code == 200  # routed late: still served
        statuses = [f.result().status_code for f in in_flight]
    assert statuses == [200, 200, 200, 200]
    assert running.process.wait(15) == 0
    assert time.monotonic() - sent < 10
    accessed = [e for e in running.log_lines() if e.get("logger") == "nbship.access" and e["route"] == "/predict"]
    assert sorted(e["status"] for e in accessed) == [200] * 5
    assert any(e.get("event") == "draining" for e in running.log_lines())
    with pytest.raises(httpx.ConnectError):
        httpx.get(running.url + "/healthz", timeout=1)


def test_log_lines_are_all_json(tmp_path: Path) -> None:
    running = start(build_context(tmp_path / "ctx"))
    httpx.post(running.url + "/predict", json=EXAMPLE)
    assert running.terminate() == 0
    raw = running.log_path.read_text(encoding="utf-8").splitlines()
    assert raw and all(json.loads(line)["time"] for line in raw)
    assert any(json.loads(line).get("event") == "ready" for line in raw)


@pytest.fixture
def artifact_server(tmp_path: Path) -> Iterator[tuple[str, bytes]]:
    """A local HTTP server with one file, standing in for object storage."""
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    content = b"remote weights\n" * 100
    (served / "enc.bin").write_bytes(content)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/enc.bin", content
    server.shutdown()


def with_remote(context: Path, uri: str, sha256: str) -> Path:
    manifest = json.loads((context / "nbship.json").read_text(encoding="utf-8"))
    manifest["remote_artifacts"] = [{"path": "weights/enc.bin", "uri": uri, "sha256": sha256}]
    (context / "nbship.json").write_text(json.dumps(manifest), encoding="utf-8")
    return context


def test_remote_artifacts_are_fetched_and_verified_before_load(
    tmp_path: Path, artifact_server: tuple[str, bytes]
) -> None:
    uri, content = artifact_server
    good = with_remote(build_context(tmp_path / "good"), uri, hashlib.sha256(content).hexdigest())
    running = start(good)
    assert running.terminate() == 0
    assert (good / "weights" / "enc.bin").read_bytes() == content

    bad = with_remote(build_context(tmp_path / "bad"), uri, "0" * 64)
    refused = start(bad, wait=False)
    assert refused.process.wait(30) == 3
    (failure,) = [e for e in refused.log_lines() if e.get("event") == "startup_failed"]
    assert "sha256 is" in failure["message"] and "refusing to load it" in failure["message"]
    assert not (bad / "weights" / "enc.bin").exists()
