"""Lock stage, resolution: requirements → pinned, hashed entries, with uv (default) or pip-tools.

Both resolvers get the same inputs from the same ``PipSettings``, passed explicitly: uv's own config files and
``UV_*`` index variables, and pip's config files and ``PIP_*`` variables, are masked so that what the lock
holds never depends on which resolver ran. Index URLs go through the environment, never the command line
(``_proc.run`` logs argv), so credentials in them stay out of logs. uv reads hashes from the index; pip-tools
downloads every file it hashes, which is why it is the slow alternative.
"""

from __future__ import annotations

import os
import platform as host
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from nbship.deps.diagnose import probe_indexes, resolution_error
from nbship.deps.inputs import Requirement
from nbship.deps.lockfile import LockEntry, parse_requirements
from nbship.deps.pipconf import PipSettings
from nbship.errors import EnvironmentMissingError, LockError

ResolverName = Literal["uv", "pip-tools"]
Platform = Literal["linux/amd64", "linux/arm64"]
# manylinux_2_28 is what the python:*-slim images (glibc ≥ 2.36) and most wheels on PyPI agree on
UV_PLATFORMS: Mapping[str, str] = {"linux/amd64": "x86_64-manylinux_2_28", "linux/arm64": "aarch64-manylinux_2_28"}
_MACHINES: Mapping[str, tuple[str, ...]] = {"linux/amd64": ("x86_64", "amd64"), "linux/arm64": ("aarch64", "arm64")}
_MASKED_UV = ("UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_INDEX", "UV_DEFAULT_INDEX", "UV_FIND_LINKS",
              "UV_CONSTRAINT", "UV_OVERRIDE", "UV_INDEX_STRATEGY", "UV_INSECURE_HOST", "UV_CONFIG_FILE")
# caches do not change what is resolved; everything else of pip's comes from PipSettings
_PIP_KEPT = frozenset({"PIP_CACHE_DIR", "PIP_NO_CACHE_DIR", "PIP_TOOLS_CACHE_DIR"})
_TIMEOUT_SECONDS = 1800.0
_PYPI = "https://pypi.org/simple/"


@dataclass(frozen=True)
class Resolution:
    entries: tuple[LockEntry, ...]
    resolver: str  # "uv 0.13.9", "pip-tools 7.6.2"
    notes: tuple[str, ...]


