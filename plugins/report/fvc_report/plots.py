"""The report's figures, drawn with matplotlib's Agg backend (no display) and returned as PNG bytes.

Curves come from scikit-learn (roc_curve, precision_recall_curve), the same library that computed
the run's metrics, so a curve and its number agree.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: a report is drawn on servers without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fvc_report.rundata import Fold, Run  # noqa: E402

BAR_METRICS = ("accuracy", "precision", "recall", "f1_score")
DPI = 90


def png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _two_classes(labels: np.ndarray) -> bool:
    return len(np.unique(labels)) == 2


def metric_bars(run: Run) -> bytes:
    """The notebook's accuracy / precision / recall / F1 bars: one bar per fold, and the mean ± std."""
    folds = run.finished_folds
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    width = 0.8 / (len(folds) + 1)
    x = np.arange(len(BAR_METRICS))
    for i, fold in enumerate(folds):
        values = [fold.metrics.get(m) or 0.0 for m in BAR_METRICS]
        ax.bar(x + i * width, values, width, label=f"fold {fold.index}", alpha=0.8)
    if folds:
        table = np.array([[f.metrics.get(m) or 0.0 for m in BAR_METRICS] for f in folds], dtype=float)
        std = table.std(axis=0, ddof=1) if len(folds) > 1 else np.zeros(len(BAR_METRICS))
        ax.bar(x + len(folds) * width, table.mean(axis=0), width, yerr=std, capsize=3, color="black",
               alpha=0.75, label="mean ± std")
    ax.set_xticks(x + width * len(folds) / 2, [m.replace("_score", "") for m in BAR_METRICS])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test")
    # Outside the axes: inside, it hid the bars it explains.
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return png(fig)


def roc_pr(curves: list[tuple[str, np.ndarray, np.ndarray]], title_suffix: str = "") -> bytes:
    """ROC and precision-recall curves, one line per (name, labels, scores)."""
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.8))
    for name, labels, scores in curves:
        if not _two_classes(labels):
            continue
        fpr, tpr, _ = roc_curve(labels, scores)
        a.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
        precision, recall, _ = precision_recall_curve(labels, scores)
        b.plot(recall, precision, label=name, drawstyle="steps-post")
    a.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    a.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC{title_suffix}",
          xlim=(0, 1), ylim=(0, 1.02))
    b.set(xlabel="recall (fake)", ylabel="precision (fake)", title=f"precision-recall{title_suffix}",
          xlim=(0, 1), ylim=(0, 1.02))
    for ax in (a, b):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="lower right" if ax is a else "lower left")
    fig.tight_layout()
    return png(fig)


def confusion_matrices(run: Run) -> bytes:
    folds = [f for f in run.finished_folds if f.metrics.get("confusion_matrix")]
    n = max(len(folds), 1)
    fig, axes = plt.subplots(1, n, figsize=(2.4 * n + 0.4, 2.6), squeeze=False)
    for ax, fold in zip(axes[0], folds, strict=False):
        cm = np.asarray(fold.metrics["confusion_matrix"], dtype=int)
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(int(cm.max()), 1))
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center",
                    color="white" if v > cm.max() / 2 else "black", fontsize=11)
        ax.set_xticks([0, 1], ["real", "fake"])
        ax.set_yticks([0, 1], ["real", "fake"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"fold {fold.index}", fontsize=9)
    fig.tight_layout()
    return png(fig)


def score_distribution(labels: np.ndarray, scores: np.ndarray, threshold: float) -> bytes:
    fig, ax = plt.subplots(figsize=(7, 3))
    bins = np.linspace(0, 1, 26)
    ax.hist(scores[labels == 0], bins=bins, alpha=0.6, label=f"real (n={int((labels == 0).sum())})", color="tab:blue")
    ax.hist(scores[labels == 1], bins=bins, alpha=0.6, label=f"fake (n={int((labels == 1).sum())})", color="tab:red")
    ax.axvline(threshold, color="black", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax.set(xlabel="fake score (test, all folds)", ylabel="videos")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return png(fig)


def training_curves(fold: Fold, selection: str) -> bytes:
    """Train/validation loss, the selection metric and the learning rate over epochs; the chosen
    epoch (metrics.json's best_epoch) marked on each panel."""
    history = fold.history or []
    epochs = [row.get("epoch") for row in history]

    def series(key: str) -> list[float]:
        return [np.nan if row.get(key) is None else float(row[key]) for row in history]

    fig, axes = plt.subplots(1, 3, figsize=(10, 2.8))
    axes[0].plot(epochs, series("train_loss"), marker=".", label="train loss")
    axes[0].plot(epochs, series("val_loss"), marker=".", label="val loss")
    axes[0].set_title("loss", fontsize=9)
    axes[1].plot(epochs, series(selection), marker=".", color="tab:green", label=selection)
    axes[1].set_title(f"selection metric: {selection}", fontsize=9)
    axes[2].plot(epochs, series("lr"), marker=".", color="tab:purple", label="lr")
    if any(row.get("lr_backbone") is not None for row in history):
        axes[2].plot(epochs, series("lr_backbone"), marker=".", color="tab:brown", label="backbone lr")
    axes[2].set_title("learning rate", fontsize=9)
    axes[2].ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    best = (fold.metrics or {}).get("best_epoch")
    for ax in axes:
        if best is not None:
            ax.axvline(best, color="red", ls=":", lw=1.2, label=f"chosen epoch {best}")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"fold {fold.index}", fontsize=10)
    fig.tight_layout()
    return png(fig)


def comparison_bars(names: list[str], means: list[dict[str, float]], stds: list[dict[str, float]]) -> bytes:
    metrics = ("accuracy", "precision", "recall", "f1_score", "roc_auc", "average_precision")
    fig, ax = plt.subplots(figsize=(8.5, 3.4))
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(metrics))
    for i, name in enumerate(names):
        ax.bar(x + i * width, [means[i].get(m) or 0.0 for m in metrics], width,
               yerr=[stds[i].get(m) or 0.0 for m in metrics], capsize=3, label=name)
    ax.set_xticks(x + width * (len(names) - 1) / 2, [m.replace("_score", "").replace("average_", "avg ")
                                                      for m in metrics])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test, mean ± std over folds")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return png(fig)


def frame_strip(frames: np.ndarray) -> bytes:
    """A row of frames (k, H, W, 3) uint8, no axes."""
    k = len(frames)
    fig, axes = plt.subplots(1, k, figsize=(1.3 * k, 1.4), squeeze=False)
    for ax, frame in zip(axes[0], frames, strict=True):
        ax.imshow(frame)
        ax.axis("off")
    fig.subplots_adjust(wspace=0.04, left=0, right=1, top=1, bottom=0)
    return png(fig)
