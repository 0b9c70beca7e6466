"""Suite files: validation errors a user can act on, extends, overrides, grid expansion and run ids."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ablate.cli import main
from ablate.suite import SuiteError, load_plan, suites_dir

BASE = """
name = "s"
seeds = [0, 1]
task = "parity"
[model]
d_model = 16
num_heads = 2
num_layers = 1
[train]
steps = 2
length = 8
[grid]
encoding = ["none", "rope", {name = "alibi"}]
pooling = ["mean", "cls"]
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_grid_times_seeds_with_stable_ids(tmp_path: Path) -> None:
    plan = load_plan(str(write(tmp_path, BASE)))
    assert len(plan.runs) == 3 * 2 * 2
    assert len({r.run_id for r in plan.runs}) == len(plan.runs)
    again = load_plan(str(write(tmp_path, BASE)))
    assert [r.run_id for r in plan.runs] == [r.run_id for r in again.runs]
    assert plan.runs[0].config["eval"]["lengths"] == [8, 16, 32]  # default multiples 1, 2, 4
    assert plan.baseline == {"model.encoding": "none", "model.pooling": "mean"}
    # A name and its table form are the same component, so the same run.
    table_form = load_plan(str(write(tmp_path, BASE.replace('"none", "rope"', '{name = "none"}, "rope"'), "t.toml")))
    assert {r.run_id for r in table_form.runs} == {r.run_id for r in plan.runs}


def test_exclude_and_include(tmp_path: Path) -> None:
    text = BASE + """
[[exclude]]
encoding = "rope"
pooling = "cls"
[[include]]
encoding = {name = "rope", scaling = "pi", factor = 2.0}
pooling = "max"
"""
    plan = load_plan(str(write(tmp_path, text)))
    combos = {(r.axes["model.encoding"], r.axes["model.pooling"]) for r in plan.runs}
    assert ("rope", "cls") not in combos
    assert ("rope[factor=2.0,scaling=pi]", "max") in combos
    assert len(plan.runs) == (3 * 2 - 1 + 1) * 2


def test_overrides_from_the_command_line(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    plan = load_plan(str(path), ["train.steps=7", 'grid.encoding=["alibi"]', "seeds=[3]"])
    assert {r.config["train"]["steps"] for r in plan.runs} == {7}
    assert {r.axes["model.encoding"] for r in plan.runs} == {"alibi"}
    assert {r.config["seed"] for r in plan.runs} == {3}
    plan = load_plan(str(path), ["encoding=t5"])  # an alias outside the grid sets the base value
    assert plan.runs[0].config["train"]["steps"] == 2


def test_extends_merges_tables_and_names_the_child(tmp_path: Path) -> None:
    write(tmp_path, BASE, "base.toml")
    child = write(tmp_path, 'extends = "base.toml"\n[train]\nsteps = 5\n[grid]\nencoding = ["t5"]\npooling = ["mean"]\n', "child.toml")
    plan = load_plan(str(child))
    assert plan.name == "child"
    assert plan.runs[0].config["model"]["d_model"] == 16  # inherited
    assert plan.runs[0].config["train"]["steps"] == 5  # overridden
    assert len(plan.runs) == 2


@pytest.mark.parametrize(
    "text, expected",
    [
        (BASE.replace("steps = 2", "stpes = 2"), [r"s\.toml: train\.stpes: unknown key", "Did you mean 'steps'"]),
        (BASE.replace('"rope"', '"rpoe"'), [r"s\.toml", "unknown encoding 'rpoe'", "Did you mean 'rope'"]),
        (BASE.replace('"cls"', '"clss"'), ["unknown pooling 'clss'", "Did you mean 'cls'"]),
        (BASE.replace('task = "parity"', 'task = "partiy"'), ["unknown task 'partiy'", "Did you mean 'parity'"]),
        (BASE.replace("d_model = 16", 'd_model = "big"'), [r"model\.d_model", "valid integer"]),
        (BASE.replace("[grid]", "[grid]\nencodnig = [1]"), [r"grid\.encodnig", "Did you mean 'encoding'"]),
        (BASE.replace('{name = "alibi"}', '{name = "rope", factr = 2}'), ["no parameter 'factr'", "Did you mean 'factor'"]),
        (BASE + "\n[[exclude]]\npoolnig = 'cls'\n", [r"exclude\[0\]\.poolnig", "Did you mean 'pooling'"]),
        ("name = [", ["not valid TOML"]),
        (BASE.replace("seeds = [0, 1]", "seeds = []"), ["seeds", "at least one seed"]),
    ],
)
def test_bad_suites_name_the_file_the_key_and_a_suggestion(tmp_path: Path, text: str, expected: list[str]) -> None:
    with pytest.raises(SuiteError) as info:
        load_plan(str(write(tmp_path, text)))
    for pattern in expected:
        assert pytest.importorskip("re").search(pattern, str(info.value)), (pattern, str(info.value))


def test_cli_prints_user_errors_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, BASE.replace("steps = 2", "stpes = 2"))
    assert main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert "stpes" in captured.err
    assert main(["run", str(tmp_path / "missing.toml"), "--out", str(tmp_path)]) == 2
    assert main(["run", str(path), "--set", "nokey", "--out", str(tmp_path)]) == 2
    assert not list(tmp_path.glob("s/results.sqlite")), "a bad suite must never start a partial run"


