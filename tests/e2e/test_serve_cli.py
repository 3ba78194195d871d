"""``nbship serve``: render the tabular example and serve it with uvicorn here; ``--reload`` follows edits."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.service._harness import free_port

pytestmark = pytest.mark.slow
EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "notebooks" / "tabular-churn"
NOTEBOOK = "churn.ipynb"


def example_request(notebook: Path) -> dict[str, object]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    source = next("".join(c["source"]) for c in cells if "".join(c["source"]).startswith("# nbship: example"))
    namespace: dict[str, object] = {}
    exec(source.split("\npostprocess(")[0], namespace)  # the example dict, without running the pipeline
    return namespace["example"]  # type: ignore[return-value]


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"nbship serve exited {process.returncode}"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready in {timeout} s")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    if not (EXAMPLE_DIR / NOTEBOOK).exists():
        pytest.skip("the tabular example is not there")
    pytest.importorskip("sklearn")
    shutil.copytree(EXAMPLE_DIR, tmp_path / "churn", ignore=shutil.ignore_patterns("requirements.lock"))
    return tmp_path / "churn"


def test_serve_reload_follows_a_parameter_edit_and_sigterm_exits_zero(project: Path) -> None:
    notebook = project / NOTEBOOK
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "nbship", "serve", str(notebook), "--port", str(port), "--reload"],
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/readyz", process)
        payload = example_request(notebook)
        first = httpx.post(url + "/predict", json=payload, timeout=10).json()
        assert first["risk"] == "high" and first["churn_probability"] > 0.9

        document = json.loads(notebook.read_text(encoding="utf-8"))
        for cell in document["cells"]:
            text = "".join(cell["source"])
            if "high_risk_threshold = 0.75" in text:
                cell["source"] = text.replace("high_risk_threshold = 0.75", "high_risk_threshold = 0.999")
        notebook.write_text(json.dumps(document), encoding="utf-8")

        deadline = time.monotonic() + 120
        while True:
            try:
                answer = httpx.post(url + "/predict", json=payload, timeout=10).json()
                if answer["risk"] == "medium":
                    break
            except (httpx.TransportError, ValueError, KeyError):
                pass  # between the old service stopping and the new one being ready
            assert time.monotonic() < deadline, "the edit never reached the service"
            time.sleep(0.3)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output = process.communicate(timeout=60)[0].decode()
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, output
    assert "changed: re-rendering" in output
