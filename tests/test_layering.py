"""The package rules from STYLE.md and docs/architecture.md, read from the real import graph.

The graph is built with `ast` from every module of the four packages
(imports inside functions included), not by grepping for substrings:

- `core/` is the leaf: it imports nothing of the project;
- `rules/` and `storage/` import nothing from `monitor/` and not each other;
- the store imports no decision module (the ingest decider, stories, rules);
- there is no import cycle anywhere.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "monitor", "rules", "storage")


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement in `path` names (`from a import b` gives a and a.b)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = module_name(path).split(".") if path.is_relative_to(ROOT) else [path.stem]
    if path.name != "__init__.py":
        here = here[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (names resolved to real modules)."""
    modules = project_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for mod in imported_modules(path):
            # `from rules import Ruleset` names the package; `from rules.load import x` the module.
            while mod and mod not in modules:
                mod = mod.rpartition(".")[0]
            if mod and mod != name:
                targets.add(mod)
        graph[name] = targets
    return graph


def project_imports(path: Path) -> set[str]:
    return {m for m in imported_modules(path) if m.split(".")[0] in PACKAGES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _package_of(module: str) -> str:
    return module.split(".")[0]


def _is_package_init(module: str) -> bool:
    return "." not in module


def test_the_graph_sees_the_real_modules() -> None:
    graph = import_graph()
    assert "storage.store" in graph and "core.types" in graph["storage.store"]
    assert "rules.engine" in graph["monitor.pipeline"] or "rules" in graph["monitor.pipeline"]


@pytest.mark.parametrize("package", ["rules", "storage"])
def test_libraries_import_only_the_leaf_package(package: str) -> None:
    for name, targets in import_graph().items():
        if _package_of(name) != package:
            continue
        for target in targets:
            assert _package_of(target) in (package, "core"), f"{name} imports {target}: {package}/ may import only core/"


def test_the_leaf_package_imports_nothing_from_the_project() -> None:
    for name, targets in import_graph().items():
        if _package_of(name) == "core":
            assert {t for t in targets if _package_of(t) != "core"} == set(), name
    assert not (ROOT / "monitor" / "model.py").exists(), "the shared types moved to core/"


def test_the_store_imports_no_decision_module() -> None:
    decisions = {"monitor.ingest", "monitor.stories", "monitor.decide", "rules"}
    for target in import_graph()["storage.store"]:
        assert not any(target == d or target.startswith(d + ".") for d in decisions), target


def test_no_import_cycles() -> None:
    graph = import_graph()
    # A package's __init__ re-exporting its own modules is not a cycle between modules.
    for name in list(graph):
        if _is_package_init(name):
            graph[name] = set()
    assert cycles(graph) == []


def test_the_cycle_finder_finds_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_only_the_pipeline_wires_fetch_parse_and_store() -> None:
    """Exactly one module calls both the fetcher and the store's poll writer."""
    wiring = []
    for path in sorted((ROOT / "monitor").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "parse_feed(" in text and "save_poll(" in text:
            wiring.append(path.name)
    assert wiring == ["pipeline.py"]


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("from storage.store import Store\nimport monitor.pipeline\n")
    assert project_imports(bad) >= {"storage.store", "monitor.pipeline"}
