"""Daily proof of replication from S3 Inventory reports: one pair, one day, every version accounted for.

For a (source, destination) pair and a UTC day, the source bucket's inventory report and the
destination's are compared. Every source version written that day that a rule replicates to the
destination (crrmon.topology's expectations, as reconciliation asks) is one of:

- present: the destination holds the same version ID, and crrmon.verify finds it the same data (size
  always; ETag only where ETags are comparable). Version IDs are S3's own: a replica with the source's
  version ID was written by replication, whatever the source's status says about other destinations.
- differing: the destination holds the version ID with another size, or another comparable ETag.
- pending: no replica, and the source's ReplicationStatus is PENDING.
- missing: no replica, and the source's status is COMPLETED or FAILED.
- not in scope: no replica and no status: S3 applied no rule to the version (a tag filter, an SSE-KMS
  object the rule leaves out).

Delete markers are left out, as the scheduled reconciliation leaves them out: a report cannot tell a
DeleteObject's marker from a lifecycle expiration's, which S3 never replicates. A source row that is
itself a replica (bidirectional rules) is not a source version. Missing and differing versions within
the record retention window that the monitor does not track are fed back to the EventsQueue
(crrmon.reconcile.feed), so the pipeline judges them with HEADs; older ones stand in the proof only.

The day's summary goes to the archive as one `kind: "daily-proof"` line with the counts, the SHA-256 of
both manifests (which report the claim was made from) and `rows_sha256`: the sum, modulo 2**256, of
SHA-256("<key>\\t<version ID>\\t<size>\\t<ETag>\\n") over the day's checked source rows, in hex. A sum
does not depend on the order of the rows, so anyone can recompute it from the report (or an Athena
query of it) in any order, and it composes across the runs a pass is split into.

How a pass fits Lambda. Inventory files are not sorted, so the destination's rows of the day are
spread by a hash of (key, version ID) into PARTITIONS files in a work directory (/tmp): memory holds
one partition at a time, /tmp holds the destination's rows of the day (about 100 bytes each). Lines
that do not hold the day's date are skipped before they are parsed. Then each source file is read, its
rows of the day grouped by partition and compared partition by partition. Progress is saved in a
`__proof__` item after each source file; a run stops before its time is up and the next run goes on
from the next source file. The destination's partitions live in the container's /tmp: a run that finds
them missing (another container) rebuilds them from the destination report before going on, so the
destination report must be read within one run; the source side is never read twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from crrmon import inventory, verify
from crrmon.inventory import Manifest
from crrmon.metrics import Counters
from crrmon.model import Status
from crrmon.reconcile import STALE_MARGIN_S, Version, feed, untracked
from crrmon.store import PROOF_PK, Store, Verdict
from crrmon.topology import Topology

logger = Logger(child=True)

KIND = "daily-proof"
PARTITIONS = 64
DIGEST_MODULUS = 2**256
CLOCK_EVERY_ROWS = 10_000  # how often reading the destination's report looks at the time left
COUNTS = ("checked", "present", "differing", "missing", "pending", "not_in_scope", "malformed")


class ProofError(Exception):
    """A proof that cannot go on (the run logs it and counts ReconcileErrors for the bucket)."""


def day_of(text: str) -> tuple[float, float]:
    """The UTC day "YYYY-MM-DD" as [start, end) in epoch seconds."""
    start = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


def partition_of(key: str, version_id: str, partitions: int = PARTITIONS) -> int:
    return zlib.crc32(f"{key}\x00{version_id}".encode()) % partitions


def row_digest(version: Version) -> int:
    """SHA-256 of one checked source row, as a number (summed into `rows_sha256`)."""
    size = "" if version.size is None else str(version.size)
    text = f"{version.key}\t{version.version_id}\t{size}\t{version.etag or ''}\n"
    return int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")


def day_needle(day: str) -> str:
    """What a raw CSV line of the day holds (LastModifiedDate is ISO 8601 in UTC): lines without it are
    passed over unparsed; the rows that hold it are parsed and their time checked exactly."""
    return f"{day}T"


def judge(source: Version, replica: Version | None) -> str:
    """The state of one checked source version against the destination's row of the same version ID."""
    if replica is None:
        if source.replication_status == "PENDING":
            return "pending"
        if source.replication_status in ("COMPLETED", "FAILED"):
            return "missing"
        return "not_in_scope"
    item = {
        "s_size": source.size,
        "r_size": replica.size,
        "s_etag": source.etag,
        "r_etag": replica.etag,
        "s_enc": source.encryption,
        "r_enc": replica.encryption,
        "s_dm": source.delete_marker,
        "r_dm": replica.delete_marker,
        "headed": True,  # the report is S3's own word, as a HEAD is: nothing more to ask
    }
    verdict = verify.decide({k: v for k, v in item.items() if v is not None}, verify_mode="etag")
    return "differing" if isinstance(verdict, Verdict) and verdict.status is Status.MISMATCH else "present"


