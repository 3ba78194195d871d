"""``nbship deploy|status|rollback`` against a real Kubernetes API server, controller manager and kubelet.

The image is a tiny stand-in built here with the docker SDK: a stdlib HTTP server answering the runtime's
operational routes, run as the numeric user 10001 (building the real service image needs the image stage and
PyPI). The manifests are nbship's own, rendered from a spec, in a namespace that enforces Pod Security
``restricted``. Start the rig with ``bash ../shared/docker/up.sh && bash ../shared/k8s/up.sh``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nbship.image.record import BuildRecord, write_build_record
from nbship.image.ref import ImageRef
from nbship.image.smoke import SmokeResult
from tests.cluster import KUBECONFIG, REGISTRY, call_service, deployed_image, kubectl

pytestmark = [pytest.mark.cluster, pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _commands_registered() -> None:
    """Until nbship/cli/__init__.py registers them, add deploy, status and rollback to the app under test."""
    from nbship.cli import app
    from nbship.cli import deploy as commands

    present = {c.name for c in app.registered_commands}
    for name in ("deploy", "status", "rollback"):
        if name not in present:
            app.command(name, no_args_is_help=True)(getattr(commands, name))


def _answers(namespace: str, settle: float = 0.0) -> dict[str, Any]:
    """GET /version of the ``tiny`` Service (see ``call_service`` for ``settle``)."""
    status, body = call_service(namespace, "tiny", "/version", settle=settle)
    assert status == 200, status
    return dict(body)


def test_deploy_rolls_out_then_a_broken_image_is_rolled_back_and_old_pods_keep_serving(
    run_cli: Callable[..., tuple[int, str, str]], images: dict[str, str], namespace: str, context_dir: Path
) -> None:
    def deploy(image: str, *extra: str) -> tuple[int, str, str]:
        return run_cli("deploy", context_dir, "--env", "production", "--namespace", namespace, "--image", image, *extra)

    code, out, err = deploy(images["good"], "--timeout", "180", "--output", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["ok"] and result["revision"] == 1 and result["namespace"] == namespace
    assert deployed_image(namespace) == images["good"]  # pinned by digest
    assert "rollout: successfully rolled out" in err
    ready = kubectl("get", "deployment", "tiny", "-n", namespace, "-o", "jsonpath={.status.readyReplicas}").stdout
    assert ready == "2"
    assert _answers(namespace, settle=15)["param"] == "0.5"  # the parameter arrived from the generated ConfigMap

    # The same deploy again changes nothing: no new revision, no conflict with itself.
    code, out, err = deploy(images["good"], "--output", "json")
    assert code == 0, err
    assert json.loads(out)["revision"] == 1

    answered: list[bool] = []
    stop = threading.Event()

    def keep_asking() -> None:  # the old pods must answer throughout the failed rollout and its rollback
        while not stop.is_set():
            try:
                answered.append(_answers(namespace)["param"] == "0.5")
            except OSError:
                answered.append(False)
            time.sleep(0.5)

    watcher = threading.Thread(target=keep_asking)
    watcher.start()
    started = time.monotonic()
    try:
        code, out, err = deploy(images["crash"], "--timeout", "240")
    finally:
        stop.set()
        watcher.join()
    assert len(answered) > 10 and all(answered), answered
    assert code == 5, err
    assert "crash-looping" in err and "rolled back to revision 1" in err
    assert "boom: the model file is missing" in err  # the crashed container's own log is shown
    assert time.monotonic() - started < 200  # failed early, well before the progress deadline
    assert deployed_image(namespace) == images["good"]
    assert _answers(namespace)["param"] == "0.5"  # the old pods kept serving throughout

    # A tag that does not exist fails on the pull, and is rolled back too.
    code, out, err = deploy(f"{REGISTRY}/nbship-e2e/tiny:no-such-tag", "--timeout", "240", "--output", "json")
    assert code == 5, err
    failure = json.loads(out)
    assert failure["ok"] is False
    assert "ImagePullBackOff" in failure["error"] or "ErrImagePull" in failure["error"], failure["error"]
    assert failure["rolled_back_to"] is not None
    assert deployed_image(namespace) == images["good"]

    # After nbship's own rollbacks a good deploy applies again without a field-manager conflict.
    code, out, err = deploy(images["good"], "--output", "json")
    assert code == 0, err


def test_status_rollback_and_dry_run(
    run_cli: Callable[..., tuple[int, str, str]], images: dict[str, str], namespace: str, context_dir: Path
) -> None:
    good, other = images["good"], images["good"].replace("@", ":good@")  # same digest, written differently
    # The first deploy takes its image and the measured load time from the build record.
    pinned = ImageRef.parse(good)
    record = BuildRecord(
        image=pinned.with_tag("unused"), tags=(), image_id="sha256:1", context_hash="h", reused=False,
        notebook_sha256="n", lock_sha256="l", base_image="python:3.11-slim", platform=None, image_bytes=None,
        base_image_bytes=None, durations={}, smoke=SmokeResult(True, load_seconds=20.0), digest=pinned.digest,
    )
    write_build_record(context_dir / "nbship-build.json", record)
    code, _, err = run_cli("deploy", context_dir, "-n", namespace, "--timeout", "180")
    assert code == 0, err
    probe = "jsonpath={.spec.template.spec.containers[0].startupProbe}"
    startup = json.loads(kubectl("get", "deployment", "tiny", "-n", namespace, "-o", probe).stdout)
    assert startup["periodSeconds"] * startup["failureThreshold"] == 90  # 3 × 20 s + 30 s
    assert deployed_image(namespace) == good
    assert run_cli("deploy", context_dir, "-n", namespace, "--image", other, "--timeout", "180")[0] == 0

    code, out, err = run_cli("status", context_dir, "-n", namespace, "--output", "json")
    assert code == 0, err
    status = json.loads(out)
    assert status["revision"] == 2 and status["image"] == other, status
    assert status["replicas"]["ready"] == 1 and status["hpa"] is None  # staging runs one pod

    code, out, err = run_cli("rollback", context_dir, "-n", namespace, "--output", "json")
    assert code == 0, err
    assert json.loads(out)["image"] == good

    code, out, err = run_cli("deploy", context_dir, "-n", namespace, "--image", other, "--dry-run")
    assert code == 0, err
    assert other in out and "+" in out  # the server-side diff shows the image change
    assert deployed_image(namespace) == good  # and nothing was applied

    # --no-rollback leaves the failed revision in place; `nbship rollback` then restores the good one.
    missing = f"{REGISTRY}/nbship-e2e/tiny:no-such-tag"
    code, _, err = run_cli("deploy", context_dir, "-n", namespace, "--image", missing, "--no-rollback")
    assert code == 5 and "not rolled back (--no-rollback)" in err
    assert deployed_image(namespace) == missing
    code, out, err = run_cli("rollback", context_dir, "-n", namespace, "--output", "json")
    assert code == 0, err
    assert json.loads(out)["image"] == good


def test_missing_namespace_and_no_cluster_are_clear_errors(
    run_cli: Callable[..., tuple[int, str, str]],
    context_dir: Path,
    cluster_env: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    code, _, err = run_cli("deploy", context_dir, "-n", "nbship-no-such-ns", "--image", "x/y:1")
    assert code == 5 and "namespace nbship-no-such-ns does not exist" in err

    broken = tmp_path / "kubeconfig"
    broken.write_text(
        re.sub(r"server: .*", "server: https://127.0.0.1:1", Path(KUBECONFIG).read_text()), encoding="utf-8"
    )
    monkeypatch.setenv("KUBECONFIG", str(broken))
    code, _, err = run_cli("deploy", context_dir, "--image", "x/y:1")
    assert code == 3 and "no Kubernetes cluster reachable" in err
