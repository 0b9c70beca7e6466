"""The package's shape: no import cycles, no imports hidden inside functions, no oversized module.

Read statically from the source (``ast``), so a cycle cannot hide behind an
import that happens to run late. An edge ``a -> b`` is an ``import b`` or
``from b import x`` in module ``a`` (and ``a -> b.x`` when ``b.x`` is a module);
importing a submodule implicitly runs its package's ``__init__``, which is not
counted as an edge of its own: a package that only re-exports from its
submodules is not a cycle with them.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ablate"

#: Imports allowed inside functions: optional dependencies and version-dependent
#: torch features, with why. Everything else is imported at module level.
DEFERRED_ALLOWED = {
    "ray": "optional dependency (pip install 'ablate[ray]')",
    "sklearn.datasets": "loaded only for the digits task; importing scikit-learn is slow for every other task",
    "torch.nn.attention": "FlexAttention: present only in newer torch builds",
    "torch.nn.attention.flex_attention": "FlexAttention: present only in newer torch builds",
    "benchmarks.common": "the asv benchmarks live next to the package, in the repository only",
    "pyarrow": "optional dependency of the Parquet export (pip install 'ablate[parquet]')",
    "asv.results": "optional dependency of the nightly job (pip install 'ablate[bench]')",
    "asv.runner": "optional dependency of the nightly job (pip install 'ablate[bench]')",
    "asv.environment": "optional dependency of the nightly job (pip install 'ablate[bench]')",
    "asv_runner.discovery": "optional dependency of the nightly job's worker (pip install 'ablate[bench]')",
}

#: Modules allowed to defer their imports, with why (their owners decide).
DEFERRING_MODULES_ALLOWED: dict[str, str] = {
    "ablate": "the package root runs before every submodule import; its one re-export stays lazy",
    "ablate.cli": "command-line start-up: each subcommand imports only what it runs",
    "ablate.nightly": "command-line start-up (``ablate nightly``)",
    "ablate.cli_args": "command-line start-up: checking a flag loads the results only when the flag is given",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> tuple[set[str], list[tuple[int, str]]]:
    """``(package modules imported at module level, (line, module) of imports inside functions)``."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), filename=str(path))
    edges: set[str] = set()
    deferred: list[tuple[int, str]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.If) and ast.unparse(node.test) in ('__name__ == "__main__"', "__name__ == '__main__'"):
            return  # runs only as a script, never on import
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_function = True
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            targets = targets_of(node, name, path.name == "__init__.py")
            if in_function:
                deferred.extend((node.lineno, t) for t in targets[:1])
            else:
                edges.update(t for t in targets if t in MODULES)
        for child in ast.iter_child_nodes(node):
            visit(child, in_function)

    visit(tree, False)
    return edges, deferred


def targets_of(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parent = module.split(".") if is_package else module.split(".")[:-1]
        parent = parent[: len(parent) - node.level + 1]
        base = ".".join(parent + ([base] if base else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def graph() -> dict[str, set[str]]:
    return {name: imports_of(name)[0] for name in MODULES}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges[v]:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


def test_the_cycle_finder_finds_a_planted_cycle():
    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert sorted(cycles(planted)) == [["a", "b", "c"], ["e"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_cycles():
    edges = graph()
    assert len(edges) > 50 and "ablate.train" in edges["ablate.executors.base"]  # the graph is really read
    assert cycles(edges) == [], "import cycles among the package's modules"


#: The stack of the README's architecture section, top to bottom: a module may import
#: its own layer and those below it, never one above. A module in no layer is not judged.
LAYERS = [
    ["ablate.cli", "ablate.cli_args", "ablate.nightly", "ablate.claims", "ablate.clean",
     "ablate.export", "ablate.__main__"],
    ["ablate.runner", "ablate.executors", "ablate.progress"],
    ["ablate.adaptive"],
    ["ablate.variants"],
    ["ablate.train"],
    ["ablate.criterion"],
    ["ablate.measure"],
    ["ablate.step"],
    ["ablate.suite", "ablate.store"],
    ["ablate.report"],
    ["ablate.plots", "ablate.variants.frame"],
    ["ablate.stats"],
    ["ablate.feasibility"],
    ["ablate.metrics"],
    ["ablate.model"],
    ["ablate.attention", "ablate.blockwise", "ablate.mask_cache", "ablate.attention_gradients",
     "ablate.relative_blocks", "ablate.relative_regions", "ablate.block_masks"],
    ["ablate.encodings", "ablate.pooling"],
    ["ablate.tasks", "ablate.devices", "ablate.dims", "ablate.registry", "ablate.errors", "ablate.environment",
     "ablate.checkpoints", "ablate.variants.table", "ablate.variants.schema", "ablate.console",
     "ablate.measure.rounds_table"],
]


def layer_of(module: str) -> int | None:
    matches = [(len(prefix), i) for i, layer in enumerate(LAYERS) for prefix in layer
               if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1] if matches else None


def test_imports_point_down_the_architecture_stack():
    upward = []
    for module, targets in graph().items():
        here = layer_of(module)
        for target in targets:
            there = layer_of(target)
            if here is not None and there is not None and there < here:
                upward.append(f"{module} -> {target}")
    assert layer_of("ablate.encodings.t5") == 16 and layer_of("ablate.executors.ray_executor") == 1
    assert upward == [], "a module imports one above it (README, Architecture)"


def test_imports_inside_functions_are_only_optional_dependencies():
    hidden = []
    for name in MODULES:
        if name in DEFERRING_MODULES_ALLOWED:
            continue
        for line, target in imports_of(name)[1]:
            if target not in DEFERRED_ALLOWED:
                hidden.append(f"{MODULES[name].relative_to(ROOT)}:{line}: import {target}")
    assert hidden == [], "import these at module level (a cycle must be fixed, not hidden)"


#: Lines a module may have: one concept per module keeps each readable in one sitting.
MAX_LINES = 400


def test_no_module_is_over_the_size_limit():
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    sizes.update({f"benchmarks/{p.name}": len(p.read_text().splitlines()) for p in (ROOT / "benchmarks").glob("*.py")})
    assert max(sizes.values()) > 200  # really counted
    oversized = {name: lines for name, lines in sizes.items() if lines > MAX_LINES}
    assert oversized == {}, f"split these modules (one concept each, at most {MAX_LINES} lines)"
