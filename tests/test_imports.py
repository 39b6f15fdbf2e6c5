"""The import direction docs/architecture.md states, checked on the source: no circle, and the
roads that use a trained model never reach the training loop or the training step.

Every import counts, those inside functions too (the circle this test was written against,
cli -> commands -> img2gif -> cli, ran through one).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tiny import REPO

PACKAGE = REPO / "src" / "affinegan"
TRAINING = {"affinegan.training.train", "affinegan.core.step"}
USERS_OF_A_MODEL = ("generation", "evaluation", "serving", "export")


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports (absolute or relative)."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                names = {f"{base}.{a.name}" for a in node.names}
                found.update(names)
                if not names & files.keys():  # `from pkg import module` needs pkg only to exist
                    found.add(base)
        graph[name] = {m for m in found if m in files and m != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle as a path (first module repeated at the end), or [] when none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return []


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_checks_see_a_circle_and_a_path():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []
    assert reachable(graph, "d") == {"a", "b", "c"}


def test_the_graph_reads_relative_and_function_level_imports(tmp_path):
    pkg = tmp_path / "affinegan"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "top.py").write_text("def f():\n    from .sub import leaf\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "leaf.py").write_text("from .. import top\n")
    graph = import_graph(pkg)
    assert graph["affinegan.top"] == {"affinegan.sub.leaf"}  # a module's package is no edge
    assert find_cycle(graph) == ["affinegan.sub.leaf", "affinegan.top", "affinegan.sub.leaf"]


def test_no_import_circle_in_the_package():
    assert find_cycle(import_graph()) == []


def test_the_roads_that_use_a_model_never_reach_the_training_loop_or_step():
    graph = import_graph()
    for name in sorted(graph):
        if name.split(".")[1:2] and name.split(".")[1] in USERS_OF_A_MODEL:
            assert not reachable(graph, name) & TRAINING, f"{name} reaches the training loop"


def test_only_the_entry_point_imports_the_command_line():
    """The roads read their options dataclasses (cli/command_options.py) like config.py, but
    nothing outside cli/ imports the entry point or the commands."""
    graph = import_graph()
    for name, imports in graph.items():
        if not name.startswith("affinegan.cli") and name != "affinegan.__main__":
            assert not imports & {"affinegan.cli", "affinegan.cli.commands"}, name


def test_the_core_imports_only_the_core_and_the_shared_modules():
    """core/ is the paper: it reads a config, and knows nothing of the roads around it."""
    shared = {f"affinegan.{m}" for m in ("config", "options", "errors", "layout", "files")}
    for name, imports in import_graph().items():
        if name.startswith("affinegan.core"):
            others = {m for m in imports if not m.startswith("affinegan.core")} - shared
            assert not others, f"{name} imports {sorted(others)}"
