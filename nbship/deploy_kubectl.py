"""Deploy stage, cluster adapter: ``ClusterClient`` implemented with kubectl.

Every call goes through ``nbship._proc.run`` as an argument list, with the user's kubeconfig (``KUBECONFIG``)
and optional ``--context``: nbship does what the commands an operator would type do, adds no Python
dependency, and works wherever kubectl works (exec credential plugins, proxies, OIDC). kubectl's failures
are translated here, once: no kubectl or no answering API server → ``EnvironmentMissingError`` (exit 3);
a refused apply or a failed kustomize → ``DeployError`` (exit 5).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from nbship.deploy import FIELD_MANAGER
from nbship.errors import DeployError, EnvironmentMissingError


class KubectlClient:
    """``ClusterClient`` on kubectl, with the user's kubeconfig (``KUBECONFIG``) and optional context."""

    def __init__(self, context: str | None = None, kubectl: str = "kubectl") -> None:
        self.base = [kubectl] + (["--context", context] if context else [])

    def _run(self, *args: str, input: str | None = None, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        from nbship import _proc

        try:
            return _proc.run([*self.base, *args], input=input, timeout=timeout)
        except FileNotFoundError:
            raise EnvironmentMissingError(
                "kubectl not found", hint="install kubectl (https://kubernetes.io/docs/tasks/tools/) and put it on PATH"
            ) from None
        except subprocess.TimeoutExpired:
            raise EnvironmentMissingError(f"kubectl {args[0]} did not answer in {timeout:.0f} s") from None

    def check(self) -> None:
        """Raises EnvironmentMissingError unless the API server answers."""
        done = self._run("get", "--raw", "/readyz", timeout=30)
        if done.returncode != 0:
            raise EnvironmentMissingError(
                f"no Kubernetes cluster reachable: {done.stderr.strip()[-400:]}",
                hint="check KUBECONFIG and --context (kubectl config get-contexts)",
            )

    def kustomize(self, directory: Path) -> str:
        done = self._run("kustomize", str(directory))
        if done.returncode != 0:
            raise DeployError(f"kustomize {directory.name}: {done.stderr.strip()[-800:]}")
        return done.stdout

    def apply(self, manifests: str, *, force_conflicts: bool) -> str:
        argv = ["apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-"]
        done = self._run(*argv, *(["--force-conflicts"] if force_conflicts else []), input=manifests)
        if done.returncode != 0:
            conflict = "conflict" in done.stderr
            raise DeployError(
                f"kubectl apply failed: {done.stderr.strip()[-1500:]}",
                hint="another tool manages these fields; --force-conflicts takes them over" if conflict else None,
            )
        return done.stdout

    def diff(self, manifests: str) -> str:
        argv = ["diff", "--server-side", f"--field-manager={FIELD_MANAGER}", "--force-conflicts", "-f", "-"]
        done = self._run(*argv, input=manifests)
        if done.returncode > 1:  # 0: no changes, 1: changes
            raise DeployError(f"kubectl diff failed: {done.stderr.strip()[-1500:]}")
        return done.stdout

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        scope = ["-n", namespace] if namespace else []
        done = self._run("get", kind, name, *scope, "-o", "json", "--ignore-not-found")
        if done.returncode != 0:
            raise _cluster_error(done.stderr)
        return json.loads(done.stdout) if done.stdout.strip() else None

    def list_objects(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        done = self._run("get", kind, "-n", namespace, "-l", selector, "-o", "json")
        if done.returncode != 0:
            raise _cluster_error(done.stderr)
        items: list[dict[str, Any]] = json.loads(done.stdout).get("items", [])
        return items

    def events(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        done = self._run("get", "events", "-n", namespace, "--field-selector", selector, "-o", "json")
        items: list[dict[str, Any]] = json.loads(done.stdout).get("items", []) if done.returncode == 0 else []
        return items

    def logs(self, namespace: str, pod: str, container: str, *, previous: bool, tail: int) -> str:
        argv = ["logs", pod, "-n", namespace, "-c", container, f"--tail={tail}"]
        done = self._run(*argv, *(["--previous"] if previous else []))
        return done.stdout if done.returncode == 0 else f"(no log: {done.stderr.strip()[-200:]})"


def _cluster_error(stderr: str) -> EnvironmentMissingError | DeployError:
    text = stderr.strip()[-800:]
    unreachable = ("connection refused", "no such host", "Unable to connect", "i/o timeout", "no configuration")
    if any(marker in text for marker in unreachable):
        return EnvironmentMissingError(
            f"no Kubernetes cluster reachable: {text}", hint="check KUBECONFIG and --context"
        )
    return DeployError(f"kubectl: {text}")
