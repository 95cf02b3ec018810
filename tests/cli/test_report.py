"""crrmon report: the figures of a synthetic archive with known answers, its three formats, its sources."""

from __future__ import annotations

import gzip
import html
import json
import re
from datetime import UTC, datetime

import pytest

from crrmon.publish import pack_records
from crrmon_cli.main import main
from crrmon_cli.report import ATHENA_COLUMNS, Window, compute, markdown, render, rtc_comparison, write_report
from tests.integration.test_report_render import MEASURE, dump_dom

from .conftest import DST, DST2, SRC, Recorder, fail
from .test_archive import _athena_results

NOV = Window.month("2026-11")
A, B = ("src-a", "dst-a"), ("src-a", "dst-b")


def line(
    n: int,
    status: str = "COMPLETED",
    *,
    pair=A,
    latency=None,
    late=False,
    band="<1MB",
    rpo_class="default",
    at="2026-11-03T10:15:00.000Z",
    reason=None,
    region="us-west-2",
) -> dict:
    rpo = {"gold": 300, "default": 900}[rpo_class]
    return {
        "record_id": f"{pair[1]}-{n}",
        "source_bucket": pair[0],
        "source_region": "us-east-1",
        "destination_bucket": pair[1],
        "destination_region": region,
        "key": f"k/{n}",
        "status": status,
        "reason": reason,
        "missed_rpo": late,
        "rpo_class": rpo_class,
        "rpo_seconds": rpo,
        "size_band": band,
        "latency_ms": latency,
        "source_time": at,
        "detected_at": at,
    }


def archive() -> list[dict]:
    """Pair A: 10 objects (7 on time, one of them found by a HEAD without a latency; 2 late; 1 FAILED) in two
    RPO classes and three size bands, and 2 verdicts that count for nothing. Pair B: 4 on time. Two lines twice."""
    a = [
        line(1, latency=1000, rpo_class="gold"),
        line(2, latency=2000, rpo_class="gold"),
        line(3, latency=3000, rpo_class="gold"),
        line(4, latency=4000),
        line(5, latency=400_000, late=True, rpo_class="gold", at="2026-11-03T11:20:00.000Z"),  # late, within 15 min
        line(6, latency=10_000, band="1-16MB"),
        line(7, latency=20_000, band="1-16MB"),
        line(8, latency=1_000_000, late=True, band="128MB-1GB", at="2026-11-05T02:59:59.999Z"),
        line(9),  # COMPLETED, found by HEAD: no latency
        line(
            10, "FAILED", late=True, rpo_class="gold", reason="DstPutObjectNotPermitted", at="2026-11-05T02:00:00.000Z"
        ),
        line(11, "NOT_IN_SCOPE", reason="replica"),
        line(12, "SOURCE_DELETED"),
    ]
    b = [line(n, pair=B, latency=5000, region="eu-west-1") for n in range(1, 5)]
    return [*a, *b, a[0], a[9]]


