"""The benchmark's billing arithmetic: the rules that turn counted requests into dollars."""

from __future__ import annotations

import math

import pytest

from crrmon_local.bench import cost


@pytest.fixture(scope="module")
def prices() -> cost.PriceTable:
    return cost.load_prices()


def test_firehose_rounds_every_record_up_to_5_kb():
    assert cost.firehose_billed_bytes([1]) == 5 * 1024
    assert cost.firehose_billed_bytes([5 * 1024]) == 5 * 1024
    assert cost.firehose_billed_bytes([5 * 1024 + 1]) == 10 * 1024
    assert cost.firehose_billed_bytes([3 * 1024, 12 * 1024]) == 5 * 1024 + 15 * 1024  # per record, not per call


def test_write_units_take_the_larger_image_per_started_kilobyte():
    assert cost.write_units(0, 200) == 1
    assert cost.write_units(0, 0) == 1  # a write that changes nothing still costs a unit
    assert cost.write_units(1024, 1000) == 1
    assert cost.write_units(1025, 10) == 2
    assert cost.write_units(300, 2049) == 3


def test_read_units_are_per_4_kb_and_halved_when_eventually_consistent():
    assert cost.read_units(100, consistent=True) == 1
    assert cost.read_units(4097, consistent=True) == 2
    assert cost.read_units(4097, consistent=False) == 1
    assert cost.read_units(0, consistent=False) == 0.5


def test_item_size_counts_names_and_values():
    item = {
        "pk": {"S": "v1#key"},  # 2 + 6
        "due": {"N": "1700000000"},  # 3 + (2 significant digits -> 1 + 1)
        "ok": {"BOOL": True},  # 2 + 1
        "ü": {"S": "é"},  # 2 + 2 (UTF-8)
    }
    assert cost.item_size(item) == 8 + 5 + 3 + 4
    assert cost.item_size({"n": {"N": "12345"}}) == 1 + 4  # 5 significant digits: 3 bytes + 1
    assert cost.item_size(None) == 0


def test_sparse_index_writes_only_when_the_item_enters_changes_or_leaves():
    keys, index_keys = ("pk", "dest"), ("ovd_pair", "first_seen")
    pending = {"pk": {"S": "v#k"}, "dest": {"S": "d"}, "first_seen": {"N": "1"}}
    overdue = {**pending, "ovd_pair": {"S": "s>d"}, "status": {"S": "OVERDUE"}}
    final = {**pending, "status": {"S": "COMPLETED"}}

    def units(before, after):
        return cost.index_write_units(
            cost.projection(before, keys, index_keys, ()), cost.projection(after, keys, index_keys, ()), index_keys
        )

    assert units(None, pending) == 0 and units(pending, final) == 0
    assert units(pending, overdue) == 1
    assert units(overdue, overdue) == 0  # "status" is not projected
    assert units(overdue, final) == 1


def test_requests_are_billed_per_64_kb_chunk():
    assert cost.chunked_requests(0) == 1
    assert cost.chunked_requests(64 * 1024) == 1
    assert cost.chunked_requests(64 * 1024 + 1) == 2


def test_break_even_against_rtc_is_where_both_cost_the_same(prices):
    rtc = prices["s3_rtc_gb"].each
    assert rtc == pytest.approx(0.015)
    one = cost.break_even_object_bytes(3.0, 1, prices)
    assert one == pytest.approx(3.0 / 1e6 / 0.015 * 1024**3)
    assert cost.rtc_per_million(one, 1, prices) == pytest.approx(3.0)
    two = cost.break_even_object_bytes(6.0, 2, prices)
    assert two == pytest.approx(one)  # twice the cost over twice the replicated bytes
    # 256 KiB objects cost $3.66 per million with RTC to one destination
    assert cost.rtc_per_million(256 * 1024, 1, prices) == pytest.approx(256 / 1024**2 * 0.015 * 1e6)


