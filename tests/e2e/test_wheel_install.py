"""``pip install nbship`` gives every command: the built wheel, in a fresh virtualenv, without extras.

The wheel is built from this checkout and installed with the user's own pip configuration (its index); nothing
of the development environment leaks in. Then a new user's first three commands run from that virtualenv:
``check``, ``serve`` answering one request, and ``build --help``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.fixtures.service._harness import free_port
from tests.notebooks import code, write_notebook

pytestmark = [pytest.mark.slow, pytest.mark.network]


def _run(argv: list[str], *, timeout: float = 900, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)  # type: ignore[call-overload,no-any-return]


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv holding only the wheel of this checkout and what its metadata requires."""
    where = tmp_path_factory.mktemp("wheel")
    built = _run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-w", str(where / "dist"), "-q"])
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (where / "dist").glob("nbship-*.whl")
    venv = where / "venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    made = _run([base_python, "-m", "venv", str(venv)])
    assert made.returncode == 0, made.stderr[-2000:]
    installed = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)])
    assert installed.returncode == 0, installed.stderr[-2000:]
    return venv


def _env() -> dict[str, str]:
    # not this checkout's PYTHONPATH: the installed wheel alone must do
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")} | {"NO_COLOR": "1"}


def _notebook(tmp_path: Path) -> Path:
    return write_notebook(
        tmp_path / "double.ipynb",
        code("factor = 2", "parameters"),
        code("def predict(inputs):\n    return {'y': inputs['x'] * factor}", "predict"),
        code("example = {'x': 21}\npredict(example)", "example", result={"y": 42}),
    )


def test_check_serve_and_build_help_run_from_a_plain_install(fresh_venv: Path, tmp_path: Path) -> None:
    nbship = str(fresh_venv / "bin" / "nbship")
    notebook = _notebook(tmp_path)
    checked = _run([nbship, "check", str(notebook)], env=_env(), timeout=300)
    assert checked.returncode == 0, checked.stderr

    helped = _run([nbship, "build", "--help"], env=_env(), timeout=60)
    assert helped.returncode == 0 and "--push" in helped.stdout, helped.stderr

    port = free_port()
    server = subprocess.Popen(
        [nbship, "serve", str(notebook), "--port", str(port)], env=_env(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        answer = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None:
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/predict", json={"x": 5}, timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.3)
        assert server.poll() is None, (server.stdout.read() if server.stdout else b"").decode()[-3000:]
        assert answer is not None and answer.status_code == 200, answer
        assert answer.json() == {"y": 10}
    finally:
        server.terminate()
        server.wait(30)
