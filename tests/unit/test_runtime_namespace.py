"""Start-up: one namespace across the generated modules, and __main__/__mp_main__ references in pickles."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path


def make_package(root: Path) -> None:
    package = root / "demo_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "shared.py").write_text("def double(x):\n    return 2 * x\n\ndef fill(key):\n    return table[key]\n")
    (package / "loading.py").write_text("import pickle\nfrom .shared import double\n"
                                        "table = {'a': 1}\nrestored = pickle.load(open('f.pkl', 'rb'))\n")


def test_pickles_of_main_and_mp_main_resolve_and_helpers_see_later_names(tmp_path: Path) -> None:
    make_package(tmp_path)
    # what a pickle made in a kernel (__main__) or a worker process (__mp_main__) holds, protocol 2 and 4
    kernel = pickle.dumps([len], protocol=4).replace(b"builtins", b"__main__")
    kernel = kernel.replace(b"\x8c\x03len", b"\x8c\x06double")
    worker = b"\x80\x02c__mp_main__\ndouble\nq\x00."
    (tmp_path / "f.pkl").write_bytes(kernel)
    (tmp_path / "g.pkl").write_bytes(worker)
    script = (
        "import importlib, pickle, sys\n"
        "from nbship.runtime.namespace import resolve_main_references, share_names\n"
        "resolve_main_references('demo_pkg', ['shared', 'loading'])\n"
        "modules = [importlib.import_module('demo_pkg.' + m) for m in ('shared', 'loading')]\n"
        "share_names(modules)\n"
        "shared, loading = modules\n"
        "assert loading.restored == [shared.double], loading.restored\n"
        "assert pickle.load(open('g.pkl', 'rb')) is shared.double\n"
        "assert shared.fill('a') == 1\n"
        "try:\n    pickle.loads(b'\\x80\\x02c__main__\\nnowhere\\nq\\x00.')\nexcept AttributeError as e:\n"
        "    print('missing:', e)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": f"{tmp_path}:{Path(__file__).resolve().parents[2]}"}, check=False)
    assert done.returncode == 0, done.stderr
    assert "missing:" in done.stdout and "nowhere" in done.stdout
