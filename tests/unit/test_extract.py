"""IPython syntax in exported cells: removed with a warning, turned into requirements or settings, or refused."""

from __future__ import annotations

from pathlib import Path

from nbship.extract import extract_service
from nbship.notebook import parse_notebook
from tests.notebooks import code, write_notebook


def extract(tmp_path: Path, *cells: object):  # type: ignore[no-untyped-def]
    return extract_service(parse_notebook(write_notebook(tmp_path / "nb.ipynb", *cells)))


def messages(result, severity: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [f"cell {f.location.cell}, line {f.location.line}: {f.message}"
            for f in result.findings if f.severity == severity]


def test_housekeeping_magics_are_removed_with_a_warning_and_lines_kept(tmp_path: Path) -> None:
    result = extract(tmp_path, code("%matplotlib inline\n%load_ext autoreload\nimport numpy as np\nnp?", "setup"))
    (cell,) = result.cells
    assert cell.source.split("\n")[2] == "import numpy as np"  # line numbers preserved
    assert "get_ipython" not in cell.source and "matplotlib" not in cell.source
    assert messages(result, "warning") == [
        "cell 1, line 1: %matplotlib removed (it does not change results)",
        "cell 1, line 2: %load_ext removed (it does not change results)",
        "cell 1, line 4: np? removed (it does not change results)",
    ]
    assert not messages(result, "error")


def test_pip_lines_become_requirements_with_their_cell_and_line(tmp_path: Path) -> None:
    result = extract(
        tmp_path,
        code("!pip install joblib", None),
        code("import numpy\n%pip install -q 'scikit-learn==1.5' pandas>=2 --index-url https://x", "setup"),
    )
    specs = [(r.spec, r.cell, r.line, r.exported) for r in result.pip_requirements]
    assert specs == [("joblib", 1, 1, False), ("scikit-learn==1.5", 2, 2, True), ("pandas>=2", 2, 2, True)]
    assert any("--index-url ignored" in m for m in messages(result, "warning"))


def test_env_magic_becomes_a_setting(tmp_path: Path) -> None:
    result = extract(tmp_path, code("%env TOKENIZERS_PARALLELISM=false\nx = 1", "setup"))
    assert result.settings == {"TOKENIZERS_PARALLELISM": "false"}


def test_time_magics_keep_the_code_they_time(tmp_path: Path) -> None:
    result = extract(
        tmp_path,
        code("%%time\nmodel = 1\n%matplotlib inline", "load"),
        code("if True:\n    %time y = 2", "setup"),
    )
    load, setup = result.cells
    assert load.source.split("\n")[1] == "model = 1"
    assert setup.source.split("\n")[1] == "    y = 2"
    assert "cell 1, line 3: %matplotlib removed (it does not change results)" in messages(result, "warning")


def test_magics_whose_removal_changes_behaviour_are_errors_naming_the_cell(tmp_path: Path) -> None:
    result = extract(
        tmp_path,
        code("%%bash\necho hi", "setup"),
        code("%%writefile x.py\nprint(1)", "setup"),
        code("%run other.ipynb", "setup"),
        code("%store model", "load"),
        code("%%capture out\nprint(1)", "load"),
        code("files = !ls", "load"),
        code("!wget http://x/model.bin", "load"),
    )
    errors = messages(result, "error")
    assert [e.split(":")[0] for e in errors] == [f"cell {n}, line 1" for n in range(1, 8)]
    assert all("cannot be exported" in e for e in errors)


def test_untagged_cells_are_not_judged(tmp_path: Path) -> None:
    result = extract(
        tmp_path, code("%%bash\nls"), code("!ls\nx = (", None), code("def predict(x):\n    return x", "predict")
    )
    assert not result.findings and [c.cell.number for c in result.cells] == [3]


def test_imports_are_collected_by_top_level_module(tmp_path: Path) -> None:
    result = extract(tmp_path, code("import numpy as np\nfrom sklearn.linear_model import Ridge\n"
                                    "def f():\n    import pandas.io\n    from . import x", "setup"))
    assert [(i.module, i.line) for i in result.imports] == [("numpy", 1), ("sklearn", 2), ("pandas", 4)]


def test_a_magic_removed_from_a_block_leaves_valid_python(tmp_path: Path) -> None:
    result = extract(tmp_path, code("try:\n    %matplotlib inline\nexcept ImportError:\n    pass\nelse:\n"
                                    "    %load_ext autoreload\nx = 1", "setup"))
    (cell,) = result.cells
    assert cell.tree is not None and not messages(result, "error")
    assert cell.source.split("\n")[1] == "    pass" and cell.source.split("\n")[5] == "    pass"


def test_an_import_guarded_by_a_handler_that_catches_import_errors_is_optional(tmp_path: Path) -> None:
    result = extract(tmp_path, code(
        "try:\n    from ipywidgets import interact\nexcept ImportError:\n    INTERACTIVE = False\n"
        "try:\n    import ujson as json\nexcept (ModuleNotFoundError, ValueError):\n    import simplejson as json\n"
        "try:\n    import orjson\nexcept:\n    pass\n"
        "try:\n    import rich\nexcept Exception:\n    pass\n"
        "try:\n    import pandas\nexcept KeyError:\n    pass\n"
        "try:\n    import numpy\nfinally:\n    pass", "setup"))
    assert [(i.module, i.optional) for i in result.imports] == [
        ("ipywidgets", True), ("ujson", True), ("simplejson", False), ("orjson", True), ("rich", True),
        ("pandas", False), ("numpy", False),
    ]
