"""What a run leaves on disk: per fold metrics.json, predictions.parquet, history.json;
per run summary.json and skipped_videos.json; and the summary table on the terminal.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

from fvc_core.atomic import write_atomic
from fvc_core.errors import UserError, is_disk_full
from fvc_core.tracking.events import FoldResult, RunInfo, RunSummary
from fvc_core.training.calibration import CALIBRATION_METRICS
from fvc_core.training.config import SCORE_METRICS
from fvc_core.training.metrics import summarize

# Numbers a FoldResult carries to trackers (metrics.json also has the confusion matrix and threshold).
RESULT_KEYS = (*SCORE_METRICS, *CALIBRATION_METRICS, "n", "n_real", "n_fake")
# Only from a model that gives frame scores: no column of NaN for one that does not.
FRAME_KEYS = ("frame_roc_auc", "n_frames")
# Only with trainer.calibration: temperature: the fitted T and the calibration before it.
TEMPERATURE_KEYS = ("temperature", *(f"uncalibrated_{k}" for k in CALIBRATION_METRICS))


def plain(value: Any) -> Any:
    """JSON-ready: NaN and infinities become null (strict JSON has neither), paths become str."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def disk_full(exc: BaseException) -> bool:
    """A full disk anywhere in the exception's chain: torch.save reports one as 'basic_ios::clear', then
    raises another error ('unexpected pos') while closing its archive, which hides the first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, Exception) and is_disk_full(current):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def write_json(path: Path, data: Any) -> None:
    text = json.dumps(plain(data), indent=2) + "\n"
    write_atomic(path, text)


class RecordError(UserError):
    """A record fvc wrote (metrics.json, history.json, ...) that no longer reads back; names the file."""


def read_json(path: Path, way_out: str = "") -> Any:
    """The JSON in ``path``; a file cut short or otherwise not JSON is one line naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        reason = f"cut short or damaged: {exc}" if isinstance(exc, json.JSONDecodeError) else "not text"
        raise RecordError(f"{path}: not valid JSON ({reason}){'; ' + way_out if way_out else ''}") from None


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def fold_paths(fold_dir: Path) -> dict[str, Path]:
    names = ("model.pt", "metrics.json", "predictions.parquet", "history.json", "split.parquet")
    return {name: fold_dir / name for name in names}


def write_predictions(path: Path, video_paths: list[str], labels: list[int], scores: list[float],
                      fold: int, frame_scores: list[list[float]] | None = None,
                      uncalibrated: list[float] | None = None, calibration: str = "none") -> None:
    """One row per video (keyed by its full path); ``frame_scores``: its frames' fake probabilities,
    when the model gives them, so the frame-level AUC of metrics.json can be recomputed from here.
    ``uncalibrated``: the model's own scores where ``scores`` went through ``calibration`` (a
    ``calibration`` column then names it, e.g. ``temperature 1.83``)."""
    data: dict[str, Any] = {"video_path": video_paths, "label": labels, "score": scores,
                            "fold": [fold] * len(video_paths)}
    schema: dict[str, Any] = {"video_path": pl.String, "label": pl.Int64, "score": pl.Float64, "fold": pl.Int64}
    if uncalibrated is not None:
        data["score_uncalibrated"], schema["score_uncalibrated"] = uncalibrated, pl.Float64
        data["calibration"], schema["calibration"] = [calibration] * len(video_paths), pl.String
    if frame_scores is not None:
        data["frame_scores"], schema["frame_scores"] = frame_scores, pl.List(pl.Float64)
    write_atomic(path, pl.DataFrame(data, schema=schema).write_parquet)


def scoring_record(labels: list[int], frame_scores: list[list[float]] | None, aggregation: Any, model: Any,
                   run: RunInfo) -> dict[str, Any]:
    """What metrics.json holds beside the video-level numbers: the frame-level AUC, how the video
    scores were aggregated, and the run's protocol (data, split, clips, preprocessing)."""
    from fvc_core.training.metrics import frame_metrics

    return {**frame_metrics(labels, frame_scores), "aggregation": aggregation.describe(model),
            "protocol": run.protocol}


