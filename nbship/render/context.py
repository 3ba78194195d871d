"""Render stage, template contexts: the typed, frozen objects the Kubernetes templates receive.

``nbship.render.k8s`` computes them from the ``ProjectSpec``; ``nbship.render.checks`` reads them to check the
rendered objects against each other. Templates only read these fields (``if`` and ``for``, no computation).
Where a resolved value of the spec already has the shape a template reads (``GpuRequest``, ``Ingress``, ``Monitor``
of ``nbship.resolved``), the context holds it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nbship.resolved import GpuRequest, Ingress, Monitor, Scaling
from nbship.spec import StartupBudget


@dataclass(frozen=True)
class Probe:
    path: str
    period_seconds: int
    timeout_seconds: int
    failure_threshold: int


@dataclass(frozen=True)
class ImagePin:
    """Kustomize's ``images:`` entry: ``name`` as written in the Deployment, rewritten to the real reference."""

    name: str
    new_name: str
    new_tag: str | None
    digest: str | None

    @property
    def reference(self) -> str:
        return f"{self.new_name}@{self.digest}" if self.digest else f"{self.new_name}:{self.new_tag}"


@dataclass(frozen=True)
class ConfigEntry:
    key: str
    value: str


@dataclass(frozen=True)
class SecretEnv:
    name: str
    secret: str
    key: str
    optional: bool


@dataclass(frozen=True)
class ScalingContext(Scaling):
    keda_query: str | None = None  # the production namespace's; each overlay patches in its own
    keda_query_index: int = 0  # the prometheus trigger's position among the triggers


@dataclass(frozen=True)
class WritableDir:
    volume: str
    mount_path: str
    size_limit: str | None = None  # for the emptyDir of a volume of its own (/tmp is scratch space)
    sub_path: str | None = None  # set when the folder is a part of the shared download volume


@dataclass(frozen=True)
class CredentialVolume:
    volume: str
    secret: str
    mount_path: str


@dataclass(frozen=True)
class DownloadContext:
    """The init container that downloads remote artifacts, and the volume it fills."""

    container: str
    volume: str
    kind: Literal["emptyDir", "claim", "ephemeral"]
    size_limit: str
    claim: str | None
    storage_class: str | None
    credentials: tuple[CredentialVolume, ...]
    attempts: int
    env: tuple[str, ...]  # the settings of nbship.yaml `env:` (AWS_ENDPOINT_URL, HF_ENDPOINT, …), not parameters
    mount_path: str  # where the init container mounts the whole volume
    download_dir: str  # where it puts the artifacts' paths (the model container's subPaths start there)


@dataclass(frozen=True)
class AlertRule:
    alert: str
    expr: str
    for_: str
    severity: Literal["warning", "critical"]
    summary: str
    description: str


@dataclass(frozen=True)
class OverlayContext:
    name: str
    namespace: str
    replicas: int
    min_replicas: int
    max_replicas: int
    resources: tuple[str, ...] = ()  # overlay-only files (the PrometheusRule)
    alerts: tuple[AlertRule, ...] = ()
    keda_query: str | None = None


@dataclass(frozen=True)
class ManifestContext:
    name: str
    version: str
    nbship_version: str
    notebook: str
    labels: tuple[tuple[str, str], ...]
    selector: tuple[tuple[str, str], ...]
    config_map: str
    image: ImagePin
    port: int
    port_name: str
    container: str
    uid: int
    requests: tuple[tuple[str, str], ...]
    limits: tuple[tuple[str, str], ...]
    gpu: GpuRequest | None
    config_entries: tuple[ConfigEntry, ...]
    secret_env: tuple[SecretEnv, ...]
    implicit_env: tuple[str, ...]  # set by the image, the runtime (notebook %env settings) or Kubernetes
    defaulted_env: tuple[str, ...]
    startup: StartupBudget
    startup_probe: Probe
    readiness_probe: Probe
    liveness_probe: Probe
    metrics_path: str
    prestop_seconds: int
    termination_grace_seconds: int
    progress_deadline_seconds: int
    replicas: int | None  # None when an autoscaler owns spec.replicas
    scaling: ScalingContext
    writable_dirs: tuple[WritableDir, ...]
    downloads: DownloadContext | None  # the init container that fetches remote artifacts
    allow_namespaces: tuple[str, ...] | None
    ingress: Ingress | None
    monitor: Monitor | None = None
    pins: str = ""  # the nbship-owned tail of the base kustomization (nbship/render/pin.py)
