"""Stage 4: checked notebook + config → ``ProjectSpec``, frozen and fully resolved.

Renderers, builders and deployers see only this object: every default and precedence rule is applied here,
and only here. Precedence is flag > ``NBSHIP_*`` environment > nbship.yaml > default:

- image repository: ``--repository`` > ``NBSHIP_REPOSITORY`` > ``repository:`` > the service name;
- resources (requests and limits), the startup budget and the base image: nbship.yaml > nbship's defaults;
- environment sources of the Deployment: nbship.yaml's ``env:`` > a parameter's notebook value, ``secrets:``,
  and what the image, the runtime and Kubernetes set (``ALWAYS_SET``, the notebook's ``%env`` settings);
- the structural sections (port, server and timeouts, GPU, replicas and autoscaling, network policy, ingress,
  downloads, monitoring, SLO): nbship.yaml > the schema's defaults, as typed values (``nbship.resolved``).
"""

from __future__ import annotations

import json
import keyword
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from nbship import __version__
from nbship import resolved as resolve
from nbship.analysis import EnvRead, ModulePlan, Parameter
from nbship.artifacts import ArtifactRef, RemoteArtifact
from nbship.config import Config
from nbship.config_values import has_control_character
from nbship.errors import ConfigError
from nbship.resolved import Downloads, GpuRequest, Ingress, Monitor, Scaling, Slo
from nbship.runtime.manifest import BatchingEntry, ServiceEntry

REPOSITORY_ENV = "NBSHIP_REPOSITORY"
# Variables every container has without nbship providing them; reading them needs no source.
# NBSHIP_IMAGE and NBSHIP_GIT_COMMIT come from the pod's pin annotations (downward API)
ALWAYS_SET = frozenset({"PATH", "HOME", "HOSTNAME", "LANG", "PYTHONPATH", "NBSHIP_PORT", "NBSHIP_IMAGE",
                        "NBSHIP_GIT_COMMIT"})
DEFAULT_STARTUP_SECONDS = 300
MIN_STARTUP_SECONDS = 60
STARTUP_LOAD_FACTOR = 3
STARTUP_HEADROOM_SECONDS = 30
STARTUP_PERIOD_SECONDS = 5
HEALTHCHECK_START_SECONDS = 60  # docker run has no probe budget: the HEALTHCHECK waits this long before it counts

StartupSource = Literal["config", "measured", "default"]


@dataclass(frozen=True)
class Overrides:
    """What the command line sets for this run; it beats ``NBSHIP_*`` variables, nbship.yaml and the defaults."""

    repository: str | None = None


@dataclass(frozen=True)
class StartupBudget:
    seconds: int
    source: StartupSource
    load_seconds: float | None = None

    @property
    def failure_threshold(self) -> int:
        return math.ceil(self.seconds / STARTUP_PERIOD_SECONDS)


def startup_budget(configured: int | None, load_seconds: float | None) -> StartupBudget:
    """The startupProbe budget: config wins, else sized from the measured start-up, else the default.

    ``load_seconds`` is what the smoke test measured from process start to ready: downloads (the model container
    verifies the files the init container fetched), load cells and warm-up prediction.
    """
    if configured is not None:
        return StartupBudget(configured, "config", load_seconds)
    if load_seconds is not None:
        sized = math.ceil(load_seconds * STARTUP_LOAD_FACTOR + STARTUP_HEADROOM_SECONDS)
        return StartupBudget(max(MIN_STARTUP_SECONDS, sized), "measured", load_seconds)
    return StartupBudget(DEFAULT_STARTUP_SECONDS, "default")


def repository_choice(flag: str | None, environ: Mapping[str, str]) -> str | None:
    """The repository the run chose over nbship.yaml: the flag, else ``NBSHIP_REPOSITORY``; None for neither."""
    return flag or environ.get(REPOSITORY_ENV) or None


