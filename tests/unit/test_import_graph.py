"""No import cycles inside codegen_lsp, and no import of the development tools from it (issue 14).

The graph is built statically with `ast` from every `import` and `from ... import` in
server/codegen_lsp, at module level and inside functions alike; relative imports are resolved.
Three checks, each stricter in one way:

* modules, with the imports that run (those under `if TYPE_CHECKING:` never do);
* modules, with the `TYPE_CHECKING` imports too: a module that features/ import for their types
  (server.py) must not import features/ back (this was the 13-file cycle through `create_server`);
* the package's parts (subpackages and top-level modules): `documents` uses `syntax`, so `syntax`
  must not use `documents` (this was `advance_point`).

Importing `a.b.c` also runs the `__init__` of `a` and `a.b`, so an import of a submodule also
depends on each package above it, except the importer's own packages: those are always
initialized before the importer runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from support import REPO_ROOT
from support.imports import devtools_modules_loaded_by_cli

PACKAGE = "codegen_lsp"
DEVTOOLS = "codegen_lsp_devtools"  # the development tools (devtools/): the runtime never imports them
PACKAGE_DIR = REPO_ROOT / "server" / PACKAGE


def module_name(path: Path, root: Path = PACKAGE_DIR, package: str = PACKAGE) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, type_checking: bool):
    """Every Import / ImportFrom node; the bodies of `if TYPE_CHECKING:` only with `type_checking`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        if not type_checking and isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)  # the `else:` branch does run
            continue
        stack.extend(ast.iter_child_nodes(node))


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(root: Path = PACKAGE_DIR, package: str = PACKAGE, type_checking: bool = False) -> dict[str, set[str]]:
    """module -> the package modules it imports (as modules: `from m import name` counts as m, or as
    m.name when that is a module itself). `type_checking`: count the imports under `if TYPE_CHECKING:`."""
    files = {module_name(p, root, package): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        own_package = name if is_package else name.rpartition(".")[0]
        own_ancestors = set(_ancestors(name)) | ({name} if is_package else set())
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path)), type_checking):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            if node.level:
                base = own_package.split(".")
                if node.level > 1:
                    base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            targets.add(origin)
            targets.update(f"{origin}.{alias.name}" for alias in node.names
                           if f"{origin}.{alias.name}" in files)
        for target in targets:
            # `import a.b.c` where c is not one of our modules: the deepest prefix that is.
            while target and target not in files:
                target = target.rpartition(".")[0]
            if not target:
                continue
            for dep in [*_ancestors(target), target]:
                if dep in files and dep != name and dep not in own_ancestors:
                    graph[name].add(dep)
    return graph


def cyclic_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components that hold a cycle, each sorted (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0

    def strongconnect(start: str) -> None:  # iterative Tarjan
        nonlocal counter
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
                    work.append((child, iter(sorted(graph[child]))))
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
                    if len(component) > 1 or node in graph[node]:
                        components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    return sorted(components)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One concrete cycle (first node repeated at the end) per strongly connected component that has one."""
    return [_cycle_in(graph, set(component)) for component in cyclic_components(graph)]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first inside the component)."""
    start = min(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # cannot happen for a strongly connected component


def format_cycles(graph: dict[str, set[str]]) -> str:
    """Each cyclic component: its members, and one cycle through it."""
    lines = []
    for component in cyclic_components(graph):
        lines.append(f"{len(component)} import each other: {', '.join(component)}")
        lines.append("  for example " + " -> ".join(_cycle_in(graph, set(component))))
    return "\n".join(lines)


def part_graph(graph: dict[str, set[str]], package: str = PACKAGE) -> dict[str, set[str]]:
    """The graph between the package's parts: `pkg.documents.store` belongs to `pkg.documents`."""
    def part(name: str) -> str:
        return ".".join(name.split(".")[:2])

    parts: dict[str, set[str]] = {part(name): set() for name in graph}
    for name, deps in graph.items():
        parts[part(name)].update(part(dep) for dep in deps if part(dep) != part(name))
    parts.pop(package, None)  # the root __init__ (the version string) is no part
    return {name: deps - {package} for name, deps in parts.items()}


def check_acyclic(graph: dict[str, set[str]], what: str) -> None:
    assert f"{PACKAGE}.server" in graph  # the walk found the package
    if cyclic_components(graph):
        pytest.fail(f"import cycles in codegen_lsp ({what}):\n" + format_cycles(graph), pytrace=False)


# -- the runtime holds what serving needs; bench, training and the test-model factory are devtools/ --
def imported_names(path) -> set[str]:
    names = set()
    for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path)), type_checking=True):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif not node.level:
            names.add(node.module or "")
    return names


