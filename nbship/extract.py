"""Stage 2: ``Notebook`` → ``ServiceCode``: the exported cells as plain Python, with IPython syntax classified.

Each exported cell goes through IPython's own input transformer (``TransformerManager``), which turns magics,
shell escapes and ``?`` help into ordinary calls (``get_ipython().run_line_magic('pip', 'install x')``); those
calls are then classified:

- display and housekeeping (``%matplotlib``, ``%load_ext``, ``%%time``, ``x?``…): removed, with a warning;
- ``%pip install`` / ``!pip install``: removed, the packages become requirements for the lock;
- ``%env NAME=value``: removed, becomes a setting of the service;
- anything whose removal changes behaviour (``%%bash``, ``%%writefile``, ``%run``, ``%store``, ``%%capture var``,
  other ``!`` commands): an error naming the cell.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace

from nbship.errors import Finding, Location
from nbship.notebook import Cell, Notebook


@dataclass(frozen=True)
class ImportRef:
    """A top-level module imported by exported code (``sklearn`` for ``from sklearn.linear_model import X``)."""

    module: str
    cell: int
    line: int
    # imported inside `try:` whose handler catches ImportError (or ModuleNotFoundError, Exception, a bare except):
    # the code runs without it, so a missing distribution is not an error
    optional: bool = False


@dataclass(frozen=True)
class PipRequirement:
    """A requirement from a ``%pip install`` / ``!pip install`` line; ``exported`` is False for untagged cells."""

    spec: str
    cell: int
    line: int
    exported: bool = True


@dataclass(frozen=True)
class CleanCell:
    """An exported cell as plain Python (line numbers preserved: removed lines become blank)."""

    cell: Cell
    source: str
    tree: ast.Module | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ServiceCode:
    cells: tuple[CleanCell, ...]
    imports: tuple[ImportRef, ...]
    pip_requirements: tuple[PipRequirement, ...]
    settings: dict[str, str]
    findings: tuple[Finding, ...]
    setting_lines: dict[str, tuple[int, int]] = field(default_factory=dict)  # name → (cell, line) of its %env


# magics dropped with a warning: display, editor and housekeeping commands with no effect on results
_HOUSEKEEPING_LINE = frozenset(
    "matplotlib load_ext reload_ext unload_ext autoreload aimport config timeit pinfo pinfo2 psearch pdoc pdef "
    "psource pfile who whos who_ls history hist lsmagic magic precision pprint xmode colors pdb debug prun "
    "doctest_mode automagic autocall autosave quickref page tb connect_info notebook qtconsole ls pwd "
    "dhist clear".split()
)
_DISPLAY_CELL = frozenset("html HTML javascript js markdown latex svg timeit prun".split())
_BODY_KEPT_CELL = frozenset({"time"})  # %%time: the body runs as usual, only the timing is dropped
_PIP_COMMANDS = ("pip", "pip3")


def _is_ipython_call(node: ast.AST) -> tuple[str, list[ast.expr]] | None:
    """``get_ipython().<method>(args)`` → (method, args); anything else → None."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    owner = node.func.value
    if (
        isinstance(owner, ast.Call)
        and isinstance(owner.func, ast.Name)
        and owner.func.id == "get_ipython"
        and not owner.args
    ):
        return node.func.attr, list(node.args)
    return None


def _const_str(node: ast.expr) -> str:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""


@dataclass
class _CellResult:
    source: str
    tree: ast.Module | None
    pip: list[PipRequirement]
    settings: dict[str, str]
    findings: list[Finding]
    setting_lines: dict[str, int] = field(default_factory=dict)