def test_the_figures_of_a_synthetic_month():
    report = compute(archive(), NOV)
    assert report["lines"] == {"in_window": 16, "duplicates": 2, "outside_window": 0, "without_time": 0}
    pair_a, pair_b = report["pairs"]
    assert pair_a["pair"] == "src-a>dst-a" and pair_b["pair"] == "src-a>dst-b"
    assert pair_a["objects"] == 10 and pair_a["excluded"] == 2
    assert pair_a["statuses"] == {"COMPLETED": 9, "FAILED": 1, "NOT_IN_SCOPE": 1, "SOURCE_DELETED": 1}
    assert (pair_a["within_rpo"], pair_a["not_within_rpo"], pair_a["within_rpo_pct"]) == (7, 3, 70.0)
    # within 15 minutes: the 6 on time with a latency and the late one at 400 s; not the HEAD one, not 1,000 s
    assert (pair_a["within_15m"], pair_a["within_15m_pct"], pair_a["latency_unknown"]) == (7, 70.0, 1)
    assert pair_a["failures"] == [{"status": "FAILED", "reason": "DstPutObjectNotPermitted", "objects": 1}]
    # nearest rank: <1MB holds 1, 2, 3, 4 and 400 s -> p50 the 3rd, p90 and p99 the 5th
    assert pair_a["latency_by_size_band"] == {
        "<1MB": {"objects": 5, "p50_ms": 3000, "p90_ms": 400_000, "p99_ms": 400_000, "max_ms": 400_000},
        "1-16MB": {"objects": 2, "p50_ms": 10_000, "p90_ms": 20_000, "p99_ms": 20_000, "max_ms": 20_000},
        "128MB-1GB": {"objects": 1, "p50_ms": 1_000_000, "p90_ms": 1_000_000, "p99_ms": 1_000_000, "max_ms": 1_000_000},
    }
    classes = {c["rpo_class"]: c for c in pair_a["classes"]}
    assert (
        classes["gold"]["objects"] == 5
        and classes["gold"]["within_rpo"] == 3
        and classes["gold"]["rpo_seconds"] == [300]
    )
    assert classes["default"]["objects"] == 5 and classes["default"]["within_rpo"] == 4
    assert classes["default"]["rpo_seconds"] == [900] and classes["default"]["excluded"] == 2
    assert (pair_b["objects"], pair_b["within_rpo"], pair_b["within_15m"]) == (4, 4, 4)
    total = report["total"]
    assert (total["objects"], total["within_rpo"], total["within_15m"]) == (14, 11, 11)
    assert total["latency_by_size_band"]["<1MB"]["objects"] == 9  # pair B's four in the same band
    assert total["latency_by_size_band"]["<1MB"]["p50_ms"] == 5000
    # the worst hours: 02:00 on the 5th (the FAILED and the one late by 1,000 s), then 11:00 on the 3rd
    assert report["worst_hours"] == [
        {"hour": "2026-11-05T02:00:00Z", "not_within_rpo": 2, "objects": 2},
        {"hour": "2026-11-03T11:00:00Z", "not_within_rpo": 1, "objects": 1},
    ]
    hours = {h["hour"]: (h["within_rpo"], h["not_within_rpo"]) for h in report["hours"]}
    assert hours["2026-11-03T10:00:00Z"] == (11, 0)  # excluded verdicts are in no hour
    regions = {r["destination_region"]: r for r in report["region_pairs"]}
    assert regions["us-west-2"]["objects"] == 10 and regions["eu-west-1"]["within_15m_pct"] == 100.0
    assert pair_a["rtc"] == {"percent": 70.0, "promise_met": False, "credit_tier": "100%"}
    assert pair_b["rtc"] == {"percent": 100.0, "promise_met": True, "credit_tier": None}


def test_copies_of_a_verdict_count_once_whatever_their_order():
    once = compute(archive()[:16], NOV)
    again = compute([*reversed(archive()), *archive()], NOV)
    assert again["lines"]["duplicates"] == 2 * 18 - 16
    assert again["total"] == once["total"] and again["pairs"] == once["pairs"]


def test_a_pairs_daily_proof_in_the_archive_counts_for_nothing():
    proof = {"kind": "daily-proof", "record_id": "p1", "source_bucket": A[0], "destination_bucket": A[1]}
    proof["detected_at"] = "2026-11-03T10:15:00.000Z"
    assert compute([*archive(), proof], NOV)["total"] == compute(archive(), NOV)["total"]


