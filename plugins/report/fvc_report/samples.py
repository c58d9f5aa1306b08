"""Sample frames for the report: a few real and fake test videos, and the most confident mistakes.

Frames are decoded by the run's own dataset plugin (rebuilt from config.yaml), so they are the
clips the model saw. Kept cheap: a handful of videos, a few frames each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from fvc_core.contract import one_line
from fvc_report.rundata import Run

FRAMES_SHOWN = 4


@dataclass
class Sample:
    video_path: str
    label: int
    score: float
    fold: int
    frames: np.ndarray | None  # (k, H, W, 3) uint8
    error: str | None = None

    @property
    def predicted(self) -> str:
        return "fake" if self.score >= self._threshold else "real"

    _threshold: float = 0.5


def build_dataset(run: Run) -> Any:
    """The run's dataset plugin, built from config.yaml; None (with a note) when it cannot be."""
    from fvc_core.contract import open_run

    name = (run.config.get("data") or {}).get("name")
    try:
        return open_run(run.path).dataset()
    except Exception as exc:  # a missing plugin, a moved table: the report goes on without frames
        run.notes.append(f"sample frames left out: dataset {name!r} of {run.path / 'config.yaml'} could not be "
                         f"built ({one_line(exc, 160, with_type=False)})")
        return None


def _frames(dataset: Any, path: str) -> tuple[np.ndarray | None, str | None]:
    try:
        clip = np.asarray(dataset.read_video(path))  # (T, 3, H, W) uint8
        if clip.ndim == 5:  # several evaluation windows (K, T, 3, H, W): frames from all of them
            clip = clip.reshape(-1, *clip.shape[2:])
    except Exception as exc:  # BadVideoError or a file gone since the run: shown beside the sample
        return None, one_line(exc, 200, with_type=False)
    if clip.ndim != 4 or clip.shape[1] not in (1, 3):
        return None, f"clip of shape {tuple(clip.shape)}, not (T, 3, H, W)"
    idx = np.unique(np.linspace(0, clip.shape[0] - 1, FRAMES_SHOWN).round().astype(int))
    frames = clip[idx].transpose(0, 2, 3, 1)
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    return frames.astype(np.uint8), None


def pick(run: Run, per_class: int = 2, mistakes: int = 3) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(samples, mistakes): the most confidently right videos of each class, and the most confident
    mistakes (the wrong side of the threshold, farthest from it)."""
    frames = [f.predictions.with_columns(pl.lit(f.index).alias("fold")) for f in run.finished_folds
              if f.predictions is not None]
    if not frames:
        empty = pl.DataFrame(schema={"video_path": pl.String, "label": pl.Int64, "score": pl.Float64,
                                     "fold": pl.Int32})
        return empty, empty
    pooled = pl.concat(frames, how="vertical_relaxed")
    t = run.threshold
    pooled = pooled.with_columns(
        pl.when(pl.col("label") == 1).then(pl.col("score") - t).otherwise(t - pl.col("score")).alias("margin"))
    right = pooled.filter(pl.col("margin") >= 0).sort(["margin", "video_path"], descending=[True, False])
    chosen = pl.concat([right.filter(pl.col("label") == c).head(per_class) for c in (0, 1)])
    wrong = pooled.filter(pl.col("margin") < 0).sort(["margin", "video_path"]).head(mistakes)
    return chosen, wrong


def load(run: Run, rows: pl.DataFrame, dataset: Any) -> list[Sample]:
    out = []
    for rec in rows.iter_rows(named=True):
        frames, error = _frames(dataset, rec["video_path"]) if dataset is not None else (None, "no dataset")
        sample = Sample(rec["video_path"], int(rec["label"]), float(rec["score"]), int(rec["fold"]), frames, error)
        sample._threshold = run.threshold
        out.append(sample)
    return out
