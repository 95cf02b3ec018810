"""S3 behaviours of docs/s3-semantics.md proved end to end: the monitor provisioned from template.yaml on
the emulator, driven through its events queue, judged from its archive and its table."""

from __future__ import annotations

import json
import os

from crrmon_local import emulator

from .conftest import ACCOUNT, BIDI_A, BIDI_B, DST, DST2, REGIONS, RPO, SRC
from .test_real_s3 import metric_total


def items_for(world, key: str) -> list[dict]:
    """Every item of the table about `key`, whatever its version."""
    answer = world.ddb.scan(TableName=os.environ["TABLE_NAME"])
    return [i for i in answer["Items"] if i["pk"]["S"].partition("#")[2] == key]


def service_total(printed: str, name: str) -> float:
    """The sum of one metric over the service-wide EMF documents in `printed`."""
    total = 0.0
    for line in printed.splitlines():
        if line.startswith('{"_aws"'):
            document = json.loads(line)
            if document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]] and name in document:
                value = document[name]
                total += sum(value) if isinstance(value, list) else value
    return total


def notification(world, bucket: str, key: str, version_id: str, event_name: str, **extra) -> str:
    record = emulator.s3_notification(
        event_name=event_name,
        bucket=bucket,
        key=key,
        version_id=version_id,
        time_s=world.clock(),
        region=REGIONS[bucket],
        **extra,
    )
    return emulator.in_sns([record], topic_arn=f"arn:aws:sns:{REGIONS[bucket]}:{ACCOUNT}:s3-events")


# ---- what S3 never replicates -------------------------------------------------------------------------


def test_version_delete_expects_no_replication(world):
    key = "deletes/one-version.txt"
    obj = world.put(SRC, key)
    world.s3.delete_object(Bucket=SRC, Key=key, VersionId=obj["version_id"])
    deleted = world.created_event(SRC, key, obj, reason="DeleteObject", deletion_type="Permanently Deleted")
    world.send(deleted, notification(world, SRC, key, obj["version_id"], "ObjectRemoved:Delete"))
    world.advance(RPO * 3)
    assert items_for(world, key) == [] and world.lines_for(key) == []


def test_unversioned_null_version_is_not_tracked(world, capsys):
    key = "unversioned/object.txt"
    capsys.readouterr()
    world.send(notification(world, SRC, key, "null", "ObjectCreated:Put", size=3, etag="abc"))
    world.advance(RPO * 3)
    assert items_for(world, key) == [] and world.lines_for(key) == []
    assert metric_total(capsys, "UnversionedObjects") == 1  # counted, so an unversioned source shows
    assert world.queue_bodies(world.stack.events_dlq_url) == []  # ignored, not rejected


def test_event_older_than_the_records_kept_is_not_judged(world):
    key = "stale/written-before-the-monitor.bin"
    obj = world.put(SRC, key)
    body = emulator.eventbridge_object_event(
        bucket=SRC,
        key=key,
        version_id=obj["version_id"],
        size=obj["size"],
        etag=obj["etag"],
        time_s=world.clock() - 25 * 3600,  # older than RecordRetentionHours (24 by default)
        region=REGIONS[SRC],
        account=ACCOUNT,
    )
    world.send(body)
    world.advance(RPO * 3)
    assert items_for(world, key) == [] and world.lines_for(key) == []


def test_batch_replication_of_an_existing_object_is_judged_from_its_replica(world):
    key = "existing/before-the-rule.csv"
    obj = world.put(SRC, key)  # written before the rule existed: S3 sent no event the monitor could use
    world.clock.advance(30 * 24 * 3600)
    for dest in (DST, DST2):  # a Batch Replication job copies it now
        world.replicate(SRC, key, obj, dest)
    world.send(world.created_event(DST, key, obj), world.created_event(DST2, key, obj))
    world.advance(RPO + 1)  # no source event: the sweeper finds the source version with a HEAD

    lines = world.lines_for(key)
    assert {(line["destination_bucket"], line["status"], line["verified_by"]) for line in lines} == {
        (DST, "COMPLETED", "etag"),
        (DST2, "COMPLETED", "etag"),
    }
    assert all(line["latency_ms"] is None and line["missed_rpo"] is False for line in lines)


