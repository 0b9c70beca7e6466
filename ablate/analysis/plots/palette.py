"""One colour and marker per value, the same in every figure of every report.

A registered encoding (or pooling) keeps the style of its place in its registry
(by module and line, :func:`stable_order`), whatever else a figure shows, so ``rope`` looks the same in the extrapolation
curves, the cost curves, the learning curves and the next report. A label built
on a registered name (``rope[scaling=pi]``, the variant curve ``rope + pi``)
keeps its base's colour with another marker and a dashed line, so it reads as a
kind of its base. Anything else (a plugin's encoding, a numeric axis) takes the
styles after the registered ones, in sorted order of the values of the figure set.
"""

from __future__ import annotations

import inspect
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ablate.model.encodings import ENCODINGS
from ablate.model.pooling import POOLINGS
from ablate.core.registry import Registry

#: Okabe & Ito (2008) without its yellow (too pale on white), then Paul Tol's muted
#: indigo, wine, olive, teal and rose: twelve colours that stay apart for the common
#: colour-vision deficiencies and in greyscale together with the markers.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#000000",
           "#332288", "#882255", "#999933", "#44AA99", "#CC6677"]
#: As many markers as colours; none is ``x`` or ``X``, which mark failed and out-of-memory points.
MARKERS = ["o", "s", "^", "D", "v", "P", "*", "h", "<", ">", "p", "d"]
#: The registry whose order fixes the styles of an axis' values (``curve``: encodings and their variants).
AXIS_REGISTRIES: dict[str, Registry[Any]] = {"encoding": ENCODINGS, "pooling": POOLINGS, "curve": ENCODINGS}


@dataclass(frozen=True)
class Style:
    """How one value of an axis is drawn in every figure."""

    color: str
    marker: str
    linestyle: str = "-"


def style_at(index: int) -> Style:
    """The ``index``-th style: colours and markers step together, and shift after each full round."""
    n = len(PALETTE)
    return Style(PALETTE[index % n], MARKERS[(index + index // n) % len(MARKERS)])


def stable_order(registry: Registry[Any]) -> list[str]:
    """A registry's names by where they are defined (module, then line), the same in every process.

    Registration order is not: a process that imports ``ablate.model.encodings.rotary`` (to
    build a model) before the registry discovers its package registers ``rope`` first.
    """
    def where(item: tuple[str, Any]) -> tuple[str, int, str]:
        name, factory = item
        try:
            line = inspect.getsourcelines(factory)[1]
        except (OSError, TypeError):  # no source (a frozen or dynamic entry): after its module's others
            line = 1 << 30
        return getattr(factory, "__module__", ""), line, name

    return [name for name, _ in sorted(registry.items(), key=where)]


def base_name(value: Any) -> str:
    """``rope`` of ``rope``, ``rope[scaling=pi]`` and ``rope + pi``."""
    return re.split(r"\[| \+ ", str(value), maxsplit=1)[0]


def value_styles(values: pd.DataFrame | Iterable[Any], axis: str = "encoding") -> dict[Any, Style]:
    """A style for each distinct value, keyed by the value (see the module's rules).

    Args:
        values: a results frame (its ``axis`` column is read) or the values themselves.
        axis: the axis the values belong to; its registry (:data:`AXIS_REGISTRIES`) fixes their styles.

    Returns:
        ``{value: Style}`` in order of first appearance; a value's style does not depend on
        the order, and a registered value's style not on which other values are present.
    """
    if isinstance(values, pd.DataFrame):
        values = values[axis].dropna() if axis in values.columns else []
    ordered = list(dict.fromkeys(values))
    registry = AXIS_REGISTRIES.get(axis)
    known = {name: i for i, name in enumerate(stable_order(registry))} if registry is not None else {}
    styles: dict[Any, Style] = {v: style_at(known[str(v)]) for v in ordered if str(v) in known}
    derived = sorted((v for v in ordered if v not in styles and base_name(v) in known), key=str)
    taken = {(s.color, s.marker) for s in styles.values()}
    for value in derived:
        base = style_at(known[base_name(value)])
        # a stable marker from the label itself, stepping on past any already drawn in this colour
        start = zlib.crc32(str(value).encode())
        for step in range(len(MARKERS)):
            marker = MARKERS[(start + step) % len(MARKERS)]
            if (base.color, marker) not in taken and marker != base.marker:
                break
        styles[value] = Style(base.color, marker, "--")
        taken.add((base.color, marker))
    others = sorted((v for v in ordered if v not in styles), key=str)
    styles.update({v: style_at(len(known) + i) for i, v in enumerate(others)})
    return {v: styles[v] for v in ordered}


def styles_for(df: pd.DataFrame, axis: str, styles: Mapping[Any, Style] | None) -> Mapping[Any, Style]:
    """``styles`` when the report passed them, else the frame's own (the same rules, so the same styles)."""
    if styles is not None and all(v in styles for v in pd.unique(df[axis].dropna())):
        return styles
    return value_styles(df, axis)
