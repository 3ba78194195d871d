"""Stage 3 as a whole: ``inspect_notebook`` runs every static check and, when none fails, builds the spec.

``nbship.project.check_notebook`` adds the lock's state and the parity run (``nbship.parity``) on a throwaway
render; ``nbship render`` runs the same checks and refuses to write anything while one fails.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbship.analysis import analyze
from nbship.artifact_paths import unresolved_path_uses
from nbship.artifacts import find_artifacts
from nbship.config import Config, load_config
from nbship.errors import Finding, Location
from nbship.extract import ServiceCode, extract_service
from nbship.notebook import Cell, Notebook, parse_notebook
from nbship.pickles import notebook_reference_findings
from nbship.spec import ExampleSpec, Overrides, ProjectSpec, build_spec


@dataclass(frozen=True)
class CheckResult:
    notebook: Notebook
    config: Config
    config_path: Path | None
    code: ServiceCode
    spec: ProjectSpec | None  # None while an error blocks it
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    def with_findings(self, extra: list[Finding]) -> CheckResult:
        return CheckResult(self.notebook, self.config, self.config_path, self.code, self.spec,
                           _sorted((*self.findings, *extra)))


def _sorted(findings: Any) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=lambda f: (f.location.cell or 0, f.location.line or 0, f.severity)))


def saved_response(cell: Cell) -> tuple[Any, str | None]:
    """The example cell's saved result, from ``application/json`` or a literal ``text/plain`` repr.

    Returns the value and None, or None and why it cannot be read.
    """
    results = [o for o in cell.outputs if o.output_type == "execute_result"]
    if not results:
        return None, "the example cell has no saved output"
    data = results[-1].data
    if "application/json" in data:
        return data["application/json"], None
    text = data.get("text/plain", "")
    text = "".join(text) if isinstance(text, list) else str(text)
    try:
        return ast.literal_eval(text), None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        shown = text if len(text) <= 60 else text[:57] + "..."
        return None, f"the example's saved output {shown!r} is not a plain literal"


def inspect_notebook(
    path: Path, *, config_path: Path | None = None, verify: bool = True, overrides: Overrides = Overrides()
) -> CheckResult:
    """Points 1–6 of ``nbship check``: read, roles, names, IPython syntax, secrets, artifacts.

    Raises:
        NotebookError: the file is not a readable Python notebook.
        ConfigError: nbship.yaml is invalid.
    """
    from nbship.secrets.findings import secret_findings

    notebook = parse_notebook(path)
    config, found_config = load_config(path, config_path)
    code = extract_service(notebook)
    analysis = analyze(notebook, code)
    artifacts, remote, artifact_findings = find_artifacts(path, code.cells, list(config.artifacts))
    findings = [*code.findings, *analysis.findings, *artifact_findings,
                *secret_findings(notebook.name, code, config, found_config)]
    findings += notebook_reference_findings(notebook, path.parent, artifacts, analysis.defined)
    if not verify:  # with the parity run, only those that name nothing it opened (project.observed_parity)
        from nbship.observed import unresolved_finding

        findings += [unresolved_finding(notebook.name, u, observed=False) for u in unresolved_path_uses(code.cells)]
    example = None
    if analysis.example is not None:
        response, problem = saved_response(analysis.example.cell)
        if problem is not None and verify:
            findings.append(Finding(
                "error", "example-output", problem, Location(notebook.name, analysis.example.cell.number, None),
                "Run the notebook and save it, and make postprocess return plain Python values "
                "(float(x), x.tolist()); or skip the parity check with --no-verify.",
            ))
        example = ExampleSpec(analysis.example.request, response, analysis.example.cell.number)
    spec = None
    if not any(f.severity == "error" for f in findings):
        spec = build_spec(
            overrides=overrides,
            notebook_path=path,
            notebook_sha256=notebook.sha256,
            notebook_python=notebook.python_version,
            config=config,
            modules=analysis.modules,
            parameters=analysis.parameters,
            settings=code.settings,
            artifacts=artifacts,
            remote_artifacts=remote,
            example=example,
            imported={i.module for i in code.imports},
            env_reads=analysis.env_reads,
        )
        env_problems = _env_findings(spec)
        findings += env_problems
        if any(f.severity == "error" for f in env_problems):
            spec = None
    return CheckResult(notebook, config, found_config, code, spec, _sorted(findings))


def _env_findings(spec: ProjectSpec) -> list[Finding]:
    """Every environment variable the code reads needs a source in the Deployment (secret, ConfigMap, env:)."""
    from nbship.render.k8s import env_findings

    return env_findings(spec)


def lock_findings(result: CheckResult) -> list[Finding]:
    """Whether requirements.lock beside the notebook matches its inputs (a warning), or cannot be made (an error)."""
    from nbship.deps import LOCK_FILE, lock_status
    from nbship.deps.request import request_from
    from nbship.errors import LockError

    spec = result.spec
    if spec is None:
        return []
    notebook = spec.notebook_path
    where = Location(notebook.name)
    try:
        request = request_from(notebook, result.code, result.config, spec.artifacts, python_version=spec.python_version)
        status = lock_status(request)
    except LockError as e:
        return [Finding("error", "lock", e.message, where, e.hint)]
    if status.state == "fresh":
        return []
    return [Finding("warning", "lock-" + status.state, f"{LOCK_FILE} is {status.state}: " + "; ".join(status.reasons),
                    where, f"Run `nbship lock {notebook}` and commit {LOCK_FILE}.")]
