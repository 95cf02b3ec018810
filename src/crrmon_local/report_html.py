"""The demo's report as one self-contained HTML file: tables, and charts drawn as SVG by inline JavaScript.

Nothing is fetched: the data sits in the page as JSON, the script draws from it. When every chart is
drawn the script sets `data-charts-rendered` on <body> to the number of charts (tests read it).
"""

from __future__ import annotations

import html
import json

from crrmon_cli.charts import CHART_HELPERS, CSS

SCRIPT = (
    r"""
(function () {
  const D = JSON.parse(document.getElementById("demo-data").textContent);
"""
    + CHART_HELPERS
    + r"""
  const COLORS = {COMPLETED: "#2e7d32", FAILED: "#c62828", MISMATCH: "#ef6c00", SOURCE_DELETED: "#6a1b9a",
                  NOT_IN_SCOPE: "#9e9e9e", EXPIRED: "#5d4037", OVERDUE: "#f9a825"};
  const PALETTE = ["#1565c0", "#2e7d32", "#c62828", "#6a1b9a", "#ef6c00", "#00838f", "#5d4037"];
  let drawn = 0;
  // 1. latency distribution per pair: a histogram each
  const lat = document.getElementById("latency-charts");
  for (const [pair, p] of Object.entries(D.pairs)) {
    const values = p.latencies;
    const c = card(lat, p.source + " \u2192 " + p.destination + " (" + values.length + " with latency)");
    const W = 340, H = 172, x0 = 46, y0 = 132, w = 280, h = 118;
    const s = svg(c, W, H);
    const xt = ticks(Math.max(1, ...values), 5);
    const top = xt.top;
    const bins = Math.min(40, Math.max(8, Math.round(top * 2)));
    const counts = new Array(bins).fill(0);
    for (const v of values) counts[Math.min(bins - 1, Math.floor(v / top * bins))]++;
    const yt = ticks(Math.max(1, ...counts), 4);
    const cmax = yt.top;
    axes(s, x0, y0, w, h, xt, yt, "replica event time \u2212 source event time, s", "versions");
    let d = "";
    counts.forEach((n, i) => {
      const bw = w / bins, bh = n / cmax * h;
      d += "M" + (x0 + i * bw + 1).toFixed(1) + " " + y0 + " v" + (-bh).toFixed(1) + " h" + (bw - 2).toFixed(1) +
           " v" + bh.toFixed(1) + " Z ";
    });
    el("path", {d: d || "M0 0", fill: "#1565c0", class: "bars"}, s);
    const p95 = p.latency["95"];
    if (p95 !== null) {
      const x = x0 + p95 / top * w;
      el("path", {d: "M" + x + " " + y0 + " V" + (y0 - h), stroke: "#c62828", "stroke-dasharray": "3 2"}, s);
      el("text", {x: x + 3, y: y0 - h + 10, "font-size": 10, fill: "#c62828"}, s, "p95");
    }
    drawn++;
  }

  // 2. overdue over time, one line per pair
  const od = document.getElementById("overdue-chart");
  const series = D.overdue_series;
  const pairs = Object.keys(D.pairs);
  const c2 = card(od, "objects OVERDUE at each moment (sampled every 2 s)");
  const W2 = 700, H2 = 236, x0 = 50, y0 = 190, w2 = 630, h2 = 170;
  const s2 = svg(c2, W2, H2);
  const xt2 = ticks(Math.max(1, ...series.map(r => r[0])), 8);
  const yt2 = ticks(Math.max(1, ...series.map(r => Math.max(0, ...Object.values(r[1])))), 4);
  const tmax = xt2.top, ymax = yt2.top;
  axes(s2, x0, y0, w2, h2, xt2, yt2, "seconds after the workload started", "OVERDUE");
  const legend = document.createElement("div"); legend.className = "legend";
  pairs.forEach((pair, i) => {
    const pts = series.map(r => (x0 + r[0] / tmax * w2).toFixed(1) + " " +
                                 (y0 - (r[1][pair] || 0) / ymax * h2).toFixed(1));
    el("path", {d: "M" + (pts.length ? pts.join(" L") : x0 + " " + y0), stroke: PALETTE[i % PALETTE.length],
                fill: "none", "stroke-width": 2, class: "series"}, s2);
    const item = document.createElement("span");
    item.innerHTML = '<i style="background:' + PALETTE[i % PALETTE.length] + '"></i>';
    item.appendChild(document.createTextNode(pair.replace(">", " \u2192 ")));
    legend.appendChild(item);
  });
  c2.appendChild(legend);
  drawn++;

  // 3. verdicts per pair: stacked bars
  const vc = document.getElementById("verdict-chart");
  const c3 = card(vc, "verdicts per pair");
  // the count after each bar needs room: the bars end where the widest count still fits
  const rowH = 26, W3 = 760, labelW = 300, countW = 60, barW = W3 - labelW - countW;
  const s3 = svg(c3, W3, pairs.length * rowH + 10);
  const most = Math.max(1, ...pairs.map(p => Object.values(D.pairs[p].verdicts).reduce((a, b) => a + b, 0)));
  const used = new Set();
  pairs.forEach((pair, i) => {
    const y = 5 + i * rowH;
    el("text", {x: labelW - 6, y: y + 15, "text-anchor": "end", "font-size": 11}, s3, pair.replace(">", " \u2192 "));
    let x = labelW;
    for (const [status, n] of Object.entries(D.pairs[pair].verdicts)) {
      const bw = n / most * barW;
      const r = el("path", {d: "M" + x.toFixed(1) + " " + y + " h" + bw.toFixed(1) + " v18 h" + (-bw).toFixed(1) + " Z",
                            fill: COLORS[status] || "#444", class: "bar"}, s3);
      el("title", {}, r, status + ": " + n);
      x += bw; used.add(status);
    }
    el("text", {x: x + 4, y: y + 14, "font-size": 10, class: "count"}, s3,
       fmt(Object.values(D.pairs[pair].verdicts).reduce((a, b) => a + b, 0)));
  });
  const legend3 = document.createElement("div"); legend3.className = "legend";
  for (const status of used) {
    const item = document.createElement("span");
    item.innerHTML = '<i style="background:' + (COLORS[status] || "#444") + '"></i>' + status;
    legend3.appendChild(item);
  }
  c3.appendChild(legend3);
  drawn++;

  document.body.setAttribute("data-charts-rendered", String(drawn));
  document.getElementById("render-status").textContent = drawn + " charts drawn";
})();
"""
)


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _seconds(value) -> str:
    return "-" if value is None else f"{value:.2f} s"


