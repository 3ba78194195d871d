"""The one exception tree of nbship, and the exit-code table that CI relies on.

Every error a user can cause is an ``NbshipError`` with an exit code and an optional hint; the CLI's single
error boundary (``nbship.cli.main``) prints ``error: <message>`` and ``hint: <hint>`` and exits with the code.
Anything else is a bug in nbship (exit 70).

    NbshipError
    ├── UserError (1)            the notebook, config or dependencies have a problem the user must fix
    │   ├── NotebookError        the file cannot be read as a Python notebook
    │   ├── ConfigError          nbship.yaml is invalid
    │   ├── CheckFailedError     ``nbship check`` found errors (carries the findings)
    │   └── LockError            dependencies cannot be resolved or the lock is stale under --frozen
    ├── EnvironmentMissingError (3)  no Docker engine, no cluster, a missing tool
    │   ├── ClusterUnavailableError  the API server did not answer, or answered "try again" (retried first)
    │   └── ClusterPermissionError   the API server refused a verb on a resource (RBAC)
    ├── ImageError (4)           image build, smoke test or push failed
    ├── DeployError (5)          deploy failed (and was rolled back unless told not to)
    └── RolloutInterruptedError (130)  Ctrl-C while waiting for a rollout, which goes on in the cluster
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal


class ExitCode(IntEnum):
    OK = 0
    USER = 1
    USAGE = 2
    ENVIRONMENT = 3
    IMAGE = 4
    DEPLOY = 5
    INTERNAL = 70
    INTERRUPTED = 130


@dataclass(frozen=True)
class Location:
    """Where a problem is: a file, and for a notebook the 1-based cell position and the line inside it."""

    file: str
    cell: int | None = None
    line: int | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.cell is not None:
            parts.append(f"cell {self.cell}")
        if self.line is not None:
            parts.append(f"line {self.line}")
        return ", ".join(parts)


Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One result of a check: an error blocks render and build, a warning does not."""

    severity: Severity
    code: str
    message: str
    location: Location
    hint: str | None = None

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"

    def as_json(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "file": self.location.file,
            "cell": self.location.cell,
            "line": self.location.line,
            "hint": self.hint,
        }


class NbshipError(Exception):
    """Base of every error nbship reports to a user."""

    exit_code: ExitCode = ExitCode.USER

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UserError(NbshipError):
    exit_code = ExitCode.USER


class NotebookError(UserError):
    """The file is not a readable Python notebook."""


class ConfigError(UserError):
    """nbship.yaml does not match the schema."""


class CheckFailedError(UserError):
    """Static checks or the parity run found errors; ``findings`` holds all of them, warnings included."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        errors = [f for f in findings if f.severity == "error"]
        noun = "error" if len(errors) == 1 else "errors"
        super().__init__(f"{len(errors)} {noun} in the notebook")
        self.findings = tuple(findings)


class LockError(UserError):
    """Dependencies cannot be resolved, or the lock is stale or missing under ``--frozen``."""


class UsageError(NbshipError):
    exit_code = ExitCode.USAGE


class EnvironmentMissingError(NbshipError):
    """Something nbship needs is not there: a Docker engine, a cluster, a tool."""

    exit_code = ExitCode.ENVIRONMENT


class ClusterUnavailableError(EnvironmentMissingError):
    """The API server cannot be reached or asked to try again (503, 429, a timeout): worth retrying."""


class ClusterPermissionError(EnvironmentMissingError):
    """The API server refused ``verb`` on ``resource`` (RBAC); retrying does not help."""

    def __init__(self, message: str, *, verb: str, resource: str, namespace: str | None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.verb, self.resource, self.namespace = verb, resource, namespace


class ImageError(NbshipError):
    """The image build, its smoke test or its push failed."""

    exit_code = ExitCode.IMAGE


class DeployError(NbshipError):
    """The rollout failed."""

    exit_code = ExitCode.DEPLOY


class RolloutInterruptedError(NbshipError):
    """Interrupted (Ctrl-C) while waiting for a rollout; the cluster goes on with it.

    ``revision`` is the one being rolled out, ``previous`` the one before it (what a rollback returns to).
    """

    exit_code = ExitCode.INTERRUPTED

    def __init__(self, message: str, *, deployment: str, namespace: str, revision: int | None,
                 previous: int | None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.deployment, self.namespace = deployment, namespace
        self.revision, self.previous = revision, previous
