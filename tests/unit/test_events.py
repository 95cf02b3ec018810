"""crrmon.events.parse_body: every accepted form, every rejection, and properties over arbitrary input."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crrmon.events import INTERNAL_ERROR, REJECT_REASONS, parse_body
from crrmon.model import (
    Ignored,
    ObjectChange,
    ObjectEvent,
    Rejected,
    ReplicationEvent,
    ReplicationOutcome,
    SubscriptionRequest,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"
SOURCE = "crr-demo-source-use1"
DEST = "crr-demo-dest-usw2"
ACCOUNT = "111122223333"
MODEL_TYPES = (ObjectEvent, ReplicationEvent, Ignored, Rejected)


def load(name: str) -> str:
    return (EVENTS / name).read_text(encoding="utf-8")


def sample(name: str) -> dict[str, Any]:
    return json.loads(load(name))


def one(body: str | dict[str, Any]) -> Any:
    result = parse_body(body if isinstance(body, str) else json.dumps(body))
    assert len(result) == 1, result
    return result[0]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def changed(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of document with the dotted path set to value (or removed when value is DELETE)."""
    result = copy.deepcopy(document)
    *parents, last = path.split(".")
    node = result
    for name in parents:
        node = node[int(name)] if isinstance(node, list) else node[name]
    index = int(last) if isinstance(node, list) else last
    if value is DELETE:
        del node[index]
    else:
        node[index] = value
    return result


DELETE = object()


def eventbridge(key: str = "a.txt", **object_fields: Any) -> dict[str, Any]:
    doc = changed(sample("eventbridge-object-created.json"), "detail.object.key", key)
    doc["detail"]["object"].update(object_fields)
    return doc


def record(encoded_key: str = "a.txt", event_name: str = "ObjectCreated:Put") -> dict[str, Any]:
    rec = copy.deepcopy(sample("s3-notification-put.json")["Records"][0])
    rec["s3"]["object"]["key"] = encoded_key
    rec["eventName"] = event_name
    return rec


