"""Remote weights on the rig's real cluster: the init container downloads from a local S3 server (moto in server
mode on the host, reached by the pod through the node's address) with credentials from a Kubernetes Secret.

The image is a stand-in built here with the docker SDK: python:3.11-slim with nbship's runtime package, boto3 and
its pure-Python dependencies copied from this environment (building the real service image needs PyPI), and a
stdlib HTTP server as the model container that answers the probes and reports the sha256 of the weights it found.
The manifests are nbship's own (``render_manifests`` and the deploy layer), in a namespace that enforces Pod
Security ``restricted``. Start the rig with ``bash ../shared/docker/up.sh && bash ../shared/k8s/up.sh``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbship.artifacts import RemoteArtifact
from nbship.config import Config
from nbship.deploy.apply import ImageChoice, Target, deploy_layer
from nbship.image.ref import ImageRef
from nbship.render import manifest
from nbship.render.k8s import render_manifests
from nbship.runtime.manifest import manifest_text
from nbship.spec import ProjectSpec
from tests.cluster import REGISTRY, call_service, kubectl
from tests.fixtures.s3server import S3Server, moto_command, moto_server
from tests.images import build_and_push, docker_sdk

pytestmark = [pytest.mark.cluster, pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
# 110 MB: enough for a progress line (every 100 MB) and still quick on one machine
WEIGHTS = b"".join(hashlib.sha256(str(i).encode()).digest() * 32768 for i in range(105))
SHA = hashlib.sha256(WEIGHTS).hexdigest()
REMOTE = RemoteArtifact("weights/model.bin", "s3://models/encoder/v3/model.bin", SHA, "s3-reader")
CLIENT_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")

MODEL_SERVER = r"""
import hashlib, json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
digest = hashlib.sha256()
with open("/app/weights/model.bin", "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        digest.update(chunk)
secrets = sorted(k for k in os.environ if k.startswith("AWS_SECRET"))
found = {"weights_sha256": digest.hexdigest(), "aws_keys_in_env": secrets}
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(found if self.path == "/version" else {"status": "ok"}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
print(json.dumps({"event": "ready", **found}), flush=True)
ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("NBSHIP_PORT", "8080"))), Handler).serve_forever()
"""


@pytest.fixture(scope="module")
def store(node_ip: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[S3Server, str, str]]:
    """The S3 server on every interface of the host; pods reach it at the node's InternalIP."""
    if moto_command() is None:
        pytest.fail("moto_server is not installed: pip install 'moto[server]' (a dev dependency)")
    with moto_server(host="0.0.0.0", reach=node_ip, log=tmp_path_factory.mktemp("moto") / "moto.log") as server:
        local = S3Server(f"http://127.0.0.1:{server.port}", server.port)
        local.put("models", "encoder/v3/model.bin", WEIGHTS)
        key_id, secret = local.reader_keys()  # from here on, every request must be signed with a known key
        yield server, key_id, secret


def _spec(**extra: Any) -> ProjectSpec:
    return ProjectSpec(
        name="weights", version="1.0.0", package="weights", python_version="3.11", notebook_file="weights.ipynb",
        notebook_path=Path("/nonexistent/weights.ipynb"), notebook_sha256="0" * 64, modules=(), parameters=(),
        settings=(), artifacts=(), remote_artifacts=(REMOTE,), example=None,
        config=Config.model_validate({
            "name": "weights", "autoscaling": {"enabled": False}, "replicas": 1,
            "timeouts": {"shutdown_grace_seconds": 5}, "downloads": {"size_limit": "1Gi", "attempts": 3},
            # not a secret: the endpoint comes from nbship.yaml's env (a ConfigMap), the keys from the Secret
            "env": {"AWS_ENDPOINT_URL": "http://placeholder", "AWS_REGION": "us-east-1"},
            **extra,
        }),
        nbship_version="0.0.0+test",
    )


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory, node_ip: str) -> str:
    client = docker_sdk()
    folder = tmp_path_factory.mktemp("weights-image")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in CLIENT_PACKAGES:
        found = importlib.util.find_spec(name)
        assert found is not None and found.origin is not None, f"{name} is not installed"
        origin = Path(found.origin)
        if origin.name == "__init__.py":
            shutil.copytree(origin.parent, folder / "site" / name, ignore=ignore)
        else:
            (folder / "site").mkdir(exist_ok=True)
            shutil.copy(origin, folder / "site" / origin.name)
    shutil.copytree(ROOT / "nbship" / "runtime", folder / "app" / "nbship_runtime", ignore=ignore)
    (folder / "app" / "nbship.json").write_text(manifest_text(manifest(_spec(), ())))
    (folder / "app" / "main.py").write_text(MODEL_SERVER)
    (folder / "Dockerfile").write_text(
        "FROM python:3.11-slim\nCOPY site/ /opt/site/\nCOPY app/ /app/\n"
        "RUN mkdir -p /app/weights && chown 10001:10001 /app/weights\n"
        "ENV PYTHONPATH=/opt/site PYTHONDONTWRITEBYTECODE=1 HOME=/tmp\nWORKDIR /app\nUSER 10001:10001\n"
        'EXPOSE 8080\nCMD ["python", "main.py"]\n'
    )
    ref = f"{REGISTRY}/nbship-e2e/weights:{uuid.uuid4().hex[:8]}"
    return build_and_push(client, folder, ref)


