"""Image classification as a patch sequence: scikit-learn's bundled 8x8 digits (no download)."""

from __future__ import annotations

import functools

import torch

from ablate.tasks.registry import TASKS
from ablate.tasks.base import Batch, Task
from ablate.tasks.sampling import check_request, rand_below

#: Patch layouts: name -> (patch height, patch width) on the 8x8 image.
PATCHES: dict[int | str, tuple[int, int]] = {1: (1, 1), 2: (2, 2), 4: (4, 4), 8: (8, 8), "rows": (1, 8)}
#: Fractions of each class's images (in a fixed shuffle) per split.
SPLIT_FRACTIONS = {"train": 0.7, "validation": 0.15, "test": 0.15}


@functools.cache
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 images scaled to ``[0, 1]``, ``(N, 8, 8)`` float32, and labels ``(N,)`` int64."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return torch.tensor(data.images / 16.0, dtype=torch.float32), torch.tensor(data.target, dtype=torch.long)


@functools.cache
def _split_members(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Image indices of ``split`` by class: ``(10, M)`` padded table and ``(10,)`` counts.

    Each class's images are shuffled once (seed 0) and cut 70/15/15 in
    train/validation/test order, so the splits are disjoint and fixed.
    """
    _, labels = _digits()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    members = []
    for digit in range(10):
        mine = order[labels[order] == digit]
        n_train = round(SPLIT_FRACTIONS["train"] * len(mine))
        n_validation = round(SPLIT_FRACTIONS["validation"] * len(mine))
        bounds = {"train": (0, n_train), "validation": (n_train, n_train + n_validation),
                  "test": (n_train + n_validation, len(mine))}
        low, high = bounds[split]
        members.append(mine[low:high])
    counts = torch.tensor([len(m) for m in members])
    table = torch.zeros(10, int(counts.max()), dtype=torch.long)
    for digit, m in enumerate(members):
        table[digit, : len(m)] = m
    return table, counts


def to_patches(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(B, H, W)`` -> ``(B, (H/height) * (W/width), height * width)``, patches in raster order."""
    b, h, w = images.shape
    patches = images.reshape(b, h // height, height, w // width, width).permute(0, 1, 3, 2, 4)
    return patches.reshape(b, (h // height) * (w // width), height * width)


@TASKS.register("digits")
class Digits(Task):
    """Handwritten digits 0-9 (``sklearn.datasets.load_digits``) as a sequence of patches.

    ``patch_size`` 1, 2, 4 or 8 cuts the 8x8 image into square patches:
    sequence length 64, 16, 4 or 1, each patch ``patch_size**2`` pixels;
    ``"rows"`` gives 8 patches of one row (8 pixels). Patches are in raster
    order, pixels row-major within a patch, scaled to ``[0, 1]``. ``length``
    must equal the patch count. The label is drawn uniformly, then an image of
    that digit from the split (see :func:`_split_members`).
    """

    kind = "classification"
    input_kind = "patches"
    splits = "corpus"

    def __init__(self, *, patch_size: int | str = 2) -> None:
        if patch_size not in PATCHES:
            raise ValueError(f"task 'digits': patch_size must be one of {', '.join(map(repr, PATCHES))}, "
                             f"got {patch_size!r}")
        self.patch_size = patch_size
        self.height, self.width = PATCHES[patch_size]
        self.length = (8 // self.height) * (8 // self.width)
        self.patch_dim = self.height * self.width
        self.vocab_size = 1  # unused: inputs are float patches
        self.num_classes = 10

    def sample(self, generator: torch.Generator, batch_size: int, length: int, *, split: str = "train") -> Batch:
        check_request("digits", batch_size, length, split)
        if length != self.length:
            raise ValueError(f"task 'digits' with patch_size {self.patch_size!r} has exactly {self.length} patches; "
                             f"got length {length}")
        images, _ = _digits()
        table, counts = _split_members(split)
        label = torch.randint(10, (batch_size,), generator=generator)
        index = table[label, rand_below(generator, counts[label])]
        return Batch(to_patches(images[index], self.height, self.width), label)
