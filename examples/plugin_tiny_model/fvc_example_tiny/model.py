import torch
from torch import nn


class TinyCNN(nn.Module):
    """Conv -> ReLU -> global pool -> linear, per frame; video logits are the mean over frames."""

    def __init__(self, width: int = 8, num_classes: int = 2):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, T, C, H, W), uint8 or float
        n, t = x.shape[:2]
        frames = x.flatten(0, 1).float()
        if x.dtype == torch.uint8:
            frames = frames / 255.0
        logits = self.head(self.features(frames).flatten(1))
        return logits.view(n, t, -1).mean(dim=1)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"backbone": list(self.features.parameters()), "head": list(self.head.parameters())}
