"""What crrmon.events says about each field it refuses, and the EventBridge event it writes.

Every rejection's `detail` names the field that was refused (its dotted path, inside the record for S3
notification records) and why, never the field's value: the cases below break each field of each sample
in turn, one way per distinct answer, and check the exact `Rejected`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from crrmon.events import eventbridge_object_event, parse_body, topic_account
from crrmon.model import Ignored, ObjectChange, ObjectEvent, Rejected
from tests.unit.test_events import DELETE, changed, sample, sns

SUBSCRIPTION = {
    **changed(sns("{}"), "Type", "SubscriptionConfirmation"),
    "TopicArn": "arn:aws:sns:eu-west-1:210987654321:forwarder-failures",
    "Token": "2336412f37fb687f",
}
DOCUMENTS = {
    "eventbridge-object-created.json": sample("eventbridge-object-created.json"),
    "eventbridge-object-deleted.json": sample("eventbridge-object-deleted.json"),
    "s3-notification-put.json": sample("s3-notification-put.json"),
    "replication-failed.json": json.loads(sample("replication-failed.json")["Message"]),
    "cloudtrail-put-object.json": sample("cloudtrail-put-object.json"),
    "s3-notification-in-sns.json": sample("s3-notification-in-sns.json"),
    "subscription": SUBSCRIPTION,
}

# (document, dotted path, value put there (DELETE: removed), reason, detail)
CASES = [
    ("cloudtrail-put-object.json", "account", "\ud800", "bad-value", "account: not valid Unicode"),
    ("cloudtrail-put-object.json", "account", "not valid!", "bad-value", "account: not an account ID"),
    ("cloudtrail-put-object.json", "account", 7, "bad-type", "account: not a string"),
    ("cloudtrail-put-object.json", "detail", 7, "bad-type", "detail: not an object"),
    ("cloudtrail-put-object.json", "detail", DELETE, "unknown-shape", "detail.eventSource is not s3.amazonaws.com"),
    ("cloudtrail-put-object.json", "detail-type", 7, "unknown-event-name", "detail-type not known"),
    ("cloudtrail-put-object.json", "detail-type", DELETE, "unknown-shape", "not an accepted event form"),
    (
        "cloudtrail-put-object.json",
        "detail.additionalEventData",
        7,
        "bad-type",
        "detail.additionalEventData: not an object",
    ),
    (
        "cloudtrail-put-object.json",
        "detail.additionalEventData.bytesTransferredIn",
        "\ud800",
        "bad-type",
        "detail.additionalEventData.bytesTransferredIn: not a number",
    ),
    (
        "cloudtrail-put-object.json",
        "detail.additionalEventData.bytesTransferredIn",
        -1,
        "bad-value",
        "detail.additionalEventData.bytesTransferredIn: out of range",
    ),
    (
        "cloudtrail-put-object.json",
        "detail.additionalEventData.bytesTransferredIn",
        1.5,
        "bad-value",
        "detail.additionalEventData.bytesTransferredIn: not a whole number",
    ),
    ("cloudtrail-put-object.json", "detail.awsRegion", "\ud800", "bad-value", "detail.awsRegion: not valid Unicode"),
    (
        "cloudtrail-put-object.json",
        "detail.awsRegion",
        "not valid!",
        "bad-value",
        "detail.awsRegion: not a region name",
    ),
    ("cloudtrail-put-object.json", "detail.awsRegion", 7, "bad-type", "detail.awsRegion: not a string"),
    ("cloudtrail-put-object.json", "detail.eventName", "\ud800", "bad-value", "detail.eventName: not valid Unicode"),
    ("cloudtrail-put-object.json", "detail.eventName", 7, "bad-type", "detail.eventName: not a string"),
    ("cloudtrail-put-object.json", "detail.eventName", DELETE, "missing-field", "detail.eventName"),
    ("cloudtrail-put-object.json", "detail.eventTime", "\ud800", "bad-time", "detail.eventTime: not a time"),
    ("cloudtrail-put-object.json", "detail.eventTime", -1, "bad-time", "detail.eventTime: out of range"),
    ("cloudtrail-put-object.json", "detail.eventTime", DELETE, "missing-field", "detail.eventTime"),
    ("cloudtrail-put-object.json", "detail.eventTime", [], "bad-type", "detail.eventTime: not a string or number"),
    (
        "cloudtrail-put-object.json",
        "detail.requestParameters",
        7,
        "bad-type",
        "detail.requestParameters: not an object",
    ),
    ("cloudtrail-put-object.json", "detail.requestParameters", DELETE, "missing-field", "detail.requestParameters"),
    (
        "cloudtrail-put-object.json",
        "detail.requestParameters.bucketName",
        "\ud800",
        "bad-value",
        "detail.requestParameters.bucketName: not valid Unicode",
    ),
    (
        "cloudtrail-put-object.json",
        "detail.requestParameters.bucketName",
        "not valid!",
        "bad-value",
        "detail.requestParameters.bucketName: not a bucket name",
    ),
    (
        "cloudtrail-put-object.json",
        "detail.requestParameters.bucketName",
        7,
        "bad-type",
        "detail.requestParameters.bucketName: not a string",
    ),
    (
        "cloudtrail-put-object.json",
        "detail.requestParameters.bucketName",
        DELETE,
        "missing-field",
        "detail.requestParameters.bucketName",
    ),
    ("cloudtrail-put-object.json", "detail.requestParameters.key", "", "empty-key", "detail.requestParameters.key"),
    (
        "cloudtrail-put-object.json",
        "detail.requestParameters.key",
        "\ud800",
        "bad-key-encoding",
        "detail.requestParameters.key: not valid UTF-8",
    ),
    (
        "cloudtrail-put-object.json",
        "detail.requestParameters.key",
        7,
        "bad-type",
        "detail.requestParameters.key: not a string",
    ),
    (
        "cloudtrail-put-object.json",
        "detail.requestParameters.key",
        DELETE,
        "missing-field",
        "detail.requestParameters.key",
    ),
    ("cloudtrail-put-object.json", "detail.responseElements", 7, "bad-type", "detail.responseElements: not an object"),
    (
        "cloudtrail-put-object.json",
        "detail.responseElements.x-amz-server-side-encryption",
        "\ud800",
        "bad-value",
        "detail.responseElements.x-amz-server-side-encryption: not valid Unicode",
    ),
    (
        "cloudtrail-put-object.json",
        "detail.responseElements.x-amz-server-side-encryption",
        7,
        "bad-type",
        "detail.responseElements.x-amz-server-side-encryption: not a string",
    ),
    (
        "cloudtrail-put-object.json",
        "detail.responseElements.x-amz-version-id",
        "\ud800",
        "bad-value",
        "detail.responseElements.x-amz-version-id: not valid Unicode",
    ),
    (
        "cloudtrail-put-object.json",
        "detail.responseElements.x-amz-version-id",
        "not valid!",
        "bad-value",
        "detail.responseElements.x-amz-version-id: not a version ID",
    ),
    (
        "cloudtrail-put-object.json",
        "detail.responseElements.x-amz-version-id",
        7,
        "bad-type",
        "detail.responseElements.x-amz-version-id: not a string",
    ),
    ("cloudtrail-put-object.json", "source", 7, "unknown-shape", "EventBridge event not from aws.s3"),
    ("eventbridge-object-created.json", "account", "\ud800", "bad-value", "account: not valid Unicode"),
    ("eventbridge-object-created.json", "account", "not valid!", "bad-value", "account: not an account ID"),
    ("eventbridge-object-created.json", "account", 7, "bad-type", "account: not a string"),
    ("eventbridge-object-created.json", "detail", 7, "bad-type", "detail: not an object"),
    ("eventbridge-object-created.json", "detail", DELETE, "missing-field", "detail"),
    ("eventbridge-object-created.json", "detail-type", 7, "unknown-event-name", "detail-type not known"),
    ("eventbridge-object-created.json", "detail-type", DELETE, "unknown-shape", "not an accepted event form"),
    ("eventbridge-object-created.json", "detail.bucket", 7, "bad-type", "detail.bucket: not an object"),
    ("eventbridge-object-created.json", "detail.bucket", DELETE, "missing-field", "detail.bucket"),
    (
        "eventbridge-object-created.json",
        "detail.bucket.name",
        "\ud800",
        "bad-value",
        "detail.bucket.name: not valid Unicode",
    ),
    (
        "eventbridge-object-created.json",
        "detail.bucket.name",
        "not valid!",
        "bad-value",
        "detail.bucket.name: not a bucket name",
    ),
    ("eventbridge-object-created.json", "detail.bucket.name", 7, "bad-type", "detail.bucket.name: not a string"),
    ("eventbridge-object-created.json", "detail.bucket.name", DELETE, "missing-field", "detail.bucket.name"),
    ("eventbridge-object-created.json", "detail.object", 7, "bad-type", "detail.object: not an object"),
    ("eventbridge-object-created.json", "detail.object", DELETE, "missing-field", "detail.object"),
    (
        "eventbridge-object-created.json",
        "detail.object.etag",
        "\ud800",
        "bad-value",
        "detail.object.etag: not valid Unicode",
    ),
    (
        "eventbridge-object-created.json",
        "detail.object.etag",
        "not valid!",
        "bad-value",
        "detail.object.etag: not an ETag",
    ),
    ("eventbridge-object-created.json", "detail.object.etag", 7, "bad-type", "detail.object.etag: not a string"),
    ("eventbridge-object-created.json", "detail.object.key", "", "empty-key", "detail.object.key"),
    (
        "eventbridge-object-created.json",
        "detail.object.key",
        "\ud800",
        "bad-key-encoding",
        "detail.object.key: not valid UTF-8",
    ),
    ("eventbridge-object-created.json", "detail.object.key", 7, "bad-type", "detail.object.key: not a string"),
    ("eventbridge-object-created.json", "detail.object.key", DELETE, "missing-field", "detail.object.key"),
    (
        "eventbridge-object-created.json",
        "detail.object.sequencer",
        "\ud800",
        "bad-value",
        "detail.object.sequencer: not valid Unicode",
    ),
    (
        "eventbridge-object-created.json",
        "detail.object.sequencer",
        7,
        "bad-type",
        "detail.object.sequencer: not a string",
    ),
    ("eventbridge-object-created.json", "detail.object.size", "\ud800", "bad-type", "detail.object.size: not a number"),
    ("eventbridge-object-created.json", "detail.object.size", -1, "bad-value", "detail.object.size: out of range"),
    (
        "eventbridge-object-created.json",
        "detail.object.size",
        1.5,
        "bad-value",
        "detail.object.size: not a whole number",
    ),
    (
        "eventbridge-object-created.json",
        "detail.object.version-id",
        "\ud800",
        "bad-value",
        "detail.object.version-id: not valid Unicode",
    ),
    (
        "eventbridge-object-created.json",
        "detail.object.version-id",
        "not valid!",
        "bad-value",
        "detail.object.version-id: not a version ID",
    ),
    (
        "eventbridge-object-created.json",
        "detail.object.version-id",
        7,
        "bad-type",
        "detail.object.version-id: not a string",
    ),
    ("eventbridge-object-created.json", "detail.reason", "\ud800", "bad-value", "detail.reason: not valid Unicode"),
    ("eventbridge-object-created.json", "detail.reason", 7, "bad-type", "detail.reason: not a string"),
    ("eventbridge-object-created.json", "region", "\ud800", "bad-value", "region: not valid Unicode"),
    ("eventbridge-object-created.json", "region", "not valid!", "bad-value", "region: not a region name"),
    ("eventbridge-object-created.json", "region", 7, "bad-type", "region: not a string"),
    ("eventbridge-object-created.json", "source", 7, "unknown-shape", "EventBridge event not from aws.s3"),
    ("eventbridge-object-created.json", "time", "\ud800", "bad-time", "time: not a time"),
    ("eventbridge-object-created.json", "time", -1, "bad-time", "time: out of range"),
    ("eventbridge-object-created.json", "time", DELETE, "missing-field", "time"),
    ("eventbridge-object-created.json", "time", [], "bad-type", "time: not a string or number"),
    ("eventbridge-object-deleted.json", "account", "\ud800", "bad-value", "account: not valid Unicode"),
    ("eventbridge-object-deleted.json", "account", "not valid!", "bad-value", "account: not an account ID"),
    ("eventbridge-object-deleted.json", "account", 7, "bad-type", "account: not a string"),
    ("eventbridge-object-deleted.json", "detail", 7, "bad-type", "detail: not an object"),
    ("eventbridge-object-deleted.json", "detail", DELETE, "missing-field", "detail"),
    ("eventbridge-object-deleted.json", "detail-type", 7, "unknown-event-name", "detail-type not known"),
    ("eventbridge-object-deleted.json", "detail-type", DELETE, "unknown-shape", "not an accepted event form"),
    ("eventbridge-object-deleted.json", "detail.bucket", 7, "bad-type", "detail.bucket: not an object"),
    ("eventbridge-object-deleted.json", "detail.bucket", DELETE, "missing-field", "detail.bucket"),
    (
        "eventbridge-object-deleted.json",
        "detail.bucket.name",
        "\ud800",
        "bad-value",
        "detail.bucket.name: not valid Unicode",
    ),
    (
        "eventbridge-object-deleted.json",
        "detail.bucket.name",
        "not valid!",
        "bad-value",
        "detail.bucket.name: not a bucket name",
    ),
    ("eventbridge-object-deleted.json", "detail.bucket.name", 7, "bad-type", "detail.bucket.name: not a string"),
    ("eventbridge-object-deleted.json", "detail.bucket.name", DELETE, "missing-field", "detail.bucket.name"),
    (
        "eventbridge-object-deleted.json",
        "detail.deletion-type",
        "\ud800",
        "bad-value",
        "detail.deletion-type: not valid Unicode",
    ),
    (
        "eventbridge-object-deleted.json",
        "detail.deletion-type",
        "not valid!",
        "bad-value",
        "detail.deletion-type not known",
    ),
    ("eventbridge-object-deleted.json", "detail.deletion-type", 7, "bad-type", "detail.deletion-type: not a string"),
    ("eventbridge-object-deleted.json", "detail.object", 7, "bad-type", "detail.object: not an object"),
    ("eventbridge-object-deleted.json", "detail.object", DELETE, "missing-field", "detail.object"),
    (
        "eventbridge-object-deleted.json",
        "detail.object.etag",
        "\ud800",
        "bad-value",
        "detail.object.etag: not valid Unicode",
    ),
    (
        "eventbridge-object-deleted.json",
        "detail.object.etag",
        "not valid!",
        "bad-value",
        "detail.object.etag: not an ETag",
    ),
    ("eventbridge-object-deleted.json", "detail.object.etag", 7, "bad-type", "detail.object.etag: not a string"),
    ("eventbridge-object-deleted.json", "detail.object.key", "", "empty-key", "detail.object.key"),
    (
        "eventbridge-object-deleted.json",
        "detail.object.key",
        "\ud800",
        "bad-key-encoding",
        "detail.object.key: not valid UTF-8",
    ),
    ("eventbridge-object-deleted.json", "detail.object.key", 7, "bad-type", "detail.object.key: not a string"),
    ("eventbridge-object-deleted.json", "detail.object.key", DELETE, "missing-field", "detail.object.key"),
    (
        "eventbridge-object-deleted.json",
        "detail.object.sequencer",
        "\ud800",
        "bad-value",
        "detail.object.sequencer: not valid Unicode",
    ),
    (
        "eventbridge-object-deleted.json",
        "detail.object.sequencer",
        7,
        "bad-type",
        "detail.object.sequencer: not a string",
    ),
    (
        "eventbridge-object-deleted.json",
        "detail.object.version-id",
        "\ud800",
        "bad-value",
        "detail.object.version-id: not valid Unicode",
    ),
    (
        "eventbridge-object-deleted.json",
        "detail.object.version-id",
        "not valid!",
        "bad-value",
        "detail.object.version-id: not a version ID",
    ),
    (
        "eventbridge-object-deleted.json",
        "detail.object.version-id",
        7,
        "bad-type",
        "detail.object.version-id: not a string",
    ),
    ("eventbridge-object-deleted.json", "detail.reason", "\ud800", "bad-value", "detail.reason: not valid Unicode"),
    ("eventbridge-object-deleted.json", "detail.reason", 7, "bad-type", "detail.reason: not a string"),
    ("eventbridge-object-deleted.json", "region", "\ud800", "bad-value", "region: not valid Unicode"),
    ("eventbridge-object-deleted.json", "region", "not valid!", "bad-value", "region: not a region name"),
    ("eventbridge-object-deleted.json", "region", 7, "bad-type", "region: not a string"),
    ("eventbridge-object-deleted.json", "source", 7, "unknown-shape", "EventBridge event not from aws.s3"),
    ("eventbridge-object-deleted.json", "time", "\ud800", "bad-time", "time: not a time"),
    ("eventbridge-object-deleted.json", "time", -1, "bad-time", "time: out of range"),
    ("eventbridge-object-deleted.json", "time", DELETE, "missing-field", "time"),
    ("eventbridge-object-deleted.json", "time", [], "bad-type", "time: not a string or number"),
    ("replication-failed.json", "Records", 7, "bad-type", "Records: not a list"),
    ("replication-failed.json", "Records", DELETE, "unknown-shape", "not an accepted event form"),
    ("replication-failed.json", "Records", [], "empty-records", "Records is empty"),
    ("replication-failed.json", "Records.0", 7, "bad-type", "Records[]: not an object"),
    ("replication-failed.json", "Records.0.awsRegion", "\ud800", "bad-value", "awsRegion: not valid Unicode"),
    ("replication-failed.json", "Records.0.awsRegion", "not valid!", "bad-value", "awsRegion: not a region name"),
    ("replication-failed.json", "Records.0.awsRegion", 7, "bad-type", "awsRegion: not a string"),
    ("replication-failed.json", "Records.0.eventName", "\ud800", "bad-value", "eventName: not valid Unicode"),
    ("replication-failed.json", "Records.0.eventName", "not valid!", "unknown-event-name", "eventName not known"),
    ("replication-failed.json", "Records.0.eventName", 7, "bad-type", "eventName: not a string"),
    ("replication-failed.json", "Records.0.eventName", DELETE, "missing-field", "eventName"),
    (
        "replication-failed.json",
        "Records.0.eventSource",
        DELETE,
        "unknown-shape",
        "Records[].eventSource is not aws:s3",
    ),
    ("replication-failed.json", "Records.0.eventTime", "\ud800", "bad-time", "eventTime: not a time"),
    ("replication-failed.json", "Records.0.eventTime", -1, "bad-time", "eventTime: out of range"),
    ("replication-failed.json", "Records.0.eventTime", DELETE, "missing-field", "eventTime"),
    ("replication-failed.json", "Records.0.eventTime", [], "bad-type", "eventTime: not a string or number"),
    ("replication-failed.json", "Records.0.eventVersion", 7, "unsupported-version", "eventVersion is not 2.x"),
    ("replication-failed.json", "Records.0.replicationEventData", 7, "bad-type", "replicationEventData: not an object"),
    ("replication-failed.json", "Records.0.replicationEventData", DELETE, "missing-field", "replicationEventData"),
    (
        "replication-failed.json",
        "Records.0.replicationEventData.destinationBucket",
        "\ud800",
        "bad-value",
        "replicationEventData.destinationBucket: not valid Unicode",
    ),
    (
        "replication-failed.json",
        "Records.0.replicationEventData.destinationBucket",
        "not valid!",
        "bad-value",
        "replicationEventData.destinationBucket: not a bucket name",
    ),
    (
        "replication-failed.json",
        "Records.0.replicationEventData.destinationBucket",
        7,
        "bad-type",
        "replicationEventData.destinationBucket: not a string",
    ),
    (
        "replication-failed.json",
        "Records.0.replicationEventData.failureReason",
        "\ud800",
        "bad-value",
        "replicationEventData.failureReason: not valid Unicode",
    ),
    (
        "replication-failed.json",
        "Records.0.replicationEventData.failureReason",
        "not valid!",
        "bad-value",
        "replicationEventData.failureReason: unexpected characters or too long",
    ),
    (
        "replication-failed.json",
        "Records.0.replicationEventData.failureReason",
        7,
        "bad-type",
        "replicationEventData.failureReason: not a string",
    ),
    (
        "replication-failed.json",
        "Records.0.replicationEventData.replicationRuleId",
        "\ud800",
        "bad-value",
        "replicationEventData.replicationRuleId: not valid Unicode",
    ),
    (
        "replication-failed.json",
        "Records.0.replicationEventData.replicationRuleId",
        7,
        "bad-type",
        "replicationEventData.replicationRuleId: not a string",
    ),
    ("replication-failed.json", "Records.0.s3", 7, "bad-type", "s3: not an object"),
    ("replication-failed.json", "Records.0.s3", DELETE, "missing-field", "s3"),
    ("replication-failed.json", "Records.0.s3.bucket", 7, "bad-type", "s3.bucket: not an object"),
    ("replication-failed.json", "Records.0.s3.bucket", DELETE, "missing-field", "s3.bucket"),
    ("replication-failed.json", "Records.0.s3.bucket.name", "\ud800", "bad-value", "s3.bucket.name: not valid Unicode"),
    (
        "replication-failed.json",
        "Records.0.s3.bucket.name",
        "not valid!",
        "bad-value",
        "s3.bucket.name: not a bucket name",
    ),
    ("replication-failed.json", "Records.0.s3.bucket.name", 7, "bad-type", "s3.bucket.name: not a string"),
    ("replication-failed.json", "Records.0.s3.bucket.name", DELETE, "missing-field", "s3.bucket.name"),
    ("replication-failed.json", "Records.0.s3.object", 7, "bad-type", "s3.object: not an object"),
    ("replication-failed.json", "Records.0.s3.object", DELETE, "missing-field", "s3.object"),
    ("replication-failed.json", "Records.0.s3.object.eTag", "\ud800", "bad-value", "s3.object.eTag: not valid Unicode"),
    ("replication-failed.json", "Records.0.s3.object.eTag", "not valid!", "bad-value", "s3.object.eTag: not an ETag"),
    ("replication-failed.json", "Records.0.s3.object.eTag", 7, "bad-type", "s3.object.eTag: not a string"),
    ("replication-failed.json", "Records.0.s3.object.key", "", "empty-key", "s3.object.key"),
    (
        "replication-failed.json",
        "Records.0.s3.object.key",
        "\ud800",
        "bad-key-encoding",
        "s3.object.key: not valid UTF-8",
    ),
    ("replication-failed.json", "Records.0.s3.object.key", 7, "bad-type", "s3.object.key: not a string"),
    ("replication-failed.json", "Records.0.s3.object.key", DELETE, "missing-field", "s3.object.key"),
    ("replication-failed.json", "Records.0.s3.object.size", "\ud800", "bad-type", "s3.object.size: not a number"),
    ("replication-failed.json", "Records.0.s3.object.size", -1, "bad-value", "s3.object.size: out of range"),
    ("replication-failed.json", "Records.0.s3.object.size", 1.5, "bad-value", "s3.object.size: not a whole number"),
    (
        "replication-failed.json",
        "Records.0.s3.object.versionId",
        "\ud800",
        "bad-value",
        "s3.object.versionId: not valid Unicode",
    ),
    (
        "replication-failed.json",
        "Records.0.s3.object.versionId",
        "not valid!",
        "bad-value",
        "s3.object.versionId: not a version ID",
    ),
    ("replication-failed.json", "Records.0.s3.object.versionId", 7, "bad-type", "s3.object.versionId: not a string"),
    ("s3-notification-in-sns.json", "Message", "\ud800", "malformed-json", "SNS Message is not JSON"),
    ("s3-notification-in-sns.json", "Message", 7, "bad-type", "Message: not a string"),
    ("s3-notification-in-sns.json", "Message", DELETE, "missing-field", "Message"),
    ("s3-notification-in-sns.json", "TopicArn", "\ud800", "bad-value", "TopicArn: not valid Unicode"),
    ("s3-notification-in-sns.json", "TopicArn", "not valid!", "bad-value", "TopicArn: not an SNS topic ARN"),
    ("s3-notification-in-sns.json", "TopicArn", 7, "bad-type", "TopicArn: not a string"),
    ("s3-notification-in-sns.json", "TopicArn", DELETE, "missing-field", "TopicArn"),
    ("s3-notification-in-sns.json", "Type", DELETE, "unknown-shape", "not an accepted event form"),
    ("s3-notification-put.json", "Records", 7, "bad-type", "Records: not a list"),
    ("s3-notification-put.json", "Records", DELETE, "unknown-shape", "not an accepted event form"),
    ("s3-notification-put.json", "Records", [], "empty-records", "Records is empty"),
    ("s3-notification-put.json", "Records.0", 7, "bad-type", "Records[]: not an object"),
    ("s3-notification-put.json", "Records.0.awsRegion", "\ud800", "bad-value", "awsRegion: not valid Unicode"),
    ("s3-notification-put.json", "Records.0.awsRegion", "not valid!", "bad-value", "awsRegion: not a region name"),
    ("s3-notification-put.json", "Records.0.awsRegion", 7, "bad-type", "awsRegion: not a string"),
    ("s3-notification-put.json", "Records.0.eventName", "\ud800", "bad-value", "eventName: not valid Unicode"),
    ("s3-notification-put.json", "Records.0.eventName", "not valid!", "unknown-event-name", "eventName not known"),
    ("s3-notification-put.json", "Records.0.eventName", 7, "bad-type", "eventName: not a string"),
    ("s3-notification-put.json", "Records.0.eventName", DELETE, "missing-field", "eventName"),
    (
        "s3-notification-put.json",
        "Records.0.eventSource",
        DELETE,
        "unknown-shape",
        "Records[].eventSource is not aws:s3",
    ),
    ("s3-notification-put.json", "Records.0.eventTime", "\ud800", "bad-time", "eventTime: not a time"),
    ("s3-notification-put.json", "Records.0.eventTime", -1, "bad-time", "eventTime: out of range"),
    ("s3-notification-put.json", "Records.0.eventTime", DELETE, "missing-field", "eventTime"),
    ("s3-notification-put.json", "Records.0.eventTime", [], "bad-type", "eventTime: not a string or number"),
    ("s3-notification-put.json", "Records.0.eventVersion", 7, "unsupported-version", "eventVersion is not 2.x"),
    ("s3-notification-put.json", "Records.0.s3", 7, "bad-type", "s3: not an object"),
    ("s3-notification-put.json", "Records.0.s3", DELETE, "missing-field", "s3"),
    ("s3-notification-put.json", "Records.0.s3.bucket", 7, "bad-type", "s3.bucket: not an object"),
    ("s3-notification-put.json", "Records.0.s3.bucket", DELETE, "missing-field", "s3.bucket"),
    (
        "s3-notification-put.json",
        "Records.0.s3.bucket.name",
        "\ud800",
        "bad-value",
        "s3.bucket.name: not valid Unicode",
    ),
    (
        "s3-notification-put.json",
        "Records.0.s3.bucket.name",
        "not valid!",
        "bad-value",
        "s3.bucket.name: not a bucket name",
    ),
    ("s3-notification-put.json", "Records.0.s3.bucket.name", 7, "bad-type", "s3.bucket.name: not a string"),
    ("s3-notification-put.json", "Records.0.s3.bucket.name", DELETE, "missing-field", "s3.bucket.name"),
    ("s3-notification-put.json", "Records.0.s3.object", 7, "bad-type", "s3.object: not an object"),
    ("s3-notification-put.json", "Records.0.s3.object", DELETE, "missing-field", "s3.object"),
    (
        "s3-notification-put.json",
        "Records.0.s3.object.eTag",
        "\ud800",
        "bad-value",
        "s3.object.eTag: not valid Unicode",
    ),
    ("s3-notification-put.json", "Records.0.s3.object.eTag", "not valid!", "bad-value", "s3.object.eTag: not an ETag"),
    ("s3-notification-put.json", "Records.0.s3.object.eTag", 7, "bad-type", "s3.object.eTag: not a string"),
    ("s3-notification-put.json", "Records.0.s3.object.key", "", "empty-key", "s3.object.key"),
    (
        "s3-notification-put.json",
        "Records.0.s3.object.key",
        "\ud800",
        "bad-key-encoding",
        "s3.object.key: not valid UTF-8",
    ),
    ("s3-notification-put.json", "Records.0.s3.object.key", 7, "bad-type", "s3.object.key: not a string"),
    ("s3-notification-put.json", "Records.0.s3.object.key", DELETE, "missing-field", "s3.object.key"),
    (
        "s3-notification-put.json",
        "Records.0.s3.object.sequencer",
        "\ud800",
        "bad-value",
        "s3.object.sequencer: not valid Unicode",
    ),
    ("s3-notification-put.json", "Records.0.s3.object.sequencer", 7, "bad-type", "s3.object.sequencer: not a string"),
    ("s3-notification-put.json", "Records.0.s3.object.size", "\ud800", "bad-type", "s3.object.size: not a number"),
    ("s3-notification-put.json", "Records.0.s3.object.size", -1, "bad-value", "s3.object.size: out of range"),
    ("s3-notification-put.json", "Records.0.s3.object.size", 1.5, "bad-value", "s3.object.size: not a whole number"),
    (
        "s3-notification-put.json",
        "Records.0.s3.object.versionId",
        "\ud800",
        "bad-value",
        "s3.object.versionId: not valid Unicode",
    ),
    (
        "s3-notification-put.json",
        "Records.0.s3.object.versionId",
        "not valid!",
        "bad-value",
        "s3.object.versionId: not a version ID",
    ),
    ("s3-notification-put.json", "Records.0.s3.object.versionId", 7, "bad-type", "s3.object.versionId: not a string"),
    ("subscription", "Token", "\ud800", "bad-value", "Token: not valid Unicode"),
    ("subscription", "Token", "not valid!", "bad-value", "Token: not a subscription token"),
    ("subscription", "Token", 7, "bad-type", "Token: not a string"),
    ("subscription", "Token", DELETE, "missing-field", "Token"),
    ("subscription", "TopicArn", "\ud800", "bad-value", "TopicArn: not valid Unicode"),
    ("subscription", "TopicArn", "not valid!", "bad-value", "TopicArn: not an SNS topic ARN"),
    ("subscription", "TopicArn", 7, "bad-type", "TopicArn: not a string"),
    ("subscription", "TopicArn", DELETE, "missing-field", "TopicArn"),
    ("subscription", "Type", DELETE, "unknown-shape", "not an accepted event form"),
]


@pytest.mark.parametrize(("document", "path", "value", "reason", "detail"), CASES)
def test_each_refused_field_is_named_with_why(document: str, path: str, value: Any, reason: str, detail: str):
    body = json.dumps(changed(DOCUMENTS[document], path, value))
    assert parse_body(body) == [Rejected(reason, detail)]


def test_the_sns_envelope_names_each_problem():
    assert parse_body(json.dumps(changed(sns("{}"), "Type", "UnsubscribeConfirmation"))) == [
        Ignored("sns-unsubscribe-confirmation")
    ]
    assert parse_body(json.dumps(changed(sns("{}"), "Message", {"Records": []}))) == [
        Rejected("bad-type", "Message: not a string")
    ]
    assert parse_body(json.dumps(sns("[" * 50000 + "]" * 50000))) == [
        Rejected("malformed-json", "SNS Message nested too deeply")
    ]
    assert parse_body(json.dumps(sns({"detail-type": "Object Created", "source": "aws.s3"}))) == [
        Rejected("unknown-shape", "an SNS message carries S3 event notification records only")
    ]


def test_a_body_that_is_no_json_object_says_what_it_is():
    assert parse_body(b"\xff") == [Rejected("malformed-json", "body is not UTF-8")]
    assert parse_body(7) == [Rejected("bad-type", "body is not text")]
    assert parse_body("{}", max_bytes=1) == [Rejected("oversized", "body larger than 1 bytes")]
    assert parse_body("[" * 50000 + "]" * 50000) == [Rejected("malformed-json", "JSON nested too deeply")]
    assert parse_body("{") == [Rejected("malformed-json", "body is not JSON")]
    assert parse_body("[1]") == [Rejected("unknown-shape", "JSON list, not an object")]
    assert parse_body("{}") == [Rejected("unknown-shape", "not an accepted event form")]


@pytest.mark.parametrize(
    ("destination", "detail"),
    [
        ("arn:aws:sqs:::q", "replicationEventData.destinationBucket: not an S3 bucket ARN"),
        ("arn:aws:s3:us-east-1::b", "replicationEventData.destinationBucket: not an S3 bucket ARN"),
        ("arn:aws:s3::111122223333:b", "replicationEventData.destinationBucket: not an S3 bucket ARN"),
        ("arn:aws:s3:::", "replicationEventData.destinationBucket: ARN without a bucket name"),
        ("arn:aws:s3", "replicationEventData.destinationBucket: not an S3 bucket ARN"),
    ],
)
def test_a_destination_arn_that_is_no_bucket_is_named(destination: str, detail: str):
    document = changed(
        DOCUMENTS["replication-failed.json"], "Records.0.replicationEventData.destinationBucket", destination
    )
    assert parse_body(json.dumps(document)) == [Rejected("bad-value", detail)]


@pytest.mark.parametrize(
    ("deletion_type", "change"),
    [
        ("Delete Marker Created", ObjectChange.DELETE_MARKER),
        ("Permanently Deleted", ObjectChange.VERSION_DELETED),
        (DELETE, ObjectChange.VERSION_DELETED),
        ("", ObjectChange.VERSION_DELETED),
    ],
)
def test_the_deletion_type_of_an_object_deleted_event(deletion_type: Any, change: ObjectChange):
    document = changed(DOCUMENTS["eventbridge-object-deleted.json"], "detail.deletion-type", deletion_type)
    (event,) = parse_body(json.dumps(document))
    assert event.change is change


def test_the_eventbridge_event_written_for_a_version_is_the_one_s3_sends():
    event = eventbridge_object_event(
        bucket="src",
        key="a b/c.txt",
        version_id="v1",
        time_s=1_700_000_000.9,
        region="eu-west-1",
        account="111122223333",
        size=5,
        etag="abc",
        reason="CopyObject",
        sequencer="0A1B",
        request_id="REQ1",
        source_ip="198.51.100.7",
    )
    assert set(event) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert {k: v for k, v in event.items() if k != "id"} == {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "111122223333",
        "time": "2023-11-14T22:13:20Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:s3:::src"],
        "detail": {
            "version": "0",
            "bucket": {"name": "src"},
            "object": {"key": "a b/c.txt", "size": 5, "etag": "abc", "version-id": "v1", "sequencer": "0A1B"},
            "request-id": "REQ1",
            "requester": "111122223333",
            "source-ip-address": "198.51.100.7",
            "reason": "CopyObject",
        },
    }
    assert len(event["id"]) == 36
    assert parse_body(json.dumps(event)) == [
        ObjectEvent(
            bucket="src",
            key="a b/c.txt",
            version_id="v1",
            change=ObjectChange.CREATED,
            event_time=datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
            size=5,
            etag="abc",
            sequencer="0A1B",
            reason="CopyObject",
            region="eu-west-1",
            account="111122223333",
            origin="eventbridge",
        )
    ]


def test_a_deleted_versions_event_and_the_defaults():
    event = eventbridge_object_event(
        bucket="src",
        key="k",
        version_id="v2",
        time_s=1_700_000_000,
        region="eu-west-1",
        account="111122223333",
        deletion_type="Delete Marker Created",
    )
    assert event["detail-type"] == "Object Deleted"
    assert event["detail"]["deletion-type"] == "Delete Marker Created"
    assert event["detail"]["object"] == {"key": "k", "version-id": "v2"}
    assert (event["detail"]["reason"], event["detail"]["source-ip-address"]) == ("PutObject", "203.0.113.10")
    assert re.fullmatch("[0-9A-F]{16}", event["detail"]["request-id"])
    assert (
        event["detail"]["request-id"]
        != eventbridge_object_event(
            bucket="src", key="k", version_id="v2", time_s=1, region="eu-west-1", account="111122223333"
        )["detail"]["request-id"]
    )
    assert (
        "deletion-type"
        not in eventbridge_object_event(
            bucket="src", key="k", version_id="v2", time_s=1, region="eu-west-1", account="111122223333"
        )["detail"]
    )


def one(document: dict) -> Any:
    (parsed,) = parse_body(json.dumps(document))
    return parsed


CLOUDTRAIL = DOCUMENTS["cloudtrail-put-object.json"]
RECORD = DOCUMENTS["s3-notification-put.json"]
REPLICATION = DOCUMENTS["replication-failed.json"]


def test_a_cloudtrail_event_without_its_own_region_takes_the_events():
    assert one(changed(changed(CLOUDTRAIL, "detail.awsRegion", DELETE), "region", "eu-west-3")).region == "eu-west-3"
    without = changed(changed(CLOUDTRAIL, "detail.awsRegion", DELETE), "region", "nowhere")
    assert one(without) == Rejected("bad-value", "region: not a region name")
    assert one(changed(CLOUDTRAIL, "region", "nowhere")).region == CLOUDTRAIL["detail"]["awsRegion"]


def test_a_cloudtrail_delete_of_a_bad_version_names_it():
    document = changed(
        changed(CLOUDTRAIL, "detail.eventName", "DeleteObject"), "detail.requestParameters.versionId", "a b"
    )
    assert one(document) == Rejected("bad-value", "detail.requestParameters.versionId: not a version ID")


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("Records.0.s3.bucket.name", "", Rejected("missing-field", "s3.bucket.name")),
        ("Records.0.s3.object.key", "%FF", Rejected("bad-key-encoding", "s3.object.key: not UTF-8 once decoded")),
        ("Records.0.s3.object.size", True, Rejected("bad-type", "s3.object.size: not a number")),
        ("Records.0.s3.object.size", [], Rejected("bad-type", "s3.object.size: not a number")),
        ("Records.0.s3.object.size", 2**63, Rejected("bad-value", "s3.object.size: out of range")),
        ("Records.0.s3.object.versionId", "v" * 1025, Rejected("bad-value", "s3.object.versionId: not a version ID")),
        ("Records.0.eventTime", -0.001, Rejected("bad-time", "eventTime: out of range")),
        ("Records.0.eventTime", "2200-01-01T00:00:00Z", Rejected("bad-time", "eventTime: out of range")),
    ],
)
def test_values_just_past_what_s3_makes_are_refused(path: str, value: Any, expected: Rejected):
    assert one(changed(RECORD, path, value)) == expected


@pytest.mark.parametrize(
    ("path", "value", "field", "expected"),
    [
        ("Records.0.s3.object.size", 2**63 - 1, "size", 2**63 - 1),
        ("Records.0.s3.object.versionId", "v" * 1024, "version_id", "v" * 1024),
        ("Records.0.s3.object.eTag", '"abcX"', "etag", "abcX"),
        ("Records.0.eventTime", 0, "event_time", datetime(1970, 1, 1, tzinfo=UTC)),
        ("Records.0.eventName", "ObjectCreated:Foo", "reason", "Foo"),
        ("Records.0.eventName", "ObjectCreated", "reason", None),
    ],
)
def test_values_at_the_edge_of_what_s3_makes_are_taken(path: str, value: Any, field: str, expected: Any):
    assert getattr(one(changed(RECORD, path, value)), field) == expected


def test_an_account_is_twelve_digits():
    assert one(changed(DOCUMENTS["eventbridge-object-created.json"], "account", "1234")) == Rejected(
        "bad-value", "account: not an account ID"
    )


def test_a_destination_arn_whose_name_holds_a_colon_is_no_bucket_name():
    path = "Records.0.replicationEventData.destinationBucket"
    assert one(changed(REPLICATION, path, "arn:aws:s3:::b:c")) == Rejected(
        "bad-value", "replicationEventData.destinationBucket: not a bucket name"
    )


def test_a_topics_account_is_the_fifth_field_of_its_arn():
    assert topic_account("arn:aws:sns:eu-west-1:210987654321:forwarder") == "210987654321"
