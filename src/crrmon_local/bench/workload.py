"""What the handlers are fed in the benchmark: SQS batches of S3 events, stream records, timers."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from crrmon.store import make_pk
from crrmon_local import emulator
from crrmon_local.bench.canned import ACCOUNT, ENVIRONMENT, REGION

SOURCE, DESTINATION = "bench-src", "bench-dst"
_serializer = TypeSerializer()
_sequence = itertools.count(10**20)


def version_id() -> str:
    return uuid.uuid4().hex


def sqs_record(body: str) -> dict[str, Any]:
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "r",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:bench-EventsQueue",
        "awsRegion": REGION,
    }


def source_events(n: int) -> dict[str, Any]:
    """An SQS event of `n` EventBridge "Object Created" events for new versions in the source bucket."""
    now = time.time()
    bodies = [
        emulator.eventbridge_object_event(
            bucket=SOURCE,
            key=f"data/2026/11/27/part-{i:05d}.parquet",
            version_id=version_id(),
            time_s=now,
            region=REGION,
            account=ACCOUNT,
            size=180_000 + i,
            etag=uuid.uuid4().hex,
        )
        for i in range(n)
    ]
    return {"Records": [sqs_record(b) for b in bodies]}


def _image(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items() if v is not None}


def _stream_record(name: str, old: dict | None, new: dict) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ApproximateCreationDateTime": int(time.time()),
        "Keys": {"pk": {"S": new["pk"]}, "dest": {"S": new["dest"]}},
        "NewImage": _image(new),
        "SequenceNumber": str(next(_sequence)),
        "SizeBytes": 400,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if old is not None:
        data["OldImage"] = _image(old)
    return {
        "eventID": uuid.uuid4().hex,
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": data,
        "eventSourceARN": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{ENVIRONMENT['TABLE_NAME']}/stream/x",
    }


def object_items(i: int) -> tuple[dict, dict]:
    """One object version's item as the stream shows it: source seen, then the replica seen with its
    verdict (an on-time replica with the same size and ETag writes both in one UpdateItem)."""
    now_ms = int(time.time() * 1000)
    etag = uuid.uuid4().hex
    source = {
        "pk": make_pk(version_id(), f"data/2026/11/27/part-{i:05d}.parquet"),
        "dest": DESTINATION,
        "first_seen": now_ms,
        "due": now_ms // 1000 + 904,
        "expires_at": now_ms // 1000 + 90000,
        "src": SOURCE,
        "sreg": REGION,
        "dreg": "us-west-2",
        "rid": "to-west",
        "s_etag": etag,
        "s_size": 180_000 + i,
        "s_time": now_ms - 300,
    }
    final = {
        **source,
        "r_etag": etag,
        "r_size": 180_000 + i,
        "r_time": now_ms + 4_200,
        "status": "COMPLETED",
        "verified_by": "etag",
        "latency_ms": 4_500,
        "missed_rpo": False,
        "decided_at": now_ms + 5_000,
    }
    return source, final


def stream_records(n_records: int) -> dict[str, Any]:
    """`n_records` stream records, two per object (INSERT with the source, MODIFY with the replica and its verdict)."""
    records: list[dict[str, Any]] = []
    i = 0
    while len(records) < n_records:
        source, final = object_items(i)
        records.extend([_stream_record("INSERT", None, source), _stream_record("MODIFY", source, final)])
        i += 1
    return {"Records": records[:n_records]}


def timer_records(n: int) -> dict[str, Any]:
    now = int(time.time())
    bodies = [json.dumps({"pk": make_pk(version_id(), f"k/{i}"), "due": now - 1, "attempt": 0}) for i in range(n)]
    return {"Records": [sqs_record(b) for b in bodies]}


def final_item_answer(_request) -> tuple[int, dict[str, str], bytes]:
    """A Query answer holding one item that already has its verdict (the happy path at the deadline)."""
    _, final = object_items(0)
    body = json.dumps({"Items": [_image(final)], "Count": 1, "ScannedCount": 1}, default=int)
    return 200, {"Content-Type": "application/x-amz-json-1.0"}, body.encode()
