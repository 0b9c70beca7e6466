"""Earlier public module paths (``ablate.stats``, ``ablate.encodings``, ...) import as the modules they name now."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import ablate
from ablate import ALIASES, aliased

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("old", sorted(ALIASES))
def test_an_alias_is_the_same_module_object(old: str) -> None:
    module = importlib.import_module(old)
    assert module is importlib.import_module(ALIASES[old]) is sys.modules[old]
    assert module.__name__ == module.__spec__.name == ALIASES[old]  # the real name, not the alias
    assert getattr(ablate, old.rsplit(".", 1)[1]) is module


def test_a_submodule_of_an_alias_follows_its_package() -> None:
    import ablate.analysis.stats.verdict
    import ablate.stats.verdict

    assert ablate.stats.verdict is ablate.analysis.stats.verdict
    assert aliased("ablate.stats.verdict") == "ablate.analysis.stats.verdict"
    assert aliased("ablate.statistics") is None and aliased("ablate.analysis.stats") is None


def test_the_public_imports_users_rely_on() -> None:
    from ablate.analysis.stats import judge as judge_now
    from ablate.core.registry import Registry as RegistryNow
    from ablate.encodings import ENCODINGS
    from ablate.model.encodings import ENCODINGS as ENCODINGS_NOW
    from ablate.model.pooling import POOLINGS as POOLINGS_NOW
    from ablate.pooling import POOLINGS
    from ablate.registry import Registry
    from ablate.stats import judge
    from ablate.tasks import TASKS

    assert ENCODINGS is ENCODINGS_NOW and POOLINGS is POOLINGS_NOW and judge is judge_now and Registry is RegistryNow
    assert "alibi" in ENCODINGS and "mean" in POOLINGS and "copy" in TASKS
    assert callable(ablate.load_results) and callable(ablate.load_curves)


_FRESH = """
import sys
import ablate
assert not {"torch", "pandas", "numpy"} & set(sys.modules), "the package root imported a heavy dependency"
import ablate.stats.verdict, ablate.report, ablate.store
import ablate.analysis.stats.verdict
assert ablate.stats.verdict is ablate.analysis.stats.verdict and ablate.report is ablate.analysis.report
by_file = {}
for name, module in list(sys.modules.items()):
    if name.startswith("ablate") and getattr(module, "__file__", None):
        by_file.setdefault(module.__file__, set()).add(id(module))
assert len(by_file) > 20 and all(len(ids) == 1 for ids in by_file.values()), "a module of ablate was loaded twice"
print("ok")
"""


def test_aliases_imported_first_load_no_second_copy_and_the_root_stays_light() -> None:
    """In a fresh interpreter: ``import ablate`` loads no torch, pandas or numpy; an alias loads one module, once."""
    done = subprocess.run([sys.executable, "-c", _FRESH], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "", "MPLBACKEND": "Agg"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def _imported_names(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in ``path``, at any depth (``from x import y``: ``x`` and ``x.y``)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names += [(node.lineno, node.module)] + [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return names


def test_the_code_imports_the_new_paths_only() -> None:
    files = [p for folder in ("ablate", "benchmarks", "scripts") for p in sorted((ROOT / folder).rglob("*.py"))]
    assert len(files) > 100
    old = [f"{p.relative_to(ROOT)}:{line}: {name}" for p in files for line, name in _imported_names(p) if aliased(name)]
    assert old == [], "import these from where they live now (ablate.ALIASES)"


def test_the_check_of_imports_sees_an_alias(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text("from ablate import stats\nimport ablate.store\n"
                       "def f():\n    from ablate.encodings.alibi import x\n")
    assert [name for _, name in _imported_names(planted) if aliased(name)] == [
        "ablate.stats", "ablate.store", "ablate.encodings.alibi", "ablate.encodings.alibi.x"]
