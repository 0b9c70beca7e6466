"""Reports draw each evaluation variant of a trained model as its own extrapolation curve (no training)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ablate.analysis.report.document import Image
from ablate.analysis.report.context import build_context
from ablate.analysis.report.sections import extrapolation
from ablate.analysis.report.variant_curves import variant_curves

LENGTHS = [64, 128, 256]
#: Perplexity per (encoding, variant) at each length: the known truth the figure must show.
TRUTH = {("rope", "base"): [5.0, 9.0, 20.0], ("rope", "pi"): [5.0, 6.0, 7.0], ("rope", "yarn"): [5.0, 5.5, 6.0],
         ("alibi", "base"): [5.0, 5.0, 5.0]}


def frame() -> pd.DataFrame:
    rows = []
    for seed in range(3):
        for (encoding, variant), values in TRUTH.items():
            for length, value in zip(LENGTHS, values):
                rows.append({"run_id": f"{encoding}-{seed}", "suite": "s", "kind": "train", "task": "text_lm",
                             "encoding": encoding, "train_length": 64, "seed": seed, "variant": variant,
                             "metric": "perplexity", "value": value + 0.01 * seed, "eval_length": length,
                             "status": "ok", "reason": None, "note": None, "higher_is_better": False})
            if encoding == "alibi":  # RoPE scaling does not apply to ALiBi: stored, but not a curve
                rows += [{**rows[-1], "variant": "pi", "value": np.nan, "status": "unsupported",
                          "eval_length": length} for length in LENGTHS]
    df = pd.DataFrame(rows)
    df.attrs.update({"axes": ["model.encoding"], "baseline": {"encoding": "rope"}})
    return df


def test_variant_curves_join_axis_and_variant_and_drop_inapplicable_ones():
    df, axis, styles = variant_curves(frame(), "encoding", None)
    assert axis == "curve" and styles is None
    assert sorted(df["curve"].unique()) == ["alibi", "rope", "rope + pi", "rope + yarn"]
    assert df.attrs["axes"][0] == "curve"


def test_frame_without_variants_is_unchanged():
    plain = frame().query("variant == 'base'").drop(columns="variant")
    df, axis, _ = variant_curves(plain, "encoding", {"x": 1})
    assert df is plain and axis == "encoding"


def test_extrapolation_figure_has_one_line_per_variant_with_its_values():
    ctx = build_context(frame(), "perplexity", None, 0.05)
    images = [block for block in extrapolation(ctx).blocks if isinstance(block, Image)]
    (ax,) = images[0].figure.axes
    lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
    for (encoding, variant), values in TRUTH.items():
        label = encoding if variant == "base" else f"{encoding} + {variant}"
        np.testing.assert_allclose(lines[label].get_ydata(), np.array(values) + 0.01, rtol=1e-9)
    assert "alibi + pi" not in lines


def test_without_a_grid_the_curves_are_the_variants():
    rope = frame().query("encoding == 'rope'")
    rope.attrs = {"axes": [], "baseline": {}}
    ctx = build_context(rope, "perplexity", None, 0.05)
    images = [block for block in extrapolation(ctx).blocks if isinstance(block, Image)]
    labels = {line.get_label() for line in images[0].figure.axes[0].get_lines()}
    assert {"base", "pi", "yarn"} <= labels and not any("+" in label for label in labels)
