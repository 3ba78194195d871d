"""Deploy stage: a build context's ``k8s/`` overlay + its build record → applied, rolled out, or rolled back.

The cluster sits behind the small ``ClusterClient`` protocol; ``nbship.deploy.kubectl.KubectlClient``
implements it with kubectl (the user's kubeconfig and ``--context``), so nbship behaves exactly as the
commands an operator would type, and adds no Python dependency.

``deploy`` does what a careful operator does:

1. writes a small deploy-time kustomization on top of the chosen overlay (in a temporary copy of ``k8s/``;
   the build context is never modified) that pins the image by the digest of ``nbship-build.json`` and, when
   the rendered startup budget was the default, sizes it from the load time measured in the smoke test;
2. server-side apply with the field manager ``nbship``: repeated deploys are idempotent, and a field owned
   by another tool is a conflict reported to the user (``--force-conflicts`` takes it over);
3. waits as ``kubectl rollout status`` does (nothing is judged before the controller has observed the new
   spec; then updated, ready and available replicas and the progress deadline), by default for the rendered
   ``progressDeadlineSeconds`` × the rolling update's steps, riding out transient API errors with backoff;
   it fails early when a new pod cannot pull its image, cannot be created, or crash-loops;
4. on failure collects the new pods' recent events and logs, rolls back to the previous revision unless
   told not to, and raises ``RolloutFailedError`` (exit 5). The rollback re-applies the previous
   ReplicaSet's pod template with the same field manager (``kubectl rollout undo`` would leave the fields
   owned by "kubectl", and the next deploy would conflict with it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nbship.deploy.cluster import FIELD_MANAGER, ClusterClient
from nbship.deploy.layer import ImageChoice, Target, deploy_layer
from nbship.deploy.retry import retrying
from nbship.deploy.rollout import (
    Pace,
    RolloutProgress,
    collect_diagnostics,
    owned_replicasets,
    revision_of,
    rollout_timeout,
    wait_rollout,
)
from nbship.errors import ClusterPermissionError, DeployError

__all__ = ["FIELD_MANAGER", "ClusterClient", "DeployResult", "ImageChoice", "Rendered", "StatusReport", "Target",
           "deploy", "deploy_layer"]

class RolloutFailedError(DeployError):
    """The new revision did not become available; ``diagnostics`` holds the new pods' events and logs."""

    def __init__(self, message: str, *, diagnostics: str, rolled_back_to: int | None, hint: str | None) -> None:
        super().__init__(message, hint=hint)
        self.diagnostics = diagnostics
        self.rolled_back_to = rolled_back_to


@dataclass(frozen=True)
class Rendered:
    """The objects that apply would send, and the Deployment among them."""

    manifests: str
    deployment: str
    namespace: str
    objects: tuple[str, ...]
    deployment_object: dict[str, Any] = field(compare=False, default_factory=dict)


@dataclass(frozen=True)
class DeployResult:
    deployment: str
    namespace: str
    image: str
    revision: int | None
    previous_revision: int | None
    applied: tuple[str, ...]
    seconds: float
    dry_run: bool = False
    diff: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment, "namespace": self.namespace, "image": self.image,
            "revision": self.revision, "previous_revision": self.previous_revision, "applied": list(self.applied),
            "seconds": round(self.seconds, 3), "dry_run": self.dry_run, "diff": self.diff,
        }


@dataclass(frozen=True)
class StatusReport:
    deployment: str
    namespace: str
    revision: int | None
    image: str | None
    desired: int
    ready: int
    updated: int
    available: int
    conditions: tuple[tuple[str, str, str], ...]  # type, status, reason
    hpa: dict[str, Any] | None = field(default=None)

    def as_json(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment, "namespace": self.namespace, "revision": self.revision,
            "image": self.image, "replicas": {"desired": self.desired, "ready": self.ready,
                                              "updated": self.updated, "available": self.available},
            "conditions": [{"type": t, "status": s, "reason": r} for t, s, r in self.conditions],
            "hpa": self.hpa,
        }


