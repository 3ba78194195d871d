"""Issue 13, Deploy, on the rig's real API server, controller manager and kubelet (points 15, 16, 18).

What only a real cluster shows: a stuck revision's ``ProgressDeadlineExceeded`` and failing pods while the
controller has not yet observed the deploy that fixes it; the API server's own RBAC refusal; Ctrl-C reaching
nbship and kubectl together, as a terminal sends it, in the middle of a rollout. The images and manifests are
tests/cluster.py's, as in tests/e2e/test_deploy_cluster.py (a tiny stand-in service, nbship's rendered
manifests, a namespace that enforces Pod Security ``restricted``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster import KUBECONFIG, REGISTRY, deployed_image, kubectl, push_tiny
from tests.conftest import ROOT
from tests.images import docker_sdk

# The rig's fixtures (tests/cluster.py), shared with the end-to-end deploy tests: the cluster, the pushed images, a
# fresh namespace enforcing Pod Security "restricted", and a build context rendered for two replicas.

pytestmark = [pytest.mark.cluster, pytest.mark.docker, pytest.mark.slow]

CLI = Callable[..., tuple[int, str, str]]


def _deployment(namespace: str) -> dict[str, Any]:
    return dict(json.loads(kubectl("get", "deployment", "tiny", "-n", namespace, "-o", "json").stdout))


def _progressing(namespace: str) -> str:
    conditions = _deployment(namespace).get("status", {}).get("conditions", [])
    return next((c.get("reason", "") for c in conditions if c["type"] == "Progressing"), "")


def _until(what: str, check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:.0f} s: {what}")
        time.sleep(1)


def test_15_a_deploy_fixing_a_stuck_revision_succeeds_while_the_controller_lags(
    run_cli: CLI, images: dict[str, str], namespace: str, context_dir: Path
) -> None:
    """Revision 2 is stuck (no such image) past its progress deadline. A ResourceQuota then keeps the controller
    from creating revision 3's ReplicaSet for 35 s, as a busy or blocked controller would: all that time the
    status, the revision annotation and the newest pods are revision 2's. Before the fix nbship failed the deploy
    on them (the stale deadline, or the stuck pods' ImagePullBackOff after 20 s) and rolled back."""
    base = context_dir / "k8s" / "base" / "deployment.yaml"
    base.write_text(base.read_text().replace("progressDeadlineSeconds: 600", "progressDeadlineSeconds: 15"))

    def deploy(image: str, *extra: str) -> tuple[int, str, str]:
        return run_cli("deploy", context_dir, "--env", "production", "-n", namespace, "--image", image, *extra)

    assert deploy(images["good"], "--timeout", "180")[0] == 0
    code, _, err = deploy(f"{REGISTRY}/nbship-e2e/tiny:no-such-tag", "--no-rollback", "--timeout", "180")
    assert code == 5, err
    _until("revision 2 exceeds its progress deadline",
           lambda: _progressing(namespace) == "ProgressDeadlineExceeded", 120)

    replicasets = len(json.loads(kubectl("get", "replicaset", "-n", namespace, "-o", "json").stdout)["items"])
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "hold", "namespace": namespace},
             "spec": {"hard": {"count/replicasets.apps": str(replicasets)}}}
    kubectl("apply", "-f", "-", input=yaml.safe_dump(quota))
    _until("the quota is counted", lambda: "used" in json.loads(
        kubectl("get", "resourcequota", "hold", "-n", namespace, "-o", "json").stdout).get("status", {}), 30)

    lag: dict[str, Any] = {}

    def release() -> None:
        time.sleep(35)
        live = _deployment(namespace)
        lag["behind"] = live["metadata"]["generation"] > live["status"]["observedGeneration"]
        lag["condition"] = _progressing(namespace)
        kubectl("delete", "resourcequota", "hold", "-n", namespace)
        # the controller retries with a growing backoff; any change to the Deployment makes it look again
        kubectl("annotate", "deployment", "tiny", "-n", namespace, "nbship-test/poke=1", "--overwrite")

    releaser = threading.Thread(target=release)
    releaser.start()
    started = time.monotonic()
    try:
        fixed = images["good"].replace("@", ":good@")  # the same image, a new pod template: revision 3
        code, out, err = deploy(fixed, "--timeout", "240", "--output", "json")
    finally:
        releaser.join()
    assert lag["behind"], "the controller was not held back: this test shows nothing"
    assert code == 0, err
    assert json.loads(out)["revision"] == 3 and "rolled back" not in err
    assert "rollout: waiting for the controller to observe the new spec" in err
    assert time.monotonic() - started > 35
    assert deployed_image(namespace) == fixed


