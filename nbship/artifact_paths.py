"""Stage 3b, path expressions: the exported cells → the paths they name (``PathUse``), evaluated statically.

People build artifact paths with expressions: ``Path("artifacts") / "churn.joblib"``, ``os.path.join(DIR, f)``,
``MODEL_DIR + "/" + name``, f-strings, ``"%s.pkl" % name``, ``"{}.json".format(v)``, ``.joinpath``. These are
evaluated over the constants and parameters that exported cells assign at module level (in the order the service
runs them: parameters, setup, load, …), never by running the notebook's code. Every string constant and every
path expression of the cells asked about is a ``PathUse``; an expression that looks like a path but depends on
something only known at run time (``os.environ``, a loop variable) is a ``PathUse`` with ``text=None``.
"""

from __future__ import annotations

import ast
import dataclasses
import posixpath
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from nbship.extract import CleanCell

_MODULE_ORDER = ("parameters", "setup", "load", "preprocess", "predict", "postprocess")
_PATH_TYPES = frozenset({"Path", "PurePath", "PosixPath", "PurePosixPath", "WindowsPath", "PureWindowsPath"})
_JOIN_OWNERS = frozenset({"os.path", "osp", "path", "posixpath"})
_CWD = frozenset({"os.getcwd", "Path.cwd", "pathlib.Path.cwd", "os.curdir"})
_PASS_THROUGH = frozenset({"str", "os.fspath", "os.path.abspath", "os.path.normpath", "os.path.expanduser"})
_UNKNOWN: Any = object()
_CONVERSIONS: dict[int, Callable[[Any], str]] = {ord("s"): str, ord("r"): repr, ord("a"): ascii}
_SUFFIX = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,9}$")
_PLACEHOLDER = re.compile(r"\}|%[-#0 +\d.]*[a-zA-Z]")
_FIELD_ACCESS = re.compile(r"\{[^}]*[.\[]")  # "{0.__class__}": attribute access is no path
_WIDE = re.compile(r"\d{4,}")  # a format width that would build a huge string: not a path


@dataclass(frozen=True)
class PathUse:
    """A path-like value in a cell: ``text`` is its value (POSIX, as written: relative or absolute), or None."""

    cell: int
    line: int
    expression: str  # as written in the cell
    text: str | None
    literal: bool  # a plain string constant (kept to the rules for literals: an artifact suffix must exist)
    node: ast.expr | None = field(default=None, compare=False, repr=False)
    tail: str | None = None  # the last string constant of an unresolved expression (".joblib", "model.pt")
    # assigned to a name that other path expressions build on and nothing passes on its own (MODEL_DIR): a base,
    # not an artifact by itself, so a data folder is not shipped whole for the one file read from it
    base_only: bool = False
    argument: bool = False  # passed to a call: open(p), joblib.load(p), pd.read_csv(p)
    role: str = "load"


def unresolved_path_uses(cells: Sequence[CleanCell]) -> list[PathUse]:
    """The path expressions of load and parameters cells that cannot be evaluated statically."""
    return [u for u in path_uses(cells) if u.text is None]


def path_uses(cells: Sequence[CleanCell], roles: Iterable[str] = ("load", "parameters")) -> list[PathUse]:
    """The path-like values of the cells with ``roles``, evaluated over the constants of every exported cell."""
    wanted = set(roles)
    env: dict[str, Any] = {}
    ordered = sorted((c for c in cells if c.tree is not None),
                     key=lambda c: (_MODULE_ORDER.index(str(c.cell.role)) if c.cell.role in _MODULE_ORDER else 9,
                                    c.cell.number))
    trees = [c.tree for c in ordered if c.tree is not None]
    joins = any(isinstance(n, ast.ImportFrom) and n.module in ("os.path", "posixpath")
                for tree in trees for n in ast.walk(tree))
    found: list[PathUse] = []
    assigned: dict[tuple[int, int, int], str] = {}
    for clean in ordered:
        assert clean.tree is not None
        evaluate = _Evaluator(env, joins).value
        docstrings = _docstrings(clean.tree)
        for statement in clean.tree.body:  # a name assigned earlier in the same cell counts
            if clean.cell.role in wanted:
                uses = _uses(clean.cell.number, statement, evaluate, docstrings)
                if clean.cell.role == "setup":  # helpers and constants: only what a call reads is a file
                    uses = [u for u in uses if u.argument]
                found += [dataclasses.replace(u, role=str(clean.cell.role)) for u in uses]
            _bind(statement, env, evaluate)
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(
                    statement.targets[0], ast.Name):
                assigned[(clean.cell.number, statement.value.lineno, statement.value.col_offset)] = \
                    statement.targets[0].id
    passed = {a.id for tree in trees for n in ast.walk(tree)
              if isinstance(n, ast.Call) and not _builds_paths(_callee(n))
              for a in (*n.args, *(k.value for k in n.keywords)) if isinstance(a, ast.Name)}
    bases = {n.id for u in found if u.node is not None and not isinstance(u.node, ast.Name)
             for n in ast.walk(u.node) if isinstance(n, ast.Name)}
    return [dataclasses.replace(u, base_only=_base_only(u, assigned, bases, passed)) for u in found]


