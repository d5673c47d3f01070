"""The house's rules, checked on every run: lib/ imports have no circle, the pure
cores import nothing of the shell, no module grows past ~400 lines without
saying why, and the README's "Where things live" map matches the tree."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import networkx as nx

from lib import settings

LIB = settings.ROOT / "lib"
MAX_LINES = 400
# A module over MAX_LINES says why in its docstring, with these words.
KEPT_WHOLE = "Kept whole"
PURE_CORE = {
    *(f"lib.planner.{m}" for m in ("models", "build", "graph", "schedule", "tokens", "rollback", "estimates", "files")),
    *(f"lib.gates.{m}" for m in ("models", "structural", "risk", "compliance", "resource", "evaluate")),
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in LIB.rglob("*.py"):
        parts = path.relative_to(settings.ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def import_graph() -> nx.DiGraph:
    """Every import of a lib module by another, at any depth of the code
    (function-level imports count: they are circles that merely wait)."""
    modules = _modules()
    graph = nx.DiGraph()
    for name, path in modules.items():
        graph.add_node(name)
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                # `from pkg import submodule` depends on the submodule, not on
                # whatever else the package's __init__ offers
                subs = [f"{node.module}.{alias.name}" for alias in node.names]
                targets = [s for s in subs if s in modules] or [node.module]
            for target in targets:
                if target in modules and target != name:
                    graph.add_edge(name, target)
    return graph


def test_lib_imports_have_no_circle() -> None:
    cycles = sorted(" -> ".join(c) for c in nx.simple_cycles(import_graph()))
    assert cycles == []


def test_the_checker_sees_a_circle() -> None:
    graph = import_graph()
    graph.add_edge("lib.web.problems", "lib.web.endpoint")  # as if problems imported the endpoint
    assert list(nx.simple_cycles(graph))


def test_the_pure_cores_import_nothing_of_the_shell() -> None:
    graph = import_graph()
    assert PURE_CORE <= set(graph)
    leaks = {m: sorted(set(graph.successors(m)) - PURE_CORE - {"lib.planner", "lib.gates"}) for m in PURE_CORE}
    assert {m: deps for m, deps in leaks.items() if deps} == {}


def test_no_module_is_over_400_lines_without_saying_why() -> None:
    large = {}
    for name, path in _modules().items():
        lines = path.read_text().count("\n")
        if lines > MAX_LINES and KEPT_WHOLE not in (ast.get_docstring(ast.parse(path.read_text())) or ""):
            large[name] = lines
    assert large == {}


def _readme_map() -> list[str]:
    readme = (settings.ROOT / "README.md").read_text()
    section = readme.split("## Where things live", 1)[1].split("\n## ", 1)[0]
    tree = section.split("```", 2)[1]
    return re.findall(r"^lib/([a-z_]+(?:/|\.py))", tree, re.M)


def test_the_readme_map_matches_the_tree() -> None:
    on_disk = sorted(
        [f"{p.name}/" for p in LIB.iterdir() if (p / "__init__.py").exists()]
        + [p.name for p in LIB.glob("*.py") if p.name != "__init__.py"]
    )
    assert sorted(_readme_map()) == on_disk
