"""Render stage, Kubernetes part: ``ProjectSpec`` → the build context's ``k8s/``.

``render_manifests`` builds one typed, frozen ``ManifestContext`` and renders ``templates/k8s/`` into a
kustomize layout: ``k8s/base/`` and the overlays ``k8s/overlays/staging`` and ``k8s/overlays/production``.
Before returning, ``nbship.render.checks`` parses every file and checks the objects against each other.

Defaults (all from ``nbship.yaml`` when set there):

- resources: requests 250m CPU / 512Mi, limits 1 CPU / 1Gi (``config.Resources``): a small CPU model.
- startup budget (startupProbe on ``/readyz``, period 5 s): ``timeouts.startup_seconds`` when configured, else
  300 s. The Deployment carries the budget and where it came from as annotations, so ``nbship deploy`` can size
  a default budget from the start-up the build's smoke test measured (downloads + load cells + warm-up; 3 × that
  + 30 s, at least 60 s).
- remote artifacts: an init container of the same image downloads them (``nbship.render.downloads``); the
  progress deadline allows 15 minutes for it until ``nbship deploy`` knows the measured download time.
- shutdown: a ``preStop`` sleep of 5 s (endpoints drain before SIGTERM reaches the service), then
  ``timeouts.shutdown_grace_seconds`` for in-flight requests: ``terminationGracePeriodSeconds`` is the sum.
- replicas: production takes ``replicas`` / ``autoscaling`` as configured; staging runs 1 (autoscaling 1–2).
- image: the placeholder name ``<repository>`` rewritten by kustomize's ``images:`` to ``<repository>:<version>``;
  ``nbship deploy`` pins the built image (by the digest of its build record) in a layer on top.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import TYPE_CHECKING

from nbship.errors import Finding
from nbship.render.context import (
    ConfigEntry,
    ImagePin,
    ManifestContext,
    OverlayContext,
    Probe,
    ScalingContext,
    SecretEnv,
)
from nbship.render.dockerfile import USER_ID
from nbship.render.downloads import download_context, writable_dirs
from nbship.render.monitoring import alert_rules, keda_query
from nbship.render.pin import pin_block
from nbship.runtime import routes
from nbship.spec import (
    STARTUP_HEADROOM_SECONDS,
    STARTUP_LOAD_FACTOR,
    STARTUP_PERIOD_SECONDS,
)

if TYPE_CHECKING:
    from nbship.spec import ProjectSpec

UID = USER_ID  # the image's numeric user: runAsUser and the Dockerfile's USER agree by construction
CONTAINER = "model"
PORT_NAME = "http"
READINESS_PATH = routes.READINESS
LIVENESS_PATH = routes.LIVENESS
METRICS_PATH = routes.METRICS
PRESTOP_SECONDS = 5
OVERLAYS = ("staging", "production")
DEFAULT_DOWNLOAD_SECONDS = 900  # unmeasured downloads: room for a few GB at modest bandwidth


def progress_deadline(startup_seconds: int, download_seconds: float | None = None, downloads: bool = False) -> int:
    """``progressDeadlineSeconds``: ten minutes, and never less than a pod's whole start so that the controller
    does not fail a pod still within its budget: two minutes to be scheduled and to pull its image, the init
    container's downloads (3 x the measured time + 30 s, or 15 minutes unmeasured), then the startup budget."""
    allowance = 0
    if download_seconds is not None:
        allowance = math.ceil(download_seconds * STARTUP_LOAD_FACTOR + STARTUP_HEADROOM_SECONDS)
    elif downloads:
        allowance = DEFAULT_DOWNLOAD_SECONDS
    return max(600, startup_seconds + allowance + 120)


def image_pin(spec: ProjectSpec) -> ImagePin:
    """``<repository>:<version>``; the deploy layer pins the built image over it."""
    placeholder = spec.repository
    return ImagePin(placeholder, placeholder, spec.version, None)


