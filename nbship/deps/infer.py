"""Lock stage, inference: the exported code's imports → the distributions (and versions) the notebook ran with.

A top-level module is mapped through the metadata of the environment running nbship, which is the notebook's
kernel environment (``sklearn`` → ``scikit-learn``, pinned to the installed version). A module not installed
here falls back to a small table of well-known names, unpinned. Standard-library modules, modules beside the
notebook and the service's own dependencies are left out. Anything else is a ``LockError`` naming the import.

An optional import (inside ``try:`` whose handler catches ``ImportError``) follows what the kernel did: when a
distribution provides it here, the notebook ran the ``try`` branch, so it is pinned like any import and the
service takes the same branch; when none does, the notebook ran the fallback, so it is left out (with a note
from ``optional_left_out``), never an error, and never taken from the fallback table.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nbship.errors import Location, LockError
from nbship.extract import ImportRef

if TYPE_CHECKING:
    from importlib.metadata import Distribution

# module → distribution, for packages often imported in notebooks whose names differ or that are not installed
# where nbship runs; only consulted when the environment does not answer
FALLBACK_DISTRIBUTIONS: dict[str, str] = {
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "cv2": "opencv-python-headless",  # the image has no GUI libraries; headless is the server build
    "PIL": "pillow",
    "yaml": "pyyaml",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "dotenv": "python-dotenv",
    "attr": "attrs",
    "jwt": "pyjwt",
    "Crypto": "pycryptodome",
    "imblearn": "imbalanced-learn",
    "category_encoders": "category-encoders",
    "sentence_transformers": "sentence-transformers",
    "huggingface_hub": "huggingface-hub",
    "fitz": "pymupdf",
    "docx": "python-docx",
    "numpy": "numpy",
    "pandas": "pandas",
    "scipy": "scipy",
    "joblib": "joblib",
    "statsmodels": "statsmodels",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "torch": "torch",
    "torchvision": "torchvision",
    "tensorflow": "tensorflow",
    "keras": "keras",
    "transformers": "transformers",
    "tokenizers": "tokenizers",
    "safetensors": "safetensors",
    "onnxruntime": "onnxruntime",
    "onnx": "onnx",
    "polars": "polars",
    "pyarrow": "pyarrow",
    "requests": "requests",
    "httpx": "httpx",
    "pydantic": "pydantic",
    "matplotlib": "matplotlib",
    "seaborn": "seaborn",
    "nltk": "nltk",
    "spacy": "spacy",
    "gensim": "gensim",
    "shap": "shap",
    "tqdm": "tqdm",
    "cloudpickle": "cloudpickle",
    "sqlalchemy": "sqlalchemy",
    "lxml": "lxml",
    "tiktoken": "tiktoken",
}

_NON_ALNUM = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    """PEP 503 normalised project name (``Scikit_Learn`` → ``scikit-learn``)."""
    return _NON_ALNUM.sub("-", name).lower()


@dataclass(frozen=True)
class InferredRequirement:
    """A distribution the exported code needs; ``version`` is the installed one (None: not installed here)."""

    # ``imports`` are the references that led to it (for messages and the lock's module map)

    distribution: str
    version: str | None
    imports: tuple[ImportRef, ...]

    @property
    def spec(self) -> str:
        return f"{self.distribution}=={self.version}" if self.version else self.distribution


def infer_requirements(
    imports: Sequence[ImportRef],
    notebook: Path,
    *,
    exclude: Iterable[str] = (),
    covered: Iterable[str] = (),
    known: Mapping[str, Sequence[str]] | None = None,
    search_path: Sequence[str] | None = None,
) -> tuple[InferredRequirement, ...]:
    """Map ``imports`` to distributions, pinned to the versions installed on ``search_path`` (default sys.path).

    ``exclude``: distributions not to infer (the service's own, already required with tested ranges).
    ``covered``: distributions the user names explicitly; an unknown module of the same name is theirs.
    ``known``: module → distributions recorded in the previous lock, used when the module is not installed
    here (a CI job that has nbship but not the notebook's environment), before the fallback table.

    Raises:
        LockError: a module is neither installed nor known; the message names the import, cell and line.
    """
    from importlib.metadata import distributions

    excluded = {canonical_name(n) for n in exclude}
    user_named = {canonical_name(n) for n in covered}
    wanted = {ref.module for ref in imports if not _is_stdlib(ref.module) and not _is_local(ref.module, notebook)}
    providers: dict[str, list[tuple[str, str]]] = {}
    for dist in distributions(path=list(search_path) if search_path is not None else sys.path):
        modules = wanted.intersection(_top_level_modules(dist))
        if modules:
            name, version = dist.metadata["Name"], dist.version
            for module in modules:
                if name and (name, version) not in providers.setdefault(module, []):
                    providers[module].append((name, version))
    found: dict[str, tuple[str | None, list[ImportRef]]] = {}
    unknown: list[ImportRef] = []
    required = {ref.module for ref in imports if not ref.optional}
    for ref in sorted(imports, key=lambda r: (r.cell, r.line)):
        if ref.module not in wanted:
            continue
        candidates: list[tuple[str, str | None]] = list(providers.get(ref.module, []))
        if not candidates and known and ref.module in known:
            candidates = [(d, None) for d in known[ref.module]]
        if not candidates and ref.module in FALLBACK_DISTRIBUTIONS and ref.module in required:
            candidates = [(FALLBACK_DISTRIBUTIONS[ref.module], None)]
        if not candidates:
            if ref.module in required and canonical_name(ref.module) not in user_named:
                unknown.append(ref)
            continue
        # a namespace package (``google``) may come from several distributions: the code may use any of them
        for dist_name, dist_version in candidates:
            key = canonical_name(dist_name)
            if key in excluded:
                continue
            found.setdefault(key, (dist_version, []))[1].append(ref)
    if unknown:
        raise _unknown_error(unknown, notebook)
    return tuple(InferredRequirement(name, version, tuple(refs)) for name, (version, refs) in sorted(found.items()))


def optional_left_out(
    imports: Sequence[ImportRef], inferred: Sequence[InferredRequirement], notebook: Path,
    *, covered: Iterable[str] = (),
) -> tuple[str, ...]:
    """A note for each optional import that ``infer_requirements`` left out (nothing here provides it)."""
    kept = {ref.module for r in inferred for ref in r.imports}
    user_named = {canonical_name(n) for n in covered}
    required = {ref.module for ref in imports if not ref.optional}
    notes: dict[str, str] = {}
    for ref in sorted(imports, key=lambda r: (r.cell, r.line)):
        if ref.module in kept or ref.module in required or canonical_name(ref.module) in user_named:
            continue
        if _is_stdlib(ref.module) or _is_local(ref.module, notebook):
            continue
        notes.setdefault(ref.module, (
            f"{Location(notebook.name, ref.cell, ref.line)}: optional 'import {ref.module}' (inside try/except "
            f"ImportError) is left out of the lock: it is not installed where the notebook ran, so the service "
            f"takes the except branch as the notebook did; name it in nbship.yaml `requirements:` to ship it"
        ))
    return tuple(notes.values())


def installed_versions(search_path: Sequence[str] | None = None) -> dict[str, str]:
    """Canonical name → version of every distribution on ``search_path`` (default sys.path); first wins."""
    from importlib.metadata import distributions

    found: dict[str, str] = {}
    for dist in distributions(path=list(search_path) if search_path is not None else sys.path):
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonical_name(name), dist.version)
    return found


def _unknown_error(unknown: list[ImportRef], notebook: Path) -> LockError:
    lines = [
        f"{Location(notebook.name, ref.cell, ref.line)}: 'import {ref.module}': no installed distribution "
        f"provides module '{ref.module}', and nbship does not know which one does"
        for ref in unknown
    ]
    return LockError(
        "\n".join(lines),
        hint="install it in the environment that runs nbship (the notebook's kernel), or name its distribution "
        "in nbship.yaml `requirements:` or requirements.in if it has the module's name",
    )


def _is_stdlib(module: str) -> bool:
    return module in sys.stdlib_module_names or module == "__future__"


def _is_local(module: str, notebook: Path) -> bool:
    """A module or package beside the notebook is the user's own code, not a distribution."""
    folder = notebook.parent
    return (folder / f"{module}.py").is_file() or (folder / module / "__init__.py").is_file()


def _top_level_modules(dist: Distribution) -> set[str]:
    """The importable top-level names a distribution installs.

    ``importlib.metadata.packages_distributions()`` does the same but builds a path object per RECORD line,
    which takes ~0.4 s for a data-science environment; this reads the files as text (~0.04 s).
    """
    declared = dist.read_text("top_level.txt")
    if declared:
        return set(declared.split())
    names: set[str] = set()
    for line in (dist.read_text("RECORD") or "").splitlines():
        path = line.split(",", 1)[0]
        first, slash, _ = path.partition("/")
        if slash:
            if not first.endswith((".dist-info", ".data", ".egg-info")) and first not in ("..", "__pycache__"):
                names.add(first)
        elif first.endswith(".py"):
            names.add(first[:-3])
        elif first.endswith((".so", ".pyd")):
            names.add(first.split(".", 1)[0])
    return names
