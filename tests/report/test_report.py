"""`fvc report` on a real tiny run: one self-contained file, every section, the run's own numbers."""

from __future__ import annotations

import base64
import io
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from PIL import Image

from tests.builders import fvc

METRICS = ("accuracy", "precision", "recall", "f1_score", "roc_auc", "average_precision", "eer")
SECTIONS = ("run", "folds-found", "metrics", "curves", "confusion", "scores", "training", "samples", "mistakes",
            "skipped")


class Page(HTMLParser):
    """Every tag with its attributes, and the table cells of the metrics table by row."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: dict[str, list[str | None]] = {}
        self._row: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "tr":
            self._row = attrs.get("data-fold")
            if self._row is not None:
                self.rows[self._row] = []
        elif tag == "td" and self._row is not None:
            self.rows[self._row].append(attrs.get("data-value"))

    def ids(self) -> set[str]:
        return {a["id"] for _, a in self.tags if a.get("id")}

    def images(self) -> list[str]:
        return [a["src"] for t, a in self.tags if t == "img"]


@pytest.fixture(scope="module")
def report(tiny_run, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("report") / "report.html"
    done = fvc("report", str(tiny_run), "-o", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    return out, out.read_text()


def test_the_report_is_one_self_contained_file(report):
    out, text = report
    page = Page(text)
    # -o is the only thing written, with fvc's record of it (what lets a later report replace it)
    assert sorted(p.name for p in out.parent.iterdir()) == [".report.html.fvc-owned", "report.html"]
    for tag, attrs in page.tags:
        for key in ("src", "href"):
            if key not in attrs:
                continue
            value = attrs[key] or ""
            assert not value.startswith(("http:", "https:", "//")), f"<{tag} {key}={value}> reaches the network"
            if key == "href":
                assert value.startswith("#"), f"<{tag} href={value}> leaves the file"
    assert "<script" not in text and "<link" not in text
    assert "url(" not in text  # no CSS fetching fonts or images
    images = page.images()
    assert len(images) >= 10
    for src in images:  # every picture is an embedded PNG that decodes
        assert src.startswith("data:image/png;base64,")
        Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).verify()


def test_the_report_has_every_section(report, tiny_run):
    _, text = report
    assert set(SECTIONS) <= Page(text).ids()
    assert "broken.mp4" in text  # the skipped video, with its reason
    skipped = json.loads((tiny_run / "skipped_videos.json").read_text())
    assert skipped[0]["reason"].split(":")[0] in text
    alts = {a.get("alt") for t, a in Page(text).tags if t == "img"}
    assert {"training curves of fold 0", "training curves of fold 1"} <= alts


def test_the_metrics_table_holds_the_runs_numbers(report, tiny_run):
    _, text = report
    rows = Page(text).rows
    for k in (0, 1):
        metrics = json.loads((tiny_run / f"fold_{k}/metrics.json").read_text())
        shown = [json.loads(v) if v is not None else None for v in rows[str(k)][1:1 + len(METRICS)]]
        assert shown == [metrics[m] for m in METRICS]
    summary = json.loads((tiny_run / "summary.json").read_text())
    for row, key in (("mean", "mean"), ("std", "std")):
        shown = [json.loads(v) if v is not None else None for v in rows[row][1:1 + len(METRICS)]]
        assert shown == pytest.approx([summary[key][m] for m in METRICS], abs=1e-12)


def test_an_existing_file_that_is_not_a_report_is_never_overwritten(report, tiny_run, tmp_path):
    mine = tmp_path / "notes.html"
    mine.write_text("<html>my own notes</html>")
    done = fvc("report", str(tiny_run), "-o", str(mine))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "not an fvc report" in done.stderr and str(mine) in done.stderr
    assert mine.read_text() == "<html>my own notes</html>"
    earlier = tmp_path / "earlier.html"
    shutil.copy(report[0], earlier)
    again = fvc("report", str(tiny_run), "-o", str(earlier))
    assert again.returncode == 0, again.stderr
    # no temporary left; the earlier report (recognised by its marker) now has fvc's record beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == [".earlier.html.fvc-owned", "earlier.html", "notes.html"]


def test_a_folder_that_is_not_a_run_is_one_line(tiny_run, tmp_path):
    done = fvc("report", str(tiny_run.parent), "-o", str(tmp_path / "r.html"))
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "not an fvc run folder" in done.stderr
    assert str(tiny_run) in done.stderr  # the output_dir given: the run inside it is named
    missing = fvc("report", str(tmp_path / "nowhere"), "-o", str(tmp_path / "r.html"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no such run folder" in missing.stderr
    assert not (tmp_path / "r.html").exists()


def test_a_run_still_going_is_reported_as_partial(tiny_run, tmp_path):
    # A copy in the state of a run killed while fold 1 trained: run.json says running, fold 1 has a
    # best-so-far model.pt and history but no metrics.json or predictions.
    run = tmp_path / "out/naive_cnn"
    shutil.copytree(tiny_run, run)
    state = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**state, "status": "running"}))
    for name in ("metrics.json", "predictions.parquet", "summary.json"):
        (run / "fold_1" / name).unlink(missing_ok=True)
    (run / "summary.json").unlink()
    before = sorted(str(p.relative_to(run)) for p in run.rglob("*"))
    out = tmp_path / "partial.html"
    done = fvc("report", str(run), "-o", str(out))
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "partial run" in text and "stopped while running" in text
    assert "fold 1: no outputs yet (no metrics.json; a best-so-far model.pt)" in text
    rows = Page(text).rows
    assert set(rows) == {"0", "mean", "std"}  # only the finished fold is measured
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*")) == before  # nothing written into the run


def test_two_runs_side_by_side(tiny_run, tmp_path):
    other = tmp_path / "other/naive_cnn"
    shutil.copytree(tiny_run, other)
    out = tmp_path / "both.html"
    done = fvc("report", str(tiny_run), str(other), "-o", str(out), "--no-samples")
    assert done.returncode == 0, done.stderr
    ids = Page(out.read_text()).ids()
    assert {"comparison", "r0-run", "r1-run", "r0-metrics", "r1-metrics"} <= ids
    assert "samples" not in " ".join(ids)


def test_repeated_cross_validation_is_reported_fold_by_fold(tiny_run, tmp_path):
    # trainer.repeats > 1 lays folds out as repeat_<r>/fold_<k>: here two repeats of one fold each,
    # numbered 0 and 1 across the run, as the trainer numbers them.
    run = tmp_path / "out/naive_cnn"
    shutil.copytree(tiny_run, run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["trainer"].update(folds=1, repeats=2)
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    for r, fold in ((0, "fold_0"), (1, "fold_1")):
        (run / f"repeat_{r}").mkdir()
        shutil.move(run / fold, run / f"repeat_{r}" / "fold_0")
    out = tmp_path / "repeats.html"
    done = fvc("report", str(run), "-o", str(out), "--no-samples")
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "2 of 2" in text and "partial run" not in text
    rows = Page(text).rows
    assert set(rows) == {"0", "1", "mean", "std"}
    for k in (0, 1):
        metrics = json.loads((tiny_run / f"fold_{k}/metrics.json").read_text())
        shown = [json.loads(v) if v is not None else None for v in rows[str(k)][1:1 + len(METRICS)]]
        assert shown == [metrics[m] for m in METRICS]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (Linux)")
def test_an_output_where_no_file_can_be_made_is_one_line(tiny_run):
    """/proc exists but holds no new file: the write fails with ENOENT, which was a traceback."""
    done = fvc("report", str(tiny_run), "-o", "/proc/fvc-report.html")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == ("error: -o /proc/fvc-report.html: no such file or folder, or a folder "
                                   "where files cannot be made")
