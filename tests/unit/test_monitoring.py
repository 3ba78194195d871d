"""Monitoring, opt-in: ServiceMonitor or PodMonitor, a PrometheusRule per overlay, queries scoped to the namespace."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from nbship.check import inspect_notebook
from nbship.config import Config
from nbship.render.k8s import render_manifests
from nbship.render.monitoring import alert_rules, keda_query
from nbship.resolved import slo
from tests.conftest import EXAMPLES

NOTEBOOK = EXAMPLES / "text-sentiment" / "sentiment.ipynb"


def manifests(tmp_path: Path, config: dict[str, Any]) -> dict[str, Any]:
    result = inspect_notebook(NOTEBOOK, verify=False)
    assert result.spec is not None
    spec = dataclasses.replace(result.spec, config=Config.model_validate(config))
    return {path: yaml.safe_load(text) for path, text in render_manifests(spec).items()}


def test_nothing_of_the_operator_is_rendered_unless_asked(tmp_path: Path) -> None:
    files = manifests(tmp_path, {})
    kinds = {doc.get("kind") for doc in files.values()}
    assert not kinds & {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


@pytest.mark.parametrize("kind", ["ServiceMonitor", "PodMonitor"])
def test_the_monitor_scrapes_the_metrics_port_and_carries_the_operator_labels(tmp_path: Path, kind: str) -> None:
    files = manifests(tmp_path, {"monitoring": {"enabled": True, "monitor": kind, "interval": "15s",
                                                "labels": {"release": "prometheus"}}})
    monitor = files[f"k8s/base/{kind.lower()}.yaml"]
    assert monitor["kind"] == kind and monitor["metadata"]["labels"]["release"] == "prometheus"
    endpoints = monitor["spec"]["endpoints" if kind == "ServiceMonitor" else "podMetricsEndpoints"]
    assert endpoints == [{"port": "http", "path": "/metrics", "interval": "15s"}]
    assert f"{kind.lower()}.yaml" in files["k8s/base/kustomization.yaml"]["resources"]
    deployment = files["k8s/base/deployment.yaml"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"][
        "labels"].items()


def test_each_overlay_has_its_rules_scoped_to_its_namespace(tmp_path: Path) -> None:
    files = manifests(tmp_path, {"monitoring": {"enabled": True}, "slo": {"latency_p95_seconds": 0.2}})
    for overlay, namespace in (("staging", "sentiment-staging"), ("production", "sentiment")):
        rule = files[f"k8s/overlays/{overlay}/prometheusrule.yaml"]
        assert "prometheusrule.yaml" in files[f"k8s/overlays/{overlay}/kustomization.yaml"]["resources"]
        alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
        assert set(alerts) == {"NbshipHighErrorRatio", "NbshipLatencyAboveSlo", "NbshipPodNotReady",
                               "NbshipLoadShedding"}
        for alert in alerts.values():
            assert f'namespace="{namespace}"' in alert["expr"] and 'model="sentiment"' in alert["expr"]
        assert alerts["NbshipLatencyAboveSlo"]["expr"].endswith("> 0.2")


def test_no_latency_alert_without_a_declared_objective_and_no_rules_when_turned_off(tmp_path: Path) -> None:
    files = manifests(tmp_path, {"monitoring": {"enabled": True}})
    rule = files["k8s/overlays/staging/prometheusrule.yaml"]
    assert "NbshipLatencyAboveSlo" not in {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    files = manifests(tmp_path, {"monitoring": {"enabled": True, "rules": False}})
    assert "k8s/overlays/staging/prometheusrule.yaml" not in files
    assert "k8s/base/servicemonitor.yaml" in files


def test_the_keda_query_is_patched_per_overlay_to_its_namespace(tmp_path: Path) -> None:
    files = manifests(tmp_path, {"autoscaling": {"keda": True, "in_flight_target": 4, "memory_utilization": 80}})
    triggers = files["k8s/base/scaledobject.yaml"]["spec"]["triggers"]
    index = next(i for i, t in enumerate(triggers) if t["type"] == "prometheus")
    assert index == 2
    for overlay, namespace in (("staging", "sentiment-staging"), ("production", "sentiment")):
        patch = files[f"k8s/overlays/{overlay}/kustomization.yaml"]["patches"][0]["patch"]
        ops = yaml.safe_load(patch)
        assert {"op": "replace", "path": f"/spec/triggers/{index}/metadata/query",
                "value": keda_query("sentiment", namespace)} in ops
    assert "service=" not in keda_query("sentiment", "x")


def test_slo_values_are_checked_where_they_are_written() -> None:
    from nbship.config import parse_config
    from nbship.errors import ConfigError

    with pytest.raises(ConfigError, match=r"line 2: slo.error_ratio"):
        parse_config("slo:\n  error_ratio: 2\n", Path("nbship.yaml"))
    with pytest.raises(ConfigError, match="monitoring.monitor"):
        parse_config("monitoring:\n  monitor: Prometheus\n", Path("nbship.yaml"))
    rules = alert_rules("m", "ns", slo(Config.model_validate({"slo": {"error_ratio": 0.2, "load_shed_ratio": 0.3}})))
    thresholds = {r.alert: r.expr.rsplit(" ", 1)[1] for r in rules}
    assert thresholds == {"NbshipHighErrorRatio": "0.2", "NbshipPodNotReady": "0", "NbshipLoadShedding": "0.3"}
