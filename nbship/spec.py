"""Stage 4: checked notebook + config → ``ProjectSpec``, frozen and fully resolved.

Renderers, builders and deployers see only this object: every default and precedence rule is applied here.
"""

from __future__ import annotations

import keyword
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbship import __version__
from nbship.analysis import EnvRead, ModulePlan, Parameter
from nbship.artifacts import ArtifactRef, RemoteArtifact
from nbship.config import Config


@dataclass(frozen=True)
class ExampleSpec:
    request: Any
    response: Any
    cell: int


@dataclass(frozen=True)
class ProjectSpec:
    name: str  # DNS-1123
    version: str
    package: str  # Python identifier of the generated package
    python_version: str
    notebook_file: str
    notebook_path: Path
    notebook_sha256: str
    modules: tuple[ModulePlan, ...]
    parameters: tuple[Parameter, ...]
    settings: tuple[tuple[str, str], ...]
    artifacts: tuple[ArtifactRef, ...]
    remote_artifacts: tuple[RemoteArtifact, ...]
    example: ExampleSpec | None
    config: Config
    env_reads: tuple[EnvRead, ...] = ()
    nbship_version: str = __version__

    @property
    def source_dir(self) -> Path:
        return self.notebook_path.parent


def service_name(notebook: Path) -> str:
    """The notebook's file name made DNS-1123-safe: ``Churn Model v2.ipynb`` → ``churn-model-v2``."""
    name = re.sub(r"[^a-z0-9]+", "-", notebook.stem.lower()).strip("-")[:63].strip("-")
    return name or "model"


def package_name(name: str, taken: set[str]) -> str:
    """A Python identifier for the generated package that shadows no module the code imports."""
    package = name.replace("-", "_")
    if package[0].isdigit() or keyword.iskeyword(package):
        package = "model_" + package
    if package in taken or package in sys.stdlib_module_names or package in ("nbship", "nbship_runtime", "main"):
        package += "_service"
    return package


def image_python(config: Config, notebook_python: str | None) -> str:
    """The image's Python: nbship.yaml, else the notebook's kernel, else the Python running nbship."""
    return config.python or notebook_python or f"{sys.version_info.major}.{sys.version_info.minor}"


def build_spec(
    *,
    notebook_path: Path,
    notebook_sha256: str,
    notebook_python: str | None,
    config: Config,
    modules: tuple[ModulePlan, ...],
    parameters: tuple[Parameter, ...],
    settings: dict[str, str],
    artifacts: list[ArtifactRef],
    remote_artifacts: list[RemoteArtifact],
    example: ExampleSpec | None,
    imported: set[str],
    env_reads: tuple[EnvRead, ...] = (),
    nbship_version: str = __version__,
) -> ProjectSpec:
    name = config.name or service_name(notebook_path)
    python = image_python(config, notebook_python)
    return ProjectSpec(
        name=name,
        version=config.version,
        package=package_name(name, imported),
        python_version=python,
        notebook_file=notebook_path.name,
        notebook_path=notebook_path,
        notebook_sha256=notebook_sha256,
        modules=modules,
        parameters=parameters,
        settings=tuple(sorted(settings.items())),
        artifacts=tuple(artifacts),
        remote_artifacts=tuple(remote_artifacts),
        example=example,
        config=config,
        env_reads=env_reads,
        nbship_version=nbship_version,
    )
