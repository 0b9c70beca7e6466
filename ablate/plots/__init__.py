"""Figures from the tidy results frame. Every function returns a matplotlib ``Figure``.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot): no
global figure registry to leak, no GUI backend, and rendering through Agg.

- :mod:`~ablate.plots.style`: styles per encoding, metric labels and scales, slicing, saving.
- :mod:`~ablate.plots.figures`: the figures.
"""

from ablate.plots.figures import (
    cost_curves,
    critical_difference_diagram,
    extrapolation_curves,
    heatmap,
    seed_strip,
)
from ablate.plots.style import MARKERS, OKABE_ITO, Style, encoding_styles, metric_label, metric_scale, save_figure

__all__ = [
    "MARKERS",
    "OKABE_ITO",
    "Style",
    "cost_curves",
    "critical_difference_diagram",
    "encoding_styles",
    "extrapolation_curves",
    "heatmap",
    "metric_label",
    "metric_scale",
    "save_figure",
    "seed_strip",
]
