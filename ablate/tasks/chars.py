"""The fixed character vocabulary of every text task.

Ids: 0 ``<pad>``, 1 ``<unk>`` (any character not listed), 2 newline, then the
95 printable ASCII characters from space (id 3) to ``~`` (id 97):
``VOCAB_SIZE = 98``. Fixed rather than built from a corpus, so one model
vocabulary serves every text task and file.
"""

from __future__ import annotations

import numpy as np
import torch

PAD_ID = 0
UNK_ID = 1
CHARACTERS = "\n" + "".join(chr(code) for code in range(32, 127))
#: Token strings by id (what ``ModelConfig.vocabulary`` expects).
VOCABULARY: tuple[str, ...] = ("<pad>", "<unk>", *CHARACTERS)
VOCAB_SIZE = len(VOCABULARY)

_TABLE = np.full(128, UNK_ID, dtype=np.uint8)  # ASCII code point -> id
for _id, _char in enumerate(CHARACTERS, start=2):
    _TABLE[ord(_char)] = _id


def encode(text: str) -> torch.Tensor:
    """Character ids of ``text``: ``str -> (N,)`` uint8 (the vocabulary fits in a byte)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")  # one code point per character
    ids = np.where(codes < 128, _TABLE[np.minimum(codes, 127)], UNK_ID).astype(np.uint8)
    return torch.from_numpy(ids)


def decode(ids: torch.Tensor) -> str:
    """Text of ``(N,)`` ids; padding is dropped and unknown characters show as U+FFFD."""
    shown = {PAD_ID: "", UNK_ID: "\ufffd"}
    return "".join(shown.get(i, VOCABULARY[i]) for i in ids.tolist())
