"""Render stage, checks: the rendered ``k8s/`` files parse, and their objects agree with each other.

A generator that ships a PodDisruptionBudget selecting none of its own pods, or a probe on a path the
service does not serve, produces manifests that apply cleanly and fail later. These checks run on the
rendered text itself (not on the context it came from), every time ``render_manifests`` runs:

- every file parses as YAML, and every object has ``apiVersion``, ``kind`` and ``metadata.name``;
- the selectors of the Service, PodDisruptionBudget, NetworkPolicy and topology spread constraints match
  the Deployment's pod labels, and the autoscaler targets the Deployment;
- probes use paths the runtime serves (``SERVED_PATHS``) on the container port the service listens on;
- env references point at the generated ConfigMap's keys; the ServiceAccount and Ingress backend exist;
- every environment variable the exported code reads without a default has a source (else an error
  naming the notebook cell and line).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from nbship.errors import CheckFailedError, Finding, Location
from nbship.runtime import routes

if TYPE_CHECKING:
    from nbship.analysis import EnvRead
    from nbship.render.context import ManifestContext

# What nbship's runtime serves (nbship/runtime/app.py); a unit test checks this against the real app's routes.
SERVED_PATHS = frozenset({routes.READINESS, routes.LIVENESS, routes.METRICS, routes.PREDICT})


class ManifestCheckError(Exception):
    """The rendered manifests disagree with each other: a bug in nbship's templates, never the user's."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("rendered Kubernetes manifests are inconsistent: " + "; ".join(problems))
        self.problems = problems


def env_source_findings(env_reads: Iterable[EnvRead], ctx: ManifestContext, notebook: str) -> list[Finding]:
    """One error per variable read without a default that neither the ConfigMap, a secret nor the image sets."""
    sources = {e.key for e in ctx.config_entries} | {s.name for s in ctx.secret_env} | set(ctx.implicit_env)
    return [
        Finding(
            "error",
            "env-unsourced",
            f"the code reads the environment variable {read.name} with no default, and nothing sets it "
            "in the Deployment",
            Location(notebook, read.cell, read.line),
            f"add it to nbship.yaml: `env: {{{read.name}: ...}}` for a plain setting, or under `secrets:` "
            f"(env: {read.name}, secret: <name>, key: <key>) for a credential; or give the read a default",
        )
        for read in env_reads
        if not read.has_default and read.name not in sources
    ]


def check_env_sources(env_reads: Iterable[EnvRead], ctx: ManifestContext, notebook: str) -> None:
    """Every variable read without a default must come from the ConfigMap, a secret or the image.

    Raises:
        CheckFailedError: one finding per unsourced read, located at its notebook cell and line.
    """
    findings = env_source_findings(env_reads, ctx, notebook)
    if findings:
        raise CheckFailedError(findings)


