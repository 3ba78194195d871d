"""Deploy stage, cluster adapter: ``ClusterClient`` implemented with kubectl.

Every call goes through ``nbship._proc.run`` as an argument list, with the user's kubeconfig (``KUBECONFIG``)
and optional ``--context``: nbship does what the commands an operator would type do, adds no Python
dependency, and works wherever kubectl works (exec credential plugins, proxies, OIDC). kubectl's failures
are translated here, once, from kubectl's stderr (kubectl prints the API server's status reason, such as
``Error from server (Forbidden): …``):

- no kubectl, no kubeconfig, credentials refused → ``EnvironmentMissingError`` (exit 3);
- the API server unreachable or asking to try again (refused or reset connections, timeouts, 429, 503, 504,
  etcd timeouts) → ``ClusterUnavailableError`` (exit 3), which ``nbship.deploy.retry`` retries;
- RBAC refusing a verb on a resource → ``ClusterPermissionError`` (exit 3) naming the verb and the resource;
- a refused apply or a failed kustomize → ``DeployError`` (exit 5).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from nbship.deploy.cluster import FIELD_MANAGER
from nbship.errors import ClusterPermissionError, ClusterUnavailableError, DeployError, EnvironmentMissingError

# What kubectl prints when a retry may succeed: the connection failed, or the server answered 429/503/504 or
# timed out talking to etcd.
TRANSIENT = (
    "connection refused", "was refused", "connection reset by peer", "i/o timeout", "TLS handshake timeout",
    "Unable to connect", "no such host", "http2: client connection lost", "unexpected EOF", "context deadline exceeded",
    "(ServiceUnavailable)", "(TooManyRequests)", "(Timeout)", "the server is currently unable to handle the request",
    "has prevented the request from succeeding", "etcdserver: request timed out", "etcdserver: leader changed",
)
FORBIDDEN = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>[\w-]+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?(?: in the namespace "(?P<namespace>[^"]+)")?'
)


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
            raise ClusterUnavailableError(f"kubectl {args[0]} did not answer in {timeout:.0f} s") from None

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
            raise _cluster_error(done.stderr, "kubectl apply failed", DeployError(
                f"kubectl apply failed: {done.stderr.strip()[-1500:]}",
                hint="another tool manages these fields; --force-conflicts takes them over" if conflict else None,
            ))
        return done.stdout

    def diff(self, manifests: str) -> str:
        argv = ["diff", "--server-side", f"--field-manager={FIELD_MANAGER}", "--force-conflicts", "-f", "-"]
        done = self._run(*argv, input=manifests)
        if done.returncode > 1:  # 0: no changes, 1: changes
            raise _cluster_error(done.stderr, "kubectl diff failed")
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


def _cluster_error(
    stderr: str, what: str = "kubectl", otherwise: DeployError | None = None
) -> EnvironmentMissingError | DeployError:
    """kubectl's stderr as nbship's error: unreachable or transient, forbidden, or ``otherwise`` a deploy error."""
    text = stderr.strip()[-800:]
    forbidden = FORBIDDEN.search(text)
    if forbidden:
        verb, user, namespace = forbidden["verb"], forbidden["user"], forbidden["namespace"]
        resource = f"{forbidden['resource']}.{forbidden['group']}" if forbidden["group"] else forbidden["resource"]
        where = f" in namespace {namespace}" if namespace else " at the cluster scope"
        scope = f" -n {namespace}" if namespace else ""
        return ClusterPermissionError(
            f"not allowed to {verb} {resource}{where} (as {user})",
            verb=verb, resource=resource, namespace=namespace,
            hint=f"ask for a Role granting '{verb}' on '{resource}'; `kubectl auth can-i {verb} {resource}{scope}` "
                 "checks it",
        )
    unreachable, check = f"no Kubernetes cluster reachable: {text}", "check KUBECONFIG and --context"
    if "no configuration" in text or "x509" in text:  # retrying does not fix a missing config or a bad certificate
        return EnvironmentMissingError(unreachable, hint=check)
    if "(Unauthorized)" in text or "must be logged in" in text:
        return EnvironmentMissingError(f"the cluster did not accept kubectl's credentials: {text}",
                                       hint=f"{check}, and your login")
    if any(marker in text for marker in TRANSIENT):
        return ClusterUnavailableError(unreachable, hint=check)
    return otherwise or DeployError(f"{what}: {text}")
