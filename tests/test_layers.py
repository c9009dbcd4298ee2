"""The layers point one way: no import circle among harness's modules.

The graph holds every import between harness modules, at module level and inside
functions alike (a deferred import is how a circle hides; only ``TYPE_CHECKING`` blocks,
which never run, are left out), with one exception: a package's ``__init__`` importing its own submodules at its end, to fill its
registry (timm's pattern: ``compress/__init__`` imports ``distill``, which imports the
registry from ``compress``): the submodule's edge back to its package is dropped, the
package's edge to it kept. Every other circle fails this test, naming it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "harness"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def module_imports(tree: ast.Module, name: str, is_package: bool) -> set[str]:
    """harness modules imported anywhere in the module but under TYPE_CHECKING."""
    out: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While, ast.FunctionDef,
                                 ast.AsyncFunctionDef, ast.ClassDef)):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    for child in getattr(node, field, []) or []:
                        visit(child.body if isinstance(child, ast.ExceptHandler) else [child])
                continue
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names if a.name.startswith("harness"))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
                if base.startswith("harness"):
                    out.add(base)
                    out.update(f"{base}.{a.name}" for a in node.names)

    visit(tree.body)
    return out


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        edges[name] = {t for t in module_imports(ast.parse(path.read_text()), name, is_package) if t in files} - {name}
    for name in edges:  # a registry package filling itself: its submodule's import of it is no circle
        parent = name.rpartition(".")[0]
        if parent in edges and name in edges[parent]:
            edges[name].discard(parent)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def dfs(u: str) -> None:
        state[u] = 1
        stack.append(u)
        for v in sorted(edges.get(u, ())):
            if state.get(v) == 1:
                found.append(stack[stack.index(v):] + [v])
            elif v not in state:
                dfs(v)
        stack.pop()
        state[u] = 2

    for u in sorted(edges):
        if u not in state:
            dfs(u)
    return found


def test_no_import_circle_in_harness() -> None:
    found = cycles(graph())
    assert not found, "import circles: " + "; ".join(" -> ".join(c) for c in found)


def test_the_check_finds_a_planted_circle() -> None:
    edges = graph()
    edges["harness.errors"] = edges["harness.errors"] | {"harness.runner"}  # the bottom layer reaching up
    assert any("harness.errors" in c for c in cycles(edges))