def parse_documents(files: Mapping[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Each file's YAML documents.

    Raises:
        ManifestCheckError: a file does not parse, or holds something other than mappings.
    """
    import yaml

    parsed: dict[str, list[dict[str, Any]]] = {}
    problems = []
    for path, text in sorted(files.items()):
        try:
            documents = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as e:
            problems.append(f"{path}: not valid YAML ({e})")
            continue
        if not all(isinstance(d, dict) for d in documents):
            problems.append(f"{path}: a document is not a mapping")
            continue
        parsed[path] = documents
    if problems:
        raise ManifestCheckError(problems)
    return parsed


def _selects(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """A non-empty label selector whose every pair is on the pods (an empty one would select everything)."""
    return bool(selector) and all(labels.get(k) == v for k, v in (selector or {}).items())


def manifest_problems(files: Mapping[str, str]) -> list[str]:
    """What is inconsistent across the base objects of ``files`` (empty when all agree).

    Raises:
        ManifestCheckError: a file does not parse.
    """
    documents = parse_documents(files)
    objects = [(p, d) for p, docs in documents.items() if p.startswith("k8s/base/") for d in docs]
    problems = [f"{p}: missing apiVersion, kind or metadata.name" for p, d in objects
                if not p.endswith("kustomization.yaml")
                and not (d.get("apiVersion") and d.get("kind") and (d.get("metadata") or {}).get("name"))]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for path, doc in objects:
        if path.endswith("kustomization.yaml"):
            by_kind.setdefault("Kustomization", []).append(doc)
        else:
            by_kind.setdefault(str(doc.get("kind")), []).append(doc)
    deployments = by_kind.get("Deployment", [])
    if len(deployments) != 1:
        return [*problems, f"expected one Deployment in k8s/base, found {len(deployments)}"]
    deployment = deployments[0]
    name = deployment["metadata"]["name"]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"].get("labels") or {}
    if not _selects(deployment["spec"]["selector"].get("matchLabels"), labels):
        problems.append("the Deployment's selector does not match its own pod labels")
    problems += _selector_problems(by_kind, deployment, labels)
    problems += _container_problems(by_kind, pod["spec"])
    kustomizations = by_kind.get("Kustomization", [])
    for kustomization in kustomizations:
        for resource in kustomization.get("resources", []):
            if f"k8s/base/{resource}" not in files:
                problems.append(f"k8s/base/kustomization.yaml lists {resource}, which was not rendered")
    for path in files:
        if path.startswith("k8s/base/") and not path.endswith("kustomization.yaml"):
            listed = {r for k in kustomizations for r in k.get("resources", [])}
            if path.removeprefix("k8s/base/") not in listed:
                problems.append(f"{path} is not listed in k8s/base/kustomization.yaml")
    for overlay, docs in documents.items():
        if overlay.startswith("k8s/overlays/"):
            for patch in (p for d in docs for p in d.get("patches", [])):
                if patch["target"]["name"] != name:
                    problems.append(f"{overlay}: a patch targets {patch['target']['name']}, not {name}")
    return problems


def _selector_problems(
    by_kind: Mapping[str, list[dict[str, Any]]], deployment: dict[str, Any], labels: Mapping[str, str]
) -> list[str]:
    problems = []
    name = deployment["metadata"]["name"]
    for service in by_kind.get("Service", []):
        if not _selects(service["spec"].get("selector"), labels):
            problems.append(f"Service {service['metadata']['name']} selects none of the Deployment's pods")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        if not _selects(pdb["spec"].get("selector", {}).get("matchLabels"), labels):
            problems.append(f"PodDisruptionBudget {pdb['metadata']['name']} selects none of the Deployment's pods")
    for policy in by_kind.get("NetworkPolicy", []):
        if not _selects(policy["spec"].get("podSelector", {}).get("matchLabels"), labels):
            problems.append(f"NetworkPolicy {policy['metadata']['name']} applies to none of the Deployment's pods")
    for spread in deployment["spec"]["template"]["spec"].get("topologySpreadConstraints", []):
        if not _selects(spread.get("labelSelector", {}).get("matchLabels"), labels):
            problems.append(f"the topology spread over {spread.get('topologyKey')} counts none of the pods")
    for kind in ("HorizontalPodAutoscaler", "ScaledObject"):
        for scaler in by_kind.get(kind, []):
            target = scaler["spec"].get("scaleTargetRef", {})
            if (target.get("kind"), target.get("name"), target.get("apiVersion")) != ("Deployment", name, "apps/v1"):
                problems.append(f"{kind} {scaler['metadata']['name']} does not target Deployment {name}")
    service_ports = {p.get("name") for s in by_kind.get("Service", []) for p in s["spec"].get("ports", [])}
    services = {s["metadata"]["name"] for s in by_kind.get("Service", [])}
    for ingress in by_kind.get("Ingress", []):
        paths = [p for rule in ingress["spec"].get("rules", []) for p in (rule.get("http") or {}).get("paths", [])]
        if not paths:
            problems.append(f"Ingress {ingress['metadata']['name']} routes no path")
        for rule in ingress["spec"].get("rules", []):
            for path in (rule.get("http") or {}).get("paths", []):
                backend = path["backend"]["service"]
                if backend["name"] not in services or backend["port"].get("name") not in service_ports:
                    problems.append(
                        f"Ingress {ingress['metadata']['name']} routes to a Service port that does not exist"
                    )
    for monitor in by_kind.get("ServiceMonitor", []):
        selected = [s for s in by_kind.get("Service", []) if _selects(monitor["spec"]["selector"]["matchLabels"],
                                                                       s["metadata"].get("labels", {}))]
        if not selected or any(e.get("port") not in service_ports for e in monitor["spec"]["endpoints"]):
            problems.append(f"ServiceMonitor {monitor['metadata']['name']} scrapes no port of the Service")
    container_ports = {p.get("name") for c in deployment["spec"]["template"]["spec"]["containers"]
                       for p in c.get("ports", [])}
    for monitor in by_kind.get("PodMonitor", []):
        if not _selects(monitor["spec"]["selector"]["matchLabels"], labels) or any(
                e.get("port") not in container_ports for e in monitor["spec"]["podMetricsEndpoints"]):
            problems.append(f"PodMonitor {monitor['metadata']['name']} scrapes no port of the Deployment's pods")
    accounts = {a["metadata"]["name"] for a in by_kind.get("ServiceAccount", [])}
    if deployment["spec"]["template"]["spec"].get("serviceAccountName") not in accounts:
        problems.append("the Deployment's serviceAccountName is not a rendered ServiceAccount")
    return problems


def _container_problems(by_kind: Mapping[str, list[dict[str, Any]]], pod: dict[str, Any]) -> list[str]:
    problems = []
    generated = {
        g["name"]: {str(lit).split("=", 1)[0] for lit in g.get("literals", [])}
        for k in by_kind.get("Kustomization", [])
        for g in k.get("configMapGenerator", [])
    }
    targets = {s["spec"]["ports"][0].get("targetPort") for s in by_kind.get("Service", []) if s["spec"].get("ports")}
    for container in pod.get("containers", []):
        ports = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
        env = {e["name"]: e for e in container.get("env", [])}
        listens = env.get("NBSHIP_PORT", {}).get("value")
        served_port = int(listens) if listens is not None else None
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = (container.get(kind) or {}).get("httpGet")
            if probe is None:
                problems.append(f"container {container['name']} has no HTTP {kind}")
                continue
            if probe.get("path") not in SERVED_PATHS:
                problems.append(f"{kind} probes {probe.get('path')}, which the service does not serve")
            port = ports.get(probe.get("port"), probe.get("port"))
            if port != served_port:
                problems.append(f"{kind} probes port {port}, but the service listens on {served_port}")
        for target in targets:
            if ports.get(target, target) != served_port:
                problems.append(f"the Service sends traffic to port {target}, not the service's {served_port}")
        for variable in env.values():
            ref = (variable.get("valueFrom") or {}).get("configMapKeyRef")
            if ref and variable["name"] not in generated.get(ref["name"], set()):
                problems.append(f"env {variable['name']} reads ConfigMap {ref['name']}, which has no such key")
    return problems


def check_manifests(files: Mapping[str, str], ctx: ManifestContext) -> None:
    """Raise unless ``files`` parse and agree with each other and with the port the service listens on.

    Raises:
        ManifestCheckError: a problem found by ``manifest_problems`` (a template bug, exit 70).
    """
    problems = manifest_problems(files)
    documents = parse_documents(files)
    deployment = next(d for p, ds in documents.items() for d in ds if d.get("kind") == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    if ctx.port not in {p.get("containerPort") for p in container.get("ports", [])}:
        problems.append(f"no container port {ctx.port}, where the service listens (nbship.yaml port)")
    if problems:
        raise ManifestCheckError(problems)
