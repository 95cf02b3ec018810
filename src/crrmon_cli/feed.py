"""Feeding the monitor what it missed: S3 EventBridge events, shaped exactly as AWS sends them.

`reconcile --feed` finds object versions the monitor never heard of and sends, for each, the event
S3 would have sent ("Object Created", or "Object Deleted" for a delete marker) to the EventsQueue,
as the EventBridge rule delivers it: the whole event as the message body.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

REPLAYED_IP = "127.0.0.1"  # source-ip-address of a replayed event: it comes from this tool, not a client


def object_event(
    *,
    bucket: str,
    key: str,
    version_id: str,
    region: str,
    account: str,
    time_s: float,
    size: int | None = None,
    etag: str | None = None,
    delete_marker: bool = False,
) -> dict:
    """An EventBridge S3 "Object Created" / "Object Deleted" event (key not URL-encoded, time in whole seconds)."""
    obj: dict = {"key": key}
    if not delete_marker:
        if size is not None:
            obj["size"] = size
        if etag:
            obj["etag"] = etag
    obj["version-id"] = version_id
    detail = {
        "version": "0",
        "bucket": {"name": bucket},
        "object": obj,
        "request-id": "crrmon-reconcile",
        "requester": account,
        "source-ip-address": REPLAYED_IP,
        "reason": "DeleteObject" if delete_marker else "PutObject",
    }
    if delete_marker:
        detail["deletion-type"] = "Delete Marker Created"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Deleted" if delete_marker else "Object Created",
        "source": "aws.s3",
        "account": account,
        "time": datetime.fromtimestamp(int(time_s), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": detail,
    }


def send(sqs, queue_url: str, events: list[dict]) -> int:
    """SendMessageBatch, 10 at a time. Returns how many were accepted."""
    sent = 0
    for start in range(0, len(events), 10):
        chunk = events[start : start + 10]
        answer = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "MessageBody": json.dumps(e)} for i, e in enumerate(chunk)],
        )
        sent += len(answer.get("Successful", []))
    return sent
