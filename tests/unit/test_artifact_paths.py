"""Artifact paths as people write them: pathlib, os.path.join, +, f-strings, % and .format over constants."""

from __future__ import annotations

from pathlib import Path

from nbship.artifact_paths import path_uses
from nbship.artifacts import find_artifacts
from nbship.extract import extract_service
from nbship.notebook import parse_notebook
from tests.notebooks import code, write_notebook


def find(tmp_path: Path, *cells: object):  # type: ignore[no-untyped-def]
    path = write_notebook(tmp_path / "nb.ipynb", *cells)
    return find_artifacts(path, extract_service(parse_notebook(path)).cells, [])


def files(tmp_path: Path, *names: str) -> None:
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(name.encode())


def test_the_issue_s_pathlib_expression_finds_the_artifact_not_an_error(tmp_path: Path) -> None:
    files(tmp_path, "artifacts/churn.joblib", "artifacts/train.csv")
    found, _, problems = find(tmp_path, code("import joblib\nfrom pathlib import Path\n"
                                             "model = joblib.load(Path('artifacts') / 'churn.joblib')", "load"))
    assert not problems
    assert [(a.path, a.cell, a.line) for a in found] == [("artifacts/churn.joblib", 1, 3)]


def test_every_way_of_building_a_path_over_parameters_and_setup_constants(tmp_path: Path) -> None:
    files(tmp_path, "models/model_v3.joblib", "models/vocab.json", "models/table.csv", "models/labels.json",
          "models/sub/w.npy", "models/enc.onnx", "models/scaler.pkl", "models/big_training_data.csv")
    found, _, problems = find(
        tmp_path,
        code("MODEL_DIR = 'models'\nVERSION = 3", "parameters"),
        code("import os\nfrom pathlib import Path\nBASE = Path.cwd() / MODEL_DIR\nSUFFIX = '.onnx'", "setup"),
        code("import joblib, json, numpy as np, pandas as pd\n"
             "model = joblib.load(os.path.join(MODEL_DIR, f'model_v{VERSION}.joblib'))\n"
             "vocab = json.load(open(MODEL_DIR + '/' + 'vocab.json'))\n"
             "table = pd.read_csv('%s/table.csv' % MODEL_DIR)\n"
             "labels = open('{}/labels.json'.format(MODEL_DIR)).read()\n"
             "weights = np.load(Path(MODEL_DIR).joinpath('sub', 'w.npy'))\n"
             "session = open(BASE / ('enc' + SUFFIX), 'rb')\n"
             "scaler_path = BASE / 'scaler.pkl'\n"
             "scaler = joblib.load(scaler_path)\n"
             "parts = 'a/b'.split('/')", "load"),
    )
    assert not problems
    # MODEL_DIR is only a base for other paths: its folder (with the training data) is not shipped whole
    assert [(a.path, a.line) for a in found] == [
        ("models/enc.onnx", 7), ("models/labels.json", 5), ("models/model_v3.joblib", 2),
        ("models/scaler.pkl", 8), ("models/sub/w.npy", 6), ("models/table.csv", 4), ("models/vocab.json", 3)]


def test_a_built_path_that_exists_nowhere_is_one_error_naming_cell_line_and_expression(tmp_path: Path) -> None:
    files(tmp_path, "models/other.joblib")
    _, _, problems = find(
        tmp_path,
        code("MODEL_DIR = 'models'", "parameters"),
        code("import joblib\nfrom pathlib import Path\nmodel = joblib.load(Path(MODEL_DIR) / 'churn.joblib')",
             "load"),
    )
    assert [(str(p.location), p.message) for p in problems] == [
        ("nb.ipynb, cell 2, line 3",
         "'models/churn.joblib' (Path(MODEL_DIR) / 'churn.joblib') does not exist beside the notebook")]


def test_a_path_known_only_at_run_time_is_unresolved_not_an_error(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "nb.ipynb",
        code("import os, joblib\nfor name in ['a', 'b']:\n    pass\n"
             "model = joblib.load(os.path.join(os.environ['MODEL_DIR'], 'model.joblib'))\n"
             "other = joblib.load(f'{name}.pkl')\nthird = joblib.load(unknown_thing)", "load"),
    )
    cells = extract_service(parse_notebook(path)).cells
    assert [(u.line, u.expression, u.text, u.tail) for u in path_uses(cells) if not u.literal] == [
        (4, "os.path.join(os.environ['MODEL_DIR'], 'model.joblib')", None, "model.joblib"),
        (5, "f'{name}.pkl'", None, ".pkl"),
    ]
    assert find_artifacts(path, cells, [])[2] == []


def test_absolute_built_paths_are_refused_but_a_separator_literal_is_not(tmp_path: Path) -> None:
    _, _, problems = find(
        tmp_path,
        code("ROOT = '/srv/models'", "parameters"),
        code("import joblib, os\nm = joblib.load(os.path.join(ROOT, 'm.joblib'))\nsep = 'a/b'.split('/')", "load"),
    )
    assert [(p.location.line, p.message) for p in problems] == [
        (2, "'/srv/models/m.joblib' (os.path.join(ROOT, 'm.joblib')) is an absolute path, which will not exist "
            "in the image")]


def test_huge_format_widths_and_attribute_access_are_not_evaluated(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "nb.ipynb", code(
        "x = 'a'\np = open(f'{x:>999999999}.csv')\nq = open('{0.__class__}/{1:>99999}.csv'.format(x, x))", "load"))
    uses = path_uses(extract_service(parse_notebook(path)).cells)
    assert [(u.text, u.tail) for u in uses if not u.literal] == [(None, ".csv"), (None, ".csv")]


def test_a_name_assigned_earlier_in_the_same_cell_counts(tmp_path: Path) -> None:
    files(tmp_path, "models/m.joblib")
    found, _, problems = find(tmp_path, code("import joblib\nMODEL_DIR = 'models'\n"
                                             "model = joblib.load(MODEL_DIR + '/m.joblib')", "load"))
    assert not problems and [a.path for a in found] == ["models/m.joblib"]


def test_a_file_a_setup_cell_reads_ships_and_nothing_else_there_is_judged(tmp_path: Path) -> None:
    files(tmp_path, "labels.json", "stopwords.txt")
    found, _, problems = find(
        tmp_path,
        code("import json\nfrom pathlib import Path\nLABELS = json.load(open('labels.json'))\n"
             "OUTPUT = 'predictions.csv'\nREPORT = open('/srv/report.csv') if False else None\n"
             "def stopwords():\n    return set((Path('.') / 'stopwords.txt').read_text().split())", "setup"),
        code("x = 1", "load"),
    )
    assert not problems
    assert [(a.path, a.cell, a.line) for a in found] == [("labels.json", 1, 3)]
