"""`fvc report`: one or more run folders -> one self-contained HTML file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fvc_report import plots, render, result
from fvc_report.render import esc, img
from fvc_report.rundata import METRICS, Run, read_runs


def _versions() -> dict[str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("fvc-core", "fvc-loaders", "fvc-naive-cnn", "fvc-report", "torch", "av", "scikit-learn",
                 "matplotlib"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def _protocol(dataset: Any, run: Run) -> dict[str, Any] | None:
    if dataset is None:
        return None
    try:
        return {"model": (run.config.get("model") or {}).get("name"), **dataset.protocol()}
    except Exception:  # protocol() is optional in the contract; the config is shown anyway
        return None


def _sample_cards(samples: list[Any]) -> str:
    cards = []
    for s in samples:
        truth = "fake" if s.label == 1 else "real"
        right = s.predicted == truth
        verdict = (f'<span class="badge {"ok" if right else "bad"}">predicted {s.predicted}</span>')
        picture = (img(plots.frame_strip(s.frames), f"frames of {Path(s.video_path).name}")
                   if s.frames is not None else f'<div class="note">frames not shown: {esc(s.error)}</div>')
        cards.append(f'<div class="sample"><b>{truth}</b> · score {s.score:.3f} · fold {s.fold} {verdict}'
                     f'<div class="path">{esc(s.video_path)}</div>{picture}</div>')
    return f'<div class="samples">{"".join(cards)}</div>' if cards else "<p>none</p>"


def run_sections(run: Run, prefix: str, samples: bool,
                 versions: dict[str, str]) -> tuple[list[str], list[tuple[str, str]]]:
    from fvc_report import samples as sampling

    body: list[str] = []
    dataset = sampling.build_dataset(run) if samples and run.finished_folds else None
    # run.json records what the run was trained with; a run folder from before that falls back to what
    # is installed now, and the header says which.
    recorded = run.state.get("versions")
    protocol = run.state.get("protocol") or _protocol(dataset, run)
    # The result first (issue 32): the headline numbers, ROC, calibration and robustness; provenance after.
    robust = result.read_robustness(run)
    body.append(result.headline(run, prefix, robust))
    body.append(render.metrics_table(run, f"{prefix}metrics"))
    body.append(render.run_header(run, recorded or versions, protocol, f"{prefix}run", recorded=bool(recorded)))
    nav = [(f"{prefix}result", "result"), (f"{prefix}metrics", "metrics"), (f"{prefix}run", "run")]
    folds = run.finished_folds
    if folds:
        body.append(img(plots.metric_bars(run), "accuracy, precision, recall and F1 per fold"))
    body.append(render.frame_level(run, f"{prefix}frames"))
    nav.append((f"{prefix}frames", "frame level"))
    with_preds = [f for f in folds if f.predictions is not None]
    if with_preds:
        curves = [(f"fold {f.index}", f.predictions["label"].to_numpy(), f.predictions["score"].to_numpy())
                  for f in with_preds]
        body.append(render.section(f"{prefix}curves", "ROC and precision-recall curves",
                                   img(plots.roc_pr(curves, " per fold"), "ROC and precision-recall curves per fold"),
                                   "Test predictions of each fold (predictions.parquet), curves from scikit-learn."))
        body.append(render.section(f"{prefix}confusion", "Confusion matrices",
                                   img(plots.confusion_matrices(run), "confusion matrix per fold"),
                                   f"At the run's threshold {run.threshold:g} (metrics.json's confusion_matrix)."))
        pooled = run.pooled_predictions()
        body.append(render.section(f"{prefix}scores", "Score distribution, real vs fake",
                                   img(plots.score_distribution(pooled["label"].to_numpy(), pooled["score"].to_numpy(),
                                                                run.threshold), "score distribution")))
        nav += [(f"{prefix}curves", "curves"), (f"{prefix}confusion", "confusion"), (f"{prefix}scores", "scores")]
    body.append(result.calibration(run, prefix))
    nav.append((f"{prefix}calibration", "calibration"))
    if robust:
        body.append(result.robustness(robust, prefix))
        nav.append((f"{prefix}robustness", "robustness"))
    with_history = [f for f in run.folds if f.history]
    if with_history:
        selection = ((run.config.get("trainer") or {}).get("early_stopping") or {}).get("metric", "val_auc")
        figures = "".join(img(plots.training_curves(f, selection), f"training curves of fold {f.index}")
                          for f in with_history)
        body.append(render.section(f"{prefix}training", "Training curves", figures,
                                   "Per epoch from history.json; the dotted red line is the epoch whose weights "
                                   "model.pt holds (best_epoch)."))
        nav.append((f"{prefix}training", "training"))
    if samples and with_preds:
        chosen, wrong = sampling.pick(run)
        for label, name in ((0, "real"), (1, "fake")):
            if chosen.filter(chosen["label"] == label).is_empty():
                run.notes.append(f"sample videos: no {name} test video was classified right, so none is shown")
        body.append(render.section(
            f"{prefix}samples", "Sample test videos",
            _sample_cards(sampling.load(run, chosen, dataset)),
            "The most confidently right real and fake test videos, frames decoded by the run's dataset plugin."))
        body.append(render.section(
            f"{prefix}mistakes", "Most confident mistakes",
            _sample_cards(sampling.load(run, wrong, dataset)),
            "Test videos on the wrong side of the threshold, farthest from it first."))
        nav += [(f"{prefix}samples", "samples"), (f"{prefix}mistakes", "mistakes")]
    if run.skipped:
        rows = "".join(f'<tr><td class="l mono">{esc(s.get("video_path"))}</td>'
                       f'<td class="l">{esc(s.get("reason"))}</td></tr>' for s in run.skipped)
        body.append(render.section(f"{prefix}skipped", f"Skipped videos ({len(run.skipped)})",
                                   f'<table><tr><th class="l">video</th><th class="l">why</th></tr>{rows}</table>',
                                   "Left out of training and testing under on_bad_video: skip "
                                   "(skipped_videos.json)."))
    else:
        body.append(render.section(f"{prefix}skipped", "Skipped videos", "<p>none</p>"))
    nav.append((f"{prefix}skipped", "skipped"))
    notes = run.notes + [n for f in run.folds for n in f.notes]
    if notes or run.partial:
        head = ([f"partial run: status {run.status}, {len(folds)} of {run.expected_folds} fold(s) finished; "
                 "this report shows what exists"] if run.partial else [])
        body.insert(0, f'<div id="{prefix}notes">' + render.notes_html(head + notes) + "</div>")
    return body, nav


def comparison(runs: list[Run]) -> str:
    means, stds, rows = [], [], []
    for run in runs:
        m, s = {}, {}
        for metric in METRICS:
            m[metric], s[metric] = render.mean_std([f.metrics.get(metric) for f in run.finished_folds])
        means.append(m)
        stds.append(s)
        shown = "".join(f"<td>{render.fmt(m[k])} ± {render.fmt(s[k])}</td>" for k in METRICS)
        rows.append(f'<tr><td class="l">{esc(run.label)}</td><td class="l">{render.status_badge(run)}</td>'
                    f"<td>{len(run.finished_folds)}</td>{shown}</tr>")
    head = "".join(f"<th>{esc(m)}</th>" for m in METRICS)
    table = (f'<table><tr><th class="l">run</th><th class="l">status</th><th>folds</th>{head}</tr>'
             f'{"".join(rows)}</table>')
    curves = []
    for run in runs:
        pooled = run.pooled_predictions()
        if pooled is not None:
            curves.append((run.label, pooled["label"].to_numpy(), pooled["score"].to_numpy()))
    figures = img(plots.comparison_bars([r.label for r in runs], means, stds), "mean test metrics per run")
    if curves:
        figures += img(plots.roc_pr(curves, ", test predictions of all folds"), "ROC and PR curves of each run")
    return render.section("comparison", "Runs side by side", table + figures,
                          "Mean ± std over each run's finished folds; curves pool each run's test predictions "
                          "(every video is tested once, in its own fold).")


def build(paths: list[str | Path], *, samples: bool = True, explain: dict[str, Any] | None = None,
          runs: list[Run] | None = None) -> str:
    """The report's HTML; ``runs``: the runs of ``paths`` already read."""
    runs = runs if runs is not None else read_runs(paths)
    versions = _versions()
    body: list[str] = []
    nav: list[tuple[str, str]] = []
    if len(runs) > 1:
        body.append(comparison(runs))
        nav.append(("comparison", "comparison"))
    for i, run in enumerate(runs):
        prefix = f"r{i}-" if len(runs) > 1 else ""
        part, part_nav = run_sections(run, prefix, samples, versions)
        body += part
        nav += part_nav if len(runs) == 1 else [(f"{prefix}run", run.label)]
    if explain is not None:
        body.append(explain["html"])
        nav.append(("explain", "explain"))
    title = "fvc report: " + ", ".join(r.label for r in runs)
    return render.page(title, body, nav)


def write_report(paths: list[str | Path], output: Path, *, samples: bool = True,
                 explain_video: str | None = None, warn: Callable[[str], None] | None = None) -> Path:
    """``warn``: told one line per partial run (folds missing), before the report is built."""
    render.check_output(output)  # before any work: a refused -o costs nothing
    runs = read_runs(paths)
    for run in runs:
        if warn is not None and (line := run.partial_line()) is not None:
            warn(line)
    explain = None
    if explain_video is not None:
        from fvc_report import explain as explaining

        explain = {"html": explaining.report_section(Path(paths[0]), Path(explain_video))}
    text = build(paths, samples=samples, explain=explain, runs=runs)
    render.write(output, text)
    return output


def summary_line(output: Path) -> str:
    return f"report written to {output} ({output.stat().st_size / 1e6:.1f} MB)"

