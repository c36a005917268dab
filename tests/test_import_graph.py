"""The package's imports point one way: from the command line down through the pipeline to the
plain data and helpers at the bottom. No module imports one above its layer, and no two modules
import each other, not even through an import inside a function (the kind that hides a circle).

The graph is read with `ast` from the source (every import, lazy ones included) and each module is
also imported for real, so a name that moved is caught here.
"""

from __future__ import annotations

import ast
import importlib
from collections import defaultdict
from pathlib import Path

import pytest

import qbench

ROOT = Path(qbench.__file__).parent

# Top to bottom. A module may import modules of its own layer or of a lower one.
LAYERS = [
    ["qbench", "qbench.__main__", "qbench.cli"],
    ["qbench.report"],  # pages, tables, compare, gate: a leaf (see test_report_is_a_leaf)
    ["qbench.pipeline", "qbench.sensitivity", "qbench.farm"],  # the pipeline, and what drives it another way
    ["qbench.runners", "qbench.collectors", "qbench.quantize", "qbench.export"],
    ["qbench.devices", "qbench.models", "qbench.datasets"],
    ["qbench.results", "qbench.inputs", "qbench.user_code", "qbench.env", "qbench.bundled"],
    ["qbench.suite"],
    ["qbench.errors", "qbench.hashing", "qbench.registry", "qbench.runtime_log", "qbench.stats",
     "qbench.strict_json", "qbench.text", "qbench.units", "qbench.version"],
    ["qbench.testing"],  # the test doubles import nothing of qbench's pipeline
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """qbench modules this module imports, anywhere in its body."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if not base.startswith("qbench"):
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in MODULES else base)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("qbench"))
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> int:
    best, depth = None, -1
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            inside = module.startswith(prefix + ".") and prefix != "qbench"  # the root holds no other module
            if (module == prefix or inside) and len(prefix) > depth:
                best, depth = i, len(prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def test_every_module_imports():
    for name in sorted(MODULES):
        if name.endswith("__main__"):
            continue
        importlib.import_module(name)


def test_no_import_points_up():
    upward = [f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})"
              for a, targets in GRAPH.items() for b in targets if _layer(b) < _layer(a)]
    assert not upward, "\n".join(upward)


def test_report_is_a_leaf():
    # what is measured, stored and compared (qbench.stats, qbench.units) sits below the pipeline, so only
    # the command line and the package root's notebook helpers show results
    importers = {a for a, targets in GRAPH.items() if not a.startswith("qbench.report")
                 for b in targets if b == "qbench.report" or b.startswith("qbench.report.")}
    assert {a for a in importers if a != "qbench" and not a.startswith("qbench.cli")} == set()


def test_no_circles():
    # Packages' __init__ files import their own modules to register them; an edge from a module back
    # to its own package's __init__ is the normal way to reach a registry, not a circle.
    def edges(a):
        return {b for b in GRAPH[a] if not (a.startswith(b + ".") and MODULES[b].name == "__init__.py")}

    state: dict[str, int] = defaultdict(int)  # 0 new, 1 on the stack, 2 done
    stack: list[str] = []
    circles = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges(node)):
            if state[nxt] == 1:
                circles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif state[nxt] == 0:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(GRAPH):
        if state[name] == 0:
            visit(name)
    assert not circles, "\n".join(circles)


@pytest.mark.parametrize("module", ["qbench.suite.loader", "qbench.suite.schema", "qbench.models.loading"])
def test_low_layers_stay_clear_of_the_stages_above(module):
    """The reproductions from the structure review: the suite layer and model building import no
    recipe, dataset, device or calibration code."""
    assert not {m for m in GRAPH[module] if m.startswith(("qbench.quantize", "qbench.datasets", "qbench.devices"))}
