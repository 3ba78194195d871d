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
from tests.fixtures.pickled_notebook import EXAMPLE, notebook, save_pickle_from_main
from tests.notebooks import code, write_notebook

Run = Callable[..., tuple[int, str, str]]


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


TORCH_NET = """\
import torch

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(1, 1)

    def forward(self, x):
        return self.linear(x) * 2
"""
TORCH_SAVE = """\
torch.manual_seed(0)
net = Net()
with torch.no_grad():
    net.linear.weight.fill_(3.0)
    net.linear.bias.fill_(1.0)
torch.save(net, "net.pt")
"""


@pytest.mark.slow
def test_a_torch_model_saved_whole_loads_with_the_exported_class(tmp_path: Path, run_cli: Run) -> None:
    pytest.importorskip("torch")
    subprocess.run([sys.executable, "-c", TORCH_NET + TORCH_SAVE], cwd=tmp_path, check=True, capture_output=True)
    assert main_references(tmp_path / "net.pt") == {"Net"}
    path = write_notebook(
        tmp_path / "nb.ipynb",
        code(TORCH_NET, "setup"),
        code("model = torch.load('net.pt', weights_only=False)\nmodel.eval()", "load"),
        code("def predict(inputs):\n    with torch.no_grad():\n"
             "        return {'y': float(model(torch.tensor([[inputs['x']]]))[0][0])}", "predict"),
        code(EXAMPLE, "example", result={"y": 11.0}),  # (3 * 1.5 + 1) * 2
    )
    code_, _, err = run_cli("check", path)
    assert code_ == 0, err


def test_a_class_a_pickle_needs_defined_in_a_later_stage_is_named(tmp_path: Path) -> None:
    from tests.fixtures.pickled_notebook import DEFINITIONS, LOAD

    save_pickle_from_main(tmp_path)
    path = write_notebook(
        tmp_path / "nb.ipynb",
        code(LOAD.replace("table = {'bias': 10.0}\n", ""), "load"),
        code(DEFINITIONS + "\ndef predict(inputs):\n    return model.transform([[inputs['x']]])", "predict"),
    )
    messages = [f"{f.location}: {f.message} | {f.hint}" for f in inspect_notebook(path, verify=False).errors]
    assert messages == [
        f"nb.ipynb, cell 1, line 2: 'model.joblib' needs the notebook's {name} (pickled as __main__.{name}), but "
        f"cell 2 defines it in a stage that runs after this load cell | Move {name} into a cell tagged "
        "nbship:setup, which runs before the load cells." for name in ("AddOne", "double")]


def rebinding_notebook(folder: Path) -> Path:
    """A setup cell ends with an untrained `model = Scaler()`; a load cell binds `model` again from a file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "factor.json").write_text('{"factor": 5.0}')
    return write_notebook(
        folder / "nb.ipynb",
        code("import json\n\nclass Scaler:\n    def __init__(self, factor=2.0):\n        self.factor = factor\n\n"
             "def score(x):\n    return model.factor * x\n\nmodel = Scaler()\nmodel.factor", "setup"),
        code("with open('factor.json') as f:\n    model = Scaler(json.load(f)['factor'])", "load"),
        code("def predict(inputs):\n    return {'y': score(inputs['x'])}", "predict"),
        code(EXAMPLE, "example", result={"y": 7.5}),  # the kernel's score() sees the loaded model: 5 * 1.5
    )


def test_a_name_bound_in_setup_and_again_in_load_checks_with_the_loaded_value(tmp_path: Path, run_cli: Run) -> None:
    code_, _, err = run_cli("check", rebinding_notebook(tmp_path))
    assert code_ == 0, err
    assert "the example gives the notebook's output" in " ".join(err.split())


@pytest.mark.slow
def test_the_service_answers_with_the_last_binding_of_a_rebound_name(tmp_path: Path) -> None:
    import httpx

    from nbship.project import render_project
    from tests.fixtures.service._harness import start

    render_project(rebinding_notebook(tmp_path / "nb"), tmp_path / "ctx", lock=False)
    running = start(tmp_path / "ctx")
    try:
        response: Any = httpx.post(running.url + "/predict", json={"x": 2.0}, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json() == {"y": 10.0}  # not 4.0, the setup cell's untrained model
    finally:
        assert running.terminate() == 0
