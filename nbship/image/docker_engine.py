"""Image stage, engine adapter: ``ImageBuilder`` implemented with the docker SDK (classic builder, no BuildKit).

Docker's exceptions and error events are translated here, once: no engine → ``EnvironmentMissingError``;
a failing build step → ``ImageError`` naming the Dockerfile line and the last lines of its output; a
registry refusing credentials or unreachable → ``ImageError``. Credentials for push come from the user's
Docker config (``~/.docker/config.json``, credential helpers included), read by the SDK itself.
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbship.errors import EnvironmentMissingError, ImageError
from nbship.image.builder import PushProgress, RunLimits
from nbship.image.ref import ImageRef
from nbship.render.dockerfile import USER_ID

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_TAIL = 20


def connect() -> DockerBuilder:
    """A builder on the engine that ``DOCKER_HOST`` (or the default socket) names.

    Raises:
        EnvironmentMissingError: the docker SDK is not installed or no engine answers.
    """
    try:
        import docker
        import docker.errors
    except ImportError:
        raise EnvironmentMissingError(
            "the docker SDK is missing from the environment that runs nbship (it is one of nbship's dependencies)",
            hint="reinstall nbship: pip install --force-reinstall nbship",
        ) from None
    where = os.environ.get("DOCKER_HOST", "the default socket (/var/run/docker.sock)")
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except docker.errors.DockerException as e:
        raise EnvironmentMissingError(
            f"no Docker engine reachable at {where}: {e}",
            hint="start Docker or set DOCKER_HOST; `nbship serve` runs the service without one",
        ) from None
    return DockerBuilder(client)


def instruction_lines(dockerfile: str) -> list[tuple[int, str]]:
    """Each instruction's first line (1-based) and its text, in order: the classic builder's Step numbers."""
    found: list[tuple[int, str]] = []
    continuing = False
    for number, line in enumerate(dockerfile.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue  # comments and blank lines may sit inside a continued instruction too
        if continuing:
            found[-1] = (found[-1][0], found[-1][1] + " " + stripped.rstrip("\\").strip())
        else:
            found.append((number, stripped.rstrip("\\").strip()))
        continuing = stripped.endswith("\\")
    return found


def build_failure(dockerfile: Path, step: int | None, message: str, output: list[str]) -> ImageError:
    """The ``ImageError`` for a failed build: the Dockerfile line of ``step`` and the output's last lines."""
    where = str(dockerfile)
    instructions = instruction_lines(dockerfile.read_text(encoding="utf-8")) if dockerfile.is_file() else []
    if step is not None and 0 < step <= len(instructions):
        line, text = instructions[step - 1]
        where = f"{dockerfile}, line {line}: {text[:200]}"
    tail = "\n".join(output[-_TAIL:])
    return ImageError(
        f"the image build failed at {where}\n{message.strip()}" + (f"\nlast output:\n{tail}" if tail else ""),
        hint="fix the notebook, config or lock that produced this step, then run `nbship build` again",
    )


@dataclass
class DockerContainer:
    container: Container
    url: str

    def running(self) -> bool:
        self.container.reload()
        return str(self.container.status) in ("created", "running")

    def process_uid(self) -> int:
        # the uid of PID 1 as the kernel sees it, not what the image config claims
        code, output = self.container.exec_run(["cat", "/proc/1/status"])
        text = output if isinstance(output, bytes) else b""
        match = re.search(rb"^Uid:\s+(\d+)", text, re.MULTILINE)
        if code != 0 or match is None:
            raise ImageError(f"cannot read the service's uid: {output!r}")
        return int(match.group(1))

    def logs(self, tail: int) -> str:
        data: bytes = self.container.logs(tail=tail)
        return data.decode("utf-8", "replace")

    def remove(self, grace_seconds: int) -> None:
        import docker.errors

        try:
            self.container.stop(timeout=grace_seconds)
            self.container.remove(force=True)
        except docker.errors.NotFound:
            pass


