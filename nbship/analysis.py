"""Stage 3: static analysis of the exported code → ``Analysis``: the module plan, parameters, example, findings.

Roles must be coherent (each defines what it must; a name bound again only where the service's order gives the
notebook's values); where each name comes from and the plan of
the generated modules is ``nbship.names``; parameters, environment reads and the example are read here.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nbship.errors import Finding
from nbship.extract import CleanCell, ServiceCode
from nbship.names import (
    MODULE_ORDER,
    ROLE_MODULE,
    STAGE_FUNCTIONS,
    Definition,
    FindingCollector,
    ModulePlan,
    binding_before,
    definitions_of,
    import_time_reads,
    plan_modules,
    propose_role,
    service_key,
    untagged_definition,
)
from nbship.notebook import ROLES, Cell, Notebook, Role

__all__ = ["MODULE_ORDER", "ROLE_MODULE", "Analysis", "EnvRead", "ModulePlan", "Parameter", "analyze",
           "propose_role", "untagged_definition"]

_ARGUMENT_NAMES: Mapping[Role, str] = {"preprocess": "payload", "predict": "inputs", "postprocess": "prediction"}
PARAMETER_ENV_PREFIX = "NBSHIP_PARAM_"


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any
    cell: int
    line: int

    @property
    def env(self) -> str:
        return PARAMETER_ENV_PREFIX + self.name.upper()

    @property
    def type_name(self) -> str:
        return type(self.default).__name__


@dataclass(frozen=True)
class EnvRead:
    """An environment variable the exported code reads (``os.environ[…]``, ``os.getenv(…)``)."""

    name: str
    has_default: bool
    cell: int
    line: int


@dataclass(frozen=True)
class Example:
    request: Any
    cell: Cell


@dataclass(frozen=True)
class Analysis:
    modules: tuple[ModulePlan, ...]
    parameters: tuple[Parameter, ...]
    env_reads: tuple[EnvRead, ...]
    example: Example | None
    findings: tuple[Finding, ...]
    # every name an exported cell binds at module level → its first definition
    defined: Mapping[str, Definition] = field(default_factory=dict)


def analyze(notebook: Notebook, code: ServiceCode) -> Analysis:
    """Check roles and names of the exported code and plan the generated modules."""
    out = FindingCollector(notebook)
    _check_role_tags(notebook, out)
    cells = [c for c in code.cells if c.tree is not None]
    definitions = definitions_of(cells)
    _check_rebindings(cells, definitions, out)
    _check_stage_functions(notebook, cells, definitions, out)
    parameters = _parameters([c for c in cells if c.cell.role == "parameters"], out)
    modules = plan_modules(notebook, cells, definitions, out)
    return Analysis(
        modules=modules,
        parameters=tuple(parameters),
        env_reads=tuple(r for c in cells for r in _env_reads(c)),
        example=_example(notebook, out),
        findings=tuple(out.findings),
        defined={name: defs[0] for name, defs in definitions.items()},
    )


def _check_role_tags(notebook: Notebook, out: FindingCollector) -> None:
    for cell in notebook.cells:
        if cell.unknown_role is not None:
            close = difflib.get_close_matches(cell.unknown_role, list(ROLES), n=1)
            hint = f"did you mean nbship:{close[0]}?" if close else "roles: " + ", ".join(ROLES)
            out.add("error", "unknown-role", f"unknown role 'nbship:{cell.unknown_role}'", cell.number, None, hint)
        if cell.conflicting_roles:
            roles = " and ".join(cell.conflicting_roles)
            out.add("error", "conflicting-roles", f"the cell has two roles, {roles}", cell.number, None,
                    "Give each cell one role; split the cell if it does two things.")
        if cell.kind != "code" and cell.role is not None:
            out.add("warning", "role-on-markdown", f"role '{cell.role}' on a {cell.kind} cell is ignored",
                    cell.number, None)


def _check_rebindings(
    cells: list[CleanCell], definitions: dict[str, list[Definition]], out: FindingCollector
) -> None:
    """A name bound in several exported cells is fine where the service's order gives the notebook's values.

    The kernel ran the cells in notebook order; the service runs them in role order (``service_key``). What a
    function sees is the last binding of all; what a cell sees when it runs is the last binding before it.
    """
    rebound = {name: defs for name, defs in definitions.items() if len({d.cell for d in defs}) > 1
               and not (all(d.imported_from is not None for d in defs) and len({d.imported_from for d in defs}) == 1)}
    for name, defs in rebound.items():
        kernel, service = max(defs, key=lambda d: d.cell), max(defs, key=_key)
        if kernel is not service:
            out.add("error", "rebound-out-of-order",
                    f"'{name}' is bound here and again in {_role(kernel)} cell {kernel.cell}: the notebook keeps "
                    f"cell {kernel.cell}'s value, but the service runs {_role(service)} cells after "
                    f"{_role(kernel)} cells, so this cell's value would win",
                    service.cell, service.line, _rebinding_hint())
    for clean in cells:
        here = service_key(ROLE_MODULE[clean.cell.role], clean.cell.number)  # type: ignore[index]
        for name in sorted(import_time_reads(clean) & set(rebound)):
            defs = rebound[name]
            kernel_before = max((d for d in defs if d.cell < clean.cell.number), key=lambda d: d.cell, default=None)
            service_before = binding_before(defs, here)
            if kernel_before is None or service_before is None or kernel_before is service_before:
                continue
            out.add("error", "rebound-out-of-order",
                    f"reads '{name}' when the cell runs: in the notebook that is the value bound in "
                    f"{_role(kernel_before)} cell {kernel_before.cell}, but the service runs "
                    f"{_role(service_before)} cell {service_before.cell} last before this cell",
                    clean.cell.number, None, _rebinding_hint())


def _key(d: Definition) -> tuple[int, int]:
    return service_key(d.module, d.cell)


def _role(d: Definition) -> str:
    return next(r for r, m in ROLE_MODULE.items() if m == d.module)


def _rebinding_hint() -> str:
    order = " → ".join(ROLE_MODULE)
    return (f"The service runs the cells by role ({order}), then in notebook order: bind the name in cells that "
            "run in the same order in both, or rename one of them.")


def _check_stage_functions(
    notebook: Notebook, cells: list[CleanCell], definitions: dict[str, list[Definition]], out: FindingCollector
) -> None:
    for role, function in STAGE_FUNCTIONS.items():
        tagged = [c for c in cells if c.cell.role == role]
        defs = [d for d in definitions.get(function, []) if any(c.cell.number == d.cell for c in cells)]
        in_role = [d for d in defs if d.module == ROLE_MODULE[role]]
        elsewhere = [d for d in defs if d.module != ROLE_MODULE[role]]
        for d in elsewhere:
            out.add("error", "stage-in-wrong-cell",
                    f"{function}() is defined in a cell whose role is not '{role}'", d.cell, d.line,
                    f"Tag this cell nbship:{role}.")
        if tagged and not in_role:
            out.add("error", "stage-missing",
                    f"a cell tagged nbship:{role} must define {function}(...)", tagged[0].cell.number, None,
                    f"Define `def {function}({_ARGUMENT_NAMES[role]}):` in it.")
        if role == "predict" and not tagged and not elsewhere:
            hint = "Define `def predict(inputs):` in a cell and tag it nbship:predict."
            untagged = untagged_definition(notebook, "predict")
            if untagged is not None:
                hint = f"predict is defined in untagged cell {untagged}: tag it nbship:predict."
            out.add("error", "no-predict", "no predict function: the service has nothing to serve", None, None, hint)
        for clean in tagged:
            for node in clean.tree.body if clean.tree else []:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == function:
                    positional = node.args.posonlyargs + node.args.args
                    if not positional and node.args.vararg is None:
                        out.add("error", "stage-signature", f"{function}() must take one argument",
                                clean.cell.number, node.lineno)
                    if isinstance(node, ast.AsyncFunctionDef):
                        out.add("error", "stage-signature", f"{function}() must be a plain function, not async",
                                clean.cell.number, node.lineno)


def _parameters(cells: list[CleanCell], out: FindingCollector) -> list[Parameter]:
    found: list[Parameter] = []
    for clean in cells:
        assert clean.tree is not None
        for node in clean.tree.body:
            target: ast.expr | None = None
            value: ast.expr | None = None
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            try:
                literal = ast.literal_eval(value) if value is not None else None
                ok = isinstance(target, ast.Name) and value is not None
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                ok = False
            if not ok:
                out.add("error", "parameters-not-literal",
                        "a parameters cell holds only assignments of literal values (`threshold = 0.5`)",
                        clean.cell.number, node.lineno,
                        "Move computed values to a setup or load cell.")
                continue
            assert isinstance(target, ast.Name)
            found.append(Parameter(target.id, literal, clean.cell.number, node.lineno))
    return found


def _env_reads(clean: CleanCell) -> list[EnvRead]:
    reads: list[EnvRead] = []
    assert clean.tree is not None
    for node in ast.walk(clean.tree):
        key: ast.expr | None = None
        has_default = False
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) in ("os.environ", "environ"):
            key = node.slice
        elif isinstance(node, ast.Call) and ast.unparse(node.func) in (
            "os.getenv", "getenv", "os.environ.get", "environ.get"
        ):
            key = node.args[0] if node.args else None
            has_default = len(node.args) > 1 or any(k.arg == "default" for k in node.keywords)
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            reads.append(EnvRead(key.value, has_default, clean.cell.number, key.lineno))
    return reads


def _example(notebook: Notebook, out: FindingCollector) -> Example | None:
    cells = notebook.with_role("example")
    if not cells:
        out.add("warning", "no-example", "no example cell: the service cannot warm up or be smoke-tested",
                None, None, "Tag a cell nbship:example that assigns `example = {...}` and runs the pipeline on it.")
        return None
    if len(cells) > 1:
        out.add("error", "example-twice", f"a second example cell (the first is cell {cells[0].number})",
                cells[1].number, None)
    cell = cells[0]
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as e:
        out.add("error", "syntax-error", f"invalid Python: {e.msg}", cell.number, e.lineno)
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "example" for t in node.targets):
            try:
                return Example(ast.literal_eval(node.value), cell)
            except (ValueError, TypeError, SyntaxError):
                out.add("error", "example-not-literal", "`example` must be a literal (a dict, list, string…)",
                        cell.number, node.lineno, "Write the sample request out as a JSON-like literal.")
                return None
    out.add("error", "example-missing", "the example cell does not assign `example = …`", cell.number, None)
    return None
