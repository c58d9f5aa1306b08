"""The keys of the ``model:`` section when ``name: naive_cnn`` (no torch here)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fvc_core.contract import ModelInput

Layout = Literal["auto", "ntchw", "ncthw"]
NormStats = Literal["clip", "running"]
TrainMemory = Literal["bounded", "recompute", "unbounded"]


class NaiveCNNConfig(BaseModel):
    """Settings of the Naive CNN baseline."""

    model_config = ConfigDict(extra="forbid")

    num_classes: int = Field(2, ge=2)
    """Output classes; logits feed a softmax (cross-entropy), so at least 2."""
    chunk_size: int = Field(10, ge=1)
    """Frames per chunk. Also what BatchNorm normalises over: each chunk of one video."""
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    """Dropout before the last linear layer."""
    layout: Layout = "auto"
    """Input layout: ``ntchw`` (N, T, C, H, W), ``ncthw`` (N, C, T, H, W), or ``auto``
    (whichever has its 3 colour channels where the shape has them; an error if both or neither)."""
    norm_stats: NormStats = "clip"
    """BatchNorm in evaluation: ``clip`` normalises each chunk with its own statistics, as in
    training (batch 1, chunks); ``running`` uses the running averages (textbook BatchNorm)."""
    train_memory: TrainMemory = "bounded"
    """How a training step keeps memory independent of the clip length: ``bounded`` backpropagates
    each chunk during the forward pass (no recomputation); ``recompute`` keeps no activations and
    recomputes each chunk in backward (general, ~1 extra forward); ``unbounded`` keeps the whole graph
    (memory grows with T; a reference)."""
    compile: bool = False
    """Compile the per-chunk network with ``torch.compile``."""

    def model_input(self) -> ModelInput:
        """Any number of frames, in any order (each frame is scored alone); two 2x2 poolings leave
        BatchNorm at least 2 x 2 values a channel from 8 x 8 frames."""
        return ModelInput(min_size=8, layout=self.layout)
