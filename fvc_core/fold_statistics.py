"""Statistics over the folds of a cross-validation, shared by the trainer's summary and a sweep's ranking.

Below both, so that ranking a sweep's points does not import the trainer. numpy and scipy load when called.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def confidence_interval(values: Sequence[float], test_train_ratio: float,
                        level: float = 0.95, clip: bool = True) -> tuple[float, float]:
    """Interval of the mean of per-fold metrics over repeated k-fold CV (NaN folds left out), clipped
    to [0, 1] unless ``clip`` is False (a loss). The trainer's summary of repeats uses it, and ``fvc sweep``'s
    seeds (fvc_core.sweeps.ranking).

    The folds' training parts overlap, so their scores are correlated and the textbook t interval
    (variance / n) is far too narrow; Nadeau and Bengio's correction (Machine Learning 52, 2003)
    widens the variance to (1/n + n_test/n_train) * s^2, with Student's t at n - 1 degrees of freedom.
    """
    import numpy as np
    from scipy import stats

    x = np.asarray([_num(v) for v in values], dtype=np.float64)
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return math.nan, math.nan
    mean = float(x.mean())
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1)) * math.sqrt(
        (1 / len(x) + test_train_ratio) * float(x.var(ddof=1)))
    if not clip:
        return mean - half, mean + half
    # Every score metric lives in [0, 1]: an interval reaching past it says no more than the bound does.
    return max(0.0, mean - half), min(1.0, mean + half)
