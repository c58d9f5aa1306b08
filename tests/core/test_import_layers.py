"""The core's modules import one way: no cycle, and no layer reaches up to the one above it.

The graph is read from the source with ``ast``, every ``import`` counted, those at the top of a
module and those inside functions alike: an import made inside a function to dodge a cycle at
import time is still a cycle in what depends on what. For cycles, imports under ``if TYPE_CHECKING:``
count too (a type named across a loop still ties the loop's modules together); for layers they do
not: the contract may name a runtime type in an annotation (``Job.config: ResolvedConfig``) without
loading it.

Layers, from the bottom: the contract (what a plugin sees), the runtime (config, registry, runner,
sweeps, tracking, command line), the built-in plugins (``fvc_core/builtin/`` and the trainer in
``fvc_core/training/``). A module imports only its own layer or those below it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import fvc_core

CORE = Path(fvc_core.__file__).parent

# The bottom layer: what fvc_core.contract offers and what those modules stand on.
CONTRACT = ("fvc_core.contract", "fvc_core.errors", "fvc_core.hookspecs", "fvc_core.model_input",
            "fvc_core.output_file", "fvc_core.atomic", "fvc_core.console", "fvc_core.ownership",
            "fvc_core.executors", "fvc_core.tracking.events", "fvc_core.tracking.metric_names",
            "fvc_core.pipes", "fvc_core.children", "fvc_core.fold_statistics", "fvc_core.pictures",
            "fvc_core.labels")
# The top layer: plugins that come with the core, loaded through the same path as any other, and the
# reader of what the built-in trainer writes (its checkpoints, outputs and scoring), beside it.
BUILTIN = ("fvc_core.builtin", "fvc_core.training", "fvc_core.finished_run")
# The package itself is its public face, above the layers: ``__version__`` for everyone, and the
# notebook's functions (``create_model``, ``open_run``) that reach the registry and the reader when called.
FACE = "fvc_core"


def layer(module: str) -> int:
    if module in CONTRACT:
        return 0
    if module.startswith(tuple(f"{p}." for p in BUILTIN)) or module in BUILTIN:
        return 2
    return 1


def core_modules(root: Path = CORE) -> dict[str, Path]:
    modules = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(tree: ast.AST, type_checking: bool, functions: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement: at the top and in classes; in functions and under TYPE_CHECKING if asked."""
    for node in ast.iter_child_nodes(tree):
        if _type_checking_only(node) and not type_checking:
            yield from (n for child in node.orelse for n in _imports_in(child, type_checking, functions))
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not functions:
            continue
        yield from _imports_in(node, type_checking, functions)


def _imports_in(node: ast.AST, type_checking: bool, functions: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    else:
        yield from _imports(node, type_checking, functions)


def imports_of(module: str, path: Path, modules: dict[str, Path], type_checking: bool = True,
               functions: bool = True) -> set[str]:
    """The core modules ``module`` imports (the module a name comes from, or the submodule it names)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in _imports(ast.parse(path.read_text(), str(path)), type_checking, functions):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph(root: Path = CORE, type_checking: bool = True) -> dict[str, set[str]]:
    modules = core_modules(root)
    return {module: imports_of(module, path, modules, type_checking) for module, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_core_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 40, "the core's modules were found"
    assert cycles(graph) == []


def test_no_module_imports_a_layer_above_its_own():
    graph = import_graph(type_checking=False)
    # The contract's own functions are services it lends plugins (create_plugin, plugin_hooks: the
    # registry), reached when called; what it loads when imported is held to the bottom layer, here
    # and, by what a process really loads, in test_the_contract_alone_loads_no_runtime_module.
    modules = core_modules()
    graph["fvc_core.contract"] = imports_of("fvc_core.contract", modules["fvc_core.contract"], modules,
                                            type_checking=False, functions=False)
    upward = sorted(f"{module} ({layer(module)}) imports {dep} ({layer(dep)})"
                    for module, deps in graph.items() if module != FACE
                    for dep in deps if dep != FACE and layer(dep) > layer(module))
    assert upward == []


def test_the_trainer_imports_nothing_of_the_runtime():
    # It asks the executor it is given (Job.executor) to run its folds; it neither builds a job nor
    # chooses where a fold runs. training/predict.py, the reader of a finished run, is the exception
    # until that reader leaves the trainer.
    graph = import_graph(type_checking=False)
    trainer = [m for m in graph if m.startswith("fvc_core.training") or m == "fvc_core.builtin.supervised"]
    assert len(trainer) > 10
    runtime = sorted(f"{m} imports {dep}" for m in trainer if m != "fvc_core.training.predict"
                     for dep in graph[m] if layer(dep) == 1)
    assert runtime == []
    # Nor does it fall back to an executor of its own: no executor is the folds here, one after another.
    assert [m for m in trainer if any(dep.startswith("fvc_core.builtin") for dep in graph[m])] == []


def test_the_graph_sees_imports_inside_functions_and_finds_a_loop(tmp_path):
    # The checker itself: a loop closed only by an import inside a function is still a loop.
    pkg = tmp_path / "fvc_core"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .b import thing\n")
    (pkg / "a.py").write_text("from fvc_core.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def thing():\n    from fvc_core import a\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fvc_core import c\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fvc_core import d\n")
    graph = import_graph(pkg)
    assert graph["fvc_core.sub.b"] == {"fvc_core.a"}
    assert graph["fvc_core.c"] == {"fvc_core.d"}
    assert cycles(graph) == [["fvc_core.a", "fvc_core.sub.b"], ["fvc_core.c", "fvc_core.d"]]
    assert import_graph(pkg, type_checking=False)["fvc_core.c"] == set()


def test_the_contract_alone_loads_no_runtime_module():
    # What a plugin module costs at import: the contract, not the config, registry or runner.
    code = ("import sys, fvc_core.contract; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('fvc_core'))))")
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    assert "fvc_core.contract" in loaded
    assert [m for m in loaded if m != "fvc_core" and layer(m) != 0 and m != "fvc_core.tracking"] == []
