"""The layering of DESIGN.md, read from the source (every import, function-level ones included):
the server never imports the trainer, the contracts import neither side, the load generator
never imports the trainer, and no package's modules import each other in a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("server", "training", "models", "vitrine", "loadtest")
FORBIDDEN = {"server": {"training"}, "models": {"server", "training", "vitrine"},
             "training": {"server", "vitrine"}, "loadtest": {"training"}}
# The online install carries none of these (pyproject.toml: they are the `train` extra's).
TRAINER_ONLY = {"implicit", "scipy", "pyarrow", "sklearn", "pyspark"}
# Heavier libraries imported only inside the functions that need them, never on the request path:
# experiment results statistics (DESIGN.md, `vitrine[stats]`), and the Parquet event archive the
# export writes and the trainer reads (pyarrow, `vitrine[train]`).
STATS_MODULES = {"server.experiments.results": {"scipy"}, "models.archive": {"pyarrow"},
                 "models.archive_fs": {"pyarrow", "fsspec"}, "models.tombstones": {"pyarrow"}}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    """Every module `path` imports, anywhere in it (top level, functions, TYPE_CHECKING), or
    only those run when it is imported."""
    tree = ast.parse(path.read_text(), str(path))
    package = _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else _module_name(path)
    out = set()
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            out.add(name)
            out.update(f"{name}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return out


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules} | {m for m in _imports(path)
                                                                 if m.split(".")[0] not in PACKAGES}
            for name, path in modules.items()}


GRAPH = _graph()


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_forbidden_imports(package):
    bad = {(module, imported) for module, imports in GRAPH.items() if module.split(".")[0] == package
           for imported in imports if imported.split(".")[0] in FORBIDDEN[package]}
    assert not bad, f"{package} must not import {FORBIDDEN[package]}: {sorted(bad)}"


def test_the_server_and_the_contracts_import_no_trainer_library():
    bad = {(module, imported) for module, imports in GRAPH.items()
           if module.split(".")[0] in ("server", "models")
           for imported in imports if imported.split(".")[0] in TRAINER_ONLY
           and imported.split(".")[0] not in STATS_MODULES.get(module, ())}
    assert not bad, sorted(bad)


def test_statistics_libraries_are_imported_only_where_results_are_computed():
    for module in STATS_MODULES:
        path = ROOT / (module.replace(".", "/") + ".py")
        top = {m.split(".")[0] for m in _imports(path, top_level_only=True)}
        assert not top & TRAINER_ONLY, f"{module} imports {top & TRAINER_ONLY} when imported"


def test_no_import_cycles():
    local = {m: {i for i in imports if i in GRAPH} for m, imports in GRAPH.items()}
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for dep in sorted(local[module]):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                raise AssertionError("import cycle: " + " → ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[module] = 2

    for module in sorted(local):
        if module not in state:
            visit(module)


def test_the_checks_see_function_level_imports():
    # vitrine/demo.py imports the trainer inside a function: the graph must see it, or the
    # tests above would pass a server module that did the same.
    assert "training.pipeline" in GRAPH["vitrine.demo"]
