"""The package's shape: the stack drawn in docs/architecture.md, no import cycles, no imports hidden
inside functions, no oversized module.

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
    "ablate.cli.args": "command-line start-up: checking a flag loads the results only when the flag is given",
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


def with_package_inits(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """``edges`` plus ``a -> p`` for each package ``p`` whose ``__init__`` an import of ``a`` runs first.

    Importing ``x.y.z`` runs ``x/__init__.py`` and ``x/y/__init__.py``; a package
    enclosing ``a`` itself is already running when ``a`` runs, so it adds no edge.
    A cycle through a package's ``__init__`` (``ablate.nightly -> ablate.cli.args``
    while ``ablate/cli/__init__.py`` imports ``ablate.nightly``) fails at import time
    when the other side is imported first, although no module imports its importer.
    """
    full = {module: set(targets) for module, targets in edges.items()}
    for module, targets in edges.items():
        enclosing = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 2)}
        for target in targets:
            parts = target.split(".")
            packages = {".".join(parts[:i]) for i in range(1, len(parts))}
            full[module] |= {p for p in packages - enclosing if p in edges}
    return full


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
    assert len(edges) > 50 and "ablate.run.train" in edges["ablate.run.executors.worker"]  # the graph is really read
    assert cycles(edges) == [], "import cycles among the package's modules"
    assert cycles(with_package_inits(edges)) == [], "import cycles through a package's __init__"


def test_the_cycle_finder_sees_a_cycle_through_a_package_init():
    edges = {"a": set(), "a.cli": {"a.nightly"}, "a.cli.args": set(), "a.nightly": {"a.cli.args"}}
    assert cycles(edges) == []
    assert cycles(with_package_inits(edges)) == [["a.cli", "a.nightly"]]
    inside = {"a": set(), "a.cli": {"a.cli.args"}, "a.cli.args": set(), "a.cli.clean": {"a.cli.args"}}
    assert cycles(with_package_inits(inside)) == []  # a package's own modules do not re-enter its __init__


ARCHITECTURE = ROOT / "docs" / "architecture.md"


def drawn_layers(text: str) -> list[list[list[str]]]:
    """The stack drawn in docs/architecture.md, top to bottom: each layer a list of sibling groups of names."""
    block = text.split("<!-- layers: begin -->", 1)[1].split("<!-- layers: end -->", 1)[0]
    lines = [line for line in block.splitlines() if ":" in line and not line.startswith("```")]
    return [[group.split() for group in line.split(":", 1)[1].split("|")] for line in lines]


LAYERS = drawn_layers(ARCHITECTURE.read_text())


def place_of(module: str, layers: list[list[list[str]]] = LAYERS) -> tuple[int, int] | None:
    """``(layer, group)`` of the most specific name covering ``module`` (the package root covers itself only)."""
    matches = [(len(name), i, j) for i, layer in enumerate(layers) for j, group in enumerate(layer) for name in group
               if module == name or ("." in name and module.startswith(name + "."))]
    return max(matches)[1:] if matches else None


def test_every_module_has_a_place_in_the_drawn_stack():
    assert len(LAYERS) > 5 and all(group for layer in LAYERS for group in layer)
    unplaced = sorted(module for module in MODULES if place_of(module) is None)
    assert unplaced == [], "docs/architecture.md: add these modules to a layer"


def violations(edges: dict[str, set[str]], layers: list[list[list[str]]]) -> tuple[list[str], list[str]]:
    """``(imports pointing up the stack, imports between sibling groups of one layer)``."""
    upward, across = [], []
    for module, targets in sorted(edges.items()):
        here = place_of(module, layers)
        for target in sorted(targets):
            there = place_of(target, layers)
            if here is None or there is None:
                continue
            if there[0] < here[0]:
                upward.append(f"{module} -> {target}")
            elif there[0] == here[0] and there[1] != here[1]:
                across.append(f"{module} -> {target}")
    return upward, across


def test_imports_point_down_the_architecture_stack():
    upward, across = violations(graph(), LAYERS)
    encodings = place_of("ablate.model.encodings")
    assert place_of("ablate.model.encodings.t5") == encodings != place_of("ablate.model.pooling")
    assert place_of("ablate.run.executors.ray_executor")[0] < place_of("ablate.run.train")[0]
    assert place_of("ablate.run.train")[0] == place_of("ablate.measure")[0] < place_of("ablate.run.step")[0]
    assert upward == [], "a module imports one above it (docs/architecture.md)"
    assert across == [], "a module imports a sibling group of its layer (docs/architecture.md)"


def test_the_stack_checker_sees_a_planted_upward_import_and_a_sibling_one():
    layers = drawn_layers("<!-- layers: begin -->\ntop: a.x\nmid: a.y | a.z\nbottom: a\n<!-- layers: end -->")
    assert layers == [[["a.x"]], [["a.y"], ["a.z"]], [["a"]]]
    assert place_of("a.y.inner", layers) == (1, 0) and place_of("a.z", layers) == (1, 1)
    assert place_of("a", layers) == (2, 0) and place_of("a.w", layers) is None
    edges = {"a.x": {"a.y"}, "a.y.inner": {"a.x", "a.z", "a"}, "a": set(), "a.z": set()}
    assert violations(edges, layers) == (["a.y.inner -> a.x"], ["a.y.inner -> a.z"])


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
