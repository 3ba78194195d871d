"""``nbship --help`` stays fast: the CLI imports nothing heavy until a command needs it."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["docker", "jinja2", "nbformat", "yaml", "pydantic", "fastapi", "IPython", "uvicorn", "uvloop", "httptools",
         "rich"]


def test_the_cli_imports_no_heavy_module_at_start_up() -> None:
    script = (
        "import sys, json\n"
        "from nbship.cli import app\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []


def test_version_and_help() -> None:
    done = subprocess.run([sys.executable, "-m", "nbship", "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.startswith("nbship ")
    argv = [sys.executable, "-m", "nbship", "check", "--help"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "Example: nbship check" in done.stdout


def test_every_command_has_an_example_in_its_help() -> None:
    import typer.main

    from nbship.cli import app

    group = typer.main.get_command(app)
    names = sorted(group.commands)  # type: ignore[attr-defined]
    assert {"init", "check", "lock", "render", "serve", "build", "deploy", "status", "rollback"} <= set(names)
    for name in names:
        assert "Example: nbship " + name in (group.commands[name].help or ""), name  # type: ignore[attr-defined]


def test_the_readme_documents_every_exit_code() -> None:
    import re

    from nbship.errors import ExitCode
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    documented = {int(m) for m in re.findall(r"^\| (\d+) \|", table, flags=re.M)}
    assert documented == {int(code) for code in ExitCode}
