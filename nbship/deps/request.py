"""Lock stage, request: a notebook path (+ nbship.yaml + flags) → the ``LockRequest`` the lock is made from.

Used by ``nbship lock`` and by any command that needs an up-to-date lock (``render``, ``build``, ``check``).
Precedence: a flag, then nbship.yaml, then the notebook's own metadata, then the Python running nbship.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from nbship.deps import LockRequest
from nbship.extract import ImportRef

if TYPE_CHECKING:
    from nbship.artifacts import ArtifactRef
    from nbship.config import Config
    from nbship.extract import ServiceCode


def lock_request(
    notebook: Path,
    *,
    config_path: Path | None = None,
    resolver: Literal["uv", "pip-tools"] | None = None,
    python: str | None = None,
    platform: Literal["linux/amd64", "linux/arm64"] = "linux/amd64",
    frozen: bool = False,
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
) -> LockRequest:
    """Read the notebook and its config into a ``LockRequest`` (for ``nbship lock``, which runs no checks).

    Raises:
        NotebookError: the notebook cannot be read.
        ConfigError: nbship.yaml is invalid.
    """
    from nbship.artifacts import find_artifacts
    from nbship.config import load_config
    from nbship.extract import extract_service
    from nbship.notebook import parse_notebook
    from nbship.spec import image_python

    parsed = parse_notebook(notebook)
    config, _ = load_config(notebook, config_path)
    code = extract_service(parsed)
    artifacts, _, _ = find_artifacts(notebook, code.cells, list(config.artifacts))
    return request_from(
        notebook, code, config, artifacts,
        python_version=python or image_python(config, parsed.python_version),
        resolver=resolver, platform=platform, frozen=frozen, upgrade=upgrade, upgrade_packages=upgrade_packages,
    )


def request_from(
    notebook: Path,
    code: ServiceCode,
    config: Config,
    artifacts: Sequence[ArtifactRef],
    *,
    python_version: str,
    resolver: Literal["uv", "pip-tools"] | None = None,
    platform: Literal["linux/amd64", "linux/arm64"] = "linux/amd64",
    frozen: bool = False,
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
) -> LockRequest:
    """The ``LockRequest`` of a notebook already read and checked (``render``, ``check``): nothing is read twice."""
    from nbship.artifacts import download_requirements

    return LockRequest(
        notebook=notebook,
        imports=(*code.imports, *_pickled_imports(notebook, artifacts)),
        pip_requirements=code.pip_requirements,
        config_requirements=tuple(config.requirements),
        python_version=python_version,
        platform=platform,
        resolver=resolver or config.resolver,
        frozen=frozen,
        upgrade=upgrade,
        upgrade_packages=tuple(upgrade_packages),
        download_requirements=download_requirements(list(config.artifacts)),
    )


def _pickled_imports(notebook: Path, artifacts: Sequence[ArtifactRef]) -> list[ImportRef]:
    """Modules the pickled artifacts need to load (scikit-learn for a saved estimator), when installed here."""
    import importlib.util

    from nbship.artifacts import pickled_modules

    found = []
    for artifact in artifacts:
        for module in sorted(pickled_modules(notebook.parent / artifact.path)):
            if module not in sys.stdlib_module_names and importlib.util.find_spec(module) is not None:
                found.append(ImportRef(module, artifact.cell or 0, 1))
    return found
