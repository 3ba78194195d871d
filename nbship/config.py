"""``nbship.yaml`` as written: the schema of the whole tool, with located errors.

The file is optional and sits beside the notebook. Every key has a documented default; an unknown key or a
wrong type is a ``ConfigError`` naming the file, the line, the dotted key and what was expected, with a
"did you mean" for near misses. Precedence (flag > ``NBSHIP_*`` environment > this file > default) is
resolved in ``nbship.spec``, not here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nbship.config_errors import describe, key_lines
from nbship.config_values import image_reference, one_line, resource_name, safe_path
from nbship.errors import ConfigError

CONFIG_FILE = "nbship.yaml"
# ``server.max_concurrency`` when not set: one worker when batching is on (its batch is the concurrency), else four
BATCHED_WORKERS, UNBATCHED_WORKERS = 1, 4
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*")
    @classmethod
    def _one_line(cls, v: Any, info: ValidationInfo) -> Any:
        # Only env: values may hold a line break: they reach nothing but a JSON-quoted ConfigMap literal.
        return v if info.field_name == "env" else one_line(v)


class ResourceAmounts(_Strict):
    cpu: str = Field("250m", description="CPU, in Kubernetes units (`250m`, `1`)")
    memory: str = Field("512Mi", description="memory, in Kubernetes units (`512Mi`, `2Gi`)")


class Resources(_Strict):
    requests: ResourceAmounts = Field(default_factory=ResourceAmounts, description="what the scheduler reserves")
    limits: ResourceAmounts = Field(
        default_factory=lambda: ResourceAmounts(cpu="1", memory="1Gi"), description="the ceiling per pod"
    )


class Toleration(_Strict):
    key: str
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = "NoSchedule"


class Gpu(_Strict):
    count: int = Field(1, ge=1, description="GPUs per pod (`nvidia.com/gpu` limit)")
    resource: str = Field("nvidia.com/gpu", description="the extended resource name")
    node_selector: dict[str, str] = Field(
        default_factory=lambda: {"nvidia.com/gpu.present": "true"}, description="where GPU nodes are"
    )
    tolerations: list[Toleration] = Field(
        default_factory=lambda: [Toleration(key="nvidia.com/gpu")], description="taints GPU nodes carry"
    )
    cuda: str | None = Field(None, description="CUDA version of the base image; by default from the locked framework")

    @field_validator("resource")
    @classmethod
    def _resource_name(cls, v: str) -> str:
        return resource_name(v)


class Autoscaling(_Strict):
    enabled: bool = True
    min_replicas: int = Field(2, ge=1)
    max_replicas: int = Field(5, ge=1)
    cpu_utilization: int | None = Field(70, ge=1, le=100, description="target average CPU utilisation, percent")
    memory_utilization: int | None = Field(None, ge=1, le=100)
    in_flight_target: int | None = Field(None, ge=1, description="custom metric: in-flight requests per pod")
    keda: bool = Field(False, description="render a KEDA ScaledObject instead of the HPA")

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.max_replicas < self.min_replicas:
            raise ValueError("max_replicas must be at least min_replicas")
        return self


class Credentials(_Strict):
    """Where a download's credentials come from: a Kubernetes Secret, by name; nbship never reads its values."""

    secret: str = Field(description="Secret whose keys are the client's variables (AWS_ACCESS_KEY_ID, HF_TOKEN, …)")

    @field_validator("secret")
    @classmethod
    def _secret_name(cls, v: str) -> str:
        if len(v) > 253 or not _DNS1123_SUBDOMAIN.match(v):
            raise ValueError("must be a Kubernetes Secret name (lower-case letters, digits, '-' and '.')")
        return v


class Artifact(_Strict):
    """A file or folder to ship, or a remote file downloaded and verified before the service starts."""

    path: str = Field(description="relative to the notebook; where the code opens it")
    uri: str | None = Field(
        None, description="download from here before start-up instead of copying the file: https://, s3://bucket/key "
        "or hf://org/repo/file@revision"
    )
    sha256: str | None = Field(None, description="required with `uri`")
    credentials: Credentials | None = Field(None, description="for `uri`: the Secret holding the credentials")

    @field_validator("uri")
    @classmethod
    def _known_scheme(cls, v: str | None) -> str | None:
        from nbship.runtime.sources import check_uri

        if v is not None:
            check_uri(v)
        return v

    @field_validator("path")
    @classmethod
    def _relative(cls, v: str) -> str:
        if Path(v).is_absolute() or ".." in Path(v).parts:
            raise ValueError("must be a relative path inside the notebook's folder")
        return safe_path(v)

    @model_validator(mode="after")
    def _remote_needs_hash(self) -> Artifact:
        if self.uri is not None and (self.sha256 is None or not _SHA256.match(self.sha256)):
            raise ValueError("a remote artifact needs `sha256`, 64 lower-case hex digits")
        if self.uri is None and self.credentials is not None:
            raise ValueError("`credentials` only applies to a remote artifact (one with `uri`)")
        if self.credentials is not None and self.uri is not None and not self.uri.startswith(("s3://", "hf://")):
            raise ValueError("`credentials` applies to s3:// and hf:// (their clients read AWS_* and HF_TOKEN); "
                             "an https:// download takes none")
        return self


