"""What the store's writes leave in the item, on a moto table with the Overdue index, and what its reads
ask DynamoDB for. Written to kill the mutants `make mutate MODULES=store` found alive (mutation/results.md)."""

from __future__ import annotations

import pytest

from crrmon.model import Status
from crrmon.pair_index import SHARDS, key_value, key_values, shard_of
from crrmon.store import Store, Verdict, _Update, from_image

PK, DEST, PAIR = "v1#reports/q3.csv", "dst-usw2", "src>dst"
NOW_MS = 1_700_000_000_500  # an epoch in ms with a half second: // 1000 and / 1000 differ


@pytest.fixture
def store(ddb):
    return Store(ddb, "t")  # the default index name: the template's


def observe(store: Store, due_s: int = 100, **fields) -> tuple[bool, int]:
    return store.record_observation(PK, DEST, now_ms=1_000, due_s=due_s, expires_s=9_999, fields=fields)


def test_an_observation_sets_the_items_expiry_and_a_later_one_returns_the_first_deadline(store):
    observe(store, s_size=5, ratio=0.25)
    assert observe(store, due_s=200, r_size=5) == (False, 100)
    item = store.get(PK, DEST)
    assert (item["expires_at"], item["ratio"], item["due"]) == (9_999, 0.25, 100)


def test_a_verdict_writes_every_field_and_only_adds_missing_evidence(store):
    observe(store, s_size=5)
    verdict = Verdict(Status.COMPLETED, verified_by="size", latency_ms=4_000, missed_rpo=True)
    written = store.write_verdict(
        PK, DEST, verdict, pair=PAIR, now_ms=NOW_MS, retention_s=60, evidence={"s_size": 6, "r_size": 5}
    )
    assert written is True
    item = store.get(PK, DEST)
    assert {k: item[k] for k in ("status", "verified_by", "latency_ms", "missed_rpo", "decided_at")} == {
        "status": "COMPLETED",
        "verified_by": "size",
        "latency_ms": 4_000,
        "missed_rpo": True,
        "decided_at": NOW_MS,
    }
    assert item["expires_at"] == 1_700_000_000 + 60
    assert (item["s_size"], item["r_size"]) == (5, 5)  # evidence never replaces what the item holds
    assert "fail_pair" not in item


def test_a_verdict_must_be_final():
    with pytest.raises(ValueError, match=r"^write_verdict takes final statuses; use mark_overdue$"):
        Store(None, "t").write_verdict(PK, DEST, Verdict(Status.OVERDUE), pair=PAIR, now_ms=1, retention_s=1)


def test_an_overdue_item_missed_its_rpo_and_is_found_on_the_overdue_index(store):
    observe(store, s_size=5)
    assert store.mark_overdue(PK, DEST, pair=PAIR, now_ms=2_000) is True
    item = store.get(PK, DEST)
    assert (item["status"], item["missed_rpo"], item["ovd_since"]) == ("OVERDUE", True, 2_000)
    assert item["ovd_pair"] == "src>dst#22" == key_value(PAIR, PK, DEST)  # the pair and the item's shard
    oldest = store.oldest_overdue(PAIR)
    assert (oldest["pk"], oldest["dest"]) == (PK, DEST)


def test_the_shard_is_a_stable_hash_of_the_items_key():
    # The same in every process (Python's hash() of a str is not): literals computed once.
    assert [shard_of(PK, DEST), shard_of("v1#a", DEST), shard_of("v1#a", "dst-euw1")] == [22, 11, 28]


def test_a_pairs_items_spread_evenly_over_the_shards():
    counts = [0] * SHARDS
    for i in range(10_000):
        counts[shard_of(f"v{i}#logs/{i}.gz", DEST)] += 1
    # 10,000 objects/s in an outage: no shard takes much more than 10,000 / SHARDS write units a second.
    assert max(counts) < 1.2 * 10_000 / SHARDS and min(counts) > 0.8 * 10_000 / SHARDS


