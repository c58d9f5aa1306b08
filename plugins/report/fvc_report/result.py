"""The report's first screen, the result: the headline numbers with their interval, the ROC, calibration
and robustness at a glance; and the fuller calibration and robustness sections further down.

- headline: mean ± std over the finished folds and a 95 % interval of the mean, for the rank metrics
  and the calibration metrics (summary.json's ``ci95`` for repeated cross-validation, else the same
  corrected Student's t over the folds: variance (1/n + n_test/n_train) s², Nadeau and Bengio, with
  n_test/n_train from the folds' split.parquet);
- reliability diagram: pooled test predictions in 15 equal-width bins (scikit-learn's
  ``calibration_curve``), the share of fakes against the mean fake score, the bins' counts below;
- robustness: every ``eval/<NAME>/robustness.json`` of ``fvc evaluate --perturb``, ROC AUC of the folds'
  mean score per perturbation and level beside the clean score, and AUC against level.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from fvc_report import plots
from fvc_report.render import cell, esc, fmt, img, mean_std, section
from fvc_report.rundata import Run

HEADLINE = ("roc_auc", "eer", "accuracy", "average_precision", "ece_15", "brier", "log_loss")
LOWER_IS_BETTER = {"eer", "ece_15", "brier", "log_loss"}
BINS = 15


def _ratio(run: Run) -> float | None:
    """Mean n_test / n_train over the finished folds (their split.parquet), None where unknown."""
    import polars as pl

    ratios = []
    for fold in run.finished_folds:
        split = fold.path / "split.parquet"
        if not split.is_file():
            continue
        try:
            parts = pl.read_parquet(split, columns=["part"])["part"].value_counts()
        except Exception:  # another trainer's split file: no interval rather than a wrong one
            continue
        counts = dict(parts.iter_rows())
        if counts.get("train"):
            ratios.append(counts.get("test", 0) / counts["train"])
    return float(np.mean(ratios)) if ratios else None


def interval(run: Run, metric: str, ratio: float | None) -> tuple[float | None, float | None]:
    """The 95 % interval of the mean of ``metric`` over folds (see the module's docstring)."""
    recorded = ((run.summary or {}).get("ci95") or {}).get(metric)
    if isinstance(recorded, list) and len(recorded) == 2 and None not in recorded:
        return float(recorded[0]), float(recorded[1])
    from scipy import stats

    values = [float(v) for f in run.finished_folds if (v := f.metrics.get(metric)) is not None
              and math.isfinite(float(v))]
    if len(values) < 2 or ratio is None:
        return None, None
    x = np.asarray(values)
    half = float(stats.t.ppf(0.975, len(x) - 1)) * math.sqrt((1 / len(x) + ratio) * float(x.var(ddof=1)))
    low, high = float(x.mean()) - half, float(x.mean()) + half
    return (max(0.0, low), high) if metric == "log_loss" else (max(0.0, low), min(1.0, high))


def headline(run: Run, prefix: str, robustness: list[dict[str, Any]]) -> str:
    """The first screen: the numbers, the ROC, calibration and robustness at a glance."""
    folds = run.finished_folds
    if not folds:
        return section(f"{prefix}result", "Result", "<p>No finished fold yet: nothing to report.</p>")
    ratio = _ratio(run)
    rows = []
    for metric in HEADLINE:
        values = [f.metrics.get(metric) for f in folds]
        if all(v is None for v in values):
            continue
        mean, std = mean_std(values)
        low, high = interval(run, metric, ratio)
        better = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
        rows.append(f'<tr data-headline="{esc(metric)}"><td class="l">{esc(metric)}</td>{cell(mean)}'
                    f"<td>{fmt(std)}</td><td>{'–' if low is None else f'[{low:.4f}, {high:.4f}]'}</td>"
                    f'<td class="l">{better}</td></tr>')
    table = ('<table class="headline"><tr><th class="l">test metric</th><th>mean</th><th>std</th>'
             f'<th>95 % interval of the mean</th><th class="l"></th></tr>{"".join(rows)}</table>')
    how = (f"Mean over {len(folds)} finished fold(s) of each fold's test videos; the interval is "
           + ("summary.json's (repeated cross-validation)" if (run.summary or {}).get("ci95") else
              "Student's t over the folds, widened for their overlapping training parts (Nadeau-Bengio)")
           + ". Provenance (run, protocol, versions, config) follows the figures below.")
    figures = ""
    with_preds = [f for f in folds if f.predictions is not None]
    if with_preds:
        curves = [(f"fold {f.index}", f.predictions["label"].to_numpy(), f.predictions["score"].to_numpy())
                  for f in with_preds]
        figures += img(plots.roc_pr(curves, " per fold"), "ROC and precision-recall curves per fold")
        pooled = run.pooled_predictions()
        figures += img(reliability_plot(pooled["label"].to_numpy(), pooled["score"].to_numpy(),
                                        _calibration_note(run)), "reliability diagram of the test predictions")
    if robustness:
        figures += img(robustness_plot(robustness), "ROC AUC against perturbation level")
    return section(f"{prefix}result", "Result", table + figures, how)


def _calibration_note(run: Run) -> str:
    methods = {json.dumps((f.metrics.get("calibration") or {}).get("method", "none")) for f in run.finished_folds}
    return "temperature-scaled scores" if methods == {'"temperature"'} else "the model's scores"


def reliability_plot(labels: np.ndarray, scores: np.ndarray, what: str) -> bytes:
    """Share of fakes against mean fake score in 15 equal-width bins (scikit-learn), and the bins' counts."""
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve

    fig, (a, b) = plt.subplots(2, 1, figsize=(4.6, 4.6), height_ratios=(3, 1), sharex=True)
    a.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="perfectly calibrated")
    if len(labels):
        share, mean = calibration_curve(labels, scores, n_bins=BINS, strategy="uniform")
        a.plot(mean, share, marker="o", label=what)
    counts, edges = np.histogram(scores, bins=np.linspace(0, 1, BINS + 1))
    b.bar(edges[:-1], counts, width=1 / BINS, align="edge", color="#8aa4c8", edgecolor="white")
    a.set(ylabel="share of fakes", title=f"reliability ({BINS} bins)", xlim=(0, 1), ylim=(0, 1.02))
    b.set(xlabel="fake score", ylabel="videos")
    a.grid(alpha=0.3)
    a.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return plots.png(fig)


