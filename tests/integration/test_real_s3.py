"""Verdicts on S3 as people run it: what real S3 does that a naive monitor misreads.

Each scenario is one row of docs/s3-semantics.md. The emulator answers HEADs as S3 does (404 only to a
caller that may list the bucket, 400 for SSE-C without the key, 405 for a delete marker, 403 for a KMS
key the caller may not use in checksum mode and for another account's bucket), so these tests read
the same answers the monitor gets from S3.
"""

from __future__ import annotations

import json
import os

import boto3
import pytest

from crrmon import runtime
from crrmon_local import emulator

from .conftest import (
    ACCOUNT,
    BIDI_A,
    BIDI_B,
    DST,
    DST2,
    OTHER,
    READER,
    REGION,
    REGIONS,
    RPO,
    SRC,
    XDST,
    XSRC,
    build_world,
    cross_account_world,
    subscription_confirmation,
)


def statuses(world, key: str) -> dict[str, tuple]:
    return {line["destination_bucket"]: line for line in world.lines_for(key)}


def metric_total(capsys, name: str) -> float:
    """The sum of one metric over the EMF lines printed so far (service-wide documents only)."""
    total = 0.0
    for line in capsys.readouterr().out.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        dimensions = document["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
        if dimensions == [["service"]] and name in document:
            value = document[name]
            total += sum(value) if isinstance(value, list) else value
    return total


# ---- writes in a destination that replication did not make -------------------------------------------


def test_direct_write_into_a_destination_is_not_a_completed_replica(world):
    key = "direct/app-wrote-here.json"
    obj = world.put(DST, key)  # an application's PutObject into the destination: no replication status
    world.send(world.created_event(DST, key, obj))
    world.advance(RPO + 1)

    (line,) = world.lines_for(key)
    assert line["status"] == "NOT_IN_SCOPE" and line["destination_bucket"] == DST
    assert "written into the destination directly" in line["reason"]
    assert world.digests() == []


def test_a_replica_whose_source_version_was_deleted_is_still_completed(world):
    key = "gone/source.bin"
    obj = world.put(SRC, key)
    world.replicate(SRC, key, obj, DST)
    world.s3.delete_object(Bucket=SRC, Key=key, VersionId=obj["version_id"])
    world.send(world.created_event(DST, key, obj))  # the source's event was lost
    world.advance(RPO + 1)

    (line,) = world.lines_for(key)
    assert (line["status"], line["verified_by"]) == ("COMPLETED", "replica")


def test_lifecycle_delete_marker_in_a_destination_is_ignored(world):
    key = "expiring/in-destination.log"
    obj = world.put(DST, key)
    marker = world.s3.delete_object(Bucket=DST, Key=key)["VersionId"]  # the destination's lifecycle rule
    body = emulator.eventbridge_object_event(
        bucket=DST,
        key=key,
        version_id=marker,
        time_s=world.clock(),
        region=REGIONS[DST],
        account=ACCOUNT,
        reason="Lifecycle Expiration",
        deletion_type="Delete Marker Created",
    )
    world.send(body)
    world.advance(RPO + 1)
    assert world.item(key, marker, DST) is None and world.lines_for(key) == []
    assert obj["version_id"] != marker


# ---- HEAD answers that are not "the version is gone" ---------------------------------------------------


def test_sse_c_object_whose_replica_event_was_lost_completes_by_presence(world):
    key = "sse-c/customer-key.bin"
    obj = world.put(SRC, key)
    emulator.set_sse_c(SRC, key, obj["version_id"])
    world.send(world.created_event(SRC, key, obj))
    world.run()
    for dest in (DST, DST2):  # replicated; both replica events lost
        world.replicate(SRC, key, obj, dest)

    world.advance(RPO + 1)  # HEADs answer 400: the versions exist, S3 says no more without the key
    lines = statuses(world, key)
    assert {(d, line["status"], line["verified_by"]) for d, line in lines.items()} == {
        (DST, "COMPLETED", "presence"),
        (DST2, "COMPLETED", "presence"),
    }


def test_sse_c_object_never_replicated_is_overdue_not_source_deleted(world):
    key = "sse-c/stuck.bin"
    obj = world.put(SRC, key)
    emulator.set_sse_c(SRC, key, obj["version_id"])
    world.send(world.created_event(SRC, key, obj))
    world.advance(RPO + 1)
    for dest in (DST, DST2):
        item = world.item(key, obj["version_id"], dest)
        assert item["status"] == "OVERDUE"


def sse_kms_replicated(world, key: str) -> None:
    """An SSE-KMS version replicated to both destinations under the destination's key (other ETags), every
    event delivered: in checksum mode the sweeper HEADs both sides of each."""
    obj = world.put(SRC, key, ServerSideEncryption="aws:kms")
    world.send(world.created_event(SRC, key, obj))
    world.run()
    for dest in (DST, DST2):
        replica = world.replicate(SRC, key, obj, dest, encryption="aws:kms", etag="0" * 32)
        world.send(world.created_event(dest, key, replica))


def test_checksum_mode_refused_by_kms_falls_back_to_a_plain_head(aws, clock, monkeypatch, capsys):
    world = build_world(aws, clock, monkeypatch, VerifyMode="checksum")
    sse_kms_replicated(world, "kms/checksum-mode.bin")
    capsys.readouterr()
    world.run()  # S3 refuses checksum mode without kms:Decrypt on the key

    lines = statuses(world, "kms/checksum-mode.bin")
    assert {(line["status"], line["verified_by"]) for line in lines.values()} == {("COMPLETED", "size")}
    assert metric_total(capsys, "ChecksumModeRefused") == 4  # two HEADs per destination


def test_checksum_mode_with_a_usable_kms_key_compares_checksums(aws, clock, monkeypatch):
    world = build_world(aws, clock, monkeypatch, VerifyMode="checksum")
    emulator.grant_kms("aws/s3", ACCOUNT)  # the key policy lets the monitor's roles decrypt
    sse_kms_replicated(world, "kms/checksum-granted.bin")
    world.run()
    lines = statuses(world, "kms/checksum-granted.bin")
    assert {(line["status"], line["verified_by"]) for line in lines.values()} == {("COMPLETED", "checksum")}


# ---- a backlog in the event path -----------------------------------------------------------------------


def test_backlog_does_not_hide_a_missed_rpo(world):
    key = "backlog/late-replica.bin"
    obj = world.put(SRC, key)
    source_event = world.created_event(SRC, key, obj)  # stamped now by S3
    world.clock.advance(RPO + 30)  # the replica lands after the RPO...
    world.replicate(SRC, key, obj, DST)
    world.replicate(SRC, key, obj, DST2)
    replica_events = [world.created_event(d, key, obj) for d in (DST, DST2)]
    world.clock.advance(30)  # ...and the monitor hears of both only now (events queued upstream)
    world.send(source_event, *replica_events)
    world.run()

    lines = statuses(world, key)
    assert {(line["status"], line["missed_rpo"], line["latency_ms"]) for line in lines.values()} == {
        ("COMPLETED", True, (RPO + 30) * 1000)
    }


def test_backlog_raises_no_false_overdue_for_an_on_time_replica(world):
    key = "backlog/on-time.bin"
    obj = world.put(SRC, key)
    source_event = world.created_event(SRC, key, obj)
    world.clock.advance(5)
    for dest in (DST, DST2):
        world.replicate(SRC, key, obj, dest)
    replica_events = [world.created_event(d, key, obj) for d in (DST, DST2)]
    world.clock.advance(RPO + 40)  # the event path is backed up past the deadline
    world.send(source_event)
    world.run()  # past its deadline already: the sweeper looks now and finds the replicas
    world.clock.advance(10)
    world.send(*replica_events)  # the replicas' own events, behind it in the backlog
    world.run()

    lines = statuses(world, key)
    assert {(line["status"], line["missed_rpo"], line["latency_ms"]) for line in lines.values()} == {
        ("COMPLETED", False, 5000)
    }
    assert world.digests() == []  # no OVERDUE was ever raised


def test_backlog_metric_is_the_age_of_each_event(world, capsys):
    key = "backlog/metric.bin"
    obj = world.put(SRC, key)
    body = world.created_event(SRC, key, obj)
    world.clock.advance(120)
    capsys.readouterr()
    world.send(body)
    world.run()
    ages = [
        json.loads(line)["EventAge"]
        for line in capsys.readouterr().out.splitlines()
        if '"EventAge"' in line and '"Dimensions":[["service"]]' in line
    ]
    assert ages == [[120.0]]


# ---- two-way replication --------------------------------------------------------------------------------


def rules_as_stored(world, monkeypatch) -> None:
    """moto answers GetBucketReplication with DeleteMarkerReplication "Disabled" whatever was stored: the
    rules come from the SSM topology override (the path cross-account set-ups use)."""
    from .conftest import RULES

    topology = {"sources": {b: {"region": REGIONS[b], "rules": r} for b, r in RULES.items()}, "regions": REGIONS}
    world.session.client("ssm").put_parameter(Name="/crrmon/topology", Type="String", Value=json.dumps(topology))
    monkeypatch.setenv("TOPOLOGY_PARAMETER_NAME", "/crrmon/topology")
    runtime.reset()


@pytest.mark.parametrize("replicated_after_s", [2, 0.4], ids=["a-later-second", "the-same-second"])
def test_two_way_delete_marker_is_judged_once_in_its_own_direction(world, monkeypatch, replicated_after_s):
    rules_as_stored(world, monkeypatch)
    key = "bidi/deleted.txt"
    a = world.put(BIDI_A, key)
    emulator.set_replication_status(BIDI_A, key, a["version_id"], "PENDING")
    world.send(world.created_event(BIDI_A, key, a))
    world.run()
    world.replicate(BIDI_A, key, a, BIDI_B)
    world.send(world.created_event(BIDI_B, key, a))
    world.run()

    marker = world.s3.delete_object(Bucket=BIDI_A, Key=key)["VersionId"]  # a user's delete in A
    deleted = {"reason": "DeleteObject", "deletion_type": "Delete Marker Created"}
    world.send(world.created_event(BIDI_A, key, {**a, "version_id": marker}, **deleted))
    world.run()
    world.clock.advance(replicated_after_s)  # EventBridge times are whole seconds: 0.4 s later ties with A's
    emulator.replicate_delete_marker(world.s3, BIDI_B, key, marker)  # S3 replicates the marker to B
    world.send(world.created_event(BIDI_B, key, {**a, "version_id": marker}, **deleted))
    world.advance(RPO + 1)

    forward = world.item(key, marker, BIDI_B)
    latency = int(replicated_after_s) * 1000
    assert (forward["status"], forward["verified_by"], forward["latency_ms"]) == ("COMPLETED", "delete-marker", latency)
    backward = world.item(key, marker, BIDI_A)
    assert backward["status"] == "NOT_IN_SCOPE" and "two-way replication" in backward["reason"]
    assert [line["status"] for line in world.lines_for(key) if line["version_id"] == marker].count("COMPLETED") == 1


def test_two_way_delete_marker_not_replicated_is_overdue(world, monkeypatch):
    rules_as_stored(world, monkeypatch)
    key = "bidi/not-replicated.txt"
    a = world.put(BIDI_A, key)
    emulator.set_replication_status(BIDI_A, key, a["version_id"], "COMPLETED")
    marker = world.s3.delete_object(Bucket=BIDI_A, Key=key)["VersionId"]
    deleted = {"reason": "DeleteObject", "deletion_type": "Delete Marker Created"}
    world.send(world.created_event(BIDI_A, key, {**a, "version_id": marker}, **deleted))
    world.advance(RPO + 1)
    assert world.item(key, marker, BIDI_B)["status"] == "OVERDUE"
    assert world.item(key, marker, BIDI_A) is None


# ---- other accounts -------------------------------------------------------------------------------------


def replicated_with_lost_event(world, key: str) -> dict:
    obj = world.put(XSRC, key)
    world.send(world.created_event(XSRC, key, obj))
    world.run()
    world.replicate(XSRC, key, obj, XDST)  # the replica's event never reaches the monitor
    world.advance(RPO + 1)
    return obj


def test_cross_account_replica_is_confirmed_through_the_accounts_read_role(
    aws, clock, monkeypatch, backup_account, capsys
):
    world = cross_account_world(aws, clock, monkeypatch, ReaderRoleArns=READER)
    assert os.environ["READER_ROLE_ARNS"] == READER
    capsys.readouterr()
    replicated_with_lost_event(world, "xacct/confirmed.bin")
    (line,) = world.lines_for("xacct/confirmed.bin")
    assert (line["status"], line["verified_by"], line["destination_bucket"]) == ("COMPLETED", "etag", XDST)
    assert metric_total(capsys, "HeadsRefused") == 0


def test_cross_account_replica_without_a_read_role_is_refused_and_counted(
    aws, clock, monkeypatch, backup_account, capsys
):
    world = cross_account_world(aws, clock, monkeypatch)
    capsys.readouterr()
    replicated_with_lost_event(world, "xacct/refused.bin")
    (line,) = world.lines_for("xacct/refused.bin")
    # The replica cannot be read; the source's replication status COMPLETED is S3's own word for it.
    assert (line["status"], line["verified_by"]) == ("COMPLETED", "source-status")
    assert metric_total(capsys, "HeadsRefused") == 1


def test_cross_account_missing_replica_fails_through_the_read_role(aws, clock, monkeypatch, backup_account):
    world = cross_account_world(aws, clock, monkeypatch, ReaderRoleArns=READER)
    key = "xacct/missing.bin"
    obj = world.put(XSRC, key)
    emulator.set_replication_status(XSRC, key, obj["version_id"], "FAILED")
    world.send(world.created_event(XSRC, key, obj))
    world.advance(RPO + 1)
    (line,) = world.lines_for(key)
    assert (line["status"], line["reason"]) == ("FAILED", "replication status FAILED")


def test_forwarder_topic_of_an_allowed_account_gets_its_subscription_confirmed(
    aws, clock, monkeypatch, backup_account, capsys
):
    world = cross_account_world(aws, clock, monkeypatch)
    confirmed = []  # ConfirmSubscription calls, as botocore sends them to moto's SNS

    def record(params, model, **_):
        if model.name == "ConfirmSubscription":
            confirmed.append(dict(params))

    boto3.setup_default_session(region_name=REGION)
    boto3.DEFAULT_SESSION.events.register("provide-client-params.sns", record)
    runtime.reset()
    allowed = f"arn:aws:sns:eu-west-1:{OTHER}:crr-forwarder-failures"
    stranger = "arn:aws:sns:eu-west-1:999999999999:phishing"
    try:
        world.send(subscription_confirmation(allowed), subscription_confirmation(stranger))
        world.run()
    finally:
        boto3.DEFAULT_SESSION = None
    assert confirmed == [
        {"TopicArn": allowed, "Token": "2336412f37fb687f5d51e6e2425f004aed4d7f1a", "AuthenticateOnUnsubscribe": "true"}
    ]
    parked = world.queue_bodies(world.stack.events_dlq_url)
    assert [m["MessageAttributes"]["RejectedReason"]["StringValue"] for m in parked] == ["subscription-not-allowed"]
