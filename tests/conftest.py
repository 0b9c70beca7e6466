"""Shared test fixtures: deterministic torch, few threads, a temp results root."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _deterministic_torch():
    import torch

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tests run in parallel workers on 2 cores
    yield
    torch.set_num_threads(threads)