# ---- replication events that carry no verdict ------------------------------------------------------


def test_rtc_threshold_and_not_tracked_events_are_counted_without_a_verdict(world, capsys):
    key = "rtc/slow.bin"
    obj = world.put(SRC, key)
    world.send(world.created_event(SRC, key, obj))
    world.run()
    capsys.readouterr()
    data = {"replicationRuleId": "to-west", "destinationBucket": f"arn:aws:s3:::{DST}", "s3Operation": "OBJECT_PUT"}
    for name in ("OperationMissedThreshold", "OperationReplicatedAfterThreshold", "OperationNotTracked"):
        world.send(notification(world, SRC, key, obj["version_id"], f"Replication:{name}", replication=data))
    world.run()
    printed = capsys.readouterr().out
    for name in ("ReplicationMissedThreshold", "ReplicationReplicatedAfterThreshold", "ReplicationNotTracked"):
        assert service_total(printed, name) == 1, name
    item = world.item(key, obj["version_id"], DST)
    assert "status" not in item and "fail" not in item  # still waiting for its replica

    for dest in (DST, DST2):
        world.replicate(SRC, key, obj, dest)
        world.send(world.created_event(dest, key, obj))
    world.run()
    assert {line["status"] for line in world.lines_for(key)} == {"COMPLETED"}


# ---- keys and versions ----------------------------------------------------------------------------------


def test_zero_byte_folder_key_is_judged_like_any_object(world):
    key = "photos/2026/"  # what the console's "Create folder" writes: a zero-byte object
    obj = world.put(SRC, key, body=b"")
    world.send(world.created_event(SRC, key, obj))
    world.run()
    for dest in (DST, DST2):
        world.replicate(SRC, key, obj, dest)
        world.send(world.created_event(dest, key, obj))
    world.run()
    lines = world.lines_for(key)
    assert {(line["status"], line["verified_by"], line["size"]) for line in lines} == {("COMPLETED", "etag", 0)}
    assert len(lines) == 2


def test_key_of_1024_bytes_is_judged_in_both_event_forms(world):
    key = "k/" + "é" * 511  # 1,024 UTF-8 bytes, S3's longest key
    assert len(key.encode()) == 1024
    obj = world.put(SRC, key)
    source = notification(world, SRC, key, obj["version_id"], "ObjectCreated:Put", size=obj["size"], etag=obj["etag"])
    world.send(source)
    world.run()
    for dest in (DST, DST2):
        world.replicate(SRC, key, obj, dest)
        world.send(world.created_event(dest, key, obj))
    world.run()
    assert sorted((line["destination_bucket"], line["status"]) for line in world.lines_for(key)) == [
        (DST2, "COMPLETED"),
        (DST, "COMPLETED"),
    ]


def test_rapid_overwrites_are_judged_version_by_version(world):
    key = "hot/overwritten.json"
    versions = [world.put(SRC, key, body=f"revision {n}".encode()) for n in range(3)]
    world.send(*[world.created_event(SRC, key, v) for v in versions])
    world.run()
    world.clock.advance(2)
    for obj in versions:  # each version replicates with its own version ID
        for dest in (DST, DST2):
            world.replicate(SRC, key, obj, dest)
    world.send(*[world.created_event(d, key, v) for v in reversed(versions) for d in (DST, DST2)])
    world.run()
    lines = world.lines_for(key)
    assert sorted((line["version_id"], line["destination_bucket"]) for line in lines) == sorted(
        (v["version_id"], d) for v in versions for d in (DST, DST2)
    )
    assert {(line["status"], line["verified_by"], line["latency_ms"]) for line in lines} == {
        ("COMPLETED", "etag", 2000)
    }


# ---- HEAD answers ---------------------------------------------------------------------------------------


def test_deleted_source_without_list_permission_is_not_taken_for_deleted(world):
    key = "gone/without-list.bin"
    obj = world.put(SRC, key)
    world.send(world.created_event(SRC, key, obj))
    world.run()
    world.s3.delete_object(Bucket=SRC, Key=key, VersionId=obj["version_id"])
    emulator.LISTABLE[SRC].discard(ACCOUNT)  # no s3:ListBucket: S3 answers 403, never 404
    world.advance(RPO + 1)
    for dest in (DST, DST2):
        assert world.item(key, obj["version_id"], dest)["status"] == "OVERDUE"
    assert world.lines_for(key) == []


