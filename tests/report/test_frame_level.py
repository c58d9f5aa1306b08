"""The report's frame-level part, on real tiny runs: per fold the frame ROC AUC beside the video ROC AUC
and the aggregation that made the video scores (with top_k); a model without frame logits is said so."""

from __future__ import annotations

import json
import os
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.builders import DROP, ENV, FVC, fvc, tiny_experiment, tiny_videos, write_distribution
from tests.trainer.helpers import TINY_MODEL_PLUGIN

ROOT = Path(__file__).resolve().parents[2]

class FrameRows(HTMLParser):
    """The frame-level table's rows (data-frame-fold) with each number cell's exact data-value, and the
    text of the section."""

    def __init__(self, text: str):
        super().__init__()
        self.rows: dict[str, list[str | None]] = {}
        self._row: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self._row = attrs.get("data-frame-fold")
            if self._row is not None:
                self.rows[self._row] = []
        elif tag == "td" and self._row is not None:
            self.rows[self._row].append(attrs.get("data-value"))


def section_text(html: str, anchor: str = "frames") -> str:
    """The visible text of one section: from its heading to the next one, tags dropped."""
    start = html.index(f'<h2 id="{anchor}">')
    end = html.find("<h2", start + 1)
    part = html[start:end if end > 0 else None]

    class Text(HTMLParser):
        chunks: list[str] = []

        def handle_starttag(self, tag, attrs):
            if tag in ("p", "tr", "td", "th", "h2", "table"):  # what a browser shows apart
                self.chunks.append(" ")

        def handle_data(self, data):
            self.chunks.append(data)

    reader = Text()
    reader.chunks = []
    reader.feed(part)
    return " ".join("".join(reader.chunks).split())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two runs on one table: naive_cnn scored by topk (top_k 2), and a model that gives no frame logits."""
    pytest.importorskip("fvc_loaders")
    pytest.importorskip("fvc_naive_cnn")
    root = tmp_path_factory.mktemp("frame_level")
    table = tiny_videos(root / "videos", seed=4)
    site = root / "site"
    site.mkdir()
    write_distribution(site, "fvctest-noframes", {"fvctest_noframes": TINY_MODEL_PLUGIN},
                       {"noframes": "fvctest_noframes"})
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    out = {}
    for name, model, trainer in (("topk", {"name": "naive_cnn", "chunk_size": 2}, {"aggregation": "topk", "top_k": 2}),
                                 ("noframes", {"name": "tiny_cnn", "chunk_size": DROP}, {})):
        path = tiny_experiment(root, table, file=f"{name}.yaml", experiment=name, seed=2,
                               output_dir=str(root / name), model=model, trainer=trainer)
        done = subprocess.run([*FVC, "run", str(path)], capture_output=True, text=True, env=env, timeout=600,
                              cwd=ROOT)
        assert done.returncode == 0, done.stdout + done.stderr
        out[name] = root / name / model["name"]
    return out


def report(run: Path, tmp_path: Path) -> str:
    out = tmp_path / f"{run.parent.name}.html"
    done = fvc("report", str(run), "-o", str(out), "--no-samples")
    assert done.returncode == 0, done.stdout + done.stderr
    return out.read_text()


def shown(html: str, row: str) -> list[float | None]:
    return [json.loads(v) if v is not None else None for v in FrameRows(html).rows[row][1:3]]


def test_each_folds_frame_auc_is_beside_its_video_auc_with_the_aggregation(tiny_run, tmp_path):
    html = report(tiny_run, tmp_path)
    assert '<a href="#frames">frame level</a>' in html
    for k in (0, 1):
        metrics = json.loads((tiny_run / f"fold_{k}/metrics.json").read_text())
        assert metrics["frame_roc_auc"] is not None  # naive_cnn gives frame logits
        assert shown(html, str(k)) == [metrics["roc_auc"], metrics["frame_roc_auc"]]
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert shown(html, "mean") == pytest.approx([summary["mean"]["roc_auc"], summary["mean"]["frame_roc_auc"]])
    text = section_text(html)
    assert "Video scores made from the frames' scores by mean_logits: fake probability of the mean" in text
    assert "top_k" not in text and "None" not in text
    for k in (0, 1):  # what the reader sees: fold, video AUC, frame AUC, videos, frames
        m = json.loads((tiny_run / f"fold_{k}/metrics.json").read_text())
        assert f"fold {k} {m['roc_auc']:.4f} {m['frame_roc_auc']:.4f} {m['n']} {m['n_frames']} " in text


def test_topk_names_its_k(runs, tmp_path):
    html = report(runs["topk"], tmp_path)
    text = section_text(html)
    assert "by topk: mean of the top_k largest frame fake probabilities (top_k = 2)" in text
    for k in (0, 1):
        metrics = json.loads((runs["topk"] / f"fold_{k}/metrics.json").read_text())
        assert metrics["aggregation"]["top_k"] == 2
        assert shown(html, str(k)) == [metrics["roc_auc"], metrics["frame_roc_auc"]]


def test_a_model_without_frame_logits_is_said_so_not_an_empty_table(runs, tmp_path):
    metrics = json.loads((runs["noframes"] / "fold_0/metrics.json").read_text())
    assert metrics["frame_roc_auc"] is None  # what the run recorded: no frame scores
    html = report(runs["noframes"], tmp_path)
    text = section_text(html)
    assert text.startswith("Frame level The model gave no frame logits")
    assert "mean_logits" in text
    assert FrameRows(html).rows == {} and "None" not in text and "frame ROC AUC" not in text
