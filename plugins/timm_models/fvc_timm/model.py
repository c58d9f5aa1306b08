"""TimmDetector: a timm image network scoring each frame of a clip; a video's logits are the mean of
its frames' logits.

Frames go through the network ``chunk_size`` at a time (a batch's clips one after another, as one
flat run of frames), each chunk converted from uint8 and normalised with the mean and standard
deviation timm publishes for the architecture, so a clip never exists whole as float. In training a
batch of more frames than one chunk keeps one chunk's activations at a time: each chunk runs without
a graph and is recomputed in the backward pass (``torch.utils.checkpoint``: the same dropout masks,
BatchNorm's running statistics counted once), so memory is flat in the number of frames for one
more forward pass. A batch of one chunk or less runs as plain PyTorch would.

``freeze: backbone`` (linear probe): the backbone stays in evaluation mode with no gradient; each
frame's features are computed once, without a graph, and only the classifier trains. With
``feature_cache: memory`` the features a frozen backbone gave a clip are kept (keyed by the clip's exact
bytes: feature_cache.py), and the same clip seen again (no augmentation) skips the backbone; the cache is
never part of the model's state.

Grad-CAM (``fvc explain``, which hooks the module named in ``gradcam_layer``): ``feature_map`` sees
the last feature map of a CNN, and for a vision transformer the patch tokens entering its last block,
reshaped into their grid (the class token is read out of them by that block's attention; the tokens
leaving it no longer reach the classifier).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from fvc_core.contract import UserError, running_stats_frozen
from fvc_timm.config import TimmModelConfig
from fvc_timm.feature_cache import FeatureCache, clip_key
from fvc_timm.timm_import import import_timm
from fvc_timm.weights import load_weights


class TimmDetector(nn.Module):
    """A timm network as a frame-level detector: ``forward(x)`` takes clips ``(N, T, 3, H, W)`` (uint8
    0-255 or float 0-1) and returns video logits ``(N, num_classes)``; ``forward(x,
    return_frame_logits=True)`` also the frame logits ``(N, T, num_classes)``."""

    gradcam_layer = "feature_map"

    def __init__(self, arch: str, num_classes: int = 2, img_size: int | None = None, chunk_size: int = 32,
                 train_memory: str = "bounded", drop_rate: float = 0.0, freeze: str = "none",
                 weights: str | Path | None = None, pretrained: str = "none", feature_cache: str = "off",
                 feature_cache_mb: float = 1024.0):
        super().__init__()
        timm = import_timm()
        kwargs: dict[str, Any] = {"num_classes": num_classes, "drop_rate": drop_rate}
        cfg = timm.models.get_pretrained_cfg(arch)
        if img_size is not None and cfg is not None and cfg.fixed_input_size:
            kwargs["img_size"] = img_size  # a transformer's position embeddings are made for one size
        self.backbone = timm.create_model(arch, pretrained=False, **kwargs)
        self.arch, self.chunk_size, self.train_memory, self.freeze = arch, chunk_size, train_memory, freeze
        # The configured weights are read when training starts (train() or a first forward), not here: a
        # fold's model.pt loaded by fvc predict / evaluate / explain replaces them, and must need neither
        # the original file nor, for pretrained: download, the network.
        weights = None if weights is None else Path(weights)
        self._pending = (kwargs, weights, pretrained) if weights is not None or pretrained != "none" else None
        self.weights_from: str | None = None
        self.backbone_pretrained = self._pending is not None
        """True with configured weights: the supervised trainer then gives the backbone lr/100."""
        data = self.backbone.pretrained_cfg
        self.mean_std = (tuple(data.get("mean") or (0.485, 0.456, 0.406)),
                         tuple(data.get("std") or (0.229, 0.224, 0.225)))
        self.register_buffer("mean", torch.tensor(self.mean_std[0]).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("inv_std", 1.0 / (torch.tensor(self.mean_std[1]).view(1, 3, 1, 1) * 255.0),
                             persistent=False)
        self.feature_map = nn.Identity()
        self._tokens = hasattr(self.backbone, "patch_embed") and isinstance(getattr(self.backbone, "blocks", None),
                                                                             nn.Sequential)
        if self._tokens:
            self.backbone.blocks[-1].register_forward_pre_hook(self._tokens_as_map)
        self._grid: tuple[int, int] | None = None
        if freeze == "backbone":
            head = {id(p) for p in self.backbone.get_classifier().parameters()}
            for p in self.backbone.parameters():
                p.requires_grad_(id(p) in head)
            self.backbone.eval()
        if feature_cache != "off" and freeze != "backbone":
            raise ValueError(f"timm {arch}: feature_cache needs freeze: backbone (a trained backbone's features "
                             "change every step)")
        # A plain attribute, not a buffer: never in the state dict (model.pt).
        self.feature_cache = FeatureCache(int(feature_cache_mb * 2**20)) if feature_cache != "off" else None
        self._head_checked = False

    @classmethod
    def from_config(cls, config: TimmModelConfig) -> TimmDetector:
        return cls(config.architecture_name(), num_classes=config.num_classes, img_size=config.input_size(),
                   chunk_size=config.chunk_size, train_memory=config.train_memory, drop_rate=config.drop_rate,
                   freeze=config.freeze, weights=config.weights, pretrained=config.pretrained,
                   feature_cache=config.feature_cache, feature_cache_mb=config.feature_cache_mb)

    def load_pending_weights(self) -> None:
        """Read the configured weights into the network, once (a checkpoint loaded first makes it a no-op)."""
        if self._pending is not None:
            kwargs, weights, pretrained = self._pending
            self.weights_from = load_weights(import_timm(), self.backbone, self.arch, kwargs, weights, pretrained)
            self._pending = None
            self._forget_features()

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        self._pending = None  # a checkpoint of this model holds every tensor: the configured file is not needed
        self._forget_features()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def _forget_features(self) -> None:
        # Another backbone, device or dtype: the cached features are no longer this network's.
        if getattr(self, "feature_cache", None) is not None:
            self.feature_cache.clear()

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> TimmDetector:
        self._forget_features()
        return super()._apply(fn, *args, **kwargs)

    def train(self, mode: bool = True) -> TimmDetector:
        if mode:
            self.load_pending_weights()
        super().train(mode)
        if self.freeze == "backbone":
            self.backbone.eval()  # frozen BatchNorm statistics and no dropout: the probe's features are fixed
        return self

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        head = list(self.backbone.get_classifier().parameters())
        ids = {id(p) for p in head}
        return {"backbone": [p for p in self.parameters() if id(p) not in ids], "head": head}

    # --- Grad-CAM's map -------------------------------------------------------------------------

    def _explaining(self) -> bool:
        # fvc explain: evaluation mode with gradients on. Training never pays for the map.
        return not self.training and torch.is_grad_enabled()

    def _as_map(self, grid: torch.Tensor) -> torch.Tensor:
        if not grid.requires_grad:
            grid = grid.detach().requires_grad_()  # a frozen backbone: the map's gradient all the same
        return self.feature_map(grid)

    def _tokens_as_map(self, _block: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if not self._explaining() or self._grid is None:
            return None
        tokens = args[0]
        prefix = getattr(self.backbone, "num_prefix_tokens", 1)
        gh, gw = self._grid
        if tokens.ndim != 3 or tokens.shape[1] - prefix != gh * gw:
            return None
        k, _, dim = tokens.shape
        grid = self._as_map(tokens[:, prefix:].transpose(1, 2).reshape(k, dim, gh, gw))
        return (torch.cat([tokens[:, :prefix], grid.flatten(2).transpose(1, 2)], 1), *args[1:])

    def _grid_of(self, height: int, width: int) -> tuple[int, int] | None:
        embed = self.backbone.patch_embed
        if callable(getattr(embed, "dynamic_feat_size", None)) and getattr(embed, "dynamic_img_size", False):
            return tuple(embed.dynamic_feat_size((height, width)))
        grid = getattr(embed, "grid_size", None)
        return tuple(grid) if grid is not None else None

    # --- one chunk ------------------------------------------------------------------------------

    def _normalised(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.float() if frames.dtype == torch.uint8 else frames.float() * 255.0
        return (x - self.mean) * self.inv_std

    def _chunk_logits(self, frames: torch.Tensor, _recompute_token: torch.Tensor | None = None) -> torch.Tensor:
        """Frame logits (k, num_classes) of a chunk of frames (k, 3, H, W)."""
        x = self._normalised(frames)
        if self._tokens:
            self._grid = self._grid_of(x.shape[-2], x.shape[-1])
        frozen = self.freeze == "backbone"
        # Under reentrant checkpointing the first pass runs without a graph and the recomputation with one.
        recomputing = self.training and torch.is_grad_enabled() and _recompute_token is not None
        with running_stats_frozen(self.backbone, recomputing), torch.set_grad_enabled(
                torch.is_grad_enabled() and not (frozen and self.training)):
            features = self.backbone.forward_features(x)
        if not self._tokens and features.ndim == 4 and self._explaining():
            layout = str(getattr(self.backbone, "output_fmt", "NCHW"))
            if layout == "NHWC":  # Swin and the like: channels last, Grad-CAM averages over (h, w)
                features = self._as_map(features.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
            elif layout == "NCHW":
                features = self._as_map(features)
            # Any other layout: no map (fvc explain says the maps were left out), never a wrong one.
        return self.backbone.forward_head(features)

    # --- the frozen features of clips, cached ----------------------------------------------------

    def _frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """The frozen backbone's pre-logits features (k, D) of a chunk of frames, without a graph."""
        with torch.no_grad():
            features = self.backbone.forward_features(self._normalised(frames))
            pre = self.backbone.forward_head(features, pre_logits=True)
            if not self._head_checked:
                # The cache splits timm's head into pre-logits features and the classifier: check once that
                # the two make forward_head's logits for this architecture, rather than train on others.
                expected = self.backbone.forward_head(features)
                got = self.backbone.get_classifier()(pre)
                if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
                    # The user's key at fault: one line, exit 2 (fvc_core.contract.UserError).
                    raise UserError(f"model.feature_cache: timm {self.arch}: its head is not a classifier on "
                                    "pre-logits features; use feature_cache: off")
                self._head_checked = True
        return pre

    def _cached_frame_logits(self, frames: torch.Tensor, n: int, t: int,
                             bounds: list[tuple[int, int]]) -> torch.Tensor:
        """Frame logits (n * t, classes): each clip's features from the cache or the backbone (the clips
        missed go through it together, chunk_size frames at a time), then the classifier, chunk by chunk."""
        cache = self.feature_cache
        assert cache is not None
        clips = frames.view(n, t, *frames.shape[1:])
        keys = [clip_key(clip) for clip in clips]
        found = [cache.get(k) for k in keys]
        missed = [i for i, f in enumerate(found) if f is None]
        if missed:
            todo = frames if len(missed) == n else clips[missed].reshape(len(missed) * t, *frames.shape[1:])
            pre = torch.cat([self._frame_features(todo[s:s + self.chunk_size])
                             for s in range(0, len(todo), self.chunk_size)])
            for j, i in enumerate(missed):
                found[i] = pre[j * t:(j + 1) * t]
                cache.put(keys[i], found[i])
        pre = torch.cat([f.to(frames.device) for f in found])
        classifier = self.backbone.get_classifier()
        return torch.cat([classifier(pre[s:e]) for s, e in bounds])

    # --- a batch of clips -----------------------------------------------------------------------

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Frame logits (N, T, num_classes), float32."""
        return self.forward(x, return_frame_logits=True)[1]

    def forward(self, x: torch.Tensor, return_frame_logits: bool = False) -> Any:
        self.load_pending_weights()
        if x.dim() != 5 or x.shape[2] != 3:
            raise ValueError(f"timm {self.arch}: expected clips (N, T, 3, H, W), got {tuple(x.shape)}")
        n, t = x.shape[:2]
        frames = x.reshape(n * t, *x.shape[2:])
        bounds = [(s, min(s + self.chunk_size, n * t)) for s in range(0, n * t, self.chunk_size)]
        trains_backbone = self.freeze != "backbone"
        bounded = (self.training and torch.is_grad_enabled() and trains_backbone and self.train_memory == "bounded"
                   and len(bounds) > 1)
        if self.feature_cache is not None and not self._explaining():
            frame = self._cached_frame_logits(frames, n, t, bounds).float().view(n, t, -1)
            video = frame.mean(1)
            return (video, frame) if return_frame_logits else video
        logits = []
        for s, e in bounds:
            if bounded:
                # One chunk's activations at a time: each is recomputed in backward.
                token = torch.ones((), requires_grad=True)
                logits.append(checkpoint(self._chunk_logits, frames[s:e], token, use_reentrant=True))
            else:
                logits.append(self._chunk_logits(frames[s:e]))
        frame = torch.cat(logits).float().view(n, t, -1)
        video = frame.mean(1)
        return (video, frame) if return_frame_logits else video

    def extra_repr(self) -> str:
        return (f"arch={self.arch!r}, chunk_size={self.chunk_size}, train_memory={self.train_memory!r}, "
                f"freeze={self.freeze!r}, weights={self.weights_from!r}, "
                f"feature_cache={'off' if self.feature_cache is None else 'memory'}")