def parameter_text(value: object) -> str:
    """A parameter's notebook value as the text ``NBSHIP_PARAM_*`` expects (parsed back by the runtime)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class SecretSource:
    env: str
    secret: str
    key: str
    optional: bool


@dataclass(frozen=True)
class EnvSources:
    """Where each variable of the service's environment comes from in the Deployment."""

    config_map: tuple[tuple[str, str], ...]  # name, value: parameters' notebook values, overridden by ``env:``
    secrets: tuple[SecretSource, ...]
    implicit: tuple[str, ...]  # set by the image, the runtime (the notebook's %env settings) or Kubernetes

    @property
    def names(self) -> frozenset[str]:
        return frozenset({k for k, _ in self.config_map} | {s.env for s in self.secrets} | set(self.implicit))

    def unsourced(self, reads: Iterable[EnvRead]) -> list[EnvRead]:
        """The reads without a default that nothing sets: the service would fail on them."""
        return [r for r in reads if not r.has_default and r.name not in self.names]


@dataclass(frozen=True)
class ExampleSpec:
    request: Any
    response: Any
    cell: int


@dataclass(frozen=True)
class ProjectSpec:
    """The project, fully resolved. ``config`` is nbship.yaml as written: the input of this stage only.

    The fields after ``batching_proof`` are not arguments: ``__post_init__`` resolves them from ``config`` and the
    run's choices, so a spec made (or ``dataclasses.replace``d) with another config never disagrees with it.
    Renderers, the image stage and the deployer read those fields, never ``config`` (tests/unit/test_resolved.py).
    """

    name: str  # DNS-1123
    version: str
    package: str  # Python identifier of the generated package
    python_version: str
    notebook_file: str
    notebook_path: Path
    notebook_sha256: str
    modules: tuple[ModulePlan, ...]
    parameters: tuple[Parameter, ...]
    settings: tuple[tuple[str, str], ...]
    artifacts: tuple[ArtifactRef, ...]
    remote_artifacts: tuple[RemoteArtifact, ...]
    example: ExampleSpec | None
    config: Config
    env_reads: tuple[EnvRead, ...] = ()
    nbship_version: str = __version__
    chosen_repository: str | None = None  # flag or NBSHIP_REPOSITORY (``repository_choice``)
    batching_proof: BatchingEntry | None = None  # the parity run's verdict (``nbship.batching``); None: not run

    # resolved (see the class docstring)
    repository: str = field(init=False)  # flag > NBSHIP_REPOSITORY > nbship.yaml's ``repository`` > the name
    requests: tuple[tuple[str, str], ...] = field(init=False)
    limits: tuple[tuple[str, str], ...] = field(init=False)
    startup: StartupBudget = field(init=False)  # nbship.yaml, else the default (deploy may size it from a measurement)
    healthcheck_start_seconds: int = field(init=False)  # the image's HEALTHCHECK: startup_seconds, else 60 s
    base_image: str | None = field(init=False)  # None: the Dockerfile picks by Python version, GPU and CUDA
    env_sources: EnvSources = field(init=False)
    port: int = field(init=False)
    service: ServiceEntry = field(init=False)  # the runtime's settings, as nbship.json hands them over
    shutdown_grace_seconds: int = field(init=False)
    gpu: GpuRequest | None = field(init=False)
    replicas: int = field(init=False)  # production's count when no autoscaler owns it
    scaling: Scaling = field(init=False)
    allow_namespaces: tuple[str, ...] | None = field(init=False)  # None: no NetworkPolicy
    ingress: Ingress | None = field(init=False)
    downloads: Downloads = field(init=False)
    monitor: Monitor | None = field(init=False)
    slo: Slo = field(init=False)
    batching_allowed: bool = field(init=False)  # ``server.batching``: false keeps batching off, proven or not

    def __post_init__(self) -> None:
        config = self.config
        values: dict[str, object] = dict(
            repository=self.chosen_repository or config.repository or self.name,
            requests=(("cpu", config.resources.requests.cpu), ("memory", config.resources.requests.memory)),
            limits=(("cpu", config.resources.limits.cpu), ("memory", config.resources.limits.memory)),
            startup=startup_budget(config.timeouts.startup_seconds, None),
            healthcheck_start_seconds=config.timeouts.startup_seconds or HEALTHCHECK_START_SECONDS,
            base_image=config.base_image,
            env_sources=env_sources(config, self.parameters, self.settings),
            port=config.port,
            service=resolve.service_entry(
                config, batched=batching_verdict(config.server.batching, self.batching_proof).enabled),
            shutdown_grace_seconds=config.timeouts.shutdown_grace_seconds,
            gpu=resolve.gpu_request(config),
            replicas=config.replicas,
            scaling=resolve.scaling(config),
            allow_namespaces=resolve.allowed_namespaces(config),
            ingress=resolve.ingress(config),
            downloads=resolve.downloads(config),
            monitor=resolve.monitor(config),
            slo=resolve.slo(config),
            batching_allowed=config.server.batching,
        )
        assert values.keys() == {f.name for f in fields(self) if not f.init}, "a resolved field is left unset"
        for name, value in values.items():
            object.__setattr__(self, name, value)  # frozen: set once, here

    @property
    def batching(self) -> BatchingEntry:
        """Whether the service batches: ``server.batching: false`` > the check-time proof > off, not proven."""
        return batching_verdict(self.batching_allowed, self.batching_proof)

    @property
    def source_dir(self) -> Path:
        return self.notebook_path.parent


