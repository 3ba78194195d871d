"""Issue 13, Deploy (points 15 to 18): the rollout wait judges only what belongs to the new spec, rides out
transient API errors, waits as long as the Deployment itself allows, and says what to run when interrupted.

A scripted ``ClusterClient`` plays the API server (each read of the Deployment takes the next step of a script:
a state, or an error to raise) and a fake clock plays time; ``nbship.deploy.apply.deploy`` runs unchanged on top.
Where only a real controller can show it, tests/security/test_deploy_rollout_cluster.py does it on the rig.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from nbship.deploy.apply import ImageChoice, RolloutFailedError, Target, deploy, deploy_layer
from nbship.deploy.rollout import Pace, RolloutProgress, rollout_timeout
from nbship.errors import (
    ClusterPermissionError,
    ClusterUnavailableError,
    DeployError,
    EnvironmentMissingError,
    ExitCode,
    RolloutInterruptedError,
)
from nbship.image.ref import ImageRef
from tests.fakes import FakeClock, ScriptedCluster, Step
from tests.unit.test_k8s_deploy import context

UID = "deployment-uid"
CHURN_3 = ImageRef.parse("r/churn:3")
NAME = "churn-model"
TIMED_OUT = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": f'ReplicaSet "{NAME}-2" has timed out progressing.'}
NEW_RS = {"type": "Progressing", "status": "True", "reason": "NewReplicaSetCreated",
          "message": f'Created new replica set "{NAME}-3"'}
TWO_REPLICAS = {"replicas": 2, "autoscaling": {"enabled": False}}

def state(revision: int, *, observed: int | None = None, desired: int = 2, updated: int = 0, available: int = 0,
          total: int | None = None, conditions: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
    """The Deployment as the API server returns it: ``metadata.generation`` is ``revision`` (one spec change
    per revision); the status is the controller's, as of the generation it has ``observed``."""
    return {
        "metadata": {"name": NAME, "uid": UID, "generation": revision,
                     "annotations": {"deployment.kubernetes.io/revision": str(revision if observed is None
                                                                              else observed)}},
        "spec": {"replicas": desired, "selector": {"matchLabels": {"app": NAME}}},
        "status": {"observedGeneration": revision if observed is None else observed, "updatedReplicas": updated,
                   "readyReplicas": available, "availableReplicas": available,
                   "replicas": updated if total is None else total, "conditions": list(conditions)},
    }


def replicaset(revision: int) -> dict[str, Any]:
    return {"metadata": {"name": f"{NAME}-{revision}", "ownerReferences": [{"uid": UID}],
                         "annotations": {"deployment.kubernetes.io/revision": str(revision)}},
            "spec": {"template": {"metadata": {"labels": {"app": NAME}},
                                  "spec": {"containers": [{"name": "model", "image": f"r/churn:{revision}"}]}}}}


def stuck_pod(revision: int) -> dict[str, Any]:
    """A pod of ``revision`` that can never start: its image does not exist."""
    return {"metadata": {"name": f"{NAME}-{revision}-x", "ownerReferences": [{"name": f"{NAME}-{revision}"}]},
            "status": {"containerStatuses": [{"name": "model", "restartCount": 0, "state": {"waiting": {
                "reason": "ImagePullBackOff", "message": "manifest unknown"}}}]}}


def run_deploy(tmp_path: Path, cluster: ScriptedCluster, clock: FakeClock, *, poll: float = 1.0,
               timeout: float | None = None) -> tuple[Any, list[str]]:
    messages: list[str] = []

    def progress(p: RolloutProgress) -> None:
        messages.append(p.message)

    result = deploy(cluster, Target(context(tmp_path, TWO_REPLICAS), "production"), ImageChoice(CHURN_3, None),
                    timeout=timeout, on_progress=progress, pace=Pace(poll_seconds=poll, sleep=clock.sleep, clock=clock))
    return result, messages


