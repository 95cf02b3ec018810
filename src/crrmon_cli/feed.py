"""Feeding the monitor what it missed: S3 EventBridge events, shaped exactly as AWS sends them.

`reconcile --feed` finds object versions the monitor never heard of and sends, for each, the event
S3 would have sent ("Object Created", or "Object Deleted" for a delete marker) to the EventsQueue,
as the EventBridge rule delivers it: the whole event as the message body.
"""

from __future__ import annotations

import json

from crrmon.events import eventbridge_object_event

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
    """An EventBridge S3 "Object Created" / "Object Deleted" event for a version found by reconcile."""
    return eventbridge_object_event(
        bucket=bucket,
        key=key,
        version_id=version_id,
        time_s=time_s,
        region=region,
        account=account,
        size=None if delete_marker else size,
        etag=None if delete_marker else etag,
        reason="DeleteObject" if delete_marker else "PutObject",
        deletion_type="Delete Marker Created" if delete_marker else None,
        request_id="crrmon-reconcile",
        source_ip=REPLAYED_IP,
    )


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
