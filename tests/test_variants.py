"""Train once, evaluate many: checkpoints, variant rows of the same run, adding a variant later, clean."""

from __future__ import annotations

import math
import sqlite3
import textwrap
from pathlib import Path

import pytest
import torch

from ablate.run import checkpoints
from ablate.cli import main
from ablate.core.errors import CheckpointError
from ablate.run.runner import run_plan
from ablate.results.store import load_results, load_runs
from ablate.suite import SuiteError, load_plan
from ablate.suite.run_config import parse_train_run
from ablate.run.variants.run import restore_model

SUITE = """
name = "ctx"
seeds = [0]
task = {{ name = "text_lm" }}
[model]
d_model = 16
num_heads = 2
num_layers = 1
causal = true
[train]
steps = 4
batch_size = 4
length = 16
lr = 0.01
[eval]
lengths = [16, 32]
batches = 1
batch_size = 4
[grid]
encoding = {encodings}
{variants}
"""

PI = """
[variants.pi]
rope_scaling = { method = "pi" }
"""


def write_suite(tmp_path: Path, variants: str = "", encodings: str = '["rope"]') -> Path:
    path = tmp_path / "ctx.toml"
    path.write_text(textwrap.dedent(SUITE.format(variants=variants, encodings=encodings)))
    return path


def run(path: Path, results: Path):
    return run_plan(load_plan(str(path)), results, progress=False)


def forbid_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any optimiser step from here on fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("an optimiser step ran: the variant retrained instead of loading the checkpoint")

    for optimizer in (torch.optim.AdamW, torch.optim.Adam, torch.optim.SGD):
        monkeypatch.setattr(optimizer, "step", refuse)


def loss_rows(frame, variant: str):
    rows = frame[(frame["metric"] == "loss") & (frame["variant"] == variant)]
    return dict(zip(rows["eval_length"], rows["value"]))


def test_each_ok_run_keeps_a_loadable_checkpoint(tmp_path):
    summary = run(write_suite(tmp_path, encodings='["rope", "alibi"]'), tmp_path / "r")
    runs = load_runs(summary.results_dir)
    assert set(runs["run_id"]) == checkpoints.stored(summary.results_dir)
    for run_id in runs["run_id"]:
        payload = checkpoints.load(summary.results_dir, run_id)
        assert payload["run_id"] == run_id and payload["format"] == checkpoints.FORMAT
    assert not list((summary.results_dir / "checkpoints").glob(".*tmp"))  # atomic writes leave no temporaries
    frame = load_results(summary.results_dir)
    assert "variant" not in frame.columns  # no variants: the frame is as before


def test_restored_model_reproduces_the_stored_evaluation(tmp_path):
    summary = run(write_suite(tmp_path), tmp_path / "r")
    plan = load_plan(str(tmp_path / "ctx.toml"))
    spec = plan.train_runs()[0]
    from ablate.tasks import create_task
    from ablate.run.train import evaluate

    model = restore_model(summary.results_dir, spec.run_id, spec.typed(), torch.device("cpu"))
    rows = {(r.metric, r.eval_length): r.value for r in evaluate(model, create_task(spec.config["task"]),
                                                                  spec.typed(), torch.device("cpu"))}
    frame = load_results(summary.results_dir)
    for _, row in frame[frame["metric"] == "loss"].iterrows():
        assert rows[("loss", row["eval_length"])] == pytest.approx(row["value"], rel=1e-6)


def test_adding_a_variant_to_a_finished_suite_trains_nothing(tmp_path, monkeypatch):
    results = tmp_path / "r"
    summary = run(write_suite(tmp_path), results)
    before = load_results(summary.results_dir)
    forbid_training(monkeypatch)
    summary = run(write_suite(tmp_path, PI), results)
    assert summary.counts == {} and summary.skipped == 1 and summary.variants == 1
    frame = load_results(summary.results_dir)
    assert set(frame["variant"]) == {"base", "pi"}
    assert load_runs(summary.results_dir)["attempts"].tolist() == [1]
    base, pi = loss_rows(frame, "base"), loss_rows(frame, "pi")
    assert base == loss_rows(before.assign(variant="base"), "base")  # the run's own rows are untouched
    assert pi[16] == base[16]  # factor max(1, 16/16) = 1: plain RoPE at the train length
    assert pi[32] != base[32]  # factor 2 at 32
    # A third run finds nothing pending.
    again = run(write_suite(tmp_path, PI), results)
    assert again.variants == 0