def _base_only(use: PathUse, assigned: dict[tuple[int, int, int], str], bases: set[str], passed: set[str]) -> bool:
    if use.node is None:
        return False
    name = assigned.get((use.cell, use.node.lineno, use.node.col_offset))
    return name is not None and name in bases and name not in passed


def _bind(statement: ast.stmt, env: dict[str, Any], evaluate: Callable[[ast.expr], Any]) -> None:
    """Record what a module-level statement assigns; forget any name it rebinds some other way."""
    if isinstance(statement, ast.Assign) and all(isinstance(t, ast.Name) for t in statement.targets):
        value = evaluate(statement.value)
        for target in statement.targets:
            _set(env, target.id, value)  # type: ignore[attr-defined]
        return
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name) and statement.value:
        _set(env, statement.target.id, evaluate(statement.value))
        return
    if isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Name):
        expression = ast.BinOp(left=ast.Name(statement.target.id, ast.Load()), op=statement.op,
                               right=statement.value)
        _set(env, statement.target.id, evaluate(expression))
        return
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            env.pop(node.id, None)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            env.pop(node.name, None)
        elif isinstance(node, ast.alias):
            env.pop((node.asname or node.name).split(".")[0], None)


def _set(env: dict[str, Any], name: str, value: Any) -> None:
    if value is _UNKNOWN:
        env.pop(name, None)
    else:
        env[name] = value


def _docstrings(tree: ast.Module) -> set[int]:
    return {
        id(n.body[0].value) for n in ast.walk(tree)
        if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
        and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)
    }


def _uses(cell: int, statement: ast.stmt, evaluate: Callable[[ast.expr], Any], docstrings: set[int]) -> list[PathUse]:
    """Maximal path expressions and the string constants outside them, in source order."""
    uses: list[PathUse] = []
    inside: set[int] = set()
    call_arguments = {id(a) for n in ast.walk(statement) if isinstance(n, ast.Call)
                      for a in (*n.args, *(k.value for k in n.keywords))}
    for node in ast.walk(statement):  # breadth-first: an outer expression comes before its parts
        if id(node) in inside or not isinstance(node, ast.expr):
            continue
        where = (cell, node.lineno)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str) and id(node) not in docstrings and _plausible(node.value):
                uses.append(PathUse(*where, repr(node.value), node.value, literal=True, node=node,
                                    argument=id(node) in call_arguments))
            continue
        is_name_argument = isinstance(node, ast.Name) and id(node) in call_arguments
        if not (is_name_argument or isinstance(node, (ast.BinOp, ast.JoinedStr, ast.Call))):
            continue
        value = evaluate(node)
        text = str(value) if isinstance(value, (str, PurePosixPath)) else None
        built_path = isinstance(value, PurePosixPath) or (text is not None and ("/" in text or _SUFFIX.search(text)))
        if not (is_name_argument or built_path or _is_path_expression(node)):
            continue
        if text is not None and not _plausible(text):
            continue
        if text is None and is_name_argument:
            continue  # a variable whose value is not known statically: nothing says it is a path
        inside.update(id(n) for n in ast.walk(node))
        uses.append(PathUse(*where, ast.unparse(node), text, literal=False, node=node,
                            tail=None if text else _tail(node), argument=id(node) in call_arguments))
    return sorted(uses, key=lambda u: u.line)


def _plausible(text: str) -> bool:
    return 0 < len(text) < 256 and "\n" not in text and "://" not in text and text.strip("/") != ""


