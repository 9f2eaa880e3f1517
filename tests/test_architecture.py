"""The house's layers, enforced: a module imports only from its own layer or the layers below.

From the bottom up (``streamreg.<name>`` or a package of that name)::

    _version, _deps, choices, errors, progress,    leaves: no math, no I/O of data
    report, penalty_report
    io                                             listing, reading, in-memory inputs, atomic writes
    design                                         Arrow batch → float64 blocks
    engine                                         accumulation, blocks, local and Dask runners
    solvers                                        one family per solver value, one registry
    model                                          results, inference, robust covariance,
                                                   file format
    fitting, planning, fit_checks, absorbed,       orchestration of passes
    prediction, evaluation, cv
    jobs, estimator, penalized_estimators,         users of the library
    demo, plotting, synthetic, spark
    cli, __init__                                  the front doors

Also enforced: no import cycle between modules, no intra-package import inside a function
(an import of a *module of streamreg* placed in a function hides a cycle; only the command
line defers imports, for start-up time, and the package's ``__getattr__`` for the estimator),
no private name imported from another package, and no file over 500 lines. Every module is
parsed with ``ast``; nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "streamreg"
LAYERS = [
    {
        "_version",
        "_deps",
        "choices",
        "distributions",
        "errors",
        "progress",
        "report",
        "data_report",
        "penalty_report",
    },
    {"io"},
    {"design"},
    {"engine"},
    {"solvers"},
    {"model"},
    {"fitting", "planning", "fit_checks", "absorbed", "prediction", "evaluation", "cv"},
    {
        "jobs",
        "estimator",
        "estimator_inputs",
        "penalized_estimators",
        "demo",
        "plotting",
        "synthetic",
        "spark",
    },
    {"cli", "__init__", "__main__"},
]
DEFERRED_IMPORTS_ALLOWED = {"streamreg", "streamreg._deps"}  # and the command line (start-up time)
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


MODULES = _modules()


def layer_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    for level, names in enumerate(LAYERS):
        if top in names:
            return level
    raise AssertionError(f"{module} is in no layer; add its top-level name to LAYERS")


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> list[str]:
    """The streamreg modules an ``import from`` statement names (the module, or its submodules)."""
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("streamreg"):
        return []
    found = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        found.append(sub if sub in MODULES else target)
    return found


def imports(module: str) -> list[tuple[str, bool, ast.ImportFrom | ast.Import]]:
    """(imported streamreg module, inside a function?, node) for every import in ``module``."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
            )
            if isinstance(child, ast.ImportFrom):
                found.extend((m, in_function, child) for m in _resolve(module, child, is_package))
            elif isinstance(child, ast.Import):
                found.extend(
                    (a.name, in_function, child)
                    for a in child.names
                    if a.name.startswith("streamreg")
                )
            visit(child, nested)

    visit(tree, False)
    return found


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_layers(module):
    here = layer_of(module)
    upward = [
        (target, layer_of(target)) for target, _, _ in imports(module) if layer_of(target) > here
    ]
    assert not upward, f"{module} (layer {here}) imports from higher layers: {upward}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_deferred_intra_package_imports(module):
    if module in DEFERRED_IMPORTS_ALLOWED or module.startswith("streamreg.cli"):
        return
    deferred = sorted({target for target, in_function, _ in imports(module) if in_function})
    assert not deferred, f"{module} imports streamreg modules inside functions: {deferred}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_names_across_packages(module):
    package = module.rsplit(".", 1)[0] if MODULES[module].name != "__init__.py" else module
    leaks = []
    for target, _, node in imports(module):
        if isinstance(node, ast.ImportFrom):
            same_package = target == package or target.startswith(package + ".")
            leaks += [
                a.name
                for a in node.names
                if a.name.startswith("_") and a.name != "__version__" and not same_package
            ]
    assert not leaks, f"{module} imports private names from other packages: {leaks}"


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """The first import cycle a depth-first walk of ``graph`` meets (its modules, the first
    repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt in graph and state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle():
    graph = {m: {t for t, in_function, _ in imports(m) if t != m} for m in MODULES}
    # A package's __init__ re-exporting its submodules is not a cycle with them.
    for m in graph:
        graph[m] = {
            t for t in graph[m] if not (m.startswith(t + ".") and MODULES[t].name == "__init__.py")
        }
    cycle = import_cycle(graph)
    assert cycle is None, "import cycle: " + " → ".join(cycle)


def test_the_cycle_finder_can_fail():
    assert import_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert import_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, (
        f"{module} has {lines} lines; split it along its seams (limit {MAX_LINES})"
    )


def test_the_checker_sees_a_violation():
    """The checks above can fail: a made-up upward and deferred import is caught."""
    tree = ast.parse("def f():\n    from ..fitting import fit\n")
    node = tree.body[0].body[0]
    targets = _resolve("streamreg.io.sources", node, is_package=False)
    assert targets == ["streamreg.fitting"]
    assert layer_of("streamreg.fitting") > layer_of("streamreg.io.sources")