def render_target(client: ClusterClient, target: Target, image: ImageChoice | None = None) -> Rendered:
    """Build the overlay with the deploy layer, as apply will send it (without ``image``: to find the Deployment).

    Raises:
        UserError: as ``deploy_layer``; DeployError: kustomize failed.
    """
    import yaml

    with deploy_layer(target, image) as layer:
        manifests = client.kustomize(layer)
    documents = [d for d in yaml.safe_load_all(manifests) if d]
    deployments = [d for d in documents if d.get("kind") == "Deployment"]
    if len(deployments) != 1:
        raise DeployError(f"the {target.env} overlay holds {len(deployments)} Deployments; nbship deploys exactly one")
    meta = deployments[0]["metadata"]
    objects = tuple(f"{d['kind']}/{d['metadata']['name']}" for d in documents)
    return Rendered(manifests, meta["name"], meta.get("namespace", "default"), objects, deployments[0])


def _namespace_missing(client: ClusterClient, namespace: str) -> bool:
    try:
        return client.get("namespace", namespace, "") is None
    except (DeployError, ClusterPermissionError):  # namespace-scoped RBAC cannot read namespaces: let apply tell
        return False


def deploy(
    client: ClusterClient,
    target: Target,
    image: ImageChoice,
    *,
    dry_run: bool = False,
    rollback: bool = True,
    force_conflicts: bool = False,
    timeout: float | None = None,
    on_progress: Callable[[RolloutProgress], None] = lambda p: None,
    pace: Pace = Pace(),
) -> DeployResult:
    """Apply the overlay, wait for the rollout (``timeout``, else as ``rollout_timeout``), roll back when it fails.

    Raises:
        UserError: as ``deploy_layer``.
        EnvironmentMissingError: kubectl or the cluster cannot be reached; ClusterUnavailableError when it
            stopped answering for longer than the retries; ClusterPermissionError: RBAC refused a verb.
        DeployError: the namespace does not exist, the API server refused the objects (a conflict, a policy).
        RolloutFailedError: the new revision did not become available (rolled back unless ``rollback`` is off).
        RolloutInterruptedError: Ctrl-C during the wait; the rollout goes on in the cluster.
    """
    started = time.monotonic()
    client = retrying(client, pace, lambda message: on_progress(RolloutProgress.note(message)))
    rendered = render_target(client, target, image)
    if _namespace_missing(client, rendered.namespace):
        raise DeployError(
            f"namespace {rendered.namespace} does not exist",
            hint=f"kubectl create namespace {rendered.namespace} (or pass --namespace)",
        )
    before = client.get("deployment", rendered.deployment, rendered.namespace)
    previous = revision_of(before)
    if dry_run:
        diff = client.diff(rendered.manifests)
        return DeployResult(rendered.deployment, rendered.namespace, str(image.reference), previous, previous,
                            rendered.objects, time.monotonic() - started, dry_run=True, diff=diff)
    client.apply(rendered.manifests, force_conflicts=force_conflicts)
    if timeout is None:
        timeout, why = rollout_timeout(rendered.deployment_object, before)
        on_progress(RolloutProgress.note(f"waiting up to {timeout:.0f} s: {why}"))
    failure = wait_rollout(client, rendered.namespace, rendered.deployment, timeout, on_progress, pace,
                           previous=previous)
    after = client.get("deployment", rendered.deployment, rendered.namespace)
    if failure is None:
        return DeployResult(rendered.deployment, rendered.namespace, str(image.reference), revision_of(after), previous,
                            rendered.objects, time.monotonic() - started)
    diagnostics = collect_diagnostics(client, rendered.namespace, rendered.deployment)
    rolled_back: int | None = None
    note = "not rolled back (--no-rollback)"
    if rollback and after is not None and previous is not None and revision_of(after) != previous:
        rolled_back = roll_back(client, rendered, after)
    if rolled_back is not None:
        again = wait_rollout(client, rendered.namespace, rendered.deployment, timeout, on_progress, pace)
        note = f"rolled back to revision {rolled_back}" + (f", which is not healthy either: {again}" if again else "")
    elif rollback and previous is not None and revision_of(after) == previous:
        note = "the failing revision is the one that was already deployed: nothing to roll back to"
    elif rollback:
        note = "no previous revision to roll back to"
    raise RolloutFailedError(
        f"rollout of deployment/{rendered.deployment} in {rendered.namespace} failed: {failure}; {note}",
        diagnostics=diagnostics,
        rolled_back_to=rolled_back,
        hint="the events and logs above show why the new pods did not become ready",
    )


