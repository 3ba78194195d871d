"""Stage 4 (spec), resolved settings: nbship.yaml's structural sections → the typed, frozen values of ``ProjectSpec``.

``nbship.spec`` calls these when a spec is made; renderers, the image stage and the deployer read only their
results (``spec.gpu``, ``spec.scaling``, ``spec.service``, …), never the as-written ``Config``. A default nbship.yaml
leaves in the config (``config.Gpu``, ``config.Autoscaling``…) is taken as it is; a section turned off becomes None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nbship.config import BATCHED_WORKERS, UNBATCHED_WORKERS, Config
from nbship.runtime.manifest import ServiceEntry


@dataclass(frozen=True)
class Toleration:
    key: str
    operator: str
    value: str | None
    effect: str | None


@dataclass(frozen=True)
class GpuRequest:
    """The pod's GPU: ``resource`` × ``count`` as a limit, where GPU nodes are, and the CUDA build asked for."""

    resource: str
    count: int
    node_selector: tuple[tuple[str, str], ...]
    tolerations: tuple[Toleration, ...]
    cuda: str | None  # None: the Dockerfile takes it from the locked framework


@dataclass(frozen=True)
class Scaling:
    """Who sets the replica count: an HPA, a KEDA ScaledObject, or neither (nbship.yaml's ``replicas``)."""

    hpa: bool
    keda: bool
    min_replicas: int
    max_replicas: int
    cpu_utilization: int | None
    memory_utilization: int | None
    in_flight_target: int | None

    @property
    def enabled(self) -> bool:
        return self.hpa or self.keda


@dataclass(frozen=True)
class Ingress:
    host: str | None
    class_name: str | None
    tls_secret: str | None


@dataclass(frozen=True)
class Downloads:
    """Where the init container keeps remote artifacts, and how hard it tries."""

    kind: Literal["emptyDir", "claim", "ephemeral"]
    size_limit: str
    claim: str | None
    storage_class: str | None
    attempts: int
    env: tuple[str, ...]  # nbship.yaml's ``env:`` names (AWS_ENDPOINT_URL, HF_ENDPOINT, …), not parameters


@dataclass(frozen=True)
class Monitor:
    kind: Literal["ServiceMonitor", "PodMonitor"]
    interval: str
    extra_labels: tuple[tuple[str, str], ...]
    rules: bool


@dataclass(frozen=True)
class Slo:
    latency_p95_seconds: float | None
    error_ratio: float
    load_shed_ratio: float


def gpu_request(config: Config) -> GpuRequest | None:
    """The ``gpu:`` section, or None when the service asks for no GPU."""
    gpu = config.gpu
    if gpu is None:
        return None
    tolerations = tuple(Toleration(t.key, t.operator, t.value, t.effect) for t in gpu.tolerations)
    return GpuRequest(gpu.resource, gpu.count, tuple(sorted(gpu.node_selector.items())), tolerations, gpu.cuda)


def scaling(config: Config) -> Scaling:
    scale = config.autoscaling
    return Scaling(
        hpa=scale.enabled and not scale.keda,
        keda=scale.enabled and scale.keda,
        min_replicas=scale.min_replicas,
        max_replicas=scale.max_replicas,
        cpu_utilization=scale.cpu_utilization,
        memory_utilization=scale.memory_utilization,
        in_flight_target=scale.in_flight_target,
    )


def ingress(config: Config) -> Ingress | None:
    """The Ingress to render, or None when ``ingress.enabled`` is false."""
    section = config.ingress
    return Ingress(section.host, section.class_name, section.tls_secret) if section.enabled else None


def allowed_namespaces(config: Config) -> tuple[str, ...] | None:
    """The namespaces the NetworkPolicy admits traffic from, or None when there is no NetworkPolicy."""
    policy = config.network_policy
    return tuple(sorted(policy.allow_namespaces)) if policy.enabled else None


def downloads(config: Config) -> Downloads:
    section, volume = config.downloads, config.downloads.volume
    kind: Literal["emptyDir", "claim", "ephemeral"] = (
        "emptyDir" if volume is None else "claim" if volume.claim else "ephemeral"
    )
    return Downloads(kind, section.size_limit, volume.claim if volume else None,
                     volume.storage_class if volume else None, section.attempts, tuple(sorted(config.env)))


def monitor(config: Config) -> Monitor | None:
    """The Prometheus Operator monitor to render, or None when ``monitoring.enabled`` is false."""
    section = config.monitoring
    if not section.enabled:
        return None
    return Monitor(section.monitor, section.interval, tuple(sorted(section.labels.items())), section.rules)


def slo(config: Config) -> Slo:
    return Slo(config.slo.latency_p95_seconds, config.slo.error_ratio, config.slo.load_shed_ratio)


def service_entry(config: Config, batched: bool) -> ServiceEntry:
    """The service's own settings (``server:``, ``timeouts:``, ``port``), as the manifest hands them to the runtime;
    ``batched``: whether the service batches (proven and allowed), which sets the default number of workers."""
    server, timeouts = config.server, config.timeouts
    return ServiceEntry(
        port=config.port,
        max_concurrency=server.max_concurrency or (BATCHED_WORKERS if batched else UNBATCHED_WORKERS),
        queue_size=server.queue_size,
        max_batch_size=server.max_batch_size,
        max_body_bytes=server.max_body_bytes,
        max_batch_items=server.max_batch_items,
        max_connections=server.max_connections,
        body_timeout_seconds=server.body_timeout_seconds,
        log_payloads=server.log_payloads,
        payload_sample_rate=server.payload_sample_rate,
        sensitive_fields=tuple(sorted(server.sensitive_fields)),
        predict_timeout_seconds=timeouts.predict_seconds,
        shutdown_grace_seconds=timeouts.shutdown_grace_seconds,
    )
