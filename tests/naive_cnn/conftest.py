from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The helpers beside the tests (videos.py) import as a plain module.
sys.path.insert(0, str(Path(__file__).parent))

torch = pytest.importorskip("torch")


@pytest.fixture
def make_model():
    """A NaiveCNNBaseline with seeded initial weights."""
    from fvc_naive_cnn.model import NaiveCNNBaseline

    def make(seed: int = 0, **kwargs):
        torch.manual_seed(seed)
        return NaiveCNNBaseline(**kwargs)

    return make


@pytest.fixture
def clips():
    """uint8 clips (N, T, 3, H, W) from a fixed generator."""

    def make(n: int = 2, t: int = 7, size: int = 16, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        return torch.randint(0, 256, (n, t, 3, size, size), dtype=torch.uint8, generator=g)

    return make
