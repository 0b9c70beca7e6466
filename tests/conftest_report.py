"""A small synthetic results frame for the stats, plots and report tests (no training).

Known truths built in: ``rope`` is clearly better than the baseline ``sinusoidal``
(accuracy +0.10 on every seed), ``alibi`` equals it up to noise, ``learned`` is
unsupported beyond 64 positions, one ``alibi``/``cls`` run failed, and in the cost
rows ``alibi`` is quadratic in memory and OOMs at 2048.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ENCODINGS = ["sinusoidal", "rope", "alibi", "learned"]
POOLINGS = ["mean", "cls"]
LENGTHS = [32, 64, 128]
ACCURACY = {"sinusoidal": 0.80, "rope": 0.90, "alibi": 0.80, "learned": 0.78}
ENV = {"env.torch": "2.5.1", "env.device_name": "cpu", "env.cpu": "Synthetic CPU", "env.threads": 1,
       "env.git_commit": "abc1234", "env.ablate_version": "0.1.0", "env.python": "3.11.9", "env.hostname": "box"}
FAILED_REASON = "RuntimeError: synthetic failure while building the model"


def _config(encoding: str, pooling: str, seed: int, kind: str) -> dict:
    return {"task": "order", "encoding": encoding, "pooling": pooling, "train_length": 32, "seed": seed,
            "model.d_model": 32, "model.num_layers": 2, "train.steps": 100, "device": "cpu", "dtype": "float32",
            "measure.mode": "forward" if kind == "measure" else None,
            "measure.batch_size": 8 if kind == "measure" else None}


def _row(run_id: str, kind: str, config: dict, metric, length: int, value: float, status: str = "ok",
         reason=None, note=None, hib=None) -> dict:
    return {"run_id": run_id, "suite": "synthetic", "kind": kind, "status": status, "reason": reason, "note": note,
            "metric": metric, "value": value if status == "ok" else np.nan, "eval_length": length,
            "higher_is_better": hib, **config, **ENV}


def make_frame(seeds: int = 16, *, measure: bool = True, attrs: bool = True, shift: float = 0.0) -> pd.DataFrame:
    """The synthetic tidy frame; ``shift`` adds to every accuracy (for comparison tests)."""
    rng = np.random.default_rng(1234)
    rows = []
    seed_effect = rng.normal(0, 0.02, size=seeds)  # shared by all configs of a seed: why pairing helps
    for encoding in ENCODINGS:
        for pooling in POOLINGS:
            for seed in range(seeds):
                config = _config(encoding, pooling, seed, "train")
                run_id = f"t-{encoding}-{pooling}-{seed}"
                if encoding == "alibi" and pooling == "cls" and seed == seeds - 1:
                    rows.append(_row(run_id, "train", config, None, 32, np.nan, "failed", FAILED_REASON))
                    continue
                for length in LENGTHS:
                    decay = 0.0 if encoding in ("rope", "alibi") else 0.05 * np.log2(length / 32)
                    acc = ACCURACY[encoding] - decay + seed_effect[seed] + rng.normal(0, 0.005) + shift
                    acc -= 0.02 if pooling == "cls" else 0.0
                    if encoding == "learned" and length > 64:
                        rows.append(_row(run_id, "train", config, "accuracy", length, np.nan, "unsupported",
                                         "learned table has 64 rows", hib=True))
                        rows.append(_row(run_id, "train", config, "loss", length, np.nan, "unsupported",
                                         "learned table has 64 rows", hib=False))
                        continue
                    note = "rows 32..63 of the learned table were never trained" if (
                        encoding == "learned" and length > 32) else None
                    rows.append(_row(run_id, "train", config, "accuracy", length, acc, note=note, hib=True))
                    rows.append(_row(run_id, "train", config, "loss", length, 2.0 * (1 - acc) + 0.1, hib=False))
    if measure:
        for encoding in ENCODINGS:
            config = _config(encoding, "mean", 0, "measure")
            for length in (128, 512, 2048):
                run_id = f"m-{encoding}-{length}"
                if encoding == "learned" and length > 64:
                    status, reason = "unsupported", "learned table has 64 rows"
                elif encoding == "alibi" and length == 2048:
                    status, reason = "oom", "CUDA out of memory (synthetic)"
                else:
                    status, reason = "ok", None
                memory_power = 2.0 if encoding == "alibi" else 1.0
                speed = {"sinusoidal": 1.0, "rope": 0.8, "alibi": 0.7, "learned": 1.0}[encoding]
                values = {"tokens_per_s": speed * 1e6 * (length / 128) ** -0.2,
                          "time_median_s": 8 * length / (speed * 1e6 * (length / 128) ** -0.2),
                          "peak_memory_bytes": 2**20 * (length / 128) ** memory_power * 10}
                for metric, value in values.items():
                    rows.append(_row(run_id, "measure", config, metric, length, value, status, reason,
                                     hib=metric == "tokens_per_s"))
    frame = pd.DataFrame(rows)
    if attrs:
        frame.attrs.update({"suite": "synthetic", "axes": ["encoding", "pooling"],
                            "baseline": {"encoding": "sinusoidal", "pooling": "mean"},
                            "suite_config": {"name": "synthetic", "description": "A synthetic test suite.",
                                             # the synthetic accuracies (0.76-0.90) count as learned
                                             "report": {"main_metric": "accuracy", "learned_threshold": 0.7}}})
    return frame