def test_the_window_is_the_source_time_start_included_end_excluded():
    lines = [
        line(1, latency=1000, at="2026-11-01T00:00:00.000Z"),  # the first instant: in
        line(2, latency=1000, at="2026-10-31T23:59:59.999Z"),  # before: out
        line(3, latency=1000, at="2026-12-01T00:00:00.000Z"),  # the end: out
        line(4, latency=1000, at="2026-11-30T23:59:59.999Z"),  # the last millisecond: in
        # written in October, decided in November: October's object
        {**line(5, latency=1000, at="2026-10-31T23:50:00.000Z"), "detected_at": "2026-11-01T00:10:00.000Z"},
        # no source time (a failure report of a version never seen): the verdict's time
        {**line(6, "FAILED", late=True, at="2026-11-02T00:00:00.000Z"), "source_time": None},
        {**line(7), "source_time": None, "detected_at": None},
    ]
    report = compute(lines, NOV)
    assert report["lines"] == {"in_window": 3, "duplicates": 0, "outside_window": 3, "without_time": 1}
    assert report["total"]["statuses"] == {"COMPLETED": 2, "FAILED": 1}
    assert Window.month("2026-12").end_s == datetime(2027, 1, 1, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("within", "met", "tier"),
    [
        (9999, True, None),  # exactly 99.99%: the promise is met
        (9998, False, None),  # 99.98%: missed, but the SLA's credits start below 99.9%
        (9990, False, None),  # exactly 99.9%: no credit
        (9989, False, "10%"),
        (9800, False, "10%"),  # exactly 98.0%
        (9799, False, "25%"),
        (9500, False, "25%"),  # exactly 95.0%
        (9499, False, "100%"),
        (10000, True, None),
    ],
)
def test_the_rtc_comparison_at_its_boundaries(within, met, tier):
    answer = rtc_comparison(within, 10_000)
    assert (answer["promise_met"], answer["credit_tier"]) == (met, tier)
    assert answer["percent"] == within / 100


def test_exactly_99_99_percent_of_a_month_within_15_minutes_meets_the_rtc_promise():
    lines = [line(n, latency=900_000 if n else 900_001, late=n == 0) for n in range(10_000)]
    report = compute(lines, NOV)
    assert report["total"]["within_15m"] == 9999  # 900,000 ms is within, 900,001 is not
    assert report["total"]["rtc"] == {"percent": 99.99, "promise_met": True, "credit_tier": None}
    assert compute([*lines[:9999], line(99_999, latency=900_001)], NOV)["total"]["rtc"]["promise_met"] is False
    assert "| **all pairs** | 10000 | 99.990% | 1 | 99.990% | 0 | 0 | met (no credit tier) |" in markdown(report)


def test_markdown_shape_and_rounding_down():
    text = markdown(compute(archive(), NOV))
    sections = re.findall(r"^## (.+)$", text, re.M)
    assert sections == [
        "Summary",
        "Per pair and RPO class",
        "Latency by size band",
        "Failures by reason",
        "Worst hours",
        "Compared with S3 Replication Time Control",
    ]
    assert text.startswith("# Replication report: 2026-11\n")
    assert "| src-a → dst-a | 10 | 70.000% | 3 | 70.000% | 1 | 2 | not met (credit tier 100%) |" in text
    assert "| src-a → dst-a | gold | 300 s | 5 | 60.000% | 2 | 80.000% | 0 |" in text
    assert "| src-a → dst-a | <1MB | 5 | 3.0 s | 400.0 s | 400.0 s | 400.0 s |" in text
    assert "| 2026-11-05T02:00:00Z | 2 | 2 |" in text
    assert "10%" in text and "evidence, not a claim decision" in text
    # 2 of 3 is 66.666...%: shown rounded down, never up
    two_thirds = compute([line(1, latency=1), line(2, latency=1), line(3, latency=1, late=True)], NOV)
    assert "66.666%" in markdown(two_thirds) and "66.667%" not in markdown(two_thirds)


