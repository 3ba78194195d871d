"""Stage 3, names: where each name the exported code reads is defined → the plan of the generated modules.

Names read and defined are computed with Python's own scoping rules (``symtable``), cell by cell, then resolved
across the generated modules, which import in the order ``MODULE_ORDER``. As in the kernel's single namespace,
a name is looked up when the code runs: a function may use a name that a later module defines (the runtime binds
it once every module is loaded, ``ModulePlan.late``); only a name read at import time (module level, a class
body, a default value) before any exported cell defines it is an error, as is a name defined only in an untagged
(exploration) cell, with the tag that would fix it.

A name may be bound again in a later exported cell (``model = MyModule()`` in setup, ``model = torch.load(…)``
in load), as the kernel allows. The service runs the cells in role order, then notebook order (``service_key``);
a read at import time gets the last binding before it in that order, and a function the last binding of all
(the runtime's ``share_names``). ``nbship.analysis`` refuses a rebinding only where that order would give a
different value than the notebook's.
"""

from __future__ import annotations

import ast
import builtins
import symtable
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from nbship.errors import Finding, Location
from nbship.extract import CleanCell
from nbship.notebook import Notebook, Role

# role → generated module, and the order in which modules are imported at start-up
ROLE_MODULE: Mapping[Role, str] = {
    "parameters": "parameters",
    "setup": "shared",
    "load": "loading",
    "preprocess": "preprocessing",
    "predict": "inference",
    "postprocess": "postprocessing",
}


MODULE_ORDER: tuple[str, ...] = tuple(ROLE_MODULE.values())


STAGE_FUNCTIONS: Mapping[Role, str] = {"preprocess": "preprocess", "predict": "predict", "postprocess": "postprocess"}


# get_ipython: only left in code whose magic was already refused, so it is not reported a second time
_BUILTINS = frozenset(dir(builtins)) | {"__file__", "__name__", "__doc__", "__spec__", "__package__", "get_ipython"}


@dataclass(frozen=True)
class Definition:
    name: str
    cell: int
    line: int
    module: str
    imported_from: str | None  # "numpy" for `import numpy as np`; None for any other binding


@dataclass(frozen=True)
class ModulePlan:
    """One generated module: its cells in notebook order and what it imports from earlier modules."""

    name: str
    cells: tuple[CleanCell, ...]
    imports: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # module → names, both sorted
    # names its functions read at call time from a later module (bound at start-up): module → names, sorted
    late: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class FindingCollector:
    def __init__(self, notebook: Notebook) -> None:
        self.notebook = notebook
        self.findings: list[Finding] = []

    def add(
        self, severity: str, code: str, message: str, cell: int | None, line: int | None, hint: str | None = None
    ) -> None:
        location = Location(self.notebook.name, cell, line)
        self.findings.append(Finding(severity, code, message, location, hint))  # type: ignore[arg-type]


