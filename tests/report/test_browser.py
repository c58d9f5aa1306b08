"""The report as a person sees it: opened from disk in a real headless Chromium, every image decoded.

Skipped where no Chromium is installed (CI installs Debian's `chromium`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.builders import fvc

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")

# Appended to a copy of the report (the report itself carries no script): after the load event,
# which waits for every image, it writes how many images there are and how many decoded.
PROBE = ('<script>window.addEventListener("load", () => { const i = [...document.images];'
         'document.body.setAttribute("data-images", i.length);'
         'document.body.setAttribute("data-decoded", i.filter(x => x.complete && x.naturalWidth > 0).length);'
         '});</script></body>')


def chromium(*args: str) -> subprocess.CompletedProcess:
    # --no-sandbox: tests run as root in containers, where Chromium's sandbox cannot start.
    return subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--virtual-time-budget=20000", *args], capture_output=True, text=True, timeout=180)


def images_decoded(page: Path) -> tuple[int, int]:
    probe = page.with_name(page.stem + "_probe.html")
    probe.write_text(page.read_text().replace("</body>", PROBE))
    done = chromium("--dump-dom", probe.resolve().as_uri())
    match = re.search(r'<body[^>]*data-images="(\d+)"[^>]*data-decoded="(\d+)"', done.stdout)
    assert match, f"the page did not load in Chromium: {done.stderr[-2000:]}"
    return int(match.group(1)), int(match.group(2))


@pytest.fixture(scope="module")
def rendered(tiny_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "report.html"
    video = next((tiny_run.parent.parent / "videos/fake").glob("src_*.mp4"))
    done = fvc("report", str(tiny_run), "-o", str(out), "--explain", str(video))
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_every_image_of_the_report_decodes_in_chromium(rendered):
    total, decoded = images_decoded(rendered)
    assert total >= 12 and decoded == total
    # The probe can tell: the same page with one image's bytes damaged has one image fewer decoded.
    text = rendered.read_text()
    start = text.index("data:image/png;base64,") + len("data:image/png;base64,")
    broken = rendered.with_name("broken.html")
    broken.write_text(text[:start] + "AAAA" * 50 + text[start + 200:])
    assert images_decoded(broken) == (total, total - 1)


def test_the_screenshot_shows_the_report(rendered):
    shot = rendered.with_name("shot.png")
    done = chromium(f"--screenshot={shot}", "--window-size=1200,2600", rendered.resolve().as_uri())
    assert shot.exists(), done.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (2600, 1200)
    ink = (pixels.sum(axis=2) < 600).mean()  # anything darker than near-white: text, tables, plots
    colours = len(np.unique(pixels.reshape(-1, 3)[:: 7], axis=0))
    # A page holding only the report's title measures 0.002; the report's first 2600 px, now that the
    # protocol and versions tables are longer, about 0.03.
    assert ink > 0.015, "the page rendered almost blank"
    assert colours > 200, "no plots drawn (too few colours for antialiased figures)"
