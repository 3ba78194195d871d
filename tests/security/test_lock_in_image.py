"""Issue 13, follow-up: the requirements.lock the runtime image carries (for `/version`'s lock_sha256) never holds
an index URL with credentials.

pip-compile and `uv pip compile --emit-index-url`, run through an authenticated index, write
`--index-url http://user:password@host/simple` into their output (and pip-compile repeats its command line in a
comment). Before, such lines below nbship's header kept the lock "fresh" (the input hash still matched), and the
file was copied as it was into the build context and the runtime image. Now such a lock is stale: refused under
`--frozen` with the line named and nothing rendered, re-resolved otherwise.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from nbship.errors import LockError
from nbship.project import render_project
from tests.fixtures.deps_env import serve_index
from tests.notebooks import code, write_notebook

PASSWORD = "s3cret-" + "index-pw"
PREDICT = code("def predict(inputs):\n    return {'y': inputs['x'] * 2}", "predict")


def uv_compile(requirements: str, index_url: str, folder: Path) -> str:
    """What `uv pip compile --emit-index-url` writes for ``requirements`` through ``index_url``."""
    import uv

    (folder / "compile.in").write_text(requirements)
    done = subprocess.run([uv.find_uv_bin(), "pip", "compile", "--quiet", "--no-config", "--emit-index-url",
                           "--generate-hashes", "--index-url", index_url, "compile.in"],
                          cwd=folder, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def test_a_lock_compiled_through_an_authenticated_index_never_reaches_the_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    notebook = write_notebook(folder / "nb.ipynb", PREDICT)
    (folder / "nbship.yaml").write_text("requirements: ['nbfx-alpha==1.0.0']\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # the index below is pip's only setting
    with serve_index(tmp_path / "index", "alice", PASSWORD) as (base, seen):
        index_url = base.replace("http://", f"http://alice:{PASSWORD}@") + "/simple"
        monkeypatch.setenv("PIP_INDEX_URL", index_url)
        first = render_project(notebook, tmp_path / "ctx1", verify=False)
        assert first.lock is not None and PASSWORD not in first.lock.text  # nbship's own lock holds no index
        # the pins refreshed with uv through the same index, below nbship's header (its input hash still matches)
        header = "".join(line for line in first.lock.text.splitlines(keepends=True) if line.startswith("#"))
        compiled = uv_compile("nbfx-alpha==1.0.0\nfastapi\nuvicorn\n", index_url, tmp_path)
        assert f"--index-url {index_url}" in compiled
        lock_path = folder / "requirements.lock"
        lock_path.write_text(header + compiled)
        index_line = (header + compiled).splitlines().index(f"--index-url {index_url}") + 1

        with pytest.raises(LockError) as caught:
            render_project(notebook, tmp_path / "ctx2", verify=False, frozen=True)
        rendered = render_project(notebook, tmp_path / "ctx3", verify=False)  # not frozen: resolved again
        assert any(path.startswith("/simple/nbfx-alpha") for path in seen)

    message = caught.value.message
    assert f"line {index_line} holds the pip option --index-url" in message
    assert "holds a credential in a URL" in message  # uv's command line, repeated in a comment
    assert PASSWORD not in message + (caught.value.hint or "")
    assert not (tmp_path / "ctx2").exists()
    in_context = (tmp_path / "ctx3" / "requirements.lock").read_text()
    assert "COPY requirements.lock /app/" in (tmp_path / "ctx3" / "Dockerfile").read_text()  # what the image keeps
    assert PASSWORD not in in_context and "--index-url" not in in_context and "127.0.0.1" not in in_context
    assert in_context == lock_path.read_text() == rendered.lock.text  # type: ignore[union-attr]
    assert rendered.lock.pins["nbfx-alpha"] == "1.0.0"  # type: ignore[union-attr]