def test_a_failed_item_is_indexed_under_the_same_shard_and_leaves_the_overdue_index(store):
    observe(store, s_size=5)
    store.mark_overdue(PK, DEST, pair=PAIR, now_ms=2_000)
    store.write_verdict(
        PK, DEST, Verdict(Status.FAILED, reason="DstBucketNotFound"), pair=PAIR, now_ms=3_000, retention_s=60
    )
    item = store.get(PK, DEST)
    assert item["fail_pair"] == key_value(PAIR, PK, DEST) and "ovd_pair" not in item
    assert store.oldest_overdue(PAIR) is None


def test_numbers_come_back_as_int_when_whole_and_float_otherwise():
    plain = from_image({"whole": {"N": "3"}, "part": {"N": "1.5"}, "text": {"S": "x"}})
    assert plain == {"whole": 3, "part": 1.5, "text": "x"}
    assert type(plain["whole"]) is int and type(plain["part"]) is float


def test_an_expression_name_is_given_once_per_attribute():
    update = _Update()
    first = update.name("s_time")
    assert update.names == {first: "s_time"}
    assert update.name("s_time") == first


class RecordingTable:
    """A DynamoDB client that records what it is asked and finds nothing."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    def get_item(self, **kwargs):
        self.calls.append(("get_item", kwargs))
        return {}

    def batch_get_item(self, RequestItems):
        self.calls.append(("batch_get_item", RequestItems))
        return {}  # no Responses at all: nothing found, nothing left

    def query(self, **kwargs):
        self.calls.append(("query", kwargs))
        return {"Items": []}


def test_get_is_a_consistent_read():
    table = RecordingTable()
    assert Store(table, "t").get(PK, DEST) is None
    assert table.calls == [
        ("get_item", {"TableName": "t", "Key": {"pk": {"S": PK}, "dest": {"S": DEST}}, "ConsistentRead": True})
    ]


def test_existing_reads_keys_only_and_eventually_consistent():
    table = RecordingTable()
    assert Store(table, "t").existing([(PK, DEST)]) == set()
    assert table.calls == [
        (
            "batch_get_item",
            {
                "t": {
                    "Keys": [{"pk": {"S": PK}, "dest": {"S": DEST}}],
                    "ConsistentRead": False,
                    "ProjectionExpression": "#p0, #p1",
                    "ExpressionAttributeNames": {"#p0": "pk", "#p1": "dest"},
                }
            },
        )
    ]


def test_the_items_of_timers_are_read_eventually_consistent_and_whole():
    table = RecordingTable()
    assert Store(table, "t").items_for([(PK, DEST)]) == []
    ((_, request),) = table.calls
    assert request == {"t": {"Keys": [{"pk": {"S": PK}, "dest": {"S": DEST}}], "ConsistentRead": False}}


def test_bookkeeping_reads_are_consistent_and_whole():
    table = RecordingTable()
    assert Store(table, "t").bookkeeping("__heartbeat__", ["b1"]) == {}
    ((_, request),) = table.calls
    assert request == {"t": {"Keys": [{"pk": {"S": "__heartbeat__"}, "dest": {"S": "b1"}}], "ConsistentRead": True}}


def test_the_oldest_overdue_item_is_one_item_of_each_shards_query_oldest_first():
    table = RecordingTable()
    assert Store(table, "t", "Overdue").oldest_overdue(PAIR) is None
    expected = [
        {
            "TableName": "t",
            "IndexName": "Overdue",
            "KeyConditionExpression": "#h = :p",
            "ExpressionAttributeNames": {"#h": "ovd_pair"},
            "ExpressionAttributeValues": {":p": {"S": value}},
            "ScanIndexForward": True,
            "Limit": 1,
        }
        for value in [f"{PAIR}#{n}" for n in range(SHARDS)] + [PAIR]  # every shard, and the bare pair
    ]
    asked = sorted((kwargs for op, kwargs in table.calls if op == "query"), key=lambda q: str(q))
    assert len(table.calls) == SHARDS + 1 and asked == sorted(expected, key=lambda q: str(q))


def overdue_since(store: Store, pk: str, seen_ms: int) -> None:
    store.record_observation(pk, DEST, now_ms=seen_ms, due_s=1, expires_s=9_999, fields={"s_size": 1})
    assert store.mark_overdue(pk, DEST, pair=PAIR, now_ms=5_000)


def test_the_oldest_overdue_item_is_the_one_overdue_longest_over_all_shards(store):
    # The template's Overdue index sorts each shard's items by first_seen; the oldest is in the highest shard.
    written = (("v2#b", 3_000), ("v1#a", 2_000), ("v3#c", 4_000), ("v5#e", 2_500))
    for pk, seen in written:
        overdue_since(store, pk, seen)
    shards = {pk: shard_of(pk, DEST) for pk, _ in written}
    assert len(set(shards.values())) == len(written) and max(shards, key=shards.get) == "v2#b"
    assert store.oldest_overdue(PAIR)["pk"] == "v1#a"
    store.write_verdict("v1#a", DEST, Verdict(Status.COMPLETED), pair=PAIR, now_ms=6_000, retention_s=60)
    assert store.oldest_overdue(PAIR)["pk"] == "v5#e"


def test_an_item_indexed_before_sharding_is_still_the_oldest(store, ddb):
    # A stack upgraded while items were OVERDUE: they carry the bare pair until they leave the index.
    overdue_since(store, "v2#b", 3_000)
    store.record_observation("v0#legacy", DEST, now_ms=1_000, due_s=1, expires_s=9_999, fields={"s_size": 1})
    ddb.update_item(
        TableName="t",
        Key={"pk": {"S": "v0#legacy"}, "dest": {"S": DEST}},
        UpdateExpression="SET #s = :o, ovd_pair = :p, ovd_since = :t",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":o": {"S": "OVERDUE"}, ":p": {"S": PAIR}, ":t": {"N": "2000"}},
    )
    assert PAIR in key_values(PAIR)
    assert store.oldest_overdue(PAIR)["pk"] == "v0#legacy"
    assert store.write_verdict("v0#legacy", DEST, Verdict(Status.COMPLETED), pair=PAIR, now_ms=6_000, retention_s=9)
    assert "ovd_pair" not in store.get("v0#legacy", DEST)
    assert store.oldest_overdue(PAIR)["pk"] == "v2#b"


def test_bookkeeping_items_come_back_by_name():
    class Found:
        def batch_get_item(self, RequestItems):
            ((table, spec),) = RequestItems.items()
            items = [{**key, "last": {"N": "7"}} for key in spec["Keys"]]
            return {"Responses": {table: items}}

    found = Store(Found(), "t").bookkeeping("__heartbeat__", ["b1", "b2"])
    assert found == {
        "b1": {"pk": "__heartbeat__", "dest": "b1", "last": 7},
        "b2": {"pk": "__heartbeat__", "dest": "b2", "last": 7},
    }


def test_the_pause_before_each_retry_doubles(monkeypatch):
    class Throttled:
        def batch_get_item(self, RequestItems):
            return {"Responses": {}, "UnprocessedKeys": RequestItems}

    monkeypatch.setattr("crrmon.store.random.uniform", lambda low, high: high)
    pauses: list[float] = []
    with pytest.raises(RuntimeError):
        Store(Throttled(), "t", sleep=pauses.append).existing([(PK, DEST)])
    assert pauses == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6])


def test_late_and_failed_items_are_indexed_under_the_shard_of_their_own_key(store):
    dest = "dst2"  # DEST's shard happens to be the one a key without its destination gives
    assert shard_of(PK, dest) != shard_of(PK, None)
    store.record_observation(PK, dest, now_ms=1_000, due_s=7, expires_s=9_999, fields={})
    store.mark_overdue(PK, dest, pair=PAIR, now_ms=NOW_MS)
    assert store.get(PK, dest)["ovd_pair"] == key_value(PAIR, PK, dest)
    store.write_verdict(PK, dest, Verdict(Status.FAILED, reason="x"), pair=PAIR, now_ms=NOW_MS, retention_s=60)
    assert store.get(PK, dest)["fail_pair"] == key_value(PAIR, PK, dest)


def test_the_items_of_given_keys_are_read_together_and_missing_ones_left_out(store):
    observe(store, s_size=5)
    store.record_observation(PK, "dst2", now_ms=1_000, due_s=7, expires_s=9_999, fields={})
    items = store.items_for([(PK, DEST), (PK, "dst2"), ("v9#gone", DEST)])
    assert sorted((i["dest"], i["due"]) for i in items) == [(DEST, 100), ("dst2", 7)]
    assert items[0]["pk"] == PK and store.items_for([]) == []