def test_15_a_stale_progress_deadline_does_not_fail_the_deploy_that_fixes_a_stuck_revision(tmp_path: Path) -> None:
    """Revision 2 is stuck (its image does not exist, its deadline passed). Deploying a good revision 3, the
    controller takes 30 s to observe the new spec: until then the status, the revision annotation and the
    newest pods are revision 2's, and none of them may fail the deploy (before the fix it failed at once and
    rolled back)."""
    stuck: dict[str, Any] = {"updated": 1, "available": 2, "total": 3, "conditions": [TIMED_OUT]}
    script: list[Step] = [state(3, observed=2, **stuck)] * 30 + [
        state(3, updated=1, available=2, total=3, conditions=[NEW_RS]),
        state(3, updated=2, available=2, total=3),
        state(3, updated=2, available=2, total=2),
    ]
    cluster = ScriptedCluster(state(2, **stuck), script, replicasets=[replicaset(1), replicaset(2)],
                              pods=[stuck_pod(2)])
    clock = FakeClock()
    result, messages = run_deploy(tmp_path, cluster, clock)
    assert (result.revision, result.previous_revision) == (3, 2)
    assert len(cluster.applied) == 1  # nothing rolled back
    assert messages[1] == "waiting for the controller to observe the new spec"
    assert clock.now >= 30  # it waited out the lag (longer than the 20 s an ImagePullBackOff is given)
    assert messages[-1].startswith("successfully rolled out")

    # Once the controller has seen the spec, the same condition is the new revision's, and fails it.
    again = ScriptedCluster(state(2, updated=2, available=2), [state(3, updated=1, available=2, total=3,
                                                                    conditions=[TIMED_OUT])])
    with pytest.raises(RolloutFailedError, match="exceeded its progress deadline"):
        run_deploy(tmp_path / "again", again, FakeClock())


def test_16_transient_api_errors_are_retried_with_backoff_and_a_lost_server_is_said(tmp_path: Path) -> None:
    blip = ClusterUnavailableError("no Kubernetes cluster reachable: Error from server (ServiceUnavailable): "
                                   "the server is currently unable to handle the request")
    script: list[Step] = [state(3, observed=2), blip, blip, blip, state(3, updated=1, total=3, available=2),
                          blip, state(3, updated=2, available=2)]
    cluster = ScriptedCluster(state(2, updated=2, available=2), script, apply_errors=[blip])
    clock = FakeClock()
    result, messages = run_deploy(tmp_path, cluster, clock, poll=3.0)
    assert result.revision == 3 and len(cluster.applied) == 1
    # apply retried once; polls every 3 s; three failed reads in a row back off 0.5, 1, 2 s; a later one starts over
    assert clock.slept == [0.5, 3.0, 0.5, 1.0, 2.0, 3.0, 0.5]
    assert sum("the API server did not answer apply" in m for m in messages) == 1
    assert sum("retrying in 2 s" in m for m in messages) == 1

    # An API server gone for longer than the retries: say so, say the rollout goes on, exit 3, touch nothing.
    gone = ScriptedCluster(state(2, updated=2, available=2), [state(3, observed=2), blip])
    clock = FakeClock()
    with pytest.raises(ClusterUnavailableError, match="lost the API server while waiting for the rollout") as e:
        run_deploy(tmp_path / "gone", gone, clock, poll=3.0)
    assert e.value.exit_code == ExitCode.ENVIRONMENT and "gave up after 7 tries over 30 s" in e.value.message
    assert e.value.hint and "goes on in the cluster" in e.value.hint and "nbship status" in e.value.hint
    assert clock.slept == [3.0, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0]
    assert len(gone.applied) == 1  # no rollback attempted against a server that does not answer


FORBIDDEN = ('Error from server (Forbidden): configmaps "churn-model-config" is forbidden: User '
             '"system:serviceaccount:ml:ci" cannot patch resource "configmaps" in API group "" in the namespace "ml"')