def fold_result(fold: int, fold_dir: Path, metrics: dict[str, Any], history: list[dict[str, Any]],
                best_epoch: int | None, repeat: int = 0, fold_in_repeat: int | None = None) -> FoldResult:
    paths = fold_paths(fold_dir)
    return FoldResult(
        repeat=repeat,
        fold_in_repeat=fold if fold_in_repeat is None else fold_in_repeat,
        fold=fold,
        metrics={k: _float(metrics.get(k)) for k in RESULT_KEYS}
        | {k: _float(metrics[k]) for k in (*FRAME_KEYS, *TEMPERATURE_KEYS) if metrics.get(k) is not None},
        fold_dir=fold_dir,
        predictions_path=paths["predictions.parquet"],
        history=history,
        artifacts={k: p for k, p in paths.items() if p.exists()},
        best_epoch=best_epoch,
    )


def read_finished_fold(fold: int, fold_dir: Path, table_fingerprint: str | None = None) -> FoldResult | None:
    """A fold whose metrics.json is on disk is finished (it is written last); None otherwise.

    Its records must read back, and (given ``table_fingerprint``) must come from the same data
    table as this run's: anything else is one line naming the file and the way out.
    """
    paths = fold_paths(fold_dir)
    if not paths["metrics.json"].exists():
        return None
    way_out = f"delete {fold_dir} to train fold {fold} again, or run with --fresh to start the whole run over"
    metrics = read_json(paths["metrics.json"], way_out)
    history = read_json(paths["history.json"], way_out) if paths["history.json"].exists() else []
    if not isinstance(metrics, dict) or not isinstance(history, list) or \
            not all(isinstance(row, dict) for row in history):
        raise RecordError(f"{fold_dir}: metrics.json or history.json does not hold what fvc writes there; {way_out}")
    if table_fingerprint is not None and metrics.get("table_fingerprint") != table_fingerprint:
        raise RecordError(f"{paths['metrics.json']}: fold {fold} was trained on another data table than the one "
                          "the dataset gives now; use --fresh or another output_dir")
    try:
        history = [{k: _float(v) for k, v in row.items()} for row in history]
    except (TypeError, ValueError):
        raise RecordError(f"{paths['history.json']}: holds a value that is not a number; {way_out}") from None
    return fold_result(fold, fold_dir, metrics, history, metrics.get("best_epoch"))


CI_METHOD = ("95 % interval of the mean over repeats x folds, Student's t with the Nadeau-Bengio "
             "correction for overlapping training parts: variance (1/n + n_test/n_train) * s^2")


def write_summary(run: RunInfo, results: list[FoldResult], skipped: list[dict[str, str]], repeats: int = 1,
                  test_train_ratio: float = math.nan) -> RunSummary:
    """summary.json. With ``repeats`` > 1 each fold names its repeat, and a 95 % confidence interval of
    each test metric over all repeats x folds is added; with 1 the file is what it always was."""
    from fvc_core.training.metrics import confidence_interval

    names = SCORE_METRICS + CALIBRATION_METRICS + (("frame_roc_auc",) if any("frame_roc_auc" in r.metrics
                                                                             for r in results) else ())
    names += tuple(k for k in TEMPERATURE_KEYS if any(k in r.metrics for r in results))
    mean, std = summarize([r.metrics for r in results], names)
    path = Path(run.run_dir) / "summary.json"
    data: dict[str, Any] = {
        "experiment": run.experiment,
        "run_id": run.run_id,
        "model": run.model_name,
        "config_hash": run.config_hash,
        "folds": [{"fold": r.fold, "best_epoch": r.best_epoch, **r.metrics} for r in results],
        "mean": mean,
        "std": std,
        "skipped_videos": skipped,
        "aggregation": _aggregation(results),
        "protocol": run.protocol,
    }
    ci95: dict[str, tuple[float, float]] = {}
    if repeats > 1:
        ci95 = {name: confidence_interval([r.metrics.get(name) for r in results], test_train_ratio)
                for name in SCORE_METRICS}
        data["folds"] = [{"repeat": r.repeat, "fold": r.fold, "fold_in_repeat": r.fold_in_repeat,
                          "best_epoch": r.best_epoch, **r.metrics} for r in results]
        data.update(repeats=repeats, n_folds=len(results), ci95={k: list(v) for k, v in ci95.items()},
                    ci95_method=CI_METHOD)
    write_json(path, data)
    return RunSummary(run=run, folds=results, mean=mean, std=std, summary_path=path, skipped_videos=skipped,
                      repeats=repeats, ci95=ci95)