def notification(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def replication_record(
    encoded_key: str = "a.txt", outcome: str = "OperationFailedReplication", **data: Any
) -> dict[str, Any]:
    inner = json.loads(sample("replication-failed.json")["Message"])
    rec = inner["Records"][0]
    rec["s3"]["object"]["key"] = encoded_key
    rec["eventName"] = f"Replication:{outcome}"
    rec["replicationEventData"].update(data)
    return rec


def sns(document: Any) -> dict[str, Any]:
    message = document if isinstance(document, str) else json.dumps(document)
    return changed(sample("s3-notification-in-sns.json"), "Message", message)


def cloudtrail(name: str = "PutObject", key: str = "a.txt", **detail: Any) -> dict[str, Any]:
    doc = changed(sample("cloudtrail-put-object.json"), "detail.eventName", name)
    doc["detail"]["requestParameters"]["key"] = key
    doc["detail"].update(detail)
    return doc


def aws_encode(key: str) -> str:
    """S3 notifications: %XX escapes, '+' for space, '/' kept."""
    return quote_plus(key, safe="/")


def moto_encode(key: str) -> str:
    """moto's notifications: the same, with '/' as %2F."""
    return quote_plus(key)


def assert_well_formed(result: Any) -> None:
    assert isinstance(result, list) and result
    for item in result:
        assert isinstance(item, MODEL_TYPES)
        if isinstance(item, Rejected):
            assert item.reason in REJECT_REASONS
            assert item.reason != INTERNAL_ERROR, item
        if isinstance(item, ObjectEvent | ReplicationEvent):
            assert item.event_time.tzinfo is UTC
            assert item.key and len(item.key.encode("utf-8")) <= 1024


# ---------------------------------------------------------------------------------------------------
# The sample events


def test_eventbridge_object_created_sample():
    assert one(load("eventbridge-object-created.json")) == ObjectEvent(
        bucket=SOURCE,
        key="invoices/2025/11/INV-000123.pdf",
        version_id="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        change=ObjectChange.CREATED,
        event_time=utc(2025, 11, 20, 14, 3, 27),
        size=184329,
        etag="9b2cf535f27731c974343645a3985328",
        sequencer="00691F1F1F5B8A3C2D",
        reason="PutObject",
        region="us-east-1",
        account=ACCOUNT,
        encryption=None,
        origin="eventbridge",
    )


def test_eventbridge_object_deleted_sample_is_a_delete_marker():
    assert one(load("eventbridge-object-deleted.json")) == ObjectEvent(
        bucket=SOURCE,
        key="invoices/2025/11/INV-000123.pdf",
        version_id="Gq7Zk2xWv.RcN0tBy5HmLs8dPaE4uJ1f",
        change=ObjectChange.DELETE_MARKER,
        event_time=utc(2025, 11, 20, 15, 10, 2),
        size=None,
        etag="d41d8cd98f00b204e9800998ecf8427e",
        sequencer="00691F2EBA7C31D4F0",
        reason="DeleteObject",
        region="us-east-1",
        account=ACCOUNT,
        origin="eventbridge",
    )


def test_eventbridge_lifecycle_expiration_sample():
    assert one(load("eventbridge-lifecycle-expiration.json")) == ObjectEvent(
        bucket=SOURCE,
        key="logs/2024/01/app-2024-01-15.log.gz",
        version_id="w9Ye1Tn.Qb6LxKc0Vr3ZsHp8DfMa2UjG",
        change=ObjectChange.DELETE_MARKER,
        event_time=utc(2025, 11, 21),
        etag="d41d8cd98f00b204e9800998ecf8427e",
        sequencer="00691FAB8000000000",
        reason="Lifecycle Expiration",
        region="us-east-1",
        account=ACCOUNT,
        origin="eventbridge",
    )


def test_s3_notification_put_sample_decodes_the_key():
    assert one(load("s3-notification-put.json")) == ObjectEvent(
        bucket=SOURCE,
        key="photos/2025/Zürich trip+1 (100%).jpg",
        version_id="hT5bN8qR.x2LmW0cY7vKz4JdFg1sPeA3",
        change=ObjectChange.CREATED,
        event_time=utc(2025, 11, 20, 14, 5, 12, 345000),
        size=2097152,
        etag="5d41402abc4b2a76b9719d911017c592",
        sequencer="00691F1F8C2A6E4B17",
        reason="PutObject",
        region="us-east-1",
        account=None,
        origin="s3-notification",
    )


def test_s3_notification_in_sns_sample():
    event = one(load("s3-notification-in-sns.json"))
    assert event == ObjectEvent(
        bucket=SOURCE,
        key="backups/db/2025-11-20/dump.tar.gz",
        version_id="Lq2Wd8Rn.kT5yHb0Mv3XcZs7PjFe1GaU",
        change=ObjectChange.CREATED,
        event_time=utc(2025, 11, 20, 14, 12, 45, 918000),
        size=20971520,
        etag="d8e8fca2dc0f896fd7cb4cb0031ba249-3",
        sequencer="00691F21D5E3A90C44",
        reason="CompleteMultipartUpload",
        region="us-east-1",
        origin="s3-notification",
        topic_arn="arn:aws:sns:us-east-1:111122223333:crr-monitor-s3-notifications",
    )


def test_s3_test_event_sample_is_ignored():
    assert parse_body(load("s3-test-event.json")) == [Ignored("s3-test-event")]


def test_replication_failed_sample():
    assert one(load("replication-failed.json")) == ReplicationEvent(
        bucket=SOURCE,
        key="invoices/2025/11/INV-000124.pdf",
        version_id="Zp4Kq9.VtR2mXn7cLw0BsHy5JdGf8EaT",
        outcome=ReplicationOutcome.FAILED,
        event_time=utc(2025, 11, 20, 14, 9, 32, 527000),
        destination_bucket=DEST,
        failure_reason="DstPutObjectNotPermitted",
        rule_id="crr-demo-use1-to-usw2",
        region="us-east-1",
        account=None,
        size=201554,
        etag="6f8db599de986fab7a21625b7916589c",
        origin="s3-notification",
        topic_arn="arn:aws:sns:us-east-1:111122223333:crr-monitor-s3-notifications",
    )


def test_replication_missed_threshold_sample():
    assert one(load("replication-missed-threshold.json")) == ReplicationEvent(
        bucket=SOURCE,
        key="media/raw/2025-11-20/camera-07.mov",
        version_id="c6Jr1Nq.Xw8TkPz3Lb0VmYs5HdGf2EaQ",
        outcome=ReplicationOutcome.MISSED_THRESHOLD,
        event_time=utc(2025, 11, 20, 14, 34, 10, 204000),
        destination_bucket=DEST,
        failure_reason=None,
        rule_id="crr-demo-use1-to-usw2",
        region="us-east-1",
        size=7516192768,
        etag="a3f5c8e1b2d4f6a8c0e2b4d6f8a0c2e4-896",
    )


def test_cloudtrail_put_object_sample():
    assert one(load("cloudtrail-put-object.json")) == ObjectEvent(
        bucket=SOURCE,
        key="exports/daily report+summary (v2).csv",
        version_id="rY7uB2Nq.dK5xWm0Pc8LzTs3HvGf1JaE",
        change=ObjectChange.CREATED,
        event_time=utc(2025, 11, 20, 14, 20, 5),
        size=48213,
        etag=None,
        sequencer=None,
        reason="PutObject",
        region="us-east-1",
        account=ACCOUNT,
        encryption="AES256",
        origin="cloudtrail",
    )


def test_ingest_sqs_batch_sample_is_a_lambda_sqs_event_of_parseable_bodies():
    batch = sample("ingest-sqs-batch.json")
    records = batch["Records"]
    assert len(records) == 3
    for rec in records:
        assert rec["eventSource"] == "aws:sqs"
        assert rec["eventSourceARN"] == f"arn:aws:sqs:us-east-1:{ACCOUNT}:crr-monitor-EventsQueue"
        assert rec["awsRegion"] == "us-east-1"
        assert rec["attributes"]["ApproximateReceiveCount"] == "1"
        assert isinstance(rec["body"], str) and rec["messageId"] and rec["receiptHandle"]
        assert rec["md5OfBody"] == hashlib.md5(rec["body"].encode("utf-8")).hexdigest()
    source, replica, put = (one(rec["body"]) for rec in records)
    assert (source.bucket, source.region, source.origin) == (SOURCE, "us-east-1", "eventbridge")
    assert (replica.bucket, replica.region, replica.origin) == (DEST, "us-west-2", "eventbridge")
    assert (source.key, source.version_id, source.etag, source.size) == (
        replica.key,
        replica.version_id,
        replica.etag,
        replica.size,
    )
    assert replica.event_time > source.event_time
    assert source == one(load("eventbridge-object-created.json"))
    assert put == one(load("s3-notification-put.json"))


# Samples of the matcher's and sweeper's Lambda events are checked in test_sample_events.py.
INGEST_BODIES = sorted(
    p for p in EVENTS.glob("*.json") if not p.name.startswith(("matcher-", "sweeper-", "reconcile-"))
)


@pytest.mark.parametrize("path", INGEST_BODIES, ids=lambda p: p.name)
def test_every_sample_is_well_formed_json_and_parses_cleanly(path: Path):
    body = path.read_text(encoding="utf-8")
    json.loads(body)
    if path.name == "ingest-sqs-batch.json":
        return
    result = parse_body(body)
    assert_well_formed(result)
    assert not any(isinstance(item, Rejected) for item in result)


# ---------------------------------------------------------------------------------------------------
# Keys: the same key, whatever the form

TRICKY_KEYS = [
    "plain.txt",
    "with space.txt",
    "a+b.txt",
    " ",
    "+",
    "%",
    "100%.txt",
    "%20 is not a space",
    "%2B%2F",
    "a/b//c/",
    "/leading/slash",
    "Zürich/日本語/ファイル.txt",
    "emoji 👍🏽 🇪🇺.png",
    "tab\there",
    "new\nline\rcarriage",
    "ctl\x00\x01\x1f\x7f\u0085",
    "zero\u200bwidth",
    "?#[]@!$&'()*,;=~",
    "quote\"d 'key'",
    "back\\slash",
]


@pytest.mark.parametrize("key", TRICKY_KEYS)
def test_a_key_decodes_the_same_in_every_format(key: str):
    forms = {
        "eventbridge": eventbridge(key),
        "s3-notification": notification(record(aws_encode(key))),
        "s3-notification-moto": notification(record(moto_encode(key))),
        "s3-notification-percent-space": notification(record(quote(key, safe="/"))),
        "s3-notification-in-sns": sns(notification(record(aws_encode(key)))),
        "replication": sns(notification(replication_record(aws_encode(key)))),
        "cloudtrail": cloudtrail("PutObject", key),
    }
    for form, doc in forms.items():
        for text in (json.dumps(doc), json.dumps(doc, ensure_ascii=False)):
            event = one(text)
            assert isinstance(event, ObjectEvent | ReplicationEvent), (form, event)
            assert event.key == key, form


def test_s3_encoding_of_the_sample_key():
    assert aws_encode("photos/2025/Zürich trip+1 (100%).jpg") == "photos/2025/Z%C3%BCrich+trip%2B1+%28100%25%29.jpg"


@pytest.mark.parametrize("key", ["k" * 1024, "é" * 512, "日" * 341 + "a", "😀" * 256])
def test_keys_of_exactly_1024_bytes_are_accepted(key: str):
    assert len(key.encode("utf-8")) == 1024
    assert one(eventbridge(key)).key == key
    assert one(notification(record(aws_encode(key)))).key == key
    assert one(cloudtrail("PutObject", key)).key == key


@pytest.mark.parametrize("key", ["k" * 1025, "é" * 512 + "a", "😀" * 256 + "x"])
def test_keys_of_1025_bytes_are_rejected(key: str):
    assert len(key.encode("utf-8")) == 1025
    for doc in (eventbridge(key), notification(record(aws_encode(key))), cloudtrail("PutObject", key)):
        assert one(doc).reason == "key-too-long"


def test_empty_keys_are_rejected():
    assert one(eventbridge("")).reason == "empty-key"
    assert one(notification(record(""))).reason == "empty-key"
    assert one(cloudtrail("PutObject", "")).reason == "empty-key"


@pytest.mark.parametrize("encoded", ["abc%", "abc%2", "abc%zz", "%g0", "a%%20"])
def test_invalid_percent_escapes_are_rejected(encoded: str):
    assert one(notification(record(encoded))) == Rejected("bad-key-encoding", "s3.object.key: bad %-escape")


@pytest.mark.parametrize("encoded", ["%FF", "caf%E9", "%C3%28", "%ED%A0%80", "%F0%9F%98"])
def test_keys_that_are_not_utf8_once_decoded_are_rejected(encoded: str):
    rejected = one(notification(record(encoded)))
    assert rejected.reason == "bad-key-encoding"


def test_a_key_with_a_lone_surrogate_is_rejected():
    body = json.dumps(eventbridge("ok")).replace('"key": "ok"', '"key": "bad\\ud800key"')
    assert one(body).reason == "bad-key-encoding"


def test_rejections_do_not_echo_object_data():
    secret = "customer-4471/passport scan.pdf"
    for doc in (
        eventbridge(secret, size="lots"),
        notification(changed(record(aws_encode(secret)), "eventTime", "sometime")),
        eventbridge(secret * 40),
    ):
        rejected = one(doc)
        assert isinstance(rejected, Rejected)
        assert "customer" not in rejected.detail and "passport" not in rejected.detail


# ---------------------------------------------------------------------------------------------------
# S3 event notifications


@pytest.mark.parametrize(
    ("event_name", "change", "reason"),
    [
        ("ObjectCreated:Put", ObjectChange.CREATED, "PutObject"),
        ("ObjectCreated:Post", ObjectChange.CREATED, "POST Object"),
        ("ObjectCreated:Copy", ObjectChange.CREATED, "CopyObject"),
        ("ObjectCreated:CompleteMultipartUpload", ObjectChange.CREATED, "CompleteMultipartUpload"),
        ("ObjectRemoved:DeleteMarkerCreated", ObjectChange.DELETE_MARKER, "DeleteObject"),
        ("ObjectRemoved:Delete", ObjectChange.VERSION_DELETED, "DeleteObject"),
        ("LifecycleExpiration:DeleteMarkerCreated", ObjectChange.DELETE_MARKER, "Lifecycle Expiration"),
        ("LifecycleExpiration:Delete", ObjectChange.VERSION_DELETED, "Lifecycle Expiration"),
    ],
)
@pytest.mark.parametrize("prefix", ["", "s3:"])
def test_notification_event_names(event_name: str, change: ObjectChange, reason: str, prefix: str):
    event = one(notification(record("k", prefix + event_name)))
    assert (event.change, event.reason, event.origin) == (change, reason, "s3-notification")


@pytest.mark.parametrize(
    ("event_name", "reason"),
    [
        ("ObjectRestore:Post", "object-restore"),
        ("ObjectRestore:Completed", "object-restore"),
        ("ObjectTagging:Put", "object-tagging"),
        ("ObjectAcl:Put", "object-acl"),
        ("LifecycleTransition", "lifecycle-transition"),
        ("IntelligentTiering", "intelligent-tiering"),
        ("ReducedRedundancyLostObject", "reduced-redundancy-lost-object"),
    ],
)
def test_notifications_that_need_no_work_are_ignored(event_name: str, reason: str):
    assert one(notification(record("k", event_name))) == Ignored(reason)


@pytest.mark.parametrize("event_name", ["ObjectExploded:Now", "ObjectRemoved:Shredded", "Replication:Other", ""])
def test_unknown_notification_event_names_are_rejected(event_name: str):
    assert one(notification(record("k", event_name))).reason == "unknown-event-name"


def test_one_bad_record_does_not_spoil_the_others():
    good = record(aws_encode("first file.txt"))
    no_key = changed(record(), "s3.object.key", DELETE)
    other = record(aws_encode("second+file.txt"), "ObjectRemoved:DeleteMarkerCreated")
    result = parse_body(json.dumps(notification(good, no_key, "not a record", other)))
    assert [type(item) for item in result] == [ObjectEvent, Rejected, Rejected, ObjectEvent]
    assert result[0].key == "first file.txt"
    assert result[1] == Rejected("missing-field", "s3.object.key")
    assert result[2].reason == "bad-type"
    assert (result[3].key, result[3].change) == ("second+file.txt", ObjectChange.DELETE_MARKER)


def test_records_of_other_services_are_not_s3_events():
    sqs_record = sample("ingest-sqs-batch.json")["Records"][0]
    assert one(notification(sqs_record)).reason == "unknown-shape"
    assert one(notification(changed(record(), "eventSource", DELETE))).reason == "unknown-shape"


def test_records_must_be_a_non_empty_list():
    assert one({"Records": []}).reason == "empty-records"
    assert one({"Records": {"0": record()}}).reason == "bad-type"
    assert one({"Records": None}).reason == "bad-type"


def test_notification_event_version_must_be_2x():
    assert isinstance(one(notification(changed(record(), "eventVersion", "2.3"))), ObjectEvent)
    assert one(notification(changed(record(), "eventVersion", "3.0"))).reason == "unsupported-version"


@pytest.mark.parametrize("version", [DELETE, None, "", "null"])
def test_unversioned_objects_have_no_version_id(version: Any):
    assert one(notification(changed(record(), "s3.object.versionId", version))).version_id is None
    assert one(changed(eventbridge(), "detail.object.version-id", version)).version_id is None


def test_etag_quotes_are_stripped():
    assert one(notification(changed(record(), "s3.object.eTag", '"abc123"'))).etag == "abc123"
    assert one(eventbridge(etag='"abc-2"')).etag == "abc-2"


def test_notification_time_keeps_milliseconds_in_utc():
    event = one(notification(changed(record(), "eventTime", "2025-01-02T03:04:05.678+02:00")))
    assert event.event_time == utc(2025, 1, 2, 1, 4, 5, 678000)
    assert event.event_time.tzinfo is UTC


# ---------------------------------------------------------------------------------------------------
# SNS envelope and test events


def test_notification_inside_sns():
    direct = one(notification(record(aws_encode("x y"))))
    delivered = one(sns(notification(record(aws_encode("x y")))))
    assert delivered == replace(direct, topic_arn=sample("s3-notification-in-sns.json")["TopicArn"])


def test_sns_carries_only_s3_notification_records():
    """S3 sends only notification records through SNS: another shape inside an SNS message is a forgery."""
    for inner in (sample("eventbridge-object-created.json"), sample("cloudtrail-put-object.json")):
        assert one(sns(inner)) == Rejected("unknown-shape", "an SNS message carries S3 event notification records only")
    assert one(changed(sns(notification(record("k"))), "TopicArn", "arn:aws:sqs:us-east-1:111122223333:q")) == Rejected(
        "bad-value", "TopicArn: not an SNS topic ARN"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("s3.bucket.name", "a" * 64),
        ("s3.bucket.name", "Upper-Case-Bucket"),
        ("s3.bucket.name", "ab"),
        ("s3.bucket.name", "under_score"),
        ("s3.bucket.name", "double..dot"),
        ("awsRegion", "moon-base-1x"),
        ("awsRegion", "us-east-1; DROP"),
        ("s3.object.eTag", "e" * 65),
        ("s3.object.eTag", "<script>"),
    ],
)
def test_names_regions_and_etags_are_checked_as_s3_makes_them(field: str, value: str):
    assert one(notification(changed(record("k"), field, value))).reason == "bad-value"


