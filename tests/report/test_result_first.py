"""The report opens on the result: headline mean ± interval, the ROC, calibration and robustness; provenance after.

A copy of the tiny run is evaluated under two perturbations (`fvc evaluate --perturb`), then reported.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from tests.builders import fvc
from tests.report.test_browser import CHROMIUM, chromium


class Page(HTMLParser):
    """Headings and images in document order; the data-value of each cell by the row's data-* key."""

    def __init__(self, text: str):
        super().__init__()
        self.order: list[tuple[str, str]] = []
        self.cells: dict[tuple[str, str], list[str | None]] = {}
        self._row: tuple[str, str] | None = None
        self._heading: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "h2":
            self._heading = ""
        elif tag == "img":
            self.order.append(("img", attrs.get("alt") or ""))
        elif tag == "tr":
            key = next(((k, v) for k, v in attrs.items() if k.startswith("data-")), None)
            self._row = key
            if key is not None:
                self.cells[key] = []
        elif tag == "td" and self._row is not None:
            self.cells[self._row].append(attrs.get("data-value"))

    def handle_data(self, data):
        if self._heading is not None:
            self._heading += data

    def handle_endtag(self, tag):
        if tag == "h2" and self._heading is not None:
            self.order.append(("h2", self._heading))
            self._heading = None

    def value(self, key: str, row: str, column: int = 0) -> float:
        return float(json.loads(self.cells[(key, row)][column + 1]))  # the first cell names the row


@pytest.fixture(scope="module")
def reported(tiny_run, tmp_path_factory) -> tuple[Path, Path, str]:
    run = tmp_path_factory.mktemp("result") / "naive_cnn"
    shutil.copytree(tiny_run, run)
    table = yaml_table(run)
    done = fvc("evaluate", str(run), str(table), "--name", "own", "--perturb", "blur:1,5", "--perturb", "c40")
    assert done.returncode == 0, done.stdout + done.stderr
    out = run.parent / "report.html"
    done = fvc("report", str(run), "-o", str(out), "--no-samples")
    assert done.returncode == 0, done.stdout + done.stderr
    return run, out, out.read_text()


def yaml_table(run: Path) -> Path:
    import yaml

    return Path(yaml.safe_load((run / "config.yaml").read_text())["data"]["metadata"])


def test_the_headline_comes_first_with_the_run_s_own_numbers_and_their_interval(reported):
    run, _, text = reported
    page = Page(text)
    headings = [t for kind, t in page.order if kind == "h2"]
    assert headings[0] == "Result"
    assert headings.index("Result") < headings.index("Test metrics") < next(
        i for i, h in enumerate(headings) if h.startswith("Run:"))
    # The first picture is the ROC, then the reliability diagram and the robustness curve.
    pictures = [t for kind, t in page.order if kind == "img"]
    assert pictures[:3] == ["ROC and precision-recall curves per fold", "reliability diagram of the test predictions",
                            "ROC AUC against perturbation level"]
    folds = [json.loads(p.read_text()) for p in sorted(run.glob("fold_*/metrics.json"))]
    for metric in ("roc_auc", "ece_15", "brier", "log_loss"):
        assert page.value("data-headline", metric) == pytest.approx(np.mean([f[metric] for f in folds]))
    # The interval: Student's t over the folds with Nadeau and Bengio's correction, from split.parquet.
    ratios = []
    for split in sorted(run.glob("fold_*/split.parquet")):
        parts = pl.read_parquet(split)["part"].to_list()
        ratios.append(parts.count("test") / parts.count("train"))
    x = np.array([f["brier"] for f in folds])
    half = stats.t.ppf(0.975, len(x) - 1) * math.sqrt((1 / len(x) + np.mean(ratios)) * x.var(ddof=1))
    shown = re.search(r'data-headline="brier">.*?\[([0-9.]+), ([0-9.]+)\]', text)
    assert float(shown.group(1)) == pytest.approx(max(0.0, x.mean() - half), abs=1e-4)
    assert float(shown.group(2)) == pytest.approx(min(1.0, x.mean() + half), abs=1e-4)


def test_calibration_and_robustness_sections_show_the_recorded_numbers(reported):
    run, _, text = reported
    page = Page(text)
    for fold in (0, 1):
        metrics = json.loads((run / f"fold_{fold}/metrics.json").read_text())
        assert page.value("data-calibration-fold", str(fold)) == pytest.approx(metrics["ece_15"])
    grid = json.loads((run / "eval/own/robustness.json").read_text())
    mean = {(r["perturbation"], r["level"]): r["roc_auc"] for r in grid["rows"] if r["scored_by"] == "mean"}
    assert page.value("data-robust", "none") == pytest.approx(mean[("none", 0)])
    assert page.value("data-robust", "blur", 1) == pytest.approx(mean[("blur", 5)])
    assert page.value("data-robust", "c40", 0) == pytest.approx(mean[("c40", 1)])


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
def test_in_a_browser_the_first_screen_holds_the_headline_and_the_roc(reported):
    _, out, text = reported
    probe = out.with_name("probe.html")
    script = ('<script>window.addEventListener("load", () => { const top = s => '
              'Math.round(document.querySelector(s).getBoundingClientRect().top);'
              'const roc = document.images[0].getBoundingClientRect();'
              'document.body.setAttribute("data-result", top("#result"));'
              'document.body.setAttribute("data-run", top("#run"));'
              'document.body.setAttribute("data-roc", Math.round(roc.bottom));});</script></body>')
    probe.write_text(text.replace("</body>", script))
    done = chromium("--window-size=1280,1000", "--dump-dom", probe.resolve().as_uri())
    found = {k: int(v) for k, v in re.findall(r'data-(result|run|roc)="(-?\d+)"', done.stdout)}
    assert set(found) == {"result", "run", "roc"}, done.stderr[-2000:]
    assert found["result"] < found["roc"] <= 1000 < found["run"]



@pytest.mark.parametrize("levels", [[1], [1, 3, 5]])
def test_the_robustness_curve_is_a_plot_of_its_levels_not_a_strip(levels):
    """The clean line's label once sat at x = 0.1 in data units: with level 1 alone the saved picture
    stretched to reach it (3994 x 326 px, the curve a speck at its right end), with a layout warning."""
    import io
    import warnings

    from PIL import Image

    from fvc_report.result import robustness_plot

    rows = [{"perturbation": "none", "level": 0, "scored_by": "mean", "roc_auc": 0.9}]
    rows += [{"perturbation": "blur", "level": lv, "scored_by": "mean", "roc_auc": 0.9 - 0.1 * lv} for lv in levels]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        picture = robustness_plot([{"table": "own", "rows": rows}])
    width, height = Image.open(io.BytesIO(picture)).size
    assert width / height < 2.5
