"""The emulator's events and AWS's published event formats give the monitor the same observations.

The same objects go through the emulator's Replicator (EventBridge events, S3 notifications in SNS,
replication failure records) and through the sample events in events/, which follow AWS's published
formats, with the objects' facts written in. crrmon.events.parse_body must read both alike.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote_plus

import pytest

from crrmon.events import parse_body
from crrmon.model import ObjectEvent, ReplicationEvent
from crrmon_local import emulator

from .conftest import ACCOUNT, DST, DST2, REGIONS, SRC, make_buckets

EVENTS = Path(__file__).resolve().parents[2] / "events"
T0 = 1_764_000_000.0  # whole seconds: EventBridge events carry no fraction


def sample(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


class RecordingSqs:
    def __init__(self):
        self.bodies: list[str] = []

    def send_message_batch(self, QueueUrl, Entries):
        self.bodies.extend(e["MessageBody"] for e in Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


def iso_seconds(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_millis(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def aws_eventbridge(bucket, key, version_id, *, size=None, etag=None, reason="PutObject", deletion=None):
    """The published EventBridge sample with this object's facts written in."""
    event = sample("eventbridge-object-deleted.json" if deletion else "eventbridge-object-created.json")
    event["time"], event["region"], event["account"] = iso_seconds(T0), REGIONS[bucket], ACCOUNT
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    detail = event["detail"]
    detail["bucket"]["name"] = bucket
    obj = detail["object"]
    obj["key"], obj["version-id"] = key, version_id
    for field, value in (("size", size), ("etag", etag)):
        if value is None:
            obj.pop(field, None)
        else:
            obj[field] = value
    detail["reason"] = reason
    if deletion:
        detail["deletion-type"] = deletion
    return json.dumps(event)


def aws_notification(bucket, key, version_id, *, size, etag, event_name="ObjectCreated:Put", replication=None):
    """The published S3 notification sample (in its SNS envelope) with this object's facts written in."""
    envelope = sample("replication-failed.json" if replication else "s3-notification-in-sns.json")
    record = json.loads(envelope["Message"])["Records"][0]
    record = copy.deepcopy(record)
    record["eventTime"], record["awsRegion"], record["eventName"] = iso_millis(T0), REGIONS[bucket], event_name
    record["s3"]["bucket"].update({"name": bucket, "arn": f"arn:aws:s3:::{bucket}"})
    record["s3"]["object"].update({"key": quote_plus(key), "size": size, "eTag": etag, "versionId": version_id})
    if replication:
        record["replicationEventData"].update(replication)
    envelope["Message"] = json.dumps({"Records": [record]})
    return json.dumps(envelope)


def observation(body: str):
    [parsed] = parse_body(body)
    assert isinstance(parsed, ObjectEvent | ReplicationEvent), parsed
    return replace(parsed, sequencer=None) if isinstance(parsed, ObjectEvent) else parsed


@pytest.fixture
def replicator(aws):
    emulator.install()
    emulator.answer_replication_faithfully()
    make_buckets(aws)
    sqs = RecordingSqs()
    clock = {"t": T0}
    channel = emulator.EventChannel(sqs, "queue", rng=random.Random(1))
    rep = emulator.Replicator(
        channel,
        regions=REGIONS,
        delay=lambda: 0.0,
        clock=lambda: clock["t"],
        rng=random.Random(2),
        account_id=ACCOUNT,
    )

    def settle() -> list[str]:
        rep.run_due(T0)
        channel.flush(T0 + 10)
        bodies, sqs.bodies = sqs.bodies, []
        return bodies

    rep.settle = settle
    return rep


@pytest.mark.parametrize("key", ["plain/key.bin", "with space/ü+%.txt"])
def test_created_events_and_replicas_read_like_aws_samples(replicator, key):
    body = b"0123456789" * 7
    version_id = replicator.put(SRC, key, body)
    etag = emulator.object_version(SRC, key, version_id).etag.strip('"')
    bodies = replicator.settle()
    assert len(bodies) == 3  # the source version and one replica in each of two destinations
    by_bucket = {observation(b).bucket: observation(b) for b in bodies}
    assert set(by_bucket) == {SRC, DST, DST2}
    for bucket, seen in by_bucket.items():
        assert seen == observation(aws_eventbridge(bucket, key, version_id, size=len(body), etag=etag))


def test_multipart_etag_and_notification_format(replicator):
    replicator.notification_share = 1.0  # every object event as an S3 notification through SNS
    key = "big/parts +.bin"
    body = bytes(range(256)) * 30
    version_id = replicator.put(SRC, key, body, parts=3)
    etag = emulator.object_version(SRC, key, version_id).etag.strip('"')
    assert etag.endswith("-3")
    for body_text in replicator.settle():
        seen = observation(body_text)
        aws = aws_notification(
            seen.bucket, key, version_id, size=len(body), etag=etag, event_name="ObjectCreated:CompleteMultipartUpload"
        )
        assert seen == replace(observation(aws), origin=seen.origin, topic_arn=seen.topic_arn)
        assert seen.etag == etag  # a replica of a multipart object keeps its ETag


