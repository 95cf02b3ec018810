"""Outages: a watched bucket that falls silent, canaries that prove the whole path end to end, and a
destination that is down for an hour under load."""

from __future__ import annotations

import json

import pytest

from crrmon import runtime
from crrmon.ingest import CONTAINER_HEARTBEATS
from crrmon.store import HEARTBEAT_PK
from crrmon.sweep import CANARY_KEY

from .conftest import BIDI_A, BIDI_B, DST, DST2, RPO, SRC, TAGGED


def emf_values(out: str, name: str, **dimensions) -> list[float]:
    """Values of metric `name` in EMF documents whose dimensions are exactly `dimensions` (plus service)."""
    found = []
    for line in out.splitlines():
        if '"_aws"' not in line:
            continue
        doc = json.loads(line)
        names = set(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) - {"service"}
        if name in doc and names == set(dimensions) and all(doc.get(k) == v for k, v in dimensions.items()):
            value = doc[name]
            found.extend(value if isinstance(value, list) else [value])
    return found


@pytest.fixture
def fresh_container():
    CONTAINER_HEARTBEATS.forget()
    yield
    CONTAINER_HEARTBEATS.forget()


def test_silent_buckets_are_counted_and_each_reports_its_quiet_time(world, capsys, fresh_container):
    heartbeat_writes = []
    ddb = runtime.client("dynamodb")

    def spy(params, **_):
        if params["Key"]["pk"]["S"] == HEARTBEAT_PK:
            heartbeat_writes.append(params["Key"]["dest"]["S"])

    ddb.meta.events.register("provide-client-params.dynamodb.UpdateItem", spy)
    [first] = world.schedule()  # no bucket has sent anything yet: each one's clock starts now
    assert first["seconds_since_last_event"] == {SRC: 0, BIDI_A: 0, BIDI_B: 0, TAGGED: 0}
    world.clock.advance(10 * 60)
    for i in range(3):  # three events within a minute: one heartbeat write
        obj = world.put(SRC, f"alive/{i}")
        world.send(world.created_event(SRC, f"alive/{i}", obj))
        world.run()
        world.clock.advance(5)
    assert heartbeat_writes.count(SRC) == 1 + 1  # the schedule's start of the clock, then one beat
    world.clock.advance(6 * 60)
    capsys.readouterr()
    [second] = world.schedule()
    ddb.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", spy)

    since = second["seconds_since_last_event"]
    assert 6 * 60 <= since[SRC] < 7 * 60
    assert since[BIDI_A] == since[BIDI_B] == since[TAGGED] == 16 * 60 + 15
    out = capsys.readouterr().out
    assert emf_values(out, "SilentBuckets") == [3]  # the service-wide total the alarm watches
    assert emf_values(out, "SecondsSinceLastEvent", Bucket=SRC) == [since[SRC]]
    assert emf_values(out, "SecondsSinceLastEvent", Bucket=TAGGED) == [16 * 60 + 15]


def test_silence_off_reports_nothing(world, monkeypatch, capsys):
    monkeypatch.setenv("SILENCE_MINUTES", "0")
    runtime.reset()
    [result] = world.schedule()
    assert "seconds_since_last_event" not in result
    assert emf_values(capsys.readouterr().out, "SilentBuckets") == []


def test_canaries_are_written_followed_verified_and_cleaned_up(world, monkeypatch):
    monkeypatch.setenv("CANARY_INTERVAL_MINUTES", "5")
    runtime.reset()
    [result] = world.schedule()
    versions = result["canaries"]
    assert set(versions) == {SRC, BIDI_A, BIDI_B, TAGGED}
    first = versions[SRC]
    head = world.s3.head_object(Bucket=SRC, Key=CANARY_KEY, VersionId=first)
    obj = {"version_id": first, "etag": head["ETag"].strip('"'), "size": head["ContentLength"]}
    world.send(world.created_event(SRC, CANARY_KEY, obj))  # S3 announces the canary like any object
    world.run()
    world.replicate(SRC, CANARY_KEY, obj, DST)
    world.replicate(SRC, CANARY_KEY, obj, DST2)
    world.send(world.created_event(DST, CANARY_KEY, obj), world.created_event(DST2, CANARY_KEY, obj))
    world.run()
    assert {(line["destination_bucket"], line["status"]) for line in world.lines_for(CANARY_KEY)} == {
        (DST, "COMPLETED"),
        (DST2, "COMPLETED"),
    }

    world.clock.advance(2 * 60)
    [early] = world.schedule()  # not yet due: nothing new written, the judged canary is cleaned up
    assert early["canaries"] == {}
    world.clock.advance(3 * 60 + 1)
    [due] = world.schedule()
    assert set(due["canaries"]) == {SRC, BIDI_A, BIDI_B, TAGGED} and due["canaries"][SRC] != first
    gone = world.s3.list_object_versions(Bucket=SRC, Prefix=CANARY_KEY).get("Versions", [])
    assert [v["VersionId"] for v in gone] == [due["canaries"][SRC]]  # the judged one was deleted
    # BIDI_A's first canary was never announced: it is kept until its items are judged or forgotten
    kept = world.s3.list_object_versions(Bucket=BIDI_A, Prefix=CANARY_KEY).get("Versions", [])
    assert len(kept) == 2


def test_canaries_off_writes_nothing(world):
    [result] = world.schedule()
    assert "canaries" not in result
    assert world.s3.list_object_versions(Bucket=SRC, Prefix="crr-monitor-canary/").get("Versions", []) == []


def test_one_destination_down_does_not_fail_a_replica_whose_event_was_lost(world):
    """The source stays PENDING while any destination lacks its replica: the sweeper must look at the
    replica that did land (its event was lost) instead of judging it by the source's status."""
    key = "outage/one-dest-down"
    obj = world.put(SRC, key)
    world.send(world.created_event(SRC, key, obj))
    world.run()
    world.replicate(SRC, key, obj, DST, status="PENDING")  # DST has it, no event; DST2 is down
    world.advance(RPO + 1)
    assert world.item(key, obj["version_id"], DST)["status"] == "COMPLETED"
    assert world.item(key, obj["version_id"], DST2)["status"] == "OVERDUE"
    line = [x for x in world.lines_for(key) if x["destination_bucket"] == DST]
    assert [(x["status"], x["verified_by"]) for x in line] == [("COMPLETED", "etag")]