@pytest.mark.parametrize(
    ("field", "value"),
    [("failureReason", "x" * 129), ("failureReason", "bad\nline"), ("replicationRuleId", "r" * 256)],
)
def test_free_text_of_failure_events_is_capped(field: str, value: str):
    assert one(notification(replication_record("k", **{field: value}))).reason == "bad-value"


def test_test_event_direct_or_inside_sns_is_ignored():
    test_event = sample("s3-test-event.json")
    assert parse_body(json.dumps(test_event)) == [Ignored("s3-test-event")]
    assert parse_body(json.dumps(sns(test_event))) == [Ignored("s3-test-event")]


def test_sns_envelope_problems():
    assert one(sns("not json")) == Rejected("malformed-json", "SNS Message is not JSON")
    assert one(sns({"something": "else"})).reason == "unknown-shape"
    assert one(sns(sns(notification(record())))).reason == "unknown-shape"  # one envelope only
    assert one(changed(sns("{}"), "Message", DELETE)) == Rejected("missing-field", "Message")
    assert one(changed(sns("{}"), "Message", {"Records": []})).reason == "bad-type"
    assert one(sns("[" * 50000 + "]" * 50000)).reason == "malformed-json"


def test_sns_subscription_confirmation_asks_for_a_confirmation():
    doc = changed(sns("{}"), "Type", "SubscriptionConfirmation")
    doc = {**doc, "TopicArn": "arn:aws:sns:eu-west-1:210987654321:forwarder-failures", "Token": "2336412f37fb687f"}
    assert parse_body(json.dumps(doc)) == [
        SubscriptionRequest("arn:aws:sns:eu-west-1:210987654321:forwarder-failures", "2336412f37fb687f")
    ]
    assert one({**doc, "TopicArn": "arn:aws:sqs:eu-west-1:210987654321:q"}) == Rejected(
        "bad-value", "TopicArn: not an SNS topic ARN"
    )
    assert one({**doc, "Token": "a b"}).reason == "bad-value"
    assert one({k: v for k, v in doc.items() if k != "Token"}) == Rejected("missing-field", "Token")


