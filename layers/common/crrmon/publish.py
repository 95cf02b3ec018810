"""Everything the monitor tells the world follows a persisted change of status.

The matcher (and, for TTL removals, the sweeper) hands over the status changes it saw in the table's
stream; this module turns them into archive lines (Firehose), EMF metrics and alert digests (SNS, in
the forms crrmon.digest renders).
A crash after the verdict was written and before it was published loses nothing: the stream
delivers the record again, and the archive line carries the same `record_id`.

Archive records are gzip members: each Firehose record is the gzip of newline-terminated JSON lines,
and the delivery stream writes records to S3 as they come (no compression of its own), so an archive
object is a valid gzip file of several members (`.json.gz`). Compressing before Firehose divides the
bytes its per-stream quota counts by about six (docs/internals.md, "The archive").
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from crrmon.bands import size_band
from crrmon.digest import UNKNOWN_SOURCE, Digest, Monitor, sns_message
from crrmon.metrics import Counters, pair_dimensions
from crrmon.model import Status
from crrmon.rpo import DEFAULT_CLASS
from crrmon.store import split_pk

ALERT_STATUSES = (Status.OVERDUE, Status.FAILED, Status.MISMATCH, Status.EXPIRED)
# Firehose takes records up to 1,000 KiB (1,024,000 bytes). Lines are packed up to 1,000,000 bytes
# before compression: gzip adds at most a few hundred bytes even to data it cannot compress.
FIREHOSE_RECORD_BYTES = 1_000_000
FIREHOSE_BATCH_RECORDS = 500
FIREHOSE_BATCH_BYTES = 4_000_000
DIGEST_SAMPLES = 10
GZIP_MAGIC = b"\x1f\x8b"

# PutRecordBatch refusals worth sending again, whole call or per record. ServiceUnavailableException
# is how Firehose says the stream's quota (bytes, records or requests per second) is exceeded.
THROTTLING_CODES = frozenset({"ServiceUnavailableException", "ThrottlingException"})
TRANSIENT_CODES = THROTTLING_CODES | {"InternalFailure", "InternalFailureException", "ServiceUnavailable"}
# Backoff with full jitter, within a budget per publish: a third of the functions' 60 s timeout, so a
# throttled batch still ends in time to be handed back to its stream (or queue) and retried.
RETRY_SECONDS = 20.0
BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 4.0


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


def rpo_class(item: dict[str, Any]) -> str:
    """The item's RPO class (crrmon.rpo); items written without a policy are in the default class."""
    return item.get("rpo_c") or DEFAULT_CLASS


def object_size(item: dict[str, Any]) -> int | None:
    """The version's size in bytes: the source's, or the replica's when only the replica was seen."""
    return item["s_size"] if item.get("s_size") is not None else item.get("r_size")


def archive_line(change: Change, *, now_ms: int, default_rpo_s: int | None = None) -> dict[str, Any]:
    """The archive's JSON line for a final verdict. `default_rpo_s`: RpoSeconds, the RPO of items that
    carry no class of their own (written without a policy)."""
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
        "size_band": size_band(object_size(item)),
        "replica_size": item.get("r_size"),
        "source_etag": item.get("s_etag"),
        "replica_etag": item.get("r_etag"),
        "status": change.status.value,
        "reason": item.get("reason") if change.status is not Status.EXPIRED else "removed by TTL before a verdict",
        "missed_rpo": bool(item.get("missed_rpo")) or change.status is Status.EXPIRED,
        "rpo_class": rpo_class(item),
        "rpo_seconds": item.get("rpo_s") or default_rpo_s,
        "verified_by": item.get("verified_by"),
        "source_time": iso(item.get("s_time")),
        "replica_time": iso(item.get("r_time")),
        "latency_ms": item.get("latency_ms"),
        "detected_at": iso(decided or now_ms),
    }