def test_extends_cycle_is_reported(tmp_path: Path) -> None:
    write(tmp_path, 'extends = "b.toml"\n', "a.toml")
    write(tmp_path, 'extends = "a.toml"\n', "b.toml")
    with pytest.raises(SuiteError, match="cycle"):
        load_plan(str(tmp_path / "a.toml"))


def test_token_level_tasks_collapse_the_pooling_axis(tmp_path: Path) -> None:
    plan = load_plan(str(write(tmp_path, BASE.replace('task = "parity"', 'task = "copy"'))))
    assert {r.config["model"]["pooling"]["name"] for r in plan.runs} == {"none"}
    assert {r.config["model"]["causal"] for r in plan.runs} == {True}
    assert len(plan.runs) == 3 * 2  # pooling values collapsed into one run each


@pytest.mark.parametrize("path", sorted(suites_dir().rglob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_suite_validates(path: Path) -> None:
    if path.parent.name == "claims":
        pytest.skip("claim files are validated by tests/test_claims.py")
    assert load_plan(str(path)).runs


def test_measure_section_adds_seed_independent_measure_runs(tmp_path: Path) -> None:
    text = BASE + "\n[measure]\nlengths = [16, 32]\nmodes = ['forward', 'train_step']\n"
    plan = load_plan(str(write(tmp_path, text)))
    assert len(plan.measure_runs()) == 3 * 2 * 2  # encodings x poolings x modes (seeds do not multiply)
    assert plan.measure_runs()[0].config["measure"]["lengths"] == [16, 32]


def test_measure_repeats_are_seeds_run_round_robin(tmp_path: Path) -> None:
    once = load_plan(str(write(tmp_path, BASE + "\n[measure]\nlengths = [16]\n")))
    text = BASE + "\n[measure]\nlengths = [16]\nrepeats = 3\n"
    plan = load_plan(str(write(tmp_path, text)))
    runs = plan.measure_runs()
    models = len(once.measure_runs())
    assert len(runs) == 3 * models
    # Every model once per round, rounds in order: drift hits every model alike.
    assert [r.config["seed"] for r in runs] == [s for s in range(3) for _ in range(models)]
    assert [r.axes for r in runs[:models]] == [r.axes for r in runs[models : 2 * models]]
    # repeats = 1 keeps the run ids (and so the stored history) of a suite without it.
    assert [r.run_id for r in runs[:models]] == [r.run_id for r in once.measure_runs()]
    assert len({r.run_id for r in runs}) == len(runs)


def test_a_suite_name_is_looked_up_in_ablate_suites_before_the_built_in_ones(tmp_path, monkeypatch):
    from ablate.suite import suites_dir
    from ablate.suite.load import resolve_suite_path

    (tmp_path / "quickstart.toml").write_text('name = "quickstart"\ntask = { name = "parity" }\n')
    monkeypatch.setenv("ABLATE_SUITES", str(tmp_path))
    assert resolve_suite_path("quickstart") == tmp_path / "quickstart.toml"
    assert resolve_suite_path("cost") == suites_dir() / "cost.toml"  # what the folder lacks comes from the built-ins
    monkeypatch.delenv("ABLATE_SUITES")
    assert resolve_suite_path("quickstart") == suites_dir() / "quickstart.toml"
