"""Forged and hostile messages: for each, the verdict that must come out (docs/threat-model.md).

The events queue admits S3, the monitor's event rules and the forwarder topics of allowed accounts. Anyone
who may publish to such a topic, or put events on the monitor's bus from an allowed account, can send
whatever they like: these messages must never change a verdict S3 itself would contradict.
"""

from __future__ import annotations

import json

import pytest

from crrmon_local import emulator

from .conftest import (
    ACCOUNT,
    DST,
    DST2,
    OTHER,
    READER,
    REGIONS,
    RPO,
    SRC,
    XDST,
    XSRC,
    cross_account_world,
)

STRANGER = "999999999999"


def topic(account: str, name: str = "crr-forwarder-ReplicationFailureTopic-ABC123") -> str:
    return f"arn:aws:sns:us-east-1:{account}:{name}"


def failure(obj: dict, key: str, *, dest: str = DST, reason: str = "DstPutObjectNotPermitted", **data) -> dict:
    record = emulator.replication_failure(
        bucket=SRC,
        key=key,
        version_id=obj["version_id"],
        destination_bucket=dest,
        reason=reason,
        rule_id="to-west",
        time_s=0,
        region=REGIONS[SRC],
    )
    record["eventTime"] = "2026-12-07T10:00:00.000Z"
    record["replicationEventData"].update(data)
    return record


@pytest.fixture
def world(aws, clock, monkeypatch, backup_account):
    """The harness's world, with another account allowed and its backup bucket read through its role."""
    return cross_account_world(aws, clock, monkeypatch, ReaderRoleArns=READER)


def parked_reasons(world) -> list[str]:
    return sorted(
        m["MessageAttributes"]["RejectedReason"]["StringValue"] for m in world.queue_bodies(world.stack.events_dlq_url)
    )


def fresh_event(world, key: str):
    """A version in SRC with its source event recorded; the forgery under test comes after."""
    obj = world.put(SRC, key)
    world.send(world.created_event(SRC, key, obj))
    world.run()
    return obj


# ---- refused outright: parked in the events DLQ with their reason, nothing recorded -----------------------

