"""report.html in a real browser: headless Chromium renders it offline with every table and image.

Chromium writes the page's console messages to stderr with ``--enable-logging=stderr``; the
report has no script, so any console line is a problem. A copy of the report with a probe
script appended records, after the load event, how many tables and decoded images the page
has; ``--dump-dom`` returns it. Skipped when Chromium is not installed (.ci/run installs it).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from _report_run import shared_run

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)"
)

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000"]
CONSOLE = re.compile(r":CONSOLE[^\]]*\] (.*)")
PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  document.body.setAttribute("data-probe", JSON.stringify({
    tables: document.querySelectorAll("table").length,
    images: images.length,
    decoded: images.filter(i => i.complete && i.naturalWidth > 0).length,
    sections: Array.from(document.querySelectorAll("section")).map(s => s.id),
    intervals: Array.from(document.querySelectorAll("section[id^=lb-] td span.ci")).filter(
      s => s.getBoundingClientRect().height > 0 && /^\\[.+, .+\\]$/.test(s.textContent)).length,
    marks: Array.from(document.querySelectorAll("span.floor")).filter(
      s => s.getBoundingClientRect().width > 0 && s.title.length > 0).map(s => s.textContent + " " + s.title),
    cd: images.filter(i => i.alt === "Critical-difference diagram" && i.complete && i.naturalWidth > 0
                      && i.closest("section").id === "overall").length,
    overallIntervals: Array.from(document.querySelectorAll("#overall td")).filter(
      td => /^\\d[\\d.]* \\[.+, .+\\]$/.test(td.textContent)).length,
  }));
});
</script>"""


def chromium(page: Path, profile: Path, *args: str) -> tuple[str, list[str]]:
    """Open ``page`` headless with a fresh profile; returns stdout and the console messages."""
    proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, CONSOLE.findall(proc.stderr)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    return shared_run(tmp_path_factory) / "report.html"


def test_console_messages_are_captured(tmp_path):
    """The check below can fail: a page that logs an error is caught."""
    page = tmp_path / "noisy.html"
    page.write_text('<html><body><script>console.error("broken on purpose")</script></body></html>')
    _, messages = chromium(page, tmp_path / "profile", "--dump-dom")
    assert any("broken on purpose" in m for m in messages)


def test_report_renders_every_table_and_image_without_console_messages(report, tmp_path):
    _, messages = chromium(report, tmp_path / "p1", "--dump-dom")
    assert messages == []
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", PROBE + "</body>"))
    dom, messages = chromium(probe, tmp_path / "p2", "--dump-dom")
    assert messages == []
    found = json.loads(html.unescape(re.search(r'data-probe="([^"]*)"', dom).group(1)))
    expected_images = report.read_text().count('src="data:image/png;base64,')
    # 8 sample, trade-off and training figures; 3 interval figures and the critical-difference diagram
    assert found["images"] == expected_images == 12 and found["decoded"] == expected_images
    # 4 categories, the overall ranking, pairs separated and the close pairs, the manifest and its job table
    # (no job failed: no failure table)
    assert found["tables"] == report.read_text().count("<table") == 9
    assert {"lb-fidelity", "lb-utility", "lb-privacy", "lb-cost", "overall", "pairs", "figures", "failures",
            "manifest"} <= set(found["sections"])
    # every leaderboard cell that has an interval shows it, drawn
    assert found["intervals"] == report.read_text().count('<span class="ci">') > 20
    # the noise-floor marks are drawn, each with its words
    assert any(m.startswith("▲ as good as") for m in found["marks"]) and any("no better than" in m for m in found["marks"])
    assert found["cd"] == 1  # the critical-difference diagram, decoded, in the overall ranking
    assert found["overallIntervals"] == 3  # the 3 generators that are not calibration rows: score [interval]


def test_report_screenshot_is_drawn(report, tmp_path):
    from matplotlib.image import imread

    shot = tmp_path / "report.png"
    chromium(report, tmp_path / "p3", f"--screenshot={shot}", "--window-size=1280,3000", "--hide-scrollbars")
    pixels = imread(shot)
    assert pixels.shape[:2] == (3000, 1280)
    assert np.unique(pixels.reshape(-1, pixels.shape[2])[::97], axis=0).shape[0] > 50  # text, tables and plots


def test_evaluate_report_of_a_handed_over_set_renders(cli, tmp_path):
    """`ehrbench evaluate --report`: the handed-over set beside calibration rows fitted on the spot."""
    from ehrbench.matrix import EHRMatrix

    rng = np.random.default_rng(3)
    codes = [f"C{j}" for j in range(12)]
    X = rng.poisson(rng.uniform(0.05, 0.5, 12), (300, 12)).astype(np.float32)
    paths = {}
    for part, rows in (("train", X[:200]), ("test", X[200:]), ("synthetic", rng.poisson(0.2, (120, 12)))):
        paths[part] = tmp_path / f"{part}.npz"
        EHRMatrix(rows, codes).save(paths[part])
    report = tmp_path / "out" / "vendor.html"
    result = cli("evaluate", "--train", paths["train"], "--test", paths["test"], "--synthetic", paths["synthetic"],
                 "--profile", "smoke", "--name", "vendor-set", "--report", report, "--json")
    assert result.code == 0, result.err
    scores = json.loads(result.out)  # stdout stays one JSON object
    text = report.read_text()
    assert "vendor-set" in text and "train-resample" in text and "independent-marginals" in text
    assert f"{scores['dimension_wise_probability']:.4g}"[:4] in text  # the same numbers as the scores
    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", PROBE + "</body>"))
    dom, messages = chromium(probe, tmp_path / "p4", "--dump-dom")
    assert messages == []
    found = json.loads(html.unescape(re.search(r'data-probe="([^"]*)"', dom).group(1)))
    assert found["images"] == text.count('src="data:image/png;base64,') > 0 and found["decoded"] == found["images"]
    assert {"lb-fidelity", "overall", "manifest"} <= set(found["sections"])