def _deploy(tmp_path: Path, namespace: str, image: str, endpoint: str, spec: ProjectSpec | None = None) -> None:
    files = render_manifests(spec or _spec())
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text.replace("http://placeholder", endpoint), encoding="utf-8")
    with deploy_layer(Target(tmp_path, "production", namespace), ImageChoice(ImageRef.parse(image), None)) as layer:
        kubectl("apply", "-k", str(layer))


def _init_log(namespace: str) -> list[dict[str, Any]]:
    text = kubectl("logs", "-n", namespace, "deployment/weights", "-c", "download", check=False).stdout
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_the_init_container_downloads_the_weights_from_s3_with_the_secrets_credentials(
    store: tuple[S3Server, str, str], image: str, namespace: str, tmp_path: Path
) -> None:
    server, key_id, secret = store
    kubectl("create", "secret", "generic", "s3-reader", "-n", namespace,
            f"--from-literal=AWS_ACCESS_KEY_ID={key_id}", f"--from-literal=AWS_SECRET_ACCESS_KEY={secret}")
    _deploy(tmp_path, namespace, image, server.endpoint)
    rollout = kubectl("rollout", "status", "deployment/weights", "-n", namespace, "--timeout=240s", check=False)
    lines = _init_log(namespace)
    print("\n".join(json.dumps(line) for line in lines))  # the evidence, shown with pytest -s
    assert rollout.returncode == 0, rollout.stderr + kubectl("describe", "pods", "-n", namespace).stdout
    events = [line["event"] for line in lines]
    assert events[0] == "download-credentials" and lines[0]["keys"] == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    assert events.index("download-start") < events.index("download-progress") < events.index("download-done")
    assert events[-1] == "downloaded" and lines[-1]["bytes"] == len(WEIGHTS)
    everything = kubectl("logs", "-n", namespace, "deployment/weights", "--all-containers").stdout
    assert secret not in everything
    status, found = call_service(namespace, "weights", "/version", settle=15)
    assert status == 200, status
    # the model container found the verified file, and holds no secret in its environment
    assert found == {"weights_sha256": SHA, "aws_keys_in_env": []}
    pod = json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"][0]
    rendered = json.dumps(pod["spec"])
    assert secret not in rendered and key_id not in rendered


def test_a_refused_credential_stops_the_pod_in_its_init_container_naming_the_cause(
    store: tuple[S3Server, str, str], image: str, namespace: str, tmp_path: Path
) -> None:
    server, key_id, _ = store
    kubectl("create", "secret", "generic", "s3-reader", "-n", namespace,
            f"--from-literal=AWS_ACCESS_KEY_ID={key_id}", "--from-literal=AWS_SECRET_ACCESS_KEY=not-the-secret")
    _deploy(tmp_path, namespace, image, server.endpoint)
    deadline = time.monotonic() + 180
    terminated: dict[str, Any] = {}
    while time.monotonic() < deadline and not terminated:
        pods = json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
        for status in (pods[0].get("status", {}).get("initContainerStatuses") or []) if pods else []:
            state = status.get("lastState", {}).get("terminated") or status.get("state", {}).get("terminated")
            terminated = state or {}
        time.sleep(1)
    lines = _init_log(namespace) or [json.loads(x) for x in kubectl(
        "logs", "-n", namespace, "deployment/weights", "-c", "download", "--previous", check=False
    ).stdout.splitlines() if x.startswith("{")]
    print("\n".join(json.dumps(line) for line in lines))
    assert terminated.get("exitCode") == 1, terminated
    failed = [line for line in lines if line.get("event") == "download-failed"]
    assert failed and "refused the credentials (SignatureDoesNotMatch)" in failed[0]["error"]
    assert not [line for line in lines if line.get("event") == "download-retry"]  # failed fast, no retries
    ready = json.loads(kubectl("get", "deployment", "weights", "-n", namespace, "-o", "json").stdout)
    assert not ready["status"].get("readyReplicas")  # the model container never started