# ---------------------------------------------------------------------------------------------------
# Replication events


@pytest.mark.parametrize("outcome", list(ReplicationOutcome))
@pytest.mark.parametrize("prefix", ["", "s3:"])
def test_every_replication_outcome(outcome: ReplicationOutcome, prefix: str):
    rec = replication_record("k", outcome.value)
    rec["eventName"] = prefix + rec["eventName"]
    if outcome is not ReplicationOutcome.FAILED:
        del rec["replicationEventData"]["failureReason"]
    for doc in (notification(rec), sns(notification(rec))):
        event = one(doc)
        assert isinstance(event, ReplicationEvent)
        assert (event.outcome, event.bucket, event.destination_bucket) == (outcome, SOURCE, DEST)
        expected = "DstPutObjectNotPermitted" if outcome is ReplicationOutcome.FAILED else None
        assert event.failure_reason == expected


@pytest.mark.parametrize("reason", ["SrcKeyNotFound", "DstKmsKeyNotFound", "SomeReasonAddedIn2031", "x y-z"])
def test_failure_reasons_are_kept_verbatim(reason: str):
    assert one(notification(replication_record("k", failureReason=reason))).failure_reason == reason


@pytest.mark.parametrize(
    ("destination", "expected"),
    [
        ("arn:aws:s3:::crr-demo-dest-usw2", DEST),
        ("arn:aws-cn:s3:::dest-in-china", "dest-in-china"),
        ("arn:aws-us-gov:s3:::dest.gov", "dest.gov"),
        ("plain-bucket-name", "plain-bucket-name"),
        (None, None),
        ("", None),
    ],
)
def test_destination_bucket_is_the_name_from_the_arn(destination: Any, expected: str | None):
    assert one(notification(replication_record("k", destinationBucket=destination))).destination_bucket == expected


