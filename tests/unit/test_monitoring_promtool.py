"""The rendered alerts, checked and evaluated by Prometheus's own ``promtool`` against synthetic series.

``promtool check rules`` parses every expression; ``promtool test rules`` runs each alert over series shaped as
the service exports them (``nbship/runtime/metrics.py``) plus the ``namespace`` and ``pod`` target labels a
scrape adds, and asserts it fires when it should, stays silent when it should not, and ignores the same service
in another namespace. CI installs promtool (.ci/setup); there a missing promtool fails these tests.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from nbship.check import inspect_notebook
from nbship.config import Config
from nbship.render.k8s import render_manifests
from tests.conftest import EXAMPLES
from tests.tools import missing_tool

pytestmark = pytest.mark.slow  # promtool runs once per case

NOTEBOOK = EXAMPLES / "text-sentiment" / "sentiment.ipynb"
NS = "sentiment-staging"
PREDICT = f'model="sentiment",namespace="{NS}",version="0.1.0",method="POST",route="/predict"'


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        raise missing_tool("promtool is not installed (Debian: apt-get install prometheus)")
    return found


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The staging overlay's PrometheusRule ``spec``: exactly a Prometheus rule file."""
    result = inspect_notebook(NOTEBOOK, verify=False)
    assert result.spec is not None
    config = Config.model_validate({"monitoring": {"enabled": True}, "slo": {"latency_p95_seconds": 0.2}})
    files = render_manifests(dataclasses.replace(result.spec, config=config))
    spec = yaml.safe_load(files["k8s/overlays/staging/prometheusrule.yaml"])["spec"]
    path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def series(labels: str, values: str) -> dict[str, str]:
    return {"series": "{" + labels + "}", "values": values}


def requests(status: int, per_minute: int, labels: str = PREDICT) -> dict[str, str]:
    name = "nbship_requests_total"
    return {"series": f'{name}{{{labels},status="{status}"}}', "values": f"0+{per_minute}x40"}


def alert(rules: Path, name: str, severity: str, shown: str, **labels: str) -> dict[str, Any]:
    """The alert ``name`` as promtool reports it: labels, and annotations with their template expanded."""
    rule = next(r for g in yaml.safe_load(rules.read_text())["groups"] for r in g["rules"] if r["alert"] == name)
    template = re.compile(r"\{\{ \$(value|labels\.pod)[^}]*\}\}")
    annotations = {key: template.sub(shown, text) for key, text in rule["annotations"].items()}
    return {"exp_labels": {"alertname": name, "severity": severity, "model": "sentiment", "namespace": NS, **labels},
            "exp_annotations": annotations}


def run_tests(promtool: str, rules: Path, tests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    document = {"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": tests}
    path = rules.with_name("tests.yaml")
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60,
                          check=False)


def firing(promtool: str, rules: Path, name: str, input_series: list[dict[str, str]],
           expected: list[dict[str, Any]], at: str = "20m") -> None:
    """``name`` evaluated at ``at`` over ``input_series`` yields exactly ``expected``."""
    done = run_tests(promtool, rules, [{
        "interval": "1m", "input_series": input_series,
        "alert_rule_test": [{"eval_time": at, "alertname": name, "exp_alerts": expected}],
    }])
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules_pass_promtool_check(promtool: str, rules_file: Path) -> None:
    argv = [promtool, "check", "rules", str(rules_file)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 4 rules found" in done.stdout


def test_error_ratio_fires_on_500s_not_on_503s_nor_on_another_namespace(promtool: str, rules_file: Path) -> None:
    other = PREDICT.replace(f'namespace="{NS}"', 'namespace="sentiment"')
    healthy = [requests(200, 60), requests(500, 60, other)]
    firing(promtool, rules_file, "NbshipHighErrorRatio", [*healthy, requests(500, 6)],
           [alert(rules_file, "NbshipHighErrorRatio", "critical", "9.091%")])
    firing(promtool, rules_file, "NbshipHighErrorRatio", [*healthy, requests(503, 30)], [])
    firing(promtool, rules_file, "NbshipHighErrorRatio", healthy, [])


def test_latency_fires_when_p95_is_above_the_objective(promtool: str, rules_file: Path) -> None:
    def buckets(below_quarter: int, below_half: int) -> list[dict[str, str]]:
        name = "nbship_request_duration_seconds_bucket"
        route = f'model="sentiment",namespace="{NS}",version="0.1.0",route="/predict"'
        return [
            {"series": f'{name}{{{route},le="0.1"}}', "values": f"0+{below_quarter}x40"},
            {"series": f'{name}{{{route},le="0.25"}}', "values": f"0+{below_quarter}x40"},
            {"series": f'{name}{{{route},le="0.5"}}', "values": f"0+{below_half}x40"},
            {"series": f'{name}{{{route},le="+Inf"}}', "values": f"0+{below_half}x40"},
        ]

    expected = alert(rules_file, "NbshipLatencyAboveSlo", "warning", "475ms")  # p95 interpolated in (0.25, 0.5]
    firing(promtool, rules_file, "NbshipLatencyAboveSlo", buckets(30, 60), [expected])
    firing(promtool, rules_file, "NbshipLatencyAboveSlo", buckets(60, 60), [])


def test_a_pod_not_ready_for_ten_minutes_fires_for_that_pod_only(promtool: str, rules_file: Path) -> None:
    base = f'__name__="nbship_ready",model="sentiment",namespace="{NS}",version="0.1.0"'
    stuck, fine = series(base + ',pod="sentiment-a"', "0x40"), series(base + ',pod="sentiment-b"', "1x40")
    firing(promtool, rules_file, "NbshipPodNotReady", [stuck, fine],
           [alert(rules_file, "NbshipPodNotReady", "warning", "sentiment-a", pod="sentiment-a")])
    firing(promtool, rules_file, "NbshipPodNotReady", [stuck, fine], [], at="8m")  # still within `for`


def test_load_shedding_fires_on_a_503_rate(promtool: str, rules_file: Path) -> None:
    firing(promtool, rules_file, "NbshipLoadShedding", [requests(200, 60), requests(503, 12)],
           [alert(rules_file, "NbshipLoadShedding", "warning", "16.67%")])
    firing(promtool, rules_file, "NbshipLoadShedding", [requests(200, 60), requests(503, 1)], [])
