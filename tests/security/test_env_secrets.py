"""Issue 13, point 8: `%env NAME=value` lines and `env:` values in nbship.yaml are scanned like code.

Before, the `%env` line was blanked before the scan and its value written into nbship.json, inside the image; and
`env:` values went into the ConfigMap unscanned. A credential in either is now an error that points at `secrets:`.
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
OPENAI = "sk-proj-" + "Zq4Lm8Xv2Rt6Np0Bc3Hd7Kf1Wg5Js9Ya" + "Ue2Ti6Oq0Pa4Sd8Fg"
DB_PASSWORD = "Tr0ub4dor_" + "x7Qm2P"


def test_a_credential_in_an_env_magic_is_an_error_at_its_line(tmp_path: Path, run_cli: Run) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb",
                              code(f"import os\n%env TOKENIZERS_PARALLELISM=false\n%env OPENAI_API_KEY={OPENAI}",
                                   "setup"), PREDICT)

    exit_code, out, err = run_cli("check", "--no-verify", "--output", "json", notebook)

    assert exit_code == 1
    secrets = [f for f in json.loads(out)["findings"] if f["code"] == "secret"]
    assert [(f["cell"], f["line"], f["message"]) for f in secrets] == [
        (1, 3, "%env OPENAI_API_KEY: looks like an OpenAI API key ('sk-p…')")]
    assert "secrets:" in secrets[0]["hint"] and "{env: OPENAI_API_KEY," in secrets[0]["hint"]
    assert OPENAI[8:16] not in out + err


def test_a_password_in_an_env_magic_inside_a_captured_cell_is_found(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb",
                              code(f"%%capture\nimport os\n%env DB_PASSWORD={DB_PASSWORD}", "setup"), PREDICT)

    result = inspect_notebook(notebook, verify=False)

    assert [(str(f.location), f.message) for f in result.errors] == [
        ("nb.ipynb, cell 1, line 3", "%env DB_PASSWORD: looks like a password assigned to 'DB_PASSWORD' ('Tr0u…')")]
    assert result.spec is None  # nothing is rendered, so the value never reaches nbship.json


def test_a_credential_under_env_in_nbship_yaml_is_an_error_at_its_line(tmp_path: Path, run_cli: Run) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb", PREDICT)
    (tmp_path / "nbship.yaml").write_text(
        "name: churn\nenv:\n  LOG_LEVEL: info\n"
        f"  DATABASE_URL: postgresql://etl:{DB_PASSWORD}@db.internal/churn\n  MODEL_STAGE: production\n")

    exit_code, out, err = run_cli("check", "--no-verify", notebook)

    assert exit_code == 1
    assert ("error: nbship.yaml, line 4: env.DATABASE_URL: looks like a password in a URL ('Tr0u…')") in err
    assert "move it from env: to secrets: ({env: DATABASE_URL, secret: <secret name>, key: <key>})" in err
    assert DB_PASSWORD[4:] not in out + err


def test_plain_settings_pass(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb", code(
        "%env TOKENIZERS_PARALLELISM=false\n%env HF_HOME=/tmp/hf\n%env CUDA_VISIBLE_DEVICES=0", "setup"), PREDICT)
    (tmp_path / "nbship.yaml").write_text(
        "env:\n  LOG_LEVEL: info\n  DATABASE_URL: postgresql://db.internal:5432/churn\n  TOKEN_TTL_SECONDS: '3600'\n"
        "  API_KEY_HEADER: X-API-Key\n")

    result = inspect_notebook(notebook, verify=False)

    assert result.errors == ()
    assert result.spec is not None