def test_replication_failure_reads_like_the_aws_sample(replicator):
    key = "fails/here.bin"
    version_id = replicator.put(SRC, key, b"x" * 10, fail_reason="DstKmsKeyNotFound")
    failures = [observation(b) for b in replicator.settle() if "Replication:" in b]
    [failure] = failures
    assert isinstance(failure, ReplicationEvent) and failure.failure_reason == "DstKmsKeyNotFound"
    rule_id = "to-west" if failure.destination_bucket == DST else "to-eu"
    aws = aws_notification(
        SRC,
        key,
        version_id,
        size=10,
        etag=emulator.object_version(SRC, key, version_id).etag.strip('"'),
        event_name="Replication:OperationFailedReplication",
        replication={
            "replicationRuleId": rule_id,
            "destinationBucket": f"arn:aws:s3:::{failure.destination_bucket}",
            "failureReason": "DstKmsKeyNotFound",
        },
    )
    expected = observation(aws)
    assert replace(failure, size=None, etag=None, topic_arn=None) == replace(
        expected, size=None, etag=None, topic_arn=None
    )
    assert emulator.object_version(SRC, key, version_id).replication_status == "FAILED"


def test_delete_markers_read_like_aws_samples(replicator):
    key = "gone/soon.txt"
    replicator.put(SRC, key, b"abc")
    replicator.settle()
    marker = replicator.expire_by_lifecycle(SRC, key)
    [lifecycle] = [observation(b) for b in replicator.settle()]
    assert lifecycle == observation(
        aws_eventbridge(SRC, key, marker, reason="Lifecycle Expiration", deletion="Delete Marker Created")
    )
    assert {t.verdict for t in replicator.truth.values() if t.version_id == marker} == {"NONE"}
    user_marker = replicator.delete(SRC, key)
    seen = sorted((observation(b) for b in replicator.settle()), key=lambda o: o.bucket)
    assert [o.bucket for o in seen] == sorted([SRC, DST, DST2])
    for o in seen:
        assert o == observation(
            aws_eventbridge(o.bucket, key, user_marker, reason="DeleteObject", deletion="Delete Marker Created")
        )


# ---- what real S3 does that the demo now produces ----------------------------------------------------


def test_backlog_holds_events_until_its_end_with_s3s_times(aws):
    sqs = RecordingSqs()
    channel = emulator.EventChannel(sqs, "queue", rng=random.Random(1), backlog=(T0 + 5, T0 + 20))
    for at in (T0, T0 + 6, T0 + 8):
        channel.emit(json.dumps({"time": at}), at=at)
    channel.flush(T0 + 19.9)
    assert [json.loads(b)["time"] for b in sqs.bodies] == [T0]  # the two others are held
    channel.flush(T0 + 20.1)
    assert [json.loads(b)["time"] for b in sqs.bodies] == [T0, T0 + 6, T0 + 8]  # in order, times unchanged
    assert channel.counts["backlogged"] == 2


def test_sse_c_replicas_keep_the_customer_key_and_get_other_etags(replicator):
    key = "sse-c/secret.bin"
    version_id = replicator.put(SRC, key, b"x" * 40, sse_c=True, lose_replica_events=True)
    bodies = replicator.settle()
    assert [observation(b).bucket for b in bodies] == [SRC]  # both replica events lost
    source = emulator.object_version(SRC, key, version_id)
    for dest in (DST, DST2):
        replica = emulator.object_version(dest, key, version_id)
        assert replica.sse_c and replica.replication_status == "REPLICA" and replica.etag != source.etag
    assert {t.verdict for t in replicator.truth.values()} == {"COMPLETED"}


def test_direct_write_and_destination_lifecycle_marker_are_not_replication(replicator):
    direct = replicator.write_direct(DST, "app/own.json", b"{}")
    assert getattr(emulator.object_version(DST, "app/own.json", direct), "replication_status", None) is None
    [event] = [observation(b) for b in replicator.settle()]
    assert (event.bucket, event.version_id) == (DST, direct)
    assert replicator.truth[(direct, "app/own.json", DST)].verdict == "NOT_IN_SCOPE"

    version_id = replicator.put(SRC, "data/expiring.bin", b"abc")
    replicator.settle()
    marker = replicator.expire_in_destination(DST, "data/expiring.bin")
    [event] = [observation(b) for b in replicator.settle()]
    assert (event.bucket, event.version_id, event.reason) == (DST, marker, "Lifecycle Expiration")
    assert replicator.truth[(marker, "data/expiring.bin", DST)].verdict == "NONE"
    assert emulator.object_version(DST, "data/expiring.bin", version_id).replication_status == "REPLICA"


def test_two_way_delete_marker_echo_is_a_truth_of_its_own(replicator):
    from .conftest import BIDI_A, BIDI_B

    key = "bidi/both-ways.txt"
    replicator.put(BIDI_A, key, b"abc")
    replicator.settle()
    marker = replicator.delete(BIDI_A, key)
    replicator.run_due(T0 + 5)
    bodies = replicator.settle()
    assert sorted(observation(b).bucket for b in bodies) == [BIDI_A, BIDI_B]
    original, echo = replicator.truth[(marker, key, BIDI_B)], replicator.truth[(marker, key, BIDI_A)]
    assert (original.verdict, original.fault) == ("COMPLETED", "two-way-delete-marker")
    assert (echo.verdict, echo.fault, echo.source) == ("NOT_IN_SCOPE", "two-way-echo", BIDI_B)
    assert echo.landed_at >= original.created_at
