"""No import cycles inside nemo_cosmos_tokenizer, between modules or between its top-level parts.

What counts as an import (parsed with ``ast`` from the source, nothing is executed): **every** ``import`` /
``from ... import`` of a package module anywhere in a module's source:

* at module level, inside functions and methods (a lazy import still ties the two modules together: it only moves
  the failure from import time to the first call), under ``if TYPE_CHECKING:`` (a type-only import is still a
  dependency of the code's meaning, and the reason the two modules cannot be read apart), and inside a PEP 562
  module ``__getattr__``;
* importing ``a.b.c`` also imports the packages ``a`` and ``a.b`` (their ``__init__`` runs), and ``from a.b import
  c`` imports ``a.b.c`` when ``c`` is a module;
* not counted: edges from a module to its own enclosing packages (Python imports those first anyway, and a package
  ``__init__`` re-exporting its children is not a layering edge).

Two graphs must be acyclic, with no exceptions: modules, and the top-level parts (``nemo_cosmos_tokenizer.X``:
``networks``, ``hub``, ``inference``, ``data``, ``config``, ...) with every module edge collapsed onto its parts.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "nemo_cosmos_tokenizer"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _absolute(module: str, is_package: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _imports(module: str, path: Path) -> set[str]:
    """Package modules that importing / running ``module`` imports (see the module docstring)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = _absolute(module, is_package, child.level, child.module)
                targets = [base] + [f"{base}.{alias.name}" for alias in child.names]
            else:
                targets = []
            for target in targets:
                parts = target.split(".")
                for i in range(1, len(parts) + 1):
                    name = ".".join(parts[:i])
                    if name in MODULES and name != module and not module.startswith(name + "."):
                        found.add(name)
            visit(child)

    visit(tree)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
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
                        out.append(sorted(component))
    return out


def _module_graph() -> dict[str, set[str]]:
    return {name: _imports(name, path) for name, path in MODULES.items()}


def _part(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _part_graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], str]]:
    """The top-level parts with the module edges collapsed onto them, and one module edge behind each part edge."""
    parts: dict[str, set[str]] = {}
    why: dict[tuple[str, str], str] = {}
    for module, targets in _module_graph().items():
        for target in targets:
            a, b = _part(module), _part(target)
            if a != b and PACKAGE not in (a, b):
                parts.setdefault(a, set()).add(b)
                why.setdefault((a, b), f"{module} -> {target}")
    return parts, why


def test_no_module_import_cycles() -> None:
    cycles = _cycles(_module_graph())
    assert not cycles, "import cycles between modules:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_import_cycles_between_top_level_parts() -> None:
    parts, why = _part_graph()
    cycles = _cycles(parts)
    lines = []
    for cycle in cycles:
        lines.append(" <-> ".join(cycle) + ": " + "; ".join(why[(a, b)] for a in cycle for b in cycle if (a, b) in why))
    assert not cycles, "import cycles between parts of the package:\n" + "\n".join(lines)


def test_the_checker_sees_a_cycle() -> None:
    """The graph code finds a cycle where there is one (so an empty result above means something)."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_lazy_type_checking_and_getattr_imports_are_edges(tmp_path) -> None:
    """An import inside a function, under ``if TYPE_CHECKING:`` and inside a module ``__getattr__`` is an edge."""
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        f"    from {PACKAGE}.config import TokenizerConfig\n"
        "def f():\n"
        f"    from {PACKAGE} import registry\n"
        "class C:\n"
        "    def g(self):\n"
        f"        import {PACKAGE}.networks.tokenizer\n"
        "def __getattr__(name):\n"
        "    from ..hub import resolve\n"
    )
    edges = _imports(f"{PACKAGE}.inference.example", source)
    assert edges == {f"{PACKAGE}.config", f"{PACKAGE}.registry", f"{PACKAGE}.networks", f"{PACKAGE}.networks.tokenizer",
                     f"{PACKAGE}.hub", f"{PACKAGE}.hub.resolve"}
