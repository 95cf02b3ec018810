"""Everything the monitor tells the world follows a persisted change of status.

The matcher (and, for TTL removals, the sweeper) hands over the status changes it saw in the table's
stream; this module turns them into archive lines (Firehose), EMF metrics and alert digests (SNS).
A crash after the verdict was written and before it was published loses nothing: the stream
delivers the record again, and the archive line carries the same `record_id`.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crrmon.metrics import Counters, pair_dimensions
from crrmon.model import Status
from crrmon.store import split_pk

ALERT_STATUSES = (Status.OVERDUE, Status.FAILED, Status.MISMATCH, Status.EXPIRED)
FIREHOSE_RECORD_BYTES = 1_000_000  # Firehose takes records up to 1,000 KiB
FIREHOSE_BATCH_RECORDS = 500
FIREHOSE_BATCH_BYTES = 4_000_000
DIGEST_SAMPLES = 10


@dataclass(frozen=True)
class Change:
    """One item's status moved from `old_status` to `status` (EXPIRED: the item was removed by TTL)."""

    item: dict[str, Any]
    status: Status
    old_status: str | None = None


def iso(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_id(item: dict[str, Any], status: Status) -> str:
    """Stable dedup id: the same for every copy of one verdict."""
    raw = f"{item['pk']}\x00{item['dest']}\x00{status.value}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def archive_line(change: Change, *, now_ms: int) -> dict[str, Any]:
    item = change.item
    version_id, key = split_pk(item["pk"])
    decided = item.get("decided_at") if change.status is not Status.EXPIRED else now_ms
    return {
        "record_id": record_id(item, change.status),
        "source_bucket": item.get("src"),
        "source_region": item.get("sreg"),
        "destination_bucket": item["dest"],
        "destination_region": item.get("dreg"),
        "key": key,
        "version_id": version_id,
        "size": item.get("s_size"),
        "replica_size": item.get("r_size"),
        "source_etag": item.get("s_etag"),
        "replica_etag": item.get("r_etag"),
        "status": change.status.value,
        "reason": item.get("reason") if change.status is not Status.EXPIRED else "removed by TTL before a verdict",
        "missed_rpo": bool(item.get("missed_rpo")) or change.status is Status.EXPIRED,
        "verified_by": item.get("verified_by"),
        "source_time": iso(item.get("s_time")),
        "replica_time": iso(item.get("r_time")),
        "latency_ms": item.get("latency_ms"),
        "detected_at": iso(decided or now_ms),
    }


def pack_records(lines: Iterable[dict[str, Any]]) -> list[bytes]:
    """Newline-terminated JSON lines, packed into as few Firehose records as fit."""
    records: list[bytes] = []
    current = bytearray()
    for line in lines:
        encoded = (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        if current and len(current) + len(encoded) > FIREHOSE_RECORD_BYTES:
            records.append(bytes(current))
            current = bytearray()
        current += encoded
    if current:
        records.append(bytes(current))
    return records


class PublishError(Exception):
    """Archive or alert delivery failed; the caller retries the batch."""


class Publisher:
    def __init__(self, *, firehose=None, delivery_stream: str = "", sns=None, topic_arn: str = ""):
        self.firehose = firehose
        self.delivery_stream = delivery_stream
        self.sns = sns
        self.topic_arn = topic_arn

    def publish(self, changes: list[Change], counters: Counters, *, now_ms: int) -> None:
        if not changes:
            return
        finals = [c for c in changes if c.status.final]
        for change in changes:
            count_metrics(change, counters)
        if finals and self.delivery_stream:
            self.archive([archive_line(c, now_ms=now_ms) for c in finals])
        if self.topic_arn:
            for subject, message in digests(changes):
                self.sns.publish(TopicArn=self.topic_arn, Subject=subject, Message=message)

    def archive(self, lines: list[dict[str, Any]]) -> None:
        records = pack_records(lines)
        batch: list[bytes] = []
        size = 0
        for record in records:
            if batch and (len(batch) == FIREHOSE_BATCH_RECORDS or size + len(record) > FIREHOSE_BATCH_BYTES):
                self._put(batch)
                batch, size = [], 0
            batch.append(record)
            size += len(record)
        if batch:
            self._put(batch)

    def _put(self, records: list[bytes]) -> None:
        for _attempt in range(3):
            answer = self.firehose.put_record_batch(
                DeliveryStreamName=self.delivery_stream, Records=[{"Data": r} for r in records]
            )
            if not answer.get("FailedPutCount"):
                return
            records = [r for r, res in zip(records, answer["RequestResponses"], strict=True) if res.get("ErrorCode")]
        raise PublishError(f"Firehose refused {len(records)} records after 3 attempts")


def count_metrics(change: Change, counters: Counters) -> None:
    item = change.item
    dims = pair_dimensions(item.get("src"), item["dest"])
    status = change.status
    if status is Status.COMPLETED:
        counters.add("ObjectsReplicated", 1, dims)
        counters.add("BytesReplicated", item.get("s_size") or item.get("r_size") or 0, dims)
        if item.get("latency_ms") is not None:
            counters.add("ReplicationLatency", item["latency_ms"], dims)
        if item.get("missed_rpo"):
            counters.add("ObjectsReplicatedLate", 1, dims)
    elif status is Status.OVERDUE:
        counters.add("ObjectsOverdue", 1, dims)
    elif status is Status.FAILED:
        counters.add("ObjectsFailed", 1, dims, (*dims, ("Reason", (item.get("reason") or "unknown")[:64])))
    elif status is Status.MISMATCH:
        counters.add("ChecksumMismatches", 1, dims)
    elif status is Status.SOURCE_DELETED:
        counters.add("SourcesDeleted", 1, dims)
    elif status is Status.NOT_IN_SCOPE:
        counters.add("ObjectsNotInScope", 1, dims)
    elif status is Status.EXPIRED:
        counters.add("ObjectsExpired", 1, dims)


def digests(changes: list[Change]) -> list[tuple[str, str]]:
    """At most one message per pair and status/reason: counts and up to 10 sample keys."""
    groups: dict[tuple[str, str, str, str], list[Change]] = defaultdict(list)
    for change in changes:
        if change.status in ALERT_STATUSES:
            item = change.item
            reason = "removed by TTL" if change.status is Status.EXPIRED else item.get("reason") or ""
            groups[(item.get("src") or "unknown", item["dest"], change.status.value, reason)].append(change)
    out = []
    for (source, dest, status, reason), members in sorted(groups.items()):
        subject = f"CRR Monitor: {len(members)} {status} {source} -> {dest}"[:100]
        samples = []
        for change in members[:DIGEST_SAMPLES]:
            version_id, key = split_pk(change.item["pk"])
            samples.append({"key": key, "version_id": version_id})
        body = {
            "source_bucket": source,
            "destination_bucket": dest,
            "status": status,
            "reason": reason or None,
            "count": len(members),
            "samples": samples,
        }
        out.append((subject, json.dumps(body, ensure_ascii=False, indent=1)))
    return out
