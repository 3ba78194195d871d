"""Lock stage, the file: ``requirements.lock``'s format, its header, staleness, and the atomic write.

One format whichever resolver wrote it: a header of ``# key: value`` comment lines (nbship and resolver
versions, target, one hash per input and a combined one, the module → distribution map), then pip-compile
style pins sorted by name, each followed by its ``--hash=sha256:`` lines. No index URL, no timestamp and no
"# via" annotation is written, so the same resolution gives the same bytes.

The lock is copied into the image as it is (``/version`` reports its sha256), so a lock holding what nbship never
writes — a pip option line (``--index-url``, as pip-compile and ``uv pip compile --emit-index-url`` write them) or
credentials in a URL — counts as stale, and is never written.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nbship.deps.infer import canonical_name
from nbship.deps.inputs import LockInputs

LOCK_FILE = "requirements.lock"
# user:password@ in a URL; ${VARIABLE} placeholders (expanded by pip at install time) hold no secret
_USERINFO_PASSWORD = re.compile(r"://[^/@\s:'\"]*:(?!\$\{)[^/@\s'\"]+@")
_TITLE = "# {lock}: written by `nbship lock` for {notebook}. Commit it; do not edit it by hand."


@dataclass(frozen=True)
class LockEntry:
    """One pinned distribution: ``line`` is ``name==version`` (or ``name @ url``), ``hashes`` sorted."""

    name: str
    line: str
    version: str
    hashes: tuple[str, ...]


@dataclass(frozen=True)
class ParsedLock:
    header: Mapping[str, str]
    inputs: Mapping[str, str]
    modules: Mapping[str, tuple[str, ...]]
    entries: tuple[LockEntry, ...]
    foreign: tuple[str, ...] = ()  # why the text is not as nbship writes it (``foreign_lines``), worded safely

    @property
    def pins(self) -> dict[str, str]:
        return {e.name: e.version for e in self.entries}


def parse_requirements(text: str) -> tuple[LockEntry, ...]:
    """Read pip-compile / uv output (or a lock's body) into entries; comments and option lines are skipped."""
    from packaging.requirements import Requirement

    entries: dict[str, LockEntry] = {}
    for logical in _logical_lines(text):
        words = logical.split()
        if not words or words[0].startswith("-"):
            continue  # --index-url, --find-links…: never copied into the lock
        hashes = tuple(sorted(w.split("=", 1)[1] for w in words if w.startswith("--hash=")))
        spec = " ".join(w for w in words if not w.startswith("--hash="))
        parsed = Requirement(spec)
        name = canonical_name(parsed.name)
        pinned = [s.version for s in parsed.specifier if s.operator in ("==", "===")]
        version = parsed.url or (pinned[0] if pinned else str(parsed.specifier))
        line = f"{name} @ {parsed.url}" if parsed.url else f"{name}=={version}"
        if parsed.marker is not None:
            line += f" ; {parsed.marker}"
        entries[name] = LockEntry(name, line, version, hashes)
    return tuple(entries[k] for k in sorted(entries))


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") and not pending:
            continue
        stripped = stripped.split(" #", 1)[0].strip()  # "# via" comments at a line's end
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    if pending:
        lines.append(pending)
    return lines


def render_lock(
    entries: Sequence[LockEntry],
    inputs: LockInputs,
    *,
    notebook: str,
    nbship_version: str,
    resolver: str,
    python_version: str,
    platform: str,
) -> str:
    """The whole text of ``requirements.lock``."""
    header = [
        _TITLE.format(lock=LOCK_FILE, notebook=notebook),
        f"# nbship-version: {nbship_version}",
        f"# resolver: {resolver}",
        f"# python: {python_version}",
        f"# platform: {platform}",
        f"# input-hash: {inputs.input_hash}",
        *(f"# input {name}: {digest}" for name, digest in sorted(inputs.hashes.items())),
        "# modules: " + " ".join(f"{m}={','.join(d)}" for m, d in inputs.modules.items()),
        "#",
    ]
    body: list[str] = []
    for entry in entries:
        if not entry.hashes:
            body.append(entry.line)
            continue
        body.append(entry.line + " \\")
        body += [f"    --hash={h} \\" for h in entry.hashes[:-1]] + [f"    --hash={entry.hashes[-1]}"]
    return "\n".join(header + body) + "\n"


def parse_lock(text: str) -> ParsedLock:
    """Read a lock nbship wrote. A file without nbship's header parses with an empty header (stale)."""
    header: dict[str, str] = {}
    inputs: dict[str, str] = {}
    modules: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        key, sep, value = line[1:].strip().partition(": ")
        if not sep:
            continue
        if key.startswith("input "):
            inputs[key[len("input ") :]] = value.strip()
        elif key == "modules":
            for item in value.split():
                module, _, dists = item.partition("=")
                modules[module] = tuple(d for d in dists.split(",") if d)
        else:
            header[key] = value.strip()
    try:
        entries = parse_requirements(text)
    except ValueError:  # packaging's InvalidRequirement: a hand edit broke a line
        header, entries = {}, ()
    return ParsedLock(header, inputs, modules, entries, foreign_lines(text))


def foreign_lines(text: str) -> tuple[str, ...]:
    """Each line of a lock that would carry an index setting or a credential into the image, in words that quote
    neither: pip option lines other than ``--hash`` (an index URL), and URLs with credentials, comments included
    (pip-compile repeats its command line in its header)."""
    from nbship.secrets import scan_requirement

    found: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("-") and not stripped.startswith("--hash"):
            option = stripped.split()[0].split("=", 1)[0]
            found.append(f"line {number} holds the pip option {option}, which nbship never writes into a lock")
        elif _USERINFO_PASSWORD.search(raw) or ("@" in raw and scan_requirement(raw)):
            found.append(f"line {number} holds a credential in a URL")
    return tuple(found)


def stale_reasons(parsed: ParsedLock, inputs: LockInputs, *, python_version: str, platform: str) -> list[str]:
    """Which inputs changed since ``parsed`` was written, in words; empty when the lock is fresh.

    The resolver that wrote the lock does not matter. Inferred pins are compared with the lock's pins only for
    distributions installed here: a CI job without the notebook's environment still sees a fresh lock.
    """
    if "input-hash" not in parsed.header:
        return ["the lock has no nbship header (written by another tool, or edited by hand)"]
    reasons: list[str] = [*parsed.foreign]
    if parsed.header.get("input-hash") != inputs.input_hash:
        for name, digest in sorted(inputs.hashes.items()):
            if parsed.inputs.get(name) != digest:
                reasons.append(_describe_input(name, python_version, platform))
        if not reasons:
            reasons.append("the lock's input hash does not match its inputs (edited by hand?)")
    pins = parsed.pins
    for inferred in inputs.inferred:
        winner = inputs.winner(inferred.distribution)
        if inferred.version is None or winner is None or winner.kind != "import":
            continue  # not installed here, or the user's own requirement wins over the environment
        locked = pins.get(inferred.distribution)
        if locked != inferred.version:
            ref = inferred.imports[0]
            reasons.append(
                f"{inferred.distribution} {inferred.version} is installed here (import {ref.module}, cell "
                f"{ref.cell}, line {ref.line}) but the lock pins {locked or 'nothing'}"
            )
    return reasons


def _describe_input(name: str, python_version: str, platform: str) -> str:
    return {
        "imports": "the notebook's imports changed",
        "notebook %pip": "the notebook's %pip install lines changed",
        "nbship.yaml": "nbship.yaml `requirements:` changed",
        "requirements.in": "requirements.in changed",
        "service": "nbship's service requirements changed (a new nbship version)",
        "target": f"the target changed (now Python {python_version}, {platform})",
    }.get(name, f"input {name} changed")


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step: a failure leaves the previous file untouched."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the lock is meant to be committed and read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