@pytest.mark.parametrize("destination", ["arn:aws:sqs:us-east-1:111122223333:q", "arn:aws:s3:::", "arn:broken", 7])
def test_bad_destination_buckets_are_rejected(destination: Any):
    assert one(notification(replication_record("k", destinationBucket=destination))).reason in ("bad-value", "bad-type")


def test_replication_event_without_its_data_is_rejected():
    rec = replication_record("k")
    del rec["replicationEventData"]
    assert one(notification(rec)) == Rejected("missing-field", "replicationEventData")
    rec["replicationEventData"] = "oops"
    assert one(notification(rec)).reason == "bad-type"


# ---------------------------------------------------------------------------------------------------
# EventBridge


def test_permanently_deleted_is_a_version_delete():
    doc = changed(sample("eventbridge-object-deleted.json"), "detail.deletion-type", "Permanently Deleted")
    assert one(doc).change is ObjectChange.VERSION_DELETED
    doc = changed(doc, "detail.deletion-type", "Shredded")
    assert one(doc) == Rejected("bad-value", "detail.deletion-type not known")


@pytest.mark.parametrize(
    ("detail_type", "reason"),
    [
        ("Object Tags Added", "object-tags-added"),
        ("Object Tags Deleted", "object-tags-deleted"),
        ("Object Restore Initiated", "object-restore-initiated"),
        ("Object Restore Completed", "object-restore-completed"),
        ("Object Restore Expired", "object-restore-expired"),
        ("Object ACL Updated", "object-acl-updated"),
        ("Object Storage Class Changed", "object-storage-class-changed"),
        ("Object Access Tier Changed", "object-access-tier-changed"),
    ],
)
def test_eventbridge_types_that_need_no_work_are_ignored(detail_type: str, reason: str):
    assert parse_body(json.dumps(changed(eventbridge(), "detail-type", detail_type))) == [Ignored(reason)]