def _init_lines(namespace: str, pod: str) -> list[dict[str, Any]]:
    text = kubectl("logs", "-n", namespace, pod, "-c", "download").stdout
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_replicas_and_restarts_on_a_claim_find_the_verified_weights_and_download_nothing(
    store: tuple[S3Server, str, str], image: str, namespace: str, tmp_path: Path
) -> None:
    """An existing claim (a hostPath volume here: the rig has no provisioner) shared by two replicas."""
    server, key_id, secret = store
    folder = Path(tempfile.mkdtemp(prefix="nbship-pv-"))
    folder.chmod(0o777)  # a hostPath volume gets no fsGroup ownership; a provisioned one would
    volume = f"{namespace}-cache"
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "weights-cache"},
             "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "", "volumeName": volume,
                      "resources": {"requests": {"storage": "1Gi"}}}}
    pv = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": volume},
          "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "",
                   "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": str(folder)}}}
    (tmp_path / "volume.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [pv]}))
    (tmp_path / "claim.json").write_text(json.dumps(claim))
    kubectl("apply", "-f", str(tmp_path / "volume.json"))
    try:
        kubectl("apply", "-n", namespace, "-f", str(tmp_path / "claim.json"))
        kubectl("create", "secret", "generic", "s3-reader", "-n", namespace,
                f"--from-literal=AWS_ACCESS_KEY_ID={key_id}", f"--from-literal=AWS_SECRET_ACCESS_KEY={secret}")
        spec = _spec(replicas=2, downloads={"volume": {"claim": "weights-cache"}})
        _deploy(tmp_path / "ctx", namespace, image, server.endpoint, spec)
        rollout = kubectl("rollout", "status", "deployment/weights", "-n", namespace, "--timeout=240s", check=False)
        assert rollout.returncode == 0, rollout.stderr + kubectl("describe", "pods", "-n", namespace).stdout
        pods = sorted(json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"],
                      key=lambda p: p["metadata"]["name"])
        summaries = [next(x for x in _init_lines(namespace, p["metadata"]["name"]) if x["event"] == "downloaded")
                     for p in pods]
        print(json.dumps(summaries))
        assert sorted(s["downloaded_files"] for s in summaries) == [0, 1]  # one pod fetched it, the other found it
        assert (folder / "weights" / "weights" / "model.bin").stat().st_size == len(WEIGHTS)
        kubectl("delete", "pod", "-n", namespace, pods[0]["metadata"]["name"], "--wait=true")
        rollout = kubectl("rollout", "status", "deployment/weights", "-n", namespace, "--timeout=240s", check=False)
        assert rollout.returncode == 0, rollout.stderr
        fresh = [p for p in json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
                 if p["metadata"]["name"] not in {q["metadata"]["name"] for q in pods}]
        lines = _init_lines(namespace, fresh[0]["metadata"]["name"])
        print("\n".join(json.dumps(line) for line in lines))
        summary = next(x for x in lines if x["event"] == "downloaded")
        assert summary["downloaded_files"] == 0 and summary["bytes"] == 0
    finally:
        kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=120s", check=False)
        kubectl("delete", "pv", volume, "--wait=false", check=False)
        shutil.rmtree(folder, ignore_errors=True)


def test_an_ephemeral_download_volume_passes_the_api_server_and_pod_security(namespace: str, tmp_path: Path) -> None:
    """Server-side dry run: the rig has no provisioner to bind the volume, but the API server validates the
    Deployment with its generic ephemeral volume against the schema and the namespace's Pod Security level."""
    spec = _spec(downloads={"size_limit": "20Gi", "volume": {"ephemeral": True, "storage_class": "fast-ssd"}})
    files = render_manifests(spec)
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    choice = ImageChoice(ImageRef.parse("localhost:5000/x:1"), None)
    with deploy_layer(Target(tmp_path, "production", namespace), choice) as layer:
        done = kubectl("apply", "-k", str(layer), "--dry-run=server", "-o", "json", check=False)
    assert done.returncode == 0, done.stderr
    items = json.loads(done.stdout)["items"]
    deployment = next(i for i in items if i["kind"] == "Deployment")
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "downloads")
    template = volume["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert template["resources"]["requests"]["storage"] == "20Gi" and template["storageClassName"] == "fast-ssd"
