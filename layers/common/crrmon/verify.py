"""Is the replica the same data as its source? Decided from the evidence an item holds.

Size is always compared. An ETag is only compared where ETags are comparable: both sides' encryption
known to leave the ETag an MD5 (none or SSE-S3) and, for multipart objects, the same part count.
A full-object checksum (HEAD with ChecksumMode) wins when both sides have one of the same algorithm.
When the events alone cannot tell (ETags differ, encryption unknown), the item asks for a HEAD.
"""

from __future__ import annotations

import math
from typing import Any

from crrmon.model import Status
from crrmon.store import Verdict

NEEDS_HEAD = "needs-head"
MD5_ETAG_ENCRYPTIONS = ("none", "AES256")  # ETag stays an MD5 of the data (single part)
# A side is observed when any of these is known: an event gives the time (and size), a HEAD at least the
# encryption, even of an SSE-C version it can say nothing else about.
OBSERVED = ("time", "size", "dm", "enc")


def deadline_s(written_ms: int, size: int | None, *, rpo_seconds: int, throughput_mbps: float) -> int:
    """S3's time of the version + RPO + time to copy `size` bytes at the expected throughput."""
    transfer = (size or 0) / (throughput_mbps * 1_000_000)
    return math.ceil(written_ms / 1000 + rpo_seconds + transfer)


def multipart_parts(etag: str | None) -> int | None:
    if etag and "-" in etag:
        tail = etag.rsplit("-", 1)[1]
        if tail.isdigit():
            return int(tail)
    return None


def has_source(item: dict[str, Any]) -> bool:
    return any(f"s_{name}" in item for name in OBSERVED)


def has_replica(item: dict[str, Any]) -> bool:
    return any(f"r_{name}" in item for name in OBSERVED)


def timing(item: dict[str, Any]) -> tuple[int | None, bool]:
    """(latency in ms or None when either time is unknown, whether the replica missed its deadline)."""
    s_time, r_time = item.get("s_time"), item.get("r_time")
    latency = r_time - s_time if s_time is not None and r_time is not None else None
    if latency is not None:
        latency = max(latency, 0)
    if r_time is not None and item.get("due") is not None:
        # S3's own time of the replica decides: an item marked OVERDUE at its deadline because the replica's
        # event was still on its way (or the HEAD budget was spent) did not miss its RPO if S3 wrote the
        # replica in time.
        return latency, r_time > item["due"] * 1000
    # The replica's time is unknown (found by HEAD): what the deadline found stands (an item found late is
    # OVERDUE: `Store.mark_overdue` sets the status and `missed_rpo` together).
    return latency, item.get("status") == Status.OVERDUE.value


def decide(item: dict[str, Any], *, verify_mode: str) -> Verdict | str | None:
    """The verdict the item's evidence supports, NEEDS_HEAD, or None (nothing to decide yet)."""
    status = item.get("status")
    if status and Status(status).final:
        return None
    if item.get("oos"):
        return Verdict(Status.NOT_IN_SCOPE, reason=item["oos"])
    headed = bool(item.get("headed"))
    if not has_replica(item):
        if item.get("fail"):
            # S3's failure report (OperationFailedReplication), with its reason. A report is a message
            # anyone who may publish to the topic could forge; S3's own replication status cannot be:
            # the sweeper confirms it (crrmon.sweep) before the FAILED is written.
            if headed:
                return Verdict(Status.FAILED, reason=item["fail"], missed_rpo=timing(item)[1])
            return NEEDS_HEAD
        return None
    if not has_source(item):
        return None
    if item.get("xacct") and not headed:
        return NEEDS_HEAD  # an observation from another account: S3 confirms it before the verdict
    latency, late = timing(item)

    def verdict(status: Status, reason: str | None = None, by: str | None = None) -> Verdict:
        return Verdict(status, reason=reason, verified_by=by, latency_ms=latency, missed_rpo=late)

    s_dm, r_dm = bool(item.get("s_dm")), bool(item.get("r_dm"))
    if s_dm or r_dm:
        if s_dm and r_dm:
            return verdict(Status.COMPLETED, by="delete-marker")
        return verdict(Status.MISMATCH, reason="delete marker on one side only")
    s_size, r_size = item.get("s_size"), item.get("r_size")
    if s_size is not None and r_size is not None and s_size != r_size:
        return verdict(Status.MISMATCH, reason=f"size differs: source {s_size} bytes, replica {r_size} bytes")
    s_ck, r_ck = item.get("s_ck"), item.get("r_ck")
    if s_ck and r_ck and s_ck.split(":", 1)[0] == r_ck.split(":", 1)[0]:
        if s_ck == r_ck:
            return verdict(Status.COMPLETED, by="checksum")
        return verdict(Status.MISMATCH, reason=f"{s_ck.split(':', 1)[0]} checksum differs")
    if verify_mode == "checksum" and not headed:
        return NEEDS_HEAD
    if s_size is None or r_size is None:
        # A side with no size: S3 said no more than that the version exists (an SSE-C object's HEAD).
        return verdict(Status.COMPLETED, by="presence") if headed else NEEDS_HEAD
    if verify_mode == "size":
        return verdict(Status.COMPLETED, by="size")
    s_etag, r_etag = item.get("s_etag"), item.get("r_etag")
    if s_etag and r_etag and s_etag == r_etag:
        return verdict(Status.COMPLETED, by="etag")
    if not (s_etag and r_etag) or multipart_parts(s_etag) != multipart_parts(r_etag):
        return verdict(Status.COMPLETED, by="size")
    s_enc, r_enc = item.get("s_enc"), item.get("r_enc")
    if s_enc is None or r_enc is None:
        return verdict(Status.COMPLETED, by="size") if headed else NEEDS_HEAD
    if s_enc in MD5_ETAG_ENCRYPTIONS and r_enc in MD5_ETAG_ENCRYPTIONS:
        return verdict(Status.MISMATCH, reason="ETag differs (both sides store an MD5 ETag)")
    return verdict(Status.COMPLETED, by="size")
