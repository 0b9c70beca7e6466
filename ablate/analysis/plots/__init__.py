"""Figures from the tidy results frame. Every function returns a matplotlib ``Figure``.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot): no
global figure registry to leak, no GUI backend, and rendering through Agg.

- :mod:`~ablate.analysis.plots.palette`: one style per value, the same in every figure and report.
- :mod:`~ablate.analysis.plots.style`: metric labels and scales, slicing, saving.
- :mod:`~ablate.analysis.plots.figures`: the figures.
"""

from ablate.analysis.plots.figures import (
    cost_curves,
    critical_difference_diagram,
    extrapolation_curves,
    heatmap,
    seed_strip,
)
from ablate.analysis.plots.curves import learning_curves
from ablate.analysis.plots.palette import MARKERS, PALETTE, Style, value_styles
from ablate.analysis.plots.pareto import pareto_front, quality_cost
from ablate.analysis.plots.style import metric_label, metric_scale, save_figure

__all__ = [
    "MARKERS",
    "PALETTE",
    "Style",
    "cost_curves",
    "critical_difference_diagram",
    "extrapolation_curves",
    "heatmap",
    "learning_curves",
    "metric_label",
    "metric_scale",
    "pareto_front",
    "quality_cost",
    "save_figure",
    "seed_strip",
    "value_styles",
]
