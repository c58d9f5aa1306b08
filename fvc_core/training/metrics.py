"""Video- and frame-level detection metrics, all from scikit-learn, in one place.

``metrics.json`` is ``compute_metrics(labels, scores)`` of a fold's predictions.parquet,
so every number in it can be recomputed from that file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from fvc_core.fold_statistics import confidence_interval  # noqa: F401 (the trainer's summary uses it from here)
from fvc_core.training.calibration import calibration_metrics
from fvc_core.training.config import SCORE_METRICS

# Names of the per-epoch validation metrics in history.json (and early_stopping.metric).
VAL_NAMES = {
    "accuracy": "val_acc",
    "precision": "val_precision",
    "recall": "val_recall",
    "f1_score": "val_f1",
    "roc_auc": "val_auc",
    "average_precision": "val_ap",
    "eer": "val_eer",
}


def equal_error_rate(labels: Sequence[int], scores: Sequence[float]) -> float:
    """The error rate where false accepts equal false rejects, interpolated on the ROC curve."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1.0 - tpr
    diff = fnr - fpr  # falls from >=0 to <=0 along the curve
    cross = int(np.argmax(diff <= 0))
    if cross == 0:
        return float(fpr[0])
    # Linear interpolation between the two ROC points around the crossing.
    d0, d1 = diff[cross - 1], diff[cross]
    t = d0 / (d0 - d1) if d0 != d1 else 0.0
    return float(fpr[cross - 1] + t * (fpr[cross] - fpr[cross - 1]))


def compute_metrics(labels: Sequence[int], scores: Sequence[float], threshold: float = 0.5) -> dict[str, Any]:
    """accuracy, precision, recall, f1_score, roc_auc, average_precision, eer of the fake class (1),
    and the calibration of its score (ece_15, brier, log_loss; ``fvc_core.training.calibration``).

    Rank metrics (roc_auc, average_precision, eer) are NaN when only one class is present.
    """
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        confusion_matrix,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    pred = (s >= threshold).astype(np.int64)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, pred, average="binary", pos_label=1, zero_division=0
    )
    both = len(np.unique(y)) == 2
    out: dict[str, Any] = {
        "accuracy": float(accuracy_score(y, pred)) if len(y) else math.nan,
        "precision": float(precision),
        "recall": float(recall),
        "f1_score": float(f1),
        "roc_auc": float(roc_auc_score(y, s)) if both else math.nan,
        "average_precision": float(average_precision_score(y, s)) if both else math.nan,
        "eer": equal_error_rate(y, s) if both else math.nan,
        "confusion_matrix": confusion_matrix(y, pred, labels=[0, 1]).tolist(),
        "n": int(len(y)),
        "n_real": int((y == 0).sum()),
        "n_fake": int((y == 1).sum()),
        "threshold": float(threshold),
    }
    # ece_15, brier, log_loss: whether the score is a probability one can act on (training.calibration).
    out.update(calibration_metrics(y, s))
    return out


def validation_metrics(labels: Sequence[int], scores: Sequence[float], threshold: float) -> dict[str, float]:
    """The score metrics under their history.json names (val_acc, val_auc, ...)."""
    m = compute_metrics(labels, scores, threshold)
    return {VAL_NAMES[k]: m[k] for k in SCORE_METRICS}


def frame_metrics(labels: Sequence[int], frame_scores: Sequence[Sequence[float]] | None) -> dict[str, Any]:
    """Frame-level ROC AUC: every frame's fake probability against its video's label, all frames
    pooled (each video weighs as many frames as it has). None when the model gives no frame scores."""
    from sklearn.metrics import roc_auc_score

    if frame_scores is None:
        return {"frame_roc_auc": None, "n_frames": None}
    y = np.concatenate([np.full(len(f), lab, dtype=np.int64) for lab, f in zip(labels, frame_scores, strict=True)]
                       or [np.zeros(0, dtype=np.int64)])
    s = np.concatenate([np.asarray(f, dtype=np.float64) for f in frame_scores] or [np.zeros(0)])
    auc = float(roc_auc_score(y, s)) if len(np.unique(y)) == 2 else math.nan
    return {"frame_roc_auc": auc, "n_frames": int(len(y))}


def summarize(per_fold: list[dict[str, Any]],
              names: Sequence[str] = SCORE_METRICS) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and sample standard deviation (ddof=1, like SQL STDDEV) of each metric across folds."""
    mean: dict[str, float] = {}
    std: dict[str, float] = {}
    for name in names:
        values = np.array([_num(m.get(name)) for m in per_fold], dtype=np.float64)
        values = values[~np.isnan(values)]
        mean[name] = float(values.mean()) if len(values) else math.nan
        std[name] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    return mean, std


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)
