"""The README's PromQL comparing two model versions' answers: valid, and it answers what it claims.

Each query marked ``<!-- promql:compare-versions -->`` becomes a recording rule that promtool checks, then
evaluates over two versions' synthetic series shaped as ``nbship/runtime/signals.py`` exports them.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.unit.test_monitoring_promtool import promtool  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow
BASE = 'model="churn-model"'


def readme_queries() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [q.strip() for q in re.findall(r"<!-- promql:compare-versions -->\n```promql\n(.*?)```", text, re.S)]


def evaluate(promtool: str, tmp_path: Path, series: list[dict[str, str]], expected: list[dict[str, Any]]) -> str:  # noqa: F811
    rules = {"groups": [{"name": "readme", "rules": [
        {"record": f"readme:query{i}", "expr": q} for i, q in enumerate(readme_queries())]}]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    tests = {"rule_files": [str(tmp_path / "rules.yaml")], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series, "promql_expr_test": expected}]}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False), encoding="utf-8")
    checked = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules.yaml")], capture_output=True,
                             text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    done = subprocess.run([promtool, "test", "rules", str(tmp_path / "tests.yaml")], capture_output=True, text=True,
                          check=False)
    return done.stdout + done.stderr if done.returncode else ""


def test_the_readme_has_both_queries() -> None:
    assert len(readme_queries()) == 2


def test_the_class_shares_of_two_versions_side_by_side(promtool: str, tmp_path: Path) -> None:  # noqa: F811
    def risk(version: str, label: str, per_minute: int) -> dict[str, str]:
        labels = f'{BASE},version="{version}",field="risk",class="{label}",namespace="ml",pod="p-{version}"'
        return {"series": f"nbship_prediction_class_total{{{labels}}}", "values": f"0+{per_minute}x90"}

    # shares that floating point represents exactly: 1.0.0 answers "high" a quarter of the time, 1.1.0 half
    series = [risk("1.0.0", "high", 4), risk("1.0.0", "low", 12), risk("1.1.0", "high", 8), risk("1.1.0", "low", 8)]
    expected = [{"expr": "readme:query0", "eval_time": "80m", "exp_samples": [
        {"labels": f'readme:query0{{version="{v}",class="{c}"}}', "value": share}
        for v, c, share in (("1.0.0", "high", 0.25), ("1.0.0", "low", 0.75), ("1.1.0", "high", 0.5),
                            ("1.1.0", "low", 0.5))]}]
    assert evaluate(promtool, tmp_path, series, expected) == ""


def test_the_median_score_of_two_versions(promtool: str, tmp_path: Path) -> None:  # noqa: F811
    def bucket(version: str, le: str, per_minute: int) -> dict[str, str]:
        labels = f'{BASE},version="{version}",field="churn_probability",le="{le}",namespace="ml"'
        return {"series": f"nbship_prediction_value_bucket{{{labels}}}", "values": f"0+{per_minute}x90"}

    # 1.0.0 answers mostly below 0.5, 1.1.0 mostly above: the medians move from 0.25 to 0.75
    series = [bucket("1.0.0", "0.5", 10), bucket("1.0.0", "1.0", 10), bucket("1.0.0", "+Inf", 10),
              bucket("1.1.0", "0.5", 0), bucket("1.1.0", "1.0", 10), bucket("1.1.0", "+Inf", 10)]
    expected = [{"expr": "readme:query1", "eval_time": "80m", "exp_samples": [
        {"labels": 'readme:query1{version="1.0.0"}', "value": 0.25},
        {"labels": 'readme:query1{version="1.1.0"}', "value": 0.75}]}]
    assert evaluate(promtool, tmp_path, series, expected) == ""
