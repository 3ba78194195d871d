"""Roles are coherent and nothing the exported code reads is missing: caught here, never as a NameError."""

from __future__ import annotations

from pathlib import Path

from nbship.analysis import Analysis, analyze, propose_role
from nbship.extract import extract_service
from nbship.notebook import parse_notebook
from tests.notebooks import code, write_notebook


def analysed(tmp_path: Path, *cells: object) -> Analysis:
    nb = parse_notebook(write_notebook(tmp_path / "nb.ipynb", *cells))
    return analyze(nb, extract_service(nb))


def errors(a: Analysis) -> list[str]:
    return [f"{f.location}: {f.message} | {f.hint}" for f in a.findings if f.severity == "error"]


PREDICT = code("def predict(inputs):\n    return inputs", "predict")


def test_a_name_defined_only_in_an_untagged_cell_names_use_cell_and_fix(tmp_path: Path) -> None:
    a = analysed(
        tmp_path,
        code("import joblib\nscaler = joblib.load('s.joblib')"),
        code("def predict(inputs):\n    x = 1\n    return scaler.transform(inputs)", "predict"),
    )
    assert errors(a) == [
        "nb.ipynb, cell 2, line 3: predict uses 'scaler', defined only in untagged cell 1 | Tag cell 1 nbship:load."
    ]


def test_undefined_names_and_builtins(tmp_path: Path) -> None:
    a = analysed(tmp_path, code("def predict(inputs):\n    return len(inputs) + missing_thing", "predict"))
    assert errors(a) == ["nb.ipynb, cell 1, line 2: predict uses 'missing_thing', which no cell defines | "
                         "Define or import it in a cell tagged nbship:setup."]


def test_modules_import_what_they_use_from_earlier_modules(tmp_path: Path) -> None:
    a = analysed(
        tmp_path,
        code("import numpy as np\ndef clean(x):\n    return x", "setup"),
        code("threshold = 0.5", "parameters"),
        code("model = np.ones(2)", "load"),
        code("def preprocess(payload):\n    return clean(payload)", "preprocess"),
        code("def predict(inputs):\n    return model @ np.asarray(inputs) > threshold", "predict"),
    )
    assert not errors(a)
    plans = {p.name: dict(p.imports) for p in a.modules}
    assert plans == {
        "parameters": {},
        "shared": {},
        "loading": {"shared": ("np",)},
        "preprocessing": {"shared": ("clean",)},
        "inference": {"parameters": ("threshold",), "shared": ("np",), "loading": ("model",)},
    }


def test_a_setup_helper_may_read_a_name_a_load_cell_defines_as_in_the_kernel(tmp_path: Path) -> None:
    a = analysed(
        tmp_path,
        code("def fill(row):\n    return table[row]\n\nclass Lookup:\n    def get(self, k):\n        return table[k]",
             "setup"),
        code("table = {'a': 1}", "load"),
        code("def predict(inputs):\n    return fill(inputs)", "predict"),
    )
    assert not errors(a)
    plans = {p.name: (dict(p.imports), dict(p.late)) for p in a.modules}
    assert plans["shared"] == ({}, {"loading": ("table",)})
    assert plans["inference"] == ({"shared": ("fill",)}, {})


def test_a_name_read_at_import_time_before_any_cell_defines_it_is_an_error(tmp_path: Path) -> None:
    a = analysed(
        tmp_path,
        code("import numpy as np\nsize = len(table)", "setup"),
        code("class Scorer:\n    default = model\n\nrows = [model(x) for x in range(2)]", "setup"),
        code("def helper(x=model):\n    return x", "setup"),
        code("table = [1]\nmodel = len", "load"),
        PREDICT,
    )
    assert [e.split(" | ")[0] for e in errors(a)] == [
        "nb.ipynb, cell 1, line 2: uses 'table' when the cell runs, but 'table' comes from load cell 4, "
        "which runs after it",
        "nb.ipynb, cell 2, line 2: Scorer uses 'model' when the cell runs, but 'model' comes from load cell 4, "
        "which runs after it",
        "nb.ipynb, cell 3, line 1: helper uses 'model' when the cell runs, but 'model' comes from load cell 4, "
        "which runs after it",
    ]
    assert "Use 'table' inside a function" in errors(a)[0]


def test_roles_must_define_their_function(tmp_path: Path) -> None:
    a = analysed(tmp_path, code("x = 1", "preprocess"), code("def helper(p):\n    return p", "postprocess"), PREDICT)
    assert [e.split(" | ")[0] for e in errors(a)] == [
        "nb.ipynb, cell 1: a cell tagged nbship:preprocess must define preprocess(...)",
        "nb.ipynb, cell 2: a cell tagged nbship:postprocess must define postprocess(...)",
    ]


def test_no_predict_points_at_the_untagged_definition(tmp_path: Path) -> None:
    a = analysed(tmp_path, code("def predict(x):\n    return x"), code("import os", "setup"))
    assert errors(a) == ["nb.ipynb: no predict function: the service has nothing to serve | "
                         "predict is defined in untagged cell 1: tag it nbship:predict."]


def test_a_name_bound_again_in_a_cell_that_also_runs_later_in_the_service_is_accepted(tmp_path: Path) -> None:
    a = analysed(
        tmp_path,
        code("import numpy as np\nlimit = 3", "setup"),
        code("import numpy as np\nlimit = 4\ndef predict(inputs):\n    return np.minimum(inputs, limit)", "predict"),
    )
    assert errors(a) == []


