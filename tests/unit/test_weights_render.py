"""Remote weights in the config, the lock and the manifests: schemes checked at `check`, one client library per
declared scheme, an init container of the same image, credentials mounted only there, and the download volume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from nbship.artifacts import RemoteArtifact, download_requirements
from nbship.config import Artifact, load_config
from nbship.deploy.apply import Target, deploy_layer
from nbship.deploy.layer import choose_image
from nbship.errors import ConfigError
from nbship.image.record import BuildRecord, write_build_record
from nbship.image.ref import ImageRef
from nbship.image.smoke import SmokeResult
from nbship.render.k8s import progress_deadline, render_manifests
from nbship.spec import startup_budget
from tests.unit.test_k8s_render import make_spec, objects

SHA = "a" * 64
S3 = RemoteArtifact("weights/model.bin", "s3://models/enc/model.bin", SHA, "s3-models")
HF = RemoteArtifact("tok/tokenizer.json", "hf://org/enc/tokenizer.json@v1", SHA, "hub-token")


def config_error(tmp_path: Path, text: str) -> str:
    (tmp_path / "nbship.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nb.ipynb")
    return info.value.message


@pytest.mark.parametrize(("artifact", "message"), [
    (f"{{path: w/m.bin, uri: 'gs://b/m.bin', sha256: {SHA}}}",
     "nbship.yaml, line 2: artifacts.0.uri: unknown scheme gs://; nbship downloads https://"),
    (f"{{path: w/m.bin, uri: 'hf://org/repo/m.bin', sha256: {SHA}}}", "artifacts.0.uri: hf://org/repo/m.bin: expected"),
    ("{path: w/m.bin, credentials: {secret: s3-models}}", "`credentials` only applies to a remote artifact"),
    (f"{{path: w/m.bin, uri: 'https://x/m.bin', sha256: {SHA}, credentials: {{secret: web}}}}",
     "`credentials` applies to s3:// and hf://"),
    (f"{{path: w/m.bin, uri: 's3://b/m.bin', sha256: {SHA}, credentials: {{secret: S3_Models}}}}",
     "artifacts.0.credentials.secret: must be a Kubernetes Secret name"),
])
def test_an_unknown_scheme_or_a_misplaced_credential_is_a_config_error(
    tmp_path: Path, artifact: str, message: str
) -> None:
    assert message in config_error(tmp_path, f"artifacts:\n  - {artifact}\n")


def test_the_download_volume_is_one_kind_and_the_size_a_quantity(tmp_path: Path) -> None:
    assert "exactly one of `claim`" in config_error(tmp_path, "downloads:\n  volume: {}\n")
    assert "exactly one of `claim`" in config_error(tmp_path, "downloads:\n  volume: {claim: c, ephemeral: true}\n")
    assert "Kubernetes quantity" in config_error(tmp_path, "downloads:\n  size_limit: lots\n")


def test_each_scheme_brings_its_client_library_and_only_that() -> None:
    def declared(*uris: str) -> list[Artifact]:
        return [Artifact(path=f"w/{i}.bin", uri=u, sha256=SHA) for i, u in enumerate(uris)]

    assert download_requirements(declared("https://x/a.bin")) == ()
    assert download_requirements(declared("s3://b/k", "s3://b/j")) == ("boto3>=1.28,<2",)
    both = download_requirements(declared("s3://b/k", "hf://o/r/f@v1"))
    assert both == ("huggingface_hub>=0.20,<3", "boto3>=1.28,<2")
    assert download_requirements([Artifact(path="model.joblib")]) == ()


def pod(remote: tuple[RemoteArtifact, ...], config: dict[str, Any] | None = None) -> Any:
    files = render_manifests(make_spec(config, remote_artifacts=remote))
    return objects(files)["Deployment"]


def test_no_remote_artifact_no_init_container() -> None:
    spec = pod(())["spec"]["template"]["spec"]
    assert "initContainers" not in spec and [v["name"] for v in spec["volumes"]] == ["tmp"]


def test_the_init_container_runs_the_same_image_and_alone_sees_the_credentials() -> None:
    deployment = pod((S3, HF), {"env": {"AWS_ENDPOINT_URL": "http://minio:9000"}})
    spec = deployment["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    (model,) = spec["containers"]
    assert init["image"] == model["image"] and init["command"] == ["python", "-m", "nbship_runtime.download"]
    assert init["securityContext"] == model["securityContext"]
    env = {e["name"]: e.get("value") for e in init["env"]}
    assert list(env) == ["NBSHIP_DOWNLOAD_ATTEMPTS", "NBSHIP_DOWNLOAD_DIR", "AWS_ENDPOINT_URL"]  # no parameters
    secret_mounts = {m["mountPath"]: m for m in init["volumeMounts"] if m["name"].startswith("credentials")}
    assert sorted(secret_mounts) == ["/var/run/secrets/nbship/hub-token", "/var/run/secrets/nbship/s3-models"]
    assert all(m["readOnly"] for m in secret_mounts.values())
    assert not [m for m in model["volumeMounts"] if m["name"].startswith("credentials")]
    assert "envFrom" not in model and not [e for e in model["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    secrets = {v["secret"]["secretName"]: v["secret"]["defaultMode"] for v in spec["volumes"] if "secret" in v}
    assert secrets == {"hub-token": 0o440, "s3-models": 0o440}
    # the model container sees each download folder where the code opens it; the init container fills them
    # through the whole volume, creating the folders as the service's user (a subPath kubelet creates is root's)
    shared = {(m["mountPath"], m["subPath"]) for m in model["volumeMounts"] if m["name"] == "downloads"}
    assert shared == {("/app/tok", "tok"), ("/app/weights", "weights")}
    (whole,) = [m for m in init["volumeMounts"] if m["name"] == "downloads"]
    assert whole == {"name": "downloads", "mountPath": "/var/lib/nbship/downloads"}
    assert env["NBSHIP_DOWNLOAD_DIR"] == "/var/lib/nbship/downloads"


def test_the_download_space_is_limited_or_kept_on_a_claim_or_an_ephemeral_volume() -> None:
    def volume(config: dict[str, Any]) -> dict[str, Any]:
        spec = pod((S3,), config)["spec"]["template"]["spec"]
        return next(v for v in spec["volumes"] if v["name"] == "downloads")

    assert volume({"downloads": {"size_limit": "40Gi"}})["emptyDir"] == {"sizeLimit": "40Gi"}
    assert volume({"downloads": {"volume": {"claim": "weights-cache"}}})["persistentVolumeClaim"] == {
        "claimName": "weights-cache"}
    claim = pod((S3,), {"downloads": {"volume": {"claim": "weights-cache"}}})["spec"]["template"]["spec"]
    assert {m["subPath"] for m in claim["containers"][0]["volumeMounts"] if "subPath" in m} == {"churn-model/weights"}
    init_env = {e["name"]: e.get("value") for e in claim["initContainers"][0]["env"]}
    assert init_env["NBSHIP_DOWNLOAD_DIR"] == "/var/lib/nbship/downloads/churn-model"
    template = volume({"downloads": {"size_limit": "20Gi", "volume": {"ephemeral": True, "storage_class": "ssd"}}})
    claim_spec = template["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert claim_spec["resources"]["requests"]["storage"] == "20Gi" and claim_spec["storageClassName"] == "ssd"


def test_startup_and_progress_deadlines_include_the_measured_download_and_warm_up(tmp_path: Path) -> None:
    smoke = SmokeResult(True, load_seconds=10.0, warmup_seconds=5.0, download_seconds=200.0)
    assert smoke.startup_seconds == 215.0
    write_build_record(tmp_path / "nbship-build.json", BuildRecord(
        image=ImageRef.parse("r/m:1"), tags=("r/m:1",), image_id="sha256:1", context_hash="h", reused=False,
        notebook_sha256="n", lock_sha256="l", base_image="python:3.11-slim", platform=None, image_bytes=None,
        base_image_bytes=None, durations={}, smoke=smoke))
    choice = choose_image(tmp_path)
    assert (choice.load_seconds, choice.download_seconds) == (215.0, 200.0)

    def ops(remote: tuple[RemoteArtifact, ...], config: dict[str, Any] | None = None) -> dict[str, Any]:
        folder = tmp_path / f"ctx-{len(list(tmp_path.iterdir()))}"
        for path, text in render_manifests(make_spec(config, remote_artifacts=remote)).items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(text)
        with deploy_layer(Target(folder, "production"), choice) as layer:
            patch = yaml.safe_load((layer / "kustomization.yaml").read_text())["patches"][0]["patch"]
        return {op["path"]: op.get("value") for op in yaml.safe_load(patch)}

    measured = ops((S3,))
    budget = startup_budget(None, 215.0).seconds
    assert budget == 675 and measured["/metadata/annotations/nbship.io~1startup-seconds"] == "675"
    assert measured["/spec/progressDeadlineSeconds"] == 675 + (200 * 3 + 30) + 120
    configured = ops((S3,), {"timeouts": {"startup_seconds": 100}})  # the budget stays; the deadline still grows
    assert configured["/spec/progressDeadlineSeconds"] == 100 + 630 + 120
    assert "/metadata/annotations/nbship.io~1startup-seconds" not in configured
    unmeasured = pod((S3,))
    default = startup_budget(None, None).seconds
    assert unmeasured["spec"]["progressDeadlineSeconds"] == progress_deadline(default, None, True) == 300 + 900 + 120
    assert pod(())["spec"]["progressDeadlineSeconds"] == 600