def test_eventbridge_from_another_source_or_of_an_unknown_type_is_rejected():
    assert one(changed(eventbridge(), "source", "aws.ec2")).reason == "unknown-shape"
    assert one(changed(eventbridge(), "source", "custom.app")).reason == "unknown-shape"
    assert one(changed(eventbridge(), "detail-type", "Object Teleported")).reason == "unknown-event-name"
    assert one(changed(eventbridge(), "detail-type", ["Object Created"])).reason == "unknown-event-name"


def test_moto_eventbridge_variant():
    """moto 5.2: eTag, numeric time, reason ObjectCreated/ObjectRemoved, no deletion-type, account maybe dropped."""
    base = {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "source": "aws.s3",
        "account": "123456789012",
        "time": 1763647407.123456,
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{SOURCE}"],
    }
    detail = {
        "version": "0",
        "bucket": {"name": SOURCE},
        "object": {
            "key": "dir/a b+c.txt",
            "size": 11,
            "eTag": "5eb63bbbe01eeed093cb22bb8f5acdc3",
            "version-id": "5f1b5b1e-9a4a-4b8e-8d7a-0c2f3e4d5a6b",
            "sequencer": "617f08299329d189",
        },
        "request-id": "N4N7GDK58NMKJ12R",
        "requester": "123456789012",
        "source-ip-address": "1.2.3.4",
        "reason": "ObjectCreated",
    }
    created = one({**base, "detail-type": "Object Created", "detail": detail})
    assert created == ObjectEvent(
        bucket=SOURCE,
        key="dir/a b+c.txt",
        version_id="5f1b5b1e-9a4a-4b8e-8d7a-0c2f3e4d5a6b",
        change=ObjectChange.CREATED,
        event_time=datetime.fromtimestamp(1763647407.123456, UTC),
        size=11,
        etag="5eb63bbbe01eeed093cb22bb8f5acdc3",
        sequencer="617f08299329d189",
        reason="ObjectCreated",
        region="us-east-1",
        account="123456789012",
        origin="eventbridge",
    )
    deleted = one({**base, "detail-type": "Object Deleted", "detail": {**detail, "reason": "ObjectRemoved"}})
    assert deleted.change is ObjectChange.VERSION_DELETED
    unversioned = changed({**base, "detail-type": "Object Created", "detail": detail}, "detail.object.version-id", None)
    assert one(changed(unversioned, "account", "")).version_id is None
    assert one(changed(unversioned, "account", "")).account is None
    assert one(changed(unversioned, "time", 1763647407)).event_time == utc(2025, 11, 20, 14, 3, 27)


def test_moto_notification_record_built_by_moto_itself():
    from moto.s3 import notifications

    # moto's own builder of notification records: if a moto upgrade renames it, find its successor.
    build = getattr(notifications, "_get_s3_event", None)
    assert build is not None, "moto.s3.notifications._get_s3_event is gone: point this test at moto's new builder"
    key = "dir/sub dir/a+b %41 Zürich.txt"
    bucket = SimpleNamespace(name=SOURCE, region_name="us-east-1", arn=f"arn:aws:s3:::{SOURCE}")
    fake_key = SimpleNamespace(name=key, size=3, etag='"900150983cd24fb0d6963f7d28e17f72"')
    body = build("s3:ObjectCreated:Put", bucket, fake_key, "notification-id")
    assert "%2F" in body["Records"][0]["s3"]["object"]["key"]
    event = one(body)
    assert (event.key, event.version_id, event.etag, event.size) == (key, None, "900150983cd24fb0d6963f7d28e17f72", 3)


# ---------------------------------------------------------------------------------------------------
# CloudTrail via EventBridge


def test_cloudtrail_copy_and_multipart_do_not_take_bytes_transferred_as_size():
    for name in ("CopyObject", "CompleteMultipartUpload"):
        event = one(cloudtrail(name, "k"))
        assert (event.change, event.reason, event.size, event.origin) == (
            ObjectChange.CREATED,
            name,
            None,
            "cloudtrail",
        )
        assert event.version_id == "rY7uB2Nq.dK5xWm0Pc8LzTs3HvGf1JaE"


def test_cloudtrail_encryption_from_the_request_when_the_response_is_silent():
    doc = cloudtrail("PutObject", "k", responseElements=None)
    doc["detail"]["requestParameters"]["x-amz-server-side-encryption"] = "aws:kms"
    event = one(doc)
    assert (event.encryption, event.version_id) == ("aws:kms", None)


