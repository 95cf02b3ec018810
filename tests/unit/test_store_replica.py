"""`Store.record_matching_replica`, the happy path's only write for a replica, on the template's table on
moto: it writes the COMPLETED verdict when, and only when, the item is exactly in the state in which
`crrmon.verify.decide` would give that verdict, and leaves the item untouched otherwise."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from crrmon.store import Store

PK, DEST = "v1#reports/q3.csv", "dst-usw2"
S_TIME, DUE_S = 10_000, 20  # the source was written at 10 s; the replica is due by 20 s
SOURCE = {"s_time": S_TIME, "s_size": 5, "s_etag": "abc"}


@pytest.fixture
def store(ddb):  # tests/unit/conftest.py: the template's table on moto
    return Store(ddb, "t")


def record_source(store: Store, **fields) -> None:
    store.record_observation(
        PK, DEST, now_ms=S_TIME, due_s=DUE_S, expires_s=9_999, fields={**SOURCE, **fields}, due_from_source=True
    )


def replica(store: Store, *, size: int = 5, etag: str | None = "abc", at_ms: int = 15_500, **fields) -> bool:
    return store.record_matching_replica(
        PK,
        DEST,
        fields={"r_time": at_ms, "r_size": size, **fields},
        size=size,
        etag=etag,
        replica_time_ms=at_ms,
        now_ms=16_000,
        expires_s=123_456,
    )


def test_a_matching_replica_writes_its_observation_and_the_completed_verdict(store):
    record_source(store)
    assert replica(store, r_etag="abc") is True
    item = store.get(PK, DEST)
    assert {k: item[k] for k in ("status", "verified_by", "missed_rpo", "decided_at", "expires_at")} == {
        "status": "COMPLETED",
        "verified_by": "etag",
        "missed_rpo": False,
        "decided_at": 16_000,
        "expires_at": 123_456,
    }
    assert item["latency_ms"] == 5_500  # the replica's time less the stored source time
    assert (item["r_time"], item["r_size"], item["r_etag"]) == (15_500, 5, "abc")
    assert (item["s_time"], item["s_size"], item["due"]) == (S_TIME, 5, DUE_S)


def test_without_an_etag_the_replica_is_verified_by_size_whatever_the_etags(store):
    record_source(store, s_etag="multipart-2")
    assert replica(store, etag=None) is True
    assert store.get(PK, DEST)["verified_by"] == "size"


def test_an_observation_already_recorded_keeps_its_first_value(store):
    record_source(store)
    store.record_observation(PK, DEST, now_ms=11_000, due_s=DUE_S, expires_s=9_999, fields={"r_sc": "GLACIER"})
    assert replica(store, r_sc="STANDARD") is True
    assert store.get(PK, DEST)["r_sc"] == "GLACIER"


def test_a_replica_at_its_sources_time_and_exactly_at_the_deadline_is_on_time(store):
    record_source(store)
    assert replica(store, at_ms=DUE_S * 1000) is True
    assert store.get(PK, DEST)["latency_ms"] == DUE_S * 1000 - S_TIME


def test_a_replica_at_the_same_millisecond_as_its_source_matches(store):
    record_source(store)
    assert replica(store, at_ms=S_TIME) is True
    assert store.get(PK, DEST)["latency_ms"] == 0


@pytest.mark.parametrize(
    ("case", "source", "kwargs"),
    [
        ("no source recorded", None, {}),
        ("another size", {}, {"size": 6}),
        ("another ETag", {}, {"etag": "zzz"}),
        ("a millisecond past the deadline", {}, {"at_ms": DUE_S * 1000 + 1}),
        ("before its source", {}, {"at_ms": S_TIME - 1}),
        ("a delete marker", {"s_dm": True}, {}),
        ("out of scope", {"oos": "prefix"}, {}),
        ("a failure reported", {"fail": "DstBucketNotFound"}, {}),
    ],
)
def test_anything_but_an_exact_match_leaves_the_item_as_it_was(store, case, source, kwargs):
    if source is not None:
        record_source(store, **source)
    before = store.get(PK, DEST)
    assert replica(store, **kwargs) is False, case
    assert store.get(PK, DEST) == before


def test_a_decided_item_is_never_decided_again(store):
    record_source(store)
    store.mark_overdue(PK, DEST, pair="src>dst", now_ms=12_000)
    before = store.get(PK, DEST)
    assert replica(store) is False
    assert store.get(PK, DEST) == before


def test_an_error_other_than_the_condition_is_raised():
    class Broken:
        def update_item(self, **kwargs):
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem")

    with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
        Store(Broken(), "t").record_matching_replica(
            PK, DEST, fields={}, size=1, etag=None, replica_time_ms=1, now_ms=1, expires_s=1
        )
