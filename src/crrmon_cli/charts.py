"""What self-contained HTML reports share: their style sheet and the JavaScript that draws SVG charts.

A page embeds its data as JSON and an inline script that draws from it (nothing is fetched). The script
starts with CHART_HELPERS, inside its own function scope: `el` (an SVG element), `svg` (a drawing area),
`card` (a titled box for one chart), `ticks` (round tick values from 0), `fmt` (a tick label) and `axes`
(two axes with ticks and names). The demo's report (crrmon_local.report_html) and `crrmon report`
(crrmon_cli.report) use them.
"""

from __future__ import annotations

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; } td, th { padding: 3px 10px; border-bottom: 1px solid #eee; }
th { text-align: left; background: #f6f6f6; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #1a7f37; font-weight: 600; } .bad { color: #c62828; font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 18px; } .chart { border: 1px solid #e4e4e4; padding: 6px; }
.chart h3 { font-size: 0.95em; margin: 2px 4px 6px; } .legend span { margin-right: 14px; white-space: nowrap; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
pre { background: #f7f7f7; padding: 8px; overflow-x: auto; } .muted { color: #777; }
"""

CHART_HELPERS = r"""
  const NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, parent, text) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function svg(parent, w, h) { return el("svg", {width: w, height: h, viewBox: "0 0 " + w + " " + h}, parent); }
  function card(container, title) {
    const div = document.createElement("div"); div.className = "chart";
    const h = document.createElement("h3"); h.textContent = title; div.appendChild(h);
    container.appendChild(div); return div;
  }
  // Tick values from 0 to at least `max`: steps of 1, 2 or 5 times a power of ten, about `n` of them.
  function ticks(max, n) {
    if (!(max > 0)) return {values: [0, 1], top: 1};
    const raw = max / n, power = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map(m => m * power).find(v => v >= raw);
    const top = Math.ceil(max / step - 1e-9) * step, values = [];
    for (let v = 0; v <= top + step / 2; v += step) values.push(+v.toFixed(6));
    return {values: values, top: top};
  }
  function fmt(v) { return v >= 1000 ? v.toLocaleString("en-US") : String(+v.toFixed(2)); }
  // Axes with tick labels between 0 and the top of each, and a name under each axis.
  function axes(s, x0, y0, w, h, xt, yt, xname, yname) {
    el("path", {d: "M" + x0 + " " + (y0 - h) + " V" + y0 + " H" + (x0 + w), stroke: "#888", fill: "none"}, s);
    for (const v of yt.values) {
      const y = y0 - v / yt.top * h;
      el("path", {d: "M" + (x0 - 3) + " " + y + " H" + x0, stroke: "#888"}, s);
      if (v > 0) el("path", {d: "M" + x0 + " " + y + " H" + (x0 + w), stroke: "#eee"}, s);
      el("text", {x: x0 - 5, y: y + 3.5, "text-anchor": "end", "font-size": 10, class: "tick y"}, s, fmt(v));
    }
    for (const v of xt.values) {
      const x = x0 + v / xt.top * w;
      el("path", {d: "M" + x + " " + y0 + " V" + (y0 + 3), stroke: "#888"}, s);
      el("text", {x: x, y: y0 + 14, "text-anchor": "middle", "font-size": 10, class: "tick x"}, s, fmt(v));
    }
    el("text", {x: x0 + w / 2, y: y0 + 28, "text-anchor": "middle", "font-size": 10, fill: "#555"}, s, xname);
    el("text", {x: 10, y: y0 - h / 2, "text-anchor": "middle", "font-size": 10, fill: "#555",
                transform: "rotate(-90 10 " + (y0 - h / 2) + ")"}, s, yname);
  }

"""