class DockerBuilder:
    """``ImageBuilder`` on a docker SDK client."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client

    def image_id(self, ref: str) -> str | None:
        import docker.errors

        try:
            return str(self.client.images.get(ref).id)
        except docker.errors.ImageNotFound:
            return None

    def image_size(self, ref: str) -> int | None:
        import docker.errors

        try:
            return int(self.client.images.get(ref).attrs["Size"])
        except docker.errors.ImageNotFound:
            return None

    def build(
        self,
        context: Path,
        tag: str,
        *,
        buildargs: Mapping[str, str],
        labels: Mapping[str, str],
        platform: str | None,
        on_line: Callable[[str], None],
    ) -> str:
        import docker.errors

        step: int | None = None
        output: deque[str] = deque(maxlen=200)
        image_id: str | None = None
        try:
            # pull=False: the base image comes from the engine's store or its own pull of a missing one
            events = self.client.api.build(
                path=str(context),
                tag=tag,
                rm=True,
                forcerm=True,
                decode=True,
                pull=False,
                buildargs=dict(buildargs),
                labels=dict(labels),
                platform=platform,
            )
            for event in events:
                if "error" in event:
                    raise build_failure(context / "Dockerfile", step, str(event["error"]), list(output))
                text = str(event.get("stream", ""))
                for line in text.splitlines():
                    found = _STEP.match(line)
                    if found:
                        step = int(found.group(1))
                        output.clear()
                    elif line.strip() and not line.startswith(" ---> "):
                        output.append(line)
                    if line.strip():
                        on_line(line)
                aux = event.get("aux")
                if isinstance(aux, dict) and "ID" in aux:
                    image_id = str(aux["ID"])
        except docker.errors.APIError as e:
            raise build_failure(context / "Dockerfile", step, _explain(e), list(output)) from None
        if image_id is None:
            image_id = self.image_id(tag)
        if image_id is None:
            raise ImageError(f"the engine finished the build of {tag} without an image")
        return image_id

    def tag(self, image: str, ref: str) -> None:
        parsed = ImageRef.parse(ref)
        self.client.api.tag(image, parsed.repository, parsed.tag)

    def run(
        self, image: str, *, port: int, limits: RunLimits, environment: Mapping[str, str], writable: Sequence[str] = (),
        seeded: Mapping[str, Path] | None = None,
    ) -> DockerContainer:
        import docker.errors

        # as the pod runs it: read-only root filesystem, /tmp an empty writable mount; a seeded folder holds the
        # weights the init container would have downloaded
        seeded = seeded or {}
        options: dict[str, Any] = {
            "detach": True,
            "read_only": True,
            "tmpfs": {"/tmp": "rw,mode=1777,size=512m"}
            | {path: f"rw,uid={USER_ID},gid={USER_ID},mode=0755" for path in writable if path not in seeded},
            "volumes": {str(host): {"bind": path, "mode": "rw"} for path, host in seeded.items()},
            "ports": {f"{port}/tcp": ("127.0.0.1", None)},
            "environment": dict(environment),
        }
        if limits.memory_bytes:
            options["mem_limit"] = limits.memory_bytes
        if limits.nano_cpus:
            options["nano_cpus"] = limits.nano_cpus
        try:
            container = self.client.containers.run(image, **options)
            container.reload()
            host_port = container.ports[f"{port}/tcp"][0]["HostPort"]
        except (docker.errors.APIError, KeyError, IndexError, TypeError) as e:
            raise ImageError(f"cannot start a container of {image}: {e}") from None
        return DockerContainer(container, f"http://127.0.0.1:{host_port}")

    def push(self, ref: str, on_progress: Callable[[PushProgress], None]) -> str:
        import docker.errors
        import requests

        parsed = ImageRef.parse(ref)
        digest: str | None = None
        try:
            for event in self.client.api.push(parsed.repository, tag=parsed.tag, stream=True, decode=True):
                if "error" in event:
                    raise _push_failure(ref, str(event["error"]))
                detail = event.get("progressDetail") or {}
                if "id" in event:
                    on_progress(
                        PushProgress(
                            str(event["id"]), str(event.get("status", "")), detail.get("current"), detail.get("total")
                        )
                    )
                aux = event.get("aux")
                if isinstance(aux, dict) and "Digest" in aux:
                    digest = str(aux["Digest"])
        except docker.errors.APIError as e:
            raise _push_failure(ref, _explain(e)) from None
        except requests.exceptions.ConnectionError as e:
            raise _push_failure(ref, f"the Docker engine went away: {e}") from None
        if digest is None:
            raise _push_failure(ref, "the registry reported no digest")
        return digest


def _push_failure(ref: str, message: str) -> ImageError:
    registry = ImageRef.parse(ref).registry
    auth = any(word in message.lower() for word in ("unauthorized", "denied", "authentication", "no basic auth"))
    hint = f"run `docker login {registry}`" if auth else f"check that {registry} is reachable from the Docker engine"
    return ImageError(f"push of {ref} failed: {message.strip()}", hint=hint)


def _explain(error: Exception) -> str:
    explanation = getattr(error, "explanation", None)
    return str(explanation or error)
