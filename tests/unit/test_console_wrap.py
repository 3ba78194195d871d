"""Off a terminal (CI logs, pipes) every finding and status line stays one line, so a script grepping for it finds it;
on a terminal rich still wraps at the terminal's width."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.notebooks import code, write_notebook

# longer than rich's 80 columns once a message is put around it
LONG = "a_churn_model_notebook_whose_file_name_alone_takes_most_of_a_log_line.ipynb"
PREDICT = code("def predict(inputs):\n    return {'y': inputs['x'] * 2}", "predict")
EXAMPLE = code("example = {'x': 1.5}\npredict(example)", "example", result={"y": 3.0})
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def nbship_check(notebook: Path, extra_env: dict[str, str], *, tty: bool = False) -> tuple[int, str]:
    """``nbship check`` in a child process; stderr a pipe, or a terminal when ``tty``. Returns (exit code, stderr)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "CI", "FORCE_COLOR", "NO_COLOR")}
    env.update(PYTHONPATH=str(ROOT), **extra_env)
    argv = [sys.executable, "-m", "nbship", "check", notebook.name]
    if not tty:
        done = subprocess.run(argv, cwd=notebook.parent, env=env, capture_output=True, text=True, timeout=300,
                              check=False)
        return done.returncode, ANSI.sub("", done.stderr)
    leader, follower = pty.openpty()
    process = subprocess.Popen(argv, cwd=notebook.parent, env=env, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=300), ANSI.sub("", b"".join(chunks).decode().replace("\r\n", "\n"))


@pytest.mark.parametrize("env", [{}, {"CI": "true", "FORCE_COLOR": "1"}], ids=["pipe", "ci-forced-colour"])
def test_findings_stay_on_one_line_off_a_terminal(tmp_path: Path, env: dict[str, str]) -> None:
    notebook = write_notebook(tmp_path / LONG, code("factor = 3"),
                              code("def predict(inputs):\n    return inputs * factor", "predict"))
    exit_code, err = nbship_check(notebook, env)
    assert exit_code == 1, err
    lines = err.splitlines()
    assert f"error: {LONG}, cell 2, line 2: predict uses 'factor', defined only in untagged cell 1" in lines, err
    assert f"warning: {LONG}: no example cell: the service cannot warm up or be smoke-tested" in lines, err
    assert "  hint: Tag cell 1 nbship:parameters." in lines, err


def test_the_ok_line_stays_on_one_line_off_a_terminal(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / LONG, PREDICT, EXAMPLE)
    exit_code, err = nbship_check(notebook, {})
    assert exit_code == 0, err
    assert f"ok: {LONG}: 1 exported cells, the example gives the notebook's output" in err.splitlines(), err


def test_a_terminal_still_wraps_at_its_width(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / LONG, PREDICT, EXAMPLE)
    exit_code, err = nbship_check(notebook, {"COLUMNS": "60"}, tty=True)
    assert exit_code == 0, err
    ok_block = err[err.index("ok: "):err.index("batching ")]
    lines = ok_block.splitlines()
    assert len(lines) > 1 and all(len(line) <= 60 for line in lines), lines
    assert "".join(lines) == f"ok: {LONG}: 1 exported cells, the example gives the notebook's output", err