KUBECTL = '''#!{python}
"""A stand-in for kubectl: the API server answers, lets the user read, and refuses to patch (RBAC)."""
import sys
args = sys.argv[1:]
if args[:2] == ["get", "--raw"]:
    print("ok")
elif args[0] == "kustomize":
    print(open({manifest!r}).read())
elif args[:2] == ["get", "namespace"]:
    sys.exit(print('Error from server (Forbidden): namespaces "ml" is forbidden: User "system:serviceaccount:ml:ci" '
                   'cannot get resource "namespaces" in API group "" in the namespace "ml"', file=sys.stderr) or 1)
elif args[0] == "get":
    pass  # not found
elif args[0] == "apply":
    open({calls!r}, "a").write("apply\\n")
    sys.exit(print({forbidden!r}, file=sys.stderr) or 1)
else:
    sys.exit(print("unexpected: " + " ".join(args), file=sys.stderr) or 2)
'''


@pytest.mark.parametrize(("stderr", "raised"), [
    ("Error from server (ServiceUnavailable): the server is currently unable to handle the request",
     ClusterUnavailableError),
    ("Error from server (TooManyRequests): the server has received too many requests and has asked us to try again "
     "later", ClusterUnavailableError),
    ("The connection to the server 10.0.0.1:6443 was refused - did you specify the right host or port?",
     ClusterUnavailableError),
    ("Unable to connect to the server: dial tcp 10.0.0.1:6443: i/o timeout", ClusterUnavailableError),
    ("Error from server: etcdserver: request timed out", ClusterUnavailableError),
    ("Unable to connect to the server: x509: certificate signed by unknown authority", EnvironmentMissingError),
    ("error: You must be logged in to the server (Unauthorized)", EnvironmentMissingError),
    (FORBIDDEN, ClusterPermissionError),
    ('Error from server (BadRequest): the server rejected our request for an unknown reason', DeployError),
])
def test_16_kubectls_failures_are_sorted_into_retry_permission_and_refusal(
    tmp_path: Path, stderr: str, raised: type[Exception]
) -> None:
    """What kubectl prints decides whether nbship retries (only the transient ones), and which exit code follows."""
    from nbship.deploy.kubectl import KubectlClient

    kubectl = tmp_path / "kubectl"
    kubectl.write_text(f"#!{sys.executable}\nimport sys\nsys.exit(print({stderr!r}, file=sys.stderr) or 1)\n",
                       encoding="utf-8")
    kubectl.chmod(0o755)
    with pytest.raises(raised) as e:
        KubectlClient(kubectl=str(kubectl)).get("deployment", NAME, "ml")
    assert type(e.value) is raised  # not a subclass: a certificate error must not be retried as transient