def pack_records(lines: Iterable[dict[str, Any]]) -> list[bytes]:
    """Newline-terminated JSON lines, packed into as few Firehose records as fit, each record one gzip
    member (mtime 0: the same lines always make the same bytes)."""
    chunks: list[bytes] = []
    current = bytearray()
    for line in lines:
        encoded = (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        if current and len(current) + len(encoded) > FIREHOSE_RECORD_BYTES:
            chunks.append(bytes(current))
            current = bytearray()
        current += encoded
    if current:
        chunks.append(bytes(current))
    return [gzip.compress(chunk, mtime=0) for chunk in chunks]


def archive_text(data: bytes) -> bytes:
    """The JSON lines of one archive object, whatever its form: gzip members (one per Firehose record),
    one gzip stream, plain lines, or a mix of these (records sent while a stack update changed the
    form). JSON text never holds the byte 0x1f (control characters are escaped), so plain lines end
    where a gzip member begins."""
    out = bytearray()
    rest = data
    while rest:
        if rest.startswith(GZIP_MAGIC):
            member = zlib.decompressobj(wbits=31)  # one gzip member; what follows is left in unused_data
            text = member.decompress(rest)
            if not member.eof:
                raise ValueError("archive object ends inside a gzip member")
            out += archive_text(text) if text.startswith(GZIP_MAGIC) else text
            rest = member.unused_data
        else:
            end = rest.find(GZIP_MAGIC)
            end = len(rest) if end < 0 else end
            out += rest[:end]
            rest = rest[end:]
    return bytes(out)


def read_archive(data: bytes) -> list[dict[str, Any]]:
    """Every line of one archive object (S3 body), in order."""
    return [json.loads(raw) for raw in archive_text(data).decode("utf-8").splitlines() if raw.strip()]


def is_verdict(line: dict[str, Any]) -> bool:
    """A verdict's line. The archive also holds lines of another `kind` (a pair's daily proof,
    crrmon.proof), which readers of verdicts pass over (in Athena: `kind IS NULL`)."""
    return line.get("kind") is None


class PublishError(Exception):
    """Archive or alert delivery failed; the caller retries the batch."""


class Publisher:
    def __init__(
        self,
        *,
        firehose=None,
        delivery_stream: str = "",
        sns=None,
        topic_arn: str = "",
        default_rpo_s: int | None = None,
        rpo_classes: bool = False,
        stack_name: str = "",
        retry_seconds: float = RETRY_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ):
        self.firehose = firehose
        self.delivery_stream = delivery_stream
        self.sns = sns
        self.topic_arn = topic_arn
        self.default_rpo_s = default_rpo_s  # RpoSeconds: archived as the RPO of items without a class
        self.rpo_classes = rpo_classes  # a policy is configured: metrics carry the RpoClass dimension
        self.monitor = Monitor.of(topic_arn, stack_name)  # named by the `crrmon` command each digest suggests
        self.retry_seconds = retry_seconds
        self.sleep, self.clock, self.jitter = sleep, clock, jitter

    def publish(self, changes: list[Change], counters: Counters, *, now_ms: int) -> None:
        if not changes:
            return
        finals = [c for c in changes if c.status.final]
        for change in changes:
            count_metrics(change, counters, by_class=self.rpo_classes)
        if finals and self.delivery_stream:
            self.archive([archive_line(c, now_ms=now_ms, default_rpo_s=self.default_rpo_s) for c in finals], counters)
        if self.topic_arn:
            for digest in digests(changes):
                self.sns.publish(
                    TopicArn=self.topic_arn,
                    Subject=digest.subject,
                    MessageStructure="json",
                    Message=sns_message(digest, self.monitor),
                )

    def archive(self, lines: list[dict[str, Any]], counters: Counters) -> None:
        records = pack_records(lines)
        deadline = self.clock() + self.retry_seconds
        batch: list[bytes] = []
        size = 0
        for record in records:
            if batch and (len(batch) == FIREHOSE_BATCH_RECORDS or size + len(record) > FIREHOSE_BATCH_BYTES):
                self._put(batch, counters, deadline)
                batch, size = [], 0
            batch.append(record)
            size += len(record)
        if batch:
            self._put(batch, counters, deadline)

    def _put(self, records: list[bytes], counters: Counters, deadline: float) -> None:
        """PutRecordBatch until every record is in. Throttling and transient failures, of the whole call
        or of single records, are sent again after a jittered, growing pause; past the deadline, or on
        a refusal that waiting cannot cure, PublishError hands the batch back for its source to retry
        (a line sent twice carries the same record_id)."""
        attempt = 0
        while True:
            try:
                answer = self.firehose.put_record_batch(
                    DeliveryStreamName=self.delivery_stream, Records=[{"Data": r} for r in records]
                )
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
                if code not in TRANSIENT_CODES and status < 500:
                    raise PublishError(f"Firehose refused PutRecordBatch: {code}") from error
                codes = [code] * len(records)
            except BotoCoreError as error:
                # No answer (connection reset, timeout): the records may have arrived; a copy is harmless.
                codes = [type(error).__name__] * len(records)
            else:
                if not answer.get("FailedPutCount"):
                    return
                codes = [res.get("ErrorCode") for res in answer["RequestResponses"]]
                lasting = sorted({c for c in codes if c and c not in TRANSIENT_CODES})
                if lasting:
                    raise PublishError(f"Firehose refused records: {', '.join(lasting)}")
                records = [r for r, code in zip(records, codes, strict=True) if code]
                codes = [c for c in codes if c]
            throttled = sum(1 for c in codes if c in THROTTLING_CODES)
            if throttled:
                counters.add("ArchiveThrottled", throttled)
            pause = self.jitter() * min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)
            if self.clock() + pause > deadline:
                raise PublishError(
                    f"Firehose still refused {len(records)} records ({codes[0]}) after {attempt + 1} attempts"
                )
            self.sleep(pause)
            attempt += 1