class Spill:
    """The destination's rows of the day, spread over partition files in a work directory."""

    def __init__(self, directory: str, partitions: int = PARTITIONS):
        self.directory = directory
        self.partitions = partitions

    def path(self, partition: int) -> str:
        return os.path.join(self.directory, f"{partition:04d}.jsonl")

    def write(self, versions: Iterable[Version]) -> int:
        os.makedirs(self.directory, exist_ok=True)
        files = [open(self.path(p), "w", encoding="utf-8") for p in range(self.partitions)]  # noqa: SIM115
        written = 0
        try:
            for v in versions:
                row = [v.key, v.version_id, v.size, v.etag, v.encryption, v.delete_marker]
                files[partition_of(v.key, v.version_id, self.partitions)].write(json.dumps(row) + "\n")
                written += 1
        finally:
            for f in files:
                f.close()
        with open(os.path.join(self.directory, "complete"), "w") as marker:
            marker.write(str(written))
        return written

    def complete(self) -> bool:
        return os.path.exists(os.path.join(self.directory, "complete"))

    def read(self, partition: int) -> dict[tuple[str, str], Version]:
        found: dict[tuple[str, str], Version] = {}
        with open(self.path(partition), encoding="utf-8") as f:
            for line in f:
                key, vid, size, etag, enc, dm = json.loads(line)
                found[(key, vid)] = Version(key, vid, size, etag, 0.0, delete_marker=dm, encryption=enc)
        return found

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class PairDay:
    """One proof: a pair, a day, and the two reports it is made from."""

    source_bucket: str
    destination_bucket: str
    day: str  # YYYY-MM-DD (UTC)
    source_manifest: Manifest
    destination_manifest: Manifest

    @property
    def name(self) -> str:
        return f"{self.source_bucket}>{self.destination_bucket}"