@lru_cache(maxsize=1)
def uv_binary() -> tuple[str | None, str]:
    """(path, version) of a uv that runs here, or (None, why not)."""
    try:
        import uv

        path = uv.find_uv_bin()
    except (ImportError, FileNotFoundError) as e:
        return None, f"no uv binary ({e})"
    from nbship import _proc

    try:
        done = _proc.run([path, "--version"], timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:  # e.g. no binary for this platform in the wheel
        return None, f"{path} cannot run ({e})"
    if done.returncode != 0:
        return None, f"{path} --version failed"
    return path, done.stdout.split()[1] if len(done.stdout.split()) > 1 else "?"


def piptools_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pip-tools")
    except PackageNotFoundError:
        return None


def resolve(
    requirements: Sequence[Requirement],
    *,
    settings: PipSettings,
    resolver: ResolverName,
    python_version: str,
    platform: str,
    previous: str | None = None,
    preferences: Mapping[str, str] | None = None,
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
    notebook: str = "the notebook",
) -> Resolution:
    """Resolve ``requirements`` for the target, keeping earlier versions where they still fit.

    ``previous`` (the earlier lock's text) and then ``preferences`` (name → version installed where the notebook
    ran) seed the resolver's output file, which both resolvers read as the pins to keep: a first lock gets the
    environment's versions of transitive dependencies too, a re-lock changes as little as it can.

    Raises:
        LockError: no resolution, a package missing from the index, the index unreachable.
        EnvironmentMissingError: neither resolver can run, or pip-tools runs on another Python version.
    """
    notes: list[str] = []
    uv_path: str | None = None
    uv_info = ""
    if resolver == "uv":
        uv_path, uv_info = uv_binary()
        if uv_path is None:
            notes.append(f"uv cannot run here ({uv_info}); locking with pip-tools instead")
            resolver = "pip-tools"
    with tempfile.TemporaryDirectory(prefix="nbship-lock-") as tmp:
        folder = Path(tmp)
        (folder / "requirements.in").write_text("".join(r.spec + "\n" for r in requirements), encoding="utf-8")
        out = folder / "requirements.txt"
        if not upgrade:
            out.write_text(_seed(previous, preferences or {}), encoding="utf-8")
        options = _Options(settings, python_version, platform, upgrade, tuple(upgrade_packages))
        if uv_path is not None:
            argv, env = _uv_command(uv_path, options)
            name = f"uv {uv_info}"
        else:
            argv, env = _piptools_command(options, notes)
            name = f"pip-tools {piptools_version()}"
        done = _run(argv, folder, env, name)
        if done.returncode != 0:
            indexes = () if settings.no_index else (settings.index_url or _PYPI, *settings.extra_index_urls)
            raise resolution_error(
                done.stderr, requirements, resolver=name, notebook=notebook,
                unreachable=lambda: probe_indexes(indexes, settings.cert),
            )
        entries = parse_requirements(out.read_text(encoding="utf-8"))
    return Resolution(entries, name, tuple(notes))


def _seed(previous: str | None, preferences: Mapping[str, str]) -> str:
    locked = {e.name for e in parse_requirements(previous)} if previous else set()
    extra = [f"{name}=={version}\n" for name, version in sorted(preferences.items()) if name not in locked]
    return (previous or "") + "".join(extra)


@dataclass(frozen=True)
class _Options:
    settings: PipSettings
    python_version: str
    platform: str
    upgrade: bool
    upgrade_packages: tuple[str, ...]


def _run(argv: list[str], folder: Path, env: dict[str, str], name: str) -> subprocess.CompletedProcess[str]:
    from nbship import _proc

    try:
        return _proc.run(argv, cwd=folder, env=env, timeout=_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise LockError(f"{name} did not finish resolving in {_TIMEOUT_SECONDS:.0f} s") from None
    except OSError as e:
        raise EnvironmentMissingError(f"cannot run {name}: {e}") from e


def _uv_command(uv: str, o: _Options) -> tuple[list[str], dict[str, str]]:
    s = o.settings
    argv = [uv, "pip", "compile", "requirements.in", "-o", "requirements.txt", "--generate-hashes",
            "--no-header", "--no-annotate", "--no-config", "--quiet", "--color", "never", "--no-progress",
            "--python-version", o.python_version, "--python-platform", UV_PLATFORMS[o.platform],
            # the target is --python-version; without an interpreter named, uv looks for (or downloads) one
            "--python", sys.executable, "--no-python-downloads"]
    env = {k: v for k, v in os.environ.items() if k not in _MASKED_UV}
    if s.index_url:
        env["UV_INDEX_URL"] = s.index_url
    if s.extra_index_urls:
        env["UV_EXTRA_INDEX_URL"] = " ".join(s.extra_index_urls)
        # pip takes the best version from all indexes; uv by default only the first index that has the name
        argv += ["--index-strategy", "unsafe-best-match"]
    if s.no_index:
        argv.append("--no-index")
    for link in s.find_links:
        argv += ["--find-links", link]
    for constraint in s.constraints:
        argv += ["--constraints", constraint]
    for trusted in s.trusted_hosts:
        argv += ["--allow-insecure-host", trusted]
    if s.cert:
        env["SSL_CERT_FILE"] = s.cert  # a TLS-intercepting proxy's CA bundle replaces uv's bundled roots
    if s.proxy:
        env.setdefault("HTTPS_PROXY", s.proxy)
        env.setdefault("HTTP_PROXY", s.proxy)
    if s.timeout:
        env["UV_HTTP_TIMEOUT"] = s.timeout
    if s.retries:
        env["UV_HTTP_RETRIES"] = s.retries
    if o.upgrade:
        argv.append("--upgrade")
    for package in o.upgrade_packages:
        argv += ["--upgrade-package", package]
    return argv, env


def _piptools_command(o: _Options, notes: list[str]) -> tuple[list[str], dict[str, str]]:
    if piptools_version() is None:
        raise EnvironmentMissingError(
            "pip-tools is not installed in the environment that runs nbship",
            hint="pip install pip-tools, or lock with the default resolver (--resolver uv)",
        )
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if running != o.python_version:
        raise EnvironmentMissingError(
            f"pip-tools resolves for the Python running it ({running}), not for the image's {o.python_version}",
            hint=f"use --resolver uv, which resolves for any Python version, or run nbship with Python "
            f"{o.python_version}",
        )
    machine = host.machine().lower()
    if machine not in _MACHINES[o.platform]:
        notes.append(f"pip-tools resolves for this machine ({machine}); {o.platform}-only markers are not "
                     "evaluated (uv resolves for the target platform)")
    s = o.settings
    argv = [sys.executable, "-m", "piptools", "compile", "requirements.in", "-o", "requirements.txt",
            "--generate-hashes", "--no-header", "--no-annotate", "--no-emit-index-url", "--no-emit-find-links",
            "--no-emit-trusted-host", "--no-config", "--strip-extras", "--allow-unsafe", "--quiet", "--no-color"]
    # pip must see exactly these settings: its own files and PIP_* variables would add to them
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k in _PIP_KEPT}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if s.index_url:
        env["PIP_INDEX_URL"] = s.index_url
    if s.extra_index_urls:
        env["PIP_EXTRA_INDEX_URL"] = " ".join(s.extra_index_urls)
    if s.no_index:
        argv.append("--no-index")
    for link in s.find_links:
        argv += ["--find-links", link]
    for constraint in s.constraints:
        argv += ["--constraint", constraint]
    for trusted in s.trusted_hosts:
        argv += ["--trusted-host", trusted]
    if s.cert:
        argv += ["--cert", s.cert]
    for key, value in (("PIP_PROXY", s.proxy), ("PIP_DEFAULT_TIMEOUT", s.timeout), ("PIP_RETRIES", s.retries)):
        if value:
            env[key] = value
    if o.upgrade:
        argv.append("--upgrade")
    for package in o.upgrade_packages:
        argv += ["--upgrade-package", package]
    return argv, env

