"""At a deadline: decide one version's item for one destination from S3's own evidence.

An item still lacking its replica is looked at with HEADs (source version: does it exist, what is its
replication status; replica version when needed), at a bounded rate per bucket. When the budget is
spent the caller marks the item OVERDUE without a HEAD and looks again later, so an outage with
millions of late objects never floods the customer's buckets with requests. The rules, evidence by
evidence, are in docs/s3-semantics.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from crrmon.config import Config
from crrmon.evidence import Evidence, Refused, VersionFacts
from crrmon.metrics import Counters, pair_dimensions
from crrmon.model import Status
from crrmon.store import Store, Verdict, pair_name, split_pk
from crrmon.topology import TopologyCache
from crrmon.verify import NEEDS_HEAD, decide, has_replica, has_source, timing

logger = Logger(child=True)

NOT_IN_SCOPE_REASON = (
    "no replication status on the source version: no rule applies to it "
    "(tag filter, SSE-KMS not enabled in the rule, or older than the rule)"
)
_UNASKED: Any = object()  # a HEAD not made yet (None is a HEAD that S3 refused)


def _code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "error"))
    return type(error).__name__


@dataclass
class Deadlines:
    """The decision for one item at (or after) its deadline. Raises `Throttled` when the HEAD budget is
    spent; the caller puts the check off."""

    config: Config
    store: Store
    evidence: Evidence
    topology: TopologyCache
    counters: Counters
    clock: Callable[[], float]

    def check_item(self, item: dict[str, Any], siblings: list[dict[str, Any]] = ()) -> int | None:
        """Decide one pending item if its deadline has come. Returns when to look again (epoch s).

        `siblings`: every item of the same version (other destinations), as read with this one.
        The rules, evidence by evidence, are in docs/s3-semantics.md.
        """
        now_s = self.clock()
        decision = decide(item, verify_mode=self.config.verify_mode)
        if isinstance(decision, Verdict):  # the matcher will also see it; the write is conditional
            self._write(item, decision)
            return None
        if decision == NEEDS_HEAD:
            if item.get("fail") and not has_replica(item):
                return self._confirm_failure(item, siblings)
            return self._verify_with_heads(item)
        if item.get("due", 0) > now_s:
            return item["due"]
        return self._at_deadline(item, siblings)

    def _confirm_failure(self, item: dict[str, Any], siblings: list[dict[str, Any]]) -> int | None:
        """S3 reported that replication to this destination failed. The source's replication status
        FAILED (S3's own, which no message can forge) confirms it at once; otherwise the deadline decides,
        as for any version (the report's reason is kept for a FAILED at the give-up age)."""
        version_id, key = split_pk(item["pk"])
        source = self._head(item["src"], key, version_id)
        if source is not None and source.readable and source.replication_status == "FAILED":
            replica = self._head(item["dest"], key, version_id)
            if replica is not None and replica.exists:  # this destination has it: the failure was another's
                return self._decide_with(item, source_facts=source, replica_facts=replica)
            self._write(item, Verdict(Status.FAILED, reason=item["fail"], missed_rpo=timing(item)[1]))
            return None
        if item.get("due", 0) > self.clock():
            return item["due"]
        return self._at_deadline(item, siblings, source)

    def _at_deadline(
        self, item: dict[str, Any], siblings: list[dict[str, Any]], source: VersionFacts | None = _UNASKED
    ) -> int | None:
        """The deadline has come and the events did not settle it: ask S3. `source`: the source version's
        HEAD when the caller made it already."""
        if item.get("two_way"):
            mirror = self._mirror(item, siblings)
            if mirror is not None:
                return self._resolve_two_way(item, mirror)
        version_id, key = split_pk(item["pk"])
        dest = item["dest"]
        if not has_source(item):
            # Only S3's failure report here (its source event lost), and the source's HEAD made to confirm
            # it found the version: its status decides below, as for any source version (the report alone
            # never makes a FAILED). Anything else: find the source.
            found = source is not _UNASKED and source is not None and source.exists
            if has_replica(item) or not item.get("src") or not found:
                return self._resolve_source(item, source)
        if item.get("s_dm"):
            replica = self._head(dest, key, version_id)
            if replica is None:
                return self._late(item, "delete marker: replica not readable (HTTP 403)")
            if replica.delete_marker:
                return self._decide_with(item, replica_facts=replica)
            return self._late(item, "delete marker not replicated yet")
        if source is _UNASKED:
            source = self._head(item["src"], key, version_id)
        if source is not None and not source.exists:
            replica = self._head(dest, key, version_id)
            if replica is None:
                return self._late(item, "source version gone; replica not readable (HTTP 403)")
            if replica.exists:
                return self._decide_with(item, replica_facts=replica)
            self._write(item, Verdict(Status.SOURCE_DELETED, reason="source version deleted before it replicated"))
            return None
        if source is None or not source.readable:
            # S3 will not tell this caller the source's replication status (403; an SSE-C object
            # without its key: 400): the replica alone answers.
            why = "source not readable (HTTP 403)" if source is None else "source is SSE-C (HEAD says no more)"
            replica = self._head(dest, key, version_id)
            if replica is None:
                return self._late(item, f"{why}; replica not readable (HTTP 403)")
            if replica.exists:
                return self._decide_with(item, source_facts=source, replica_facts=replica)
            return self._late(item, f"{why}; replica missing")
        status = source.replication_status
        if status is None:
            self._write(item, Verdict(Status.NOT_IN_SCOPE, reason=NOT_IN_SCOPE_REASON))
            return None
        if status == "REPLICA":
            self._write(item, Verdict(Status.NOT_IN_SCOPE, reason="the version is itself a replica"))
            return None
        if status not in ("COMPLETED", "FAILED"):
            # PENDING: with several destinations the source stays PENDING until every one has its
            # replica, so this destination's may be there already, its event lost. An unreachable
            # destination (an outage) leaves the item late, never its timer failing over and over.
            try:
                replica = self._head(dest, key, version_id)
            except (ClientError, BotoCoreError) as error:
                self.counters.add("ReplicaHeadErrors", 1, pair_dimensions(item.get("src"), dest))
                return self._late(item, f"replication status {status}; replica not readable: {_code(error)}")
            if replica is None:
                return self._late(item, f"replication status {status}; replica not readable (HTTP 403)")
            if replica.exists:
                return self._decide_with(item, source_facts=source, replica_facts=replica)
            return self._late(item, f"replication status {status}")
        replica = self._head(dest, key, version_id)
        if replica is None:
            if status == "COMPLETED":  # S3's own word that every destination has its replica
                reason = "replica not readable (HTTP 403); the source's replication status is COMPLETED"
                self._write(item, Verdict(Status.COMPLETED, reason=reason, verified_by="source-status"))
                return None
            return self._late(item, "replication status FAILED; replica not readable (HTTP 403)")
        if replica.exists:  # its event was lost: verified now, latency unknown
            return self._decide_with(item, source_facts=source, replica_facts=replica)
        reason = item.get("fail") or (
            "replication status FAILED"
            if status == "FAILED"
            else "source reports COMPLETED but the replica version is missing"
        )
        self._write(item, Verdict(Status.FAILED, reason=reason, missed_rpo=True))
        return None

    def _head(self, bucket: str, key: str, version_id: str) -> VersionFacts | None:
        """HEAD through the budget; None when S3 refused (403), counted per bucket."""
        try:
            facts = self.evidence.head(bucket, key, version_id)
        except Refused:
            self.counters.add("HeadsRefused", 1, (("Bucket", bucket),))
            logger.warning("HEAD refused: the monitor may not read this bucket's versions", extra={"bucket": bucket})
            return None
        if facts.checksum_refused:
            self.counters.add("ChecksumModeRefused", 1, (("Bucket", bucket),))
        return facts

    def _resolve_source(self, item: dict[str, Any], asked: VersionFacts | None = _UNASKED) -> int | None:
        """A replica (or S3 failure report) whose source event never arrived: find the source version.
        `asked`: the HEAD of the item's own source made already (to confirm a failure report).

        Only replication makes a destination version whose ID a source version has, and only such a
        version answers `x-amz-replication-status: REPLICA` (or, with replica modification sync, the
        status of its own replication, in a bucket that is no source itself). A version in the destination that no
        source holds and that is not a replica was written there directly (or is the destination's own
        delete marker): it is not replication's, and never a COMPLETED.
        """
        version_id, key = split_pk(item["pk"])
        topology = self.topology.get()
        candidates = [item["src"]] if item.get("src") else list(topology.sources_of(item["dest"]))
        refused = False
        for source_bucket in candidates:
            facts = self._head(source_bucket, key, version_id) if asked is _UNASKED else asked
            asked = _UNASKED
            if facts is None:
                refused = True
            elif facts.exists:
                extra = {"src": source_bucket, "sreg": topology.regions.get(source_bucket)}
                # A replica another account's message claimed is S3's to confirm, as on every other path.
                replica = self._head(item["dest"], key, version_id) if item.get("xacct") else None
                return self._decide_with(item, source_facts=facts, replica_facts=replica, extra=extra)
        if refused:
            return self._late(item, "source not readable (HTTP 403)")
        if not has_replica(item):
            return self._late(item, "source version not found")
        replica = self._head(item["dest"], key, version_id)
        if replica is None:
            return self._late(item, "no source version found; the destination version is not readable (HTTP 403)")
        if not replica.exists:
            reason = "no source holds this version and it is gone from the destination"
        elif replica.replication_status == "REPLICA" or (
            # With replica modification sync a replica reports its own replication's status. A version
            # written directly into a bucket that is no source has no status at all.
            replica.replication_status is not None and item["dest"] not in topology.sources
        ):
            verdict = Verdict(
                Status.COMPLETED, reason="source version no longer exists; replica present", verified_by="replica"
            )
            self._write(item, verdict)
            return None
        elif replica.delete_marker:
            reason = "a delete marker made in the destination itself: no source holds this version"
        elif not replica.readable:
            reason = "no source holds this version; the destination's is SSE-C: whether replication made it is unknown"
        else:
            reason = "written into the destination directly: not a replica, no source holds this version"
        self._write(item, Verdict(Status.NOT_IN_SCOPE, reason=reason))
        return None

    @staticmethod
    def _mirror(item: dict[str, Any], siblings: list[dict[str, Any]]) -> dict[str, Any] | None:
        """In two-way replication, the same version recorded as a source in the other bucket."""
        for other in siblings:
            if other["dest"] == item.get("src") and other.get("src") == item["dest"] and has_source(other):
                return other
        return None

    @staticmethod
    def _sighting(item: dict[str, Any]) -> tuple:
        """When a version was seen in a bucket, to order two sightings: S3's time first; EventBridge gives
        whole seconds, so a replica landing within the second ties, and then the order in which the monitor
        heard of them decides (S3 emits the original's event first); the bucket name last, so that either
        side reaches the same answer."""
        return item.get("s_time", 0), item.get("first_seen", 0), item["dest"]

    def _resolve_two_way(self, item: dict[str, Any], mirror: dict[str, Any]) -> int | None:
        """One version seen as a source in both buckets of a two-way pair: the earlier sighting is the
        original, the later one its replica. The original's item takes the replica's observation; the
        other item is not a source."""
        if self._sighting(item) > self._sighting(mirror):
            reason = f"replica of the version written in {item['dest']} (two-way replication), not a new source version"
            self._write(item, Verdict(Status.NOT_IN_SCOPE, reason=reason))
            return None
        evidence = {
            f"r_{name}": mirror[f"s_{name}"] for name in ("time", "size", "etag", "enc", "dm") if f"s_{name}" in mirror
        }
        decision = decide({**item, **evidence}, verify_mode=self.config.verify_mode)
        if isinstance(decision, Verdict):
            self._write(item, decision, evidence)
            return None
        return self._verify_with_heads(item)

    def _verify_with_heads(self, item: dict[str, Any]) -> int | None:
        version_id, key = split_pk(item["pk"])
        source = self._head(item["src"], key, version_id)
        replica = self._head(item["dest"], key, version_id)
        return self._decide_with(item, source_facts=source, replica_facts=replica)

    def _decide_with(
        self,
        item: dict[str, Any],
        *,
        source_facts: VersionFacts | None = None,
        replica_facts: VersionFacts | None = None,
        extra: dict[str, Any] | None = None,
    ) -> int | None:
        now_s = self.clock()
        if replica_facts and replica_facts.exists and "r_time" not in item:
            # Found by HEAD, its event not (yet) here. When the monitor heard of the version only after its
            # deadline (a backlog in the event path), the replica's event is likely still on its way and
            # alone tells when the replica landed: wait for it a while before deciding without it.
            heard_s = item.get("first_seen", 0) / 1000
            wait_until = heard_s + self._recheck_s(item)
            if heard_s > item.get("due", heard_s) and now_s < wait_until:
                return int(wait_until)
        evidence = dict(extra or {})
        if source_facts and source_facts.exists:
            evidence.update({k: v for k, v in source_facts.as_fields("s").items() if k not in item})
        if replica_facts and replica_facts.exists:
            evidence.update({k: v for k, v in replica_facts.as_fields("r").items() if k not in item})
        merged = {**item, **evidence, "headed": True}
        if not (source_facts and source_facts.replication_status == "FAILED"):
            # A failure report is a message; S3's word that replication failed is the source's own status.
            merged.pop("fail", None)
        if replica_facts is not None and not replica_facts.exists:
            # S3 says the replica version is not there: that beats any event's claim that it landed.
            merged = {k: v for k, v in merged.items() if not k.startswith("r_")}
        if item.get("xacct"):
            # Part of what is known came in a message from another account: a side S3 did not show (a
            # refused HEAD) is not taken on a message's word.
            for side, facts in (("s_", source_facts), ("r_", replica_facts)):
                if facts is None:
                    merged = {k: v for k, v in merged.items() if not k.startswith(side)}
        # What the events said wins over what HEAD says, except encryption and checksums, which only HEAD knows.
        for side, facts in (("s", source_facts), ("r", replica_facts)):
            if facts and facts.exists:
                merged[f"{side}_enc"] = facts.encryption
                if facts.checksum:
                    merged[f"{side}_ck"] = facts.checksum
        decision = decide(merged, verify_mode=self.config.verify_mode)
        if isinstance(decision, Verdict):
            self._write(item, decision, evidence)
            return None
        if replica_facts is None or source_facts is None:
            return self._late(item, "a version is not readable (HTTP 403)")
        return self._late(item, "replica not found")

    def _recheck_s(self, item: dict[str, Any]) -> int:
        """How long until a late item is looked at again: its RPO (its class's, crrmon.rpo), 5 s to 15 min."""
        return min(900, max(5, item.get("rpo_s") or self.config.rpo_seconds))

    def _late(self, item: dict[str, Any], why: str) -> int | None:
        """No replica by the deadline: OVERDUE (once), re-checked until the give-up age, then FAILED."""
        now_s = self.clock()
        give_up_at = item["first_seen"] / 1000 + self.config.give_up_seconds
        if now_s >= give_up_at:
            reported = f"; S3 reported {item['fail']}" if item.get("fail") else ""
            reason = f"gave up after {self.config.give_up_seconds}s: {why}{reported}"
            self._write(item, Verdict(Status.FAILED, reason=reason, missed_rpo=True))
            return None
        self.mark_overdue(item)
        return int(min(now_s + self._recheck_s(item), give_up_at + 1))

    def mark_overdue(self, item: dict[str, Any]) -> None:
        if item.get("status") != Status.OVERDUE.value:
            pair = pair_name(item.get("src") or "unknown", item["dest"])
            self.store.mark_overdue(item["pk"], item["dest"], pair=pair, now_ms=int(self.clock() * 1000))

    def _write(self, item: dict[str, Any], verdict: Verdict, evidence: dict[str, Any] | None = None) -> None:
        self.store.write_verdict(
            item["pk"],
            item["dest"],
            verdict,
            pair=pair_name(item.get("src") or "unknown", item["dest"]),
            now_ms=int(self.clock() * 1000),
            retention_s=self.config.record_retention_hours * 3600,
            evidence=evidence or {},
        )
