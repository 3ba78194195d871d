"""Lock stage, inputs: every source of requirements, merged by precedence, each hashed for staleness checks.

Sources, strongest first: ``requirements:`` in nbship.yaml, ``requirements.in`` beside the notebook, the
notebook's ``%pip install`` lines, then the pins inferred from imports. For each distribution the strongest
source that names it supplies its requirement lines; weaker ones are dropped with a note. The service's own
dependencies (``SERVICE_REQUIREMENTS``) are always added and apply together with whatever the user wrote.
A requirement holding a credential is refused before anything is resolved: the lock would keep it, and the image
installs from the lock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from nbship.deps.infer import InferredRequirement, canonical_name
from nbship.errors import Location, LockError
from nbship.extract import ImportRef, PipRequirement

SourceKind = Literal["config", "requirements.in", "pip", "import", "service"]
_RANK: dict[SourceKind, int] = {"config": 4, "requirements.in": 3, "pip": 2, "import": 1}
REQUIREMENTS_IN = "requirements.in"


@dataclass(frozen=True)
class Requirement:
    """One requirement line and where the user wrote it (``where`` is shown in every message about it)."""

    spec: str
    name: str  # canonical distribution name
    kind: SourceKind
    where: str
    constrains: bool = True  # says which versions (a specifier or a URL), not just the name


@dataclass(frozen=True)
class LockInputs:
    """What the resolver gets, and a hash of each input (the lock header records them)."""

    requirements: tuple[Requirement, ...]
    inferred: tuple[InferredRequirement, ...]
    hashes: Mapping[str, str]
    modules: Mapping[str, tuple[str, ...]]  # module → distributions, recorded in the lock
    notes: tuple[str, ...] = field(default=())

    @property
    def input_hash(self) -> str:
        return _sha256("".join(f"{k}={v}\n" for k, v in sorted(self.hashes.items())))

    def winner(self, name: str) -> Requirement | None:
        """The requirement that decides ``name``'s versions (a user's, or the inferred pin), if any."""
        return next((r for r in self.requirements if r.name == name and r.kind != "service" and r.constrains), None)


def parse_spec(spec: str, where: str) -> tuple[str, str, bool]:
    """``spec`` → (canonical name, normalised spec, whether it restricts versions: a specifier or a URL).

    Raises:
        LockError: not a PEP 508 requirement, or it holds a credential; the message names ``where``.
    """
    from packaging.requirements import InvalidRequirement
    from packaging.requirements import Requirement as Pep508

    from nbship.secrets import REQUIREMENT_HINT, scan_requirement

    for hit in scan_requirement(spec):  # before parsing: the error about an invalid spec quotes it whole
        raise LockError(f"{where}: looks like a credential ({hit.kind}, '{hit.preview}')", hint=REQUIREMENT_HINT)

    try:
        parsed = Pep508(spec)
    except InvalidRequirement as e:
        raise LockError(
            f"{where}: '{spec}' is not a requirement nbship can lock ({e})",
            hint="write a name with an optional version range, or `name @ URL` for a direct reference",
        ) from None
    return canonical_name(parsed.name), str(parsed), bool(parsed.specifier) or parsed.url is not None


def read_requirements_in(folder: Path) -> tuple[tuple[int, str], ...]:
    """(line number, requirement) of ``requirements.in`` beside the notebook, comments and blanks removed.

    Raises:
        LockError: a line holds a pip option (``-r``, ``--index-url``…), which nbship does not follow.
    """
    path = folder / REQUIREMENTS_IN
    if not path.is_file():
        return ()
    lines: list[tuple[int, str]] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = raw.split(" #", 1)[0].strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("-"):
            raise LockError(
                f"{REQUIREMENTS_IN}, line {number}: pip option '{text.split()[0]}' is not read by nbship",
                hint="index and TLS settings come from pip's own configuration (`pip config list`); "
                "list requirements one per line",
            )
        lines.append((number, text))
    return tuple(lines)


def collect_inputs(
    *,
    notebook: Path,
    pip_requirements: Sequence[PipRequirement],
    config_requirements: Sequence[str],
    requirements_in: Sequence[tuple[int, str]],
    service_requirements: Sequence[str],
    inferred: Sequence[InferredRequirement],
    target: str,
) -> LockInputs:
    """Merge the sources by precedence and hash each one.

    Raises:
        LockError: a line is not a valid requirement, or holds a credential.
    """
    name = notebook.name
    user: list[Requirement] = []
    for i, spec in enumerate(config_requirements):
        user.append(_requirement(spec, "config", f"nbship.yaml: requirements[{i}]"))
    for number, spec in requirements_in:
        user.append(_requirement(spec, "requirements.in", f"{REQUIREMENTS_IN}, line {number}"))
    inferred_names = {r.distribution for r in inferred}
    service = [_requirement(s, "service", "nbship's service runtime") for s in service_requirements]
    service_names = {r.name for r in service}
    for pip in pip_requirements:
        where = f"{Location(name, pip.cell, pip.line)} (%pip install)"
        if not pip.exported and spec_name(pip.spec) not in inferred_names | service_names:
            continue  # an untagged cell's %pip line counts only for what the service imports
        user.append(_requirement(pip.spec, "pip", where))
    user += [
        Requirement(r.spec, r.distribution, "import", _import_where(name, r.imports[0], r.distribution),
                    constrains=r.version is not None)
        for r in inferred
    ]
    # only a requirement that says which versions ("==1.2", ">=2", "@ URL") replaces weaker ones; a bare
    # `%pip install pandas` keeps the version the notebook ran with
    strongest: dict[str, int] = {}
    for req in user:
        if req.constrains:
            strongest[req.name] = max(strongest.get(req.name, 0), _RANK[req.kind])
    kept = [r for r in user if not r.constrains or _RANK[r.kind] == strongest[r.name]]
    notes = tuple(
        f"{r.spec} from {r.where} is replaced by {_describe_winner(kept, r.name)}"
        for r in user
        if r not in kept
    )
    modules: dict[str, set[str]] = {}
    for r in inferred:
        for ref in r.imports:
            modules.setdefault(ref.module, set()).add(r.distribution)
    frozen_modules = {m: tuple(sorted(d)) for m, d in sorted(modules.items())}
    hashes = {
        "imports": _sha256("\n".join(f"{m}={' '.join(d)}" for m, d in frozen_modules.items())),
        "notebook %pip": _sha256("\n".join(sorted({r.spec for r in user if r.kind == "pip"}))),
        "nbship.yaml": _sha256("\n".join(r.spec for r in user if r.kind == "config")),
        "requirements.in": _sha256("\n".join(r.spec for r in user if r.kind == "requirements.in")),
        "service": _sha256("\n".join(r.spec for r in service)),
        "target": _sha256(target),
    }
    ordered = sorted(kept, key=lambda r: (r.name, -_RANK[r.kind])) + service
    return LockInputs(tuple(ordered), tuple(inferred), hashes, frozen_modules, notes)


def _requirement(spec: str, kind: SourceKind, where: str) -> Requirement:
    name, normalised, constrains = parse_spec(spec, where)
    return Requirement(normalised, name, kind, where, constrains=constrains)


def spec_name(spec: str) -> str | None:
    """The canonical name of a requirement, or None when ``spec`` is not one."""
    try:
        return parse_spec(spec, "")[0]
    except LockError:
        return None


def _import_where(notebook: str, ref: ImportRef, distribution: str) -> str:
    return f"{Location(notebook, ref.cell, ref.line)} (import {ref.module} → {distribution})"


def _describe_winner(kept: Sequence[Requirement], name: str) -> str:
    winners = [r for r in kept if r.name == name]
    return ", ".join(f"{r.spec} from {r.where}" for r in winners)


def _sha256(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
