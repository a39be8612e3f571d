"""The package is laid out as the data flows: each folder imports only from the folders before it
(docs/architecture.md), and no module imports itself through others."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "grader"
FOLDERS = ("exam", "embedding", "scoring", "review", "calibration", "llm", "outputs", "authoring", "web", "cli")
"""In data-flow order. Modules directly under grader/ are the foundations every folder may use."""


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """The grader modules `path` imports (inside functions too, unless `top_level_only`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("grader")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("grader") and node.level == 0:
            # `from grader.review import gradebook` imports the module grader.review.gradebook.
            found |= {
                f"{node.module}.{a.name}" if _is_module(f"{node.module}.{a.name}") else node.module for a in node.names
            }
    return found


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or path.is_dir()


def _rank(module: str) -> int:
    """0 for the foundations, then 1 + the folder's place in FOLDERS."""
    parts = module.split(".")
    return FOLDERS.index(parts[1]) + 1 if len(parts) > 2 or (len(parts) == 2 and parts[1] in FOLDERS) else 0


MODULES = {_module(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_is_in_a_known_folder_or_a_foundation():
    strays = [m for m in MODULES if len(m.split(".")) > 2 and m.split(".")[1] not in FOLDERS]
    assert not strays


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_only_foundations_its_own_folder_and_folders_before_it(module):
    later = sorted(m for m in _imports(MODULES[module], top_level_only=False) - {"grader"} if _rank(m) > _rank(module))
    assert not later, f"{module} imports {later}, from folders after its own"


def test_no_import_cycle():
    graph = {m: {i for i in _imports(p, top_level_only=True) if i in MODULES and i != m} for m, p in MODULES.items()}
    # Drop the package __init__ edges re-exporting their own modules: importing a package runs its __init__.
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle.extend(stack[stack.index(nxt) :] + [node, nxt] if nxt in stack else [node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, [*stack, node]):
                return True
        state[node] = 2
        return False

    for module in sorted(graph):
        if state.get(module) is None and visit(module, []):
            break
    assert not cycle, " -> ".join(cycle)


def test_module_paths_from_before_the_folders_still_import_the_same_modules():
    import importlib

    import grader

    for old, new in grader._MOVED.items():
        assert importlib.import_module(f"grader.{old}") is importlib.import_module(f"grader.{new}"), old
    from grader.grade import grade  # the form scripts written before the folders use

    from grader.scoring.grade import grade as moved

    assert grade is moved
