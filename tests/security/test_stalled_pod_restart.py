"""Issue 13 point 6 on the rig's cluster: a pod whose every worker hangs in ``predict`` is restarted by its
liveness probe (``/healthz``), then serves again.

The image is the real service image, built by the image stage from ``tests/fixtures/image`` with a ``predict`` that
hangs on a negative input, one worker and a 1 s deadline (so liveness fails 3 s after the hang begins). The
manifests are nbship's own (``render_manifests``), deployed with ``nbship deploy`` into a namespace that enforces Pod
Security ``restricted``. Start the rig with ``bash ../shared/docker/up.sh && bash ../shared/k8s/up.sh``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nbship.deps import pip_settings
from nbship.image.build import BuildOptions, build_context
from nbship.image.builder import RunLimits
from nbship.render.k8s import render_manifests
from tests.cluster import REGISTRY, call_service, kubectl, tiny_spec
from tests.fixtures.image_context import make_image_context
from tests.images import rig_engine

pytestmark = [pytest.mark.cluster, pytest.mark.docker, pytest.mark.network, pytest.mark.slow]
HANGING_PREDICT = '''import time

from .loading import weights


# nbship: tiny.ipynb cell 3 (predict)
def predict(inputs):
    if inputs["x"] and inputs["x"][0] < 0:
        time.sleep(3600)  # a wedged model: nothing but a restart frees the worker
    return [weights["w"] * x + weights["b"] for x in inputs["x"]]
'''


@pytest.fixture
def image(tmp_path: Path, cluster_env: None) -> str:
    engine = rig_engine()
    context = make_image_context(tmp_path / "ctx")
    (context / "tiny" / "inference.py").write_text(HANGING_PREDICT, encoding="utf-8")
    manifest = json.loads((context / "nbship.json").read_text(encoding="utf-8"))
    manifest["service"].update(max_concurrency=1, queue_size=0, predict_timeout_seconds=1.0)
    (context / "nbship.json").write_text(json.dumps(manifest), encoding="utf-8")
    options = BuildOptions(repository=f"{REGISTRY}/nbship-e2e/stalled", push=True, limits=RunLimits(10**9, 2**29))
    record = build_context(engine, context, options, pip=lambda: pip_settings().for_builder())
    assert record.digest
    return f"{REGISTRY}/nbship-e2e/stalled@{record.digest}"


def _pod(namespace: str) -> dict[str, Any]:
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-l", "app.kubernetes.io/name=tiny",
                              "-o", "json").stdout)["items"]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return dict(pods[0])


def _post(namespace: str, payload: Any) -> int:
    return call_service(namespace, "tiny", "/predict", payload, settle=15)[0]


def test_a_pod_whose_workers_all_hang_is_restarted_and_serves_again(
    run_cli: Callable[..., tuple[int, str, str]], image: str, namespace: str, tmp_path: Path
) -> None:
    config = {"name": "tiny", "autoscaling": {"enabled": False}, "replicas": 1,
              "timeouts": {"predict_seconds": 1, "shutdown_grace_seconds": 5}}
    manifests = tmp_path / "manifests"
    for path, text in render_manifests(tiny_spec(config)).items():
        (manifests / path).parent.mkdir(parents=True, exist_ok=True)
        (manifests / path).write_text(text, encoding="utf-8")
    code, _, err = run_cli("deploy", manifests, "-n", namespace, "--image", image, "--timeout", "240")
    assert code == 0, err
    assert _post(namespace, {"x": [1.0]}) == 200
    assert _pod(namespace)["status"]["containerStatuses"][0]["restartCount"] == 0

    assert _post(namespace, {"x": [-1.0]}) == 504  # the request is answered at its deadline; the worker hangs on
    hung = time.monotonic()
    restarts = 0
    while time.monotonic() - hung < 150 and restarts == 0:
        time.sleep(2)
        restarts = _pod(namespace)["status"]["containerStatuses"][0]["restartCount"]
    assert restarts == 1, "the kubelet never restarted the wedged container"
    name = _pod(namespace)["metadata"]["name"]
    previous = kubectl("logs", name, "-n", namespace, "--previous").stdout
    assert '"event": "stalled"' in previous
    events = kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    assert "Liveness probe failed" in events

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = _pod(namespace)["status"]["containerStatuses"][0]
        if status.get("ready"):
            break
        time.sleep(2)
    assert _post(namespace, {"x": [1.0]}) == 200
