"""PNG plots of a fold and of a run, drawn with matplotlib's Agg canvas.

Figures are built with ``matplotlib.figure.Figure`` rather than pyplot: no global
figure state, no GUI backend, nothing left open when a training loop calls us.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=80)
    return path


def roc_plot(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], path: Path, title: str) -> Path:
    """One ROC curve per entry (name -> labels, scores); entries with a single class are listed as such."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    for name, (labels, scores) in curves.items():
        y = np.asarray(labels)
        if len(np.unique(y)) < 2:
            ax.plot([], [], " ", label=f"{name}: one class only, no ROC")
            continue
        fpr, tpr, _ = roc_curve(y, scores)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, scores):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate (real called fake)", ylabel="true positive rate (fake caught)",
           xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.legend(loc="lower right", fontsize="small")
    fig.subplots_adjust(left=0.14, right=0.96, bottom=0.11, top=0.93)
    return _save(fig, path)


def confusion_plot(matrix: Sequence[Sequence[int]], path: Path, title: str) -> Path:
    """2x2 counts, rows = true class, columns = predicted class (0 real, 1 fake)."""
    counts = np.asarray(matrix, dtype=np.int64)
    fig = Figure(figsize=(4, 4))
    ax = fig.add_subplot()
    ax.imshow(counts, cmap="Blues")
    names = ["real", "fake"]
    ax.set_xticks([0, 1], names)
    ax.set_yticks([0, 1], names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    high = counts.max() if counts.size else 0
    for (row, col), value in np.ndenumerate(counts):
        ax.text(col, row, str(value), ha="center", va="center",
                color="white" if value > high / 2 else "black")
    fig.subplots_adjust(left=0.16, right=0.96, bottom=0.12, top=0.9)
    return _save(fig, path)


def history_plot(history: Sequence[Mapping[str, float]], path: Path, title: str) -> Path:
    """Losses on the left, validation scores on the right, against the epoch (lr is a metric of its own)."""
    epochs = [h.get("epoch", i) for i, h in enumerate(history)]
    fig = Figure(figsize=(9, 4))
    losses, scores = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)

    def series(ax, keys: Sequence[str]) -> None:
        for key in keys:
            ys = [h.get(key) for h in history]
            if any(y is not None for y in ys):
                ax.plot(epochs, [np.nan if y is None else y for y in ys], marker=".", label=key)
        if ax.lines:
            ax.legend(fontsize="small", loc="upper right")

    series(losses, ["train_loss", "val_loss"])
    series(scores, ["val_acc", "val_auc", "val_f1", "val_ap"])
    losses.set(title="loss", xlabel="epoch")
    scores.set(title="validation", xlabel="epoch")
    fig.suptitle(title)
    # Fixed margins: tight_layout measures every label and costs more than drawing the figure.
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.83, wspace=0.2)
    return _save(fig, path)
