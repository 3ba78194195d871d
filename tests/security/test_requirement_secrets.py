"""Issue 13, follow-up: a credential in a requirement — a `%pip install` line or `requirements:` in nbship.yaml —
is an error at its cell and line (or nbship.yaml line), whose hint says to give it to pip's configuration.

Before, `%pip install git+https://<token>@github.com/org/pkg.git` and `pkg @ https://user:pass@host/pkg.whl`
passed the scan and went into requirements.in, the lock and the image.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from nbship.check import inspect_notebook
from tests.notebooks import code, write_notebook

Run = Callable[..., tuple[int, str, str]]
PREDICT = code("def predict(inputs):\n    return {'y': inputs['x'] * 2}", "predict")
# built from pieces so that no real-looking key sits in the repository as one string
GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0" + "k1L2m3N4o5P6q7R8"
PASSWORD = "Tr0ub4dor_" + "x7Qm2P"


def test_a_token_in_a_pip_install_line_is_an_error_at_its_line(tmp_path: Path, run_cli: Run) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb", code(
        f"import json\n%pip install scikit-learn==1.5.2\n%pip install git+https://{GITHUB_TOKEN}@github.com/org/pkg.git",
        "setup"), PREDICT)

    exit_code, out, err = run_cli("check", "--no-verify", "--output", "json", notebook)

    assert exit_code == 1
    secrets = [f for f in json.loads(out)["findings"] if f["code"] == "secret"]
    assert [(f["cell"], f["line"], f["message"]) for f in secrets] == [
        (1, 3, "%pip install: looks like a GitHub token ('ghp_…')")]
    assert "pip config set global.extra-index-url" in secrets[0]["hint"]
    assert "builder stage only" in secrets[0]["hint"]
    assert GITHUB_TOKEN[4:] not in out + err


def test_an_index_password_in_pip_options_of_a_captured_cell_is_found_at_its_line(tmp_path: Path) -> None:
    index = f"https://ci:{PASSWORD}@pypi.internal/simple"
    notebook = write_notebook(tmp_path / "nb.ipynb", code(
        f"%%capture\nimport json\n%pip install -i {index} churnlib==1.0\n!pip install --extra-index-url={index} other",
        "setup"), PREDICT)

    result = inspect_notebook(notebook, verify=False)

    assert [(str(f.location), f.message) for f in result.errors] == [
        ("nb.ipynb, cell 1, line 3", "%pip install: looks like a password in a URL ('Tr0u…')"),
        ("nb.ipynb, cell 1, line 4", "%pip install: looks like a password in a URL ('Tr0u…')")]
    assert [(r.spec, r.line) for r in result.code.pip_requirements] == [("churnlib==1.0", 3), ("other", 4)]


def test_a_password_in_a_config_requirement_is_an_error_at_its_yaml_line(tmp_path: Path, run_cli: Run) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb", PREDICT)
    (tmp_path / "nbship.yaml").write_text(
        "name: churn\nrequirements:\n  - numpy==2.1.0\n"
        f"  - 'churnlib @ https://ci:{PASSWORD}@wheels.internal/churnlib-1.0-py3-none-any.whl'\n")

    exit_code, out, err = run_cli("check", "--no-verify", notebook)

    assert exit_code == 1
    assert "error: nbship.yaml, line 4: requirements[1]: looks like a password in a URL ('Tr0u…')" in err
    assert "pip's configuration" in err
    assert PASSWORD[4:] not in out + err


def test_nbship_lock_refuses_it_too_and_writes_nothing(tmp_path: Path, run_cli: Run) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb", PREDICT)
    (tmp_path / "nbship.yaml").write_text(
        f"requirements: ['churnlib @ git+https://{GITHUB_TOKEN}@github.com/org/churnlib.git']\n")

    exit_code, out, err = run_cli("lock", notebook)

    assert exit_code == 1
    assert "looks like a credential (GitHub token, 'ghp_…')" in err
    assert GITHUB_TOKEN[4:] not in out + err
    assert not (tmp_path / "requirements.lock").exists()


def test_requirements_without_credentials_pass(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb", code(
        "%pip install 'pkg @ git+https://git@github.com/org/pkg.git@v1.2' torch==2.1.0+cu118\nimport json",
        "setup"), PREDICT)
    (tmp_path / "nbship.yaml").write_text(
        "requirements:\n  - 'other @ https://files.example.com/other-1.0-py3-none-any.whl'\n"
        "  - 'third @ git+ssh://git@github.com/org/third.git@0123abcd'\n")

    result = inspect_notebook(notebook, verify=False)

    assert [f for f in result.findings if f.code == "secret"] == []
    assert result.spec is not None