def test_no_runtime_module_imports_the_development_tools():
    files = sorted(PACKAGE_DIR.rglob("*.py"))
    assert len(files) > 50
    offenders = {str(p.relative_to(REPO_ROOT)): sorted(n for n in imported_names(p) if n.split(".")[0] == DEVTOOLS)
                 for p in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_development_tools_are_not_in_the_runtime_tree():
    assert not (PACKAGE_DIR / "bench").exists() and not (PACKAGE_DIR / "training").exists()
    assert not (PACKAGE_DIR / "models" / "factory.py").exists()
    assert (REPO_ROOT / "devtools" / DEVTOOLS / "bench" / "latency.py").is_file()


@pytest.mark.parametrize("argv", [
    ["serve"], ["serve", "--tcp", "127.0.0.1:9"], ["complete", "f.py", "--line", "0", "--character", "0"],
    ["synthesize", "f.py"], ["convert", "a", "b"], ["models", "list"], ["doctor"],
])
def test_runtime_commands_load_no_development_tool(argv):
    assert devtools_modules_loaded_by_cli(*argv) == []


def test_a_development_command_loads_its_module_only_when_run():
    """The check above can see them: running `bench` loads the devtools' CLI module."""
    assert f"{DEVTOOLS}.cli" in devtools_modules_loaded_by_cli("bench", "make-trace")


def test_no_cycle_between_modules():
    graph = import_graph()
    assert sum(len(deps) for deps in graph.values()) > 100  # the walk saw the imports
    check_acyclic(graph, "imports that run")


def test_no_cycle_between_modules_counting_type_checking_imports():
    check_acyclic(import_graph(type_checking=True), "TYPE_CHECKING imports included")


def test_no_cycle_between_the_package_parts():
    parts = part_graph(import_graph(type_checking=True))
    assert f"{PACKAGE}.documents" in parts[f"{PACKAGE}.server"]
    check_acyclic(parts, "between subpackages and top-level modules")


# -- the checker itself: it must see the kinds of import that make cycles -------------------------

def write_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in {"__init__.py": "", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(("files", "cycle"), [
    pytest.param({"a.py": "from . import b\n", "b.py": "from .a import x\n"},
                 ["pkg.a", "pkg.b", "pkg.a"], id="relative"),
    pytest.param({"a.py": "import pkg.b\n", "b.py": "def f():\n    from pkg import a\n"},
                 ["pkg.a", "pkg.b", "pkg.a"], id="absolute-and-function-level"),
    pytest.param({"sub/__init__.py": "from .m import y\n", "sub/m.py": "from ..c import z\n",
                  "c.py": "from .sub.n import w\n", "sub/n.py": ""},
                 ["pkg.c", "pkg.sub", "pkg.sub.m", "pkg.c"], id="through-a-package-init"),
    pytest.param({"a.py": "import os.path\nfrom lsprotocol import types\nfrom . import b\n",
                  "b.py": "import json\n"},
                 None, id="other-packages-are-ignored"),
])
def test_the_checker_sees_each_kind_of_import(tmp_path: Path, files: dict[str, str], cycle: list[str] | None):
    graph = import_graph(write_package(tmp_path, files), "pkg")
    assert find_cycles(graph) == ([cycle] if cycle else [])


def test_type_checking_imports_are_ignored_and_their_else_is_not(tmp_path: Path):
    quiet = {"a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n",
             "b.py": "from .a import x\n"}
    assert find_cycles(import_graph(write_package(tmp_path / "1", quiet), "pkg")) == []
    loud = {"a.py": "import typing\nif typing.TYPE_CHECKING:\n    pass\nelse:\n    from .b import B\n",
            "b.py": "from .a import x\n"}
    assert find_cycles(import_graph(write_package(tmp_path / "2", loud), "pkg")) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_a_module_does_not_depend_on_its_own_package_init(tmp_path: Path):
    # documents/__init__ imports documents.store, which imports its sibling: not a cycle.
    files = {"d/__init__.py": "from .store import S\nfrom .positions import P\n",
             "d/store.py": "from .positions import P\nfrom pkg.d.positions import Q\n", "d/positions.py": ""}
    assert find_cycles(import_graph(write_package(tmp_path, files), "pkg")) == []
