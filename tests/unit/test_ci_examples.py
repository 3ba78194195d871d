"""The CI examples in examples/ci use only nbship commands and flags that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

CI_FILES = sorted((ROOT / "examples" / "ci").glob("*.yml"))


def _scripts(node: Any) -> list[str]:
    """Every shell command of a workflow (``run:``) or a GitLab job (``script:`` and friends)."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "run" and isinstance(value, str):
                found.append(value)
            elif key in ("script", "before_script", "after_script") and isinstance(value, list):
                found += [str(v) for v in value]
            else:
                found += _scripts(value)
    elif isinstance(node, list):
        for item in node:
            found += _scripts(item)
    return found


def nbship_invocations(text: str) -> list[list[str]]:
    commands = []
    for script in _scripts(yaml.safe_load(text)):
        script = re.sub(r"\$\{\{.*?\}\}", "X", script).replace("\\\n", " ")
        for line in re.split(r"\n(?!  )|&&", script):
            line = line.replace("\n", " ").strip()
            if line.startswith("nbship "):
                commands.append(shlex.split(line, comments=True)[1:])
    return commands


@pytest.mark.parametrize("path", CI_FILES, ids=[p.name for p in CI_FILES])
def test_every_nbship_command_and_flag_in_the_ci_examples_exists(path: Path) -> None:
    import typer.main

    from nbship.cli import app

    group = typer.main.get_command(app)
    invocations = nbship_invocations(path.read_text())
    used = {words[0] for words in invocations}
    assert {"check", "lock", "build"} <= used, f"{path.name} must check, lock and build"
    # the GitOps variant deploys by committing manifests; the others deploy with nbship
    assert ("deploy" in used) != ("gitops" in path.name), f"{path.name}: deploy with nbship or with a commit"
    for words in invocations:
        command = group.commands.get(words[0])  # type: ignore[attr-defined]
        assert command is not None, f"{path.name}: nbship {words[0]} does not exist"
        flags = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        for word in words[1:]:
            if word.startswith("-"):
                assert word.split("=")[0] in flags, f"{path.name}: nbship {words[0]} has no flag {word}"
    build = next(w for w in invocations if w[0] == "build")
    assert "--frozen" in build, f"{path.name}: CI builds from the committed lock"


def test_the_examples_exist() -> None:
    assert {p.name for p in CI_FILES} == {"github-actions.yml", "github-actions-gitops.yml", "gitlab-ci.yml"}


def test_the_gitops_variant_pushes_and_commits_the_pinned_overlays() -> None:
    path = ROOT / "examples" / "ci" / "github-actions-gitops.yml"
    build = next(w for w in nbship_invocations(path.read_text()) if w[0] == "build")
    assert "--push" in build and "--out" in build  # the digest is pinned into the --out context's k8s/
    out = build[build.index("--out") + 1]
    scripts = "\n".join(_scripts(yaml.safe_load(path.read_text())))
    assert f"cp -r {out}/k8s" in scripts and "git commit" in scripts and "git push" in scripts
    assert "kubeconfig" not in path.read_text().lower()  # the controller applies; CI holds no cluster credentials


def test_build_and_deploy_summaries_go_to_the_step_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbship.cli._github import append_summary, build_summary, deploy_summary

    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    append_summary(build_summary({"image": "r/churn:1.0.0-abc", "digest": "sha256:00ff", "reused": False,
                                  "smoke": {"passed": True}, "model_load_seconds": 0.4,
                                  "sizes": {"image_bytes": 3 * 2**20}}))
    append_summary(deploy_summary({"error": "rollout timed out", "rolled_back_to": 3}, ok=False))
    text = summary.read_text()
    assert "| digest | `sha256:00ff` |" in text and "| smoke test | passed |" in text and "3.0 MiB" in text
    assert "### nbship deploy failed" in text and "Rolled back to revision 3." in text
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    append_summary("ignored without a summary file")
    assert "ignored" not in summary.read_text()