def calibration(run: Run, prefix: str) -> str:
    """Per fold: ECE, Brier and log-loss of the scores used, and before temperature scaling where it was fitted."""
    folds = run.finished_folds
    if not folds:
        return section(f"{prefix}calibration", "Calibration", "<p>No finished fold yet.</p>")
    if all(f.metrics.get("ece_15") is None for f in folds):
        return section(f"{prefix}calibration", "Calibration",
                       "<p>This run's metrics.json records no calibration (made before fvc measured it).</p>")
    scaled = any("temperature" in f.metrics for f in folds)
    head = "<th>ECE (15 bins)</th><th>Brier</th><th>log-loss</th>"
    if scaled:
        head += "<th>temperature</th><th>ECE before</th><th>Brier before</th><th>log-loss before</th>"
    rows = []
    for f in folds:
        m = f.metrics
        extra = "".join(cell(m.get(k)) for k in ("temperature", "uncalibrated_ece_15", "uncalibrated_brier",
                                                  "uncalibrated_log_loss")) if scaled else ""
        rows.append(f'<tr data-calibration-fold="{f.index}"><td class="l">fold {f.index}</td>{cell(m.get("ece_15"))}'
                    f'{cell(m.get("brier"))}{cell(m.get("log_loss"))}{extra}</tr>')
    intro = ("Expected calibration error over 15 equal-width bins of the fake score, Brier score and log-loss of "
             "each fold's test videos (metrics.json)" +
             ("; temperature scaling was fitted on each fold's validation part, never its test part, and the "
              "numbers before it are beside" if scaled else "; no temperature scaling (trainer.calibration: none)")
             + ".")
    table = f'<table class="calibration"><tr><th class="l">fold</th>{head}</tr>{"".join(rows)}</table>'
    return section(f"{prefix}calibration", "Calibration", table, intro)