@dataclass
class Prover:
    """Runs the daily proof of one pair, a source file at a time, resumable across runs."""

    store: Store
    s3: Any
    sqs: Any
    counters: Counters
    clock: Callable[[], float]
    account: str
    region: str
    events_queue_url: str
    record_retention_hours: int
    archive: Callable[[list[dict[str, Any]], Counters], None] | None = None  # Publisher.archive
    work_root: str = field(default_factory=tempfile.gettempdir)
    partitions: int = PARTITIONS

    def run(self, proof: PairDay, topology: Topology, stop_at: float) -> dict[str, Any]:
        """Continue `proof` until done or `stop_at`; the counts so far, and whether it is complete."""
        state = self.store.bookkeeping(PROOF_PK, [proof.name]).get(proof.name, {})
        if state.get("day") == proof.day and state.get("done"):
            return {"complete": True, "already": True, **{c: int(state.get(c, 0)) for c in COUNTS}}
        if state.get("day") != proof.day or state.get("source_manifest") != proof.source_manifest.sha256:
            if state.get("spill"):  # a pass of another day left behind: its work files go
                Spill(os.path.join(self.work_root, f"crrmon-proof-{state['spill']}")).remove()
            state = {"day": proof.day, "source_manifest": proof.source_manifest.sha256, "next_file": 0, "sum": "0"}
            state.update(dict.fromkeys(COUNTS, 0))
            state["spill"] = uuid.uuid4().hex
        counts = {c: int(state.get(c, 0)) for c in COUNTS}
        total = int(state.get("sum", "0"), 16)
        spill = Spill(os.path.join(self.work_root, f"crrmon-proof-{state['spill']}"), self.partitions)
        dimensions = (("SourceBucket", proof.source_bucket), ("DestinationBucket", proof.destination_bucket))
        start, end = day_of(proof.day)
        needle = day_needle(proof.day)

        def bad(_reason: str) -> None:
            counts["malformed"] += 1
            self.counters.add("InventoryRowsMalformed", 1, dimensions)

        if not spill.complete():
            spill.remove()

            def replicas():
                for file_key in proof.destination_manifest.files:
                    versions = inventory.read_file(
                        self.s3, proof.destination_manifest, file_key, containing=needle, on_bad=bad
                    )
                    for n, v in enumerate(versions):
                        if n % CLOCK_EVERY_ROWS == 0 and self.clock() >= stop_at:
                            self.counters.add("InventoryReportTooLarge", 1, dimensions)
                            raise ProofError(
                                f"the destination's report ({proof.destination_manifest.url}) could not be read "
                                "within one run: raise ReconcileMemorySize"
                            )
                        if start <= v.modified_s < end:
                            yield v

            written = spill.write(replicas())
            logger.info("destination rows of the day spread", extra={"pair": proof.name, "rows": written})
        files = proof.source_manifest.files
        index = int(state.get("next_file", 0))
        while index < len(files):
            if self.clock() >= stop_at:
                return {"complete": False, "next_file": index, **counts}
            versions = inventory.read_file(self.s3, proof.source_manifest, files[index], containing=needle, on_bad=bad)
            rows = [v for v in versions if start <= v.modified_s < end]
            total = (total + self._compare(proof, topology, rows, spill, counts, dimensions)) % DIGEST_MODULUS
            index += 1
            self.store.save_progress(
                PROOF_PK,
                proof.name,
                {
                    "day": proof.day,
                    "source_manifest": proof.source_manifest.sha256,
                    "spill": state["spill"],
                    "next_file": index,
                    "sum": format(total, "x"),
                    "done": None,
                    **counts,
                },
            )
        line = proof_line(proof, counts, total, now_s=self.clock())
        if self.archive is not None:
            self.archive([line], self.counters)
        self.store.save_progress(PROOF_PK, proof.name, {"done": int(self.clock()), "spill": None})
        spill.remove()
        for name in ("missing", "differing", "pending"):
            self.counters.add(f"Proof{name.capitalize()}Versions", counts[name], dimensions)
        self.counters.add("ProofPassesCompleted", 1)
        log = logger.warning if counts["missing"] or counts["differing"] else logger.info
        log("daily proof complete", extra={"pair": proof.name, "day": proof.day, **counts})
        return {"complete": True, **counts, "rows_sha256": line["rows_sha256"]}

    def _compare(
        self,
        proof: PairDay,
        topology: Topology,
        rows: list[Version],
        spill: Spill,
        counts: dict[str, int],
        dimensions,
    ) -> int:
        """Judge one source file's rows of the day; feed the missing and differing ones the monitor does
        not track. Returns the sum of their row digests."""
        by_partition: dict[int, list[Version]] = {}
        for v in rows:
            if v.delete_marker or v.replication_status == "REPLICA":
                continue
            expected = topology.expectations(proof.source_bucket, v.key, encryption=v.encryption)
            if not any(e.destination_bucket == proof.destination_bucket and not e.out_of_scope for e in expected):
                continue
            by_partition.setdefault(partition_of(v.key, v.version_id, spill.partitions), []).append(v)
        total = 0
        lost: list[Version] = []
        for partition in sorted(by_partition):
            replicas = spill.read(partition)
            for v in by_partition[partition]:
                state = judge(v, replicas.get((v.key, v.version_id)))
                counts["checked"] += 1
                counts[state] += 1
                total += row_digest(v)
                if state in ("missing", "differing"):
                    lost.append(v)
        oldest = self.clock() - self.record_retention_hours * 3600 + STALE_MARGIN_S
        recent = [v for v in lost if v.modified_s >= oldest]
        if recent and self.events_queue_url:
            unknown = [v for v, _ in untracked(self.store, topology, proof.source_bucket, recent)]
            if unknown:
                feed(
                    self.sqs,
                    self.events_queue_url,
                    unknown,
                    bucket=proof.source_bucket,
                    region=topology.regions.get(proof.source_bucket) or self.region,
                    account=self.account,
                    counters=self.counters,
                )
        return total


