"""Fakes for the engine and the cluster: each implements the protocol it stands in for and records its calls.

mypy checks this file (``[tool.mypy] files``) against ``ImageBuilder``, ``ContainerHandle`` and ``ClusterClient``
through the annotated assignments at the bottom, so a fake cannot drift from the protocol it replaces. The
end-to-end tests never use them: those run the real Docker engine and the rig's cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nbship.deploy.cluster import ClusterClient
from nbship.image.builder import ContainerHandle, ImageBuilder, PushProgress, RunLimits


@dataclass
class FakeContainer:
    url: str
    uid: int = 10001
    alive: bool = True
    removed: bool = False
    log: str = '{"event": "ready", "load_seconds": 0.25}\nline two\n'

    def running(self) -> bool:
        return self.alive

    def process_uid(self) -> int:
        return self.uid

    def logs(self, tail: int) -> str:
        return "\n".join(self.log.splitlines()[-tail:])

    def remove(self, grace_seconds: int) -> None:
        self.removed = True


@dataclass
class FakeBuilder:
    """Implements ``ImageBuilder``; records what it was asked to do."""

    images: dict[str, str] = field(default_factory=dict)
    builds: list[dict[str, Any]] = field(default_factory=list)
    container: FakeContainer | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)
    seeds: list[dict[str, dict[str, bytes]]] = field(default_factory=list)  # what seeded folders held
    environments: list[dict[str, str]] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)

    def image_id(self, ref: str) -> str | None:
        return self.images.get(ref)

    def image_size(self, ref: str) -> int | None:
        return 1000 if ref in self.images else None

    def build(
        self,
        context: Path,
        tag: str,
        *,
        buildargs: Mapping[str, str],
        labels: Mapping[str, str],
        platform: str | None,
        on_line: Callable[[str], None],
    ) -> str:
        on_line("Step 1/1 : FROM python:3.11-slim")
        image = f"sha256:{len(self.builds):064d}"
        self.builds.append({"tag": tag, "buildargs": dict(buildargs), "labels": dict(labels), "platform": platform})
        self.images[tag] = image
        return image

    def tag(self, image: str, ref: str) -> None:
        self.images[ref] = image

    def run(
        self, image: str, *, port: int, limits: RunLimits, environment: Mapping[str, str], writable: Sequence[str] = (),
        seeded: Mapping[str, Path] | None = None,
    ) -> FakeContainer:
        assert self.container is not None
        self.runs.append({"image": image, "port": port, "limits": limits})
        self.seeds.append({k: {p.name: p.read_bytes() for p in v.iterdir()} for k, v in (seeded or {}).items()})
        self.environments.append(dict(environment))
        return self.container

    def push(self, ref: str, on_progress: Callable[[PushProgress], None]) -> str:
        on_progress(PushProgress("abc123", "Pushing", 5, 10))
        return self.digests.get(ref, "sha256:" + "d" * 64)


class FakeCluster:
    """A ``ClusterClient`` that replays Deployment states and records what nbship sends (no API server)."""

    def __init__(self, states: list[dict[str, Any] | None], replicasets: list[dict[str, Any]]) -> None:
        self.states, self.replicasets = states, replicasets
        self.applied: list[tuple[dict[str, Any], bool]] = []
        self.layers: list[dict[str, Any]] = []  # the deploy layers nbship asked to build

    def kustomize(self, directory: Path) -> str:
        """One Deployment, in the layer's namespace (default ``ml``) and with the image it pins (else ``new``)."""
        layer = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
        self.layers.append(layer)
        pin = (layer.get("images") or [{}])[0]
        image = (f"{pin['newName']}@{pin['digest']}" if "digest" in pin else
                 f"{pin['newName']}:{pin['newTag']}" if "newName" in pin else "new")
        template = {"metadata": {"labels": {"app": "churn"}},
                    "spec": {"containers": [{"name": "model", "image": image}]}}
        return yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment",
                               "metadata": {"name": "churn", "namespace": layer.get("namespace", "ml")},
                               "spec": {"selector": {"matchLabels": {"app": "churn"}}, "template": template}})

    def apply(self, manifests: str, *, force_conflicts: bool) -> str:
        self.applied.append((yaml.safe_load(manifests), force_conflicts))
        return ""

    def diff(self, manifests: str) -> str:
        return ""

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        if kind == "namespace":
            return {"metadata": {"name": name}}
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def list_objects(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        return self.replicasets if kind == "replicaset" else []

    def events(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        return []

    def logs(self, namespace: str, pod: str, container: str, *, previous: bool, tail: int) -> str:
        return ""


Step = dict[str, Any] | BaseException


class FakeClock:
    """Time for ``nbship.deploy.rollout.Pace`` (``clock=``, ``sleep=``): sleeping moves it on at once, recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class ScriptedCluster(FakeCluster):
    """A ``FakeCluster`` whose Deployment reads ``before`` until something is applied, then follows ``script``
    (a state, or an error to raise; the last step repeats). ``kustomize`` returns the rendered base Deployment
    of the layer's build context in the layer's namespace (the overlays are kustomize's business, exercised on
    the rig); ``list_objects`` also returns ``pods``, or raises ``KeyboardInterrupt`` for them when
    ``interrupt_on_pods``; ``apply`` first raises each of ``apply_errors``."""

    def __init__(self, before: dict[str, Any] | None, script: Sequence[Step], *,
                 replicasets: Sequence[dict[str, Any]] = (), pods: Sequence[dict[str, Any]] = (),
                 apply_errors: Sequence[BaseException] = (), interrupt_on_pods: bool = False) -> None:
        super().__init__([before], list(replicasets))
        self.script, self.pods = list(script), list(pods)
        self.apply_errors, self.interrupt_on_pods = list(apply_errors), interrupt_on_pods

    def kustomize(self, directory: Path) -> str:
        layer = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
        document = yaml.safe_load((directory.parent / "base" / "deployment.yaml").read_text(encoding="utf-8"))
        document["metadata"]["namespace"] = layer.get("namespace", "ml")
        return yaml.safe_dump(document)

    def apply(self, manifests: str, *, force_conflicts: bool) -> str:
        if self.apply_errors:
            raise self.apply_errors.pop(0)
        return super().apply(manifests, force_conflicts=force_conflicts)

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        if kind != "deployment" or not self.applied:
            return super().get(kind, name, namespace) if kind in ("namespace", "deployment") else None
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, BaseException):
            raise step
        return step

    def list_objects(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        if kind != "pod":
            return super().list_objects(kind, namespace, selector)
        if self.interrupt_on_pods:
            raise KeyboardInterrupt  # Ctrl-C lands while kubectl runs, where the wait spends its time
        return self.pods


# Type-checked conformance: mypy fails here when a protocol and its fake disagree.
_builder: ImageBuilder = FakeBuilder()
_container: ContainerHandle = FakeContainer("http://127.0.0.1:9")
_cluster: ClusterClient = FakeCluster([], [])
_scripted: ClusterClient = ScriptedCluster(None, [])
