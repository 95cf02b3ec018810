"""`crrmon report`: replication evidence for a month (or any window), per pair and RPO class.

From the archive of final verdicts (one line per object version and destination, crrmon.publish), for
the objects whose source version S3 wrote in the window [start, end) — by `source_time`, the time the
replication began, as S3 Replication Time Control's SLA counts a billing cycle; `detected_at` for a
line whose source time is unknown:

- objects: the verdicts COMPLETED, FAILED, MISMATCH and EXPIRED (the SLO's total, crrmon.slo). A
  SOURCE_DELETED or NOT_IN_SCOPE verdict had nothing to replicate: it is listed as excluded, never
  counted;
- within RPO: COMPLETED and not `missed_rpo` (by S3's time of the replica against the version's RPO);
  a late COMPLETED, FAILED, MISMATCH and EXPIRED are not within;
- within 15 minutes: COMPLETED with `latency_ms` (S3's time of the replica minus the source's) at most
  900,000. A COMPLETED verdict whose replica was found by a HEAD has no latency (its time is never
  guessed): it is not within 15 minutes, and is counted apart as `latency_unknown`;
- latency p50/p90/p99/max per size band (crrmon.bands) over the COMPLETED verdicts with a latency, by
  nearest rank: the value at position ceil(q x n) of the n sorted latencies;
- failures: FAILED, MISMATCH and EXPIRED per status and reason;
- worst hours: the (at most 5) hours of the window, by source time, with the most objects not within
  their RPO; ties go to the earlier hour;
- RTC: the share within 15 minutes against S3 RTC's promise (99.99% of objects within 15 minutes),
  and the service credit tier of the RTC SLA that share falls in. This is evidence, not a claim
  decision: the SLA counts only objects of rules with RTC on, per region pair and account, and AWS
  decides a claim from its own records.

Copies of one verdict (Firehose may deliver a record twice) share a `record_id` and count once.
Percentages shown in Markdown and HTML are rounded down, so 99.99% shown is at least 99.99%.
"""

from __future__ import annotations

import html
import json
import math
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from crrmon.bands import SIZE_BAND_NAMES, UNKNOWN_SIZE
from crrmon.publish import is_verdict, read_archive
from crrmon.rpo import DEFAULT_CLASS
from crrmon_cli.archive import Athena, archive_lines, nearest_rank, partition_filter, sql_string
from crrmon_cli.archive import _iso as iso_ms
from crrmon_cli.charts import CHART_HELPERS, CSS
from crrmon_cli.context import Context
from crrmon_cli.errors import UsageError
from crrmon_cli.values import since

COUNTED = ("COMPLETED", "FAILED", "MISMATCH", "EXPIRED")
NOT_COUNTED = ("SOURCE_DELETED", "NOT_IN_SCOPE")
FAILURES = ("FAILED", "MISMATCH", "EXPIRED")
RTC_MS = 15 * 60 * 1000  # S3 RTC's threshold: 15 minutes, the only value a rule may set
RTC_PROMISE = Fraction(9999, 100)  # percent: "99.99% of objects within 15 minutes"
# The RTC SLA (Amazon S3 Replication Time Control Feature Service Level Agreement, last updated 4 May
# 2022): the service credit per "Monthly 15-minute Replication Percentage", per region pair and account.
# (low inclusive, high exclusive, credit); at 99.9% and above no credit applies.
RTC_CREDIT_TIERS = (
    (Fraction(98), Fraction(999, 10), "10%"),
    (Fraction(95), Fraction(98), "25%"),
    (Fraction(0), Fraction(95), "100%"),
)
RTC_SOURCE = "Amazon S3 Replication Time Control Feature Service Level Agreement (updated 2022-05-04)"
PERCENTILES = (("p50_ms", Fraction(1, 2)), ("p90_ms", Fraction(9, 10)), ("p99_ms", Fraction(99, 100)))
WORST_HOURS = 5
HOUR_S = 3600
FORMATS = ("markdown", "json", "html")


# ---------------------------------------------------------------- the window


