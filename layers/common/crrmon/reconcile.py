"""Reconciliation: S3's own listing of source versions against what the monitor tracks.

Events can be lost before they reach the monitor (a notification misconfigured for an hour, an
EventBridge rule disabled, a forwarder deleted). Reconciliation lists each watched source bucket's
versions with ListObjectVersions, asks the table (BatchGetItem, keys only) whether each version
written within the record retention window has its item per expected destination, and sends the
ones it lacks to the EventsQueue as the "Object Created" event S3 would have sent. From there the
monitor handles them like any other version: a deadline, HEADs, a verdict. The scheduled run leaves
delete markers out (see `Reconciler._bucket`); `crrmon reconcile --feed` sends them, as the operator
asks, as "Object Deleted" events.

The scheduled run (ReconcileSchedule in template.yaml) lists a bounded number of pages per run and
remembers, per bucket, where its pass stands (`__reconcile__` items), so a pass over a large bucket
spans several runs. `crrmon reconcile` uses the same listing and feeding, and compares replicas too.
With InventoryReports set, a bucket whose S3 Inventory report exists gets the daily proof instead of
the listing (crrmon.proof), which feeds what it finds missing through `feed` here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from crrmon.config import Config
from crrmon.events import eventbridge_object_event
from crrmon.metrics import Counters
from crrmon.store import RECONCILE_PK, Store, make_pk
from crrmon.topology import Topology, TopologyCache

logger = Logger(child=True)

REPLAYED_IP = "127.0.0.1"  # source-ip-address of a replayed event: it comes from reconciliation, not a client
REPLAYED_REQUEST_ID = "crrmon-reconcile"
# Versions younger than this may still have their events on the way, or being retried: an event that
# ingest failed on waits the EventsQueue's visibility timeout (360 s) up to 5 times before its DLQ.
SETTLE_S = 1800
STALE_MARGIN_S = 900  # ingest ignores events older than the retention; stay clear of that edge
LIST_PAGE_SIZE = 1000  # ListObjectVersions' maximum
RUN_MARGIN_S = 30  # stop listing this long before the Lambda's time is up
LEASE = "reconcile"


@dataclass(frozen=True)
class Version:
    key: str
    version_id: str
    size: int | None
    etag: str | None
    modified_s: float
    latest: bool = True
    delete_marker: bool = False
    replication_status: str | None = None  # from S3 Inventory reports only
    encryption: str | None = None  # from S3 Inventory reports only, in a HEAD's words (crrmon.inventory)


def versions_of_page(page: dict[str, Any]) -> list[Version]:
    """The versions and delete markers of one ListObjectVersions answer."""
    found = [
        Version(
            key=v["Key"],
            version_id=v.get("VersionId") or "null",
            size=v.get("Size"),
            etag=(v.get("ETag") or "").strip('"') or None,
            modified_s=v["LastModified"].timestamp(),
            latest=bool(v.get("IsLatest")),
        )
        for v in page.get("Versions", [])
    ]
    found.extend(
        Version(
            key=m["Key"],
            version_id=m.get("VersionId") or "null",
            size=None,
            etag=None,
            modified_s=m["LastModified"].timestamp(),
            latest=bool(m.get("IsLatest")),
            delete_marker=True,
        )
        for m in page.get("DeleteMarkers", [])
    )
    return found


def is_multipart(version: Version) -> bool:
    """A multipart upload's ETag ends in -<number of parts>."""
    return bool(version.etag) and "-" in version.etag


def object_event(version: Version, *, bucket: str, region: str, account: str) -> dict[str, Any]:
    """The EventBridge event S3 sends for this version: "Object Created", or "Object Deleted" for a marker."""
    return eventbridge_object_event(
        bucket=bucket,
        key=version.key,
        version_id=version.version_id,
        time_s=version.modified_s,
        region=region,
        account=account,
        size=None if version.delete_marker else version.size,
        etag=None if version.delete_marker else version.etag,
        reason="DeleteObject" if version.delete_marker else "PutObject",
        deletion_type="Delete Marker Created" if version.delete_marker else None,
        request_id=REPLAYED_REQUEST_ID,
        source_ip=REPLAYED_IP,
    )


