"""The consoles the command line prints to: never truncating a table that goes to a file or pipe.

On a terminal rich fits tables to the window. Elsewhere (a CI log, ``| less``,
``> out.txt``) there is no window: rich would assume 80 columns and cut numbers
to ``1,42…``, so the width is set wide enough that every cell prints in full.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console

#: The width used off a terminal: wider than any table ablate prints, so nothing is cut.
UNLIMITED_WIDTH = 100_000


def make_console(stream: TextIO | None = None, *, stderr: bool = False) -> Console:
    """A rich console on ``stream`` (default stdout, or stderr): terminal-sized, else never truncating."""
    target = stream if stream is not None else (sys.stderr if stderr else sys.stdout)
    is_terminal = bool(getattr(target, "isatty", lambda: False)())
    return Console(file=stream, stderr=stderr and stream is None, width=None if is_terminal else UNLIMITED_WIDTH)
