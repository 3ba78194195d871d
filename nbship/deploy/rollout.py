"""Deploy stage, rollout watch: a Deployment's rollout judged as ``kubectl rollout status`` judges it.

``wait_rollout`` polls the Deployment. Until the controller has observed the new spec
(``status.observedGeneration`` ≥ ``metadata.generation``) nothing in the status belongs to the new revision:
a ``ProgressDeadlineExceeded`` left by the previous, stuck rollout, or that rollout's failing pods, must not fail
the deploy that fixes it. Once observed, it is done when every desired replica is updated and available, and
failed when the progress deadline passes. It also looks at the new revision's pods, so a rollout that cannot
succeed fails in seconds instead of at the deadline: an image that cannot be pulled or a container that cannot
be created (after a short grace, as a registry can hiccup), or a container crash-looping.
``collect_diagnostics`` gathers what an operator would read next: the new pods' recent events and their
containers' logs (the previous run's, after a crash).

``rollout_timeout`` is how long nbship waits by default: the Deployment's own ``progressDeadlineSeconds``
restarts with every step of progress, and a rolling update takes one step per ``maxSurge`` new pods, so a
healthy but slowly loading model may need the deadline once per step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nbship.deploy.cluster import ClusterClient
from nbship.errors import ClusterUnavailableError, DeployError, RolloutInterruptedError

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
class Pace:
    """How the wait keeps time: its poll interval, the backoff between retries of a transient API error, and
    the clock (tests pass a fake one)."""

    poll_seconds: float = 1.0
    retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)  # about 30 s of retrying in all
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


@dataclass(frozen=True)
class RolloutProgress:
    message: str
    updated: int
    ready: int
    available: int
    desired: int

    @classmethod
    def note(cls, message: str) -> RolloutProgress:
        """A line about the wait itself (its budget, a retry), with no replica counts."""
        return cls(message, 0, 0, 0, 0)


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


def observed(deployment: dict[str, Any]) -> bool:
    """Whether the controller has seen the current spec, so that the status (and the revision) are the new ones."""
    generation = int(deployment["metadata"].get("generation", 0))
    return generation <= int(deployment.get("status", {}).get("observedGeneration", 0))


def _scaled(value: int | str | None, replicas: int, *, round_up: bool) -> int:
    """An IntOrString of the rolling-update strategy as a number of pods, rounded as the controller rounds it."""
    if value is None:
        value = "25%"  # the API's default for both maxSurge and maxUnavailable
    if isinstance(value, str) and value.endswith("%"):
        share = int(value[:-1]) * replicas / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(value)


def rollout_timeout(rendered: dict[str, Any], live: dict[str, Any] | None) -> tuple[float, str]:
    """The default wait: ``progressDeadlineSeconds`` × the rolling update's steps, and how it was reached.

    The controller restarts the progress deadline at every step of progress, and a rolling update replaces
    ``maxSurge`` (+ ``maxUnavailable``) pods per step, so a healthy rollout may take the deadline once per step.
    A first deploy has no old pods to replace: one step. ``replicas`` is the rendered count, else the live one
    (an autoscaler owns it).
    """
    spec = rendered.get("spec", {})
    deadline = int(spec.get("progressDeadlineSeconds", 600))
    strategy = spec.get("strategy") or {}
    replicas = int(spec.get("replicas") or (live or {}).get("spec", {}).get("replicas") or 1)
    steps = 1
    if live is not None and strategy.get("type", "RollingUpdate") == "RollingUpdate":
        rolling = strategy.get("rollingUpdate") or {}
        per_step = _scaled(rolling.get("maxSurge"), replicas, round_up=True) + \
            _scaled(rolling.get("maxUnavailable"), replicas, round_up=False)
        steps = math.ceil(replicas / max(1, per_step))
    noun = "step" if steps == 1 else "steps"
    return float(deadline * steps), f"progressDeadlineSeconds {deadline} s × {steps} rolling-update {noun}"


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
    if not observed(deployment):  # the status still describes the previous spec: judge nothing from it
        return False, "waiting for the controller to observe the new spec", progress
    for condition in status.get("conditions", []):
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            raise DeployError(f"exceeded its progress deadline ({condition.get('message', '')})")
    if updated < desired:
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
    on_progress: Callable[[RolloutProgress], None], pace: Pace = Pace(), *, previous: int | None = None,
) -> str | None:
    """Wait for the Deployment's rollout; None when it succeeded, else why it failed.

    ``previous`` is the revision before this rollout, named in the errors that leave the rollout running.

    Raises:
        RolloutInterruptedError: Ctrl-C (``revision`` is the one rolling out, once the controller has seen it).
        ClusterUnavailableError: the API server stopped answering (for longer than the client retries).
        ClusterPermissionError: as the client raises it.
    """
    deadline = pace.clock() + timeout
    first_seen: dict[tuple[str, str], float] = {}
    last = ""
    revision: int | None = None
    try:
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
            if observed(deployment):  # before that, the newest pods are the previous revision's
                revision = revision_of(deployment)
                fatal = _fatal(_new_pods(client, namespace, deployment), first_seen, pace.clock())
                if fatal:
                    return fatal
            if pace.clock() >= deadline:
                return f"timed out after {timeout:.0f} s ({message})"
            pace.sleep(pace.poll_seconds)
    except KeyboardInterrupt:
        which = f"revision {revision}" if revision is not None else "the new revision"
        raise RolloutInterruptedError(
            f"stopped waiting for {which} of deployment/{name} in {namespace} to roll out "
            f"({last or 'no status yet'}); the rollout goes on in the cluster",
            deployment=name, namespace=namespace, revision=revision, previous=previous,
        ) from None
    except ClusterUnavailableError as e:
        raise ClusterUnavailableError(
            f"lost the API server while waiting for the rollout of deployment/{name} in {namespace}: {e.message}",
            hint="the rollout goes on in the cluster without nbship; once the API server answers, `nbship status` "
                 "shows where it stands and `nbship rollback` undoes it",
        ) from e


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
