"""End-to-end scenarios: real handlers, template-provisioned resources on moto, archive lines and digests."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from crrmon import runtime
from crrmon.metrics import Counters
from crrmon_local import emulator

from .conftest import BIDI_A, BIDI_B, DST, DST2, GIVE_UP, REGIONS, RPO, RULES, SRC, TAGGED


def one(lines, **match):
    found = [line for line in lines if all(line.get(k) == v for k, v in match.items())]
    assert len(found) == 1, f"expected one line matching {match}, got {found}"
    return found[0]


def test_one_destination_happy_path_is_archived_field_by_field(world):
    key = "reports/2026/q3.csv"
    obj = world.replicated(key, after_s=4)

    lines = world.lines_for(key)
    assert len(lines) == 2
    line = one(lines, destination_bucket=DST)
    assert line["status"] == "COMPLETED" and line["verified_by"] == "etag" and line["reason"] is None
    assert line["source_bucket"] == SRC and line["source_region"] == "us-east-1"
    assert line["destination_region"] == "us-west-2"
    assert line["version_id"] == obj["version_id"] and line["size"] == obj["size"] == line["replica_size"]
    assert line["source_etag"] == line["replica_etag"] == obj["etag"]
    assert line["latency_ms"] == 4000 and line["missed_rpo"] is False
    assert line["source_time"].endswith("Z") and line["replica_time"] > line["source_time"]
    assert len(line["record_id"]) == 32 and line["detected_at"]
    assert world.digests() == []  # nothing worth an alert


def test_slow_destination_goes_overdue_alone_and_completes_late(world):
    key = "slow/object.bin"
    obj = world.put(SRC, key)
    world.send(world.created_event(SRC, key, obj))
    world.run()
    world.replicate(SRC, key, obj, DST, status="PENDING")  # DST2 still pending
    world.send(world.created_event(DST, key, obj))
    world.run()
    world.advance(RPO + 1)  # deadline: the sweeper HEADs, the source is still PENDING

    assert world.item(key, obj["version_id"], DST2)["status"] == "OVERDUE"
    assert world.item(key, obj["version_id"], DST)["status"] == "COMPLETED"
    digests = world.digests()
    assert len(digests) == 1
    assert digests[0]["status"] == "OVERDUE" and digests[0]["destination_bucket"] == DST2
    assert digests[0]["count"] == 1 and digests[0]["samples"] == [{"key": key, "version_id": obj["version_id"]}]

    world.clock.advance(30)
    world.replicate(SRC, key, obj, DST2)
    world.send(world.created_event(DST2, key, obj))
    world.run()
    lines = world.lines_for(key)
    assert one(lines, destination_bucket=DST)["missed_rpo"] is False
    late = one(lines, destination_bucket=DST2)
    assert late["status"] == "COMPLETED" and late["missed_rpo"] is True and late["latency_ms"] == (RPO + 31) * 1000


def test_replica_event_before_source_event(world):
    key = "order/replica-first"
    obj = world.put(SRC, key)
    world.replicate(SRC, key, obj, DST)
    world.replicate(SRC, key, obj, DST2)
    world.send(world.created_event(DST, key, obj), world.created_event(DST2, key, obj))
    world.run()
    assert world.lines_for(key) == []
    world.send(world.created_event(SRC, key, obj))
    world.run()
    assert {line["status"] for line in world.lines_for(key)} == {"COMPLETED"}
    assert len(world.lines_for(key)) == 2


def test_every_event_twice_gives_one_verdict_per_destination(world):
    key = "dup/twice"
    obj = world.put(SRC, key)
    source_event = world.created_event(SRC, key, obj)
    world.send(source_event, source_event)
    world.run()
    world.replicate(SRC, key, obj, DST)
    world.replicate(SRC, key, obj, DST2)
    replica_events = [world.created_event(DST, key, obj), world.created_event(DST2, key, obj)]
    world.send(*replica_events, *replica_events)
    world.run()
    world.send(source_event)  # and once more, late
    world.advance(RPO * 3)
    lines = world.lines_for(key)
    assert sorted(line["destination_bucket"] for line in lines) == [DST2, DST]
    assert len({line["record_id"] for line in lines}) == 2


def test_replica_never_arrives_overdue_then_failed(world):
    key = "never/arrives"
    obj = world.put(SRC, key)
    emulator.set_replication_status(SRC, key, obj["version_id"], "PENDING")
    world.send(world.created_event(SRC, key, obj))
    world.run()
    world.advance(RPO + 1)
    assert world.item(key, obj["version_id"], DST)["status"] == "OVERDUE"
    assert world.lines_for(key) == []  # OVERDUE is not final: no archive line yet
    world.schedule()
    for _ in range(GIVE_UP // RPO + 2):
        world.advance(RPO)
    lines = world.lines_for(key)
    assert {line["status"] for line in lines} == {"FAILED"}
    assert all(line["missed_rpo"] and line["reason"].startswith("gave up after 600s") for line in lines)
    statuses = sorted((d["status"], d["destination_bucket"]) for d in world.digests())
    assert statuses == sorted([("FAILED", DST), ("FAILED", DST2), ("OVERDUE", DST), ("OVERDUE", DST2)])


def test_watching_goes_on_until_the_give_up_age_and_stops_there(world):
    key = "never/boundary"
    obj = world.put(SRC, key)
    emulator.set_replication_status(SRC, key, obj["version_id"], "PENDING")
    world.send(world.created_event(SRC, key, obj))
    world.run()
    first_seen_s = world.item(key, obj["version_id"], DST)["first_seen"] / 1000
    while world.clock() < first_seen_s + GIVE_UP - 2:  # every re-check until just before the give-up age
        world.advance(min(RPO, first_seen_s + GIVE_UP - 2 - world.clock()))
    assert world.item(key, obj["version_id"], DST)["status"] == "OVERDUE"
    world.advance(3)  # past the give-up age: the re-check armed for it comes
    assert world.item(key, obj["version_id"], DST)["status"] == "FAILED"


def test_s3_failure_event_fails_with_its_reason(world):
    key = "fail/denied"
    obj = world.put(SRC, key)
    world.send(world.created_event(SRC, key, obj))
    world.send(world.failure_notification(SRC, key, obj, DST, rule_id="to-west"))
    world.run()
    line = one(world.lines_for(key), destination_bucket=DST)
    assert line["status"] == "FAILED" and line["reason"] == "DstPutObjectNotPermitted"
    assert line["replica_size"] is None and line["latency_ms"] is None
    digest = one(world.digests(), status="FAILED")
    assert digest["reason"] == "DstPutObjectNotPermitted" and digest["destination_bucket"] == DST


def test_head_reports_failed(world):
    key = "fail/by-status"
    obj = world.put(SRC, key)
    emulator.set_replication_status(SRC, key, obj["version_id"], "FAILED")
    world.send(world.created_event(SRC, key, obj))
    world.run()
    world.advance(RPO + 1)
    lines = world.lines_for(key)
    assert {(line["status"], line["reason"]) for line in lines} == {("FAILED", "replication status FAILED")}


def test_lost_replica_event_with_replica_present_completes_without_latency(world):
    key = "lost/replica-event"
    obj = world.put(SRC, key)
    world.send(world.created_event(SRC, key, obj))
    world.run()
    world.replicate(SRC, key, obj, DST)
    world.replicate(SRC, key, obj, DST2)  # no events for either replica
    world.advance(RPO + 1)
    for line in world.lines_for(key):
        assert line["status"] == "COMPLETED" and line["latency_ms"] is None and line["replica_time"] is None
        assert line["verified_by"] == "etag" and line["replica_etag"] == obj["etag"]


def test_sse_kms_replicas_with_other_etags_are_not_mismatches(world):
    key = "kms/secret.bin"
    obj = world.put(SRC, key, ServerSideEncryption="aws:kms")
    world.send(world.created_event(SRC, key, obj))
    world.run()
    for dest in (DST, DST2):
        replica = world.replicate(SRC, key, obj, dest, encryption="aws:kms", etag="0" * 32)
        world.send(world.created_event(dest, key, replica))
    world.run()  # ETags differ and the events do not say why: the sweeper HEADs both sides now
    lines = world.lines_for(key)
    # VerifyMode etag: plain HEADs (checksum mode would need kms:Decrypt on the customer's key, which the
    # monitor does not have: the emulator refuses them as S3 does), so the sizes decide.
    assert {(line["status"], line["verified_by"]) for line in lines} == {("COMPLETED", "size")}
    assert all(line["replica_etag"] == "0" * 32 != line["source_etag"] for line in lines)


def test_multipart_objects_compare_multipart_etags(world):
    key = "big/multipart.bin"
    s3 = world.s3
    upload = s3.create_multipart_upload(Bucket=SRC, Key=key)
    parts = []
    for number in (1, 2):
        answer = s3.upload_part(
            Bucket=SRC, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=b"x" * (5 * 1024 * 1024)
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    done = s3.complete_multipart_upload(
        Bucket=SRC, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    obj = {"version_id": done["VersionId"], "etag": done["ETag"].strip('"'), "size": 10 * 1024 * 1024}
    assert obj["etag"].endswith("-2")
    world.send(world.created_event(SRC, key, obj, reason="CompleteMultipartUpload"))
    for dest in (DST, DST2):
        replica = world.replicate(SRC, key, obj, dest, etag=obj["etag"])
        world.send(world.created_event(dest, key, replica, reason="CompleteMultipartUpload"))
    world.run()
    assert {(line["status"], line["verified_by"]) for line in world.lines_for(key)} == {("COMPLETED", "etag")}


def test_size_difference_is_a_mismatch(world):
    key = "corrupt/replica"
    obj = world.put(SRC, key, body=b"0123456789")
    world.send(world.created_event(SRC, key, obj))
    replica = world.replicate(SRC, key, obj, DST, body=b"01234")
    world.send(world.created_event(DST, key, replica))
    world.run()
    line = one(world.lines_for(key), destination_bucket=DST)
    assert line["status"] == "MISMATCH" and line["reason"] == "size differs: source 10 bytes, replica 5 bytes"
    assert one(world.digests(), status="MISMATCH")["destination_bucket"] == DST


def test_source_deleted_before_replication(world):
    key = "gone/early"
    obj = world.put(SRC, key)
    world.send(world.created_event(SRC, key, obj))
    world.run()
    world.s3.delete_object(Bucket=SRC, Key=key, VersionId=obj["version_id"])
    world.advance(RPO + 1)
    assert {line["status"] for line in world.lines_for(key)} == {"SOURCE_DELETED"}


def test_lifecycle_delete_marker_expects_nothing(world):
    key = "expire/me"
    body = emulator.eventbridge_object_event(
        bucket=SRC,
        key=key,
        version_id="LifecycleMarker0000000000000001",
        time_s=world.clock(),
        region="us-east-1",
        reason="Lifecycle Expiration",
        deletion_type="Delete Marker Created",
    )
    world.send(body)
    world.advance(RPO * 2)
    assert world.lines_for(key) == []
    assert world.item(key, "LifecycleMarker0000000000000001", DST) is None


def test_user_delete_marker_is_expected_and_replicated(world, monkeypatch):
    # moto answers GetBucketReplication with DeleteMarkerReplication "Disabled" whatever was stored, so
    # the rules come from the SSM topology override here (the path cross-account set-ups use).
    topology = {"sources": {SRC: {"region": "us-east-1", "rules": RULES[SRC]}}, "regions": REGIONS}
    world.session.client("ssm").put_parameter(Name="/crrmon/topology", Type="String", Value=json.dumps(topology))
    monkeypatch.setenv("TOPOLOGY_PARAMETER_NAME", "/crrmon/topology")
    runtime.reset()
    key = "delete/me"
    obj = world.put(SRC, key)
    world.replicate(SRC, key, obj, DST)
    world.replicate(SRC, key, obj, DST2)
    marker = world.s3.delete_object(Bucket=SRC, Key=key)["VersionId"]
    event = dict(
        key=key, version_id=marker, reason="DeleteObject", deletion_type="Delete Marker Created", region="us-east-1"
    )
    world.send(emulator.eventbridge_object_event(bucket=SRC, time_s=world.clock(), **event))
    for dest in (DST, DST2):
        emulator.replicate_delete_marker(world.s3, dest, key, marker)
    world.send(emulator.eventbridge_object_event(bucket=DST, time_s=world.clock(), **{**event, "region": "us-west-2"}))
    world.run()
    assert one(world.lines_for(key), destination_bucket=DST)["verified_by"] == "delete-marker"
    world.advance(RPO + 1)  # DST2's replica event was lost: HEAD finds its delete marker
    assert one(world.lines_for(key), destination_bucket=DST2)["status"] == "COMPLETED"


def test_tag_filtered_rule_object_out_of_scope(world):
    key = "untagged/file"
    obj = world.put(TAGGED, key)  # no tag, so S3 gives it no replication status
    world.send(world.created_event(TAGGED, key, obj))
    world.advance(RPO + 1)
    line = one(world.lines_for(key), destination_bucket=DST)
    assert line["status"] == "NOT_IN_SCOPE" and "no replication status" in line["reason"]


def test_bidirectional_pair_takes_roles_from_replication_status(world):
    key = "both/ways"
    a = world.put(BIDI_A, key)
    emulator.set_replication_status(BIDI_A, key, a["version_id"], "PENDING")
    world.send(world.created_event(BIDI_A, key, a))
    world.replicate(BIDI_A, key, a, BIDI_B)
    world.send(world.created_event(BIDI_B, key, a))
    b_key = "other/way"
    b = world.put(BIDI_B, b_key)
    emulator.set_replication_status(BIDI_B, b_key, b["version_id"], "PENDING")
    world.send(world.created_event(BIDI_B, b_key, b))
    world.replicate(BIDI_B, b_key, b, BIDI_A)
    world.send(world.created_event(BIDI_A, b_key, b))
    world.run()
    a_line = one(world.lines_for(key))
    assert (a_line["source_bucket"], a_line["destination_bucket"], a_line["status"]) == (BIDI_A, BIDI_B, "COMPLETED")
    b_line = one(world.lines_for(b_key))
    assert (b_line["source_bucket"], b_line["destination_bucket"], b_line["status"]) == (BIDI_B, BIDI_A, "COMPLETED")


@pytest.mark.parametrize("key", ["with space.txt", "plus+sign", "100%/done", "ünïcødé/日本語 ключ+%2F"])
def test_keys_survive_every_event_format(world, key):
    obj = world.put(SRC, key)
    record = emulator.s3_notification(
        event_name="ObjectCreated:Put",
        bucket=SRC,
        key=key,
        version_id=obj["version_id"],
        time_s=world.clock(),
        region="us-east-1",
        size=obj["size"],
        etag=obj["etag"],
    )
    world.send(emulator.in_sns([record], topic_arn="arn:aws:sns:us-east-1:123456789012:s3-events"))
    replica = world.replicate(SRC, key, obj, DST)
    world.send(world.created_event(DST, key, replica))
    now_iso = datetime.fromtimestamp(world.clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cloudtrail = {
        "version": "0",
        "id": "ct-1",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.s3",
        "account": "123456789012",
        "time": now_iso,
        "region": "eu-west-1",
        "resources": [],
        "detail": {
            "eventSource": "s3.amazonaws.com",
            "eventName": "PutObject",
            "eventTime": now_iso,
            "awsRegion": "eu-west-1",
            "requestParameters": {"bucketName": DST2, "key": key},
            "responseElements": {"x-amz-version-id": obj["version_id"]},
            "additionalEventData": {"bytesTransferredIn": obj["size"]},
        },
    }
    world.replicate(SRC, key, obj, DST2)
    world.send(json.dumps(cloudtrail))
    world.run()
    lines = world.lines_for(key)
    assert sorted(line["destination_bucket"] for line in lines) == [DST2, DST]
    assert all(line["status"] == "COMPLETED" for line in lines)


def test_test_event_malformed_bodies_and_unknown_buckets(world, capsys):
    key = "valid/in-bad-company"
    obj = world.put(SRC, key)
    unknown = emulator.eventbridge_object_event(
        bucket="not-watched", key="x", version_id="v" * 32, time_s=world.clock(), region="us-east-1", size=1, etag="e"
    )
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": SRC, "Time": "x"})
    world.send("{not json", test_event, unknown, world.created_event(SRC, key, obj), '{"Records": "nope"}')
    world.run()
    assert world.item(key, obj["version_id"], DST) is not None  # the valid record was processed

    parked = world.queue_bodies(world.stack.events_dlq_url)
    reasons = sorted(m["MessageAttributes"]["RejectedReason"]["StringValue"] for m in parked)
    assert len(parked) == 3 and "unknown-bucket" in reasons and "malformed-json" in reasons
    assert {m["Body"] for m in parked} >= {"{not json", unknown}  # the original bodies, replayable

    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    totals = [doc for doc in emf if doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]]
    assert sum(sum(doc.get("EventsRejected", [])) for doc in totals) == 3
    by_reason = [doc for doc in emf if doc.get("Reason") == "unknown-bucket" and "EventsRejected" in doc]
    assert sum(doc["EventsRejected"][0] for doc in by_reason) == 1


def test_throttling_on_one_record_fails_only_that_record(world):
    keys = [f"throttle/{i}" for i in range(4)]
    objs = [world.put(SRC, k) for k in keys]
    throttled_key = keys[2]

    def throttle(params, **_):
        if params.get("Key", {}).get("pk", {}).get("S", "").endswith(throttled_key):
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
            raise ClientError(error, "UpdateItem")

    ddb = runtime.client("dynamodb")
    ddb.meta.events.register("provide-client-params.dynamodb.UpdateItem", throttle)
    records = [
        {
            "messageId": f"m{i}",
            "body": world.created_event(SRC, k, o),
            "attributes": {"ApproximateReceiveCount": "1"},
        }
        for i, (k, o) in enumerate(zip(keys, objs, strict=True))
    ]
    response = runtime.ingest(Counters()).handle_batch(records)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert world.item(keys[0], objs[0]["version_id"], DST) is not None
    assert world.item(keys[2], objs[2]["version_id"], DST) is None
    ddb.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", throttle)
    # the retry (same message, received again) records it and starts its timer
    records[2]["attributes"]["ApproximateReceiveCount"] = "2"
    assert runtime.ingest(Counters()).handle_batch([records[2]]) == {"batchItemFailures": []}
    assert world.item(keys[2], objs[2]["version_id"], DST) is not None


def test_crash_between_verdict_and_publish_still_reaches_the_archive(world):
    key = "crash/before-publish"
    obj = world.put(SRC, key)
    world.send(world.created_event(SRC, key, obj))
    world.run()
    calls = {"n": 0}

    def fail_once(**_):
        # A refusal the publisher does not wait out (a throttled call it would send again itself).
        calls["n"] += 1
        if calls["n"] == 1:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "x"}}, "PutRecordBatch")

    firehose = runtime.client("firehose")
    firehose.meta.events.register("before-call.firehose.PutRecordBatch", fail_once)
    world.replicate(SRC, key, obj, DST)
    world.send(world.created_event(DST, key, obj))
    world.run()
    firehose.meta.events.unregister("before-call.firehose.PutRecordBatch", fail_once)
    assert calls["n"] >= 2  # the first publish failed, the stream delivered the batch again
    line = one(world.lines_for(key), destination_bucket=DST)
    assert line["status"] == "COMPLETED"


def test_scheduled_run_reports_oldest_overdue_age_per_pair(world, capsys):
    key = "late/gauge"
    obj = world.put(SRC, key)
    emulator.set_replication_status(SRC, key, obj["version_id"], "PENDING")
    world.send(world.created_event(SRC, key, obj))
    world.run()
    world.advance(RPO + 30)
    capsys.readouterr()
    [result] = world.schedule()
    assert result["oldest_overdue_age"][f"{SRC}>{DST}"] >= RPO + 30
    assert result["oldest_overdue_age"][f"{BIDI_A}>{BIDI_B}"] == 0
    [again] = world.schedule()  # the lease is held: a second run in the same minute does nothing
    assert again == {"skipped": "another run holds the lease"}


def test_on_time_matching_replica_is_decided_in_its_own_write(world):
    key = "fast/path"
    obj = world.put(SRC, key)
    world.send(world.created_event(SRC, key, obj))
    world.run()
    world.clock.advance(2)
    world.replicate(SRC, key, obj, DST)
    record = {"messageId": "r1", "body": world.created_event(DST, key, obj), "attributes": {}}
    assert runtime.ingest(Counters()).handle_batch([record]) == {"batchItemFailures": []}
    item = world.item(key, obj["version_id"], DST)  # the matcher has not run: ingest wrote the verdict
    assert (item["status"], item["verified_by"], item["latency_ms"], item["missed_rpo"]) == (
        "COMPLETED",
        "etag",
        2000,
        False,
    )
    world.run()
    line = one(world.lines_for(key), destination_bucket=DST)
    assert (line["status"], line["latency_ms"], line["replica_etag"]) == ("COMPLETED", 2000, obj["etag"])
