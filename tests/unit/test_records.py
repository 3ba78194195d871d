"""The two files that cross a process boundary, and the image reference they carry: one reader, one writer each."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nbship.image.ref import ImageRef
from nbship.runtime.manifest import MANIFEST_VERSION, ManifestError, read_manifest

SERVICE = Path(__file__).resolve().parents[1] / "fixtures" / "service"
GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@pytest.mark.parametrize("example", ["tabular-churn", "text-sentiment", "gpu-embeddings"])
def test_the_rendered_manifest_reads_back_into_the_same_bytes(example: str) -> None:
    from nbship.runtime.manifest import manifest_text

    text = (GOLDEN / example / "nbship.json").read_text(encoding="utf-8")
    manifest = read_manifest(GOLDEN / example)
    assert manifest_text(manifest) == text
    assert manifest.image.repository and manifest.stages["predict"] == "inference"


def test_a_manifest_of_another_version_is_refused_by_name(tmp_path: Path) -> None:
    document = json.loads((SERVICE / "nbship.json").read_text(encoding="utf-8"))
    (tmp_path / "nbship.json").write_text(json.dumps({**document, "manifest_version": MANIFEST_VERSION + 1}))
    with pytest.raises(ManifestError, match=f"manifest_version {MANIFEST_VERSION + 1} is not {MANIFEST_VERSION}"):
        read_manifest(tmp_path)
    del document["package"]
    (tmp_path / "nbship.json").write_text(json.dumps(document))
    with pytest.raises(ManifestError, match="not a valid manifest .*package"):
        read_manifest(tmp_path)


def test_the_runtime_reads_its_manifest_with_relative_imports_only(tmp_path: Path) -> None:
    """The copy in the build context is ``nbship_runtime``: the manifest's reader must work there, without nbship."""
    import shutil

    shutil.copytree(Path(__file__).resolve().parents[2] / "nbship" / "runtime", tmp_path / "nbship_runtime")
    shutil.copy(SERVICE / "nbship.json", tmp_path / "nbship.json")
    code = ("import sys, pathlib; sys.modules['nbship'] = None; from nbship_runtime.manifest import read_manifest; "
            "print(read_manifest(pathlib.Path('.')).name)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == json.loads((SERVICE / "nbship.json").read_text())["name"]


@pytest.mark.parametrize(
    ("text", "repository", "tag", "digest", "registry"),
    [
        ("churn", "churn", None, None, "docker.io"),
        ("churn:1.0-abc", "churn", "1.0-abc", None, "docker.io"),
        ("127.0.0.1:5000/churn", "127.0.0.1:5000/churn", None, None, "127.0.0.1:5000"),
        ("127.0.0.1:5000/ml/churn:1.0", "127.0.0.1:5000/ml/churn", "1.0", None, "127.0.0.1:5000"),
        ("reg.example.com/churn@sha256:" + "a" * 64, "reg.example.com/churn", None, "sha256:" + "a" * 64,
         "reg.example.com"),
        ("localhost/churn:good@sha256:" + "b" * 64, "localhost/churn", "good", "sha256:" + "b" * 64, "localhost"),
    ],
)
def test_image_references_parse_and_print_back(
    text: str, repository: str, tag: str | None, digest: str | None, registry: str
) -> None:
    ref = ImageRef.parse(text)
    assert (ref.repository, ref.tag, ref.digest, ref.registry) == (repository, tag, digest, registry)
    assert str(ref) == text
    assert ref.pinned == (f"{repository}@{digest}" if digest else text)
