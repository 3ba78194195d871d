"""GitOps without nbship on the deploy side: ``nbship build --push`` pins what it pushed, plain kubectl applies it.

The tabular example is built, smoke-tested and pushed to the rig's registry; then only ``kubectl apply -k`` (as a
GitOps controller would apply the committed manifests) deploys the staging overlay into a fresh namespace, and
the pod answers the notebook's example with the notebook's answer and reports, on ``/version``, the digest,
notebook, lock and commit of the build record. ``nbship deploy NOTEBOOK`` then does the whole path in one command
and reuses the image that already has the content tag.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbship.compare import same_response
from tests.conftest import EXAMPLES

pytestmark = [pytest.mark.docker, pytest.mark.cluster, pytest.mark.network, pytest.mark.slow]

KUBECONFIG = os.environ.get("KUBECONFIG", "/tmp/k8s/kubeconfig")
K8S_BIN = "/opt/k8s-bin"
REGISTRY = "127.0.0.1:5000"


def _env() -> dict[str, str]:
    return {**os.environ, "KUBECONFIG": KUBECONFIG, "PATH": f"{K8S_BIN}:{os.environ['PATH']}", "NO_COLOR": "1"}


def _run(*argv: str, timeout: float = 1800, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, env=_env(), timeout=timeout, check=False,
                          cwd=cwd)


@pytest.fixture
def namespace() -> Iterator[str]:
    if shutil.which("kubectl", path=K8S_BIN) is None or not Path(KUBECONFIG).exists():
        pytest.skip("no cluster: bash ../shared/k8s/up.sh")
    if _run("kubectl", "get", "--raw", "/readyz", timeout=30).returncode != 0:
        pytest.skip("the cluster does not answer: bash ../shared/k8s/up.sh")
    name = f"nbship-gitops-{uuid.uuid4().hex[:6]}"
    assert _run("kubectl", "create", "namespace", name).returncode == 0
    yield name
    _run("kubectl", "delete", "namespace", name, "--wait=false")


def _example(notebook: Path) -> tuple[Any, Any]:
    from nbship.check import inspect_notebook

    result = inspect_notebook(notebook, verify=False)
    assert result.spec is not None and result.spec.example is not None
    return result.spec.example.request, result.spec.example.response


def _ask_the_pod(namespace: str, request: Any) -> dict[str, Any]:
    """POST the example and GET /version from inside the pod (no port-forward, no Service needed)."""
    script = (
        "import json, sys, urllib.request as u\n"
        "req = u.Request('http://127.0.0.1:8080/predict', data=sys.argv[1].encode(),"
        " headers={'Content-Type': 'application/json'})\n"
        "answer = json.load(u.urlopen(req, timeout=30))\n"
        "version = json.load(u.urlopen('http://127.0.0.1:8080/version', timeout=30))\n"
        "print(json.dumps({'answer': answer, 'version': version}))\n"
    )
    done = _run("kubectl", "exec", "-n", namespace, "deploy/churn-model", "-c", "model", "--",
                "python", "-c", script, json.dumps(request), timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_plain_kubectl_apply_of_the_pinned_overlay_deploys_the_smoke_tested_image(
    namespace: str, tmp_path: Path
) -> None:
    shutil.copytree(EXAMPLES / "tabular-churn", tmp_path / "churn")
    notebook = tmp_path / "churn" / "churn.ipynb"
    context = tmp_path / "build"
    git = ["git", "-C", str(tmp_path / "churn"), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for step in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "the model"]):
        assert _run(*git, *step).returncode == 0
    commit = _run(*git, "rev-parse", "HEAD").stdout.strip()
    built = _run(sys.executable, "-m", "nbship", "build", str(notebook), "--out", str(context), "--frozen",
                 "--push", "--repository", f"{REGISTRY}/nbship-gitops", "--output", "json")
    assert built.returncode == 0, built.stderr[-3000:]
    record = json.loads(built.stdout)
    assert record["image_by_digest"] and record["smoke"]["passed"] and record["git_commit"] == commit

    # the GitOps controller's side: the committed overlay, in a namespace of the test's own, and plain kubectl
    wrapper = context / "k8s" / "test-namespace"
    wrapper.mkdir()
    (wrapper / "kustomization.yaml").write_text(
        f"resources:\n  - ../overlays/staging\nnamespace: {namespace}\n", encoding="utf-8")
    applied = _run("kubectl", "apply", "-k", str(wrapper))
    assert applied.returncode == 0, applied.stderr
    rolled = _run("kubectl", "rollout", "status", "deployment/churn-model", "-n", namespace, "--timeout=300s")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr

    request, expected = _example(notebook)
    pod = _ask_the_pod(namespace, request)
    assert same_response(expected, pod["answer"]) == []
    version = pod["version"]
    assert version["image"] == record["image_by_digest"]
    assert version["notebook_sha256"] == record["notebook_sha256"]
    assert version["lock_sha256"] == record["lock_sha256"]
    assert version["git_commit"] == commit

    # nbship status, read-only, shows the same provenance for the revision plain kubectl applied
    status = _run(sys.executable, "-m", "nbship", "status", str(context), "--env", "staging", "--namespace",
                  namespace, "--output", "json")
    assert status.returncode == 0, status.stderr
    (revision,) = json.loads(status.stdout)["revisions"]
    assert revision == {"revision": 1, "current": True, "ready": 1, "notebook_sha256": record["notebook_sha256"],
                        "lock_sha256": record["lock_sha256"], "image": record["image_by_digest"],
                        "git_commit": commit}


def test_deploy_notebook_renders_builds_pushes_and_deploys_reusing_the_content_tag(
    namespace: str, tmp_path: Path
) -> None:
    shutil.copytree(EXAMPLES / "tabular-churn", tmp_path / "churn")
    notebook = tmp_path / "churn" / "churn.ipynb"
    repository = f"{REGISTRY}/nbship-gitops"
    first = _run(sys.executable, "-m", "nbship", "build", str(notebook), "--out", str(tmp_path / "first"),
                 "--frozen", "--repository", repository)
    assert first.returncode == 0, first.stderr[-3000:]

    context = tmp_path / "build"
    deployed = _run(sys.executable, "-m", "nbship", "deploy", str(notebook), "--env", "staging", "--namespace",
                    namespace, "--repository", repository, "--out", str(context), "--frozen", "--output", "json")
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    record = json.loads((context / "nbship-build.json").read_text(encoding="utf-8"))
    assert record["reused"] is True and record["smoke"]["passed"]  # the content tag existed: no second build
    assert json.loads(deployed.stdout)["image"] == record["image_by_digest"]
    request, expected = _example(notebook)
    assert same_response(expected, _ask_the_pod(namespace, request)["answer"]) == []
