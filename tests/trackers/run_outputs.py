"""A run's outputs on disk, written the way the supervised trainer writes them, and its tracker events.

The trackers read these files (predictions.parquet, metrics.json, history.json,
model.pt), so they are real files, written by the trainer's own functions
(``fvc_core.training.outputs``): metrics are ``compute_metrics`` of the written
predictions, model.pt comes from ``torch.save``.
"""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

from fvc_core.tracking import FoldResult, RunInfo, RunSummary, Tracker
from fvc_core.training import outputs
from fvc_core.training.metrics import compute_metrics

CONFIG = {
    "experiment": "tracker_test",
    "seed": 7,
    "data": {"name": "metadata", "num_frames": 8, "size": 32},
    "model": {"name": "naive_cnn", "chunk_size": 4},
    "trainer": {"name": "supervised", "folds": 2, "epochs": 3, "lr": 5.0e-4,
                "early_stopping": {"patience": 5, "metric": "val_auc"}},
    "trackers": ["mlflow", "duckdb"],
}
PROTOCOL = {"model": "naive_cnn", "frames_per_video": 8, "size": 32, "sampler": "uniform",
            "aggregation": "mean_logit"}


def make_run(output_dir: Path, *, run_id: str | None = None, resumed: bool = False, folds: int = 2,
             experiment: str = "tracker_test", model: str = "naive_cnn") -> RunInfo:
    run_dir = Path(output_dir) / model
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {**CONFIG, "experiment": experiment, "output_dir": str(output_dir)}
    (run_dir / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
    (run_dir / "run.json").write_text(json.dumps({"run_id": run_id, "status": "running"}))
    return RunInfo(
        experiment=experiment,
        run_id=run_id or uuid.uuid4().hex,
        config=config,
        config_hash="0123456789abcdef",
        model_name=model,
        run_dir=run_dir,
        folds=folds,
        protocol=dict(PROTOCOL),
        versions={"fvc-core": "0.1.0", "python": "3.11"},
        resumed=resumed,
    )


def epoch_metrics(fold: int, epoch: int) -> dict[str, float]:
    return {"epoch": epoch, "train_loss": 0.7 - 0.1 * epoch - 0.01 * fold, "val_loss": 0.72 - 0.05 * epoch,
            "val_acc": 0.5 + 0.1 * epoch, "val_auc": 0.55 + 0.1 * epoch, "lr": 5e-4 / (epoch + 1)}


def make_fold(run: RunInfo, fold: int, *, epochs: int = 3, videos: int = 12, checkpoint: bool = True) -> FoldResult:
    """Write fold_<k>/ as the trainer does and return what it reports to trackers."""
    fold_dir = run.run_dir / f"fold_{fold}"
    fold_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(fold)
    labels = [i % 2 for i in range(videos)]
    scores = [min(1.0, max(0.0, 0.35 * y + 0.3 + rng.uniform(-0.3, 0.3))) for y in labels]
    paths = outputs.fold_paths(fold_dir)
    outputs.write_predictions(paths["predictions.parquet"], [f"/videos/fold{fold}/v{i:03d}.mp4" for i in
                                                             range(videos)], labels, scores, fold)
    history = [epoch_metrics(fold, e) for e in range(epochs)]
    outputs.write_json(paths["history.json"], history)
    if checkpoint:
        import torch

        torch.save({"model_state_dict": {"w": torch.zeros(2, 2)}}, paths["model.pt"])
    metrics = compute_metrics(labels, scores)
    metrics.update(fold=fold, best_epoch=epochs - 1)
    outputs.write_json(paths["metrics.json"], metrics)
    return outputs.fold_result(fold, fold_dir, metrics, history, epochs - 1)


def run_fold(tracker: Tracker, run: RunInfo, fold: int, *, epochs: int = 3, first_epoch: int = 0,
             checkpoint: bool = True) -> FoldResult:
    """The events of one fold: an epoch at a time, then the fold's end."""
    for epoch in range(first_epoch, epochs):
        tracker.log_epoch(fold, epoch, epoch_metrics(fold, epoch), step=epoch)
    result = make_fold(run, fold, epochs=epochs, checkpoint=checkpoint)
    tracker.end_fold(result)
    return result


def summary_of(run: RunInfo, results: list[FoldResult]) -> RunSummary:
    return outputs.write_summary(run, results, [])


def full_run(tracker: Tracker, run: RunInfo, *, epochs: int = 3, checkpoint: bool = True) -> RunSummary:
    tracker.start_run(run)
    results = [run_fold(tracker, run, fold, epochs=epochs, checkpoint=checkpoint) for fold in range(run.folds)]
    summary = summary_of(run, results)
    tracker.end_run(summary)
    return summary
