"""From fvc's config and metrics to MLflow's flat string params and metric names."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

# MLflow's limits (mlflow.utils.validation); longer values are cut rather than refused.
MAX_PARAM_VALUE = 6000
MAX_KEY = 250

# Test metrics under the names the seed's notebook and queries use (test_f1, test_auc...).
TEST_NAMES = {
    "accuracy": "test_accuracy",
    "precision": "test_precision",
    "recall": "test_recall",
    "f1_score": "test_f1",
    "roc_auc": "test_auc",
    "average_precision": "test_ap",
    "eer": "test_eer",
}


def as_test_metric(key: str) -> str:
    return TEST_NAMES.get(key, key if key.startswith("test_") else f"test_{key}")


def numeric(value: Any) -> float | None:
    """The value as a float, or None for what is not a number (lists such as a confusion matrix)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def as_test_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """A fold's metrics.json, numbers only, under test_* names."""
    out = {}
    for key, value in metrics.items():
        number = numeric(value)
        if number is not None:
            out[as_test_metric(key)] = number
    return out


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> {"trainer.early_stopping.patience": "5", ...}; lists as JSON."""
    out: dict[str, str] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted + "."))
            continue
        if isinstance(value, str):
            text = value
        elif isinstance(value, float) and math.isfinite(value):
            text = repr(value)
        else:
            text = json.dumps(value, default=str)
        out[dotted[:MAX_KEY]] = text[:MAX_PARAM_VALUE]
    return out
