"""The corpus: notebooks from public repositories (tests/corpus/SOURCES.md), tagged as a new user would tag them.

Each one passes ``nbship check`` (parity included), and ``nbship serve`` answers its example with the notebook's
saved output. ``test_corpus_image_smoke`` builds four of them into images and smoke-tests them (not the PyTorch
one: its torch is a local CPU build that an image's builder cannot install).

A notebook that nbship cannot take yet is listed in ``PENDING`` with the reason and the message it gives today:
if ``nbship check`` fails, it must fail with that message (anything else is a failure) and is reported as an
expected failure; once the check passes, the whole test runs and warns that the entry is stale.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest

from nbship.compare import same_response
from tests.conftest import ROOT
from tests.fixtures.service._harness import free_port
from tests.images import rig_engine

pytestmark = pytest.mark.slow

CORPUS = ROOT / "tests" / "corpus"
NOTEBOOKS = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*.ipynb"))

# notebook → (why it cannot pass yet, pieces of the message `nbship check` gives meanwhile)
PENDING: dict[str, tuple[str, tuple[str, ...]]] = {}


def example_of(notebook: Path) -> tuple[Any, Any]:
    """The request the example cell assigns and the response the notebook saved under it."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    cell = next(c for c in cells if "nbship:example" in c.get("metadata", {}).get("tags", []))
    tree = ast.parse("".join(cell["source"]))
    assign = next(n for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "example")
    result = next(o for o in cell["outputs"] if o["output_type"] == "execute_result")
    return ast.literal_eval(assign.value), ast.literal_eval("".join(result["data"]["text/plain"]))


def copy_project(name: str, tmp_path: Path) -> Path:
    """The notebook's folder, copied: what nbship writes stays out of the repository."""
    source = CORPUS / name
    target = tmp_path / source.parent.name
    shutil.copytree(source.parent, target, ignore=shutil.ignore_patterns("requirements.lock"))
    return target / source.name


def nbship(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "nbship", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)


def test_the_corpus_is_there() -> None:
    assert len(NOTEBOOKS) >= 10, NOTEBOOKS
    sources = (CORPUS / "SOURCES.md").read_text(encoding="utf-8")
    for name in NOTEBOOKS:
        assert f"`{name}`" in sources, f"{name} is not in tests/corpus/SOURCES.md"
    assert not set(PENDING) - set(NOTEBOOKS), "PENDING names a notebook that is not in the corpus"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_corpus_notebook_checks_and_serves_its_example(name: str, tmp_path: Path) -> None:
    notebook = copy_project(name, tmp_path)
    checked = nbship("check", str(notebook))
    if name in PENDING and checked.returncode != 0:
        reason, messages = PENDING[name]
        assert any(m in checked.stderr for m in messages), checked.stderr
        pytest.xfail(reason)
    if name in PENDING:  # its feature has landed: the whole test runs, and the entry is stale
        warnings.warn(f"{name} passes nbship check now: remove it from PENDING", stacklevel=1)
    assert checked.returncode == 0, checked.stderr
    assert "the example gives the notebook's output" in checked.stderr, checked.stderr

    request, expected = example_of(notebook)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "nbship", "serve", str(notebook), "--port", str(port)],
        env={**os.environ, "NO_COLOR": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert process.poll() is None, process.communicate()[0].decode()[-3000:]
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{name}: nbship serve not ready in 300 s"
            time.sleep(0.3)
        response = httpx.post(url + "/predict", json=request, timeout=60)
        assert response.status_code == 200, response.text
        assert same_response(expected, response.json()) == []
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0


# scikit-learn only (no local-only torch wheel); ch07 carries a class of the notebook inside its pickle, 06 reads its
# model through a pathlib expression
SMOKED = [
    "rasbt/ch10/ch10.ipynb",
    "rasbt/ch05/ch05.ipynb",
    "rasbt/ch07/ch07.ipynb",
    "handson-ml3/06_decision_trees.ipynb",
]


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.parametrize("name", SMOKED)
def test_corpus_image_smoke(name: str, tmp_path: Path) -> None:
    """Lock through the package index, build the image on the rig's engine, and let the smoke test run the example."""
    rig_engine()
    assert name not in PENDING, "smoke-test notebooks that pass `nbship check` today"
    notebook = copy_project(name, tmp_path)
    built = nbship("build", str(notebook), "--out", str(tmp_path / "build"), "--output", "json", timeout=1800)
    assert built.returncode == 0, built.stderr[-3000:]
    record = json.loads(built.stdout)
    assert record["smoke"]["passed"] is True, record["smoke"]
    assert record["smoke"]["uid"] == 10001
