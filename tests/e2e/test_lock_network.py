"""Lock stage against the real package index (marker ``network``): one tiny lock per resolver.

Uses this machine's pip settings, as ``nbship lock`` does. pip-tools takes about half a minute here even for
this set (it downloads every file it hashes); uv about a second.
"""

from __future__ import annotations

import hashlib
import sys
import urllib.request
from pathlib import Path

import pytest

from nbship.deps import SERVICE_REQUIREMENTS, LockRequest, ensure_lock, pip_settings
from nbship.deps.lockfile import parse_lock
from nbship.deps.pipconf import PipSettings

pytestmark = pytest.mark.network
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def _lock(tmp_path: Path, resolver: str, settings: PipSettings) -> tuple[dict[str, str], str]:
    notebook = tmp_path / resolver / "demo.ipynb"
    notebook.parent.mkdir(parents=True)
    request = LockRequest(notebook, (), (), ("six==1.17.0",), PYTHON, "linux/amd64", resolver)  # type: ignore[arg-type]
    lock = ensure_lock(request, settings=settings, search_path=[])
    assert lock.resolver.startswith(resolver + " ")
    return dict(lock.pins), lock.text


def _pypi_sha256(project: str, version: str, cert: str | None) -> set[str]:
    """The sha256 of every file of ``project`` ``version`` as PyPI's simple index lists them."""
    import re
    import ssl

    context = ssl.create_default_context(cafile=cert) if cert else None
    with urllib.request.urlopen(f"https://pypi.org/simple/{project}/", timeout=60, context=context) as response:
        page = response.read().decode()
    return {
        "sha256:" + digest
        for name, digest in re.findall(r"/([^/\"#]+)#sha256=([0-9a-f]{64})", page)
        if name.startswith(f"{project}-{version}")
    }


@pytest.mark.parametrize("resolver", ["uv", pytest.param("pip-tools", marks=pytest.mark.slow)])
def test_a_small_set_locks_against_the_real_index(tmp_path: Path, resolver: str) -> None:
    settings = pip_settings()
    pins, text = _lock(tmp_path, resolver, settings)
    assert pins["six"] == "1.17.0"
    for spec in SERVICE_REQUIREMENTS:  # the service's own dependencies are always locked
        name = spec.split(">")[0].split("<")[0].split("=")[0]
        assert name in pins
    # the hashes are PyPI's own: what `pip install --require-hashes` in the image will check
    six = next(e for e in parse_lock(text).entries if e.name == "six")
    six_hashes = set(six.hashes)
    assert six_hashes and six_hashes <= _pypi_sha256("six", "1.17.0", settings.cert)
    assert (
        hashlib.sha256(text.encode()).hexdigest()
        == hashlib.sha256(
            ensure_lock(
                LockRequest(
                    tmp_path / resolver / "demo.ipynb", (), (), ("six==1.17.0",), PYTHON, "linux/amd64", resolver
                ),
                settings=settings,
                search_path=[],
            ).text.encode()  # type: ignore[arg-type]
        ).hexdigest()
    )  # an unchanged re-lock returns the very same file
