"""Notebooks as people write them: helpers that read load-time names, and pickles of the notebook's own code.

The pickles are made by a real ``python`` process whose ``__main__`` defines the function and class, as a
kernel does, so they hold ``__main__.double`` and ``__main__.AddOne`` exactly as a notebook's would.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nbship.check import inspect_notebook
from nbship.pickles import main_references
from tests.notebooks import code, write_notebook

Run = Callable[..., tuple[int, str, str]]

DEFINITIONS = """\
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

def double(X):
    return np.asarray(X, dtype=float) * 2

class AddOne(BaseEstimator, TransformerMixin):
    def fit(self, X, y=None):
        self.width_ = len(X[0])
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float) + 1
"""
TRAIN = """\
import joblib
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
pipeline = make_pipeline(FunctionTransformer(double), AddOne()).fit([[0.0], [1.0]])
joblib.dump(pipeline, "model.joblib")
"""
LOAD = "import joblib\ntable = {'bias': 10.0}\nmodel = joblib.load('model.joblib')"
HELPER = "def shift(value):\n    return value + table['bias']"
PREDICT = "def predict(inputs):\n    return {'y': shift(float(model.transform([[inputs['x']]])[0][0]))}"
EXAMPLE = "example = {'x': 1.5}\npredict(example)"


def save_pickle_from_main(folder: Path) -> None:
    """Pickle the pipeline from a process whose ``__main__`` defines ``double`` and ``AddOne``, as a kernel does."""
    subprocess.run([sys.executable, "-c", DEFINITIONS + TRAIN], cwd=folder, check=True, capture_output=True)


def notebook(folder: Path, *, setup_tagged: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    save_pickle_from_main(folder)
    return write_notebook(
        folder / "nb.ipynb",
        code(DEFINITIONS + "\n" + HELPER, "setup" if setup_tagged else None),
        code(TRAIN),  # training stays untagged
        code(LOAD, "load"),
        code(PREDICT, "predict"),
        code(EXAMPLE, "example", result={"y": 14.0}),  # 1.5 * 2 + 1 + 10
    )


def test_the_pickle_names_the_notebook_functions_and_classes_it_needs(tmp_path: Path) -> None:
    save_pickle_from_main(tmp_path)
    assert main_references(tmp_path / "model.joblib") == {"double", "AddOne"}


def test_check_answers_with_parity_for_a_pickle_of_notebook_code_and_a_helper_reading_a_load_global(
    tmp_path: Path, run_cli: Run
) -> None:
    path = notebook(tmp_path)
    code_, _, err = run_cli("check", path)
    assert code_ == 0, err
    assert "the example gives the notebook's output" in err


def test_an_untagged_definition_a_pickle_needs_is_named_before_any_build(tmp_path: Path) -> None:
    path = notebook(tmp_path, setup_tagged=False)
    messages = [f"{f.location}: {f.message} | {f.hint}" for f in inspect_notebook(path, verify=False).errors
                if f.code.startswith("pickle")]
    assert messages == [
        "nb.ipynb, cell 3, line 3: 'model.joblib' needs the notebook's AddOne (pickled as __main__.AddOne), "
        "defined only in untagged cell 1 | Tag cell 1 nbship:setup, so the service loads model.joblib with it.",
        "nb.ipynb, cell 3, line 3: 'model.joblib' needs the notebook's double (pickled as __main__.double), "
        "defined only in untagged cell 1 | Tag cell 1 nbship:setup, so the service loads model.joblib with it.",
    ]


@pytest.mark.slow
def test_the_service_answers_for_a_function_transformer_and_custom_class_pickle(tmp_path: Path) -> None:
    import httpx

    from nbship.project import render_project
    from tests.fixtures.service._harness import start

    path = notebook(tmp_path / "nb")
    render_project(path, tmp_path / "ctx", lock=False)
    running = start(tmp_path / "ctx")
    try:
        response: Any = httpx.post(running.url + "/predict", json={"x": 2.0}, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json() == {"y": 15.0}
    finally:
        assert running.terminate() == 0
