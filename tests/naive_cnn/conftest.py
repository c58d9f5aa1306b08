from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    """These tensors are tiny: with two threads on a busy 2-core machine the tests ran 7x slower."""


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
