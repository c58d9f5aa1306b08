import math

import pytest

from fvc_core.training.metrics import compute_metrics, equal_error_rate, summarize


def test_perfect_and_reversed_scores():
    labels = [0, 0, 1, 1]
    good = compute_metrics(labels, [0.1, 0.2, 0.8, 0.9])
    assert good["accuracy"] == good["f1_score"] == good["roc_auc"] == good["average_precision"] == 1.0
    assert good["eer"] == 0.0
    assert good["confusion_matrix"] == [[2, 0], [0, 2]]
    assert (good["n"], good["n_real"], good["n_fake"], good["threshold"]) == (4, 2, 2, 0.5)
    bad = compute_metrics(labels, [0.9, 0.8, 0.2, 0.1])
    assert bad["roc_auc"] == 0.0 and bad["eer"] == 1.0 and bad["accuracy"] == 0.0


def test_threshold_decides_predictions_not_rank_metrics():
    labels, scores = [0, 0, 1, 1], [0.1, 0.6, 0.7, 0.9]
    at_half = compute_metrics(labels, scores, threshold=0.5)
    at_065 = compute_metrics(labels, scores, threshold=0.65)
    assert at_half["confusion_matrix"] == [[1, 1], [0, 2]] and at_half["precision"] == pytest.approx(2 / 3)
    assert at_065["accuracy"] == 1.0
    assert at_half["roc_auc"] == at_065["roc_auc"] == 1.0


def test_eer_where_false_accepts_meet_false_rejects():
    # One real scores above one fake: at every threshold the two error rates cross at 1/3.
    labels = [0, 0, 0, 1, 1, 1]
    scores = [0.1, 0.2, 0.7, 0.6, 0.8, 0.9]
    assert equal_error_rate(labels, scores) == pytest.approx(1 / 3)


def test_single_class_leaves_rank_metrics_undefined():
    m = compute_metrics([1, 1, 1], [0.2, 0.7, 0.9])
    assert math.isnan(m["roc_auc"]) and math.isnan(m["eer"]) and math.isnan(m["average_precision"])
    assert m["accuracy"] == pytest.approx(2 / 3)


def test_summary_is_mean_and_sample_std():
    mean, std = summarize([{"accuracy": 0.5, "roc_auc": None}, {"accuracy": 1.0, "roc_auc": 0.75}])
    assert mean["accuracy"] == 0.75 and std["accuracy"] == pytest.approx(math.sqrt(0.125))
    assert mean["roc_auc"] == 0.75 and math.isnan(std["roc_auc"])