def build_context(spec: ProjectSpec) -> ManifestContext:
    """The one context every Kubernetes template receives.

    Raises:
        ConfigError: a remote artifact's folder cannot be made writable (see ``downloads.writable_dirs``).
    """
    startup = spec.startup
    pin = image_pin(spec)
    selector = (("app.kubernetes.io/instance", spec.name), ("app.kubernetes.io/name", spec.name))
    labels = tuple(sorted({
        *selector,
        ("app.kubernetes.io/component", "model-server"),
        ("app.kubernetes.io/managed-by", "nbship"),
        ("app.kubernetes.io/part-of", spec.name),
        ("app.kubernetes.io/version", spec.version),
    }))
    env = spec.env_sources
    entries = tuple(ConfigEntry(k, v) for k, v in env.config_map)
    secrets = tuple(SecretEnv(s.env, s.secret, s.key, s.optional) for s in env.secrets)
    implicit, sources = env.implicit, env.names
    scale = spec.scaling
    scaling = ScalingContext(
        **{f.name: getattr(scale, f.name) for f in fields(scale)},  # the spec's resolved scaling, as it is
        keda_query=keda_query(spec.name, spec.name) if scale.in_flight_target is not None else None,
        keda_query_index=(scale.cpu_utilization is not None) + (scale.memory_utilization is not None),
    )
    return ManifestContext(
        name=spec.name,
        version=spec.version,
        nbship_version=spec.nbship_version,
        notebook=spec.notebook_file,
        labels=labels,
        selector=selector,
        config_map=f"{spec.name}-config",
        image=pin,
        port=spec.port,
        port_name=PORT_NAME,
        container=CONTAINER,
        uid=UID,
        requests=spec.requests,
        limits=spec.limits,
        gpu=spec.gpu,
        config_entries=entries,
        secret_env=secrets,
        implicit_env=implicit,
        defaulted_env=tuple(sorted({r.name for r in spec.env_reads if r.has_default and r.name not in sources})),
        startup=startup,
        startup_probe=Probe(READINESS_PATH, STARTUP_PERIOD_SECONDS, 2, startup.failure_threshold),
        readiness_probe=Probe(READINESS_PATH, 5, 2, 2),
        liveness_probe=Probe(LIVENESS_PATH, 10, 3, 3),
        metrics_path=METRICS_PATH,
        prestop_seconds=PRESTOP_SECONDS,
        termination_grace_seconds=PRESTOP_SECONDS + spec.shutdown_grace_seconds,
        # The deadline must outlast a pod's start-up, or a slow but healthy model would count as a failed rollout.
        progress_deadline_seconds=progress_deadline(startup.seconds, downloads=bool(spec.remote_artifacts)),
        replicas=None if scale.enabled else spec.replicas,
        scaling=scaling,
        writable_dirs=writable_dirs(spec),
        downloads=download_context(spec),
        allow_namespaces=spec.allow_namespaces,
        ingress=spec.ingress,
        monitor=spec.monitor,
        pins=pin_block(spec.name, pin.name, pin.reference, {"notebook-sha256": spec.notebook_sha256}),
    )


def overlay_context(ctx: ManifestContext, name: str, spec: ProjectSpec) -> OverlayContext:
    """Staging runs one pod (autoscaling up to two); production runs what the config says.

    What depends on the namespace is rendered per overlay: the alerts and the KEDA trigger's query.
    """
    if name == "staging":
        namespace, sizes = f"{ctx.name}-staging", (1, 1, min(2, ctx.scaling.max_replicas))
    else:
        namespace, sizes = ctx.name, (spec.replicas, ctx.scaling.min_replicas, ctx.scaling.max_replicas)
    rules = ctx.monitor is not None and ctx.monitor.rules
    return OverlayContext(
        name, namespace, *sizes,
        resources=("prometheusrule.yaml",) if rules else (),
        alerts=alert_rules(ctx.name, namespace, spec.slo) if rules else (),
        keda_query=keda_query(ctx.name, namespace) if ctx.scaling.keda_query is not None else None,
    )


def env_findings(spec: ProjectSpec) -> list[Finding]:
    """What ``render_manifests`` would refuse about environment variables, for ``nbship check`` to report.

    Raises:
        ConfigError: as ``build_context``.
    """
    from nbship.render.checks import env_source_findings

    return env_source_findings(spec.env_reads, build_context(spec), spec.notebook_file)


def render_manifests(spec: ProjectSpec) -> dict[str, str]:
    """The files of ``k8s/`` (paths relative to the build context), checked against each other.

    Raises:
        CheckFailedError: an environment variable the code reads has no source (named by cell and line).
        ConfigError: as ``build_context``.
        ManifestCheckError: the rendered objects disagree with each other (a bug in a template, exit 70).
    """
    from nbship.render.checks import check_env_sources, check_manifests
    from nbship.render.templates import environment

    ctx = build_context(spec)
    check_env_sources(spec.env_reads, ctx, spec.notebook_file)
    env = environment()
    files: dict[str, str] = {}
    base = ["serviceaccount", "deployment", "service", "pdb"]
    base += ["hpa"] if ctx.scaling.hpa else []
    base += ["scaledobject"] if ctx.scaling.keda else []
    base += ["networkpolicy"] if ctx.allow_namespaces is not None else []
    base += ["ingress"] if ctx.ingress is not None else []
    base += [ctx.monitor.kind.lower()] if ctx.monitor is not None else []
    for name in base:
        files[f"k8s/base/{name}.yaml"] = env.get_template(f"k8s/base/{name}.yaml.jinja").render(ctx=ctx)
    files["k8s/base/kustomization.yaml"] = env.get_template("k8s/base/kustomization.yaml.jinja").render(
        ctx=ctx, resources=[f"{name}.yaml" for name in base]
    )
    for overlay in OVERLAYS:
        octx = overlay_context(ctx, overlay, spec)
        folder = f"k8s/overlays/{overlay}"
        files[f"{folder}/kustomization.yaml"] = env.get_template(
            "k8s/overlays/kustomization.yaml.jinja"
        ).render(ctx=ctx, overlay=octx)
        for resource in octx.resources:
            files[f"{folder}/{resource}"] = env.get_template(f"k8s/overlays/{resource}.jinja").render(
                ctx=ctx, overlay=octx)
    check_manifests(files, ctx)
    return files