def test_json_and_markdown_from_archive_objects_on_disk(tmp_path, capsys):
    lines = archive()
    (tmp_path / "2026" / "11").mkdir(parents=True)
    (tmp_path / "2026" / "11" / "a.json.gz").write_bytes(b"".join(pack_records(lines[:8])))  # as Firehose writes
    (tmp_path / "2026" / "11" / "b.json").write_text("".join(json.dumps(x) + "\n" for x in lines[8:]))
    (tmp_path / "broken.json.gz").write_bytes(gzip.compress(b"{not json\n"))
    (tmp_path / "notes.txt").write_text("not an archive object")
    code = main(["report", "--archive-dir", str(tmp_path), "--month", "2026-11", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 1  # objects not within their RPO are a finding
    assert "broken.json.gz: not an archive object" in captured.err
    answer = json.loads(captured.out)
    assert set(answer) == {"window", "lines", "total", "pairs", "region_pairs", "hours", "worst_hours", "rtc"}
    assert answer["total"] == compute(lines, NOV)["total"]
    assert answer["window"] == {
        "label": "2026-11",
        "start": "2026-11-01T00:00:00Z",
        "end": "2026-12-01T00:00:00Z",
        "by": "source_time (detected_at when the source time is unknown)",
    }
    assert (
        main(
            [
                "report",
                "--archive-dir",
                str(tmp_path / "2026"),
                "--since",
                "2026-11-04T00:00:00Z",
                "--until",
                "2026-11-06T00:00:00Z",
            ]
        )
        == 1
    )
    text = capsys.readouterr().out
    assert "# Replication report: 2026-11-04T00:00:00Z to 2026-11-06T00:00:00Z" in text
    assert "| **all pairs** | 2 | 0.000% | 2 |" in text
    on_time = tmp_path / "on-time.json"
    on_time.write_text(json.dumps(line(1, latency=1000)) + "\n")
    assert main(["report", "--archive-dir", str(on_time), "--month", "2026-11"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--month", "2026-13"], "is not a month like 2026-11"),
        (["--month", "2026-11", "--since", "2d"], "not both"),
        ([], "give the window"),
        (["--since", "2026-11-05T00:00:00Z", "--until", "2026-11-04T00:00:00Z"], "before it starts"),
        (["--month", "2026-11", "--from", "archive"], "--archive-dir or --from"),
    ],
)
def test_report_usage_errors(tmp_path, capsys, argv, message):
    assert main(["report", "--archive-dir", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_report_names_a_missing_path(tmp_path, capsys):
    assert main(["report", "--archive-dir", str(tmp_path / "nothing"), "--month", "2026-11"]) == 2
    assert "nothing: no such file or directory" in capsys.readouterr().err


def test_report_html_charts_render_in_headless_chromium(tmp_path):
    page = tmp_path / "report.html"
    report = write_report(archive(), NOV, "html", str(page))
    text = page.read_text()
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")  # nothing fetched
    dom = dump_dom(page, tmp_path / "profile")
    charts = 1 + len(report["pairs"]) + 1  # latency by size band: all pairs and each pair; objects per hour
    assert re.search(rf'<body[^>]*data-charts-rendered="{charts}"', dom), dom[:500]
    assert f"{charts} charts drawn" in dom
    # p50, p90 and p99 bars per size band: all pairs 3 bands, pair A 3, pair B 1
    assert dom.count('class="bar"') == 3 * (3 + 3 + 1)
    within = re.search(r'<path d="([^"]+)"[^>]*class="hours within"', dom).group(1)
    late = re.search(r'<path d="([^"]+)"[^>]*class="hours late"', dom).group(1)
    assert within.count("Z") == 1 and late.count("Z") == 2  # one bar per hour that has such objects
    assert "<td>DstPutObjectNotPermitted</td>" in dom


def test_report_html_charts_show_their_labels_whole(tmp_path):
    """Long pair names, six size bands from a second to two hours, a month of hours: no text cut at an edge."""
    long_pair = ("prod-data-archive-use1", "prod-data-archive-backup-usw2")
    latencies = {"<1MB": 900, "1-16MB": 4000, "16-128MB": 30_000, "128MB-1GB": 240_000, "1-5GB": 1_900_000}
    lines = [
        line(
            i * 10 + j, pair=long_pair, band=band, latency=ms * (j + 1), at=f"2026-11-{1 + i % 30:02d}T0{j}:00:00.000Z"
        )
        for i, (band, ms) in enumerate([*latencies.items(), (">=5GB", 7_200_000)])
        for j in range(3)
    ]
    page = tmp_path / "report.html"
    page.write_text(render(compute(lines, NOV), NOV, "html").replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = dump_dom(page, tmp_path / "profile")
    assert 'data-charts-rendered="3"' in dom
    assert html.unescape(re.search(r'data-clipped="([^"]*)"', dom).group(1)) == "[]"
    ticks = json.loads(html.unescape(re.search(r'data-ticks="([^"]*)"', dom).group(1)))
    assert ticks[0] == "|1,10,100,1,000,10,000,100,000"  # decades of seconds: the p50 of 1.8 s to the p99 of 21,600 s


def test_report_from_the_stacks_archive_bucket(world, cli):
    """Lines as the monitor writes them (gzip members through Firehose), and a copy of one of them."""
    for i, delay in enumerate((2, 4, 6, 8)):
        world.replicated(f"ok/{i}", after_s=delay)
    fail(world, "bad/1")
    objects = world.s3.list_objects_v2(Bucket=world.stack.archive_bucket, Prefix="records/")["Contents"]
    first = world.s3.get_object(Bucket=world.stack.archive_bucket, Key=objects[0]["Key"])["Body"].read()
    world.s3.put_object(Bucket=world.stack.archive_bucket, Key=objects[0]["Key"] + ".copy.json.gz", Body=first)
    world.clock.advance(1)  # the window ends now, excluded: the FAILED verdict was reached a second ago
    assert cli("report", "--since", "1h", "--format", "json") == 1
    answer = json.loads(cli.out)
    pairs = {p["pair"]: p for p in answer["pairs"]}
    west, eu = pairs[f"{SRC}>{DST}"], pairs[f"{SRC}>{DST2}"]
    assert (west["objects"], west["within_rpo"], west["statuses"]) == (5, 4, {"COMPLETED": 4, "FAILED": 1})
    assert west["latency_by_size_band"]["<1MB"] == {
        "objects": 4,
        "p50_ms": 4000,
        "p90_ms": 8000,
        "p99_ms": 8000,
        "max_ms": 8000,
    }
    assert (eu["objects"], eu["within_15m"], eu["rtc"]["promise_met"]) == (4, 4, True)
    assert answer["total"]["objects"] == 9
    assert cli("report", "--from", "archive", "--since", "1h") == 1
    assert f"| {SRC} → {DST} | 5 | 80.000% | 1 | 80.000% | 0 | 0 | not met (credit tier 100%) |" in cli.out


def test_the_worst_hours_are_five_most_late_first_then_the_earlier():
    late = [line(n, late=True, latency=1, at=f"2026-11-02T{n:02d}:30:00.000Z") for n in range(1, 8)]
    late.append(line(99, "EXPIRED", late=True, at="2026-11-02T07:10:00.000Z", reason="removed by TTL before a verdict"))
    worst = compute([*late, line(100, latency=1, at="2026-11-02T00:00:00.000Z")], NOV)["worst_hours"]
    assert [(h["hour"][11:13], h["not_within_rpo"]) for h in worst] == [
        ("07", 2),
        ("01", 1),
        ("02", 1),
        ("03", 1),
        ("04", 1),
    ]


def test_report_through_athena_reads_the_windows_lines_and_computes_the_same_figures(world, cli):
    """moto runs no SQL: the answer is Athena's form of the synthetic archive (every value a string)."""
    sent = Recorder(world.session, "before-parameter-build.athena.StartQueryExecution")
    names = list(ATHENA_COLUMNS)
    text = [
        [None if x.get(n) is None else str(x[n]).lower() if isinstance(x[n], bool) else str(x[n]) for n in names]
        for x in archive()
    ]
    _athena_results(text, names)
    argv = ["--athena-database", "crrmon_test_archive", "--athena-output", "s3://results/q/", "--month", "2026-11"]
    assert cli("report", "--from", "athena", *argv, "--format", "json") == 1
    answer = json.loads(cli.out)
    expected = compute(archive(), NOV)
    assert answer["total"] == expected["total"] and answer["pairs"] == expected["pairs"]
    [request] = sent.calls
    sql = request["QueryString"]
    assert sql.startswith("SELECT record_id, source_bucket, ") and '"crrmon_test_archive"."replication_records"' in sql
    assert "concat(year, '-', month, '-', day) >= '2026-10-31'" in sql
    assert "coalesce(source_time, detected_at) >= '2026-11-01T00:00:00.000Z'" in sql
    assert "coalesce(source_time, detected_at) < '2026-12-01T00:00:00.000Z'" in sql
    assert sql.endswith("AND kind IS NULL")  # verdicts only
