"""The report as one self-contained HTML file: inline CSS, images as base64 PNG data URIs, no script
and no network reference, so it opens from disk anywhere (a mail attachment, an air-gapped box).
"""

from __future__ import annotations

import base64
import html
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from fvc_core.contract import OutputKind, write_output
from fvc_core.contract import check_output as check_output_file
from fvc_report.rundata import METRICS, Run

# Written right after the doctype: how reports written before output records existed are recognised.
MARKER = "<!-- fvc-report: written by `fvc report`; fvc may overwrite this file -->"

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:1em 2em;
color:#1d232b;background:#fff;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #d7dde5;padding-bottom:.2em;margin-top:1.6em}
h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #d7dde5;padding:.25em .6em;text-align:right}
th{background:#f1f4f8}td.l,th.l{text-align:left}
tr.mean td{font-weight:600;background:#f7f9fb}
.badge{display:inline-block;padding:.05em .5em;border-radius:.6em;font-size:.85em;font-weight:600}
.ok{background:#dff3e4;color:#11632a}.warn{background:#fff1d6;color:#7a4d00}.bad{background:#fde2e1;color:#8a1c17}
.note{background:#fff8e6;border-left:4px solid #f0b429;padding:.3em .8em;margin:.3em 0;font-size:.9em}
img{max-width:100%;height:auto;display:block;margin:.3em 0}
.samples{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:.8em}
.sample{border:1px solid #d7dde5;border-radius:6px;padding:.4em .6em;font-size:.85em}
.sample .path{color:#5a6672;word-break:break-all}
details pre{background:#f7f9fb;padding:.6em;font-size:.8em;overflow:auto;max-height:30em}
nav a{margin-right:1em}
.mono{font-family:ui-monospace,monospace;font-size:.85em}
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def img(data: bytes, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">'


def fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return esc(value)


def cell(value: Any) -> str:
    """A number cell: the rounded value shown, the exact one kept in data-value (tests compare it)."""
    exact = "" if value is None else f' data-value="{esc(json.dumps(value))}"'
    return f"<td{exact}>{fmt(value)}</td>"


def mean_std(values: list[Any]) -> tuple[float | None, float | None]:
    """Mean and sample std (ddof=1, as summary.json) of the defined values."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return None, None
    return float(np.mean(xs)), (float(np.std(xs, ddof=1)) if len(xs) > 1 else None)


def status_badge(run: Run) -> str:
    kind = "ok" if run.status == "finished" and not run.partial else ("bad" if run.status == "failed" else "warn")
    text = run.status + (" · partial" if run.partial else "")
    return f'<span class="badge {kind}">{esc(text)}</span>'


def _earlier_report(path: Path) -> bool:
    """A report written before fvc kept records beside its outputs: it starts with ``MARKER``."""
    try:
        with open(path, "rb") as fh:
            return MARKER in fh.read(4096).decode("utf-8", errors="replace")
    except OSError:
        return False


REPORT = OutputKind("report", "an fvc report", legacy=_earlier_report)
"""``fvc report -o``: replaces only an earlier report (``fvc_core/output_file.py``)."""


def check_output(path: Path) -> None:
    """Refuse, before any work, a path ``write`` would refuse: anything but an earlier fvc report."""
    check_output_file(path, REPORT)


def write(path: Path, text: str) -> None:
    """Written whole or not at all, and only over an earlier report (``fvc_core/output_file.py``)."""
    write_output(path, text, REPORT)


def page(title: str, body: list[str], nav: list[tuple[str, str]]) -> str:
    links = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in nav)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return ("<!DOCTYPE html>\n" + MARKER + "\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{esc(title)}</h1><p class=\"mono\">written {stamp} by fvc report</p><nav>{links}</nav>"
            + "\n".join(body) + "</body></html>\n")


def run_header(run: Run, versions: dict[str, str], protocol: dict[str, Any] | None, anchor: str,
               recorded: bool = False) -> str:
    import yaml

    finished = len(run.finished_folds)
    rows = [("folder", f'<span class="mono">{esc(run.path.resolve())}</span>'),
            ("experiment", esc(run.config.get("experiment", "?"))),
            ("model", esc((run.config.get("model") or {}).get("name", "?"))),
            ("dataset", esc((run.config.get("data") or {}).get("name", "?"))),
            ("status", status_badge(run)),
            ("folds finished", f"{finished} of {run.expected_folds or len(run.folds)}"),
            ("run id", f'<span class="mono">{esc(run.state.get("run_id", "?"))}</span>'),
            ("config hash", f'<span class="mono">{esc(run.state.get("config_hash", "?"))}</span>'),
            ("started / ended", f"{esc(run.state.get('started', '?'))} / {esc(run.state.get('ended', '–'))}"),
            ("threshold", fmt(run.threshold))]
    info = "".join(f'<tr><th class="l">{k}</th><td class="l">{v}</td></tr>' for k, v in rows)
    fold_rows = []
    for f in run.folds:
        ckpt = ('<span class="badge ok">model.pt</span>' if f.has_model and f.has_checksum else
                '<span class="badge warn">model.pt, no checksum record</span>' if f.has_model else
                '<span class="badge bad">no model.pt</span>')
        state = ('<span class="badge ok">finished</span>' if f.finished else
                 '<span class="badge warn">no outputs yet</span>')
        best = (f.metrics or {}).get("best_epoch")
        fold_rows.append(f'<tr><td class="l">fold {f.index}</td><td class="l">{state}</td><td class="l">{ckpt}</td>'
                         f"<td>{fmt(best)}</td><td>{fmt((f.metrics or {}).get('n'))}</td></tr>")
    folds = ('<table id="folds-found"><tr><th class="l">fold</th><th class="l">state</th><th class="l">checkpoint</th>'
             f"<th>chosen epoch</th><th>test videos</th></tr>{''.join(fold_rows)}</table>")
    proto = ""
    if protocol:
        proto = ("<h3>protocol (how a clip is made)</h3><table>" + "".join(
            f'<tr><th class="l">{esc(k)}</th><td class="l">{"&mdash;" if v is None else esc(v)}</td></tr>'
            for k, v in protocol.items())
            + "</table>")
    source = ("Recorded by the run when it started (run.json):" if recorded else
              "Installed when this report was written (this run folder does not record the versions it was "
              "trained with):")
    vers = (f"<h3>versions</h3><p>{source}</p><table>" + "".join(
                f'<tr><th class="l">{esc(k)}</th><td class="l">{esc(v)}</td></tr>' for k, v in versions.items())
            + "</table>")
    config = esc(yaml.safe_dump(run.config, sort_keys=False))
    return (f'<h2 id="{anchor}">Run: {esc(run.label)}</h2><table>{info}</table>'
            f"<h3>folds found and their checkpoints</h3>{folds}{proto}{vers}"
            f"<details><summary>config.yaml (resolved)</summary><pre>{config}</pre></details>")


def metrics_table(run: Run, anchor: str) -> str:
    head = "".join(f"<th>{esc(m)}</th>" for m in METRICS)
    rows = []
    for f in run.finished_folds:
        rows.append(f'<tr data-fold="{f.index}"><td class="l">fold {f.index}</td>'
                    + "".join(cell(f.metrics.get(m)) for m in METRICS) + f"<td>{fmt(f.metrics.get('n'))}</td></tr>")
    means = [mean_std([f.metrics.get(m) for f in run.finished_folds]) for m in METRICS]
    rows.append('<tr class="mean" data-fold="mean"><td class="l">mean</td>' + "".join(cell(m) for m, _ in means)
                + "<td></td></tr>")
    rows.append('<tr class="mean" data-fold="std"><td class="l">std</td>' + "".join(cell(s) for _, s in means)
                + "<td></td></tr>")
    shown = "".join(f"<td>{fmt(m)} ± {fmt(s)}</td>" for m, s in means)
    rows.append(f'<tr class="mean"><td class="l">mean ± std</td>{shown}<td></td></tr>')
    return (f'<h2 id="{anchor}">Test metrics</h2><p>Per fold from <span class="mono">fold_k/metrics.json</span>; '
            "mean and sample std (ddof=1) over the finished folds.</p>"
            f'<table class="metrics"><tr><th class="l">fold</th>{head}<th>n</th></tr>{"".join(rows)}</table>')


def section(anchor: str, title: str, inner: str, intro: str = "") -> str:
    return f'<h2 id="{anchor}">{esc(title)}</h2>' + (f"<p>{intro}</p>" if intro else "") + inner


def notes_html(lines: list[str]) -> str:
    return "".join(f'<div class="note">{esc(n)}</div>' for n in lines)


def _aggregation_text(recorded: dict[str, Any]) -> str:
    name = recorded.get("name", "?")
    text = f'<span class="mono">{esc(name)}</span>'
    if recorded.get("how"):
        text += f": {esc(recorded['how'])}"
    if name == "topk" and recorded.get("top_k") is not None:
        text += f' (<span class="mono">top_k</span> = {esc(recorded["top_k"])})'
    return text


def frame_level(run: Run, anchor: str) -> str:
    """Per fold the frame-level ROC AUC beside the video-level one, and the aggregation that made the
    video scores from the frames' (metrics.json's ``frame_roc_auc``, ``n_frames``, ``aggregation``)."""
    folds = run.finished_folds
    title = "Frame level"
    if not folds:
        return section(anchor, title, "<p>No finished fold yet.</p>")
    recorded = [f.metrics.get("aggregation") for f in folds]
    kinds = list({json.dumps(a, sort_keys=True): a for a in recorded if isinstance(a, dict)}.values())
    if all(f.metrics.get("frame_roc_auc") is None for f in folds):
        if any("frame_roc_auc" in f.metrics for f in folds) or any("frame_scores" in a for a in kinds):
            names = ", ".join(sorted({str(a.get("name")) for a in kinds})) or "mean_logits"
            why = ("The model gave no frame logits (it has no <span class=\"mono\">frame_logits(x)</span> "
                   "method), so there is no frame-level ROC AUC and nothing to aggregate: each video's score is "
                   f'the model\'s own video output (aggregation recorded: <span class="mono">{esc(names)}</span>).')
        else:
            why = ("This run's metrics.json records no frame-level numbers (it was made before fvc recorded "
                   "them); its video scores are the model's own video output.")
        return section(anchor, title, f'<p class="no-frames">{why}</p>')
    if not kinds:
        # Runs from before the record scored every video with the model's own video logits.
        how = ('not recorded (this run predates the record): <span class="mono">mean_logits</span>, '
               "the model's own video logits")
    elif len(kinds) == 1:
        how = _aggregation_text(kinds[0])
    else:  # one run has one aggregation; folds that disagree were trained by different configs
        how = "differs between folds: " + "; ".join(
            f"fold {f.index}: {_aggregation_text(a)}" for f, a in zip(folds, recorded, strict=True)
            if isinstance(a, dict))
    intro = f"<p>Video scores made from the frames' scores by {how}.</p>"
    rows = []
    for f in folds:
        rows.append(f'<tr data-frame-fold="{f.index}"><td class="l">fold {f.index}</td>'
                    f"{cell(f.metrics.get('roc_auc'))}{cell(f.metrics.get('frame_roc_auc'))}"
                    f"<td>{fmt(f.metrics.get('n'))}</td><td>{fmt(f.metrics.get('n_frames'))}</td></tr>")
    for label, pick in (("mean", 0), ("std", 1)):
        video = mean_std([f.metrics.get("roc_auc") for f in folds])[pick]
        frame = mean_std([f.metrics.get("frame_roc_auc") for f in folds])[pick]
        rows.append(f'<tr class="mean" data-frame-fold="{label}"><td class="l">{label}</td>{cell(video)}'
                    f"{cell(frame)}<td></td><td></td></tr>")
    table = ('<table class="frames"><tr><th class="l">fold</th><th>video ROC AUC</th><th>frame ROC AUC</th>'
             f'<th>videos</th><th>frames</th></tr>{"".join(rows)}</table>')
    one_class = any(isinstance(v := f.metrics.get("frame_roc_auc"), float) and math.isnan(v) for f in folds)
    note = ("<p>Frame ROC AUC: every test frame's fake probability against its video's label, all frames "
            "of the fold pooled" + ("; – where a fold's test frames hold one class only" if one_class else "")
            + ".</p>")
    return section(anchor, title, intro + table + note)
