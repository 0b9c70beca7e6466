"""The package's error types, in one module that imports nothing from ablate.

Every layer raises these and the CLI catches them, so no module has to import
the CLI (or a sibling layer) just to name an error.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; the CLI prints it in one line, without a traceback."""


class SuiteError(UserError, ValueError):
    """A problem with a suite file or an override, phrased for the user."""


class SchemaError(UserError, ValueError):
    """A results database this ablate cannot read or upgrade (the message says what to do)."""


class UnsupportedLengthError(ValueError):
    """An encoding was asked for a position it cannot represent.

    The runner records such an evaluation as ``unsupported`` instead of failing.
    """


class UnsupportedRun(ValueError):
    """The run asks for something this machine or combination cannot do (e.g. CUDA without a GPU)."""


class Diverged(RuntimeError):
    """Training loss became non-finite or exceeded ``train.diverge_loss``."""


class CheckpointError(UserError):
    """A stored checkpoint is missing or cannot be loaded; never answered by a silent retrain."""


def short_reason(error: BaseException, limit: int = 500) -> str:
    """``"TypeName: message"`` cut to ``limit`` characters: a stored run's or point's reason."""
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= limit else text[: limit - 3] + "..."
