"""Cross-object checks: they pass on what nbship renders and catch each kind of disagreement they claim to."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from nbship.config import Config
from nbship.render.checks import SERVED_PATHS, ManifestCheckError, manifest_problems
from nbship.render.k8s import render_manifests
from nbship.spec import ProjectSpec


def rendered() -> dict[str, str]:
    config = Config.model_validate({
        "name": "churn-model",
        "network_policy": {"enabled": True, "allow_namespaces": ["ingress-nginx"]},
        "ingress": {"enabled": True, "host": "churn.example.com"},
    })
    spec = ProjectSpec(
        name="churn-model", version="1.0.0", package="churn_model", python_version="3.11",
        notebook_file="churn.ipynb", notebook_path=Path("/nowhere/churn.ipynb"), notebook_sha256="0" * 64,
        modules=(), parameters=(), settings=(), artifacts=(), remote_artifacts=(), example=None, config=config,
    )
    return render_manifests(spec)


def edit(files: dict[str, str], path: str, change: Callable[[dict[str, Any]], None]) -> dict[str, str]:
    doc = yaml.safe_load(files[path])
    change(doc)
    return {**files, path: yaml.safe_dump(doc)}


def test_what_nbship_renders_has_no_problem() -> None:
    assert manifest_problems(rendered()) == []


@pytest.mark.parametrize(
    ("path", "change", "expected"),
    [
        ("k8s/base/pdb.yaml", lambda d: d["spec"]["selector"]["matchLabels"].update({"app": "other"}),
         "PodDisruptionBudget churn-model selects none of the Deployment's pods"),
        ("k8s/base/pdb.yaml", lambda d: d["spec"]["selector"].update({"matchLabels": {}}),
         "PodDisruptionBudget churn-model selects none"),
        ("k8s/base/service.yaml", lambda d: d["spec"]["selector"].update({"app.kubernetes.io/name": "x"}),
         "Service churn-model selects none"),
        ("k8s/base/networkpolicy.yaml", lambda d: d["spec"]["podSelector"].update({"matchLabels": {"a": "b"}}),
         "NetworkPolicy churn-model applies to none"),
        ("k8s/base/hpa.yaml", lambda d: d["spec"]["scaleTargetRef"].update({"name": "churn"}),
         "HorizontalPodAutoscaler churn-model does not target Deployment churn-model"),
        ("k8s/base/deployment.yaml",
         lambda d: d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"].update(path="/ready"),
         "readinessProbe probes /ready, which the service does not serve"),
        ("k8s/base/deployment.yaml",
         lambda d: d["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"].update(port=8081),
         "livenessProbe probes port 8081, but the service listens on 8080"),
        ("k8s/base/deployment.yaml",
         lambda d: d["spec"]["template"]["spec"]["topologySpreadConstraints"][0]["labelSelector"].update(
             matchLabels={"app": "x"}),
         "the topology spread over kubernetes.io/hostname counts none of the pods"),
        ("k8s/base/ingress.yaml",
         lambda d: d["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"].update(name="web"),
         "Ingress churn-model routes to a Service port that does not exist"),
        ("k8s/base/kustomization.yaml", lambda d: d["resources"].remove("pdb.yaml"),
         "k8s/base/pdb.yaml is not listed"),
    ],
)
def test_each_disagreement_is_caught(path: str, change: Callable[[dict[str, Any]], None], expected: str) -> None:
    problems = manifest_problems(edit(rendered(), path, change))
    assert any(expected in p for p in problems), problems


def test_a_file_that_does_not_parse_is_an_error() -> None:
    files = {**rendered(), "k8s/base/service.yaml": "kind: Service\n  bad: [indent"}
    with pytest.raises(ManifestCheckError, match="k8s/base/service.yaml: not valid YAML"):
        manifest_problems(files)


def test_served_paths_are_the_runtime_apps_real_routes(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from nbship.runtime.app import create_app
    from tests.fixtures.service._harness import build_context

    app = create_app(build_context(tmp_path / "ctx"))
    routes = {getattr(r, "path", None) for r in app.routes}
    assert routes >= SERVED_PATHS
