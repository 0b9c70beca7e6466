"""Positional encodings: a registry of :class:`PositionalEncoding` subclasses.

One module per family; each registers its classes with ``@ENCODINGS.register``
and the registry imports every module of this package on first use, so a new
encoding is one module and nothing else. Suite files refer to an encoding by
name with parameters, e.g. ``{name = "rope", scaling = "pi", factor = 4}``.
"""

from __future__ import annotations

from ablate.model.encodings.base import PositionalEncoding, ScoreMod, relative_positions
from ablate.model.encodings.registry import ENCODINGS, FAMILIES, create_encoding, encodings_of_family
from ablate.core.errors import UnsupportedLengthError
from ablate.core.registry import split_spec

__all__ = [
    "ENCODINGS",
    "FAMILIES",
    "PositionalEncoding",
    "ScoreMod",
    "UnsupportedLengthError",
    "create_encoding",
    "encodings_of_family",
    "relative_positions",
    "split_spec",
]
