"""The rig's Kubernetes cluster, for the tests that deploy (marker ``cluster``): ``kubectl`` with the rig's
kubeconfig, the node's address, a fresh namespace that enforces Pod Security ``restricted``, and the tiny
stand-in service the deploy tests roll out (a stdlib HTTP server answering the runtime's operational routes as
user 10001, pushed to the registry the cluster pulls from, with nbship's manifests rendered for it).

The fixtures are registered for every test by tests/conftest.py. Start the rig with
``bash ../shared/docker/up.sh && bash ../shared/k8s/up.sh``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.images import build_and_push, docker_sdk

if TYPE_CHECKING:
    from nbship.spec import ProjectSpec

KUBECONFIG = os.environ.get("KUBECONFIG", "/tmp/k8s/kubeconfig")
K8S_BIN = "/opt/k8s-bin"
REGISTRY = "localhost:5000"  # the registry as the cluster's nodes pull from it

SERVER = r"""
import json, os, signal, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
state = {"ready": True}
VERSION = os.environ.get("TINY_VERSION", "?")
class Handler(BaseHTTPRequestHandler):
    def _send(self, code, doc):
        body = json.dumps(doc).encode()
        self.send_response(code); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def do_GET(self):
        if self.path == "/readyz":
            self._send(200 if state["ready"] else 503, {"status": "ready" if state["ready"] else "draining"})
        elif self.path == "/healthz":
            self._send(200, {"status": "alive"})
        elif self.path == "/version":
            self._send(200, {"version": VERSION, "param": os.environ.get("NBSHIP_PARAM_THRESHOLD")})
        else:
            self._send(404, {})
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("NBSHIP_PORT", "8080"))), Handler)
def stop(*_):
    state["ready"] = False
    threading.Thread(target=server.shutdown).start()
signal.signal(signal.SIGTERM, stop)
print(json.dumps({"event": "ready", "uid": os.getuid()}), flush=True)
server.serve_forever()
"""


def kubectl(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": KUBECONFIG, "PATH": f"{K8S_BIN}:{os.environ['PATH']}"}
    return subprocess.run(
        ["kubectl", *args], capture_output=True, text=True, env=env, check=check, input=input, timeout=180
    )


def require_cluster() -> None:
    """Skip unless the rig's kubeconfig and kubectl are here and the API server answers."""
    if not Path(KUBECONFIG).is_file() or shutil.which("kubectl", path=K8S_BIN) is None:
        pytest.skip("no cluster: bash ../shared/k8s/up.sh")
    if kubectl("get", "--raw", "/readyz", check=False).returncode != 0:
        pytest.skip("the cluster does not answer: bash ../shared/k8s/up.sh")


@pytest.fixture(scope="module")
def cluster_env() -> Iterator[None]:
    """The cluster is up, and the module's tests (and the nbship they run) see its kubeconfig and kubectl."""
    require_cluster()
    saved = {k: os.environ.get(k) for k in ("KUBECONFIG", "PATH")}
    os.environ["KUBECONFIG"] = KUBECONFIG
    os.environ["PATH"] = f"{K8S_BIN}:{os.environ['PATH']}"
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def node_ip() -> str:
    """The first node's InternalIP: where a pod reaches a server on every interface of the host."""
    require_cluster()
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return str(next(a["address"] for a in nodes[0]["status"]["addresses"] if a["type"] == "InternalIP"))


@pytest.fixture
def namespace(cluster_env: None) -> Iterator[str]:
    """A fresh namespace that enforces Pod Security ``restricted``; deleted (without waiting) after the test."""
    name = f"nbship-e2e-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=latest")
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def push_tiny(client: Any, folder: Path, ref: str, command: list[str]) -> str:
    """The tiny service image running ``command``, pushed as ``ref``; its reference by digest."""
    dockerfile = (
        "FROM python:3.11-slim\nCOPY server.py /app/server.py\nWORKDIR /app\nUSER 10001:10001\n"
        f"EXPOSE 8080\nCMD {json.dumps(command)}\n"
    )
    (folder / "Dockerfile").write_text(dockerfile, encoding="utf-8")
    (folder / "server.py").write_text(SERVER, encoding="utf-8")
    return build_and_push(client, folder, ref)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, cluster_env: None) -> dict[str, str]:
    """Pushed references of the tiny service: a good image and one that crashes at start."""
    client = docker_sdk()
    refs = {}
    for name, command in {
        "good": ["python3", "/app/server.py"],
        "crash": ["python3", "-c", "import sys; print('boom: the model file is missing', flush=True); sys.exit(3)"],
    }.items():
        folder = tmp_path_factory.mktemp(name)
        refs[name] = push_tiny(client, folder, f"{REGISTRY}/nbship-e2e/tiny:{name}", command)
    return refs


def tiny_spec(config: dict[str, Any]) -> ProjectSpec:
    """The resolved spec of the tiny service (one parameter, ``threshold`` = 0.5) with ``config`` as nbship.yaml."""
    from nbship.analysis import Parameter
    from nbship.config import Config
    from nbship.spec import ProjectSpec

    return ProjectSpec(
        name="tiny",
        version="1.0.0",
        package="tiny",
        python_version="3.11",
        notebook_file="tiny.ipynb",
        notebook_path=Path("/nonexistent/tiny.ipynb"),
        notebook_sha256="0" * 64,
        modules=(),
        parameters=(Parameter("threshold", 0.5, 2, 1),),
        settings=(),
        artifacts=(),
        remote_artifacts=(),
        example=None,
        config=Config.model_validate(config),
        nbship_version="0.0.0+test",
    )


@pytest.fixture
def context_dir(tmp_path: Path) -> Path:
    """nbship's manifests for the tiny service: two replicas, no autoscaler (rollouts are judged by the Deployment
    alone: no metrics-server), a 5 s shutdown grace."""
    from nbship.render.k8s import render_manifests

    files = render_manifests(
        tiny_spec({"name": "tiny", "autoscaling": {"enabled": False}, "replicas": 2,
                   "timeouts": {"shutdown_grace_seconds": 5}})
    )
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    return tmp_path


def deployed_image(namespace: str) -> str:
    """The image the ``tiny`` Deployment's first container runs."""
    out = kubectl(
        "get", "deployment", "tiny", "-n", namespace, "-o", "jsonpath={.spec.template.spec.containers[0].image}"
    )
    return out.stdout


def call_service(namespace: str, service: str, path: str, payload: Any = None, settle: float = 0.0,
                 timeout: float = 10) -> tuple[int, Any]:
    """(status, JSON body) of GET ``path`` (POST ``payload`` when given) through the Service's ClusterIP, which the
    host reaches on this rig.

    kube-proxy programs a new Service's rules a moment after its pods turn ready (longer on a loaded node): with
    ``settle``, a refused connection is tried again for that many seconds. Without it a refusal fails at once, so a
    moment with no serving pod cannot hide.
    """
    spec = json.loads(kubectl("get", "service", service, "-n", namespace, "-o", "json").stdout)["spec"]
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(f"http://{spec['clusterIP']}{path}", data=data,
                                     headers={"Content-Type": "application/json"})
    deadline = time.monotonic() + settle
    while True:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return int(response.status), json.loads(response.read())
        except urllib.error.HTTPError as e:
            return int(e.code), None
        except urllib.error.URLError as e:
            if not isinstance(e.reason, ConnectionRefusedError) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