def test_16_a_permission_error_names_the_verb_and_resource_and_exits_3(
    tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = context(tmp_path / "ctx", TWO_REPLICAS)
    manifest = tmp_path / "rendered.yaml"
    document = yaml.safe_load((ctx / "k8s" / "base" / "deployment.yaml").read_text(encoding="utf-8"))
    document["metadata"]["namespace"] = "ml"
    manifest.write_text(yaml.safe_dump(document), encoding="utf-8")
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text(KUBECTL.format(python=sys.executable, manifest=str(manifest),
                                                     calls=str(calls), forbidden=FORBIDDEN), encoding="utf-8")
    (bin_dir / "kubectl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    code, out, err = run_cli("deploy", ctx, "--env", "production", "--image", "r/churn:3", "--output", "json")
    assert code == 3, err
    assert "error: not allowed to patch configmaps in namespace ml (as system:serviceaccount:ml:ci)" in err
    assert "kubectl auth can-i patch configmaps -n ml" in err
    assert calls.read_text(encoding="utf-8").count("apply") == 1  # asking again gives the same answer: no retry
    assert "Traceback" not in err and out == ""
    assert ClusterPermissionError.exit_code == ExitCode.ENVIRONMENT


def slow_rollout(step_seconds: int, poll: float) -> list[Step]:
    """Two replicas replaced one at a time, each new pod taking ``step_seconds`` to load its model."""
    polls = int(step_seconds / poll)
    return ([state(3, updated=1, available=2, total=3)] * polls
            + [state(3, updated=2, available=3, total=3)] * polls
            + [state(3, updated=2, available=2, total=2)])


def test_17_the_default_wait_is_the_progress_deadline_times_the_surge_steps(tmp_path: Path) -> None:
    """Each new pod loads its model for 500 s, within the 600 s progress deadline that the controller restarts
    at each step: the rollout takes 1000 s and is healthy. The old fixed 600 s wait rolled it back."""
    cluster = ScriptedCluster(state(2, updated=2, available=2), slow_rollout(500, poll=10.0),
                              replicasets=[replicaset(2), replicaset(3)])
    clock = FakeClock()
    result, messages = run_deploy(tmp_path, cluster, clock, poll=10.0)
    assert result.revision == 3 and len(cluster.applied) == 1 and clock.now >= 1000
    assert "waiting up to 1200 s: progressDeadlineSeconds 600 s × 2 rolling-update steps" in messages

    # What a fixed 600 s did: gave up on a healthy rollout, and rolled it back.
    cluster = ScriptedCluster(state(2, updated=2, available=2), slow_rollout(500, poll=10.0),
                              replicasets=[replicaset(2), replicaset(3)])
    with pytest.raises(RolloutFailedError, match="timed out after 600 s"):
        run_deploy(tmp_path / "fixed", cluster, FakeClock(), poll=10.0, timeout=600)

    # The steps follow replicas / maxSurge (25 %, rounded up); a first deploy has no old pods to replace.
    base = yaml.safe_load((context(tmp_path / "four", {"replicas": 4, "autoscaling": {"enabled": False},
                                                       "timeouts": {"startup_seconds": 900}})
                           / "k8s" / "base" / "deployment.yaml").read_text(encoding="utf-8"))
    assert rollout_timeout(base, state(2, desired=4)) == (4080.0,
                                                         "progressDeadlineSeconds 1020 s × 4 rolling-update steps")
    assert rollout_timeout(base, None)[0] == 1020.0
    autoscaled = yaml.safe_load((context(tmp_path / "hpa") / "k8s" / "base" / "deployment.yaml").read_text())
    assert rollout_timeout(autoscaled, state(2, desired=5))[0] == 600.0 * 3  # the live count: 5 / 2 per step

    # A deploy that sizes the startup budget from a slow measured load also moves the deadline past it.
    with deploy_layer(Target(context(tmp_path / "slow"), "staging"), ImageChoice(CHURN_3, 200.0)) as layer:
        ops = yaml.safe_load(yaml.safe_load((layer / "kustomization.yaml").read_text())["patches"][0]["patch"])
    assert {"op": "replace", "path": "/spec/progressDeadlineSeconds", "value": 750} in ops  # 3 × 200 + 30 + 120


def test_18_ctrl_c_during_the_wait_names_the_revision_and_what_to_run_and_exits_130(
    tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted_cluster() -> ScriptedCluster:
        return ScriptedCluster(state(2, updated=2, available=2), [state(3, updated=1, available=2, total=3)],
                               replicasets=[replicaset(2), replicaset(3)], interrupt_on_pods=True)

    cluster = interrupted_cluster()
    with pytest.raises(RolloutInterruptedError) as e:
        run_deploy(tmp_path / "lib", cluster, FakeClock())
    assert (e.value.revision, e.value.previous, e.value.exit_code) == (3, 2, ExitCode.INTERRUPTED)
    assert len(cluster.applied) == 1  # nothing rolled back behind the user's back

    import nbship.cli.deploy as commands

    ctx = context(tmp_path / "ctx", TWO_REPLICAS)
    monkeypatch.setattr(commands, "_connect", lambda kube_context: interrupted_cluster())
    code, out, err = run_cli("deploy", ctx, "--env", "production", "-n", "ml", "--image", "r/churn:3")
    assert code == 130, err
    assert f"interrupted: stopped waiting for revision 3 of deployment/{NAME} in ml to roll out" in err
    assert "the rollout goes on in the cluster" in err
    assert f"see where it stands: nbship status {ctx} --env production -n ml" in err
    assert f"go back to revision 2: nbship rollback {ctx} --env production -n ml" in err
    assert out == ""

    code, out, err = run_cli("deploy", ctx, "--env", "production", "--image", "r/churn:3", "--output", "json")
    assert code == 130
    assert json.loads(out) | {"error": ""} == {"ok": False, "interrupted": True, "deployment": NAME,
                                               "namespace": "ml", "revision": 3, "previous_revision": 2,
                                               "error": ""}