def test_lambda_duration_is_billed_per_started_millisecond(prices):
    [requests, duration] = cost.lambda_lines("f", invocations=0.5, ms=10.2, memory_mb=256)
    assert requests.quantity == 0.5
    assert duration.quantity == pytest.approx(0.5 * 0.011 * 0.25)
    assert duration.usd_per_million(prices) == pytest.approx(duration.quantity * 0.0000133334 * 1e6)


def test_every_price_has_a_source_and_a_page(prices):
    assert prices.region == "us-east-1" and prices.recorded
    for price in prices.prices.values():
        assert price.source and price.url.startswith("https://aws.amazon.com/")
        assert price.usd >= 0 and price.per > 0
    assert prices["dynamodb_write_unit"].each * 1e6 == pytest.approx(0.625)


def test_crr_monitor_pattern_scales_with_events(prices):
    one = cost.total_per_million(cost.crr_monitor_lines(1), prices)
    two = cost.total_per_million(cost.crr_monitor_lines(2), prices)
    trail = {line.item: line.quantity for line in cost.crr_monitor_lines(2)}
    assert trail["data events (source and replica PutObject)"] == 3
    assert 1.3 < two / one < 1.6 and math.isfinite(one)


def test_sns_delivery_costs_half_of_eventbridge_forwarding(prices):
    # Two destinations in other regions: two replica events per object to forward.
    sns = cost.forwarding_lines(2.0, cost.SNS_NOTIFICATIONS)
    eventbridge = cost.forwarding_lines(2.0, cost.EVENTBRIDGE_FORWARDING)
    assert [(x.service, x.price, x.quantity) for x in sns] == [("SNS", "sns_publish", 2.0)]
    assert [(x.service, x.price, x.quantity) for x in eventbridge] == [("EventBridge", "eventbridge_event", 2.0)]
    assert cost.total_per_million(sns, prices) == pytest.approx(2 * 0.50)  # SNS -> SQS delivery is free
    assert cost.total_per_million(eventbridge, prices) == pytest.approx(2 * 1.00)
    assert cost.total_per_million(cost.forwarding_lines(0.0, cost.SNS_NOTIFICATIONS), prices) == 0
    with pytest.raises(ValueError):
        cost.forwarding_lines(1.0, "carrier-pigeon")


def test_a_scenario_costs_the_same_but_for_forwarding_under_either_delivery(prices):
    from collections import Counter

    from crrmon_local.bench import report
    from crrmon_local.bench.speed import Timing
    from crrmon_local.bench.usage import Scenario

    scenario = Scenario(
        name="two destinations",
        destinations=2,
        objects=10,
        calls=Counter({"dynamodb.UpdateItem": 40}),
        units={"dynamodb.write_units": 40.0},
        events=30,  # per object: the source's event and two replicas' from other regions
        cross_region_events=20,
        failure_notifications=0,
        timers=10,
        records={"MatcherFunction (stream)": 40, "SweeperFunction (SQS)": 10},
        emf_bytes=0,
        invocations={"MatcherFunction (stream)": 1},
        outcomes=Counter(),
    )
    timing = Timing(cpu_s=[0.001], wall_s=[0.02], stdout_bytes=[1000])
    cpu = {name: (timing, 10) for name in ("ingest", "matcher", "sweeper")}
    overlap = {name: timing for name in ("ingest", "matcher", "sweeper")}
    bills = {
        dv: {(x.service, x.item): x.usd_per_million(prices) for x in report.monitor_lines(scenario, overlap, cpu, dv)}
        for dv in (cost.SNS_NOTIFICATIONS, cost.EVENTBRIDGE_FORWARDING)
    }
    sns, eventbridge = bills[cost.SNS_NOTIFICATIONS], bills[cost.EVENTBRIDGE_FORWARDING]
    queue = ("SQS", "EventsQueue: one SendMessage per S3 event")
    assert sns[queue] == eventbridge[queue] == pytest.approx(3 * 0.40)  # one SendMessage per event either way
    assert sum(sns.values()) == pytest.approx(sum(eventbridge.values()) - 2 * (1.00 - 0.50))