def test_cloudtrail_delete_object():
    marker = one(
        cloudtrail("DeleteObject", "k", responseElements={"x-amz-delete-marker": "true", "x-amz-version-id": "dm.1"})
    )
    assert (marker.change, marker.version_id, marker.reason) == (ObjectChange.DELETE_MARKER, "dm.1", "DeleteObject")

    version_delete = cloudtrail("DeleteObject", "k", responseElements={"x-amz-delete-marker": "true"})
    version_delete["detail"]["requestParameters"]["versionId"] = "v.2"
    assert (one(version_delete).change, one(version_delete).version_id) == (ObjectChange.VERSION_DELETED, "v.2")

    unversioned = one(cloudtrail("DeleteObject", "k", responseElements=None))
    assert (unversioned.change, unversioned.version_id) == (ObjectChange.VERSION_DELETED, None)


def test_cloudtrail_other_calls_and_failed_calls_are_ignored():
    assert parse_body(json.dumps(cloudtrail("GetObject"))) == [Ignored("cloudtrail-other-call")]
    assert parse_body(json.dumps(cloudtrail("PutBucketPolicy"))) == [Ignored("cloudtrail-other-call")]
    failed = cloudtrail("PutObject", errorCode="AccessDenied", errorMessage="Access Denied")
    assert parse_body(json.dumps(failed)) == [Ignored("cloudtrail-failed-call")]


def test_cloudtrail_from_another_service_is_rejected():
    assert one(cloudtrail(eventSource="ec2.amazonaws.com")).reason == "unknown-shape"


def test_cloudtrail_missing_request_parameters():
    assert one(cloudtrail(requestParameters=None)) == Rejected("missing-field", "detail.requestParameters")
    doc = cloudtrail()
    del doc["detail"]["requestParameters"]["bucketName"]
    assert one(doc) == Rejected("missing-field", "detail.requestParameters.bucketName")


# ---------------------------------------------------------------------------------------------------
# Malformed bodies, missing fields, wrong types


@pytest.mark.parametrize("body", ["", " ", "not json", "{", '{"Records": [', "[1,2", "{'single': 'quotes'}", "\ud800"])
def test_malformed_json(body: str):
    assert one(body).reason == "malformed-json"


@pytest.mark.parametrize("body", ["[]", "[1, 2]", "42", "-1.5", "null", "true", '"a string"', '"{\\"Records\\": []}"'])
def test_json_that_is_not_an_object(body: str):
    assert one(body).reason == "unknown-shape"


@pytest.mark.parametrize("body", ["{}", '{"hello": "world"}', '{"detail-type": "Object Created"}', '{"Type": 1}'])
def test_json_objects_of_another_shape(body: str):
    assert one(body).reason == "unknown-shape"


def test_deeply_nested_json_is_malformed_not_a_crash():
    assert one("[" * 100000 + "]" * 100000).reason == "malformed-json"
    assert one('{"a":' * 40000 + "1" + "}" * 40000).reason == "malformed-json"


def test_huge_integers_are_malformed_not_a_crash():
    assert one('{"Records": [' + "9" * 5000 + "]}").reason == "malformed-json"


def test_non_text_bodies():
    assert parse_body(None) == [Rejected("bad-type", "body is not text")]  # type: ignore[arg-type]
    assert parse_body(b"\xff\xfe") == [Rejected("malformed-json", "body is not UTF-8")]  # type: ignore[arg-type]
    assert parse_body(load("eventbridge-object-created.json").encode()) == parse_body(  # type: ignore[arg-type]
        load("eventbridge-object-created.json")
    )


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("detail", "detail"),
        ("detail.bucket", "detail.bucket"),
        ("detail.bucket.name", "detail.bucket.name"),
        ("detail.object", "detail.object"),
        ("detail.object.key", "detail.object.key"),
        ("time", "time"),
    ],
)
def test_eventbridge_missing_fields(path: str, detail: str):
    assert one(changed(eventbridge(), path, DELETE)) == Rejected("missing-field", detail)


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("eventTime", "eventTime"),
        ("eventName", "eventName"),
        ("s3", "s3"),
        ("s3.bucket", "s3.bucket"),
        ("s3.bucket.name", "s3.bucket.name"),
        ("s3.object", "s3.object"),
        ("s3.object.key", "s3.object.key"),
    ],
)
def test_notification_missing_fields(path: str, detail: str):
    assert one(notification(changed(record(), path, DELETE))) == Rejected("missing-field", detail)


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("detail.object.size", "abc", "bad-type"),
        ("detail.object.size", "12abc", "bad-type"),
        ("detail.object.size", "١٢", "bad-type"),
        ("detail.object.size", "-5", "bad-type"),
        ("detail.object.size", True, "bad-type"),
        ("detail.object.size", [1], "bad-type"),
        ("detail.object.size", -1, "bad-value"),
        ("detail.object.size", 1.5, "bad-value"),
        ("detail.object.size", 2**64, "bad-value"),
        ("detail.object.key", 123, "bad-type"),
        ("detail.object.key", ["a"], "bad-type"),
        ("detail.object.etag", 5, "bad-type"),
        ("detail.object.version-id", 7, "bad-type"),
        ("detail.object.version-id", "has space", "bad-value"),
        ("detail.object.version-id", "has#hash", "bad-value"),
        ("detail.object.version-id", "v" * 1025, "bad-value"),
        ("detail.object.sequencer", {"a": 1}, "bad-type"),
        ("detail.object", "oops", "bad-type"),
        ("detail.bucket.name", {}, "bad-type"),
        ("detail.bucket.name", "", "missing-field"),
        ("detail.bucket.name", "has/slash", "bad-value"),
        ("detail.bucket", "crr-demo-source-use1", "bad-type"),
        ("detail", [], "bad-type"),
        ("time", "yesterday", "bad-time"),
        ("time", "1969-12-31T23:59:59Z", "bad-time"),
        ("time", "2500-01-01T00:00:00Z", "bad-time"),
        ("time", 1e20, "bad-time"),
        ("time", True, "bad-type"),
        ("time", {}, "bad-type"),
        ("region", 1, "bad-type"),
        ("account", 111122223333, "bad-type"),
    ],
)
def test_eventbridge_wrong_types_and_values(path: str, value: Any, reason: str):
    rejected = one(changed(eventbridge(), path, value))
    assert isinstance(rejected, Rejected) and rejected.reason == reason, rejected


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0), (5, 5), ("123", 123), (1024.0, 1024), (5 * 2**40, 5 * 2**40), (None, None)]
)
def test_sizes_that_are_accepted(value: Any, expected: int | None):
    assert one(eventbridge(size=value)).size == expected


