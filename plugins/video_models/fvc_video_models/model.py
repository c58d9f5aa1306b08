"""Video ResNets (R(2+1)D, 3D ResNet, MC3), written plainly after torchvision.models.video (BSD-3) with
the same parameter names, so torchvision's Kinetics-400 state dicts load into them from a local file.

``forward(x)`` takes ``(N, T, 3, H, W)`` clips of consecutive frames (uint8 0-255 or float 0-1) and
returns video logits ``(N, num_classes)``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from fvc_core.contract import UserError, one_line, running_stats_frozen
from fvc_video_models.config import VideoModelConfig

# Kinetics-400 statistics, the ones torchvision's video weights were trained with.
MEAN = (0.43216, 0.394666, 0.37645)
STD = (0.22803, 0.22145, 0.216989)


class Conv3DSimple(nn.Conv3d):
    def __init__(self, in_planes: int, out_planes: int, midplanes: int | None = None, stride: int = 1):
        super().__init__(in_planes, out_planes, kernel_size=(3, 3, 3), stride=stride, padding=1, bias=False)

    @staticmethod
    def downsample_stride(stride: int) -> tuple[int, int, int]:
        return stride, stride, stride


class Conv2Plus1D(nn.Sequential):
    """A 3x3x3 convolution factored into 1x3x3 (space) then 3x1x1 (time), with as many parameters."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int, stride: int = 1):
        super().__init__(
            nn.Conv3d(in_planes, midplanes, kernel_size=(1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1),
                      bias=False),
            nn.BatchNorm3d(midplanes),
            nn.ReLU(inplace=True),
            nn.Conv3d(midplanes, out_planes, kernel_size=(3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0),
                      bias=False),
        )

    @staticmethod
    def downsample_stride(stride: int) -> tuple[int, int, int]:
        return stride, stride, stride


class Conv3DNoTemporal(nn.Conv3d):
    def __init__(self, in_planes: int, out_planes: int, midplanes: int | None = None, stride: int = 1):
        super().__init__(in_planes, out_planes, kernel_size=(1, 3, 3), stride=(1, stride, stride),
                         padding=(0, 1, 1), bias=False)

    @staticmethod
    def downsample_stride(stride: int) -> tuple[int, int, int]:
        return 1, stride, stride


