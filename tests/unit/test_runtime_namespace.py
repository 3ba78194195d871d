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


def start_up(root: Path, package: str, then: str) -> subprocess.CompletedProcess[str]:
    """Link ``package``'s modules shared and loading as the runtime does, in a fresh interpreter; then run ``then``."""
    script = (
        "import importlib\n"
        "from nbship.runtime.namespace import resolve_main_references, share_names\n"
        f"resolve_main_references('{package}', ['shared', 'loading'])\n"
        f"modules = [importlib.import_module('{package}.' + m) for m in ('shared', 'loading')]\n"
        "share_names(modules)\n"
        "shared, loading = modules\n"
    )
    return subprocess.run([sys.executable, "-c", script + then], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": f"{root}:{Path(__file__).resolve().parents[2]}"}, check=False)


def test_pickles_of_main_and_mp_main_resolve_and_helpers_see_later_names(tmp_path: Path) -> None:
    make_package(tmp_path)
    # what a pickle made in a kernel (__main__) or a worker process (__mp_main__) holds, protocol 2 and 4
    kernel = pickle.dumps([len], protocol=4).replace(b"builtins", b"__main__")
    kernel = kernel.replace(b"\x8c\x03len", b"\x8c\x06double")
    worker = b"\x80\x02c__mp_main__\ndouble\nq\x00."
    (tmp_path / "f.pkl").write_bytes(kernel)
    (tmp_path / "g.pkl").write_bytes(worker)
    script = (
        "import pickle\n"
        "assert loading.restored == [shared.double], loading.restored\n"
        "assert pickle.load(open('g.pkl', 'rb')) is shared.double\n"
        "assert shared.fill('a') == 1\n"
        "try:\n    pickle.loads(b'\\x80\\x02c__main__\\nnowhere\\nq\\x00.')\nexcept AttributeError as e:\n"
        "    print('missing:', e)\n"
    )
    done = start_up(tmp_path, "demo_pkg", script)
    assert done.returncode == 0, done.stderr
    assert "missing:" in done.stdout and "nowhere" in done.stdout


def test_a_name_bound_again_in_a_later_module_has_its_last_binding_everywhere(tmp_path: Path) -> None:
    """setup's `model = MyModule()` then load's `model = torch.load(...)`: a setup helper sees load's model."""
    package = tmp_path / "rebound_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "shared.py").write_text("model = 'untrained'\n\ndef describe():\n    return model\n")
    (package / "loading.py").write_text(
        "import pickle\nfrom .shared import model\nbefore = model\nmodel = 'trained'\n"
        "seen = pickle.loads(b'\\x80\\x02c__main__\\nmodel\\nq\\x00.')\n"  # __main__.model while load runs
    )
    done = start_up(tmp_path, "rebound_pkg", "print(shared.describe(), shared.model, loading.before, loading.seen)\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["trained", "trained", "untrained", "trained"]
