"""Lock stage, pip settings: the user's index, TLS and constraint settings, for the resolvers and the image.

Companies put their private index, their TLS-intercepting proxy's CA bundle and their constraints in pip's
configuration files and ``PIP_*`` variables. nbship reads them the way pip does (``pip config list``, which
applies pip's own file order and the ``global`` → ``install`` → ``PIP_*`` precedence), hands them to uv or
pip-tools explicitly, and tells the Docker builder stage what it can use. Credentials written in index URLs
(``https://user:token@host/simple``) are passed to resolvers through the environment, never on a command
line, and ``scrub_credentials`` removes them from every text nbship shows or writes.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]+@")
# sections pip reads for `pip install` (pip-tools runs pip's install machinery), weakest first
_SECTIONS = ("global", "install", ":env:")
_MULTI = ("extra-index-url", "find-links", "trusted-host", "constraint")


def scrub_credentials(text: str) -> str:
    """Replace ``user:password@`` in every URL of ``text`` with ``***@``."""
    return _CREDENTIALS.sub(r"\g<scheme>***@", text)


@dataclass(frozen=True)
class BuilderPipSettings:
    """What a Docker builder stage can use; ``dropped`` says what could not go into the image, and why."""

    index_url: str | None
    extra_index_urls: tuple[str, ...]
    trusted_hosts: tuple[str, ...]
    cert: Path | None  # a file on the host, to be copied into the builder stage only
    dropped: tuple[str, ...]


@dataclass(frozen=True)
class PipSettings:
    """pip's effective settings for resolving. ``None``/empty means pip's default (PyPI, system CAs)."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    trusted_hosts: tuple[str, ...] = ()
    cert: str | None = None
    constraints: tuple[str, ...] = ()
    proxy: str | None = None
    timeout: str | None = None
    retries: str | None = None

    def for_builder(self) -> BuilderPipSettings:
        """Keep what works inside ``docker build`` (http(s) indexes, trusted hosts, the CA bundle).

        Local paths (file:// indexes, find-links folders, constraint files) do not exist in the image; they are
        dropped with the reason, for the build to print.
        """
        dropped: list[str] = []

        def usable(url: str, what: str) -> bool:
            if urlsplit(url).scheme in ("http", "https"):
                return True
            dropped.append(f"{what} {scrub_credentials(url)}: a local path does not exist in the image")
            return False

        index = self.index_url if self.index_url is not None and usable(self.index_url, "index-url") else None
        extras = tuple(u for u in self.extra_index_urls if usable(u, "extra-index-url"))
        for link in self.find_links:
            # an http(s) find-links page would work, but the lock's hashes come from the indexes: keep it simple
            dropped.append(f"find-links {scrub_credentials(link)}: the image installs from indexes only")
        for constraint in self.constraints:
            dropped.append(f"constraint {constraint}: the lock already pins every version")
        if self.no_index:
            dropped.append("no-index: the image needs an index to install the locked files from")
        cert = Path(self.cert) if self.cert else None
        if cert is not None and not cert.is_file():
            dropped.append(f"cert {cert}: not a file")
            cert = None
        return BuilderPipSettings(index, extras, self.trusted_hosts, cert, tuple(dropped))

    def describe(self) -> list[str]:
        """One scrubbed line per setting, for ``nbship lock -v`` and JSON output."""
        lines = []
        if self.index_url:
            lines.append(f"index-url {scrub_credentials(self.index_url)}")
        lines += [f"extra-index-url {scrub_credentials(u)}" for u in self.extra_index_urls]
        lines += [f"find-links {scrub_credentials(u)}" for u in self.find_links]
        lines += [f"trusted-host {h}" for h in self.trusted_hosts]
        lines += [f"constraint {c}" for c in self.constraints]
        if self.cert:
            lines.append(f"cert {self.cert}")
        if self.no_index:
            lines.append("no-index")
        return lines


def pip_settings(environ: Mapping[str, str] = os.environ) -> PipSettings:
    """Read pip's effective settings (config files and ``PIP_*`` variables of ``environ``) as pip does.

    Raises:
        nothing: without a usable pip, only the ``PIP_*`` variables are read.
    """
    from nbship import _proc

    try:
        done = _proc.run([sys.executable, "-m", "pip", "config", "list"], env=dict(environ), timeout=60)
        text = done.stdout if done.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        text = ""
    if not text:  # no pip here (a uv-made venv): the variables still count
        text = "\n".join(
            f":env:.{k[4:].lower().replace('_', '-')}={v!r}" for k, v in environ.items() if k.startswith("PIP_")
        )
    return parse_pip_config_list(text)


def parse_pip_config_list(text: str) -> PipSettings:
    """Turn ``pip config list`` output (``section.key='value'`` lines) into ``PipSettings``."""
    found: dict[str, dict[str, str]] = {s: {} for s in _SECTIONS}
    for line in text.splitlines():
        key, sep, raw = line.partition("=")
        section, dot, name = key.rpartition(".")
        if not sep or not dot or section not in found:
            continue
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        found[section][name.replace("_", "-")] = str(value)
    merged: dict[str, str] = {}
    for section in _SECTIONS:  # later sections win, as in pip
        merged.update(found[section])

    def many(name: str) -> tuple[str, ...]:
        return tuple(merged.get(name, "").split())

    def flag(name: str) -> bool:
        return merged.get(name, "").strip().lower() in ("1", "true", "yes", "on")

    return PipSettings(
        index_url=merged.get("index-url") or None,
        extra_index_urls=many("extra-index-url"),
        find_links=many("find-links"),
        no_index=flag("no-index"),
        trusted_hosts=many("trusted-host"),
        cert=merged.get("cert") or None,
        constraints=many("constraint"),
        proxy=merged.get("proxy") or None,
        timeout=merged.get("timeout") or merged.get("default-timeout") or None,
        retries=merged.get("retries") or None,
    )
