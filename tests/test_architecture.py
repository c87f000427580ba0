"""Tests that keep the house standing: layers, private access, module sizes, the module map.

The package is a public facade over ``otel_ml._internal``, whose sub-packages are one-way layers
(``docs/architecture.md``). These tests read the source with :mod:`ast`; they import nothing.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "otel_ml"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

#: Internal layers, lowest first: a module imports from its own layer or lower ones only.
LAYERS = ("core", "data", "reference", "stats", "monitor", "report", "instrument")
#: Public modules with no otel_ml imports of their own: any layer may use them.
LEAVES = frozenset({"contract", "thresholds", "environment_variables", "version"})
#: The application layer: the facade, the public modules over _internal, the CLI and the demo.
APPLICATION = "application"

MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 300

#: ``obj._name`` on objects of other modules, each with its reason. Keep it short.
PRIVATE_ACCESS_ALLOWED = {
    # The SDK keeps its resource and per-reader metric storage private; renewing them after a
    # fork is deliberately confined to this one function (see its docstring and test_fork.py).
    ("_internal/core/config.py", "_renew_sdk_state_after_fork"),
}


def _modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts): p
            for p in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) >= 3 and parts[1] == "_internal":
        return parts[2]
    if len(parts) == 2 and parts[1] in LEAVES:
        return "leaf"
    if parts == ["otel_ml", "_internal"]:
        return "core"
    return APPLICATION


def _rank(layer: str) -> int:
    if layer == "leaf":
        return -1
    if layer == APPLICATION:
        return len(LAYERS)
    return LAYERS.index(layer)


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _imports(module: str, path: Path) -> list[tuple[int, str]]:
    """``(line, imported module)`` for every otel_ml import in ``path``, at any depth."""
    out = []
    package = _package_of(module, path)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("otel_ml")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if not name.startswith("otel_ml"):
                continue
            modules = _modules()
            for alias in node.names:  # ``from pkg import module`` imports the module
                sub = f"{name}.{alias.name}"
                out.append((node.lineno, sub if sub in modules else name))
    return out


def _module_level_imports(path: Path, module: str) -> set[str]:
    """otel_ml modules imported when ``path`` is imported (not inside functions or TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    modules = _modules()
    package = _package_of(module, path)

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    name = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
                else:
                    name = node.module or ""
                for alias in node.names:
                    sub = f"{name}.{alias.name}"
                    if sub in modules:
                        found.add(sub)
                    elif name in modules:
                        found.add(name)
            elif isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return found


def test_layer_order_is_one_way():
    """An internal module imports only its own layer, lower layers and the public leaves."""
    wrong = []
    for module, path in _modules().items():
        layer = _layer(module)
        for line, imported in _imports(module, path):
            target = _layer(imported)
            if layer == "leaf" and imported != module:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: the leaf {module} imports {imported}")
            elif _rank(target) > _rank(layer):
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {layer} imports {imported} ({target})")
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_import_cycles():
    """Module-level imports between otel_ml modules form no cycle."""
    modules = _modules()
    graph = {m: _module_level_imports(p, m) - {m} for m, p in modules.items()}
    # A package's __init__ is imported with any of its modules: not an edge worth a cycle.
    for m in graph:
        graph[m] = {t for t in graph[m] if not m.startswith(t + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def dfs(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                dfs(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            dfs(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _own_private_names(tree: ast.AST) -> set[str]:
    """Private names this module defines: its functions, classes, fields and attributes."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)  # __slots__ entries
    return {n for n in names if n.startswith("_")}


def _enclosing_functions(tree: ast.AST) -> dict[ast.AST, str]:
    owner: dict[ast.AST, str] = {}
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                owner.setdefault(node, fn.name)
    return owner


def test_no_access_to_another_modules_private_members():
    """``obj._name`` is allowed on ``self``/``cls`` and on names this module defines itself."""
    wrong = []
    for module, path in _modules().items():
        rel = str(path.relative_to(PACKAGE))
        tree = ast.parse(path.read_text(), str(path))
        own = _own_private_names(tree)
        owner = _enclosing_functions(tree)
        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Attribute):
                attr = node.attr
                if not attr.startswith("_") or attr.startswith("__"):
                    continue
                if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    continue
                if attr in own:
                    continue
                name = f"{ast.unparse(node.value)}.{attr}"
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("otel_ml"):
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private:
                    name = f"from {node.module} import {', '.join(private)}"
            if name is None or (rel, owner.get(node)) in PRIVATE_ACCESS_ALLOWED:
                continue
            wrong.append(f"{rel}:{node.lineno}: {name}")
    assert not wrong, "access to another module's private members:\n" + "\n".join(sorted(set(wrong)))


def _generated(path: Path) -> bool:
    return "GENERATED" in path.read_text()[:400]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_and_class_sizes(path: Path):
    if _generated(path):
        pytest.skip("generated")
    lines = path.read_text().count("\n")
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef):
            size = node.end_lineno - node.lineno + 1
            assert size <= MAX_CLASS_LINES, f"class {node.name} in {path.name} has {size} lines"


def test_module_map_lists_every_module():
    """docs/architecture.md's module map has one line per module, and only modules present."""
    text = ARCHITECTURE.read_text()
    section = text.split("## Module map", 1)
    assert len(section) == 2, "docs/architecture.md needs a '## Module map' section"
    body = section[1].split("\n## ", 1)[0]
    listed = re.findall(r"^[-*] `([\w/]+\.py)`", body, flags=re.M)
    present = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                     if p.name != "__init__.py" or p.parent == PACKAGE)
    assert len(listed) == len(set(listed)), "a module is listed twice"
    assert sorted(listed) == present, (
        f"missing from the map: {sorted(set(present) - set(listed))}; "
        f"listed but absent: {sorted(set(listed) - set(present))}")
