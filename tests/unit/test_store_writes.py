"""The store's conditional writes on a real (moto) DynamoDB table: the lines the guarantees rest on.

G2 ("a final verdict is written once, never replaced") is enforced by `Store.write_verdict`'s condition,
and "each observation keeps the first value seen" by `Store.record_observation`'s if_not_exists: both are
checked here against DynamoDB's own evaluation of the expressions, not against a fake.
"""

from __future__ import annotations

import pytest

from crrmon.model import Status
from crrmon.store import Store, Verdict

PK, DEST = "v1#reports/q3.csv", "dst-usw2"


@pytest.fixture
def store(ddb):  # tests/unit/conftest.py: the template's table on moto
    return Store(ddb, "t")


def observe(store: Store, **fields) -> tuple[bool, int]:
    return store.record_observation(PK, DEST, now_ms=1_000, due_s=100, expires_s=9_999, fields=fields)


def verdict(store: Store, status: Status, **kwargs) -> bool:
    return store.write_verdict(PK, DEST, Verdict(status, **kwargs), pair="src>dst", now_ms=5_000, retention_s=60)


def test_a_final_verdict_is_never_replaced(store):
    observe(store, s_time=1, s_size=5)
    assert verdict(store, Status.FAILED, reason="DstBucketNotFound") is True
    assert verdict(store, Status.COMPLETED, verified_by="etag") is False
    item = store.get(PK, DEST)
    assert (item["status"], item["reason"], item["fail_pair"]) == ("FAILED", "DstBucketNotFound", "src>dst#22")
    assert "verified_by" not in item


def test_overdue_gives_way_to_a_final_verdict(store):
    observe(store, s_time=1, s_size=5)
    assert store.mark_overdue(PK, DEST, pair="src>dst", now_ms=2_000) is True
    assert store.mark_overdue(PK, DEST, pair="src>dst", now_ms=3_000) is False  # once
    assert verdict(store, Status.COMPLETED, verified_by="size", missed_rpo=True) is True
    item = store.get(PK, DEST)
    assert item["status"] == "COMPLETED" and "ovd_pair" not in item and "ovd_since" not in item


def test_no_verdict_for_an_item_that_does_not_exist(store):
    assert verdict(store, Status.COMPLETED) is False
    assert store.get(PK, DEST) is None


def test_each_observation_keeps_the_first_value_seen(store):
    # The S3 notification (milliseconds) first, then the EventBridge form of the same event (whole seconds).
    created, due = observe(store, r_time=1_234_567, r_size=5, r_etag="abc")
    assert created is True and due == 100
    created, _ = store.record_observation(
        PK, DEST, now_ms=2_000, due_s=200, expires_s=9_999, fields={"r_time": 1_234_000, "r_size": 6, "r_etag": "zzz"}
    )
    item = store.get(PK, DEST)
    assert created is False
    assert (item["r_time"], item["r_size"], item["r_etag"], item["first_seen"], item["due"]) == (
        1_234_567,
        5,
        "abc",
        1_000,
        100,
    )


def test_the_source_sets_the_deadline_from_s3s_time(store):
    observe(store, r_time=5_000)  # a replica's event first: its time bounds the deadline from above
    _, due = store.record_observation(
        PK, DEST, now_ms=6_000, due_s=50, expires_s=9_999, fields={"s_time": 4_000}, due_from_source=True
    )
    assert due == 50 and store.get(PK, DEST)["due"] == 50
