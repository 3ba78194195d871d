"""Deploy stage, the cluster's side: what nbship needs from a Kubernetes API server, as a protocol.

``nbship.deploy.kubectl.KubectlClient`` implements it with kubectl; the unit tests use ``tests.fakes.FakeCluster``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

FIELD_MANAGER = "nbship"  # server-side apply's owner of every field nbship sets


class ClusterClient(Protocol):
    """What nbship needs from a Kubernetes API server."""

    def kustomize(self, directory: Path) -> str: ...

    def apply(self, manifests: str, *, force_conflicts: bool) -> str: ...

    def diff(self, manifests: str) -> str: ...

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None: ...

    def list_objects(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]: ...

    def events(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]: ...

    def logs(self, namespace: str, pod: str, container: str, *, previous: bool, tail: int) -> str: ...
