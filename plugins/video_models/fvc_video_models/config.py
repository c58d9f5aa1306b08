"""The keys of the ``model:`` section for the video models (no torch here)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fvc_core.contract import ModelInput

TrainMemory = Literal["bounded", "unbounded"]


class VideoModelConfig(BaseModel):
    """A video ResNet (Tran et al. 2018) on clips of consecutive frames."""

    model_config = ConfigDict(extra="forbid")

    num_classes: int = Field(2, ge=2, description="Output classes (softmax); 2 for real / fake.")
    blocks: Literal[1, 2] = Field(
        2, description="Residual blocks per stage: 2 is the published 18-layer network (its Kinetics weights "
        "load), 1 a 10-layer one about half the cost, for CPUs.")
    window: int | None = Field(
        None, ge=1, description="Frames the network sees at once. A longer clip is cut into windows of this "
        "many frames, their logits averaged, and in training each window's activations are recomputed in the "
        "backward pass (memory of one window, whatever the clip's length). Unset: the whole clip at once.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout before the last linear layer.")
    weights: Path | None = Field(
        None, description="A local state dict (e.g. torchvision's r2plus1d_18 Kinetics-400 file), loaded with "
        "torch.load(weights_only=True); the last layer is replaced when its shape differs. Nothing is "
        "downloaded. Set: the backbone counts as pretrained (it learns at lr/100 unless trainer.backbone_lr).")
    weights_fps: float | None = Field(
        None, ge=0.1, le=1000, description="The frame rate the weights were trained at (15 for torchvision's Kinetics "
        "weights); set, data.fps must match it.")
    min_frames: int = Field(4, ge=1, description="Fewest frames a clip may have (data.clip_len).")
    train_memory: TrainMemory = Field(
        "bounded", description="bounded: with `window` set, recompute each window in backward (about one "
        "more forward pass); unbounded: keep every window's activations.")

    def model_input(self) -> ModelInput:
        """Consecutive frames (the loader's `sampler: window`), at least `min_frames` of them, a
        multiple of `window` when set, frames of at least 32 x 32 (four stride-2 stages)."""
        return ModelInput(min_frames=max(self.min_frames, self.window or 1), frames_multiple_of=self.window or 1,
                          min_size=32, sampler="window", fps=self.weights_fps)
