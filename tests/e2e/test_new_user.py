"""The first ten minutes, tried as a new user would: a fresh virtual environment with nbship installed from its
wheel, then the README's walkthrough, command by command, on each example notebook — tag, check, lock, serve
locally, build and push, deploy, status — against the real Docker engine, registry and cluster of the rig.

The GPU example is left out: its encoder is a remote artifact that only the internet has, and the rig's cluster
has no GPU node to schedule it on.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbship.compare import same_response
from tests.conftest import EXAMPLES, ROOT

pytestmark = [pytest.mark.docker, pytest.mark.cluster, pytest.mark.network, pytest.mark.slow]

KUBECONFIG = os.environ.get("KUBECONFIG", "/tmp/k8s/kubeconfig")
K8S_BIN = "/opt/k8s-bin"
REGISTRY = "127.0.0.1:5000"


def walkthrough() -> list[str]:
    """The commands of the README's "From a notebook to a running service" block, comments dropped."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## From a notebook to a running service", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.strip().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip>=25.1"], check=True)
    # a wheel, not the checkout: the templates must ship inside it
    subprocess.run([*pip, f"{ROOT}[all]", "scikit-learn==1.9.1", "pandas==3.1.1", "joblib==1.6.0"], check=True)
    return venv


@pytest.fixture
def cluster_namespace() -> Iterator[str]:
    kubectl = shutil.which("kubectl", path=K8S_BIN) or shutil.which("kubectl")
    if kubectl is None or not Path(KUBECONFIG).exists():
        pytest.skip("no cluster: bash ../shared/k8s/up.sh")
    name = f"nbship-new-user-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "KUBECONFIG": KUBECONFIG}
    subprocess.run([kubectl, "create", "namespace", name], check=True, env=env, capture_output=True)
    yield name
    subprocess.run([kubectl, "delete", "namespace", name, "--wait=false"], env=env, capture_output=True, check=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "nbship serve exited before it was ready"
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError("nbship serve was not ready in time")


@pytest.mark.parametrize("example", ["tabular-churn", "text-sentiment"])
def test_the_readme_walkthrough_works_on_each_example(
    fresh_venv: Path, cluster_namespace: str, example: str, tmp_path: Path
) -> None:
    shutil.copytree(EXAMPLES / example, tmp_path / example)
    notebook = next((tmp_path / example).glob("*.ipynb"))
    env = {**os.environ, "PATH": f"{fresh_venv / 'bin'}:{K8S_BIN}:{os.environ['PATH']}", "KUBECONFIG": KUBECONFIG}
    env.pop("CI", None)  # a user's terminal: the walkthrough locks instead of checking a frozen lock
    manifest_example = None
    for line in walkthrough():
        line = line.replace("churn.ipynb", str(notebook)).replace("build/churn", str(tmp_path / "build"))
        line = line.replace("registry.example.com/ml/churn", f"{REGISTRY}/nbship-new-user-{example}")
        argv = shlex.split(line)
        if argv[1] in ("deploy", "status"):
            argv += ["--namespace", cluster_namespace]
        if argv[1] == "serve":
            argv = [a for a in argv if a != "--reload"] + ["--port", str(_free_port())]
            port = argv[-1]
            process = subprocess.Popen(argv, env=env, cwd=tmp_path, stderr=subprocess.PIPE)
            try:
                _wait_ready(f"http://127.0.0.1:{port}", process)
                manifest_example = _example_of(notebook)
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/predict", data=json.dumps(manifest_example[0]).encode(),
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=30) as response:
                    assert same_response(manifest_example[1], json.loads(response.read())) == []
            finally:
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=60) == 0
            continue
        done = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=1800, check=False)
        assert done.returncode == 0, f"{line}\n{done.stderr[-3000:]}"
        if argv[1] == "status":
            assert re.search(r"replicas: (\d+)/\1 ready", done.stdout), done.stdout
    assert manifest_example is not None, "the walkthrough has no nbship serve step"


def _example_of(notebook: Path) -> tuple[object, object]:
    """The notebook's own example request and saved response, as nbship reads them."""
    from nbship.check import inspect_notebook

    result = inspect_notebook(notebook)
    assert result.spec is not None and result.spec.example is not None
    return result.spec.example.request, result.spec.example.response
