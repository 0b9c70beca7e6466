"""Variants in reports: each evaluation variant of a trained model is its own curve."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ablate.analysis.stats import grid_axes
from ablate.suite.variant_schema import BASE

#: The column that names a curve once a frame has variant rows.
CURVE = "curve"


def curve_label(value: Any, variant: str) -> str:
    """``rope`` for the trained model's own rows, ``rope + pi`` for its variant ``pi``."""
    return str(value) if variant == BASE else f"{value} + {variant}"


def variant_curves(df: pd.DataFrame, axis: str, styles: Mapping[Any, Any] | None) -> tuple[pd.DataFrame, str, Mapping[Any, Any] | None]:
    """``(frame, axis, styles)`` for a per-``axis`` figure in which every variant is its own line.

    Without variant rows the arguments come back unchanged. Otherwise a ``curve``
    column joins ``axis`` and ``variant`` (``rope + pi``), variants with no ok
    row for a value (e.g. RoPE scaling on an ALiBi model) are left out, and the
    styles are rebuilt for the curves (``None``: the figure picks them).
    """
    if "variant" not in df.columns or df["variant"].nunique(dropna=True) <= 1 or axis not in df.columns:
        return df, axis, styles
    if axis == "variant":  # no grid: the variants are the only axis, already one curve each
        return df, axis, styles
    ok = df[df["status"].eq("ok")].groupby([axis, "variant"], dropna=False).size()
    pairs = pd.MultiIndex.from_arrays([df[axis], df["variant"]])
    keep = df["variant"].eq(BASE).to_numpy() | pairs.isin(ok.index)
    frame = df[keep].copy()
    frame[CURVE] = [curve_label(value, variant) for value, variant in zip(frame[axis], frame["variant"])]
    # The curve replaces the axis, so statistics group by it (and by no longer hold ``variant`` fixed).
    frame.attrs = dict(df.attrs, axes=[CURVE, *(a for a in grid_axes(df) if a != axis)], baseline={})
    return frame, CURVE, None