def _aggregation(results: list[FoldResult]) -> Any:
    """The folds' aggregation as their metrics.json records it (one run, one aggregation)."""
    for result in results:
        path = result.artifacts.get("metrics.json")
        if path is not None and Path(path).is_file():
            return read_json(Path(path)).get("aggregation")
    return None


def _cell(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def print_summary(console: Console, summary: RunSummary) -> None:
    if summary.repeats > 1:
        _print_repeated(console, summary)
    else:
        _print_folds(console, summary)
    _print_skipped(console, summary)


def _print_repeated(console: Console, summary: RunSummary) -> None:
    """One column per repeat (the mean of its folds), then mean ± std and the 95 % interval over all folds."""
    per_fold = len(summary.folds) // summary.repeats
    table = Table(title=f"{summary.run.experiment}: {summary.run.model_name}, {summary.repeats} repeats x "
                        f"{per_fold} folds")
    table.add_column("metric")
    for r in range(summary.repeats):
        table.add_column(f"repeat {r}", justify="right")
    table.add_column(f"mean ± std ({len(summary.folds)} folds)", justify="right", style="bold")
    table.add_column("95 % CI", justify="right", style="bold")
    for name in SCORE_METRICS:
        row = []
        for r in range(summary.repeats):
            mean_r, _ = summarize([f.metrics for f in summary.folds if f.repeat == r])
            row.append(_cell(mean_r[name]))
        mean, std = summary.mean[name], summary.std[name]
        row.append(f"{_cell(mean)} ± {_cell(std)}" if not math.isnan(std) else _cell(mean))
        low, high = summary.ci95.get(name, (math.nan, math.nan))
        row.append(f"[{_cell(low)}, {_cell(high)}]" if not math.isnan(low) else "-")
        table.add_row(name, *row)
    console.print(table)
    console.print("95 % CI: Student's t over all folds, widened for their overlapping training parts "
                  "(Nadeau-Bengio)", highlight=False)


def _print_folds(console: Console, summary: RunSummary) -> None:
    table = Table(title=f"{summary.run.experiment}: {summary.run.model_name}, {len(summary.folds)} folds")
    table.add_column("metric")
    for r in summary.folds:
        table.add_column(f"fold {r.fold}", justify="right")
    table.add_column("mean ± std", justify="right", style="bold")
    for name in SCORE_METRICS:
        row = [_cell(r.metrics.get(name, math.nan)) for r in summary.folds]
        mean, std = summary.mean[name], summary.std[name]
        row.append(f"{_cell(mean)} ± {_cell(std)}" if not math.isnan(std) else _cell(mean))
        table.add_row(name, *row)
    console.print(table)


def _print_skipped(console: Console, summary: RunSummary) -> None:
    if summary.skipped_videos:
        console.print(f"[yellow]{len(summary.skipped_videos)} video(s) skipped[/] (on_bad_video: skip), "
                      f"listed in {Path(summary.run.run_dir) / 'skipped_videos.json'}:")
        for item in summary.skipped_videos[:10]:
            console.print(f"  {item['video_path']}: {item['reason']}")
        if len(summary.skipped_videos) > 10:
            console.print(f"  ... and {len(summary.skipped_videos) - 10} more")
    if summary.summary_path:
        console.print(f"summary: {summary.summary_path}")