def proof_line(proof: PairDay, counts: dict[str, int], total: int, *, now_s: float) -> dict[str, Any]:
    """The archive's line for one pair's day."""
    record = f"{KIND}\x00{proof.name}\x00{proof.day}\x00{proof.source_manifest.sha256}".encode()
    return {
        "kind": KIND,
        "record_id": hashlib.sha256(record).hexdigest()[:32],
        "source_bucket": proof.source_bucket,
        "destination_bucket": proof.destination_bucket,
        "day": proof.day,
        **counts,
        "rows_sha256": format(total, "064x"),
        "source_manifest": proof.source_manifest.url,
        "source_manifest_sha256": proof.source_manifest.sha256,
        "destination_manifest": proof.destination_manifest.url,
        "destination_manifest_sha256": proof.destination_manifest.sha256,
        "detected_at": datetime.fromtimestamp(now_s, UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


@dataclass(frozen=True)
class Reports:
    """Where each watched bucket's reports are: InventoryReports, "s3://BUCKET/PREFIX/{bucket}/CONFIGURATION-ID",
    the inventory configuration's destination and ID (S3 adds the inventoried bucket's name in between).
    S3 writes a report only to a bucket in the inventoried bucket's region: "{region}" in BUCKET stands for
    the watched bucket's region (one reports bucket per region, e.g. s3://inventories-{region}/...)."""

    template: str

    def folder(self, bucket: str, region: str | None = None) -> tuple[str, str]:
        """(bucket holding the reports, the prefix of the dated report folders of `bucket`)."""
        url = self.template.replace("{bucket}", bucket).replace("{region}", region or "").removeprefix("s3://")
        holder, _, prefix = url.partition("/")
        return holder, prefix


def proof_day(*manifests: Manifest) -> str:
    """The UTC day both reports cover whole: the day before the earlier report began."""
    began = min(m.created_s if m.created_s is not None else folder_time(m.key) for m in manifests)
    return (datetime.fromtimestamp(began, UTC) - timedelta(days=1)).strftime("%Y-%m-%d")


def folder_time(manifest_key: str) -> float:
    """A report folder's name, YYYY-MM-DDTHH-MMZ, as epoch seconds."""
    folder = manifest_key.rstrip("/").rsplit("/", 2)[-2]
    return datetime.strptime(folder, "%Y-%m-%dT%H-%MZ").replace(tzinfo=UTC).timestamp()


def prove_bucket(prover: Prover, reports: Reports, source: str, topology: Topology, stop_at: float):
    """The scheduled run's daily proof of each pair of `source`: None when `source` has no report yet (the
    run lists it instead); else, per destination, the proof's progress or why there is none."""
    holder, prefix = reports.folder(source, topology.regions.get(source))
    key = latest_manifest(prover.s3, holder, prefix)
    if key is None:
        return None
    source_manifest = inventory.read_manifest(prover.s3, holder, key)
    result: dict[str, Any] = {}
    for destination in sorted({r.destination_bucket for r in topology.sources.get(source, ()) if r.enabled}):
        holder, prefix = reports.folder(destination, topology.regions.get(destination))
        key = latest_manifest(prover.s3, holder, prefix)
        if key is None:
            logger.warning("no inventory report of a destination", extra={"bucket": destination, "prefix": prefix})
            prover.counters.add("InventoryReportsMissing", 1)
            result[destination] = {"error": "no inventory report"}
            continue
        destination_manifest = inventory.read_manifest(prover.s3, holder, key)
        day = proof_day(source_manifest, destination_manifest)
        pair = PairDay(source, destination, day, source_manifest, destination_manifest)
        result[destination] = prover.run(pair, topology, stop_at)
        if not result[destination]["complete"]:
            break
    return result


def latest_manifest(s3, bucket: str, prefix: str) -> str | None:
    """The key of the newest manifest.json under `prefix` (`<destination prefix>/<source bucket>/<config ID>/`):
    report folders are named by their UTC start time, YYYY-MM-DDTHH-MMZ, so the greatest name is the newest
    (of the two newest, the first that holds its manifest)."""
    prefix = prefix.rstrip("/") + "/"
    folders: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        folders.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
    dated = sorted((f for f in folders if f[len(prefix) :].rstrip("/")[:4].isdigit()), reverse=True)
    for folder in dated[:2]:  # S3 writes manifest.json last: the newest folder may still be in the making
        try:
            s3.head_object(Bucket=bucket, Key=f"{folder}manifest.json")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
            continue
        return f"{folder}manifest.json"
    return None
