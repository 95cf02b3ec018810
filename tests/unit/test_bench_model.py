"""The benchmark's billing arithmetic: the rules that turn counted requests into dollars."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from crrmon_local.bench import cost, model, rates


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


def test_every_price_has_a_source_a_page_and_its_own_date(prices):
    assert prices.region == "us-east-1"
    for price in prices.prices.values():
        assert price.source and price.url.startswith("https://aws.amazon.com/")
        assert price.usd >= 0 and price.per > 0
        assert re.fullmatch(r"20\d\d-\d\d-\d\d", price.recorded), price.key
    dates = sorted({p.recorded for p in prices.prices.values()})
    assert prices.recorded == (dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}")
    assert prices["dynamodb_write_unit"].each * 1e6 == pytest.approx(0.625)


def test_a_price_without_a_date_is_refused(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(
        '{"region": "us-east-1", "prices": {"x": {"usd": 1, "per": 1, "unit": "u", "source": "s", "url": "u"}}}'
    )
    with pytest.raises(TypeError):
        cost.load_prices(path)


# ---------------------------------------------------------------- batch fill at a rate


def test_a_batch_holds_one_record_when_records_are_rare_and_fills_when_they_are_many():
    assert model.records_per_invocation(0.001, 10, 1.0) == pytest.approx(1.0, abs=0.01)
    assert model.records_per_invocation(2.0, 10, 1.0) == pytest.approx(3.0, abs=0.01)  # 1 + 2 per window
    assert model.records_per_invocation(1_000.0, 10, 1.0) == pytest.approx(10.0)
    assert model.records_per_invocation(20_000.0, 100, 1.0) == pytest.approx(100.0)
    assert model.records_per_invocation(50.0, 100, 1.0) == pytest.approx(51.0, abs=0.1)  # below the cap
    assert model.records_per_invocation(1_000.0, 10, 0.0) == 1.0  # no window: what one receive brings


def test_batch_fill_agrees_with_a_simulation_of_the_batching_window():
    """Poisson arrivals; a batch opens at its first record and closes when full or the window is over."""
    rng = random.Random(7)
    for rate, size, window in ((3.0, 10, 1.0), (0.5, 10, 1.0), (40.0, 100, 1.0), (8.0, 10, 0.5)):
        t, batches, records = 0.0, 0, 0
        arrivals = []
        for _ in range(40_000):
            t += rng.expovariate(rate)
            arrivals.append(t)
        i = 0
        while i < len(arrivals):
            opened, n = arrivals[i], 0
            while i < len(arrivals) and n < size and arrivals[i] <= opened + window:
                n += 1
                i += 1
            batches += 1
            records += n
        expected = model.records_per_invocation(rate, size, window)
        assert records / batches == pytest.approx(expected, rel=0.03), (rate, size, window)


def test_batching_is_read_from_the_template():
    def template(size, window):
        props = {"Queue": "q", "BatchSize": size, "MaximumBatchingWindowInSeconds": window}
        return {
            "Resources": {
                "F": {
                    "Type": "AWS::Serverless::Function",
                    "Properties": {
                        "Events": {
                            "A": {"Type": "SQS", "Properties": {**props, "ScalingConfig": {"MaximumConcurrency": 3}}},
                            "B": {"Type": "DynamoDB", "Properties": {"Stream": "s"}},
                            "C": {"Type": "Schedule", "Properties": {}},
                        }
                    },
                },
                "Q": {"Type": "AWS::SQS::Queue"},
            }
        }

    parameterised = template(25, 2)
    parameterised["Parameters"] = {"Concurrency": {"Type": "Number", "Default": 7}}
    parameterised["Resources"]["F"]["Properties"]["Events"]["A"]["Properties"]["ScalingConfig"] = {
        "MaximumConcurrency": {"Ref": "Concurrency"}
    }
    assert model.batching_from_template(parameterised)["F (SQS)"].max_concurrency == 7  # the parameter's default
    mappings = model.batching_from_template(template(25, 2))
    assert set(mappings) == {"F (SQS)", "F (stream)"}
    assert (mappings["F (SQS)"].batch_size, mappings["F (SQS)"].window_s) == (25, 2.0)
    assert mappings["F (SQS)"].max_concurrency == 3
    assert (mappings["F (stream)"].batch_size, mappings["F (stream)"].window_s) == (100, 0.0)  # Lambda's defaults
    assert model.batching_from_template(template(7, 0))["F (SQS)"].batch_size == 7

    from crrmon_local.bench.usage import TEMPLATE
    from crrmon_local.cfn import load_template

    names = set(model.batching_from_template(load_template(TEMPLATE)))
    assert {rates.INGEST, rates.MATCHER, rates.SWEEPER} <= names


def test_receives_bring_at_most_ten_and_deletes_take_ten_a_call():
    assert model.messages_per_receive(0.01, 10) == pytest.approx(1.0, abs=0.001)  # one message each
    assert model.messages_per_receive(10_000, 100) == 10
    receives, deletes = model.sqs_requests_per_invocation(100, 10_000, 100)
    assert (receives, deletes) == (10, 10)
    receives, deletes = model.sqs_requests_per_invocation(3.0, 0.01, 10)
    assert receives == pytest.approx(3.0, abs=0.01) and deletes == 1


def test_empty_long_polls_fade_as_messages_arrive():
    idle = model.empty_receives_per_s(0.0)
    assert idle == pytest.approx(model.SQS_INITIAL_POLLERS / model.SQS_LONG_POLL_S)
    assert model.empty_receives_per_s(1.0) < idle / 10
    assert model.empty_receives_per_s(100.0) < 1e-100


def test_stream_records_spread_over_a_shard_per_thousand_write_units():
    assert model.shards(0) == model.shards(999) == 1
    assert model.shards(1_001) == 2 and model.shards(40_000) == 40


# ---------------------------------------------------------------- Lambda time at a memory size


def test_cpu_share_is_proportional_to_memory_up_to_one_vcpu():
    assert model.cpu_share(1769) == 1.0
    assert model.cpu_share(256) == pytest.approx(256 / 1769)
    assert model.cpu_share(128) == pytest.approx(0.5 * model.cpu_share(256))
    assert model.cpu_share(4096) == 1.0  # one thread of Python uses one vCPU at most


def test_lambda_duration_stretches_the_cpu_and_adds_the_waiting():
    assert model.lambda_duration_s(0.010, 0.020, 1769) == pytest.approx(0.030)
    assert model.lambda_duration_s(0.010, 0.020, 256) == pytest.approx(0.010 * 1769 / 256 + 0.020)
    assert model.lambda_duration_s(0.0, 0.020, 128) == pytest.approx(0.020)  # waiting is not stretched
    handler = model.HandlerCost(0.001, 0.0005, lambda n: n)
    assert handler.duration_s(10, 1769, 0.010) == pytest.approx(0.006 + 0.100)


def test_cpu_per_invocation_splits_into_a_fixed_and_a_per_record_part():
    fixed, per = model.linear_cpu(0.0015, 1, 0.0078, 10)
    assert per == pytest.approx(0.0007) and fixed == pytest.approx(0.0008)
    assert model.linear_cpu(0.001, 2, 0.0009, 100) == (pytest.approx(0.001), 0.0)  # never a negative slope


# ---------------------------------------------------------------- verdicts within noise


def test_a_verdict_is_given_only_outside_the_noise_band():
    assert model.verdict(0.40, 0.45, 0.5) == "met"
    assert model.verdict(0.52, 0.60, 0.5) == "missed"
    assert model.verdict(0.48, 0.52, 0.5) == "within noise"
    assert model.verdict(0.5, 0.5, 0.5) == "met"  # at the target is met
    assert model.verdict(300, 320, 256, at_most=False) == "met"
    assert model.verdict(200, 255, 256, at_most=False) == "missed"
    assert model.verdict(250, 260, 256, at_most=False) == "within noise"
    band = model.Band.of([3.0, 1.0, 2.0, 9.0])
    assert (band.low, band.mid, band.high) == (1.0, 2.5, 9.0)


# ---------------------------------------------------------------- the CRR Monitor model


def test_crr_monitor_model_writes_statistics_once_per_object_and_keeps_one_item(prices):
    one = {line.item: line.quantity for line in cost.crr_monitor_lines(1, 100)}
    two = {line.item: line.quantity for line in cost.crr_monitor_lines(2, 100)}
    assert one["statistics UpdateItem, once per object"] == two["statistics UpdateItem, once per object"] == 1
    scans = next(k for k in one if k.startswith("hourly Scan"))
    assert one[scans] == two[scans]  # one item per object, whatever its destinations
    trail = "data events: each PutObject and the monitor's HeadObject"
    assert (one[trail], two[trail]) == (4, 6)  # the PutObjects and their HEADs
    low, high = cost.crr_monitor_estimates(90.0).values()
    assert cost.total_per_million(cost.crr_monitor_lines(1, 100, low), prices) < cost.total_per_million(
        cost.crr_monitor_lines(1, 100, high), prices
    )
    assert high.lambda_ms_per_event == 160.0


def test_crr_monitor_model_spreads_its_minute_run_over_the_rate(prices):
    slow = cost.total_per_million(cost.crr_monitor_lines(1, 0.1), prices)
    fast = cost.total_per_million(cost.crr_monitor_lines(1, 1_000), prices)
    # a run a minute: an invocation, a GetQueueAttributes and an empty receive, over 6 objects at 0.1/s
    minute = (0.20 + 2 * 0.40) / (60 * 0.1) - (0.20 + 2 * 0.40) / (60 * 1_000)
    assert slow - fast == pytest.approx(minute, rel=0.01)


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


# ---------------------------------------------------------------- the monitor's bill at a rate


def _scenario():
    from crrmon_local.bench.usage import Scenario

    return Scenario(
        name="two destinations",
        destinations=2,
        objects=10,
        calls=Counter({"dynamodb.UpdateItem": 40}),
        units={"dynamodb.write_units": 40.0, "dynamodb.index_write_units": 5.0, "firehose.raw_bytes": 6000},
        events=30,  # per object: the source's event and two replicas' from other regions
        cross_region_events=20,
        failure_notifications=0,
        timers=10,
        records={rates.INGEST: 30, rates.MATCHER: 40, rates.SWEEPER: 10},
        emf_bytes=0,
        invocations={rates.MATCHER: 1},
        outcomes=Counter(),
    )


def _measured():
    trips = {"ingest": lambda n: 2.0, "matcher": lambda n: 1.0, "sweeper": lambda n: n}
    handlers = {name: model.HandlerCost(0.001, 0.0005, trips[name]) for name in trips}
    return rates.Measured(handlers, {name: (200.0, 30.0) for name in trips})


def _setup(**changes):
    from dataclasses import replace

    batching = {
        rates.INGEST: model.Batching("IngestFunction", "SQS", 10, 1.0, 20),
        rates.MATCHER: model.Batching("MatcherFunction", "stream", 100, 1.0),
        rates.SWEEPER: model.Batching("SweeperFunction", "SQS", 10, 1.0, 2),
    }
    return replace(rates.Setup(memory_mb=256, batching=batching), **changes)


def _bill(prices, rate, **changes):
    lines = rates.monitor_lines(_scenario(), rate, _measured(), _setup(**changes))
    return {(x.service, x.item): x.usd_per_million(prices) for x in lines}


def test_a_scenario_costs_the_same_but_for_forwarding_under_either_delivery(prices):
    sns, eventbridge = _bill(prices, 100), _bill(prices, 100, delivery=cost.EVENTBRIDGE_FORWARDING)
    queue = ("SQS", "EventsQueue: one SendMessage per S3 event")
    assert sns[queue] == eventbridge[queue] == pytest.approx(3 * 0.40)  # one SendMessage per event either way
    assert sum(sns.values()) == pytest.approx(sum(eventbridge.values()) - 2 * (1.00 - 0.50))


def test_the_default_bus_question_is_costed_both_ways(prices):
    free, billed = _bill(prices, 100), _bill(prices, 100, default_bus_billed=True)
    assert sum(billed.values()) - sum(free.values()) == pytest.approx(1 * 1.00)  # one in-region event per object


def test_per_invocation_charges_fall_as_the_rate_fills_the_batches(prices):
    slow, fast = _bill(prices, 0.001), _bill(prices, 10_000)
    assert sum(slow.values()) > sum(fast.values())
    invocations = ("Lambda", "ingest invocations")
    assert slow[invocations] == pytest.approx(3 * 0.20, rel=0.01)  # a batch per event
    assert fast[invocations] == pytest.approx(3 * 0.20 / 10)  # full batches of 10
    receives = ("SQS", "EventsQueue: ReceiveMessage")
    assert fast[receives] == pytest.approx(3 * 0.40 / 10)  # ten messages a receive


def test_levers_change_only_what_they_touch(prices):
    base = _bill(prices, 1_000)
    quiet = _bill(prices, 1_000, platform_log_bytes=0)
    logs = ("CloudWatch", "logs ingested (EMF + platform lines)")
    assert quiet[logs] < base[logs]
    assert {k: v for k, v in quiet.items() if k != logs} == {k: v for k, v in base.items() if k != logs}
    provisioned = _bill(prices, 1_000, dynamodb="provisioned")
    table = ("DynamoDB", "write capacity, table (provisioned)")
    # 4 write units per object, each a unit-second of capacity at 70% use
    assert provisioned[table] == pytest.approx(4 * 0.00065 / 3600 / 0.7 * 1e6)
    packed = _bill(prices, 1_000, timers_per_message=10)
    assert packed[("SQS", "TimerQueue: ReceiveMessage")] < base[("SQS", "TimerQueue: ReceiveMessage")]


def test_more_memory_shortens_the_cpu_part_only(prices):
    small, large = _setup(memory_mb=128), _setup(memory_mb=512)
    m = _measured()
    assert rates.throughput(m, large, "ingest", 3) > rates.throughput(m, small, "ingest", 3)
    seconds = m.handlers["sweeper"].duration_s(10, 128, m.rtt_s)
    assert rates.throughput(m, small, "sweeper", 1) == pytest.approx(2 * 10 / seconds)  # MaximumConcurrency 2


def test_both_sparse_indexes_are_metered_by_the_presence_of_their_keys():
    from crrmon_local.bench.usage import table_indexes

    indexes = {name: (keys, included) for name, keys, included in table_indexes()}
    assert set(indexes) == {"Overdue", "Failed"}
    keys, included = indexes["Failed"]
    assert keys[0] == "fail_pair"
    pending = {"pk": {"S": "v#k"}, "dest": {"S": "d"}, "decided_at": {"N": "5"}}
    failed = {**pending, "fail_pair": {"S": "src>dst#3"}, "status": {"S": "FAILED"}}  # a sharded key value
    before = cost.projection(pending, ("pk", "dest"), keys, included)
    after = cost.projection(failed, ("pk", "dest"), keys, included)
    assert before is None and after is not None
    assert cost.index_write_units(before, after, keys) == 1


def test_the_meter_counts_writes_to_each_sparse_index_whatever_its_key_values(ddb):
    import boto3

    from crrmon_local.bench.usage import Meter, table_indexes

    session = boto3.Session(region_name="us-east-1")
    meter = Meter("t", table_indexes(), reader=ddb)
    meter.install(session)
    client = session.client("dynamodb")
    key = {"pk": {"S": "v1#k"}, "dest": {"S": "dst"}}

    def update(expression, values=None):
        extra = {"ExpressionAttributeValues": values} if values else {}
        client.update_item(TableName="t", Key=key, UpdateExpression=expression, **extra)

    update("SET first_seen = :f, src = :s", {":f": {"N": "1"}, ":s": {"S": "src"}})
    assert meter.units["dynamodb.index_write_units"] == 0  # in no index yet
    update("SET ovd_pair = :p", {":p": {"S": "src>dst#7"}})  # a sharded key value
    assert meter.units["dynamodb.index_write_units.Overdue"] == 1
    update("SET fail_pair = :p, decided_at = :d REMOVE ovd_pair", {":p": {"S": "src>dst#2"}, ":d": {"N": "9"}})
    assert meter.units["dynamodb.index_write_units.Overdue"] == 2  # left the Overdue index
    assert meter.units["dynamodb.index_write_units.Failed"] == 1  # entered the Failed index
    assert meter.units["dynamodb.index_write_units"] == 3
    assert meter.units["dynamodb.write_units"] == 3  # the table's own writes, counted apart


def test_the_meter_bills_each_key_a_batch_read_asks_for_and_sets_heartbeats_apart(ddb):
    import boto3

    from crrmon_local.bench.usage import Meter, table_indexes

    session = boto3.Session(region_name="us-east-1")
    meter = Meter("t", table_indexes(), reader=ddb)
    meter.install(session)
    ddb.put_item(TableName="t", Item={"pk": {"S": "v1#k"}, "dest": {"S": "dst"}, "status": {"S": "COMPLETED"}})
    keys = [
        {"pk": {"S": "v1#k"}, "dest": {"S": "dst"}},  # found
        {"pk": {"S": "v2#k"}, "dest": {"S": "dst"}},  # not found: billed all the same
        {"pk": {"S": "__heartbeat__"}, "dest": {"S": "bucket"}},  # the schedule's, not an object's
    ]
    session.client("dynamodb").batch_get_item(RequestItems={"t": {"Keys": keys}})
    assert meter.units["dynamodb.read_units_eventual"] == 1.0  # half a unit per key, eventually consistent
    assert meter.units["dynamodb.bookkeeping_read_units"] == 0.5


def test_a_function_memory_is_its_own_parameter_default_else_the_globals():
    template = {
        "Globals": {"Function": {"MemorySize": 256}},
        "Parameters": {"ReconcileMemorySize": {"Type": "Number", "Default": 1024}},
        "Resources": {
            "ReconcileFunction": {"Properties": {"MemorySize": {"Ref": "ReconcileMemorySize"}}},
            "IngestFunction": {"Properties": {}},
            "Fixed": {"Properties": {"MemorySize": 512}},
        },
    }
    assert model.function_memory_mb(template, "ReconcileFunction") == 1024
    assert model.function_memory_mb(template, "IngestFunction") == 256
    assert model.function_memory_mb(template, "Fixed") == 512
    assert model.function_memory_mb({"Resources": {"F": {"Properties": {}}}}, "F") == 128
