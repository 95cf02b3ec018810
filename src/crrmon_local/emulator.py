"""What moto lacks, emulated in one place.

moto stores replication configurations but does not replicate, has no `x-amz-replication-status`,
and gives every object version its own random ID. S3 replication keeps the source's key, version
ID and data, marks the source version PENDING -> COMPLETED | FAILED and the replica REPLICA. This
module produces those facts inside moto's in-process S3 backend (the same process as moto server
when it runs threaded), so that the monitor reads them through the real S3 API.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import quote_plus

from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import FakeKey, s3_backends

_install_lock = threading.Lock()
_installed = False


def install() -> None:
    """Teach moto's HEAD/GET answers the `x-amz-replication-status` header (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        plain = FakeKey.response_dict.fget

        def response_dict(self):
            headers = plain(self)
            status = getattr(self, "replication_status", None)
            if status:
                headers["x-amz-replication-status"] = status
            return headers

        FakeKey.response_dict = property(response_dict)
        _installed = True


def _backend(account_id: str = DEFAULT_ACCOUNT_ID):
    return s3_backends[account_id]["aws"]


def object_version(bucket: str, key: str, version_id: str, *, account_id: str = DEFAULT_ACCOUNT_ID):
    found = _backend(account_id).get_object(bucket, key, version_id=version_id, return_delete_marker=True)
    if found is None:
        raise KeyError(f"no version {version_id} of {key!r} in {bucket}")
    return found


def set_replication_status(
    bucket: str, key: str, version_id: str, status: str | None, *, account_id: str = DEFAULT_ACCOUNT_ID
) -> None:
    """PENDING, COMPLETED, FAILED, REPLICA, or None (not in scope of any rule)."""
    install()
    object_version(bucket, key, version_id, account_id=account_id).replication_status = status


def replicate(
    s3,
    source_bucket: str,
    key: str,
    version_id: str,
    destination_bucket: str,
    *,
    body: bytes | None = None,
    encryption: str | None = None,
    etag: str | None = None,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> dict:
    """Land a replica of one source version: same key, same version ID, status REPLICA.

    `body` replaces the data (a corrupted replica); `encryption` and `etag` model a replica
    re-encrypted under another key, whose ETag is not the source's. Returns the replica's facts as
    {"size", "etag"}. The source's status is left to the caller (COMPLETED only when every
    destination has its replica).
    """
    install()
    source = object_version(source_bucket, key, version_id, account_id=account_id)
    data = source.value if body is None else body
    extra = {}
    if encryption:
        extra["ServerSideEncryption"] = encryption
    s3.put_object(Bucket=destination_bucket, Key=key, Body=data, **extra)
    replica = _backend(account_id).get_object(destination_bucket, key)
    replica._version_id = version_id
    replica.replication_status = "REPLICA"
    if etag is not None:
        replica._etag = etag
    return {"size": replica.size, "etag": replica.etag.strip('"')}


def replicate_delete_marker(
    s3, destination_bucket: str, key: str, version_id: str, *, account_id: str = DEFAULT_ACCOUNT_ID
) -> None:
    """Land a replica of a source delete marker: a delete marker with the same version ID.

    The destination must already hold a replica of the key (S3 would have replicated it before).
    """
    s3.delete_object(Bucket=destination_bucket, Key=key)
    versions = _backend(account_id).get_bucket(destination_bucket).keys.getlist(key)
    if not versions:
        raise KeyError(f"{destination_bucket} holds no version of {key!r} to put a delete marker on")
    marker = versions[-1]
    marker._version_id = version_id


# ---- S3 events in AWS's exact shapes (moto's own S3 -> EventBridge events differ from AWS's) ----


def _iso_seconds(epoch_s: float) -> str:
    return datetime.fromtimestamp(int(epoch_s), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_millis(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sequencer() -> str:
    return f"{random.getrandbits(72):018X}"


def eventbridge_object_event(
    *,
    bucket: str,
    key: str,
    version_id: str,
    time_s: float,
    region: str,
    account: str = DEFAULT_ACCOUNT_ID,
    size: int | None = None,
    etag: str | None = None,
    reason: str = "PutObject",
    deletion_type: str | None = None,
) -> str:
    """An EventBridge "Object Created" (or, with deletion_type, "Object Deleted") event from S3."""
    obj: dict = {"key": key}
    if size is not None:
        obj["size"] = size
    if etag is not None:
        obj["etag"] = etag
    obj["version-id"] = version_id
    obj["sequencer"] = _sequencer()
    detail = {
        "version": "0",
        "bucket": {"name": bucket},
        "object": obj,
        "request-id": uuid.uuid4().hex[:16].upper(),
        "requester": account,
        "source-ip-address": "203.0.113.10",
        "reason": reason,
    }
    if deletion_type:
        detail["deletion-type"] = deletion_type
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Object Deleted" if deletion_type else "Object Created",
            "source": "aws.s3",
            "account": account,
            "time": _iso_seconds(time_s),
            "region": region,
            "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": detail,
        }
    )


def s3_notification(
    *,
    event_name: str,
    bucket: str,
    key: str,
    version_id: str,
    time_s: float,
    region: str,
    size: int | None = None,
    etag: str | None = None,
    replication: dict | None = None,
) -> dict:
    """One S3 event notification record (eventVersion 2.1, or 2.2 for replication events)."""
    obj: dict = {"key": quote_plus(key, safe="/")}
    if size is not None:
        obj["size"] = size
    if etag is not None:
        obj["eTag"] = etag
    obj["versionId"] = version_id
    obj["sequencer"] = _sequencer()
    record = {
        "eventVersion": "2.2" if replication else "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": _iso_millis(time_s),
        "eventName": event_name,
        "userIdentity": {"principalId": "s3.amazonaws.com" if replication else "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.10"},
        "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": "example"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "crr-monitor",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3EXAMPLE"}, "arn": f"arn:aws:s3:::{bucket}"},
            "object": obj,
        },
    }
    if replication:
        record["replicationEventData"] = replication
    return record


def replication_failure(
    *,
    bucket: str,
    key: str,
    version_id: str,
    destination_bucket: str,
    reason: str,
    rule_id: str,
    time_s: float,
    region: str,
    size: int | None = None,
    etag: str | None = None,
) -> dict:
    """An s3:Replication:OperationFailedReplication record."""
    return s3_notification(
        event_name="Replication:OperationFailedReplication",
        bucket=bucket,
        key=key,
        version_id=version_id,
        time_s=time_s,
        region=region,
        size=size,
        etag=etag,
        replication={
            "replicationRuleId": rule_id,
            "destinationBucket": f"arn:aws:s3:::{destination_bucket}",
            "s3Operation": "OBJECT_PUT",
            "requestTime": _iso_millis(time_s),
            "failureReason": reason,
        },
    )


def in_sns(records: list[dict], *, topic_arn: str) -> str:
    """S3 notification records as they reach the events queue through an SNS topic."""
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic_arn,
            "Subject": "Amazon S3 Notification",
            "Message": json.dumps({"Records": records}),
            "Timestamp": _iso_millis(time.time()),
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.example/cert.pem",
            "UnsubscribeURL": "https://sns.example/unsubscribe",
        }
    )
