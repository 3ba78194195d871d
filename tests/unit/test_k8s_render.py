"""The rendered Kubernetes manifests: what a platform team's review checks, asserted on the YAML itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from nbship.analysis import EnvRead, Parameter
from nbship.artifacts import ArtifactRef, RemoteArtifact
from nbship.config import Config
from nbship.errors import CheckFailedError, ConfigError
from nbship.render.k8s import env_findings, render_manifests
from nbship.spec import ProjectSpec, startup_budget


def make_spec(config: dict[str, Any] | None = None, **fields: Any) -> ProjectSpec:
    values: dict[str, Any] = dict(
        name="churn-model", version="1.0.0", package="churn_model", python_version="3.11",
        notebook_file="churn.ipynb", notebook_path=Path("/nowhere/churn.ipynb"), notebook_sha256="0" * 64,
        modules=(), parameters=(Parameter("threshold", 0.5, 3, 1), Parameter("labels", ["no", "yes"], 3, 2)),
        settings=(), artifacts=(), remote_artifacts=(), example=None,
        config=Config.model_validate({"name": "churn-model", **(config or {})}), nbship_version="0.0.0+test",
    )
    values.update(fields)
    return ProjectSpec(**values)


def objects(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Base objects by kind."""
    found = {}
    for path, text in files.items():
        if path.startswith("k8s/base/") and not path.endswith("kustomization.yaml"):
            for doc in yaml.safe_load_all(text):
                found[doc["kind"]] = doc
    return found


def container(files: dict[str, str]) -> dict[str, Any]:
    return dict(objects(files)["Deployment"]["spec"]["template"]["spec"]["containers"][0])