def send_events(sqs, queue_url: str, events: list[dict[str, Any]]) -> int:
    """SendMessageBatch, 10 at a time; entries SQS refuses are sent once more. Returns how many were accepted."""
    sent = 0
    for start in range(0, len(events), 10):
        chunk = {str(i): json.dumps(e) for i, e in enumerate(events[start : start + 10])}
        for _attempt in range(2):
            answer = sqs.send_message_batch(
                QueueUrl=queue_url, Entries=[{"Id": i, "MessageBody": body} for i, body in chunk.items()]
            )
            sent += len(answer.get("Successful", []))
            chunk = {f["Id"]: chunk[f["Id"]] for f in answer.get("Failed", []) if not f.get("SenderFault")}
            if not chunk:
                break
    return sent


def untracked(
    store: Store, topology: Topology, bucket: str, versions: Iterable[Version]
) -> list[tuple[Version, list[str]]]:
    """The versions lacking the item of at least one destination their rules send them to, with those
    destinations. A version that is itself a replica written into `bucket` (bidirectional rules) has an
    item under `bucket` as destination: it is known, and not asked about its own rules."""
    checks: list[tuple[Version, list[str]]] = []
    keys: list[tuple[str, str]] = []
    is_destination = bool(topology.sources_of(bucket))
    for version in versions:
        expectations = topology.expectations(bucket, version.key, delete_marker=version.delete_marker)
        expected = [e.destination_bucket for e in expectations]
        if not expected:
            continue
        pk = make_pk(version.version_id, version.key)
        checks.append((version, expected))
        keys.extend((pk, dest) for dest in expected)
        if is_destination:
            keys.append((pk, bucket))
    if not keys:
        return []
    found = store.existing(keys)
    out = []
    for version, expected in checks:
        pk = make_pk(version.version_id, version.key)
        if (pk, bucket) in found:
            continue  # a replica that landed here, tracked as such
        missing = [dest for dest in expected if (pk, dest) not in found]
        if missing:
            out.append((version, missing))
    return out


