"""The scale simulation's quota arithmetic and its DynamoDB stub (src/crrmon_local/bench/quotas.py, scale.py).

No timing: these check the meters' arithmetic, that a known overload of one partition key is refused
the way DynamoDB refuses it, and that the stub applies the store's conditions as DynamoDB does.
"""

from __future__ import annotations

import random

import pytest
from botocore.exceptions import ClientError

from crrmon.store import Store, make_pk
from crrmon_local.bench import quotas, scale

OVERDUE = scale.Index("Overdue", "ovd_pair", "first_seen", ("src", "due"))


def test_partition_meter_admits_1000_write_units_a_second_and_refuses_the_excess():
    meter = quotas.WindowMeter(quotas.PARTITION_WRITE_UNITS_S, window_s=10)
    refused = [meter.add("pair", 100, second + i / 10) for second in range(20) for i in range(10)]
    assert max(refused) == 0  # exactly 1,000 units a second
    assert meter.peak["pair"] == pytest.approx(1000)

    hot = quotas.WindowMeter(quotas.PARTITION_WRITE_UNITS_S, window_s=10)
    shares = [hot.add("pair", 200, second + i / 10) for second in range(30) for i in range(10)]
    # 2,000 offered a second: once the window is full, half of what is offered is refused.
    assert shares[-1] == pytest.approx(0.5, abs=0.01)
    assert hot.peak["pair"] == pytest.approx(2000, rel=0.01)
    assert hot.refused["pair"] == pytest.approx(sum(200 * share for share in shares))


def test_window_meter_keeps_keys_apart():
    meter = quotas.WindowMeter(1000, window_s=1)
    assert meter.add("a", 1500, 0.5) > 0
    assert meter.add("b", 900, 0.5) == 0
    assert meter.hottest()[0] == "a"


def test_critical_round_trips_overlap_worker_calls_and_not_the_callers():
    assert quotas.critical_round_trips(1, 10, 10) == 2  # ingest: ten UpdateItems overlapped, then the timers
    assert quotas.critical_round_trips(1, 100, 10) == 11  # a batch of 100 events
    assert quotas.critical_round_trips(10, 0, 10) == 10  # sequential calls


def test_binding_is_the_quota_nearest_its_limit():
    uses = [quotas.Use("a", 50, 100, ""), quotas.Use("b", 3, 2, ""), quotas.Use("c", 900, 1000, "")]
    assert quotas.binding(uses).quota == "b"


def _store(weight: float, refuse: bool = True, indexes: list[scale.Index] | None = None):
    world = scale.World(weight, random.Random(1), scale.quota_table())
    world.rng.random = (lambda: 0.0) if refuse else (lambda: 1.0)  # refuse whenever a share is refused
    records: list[dict] = []
    dynamo = scale.DynamoStub(world, scale.CallLog(), indexes or [OVERDUE], records.append)
    return Store(dynamo, "t", sleep=lambda _s: None), world, dynamo, records


