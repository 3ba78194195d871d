"""The whole path of a model whose weights live in S3, with the real service image: the GPU example (run here on
CPU) with its encoder moved to a local S3 server (moto in server mode), no copy beside the notebook.

``nbship build`` locks boto3 (the notebook declares s3://), downloads the encoder once into the user cache with
this process's AWS variables, and smoke-tests the image with that copy mounted where the init container would put
it (no credential enters the container). ``nbship deploy`` then runs the image on the rig: its init container
(the real runtime, from the image) fetches the encoder from the S3 server through the node's address with a
Secret's keys, and the model answers the notebook's example. PyPI is needed for the lock and the image.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster import call_service, kubectl
from tests.conftest import EXAMPLES
from tests.fixtures.s3server import S3Server, moto_command, moto_server
from tests.images import REGISTRY, rig_engine

pytestmark = [pytest.mark.docker, pytest.mark.network, pytest.mark.cluster, pytest.mark.slow]

KEY = "encoder/v3/encoder.npz"


@pytest.fixture(scope="module")
def builder() -> Any:
    return rig_engine()


def test_a_model_with_weights_in_s3_builds_smoke_tests_and_serves_on_the_cluster(
    builder: Any, node_ip: str, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    run_cli: Callable[..., tuple[int, str, str]],
) -> None:
    from nbship.image.build import BuildOptions
    from nbship.project import build

    if moto_command() is None:
        pytest.fail("moto_server is not installed: pip install 'moto[server]' (a dev dependency)")
    project = tmp_path / "embeddings"
    shutil.copytree(EXAMPLES / "gpu-embeddings", project)
    encoder = (project / "weights" / "encoder.npz").read_bytes()
    shutil.rmtree(project / "weights")  # the weights live in the bucket only
    with moto_server(host="0.0.0.0", reach=node_ip) as store:
        local = S3Server(f"http://127.0.0.1:{store.port}", store.port)
        local.put("models", KEY, encoder)
        key_id, secret = local.reader_keys()
        config = yaml.safe_load((project / "nbship.yaml").read_text())
        for key in ("gpu", "monitoring", "slo"):  # the rig has no GPU and no Prometheus Operator
            config.pop(key, None)
        config["autoscaling"] = {"enabled": False}
        config["replicas"] = 1
        config["env"] = {"AWS_ENDPOINT_URL": store.endpoint}  # the node's address: pods and this host reach it
        config["artifacts"][0].update(uri=f"s3://models/{KEY}", credentials={"secret": "s3-reader"})
        (project / "nbship.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        for name, value in {"AWS_ENDPOINT_URL": store.endpoint, "AWS_ACCESS_KEY_ID": key_id,
                            "AWS_SECRET_ACCESS_KEY": secret, "NBSHIP_CACHE_DIR": str(tmp_path / "cache")}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)

        notebook = project / "embeddings.ipynb"
        options = BuildOptions(repository=f"{REGISTRY}/nbship-e2e-weights", push=True)
        record, _ = build(builder, notebook, project / "build", options)  # writes nbship-build.json there
        assert record.smoke is not None and record.smoke.passed, record.smoke
        lock = (project / "requirements.lock").read_text()
        assert "boto3==" in lock and "huggingface" not in lock  # the s3 client, and only it
        sha = hashlib.sha256(encoder).hexdigest()
        assert (tmp_path / "cache" / "weights" / sha / "encoder.npz").read_bytes() == encoder
        image_env = builder.client.images.get(record.image_id).attrs["Config"]["Env"]
        assert not [e for e in image_env if e.startswith("AWS_")]

        kubectl("create", "secret", "generic", "s3-reader", "-n", namespace,
                f"--from-literal=AWS_ACCESS_KEY_ID={key_id}", f"--from-literal=AWS_SECRET_ACCESS_KEY={secret}")
        code, _, err = run_cli("deploy", project / "build", "--env", "production", "-n", namespace, "--timeout", "300")
        init_log = kubectl("logs", "-n", namespace, "deployment/product-embeddings", "-c", "download",
                           check=False).stdout
        print(init_log)
        assert code == 0, err
        events = [json.loads(line)["event"] for line in init_log.splitlines() if line.startswith("{")]
        assert "download-done" in events and events[-1] == "downloaded"
        manifest = json.loads((project / "build" / "nbship.json").read_text())
        example = manifest["example"]
        status, answer = call_service(namespace, "product-embeddings", "/predict", example["request"], settle=15,
                                      timeout=30)
        assert status == 200, status
        from nbship.compare import same_response

        assert same_response(example["response"], answer) == []
