"""Hook implementations: registers the ``naive_cnn`` model. Imports no torch."""

from __future__ import annotations

from typing import Any

from fvc_core.contract import hookimpl
from fvc_naive_cnn.config import NaiveCNNConfig


def build_naive_cnn(config: NaiveCNNConfig) -> Any:
    """The factory: a ``NaiveCNNBaseline`` built from the validated config."""
    from fvc_naive_cnn.model import NaiveCNNBaseline

    return NaiveCNNBaseline.from_config(config)


@hookimpl
def register_models(register):
    register(
        "naive_cnn",
        build_naive_cnn,
        config=NaiveCNNConfig,
        description="Naive CNN baseline: per-frame 2D CNN, mean of frame logits, memory-bounded chunked training",
    )
