"""A new component is one module: registries find it and the parametrized tests test it, with no other edit.

Proved with throwaway components (tests/plugins/) loaded as pytest plugins in a
separate pytest process: a bias encoding joins the registry-parametrized tests of
test_model.py, test_encodings_bias.py, test_kernels.py and test_feasibility.py and
the nightly-coverage check names it as missing from the grid; a symmetric pooling
joins the pooling tests and the "unable by construction" reasoning; an attention
kernel is checked against the reference path.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ablate.model.attention import KERNELS
from ablate.model.encodings import ENCODINGS, PositionalEncoding
from ablate.run.executors import EXECUTORS
from ablate.model.pooling import POOLINGS
from ablate.core.registry import Registry, UnknownNameError
from ablate.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "throwaway_encoding"
NAME = "throwaway_slopes"


def _pytest(*args: str, plugin: str = PLUGIN) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests" / "plugins")])}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", plugin, "-n", "0", "-q", "-p", "no:cacheprovider",
                           *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def _collected_and_passing(plugin: str, name: str, files: list[str]) -> set[str]:
    """The names of the tests that collect ``name`` once ``plugin`` is loaded; each of them must pass."""
    collected = _pytest("--collect-only", *files, plugin=plugin)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    ids = [line for line in collected.stdout.splitlines() if name in line]
    ran = _pytest("-k", name, *files, plugin=plugin)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert " passed" in ran.stdout and " failed" not in ran.stdout
    return {line.split("::")[1].split("[")[0] for line in ids}


@pytest.mark.slow
def test_a_throwaway_encoding_is_collected_and_passes_the_parametrized_tests():
    tests = _collected_and_passing(PLUGIN, NAME, ["tests/test_model.py", "tests/test_encodings_bias.py",
                                                  "tests/test_kernels.py", "tests/test_feasibility.py"])
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
        "test_every_kernel_equals_the_reference_wherever_its_condition_holds",
        "test_every_built_in_path_with_a_bias_equals_the_reference",
        "test_every_rule_is_an_invariance_of_real_models",  # its encoder form is direction-blind
    } <= tests, sorted(tests)
    # The nightly suite does not run it yet, and the coverage check says so by name.
    coverage = _pytest("tests/test_registry_coverage.py")
    assert coverage.returncode == 1 and NAME in coverage.stdout


@pytest.mark.slow
def test_a_throwaway_symmetric_pooling_gets_the_invariance_tests_and_the_unable_reasoning():
    tests = _collected_and_passing("throwaway_pooling", "throwaway_sum",
                                   ["tests/test_pooling.py", "tests/test_feasibility.py", "tests/test_model.py"])
    assert {
        "test_padding_never_changes_the_pooled_vector",
        "test_a_pooling_is_symmetric_exactly_when_its_class_says_so",
        "test_every_rule_is_an_invariance_of_real_models",
        "test_every_symmetric_pooling_makes_a_nope_or_direction_blind_encoder_unable_on_order",
        "test_padding_left_or_right_never_changes_the_output",
    } <= tests, sorted(tests)


@pytest.mark.slow
def test_a_throwaway_kernel_is_checked_against_the_reference_path():
    tests = _collected_and_passing("throwaway_kernel", "throwaway-dense", ["tests/test_kernels.py"])
    assert tests == {"test_every_kernel_equals_the_reference_wherever_its_condition_holds"}, sorted(tests)


def test_the_throwaway_plugins_are_not_loaded_in_this_process():
    assert NAME not in ENCODINGS and "throwaway_sum" not in POOLINGS  # only the subprocesses above see them
    assert "throwaway-dense" not in KERNELS


@pytest.mark.parametrize("registry", [ENCODINGS, POOLINGS, TASKS], ids=lambda r: r.kind)
def test_built_in_registries_discover_their_package(registry: Registry) -> None:
    assert registry.package is not None and len(registry) > 5


def test_a_registry_discovers_a_new_module_of_its_package(tmp_path, monkeypatch):
    package = tmp_path / "widgets_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "registry.py").write_text("from ablate.core.registry import Registry\n"
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
    class Temporary(PositionalEncoding):
        family = "none"

    ENCODINGS.register("temporary_for_test")(Temporary)
    try:
        assert "temporary_for_test" in ENCODINGS.names() and ENCODINGS.get("temporary_for_test") is Temporary
    finally:
        ENCODINGS.unregister("temporary_for_test")
    assert "temporary_for_test" not in ENCODINGS


@pytest.mark.parametrize("registry", [ENCODINGS, POOLINGS, TASKS, EXECUTORS], ids=lambda r: r.kind)
def test_registration_checks_the_base_class(registry: Registry) -> None:
    class NotAComponent:
        pass

    with pytest.raises(TypeError, match=f"is not a subclass of {registry.base.__name__}"):
        registry.register("not_a_component")(NotAComponent)
    assert "not_a_component" not in registry
