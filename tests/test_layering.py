"""The import graph the developers' guide promises, read from the source (every import, lazy ones
inside functions included). Imports under `if TYPE_CHECKING:` are annotations only: the layering
checks skip them, the circle check does not (a circle of types is still a circle of design)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("fraudring", "graph", "gnn", "realtime", "workers", "api", "world", "bench")
#: Importable only from inside themselves: the roof (the CLI and demo) and the two processes.
TOP = ("fraudring.cli", "api", "workers")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(tree: ast.AST, *, annotations: bool = False) -> set[str]:
    names: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if not annotations and isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        stack.extend(ast.iter_child_nodes(node))
    return names


def import_graph(*, annotations: bool = False) -> dict[str, set[str]]:
    """Module -> the project modules it imports at run time (and for annotations, if asked)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        tree = ast.parse(path.read_text(), filename=str(path))
        for imported in _imported(tree, annotations=annotations):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _foundation(module: str) -> bool:
    return _within(module, "fraudring") and not _within(module, "fraudring.cli")


def test_the_foundation_imports_nothing_above_it() -> None:
    graph = import_graph()
    assert any(_foundation(m) for m in graph) and "fraudring.cli" in graph
    upward = {(m, t) for m, ts in graph.items() if _foundation(m) for t in ts if not _foundation(t)}
    assert not upward


def test_nothing_imports_the_cli_or_the_processes() -> None:
    graph = import_graph()
    wrong = {
        (m, t)
        for m, ts in graph.items()
        for t in ts
        for top in TOP
        if _within(t, top) and not _within(m, top)
    }
    assert not wrong


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_circle_of_modules() -> None:
    assert _cycles(import_graph(annotations=True)) == []


def test_the_layering_check_sees_a_violation(tmp_path: Path) -> None:
    """The reader catches lazy imports inside functions and skips TYPE_CHECKING blocks."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from graph.repository import CypherStore\n"
        "def f():\n    from fraudring.cli import app\n"
    )
    names = _imported(ast.parse(source))
    assert "fraudring.cli.app" in names and "graph.repository" not in names
    assert "graph.repository" in _imported(ast.parse(source), annotations=True)