REFUSED = {
    "eventbridge-from-a-stranger-account": (
        lambda w, o, k: w.created_event(SRC, k, o, account=STRANGER),
        "account-not-allowed",
    ),
    "notification-through-a-strangers-topic": (
        lambda w, o, k: emulator.in_sns([failure(o, k)], topic_arn=topic(STRANGER)),
        "topic-not-allowed",
    ),
    "allowed-account-speaking-for-this-accounts-bucket": (
        lambda w, o, k: emulator.in_sns([failure(o, k)], topic_arn=topic(OTHER)),
        "topic-account-mismatch",
    ),
    "eventbridge-shape-inside-sns": (
        lambda w, o, k: json.dumps(
            {
                "Type": "Notification",
                "TopicArn": topic(ACCOUNT),
                "Message": w.created_event(DST, k, o),
                "MessageId": "m",
            }
        ),
        "unknown-shape",
    ),
    "failure-for-a-bucket-no-rule-sends-to": (
        lambda w, o, k: emulator.in_sns([failure(o, k, dest=XDST)], topic_arn=topic(ACCOUNT)),
        "unknown-destination",
    ),
    "oversized-failure-reason": (
        lambda w, o, k: emulator.in_sns([failure(o, k, reason="Dst" * 400)], topic_arn=topic(ACCOUNT)),
        "bad-value",
    ),
    "oversized-rule-id": (
        lambda w, o, k: emulator.in_sns([failure(o, k, replicationRuleId="r" * 300)], topic_arn=topic(ACCOUNT)),
        "bad-value",
    ),
    "bucket-name-s3-would-never-make": (
        lambda w, o, k: w.created_event(DST, k, o).replace(f'"name": "{DST}"', '"name": "' + "A" * 80 + '"'),
        "bad-value",
    ),
    "region-that-is-no-region": (
        lambda w, o, k: json.dumps({**json.loads(w.created_event(DST, k, o)), "region": "us-east-1\nX-Injected: 1"}),
        "bad-value",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_forged_message_is_refused_and_the_true_verdict_stands(world, case):
    build, reason = REFUSED[case]
    key = f"forged/{case}"
    obj = fresh_event(world, key)
    world.send(build(world, obj, key))
    world.run()
    assert reason in parked_reasons(world)
    for dest in (DST, DST2):  # replicated for real afterwards: the true verdict
        world.replicate(SRC, key, obj, dest)
        world.send(world.created_event(dest, key, obj))
    world.run()
    assert {(line["destination_bucket"], line["status"]) for line in world.lines_for(key)} == {
        (DST, "COMPLETED"),
        (DST2, "COMPLETED"),
    }


# ---- accepted as a claim, and S3 has the last word ----------------------------------------------------------


def test_failure_claim_followed_by_the_real_replica_completes(world):
    key = "forged/failure-then-replica"
    obj = fresh_event(world, key)
    emulator.set_replication_status(SRC, key, obj["version_id"], "PENDING")  # S3: still replicating
    world.send(emulator.in_sns([failure(obj, key)], topic_arn=topic(ACCOUNT)))  # a forged (or premature) claim
    world.run()
    assert world.item(key, obj["version_id"], DST).get("status") is None  # S3 does not say FAILED: no verdict
    world.clock.advance(3)
    for dest in (DST, DST2):
        world.replicate(SRC, key, obj, dest)
        world.send(world.created_event(dest, key, obj))
    world.run()
    line = next(line for line in world.lines_for(key) if line["destination_bucket"] == DST)
    assert (line["status"], line["reason"]) == ("COMPLETED", None)


def test_failure_claim_for_a_version_whose_events_were_lost_is_judged_by_s3(world):
    """S3 replicated the version to both destinations; every event of it was lost, and a failure report
    for DST arrives (forged, or another destination's): the source's status and the replica decide."""
    key = "forged/failure-events-lost"
    obj = world.put(SRC, key)
    for dest in (DST, DST2):
        world.replicate(SRC, key, obj, dest)
    world.send(emulator.in_sns([failure(obj, key)], topic_arn=topic(ACCOUNT)))
    world.run()
    world.advance(RPO + 1)
    line = next(line for line in world.lines_for(key) if line["destination_bucket"] == DST)
    assert (line["status"], line["reason"]) == ("COMPLETED", None)


def test_failure_claim_that_s3_confirms_fails_at_once(world):
    key = "forged/confirmed-failure"
    obj = fresh_event(world, key)
    emulator.set_replication_status(SRC, key, obj["version_id"], "FAILED")
    world.send(emulator.in_sns([failure(obj, key)], topic_arn=topic(ACCOUNT)))
    world.run()  # well before the deadline
    line = next(line for line in world.lines_for(key) if line["destination_bucket"] == DST)
    assert (line["status"], line["reason"]) == ("FAILED", "DstPutObjectNotPermitted")


def test_replica_claim_from_another_account_is_confirmed_by_a_head(world):
    key = "forged/claimed-backup"
    obj = world.put(XSRC, key)
    world.send(world.created_event(XSRC, key, obj))
    world.run()
    # Someone in the backup account claims the replica landed; it did not.
    world.send(world.created_event(XDST, key, obj, account=OTHER))
    world.run()
    item = world.item(key, obj["version_id"], XDST)
    assert item.get("status") in (None, "OVERDUE") and item.get("xacct") is True
    world.advance(RPO + 1)
    assert world.item(key, obj["version_id"], XDST)["status"] == "OVERDUE"
    assert world.lines_for(key) == []  # no COMPLETED was ever archived


def test_replica_claim_from_another_account_for_a_version_id_s3_never_issues_is_no_replica(world):
    """S3 answers a HEAD of a malformed version ID with 400 and no body, as it answers a HEAD of an SSE-C
    object without its key: a claim must not pass for an SSE-C version that exists."""
    key = "forged/malformed-version"
    obj = world.put(XSRC, key)
    forged = {**obj, "version_id": "not-a-version-s3-issues"}
    world.send(world.created_event(XDST, key, forged, account=OTHER))
    world.run()
    world.advance(RPO + 1)
    (line,) = world.lines_for(key)
    assert (line["status"], line["reason"]) == (
        "NOT_IN_SCOPE",
        "no source holds this version and it is gone from the destination",
    )


def test_real_replica_from_another_account_completes_after_its_head(world):
    key = "forged/real-backup"
    obj = world.put(XSRC, key)
    world.send(world.created_event(XSRC, key, obj))
    world.run()
    world.replicate(XSRC, key, obj, XDST)
    world.send(world.created_event(XDST, key, obj, account=OTHER))
    world.run()
    (line,) = world.lines_for(key)
    assert (line["status"], line["verified_by"]) == ("COMPLETED", "etag")


def test_replayed_events_change_nothing(world):
    key = "forged/replayed"
    obj = world.replicated(key)
    before = sorted((line["destination_bucket"], line["status"]) for line in world.lines_for(key))
    world.send(world.created_event(SRC, key, obj), world.created_event(DST, key, {**obj, "size": 1}))
    world.send(emulator.in_sns([failure(obj, key)], topic_arn=topic(ACCOUNT)))
    world.advance(RPO + 1)
    assert sorted((line["destination_bucket"], line["status"]) for line in world.lines_for(key)) == before
    assert world.item(key, obj["version_id"], DST)["status"] == "COMPLETED"
