"""The EER against an independent computation, where the two error rates cross between ROC points."""

from __future__ import annotations

import numpy as np
import pytest

from fvc_core.training.metrics import compute_metrics, equal_error_rate


def eer_by_geometry(labels: np.ndarray, scores: np.ndarray) -> float:
    """Where the (fpr, fnr) curve, drawn as straight segments between thresholds, meets fnr = fpr.

    Written from the definition with numpy alone (every distinct score a threshold, no library
    ROC), so it shares no code with the implementation under test.
    """
    thresholds = np.r_[np.inf, np.sort(np.unique(scores))[::-1]]
    pos, neg = labels == 1, labels == 0
    fpr = np.array([(scores[neg] >= t).mean() for t in thresholds])
    fnr = np.array([1.0 - (scores[pos] >= t).mean() for t in thresholds])
    for i in range(1, len(thresholds)):
        d0, d1 = fnr[i - 1] - fpr[i - 1], fnr[i] - fpr[i]
        if d0 >= 0 >= d1:
            t = d0 / (d0 - d1) if d0 != d1 else 0.0
            return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))
    raise AssertionError("the error rates never cross")


def test_eer_inside_a_roc_segment_by_hand():
    # Reals 0.1 0.2 0.5, fakes 0.5 0.5 0.9. At threshold 0.9: fpr 0, fnr 2/3; at 0.5 (a real and two
    # fakes tie): fpr 1/3, fnr 0. On that segment fnr = 2/3 - 2 fpr, which equals fpr at 2/9: neither
    # end point's fpr (0, 1/3) nor fnr (2/3, 0) nor their mean.
    labels = [0, 0, 0, 1, 1, 1]
    scores = [0.1, 0.2, 0.5, 0.5, 0.5, 0.9]
    assert equal_error_rate(labels, scores) == pytest.approx(2 / 9, abs=1e-12)


@pytest.mark.parametrize("decimals", [None, 1])
@pytest.mark.parametrize("seed", range(10))
def test_eer_matches_the_geometric_crossing_on_random_scores(seed, decimals):
    # Rounded scores tie across classes, so the curve has slanted segments for the crossing to fall in.
    rng = np.random.default_rng(seed)
    labels = np.array([0] * 9 + [1] * 7)
    scores = rng.random(16) + 0.2 * labels
    if decimals is not None:
        scores = np.round(scores, decimals)
    expected = eer_by_geometry(labels, scores)
    assert equal_error_rate(labels, scores) == pytest.approx(expected, abs=1e-12)
    assert compute_metrics(labels, scores)["eer"] == pytest.approx(expected, abs=1e-12)