class _Transformer:
    """Turns one cell into plain Python; one instance per notebook (IPython is imported on first need)."""

    def __init__(self, notebook_name: str) -> None:
        self.name = notebook_name
        self._manager: object | None = None

    def _ipython_transform(self, source: str) -> str:
        if self._manager is None:
            from IPython.core.inputtransformer2 import TransformerManager

            self._manager = TransformerManager()  # type: ignore[no-untyped-call]
        return str(self._manager.transform_cell(source))  # type: ignore[attr-defined]

    def cell(self, cell: Cell, *, exported: bool) -> _CellResult:
        result = _CellResult(source=cell.source, tree=None, pip=[], settings={}, findings=[])
        try:
            result.tree = ast.parse(cell.source)
            return result  # plain Python: nothing of IPython's in it
        except SyntaxError:
            pass
        source = self._ipython_transform(cell.source)
        try:
            tree = ast.parse(source)
        except SyntaxError as e:
            result.findings.append(self._error(cell, e.lineno, "syntax-error", f"invalid Python: {e.msg}"))
            return result
        lines = source.split("\n")
        for stmt in ast.walk(tree):
            for block in ("body", "orelse", "finalbody"):
                children = getattr(stmt, block, None)
                if isinstance(children, list):
                    for child in children:
                        self._statement(cell, child, lines, result, exported=exported, nested=stmt is not tree)
        result.source = "\n".join(lines)
        try:
            result.tree = ast.parse(result.source)
        except SyntaxError as e:  # a replacement broke the block structure
            result.findings.append(self._error(cell, e.lineno, "syntax-error", f"invalid Python: {e.msg}"))
        return result

    def _statement(
        self, cell: Cell, stmt: ast.stmt, lines: list[str], result: _CellResult, *, exported: bool, nested: bool
    ) -> None:
        value = stmt.value if isinstance(stmt, (ast.Expr, ast.Assign)) else None
        call = _is_ipython_call(value) if value is not None else None
        if call is None:
            return
        method, args = call
        first, last = stmt.lineno, stmt.end_lineno or stmt.lineno
        indent = lines[first - 1][: len(lines[first - 1]) - len(lines[first - 1].lstrip())]
        original = cell.source.split("\n")[first - 1].strip() if first <= cell.source.count("\n") + 1 else ""
        if isinstance(stmt, ast.Assign):
            replacement = self._refuse(cell, first, f"'{original}' captures a magic's or shell's output", result)
        elif method == "run_line_magic":
            replacement = self._line_magic(cell, first, _const_str(args[0]), _const_str(args[1]), indent, result)
        elif method == "run_cell_magic":
            replacement = self._cell_magic(cell, _const_str(args[0]), _const_str(args[1]), _const_str(args[2]), result)
        elif method == "system":
            replacement = self._shell(cell, first, _const_str(args[0]), result)
        else:
            replacement = self._refuse(cell, first, f"IPython call '{method}'", result)
        if replacement is None or not exported:
            return
        if nested and replacement == [""]:
            replacement = [indent + "pass"]  # a block may not be left empty
        if len(replacement) == 1 and last > first:
            replacement += [""] * (last - first)
        lines[first - 1 : last] = replacement

    def _line_magic(
        self, cell: Cell, line: int, name: str, arg: str, indent: str, result: _CellResult
    ) -> list[str] | None:
        if name in _PIP_COMMANDS:
            self._pip(cell, line, arg, result)
            return [""]
        if name == "time":
            self._warn(cell, line, "magic-removed", f"%time removed; '{arg}' kept", result)
            return [indent + arg]
        if name == "env":
            key, sep, value = arg.partition("=") if "=" in arg else arg.partition(" ")
            if sep and key.strip():
                result.settings[key.strip()] = value.strip()
                result.setting_lines[key.strip()] = line
                self._warn(cell, line, "env-setting", f"%env {key.strip()} becomes a setting of the service", result)
            else:
                self._warn(cell, line, "magic-removed", f"%env {arg} removed (it only displays)", result)
            return [""]
        if name in _HOUSEKEEPING_LINE:
            label = f"{arg}?" if name.startswith("pinfo") else f"%{name}"
            self._warn(cell, line, "magic-removed", f"{label} removed (it does not change results)", result)
            return [""]
        return self._refuse(cell, line, f"%{name}", result)

    def _cell_magic(self, cell: Cell, name: str, arg: str, body: str, result: _CellResult) -> list[str] | None:
        if name in _BODY_KEPT_CELL or (name == "capture" and not arg.split()):
            self._warn(cell, 1, "magic-removed", f"%%{name} removed; the cell's code is kept", result)
            inner = self.cell(Cell(number=cell.number, kind="code", source=body, role=cell.role), exported=True)
            for f in inner.findings:
                line = f.location.line + 1 if f.location.line else None
                result.findings.append(
                    Finding(f.severity, f.code, f.message, Location(self.name, cell.number, line), f.hint)
                )
            result.pip += [replace(p, line=p.line + 1) for p in inner.pip]  # below the %%capture line
            result.settings.update(inner.settings)
            result.setting_lines.update({k: v + 1 for k, v in inner.setting_lines.items()})
            return [""] + inner.source.split("\n")
        if name in _DISPLAY_CELL:
            self._warn(cell, 1, "magic-removed", f"%%{name} cell removed (display or timing only)", result)
            return [""] * (body.count("\n") + 1)
        what = f"%%{name} {arg}".strip()
        return self._refuse(cell, 1, what, result)

    def _shell(self, cell: Cell, line: int, command: str, result: _CellResult) -> list[str] | None:
        words = command.split()
        if words[:2] in (["pip", "install"], ["pip3", "install"]) or words[1:4] == ["-m", "pip", "install"]:
            self._pip(cell, line, command[command.index("install") :], result)
            return [""]
        return self._refuse(cell, line, f"!{command}", result)

    def _pip(self, cell: Cell, line: int, arg: str, result: _CellResult) -> None:
        import shlex

        try:
            words = shlex.split(arg)
        except ValueError:
            words = arg.split()
        if not words or words[0] != "install":
            self._warn(cell, line, "magic-removed", f"%pip {arg} removed (only 'install' is read)", result)
            return
        takes_value = {"-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url",
                       "-f", "--find-links", "-e", "--editable", "--target", "-t", "--prefix"}
        skip_next = False
        for word in words[1:]:
            if skip_next:
                skip_next = False
                continue
            if word in takes_value:
                skip_next = True
                self._warn(
                    cell, line, "pip-option-ignored",
                    f"pip option {word} ignored: nbship locks from pip's own settings and nbship.yaml", result,
                )
            elif not word.startswith("-"):
                result.pip.append(PipRequirement(spec=word, cell=cell.number, line=line, exported=cell.exported))

    def _refuse(self, cell: Cell, line: int, what: str, result: _CellResult) -> list[str] | None:
        """Report ``what`` as an error; the statement stays, since the render will not go on anyway."""
        result.findings.append(
            self._error(
                cell, line, "magic-unsupported",
                f"{what} cannot be exported: removing it would change what the code does",
                hint="Rewrite it in Python (subprocess, pathlib, open) or move it to an untagged cell.",
            )
        )
        return None

    def _warn(self, cell: Cell, line: int, code: str, message: str, result: _CellResult) -> None:
        result.findings.append(Finding("warning", code, message, Location(self.name, cell.number, line)))

    def _error(self, cell: Cell, line: int | None, code: str, message: str, hint: str | None = None) -> Finding:
        return Finding("error", code, message, Location(self.name, cell.number, line), hint)