def bound_names(tree: ast.Module) -> dict[str, tuple[int, str | None]]:
    """Names bound at module level → (first line, import target if bound by an import)."""
    bound: dict[str, tuple[int, str | None]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.asname or alias.name.split(".")[0]
                bound.setdefault(name, (node.lineno, alias.name if alias.asname else alias.name.split(".")[0]))
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                bound.setdefault(alias.asname or alias.name, (node.lineno, f"{node.module}.{alias.name}"))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.setdefault(node.name, (node.lineno, None))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.setdefault(node.id, (node.lineno, None))
    return bound


@lru_cache(maxsize=4096)
def global_names(source: str) -> tuple[frozenset[str], dict[str, bool]]:
    """(names the cell binds globally, names it reads from globals → read at import time?).

    Module level and class bodies run at import time (and comprehensions inside them); function bodies run when
    called, when every exported cell has run, as in the kernel.
    """
    top = symtable.symtable(source, "cell", "exec")
    defined: set[str] = set()
    used: dict[str, bool] = {}
    for sym in top.get_symbols():
        if sym.is_assigned() or sym.is_imported() or sym.is_namespace():
            defined.add(sym.get_name())
        elif sym.is_referenced():
            used[sym.get_name()] = True
    stack = [(child, child.get_type() == "class" or child.get_name() in _COMPREHENSIONS)
             for child in top.get_children()]
    while stack:
        table, at_import = stack.pop()
        for child in table.get_children():
            runs_now = child.get_type() == "class" or child.get_name() in _COMPREHENSIONS
            stack.append((child, at_import and runs_now))
        for sym in table.get_symbols():
            if sym.is_declared_global() and sym.is_assigned():
                defined.add(sym.get_name())
            elif sym.is_global() and sym.is_referenced():
                used[sym.get_name()] = used.get(sym.get_name(), False) or at_import
    return frozenset(defined), used


_COMPREHENSIONS = frozenset({"listcomp", "setcomp", "dictcomp", "genexpr"})


def service_key(module: str, cell: int) -> tuple[int, int]:
    """Where a cell runs in the service: its module's place in ``MODULE_ORDER``, then its place in the notebook."""
    return MODULE_ORDER.index(module), cell


def binding_before(defs: list[Definition], key: tuple[int, int]) -> Definition | None:
    """The binding a read at ``key`` sees in the service: the last one that runs before it, if any."""
    earlier = [d for d in defs if service_key(d.module, d.cell) < key]
    return max(earlier, key=lambda d: service_key(d.module, d.cell), default=None)


def import_time_reads(clean: CleanCell) -> set[str]:
    """Names the cell reads when it runs (module level, class bodies) before it binds them itself.

    Besides the names it only reads, that is a name it reads before rebinding it (``model = wrap(model)``).
    """
    assert clean.tree is not None
    defined, used = global_names(clean.source)
    reads = {name for name, now in used.items() if now}
    _scan(clean.tree.body, defined, set(), reads)
    return reads


_BLOCKS = (ast.stmt, ast.ExceptHandler, ast.match_case)


def _scan(statements: list[ast.stmt], defined: frozenset[str], bound: set[str], reads: set[str]) -> None:
    """Add to ``reads`` the names of ``defined`` that ``statements`` read before binding them, in run order."""
    for statement in statements:
        fields = [value for _, value in ast.iter_fields(statement)]
        blocks = [v for v in fields if isinstance(v, list) and v and isinstance(v[0], _BLOCKS)]
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            blocks = []  # a class body runs now, but binds in its own namespace; a function body runs when called
        if not blocks:
            header: list[ast.AST] = [statement]
        else:  # a compound statement: its header (`with … as f`, `for x in …`) runs, then its blocks in turn
            header = [n for v in fields if not any(v is b for b in blocks)
                      for n in (v if isinstance(v, list) else [v]) if isinstance(n, ast.AST)]
        for node in header:
            walked = _walk_at_import(node)
            loads = {n.id for n in walked if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            local = {n.id for c in walked if isinstance(c, ast.comprehension)  # `[x for x in …]`: its own x
                     for n in ast.walk(c.target) if isinstance(n, ast.Name)}
            reads |= (loads & defined) - bound - local
        for node in header:
            bound |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            bound |= set(bound_names(ast.Module(body=[node], type_ignores=[]))) if isinstance(node, ast.stmt) else set()
        for block in blocks:
            for part in block:
                if isinstance(part, ast.ExceptHandler) and part.name:
                    bound.add(part.name)
                _scan(part.body if isinstance(part, (ast.ExceptHandler, ast.match_case)) else [part],
                      defined, bound, reads)


def _walk_at_import(node: ast.AST) -> list[ast.AST]:
    """``node`` and what inside it runs with it: not function and lambda bodies, which run when called."""
    found: list[ast.AST] = []
    stack = [node]
    while stack:
        current = stack.pop()
        found.append(current)
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            arguments = current.args
            stack += [*arguments.defaults, *(d for d in arguments.kw_defaults if d is not None)]
            if not isinstance(current, ast.Lambda):
                stack += current.decorator_list
            continue
        stack += list(ast.iter_child_nodes(current))
    return found


def definitions_of(cells: list[CleanCell]) -> dict[str, list[Definition]]:
    found: dict[str, list[Definition]] = {}
    for clean in cells:
        assert clean.tree is not None
        module = ROLE_MODULE[clean.cell.role]  # type: ignore[index]
        bound = bound_names(clean.tree)
        defined, _ = global_names(clean.source)
        for name in sorted(defined):
            line, target = bound.get(name, (1, None))
            found.setdefault(name, []).append(Definition(name, clean.cell.number, line, module, target))
    return found


def _first_use(tree: ast.Module, name: str, at_import: bool = False) -> tuple[int, str | None]:
    """Line of the first read of ``name`` (at module level when ``at_import``) and the top-level def it is in."""
    for top in tree.body:
        owner = top.name if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else None
        for node in ast.walk(top):
            if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load):
                if at_import and isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef)) and _in_body(top, node):
                    continue
                return node.lineno, owner
    return 1, None


def _in_body(function: ast.FunctionDef | ast.AsyncFunctionDef, node: ast.AST) -> bool:
    return any(node is inner for stmt in function.body for inner in ast.walk(stmt))


def untagged_definition(notebook: Notebook, name: str) -> int | None:
    for cell in reversed(notebook.cells):
        if cell.kind == "code" and cell.role is None and name in cell.source:
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:
                continue
            if name in bound_names(tree):
                return cell.number
    return None


_LOADERS = frozenset({"load", "load_model", "from_pretrained", "InferenceSession", "load_state_dict", "Booster"})


