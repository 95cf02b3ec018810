"""Ingest: S3 events in any accepted form -> observations in the table, and deadline timers.

No S3 request on the happy path: only a bucket that is both source and destination needs a HEAD to
learn the version's role from its replication status. Records are independent: a bad one is parked
in the dead-letter queue with its reason, a transient failure is reported for retry, and every other
record of the batch is processed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from crrmon.concurrency import MAX_WORKERS, run_all  # noqa: F401  (MAX_WORKERS: read by the benchmark)
from crrmon.config import Config
from crrmon.events import parse_body, topic_account
from crrmon.evidence import Evidence, Refused
from crrmon.metrics import Counters
from crrmon.model import (
    Ignored,
    ObjectChange,
    ObjectEvent,
    Rejected,
    ReplicationEvent,
    ReplicationOutcome,
    SubscriptionRequest,
)
from crrmon.store import Store, make_pk
from crrmon.timers import Timer, send_timers
from crrmon.topology import LIFECYCLE_EXPIRATION, Role, TopologyCache
from crrmon.verify import deadline_s

logger = Logger(child=True)

HEARTBEAT_EVERY_S = 60


class Heartbeats:
    """When this container last wrote each bucket's heartbeat: at most one write per bucket a minute."""

    def __init__(self, every_s: float = HEARTBEAT_EVERY_S) -> None:
        self.every_s = every_s
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def claim(self, table: str, bucket: str, now_s: float) -> bool:
        """True when a heartbeat for `bucket` is due now (and counts as written from now on)."""
        with self._lock:
            last = self._last.get((table, bucket))
            if last is not None and 0 <= now_s - last < self.every_s:
                return False
            self._last[(table, bucket)] = now_s
            return True

    def forget(self) -> None:
        """A new container: every heartbeat is due again."""
        with self._lock:
            self._last.clear()

    def release(self, table: str, bucket: str) -> None:
        """The write failed: let the next batch try again."""
        with self._lock:
            self._last.pop((table, bucket), None)


CONTAINER_HEARTBEATS = Heartbeats()  # lives as long as the Lambda container


