"""The names of the metrics a run reports, shared by the trainer, the trackers and sweeps' ranking.

Here, below all three, so that ranking a sweep or storing a fold's numbers does not import the trainer.
"""

from __future__ import annotations

# A fold's test metrics (metrics.json), and those computed on its validation part every epoch
# (fvc_core.training.metrics computes both).
SCORE_METRICS = ("accuracy", "precision", "recall", "f1_score", "roc_auc", "average_precision", "eer")
VAL_METRICS = ("val_loss", "val_acc", "val_precision", "val_recall", "val_f1", "val_auc", "val_ap", "val_eer")
# Lower is better for these; everything else is maximised when early_stopping.mode is auto.
LOWER_IS_BETTER = ("val_loss", "val_eer")

# Test metrics under the names the seed's notebook and queries use (test_f1, test_auc...), so
# every tracker reports them alike: ``SELECT fold, AVG(test_f1) ... FROM results``.
TEST_METRIC_NAMES = {
    "accuracy": "test_accuracy",
    "precision": "test_precision",
    "recall": "test_recall",
    "f1_score": "test_f1",
    "roc_auc": "test_auc",
    "average_precision": "test_ap",
    "eer": "test_eer",
}


def test_metric_name(key: str) -> str:
    """The tracked name of a test metric from metrics.json: ``f1_score`` -> ``test_f1``."""
    return TEST_METRIC_NAMES.get(key, key if key.startswith("test_") else f"test_{key}")