class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, conv: type, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        midplanes = (inplanes * planes * 3 * 3 * 3) // (inplanes * 3 * 3 + 3 * planes)
        self.conv1 = nn.Sequential(conv(inplanes, planes, midplanes, stride), nn.BatchNorm3d(planes),
                                   nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv(planes, planes, midplanes), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


def basic_stem() -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(3, 64, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
                         nn.BatchNorm3d(64), nn.ReLU(inplace=True))


def r2plus1d_stem() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(3, 45, kernel_size=(1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
        nn.BatchNorm3d(45), nn.ReLU(inplace=True),
        nn.Conv3d(45, 64, kernel_size=(3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0), bias=False),
        nn.BatchNorm3d(64), nn.ReLU(inplace=True))


ARCHS = {
    "r2plus1d": (r2plus1d_stem, [Conv2Plus1D] * 4),
    "r3d": (basic_stem, [Conv3DSimple] * 4),
    "mc3": (basic_stem, [Conv3DSimple] + [Conv3DNoTemporal] * 3),
}


class VideoClassifier(nn.Module):
    """A video ResNet with a ``num_classes`` head; windows of ``window`` frames bound its memory."""

    def __init__(self, arch: str = "r2plus1d", num_classes: int = 2, blocks: int = 2, window: int | None = None,
                 dropout: float = 0.0, train_memory: str = "bounded"):
        super().__init__()
        stem, convs = ARCHS[arch]
        self.arch, self.window, self.train_memory = arch, window, train_memory
        self.stem = stem()
        self.inplanes = 64
        self.layer1 = self._make_layer(convs[0], 64, blocks, stride=1)
        self.layer2 = self._make_layer(convs[1], 128, blocks, stride=2)
        self.layer3 = self._make_layer(convs[2], 256, blocks, stride=2)
        self.layer4 = self._make_layer(convs[3], 512, blocks, stride=2)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(512, num_classes)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1, 1), persistent=False)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)
        self.backbone_pretrained = False
        """True once weights are loaded: the supervised trainer then gives the backbone lr/100."""

    def _make_layer(self, conv: type, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv3d(self.inplanes, planes, kernel_size=1, stride=conv.downsample_stride(stride), bias=False),
                nn.BatchNorm3d(planes))
        layers = [BasicBlock(self.inplanes, planes, conv, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes, conv) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    @classmethod
    def from_config(cls, arch: str, config: VideoModelConfig) -> VideoClassifier:
        model = cls(arch, config.num_classes, config.blocks, config.window, config.dropout, config.train_memory)
        if config.weights is not None:
            model.load_weights(config.weights)
        return model

    def load_weights(self, path: str | Path) -> None:
        """A local state dict (torchvision's or one of these models'); the head is kept when its shape
        differs (Kinetics' 400 classes against real/fake). A UserError naming the file otherwise."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"model.weights: {path}: no such file")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise UserError(f"model.weights: {path}: not a state dict torch can load safely "
                            f"({one_line(exc, 160, with_type=False)})") from None
        for key in ("model_state_dict", "state_dict"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise UserError(f"model.weights: {path}: not a state dict (a mapping of parameter names to tensors)")
        own = self.state_dict()
        head = {k for k in state if k.startswith("fc.") and k in own and state[k].shape != own[k].shape}
        state = {k: v for k, v in state.items() if k not in head}
        wrong = [k for k, v in state.items() if k in own and v.shape != own[k].shape]
        missing = sorted(set(own) - set(state) - {k for k in own if k.startswith("fc.")})
        extra = sorted(set(state) - set(own))
        if wrong or missing or extra:
            what = "; ".join(part for part in (
                f"{len(wrong)} of another shape ({', '.join(wrong[:3])})" if wrong else "",
                f"{len(missing)} missing ({', '.join(missing[:3])})" if missing else "",
                f"{len(extra)} unknown ({', '.join(extra[:3])})" if extra else "") if part)
            raise UserError(f"model.weights: {path}: does not fit {self.arch} with {len(self.layer1)} "
                            f"block(s) a stage: {what}")
        self.load_state_dict(state, strict=False)
        self.backbone_pretrained = True

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        head = list(self.fc.parameters())
        ids = {id(p) for p in head}
        return {"backbone": [p for p in self.parameters() if id(p) not in ids], "head": head}

    def _features(self, x: torch.Tensor, _needs_grad: torch.Tensor | None = None) -> torch.Tensor:
        # Under reentrant checkpointing the first pass runs without grad and the recomputation with it.
        with running_stats_frozen(self, self.training and torch.is_grad_enabled() and _needs_grad is not None):
            x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.avgpool(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[2] != 3:
            raise ValueError(f"{self.arch}: expected clips (N, T, 3, H, W), got {tuple(x.shape)}")
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        x = (x.permute(0, 2, 1, 3, 4) - self.mean) / self.std  # (N, 3, T, H, W)
        frames = x.shape[2]
        size = self.window or frames
        if frames % size:
            raise ValueError(f"{self.arch}: a clip of {frames} frames is not a whole number of {size}-frame windows")
        bounded = self.training and torch.is_grad_enabled() and self.train_memory == "bounded" and frames > size
        logits = []
        for start in range(0, frames, size):
            part = x[:, :, start:start + size]
            if bounded:
                # One window's activations at a time: each is recomputed in backward.
                token = torch.ones((), requires_grad=True)
                features = checkpoint(self._features, part, token, use_reentrant=True)
            else:
                features = self._features(part)
            logits.append(self.fc(self.dropout(features)))
        return torch.stack(logits).mean(0)