@dataclass
class Reconciler:
    """The scheduled reconciliation: a time-boxed, resumable pass over each watched source bucket."""

    config: Config
    store: Store
    s3: Any
    topology: TopologyCache
    sqs: Any
    counters: Counters
    clock: Callable[[], float]
    account: str
    region: str
    holder: str = field(default_factory=lambda: uuid.uuid4().hex)
    # The daily proof from S3 Inventory reports (crrmon.proof.prove_bucket), when InventoryReports is set:
    # for a bucket whose report it finds, it stands in for the listing pass; None (no report): the bucket is listed.
    prove: Callable[[str, Topology, float], dict[str, Any] | None] | None = None

    def scheduled(self, remaining_s: float) -> dict[str, Any]:
        """One run: continue each bucket's pass until `remaining_s` (less a margin) is used up."""
        now_s = self.clock()
        if remaining_s <= RUN_MARGIN_S:
            return {"skipped": f"a run needs more than {RUN_MARGIN_S} s (the function's Timeout is too short)"}
        stop_at = now_s + remaining_s - RUN_MARGIN_S
        if not self.store.acquire_lease(LEASE, self.holder, now_s=int(now_s), duration_s=int(remaining_s) + 1):
            return {"skipped": "another run holds the lease"}
        try:
            topology = self.topology.get()
            # SourceBuckets only: the role may list no other (a topology override can name more).
            watched = set(self.config.source_buckets) or set(topology.sources)
            buckets = sorted(
                b for b, rules in topology.sources.items() if b in watched and any(r.enabled for r in rules)
            )
            states = self.store.bookkeeping(RECONCILE_PK, buckets)
            # Passes under way first (they were cut short), then the bucket whose last pass is oldest.
            buckets.sort(key=lambda b: ("km" not in states.get(b, {}), states.get(b, {}).get("done_at", 0)))
            result: dict[str, Any] = {}
            for bucket in buckets:
                if self.clock() >= stop_at:
                    break
                try:
                    proved = self.prove(bucket, topology, stop_at) if self.prove else None
                    if proved is None:
                        proved = self._bucket(bucket, topology, states.get(bucket, {}), stop_at)
                    result[bucket] = proved
                except Exception as error:
                    logger.warning("reconciliation of a bucket failed", extra={"bucket": bucket, "error": repr(error)})
                    self.counters.add("ReconcileErrors", 1, (("Bucket", bucket),))
                    result[bucket] = {"error": type(error).__name__}
                self.counters.flush()
            return result
        finally:
            self.store.release_lease(LEASE, self.holder, now_s=int(self.clock()))

    def _bucket(self, bucket: str, topology: Topology, state: dict[str, Any], stop_at: float) -> dict[str, Any]:
        started = state.get("started") if "km" in state else None
        progress = {
            "started": started or int(self.clock()),
            "listed": state.get("listed", 0) if started else 0,
            "untracked": state.get("untracked", 0) if started else 0,
        }
        markers = {"KeyMarker": state["km"], "VersionIdMarker": state.get("vm", "")} if started else {}
        # The last complete pass judged every version written before it started, less the settling
        # time: this pass reads the table only about the versions written since. Multipart uploads
        # excepted: S3 dates them from the upload's start, so one completed after that pass's listing
        # went by can carry an earlier date.
        checked_before = state["last_started"] - SETTLE_S - 60 if "last_started" in state else 0
        dimensions = (("Bucket", bucket),)
        while True:
            page = self.s3.list_object_versions(Bucket=bucket, MaxKeys=LIST_PAGE_SIZE, **markers)
            now_s = self.clock()
            versions = versions_of_page(page)
            oldest = now_s - self.config.record_retention_hours * 3600 + STALE_MARGIN_S
            # Delete markers are left out: a listing cannot tell a DeleteObject's marker from a lifecycle
            # expiration's, which S3 never replicates; replaying one as a DeleteObject would fail it.
            judged = [
                v
                for v in versions
                if not v.delete_marker
                and max(oldest, 0 if is_multipart(v) else checked_before) <= v.modified_s <= now_s - SETTLE_S
            ]
            lost = untracked(self.store, topology, bucket, judged)
            if lost:
                self._feed(bucket, topology, [version for version, _ in lost])
            progress["listed"] += len(versions)
            progress["untracked"] += len(lost)
            # Per bucket only what an operator acts on (each dimension set is a billed custom metric).
            self.counters.add("ReconcileVersionsListed", len(versions))
            self.counters.add("ReconcileVersionsChecked", len(judged))
            self.counters.add("ReconcileUntrackedVersions", len(lost), dimensions)
            self.counters.flush()  # now: a run the Lambda timeout ends never reaches the handler's flush
            if not page.get("IsTruncated"):
                break
            markers = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page.get("NextVersionIdMarker", "")}
            # Saved after every page (one write per thousand versions): a run that dies loses one page.
            self.store.save_progress(
                RECONCILE_PK, bucket, {"km": markers["KeyMarker"], "vm": markers["VersionIdMarker"], **progress}
            )
            if self.clock() >= stop_at:
                return {"complete": False, **progress}
        seconds = int(self.clock()) - progress["started"]
        self.store.save_progress(
            RECONCILE_PK,
            bucket,
            {
                "km": None,
                "vm": None,
                "done_at": int(self.clock()),
                "last_started": progress["started"],
                "last_pass_seconds": seconds,
                "last_listed": progress["listed"],
                "last_untracked": progress["untracked"],
                **progress,
            },
        )
        self.counters.add("ReconcilePassesCompleted", 1)
        log = logger.warning if progress["untracked"] else logger.info
        log("reconciliation pass complete", extra={"bucket": bucket, "seconds": seconds, **progress})
        return {"complete": True, **progress}

    def _feed(self, bucket: str, topology: Topology, versions: list[Version]) -> None:
        feed(
            self.sqs,
            self.config.events_queue_url,
            versions,
            bucket=bucket,
            region=topology.regions.get(bucket) or self.region,
            account=self.account,
            counters=self.counters,
        )


def feed(
    sqs, queue_url: str, versions: list[Version], *, bucket: str, region: str, account: str, counters: Counters
) -> int:
    """Send the monitor the events S3 would have sent for `versions` of `bucket` (ReconcileEventsFed);
    an error when the EventsQueue did not take them all, so the caller's pass stops where it stands."""
    events = [object_event(v, bucket=bucket, region=region, account=account) for v in versions]
    sent = send_events(sqs, queue_url, events)
    counters.add("ReconcileEventsFed", sent)
    if sent < len(events):
        raise RuntimeError(f"the EventsQueue accepted {sent} of {len(events)} replayed events")
    return sent
