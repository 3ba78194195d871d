"""The pin block: the base kustomization names the image to deploy and where it came from, rewritable in place."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from nbship.check import inspect_notebook
from nbship.render import build_files
from nbship.render.pin import KUSTOMIZATION, pin_manifests, read_pins, split_image
from tests.conftest import EXAMPLES

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def context(tmp_path: Path) -> Path:
    notebook = EXAMPLES / "tabular-churn" / "churn.ipynb"
    result = inspect_notebook(notebook, verify=False)
    assert result.spec is not None
    spec = dataclasses.replace(result.spec, nbship_version="0.0.0+test")
    for name, text in build_files(spec).items():
        if name.startswith("k8s/") and isinstance(text, str):
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_split_image_keeps_a_registry_port_out_of_the_tag() -> None:
    assert split_image("127.0.0.1:5000/churn:1.0.0-abc") == ("127.0.0.1:5000/churn", "1.0.0-abc", None)
    assert split_image(f"127.0.0.1:5000/churn@{DIGEST}") == ("127.0.0.1:5000/churn", None, DIGEST)
    assert split_image("churn") == ("churn", None, None)


def test_pinning_rewrites_only_the_pin_block_and_keeps_earlier_provenance(context: Path) -> None:
    path = context / KUSTOMIZATION
    before = path.read_text(encoding="utf-8")
    deployment, placeholder, provenance = read_pins(context)
    assert (deployment, placeholder) == ("churn-model", "churn-model")
    assert set(provenance) == {"notebook-sha256", "image"}
    pin_manifests(context, f"127.0.0.1:5000/churn@{DIGEST}", {"git-commit": "0123abc", "lock-sha256": "f" * 64})
    after = path.read_text(encoding="utf-8")
    head = before.split("# nbship pins")[0]
    assert after.startswith(head)  # the comments and the ConfigMap generator untouched
    document = yaml.safe_load(after)
    assert document["images"] == [{"name": "churn-model", "newName": "127.0.0.1:5000/churn", "digest": DIGEST}]
    _, _, provenance = read_pins(context)
    assert provenance == {"notebook-sha256": provenance["notebook-sha256"], "lock-sha256": "f" * 64,
                          "image": f"127.0.0.1:5000/churn@{DIGEST}", "git-commit": "0123abc"}
    pin_manifests(context, f"127.0.0.1:5000/churn@{DIGEST}", {"git-commit": "0123abc", "lock-sha256": "f" * 64})
    assert path.read_text(encoding="utf-8") == after  # idempotent


def test_a_tag_written_beside_the_digest_stays_in_the_image(context: Path) -> None:
    pin_manifests(context, f"127.0.0.1:5000/churn:good@{DIGEST}", {})
    document = yaml.safe_load((context / KUSTOMIZATION).read_text(encoding="utf-8"))
    assert document["images"][0] == {"name": "churn-model", "newName": "127.0.0.1:5000/churn:good", "digest": DIGEST}


def test_an_unpinnable_file_is_refused(context: Path) -> None:
    path = context / KUSTOMIZATION
    path.write_text(path.read_text(encoding="utf-8").split("# nbship pins")[0], encoding="utf-8")
    with pytest.raises(ValueError, match="render the context again"):
        pin_manifests(context, "r/churn:1", {})


def test_kustomize_writes_the_digest_and_the_annotations_the_pods_read(context: Path) -> None:
    kubectl = shutil.which("kubectl", path="/opt/k8s-bin:/usr/local/bin:/usr/bin")
    if kubectl is None:
        pytest.skip("no kubectl to run kustomize")
    pin_manifests(context, f"127.0.0.1:5000/churn@{DIGEST}", {"git-commit": "0123abc"})
    built = subprocess.run([kubectl, "kustomize", str(context / "k8s" / "overlays" / "staging")],
                           capture_output=True, text=True, check=True)
    (deployment,) = [d for d in yaml.safe_load_all(built.stdout) if d and d["kind"] == "Deployment"]
    template = deployment["spec"]["template"]
    container = next(c for c in template["spec"]["containers"] if c["name"] == "model")
    assert container["image"] == f"127.0.0.1:5000/churn@{DIGEST}"
    annotations = template["metadata"]["annotations"]
    assert annotations["nbship.io/git-commit"] == "0123abc" and annotations["prometheus.io/scrape"] == "true"
    env = {e["name"]: e for e in container["env"]}
    field = env["NBSHIP_GIT_COMMIT"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert field == "metadata.annotations['nbship.io/git-commit']"


def test_render_pins_the_content_tag_the_build_will_give_and_the_locks_hash(tmp_path: Path) -> None:
    import hashlib

    from nbship.image.builder import context_hash, image_tags
    from nbship.project import render_project

    shutil.copytree(EXAMPLES / "tabular-churn", tmp_path / "churn")
    out = tmp_path / "ctx"
    render_project(tmp_path / "churn" / "churn.ipynb", out, verify=False, frozen=True)
    _, _, provenance = read_pins(out)
    assert provenance["image"] == image_tags("churn-model", "1.0.0", context_hash(out))[0]
    assert provenance["image"].startswith("churn-model:1.0.0-")
    assert provenance["lock-sha256"] == hashlib.sha256((out / "requirements.lock").read_bytes()).hexdigest()
    document = yaml.safe_load((out / KUSTOMIZATION).read_text(encoding="utf-8"))
    assert document["images"][0]["newTag"] == provenance["image"].split(":", 1)[1]
    render_project(tmp_path / "churn" / "churn.ipynb", out, verify=False, frozen=True)
    assert read_pins(out)[2] == provenance  # rendering again names the same image