def count_metrics(change: Change, counters: Counters, *, by_class: bool = False) -> None:
    """The change's metrics, per pair; `by_class` (a policy is configured): latency and lateness also
    per RPO class (a bounded set of names, crrmon.rpo; not per pair and class, which would multiply
    the metrics). Latency also per pair and size band (crrmon.bands: 7 names, so at most 7 metrics per
    pair, billed only for the bands that receive a value)."""
    item = change.item
    dims = pair_dimensions(item.get("src"), item["dest"])
    classes = (("RpoClass", rpo_class(item)),) if by_class else ()
    status = change.status
    if status is Status.COMPLETED:
        counters.add("ObjectsReplicated", 1, dims)
        counters.add("BytesReplicated", item.get("s_size") or item.get("r_size") or 0, dims)
        if item.get("latency_ms") is not None:
            by_size = (*dims, ("SizeBand", size_band(object_size(item))))
            counters.add("ReplicationLatency", item["latency_ms"], dims, classes, by_size)
        if item.get("missed_rpo"):
            counters.add("ObjectsReplicatedLate", 1, dims, classes)
    elif status is Status.OVERDUE:
        counters.add("ObjectsOverdue", 1, dims, classes)
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


def digests(changes: list[Change]) -> list[Digest]:
    """At most one digest per pair and status/reason: counts and up to 10 sample keys."""
    groups: dict[tuple[str, str, str, str], list[Change]] = defaultdict(list)
    for change in changes:
        if change.status in ALERT_STATUSES:
            item = change.item
            reason = "removed by TTL" if change.status is Status.EXPIRED else item.get("reason") or ""
            groups[(item.get("src") or UNKNOWN_SOURCE, item["dest"], change.status.value, reason)].append(change)
    out = []
    for (source, dest, status, reason), members in sorted(groups.items()):
        classes = None
        if any("rpo_c" in change.item for change in members):  # under a policy: how many of each RPO class
            classes = dict(sorted(Counter(rpo_class(change.item) for change in members).items()))
        samples = tuple(split_pk(change.item["pk"])[::-1] for change in members[:DIGEST_SAMPLES])
        out.append(Digest(source, dest, status, reason, len(members), samples, classes))
    return out
