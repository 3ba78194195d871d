"""The deploy stage without a cluster: the deploy-time layer, the build record, and the rollout rules.

What the API server does is tested against a real one in tests/e2e/test_deploy_cluster.py; these pin the
decisions nbship makes from what it reads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from nbship.config import Config
from nbship.deploy.apply import ImageChoice, Target, deploy_layer
from nbship.deploy.layer import choose_image
from nbship.deploy.rollout import _fatal, rollout_state
from nbship.errors import DeployError, UserError
from nbship.image.record import BuildRecord, RecordError, read_build_record, write_build_record
from nbship.image.ref import ImageRef
from nbship.image.smoke import SmokeResult
from nbship.render.k8s import render_manifests
from nbship.spec import ProjectSpec
from tests.fakes import FakeCluster


def context(tmp_path: Path, config: dict[str, Any] | None = None) -> Path:
    spec = ProjectSpec(
        name="churn-model", version="1.0.0", package="churn_model", python_version="3.11",
        notebook_file="churn.ipynb", notebook_path=Path("/nowhere/churn.ipynb"), notebook_sha256="0" * 64,
        modules=(), parameters=(), settings=(), artifacts=(), remote_artifacts=(), example=None,
        config=Config.model_validate({"name": "churn-model", **(config or {})}),
    )
    for path, text in render_manifests(spec).items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    return tmp_path


def layer_of(tmp_path: Path, image: ImageChoice, config: dict[str, Any] | None = None,
             namespace: str | None = None) -> dict[str, Any]:
    with deploy_layer(Target(context(tmp_path, config), "staging", namespace), image) as layer:
        assert (layer.parent / "overlays" / "staging" / "kustomization.yaml").is_file()
        return dict(yaml.safe_load((layer / "kustomization.yaml").read_text(encoding="utf-8")))


def test_layer_pins_the_digest_and_sizes_a_default_startup_budget_from_the_load_time(tmp_path: Path) -> None:
    layer = layer_of(tmp_path, ImageChoice(ImageRef.parse("reg.example.com/churn@sha256:" + "a" * 64), 40.0),
                     namespace="ml")
    assert layer["resources"] == ["../overlays/staging"] and layer["namespace"] == "ml"
    assert layer["images"] == [
        {"name": "churn-model", "newName": "reg.example.com/churn", "digest": "sha256:" + "a" * 64}]
    ops = yaml.safe_load(layer["patches"][0]["patch"])
    assert {"op": "replace", "path": "/spec/template/spec/containers/0/startupProbe/failureThreshold",
            "value": 30} in ops  # 3 × 40 s + 30 s = 150 s at 5 s per probe


def test_layer_leaves_a_configured_budget_alone_and_takes_a_tag(tmp_path: Path) -> None:
    layer = layer_of(tmp_path, ImageChoice(ImageRef.parse("localhost:5000/churn:1.0.0-abc"), 40.0),
                     {"timeouts": {"startup_seconds": 90}})

    assert "patches" not in layer and "namespace" not in layer  # nothing to patch: a configured budget stays
    assert layer["images"][0] == {"name": "churn-model", "newName": "localhost:5000/churn", "newTag": "1.0.0-abc"}


def test_the_layers_copy_pins_image_and_commit_for_version(tmp_path: Path) -> None:
    from nbship.image.ref import ImageRef
    from nbship.render.pin import read_pins

    image = ImageChoice(ImageRef.parse("localhost:5000/churn@sha256:" + "c" * 64), None, git_commit="0123abc")
    with deploy_layer(Target(context(tmp_path), "staging"), image) as layer:
        _, _, provenance = read_pins(layer.parent.parent)
    assert provenance["image"] == str(image.reference) and provenance["git-commit"] == "0123abc"
    assert provenance["notebook-sha256"] == "0" * 64
    assert read_pins(tmp_path)[2]["image"] == "churn-model:1.0.0"  # the build context keeps its own pin


def test_the_build_context_itself_is_not_modified(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    before = {p: p.read_bytes() for p in ctx.rglob("*") if p.is_file()}
    with deploy_layer(Target(ctx, "production"), ImageChoice(ImageRef.parse("x/y:1"), 3.0)):
        pass
    assert {p: p.read_bytes() for p in ctx.rglob("*") if p.is_file()} == before


def test_unknown_overlay_names_the_ones_there(tmp_path: Path) -> None:
    target = Target(context(tmp_path), "prod")
    with pytest.raises(UserError, match="no Kubernetes overlay 'prod'") as raised, \
            deploy_layer(target, ImageChoice(ImageRef.parse("x/y:1"), None)):
        pass
    assert raised.value.hint == "overlays here: production, staging"


def a_record(image: str, digest: str | None, load_seconds: float | None) -> BuildRecord:
    return BuildRecord(
        image=ImageRef.parse(image), tags=(image,), image_id="sha256:1", context_hash="h", reused=False,
        notebook_sha256="n", lock_sha256="l", base_image="python:3.11-slim", platform=None, image_bytes=None,
        base_image_bytes=None, durations={}, smoke=SmokeResult(True, load_seconds=load_seconds), digest=digest,
        pushed=(image,) if digest else (),
    )


def test_build_record_gives_the_digest_and_load_time(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no build record"):
        choose_image(tmp_path)
    write_build_record(tmp_path / "nbship-build.json", a_record("r/churn:1.0.0-abc", "sha256:" + "b" * 64, 2.5))
    assert choose_image(tmp_path) == ImageChoice(ImageRef("r/churn", None, "sha256:" + "b" * 64), 2.5)
    assert choose_image(tmp_path, "other/img:2") == ImageChoice(ImageRef("other/img", "2"), 2.5)
    elsewhere = tmp_path / "ci" / "record.json"  # nbship build --record ci/record.json
    elsewhere.parent.mkdir()
    write_build_record(elsewhere, a_record("reg:5000/churn:2.0.0-def", None, None))
    assert choose_image(tmp_path, path=elsewhere) == ImageChoice(ImageRef("reg:5000/churn", "2.0.0-def"), None)
    with pytest.raises(UserError, match="no such build record"):
        choose_image(tmp_path, path=tmp_path / "missing.json")


def test_a_build_record_of_another_format_version_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "nbship-build.json"
    write_build_record(path, a_record("r/churn:1.0.0-abc", "sha256:" + "b" * 64, 2.5))
    assert read_build_record(path) == a_record("r/churn:1.0.0-abc", "sha256:" + "b" * 64, 2.5)
    document = json.loads(path.read_text())
    path.write_text(json.dumps({**document, "record_version": 2}))
    with pytest.raises(UserError, match="record_version 2 is not 1") as raised:
        choose_image(tmp_path)
    assert raised.value.hint == "run nbship build again"
    del document["record_version"]  # written by an nbship before the format had a version
    path.write_text(json.dumps(document))
    with pytest.raises(RecordError, match="record_version None is not 1"):
        read_build_record(path)



def deployment(generation: int = 2, observed: int = 2, desired: int = 2, **status: Any) -> dict[str, Any]:
    return {"metadata": {"generation": generation}, "spec": {"replicas": desired},
            "status": {"observedGeneration": observed, **status}}


@pytest.mark.parametrize(
    ("state", "done", "message"),
    [
        (deployment(observed=1), False, "waiting for the controller to observe the new spec"),
        (deployment(updatedReplicas=1, replicas=3, availableReplicas=2), False, "1 of 2 updated replicas"),
        (deployment(updatedReplicas=2, replicas=3, availableReplicas=2), False, "1 old replicas are pending"),
        (deployment(updatedReplicas=2, replicas=2, availableReplicas=1), False, "1 of 2 updated replicas"),
        (deployment(updatedReplicas=2, replicas=2, availableReplicas=2, readyReplicas=2), True, "successfully"),
    ],
)
def test_rollout_rules_are_kubectl_rollout_status_rules(state: dict[str, Any], done: bool, message: str) -> None:
    finished, text, _ = rollout_state(state)
    assert finished is done and message in text


def test_progress_deadline_exceeded_is_a_failure() -> None:
    state = deployment(conditions=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                    "message": 'ReplicaSet "x" has timed out progressing.'}])
    with pytest.raises(DeployError, match="exceeded its progress deadline"):
        rollout_state(state)


def pod(reason: str, restarts: int = 0) -> dict[str, Any]:
    return {"metadata": {"name": "p-1"}, "status": {"containerStatuses": [
        {"name": "model", "restartCount": restarts, "state": {"waiting": {"reason": reason, "message": "m"}}}]}}


def test_fatal_pod_states_fail_fast_but_only_once_they_last() -> None:
    seen: dict[tuple[str, str], float] = {}
    assert _fatal([pod("ImagePullBackOff")], seen, now=100.0) is None  # might be a registry hiccup
    assert "ImagePullBackOff" in (_fatal([pod("ImagePullBackOff")], seen, now=125.0) or "")
    assert _fatal([pod("CrashLoopBackOff", restarts=1)], {}, now=0.0) is None
    assert "crash-looping (2 restarts)" in (_fatal([pod("CrashLoopBackOff", restarts=2)], {}, now=0.0) or "")
    assert _fatal([pod("ContainerCreating")], {}, now=1e9) is None


def test_the_cli_module_imports_nothing_heavy() -> None:
    code = ("import sys, nbship.cli.deploy; heavy = {'yaml', 'jinja2', 'pydantic', 'docker', 'nbship.deploy.apply'}; "
            "print(sorted(heavy & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def live(revision: int, **status: Any) -> dict[str, Any]:
    return {"metadata": {"uid": "u1", "generation": revision, "annotations": {
                "deployment.kubernetes.io/revision": str(revision)}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "churn"}}},
            "status": {"observedGeneration": revision, **status}}


DEADLINE = [{"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "timed out"}]


def test_a_failed_rollout_reapplies_the_previous_template_as_nbship(tmp_path: Path) -> None:
    from nbship.deploy.apply import RolloutFailedError, deploy

    old = {"metadata": {"name": "churn-1", "uid": "rs1", "ownerReferences": [{"uid": "u1"}],
                        "annotations": {"deployment.kubernetes.io/revision": "1"}},
           "spec": {"template": {"metadata": {"labels": {"app": "churn", "pod-template-hash": "abc"}},
                                 "spec": {"containers": [{"name": "model", "image": "old"}]}}}}
    ok = {"updatedReplicas": 1, "replicas": 1, "availableReplicas": 1}
    cluster = FakeCluster([live(1), live(2, conditions=DEADLINE), live(2, conditions=DEADLINE), live(3, **ok)], [old])
    with pytest.raises(RolloutFailedError, match="exceeded its progress deadline.*rolled back to revision 1") as e:
        deploy(cluster, Target(context(tmp_path), "staging"), ImageChoice(ImageRef.parse("r/x:1"), None), timeout=5)
    assert e.value.rolled_back_to == 1 and e.value.exit_code == 5
    (first, forced_first), (rollback, forced) = cluster.applied
    assert not forced_first and forced  # the user's deploy never forces; taking back nbship's own fields does
    assert rollback["spec"]["template"] == {"metadata": {"labels": {"app": "churn"}},
                                            "spec": {"containers": [{"name": "model", "image": "old"}]}}
    assert rollback["spec"]["selector"] == first["spec"]["selector"]  # the rest is the rendered Deployment


def test_a_failed_first_deploy_has_nothing_to_roll_back_to(tmp_path: Path) -> None:
    from nbship.deploy.apply import RolloutFailedError, deploy

    cluster = FakeCluster([None, live(1, conditions=DEADLINE)], [])
    with pytest.raises(RolloutFailedError, match="no previous revision to roll back to"):
        deploy(cluster, Target(context(tmp_path), "staging"), ImageChoice(ImageRef.parse("r/x:1"), None), timeout=5)
    assert len(cluster.applied) == 1


def test_another_namespace_rescopes_the_alerts_and_the_keda_query(tmp_path: Path) -> None:
    import shutil
    import subprocess

    config = {"monitoring": {"enabled": True}, "autoscaling": {"keda": True, "in_flight_target": 4}}
    kubectl = shutil.which("kubectl", path="/opt/k8s-bin:/usr/local/bin:/usr/bin")
    with deploy_layer(Target(context(tmp_path, config), "staging", "ml"), None) as layer:
        overlay = layer.parent / "overlays" / "staging"
        texts = "".join(p.read_text(encoding="utf-8") for p in overlay.glob("*.yaml"))
        built = subprocess.run([kubectl, "kustomize", str(layer)], capture_output=True, text=True,
                               check=True).stdout if kubectl else ""
    assert 'namespace="churn-model-staging"' not in texts and 'namespace=\\"churn-model-staging\\"' not in texts
    assert texts.count('namespace="ml"') >= 4 and 'namespace=\\"ml\\"' in texts
    if built:
        documents = [d for d in yaml.safe_load_all(built) if d]
        scaled = next(d for d in documents if d["kind"] == "ScaledObject")
        assert scaled["spec"]["triggers"][-1]["metadata"]["query"] == (
            'sum(nbship_requests_in_flight{model="churn-model",namespace="ml"})')
        rule = next(d for d in documents if d["kind"] == "PrometheusRule")
        assert all('namespace="ml"' in r["expr"] for g in rule["spec"]["groups"] for r in g["rules"])
    assert 'namespace="churn-model-staging"' in (tmp_path / "k8s" / "overlays" / "staging" / "prometheusrule.yaml"
                                                   ).read_text(encoding="utf-8")  # the context itself untouched