def read_robustness(run: Run) -> list[dict[str, Any]]:
    """Every eval/<NAME>/robustness.json of the run (``fvc evaluate --perturb``), by table name."""
    found = []
    for path in sorted(Path(run.path).glob("eval/*/robustness.json")):
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError):
            run.notes.append(f"{path}: not valid JSON; its robustness grid is left out")
            continue
        if isinstance(document, dict) and isinstance(document.get("rows"), list):
            found.append(document)
    return found


def _mean_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in document["rows"] if r.get("scored_by") == "mean"]


def robustness(documents: list[dict[str, Any]], prefix: str) -> str:
    """Per table: ROC AUC (and ECE) of the folds' mean score per perturbation and level, the clean score first."""
    parts = []
    for document in documents:
        rows = _mean_rows(document)
        clean = next((r for r in rows if r["perturbation"] == "none"), None)
        levels = sorted({r["level"] for r in rows if r["perturbation"] != "none"})
        head = "".join(f"<th>level {lv}</th>" for lv in levels)
        body = [f'<tr data-robust="none"><td class="l">clean</td>{cell(clean["roc_auc"])}'
                + "<td></td>" * (len(levels) - 1) + "</tr>"] if clean else []
        for name in dict.fromkeys(r["perturbation"] for r in rows if r["perturbation"] != "none"):
            by_level = {r["level"]: r for r in rows if r["perturbation"] == name}
            body.append(f'<tr data-robust="{esc(name)}"><td class="l">{esc(name)}</td>'
                        + "".join(cell(by_level[lv]["roc_auc"]) if lv in by_level else "<td></td>" for lv in levels)
                        + "</tr>")
        parts.append(f"<h3>{esc(document.get('table'))}</h3>"
                     f'<table class="robustness"><tr><th class="l">perturbation</th>{head}</tr>{"".join(body)}</table>')
    intro = ("ROC AUC of the folds' mean score on each evaluated table, clean and under each perturbation level "
             "(<span class=\"mono\">fvc evaluate --perturb</span>; every fold's numbers and the calibration metrics "
             "are in <span class=\"mono\">eval/NAME/robustness.parquet</span>).")
    figure = img(robustness_plot(documents), "ROC AUC against perturbation level")
    return section(f"{prefix}robustness", "Robustness", "".join(parts) + figure, intro)


def robustness_plot(documents: list[dict[str, Any]]) -> bytes:
    """ROC AUC against level, one line per (table, perturbation); the clean score as a dashed line."""
    import matplotlib.pyplot as plt

    # Constrained layout makes room for the legend beside the axes; tight_layout warned and gave up there.
    fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
    for document in documents:
        rows = _mean_rows(document)
        clean = next((r for r in rows if r["perturbation"] == "none"), None)
        if clean and clean["roc_auc"] is not None:
            ax.axhline(clean["roc_auc"], color="grey", ls="--", lw=0.8)
            # x in axes fraction: at a data x of 0.1 the label sat far left of a plot of level 1 alone,
            # and the saved picture stretched to hold it (a plot 12 times as wide as high).
            ax.text(0.01, clean["roc_auc"], f"{document.get('table')} clean", fontsize=7, va="bottom",
                    color="grey", transform=ax.get_yaxis_transform())
        for name in dict.fromkeys(r["perturbation"] for r in rows if r["perturbation"] != "none"):
            points = sorted((r["level"], r["roc_auc"]) for r in rows if r["perturbation"] == name
                            and r["roc_auc"] is not None)
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                        label=name if len(documents) == 1 else f"{document.get('table')}: {name}")
    ax.set(xlabel="perturbation level", ylabel="ROC AUC", ylim=(0, 1.02), title="ROC AUC against damage")
    levels = sorted({line_x for line in ax.get_lines() for line_x in line.get_xdata()
                     if line.get_linestyle() != "--"})
    if levels:  # whole levels only, and a plot of one level is not squeezed to 0.95-1.05
        ax.set_xticks(levels)
        ax.set_xlim(min(levels) - 0.5, max(levels) + 0.5)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return plots.png(fig)
