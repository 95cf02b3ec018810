"""report.html opens in headless Chromium and its inline script draws every chart (no network)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from crrmon_local.report_html import render_html

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAIRS = [
    ("demo-src-use1", "demo-dst-usw2"),
    ("demo-src-use1", "demo-dst-euw1"),
    ("demo-bidi-a-use1", "demo-bidi-b-usw2"),
]


def report() -> dict:
    pairs = {}
    for i, (source, dest) in enumerate(PAIRS):
        latencies = [0.4 + 0.1 * j + i for j in range(40)]
        pairs[f"{source}>{dest}"] = {
            "source": source,
            "destination": dest,
            "verdicts": {"COMPLETED": 40, "FAILED": i + 1, "NOT_IN_SCOPE": 2},
            "latency": {50: latencies[20], 95: latencies[38], 99: latencies[39], "max": latencies[-1]},
            "latencies": latencies,
            "missed_rpo": i,
            "overdue_peak": 3,
            "oldest_overdue_s": 12.5,
            "alerts": {"messages": 2, "objects": {"FAILED": i + 1, "OVERDUE": 3}},
            "archive_lines": 43 + i,
        }
    series = [(t * 2.0, {p: max(0, 3 - abs(t - 5)) for p in pairs}) for t in range(12)]
    return {
        "settings": {"objects": 120, "rpo": 8},
        "wall_seconds": 30.0,
        "cpu_seconds": 25.0,
        "peak_memory_mb": 180.0,
        "objects_written": 120,
        "replicas_landed": 130,
        "events": {"emitted": 300, "delivered": 295, "lost": 5, "duplicated": 4, "reordered": 3},
        "pairs": pairs,
        "archive_lines": 132,
        "alert_messages": 6,
        "overdue_series": series,
        "compared": 135,
        "agreed": 135,
        "agreement": 1.0,
        "scores": {"COMPLETED": {"truth": 120, "monitor": 120, "precision": 1.0, "recall": 1.0}},
        "unseen": [],
        "found_without_events": 0,
        "disagreements": [],
        "ttl_removed": None,
    }


def dump_dom(page: Path, profile: Path) -> str:
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.fail(
            "headless Chromium is needed to check that report.html renders: install the Debian package "
            "`chromium` (apt-get install -y chromium); .ci/run installs it in CI"
        )
    binary = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    result = subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_report_html_charts_render_in_headless_chromium(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(render_html(report()), encoding="utf-8")
    assert "http://" not in page.read_text().replace("http://www.w3.org/2000/svg", "")  # nothing fetched
    dom = dump_dom(page, tmp_path / "profile")
    charts = len(PAIRS) + 2  # a latency histogram per pair, overdue over time, verdicts per pair
    assert re.search(rf'<body[^>]*data-charts-rendered="{charts}"', dom), dom[:500]
    assert f"{charts} charts drawn" in dom
    # the script built the SVGs: histogram bars per pair, a line per pair, a stacked bar per verdict and pair
    assert dom.count('class="bars"') == len(PAIRS)
    assert dom.count('class="series"') == len(PAIRS)
    assert dom.count('class="bar"') == 3 * len(PAIRS)
    bars = re.findall(r'<path d="([^"]+)"[^>]*class="bars"', dom)
    assert all(d.count("Z") >= 8 for d in bars)  # one rectangle per bin


def test_report_html_without_script_shows_no_charts(tmp_path):
    """The check above can fail: the same page with its script removed draws nothing."""
    text = render_html(report())
    start, end = text.rindex("<script>"), text.rindex("</script>") + len("</script>")
    page = tmp_path / "report.html"
    page.write_text(text[:start] + text[end:], encoding="utf-8")
    dom = dump_dom(page, tmp_path / "profile")
    assert 'data-charts-rendered="0"' in dom and 'class="bars"' not in dom


# Run after the report's own script: every text of every chart must lie inside its SVG (a label cut at the
# edge is a number misread), and each axis must carry tick labels between 0 and its top.
MEASURE = """<script>
(function () {
  const clipped = [], ticks = [];
  document.querySelectorAll("svg").forEach((svg, i) => {
    const box = svg.getBoundingClientRect();
    svg.querySelectorAll("text").forEach(t => {
      const b = t.getBoundingClientRect();
      if (b.left < box.left - 0.5 || b.right > box.right + 0.5 || b.top < box.top - 0.5 ||
          b.bottom > box.bottom + 0.5) clipped.push(i + ":" + t.textContent);
    });
    const x = [...svg.querySelectorAll("text.tick.x")].map(t => t.textContent);
    const y = [...svg.querySelectorAll("text.tick.y")].map(t => t.textContent);
    ticks.push(x.join(",") + "|" + y.join(","));
  });
  document.body.setAttribute("data-clipped", JSON.stringify(clipped));
  document.body.setAttribute("data-ticks", JSON.stringify(ticks));
})();
</script>"""


def test_report_html_charts_show_their_labels_whole_and_axes_with_ticks(tmp_path):
    data = report()
    # large counts (a verdict bar of a thousand and more), long pair names, a long run
    pair = data["pairs"]["demo-src-use1>demo-dst-usw2"]
    pair["verdicts"] = {"COMPLETED": 1043, "FAILED": 21, "NOT_IN_SCOPE": 30}
    data["pairs"]["demo-xacct-src-use1>demo-backup-xacct-usw2"] = {
        **pair,
        "source": "demo-xacct-src-use1",
        "destination": "demo-backup-xacct-usw2",
        "verdicts": {"COMPLETED": 7},
    }
    data["overdue_series"] = [(t * 2.0, {p: (t * 37) % 230 for p in data["pairs"]}) for t in range(90)]
    page = tmp_path / "report.html"
    page.write_text(render_html(data).replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = dump_dom(page, tmp_path / "profile")
    clipped = re.search(r'data-clipped="([^"]*)"', dom)
    assert clipped, dom[:500]
    assert html.unescape(clipped.group(1)) == "[]"
    ticks = json.loads(html.unescape(re.search(r'data-ticks="([^"]*)"', dom).group(1)))
    charts = len(data["pairs"]) + 1  # the histograms and overdue over time have axes
    for axis in ticks[:charts]:
        x, y = (part.split(",") for part in axis.split("|"))
        assert len(x) >= 3 and len(y) >= 3, axis  # 0, the top, and values between
        assert x[0] == y[0] == "0"
    assert ">1,094<" in dom  # the verdict count of the pair (1043 + 21 + 30), whole