def _builds_paths(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return last in _PATH_TYPES or last in ("joinpath", "with_suffix", "with_name", "format") or _is_join(name) \
        or name in _PASS_THROUGH or name == "join"


def _tail(node: ast.expr) -> str | None:
    specs = {id(inner) for n in ast.walk(node) if isinstance(n, ast.FormattedValue) and n.format_spec
             for inner in ast.walk(n.format_spec)}
    nodes = sorted((n for n in ast.walk(node)
                    if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in specs),
                   key=lambda n: (n.lineno, n.col_offset))
    constants = [str(n.value) for n in nodes]
    pieces = [c.strip("/") for c in constants if c.strip("/")]
    if not pieces:
        return None
    tail = _PLACEHOLDER.split(pieces[-1].rsplit("/", 1)[-1])[-1]  # after "{…}" and "%s" of a template
    return tail or None


def _is_path_expression(node: ast.expr) -> bool:
    """Built from pieces in a way that makes paths: a path type or join, or string pieces with a separator or
    a file suffix."""
    if isinstance(node, ast.Call):
        name = _callee(node)
        last = name.rsplit(".", 1)[-1]
        if last in _PATH_TYPES or last in ("joinpath", "with_suffix", "with_name") or _is_join(name):
            return True
        if last != "format" and name not in _PASS_THROUGH:
            return False
    elif not isinstance(node, (ast.BinOp, ast.JoinedStr)):
        return False
    if isinstance(node, ast.BinOp) and not isinstance(node.op, (ast.Add, ast.Div, ast.Mod)):
        return False
    constants = [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    return any("/" in c or _SUFFIX.search(c) for c in constants) or any(
        isinstance(n, ast.Call) and _is_path_expression(n) for n in ast.walk(node) if n is not node)


def _callee(node: ast.Call) -> str:
    try:
        return ast.unparse(node.func)
    except (ValueError, AttributeError):
        return ""


def _is_join(name: str) -> bool:
    owner, _, last = name.rpartition(".")
    return last == "join" and owner in _JOIN_OWNERS


class _Evaluator:
    """Evaluate an expression over known constants: str, int, float, bool, PurePosixPath; else ``_UNKNOWN``."""

    def __init__(self, env: dict[str, Any], bare_join: bool) -> None:
        self.env = env
        self.bare_join = bare_join

    def value(self, node: ast.expr) -> Any:
        try:
            return self._value(node)
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError, OverflowError,
                MemoryError):
            return _UNKNOWN

    def _value(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool)):
            return node.value
        if isinstance(node, ast.Name):
            return self.env.get(node.id, _UNKNOWN)
        if isinstance(node, ast.JoinedStr):
            return self._fstring(node)
        if isinstance(node, ast.BinOp):
            left, right = self._value(node.left), self._value(node.right)
            if left is _UNKNOWN or right is _UNKNOWN:
                return _UNKNOWN
            if isinstance(node.op, ast.Div) and isinstance(left, (str, PurePosixPath)) and isinstance(
                    right, (str, PurePosixPath)) and (isinstance(left, PurePosixPath) or
                                                      isinstance(right, PurePosixPath)):
                return PurePosixPath(left) / right
            if isinstance(node.op, ast.Add) and isinstance(left, str) and isinstance(right, str):
                return left + right
            if isinstance(node.op, ast.Mod) and isinstance(left, str) and not _WIDE.search(left):
                return left % right
            return _UNKNOWN
        if isinstance(node, (ast.Tuple, ast.List)):
            items = [self._value(e) for e in node.elts]
            return _UNKNOWN if any(i is _UNKNOWN for i in items) else tuple(items)
        if isinstance(node, ast.Attribute):
            name = ast.unparse(node)
            if name in _CWD:
                return "."
            owner = self._value(node.value)
            if isinstance(owner, PurePosixPath) and node.attr in ("parent", "name", "stem", "suffix"):
                return getattr(owner, node.attr)
            return _UNKNOWN
        if isinstance(node, ast.Call):
            return self._call(node)
        return _UNKNOWN

    def _call(self, node: ast.Call) -> Any:
        name = _callee(node)
        last = name.rsplit(".", 1)[-1]
        args = [self._value(a) for a in node.args]
        if any(a is _UNKNOWN for a in args) or any(isinstance(a, ast.Starred) for a in node.args):
            return _UNKNOWN
        if name in _CWD:
            return PurePosixPath(".") if "Path" in name else "."
        if last in _PATH_TYPES and not node.keywords and all(isinstance(a, (str, PurePosixPath)) for a in args):
            return PurePosixPath(*args)
        if (_is_join(name) or (name == "join" and self.bare_join)) and all(isinstance(a, str) for a in args):
            return posixpath.join(*args) if args else _UNKNOWN
        if name in _PASS_THROUGH and len(args) == 1 and isinstance(args[0], (str, PurePosixPath)):
            return str(args[0])
        if isinstance(node.func, ast.Attribute):
            owner = self._value(node.func.value)
            if isinstance(owner, PurePosixPath) and last in ("joinpath", "with_suffix", "with_name"):
                return getattr(owner, last)(*args)
            if isinstance(owner, str) and last == "format" and not _WIDE.search(owner) and not _FIELD_ACCESS.search(
                    owner):
                keywords = {k.arg: self._value(k.value) for k in node.keywords if k.arg}
                if any(v is _UNKNOWN for v in keywords.values()) or len(keywords) != len(node.keywords):
                    return _UNKNOWN
                return owner.format(*args, **keywords)
        return _UNKNOWN

    def _fstring(self, node: ast.JoinedStr) -> Any:
        parts: list[str] = []
        for piece in node.values:
            if isinstance(piece, ast.Constant):
                parts.append(str(piece.value))
                continue
            assert isinstance(piece, ast.FormattedValue)
            value = self._value(piece.value)
            if value is _UNKNOWN:
                return _UNKNOWN
            spec = self._value(piece.format_spec) if piece.format_spec is not None else ""
            if not isinstance(spec, str) or _WIDE.search(spec):
                return _UNKNOWN
            if piece.conversion in _CONVERSIONS:
                value = _CONVERSIONS[piece.conversion](value)
            parts.append(format(value, spec))
        return "".join(parts)