# ---- two-way replication with replica modification sync ------------------------------------------------


def test_replica_showing_pending_under_modification_sync_is_not_a_new_source(world):
    key = "sync/tagged-replica.txt"
    a = world.put(BIDI_A, key)
    emulator.set_replication_status(BIDI_A, key, a["version_id"], "PENDING")
    world.send(world.created_event(BIDI_A, key, a))
    world.run()
    world.clock.advance(2)
    world.replicate(BIDI_A, key, a, BIDI_B)
    replica_event = world.created_event(BIDI_B, key, a)
    # Someone tags the replica; replica modification sync replicates the change back to A, and until it
    # has, S3 reports the replica's status as PENDING instead of REPLICA. Its creation event arrives now.
    emulator.set_replication_status(BIDI_B, key, a["version_id"], "PENDING")
    world.send(replica_event)
    world.advance(RPO + 1)

    completed = [line for line in world.lines_for(key) if line["status"] == "COMPLETED"]
    assert [(line["source_bucket"], line["destination_bucket"]) for line in completed] == [(BIDI_A, BIDI_B)]


def test_two_way_object_written_in_b_is_judged_b_to_a_only(world):
    key = "sync/written-in-b.txt"
    b = world.put(BIDI_B, key)
    emulator.set_replication_status(BIDI_B, key, b["version_id"], "PENDING")
    world.send(world.created_event(BIDI_B, key, b))
    world.run()
    world.clock.advance(3)
    world.replicate(BIDI_B, key, b, BIDI_A)
    world.send(world.created_event(BIDI_A, key, b))
    world.advance(RPO + 1)
    (line,) = world.lines_for(key)
    assert (line["source_bucket"], line["destination_bucket"], line["status"], line["latency_ms"]) == (
        BIDI_B,
        BIDI_A,
        "COMPLETED",
        3000,
    )


def test_s3_throttling_at_the_deadline_puts_the_check_off_without_a_verdict(world, capsys):
    from botocore.exceptions import ClientError

    from crrmon import runtime

    key = "throttled/at-deadline.bin"
    obj = world.put(SRC, key)
    world.send(world.created_event(SRC, key, obj))
    world.run()
    for dest in (DST, DST2):  # replicated, both replica events lost: only HEADs can tell
        world.replicate(SRC, key, obj, dest)

    def slow_down(params, **_):
        error = {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}
        raise ClientError({**error, "ResponseMetadata": {"HTTPStatusCode": 503}}, "HeadObject")

    s3 = runtime.client("s3")
    s3.meta.events.register("provide-client-params.s3.HeadObject", slow_down)
    try:
        capsys.readouterr()
        world.advance(RPO + 1)
        printed = capsys.readouterr().out
    finally:
        s3.meta.events.unregister("provide-client-params.s3.HeadObject", slow_down)
    for dest in (DST, DST2):
        assert world.item(key, obj["version_id"], dest)["status"] == "OVERDUE"
    assert world.lines_for(key) == []  # no verdict from an unanswered HEAD
    assert service_total(printed, "HeadsPutOff") >= 1
    assert world.queue_bodies(world.stack.timer_dlq_url) == []  # the timer was re-armed, not failed


def test_replica_under_modification_sync_whose_source_was_deleted_is_still_a_replica(world):
    key = "sync/source-deleted.txt"
    obj = world.put(SRC, key)  # the source's event is lost
    world.replicate(SRC, key, obj, DST)
    # The replica's tags were changed and replica modification sync copied the change back to the source:
    # S3 now reports the replica's status as COMPLETED, no longer REPLICA. Then the source version is deleted.
    emulator.set_replication_status(DST, key, obj["version_id"], "COMPLETED")
    world.s3.delete_object(Bucket=SRC, Key=key, VersionId=obj["version_id"])
    world.send(world.created_event(DST, key, obj))
    world.advance(RPO + 1)
    (line,) = world.lines_for(key)
    assert line["status"] == "COMPLETED"