def test_editing_a_variant_evaluates_it_again_and_retraining_drops_stale_rows(tmp_path, monkeypatch):
    results = tmp_path / "r"
    run(write_suite(tmp_path, PI), results)
    edited = PI.replace('method = "pi"', 'method = "pi", factor = 4')
    from ablate.run.variants import rope

    applied = []
    scale_model = rope.scale_model

    def spy(model, method, factor, train_length, length):
        applied.append((method, factor, length))
        return scale_model(model, method, factor, train_length, length)

    with monkeypatch.context() as patch:
        forbid_training(patch)
        patch.setattr(rope, "scale_model", spy)
        summary = run(write_suite(tmp_path, edited), results)
    assert summary.variants == 1
    # A fixed factor 4 holds at every length, the train length included (after the variant-wide setup).
    assert applied == [("pi", 4.0, 16), ("pi", 4.0, 16), ("pi", 4.0, 32)]
    # Retraining a run (its record rewritten) drops the variant rows of the old weights.
    db = sqlite3.connect(summary.results_dir / "results.sqlite")
    run_id = db.execute("SELECT run_id FROM runs").fetchone()[0]
    db.close()
    from ablate.results.store import Record, Store

    with Store(summary.results_dir) as store:
        store.write(Record(run_id=run_id, suite="ctx", kind="train", status="failed", config={}, reason="x"))
        assert store.connection.execute("SELECT COUNT(*) FROM variant_metrics").fetchone()[0] == 0


def test_variant_rows_say_why_they_do_not_apply(tmp_path):
    variants = PI + '\n[variants.rand]\neval_positions = "random"\n'
    summary = run(write_suite(tmp_path, variants, '["alibi"]'), tmp_path / "r")
    frame = load_results(summary.results_dir)
    pi = frame[frame["variant"] == "pi"]
    assert set(pi["status"]) == {"unsupported"} and pi["reason"].str.contains("needs a model with a 'rope'").all()
    rand = frame[frame["variant"] == "rand"]
    assert rand["reason"].str.contains("needs a 'randomized' encoding").all()


def test_train_time_rope_scaling_is_not_an_evaluation_variant(tmp_path):
    summary = run(write_suite(tmp_path, PI, '[{ name = "rope", scaling = "pi", factor = 2.0 }]'), tmp_path / "r")
    pi = load_results(summary.results_dir).query("variant == 'pi'")
    assert set(pi["status"]) == {"unsupported"} and pi["reason"].str.contains("trains with scaling='pi'").all()


def test_finetune_variant_trains_a_copy_and_reports_its_loss(tmp_path):
    variants = PI + """
[variants.pi_ft]
rope_scaling = { method = "pi" }
finetune = { length = 32, steps = 3 }
"""
    summary = run(write_suite(tmp_path, variants), tmp_path / "r")
    frame = load_results(summary.results_dir)
    finetune = frame[frame["metric"] == "finetune_loss"]
    assert len(finetune) == 1 and finetune["eval_length"].item() == 32 and math.isfinite(finetune["value"].item())
    tuned, pi, base = loss_rows(frame, "pi_ft"), loss_rows(frame, "pi"), loss_rows(frame, "base")
    assert tuned[32] != pi[32]
    # The checkpoint is unchanged by the fine-tune: evaluating pi again from it gives the same rows.
    with sqlite3.connect(summary.results_dir / "results.sqlite") as db:
        db.execute("DELETE FROM variant_metrics WHERE variant = 'pi'")
    run(write_suite(tmp_path, variants), tmp_path / "r")
    assert loss_rows(load_results(summary.results_dir), "pi") == pytest.approx(pi, rel=1e-6)
    assert loss_rows(load_results(summary.results_dir), "base") == base


def test_randomized_eval_positions_variant_is_reproducible(tmp_path):
    encodings = '[{ name = "randomized", base = "rope", max_length = 128 }]'
    variants = '[variants.rand]\neval_positions = "random"\n'
    first = load_results(run(write_suite(tmp_path, variants, encodings), tmp_path / "a").results_dir)
    second = load_results(run(write_suite(tmp_path, variants, encodings), tmp_path / "b").results_dir)
    assert loss_rows(first, "rand") == loss_rows(second, "rand")
    assert loss_rows(first, "rand")[16] != loss_rows(first, "base")[16]


