"""The package rules from STYLE.md, read from the source with ast.

rules/ and storage/ are libraries: they import neither each other nor the
pipeline, scheduler or CLI; from monitor/ only the leaf module monitor.model.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def project_imports(path: Path) -> set[str]:
    return {m for m in imported_modules(path) if m.split(".")[0] in ("monitor", "rules", "storage")}


@pytest.mark.parametrize("package,other", [("rules", "storage"), ("storage", "rules")])
def test_libraries_import_only_the_leaf_module(package: str, other: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    for path in files:
        for mod in project_imports(path):
            top = mod.split(".")[0]
            assert top != other, f"{path.relative_to(ROOT)} imports {mod}: {package}/ must not import {other}/"
            if top == "monitor":
                assert mod in ("monitor.model",) or mod.startswith("monitor.model."), (
                    f"{path.relative_to(ROOT)} imports {mod}: only monitor.model is allowed"
                )


def test_the_leaf_module_imports_nothing_from_the_project() -> None:
    assert project_imports(ROOT / "monitor" / "model.py") == set()
    assert (ROOT / "monitor" / "__init__.py").read_text().strip() == ""


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
