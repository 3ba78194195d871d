"""The parity run observes the files the code opens in the notebook's folder: what it reads ships."""

from __future__ import annotations

import json
from pathlib import Path

from nbship.project import check_notebook, render_project
from tests.notebooks import code, write_notebook

LOAD = """\
import json, os
from pathlib import Path
tables = {}
for name in ["vocab"]:
    tables[name] = json.load(open(Path("data") / f"{name}.json"))
vocab = tables["vocab"]
notes = "extras/notes.txt"

def reload_later():
    return open(os.path.join(os.environ.get("MODEL_HOME", "m"), "late.json")).read()
"""


def notebook(folder: Path) -> Path:
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "vocab.json").write_text(json.dumps({"a": 1, "b": 2}))
    (folder / "data" / "train.csv").write_text("x\n1\n")  # never read: never shipped
    (folder / "extras").mkdir()
    (folder / "extras" / "notes.txt").write_text("n")
    return write_notebook(
        folder / "nb.ipynb",
        code(LOAD, "load"),
        code("def predict(inputs):\n    return {'id': vocab[inputs['w']]}", "predict"),
        code("example = {'w': 'b'}\npredict(example)", "example", result={"id": 2}),
    )


def warnings(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [f"{f.code} {f.location}: {f.message}" for f in result.findings if f.severity == "warning"
            and f.code.startswith("artifact")]


def test_opened_files_ship_unopened_ones_and_unresolved_expressions_are_pointed_out(tmp_path: Path) -> None:
    result = check_notebook(notebook(tmp_path))
    assert not result.errors, result.findings
    assert result.spec is not None
    assert [(a.path, a.cell, a.line) for a in result.spec.artifacts] == [
        ("data/vocab.json", 1, 5), ("extras/notes.txt", 1, 7)]
    assert warnings(result) == [
        "artifact-observed nb.ipynb, cell 1, line 5: 'data/vocab.json' is read by the exported code but no path "
        "in the cells names it: it ships as an artifact",
        "artifact-unopened nb.ipynb, cell 1, line 7: 'extras/notes.txt' is named here but the example run never "
        "opened it; it ships anyway",
        "artifact-unresolved nb.ipynb, cell 1, line 10: cannot tell which file "
        "os.path.join(os.environ.get('MODEL_HOME', 'm'), 'late.json') names, and the example run opened none "
        "that it could",
    ]
    unresolved = next(f for f in result.findings if f.code == "artifact-unresolved")
    assert unresolved.hint is not None and unresolved.hint.endswith("artifacts:\n    - path: late.json")


def test_without_the_parity_run_every_unresolved_expression_is_a_warning(tmp_path: Path) -> None:
    result = check_notebook(notebook(tmp_path), verify=False)
    assert [w.split(":")[0] for w in warnings(result)] == [
        "artifact-unresolved nb.ipynb, cell 1, line 5", "artifact-unresolved nb.ipynb, cell 1, line 10"]


def test_the_rendered_context_carries_what_the_code_opened(tmp_path: Path) -> None:
    render_project(notebook(tmp_path / "nb"), tmp_path / "ctx", lock=False)
    manifest = json.loads((tmp_path / "ctx" / "nbship.json").read_text())
    assert [a["path"] for a in manifest["artifacts"]] == ["data/vocab.json", "extras/notes.txt"]
    assert (tmp_path / "ctx" / "data" / "vocab.json").is_file()
    assert not (tmp_path / "ctx" / "data" / "train.csv").exists()


def test_an_observed_pickle_names_the_modules_nbship_lock_would_miss(tmp_path: Path) -> None:
    import pickle
    from fractions import Fraction

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.pkl").write_bytes(pickle.dumps(Fraction(1, 3)))
    path = write_notebook(
        tmp_path / "nb.ipynb",
        code("import os, pickle\nname = os.environ.get('NBSHIP_TEST_UNSET', 'm')\n"
             "model = pickle.load(open(f'models/{name}.pkl', 'rb'))", "load"),
        code("def predict(inputs):\n    return {'y': float(model)}", "predict"),
        code("example = {}\npredict(example)", "example", result={"y": 1 / 3}),
    )
    result = check_notebook(path)
    assert not result.errors, result.findings
    (observed,) = [f for f in result.findings if f.code == "artifact-observed"]
    assert observed.hint == ("Add it to nbship.yaml (its pickle needs fractions, which `nbship lock` locks only "
                             "for artifacts it can see):\n  artifacts:\n    - path: models/m.pkl")
