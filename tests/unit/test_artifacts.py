"""Artifacts referenced by load and parameters cells are found, hashed, and missing ones are errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

from nbship.artifacts import find_artifacts
from nbship.config import Artifact
from nbship.extract import extract_service
from nbship.notebook import parse_notebook
from tests.notebooks import code, write_notebook


def find(tmp_path: Path, *cells: object, declared: list[Artifact] | None = None):  # type: ignore[no-untyped-def]
    path = write_notebook(tmp_path / "nb.ipynb", *cells)
    return find_artifacts(path, extract_service(parse_notebook(path)).cells, declared or [])


def test_existing_relative_paths_are_recorded_with_size_and_sha256(tmp_path: Path) -> None:
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "model.joblib").write_bytes(b"weights")
    (tmp_path / "vocab").mkdir()
    (tmp_path / "vocab" / "a.txt").write_text("a")
    found, remote, problems = find(
        tmp_path,
        code("import joblib\nmodel = joblib.load('artifacts/model.joblib')\nmode = 'rb'", "load"),
        code("vocab_dir = 'vocab'\nencoding = 'utf-8'", "parameters"),
        code("data = open('artifacts/model.joblib')"),  # untagged cells are not read
    )
    assert not problems and not remote
    assert [(a.path, a.size, a.is_dir, a.cell) for a in found] == [
        ("artifacts/model.joblib", 7, False, 1), ("vocab", 1, True, 2)]
    assert found[0].sha256 == hashlib.sha256(b"weights").hexdigest()


def test_a_missing_or_escaping_or_absolute_path_is_an_error(tmp_path: Path) -> None:
    nb_dir = tmp_path / "nb"
    nb_dir.mkdir()
    (tmp_path / "outside.pkl").write_bytes(b"x")
    _, _, problems = find(
        nb_dir,
        code("import joblib\nm = joblib.load('artifacts/gone.joblib')\nn = joblib.load('../outside.pkl')\n"
             "o = joblib.load('/srv/models/m.pt')", "load"),
    )
    assert [(p.location.line, p.message) for p in problems] == [
        (2, "'artifacts/gone.joblib' does not exist beside the notebook"),
        (3, "'../outside.pkl' is outside the notebook's folder"),
        (4, "'/srv/models/m.pt' is an absolute path, which will not exist in the image"),
    ]


def test_remote_artifacts_are_not_copied_and_a_local_copy_must_match(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "enc.npz").write_bytes(b"local")
    good = hashlib.sha256(b"local").hexdigest()
    declared = [Artifact(path="weights/enc.npz", uri="https://example.invalid/enc.npz", sha256=good)]
    found, remote, problems = find(tmp_path, code("import numpy as np\nw = np.load('weights/enc.npz')", "load"),
                                   declared=declared)
    assert not found and not problems and [r.path for r in remote] == ["weights/enc.npz"]
    declared = [Artifact(path="weights/enc.npz", uri="https://example.invalid/enc.npz", sha256="0" * 64)]
    _, _, problems = find(tmp_path, code("x = 1", "load"), declared=declared)
    assert [p.message for p in problems] == [
        "artifacts: the local copy of weights/enc.npz does not match its declared sha256"]


def test_pickled_models_name_the_packages_they_need_without_being_unpickled(tmp_path: Path) -> None:
    import pickle
    from collections import OrderedDict
    from fractions import Fraction

    import joblib
    import numpy as np

    from nbship.artifacts import pickled_modules

    joblib.dump({"weights": np.arange(3.0), "kind": OrderedDict(a=1)}, tmp_path / "model.joblib")
    (tmp_path / "model.pkl").write_bytes(pickle.dumps([Fraction(1, 3)], protocol=2))  # GLOBAL, not STACK_GLOBAL
    (tmp_path / "notes.txt").write_text("not a pickle")
    (tmp_path / "broken.pkl").write_bytes(b"\x80\x05garbage")
    assert pickled_modules(tmp_path / "model.joblib") == {"joblib", "numpy", "collections"}
    assert pickled_modules(tmp_path / "model.pkl") == {"fractions"}
    assert pickled_modules(tmp_path / "notes.txt") == set()
    assert pickled_modules(tmp_path / "broken.pkl") == set()


def test_a_copied_artifact_may_not_share_the_writable_folder_of_a_remote_one(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "vocab.json").write_text("{}")
    declared = [Artifact(path="weights/enc.npz", uri="https://example.invalid/enc.npz", sha256="a" * 64)]
    _, _, problems = find(tmp_path, code("import json\nvocab = json.load(open('weights/vocab.json'))", "load"),
                          declared=declared)
    assert [p.location.line for p in problems] == [None]
    assert "shares a folder with a remote artifact" in problems[0].message
