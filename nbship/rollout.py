"""Deploy stage, rollout watch: a Deployment's rollout judged as ``kubectl rollout status`` judges it.

``wait_rollout`` polls the Deployment: done when the controller has observed the new spec and every desired
replica is updated and available, failed when the progress deadline passes. It also looks at the new
revision's pods, so a rollout that cannot succeed fails in seconds instead of at the deadline: an image that
cannot be pulled or a container that cannot be created (after a short grace, as a registry can hiccup), or a
container crash-looping. ``collect_diagnostics`` gathers what an operator would read next: the new pods'
recent events and their containers' logs (the previous run's, after a crash).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbship.errors import DeployError

if TYPE_CHECKING:
    from nbship.deploy import ClusterClient

# Waiting reasons of a new pod that no amount of waiting fixes, and how long nbship waits before saying so.
FATAL_AFTER_SECONDS = {
    "ErrImagePull": 20.0,
    "ImagePullBackOff": 20.0,
    "InvalidImageName": 0.0,
    "CreateContainerConfigError": 20.0,
    "CreateContainerError": 20.0,
    "RunContainerError": 10.0,
}
CRASH_RESTARTS = 2  # CrashLoopBackOff after this many restarts is a failed rollout


@dataclass(frozen=True)
class RolloutProgress:
    message: str
    updated: int
    ready: int
    available: int
    desired: int


def revision_of(deployment: dict[str, Any] | None) -> int | None:
    if deployment is None:
        return None
    value = deployment["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision")
    return int(value) if value else None


def owned_replicasets(client: ClusterClient, namespace: str, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    labels = deployment["spec"]["selector"].get("matchLabels", {})
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return [rs for rs in client.list_objects("replicaset", namespace, selector)
            if any(o.get("uid") == deployment["metadata"]["uid"] for o in rs["metadata"].get("ownerReferences", []))]


def _new_pods(client: ClusterClient, namespace: str, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    """The pods of the Deployment's current revision (its newest ReplicaSet)."""
    labels = deployment["spec"]["selector"].get("matchLabels", {})
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    revision = str(revision_of(deployment))
    owned = owned_replicasets(client, namespace, deployment)
    current = {rs["metadata"]["name"] for rs in owned
               if rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision") == revision}
    return [p for p in client.list_objects("pod", namespace, selector)
            if any(o.get("name") in current for o in p["metadata"].get("ownerReferences", []))]


def _fatal(pods: Sequence[dict[str, Any]], first_seen: dict[tuple[str, str], float], now: float) -> str | None:
    """Why a new pod will never become ready, once the reason has lasted long enough to be sure."""
    for pod in pods:
        for status in pod.get("status", {}).get("containerStatuses", []) or []:
            waiting = (status.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            name = pod["metadata"]["name"]
            if reason == "CrashLoopBackOff" and status.get("restartCount", 0) >= CRASH_RESTARTS:
                return f"pod {name} is crash-looping ({status['restartCount']} restarts)"
            if reason in FATAL_AFTER_SECONDS:
                since = first_seen.setdefault((name, reason), now)
                if now - since >= FATAL_AFTER_SECONDS[reason]:
                    return f"pod {name}: {reason}: {waiting.get('message', '')}".rstrip(": ")
    return None


def rollout_state(deployment: dict[str, Any]) -> tuple[bool, str, RolloutProgress]:
    """(done, message, progress) by the rules of ``kubectl rollout status``.

    Raises:
        DeployError: the Deployment exceeded its progress deadline.
    """
    spec, status = deployment["spec"], deployment.get("status", {})
    desired = int(spec.get("replicas", 1))
    updated, ready = int(status.get("updatedReplicas", 0)), int(status.get("readyReplicas", 0))
    available, total = int(status.get("availableReplicas", 0)), int(status.get("replicas", 0))
    progress = RolloutProgress("", updated, ready, available, desired)
    for condition in status.get("conditions", []):
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            raise DeployError(f"exceeded its progress deadline ({condition.get('message', '')})")
    if deployment["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        message = "waiting for the controller to observe the new spec"
    elif updated < desired:
        message = f"{updated} of {desired} updated replicas are available" if available else \
            f"{updated} of {desired} new replicas created, {ready} ready"
    elif total > updated:
        message = f"{total - updated} old replicas are pending termination"
    elif available < updated:
        message = f"{available} of {updated} updated replicas are available"
    else:
        return True, f"successfully rolled out ({available} of {desired} available)", progress
    return False, message, progress


def wait_rollout(
    client: ClusterClient, namespace: str, name: str, timeout: float,
    on_progress: Callable[[RolloutProgress], None], poll: float = 1.0,
) -> str | None:
    """Wait for the Deployment's rollout; None when it succeeded, else why it failed."""
    deadline = time.monotonic() + timeout
    first_seen: dict[tuple[str, str], float] = {}
    last = ""
    while True:
        deployment = client.get("deployment", name, namespace)
        if deployment is None:
            return f"deployment {name} disappeared"
        try:
            done, message, progress = rollout_state(deployment)
        except DeployError as e:
            return e.message
        if message != last:
            on_progress(RolloutProgress(message, progress.updated, progress.ready, progress.available,
                                        progress.desired))
            last = message
        if done:
            return None
        fatal = _fatal(_new_pods(client, namespace, deployment), first_seen, time.monotonic())
        if fatal:
            return fatal
        if time.monotonic() >= deadline:
            return f"timed out after {timeout:.0f} s ({message})"
        time.sleep(poll)


def collect_diagnostics(client: ClusterClient, namespace: str, name: str, pods: int = 3) -> str:
    """The recent events and container logs of the current revision's pods, as text for a person."""
    deployment = client.get("deployment", name, namespace)
    if deployment is None:
        return ""
    lines: list[str] = []
    for pod in _new_pods(client, namespace, deployment)[:pods]:
        pod_name = pod["metadata"]["name"]
        lines.append(f"--- pod {pod_name}: events")
        events: list[dict[str, Any]] = sorted(client.events(namespace, "Pod", pod_name),
                        key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
        for event in events[-10:]:
            lines.append(f"  {event.get('type', '')} {event.get('reason', '')}: {event.get('message', '')}".rstrip())
        for status in pod.get("status", {}).get("containerStatuses", []) or []:
            previous = int(status.get("restartCount", 0)) > 0
            text = client.logs(namespace, pod_name, status["name"], previous=previous, tail=40)
            which = "previous run's" if previous else "current"
            lines.append(f"--- pod {pod_name}, container {status['name']}: {which} log (last 40 lines)")
            lines += ["  " + line for line in text.splitlines()] or ["  (empty)"]
    return "\n".join(lines)