class DownloadVolume(_Strict):
    """Where downloads are kept instead of the pod's emptyDir: set one of the two."""

    claim: str | None = Field(
        None, description="an existing PersistentVolumeClaim: restarts and new pods on its node(s) reuse the files"
    )
    ephemeral: bool = Field(False, description="a generic ephemeral volume of `size_limit` (storage-class backed)")
    storage_class: str | None = Field(None, description="for `ephemeral`: the StorageClass; default: the cluster's")

    @model_validator(mode="after")
    def _one_kind(self) -> DownloadVolume:
        if (self.claim is None) == (not self.ephemeral):
            raise ValueError("set exactly one of `claim` (an existing PVC) and `ephemeral: true`")
        if self.storage_class is not None and not self.ephemeral:
            raise ValueError("`storage_class` applies only with `ephemeral: true`")
        return self


class Downloads(_Strict):
    """How remote artifacts reach the pod: an init container of the same image downloads them into a volume."""

    size_limit: str = Field(
        "10Gi", description="the download space: emptyDir `sizeLimit` or the ephemeral volume's size"
    )
    volume: DownloadVolume | None = Field(None, description="keep downloads on a PVC or a generic ephemeral volume")
    attempts: int = Field(5, ge=1, le=20, description="tries per file (transient failures), with backoff")

    @field_validator("size_limit")
    @classmethod
    def _quantity(cls, v: str) -> str:
        if not _QUANTITY.match(v):
            raise ValueError("must be a Kubernetes quantity such as 20Gi or 500Mi")
        return v


class SecretRef(_Strict):
    """An environment variable filled from an existing Kubernetes Secret; nbship never writes its value."""

    env: str
    secret: str = Field(description="name of the Kubernetes Secret")
    key: str = Field(description="key inside the Secret")
    optional: bool = False

    @field_validator("env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        if not _ENV_NAME.match(v):
            raise ValueError("must be an environment variable name")
        return v


class Timeouts(_Strict):
    predict_seconds: float = Field(30.0, gt=0, description="a prediction slower than this answers 504")
    startup_seconds: int | None = Field(
        None, ge=1, description="startup probe budget; by default sized from the smoke test's load time"
    )
    shutdown_grace_seconds: int = Field(30, ge=1, description="time to finish in-flight requests on SIGTERM")


class Server(_Strict):
    max_concurrency: int | None = Field(
        None, ge=1, description="predictions running at once (worker threads); by default 1 when batching is on (the "
        "waiting requests share one call; more threads would split the batch and contend for the GIL), else 4",
    )
    queue_size: int | None = Field(
        None, ge=0, description="a hard cap on requests waiting for a worker (more answer 503). By default admission "
        "is by time alone: a request is refused (503, Retry-After) when the measured model time says it would wait "
        "more than half of timeouts.predict_seconds",
    )
    batching: bool = Field(
        True, description="merge the requests waiting for a worker into one predict call, when `nbship check` "
        "proved on the example that batches answer as single requests; false turns it off",
    )
    max_batch_size: int = Field(32, ge=1, description="payloads in one batched predict call, at most")
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1, description="larger bodies answer 413")
    max_batch_items: int = Field(
        256, ge=1, description="items in one /predict/batch or V2 infer request; more answer 413 before validation"
    )
    max_connections: int = Field(
        64, ge=1, description="requests with a body in the service at once; more answer 503. Bounds body memory "
        "at max_body_bytes × this; must cover max_concurrency + queue_size when queue_size is set",
    )
    body_timeout_seconds: float = Field(10.0, gt=0, description="a request body not received within this answers 408")
    log_payloads: bool = Field(False, description="log a sample of requests' payloads and answers (scrubbed)")
    payload_sample_rate: float = Field(0.01, gt=0, le=1, description="share of requests whose payloads are logged")
    sensitive_fields: list[str] = Field(
        default_factory=list, description="payload keys whose values never reach the log, at any depth"
    )

    @model_validator(mode="after")
    def _room_for_the_queue(self) -> Server:
        workers = self.max_concurrency or UNBATCHED_WORKERS  # the larger default: batching is decided later
        if self.queue_size is not None and self.max_connections < workers + self.queue_size:
            raise ValueError(
                f"max_connections ({self.max_connections}) must be at least max_concurrency + queue_size "
                f"({workers + self.queue_size}), or the queue can never fill"
            )
        return self