def test_a_rebinding_the_service_would_run_in_another_order_names_both_cells_and_the_order(tmp_path: Path) -> None:
    a = analysed(
        tmp_path,
        code("limit = 3", "load"),
        code("limit = 4", "setup"),
        code("def predict(inputs):\n    return min(inputs, limit)", "predict"),
    )
    assert errors(a) == [
        "nb.ipynb, cell 1, line 1: 'limit' is bound here and again in setup cell 2: the notebook keeps cell 2's "
        "value, but the service runs load cells after setup cells, so this cell's value would win | The service "
        "runs the cells by role (parameters → setup → load → preprocess → predict → postprocess), then in notebook "
        "order: bind the name in cells that run in the same order in both, or rename one of them."
    ]


def test_a_read_when_the_cell_runs_that_would_see_another_binding_in_the_service_is_an_error(tmp_path: Path) -> None:
    a = analysed(
        tmp_path,
        code("table = 'small'", "setup"),
        code("table = 'full'", "load"),
        code("size = len(table)", "setup"),
        code("def predict(inputs):\n    return size", "predict"),
    )
    assert [e.split(" | ")[0] for e in errors(a)] == [
        "nb.ipynb, cell 3: reads 'table' when the cell runs: in the notebook that is the value bound in load "
        "cell 2, but the service runs setup cell 1 last before this cell"
    ]


def test_names_bound_by_with_for_except_and_comprehensions_are_not_read_before_binding(tmp_path: Path) -> None:
    a = analysed(
        tmp_path,
        code("with open(__file__) as f:\n    n = len(f.read())\nfor i in range(2):\n    n += i\n"
             "try:\n    t = int('x')\nexcept ValueError as e:\n    t = str(e)\n"
             "squares = [k * k for k in range(3)]\nk = 0",
             "setup"),
        code("def predict(inputs):\n    return n, t, f, k, squares", "predict"),
    )
    assert errors(a) == []


def test_functions_and_later_cells_get_the_last_binding(tmp_path: Path) -> None:
    a = analysed(
        tmp_path,
        code("class Net:\n    pass\n\nmodel = Net()", "setup"),
        code("model = wrap(model)", "load"),  # reads setup's model, then binds its own
        code("def wrap(m):\n    return m\n\ndef describe():\n    return model", "setup"),
        code("def predict(inputs):\n    return model", "predict"),
    )
    assert errors(a) == []
    plans = {p.name: p for p in a.modules}
    assert plans["shared"].late == {"loading": ("model",)}  # describe() sees load's model, noted in shared.py
    assert plans["loading"].imports == {"shared": ("model", "wrap")}
    assert plans["inference"].imports == {"loading": ("model",)}


def test_parameters_are_literals_with_their_types_and_env_names(tmp_path: Path) -> None:
    a = analysed(tmp_path, code("threshold = 0.5\nlabels: list = ['a', 'b']\nverbose = False", "parameters"), PREDICT)
    assert [(p.name, p.default, p.type_name, p.env) for p in a.parameters] == [
        ("threshold", 0.5, "float", "NBSHIP_PARAM_THRESHOLD"),
        ("labels", ["a", "b"], "list", "NBSHIP_PARAM_LABELS"),
        ("verbose", False, "bool", "NBSHIP_PARAM_VERBOSE"),
    ]
    bad = analysed(tmp_path, code("import math\nthreshold = math.pi / 4", "parameters"), PREDICT)
    assert [e.split(" | ")[0] for e in errors(bad)] == [
        "nb.ipynb, cell 1, line 1: a parameters cell holds only assignments of literal values (`threshold = 0.5`)",
        "nb.ipynb, cell 1, line 2: a parameters cell holds only assignments of literal values (`threshold = 0.5`)",
    ]


def test_unknown_role_suggests_the_near_one(tmp_path: Path) -> None:
    a = analysed(tmp_path, code("x = 1", tags=["nbship:preprocesss"]), PREDICT)
    assert errors(a) == ["nb.ipynb, cell 1: unknown role 'nbship:preprocesss' | did you mean nbship:preprocess?"]


def test_example_must_be_a_literal(tmp_path: Path) -> None:
    a = analysed(tmp_path, PREDICT, code("example = dict(a=1)\npredict(example)", "example"))
    assert [e.split(" | ")[0] for e in errors(a)] == [
        "nb.ipynb, cell 2, line 1: `example` must be a literal (a dict, list, string…)"
    ]
    good = analysed(tmp_path, PREDICT, code("example = {'a': [1, 2.5]}\npredict(example)", "example"))
    assert good.example is not None and good.example.request == {"a": [1, 2.5]}


def test_environment_reads_are_recorded(tmp_path: Path) -> None:
    a = analysed(tmp_path, code("import os\nURL = os.environ['DB_URL']\nLEVEL = os.getenv('LEVEL', 'info')", "setup"),
                 PREDICT)
    assert [(r.name, r.has_default, r.line) for r in a.env_reads] == [("DB_URL", False, 2), ("LEVEL", True, 3)]


def test_propose_role_reads_what_a_cell_does() -> None:
    assert propose_role("def predict(x):\n    return x") == ("predict", "defines predict()")
    assert propose_role("import joblib\nmodel = joblib.load('m.joblib')") == ("load", "loads a model or artifact")
    assert propose_role("threshold = 0.5\nk = 3") == ("parameters", "literal settings")
    assert propose_role("import numpy as np\ndef f(x):\n    return x") == ("setup", "helpers and imports")
    assert propose_role("example = {'a': 1}\npredict(example)") == ("example", "assigns example")
    assert propose_role("model = joblib.load('m')\nmodel.fit(X, y)") is None  # training stays behind
    assert propose_role("df.describe()") is None
