"""What an exception raised while measuring means: a status and a reason."""

from __future__ import annotations

import traceback

from ablate.core.devices import is_oom
from ablate.core.errors import UnsupportedLengthError, short_reason


def classify_error(error: BaseException) -> tuple[str, str]:
    """``(status, reason)`` of an exception raised while measuring: ``unsupported``, ``oom`` or ``failed``."""
    text = short_reason(error)
    if isinstance(error, UnsupportedLengthError):
        return "unsupported", text
    if is_oom(error):
        return "oom", text
    tail = "".join(traceback.format_exception(type(error), error, error.__traceback__, limit=-3))
    return "failed", text + "\n" + tail
