"""The package's layout stays readable: short modules and functions, no import cycle, no private name crossing
modules, and every dotted ``jr_jax.…`` name the README uses resolves."""

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jr_jax"
MODULES = sorted(PACKAGE.glob("*.py"))
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 500, 100


def _tree(path):
    return ast.parse(path.read_text(), filename=str(path))


def _local_imports(path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every relative import in ``path``, at any depth (functions included)."""
    out = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [a.name for a in node.names]
            if node.module is None:              # from . import x, y: the modules themselves
                out += [(n, []) for n in names]
            else:
                out.append((node.module, names))
    return out


def test_modules_and_functions_are_short():
    long_modules = {p.name: n for p in MODULES if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    long_functions = {}
    for p in MODULES:
        for node in ast.walk(_tree(p)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long_functions[f"{p.name}:{node.name}"] = n
    assert not long_modules and not long_functions, (long_modules, long_functions)


def test_no_import_cycle():
    graph = {p.stem: {m.split(".")[0] for m, _ in _local_imports(p)} for p in MODULES}
    state = {}

    def visit(m, path):
        if state.get(m) == "open":
            pytest.fail(f"import cycle: {' -> '.join(path + [m])}")
        if state.get(m) != "done":
            state[m] = "open"
            for n in sorted(graph.get(m, ())):
                visit(n, path + [m])
            state[m] = "done"

    for m in sorted(graph):
        visit(m, [])


def test_no_private_name_is_imported_across_modules():
    private = [f"{p.name}: from .{m} import {n}" for p in MODULES for m, names in _local_imports(p)
               for n in names + [m] if n.startswith("_") and n != "__future__"]
    assert not private, private


def test_every_dotted_name_in_the_readme_resolves():
    import jr_jax

    names = sorted(set(re.findall(r"\b(?:jr_jax|jr)\.[A-Za-z_][\w.]*[A-Za-z_0-9]", (ROOT / "README.md").read_text())))
    assert names
    missing = []
    for name in names:
        obj = jr_jax
        for part in name.split(".")[1:]:
            if not hasattr(obj, part):
                missing.append(name)
                break
            obj = getattr(obj, part)
    assert not missing, missing


def test_import_makes_the_public_submodules_available():
    import jr_jax

    for p in MODULES:
        if not p.stem.startswith(("_", "cli")):      # the cli modules: loaded by the jr-jax command
            assert getattr(jr_jax, p.stem, None) is importlib.import_module(f"jr_jax.{p.stem}"), p.stem
