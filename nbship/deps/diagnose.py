"""Lock stage, failures: a resolver's non-zero exit → one ``LockError`` naming the requirement and its source.

uv and pip-tools word their failures differently; both are reduced to three cases a user can act on (the
index cannot be reached, a package is not on it, the requirements conflict), with the requirements involved
traced back to where they were written (cell and line, nbship.yaml, requirements.in) and a few scrubbed lines
of the resolver's own words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from nbship.deps.infer import canonical_name
from nbship.deps.inputs import Requirement
from nbship.deps.pipconf import scrub_credentials
from nbship.errors import LockError

_TAIL_LINES = 5
_NETWORK = re.compile(
    r"Failed to fetch|Could not connect|Connection refused|NewConnectionError|Max retries exceeded|dns error|"
    r"Name or service not known|Temporary failure in name resolution|Network is unreachable|timed out|"
    r"Could not fetch URL|ProxyError|tcp connect error",
    re.IGNORECASE,
)
_TLS = re.compile(r"certificate|SSLError|invalid peer", re.IGNORECASE)
_MISSING = (
    re.compile(r"Because ([A-Za-z0-9._-]+) was not found in the (?:package registry|provided package locations)"),
    re.compile(r"No matching distribution found for ([A-Za-z0-9._-]+)"),
    re.compile(r"Could not find a version that satisfies the requirement ([A-Za-z0-9._-]+)"),
    re.compile(r"there (?:is|are) no versions? of ([A-Za-z0-9._-]+)"),
)
# pip's internal exception reprs and backtracking chatter say nothing the ERROR lines do not
_NOISE = ("pip._", "piptools.", "Discarding ", "  Discarding ")
_INPUT_LINE = re.compile(r"-r requirements\.in \(line (\d+)\)")


def resolution_error(
    stderr: str,
    requirements: Sequence[Requirement],
    *,
    resolver: str,
    notebook: str,
    unreachable: Callable[[], str | None] = lambda: None,
) -> LockError:
    """Translate a failed resolution into the message a user reads.

    ``unreachable`` is asked when a package seems missing: pip reports an index it cannot reach as a package
    with no versions, so the index is probed before blaming the name.
    """
    tail = _tail(stderr)
    text = "\n".join(tail)
    involved = _involved(text, requirements)
    tail = [_INPUT_LINE.sub(lambda m: _spec_of_line(m, requirements), line) for line in tail]
    said = "\n".join(f"  {line}" for line in tail)
    missing = next((m.group(1) for p in _MISSING for m in [p.search(text)] if m), None)
    if missing is not None and not _NETWORK.search(text):
        down = unreachable()
        if down is not None:
            said = f"  {down}\n{said}"
            missing = None
            text += "\n" + down
    if _NETWORK.search(text) and missing is None:
        tls = _TLS.search(text) is not None
        return LockError(
            f"cannot lock {notebook}: the package index cannot be reached"
            f"{' (TLS certificate rejected)' if tls else ''}\n{resolver} said:\n{said}",
            hint="check the network and pip's index settings (`pip config list`); behind a TLS-intercepting "
            "proxy set pip's `cert` to the proxy's CA bundle" if tls else
            "check the network and pip's index settings (`pip config list`)",
        )
    if missing is not None:
        name = canonical_name(missing)
        sources = [r for r in requirements if r.name == name] or involved
        where = _where(sources) or f"  {missing} (needed by another package)"
        return LockError(
            f"cannot lock {notebook}: {missing} is not on the package index\n{where}\n{resolver} said:\n{said}",
            hint="check the name's spelling, or the index settings if it is on a private index",
        )
    where = _where(involved) or "  (the resolver names no requirement of the notebook; see below)"
    return LockError(
        f"cannot lock {notebook}: these requirements conflict\n{where}\n{resolver} said:\n{said}",
        hint="relax or remove one of them (a version pin in nbship.yaml or requirements.in wins over the "
        "version installed where the notebook ran)",
    )


def _tail(stderr: str) -> list[str]:
    """The last few meaningful lines: Python tracebacks (pip-tools prints them) and blank lines removed."""
    kept: list[str] = []
    in_traceback = False
    for raw in scrub_credentials(stderr).splitlines():
        line = raw.rstrip()
        if line.startswith("Traceback") or line.startswith("The above exception") or line.startswith("During "):
            in_traceback = True
            continue
        if in_traceback and (line.startswith("  ") or not line):
            continue
        in_traceback = False
        if line.startswith(_NOISE):
            continue
        if line.strip() and line.strip() not in kept:
            kept.append(line.strip())
    return kept[-_TAIL_LINES:]


def _involved(text: str, requirements: Sequence[Requirement]) -> list[Requirement]:
    found: list[Requirement] = []
    for match in _INPUT_LINE.finditer(text):  # pip-tools names lines of the file nbship wrote
        index = int(match.group(1)) - 1
        if 0 <= index < len(requirements) and requirements[index] not in found:
            found.append(requirements[index])
    lowered = text.lower()
    for req in requirements:
        pattern = re.escape(req.name).replace(r"\-", "[-_.]")
        if req not in found and re.search(rf"(?<![\w.-]){pattern}(?![\w-])", lowered):
            found.append(req)
    return found


def _spec_of_line(match: re.Match[str], requirements: Sequence[Requirement]) -> str:
    """pip-tools says "-r requirements.in (line 2)" about the file nbship wrote: show the requirement instead."""
    index = int(match.group(1)) - 1
    return requirements[index].spec if 0 <= index < len(requirements) else match.group(0)


def _where(requirements: Sequence[Requirement]) -> str:
    return "\n".join(f"  {r.spec}  (from {r.where})" for r in requirements)


def probe_indexes(urls: Sequence[str], cert: str | None, timeout: float = 5.0) -> str | None:
    """None when every http(s) index answers (any HTTP status counts), else why the first one does not."""
    import ssl
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            continue
        netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        bare = parts._replace(netloc=netloc).geturl()  # without credentials: any answer proves reachability
        context = ssl.create_default_context(cafile=cert) if cert and parts.scheme == "https" else None
        try:
            with urllib.request.urlopen(bare, timeout=timeout, context=context):
                pass
        except urllib.error.HTTPError:
            continue  # it answered: 401/404 still means reachable
        except (OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            return f"cannot reach {scrub_credentials(url)}: {reason} (Connection failed)"
    return None
