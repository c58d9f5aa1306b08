"""A Job like the runner's, around a tiny in-memory dataset and a tiny model, for trainer tests.

The dataset follows the plugin contract (table, read_video, on_bad_video, protocol): fake clips
are brighter than real ones plus seeded noise, so a few epochs learn something; "bad" paths raise
BadVideoError as a real loader does for an unreadable file.
"""

from __future__ import annotations

import io
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import torch
from pydantic import BaseModel, ConfigDict
from rich.console import Console
from torch import nn

from fvc_core.config import ResolvedConfig, Section
from fvc_core.errors import BadVideoError
from fvc_core.tracking import FoldResult, RunInfo, Tracker
from fvc_core.training.config import SupervisedConfig


class TinyDataset:
    def __init__(self, n_real: int = 8, n_fake: int = 8, frames: int = 4, size: int = 16,
                 bad: tuple[str, ...] = (), on_bad_video: str = "fail", groups: bool = False,
                 delay: float = 0.0):
        paths = [f"/mem/real_{i:02d}.mp4" for i in range(n_real)] + [f"/mem/fake_{i:02d}.mp4" for i in range(n_fake)]
        labels = [0] * n_real + [1] * n_fake
        # With groups, a fake shares the group of the real video it was "made from".
        group = [f"src{i % max(n_real, 1):02d}" for i in range(n_real + n_fake)] if groups else paths
        self._table = pl.DataFrame({"video_path": paths, "label": labels, "group": group})
        self.frames, self.size, self.bad = frames, size, set(bad)
        self.on_bad_video = on_bad_video
        self.reads: list[tuple[str, bool, int]] = []
        self.delay = delay  # seconds per read: lets a test catch a run in the middle of a fold

    def table(self) -> pl.DataFrame:
        return self._table

    def read_video(self, path: str, *, augment: bool = False, seed: int = 0) -> torch.Tensor:
        self.reads.append((path, augment, seed))
        if self.delay:
            time.sleep(self.delay)
        if path in self.bad:
            raise BadVideoError(path, "moov atom not found")
        g = torch.Generator().manual_seed(zlib.crc32(path.encode()) + (seed if augment else 0))
        base = 150 if "fake" in path else 90
        noise = torch.randint(-60, 60, (self.frames, 3, self.size, self.size), generator=g)
        return (base + noise).clamp(0, 255).to(torch.uint8)

    def protocol(self) -> dict[str, Any]:
        return {"num_frames": self.frames, "size": self.size}


class TinyModel(nn.Module):
    """Per-frame conv + BN + dropout, mean over frames: (N, T, C, H, W) uint8 -> (N, 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(4, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t = x.shape[:2]
        frames = x.reshape(n * t, *x.shape[2:]).float() / 255.0
        return self.head(self.features(frames)).reshape(n, t, 2).mean(1)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"backbone": list(self.features.parameters()), "head": list(self.head.parameters())}


class Plain(BaseModel):
    model_config = ConfigDict(extra="allow")


class RecordingTracker(Tracker):
    def __init__(self) -> None:
        self.epochs: list[tuple[int, int, dict[str, float], int]] = []
        self.folds: list[FoldResult] = []

    def log_epoch(self, fold, epoch, metrics, step):
        self.epochs.append((fold, epoch, metrics, step))

    def end_fold(self, result):
        self.folds.append(result)


@dataclass
class Job:
    config: ResolvedConfig
    run: RunInfo
    dataset: Any
    build_model: Any
    trackers: RecordingTracker
    console: Console
    interactive: bool = False
    output: io.StringIO = field(default_factory=io.StringIO)


def small_config(**overrides: Any) -> SupervisedConfig:
    base = dict(folds=2, epochs=2, batch_size=1, grad_accum=3, warmup_epochs=1, num_workers=0, lr=1e-2,
                backbone_lr=1e-3)
    base.update(overrides)
    return SupervisedConfig(**base)


def make_job(output_dir: Path, trainer: SupervisedConfig, dataset: Any = None, seed: int = 7,
             model: Any = TinyModel) -> Job:
    dataset = dataset or TinyDataset()
    config = ResolvedConfig("test", seed, Path(output_dir), Section("tiny", Plain()), Section("tiny_model", Plain()),
                            Section("supervised", trainer), trackers=[])
    run_dir = Path(output_dir) / "tiny_model"
    run = RunInfo(experiment="test", run_id="r1", config=config.as_dict(), config_hash="h", model_name="tiny_model",
                  run_dir=run_dir, folds=trainer.folds)
    out = io.StringIO()
    console = Console(file=out, width=140)
    return Job(config, run, dataset, model, RecordingTracker(), console, False, out)


TINY_MODEL_PLUGIN = '''
from pydantic import BaseModel, ConfigDict
from fvc_core.contract import hookimpl

class Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")

def build(cfg):
    from tests.trainer.helpers import TinyModel
    return TinyModel()

@hookimpl
def register_models(register):
    register("tiny_cnn", build, config=Cfg)
'''
"""A plugin module registering TinyModel as ``tiny_cnn`` (it has no frame_logits), for tests that
install it as a distribution (tests.core.conftest.write_distribution)."""