def test_16_the_api_servers_rbac_refusal_names_verb_and_resource_and_exits_3(
    run_cli: CLI, namespace: str, context_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CI service account that may read the namespace's workloads but not change them."""
    kubectl("create", "serviceaccount", "ci", "-n", namespace)
    kubectl("create", "role", "reader", "-n", namespace, "--verb=get,list,watch",
            "--resource=deployments.apps,replicasets.apps,pods,events,horizontalpodautoscalers.autoscaling")
    kubectl("create", "rolebinding", "ci-reader", "-n", namespace, "--role=reader",
            f"--serviceaccount={namespace}:ci")
    token = kubectl("create", "token", "ci", "-n", namespace, "--duration=10m").stdout.strip()
    config = yaml.safe_load(Path(KUBECONFIG).read_text(encoding="utf-8"))
    config["users"] = [{"name": "ci", "user": {"token": token}}]
    for entry in config["contexts"]:
        entry["context"]["user"] = "ci"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))

    code, out, err = run_cli("deploy", context_dir, "--env", "production", "-n", namespace, "--image", "x/y:1")
    assert code == 3, err
    refusal = re.search(rf"error: not allowed to patch (\S+) in namespace {namespace} "
                        rf"\(as system:serviceaccount:{namespace}:ci\)", err)
    assert refusal, err
    assert f"kubectl auth can-i patch {refusal[1]} -n {namespace}" in err
    assert "Traceback" not in err
    # Reading is allowed: status answers the same service account (no Deployment yet: exit 5, not 3)
    code, _, err = run_cli("status", context_dir, "--env", "production", "-n", namespace)
    assert code == 5 and "deployment/tiny not found" in err


@pytest.fixture(scope="module")
def sleepy_image(tmp_path_factory: pytest.TempPathFactory, images: dict[str, str]) -> str:
    """An image whose model never finishes loading: its pods never become ready."""
    folder = tmp_path_factory.mktemp("sleepy")
    return push_tiny(docker_sdk(), folder, f"{REGISTRY}/nbship-e2e/tiny:sleepy",
                     ["python3", "-c", "import time; time.sleep(3600)"])


def test_18_ctrl_c_during_the_wait_leaves_the_rollout_running_and_says_what_to_run(
    run_cli: CLI, images: dict[str, str], sleepy_image: str, namespace: str, context_dir: Path
) -> None:
    words = [str(context_dir), "--env", "production", "-n", namespace]
    assert run_cli("deploy", *words, "--image", images["good"], "--timeout", "180")[0] == 0

    env = {**os.environ, "PYTHONPATH": str(ROOT), "KUBECONFIG": os.environ.get("KUBECONFIG", KUBECONFIG)}
    process = subprocess.Popen(  # its own process group, signalled as a terminal signals it: kubectl too
        [sys.executable, "-m", "nbship", "deploy", *words, "--image", sleepy_image],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        _until("the new revision's pods are being created",
               lambda: any(re.search(r"rollout: .*(new replicas created|updated replicas)", line) for line in lines),
               90)
        time.sleep(2)  # in the middle of a poll or a kubectl call: either must do
        os.killpg(process.pid, signal.SIGINT)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        reader.join()
    err = "".join(lines)
    assert code == 130, err
    assert f"interrupted: stopped waiting for revision 2 of deployment/tiny in {namespace}" in err
    assert "the rollout goes on in the cluster" in err
    command = " ".join(words)
    assert f"nbship status {command}" in err and f"go back to revision 1: nbship rollback {command}" in err
    assert "Traceback" not in err and "internal error" not in err

    assert deployed_image(namespace) == sleepy_image  # nothing undone behind the user's back
    code, out, err = run_cli("rollback", *words, "--output", "json")  # the command it suggested
    assert code == 0, err
    assert json.loads(out)["image"] == images["good"]