@dataclass
class Ingest:
    config: Config
    store: Store
    topology: TopologyCache
    evidence: Evidence  # HEADs, only for buckets that are both source and destination
    sqs: Any
    counters: Counters
    clock: Callable[[], float]  # epoch seconds
    heartbeats: Heartbeats = field(default_factory=lambda: CONTAINER_HEARTBEATS)
    sns: Callable[[str], Any] | None = None  # an SNS client for a region (confirming forwarder subscriptions)

    def handle_batch(self, records: list[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
        failed: set[str] = set()
        rejected: dict[str, list[Rejected]] = {}
        work: list[tuple[str, int, ObjectEvent | ReplicationEvent]] = []
        for record in records:
            message_id = record["messageId"]
            receive_count = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
            parsed = parse_body(record.get("body") or "")
            self.counters.add("EventsReceived", len(parsed))
            for item in parsed:
                if isinstance(item, Ignored):
                    self.counters.add("EventsIgnored", 1, (("Reason", item.reason),))
                elif isinstance(item, Rejected):
                    rejected.setdefault(message_id, []).append(item)
                elif isinstance(item, SubscriptionRequest):
                    outcome = self.confirm(item)
                    if outcome is None:
                        failed.add(message_id)
                    elif isinstance(outcome, Rejected):
                        rejected.setdefault(message_id, []).append(outcome)
                else:
                    work.append((message_id, receive_count, item))

        # Events about the same object version run in order, in one thread; different versions overlap.
        groups: dict[tuple[str, str | None], list[tuple[str, int, ObjectEvent | ReplicationEvent]]] = {}
        for w in work:
            groups.setdefault((w[2].key, w[2].version_id), []).append(w)
        timers: list[tuple[str, Timer]] = []
        heard: set[str] = set()  # buckets whose events were accepted: their event path works
        if groups:
            results = run_all(lambda group: [self._observe_safely(*w) for w in group], list(groups.values()))
            for group, outcomes in zip(groups.values(), results, strict=True):
                for (message_id, _, event), outcome in zip(group, outcomes, strict=True):
                    if outcome is None:
                        failed.add(message_id)
                    elif isinstance(outcome, Rejected):
                        rejected.setdefault(message_id, []).append(outcome)
                    else:
                        heard.add(event.bucket)
                        timers.extend((message_id, t) for t in outcome)
        self.beat(heard)
        for record in records:
            reasons = rejected.get(record["messageId"])
            if reasons and record["messageId"] not in failed and not self.park(record, reasons):
                failed.add(record["messageId"])

        to_send = [t for message_id, t in timers if message_id not in failed]
        if to_send and self.config.timer_queue_url:
            unsent = {t.pk for t in send_timers(self.sqs, self.config.timer_queue_url, to_send, now_s=self.clock())}
            if unsent:
                logger.warning("timers not sent; their records will be retried", extra={"timers": len(unsent)})
            failed.update(message_id for message_id, t in timers if t.pk in unsent)
        return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(failed)]}

    def confirm(self, request: SubscriptionRequest) -> bool | Rejected | None:
        """Confirm the events queue's subscription to a topic of an allowed account (a forwarder topic of
        another account: its owner's subscription of this queue waits for a confirmation). A topic of any
        other account is refused and parked. None: a transient failure, the record is retried."""
        _, _, _, region, account, _ = request.topic_arn.split(":", 5)
        if account not in self.config.allowed_accounts or account == self.config.account_id:
            # (this account's own subscriptions confirm themselves: a request naming it is not SNS's)
            return Rejected("subscription-not-allowed", account)
        if self.sns is None:
            return Rejected("subscription-not-allowed", "no SNS client")
        try:
            self.sns(region).confirm_subscription(
                TopicArn=request.topic_arn, Token=request.token, AuthenticateOnUnsubscribe="true"
            )
        except Exception as error:
            logger.warning("subscription not confirmed; the record will be retried", extra={"error": repr(error)})
            self.counters.add("ObservationErrors")
            return None
        logger.info("subscription confirmed", extra={"topic_arn": request.topic_arn})
        self.counters.add("SubscriptionsConfirmed")
        return True

    def beat(self, buckets: Iterable[str]) -> None:
        """Heartbeats of watched source buckets, at most once a minute per bucket and container.

        Best effort: a failed write is logged and counted, and the next batch tries again; the batch's
        records are not retried for it.
        """
        watched = [b for b in sorted(buckets) if b in self.topology.get().sources]
        now_s = self.clock()
        for bucket in watched:
            if not self.heartbeats.claim(self.store.table_name, bucket, now_s):
                continue
            try:
                self.store.beat(bucket, int(now_s))
            except Exception as error:
                self.heartbeats.release(self.store.table_name, bucket)
                self.counters.add("HeartbeatErrors")
                logger.warning("heartbeat not written", extra={"bucket": bucket, "error": repr(error)})

    def park(self, record: dict[str, Any], rejected: list[Rejected]) -> bool:
        """Log, count and move an unusable body to the dead-letter queue with its reasons."""
        reasons = sorted({r.reason for r in rejected})
        for r in rejected:
            self.counters.add("EventsRejected", 1, (("Reason", r.reason),))
            logger.warning(
                "event rejected", extra={"reason": r.reason, "detail": r.detail, "message_id": record["messageId"]}
            )
        if not self.config.events_dlq_url:
            return True
        try:
            self.sqs.send_message(
                QueueUrl=self.config.events_dlq_url,
                MessageBody=record.get("body") or "(empty)",
                MessageAttributes={
                    "RejectedReason": {"DataType": "String", "StringValue": ",".join(reasons)[:256]},
                    "SourceMessageId": {"DataType": "String", "StringValue": record["messageId"]},
                },
            )
        except Exception:
            logger.exception("could not park a rejected event; it will be retried")
            return False
        return True

    def _observe_safely(self, message_id: str, receive_count: int, event) -> list[Timer] | Rejected | None:
        """observe(), with a transient failure logged and turned into None (the record is retried)."""
        try:
            return self.observe(event, retried=receive_count > 1)
        except Exception as error:
            logger.warning(
                "observation failed; the record will be retried",
                extra={"message_id": message_id, "bucket": event.bucket, "error": repr(error)},
            )
            self.counters.add("ObservationErrors")
            return None

    def observe(self, event: ObjectEvent | ReplicationEvent, *, retried: bool) -> list[Timer] | Rejected:
        """Record one event. Returns the timers to start (first sightings, or every sighting on a retry)."""
        now_s = self.clock()
        skip = self._skip_reason(event, now_s)
        if isinstance(skip, Rejected):
            return skip
        if skip:
            self.counters.add("EventsIgnored", 1, (("Reason", skip.reason),))
            return []
        topology = self.topology.get()
        role = topology.role(event.bucket)
        if role is None:
            topology = self.topology.refresh_for_unknown()
            role = topology.role(event.bucket)
        if role is None:
            return Rejected("unknown-bucket", event.bucket)
        if event.topic_arn:
            # A topic speaks for buckets of its own account only (a forwarder is deployed per account).
            sender, owner = topic_account(event.topic_arn), topology.accounts.get(event.bucket, self.config.account_id)
            if owner and sender != owner:
                return Rejected("topic-account-mismatch", f"{sender} for a bucket of {owner}")
        # What crossed an account boundary is confirmed by S3 before it is final (a HEAD), unless a
        # configured forwarder topic delivered it.
        crossed = self._crossed(event)

        lifecycle_marker = (
            isinstance(event, ObjectEvent)
            and event.change is ObjectChange.DELETE_MARKER
            and event.reason == LIFECYCLE_EXPIRATION
        )
        if lifecycle_marker and role is not Role.SOURCE:
            # A lifecycle rule's delete marker is never replicated and never a replica: in a destination
            # (or a two-way bucket) there is nothing to watch.
            self.counters.add("EventsIgnored", 1, (("Reason", "lifecycle-marker-in-destination"),))
            return []

        now_ms = int(now_s * 1000)
        # S3's own time of the version: deadlines and lateness count from it, never from when the
        # monitor heard (a backlogged event path must not hide a missed RPO). A clock ahead of ours
        # counts from now.
        time_ms = min(int(event.event_time.timestamp() * 1000), now_ms)
        self.counters.add("EventAge", max(0, now_ms - time_ms) / 1000)
        pk = make_pk(event.version_id, event.key)
        writes: list[tuple[str, dict[str, Any], int | None]] = []  # (destination, fields, size)
        if isinstance(event, ReplicationEvent):
            if event.outcome is not ReplicationOutcome.FAILED:
                self.counters.add(f"Replication{event.outcome.value.removeprefix('Operation')}")
                return []
            if event.destination_bucket is None:
                return Rejected("missing-destination", "a replication failure event without a destination")
            if event.destination_bucket not in {r.destination_bucket for r in topology.sources.get(event.bucket, ())}:
                return Rejected("unknown-destination", "not a destination of the source's rules")
            fields = {
                "src": event.bucket,
                "sreg": event.region or topology.regions.get(event.bucket),
                "dreg": topology.regions.get(event.destination_bucket),
                "rid": event.rule_id,
                "fail": event.failure_reason or "OperationFailedReplication",
                "xacct": crossed,
            }
            writes.append((event.destination_bucket, fields, event.size))
        else:
            two_way = False
            if role is Role.BOTH:
                role, two_way = self._role_in_two_way_bucket(event)
                if role is None:
                    self.counters.add("EventsIgnored", 1, (("Reason", "version-gone"),))
                    return []
            if role is Role.SOURCE:
                writes.extend(self._source_writes(event, topology, time_ms, two_way, crossed))
                if not writes:
                    self.counters.add("EventsOutOfScope", 1, (("Bucket", event.bucket),))
            else:
                sources = topology.sources_of(event.bucket)
                fields = {
                    "r_etag": event.etag,
                    "r_size": event.size,
                    "r_time": time_ms,
                    "r_enc": event.encryption,
                    "r_dm": True if event.change is ObjectChange.DELETE_MARKER else None,
                    "dreg": event.region or topology.regions.get(event.bucket),
                    "xacct": crossed,
                }
                if len(sources) == 1:  # one source feeds this destination: name it now
                    fields["src"] = sources[0]
                    fields["sreg"] = topology.regions.get(sources[0])
                if not crossed and self._complete_in_one_write(pk, event, fields, time_ms, now_s):
                    return []
                writes.append((event.bucket, fields, event.size))

        timers = []
        expires_s = int(now_s) + self.config.give_up_seconds + 3600
        for dest, fields, size in writes:
            # The version's RPO class (crrmon.rpo): by its key and the size this event gives.
            rpo_class, rpo_s = self.config.rpo_class(event.key, size)
            due = deadline_s(time_ms, size, rpo_seconds=rpo_s, throughput_mbps=self.config.expected_throughput_mbps)
            from_source = "s_time" in fields
            created, item_due = self.store.record_observation(
                pk,
                dest,
                now_ms=now_ms,
                due_s=due,
                expires_s=expires_s,
                fields=fields,
                due_from_source=from_source,
                # Only under a policy: without one, items stay as they were (the default class, RpoSeconds).
                rpo={"rpo_c": rpo_class, "rpo_s": rpo_s} if self.config.rpo_classes else None,
            )
            if created or retried:
                timers.append(Timer(pk=pk, due_s=item_due, dests=(dest,)))
        return timers

    def _crossed(self, event: ObjectEvent | ReplicationEvent) -> bool | None:
        """True when the event came from another account than the stack's (None otherwise, so that the
        item holds no attribute for it)."""
        if event.topic_arn:
            if event.topic_arn in self.config.forwarder_topic_arns:
                return None
            sender = topic_account(event.topic_arn)
        else:
            sender = event.account
        own = self.config.account_id
        return True if own and sender and sender != own else None

    def _role_in_two_way_bucket(self, event: ObjectEvent) -> tuple[Role | None, bool]:
        """A bucket that is both source and destination: is this version a replica? (role, undecided).

        Only a replica answers HEAD with `x-amz-replication-status: REPLICA` (with replica modification
        sync a replica may report PENDING, COMPLETED or FAILED instead, as a source does). Where HEAD cannot
        say — such a status, a delete marker (405, no status), an SSE-C object (400), a refusal (403) — the
        version is recorded as a source, marked undecided (`two_way`); at the deadline the sweeper pairs it
        with the same version seen in the other bucket, and the earlier of the two is the original
        (crrmon.sweep).
        None: the version is gone.
        """
        if event.change is ObjectChange.DELETE_MARKER:
            return Role.SOURCE, True
        try:
            facts = self.evidence.head(event.bucket, event.key, event.version_id)
        except Refused:
            self.counters.add("HeadsRefused", 1, (("Bucket", event.bucket),))
            return Role.SOURCE, True
        if not facts.exists:
            return None, False
        if facts.delete_marker or not facts.readable:
            return Role.SOURCE, True
        if facts.replication_status == "REPLICA":
            return Role.DESTINATION, False
        if facts.replication_status is None:  # no rule applies to it: not a replica either
            return Role.SOURCE, False
        # PENDING, COMPLETED or FAILED: a source version of this bucket's rules, or a replica that
        # replica modification sync made report the status of its own replication back.
        return Role.SOURCE, True

    def _complete_in_one_write(self, pk: str, event: ObjectEvent, fields: dict, time_ms: int, now_s: float) -> bool:
        """The happy path: a replica after its source, on time, with the same size (and ETag) gets its
        observation and its verdict in one write. Anything else falls back to recording the observation,
        and the matcher decides (crrmon.verify.decide)."""
        mode = self.config.verify_mode
        if event.change is not ObjectChange.CREATED or event.size is None or mode == "checksum":
            return False
        if mode == "etag" and not event.etag:
            return False
        return self.store.record_matching_replica(
            pk,
            event.bucket,
            fields=fields,
            size=event.size,
            etag=event.etag if mode == "etag" else None,
            replica_time_ms=time_ms,
            now_ms=int(now_s * 1000),
            expires_s=int(now_s) + self.config.record_retention_hours * 3600,
        )

    def _source_writes(
        self, event: ObjectEvent, topology, time_ms: int, two_way: bool = False, crossed: bool | None = None
    ):
        expectations = topology.expectations(
            event.bucket,
            event.key,
            delete_marker=event.change is ObjectChange.DELETE_MARKER,
            reason=event.reason,
            encryption=event.encryption,
        )
        for expectation in expectations:
            fields = {
                "src": event.bucket,
                "sreg": event.region or topology.regions.get(event.bucket),
                "dreg": expectation.destination_region,
                "rid": expectation.rule_id,
                "s_etag": event.etag,
                "s_size": event.size,
                "s_time": time_ms,
                "s_enc": event.encryption,
                "s_dm": True if event.change is ObjectChange.DELETE_MARKER else None,
                "oos": expectation.out_of_scope,
                "two_way": True if two_way else None,
                "xacct": crossed,
            }
            yield expectation.destination_bucket, fields, event.size

    def _skip_reason(self, event, now_s: float) -> Ignored | Rejected | None:
        if event.account and not self.config.accepts_account(event.account):
            return Rejected("account-not-allowed", event.account)
        if event.topic_arn and not self.config.accepts_account(topic_account(event.topic_arn)):
            return Rejected("topic-not-allowed", topic_account(event.topic_arn))
        if not event.version_id:
            self.counters.add("UnversionedObjects", 1, (("Bucket", event.bucket),))
            return Ignored("unversioned")
        if isinstance(event, ObjectEvent) and event.change is ObjectChange.VERSION_DELETED:
            return Ignored("version-deleted")  # deleting a version is never replicated
        if event.event_time.timestamp() < now_s - self.config.record_retention_hours * 3600:
            return Ignored("stale-event")  # older than the records kept to match it: cannot be judged once
        return None