def render_html(report: dict) -> str:
    rows = []
    for p in report["pairs"].values():
        lat = p["latency"]
        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(p["verdicts"].items()))
        alerts = ", ".join(f"{k} {v}" for k, v in sorted(p["alerts"]["objects"].items())) or "none"
        rows.append(
            f"<tr><td>{_e(p['source'])} &rarr; {_e(p['destination'])}</td><td>{_e(verdicts)}</td>"
            f"<td class=n>{_seconds(lat['50'] if '50' in lat else lat.get(50))}</td>"
            f"<td class=n>{_seconds(lat['95'] if '95' in lat else lat.get(95))}</td>"
            f"<td class=n>{_seconds(lat['99'] if '99' in lat else lat.get(99))}</td>"
            f"<td class=n>{_seconds(lat['max'])}</td><td class=n>{p['missed_rpo']}</td>"
            f"<td class=n>{p.get('ever_overdue', '-')}</td>"
            f"<td class=n>{p['overdue_peak']}</td><td class=n>{p['oldest_overdue_s']} s</td>"
            f"<td>{p['alerts']['messages']} ({_e(alerts)})</td><td class=n>{p['archive_lines']}</td></tr>"
        )
    scores = []
    for verdict, sc in report["scores"].items():
        precision = "-" if sc["precision"] is None else f"{sc['precision']:.1%}"
        recall = "-" if sc["recall"] is None else f"{sc['recall']:.1%}"
        scores.append(
            f"<tr><td>{_e(verdict)}</td><td class=n>{sc['truth']}</td><td class=n>{sc['monitor']}</td>"
            f"<td class=n>{precision}</td><td class=n>{recall}</td></tr>"
        )
    disagreements = report["disagreements"]
    verdict_line = (
        f'<p class="bad">{len(disagreements)} disagreements</p>'
        if disagreements
        else '<p class="ok">No disagreement: every verdict the monitor could reach matches the ground truth.</p>'
    )
    listed = "".join(f"<li>{_e(json.dumps(d, default=sorted, ensure_ascii=False))}</li>" for d in disagreements[:200])
    unseen = "".join(
        f"<li>{_e(u['source'])} &rarr; {_e(u['destination'])} <code>{_e(u['key'])}</code> "
        f"({_e(u['fault'])}, truth {_e(u['truth'])})</li>"
        for u in report["unseen"][:200]
    )
    faults = "".join(
        f"<tr><td>{_e(fault)}</td><td class=n>{count}</td></tr>" for fault, count in report.get("faults", {}).items()
    )
    classes = "".join(
        f"<tr><td>{_e(name)}</td><td class=n>{c['rpo']} s</td><td class=n>{c['lines']}</td>"
        f"<td class=n>{c['completed']}</td><td class=n>{_seconds(c['p50'])}</td><td class=n>{_seconds(c['max'])}</td>"
        f"<td class=n>{c['missed_rpo']}</td></tr>"
        for name, c in (report.get("rpo_classes") or {}).items()
    )
    classes_section = (
        '<h2>RPO classes</h2>\n<p class="muted">The class each verdict was judged by (the archive\'s '
        f"<code>rpo_class</code>): {_e(report['settings'].get('rpo_classes'))}; the others: default.</p>\n"
        "<table><tr><th>class</th><th>RPO</th><th>verdicts</th><th>COMPLETED</th><th>p50</th><th>max</th>"
        f"<th>missed the RPO</th></tr>\n{classes}</table>"
        if len(report.get("rpo_classes") or ()) > 1
        else ""
    )
    s, e = report["settings"], report["events"]
    data = json.dumps(
        {
            "pairs": {
                f"{p['source']}>{p['destination']}": {
                    "source": p["source"],
                    "destination": p["destination"],
                    "latencies": p["latencies"],
                    "latency": {str(k): v for k, v in p["latency"].items()},
                    "verdicts": p["verdicts"],
                }
                for p in report["pairs"].values()
            },
            "overdue_series": report["overdue_series"],
        },
        separators=(",", ":"),
    ).replace("</", "<\\/")
    settings = ", ".join(f"{k}={v}" for k, v in s.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CRR Monitor demo report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body data-charts-rendered="0">
<h1>CRR Monitor demo report</h1>
<p class="muted">{report["objects_written"]} object versions written, {report["replicas_landed"]} replicas landed;
events: {e["emitted"]} emitted, {e["delivered"]} delivered, {e["lost"]} lost, {e["duplicated"]} duplicated,
{e["reordered"]} late, {e.get("backlogged", 0)} held in a backlog.
Wall time {report["wall_seconds"]} s (CPU {report["cpu_seconds"]} s), peak memory
{report["peak_memory_mb"]} MB. <span id="render-status">charts not drawn (JavaScript off?)</span></p>
{verdict_line}
<h2>Faults</h2>
<p class="muted">What the emulator did, per object version and destination
({report.get("backlogged", 0)} of them with an event held in the backlog).</p>
<table><tr><th>fault</th><th>versions &times; destinations</th></tr>
{faults}</table>
<h2>Per pair</h2>
<p class="muted">Late: the replica landed after the RPO, by S3's times. OVERDUE: a check at the deadline
found no replica yet. A replica can be late and never OVERDUE (it landed before a check found it missing).</p>
<table><tr><th>pair</th><th>verdicts</th><th>p50</th><th>p95</th><th>p99</th><th>max</th>
<th>landed after the RPO</th><th>OVERDUE at a check</th><th>most OVERDUE at once</th><th>oldest OVERDUE</th>
<th>alert digests (objects)</th><th>archive lines</th></tr>
{"".join(rows)}</table>
{classes_section}
<h2>Latency distribution per pair</h2>
<p class="muted">Replica event time minus source event time, for COMPLETED verdicts whose both events arrived.</p>
<div class="charts" id="latency-charts"></div>
<h2>Overdue over time</h2><div class="charts" id="overdue-chart"></div>
<h2>Verdicts per pair</h2><div class="charts" id="verdict-chart"></div>
<h2>Compared with the emulator's ground truth</h2>
<table><tr><th>verdict</th><th>truth</th><th>monitor</th><th>precision</th><th>recall</th></tr>
{"".join(scores)}</table>
<p>Agreement: {report["agreed"]}/{report["compared"]} ({report["agreement"]:.2%}) of the object versions and
destinations the monitor could see.</p>
<h3>Not seen: every event about them was lost ({len(report["unseen"])})</h3>
<p class="muted">No event reached the monitor, so it cannot know of them;
reconciliation against listings finds them.</p>
<ul>{unseen}</ul>
<h3>Disagreements ({len(disagreements)})</h3><ul>{listed}</ul>
<h2>Settings</h2><pre>{_e(settings)}</pre>
<script type="application/json" id="demo-data">{data}</script>
<script>{SCRIPT}</script>
</body></html>
"""