def rollout_status(client: ClusterClient, namespace: str, name: str) -> StatusReport:
    """Revision, image, replicas and the autoscaler's state.

    Raises:
        DeployError: there is no such Deployment.
    """
    client = retrying(client, Pace())
    deployment = client.get("deployment", name, namespace)
    if deployment is None:
        raise DeployError(f"deployment/{name} not found in namespace {namespace}", hint="deploy it first")
    status = deployment.get("status", {})
    containers = deployment["spec"]["template"]["spec"]["containers"]
    hpa = client.get("horizontalpodautoscaler", name, namespace)
    hpa_state = None
    if hpa is not None:
        hpa_status = hpa.get("status", {})
        hpa_state = {
            "min": hpa["spec"].get("minReplicas", 1), "max": hpa["spec"]["maxReplicas"],
            "current": hpa_status.get("currentReplicas"), "desired": hpa_status.get("desiredReplicas"),
            "metrics": hpa_status.get("currentMetrics") or [],
            "conditions": [{"type": c["type"], "status": c["status"], "reason": c.get("reason", "")}
                           for c in hpa_status.get("conditions", [])],
        }
    return StatusReport(
        name, namespace, revision_of(deployment), containers[0].get("image") if containers else None,
        int(deployment["spec"].get("replicas", 1)), int(status.get("readyReplicas", 0)),
        int(status.get("updatedReplicas", 0)), int(status.get("availableReplicas", 0)),
        tuple((c["type"], c["status"], c.get("reason", "")) for c in status.get("conditions", [])),
        hpa_state,
    )


def roll_back(client: ClusterClient, rendered: Rendered, live: dict[str, Any]) -> int | None:
    """Apply the previous revision's pod template (the newest older ReplicaSet's), as ``kubectl rollout undo``.

    It goes through server-side apply with nbship's own field manager, so the fields stay nbship's and the
    next deploy neither conflicts with the rollback nor leaves the old revision's fields behind. The rest
    of the Deployment is the rendered one. Returns the revision rolled back to, or None if there is none.

    Raises:
        DeployError: the API server refused the apply.
    """
    import copy

    import yaml

    current = revision_of(live) or 0
    older = [(int(rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", 0)), rs)
             for rs in owned_replicasets(client, rendered.namespace, live)]
    older = [(revision, rs) for revision, rs in older if 0 < revision < current]
    if not older:
        return None
    revision, replicaset = max(older, key=lambda pair: pair[0])
    template = copy.deepcopy(replicaset["spec"]["template"])
    template.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
    document = copy.deepcopy(rendered.deployment_object)
    document["spec"]["template"] = template
    client.apply(yaml.safe_dump(document, sort_keys=True), force_conflicts=True)
    return revision


def rollback(
    client: ClusterClient, rendered: Rendered, *, timeout: float | None = None,
    on_progress: Callable[[RolloutProgress], None] = lambda p: None, pace: Pace = Pace(),
) -> StatusReport:
    """Go back one revision and wait for it (``timeout``, else as ``rollout_timeout``).

    Raises:
        DeployError: no such Deployment, no previous revision, or the previous revision does not become ready.
        RolloutInterruptedError, ClusterUnavailableError, ClusterPermissionError: as ``deploy``.
    """
    client = retrying(client, pace, lambda message: on_progress(RolloutProgress.note(message)))
    namespace, name = rendered.namespace, rendered.deployment
    live = client.get("deployment", name, namespace)
    if live is None:
        raise DeployError(f"deployment/{name} not found in namespace {namespace}")
    if roll_back(client, rendered, live) is None:
        raise DeployError(f"deployment/{name} has no previous revision to roll back to")
    if timeout is None:
        timeout, why = rollout_timeout(rendered.deployment_object, live)
        on_progress(RolloutProgress.note(f"waiting up to {timeout:.0f} s: {why}"))
    failure = wait_rollout(client, namespace, name, timeout, on_progress, pace)
    if failure:
        raise DeployError(f"rollback of deployment/{name} did not become ready: {failure}")
    return rollout_status(client, namespace, name)
