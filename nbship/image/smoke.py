"""Image stage, smoke test: the built image run as the pod runs it, answering the notebook's example.

The container has a read-only root filesystem with ``/tmp`` and the manifest's ``writable_dirs`` as empty
writable mounts, and the config's limits. The test waits for ``/readyz``, checks that the service does not run
as root, posts the example's request to ``/predict`` and compares the answer as ``nbship check`` does, then
checks that ``/version`` reports the build's name, version and lock hash.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbship.errors import ImageError
from nbship.image.builder import ContainerHandle, ImageBuilder, RunLimits
from nbship.runtime import routes
from nbship.runtime.manifest import Manifest, ManifestError, read_manifest


@dataclass(frozen=True)
class SmokeResult:
    passed: bool
    problem: str | None = None
    differences: tuple[str, ...] = ()
    uid: int | None = None
    ready_seconds: float | None = None
    load_seconds: float | None = None
    log_tail: str = ""
    seconds: float = 0.0
    warmup_seconds: float | None = None
    download_seconds: float | None = None  # remote artifacts fetched (and verified) before the load cells

    @property
    def startup_seconds(self) -> float | None:
        """Process start to ready as the pod's model container lives it: downloads, load cells, warm-up."""
        if self.load_seconds is None:
            return None
        return self.load_seconds + (self.warmup_seconds or 0.0) + (self.download_seconds or 0.0)

    def as_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "problem": self.problem,
            "differences": list(self.differences),
            "uid": self.uid,
            "ready_seconds": self.ready_seconds,
            "load_seconds": self.load_seconds,
            "warmup_seconds": self.warmup_seconds,
            "download_seconds": self.download_seconds,
            "seconds": round(self.seconds, 3),
        }


def context_manifest(context: Path) -> Manifest:
    """The build context's ``nbship.json``.

    Raises:
        ImageError: it is missing, unreadable, or written by a version of nbship with another manifest format.
    """
    try:
        return read_manifest(context)
    except (OSError, ManifestError) as e:
        hint = f"render the build context again: nbship render NOTEBOOK --out {context}"
        raise ImageError(str(e), hint=hint) from None


def smoke_test(
    builder: ImageBuilder,
    image: str,
    context: Path,
    *,
    limits: RunLimits = RunLimits(),
    environment: Mapping[str, str] | None = None,
    ready_timeout: float = 120.0,
    grace_seconds: int = 10,
    seeded: Mapping[str, Path] | None = None,
) -> SmokeResult:
    """Run ``image``, wait for ``/readyz``, post the manifest's example and compare as ``nbship check`` does.

    ``seeded`` maps download folders in the container to host folders holding the weights already
    (``nbship.weights.seed_folders``).

    The container is stopped and removed whatever happens; the image is kept.
    """
    from nbship.compare import same_response

    manifest = context_manifest(context)
    port = manifest.service.port
    started = time.perf_counter()
    writable = [f"/app/{d}" for d in manifest.writable_dirs]
    container = builder.run(image, port=port, limits=limits, environment=environment or {}, writable=writable,
                            seeded=seeded or {})
    try:
        ready = _wait_ready(container, ready_timeout)
        if isinstance(ready, str):
            return SmokeResult(False, ready, log_tail=container.logs(60), seconds=time.perf_counter() - started)
        ready_seconds, log = time.perf_counter() - started, container.logs(200)
        uid = container.process_uid()
        common: dict[str, Any] = {
            "uid": uid, "ready_seconds": ready_seconds, "load_seconds": _logged(log, "ready", "load_seconds"),
            "warmup_seconds": _logged(log, "ready", "warmup_seconds"),
            "download_seconds": _logged(log, "downloaded", "download_seconds"),
        }
        example = manifest.example
        problem: str | None = None
        differences: list[str] = []
        if uid == 0:
            problem = "the service runs as root (uid 0); the image must set a non-root USER"
        elif example is not None:
            status, body = _post_json(container.url + routes.PREDICT, example.request)
            if status != 200:
                problem = f"POST /predict answered {status}: {body[:500]}"
            else:
                differences = same_response(example.response, json.loads(body))
                if differences:
                    problem = f"the response differs from the notebook's output (cell {example.cell})"
        if problem is None:
            problem = _version_problem(container.url, manifest, context)
        tail = container.logs(60) if problem else ""
        return SmokeResult(
            problem is None, problem, tuple(differences), log_tail=tail, seconds=time.perf_counter() - started, **common
        )
    finally:
        container.remove(grace_seconds)


def _wait_ready(container: ContainerHandle, timeout: float) -> bytes | str:
    """The body of the first 200 from ``/readyz``, or why it never came."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(container.url + routes.READINESS, timeout=2) as response:
                if response.status == 200:
                    body: bytes = response.read()
                    return body
        except (urllib.error.URLError, OSError):
            pass  # not listening yet, or not ready (503)
        if not container.running():
            return "the container exited before it was ready"
        time.sleep(0.2)
    return f"not ready after {timeout:.0f} s (GET /readyz never answered 200)"


def _version_problem(url: str, manifest: Manifest, context: Path) -> str | None:
    """Why ``GET /version`` does not describe this build (name, version, lock), or None when it does."""
    try:
        with urllib.request.urlopen(url + routes.VERSION, timeout=10) as response:
            version = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as e:
        return f"GET /version did not answer with JSON: {e}"
    lock = context / "requirements.lock"
    expected = {
        "name": manifest.name,
        "version": manifest.version,
        "lock_sha256": hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else None,
    }
    wrong = [f"{key} is {version.get(key)!r}, expected {value!r}" for key, value in expected.items()
             if version.get(key) != value]
    return f"GET /version does not describe this build: {'; '.join(wrong)}" if wrong else None


def _logged(log: str, event: str, key: str) -> float | None:
    """A time the runtime logged: ``load_seconds`` of its JSON ``ready`` line, or ``download_seconds`` of another."""
    for line in log.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and document.get("event") == event:
            value = document.get(key)
            return float(value) if isinstance(value, (int, float)) else None
    return None


def _post_json(url: str, payload: Any) -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return int(e.code), e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as e:
        return 0, f"no answer ({e})"
