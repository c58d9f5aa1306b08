"""Whether a fake score means what it says: calibration metrics and temperature scaling.

Every fold's metrics.json (and every ``fvc evaluate`` block) carries, beside the rank metrics,

- ``ece_15``: expected calibration error of the fake probability over ``ECE_BINS`` = 15 equal-width
  bins of [0, 1] (the last one closed): sum over bins of (videos in bin / videos) x |share of fakes
  in the bin - mean fake score in the bin|, i.e. the gap of the reliability diagram, weighted;
- ``brier``: mean squared error of the fake probability (``sklearn.metrics.brier_score_loss``);
- ``log_loss``: negative log-likelihood of the labels (``sklearn.metrics.log_loss``).

All at video level, all lower-is-better, all defined with one class too (unlike the ROC AUC).

Temperature scaling (``trainer.calibration: temperature``; Guo et al., ICML 2017) divides a video's
logit, log(p / (1 - p)), by one number T > 0 fitted to minimise the log-loss of the fold's
*validation* part, never its test part; T > 0 keeps every ranking and every prediction at a 0.5
threshold, so only the calibration metrics move.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

ECE_BINS = 15
ECE_NAME = f"ece_{ECE_BINS}"
CALIBRATION_METRICS = (ECE_NAME, "brier", "log_loss")
# Scores are clipped this far from 0 and 1 before taking their logit (a float32 sigmoid saturates at 1.0).
_EPS = 1e-7
# T is searched on a log scale within these bounds: beyond them a model's scores are all 0.5 or all 0/1.
T_BOUNDS = (1e-2, 1e2)


def bin_index(probs: np.ndarray, bins: int = ECE_BINS) -> np.ndarray:
    """The equal-width bin of each probability: [0, 1/bins), ..., [(bins-1)/bins, 1] (1.0 in the last)."""
    return np.clip(np.floor(np.asarray(probs, dtype=np.float64) * bins), 0, bins - 1).astype(np.int64)


def reliability_bins(labels: Sequence[int], probs: Sequence[float], bins: int = ECE_BINS) -> dict[str, list[Any]]:
    """Per bin: its edges, how many videos fall in it, their mean fake score and their share of fakes
    (None for an empty bin): the reliability diagram's points."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    index = bin_index(p, bins)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.bincount(index, weights=p, minlength=bins) / count
        fake_share = np.bincount(index, weights=y, minlength=bins) / count
    return {
        "edges": np.linspace(0.0, 1.0, bins + 1).tolist(),
        "count": count.tolist(),
        "mean_score": [None if c == 0 else float(v) for c, v in zip(count, mean_score, strict=True)],
        "fake_share": [None if c == 0 else float(v) for c, v in zip(count, fake_share, strict=True)],
    }


def expected_calibration_error(labels: Sequence[int], probs: Sequence[float], bins: int = ECE_BINS) -> float:
    """ECE of the fake probability over ``bins`` equal-width bins; NaN for no videos."""
    p = np.asarray(probs, dtype=np.float64)
    if len(p) == 0:
        return math.nan
    table = reliability_bins(labels, p, bins)
    gap = sum(c * abs(f - m) for c, f, m in zip(table["count"], table["fake_share"], table["mean_score"], strict=True)
              if c)
    return float(gap / len(p))


def calibration_metrics(labels: Sequence[int], probs: Sequence[float]) -> dict[str, float]:
    """ece_15, brier and log_loss of fake probabilities against labels (0 real, 1 fake); NaN when empty,
    and when the scores are not probabilities (a score outside [0, 1] ranks videos, and AUC and EER
    still hold for it, but no calibration does)."""
    from sklearn.metrics import brier_score_loss, log_loss

    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if len(y) == 0 or not np.all((p >= 0.0) & (p <= 1.0)):
        return dict.fromkeys(CALIBRATION_METRICS, math.nan)
    return {
        ECE_NAME: expected_calibration_error(y, p),
        # pos_label and labels named: a part holding one class only is still scored against both.
        "brier": float(brier_score_loss(y, p, pos_label=1)),
        "log_loss": float(log_loss(y, np.clip(p, _EPS, 1 - _EPS), labels=[0, 1])),
    }


def logit(probs: Sequence[float]) -> np.ndarray:
    p = np.clip(np.asarray(probs, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def apply_temperature(probs: Sequence[float], temperature: float) -> list[float]:
    """Each fake probability with its logit divided by ``temperature``."""
    from scipy.special import expit

    return expit(logit(probs) / temperature).tolist()


def fit_temperature(labels: Sequence[int], probs: Sequence[float]) -> float:
    """The T in ``T_BOUNDS`` minimising the log-loss of ``apply_temperature(probs, T)`` against ``labels``.

    Call it with the validation part's labels and scores only: the test part must never choose
    anything (a test asserts that the test labels cannot move T). 1.0 (no change) for an empty part.
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import expit
    from sklearn.metrics import log_loss

    y = np.asarray(labels, dtype=np.int64)
    z = logit(probs)
    if len(y) == 0:
        return 1.0

    def nll(log_t: float) -> float:
        return float(log_loss(y, np.clip(expit(z / math.exp(log_t)), _EPS, 1 - _EPS), labels=[0, 1]))

    low, high = (math.log(b) for b in T_BOUNDS)
    found = minimize_scalar(nll, bounds=(low, high), method="bounded", options={"xatol": 1e-6})
    return float(math.exp(found.x))
