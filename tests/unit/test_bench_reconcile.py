"""The benchmark of the scheduled reconciliation (`make bench` section 7), on small passes: the real
handler on canned AWS makes the requests a pass must make, and the report bills what it counted."""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import replace

import boto3
import pytest

from crrmon_local.bench import cost, model, report, speed

TRACKED, UNTRACKED, OLD, LATENCY = 2_550, 1_500, 1_200, 1_000


@pytest.fixture(scope="module")
def runs():
    from crrmon import runtime

    saved = dict(os.environ)
    try:
        yield speed.reconcile(
            TRACKED,
            2,
            untracked_versions=UNTRACKED,
            untracked_rounds=1,
            old_versions=OLD,
            latency_versions=LATENCY,
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
        runtime.reset()
        boto3.DEFAULT_SESSION = None


@pytest.fixture(scope="module")
def prices() -> cost.PriceTable:
    return cost.load_prices()


def test_a_tracked_pass_lists_every_page_and_asks_the_table_100_keys_at_a_time(runs):
    run = runs["tracked"]
    calls = run.timing.calls
    assert run.result["complete"] and run.versions == run.result["listed"] == TRACKED
    assert calls["s3.ListObjectVersions"] == math.ceil(TRACKED / 1000) == 3
    # every version is judged: one key each (one destination), 100 keys a request, pages of 1,000
    assert run.keys_asked == TRACKED and run.existing_requests == math.ceil(TRACKED / 100) == 26
    assert calls["dynamodb.BatchGetItem"] == run.existing_requests + 1  # and the `__reconcile__` items, once
    assert run.read_units == TRACKED / 2 and run.bookkeeping_read_units == 1
    assert calls["dynamodb.UpdateItem"] == calls["s3.ListObjectVersions"]  # progress after each page, then done
    assert calls["dynamodb.PutItem"] == 2  # the lease, taken and released
    assert run.untracked == run.fed == run.sqs_requests == 0 and "sqs.SendMessageBatch" not in calls
    assert len(run.timing.cpu_s) == 2


def test_untracked_versions_are_fed_ten_events_a_request(runs):
    run = runs["untracked"]
    assert run.versions == UNTRACKED and run.untracked == UNTRACKED // 100 == 15
    assert run.fed == run.untracked
    # pages of 1,000 and 500 versions: 10 and 5 untracked, one SendMessageBatch each, each under 64 KB
    assert run.timing.calls["sqs.SendMessageBatch"] == run.sqs_requests == 2
    assert run.keys_asked == UNTRACKED  # found or not, every key is asked and billed


def test_versions_older_than_the_retention_are_listed_but_never_asked_about(runs):
    run = runs["old"]
    assert run.result["listed"] == OLD and run.result["untracked"] == 0
    assert run.timing.calls["s3.ListObjectVersions"] == 2
    assert run.existing_requests == run.keys_asked == 0 and run.read_units == 0
    assert run.timing.calls["dynamodb.BatchGetItem"] == 1  # the `__reconcile__` items only


def test_with_latency_the_pass_waits_for_every_round_trip_one_after_the_other(runs):
    run = runs["latency"]
    calls = run.timing.calls
    assert calls["s3.ListObjectVersions"] == 1 and run.existing_requests == 10
    expected = 0.030 * calls["s3.ListObjectVersions"] + 0.010 * (sum(calls.values()) - calls["s3.ListObjectVersions"])
    assert speed.waiting_s(calls) == pytest.approx(expected)
    assert run.timing.wall >= expected  # the canned answers sleep that long, one call at a time


def test_a_pass_is_billed_from_its_counts(runs, prices):
    run = runs["tracked"]
    cpu_only = {line.item: line for line in report.reconcile_lines(run, with_round_trips=False)}
    waiting = {line.item: line for line in report.reconcile_lines(run, with_round_trips=True)}
    listing = cpu_only["ListObjectVersions (LIST requests)"]
    assert listing.quantity == pytest.approx(3 / TRACKED)
    assert listing.usd_per_million(prices) == pytest.approx(3 / TRACKED * 1e6 * 0.005 / 1000)
    reads = cpu_only["BatchGetItem read units (keys only, eventual)"]
    assert reads.usd_per_million(prices) == pytest.approx(0.5 * 0.125)  # one key per version, 0.5 unit each
    [lambda_cpu] = [x for x in cpu_only.values() if x.service == "Lambda"]
    [lambda_waiting] = [x for x in waiting.values() if x.service == "Lambda"]
    seconds = run.timing.cpu / TRACKED / model.cpu_share(256)  # CPU measured on a full core, at 256 MB's share
    assert lambda_cpu.quantity == pytest.approx(seconds * 256 / 1024)
    assert lambda_waiting.quantity == pytest.approx((seconds + speed.waiting_s(run.pass_calls) / TRACKED) * 0.25)
    assert cost.total_per_million(waiting.values(), prices) > cost.total_per_million(cpu_only.values(), prices)


def test_the_report_has_a_reconciliation_section_and_summary_rows(runs, prices):
    section, summary = report.reconcile_section(runs, prices)
    text = "\n".join(section)
    assert text.startswith("## 7. Scheduled reconciliation")
    assert f"{runs['tracked'].cpu_ms_per_thousand:,.0f} ms" in text
    assert "| s3.ListObjectVersions | 1,176 | 1,333 | 1,667 | LIST requests |" in text  # 3, 2 and 2 pages
    assert len(summary) == 2 and all(row.startswith("| reconciliation ") for row in summary)


def test_a_daily_proof_is_billed_per_report_row_and_compared_with_listing_and_rvt_s3(prices):
    rows = cost.proof_comparison(
        prices, reconcile_usd_per_million=0.07, scan_seconds=2e-6, memory_mb=1024, arch="arm64", destinations=1
    )
    by_name = {name.split(" (")[0]: (per_pass, per_month) for name, per_pass, per_month in rows}
    inventory, listing = by_name["daily proof from S3 Inventory reports"], by_name["the same comparison from listings"]
    # two reports (source, destination) of a million rows each, their GETs, and 2 x 2 s of Lambda at 1 GB
    expected = 2 * 0.0025 + 2 * 0.0004 / 1000 + 2 * 2.0 * 1.33334e-05
    assert inventory[0] == pytest.approx(expected) and inventory[1] == pytest.approx(30 * expected)
    assert listing[0] == pytest.approx(2 * 1000 * 0.005 / 1000)  # 2,000 LIST requests of 1,000 versions
    assert by_name["scheduled reconciliation, one pass"] == pytest.approx((0.07, 2.1))
    assert by_name["RVT-S3, published"] == pytest.approx((0.002, 0.06))
    two = cost.proof_comparison(prices, reconcile_usd_per_million=0, scan_seconds=2e-6, memory_mb=1024, destinations=2)
    assert two[0][1] == pytest.approx(inventory[0] * 1.5)  # a third report to read


def test_reading_an_inventory_report_is_timed_per_row_and_reported(runs, prices):
    scan = speed.inventory_scan(4_000, rounds=2, day_share=0.1)
    assert scan.rows == 4_000 and scan.day_rows == 400 and len(scan.cpu_s) == 2
    assert scan.seconds_per_row == pytest.approx(statistics.median(scan.cpu_s) / 4_000) and scan.seconds_per_row > 0
    text = "\n".join(report.proof_section(scan, runs, prices))
    assert text.startswith("### Daily proof from S3 Inventory reports")
    assert "| RVT-S3, published (Athena over S3 Inventory) | $0.0020 | $0.060 |" in text
    assert "4,000 rows" in text and "400 of them of the day" in text
    assert "billion" not in text  # no sizing without a report of few rows of the day


def test_the_memory_a_billion_row_destination_report_needs_follows_the_cpu_per_row(runs, prices):
    scan = speed.inventory_scan(2_000, rounds=1, day_share=0.1)
    fast = replace(scan, rows=1_000_000, cpu_s=[0.435])  # 435 s a billion rows on a full core
    text = " ".join(report.proof_section(scan, runs, prices, fast))
    # 870 s a run (900 s timeout less the margin): half a vCPU, 1,769 MB / 2 = 884.5, rounded up to 64 MB
    assert "needs 435 s of a full core: 896 MB (`ReconcileMemorySize`)" in text
    slow = replace(scan, rows=1_000_000, cpu_s=[0.9])
    assert "more than one run" in " ".join(report.proof_section(scan, runs, prices, slow))


def test_reconciliation_and_the_proof_are_costed_at_the_reconcile_function_memory(runs, prices, monkeypatch):
    scan = speed.inventory_scan(2_000, rounds=1, day_share=0.1)
    at_256 = report.reconcile_seconds(runs["tracked"])
    monkeypatch.setattr(report, "reconcile_memory_mb", lambda: 1769)  # ReconcileMemorySize at one vCPU
    text = " ".join(report.proof_section(scan, runs, prices))
    assert f"{scan.seconds_per_row * 1e6:,.2f} µs at 1769 MB's CPU share" in text  # a full core
    assert report.reconcile_seconds(runs["tracked"]) < at_256
