"""The keys of the ``model:`` section for timm backbones (no torch, no timm at import).

``name: timm`` takes any timm architecture as ``arch``; the named baselines (``xception``,
``efficientnet_b4``, ``clip_vit_b16``) fix the architecture and its published input size.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from fvc_core.contract import ModelInput

# Five stride-2 stages (most CNNs) leave a 1 x 1 map from 32 x 32 frames.
MIN_SIZE = 32


class TimmModelConfig(BaseModel):
    """A timm image backbone scoring every frame; a video's logits are the mean of its frames'."""

    model_config = ConfigDict(extra="forbid")

    ARCH: ClassVar[str | None] = None
    """A named baseline's timm architecture (None: the ``arch`` key says)."""
    SIZE: ClassVar[int | None] = None
    """A named baseline's published input size."""

    num_classes: int = Field(2, ge=2, description="Output classes (softmax); 2 for real / fake.")
    img_size: int | None = Field(
        None, ge=MIN_SIZE, description="Height and width of the frames the network is built for (data.size must "
        "match). null: the named model's published size; for `timm`, the architecture's own for a network built "
        "for one size (vision transformers), else any size of data.size.")
    chunk_size: int = Field(
        32, ge=1, description="Frames through the network at once (a batch's clips one after another). In "
        "training, a batch of more frames than this keeps the activations of one chunk at a time and recomputes "
        "each in the backward pass (one more forward pass; memory flat in the number of frames).")
    train_memory: Literal["bounded", "unbounded"] = Field(
        "bounded", description="bounded: recompute each chunk in backward when a batch spans several; "
        "unbounded: keep every chunk's activations (memory grows with the frames; a reference).")
    drop_rate: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout before the classifier (timm's drop_rate).")
    weights: Path | None = Field(
        None, description="Weights from a local file: safetensors, or a state dict torch loads with "
        "weights_only=True (timm's own, or an fvc fold's model.pt). The classifier is kept when its shape "
        "differs (ImageNet's 1000 classes). Set: the backbone counts as pretrained (lr/100 unless "
        "trainer.backbone_lr).")
    pretrained: Literal["none", "cache", "download"] = Field(
        "none", description="timm's published weights: cache reads them from the Hugging Face or torch hub "
        "cache on this machine and never touches the network; download fetches them when not cached (the "
        "only setting that uses the network); none: random initialisation.")
    freeze: Literal["none", "backbone"] = Field(
        "none", description="backbone: the linear-probe protocol: only the classifier trains; the backbone "
        "stays in evaluation mode and its features are computed once per clip per epoch, without a graph.")
    feature_cache: Literal["off", "memory"] = Field(
        "off", description="memory (freeze: backbone only): keep each clip's frozen features, keyed by a hash of "
        "the clip's exact bytes, so a clip seen again (data without augmentation) skips the backbone. Held on "
        "the model's device, never saved.")
    feature_cache_mb: float = Field(
        1024.0, gt=0, description="The cache's bound in MiB of features; least recently used clips go first.")

    @model_validator(mode="after")
    def _one_source_of_weights(self) -> TimmModelConfig:
        if self.weights is not None and self.pretrained != "none":
            raise PydanticCustomError("weights", f"weights and pretrained: {self.pretrained} both say where the "
                                      "weights come from; set one")
        return self

    @model_validator(mode="after")
    def _cache_needs_a_frozen_backbone(self) -> TimmModelConfig:
        if self.feature_cache != "off" and self.freeze != "backbone":
            raise PydanticCustomError("feature_cache", f"feature_cache: {self.feature_cache} needs freeze: "
                                      f"backbone (a trained backbone's features change every step), not freeze: "
                                      f"{self.freeze}")
        return self

    def architecture_name(self) -> str:
        assert self.ARCH is not None
        return self.ARCH

    def input_size(self) -> int | None:
        """The exact frame size the network needs, or None for any (>= MIN_SIZE)."""
        if self.img_size is not None:
            return self.img_size
        return self.SIZE

    def model_input(self) -> ModelInput:
        """Any number of frames in any order (each is scored alone), at the size the network is built for."""
        return ModelInput(size=self.input_size(), min_size=MIN_SIZE)


class TimmConfig(TimmModelConfig):
    """Any timm architecture by name."""

    arch: str = Field(description="A timm architecture (timm.list_models()), e.g. efficientnet_b4, "
                      "legacy_xception, vit_base_patch16_clip_224, resnet10t.")

    @field_validator("arch")
    @classmethod
    def _known(cls, name: str) -> str:
        # Imports timm (and torch): only a config naming model `timm` pays for it.
        from fvc_timm.timm_import import architecture

        try:
            architecture(name)
        except ValueError as exc:
            raise PydanticCustomError("arch", str(exc)) from None
        return name

    def architecture_name(self) -> str:
        return self.arch

    def input_size(self) -> int | None:
        if self.img_size is not None:
            return self.img_size
        from fvc_timm.timm_import import architecture

        arch = architecture(self.arch)
        return arch.size if arch.fixed_size else None


class XceptionConfig(TimmModelConfig):
    """Xception (Chollet 2017), the FaceForensics++ baseline: timm's legacy_xception, 299 px."""

    ARCH: ClassVar[str] = "legacy_xception"
    SIZE: ClassVar[int] = 299


class EfficientNetB4Config(TimmModelConfig):
    """EfficientNet-B4 (Tan and Le 2019), the DFDC winners' backbone family, 380 px."""

    ARCH: ClassVar[str] = "efficientnet_b4"
    SIZE: ClassVar[int] = 380


class ClipViTB16Config(TimmModelConfig):
    """CLIP's ViT-B/16 image tower (Radford et al. 2021) in timm, 224 px, CLIP's normalisation."""

    ARCH: ClassVar[str] = "vit_base_patch16_clip_224"
    SIZE: ClassVar[int] = 224


PRESETS: dict[str, type[TimmModelConfig]] = {
    "xception": XceptionConfig,
    "efficientnet_b4": EfficientNetB4Config,
    "clip_vit_b16": ClipViTB16Config,
}