def _imports(tree: ast.Module, cell: int) -> list[ImportRef]:
    guarded = {id(inner) for node in ast.walk(tree) if isinstance(node, _TRY) and _catches_import_error(node)
               for stmt in getattr(node, "body", []) for inner in ast.walk(stmt)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [ImportRef(a.name.split(".")[0], cell, node.lineno, id(node) in guarded) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(ImportRef(node.module.split(".")[0], cell, node.lineno, id(node) in guarded))
    return sorted(found, key=lambda ref: ref.line)


# `try` and, from Python 3.11, `try … except*`
_TRY: tuple[type[ast.stmt], ...] = tuple(getattr(ast, n) for n in ("Try", "TryStar") if hasattr(ast, n))
_IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


def _catches_import_error(node: ast.stmt) -> bool:
    """Whether a handler of the ``try`` ``node`` catches a failed import (``except ImportError``, ``except:`` …)."""
    handlers: list[ast.ExceptHandler] = getattr(node, "handlers", [])
    for handler in handlers:
        caught = handler.type
        names = caught.elts if isinstance(caught, ast.Tuple) else [caught] if caught is not None else []
        if caught is None or any(ast.unparse(n).split(".")[-1] in _IMPORT_ERRORS for n in names):
            return True
    return False


def extract_service(notebook: Notebook) -> ServiceCode:
    """Turn the exported cells into plain Python and collect imports, requirements and settings.

    ``%pip install`` lines of untagged cells are collected too (``exported=False``); their other IPython syntax is
    not judged, since exploration never ships.
    """
    transformer = _Transformer(notebook.name)
    cells: list[CleanCell] = []
    imports: list[ImportRef] = []
    pip: list[PipRequirement] = []
    settings: dict[str, str] = {}
    setting_lines: dict[str, tuple[int, int]] = {}
    findings: list[Finding] = []
    for cell in notebook.cells:
        if cell.kind != "code" or cell.role == "skip":
            continue
        if cell.exported:
            result = transformer.cell(cell, exported=True)
            findings += result.findings
            settings.update(result.settings)
            setting_lines.update({k: (cell.number, v) for k, v in result.setting_lines.items()})
            if result.tree is not None:
                imports += _imports(result.tree, cell.number)
            cells.append(CleanCell(cell=cell, source=result.source, tree=result.tree))
        elif cell.role is None and ("pip" in cell.source):
            result = transformer.cell(cell, exported=False)
        else:
            continue
        pip += result.pip
    return ServiceCode(
        cells=tuple(cells),
        imports=tuple(imports),
        pip_requirements=tuple(pip),
        settings=settings,
        findings=tuple(findings),
        setting_lines=setting_lines,
    )
