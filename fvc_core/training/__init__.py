"""The standard ``supervised`` trainer: k-fold cross-validation, checkpoints, resume, scoring.

Importing this package is cheap (no torch); the heavy modules load when used.
``load_fold_model`` and ``score_videos`` are the API for using a trained run.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_fold_model", "score_videos"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from fvc_core.training import predict

        return getattr(predict, name)
    raise AttributeError(name)
