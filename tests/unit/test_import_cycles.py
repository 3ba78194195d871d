"""The stages form a pipeline: no module of nbship imports, even inside a function, one that imports it back.

An import inside a function only hides a cycle from the interpreter; the graph here counts every one of them.
Imports under ``if TYPE_CHECKING:`` never run and are left out (as ``tools/import_cycles.py`` does); a package's
``__init__`` re-exporting its own submodules is not a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "nbship"


def module_names(root: Path) -> dict[str, Path]:
    names = {}
    for path in root.rglob("*.py"):
        parts = (root.name, *path.relative_to(root).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imported(module: str, path: Path, known: set[str]) -> set[str]:
    """Every nbship module that ``module`` imports, at any depth of its syntax tree."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guards = [node for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)]
    type_only = {id(n) for guard in guards for statement in guard.body for n in ast.walk(statement)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            stem = ".".join([*base, *([node.module] if node.module else [])])
            candidates = [stem, *(f"{stem}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in candidates:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = module_names(root)
    graph = {m: imported(m, p, set(modules)) for m, p in modules.items()}
    for m, targets in graph.items():  # a package and its own submodules: re-exports, not a cycle
        graph[m] = {t for t in targets if not t.startswith(m + ".") and not m.startswith(t + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Kosaraju: two depth-first passes)."""
    order: list[str] = []
    seen: set[str] = set()
    for start in sorted(graph):
        if start in seen:
            continue
        seen.add(start)
        stack = [(start, iter(sorted(graph[start])))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                order.append(node)
            elif child not in seen:
                seen.add(child)
                stack.append((child, iter(sorted(graph[child]))))
    reverse: dict[str, set[str]] = {m: set() for m in graph}
    for m, targets in graph.items():
        for t in targets:
            reverse[t].add(m)
    assigned: set[str] = set()
    components = []
    for start in reversed(order):
        if start in assigned:
            continue
        component, todo = [], [start]
        assigned.add(start)
        while todo:
            node = todo.pop()
            component.append(node)
            for t in reverse[node] - assigned:
                assigned.add(t)
                todo.append(t)
        if len(component) > 1:
            components.append(sorted(component))
    return components


def test_the_cycle_finder_sees_an_import_hidden_in_a_function(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "render.py").write_text("from pkg.check import inspect\n")
    (package / "check.py").write_text("def inspect():\n    from .render import build\n")
    (package / "spec.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import check\n")
    assert cycles(import_graph(package)) == [["pkg.check", "pkg.render"]]
    (package / "check.py").write_text("def inspect():\n    from . import spec\n")
    assert cycles(import_graph(package)) == []  # an import for type checking only never runs


def test_nbship_has_no_import_cycle() -> None:
    graph = import_graph(PACKAGE)
    assert {"nbship.project", "nbship.image.build", "nbship.deploy.apply"} <= set(graph)
    assert cycles(graph) == []


def test_only_project_chains_the_stages() -> None:
    """The stages that run one after the other are called together only by ``nbship.project``."""
    graph = import_graph(PACKAGE)
    stages = {"nbship.check", "nbship.parity", "nbship.image.build", "nbship.deploy.apply"}
    chaining = {m for m, targets in graph.items() if len(targets & stages) > 1 and not m.startswith("nbship.cli")}
    assert chaining == {"nbship.project"}



def test_no_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}
