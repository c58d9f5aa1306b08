"""From fvc's config and metrics to MLflow's flat string params and metric names."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from fvc_core.contract import test_metric_name

# MLflow's limits (mlflow.utils.validation); longer values are cut rather than refused.
MAX_PARAM_VALUE = 6000
MAX_KEY = 250



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
            out[test_metric_name(key)] = number
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