@dataclass(frozen=True)
class Window:
    """[start_s, end_s) in epoch seconds, and how it was asked for."""

    start_s: float
    end_s: float
    label: str

    def __post_init__(self) -> None:
        if self.end_s <= self.start_s:
            raise UsageError(f"the window ends ({iso_s(self.end_s)}) before it starts ({iso_s(self.start_s)})")

    def contains(self, t_s: float) -> bool:
        return self.start_s <= t_s < self.end_s

    @classmethod
    def month(cls, text: str) -> Window:
        """'2026-11' -> [2026-11-01T00:00Z, 2026-12-01T00:00Z)."""
        try:
            start = datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC)
        except ValueError:
            raise UsageError(f"{text!r} is not a month like 2026-11") from None
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return cls(start.timestamp(), end.timestamp(), text)

    @classmethod
    def between(cls, start_s: float, end_s: float) -> Window:
        return cls(start_s, end_s, f"{iso_s(start_s)} to {iso_s(end_s)}")


def iso_s(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def line_time(line: dict[str, Any]) -> float | None:
    """When the line's replication began: S3's time of the source version, else the verdict's time."""
    at = _epoch(line.get("source_time"))
    return at if at is not None else _epoch(line.get("detected_at"))


# ---------------------------------------------------------------- figures


def percent(part: int, whole: int) -> Fraction | None:
    return Fraction(100 * part, whole) if whole else None


def rtc_comparison(within_15m: int, objects: int) -> dict[str, Any]:
    """The share within 15 minutes against RTC's promise, and the SLA credit tier it falls in."""
    share = percent(within_15m, objects)
    if share is None:
        return {"percent": None, "promise_met": None, "credit_tier": None}
    tier = next((credit for low, high, credit in RTC_CREDIT_TIERS if low <= share < high), None)
    return {"percent": float(share), "promise_met": share >= RTC_PROMISE, "credit_tier": tier}


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _late(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


class Tally:
    """The figures of one group of lines (a pair and class, a pair, a region pair, everything)."""

    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.within_rpo = 0
        self.within_15m = 0
        self.latency_unknown = 0
        self.latencies: dict[str, list[int]] = defaultdict(list)
        self.failures: Counter[tuple[str, str]] = Counter()
        self.rpo_seconds: set[int] = set()

    @property
    def objects(self) -> int:
        return sum(self.statuses[s] for s in COUNTED)

    def add(self, line: dict[str, Any]) -> None:
        status = str(line.get("status") or "UNKNOWN")
        self.statuses[status] += 1
        if status not in COUNTED:
            return
        if (rpo := _int(line.get("rpo_seconds"))) is not None:
            self.rpo_seconds.add(rpo)
        if status in FAILURES:
            self.failures[(status, str(line.get("reason") or "-"))] += 1
            return
        if not _late(line.get("missed_rpo")):
            self.within_rpo += 1
        latency = _int(line.get("latency_ms"))
        if latency is None:
            self.latency_unknown += 1
            return
        if latency <= RTC_MS:
            self.within_15m += 1
        band = line.get("size_band") if line.get("size_band") in SIZE_BAND_NAMES else UNKNOWN_SIZE
        self.latencies[band].append(latency)

    def summary(self) -> dict[str, Any]:
        objects = self.objects
        bands = {}
        for band in SIZE_BAND_NAMES:
            values = sorted(self.latencies.get(band, ()))
            if values:
                bands[band] = {"objects": len(values), **{n: nearest_rank(values, q) for n, q in PERCENTILES}}
                bands[band]["max_ms"] = values[-1]
        within_rpo_pct, within_15m_pct = percent(self.within_rpo, objects), percent(self.within_15m, objects)
        return {
            "objects": objects,
            "statuses": dict(sorted(self.statuses.items())),
            "excluded": sum(n for s, n in self.statuses.items() if s not in COUNTED),
            "rpo_seconds": sorted(self.rpo_seconds),
            "within_rpo": self.within_rpo,
            "within_rpo_pct": None if within_rpo_pct is None else float(within_rpo_pct),
            "not_within_rpo": objects - self.within_rpo,
            "within_15m": self.within_15m,
            "within_15m_pct": None if within_15m_pct is None else float(within_15m_pct),
            "latency_unknown": self.latency_unknown,
            "latency_by_size_band": bands,
            "failures": [
                {"status": status, "reason": reason, "objects": n}
                for (status, reason), n in sorted(self.failures.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            "rtc": rtc_comparison(self.within_15m, objects),
        }


def unique(lines: Iterable[dict[str, Any]], seen: set[str], counts: Counter[str]) -> Iterator[dict[str, Any]]:
    """Each verdict once: a line whose record_id was seen is a copy (Firehose may deliver twice)."""
    for line in lines:
        record = line.get("record_id")
        if record is not None:
            if record in seen:
                counts["duplicates"] += 1
                continue
            seen.add(record)
        yield line


def compute(lines: Iterable[dict[str, Any]], window: Window) -> dict[str, Any]:
    """Every figure of the report, as a JSON-ready dict (see the module's docstring for each)."""
    counts: Counter[str] = Counter()
    total = Tally()
    pairs: dict[tuple[str, str], Tally] = defaultdict(Tally)
    classes: dict[tuple[str, str], dict[str, Tally]] = defaultdict(lambda: defaultdict(Tally))
    regions: dict[tuple[str, str], Tally] = defaultdict(Tally)
    hours: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # hour -> [within RPO, not within]
    for line in unique(lines, set(), counts):
        if not is_verdict(line):  # a pair's daily proof shares the archive
            continue
        at = line_time(line)
        if at is None:
            counts["without_time"] += 1
            continue
        if not window.contains(at):
            counts["outside_window"] += 1
            continue
        counts["lines"] += 1
        pair = (str(line.get("source_bucket") or "unknown"), str(line.get("destination_bucket") or "unknown"))
        region = (str(line.get("source_region") or "unknown"), str(line.get("destination_region") or "unknown"))
        for tally in (total, pairs[pair], classes[pair][str(line.get("rpo_class") or DEFAULT_CLASS)], regions[region]):
            tally.add(line)
        if line.get("status") in COUNTED:
            good = line.get("status") == "COMPLETED" and not _late(line.get("missed_rpo"))
            hours[int(at // HOUR_S) * HOUR_S][0 if good else 1] += 1
    worst = sorted((h for h, (_, bad) in hours.items() if bad), key=lambda h: (-hours[h][1], h))[:WORST_HOURS]
    return {
        "window": {
            "label": window.label,
            "start": iso_s(window.start_s),
            "end": iso_s(window.end_s),
            "by": "source_time (detected_at when the source time is unknown)",
        },
        "lines": {
            "in_window": counts["lines"],
            "duplicates": counts["duplicates"],
            "outside_window": counts["outside_window"],
            "without_time": counts["without_time"],
        },
        "total": total.summary(),
        "pairs": [
            {
                "pair": f"{source}>{destination}",
                "source_bucket": source,
                "destination_bucket": destination,
                **pairs[(source, destination)].summary(),
                "classes": [
                    {"rpo_class": name, **classes[(source, destination)][name].summary()}
                    for name in sorted(classes[(source, destination)])
                ],
            }
            for source, destination in sorted(pairs)
        ],
        "region_pairs": [
            {"source_region": s, "destination_region": d, **_brief(regions[(s, d)].summary())}
            for s, d in sorted(regions)
        ],
        "hours": [{"hour": iso_s(h), "within_rpo": hours[h][0], "not_within_rpo": hours[h][1]} for h in sorted(hours)],
        "worst_hours": [{"hour": iso_s(h), "not_within_rpo": hours[h][1], "objects": sum(hours[h])} for h in worst],
        "rtc": {
            "promise": "99.99% of objects replicated within 15 minutes",
            "threshold_ms": RTC_MS,
            "credit_tiers": [
                {"from_percent": float(low), "below_percent": float(high), "credit": credit}
                for low, high, credit in RTC_CREDIT_TIERS
            ],
            "source": RTC_SOURCE,
            "note": "evidence, not a claim decision: the SLA counts only objects of rules with RTC on, per region "
            "pair and account, in the billing cycle the replication began; AWS decides a claim from its own records",
        },
    }


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
    keep = ("objects", "within_15m", "within_15m_pct", "latency_unknown", "rtc")
    return {k: summary[k] for k in keep}


# ---------------------------------------------------------------- local archive objects


def read_archive_paths(paths: Iterable[str], counts: Counter[str] | None = None) -> Iterator[dict[str, Any]]:
    """The lines of archive objects on disk: files, or directories searched for *.json.gz and *.json.
    An object that cannot be read is named on stderr and counted in `counts["unreadable"]`, and the
    others are read on."""
    counts = counts if counts is not None else Counter()
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith((".json.gz", ".json")))
        elif path.is_file():
            files = [path]
        else:
            raise UsageError(f"{name}: no such file or directory")
        for file in files:
            try:
                lines = read_archive(file.read_bytes())
            except (OSError, ValueError, EOFError) as error:  # json and zlib errors are ValueErrors
                counts["unreadable"] += 1
                print(f"crrmon report: {file}: not an archive object ({error}); left out", file=sys.stderr)
                continue
            yield from lines


# ---------------------------------------------------------------- Markdown


def pct(value: float | None) -> str:
    """A percentage rounded down to 3 decimals: 99.99% shown is at least 99.99%."""
    if value is None:
        return "-"
    return f"{math.floor(round(value * 1000, 6)) / 1000:.3f}%"  # round first: 99.99 * 1000 is 99989.999...


def seconds(ms: int | None) -> str:
    if ms is None:
        return "-"
    return f"{ms / 1000:.1f} s" if ms < 600_000 else f"{ms / 60000:.1f} min"


def _rtc_text(rtc: dict[str, Any]) -> str:
    if rtc["percent"] is None:
        return "no objects"
    met = "met" if rtc["promise_met"] else "not met"
    tier = f"credit tier {rtc['credit_tier']}" if rtc["credit_tier"] else "no credit tier"
    return f"{met} ({tier})"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return out


def _summary_row(name: str, s: dict[str, Any]) -> list[str]:
    return [
        name,
        str(s["objects"]),
        pct(s["within_rpo_pct"]),
        str(s["not_within_rpo"]),
        pct(s["within_15m_pct"]),
        str(s["latency_unknown"]),
        str(s["excluded"]),
        _rtc_text(s["rtc"]),
    ]


SUMMARY_HEAD = [
    "",
    "objects",
    "within RPO",
    "not within RPO",
    "within 15 min",
    "latency unknown",
    "excluded",
    "RTC 99.99%",
]


def markdown(report: dict[str, Any]) -> str:
    w, total = report["window"], report["total"]
    out = [
        f"# Replication report: {w['label']}",
        "",
        f"Objects whose source version was written from {w['start']} to {w['end']} (end excluded), by "
        f"{w['by']}: {report['lines']['in_window']} verdicts (and {report['lines']['duplicates']} copies of "
        "verdicts, left out).",
        "",
        "Objects: COMPLETED, FAILED, MISMATCH and EXPIRED verdicts (SOURCE_DELETED and NOT_IN_SCOPE are excluded). "
        "Within RPO: COMPLETED and not late. Within 15 min: COMPLETED with a latency of at most 15 minutes; "
        "a replica found by a HEAD has no latency and is not counted within (latency unknown). "
        "Percentages are rounded down.",
        "",
        "## Summary",
        "",
    ]
    rows = [_summary_row("**all pairs**", total)]
    rows += [_summary_row(p["pair"].replace(">", " → "), p) for p in report["pairs"]]
    out += _table(SUMMARY_HEAD, rows)
    out += ["", "## Per pair and RPO class", ""]
    rows = [
        [
            p["pair"].replace(">", " → "),
            c["rpo_class"],
            ", ".join(f"{r} s" for r in c["rpo_seconds"]) or "-",
            *_summary_row("", c)[1:6],
        ]
        for p in report["pairs"]
        for c in p["classes"]
    ]
    out += _table(
        ["pair", "class", "RPO", "objects", "within RPO", "not within RPO", "within 15 min", "latency unknown"], rows
    )
    out += ["", "## Latency by size band", "", "COMPLETED verdicts with a latency; percentiles by nearest rank.", ""]
    rows = [
        [
            name,
            band,
            str(b["objects"]),
            seconds(b["p50_ms"]),
            seconds(b["p90_ms"]),
            seconds(b["p99_ms"]),
            seconds(b["max_ms"]),
        ]
        for name, bands in [("all pairs", total["latency_by_size_band"])]
        + [(p["pair"].replace(">", " → "), p["latency_by_size_band"]) for p in report["pairs"]]
        for band, b in bands.items()
    ]
    out += _table(["pair", "size band", "objects", "p50", "p90", "p99", "max"], rows) if rows else ["No latencies."]
    out += ["", "## Failures by reason", ""]
    rows = [
        [p["pair"].replace(">", " → "), f["status"], f["reason"], str(f["objects"])]
        for p in report["pairs"]
        for f in p["failures"]
    ]
    out += _table(["pair", "status", "reason", "objects"], rows) if rows else ["None."]
    out += ["", "## Worst hours", "", "Hours (by source time, UTC) with the most objects not within their RPO.", ""]
    rows = [[h["hour"], str(h["not_within_rpo"]), str(h["objects"])] for h in report["worst_hours"]]
    out += _table(["hour", "not within RPO", "objects"], rows) if rows else ["Every object was within its RPO."]
    rtc = report["rtc"]
    out += [
        "",
        "## Compared with S3 Replication Time Control",
        "",
        f"S3 RTC promises {rtc['promise']}. Credit tiers of the RTC SLA "
        f"({rtc['source']}), by monthly 15-minute replication percentage: "
        + "; ".join(
            (f"{t['from_percent']:g}% to " if t["from_percent"] else "")
            + f"below {t['below_percent']:g}%: {t['credit']}"
            for t in rtc["credit_tiers"]
        )
        + ". The figures here are "
        + rtc["note"]
        + ".",
        "",
    ]
    rows = [
        [
            f"{r['source_region']} → {r['destination_region']}",
            str(r["objects"]),
            pct(r["within_15m_pct"]),
            _rtc_text(r["rtc"]),
        ]
        for r in report["region_pairs"]
    ]
    out += _table(["region pair", "objects", "within 15 min", "RTC 99.99%"], rows) if rows else ["No objects."]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- HTML

SCRIPT = (
    r"""
(function () {
  const D = JSON.parse(document.getElementById("report-data").textContent);
"""
    + CHART_HELPERS
    + r"""
  const SERIES = [["p50_ms", "p50", "#1565c0"], ["p90_ms", "p90", "#ef6c00"], ["p99_ms", "p99", "#c62828"]];
  let drawn = 0;
  function legend(parent, items) {
    const div = document.createElement("div"); div.className = "legend";
    for (const [name, color] of items) {
      const item = document.createElement("span");
      item.innerHTML = '<i style="background:' + color + '"></i>';
      item.appendChild(document.createTextNode(name));
      div.appendChild(item);
    }
    parent.appendChild(div);
  }

  // 1. latency percentiles per size band, on a log scale (seconds): all pairs, then each pair
  const lat = document.getElementById("latency-charts");
  for (const [title, bands] of D.latency) {
    const names = Object.keys(bands);
    const c = card(lat, title);
    const W = 560, H = 192, x0 = 56, y0 = 150, w = 490, h = 130;
    const s = svg(c, W, H);
    const values = names.flatMap(b => SERIES.map(([key]) => Math.max(0.001, bands[b][key] / 1000)));
    const lo = Math.floor(Math.log10(Math.min(1, ...values)));
    const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...values))));
    const y = v => y0 - (Math.log10(Math.max(v, Math.pow(10, lo))) - lo) / (hi - lo) * h;
    const none = {values: [], top: 1};
    axes(s, x0, y0, w, h, none, none, "size band (the tables give the objects of each)", "seconds (log scale)");
    for (let e = lo; e <= hi; e++) {
      const ty = y(Math.pow(10, e));
      el("path", {d: "M" + (x0 - 3) + " " + ty + " H" + x0, stroke: "#888"}, s);
      if (e > lo) el("path", {d: "M" + x0 + " " + ty + " H" + (x0 + w), stroke: "#eee"}, s);
      el("text", {x: x0 - 5, y: ty + 3.5, "text-anchor": "end", "font-size": 10, class: "tick y"}, s,
         fmt(Math.pow(10, e)));
    }
    if (900 <= Math.pow(10, hi)) {  // RTC's threshold
      el("path", {d: "M" + x0 + " " + y(900) + " H" + (x0 + w), stroke: "#555", "stroke-dasharray": "4 3",
                  class: "rtc"}, s);
      el("text", {x: x0 + 3, y: y(900) - 3, "font-size": 9, fill: "#555"}, s, "15 min");
    }
    const group = w / Math.max(1, names.length), bw = Math.min(24, (group - 8) / SERIES.length);
    names.forEach((band, i) => {
      const gx = x0 + i * group + (group - bw * SERIES.length) / 2;
      SERIES.forEach(([key, label, color], j) => {
        const top = y(bands[band][key] / 1000), bh = y0 - top;
        const r = el("path", {d: "M" + (gx + j * bw).toFixed(1) + " " + y0 + " v" + (-bh).toFixed(1) + " h" +
                      (bw - 1).toFixed(1) + " v" + bh.toFixed(1) + " Z", fill: color, class: "bar"}, s);
        el("title", {}, r, band + " " + label + ": " + fmt(bands[band][key] / 1000) + " s");
      });
      const cx = x0 + (i + 0.5) * group;
      const t = el("text", {x: cx, y: y0 + 13, "text-anchor": "middle", "font-size": 10, class: "band"}, s, band);
      el("title", {}, t, fmt(bands[band].objects) + " objects with a latency");
    });
    legend(c, SERIES.map(([, label, color]) => [label, color]));
    drawn++;
  }

  // 2. objects per hour of the window, within their RPO or not
  const hc = document.getElementById("hour-chart");
  const c2 = card(hc, "objects per hour, by source time (UTC)");
  const W2 = 760, H2 = 236, x0 = 56, y0 = 190, w2 = 680, h2 = 170;
  const s2 = svg(c2, W2, H2);
  const hours = (D.end_s - D.start_s) / 3600;
  const xt = ticks(hours / 24, 8);
  const most = Math.max(1, ...D.hours.map(r => r[1] + r[2]));
  const yt = ticks(most, 4);
  axes(s2, x0, y0, w2, h2, xt, yt, "days since " + D.start, "objects");
  const bw = Math.max(0.5, w2 / (xt.top * 24));
  let good = "", bad = "";
  for (const [t, ok, late] of D.hours) {
    const x = x0 + (t - D.start_s) / 86400 / xt.top * w2;
    const gh = ok / yt.top * h2, lh = late / yt.top * h2;
    if (ok) good += "M" + x.toFixed(2) + " " + y0 + " v" + (-gh).toFixed(2) + " h" + bw.toFixed(2) +
                    " v" + gh.toFixed(2) + " Z ";
    if (late) bad += "M" + x.toFixed(2) + " " + (y0 - gh).toFixed(2) + " v" + (-lh).toFixed(2) + " h" + bw.toFixed(2) +
                     " v" + lh.toFixed(2) + " Z ";
  }
  el("path", {d: good || "M0 0", fill: "#2e7d32", class: "hours within"}, s2);
  el("path", {d: bad || "M0 0", fill: "#c62828", class: "hours late"}, s2);
  legend(c2, [["within RPO", "#2e7d32"], ["not within RPO", "#c62828"]]);
  drawn++;

  document.body.setAttribute("data-charts-rendered", String(drawn));
  document.getElementById("render-status").textContent = drawn + " charts drawn";
})();
"""
)


def _markdown_tables_as_html(text: str) -> str:
    """The Markdown report's paragraphs and tables as HTML (the report writes no other Markdown)."""
    out, rows = [], []

    def flush() -> None:
        if rows:
            head, body = rows[0], rows[2:]
            out.append(
                "<table><tr>"
                + "".join(f"<th>{html.escape(c)}</th>" for c in head)
                + "</tr>"
                + "".join(
                    "<tr>"
                    + "".join(f"<td{' class=n' if _numeric(c) else ''}>{html.escape(c)}</td>" for c in r)
                    + "</tr>"
                    for r in body
                )
                + "</table>"
            )
            rows.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            rows.append([c.strip().replace("\\|", "|").replace("**", "") for c in line.strip("|").split(" | ")])
            continue
        flush()
        if line.startswith("## "):
            out.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("# "):
            out.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line:
            out.append(f'<p class="muted">{html.escape(line)}</p>')
    flush()
    return "\n".join(out)


def _numeric(cell: str) -> bool:
    return bool(cell) and (cell[0].isdigit() or cell == "-")


def render_html(report: dict[str, Any], window: Window) -> str:
    """One self-contained page: the Markdown report's tables, and SVG charts drawn by its inline script."""
    latency = [["all pairs", report["total"]["latency_by_size_band"]]]
    latency += [[p["pair"].replace(">", " \u2192 "), p["latency_by_size_band"]] for p in report["pairs"]]
    data = {
        "start": report["window"]["start"],
        "start_s": window.start_s,
        "end_s": window.end_s,
        "latency": latency,
        "hours": [[_epoch(h["hour"]), h["within_rpo"], h["not_within_rpo"]] for h in report["hours"]],
    }
    embedded = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    body = _markdown_tables_as_html(markdown(report))
    title = html.escape(f"Replication report: {report['window']['label']}")
    charts = (
        '<h2>Charts</h2>\n<p class="muted"><span id="render-status">charts not drawn (JavaScript off?)</span></p>\n'
        '<div class="charts" id="latency-charts"></div>\n<div class="charts" id="hour-chart"></div>'
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body data-charts-rendered="0">
{body}
{charts}
<script type="application/json" id="report-data">{embedded}</script>
<script>{SCRIPT}</script>
</body></html>
"""


# ---------------------------------------------------------------- writing it


def render(report: dict[str, Any], window: Window, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report, indent=1, ensure_ascii=False) + "\n"
    if fmt == "html":
        return render_html(report, window)
    if fmt == "markdown":
        return markdown(report)
    raise UsageError(f"--format {fmt!r}: one of {', '.join(FORMATS)}")


def write_report(
    lines: Iterable[dict[str, Any]], window: Window, fmt: str = "markdown", path: str | None = None
) -> dict:
    """Compute the report of `lines` (archive lines, in any order, copies included) over `window` and
    write it as `fmt` (markdown, json or html) to `path` (None: stdout). Returns the computed report."""
    report = compute(lines, window)
    text = render(report, window, fmt)
    if path is None:
        sys.stdout.write(text)
    else:
        Path(path).write_text(text, encoding="utf-8")
    return report


# ---------------------------------------------------------------- Athena

ATHENA_COLUMNS = (
    "record_id",
    "source_bucket",
    "source_region",
    "destination_bucket",
    "destination_region",
    "status",
    "reason",
    "missed_rpo",
    "rpo_class",
    "rpo_seconds",
    "size_band",
    "latency_ms",
    "source_time",
    "detected_at",
)


def athena_sql(athena: Athena, window: Window) -> str:
    """The window's lines, the columns the report reads (the figures are computed here, as for the bucket).
    The publisher writes every time in one form (2026-11-03T10:15:00.000Z), so the strings compare as times."""
    when = "coalesce(source_time, detected_at)"
    return (
        f"SELECT {', '.join(ATHENA_COLUMNS)} FROM {athena.relation} "
        f"WHERE {partition_filter(window.start_s - 86400)} "
        f"AND {when} >= {sql_string(iso_ms(window.start_s))} AND {when} < {sql_string(iso_ms(window.end_s))} "
        "AND kind IS NULL"
    )


def athena_lines(ctx: Context, args, window: Window) -> list[dict[str, Any]]:
    athena = Athena(ctx, args)
    return athena.all(athena_sql(athena, window))


# ---------------------------------------------------------------- the command


def window_of(args, now_s: float) -> Window:
    if args.month:
        if args.since or args.until:
            raise UsageError("give --month, or --since (and --until), not both")
        return Window.month(args.month)
    if not args.since:
        raise UsageError("give the window: --month 2026-11, or --since (and --until, default now)")
    return Window.between(since(args.since, now_s), since(args.until, now_s) if args.until else now_s)


def report(ctx: Context | None, args, *, now: Callable[[], float] = time.time) -> int:
    """The command. Without a context (--archive-dir: objects on disk) it asks no AWS service."""
    now_s = ctx.now() if ctx else now()
    window = window_of(args, now_s)
    if args.archive_dir or ctx is None:
        if args.source:
            raise UsageError("give --archive-dir or --from, not both")
        lines: Iterable[dict[str, Any]] = read_archive_paths(args.archive_dir)
    elif args.source == "athena":
        lines = athena_lines(ctx, args, window)
    else:
        # Verdicts are reached after the source version was written: read from a day before the window on.
        lines = archive_lines(ctx, window.start_s - 86400)
    result = write_report(lines, window, args.format, args.output_file)
    if args.output_file:
        print(f"crrmon report: wrote {args.output_file} ({args.format})", file=sys.stderr)
    return 1 if result["total"]["not_within_rpo"] else 0
