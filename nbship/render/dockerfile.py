"""Render stage, container part: ``DockerfileContext`` → the build context's ``Dockerfile`` and ``.dockerignore``.

The image has two stages. The builder creates ``/opt/venv`` and installs ``requirements.lock`` with
``--require-hashes --no-deps``; it alone sees the user's pip settings (``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL``,
``PIP_TRUSTED_HOST`` as build arguments declared only there, and the CA bundle copied from
``PIP_CA_BUNDLE`` when the builder put one in the context). The runtime stage copies the venv, then each
artifact (own layers), then the code, and runs as the numeric user 10001 with only ``/tmp`` written.

Base image: ``python:<version>-slim`` unless ``base_image`` is configured. With a GPU in the config, a CUDA
runtime base is chosen by the CUDA build of the locked framework, read from ``requirements.lock``:

==============  ===============================================  =================
CUDA build      base image                                       its Python
==============  ===============================================  =================
11.8            nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04    3.10
12.1            nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04    3.10
12.4            nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04     3.10
12.6            nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04     3.12
12.8            nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04     3.12
==============  ===============================================  =================

The CUDA build is ``gpu.cuda`` when set, else the local version of ``torch``/``torchvision`` (``+cu121`` →
12.1), else the ``nvidia-cuda-runtime-cu1X`` pin that torch, ``tensorflow[and-cuda]`` and ``jax[cuda12]`` pull
in (``12.4.127`` → 12.4), else ``jaxlib``'s ``+cuda12`` (newest 12.x row). A build between rows takes the next
row of the same major version (the CUDA runtime is backward compatible within a major version). The CUDA
images carry no Python, so both stages install the distribution's ``python3`` with apt; that Python must be
the one the lock was made for. This table is not exercised by a build in CI (no GPU, no CUDA image offline).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nbship import __version__
from nbship.errors import ConfigError

if TYPE_CHECKING:
    from nbship.spec import ProjectSpec

# Where the image builder puts the host's CA bundle inside the build context (ignored by the content hash).
PIP_CA_BUNDLE = ".nbship/pip/ca.pem"
USER_ID = 10001


@dataclass(frozen=True)
class CudaBase:
    image: str
    python: str


CUDA_BASES: Mapping[str, CudaBase] = {
    "11.8": CudaBase("nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04", "3.10"),
    "12.1": CudaBase("nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04", "3.10"),
    "12.4": CudaBase("nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04", "3.10"),
    "12.6": CudaBase("nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04", "3.12"),
    "12.8": CudaBase("nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04", "3.12"),
}


@dataclass(frozen=True)
class ArtifactCopy:
    """One ``COPY`` of an artifact: its path in the context and under ``/app`` (a folder ends in ``/``)."""

    source: str
    target: str


@dataclass(frozen=True)
class BaseImage:
    image: str
    python: str = "python3"
    # apt packages that give a Python-less base (CUDA) its interpreter, per stage
    builder_packages: tuple[str, ...] = ()
    runtime_packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class DockerfileContext:
    """Everything ``Dockerfile.jinja`` reads; only stable values, so the content hash of the context is too."""

    name: str
    version: str
    package: str
    notebook_file: str
    notebook_sha256: str
    lock_sha256: str
    port: int
    base: BaseImage
    artifacts: tuple[ArtifactCopy, ...] = ()
    # folders under /app the service writes at start-up (remote artifacts), owned by the service's user
    writable_dirs: tuple[str, ...] = ()
    source: str | None = None
    # the venv's own installers that the lock does not pin: removed after the install (pip last, it does it)
    unlocked_installers: tuple[str, ...] = ("setuptools", "wheel", "pip")
    start_period_seconds: int = 60
    uid: int = USER_ID
    nbship_version: str = __version__
    pip_ca_bundle: str = PIP_CA_BUNDLE
    python: str = field(init=False)
    base_image: str = field(init=False)
    builder_packages: tuple[str, ...] = field(init=False)
    runtime_packages: tuple[str, ...] = field(init=False)
    pip_ca_pattern: str = field(init=False)
    pip_ca_target: str = field(init=False)

    def __post_init__(self) -> None:
        # flattened for the template, which holds no computation
        object.__setattr__(self, "python", self.base.python)
        object.__setattr__(self, "base_image", self.base.image)
        object.__setattr__(self, "builder_packages", self.base.builder_packages)
        object.__setattr__(self, "runtime_packages", self.base.runtime_packages)
        # a bracket on the last letter turns the path into a pattern, which may match nothing
        object.__setattr__(self, "pip_ca_pattern", f"{self.pip_ca_bundle[:-1]}[{self.pip_ca_bundle[-1]}]")
        object.__setattr__(self, "pip_ca_target", "/tmp/build/" + self.pip_ca_bundle.rsplit("/", 1)[-1])


def artifact_copy(path: str, is_dir: bool) -> ArtifactCopy:
    """The ``COPY`` of an artifact at ``path`` (relative, POSIX) to the same path under ``/app``."""
    clean = path.strip("/")
    if is_dir:
        return ArtifactCopy(clean + "/", f"/app/{clean}/")
    return ArtifactCopy(clean, f"/app/{clean}")


def locked_pins(lock_text: str) -> dict[str, str]:
    """``name → version`` of a lock's pins (names normalised as in PEP 503), read by the lock stage's own parser."""
    from nbship.deps.lockfile import parse_requirements

    return {entry.name: entry.version for entry in parse_requirements(lock_text)}


def unlocked_installers(lock_text: str) -> tuple[str, ...]:
    """``venv`` seeds pip (and setuptools before Python 3.12); those the lock does not pin must not stay behind."""
    pins = locked_pins(lock_text)
    return tuple(tool for tool in ("setuptools", "wheel", "pip") if tool not in pins)


def cuda_build(pins: Mapping[str, str]) -> str | None:
    """The CUDA ``major.minor`` (or bare major) the locked frameworks were built for; None for CPU builds."""
    for name in ("torch", "torchvision", "torchaudio"):
        local = re.search(r"\+cu(\d+)(\d)$", pins.get(name, ""))
        if local:
            return f"{local.group(1)}.{local.group(2)}"
    for name, version in sorted(pins.items()):
        if re.fullmatch(r"nvidia-cuda-runtime(-cu\d+)?", name):
            parts = version.split(".")
            return ".".join(parts[:2])
    for name in ("jaxlib", "jax-cuda12-plugin", "jax-cuda12-pjrt", "jax-cuda11-plugin"):
        if name in pins:
            found = re.search(r"cuda(\d+)", name + pins[name])
            if found:
                return found.group(1)
    return None


def cuda_base(cuda: str, python: str) -> BaseImage:
    """The table row for ``cuda`` (see the module docstring), checked against the project's Python.

    Raises:
        ConfigError: no row fits that CUDA build, or its Python is not the project's.
    """
    major = cuda.split(".")[0]
    wanted = tuple(int(p) for p in cuda.split("."))
    rows = [v for v in CUDA_BASES if v.split(".")[0] == major and tuple(int(p) for p in v.split(".")) >= wanted]
    if len(wanted) == 1:
        rows = rows[-1:]
    if not rows:
        known = ", ".join(CUDA_BASES)
        raise ConfigError(
            f"nbship.yaml: gpu: no CUDA base image for CUDA {cuda} (known: {known})",
            hint="set base_image to a CUDA runtime image with Python, or gpu.cuda to a known version",
        )
    row = CUDA_BASES[rows[0]]
    if row.python != python:
        raise ConfigError(
            f"nbship.yaml: gpu: the CUDA {rows[0]} base image ({row.image}) has Python {row.python}, "
            f"but the project is locked for Python {python}",
            hint=f"set python: {row.python} and lock again, or set base_image to an image with Python {python}",
        )
    return BaseImage(
        row.image,
        python="python3",
        builder_packages=("python3", "python3-venv"),
        runtime_packages=("python3",),
    )


def choose_base_image(python: str, *, override: str | None, gpu: bool, cuda: str | None, lock_text: str) -> BaseImage:
    """``base_image`` as configured, else with a GPU the CUDA table's row, else ``python:<python>-slim``.

    A GPU with no CUDA framework in the lock (and no ``gpu.cuda``) keeps the plain Python base: the code brings
    no CUDA libraries to match, and the pod still requests the GPU.

    Raises:
        ConfigError: the CUDA build cannot be matched (see ``cuda_base``).
    """
    if override:
        return BaseImage(override)
    version = (cuda or cuda_build(locked_pins(lock_text))) if gpu else None
    if version is None:
        return BaseImage(f"python:{python}-slim")
    return cuda_base(version, python)


def render_dockerfile(ctx: DockerfileContext) -> dict[str, str]:
    """``{"Dockerfile": …, ".dockerignore": …}`` for ``ctx``; identical contexts give identical bytes.

    Raises:
        jinja2.UndefinedError: the template reads a name the context lacks (a bug in nbship).
    """
    from nbship.render.templates import environment

    env = environment()
    return {
        "Dockerfile": env.get_template("docker/Dockerfile.jinja").render(ctx=ctx),
        ".dockerignore": env.get_template("docker/dockerignore.jinja").render(ctx=ctx),
    }


def dockerfile_context(spec: ProjectSpec, lock_text: str, *, source: str | None = None) -> DockerfileContext:
    """The context of ``spec``'s Dockerfile; ``lock_text`` is ``requirements.lock`` as written in the context.

    Raises:
        ConfigError: as ``choose_base_image``.
    """
    from nbship.render import writable_dirs

    base = choose_base_image(
        spec.python_version,
        override=spec.base_image,
        gpu=spec.gpu is not None,
        cuda=spec.gpu.cuda if spec.gpu else None,
        lock_text=lock_text,
    )
    return DockerfileContext(
        name=spec.name,
        version=spec.version,
        package=spec.package,
        notebook_file=spec.notebook_file,
        notebook_sha256=spec.notebook_sha256,
        lock_sha256=hashlib.sha256(lock_text.encode()).hexdigest(),
        port=spec.port,
        base=base,
        artifacts=tuple(artifact_copy(a.path, a.is_dir) for a in spec.artifacts),
        writable_dirs=tuple(f"/app/{d}" for d in writable_dirs(spec)),
        source=source,
        unlocked_installers=unlocked_installers(lock_text),
        start_period_seconds=spec.healthcheck_start_seconds,
        nbship_version=spec.nbship_version,
    )
