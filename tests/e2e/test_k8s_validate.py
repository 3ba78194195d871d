"""Rendered manifests against real tools: the Kubernetes 1.29–1.33 JSON schemas, ``kubectl kustomize``, checkov.

- Schemas: ``kubernetes-validate`` (strict: unknown fields fail) on every object of every overlay, as
  kustomize builds it. The KEDA ScaledObject is a custom resource with no schema there and is skipped.
- kustomize: the kubectl binary of the test cluster rig (``/opt/k8s-bin``) or any kubectl on PATH.
- checkov: its Kubernetes checks on what ``nbship deploy`` would apply (the overlay plus the deploy layer
  that pins the image digest); it runs from its own virtualenv (``CHECKOV`` or ``.venv-checkov/bin/checkov``)
  because its pins clash with the project's. Findings nbship keeps on purpose are skipped by a
  ``checkov.io/skip*`` annotation in the template, with the reason beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from nbship.config import Config
from nbship.deploy.apply import ImageChoice, Target, deploy_layer
from nbship.image.ref import ImageRef
from nbship.render.k8s import OVERLAYS, render_manifests
from nbship.spec import ProjectSpec
from tests.tools import missing_tool

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ("1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0")
DIGEST = "registry.example.com/ml/churn-model@sha256:" + "ab" * 32
CONFIGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "everything": {
        "gpu": {"count": 1},
        "env": {"LOG_LEVEL": "info"},
        "secrets": [{"env": "DB_PASSWORD", "secret": "churn-db", "key": "password"}],
        "autoscaling": {"memory_utilization": 80, "in_flight_target": 4},
        "network_policy": {"enabled": True, "allow_namespaces": ["ingress-nginx", "monitoring"]},
        "ingress": {"enabled": True, "host": "churn.example.com", "class_name": "nginx", "tls_secret": "churn-tls"},
        "timeouts": {"startup_seconds": 900},
    },
    "fixed-replicas-keda-off": {"autoscaling": {"enabled": False}, "replicas": 3, "port": 9000},
    "keda": {"autoscaling": {"keda": True, "in_flight_target": 4}},
    "monitoring-podmonitor": {"monitoring": {"enabled": True, "monitor": "PodMonitor"},
                              "slo": {"latency_p95_seconds": 0.3}},
    "monitoring-servicemonitor": {"monitoring": {"enabled": True, "labels": {"release": "prometheus"}}},
}
# custom resources (KEDA, Prometheus Operator): no schema in the Kubernetes set
CUSTOM_KINDS = frozenset({"ScaledObject", "ServiceMonitor", "PodMonitor", "PrometheusRule"})


def _kubectl() -> str:
    found = shutil.which("kubectl", path=f"/opt/k8s-bin:{os.environ.get('PATH', '')}")
    if found is None:
        raise missing_tool("no kubectl (bash ../shared/k8s/up.sh unpacks one into /opt/k8s-bin)")
    return found


def _context(tmp_path: Path, config: dict[str, Any]) -> Path:
    from nbship.analysis import Parameter

    spec = ProjectSpec(
        name="churn-model", version="1.0.0", package="churn_model", python_version="3.11",
        notebook_file="churn.ipynb", notebook_path=Path("/nowhere/churn.ipynb"), notebook_sha256="0" * 64,
        modules=(), parameters=(Parameter("threshold", 0.5, 3, 1),), settings=(), artifacts=(),
        remote_artifacts=(), example=None, config=Config.model_validate({"name": "churn-model", **config}),
    )
    for path, text in render_manifests(spec).items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    return tmp_path


def _build(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    done = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_overlay_builds_and_every_object_validates_for_1_29_to_1_33(name: str, tmp_path: Path) -> None:
    import kubernetes_validate

    kubectl = _kubectl()
    context = _context(tmp_path, CONFIGS[name])
    for overlay in OVERLAYS:
        documents = _build(kubectl, context / "k8s" / "overlays" / overlay)
        kinds = {d["kind"] for d in documents}
        assert {"Deployment", "Service", "ServiceAccount", "PodDisruptionBudget", "ConfigMap"} <= kinds
        assert {d["metadata"]["namespace"] for d in documents} == {
            "churn-model-staging" if overlay == "staging" else "churn-model"}
        for document in documents:
            if document["kind"] in CUSTOM_KINDS:
                continue
            for version in VERSIONS:
                kubernetes_validate.validate(document, version, strict=True)


def test_the_validator_does_reject_a_misspelt_field() -> None:
    import kubernetes_validate

    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
                  "spec": {"selector": {"matchLabels": {"a": "b"}}, "strategy": {"rollingUpdate": {"maxUnavailabe": 0}},
                           "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.29.0", strict=True)


def _checkov() -> str:
    for candidate in (os.environ.get("CHECKOV"), str(ROOT / ".venv-checkov" / "bin" / "checkov"),
                      shutil.which("checkov")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise missing_tool("checkov is not installed: "
                       "python3 -m venv .venv-checkov && .venv-checkov/bin/pip install checkov")


@pytest.mark.parametrize("name", ["defaults", "everything"])
def test_checkov_kubernetes_checks_find_nothing_unjustified(name: str, tmp_path: Path) -> None:
    checkov, kubectl = _checkov(), _kubectl()
    context = _context(tmp_path / "ctx", CONFIGS[name])
    scan = tmp_path / "scan"
    scan.mkdir()
    with deploy_layer(Target(context, "production"), ImageChoice(ImageRef.parse(DIGEST), 12.0)) as layer:
        documents = _build(kubectl, layer)
    (scan / "applied.yaml").write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    done = subprocess.run(
        [checkov, "-d", str(scan), "--framework", "kubernetes", "--skip-download", "-o", "json"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    report = json.loads(done.stdout or "{}")
    results = report.get("results", {}) if isinstance(report, dict) else {}
    failed = [f"{c['check_id']} {c['check_name']} ({c['resource']})" for c in results.get("failed_checks", [])]
    assert failed == [], failed
    assert results.get("passed_checks"), done.stderr[-2000:]  # it did check something
    for skipped in results.get("skipped_checks", []):
        reason = skipped.get("check_result", {}).get("suppress_comment")
        assert reason and reason != "No comment provided", f"{skipped['check_id']} is skipped without a reason"