def _pending(store: Store, i: int, now_ms: int) -> str:
    pk = make_pk(f"v{i}", f"k/{i}")
    fields = {"src": "src", "s_size": 10, "s_etag": "e", "s_time": now_ms}
    store.record_observation(pk, "dst", now_ms=now_ms, due_s=now_ms // 1000 + 900, expires_s=10**10, fields=fields)
    return pk


def _mark(dynamo: scale.DynamoStub, pk: str, group: str) -> None:
    """An UpdateItem as boto3 takes it, putting the item under index key value `group`."""
    dynamo.update_item(
        TableName="t",
        Key={"pk": {"S": pk}, "dest": {"S": "dst"}},
        UpdateExpression="SET #g = :g, #f = :f",
        ExpressionAttributeNames={"#g": "grp", "#f": "first_seen"},
        ExpressionAttributeValues={":g": {"S": group}, ":f": {"N": "1"}},
    )


HOT = scale.Index("Hot", "grp", "first_seen", ())


def test_one_index_key_past_1000_write_units_a_second_is_throttled():
    # Each sampled write stands for `weight` writes; 40 x 500 = 20,000 index writes to one key value in one
    # second is 2,000 a second over the 10 s window: twice a partition's 1,000.
    world = scale.World(500, random.Random(1), scale.quota_table())
    world.rng.random = lambda: 0.0  # refuse whenever a share is refused
    dynamo = scale.DynamoStub(world, scale.CallLog(), [HOT], lambda _record: None)
    world.now = 5.0
    with pytest.raises(ClientError) as raised:
        for i in range(40):
            _mark(dynamo, f"v{i}#k", "same")
    assert raised.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert world.throttles["DynamoDB UpdateItem"] > 0
    assert world.partition_w.hottest() == ("Hot same", pytest.approx(1050))  # refused at the 21st write

    # The same load spread over 40 key values, or a tenth of it on one, is admitted.
    for weight, groups in ((500, 40), (50, 1)):
        calm = scale.World(weight, random.Random(1), scale.quota_table())
        calm.rng.random = lambda: 0.0
        stub = scale.DynamoStub(calm, scale.CallLog(), [HOT], lambda _record: None)
        calm.now = 5.0
        for i in range(40):
            _mark(stub, f"v{i}#k", f"g{i % groups}")
        assert not calm.throttles


def test_the_overdue_index_spreads_one_pair_over_several_key_values():
    store, world, _, _ = _store(weight=500, indexes=scale.template_indexes())
    pks = [_pending(store, i, 1_000) for i in range(40)]
    world.now = 5.0
    for pk in pks:
        store.mark_overdue(pk, "dst", pair="src>dst", now_ms=5_000)
    overdue_keys = [k for k in world.partition_w.peak if k.startswith("Overdue ")]
    assert len(overdue_keys) > 1
    assert not world.throttles


def test_the_stub_applies_the_stores_conditions_and_emits_stream_records():
    store, _, dynamo, records = _store(weight=1, refuse=False)
    pk = _pending(store, 1, 1_000_000)
    assert [r["eventName"] for r in records] == ["INSERT"]
    # A replica after the deadline is not completed in one write (the condition on `due` fails) ...
    late = dict(size=10, etag="e", replica_time_ms=(1_000 + 901) * 1000, now_ms=1_901_000, expires_s=10**10)
    assert not store.record_matching_replica(pk, "dst", fields={"r_size": 10}, **late)
    # ... one on time is, with the latency computed from the stored source time.
    on_time = dict(size=10, etag="e", replica_time_ms=1_004_000, now_ms=1_005_000, expires_s=10**10)
    assert store.record_matching_replica(pk, "dst", fields={"r_size": 10}, **on_time)
    item = store.get(pk, "dst")
    assert item["status"] == "COMPLETED" and item["latency_ms"] == 4_000
    assert records[-1]["eventName"] == "MODIFY" and "OldImage" in records[-1]["dynamodb"]
    # A final verdict is written once.
    from crrmon.model import Status
    from crrmon.store import Verdict

    assert not store.write_verdict(pk, "dst", Verdict(Status.FAILED), pair="src>dst", now_ms=2, retention_s=1)
    assert dynamo.items[(pk, "dst")]["status"]["S"] == "COMPLETED"


def test_an_expression_the_interpreter_does_not_know_is_an_error_not_a_guess():
    with pytest.raises(scale.Unsupported):
        scale.apply_update("SET a = size(b)", {}, {}, {})


def test_section_8_is_spliced_into_a_results_file_once():
    from crrmon_local.bench import scale_report

    text = "# Results\n\n## Summary\n\n| figure | measured |\n|---|---|\n| a | 1 |\n\n## 7. Other\n\nbody\n"
    once = scale_report.splice(text, ["## 8. Scale simulation: x", "", "first"], ["| scale, 100/s | 1 |"], "note")
    twice = scale_report.splice(once, ["## 8. Scale simulation: x", "", "second"], ["| scale, 100/s | 2 |"], "note")
    assert twice.count("## 8. Scale simulation") == 1 and "second" in twice and "first" not in twice
    assert twice.count("| scale, ") == 1
    summary = twice.split("## 7.")[0]
    assert summary.index("| a | 1 |") < summary.index("| scale, 100/s | 2 |")  # after the summary's rows
    assert "## 7. Other\n\nbody" in twice
