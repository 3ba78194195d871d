"""Issue 13, point 11: what an artifact folder ships is exactly what its hash covers, and nothing from outside.

Before, a folder artifact holding `keys -> ../../.ssh` shipped `id_rsa` (the copy followed the link, the hash did
not), and `.env` beside the weights shipped too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from nbship.artifacts import find_artifacts
from nbship.check import inspect_notebook
from nbship.config import Artifact
from nbship.errors import NbshipError
from nbship.extract import extract_service
from nbship.notebook import parse_notebook
from nbship.project import render_project
from tests.notebooks import code, write_notebook

Run = Callable[..., tuple[int, str, str]]
LOAD = code("import os\nmodel_dir = 'model'\nnames = sorted(os.listdir(model_dir))", "load")
PREDICT = code("def predict(inputs):\n    return {'files': len(names)}", "predict")


def project(tmp_path: Path) -> Path:
    """A notebook in home/project/ whose load cell reads the folder model/, beside a private home/.ssh/."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("PRIVATE")
    folder = home / "project" / "model"
    folder.mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"w" * 10)
    return write_notebook(home / "project" / "nb.ipynb", LOAD, PREDICT)


def folder_hash(root: Path) -> str:
    """The artifact hash, recomputed from a folder's regular files: path, NUL, sha256 of the content."""
    digest = hashlib.sha256()
    for f in sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(root).parts):
        digest.update(f"{f.relative_to(root).as_posix()}\0{hashlib.sha256(f.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def test_a_symlink_leaving_the_notebooks_folder_is_an_error_naming_it(tmp_path: Path, run_cli: Run) -> None:
    notebook = project(tmp_path)
    (notebook.parent / "model" / "keys").symlink_to("../../.ssh", target_is_directory=True)

    exit_code, _, err = run_cli("check", "--no-verify", notebook)

    assert exit_code == 1
    assert "error: nb.ipynb, cell 1, line 2: model/keys is a symlink that leaves the notebook's folder" in err
    with pytest.raises(NbshipError):
        render_project(notebook, tmp_path / "ctx", verify=False, lock=False)
    assert not (tmp_path / "ctx").exists()


def test_a_declared_artifact_that_links_outside_is_an_error(tmp_path: Path) -> None:
    notebook = project(tmp_path)
    (notebook.parent / "id").symlink_to("../.ssh/id_rsa")

    _, _, problems = find_artifacts(notebook, extract_service(parse_notebook(notebook)).cells,
                                    [Artifact(path="id")])

    assert [p.message for p in problems] == ["artifacts: id is a symlink that leaves the notebook's folder"]


def test_dotfiles_are_left_out_with_a_note_and_the_hash_covers_exactly_what_ships(tmp_path: Path) -> None:
    notebook = project(tmp_path)
    folder = notebook.parent / "model"
    (folder / ".env").write_text("DB_PASSWORD=hunter2")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "token").write_text("t")
    (folder / "tokenizer").mkdir()
    (folder / "tokenizer" / "vocab.txt").write_text("a b c")
    (notebook.parent / "shared.json").write_text("{}")
    (folder / "config.json").symlink_to("../shared.json")  # inside the notebook's folder: followed

    result = inspect_notebook(notebook, verify=False)
    out = render_project(notebook, tmp_path / "ctx", verify=False, lock=False).out

    assert [(f.severity, f.message) for f in result.findings if f.code.startswith("artifact")] == [
        ("warning", "left out of the image: model/.cache/, model/.env (dotfiles in artifact folders are not shipped)")]
    shipped = sorted(p.relative_to(out / "model").as_posix() for p in (out / "model").rglob("*") if p.is_file())
    assert shipped == ["config.json", "tokenizer/vocab.txt", "weights.bin"]
    recorded = json.loads((out / "nbship.json").read_text())["artifacts"]
    assert [(a["path"], a["sha256"]) for a in recorded] == [("model", folder_hash(out / "model"))]
    # the linked file's content is covered: change it and the hash changes
    (notebook.parent / "shared.json").write_text('{"changed": true}')
    assert inspect_notebook(notebook, verify=False).spec.artifacts[0].sha256 != recorded[0]["sha256"]  # type: ignore[union-attr]
