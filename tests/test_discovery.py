"""A new component is one module: registries find it and the parametrized tests test it, with no other edit.

Proved with a throwaway bias encoding (tests/plugins/throwaway_encoding.py)
loaded as a pytest plugin in a separate pytest process: the registry-
parametrized tests of test_model.py and test_encodings_bias.py collect it and
pass for it, and the nightly-coverage check names it as missing from the grid.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ablate.encodings import ENCODINGS
from ablate.pooling import POOLINGS
from ablate.registry import Registry, UnknownNameError
from ablate.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "throwaway_encoding"
NAME = "throwaway_slopes"


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests" / "plugins")])}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", PLUGIN, "-n", "0", "-q", "-p", "no:cacheprovider",
                           *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_a_throwaway_encoding_is_collected_and_passes_the_parametrized_tests():
    collected = _pytest("--collect-only", "tests/test_model.py", "tests/test_encodings_bias.py")
    assert collected.returncode == 0, collected.stdout + collected.stderr
    ids = [line for line in collected.stdout.splitlines() if NAME in line]
    tests = {line.split("::")[1].split("[")[0] for line in ids}
    assert {
        "test_every_encoding_class_states_its_family",
        "test_relative_encodings_are_shift_invariant",
        "test_padding_left_or_right_never_changes_the_output",
        "test_causal_model_output_at_t_ignores_later_tokens",
        "test_every_encoding_and_pooling_trains_without_nan",
        "test_gradients_reach_every_parameter_of_the_encoding",
        "test_bias_families_have_a_bias_and_the_others_do_not",
        "test_shift_invariance",  # the bias tests
        "test_batched_positions_equal_per_row",
        "test_score_mod_adds_exactly_the_bias",
    } <= tests, sorted(tests)
    ran = _pytest("-k", NAME, "tests/test_model.py", "tests/test_encodings_bias.py")
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert " passed" in ran.stdout and " failed" not in ran.stdout
    # The nightly suite does not run it yet, and the coverage check says so by name.
    coverage = _pytest("tests/test_registry_coverage.py")
    assert coverage.returncode == 1 and NAME in coverage.stdout


def test_the_throwaway_plugin_is_not_loaded_in_this_process():
    assert NAME not in ENCODINGS  # only the subprocess above sees it


@pytest.mark.parametrize("registry", [ENCODINGS, POOLINGS, TASKS], ids=lambda r: r.kind)
def test_built_in_registries_discover_their_package(registry: Registry) -> None:
    assert registry.package is not None and len(registry) > 5


def test_a_registry_discovers_a_new_module_of_its_package(tmp_path, monkeypatch):
    package = tmp_path / "widgets_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "registry.py").write_text("from ablate.registry import Registry\n"
                                         "WIDGETS = Registry('widget', package='widgets_pkg')\n")
    (package / "gear.py").write_text("from widgets_pkg.registry import WIDGETS\n\n"
                                     "@WIDGETS.register('gear')\nclass Gear:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    WIDGETS = importlib.import_module("widgets_pkg.registry").WIDGETS

    assert WIDGETS.names() == ["gear"] and WIDGETS.get("gear").__name__ == "Gear"
    with pytest.raises(UnknownNameError, match="Did you mean 'gear'"):
        WIDGETS.get("gears")
    for name in [n for n in sys.modules if n.startswith("widgets_pkg")]:
        del sys.modules[name]


def test_registering_in_process_is_seen_by_registry_lookups():
    class Temporary:
        family = "none"

    ENCODINGS.register("temporary_for_test")(Temporary)
    try:
        assert "temporary_for_test" in ENCODINGS.names() and ENCODINGS.get("temporary_for_test") is Temporary
    finally:
        ENCODINGS.unregister("temporary_for_test")
    assert "temporary_for_test" not in ENCODINGS
