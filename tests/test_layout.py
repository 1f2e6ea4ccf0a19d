"""The layout the folders promise: imports point one way, without cycles, and modules stay small.

    runners  →  methods  →  surgery        (benchmarks may import any of them)

Every import statement of every module counts, including those inside functions and under
``if TYPE_CHECKING:``: a lazy import still ties two modules together.
"""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

import surgery.method

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("surgery", "methods", "runners", "benchmarks")
MAX_LINES = 450
# Which top-level packages each layer may import (itself included).
MAY_IMPORT = {
    "surgery": {"surgery"},
    "methods": {"surgery", "methods"},
    "runners": {"surgery", "methods", "runners"},
    "benchmarks": {"surgery", "methods", "runners", "benchmarks"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `name` imports: `from pkg import module` counts as the module itself."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in modules else origin
                       for alias in node.names]
        else:
            continue
        for target in targets:
            # `import a.b.c` of a module we have, or the closest enclosing module we have.
            parts = target.split(".")
            for end in range(len(parts), 0, -1):
                candidate = ".".join(parts[:end])
                if candidate in modules:
                    if candidate != name:
                        found.add(candidate)
                    break
    return found


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    modules = project_modules()
    result = nx.DiGraph()
    result.add_nodes_from(modules)
    for name, path in modules.items():
        result.add_edges_from((name, target) for target in imported_modules(name, path, modules))
    return result


def test_the_import_graph_sees_every_kind_of_import(graph):
    # A resolver that missed relative, `from pkg import module` or in-function imports would let
    # the checks below pass on a graph without those edges.
    assert graph.has_edge("surgery.planner", "surgery.method")                      # from .method import ...
    assert graph.has_edge("methods.adapter", "surgery.method")                  # absolute
    assert graph.has_edge("methods.adapter", "methods.phm")                     # from .phm import (a package)
    assert graph.has_edge("runners.tasks.formats", "runners.tasks.metrics")     # from . import metrics
    assert graph.has_edge("runners.finetune.cli", "runners.finetune.run")       # inside main()
    assert graph.has_edge("benchmarks.profile_step", "runners.efficiency")      # from runners import efficiency


def test_no_import_cycles(graph):
    cycles = list(itertools.islice(nx.simple_cycles(graph), 10))
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(cycle + cycle[:1]) for cycle in cycles)


def test_imports_point_one_way(graph):
    wrong = sorted((source, target) for source, target in graph.edges
                   if target.split(".")[0] not in MAY_IMPORT[source.split(".")[0]])
    assert not wrong, "imports against runners → methods → surgery:\n" + "\n".join(f"{s} imports {t}" for s, t in wrong)


def test_no_module_over_the_line_limit():
    lengths = {path.relative_to(ROOT): len(path.read_text(encoding="utf-8").splitlines())
               for path in project_modules().values()}
    too_long = {str(path): n for path, n in sorted(lengths.items()) if n > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


def test_engine_finds_the_bundled_methods_through_the_entry_point_alone():
    code = ("import sys, surgery\n"
            "assert not {'methods', 'runners'} & set(sys.modules), 'importing surgery imported a plug-in'\n"
            "from surgery.method import get_method_class\n"
            "print(get_method_class('adapter').__module__)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT / "tests", check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "methods.adapter"


def test_an_empty_registry_says_how_to_get_methods(monkeypatch):
    groups: list[str] = []
    monkeypatch.setattr(surgery.method, "METHODS", {})
    monkeypatch.setattr(surgery.method, "_plugins_loaded", False)  # restored afterwards, like METHODS
    monkeypatch.setattr(surgery.method, "entry_points", lambda group: groups.append(group) or [])
    with pytest.raises(surgery.SurgeryError, match=r"no methods are registered.*pip install -e \."):
        surgery.method.get_method_class("adapter")
    assert groups == ["t5_surgery.methods"]


def test_no_function_in_runners_is_longer_than_60_lines():
    import ast

    long = []
    for path in sorted((ROOT / "runners").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                long.append(f"{path.relative_to(ROOT)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long


def test_no_name_in_the_engine_package_shadows_one_of_its_modules():
    modules = {path.stem for path in (ROOT / "surgery").glob("*.py") if path.stem != "__init__"}
    shadowed = sorted(name for name in surgery.__all__ if name in modules)
    assert not shadowed, f"surgery.{shadowed[0]} names both a function and a module"
