"""The store's bookkeeping items on the template's table on moto: leases that keep scheduled runs apart,
heartbeats, canaries, saved progress; and the reads and key helpers the stream readers rely on."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from crrmon.store import CANARY_PK, HEARTBEAT_PK, LEASE_PK, RECONCILE_PK, Store, is_internal, make_pk, split_pk


@pytest.fixture
def store(ddb):  # tests/unit/conftest.py: the template's table on moto
    return Store(ddb, "t")


def lease(store: Store, name: str = "sweeper-schedule") -> dict | None:
    return store.get(LEASE_PK, name)


# ---- leases ----------------------------------------------------------------------------------------------------


def test_a_free_lease_is_taken_until_its_end_and_kept_a_day_past_it(store):
    assert store.acquire_lease("sweeper-schedule", "run-1", now_s=1_000, duration_s=55) is True
    assert lease(store) == {
        "pk": LEASE_PK,
        "dest": "sweeper-schedule",
        "holder": "run-1",
        "until": 1_055,
        "expires_at": 1_055 + 86_400,
    }


def test_a_held_lease_is_not_taken_until_it_has_lapsed(store):
    store.acquire_lease("sweeper-schedule", "run-1", now_s=1_000, duration_s=55)
    assert store.acquire_lease("sweeper-schedule", "run-2", now_s=1_054, duration_s=55) is False
    assert store.acquire_lease("sweeper-schedule", "run-2", now_s=1_055, duration_s=55) is False  # its last second
    assert lease(store)["holder"] == "run-1"
    assert store.acquire_lease("sweeper-schedule", "run-2", now_s=1_056, duration_s=55) is True
    assert (lease(store)["holder"], lease(store)["until"]) == ("run-2", 1_111)


def test_leases_of_other_names_are_apart(store):
    assert store.acquire_lease("sweeper-schedule", "run-1", now_s=1_000, duration_s=55) is True
    assert store.acquire_lease("reconcile", "run-2", now_s=1_000, duration_s=55) is True
    assert lease(store, "reconcile")["holder"] == "run-2"


def test_its_holder_releases_a_lease_so_the_next_run_takes_it_at_once(store):
    store.acquire_lease("sweeper-schedule", "run-1", now_s=1_000, duration_s=55)
    assert store.release_lease("sweeper-schedule", "run-1", now_s=1_010) is None
    assert (lease(store)["holder"], lease(store)["until"], lease(store)["expires_at"]) == ("run-1", 1_009, 87_409)
    assert store.acquire_lease("sweeper-schedule", "run-2", now_s=1_010, duration_s=55) is True


def test_only_its_holder_releases_a_lease(store):
    store.acquire_lease("sweeper-schedule", "run-1", now_s=1_000, duration_s=55)
    store.release_lease("sweeper-schedule", "run-2", now_s=1_010)
    assert (lease(store)["holder"], lease(store)["until"]) == ("run-1", 1_055)
    assert store.acquire_lease("sweeper-schedule", "run-2", now_s=1_010, duration_s=55) is False


def test_a_lease_error_other_than_the_condition_is_raised():
    class Broken:
        def put_item(self, **kwargs):
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "PutItem")

    with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
        Store(Broken(), "t").acquire_lease("sweeper-schedule", "run-1", now_s=1, duration_s=1)


# ---- heartbeats --------------------------------------------------------------------------------------------------


def heartbeat(store: Store, bucket: str = "src") -> dict | None:
    return store.get(HEARTBEAT_PK, bucket)


def test_a_beat_records_the_time_of_the_last_event(store):
    store.beat("src", 100)
    store.beat("src", 160)
    assert heartbeat(store) == {"pk": HEARTBEAT_PK, "dest": "src", "last": 160}


def test_a_beat_never_moves_the_time_backwards(store):
    store.beat("src", 160)
    store.beat("src", 100)  # a late event: no error, no change
    assert heartbeat(store)["last"] == 160
    store.beat("src", 160)  # the same second again: no error
    assert heartbeat(store)["last"] == 160


def test_the_schedule_starts_the_clock_of_a_silent_bucket_once(store):
    store.beat("src", 100, only_if_absent=True)
    assert heartbeat(store) == {"pk": HEARTBEAT_PK, "dest": "src", "last": 100, "baseline": True}
    store.beat("src", 200, only_if_absent=True)
    assert heartbeat(store)["last"] == 100


def test_the_schedule_never_replaces_a_real_beat_and_a_real_beat_ends_the_baseline(store):
    store.beat("src", 100)
    store.beat("src", 200, only_if_absent=True)
    assert heartbeat(store) == {"pk": HEARTBEAT_PK, "dest": "src", "last": 100}
    store.beat("other", 100, only_if_absent=True)
    store.beat("other", 150)
    assert heartbeat(store, "other") == {"pk": HEARTBEAT_PK, "dest": "other", "last": 150}


def test_heartbeats_are_read_back_by_bucket(store):
    store.beat("a", 100)
    store.beat("b", 200)
    found = store.bookkeeping(HEARTBEAT_PK, ["a", "b", "never-heard"])
    assert {name: item["last"] for name, item in found.items()} == {"a": 100, "b": 200}


# ---- canaries and progress ---------------------------------------------------------------------------------------


def test_each_canary_is_remembered_in_order_with_the_time_of_the_last(store):
    store.record_canary("src", "100:v1", now_s=100)
    store.record_canary("src", "160:v2", now_s=160)
    assert store.get(CANARY_PK, "src") == {
        "pk": CANARY_PK,
        "dest": "src",
        "last": 160,
        "versions": ["100:v1", "160:v2"],
    }


def test_progress_overwrites_named_attributes_and_none_removes_one(store):
    store.save_progress(RECONCILE_PK, "src", {"token": "t1", "pass": 1, "listed": 10})
    store.save_progress(RECONCILE_PK, "src", {"token": None, "pass": 2})
    assert store.get(RECONCILE_PK, "src") == {"pk": RECONCILE_PK, "dest": "src", "pass": 2, "listed": 10}


def test_progress_removes_an_attribute_while_it_sets_another(store):
    store.save_progress(CANARY_PK, "src", {"versions": ["1:v1"], "last": 1})
    store.save_progress(CANARY_PK, "src", {"versions": None, "last": 2})
    assert store.get(CANARY_PK, "src") == {"pk": CANARY_PK, "dest": "src", "last": 2}


def test_progress_that_only_removes_attributes_is_written(store):
    store.save_progress(RECONCILE_PK, "src", {"token": "t1", "listed": 10})
    store.save_progress(RECONCILE_PK, "src", {"token": None})
    assert store.get(RECONCILE_PK, "src") == {"pk": RECONCILE_PK, "dest": "src", "listed": 10}


# ---- reads and keys ----------------------------------------------------------------------------------------------


def test_items_of_a_version_are_its_destinations_only(store):
    for pk, dest in (("v1#a", "d1"), ("v1#a", "d2"), ("v2#a", "d1")):
        store.record_observation(pk, dest, now_ms=1, due_s=2, expires_s=3, fields={"s_size": 1.5})
    items = store.items_of("v1#a")
    assert sorted((item["pk"], item["dest"], item["s_size"]) for item in items) == [
        ("v1#a", "d1", 1.5),
        ("v1#a", "d2", 1.5),
    ]
    assert store.items_of("v9#a") == []


def test_items_of_is_one_query_on_the_key():
    class Recording:
        def __init__(self):
            self.calls: list[dict] = []

        def query(self, **kwargs):
            self.calls.append(kwargs)
            return {"Items": [{"pk": {"S": "v1#a"}, "dest": {"S": "d1"}, "due": {"N": "2"}}]}

    table = Recording()
    assert Store(table, "t").items_of("v1#a") == [{"pk": "v1#a", "dest": "d1", "due": 2}]
    assert table.calls == [
        {"TableName": "t", "KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": {"S": "v1#a"}}}
    ]


@pytest.mark.parametrize("pk", [LEASE_PK, HEARTBEAT_PK, CANARY_PK, RECONCILE_PK])
def test_bookkeeping_items_are_internal(pk):
    assert is_internal(pk) is True


@pytest.mark.parametrize("pk", [None, "", "_x_", "x__", make_pk("__v", "k"), make_pk("v1", "__lease__"), "v1#a"])
def test_object_versions_and_nothing_are_not_internal(pk):
    assert is_internal(pk) is False


def test_a_pk_splits_at_its_first_hash_so_the_key_may_hold_any():
    assert split_pk(make_pk("v1", "a#b/c")) == ("v1", "a#b/c")
    assert split_pk("null#k") == ("null", "k")
    assert split_pk("v1") == ("v1", "")