def batching_verdict(allowed: bool, proof: BatchingEntry | None) -> BatchingEntry:
    """``server.batching: false`` > the check-time proof > off, not proven (``ProjectSpec.batching``)."""
    if not allowed:
        return BatchingEntry(False, "turned off by server.batching: false")
    return proof or BatchingEntry(
        False, "not proven: the parity run was skipped (--no-verify; nbship serve without --verify)")


def env_sources(
    config: Config, parameters: tuple[Parameter, ...], settings: tuple[tuple[str, str], ...]
) -> EnvSources:
    """The Deployment's environment: nbship.yaml's ``env:`` > a parameter's notebook value; ``secrets:``; the rest."""
    config_map = {p.env: parameter_text(p.default) for p in parameters}
    config_map.update(config.env)  # the config's env wins over a parameter's notebook value
    secrets = tuple(SecretSource(s.env, s.secret, s.key, s.optional)
                    for s in sorted(config.secrets, key=lambda s: s.env))
    implicit = tuple(sorted({k for k, _ in settings} | ALWAYS_SET))
    return EnvSources(tuple(sorted(config_map.items())), secrets, implicit)


def service_name(notebook: Path) -> str:
    """The notebook's file name made DNS-1123-safe: ``Churn Model v2.ipynb`` → ``churn-model-v2``."""
    name = re.sub(r"[^a-z0-9]+", "-", notebook.stem.lower()).strip("-")[:63].strip("-")
    return name or "model"


def package_name(name: str, taken: set[str]) -> str:
    """A Python identifier for the generated package that shadows no module the code imports."""
    package = name.replace("-", "_")
    if package[0].isdigit() or keyword.iskeyword(package):
        package = "model_" + package
    if package in taken or package in sys.stdlib_module_names or package in ("nbship", "nbship_runtime", "main"):
        package += "_service"
    return package


def image_python(config: Config, notebook_python: str | None) -> str:
    """The image's Python: nbship.yaml, else the notebook's kernel, else the Python running nbship."""
    return config.python or notebook_python or f"{sys.version_info.major}.{sys.version_info.minor}"


def build_spec(
    *,
    notebook_path: Path,
    notebook_sha256: str,
    notebook_python: str | None,
    config: Config,
    modules: tuple[ModulePlan, ...],
    parameters: tuple[Parameter, ...],
    settings: dict[str, str],
    artifacts: list[ArtifactRef],
    remote_artifacts: list[RemoteArtifact],
    example: ExampleSpec | None,
    imported: set[str],
    env_reads: tuple[EnvRead, ...] = (),
    nbship_version: str = __version__,
    overrides: Overrides = Overrides(),
    environ: Mapping[str, str] | None = None,
) -> ProjectSpec:
    if has_control_character(notebook_path.name):
        raise ConfigError(
            f"{notebook_path.name!r}: the notebook's file name holds a line break or control character, which "
            "would reach the Dockerfile and the manifests", hint="Rename the notebook.")
    name = config.name or service_name(notebook_path)
    python = image_python(config, notebook_python)
    return ProjectSpec(
        name=name,
        version=config.version,
        package=package_name(name, imported),
        python_version=python,
        notebook_file=notebook_path.name,
        notebook_path=notebook_path,
        notebook_sha256=notebook_sha256,
        modules=modules,
        parameters=parameters,
        settings=tuple(sorted(settings.items())),
        artifacts=tuple(artifacts),
        remote_artifacts=tuple(remote_artifacts),
        example=example,
        config=config,
        env_reads=env_reads,
        nbship_version=nbship_version,
        chosen_repository=repository_choice(overrides.repository, os.environ if environ is None else environ),
    )
