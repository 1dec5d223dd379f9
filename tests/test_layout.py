"""The layout holds: no import circle, arrows one way (core <- run <- presentation <- CLI; emulators and
planners use the core, never the presentation or the CLI), a core free of files and pictures, and no
function over 80 lines without a comment saying why."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("twin", "emulators", "planners")

#: The core: the model, the line, the scenario spec, quality and what they share. No I/O, no pictures.
CORE = ("twin", "twin.errors", "twin.vocabulary", "twin.line", "twin.region", "twin.profiles", "twin.quality",
        "twin.scenario", "twin.scenario.spec", "twin.model", "twin.kpis")
#: The core's I/O edge: reading YAML and data files.
EDGE = ("twin.scenario.loading", "twin.scenario.yaml12", "twin.datafiles")
#: Third-party packages the core must not import (terminal, pictures, CLI, YAML, event loops).
FORBIDDEN_IN_CORE = ("matplotlib", "rich", "click", "yaml", "asyncio", "aiortc")
#: Longest function accepted without a comment saying why, lines.
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every module imported anywhere in the file (function-level imports included; ``if TYPE_CHECKING``
    blocks excluded: they never run)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            for alias in node.names:  # ``from pkg import submodule``
                found.add(f"{target}.{alias.name}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph() -> nx.DiGraph:
    modules = _modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for target in _imports(tree, name, path.name == "__init__.py"):
            if target in modules and target != name:
                graph.add_edge(name, target)
    return graph


def _layer(module: str) -> str:
    if module in CORE or module.startswith("twin.model."):
        return "core"
    if module in EDGE:
        return "edge"
    for prefix, layer in (("twin.run", "run"), ("twin.presentation", "presentation"), ("twin.cli", "cli"),
                          ("emulators", "emulators"), ("planners", "planners")):
        if module == prefix or module.startswith(prefix + "."):
            return layer
    raise AssertionError(f"{module} belongs to no layer: add it to tests/test_layout.py")


#: What each layer may import (besides itself).
ALLOWED = {
    "core": {"core"},
    "edge": {"core", "edge"},
    "run": {"core", "edge", "run"},
    "presentation": {"core", "edge", "run", "presentation"},
    "emulators": {"core", "edge", "run", "emulators"},
    "planners": {"core", "edge", "run", "planners"},
    "cli": {"core", "edge", "run", "presentation", "emulators", "planners", "cli"},
}


def test_no_import_circle() -> None:
    cycles = list(nx.simple_cycles(_graph()))
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c + [c[0]]) for c in cycles[:5])


def test_arrows_run_one_way() -> None:
    wrong = [f"{a} ({_layer(a)}) imports {b} ({_layer(b)})" for a, b in _graph().edges
             if _layer(b) not in ALLOWED[_layer(a)]]
    assert not wrong, "\n".join(wrong)


def test_planners_solvers_import_only_the_core() -> None:
    graph = _graph()
    solvers = ("planners.placement", "planners.orlib", "planners.distances")
    wrong = [f"{a} imports {b}" for a in solvers if a in graph for b in graph.successors(a)
             if _layer(b) != "core" and b not in solvers]
    assert not wrong, "\n".join(wrong)


def test_core_imports_no_terminal_picture_cli_yaml_or_event_loop() -> None:
    modules = [m for m in _modules() if _layer(m) == "core"]
    probe = (f"import sys\nimport {', '.join(modules)}\n"
             f"print(','.join(m for m in {FORBIDDEN_IN_CORE!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "", f"the core imported {out.stdout.strip()}"


def _long_functions() -> list[str]:
    long = []
    for name, path in _modules().items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
                why = any("long:" in lines[i] for i in range(max(0, first - 3), node.lineno))
                if length > MAX_FUNCTION_LINES and not why:
                    long.append(f"{name}.{node.name}: {length} lines")
    return long


def test_no_function_over_80_lines_without_a_reason() -> None:
    long = _long_functions()
    assert not long, "functions over 80 lines (shorten, or say why in a '# long: ...' comment above):\n" + \
        "\n".join(long)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_definition_has_a_docstring(package: str) -> None:
    missing = []
    for name, path in _modules().items():
        if not (name == package or name.startswith(package + ".")):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if ast.get_docstring(tree) is None:
            missing.append(f"{name} (module)")
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                if ast.get_docstring(node) is None:
                    missing.append(f"{name}.{node.name}")
                if isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and not item.name.startswith("_") \
                                and ast.get_docstring(item) is None and not _is_trivial_property(item):
                            missing.append(f"{name}.{node.name}.{item.name}")
    assert not missing, f"{len(missing)} public definitions without a docstring:\n" + "\n".join(missing)


def _is_trivial_property(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A one-line property returning an attribute (its name says it all)."""
    decorated = any(isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list)
    return decorated and len(node.body) == 1 and isinstance(node.body[0], ast.Return)
