"""What every registered component must be covered by outside the unit tests: the nightly suite's grid."""

from __future__ import annotations

from pathlib import Path

from ablate.model.encodings import ENCODINGS
from ablate.core.registry import split_spec
from ablate.suite import load_suite

NIGHTLY = Path(__file__).resolve().parents[1] / "suites" / "nightly.toml"


def test_the_nightly_grid_covers_every_registered_encoding():
    suite, _ = load_suite(str(NIGHTLY))
    in_grid = {split_spec(spec)[0] for spec in suite.grid["encoding"]}
    missing = [name for name in ENCODINGS.names() if name not in in_grid]
    assert missing == [], f"add {', '.join(missing)} to [grid] encoding in suites/nightly.toml"
