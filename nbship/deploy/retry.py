"""Deploy stage, API resilience: a ``ClusterClient`` that rides out transient API errors with backoff.

An API server that restarts, an etcd leader election, a load balancer in front of the control plane or API
priority and fairness can each fail one request (connection refused, 503, 429, a timeout) while the rollout
goes on undisturbed. The adapter says which errors those are (``ClusterUnavailableError``); this wrapper
retries them after ``Pace.retry_delays`` (0.5, 1, 2, 4, 8, 15 s) and re-raises the last one when they are
spent. A permission error (``ClusterPermissionError``) or a refused object is never retried: asking again
gives the same answer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from nbship.deploy.rollout import Pace
from nbship.errors import ClusterUnavailableError

if TYPE_CHECKING:
    from nbship.deploy.cluster import ClusterClient

T = TypeVar("T")


class RetryingClient:
    """``ClusterClient`` over another one, retrying what the API server failed to answer."""

    def __init__(self, client: ClusterClient, pace: Pace, on_retry: Callable[[str], None] = lambda m: None) -> None:
        self.client, self.pace, self.on_retry = client, pace, on_retry

    def _call(self, what: str, call: Callable[[], T]) -> T:
        delays = iter(self.pace.retry_delays)
        waited = 0.0
        while True:
            try:
                return call()
            except ClusterUnavailableError as e:
                delay = next(delays, None)
                if delay is None:
                    raise ClusterUnavailableError(
                        f"{e.message} ({what}: gave up after {len(self.pace.retry_delays) + 1} tries over "
                        f"{waited:.0f} s)", hint=e.hint,
                    ) from e
                self.on_retry(f"the API server did not answer {what} ({_first_line(e.message)}); "
                              f"retrying in {delay:g} s")
                self.pace.sleep(delay)
                waited += delay

    def kustomize(self, directory: Path) -> str:
        return self.client.kustomize(directory)  # runs locally: nothing transient about it

    def apply(self, manifests: str, *, force_conflicts: bool) -> str:
        # Server-side apply is idempotent: sending the same objects again is safe.
        return self._call("apply", lambda: self.client.apply(manifests, force_conflicts=force_conflicts))

    def diff(self, manifests: str) -> str:
        return self._call("diff", lambda: self.client.diff(manifests))

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        return self._call(f"get {kind}/{name}", lambda: self.client.get(kind, name, namespace))

    def list_objects(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        return self._call(f"list {kind}", lambda: self.client.list_objects(kind, namespace, selector))

    def events(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        return self._call("events", lambda: self.client.events(namespace, kind, name))

    def logs(self, namespace: str, pod: str, container: str, *, previous: bool, tail: int) -> str:
        return self._call("logs", lambda: self.client.logs(namespace, pod, container, previous=previous, tail=tail))


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else ""


def retrying(client: ClusterClient, pace: Pace, on_retry: Callable[[str], None] = lambda m: None) -> ClusterClient:
    """``client`` with retries, unless it has them already (one layer of backoff, not one per caller)."""
    return client if isinstance(client, RetryingClient) else RetryingClient(client, pace, on_retry)