def propose_role(source: str) -> tuple[Role, str] | None:
    """The role a cell's code suggests and why (used in hints and by ``nbship init``); None for exploration."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    functions = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for role, function in STAGE_FUNCTIONS.items():
        if function in functions:
            return role, f"defines {function}()"
    assigned = {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    if "example" in assigned:
        return "example", "assigns example"
    calls = {ast.unparse(n.func).split(".")[-1] for n in ast.walk(tree) if isinstance(n, ast.Call)}
    if "fit" in calls or "fit_transform" in calls:
        return None  # training stays in the notebook
    if calls & _LOADERS:
        return "load", "loads a model or artifact"
    statements = [n for n in tree.body if not isinstance(n, ast.Expr)]
    if statements and all(isinstance(n, (ast.Assign, ast.AnnAssign)) for n in statements):
        try:
            values = [ast.literal_eval(n.value) for n in statements]  # type: ignore[attr-defined]
        except (ValueError, TypeError, SyntaxError):
            values = []
        if values and all(isinstance(v, (int, float, str, bool)) for v in values):
            return "parameters", "literal settings"
    if statements and len(statements) == len(tree.body) and all(
        isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)) for n in statements
    ):
        kinds = sorted({"imports" if isinstance(n, (ast.Import, ast.ImportFrom)) else "helpers" for n in statements})
        return "setup", " and ".join(kinds)
    return None


def plan_modules(
    notebook: Notebook, cells: list[CleanCell], definitions: dict[str, list[Definition]], out: FindingCollector
) -> tuple[ModulePlan, ...]:
    by_module: dict[str, list[CleanCell]] = {m: [] for m in MODULE_ORDER}
    for clean in cells:
        by_module[ROLE_MODULE[clean.cell.role]].append(clean)  # type: ignore[index]
    star = any(isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names)
               for c in cells if c.tree is not None for n in ast.walk(c.tree))
    plans: list[ModulePlan] = []
    for module in MODULE_ORDER:
        members = by_module[module]
        if not members and module != "inference":
            continue
        own = {d.name for defs in definitions.values() for d in defs if d.module == module}
        imports: dict[str, set[str]] = {}
        late: dict[str, set[str]] = {}
        for clean in members:
            _, used = global_names(clean.source)
            now = import_time_reads(clean)
            for name in sorted(set(used) | now):
                if name in _BUILTINS:
                    continue
                if name in own and not (name in now and _first_in_module(definitions[name], module, clean)):
                    last = max(definitions[name], key=lambda d: service_key(d.module, d.cell)).module
                    if name in used and not used[name] and last != module:  # a later module binds it again
                        late.setdefault(last, set()).add(name)
                    continue  # otherwise the module binds it itself before this read
                source = _resolve(notebook, clean, name, module, name in now, definitions, star, out)
                if source is None:
                    continue
                later = MODULE_ORDER.index(source) > MODULE_ORDER.index(module)
                (late if later else imports).setdefault(source, set()).add(name)
        plans.append(ModulePlan(
            name=module,
            cells=tuple(members),
            imports={m: tuple(sorted(imports[m])) for m in MODULE_ORDER if m in imports},
            late={m: tuple(sorted(late[m])) for m in MODULE_ORDER if m in late},
        ))
    return tuple(plans)


def _first_in_module(defs: list[Definition], module: str, clean: CleanCell) -> bool:
    """Whether no earlier cell of ``module`` binds the name before ``clean`` reads it at import time."""
    return not any(d.module == module and d.cell < clean.cell.number for d in defs)


def _order() -> str:
    return " → ".join(r for m in MODULE_ORDER for r, mm in ROLE_MODULE.items() if mm == m)


def _resolve(
    notebook: Notebook, clean: CleanCell, name: str, module: str, at_import: bool,
    definitions: dict[str, list[Definition]], star: bool, out: FindingCollector,
) -> str | None:
    """The module that defines ``name`` for a use in ``module``, or None (reported, or left to a star import)."""
    assert clean.tree is not None
    line, owner = _first_use(clean.tree, name, at_import)
    who = f"{owner} uses" if owner else "uses"
    defs = definitions.get(name, [])
    if defs and not at_import:  # a function sees the last binding, once every module has run
        return max(defs, key=lambda d: service_key(d.module, d.cell)).module
    here = service_key(module, clean.cell.number)
    before = binding_before(defs, here)
    if before is not None:
        return before.module
    later = [d for d in defs if service_key(d.module, d.cell) > here]
    if later:  # (the cell's own binding, read before it binds, is neither before nor after it)
        source = min(later, key=lambda d: service_key(d.module, d.cell))
        role = next(r for r, m in ROLE_MODULE.items() if m == source.module)
        out.add("error", "used-before-load",
                f"{who} '{name}' when the cell runs, but '{name}' comes from {role} cell {source.cell}, "
                f"which runs after it",
                clean.cell.number, line,
                f"Use '{name}' inside a function (it is looked up when the function is called, as in the "
                f"kernel), or move '{name}' to an earlier stage (cells run in the order: {_order()}).")
        return None
    if star:
        return None
    untagged = untagged_definition(notebook, name)
    if untagged is not None:
        cell = notebook.cells[untagged - 1]
        role = (propose_role(cell.source) or ("setup", ""))[0]
        out.add("error", "defined-in-untagged",
                f"{who} '{name}', defined only in untagged cell {untagged}",
                clean.cell.number, line, f"Tag cell {untagged} nbship:{role}.")
    else:
        out.add("error", "undefined-name", f"{who} '{name}', which no cell defines",
                clean.cell.number, line, "Define or import it in a cell tagged nbship:setup.")
    return None
