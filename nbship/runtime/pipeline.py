"""Start-up of the generated package and the pipeline it serves: ``load_pipeline(root) -> Pipeline``.

The order is the contract of ``docs/architecture.md``: settings, parameters (overridable from
``NBSHIP_PARAM_<NAME>``), remote artifacts, then the modules in order; ``loading`` runs the load cells. Pickles
that name the notebook's ``__main__`` find the exported definitions, and once every module is loaded each sees
the names the others define, as the kernel's single namespace does (``namespace.py``).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .manifest import Manifest, read_manifest
from .namespace import resolve_main_references, share_names


class StartupError(Exception):
    """The service cannot start: a parameter override has the wrong type, or a load cell failed."""


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Pipeline:
    manifest: Manifest
    preprocess: Callable[[Any], Any]
    predict: Callable[[Any], Any]
    postprocess: Callable[[Any], Any]
    load_seconds: float

    def __call__(self, payload: Any) -> Any:
        return self.postprocess(self.predict(self.preprocess(payload)))


def parse_parameter(raw: str, default: Any, name: str) -> Any:
    """Parse an environment override against the notebook value's type.

    Raises:
        StartupError: the text is not a value of that type.
    """
    kind = type(default)
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is str:
            return raw
        value = json.loads(raw)
    except ValueError:
        raise StartupError(f"parameter {name}: expected {kind.__name__}, got {raw!r}") from None
    if default is not None and not isinstance(value, kind):
        raise StartupError(f"parameter {name}: expected {kind.__name__} (JSON), got {raw!r}")
    return value


def load_pipeline(root: Path, environ: dict[str, str] | None = None) -> Pipeline:
    """Import the generated package under ``root`` and return its pipeline.

    Raises:
        StartupError: a parameter override is invalid.
        ManifestError: ``nbship.json`` is not a manifest this runtime reads.
        Exception: whatever a load cell raises, unchanged (the process must exit with it).
    """
    env = os.environ if environ is None else environ
    manifest = read_manifest(root)
    for key, value in manifest.settings.items():
        os.environ.setdefault(key, value)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    package = manifest.package
    modules = list(manifest.modules)
    loaded: dict[str, ModuleType] = {}
    resolve_main_references(package, modules)
    if "parameters" in modules:
        params = importlib.import_module(f"{package}.parameters")
        for parameter in manifest.parameters:
            if parameter.env in env:
                setattr(params, parameter.name, parse_parameter(env[parameter.env], parameter.default, parameter.name))
        loaded["parameters"] = params
    if manifest.remote_artifacts:
        from .artifacts import fetch_remote_artifacts

        fetch_remote_artifacts(root, manifest.remote_artifacts)
    started = time.perf_counter()
    for name in modules:
        if name not in loaded:
            loaded[name] = importlib.import_module(f"{package}.{name}")
    share_names([loaded[name] for name in modules])
    load_seconds = time.perf_counter() - started
    stages = manifest.stages

    def stage(role: str) -> Callable[[Any], Any]:
        module = stages.get(role)
        return getattr(loaded[module], role) if module else _identity

    return Pipeline(
        manifest=manifest,
        preprocess=stage("preprocess"),
        predict=stage("predict"),
        postprocess=stage("postprocess"),
        load_seconds=load_seconds,
    )


def to_jsonable(value: Any) -> Any:
    """Convert what a pipeline returns (numpy, pandas, pydantic, dataclasses, tuples) to JSON types."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    # numpy arrays and scalars, pandas objects, pydantic models (``model_dump``)
    for method in ("tolist", "item", "to_dict", "model_dump"):
        convert = getattr(value, method, None)
        if callable(convert):
            return to_jsonable(convert())
    return str(value)