def test_cli_says_how_many_variant_evaluations_ran(tmp_path, capsys):
    results = tmp_path / "r"
    run(write_suite(tmp_path), results)
    assert main(["run", str(write_suite(tmp_path, PI)), "--out", str(results), "--no-report"]) == 0
    assert "1 variant evaluation(s) from checkpoints" in " ".join(capsys.readouterr().err.split())


def test_missing_checkpoint_is_a_clear_error_before_anything_runs(tmp_path, monkeypatch, capsys):
    results = tmp_path / "r"
    summary = run(write_suite(tmp_path), results)
    checkpoints.delete(summary.results_dir)
    forbid_training(monkeypatch)
    path = write_suite(tmp_path, PI)
    with pytest.raises(CheckpointError, match="has no checkpoint.*--retrain-missing"):
        run(path, results)
    assert main(["run", str(path), "--out", str(results), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "has no checkpoint" in err and "Traceback" not in err


def test_corrupt_checkpoint_is_a_clear_error_never_a_retrain(tmp_path, monkeypatch, capsys):
    results = tmp_path / "r"
    summary = run(write_suite(tmp_path), results)
    (target,) = (summary.results_dir / "checkpoints").glob("*.pt")
    target.write_bytes(b"not a checkpoint")
    forbid_training(monkeypatch)
    path = write_suite(tmp_path, PI)
    assert main(["run", str(path), "--out", str(results), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "cannot be loaded" in err and "Traceback" not in err
    assert "variant" not in load_results(summary.results_dir).columns  # nothing was stored


def test_checkpoint_of_another_model_is_refused(tmp_path):
    summary = run(write_suite(tmp_path), tmp_path / "r")
    spec = load_plan(str(tmp_path / "ctx.toml")).train_runs()[0]
    config = {**spec.config, "model": {**spec.config["model"], "d_model": 32}}
    with pytest.raises(CheckpointError, match="does not fit the model"):
        restore_model(summary.results_dir, spec.run_id, parse_train_run(config), torch.device("cpu"))


def test_clean_deletes_only_when_asked_and_retrain_missing_retrains(tmp_path, capsys):
    results = tmp_path / "r"
    path = write_suite(tmp_path, encodings='["rope", "alibi"]')
    summary = run(path, results)
    directory = str(summary.results_dir)
    assert main(["clean", directory]) == 0
    assert len(checkpoints.stored(summary.results_dir)) == 2  # nothing deleted without a flag
    rope_id = load_runs(summary.results_dir).query("encoding == 'rope'")["run_id"].item()
    assert main(["clean", str(path), "--out", str(results), "--checkpoints", "--runs", rope_id]) == 0
    assert checkpoints.stored(summary.results_dir) == set(load_runs(summary.results_dir)["run_id"]) - {rope_id}
    assert main(["clean", directory, "--retrain-missing"]) == 0
    assert list(load_runs(summary.results_dir)["run_id"]) != [] and rope_id not in set(load_runs(directory)["run_id"])
    again = run(path, results)
    assert again.counts == {"ok": 1} and rope_id in checkpoints.stored(summary.results_dir)
    assert main(["clean", str(tmp_path / "nowhere.toml")]) == 2


@pytest.mark.parametrize(
    ("variants", "match"),
    [
        ('[variants.base]\neval_positions = "random"\n', "reserved"),
        ("[variants.x]\n", "at least one of"),
        ('[variants.x]\nrope_scaling = { method = "linear" }\n', "method"),
        ('[variants.x]\nrope_scaling = { method = "dynamic", factor = "per_length" }\n', "dynamic NTK"),
        ('[variants.x]\nrope_scaling = { method = "pi", factor = 0.5 }\n', "factor must be >= 1"),
        ('[variants.x]\nfinetune = { length = 32 }\n', "steps"),
        ('[variants.x]\nrope_scalng = { method = "pi" }\n', "rope_scalng"),
    ],
)
def test_bad_variants_are_suite_errors(tmp_path, variants, match):
    with pytest.raises(SuiteError, match=match):
        load_plan(str(write_suite(tmp_path, variants)))


def test_variants_are_not_part_of_run_ids(tmp_path):
    plain = load_plan(str(write_suite(tmp_path)))
    with_variant = load_plan(str(write_suite(tmp_path, PI)))
    assert [r.run_id for r in plain.runs] == [r.run_id for r in with_variant.runs]