class NetworkPolicy(_Strict):
    enabled: bool = False
    allow_namespaces: list[str] = Field(default_factory=list)


class Ingress(_Strict):
    enabled: bool = False
    host: str | None = None
    class_name: str | None = None
    tls_secret: str | None = None


class Slo(_Strict):
    """The service's objectives; the PrometheusRule alerts when they are missed."""

    latency_p95_seconds: float | None = Field(
        None, gt=0, description="p95 latency objective of the prediction routes; alerts above it"
    )
    error_ratio: float = Field(0.01, gt=0, lt=1, description="share of 5xx answers (503 aside) that alerts")
    load_shed_ratio: float = Field(0.05, gt=0, lt=1, description="share of 503 answers (load shed) that alerts")


class Monitoring(_Strict):
    """Prometheus Operator objects, opt-in: the operator ignores the ``prometheus.io/*`` annotations."""

    enabled: bool = Field(False, description="render a ServiceMonitor or PodMonitor, and a PrometheusRule")
    monitor: Literal["ServiceMonitor", "PodMonitor"] = "ServiceMonitor"
    interval: str = Field("30s", pattern=r"^[0-9]+(ms|s|m|h)$", description="scrape interval")
    rules: bool = Field(True, description="render the PrometheusRule with the alerts of `slo`")
    labels: dict[str, str] = Field(
        default_factory=dict, description="extra labels the operator selects on (e.g. `release: prometheus`)"
    )


class Config(_Strict):
    """The whole of ``nbship.yaml``; every key optional."""

    name: str | None = Field(None, description="service name (DNS-1123); default: the notebook's file name")
    version: str = Field("0.1.0", description="model version, in tags and labels")
    python: str | None = Field(None, description="Python version of the image; default: the notebook's")
    base_image: str | None = Field(None, description="default: python:<python>-slim, or a CUDA base with a GPU")
    repository: str | None = Field(None, description="image repository; default: the name")
    port: int = Field(8080, ge=1024, le=65535)
    resolver: Literal["uv", "pip-tools"] = "uv"
    requirements: list[str] = Field(default_factory=list, description="extra requirements; win over inferred pins")
    resources: Resources = Field(default_factory=Resources)
    gpu: Gpu | None = None
    replicas: int = Field(2, ge=1)
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    artifacts: list[Artifact] = Field(default_factory=list)
    downloads: Downloads = Field(default_factory=Downloads)
    env: dict[str, str] = Field(default_factory=dict, description="plain settings for the ConfigMap")
    secrets: list[SecretRef] = Field(default_factory=list)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    server: Server = Field(default_factory=Server)
    network_policy: NetworkPolicy = Field(default_factory=NetworkPolicy)
    ingress: Ingress = Field(default_factory=Ingress)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    slo: Slo = Field(default_factory=Slo)

    @field_validator("name")
    @classmethod
    def _dns(cls, v: str | None) -> str | None:
        if v is not None and (len(v) > 63 or not _DNS1123.match(v)):
            raise ValueError("must be a DNS-1123 label: lower-case letters, digits and '-', at most 63")
        return v

    @field_validator("base_image", "repository")
    @classmethod
    def _image_ref(cls, v: str | None) -> str | None:
        return v if v is None else image_reference(v)

    @field_validator("python")
    @classmethod
    def _python(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^3\.\d+$", v):
            raise ValueError("must look like 3.11")
        return v

    @field_validator("env")
    @classmethod
    def _env_names(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if not _ENV_NAME.match(key):
                raise ValueError(f"{key!r} is not an environment variable name")
        return v


def load_config(notebook: Path, explicit: Path | None = None) -> tuple[Config, Path | None]:
    """Read ``explicit`` or the ``nbship.yaml`` beside ``notebook``; defaults when there is none.

    Raises:
        ConfigError: the YAML does not parse or does not match the schema.
    """
    path = explicit or notebook.parent / CONFIG_FILE
    if not path.exists():
        if explicit is not None:
            raise ConfigError(f"{path}: no such file")
        return Config(), None
    return parse_config(path.read_text(encoding="utf-8"), path), path


def parse_config(text: str, path: Path) -> Config:
    """Validate ``text`` (the content of ``path``) against the schema.

    Raises:
        ConfigError: as ``load_config``.
    """
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{path.name}{where}: not valid YAML ({problem})") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{path.name}: expected a mapping of keys at the top level")
    lines = key_lines(node)
    try:
        return Config.model_validate(doc)
    except ValidationError as e:
        raise ConfigError(describe(e, path, lines, Config)) from None
