"""What a run folder holds, read once for the report: config, run.json, and each fold's files.

Only reads: nothing in the run folder is created or changed. A folder that is not a run is one
line (UserError); a run still going, a fold without outputs or a damaged record is kept as a note
shown in the report, so whatever exists is still reported.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from fvc_core.contract import UserError, one_line

METRICS = ("accuracy", "precision", "recall", "f1_score", "roc_auc", "average_precision", "eer")


@dataclass
class Fold:
    index: int
    path: Path
    finished: bool  # metrics.json exists: the trainer writes it last
    has_model: bool
    has_checksum: bool
    metrics: dict[str, Any] | None = None
    predictions: pl.DataFrame | None = None
    history: list[dict[str, Any]] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Run:
    path: Path
    label: str
    config: dict[str, Any]
    state: dict[str, Any]
    status: str  # finished / running (in progress) / stopped while running / failed / interrupted
    folds: list[Fold]
    expected_folds: int
    skipped: list[dict[str, Any]]
    summary: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)

    @property
    def threshold(self) -> float:
        return float((self.config.get("trainer") or {}).get("threshold", 0.5))

    @property
    def partial(self) -> bool:
        return self.status != "finished" or len([f for f in self.folds if f.finished]) < self.expected_folds

    def partial_line(self) -> str | None:
        """One line naming the folds shown and the missing ones (as ``fvc predict`` and ``fvc evaluate``
        say which folds they scored with), or None for a finished run with every fold."""
        if not self.partial:
            return None
        done = sorted(f.index for f in self.folds if f.finished)
        missing = [k for k in range(self.expected_folds) if k not in done]
        shown = f"fold {', '.join(map(str, done))}" if done else "no fold"
        return (f"{self.path}: partial run (status {self.status}): {len(done)} of {self.expected_folds} folds "
                f"finished ({shown})" + (f"; fold {', '.join(map(str, missing))} not finished (no metrics.json)"
                                        if missing else "") + "; the report shows what exists")

    @property
    def finished_folds(self) -> list[Fold]:
        return [f for f in self.folds if f.finished and f.metrics is not None]

    def pooled_predictions(self) -> pl.DataFrame | None:
        frames = [f.predictions for f in self.finished_folds if f.predictions is not None]
        return pl.concat(frames) if frames else None


def _read_json(path: Path, notes: list[str]) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        notes.append(f"{path}: unreadable ({one_line(exc, 120)}); left out")
        return None


def _lock_holder_alive(run_dir: Path, model: str) -> bool:
    """Whether the process named in the run's lock file still lives. The file is only read, never
    opened for writing: the runner's lockf lock would not notice, but there is nothing to gain."""
    path = run_dir.parent / f".{model}.lock"
    try:
        words = path.read_text().split()
    except OSError:
        return False
    if len(words) < 4 or words[0] != "pid" or not words[1].isdigit():
        return False
    if words[3].rstrip(",") != socket.gethostname():
        return True  # another machine's process: cannot tell, assume it runs
    try:
        os.kill(int(words[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _runs_below(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir() and (p / "run.json").exists()) if path.is_dir() else []


def read_run(path: str | Path, label: str | None = None) -> Run:
    import yaml

    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: no such run folder")
    if not (path / "run.json").exists() or not (path / "config.yaml").exists():
        below = _runs_below(path)
        hint = (f"; the runs in it are {', '.join(str(path / b) for b in below)}" if below
                else "; RUN_DIR is <output_dir>/<model name> of an `fvc run`")
        missing = "run.json" if not (path / "run.json").exists() else "config.yaml"
        raise UserError(f"{path}: not an fvc run folder (no {missing}){hint}")
    try:
        config = yaml.safe_load((path / "config.yaml").read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"{path / 'config.yaml'}: invalid YAML ({one_line(exc, with_type=False)})") from None
    if not isinstance(config, dict):
        raise UserError(f"{path / 'config.yaml'}: not an fvc run config")
    notes: list[str] = []
    state = _read_json(path / "run.json", notes) or {}
    if not isinstance(state, dict):
        state = {}
    status = str(state.get("status", "unknown"))
    if status == "running":
        status = ("running (in progress)" if _lock_holder_alive(path, str(state.get("model", path.name)))
                  else "stopped while running (killed?)")
    trainer = config.get("trainer") or {}
    per_repeat = int(trainer.get("folds", 0) or 0) if isinstance(trainer, dict) else 0
    repeats = int(trainer.get("repeats", 1) or 1) if isinstance(trainer, dict) else 1
    expected = per_repeat * repeats

    def number(d: Path) -> int:
        # fold_<k>, or repeat_<r>/fold_<k> numbered across the run as the trainer numbers it
        return int(d.name[5:]) + (int(d.parent.name[7:]) * per_repeat if d.parent != path else 0)

    found = [d for d in (*path.glob("fold_*"), *path.glob("repeat_*/fold_*"))
             if d.is_dir() and d.name[5:].isdigit() and (d.parent == path or d.parent.name[7:].isdigit())]
    folds: list[Fold] = []
    for d in sorted(found, key=number):
        fold = Fold(index=number(d), path=d, finished=(d / "metrics.json").exists(),
                    has_model=(d / "model.pt").exists(), has_checksum=(d / "model.pt.sha256").exists())
        if fold.finished:
            fold.metrics = _read_json(d / "metrics.json", fold.notes)
            if not fold.has_model:
                fold.notes.append(f"{d / 'model.pt'}: missing, though the fold finished")
            preds = d / "predictions.parquet"
            if preds.exists():
                try:
                    fold.predictions = pl.read_parquet(preds, columns=["video_path", "label", "score"])
                except Exception as exc:  # polars raises several types for a damaged file
                    fold.notes.append(f"{preds}: unreadable ({type(exc).__name__}); curves left out")
            else:
                fold.notes.append(f"{preds}: missing; curves and samples of this fold left out")
        else:
            saved = "a best-so-far model.pt" if fold.has_model else "no model.pt yet"
            fold.notes.append(f"fold {fold.index}: no outputs yet (no metrics.json; {saved}): "
                              "still training, or stopped before the end")
        if (d / "history.json").exists():
            history = _read_json(d / "history.json", fold.notes)
            fold.history = history if isinstance(history, list) else None
        folds.append(fold)
    for k in range(expected):
        if k not in {f.index for f in folds}:
            notes.append(f"fold {k}: not started (no {path / f'fold_{k}'})")
    if not any(f.finished for f in folds):
        notes.append(f"{path}: no finished fold yet; metrics, curves and samples are empty")

    skipped: list[dict[str, Any]] = []
    if (path / "skipped_videos.json").exists():
        loaded = _read_json(path / "skipped_videos.json", notes)
        skipped = loaded if isinstance(loaded, list) else []
    summary = _read_json(path / "summary.json", notes) if (path / "summary.json").exists() else None
    default = f"{config.get('experiment', '?')}/{state.get('model', path.name)}"
    return Run(path=path, label=label or default, config=config, state=state, status=status, folds=folds,
               expected_folds=expected, skipped=skipped, summary=summary, notes=notes)


def read_runs(paths: list[str | Path]) -> list[Run]:
    runs = [read_run(p) for p in paths]
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.label] = seen.get(run.label, 0) + 1
    if any(n > 1 for n in seen.values()):
        # Same experiment and model in several folders: the folder tells them apart.
        for i, run in enumerate(runs):
            run.label = f"{run.label} ({run.path.parent.name or i})" if seen[run.label] > 1 else run.label
        if len({r.label for r in runs}) < len(runs):
            for i, run in enumerate(runs):
                run.label = f"#{i + 1} {run.label}"
    return runs