def test_runs_as_non_root_with_a_read_only_root_and_nothing_escalates() -> None:
    deployment = objects(render_manifests(make_spec()))["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["fsGroup"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == "churn-model"
    security = pod["containers"][0]["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts == {"/tmp"}  # the only writable path


def test_gpu_limits_node_selector_and_toleration_only_when_asked() -> None:
    plain = render_manifests(make_spec())
    assert "nvidia.com/gpu" not in "".join(plain.values())
    assert "nodeSelector" not in plain["k8s/base/deployment.yaml"]
    gpu = render_manifests(make_spec({"gpu": {"count": 2}}))
    pod = objects(gpu)["Deployment"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["requests"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    custom = render_manifests(make_spec({"gpu": {"node_selector": {"pool": "a100"}, "tolerations": []}}))
    custom_pod = objects(custom)["Deployment"]["spec"]["template"]["spec"]
    assert custom_pod["nodeSelector"] == {"pool": "a100"} and not custom_pod["tolerations"]


def test_resources_come_from_the_config() -> None:
    resources = container(render_manifests(make_spec({"resources": {"requests": {"cpu": "2", "memory": "3Gi"}}})))
    assert resources["resources"]["requests"] == {"cpu": "2", "memory": "3Gi"}
    assert resources["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}  # documented defaults


def test_probes_use_the_served_routes_on_the_configured_port() -> None:
    files = render_manifests(make_spec({"port": 9000}))
    model = container(files)
    assert model["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    assert {"name": "NBSHIP_PORT", "value": "9000"} in model["env"]
    assert model["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert model["startupProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert model["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    template = objects(files)["Deployment"]["spec"]["template"]["metadata"]
    assert template["annotations"]["prometheus.io/port"] == "9000"
    assert objects(files)["Service"]["spec"]["ports"][0]["targetPort"] == "http"


@pytest.mark.parametrize(
    ("configured", "load", "seconds", "source"),
    [(None, None, 300, "default"), (None, 40.0, 150, "measured"), (None, 1.0, 60, "measured"),
     (500, 40.0, 500, "config")],
)
def test_startup_budget_is_sized_from_the_measured_load_time_and_the_config_wins(
    configured: int | None, load: float | None, seconds: int, source: str
) -> None:
    budget = startup_budget(configured, load)
    assert (budget.seconds, budget.source) == (seconds, source)


@pytest.mark.parametrize(("configured", "seconds", "source"), [(None, 300, "default"), (500, 500, "config")])
def test_rendered_startup_probe_carries_the_budget_and_its_source(
    configured: int | None, seconds: int, source: str
) -> None:
    config = {"timeouts": {"startup_seconds": configured}} if configured else {}
    files = render_manifests(make_spec(config))
    deployment = objects(files)["Deployment"]
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] == seconds
    assert deployment["metadata"]["annotations"]["nbship.io/startup-source"] == source
    # A healthy but slow start must not count as a failed rollout.
    assert deployment["spec"]["progressDeadlineSeconds"] > seconds


def test_graceful_shutdown_pause_and_rolling_update_keep_capacity() -> None:
    files = render_manifests(make_spec({"timeouts": {"shutdown_grace_seconds": 45}}))
    deployment = objects(files)["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["containers"][0]["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}
    assert pod["terminationGracePeriodSeconds"] == 50
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert [c["topologyKey"] for c in pod["topologySpreadConstraints"]] == [
        "kubernetes.io/hostname", "topology.kubernetes.io/zone"]


def test_secrets_are_references_and_no_secret_object_or_value_is_rendered() -> None:
    spec = make_spec({"secrets": [{"env": "DB_PASSWORD", "secret": "churn-db", "key": "password"}],
                      "env": {"LOG_LEVEL": "debug"}})
    files = render_manifests(spec)
    text = "".join(files.values())
    assert "kind: Secret" not in text
    env = {e["name"]: e for e in container(files)["env"]}
    assert env["DB_PASSWORD"]["valueFrom"] == {"secretKeyRef": {"name": "churn-db", "key": "password"}}
    literals = yaml.safe_load(files["k8s/base/kustomization.yaml"])["configMapGenerator"][0]["literals"]
    assert literals == ["LOG_LEVEL=debug", 'NBSHIP_PARAM_LABELS=["no", "yes"]', "NBSHIP_PARAM_THRESHOLD=0.5"]
    assert all(not lit.startswith("DB_PASSWORD") for lit in literals)


def test_every_env_read_has_a_source_and_an_unsourced_read_names_cell_and_line() -> None:
    reads = (EnvRead("API_TOKEN", False, 7, 3), EnvRead("BATCH", True, 7, 4))
    with pytest.raises(CheckFailedError) as raised:
        render_manifests(make_spec(env_reads=reads))
    (finding,) = raised.value.findings
    assert str(finding.location) == "churn.ipynb, cell 7, line 3" and "API_TOKEN" in finding.message
    assert "secrets:" in (finding.hint or "")
    assert [str(f) for f in env_findings(make_spec(env_reads=reads))] == [str(finding)]  # what `check` reports
    sourced = make_spec({"secrets": [{"env": "API_TOKEN", "secret": "s", "key": "k"}]}, env_reads=reads)
    files = render_manifests(sourced)
    assert "# Read by the code with a default, and not set here: BATCH" in files["k8s/base/deployment.yaml"]
    names = {e["name"] for e in container(files)["env"]}
    assert {"API_TOKEN", "NBSHIP_PARAM_THRESHOLD"} <= names


def test_rendered_image_is_the_placeholder_the_deploy_layer_pins() -> None:
    kustomization = yaml.safe_load(render_manifests(make_spec())["k8s/base/kustomization.yaml"])
    assert kustomization["images"][0] == {"name": "churn-model", "newName": "churn-model", "newTag": "1.0.0"}


def test_autoscaler_owns_replicas_and_overlays_set_the_bounds() -> None:
    files = render_manifests(make_spec({"autoscaling": {"min_replicas": 3, "max_replicas": 8,
                                                        "memory_utilization": 80, "in_flight_target": 4}}))
    assert "replicas" not in objects(files)["Deployment"]["spec"]
    hpa = objects(files)["HorizontalPodAutoscaler"]
    assert [m.get("resource", {}).get("name") or m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"]] == [
        "cpu", "memory", "nbship_requests_in_flight"]
    production = yaml.safe_load(files["k8s/overlays/production/kustomization.yaml"])
    staging = yaml.safe_load(files["k8s/overlays/staging/kustomization.yaml"])
    assert (production["namespace"], staging["namespace"]) == ("churn-model", "churn-model-staging")
    assert [op["value"] for op in yaml.safe_load(production["patches"][0]["patch"])] == [3, 8]
    assert [op["value"] for op in yaml.safe_load(staging["patches"][0]["patch"])] == [1, 2]

    fixed = render_manifests(make_spec({"autoscaling": {"enabled": False}, "replicas": 4}))
    assert objects(fixed)["Deployment"]["spec"]["replicas"] == 4 and "HorizontalPodAutoscaler" not in objects(fixed)
    assert yaml.safe_load(fixed["k8s/overlays/staging/kustomization.yaml"])["replicas"][0]["count"] == 1


def test_keda_scaled_object_replaces_the_hpa() -> None:
    found = objects(render_manifests(make_spec({"autoscaling": {"keda": True, "in_flight_target": 4}})))
    assert "HorizontalPodAutoscaler" not in found
    scaled = found["ScaledObject"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == "churn-model"
    assert [t["type"] for t in scaled["spec"]["triggers"]] == ["cpu", "prometheus"]


def test_network_policy_and_ingress_only_when_enabled() -> None:
    plain = objects(render_manifests(make_spec()))
    assert "NetworkPolicy" not in plain and "Ingress" not in plain
    found = objects(render_manifests(make_spec({
        "network_policy": {"enabled": True, "allow_namespaces": ["ingress-nginx", "monitoring"]},
        "ingress": {"enabled": True, "host": "churn.example.com", "tls_secret": "churn-tls"},
    })))
    sources = found["NetworkPolicy"]["spec"]["ingress"][0]["from"]
    assert [s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for s in sources] == [
        "ingress-nginx", "monitoring"]
    rule = found["Ingress"]["spec"]["rules"][0]
    assert rule["host"] == "churn.example.com" and rule["http"]["paths"][0]["backend"]["service"]["name"] == (
        "churn-model")
    closed = objects(render_manifests(make_spec({"network_policy": {"enabled": True}})))["NetworkPolicy"]
    assert closed["spec"]["ingress"] == []  # enabled with no namespace admits nothing


def test_remote_artifacts_get_a_writable_folder_and_a_top_level_one_is_refused() -> None:
    remote = (RemoteArtifact("weights/encoder.npz", "https://x/e.npz", "0" * 64),)
    mounts = container(render_manifests(make_spec(remote_artifacts=remote)))["volumeMounts"]
    assert {m["mountPath"] for m in mounts} == {"/tmp", "/app/weights"}
    with pytest.raises(ConfigError, match="encoder.npz: a remote artifact needs its own folder"):
        render_manifests(make_spec(remote_artifacts=(RemoteArtifact("encoder.npz", "https://x", "0" * 64),)))
    shipped = (ArtifactRef("weights/vocab.json", 10, "0" * 64, 4),)
    with pytest.raises(ConfigError, match="also holds the shipped artifact weights/vocab.json"):
        render_manifests(make_spec(remote_artifacts=remote, artifacts=shipped))


def test_rendering_is_deterministic_and_labelled() -> None:
    spec = make_spec({"env": {"B": "2", "A": "1"}})
    first, second = render_manifests(spec), render_manifests(spec)
    assert first == second
    for kind, obj in objects(first).items():
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "churn-model", kind
        assert labels["app.kubernetes.io/managed-by"] == "nbship", kind