def test_nan_and_infinite_times_are_bad_times():
    body = json.dumps(eventbridge())
    for literal in ("NaN", "Infinity", "-Infinity"):
        assert one(body.replace('"2025-11-20T14:03:27Z"', literal)).reason == "bad-time"


def test_naive_times_are_taken_as_utc():
    assert one(changed(eventbridge(), "time", "2025-11-20T14:03:27")).event_time == utc(2025, 11, 20, 14, 3, 27)


def test_oversized_bodies_are_rejected_without_parsing():
    doc = eventbridge(padding="x")
    base = len(json.dumps(doc).encode())
    fits = json.dumps(eventbridge(padding="x" * (262144 - base + 1)))
    assert len(fits.encode()) == 262144
    assert isinstance(one(fits), ObjectEvent)
    too_big = json.dumps(eventbridge(padding="x" * (262144 - base + 2)))
    assert parse_body(too_big) == [Rejected("oversized", "body larger than 262144 bytes")]
    assert one("[" * 300000).reason == "oversized"  # not parsed: would be malformed otherwise
    multibyte = json.dumps(eventbridge(padding="é" * 140000), ensure_ascii=False)  # < 262144 chars, > 262144 bytes
    assert len(multibyte) < 262144 < len(multibyte.encode())
    assert one(multibyte).reason == "oversized"
    assert parse_body(json.dumps(eventbridge()), max_bytes=100)[0].reason == "oversized"


# ---------------------------------------------------------------------------------------------------
# Properties

# CRRMON_FUZZ_EXAMPLES: more cases in `make fuzz`; fewer per mutant in `make mutate`, which runs them once per mutant.
SETTINGS = settings(
    max_examples=int(os.environ.get("CRRMON_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)

SAMPLE_DOCUMENTS = [
    sample(name)
    for name in (
        "eventbridge-object-created.json",
        "eventbridge-object-deleted.json",
        "s3-notification-put.json",
        "replication-missed-threshold.json",
        "cloudtrail-put-object.json",
    )
] + [json.loads(sample("replication-failed.json")["Message"])]


def paths(node: Any, prefix: str = "") -> list[str]:
    """Every dotted path into a document (list indexes as numbers)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    found = []
    for name, child in items:
        if isinstance(name, str) and "." in name:
            continue
        path = f"{prefix}{name}"
        found.append(path)
        found.extend(paths(child, path + "."))
    return found


@SETTINGS
@given(st.text())
def test_any_text_gives_a_non_empty_list_of_model_values(body: str):
    assert_well_formed(parse_body(body))


@SETTINGS
@given(json_values)
def test_any_json_value_gives_a_non_empty_list_of_model_values(value: Any):
    assert_well_formed(parse_body(json.dumps(value)))


@SETTINGS
@given(st.data())
def test_samples_with_one_field_replaced_by_any_json_value(data: st.DataObject):
    document = data.draw(st.sampled_from(SAMPLE_DOCUMENTS))
    path = data.draw(st.sampled_from(paths(document)))
    value = data.draw(json_values | st.just(DELETE))
    mutated = changed(document, path, value)
    assert_well_formed(parse_body(json.dumps(mutated)))
    assert_well_formed(parse_body(json.dumps(sns(mutated))))


keys = (
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=256)  # at most 4 bytes a character
    | st.text(st.characters(codec="utf-8", max_codepoint=0x7F), min_size=1000, max_size=1024)
    | st.text(st.characters(codec="utf-8", min_codepoint=0x80, max_codepoint=0x7FF), min_size=500, max_size=512)
)


@SETTINGS
@given(keys)
def test_any_valid_key_round_trips_through_every_format(key: str):
    expected = {key}
    decoded = {
        one(eventbridge(key)).key,
        one(notification(record(aws_encode(key)))).key,
        one(notification(record(moto_encode(key)))).key,
        one(sns(notification(replication_record(aws_encode(key))))).key,
        one(cloudtrail("PutObject", key)).key,
    }
    assert decoded == expected
