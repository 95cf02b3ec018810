"""Sweeper: the timeout-sweeper function's three triggers, each on its own path.

- Deadline timers (TimerQueue): a batch's items are read in one BatchGetItem, then each version is
  checked on a thread of its own (`crrmon.deadline` decides; HEADs share a per-bucket budget).
- TTL removals (the table's stream): items removed before any final verdict are published as EXPIRED.
- The schedule (once a minute, under a lease): gauges, silence detection, canaries (`crrmon.schedule`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from crrmon.concurrency import run_all
from crrmon.config import Config
from crrmon.deadline import Deadlines
from crrmon.evidence import Evidence, Throttled
from crrmon.metrics import Counters, pair_dimensions
from crrmon.model import Status
from crrmon.publish import Change, Publisher
from crrmon.schedule import Schedule
from crrmon.store import Store, from_image, is_internal
from crrmon.timers import Timer, send_timers
from crrmon.topology import TopologyCache

logger = Logger(child=True)

TTL_PRINCIPAL = "dynamodb.amazonaws.com"
MAX_PUT_OFF_S = 900


def is_ttl_removal(record: dict[str, Any]) -> bool:
    identity = record.get("userIdentity") or {}
    return (
        record.get("eventName") == "REMOVE"
        and identity.get("type") == "Service"
        and identity.get("principalId") == TTL_PRINCIPAL
    )


@dataclass
class Sweeper:
    config: Config
    store: Store
    evidence: Evidence
    topology: TopologyCache
    publisher: Publisher
    sqs: Any
    counters: Counters
    clock: Callable[[], float]
    holder: str = field(default_factory=lambda: uuid.uuid4().hex)
    cloudwatch: Any = None  # only with an SLO: the schedule reads its counts back

    def __post_init__(self) -> None:
        self.deadlines = Deadlines(self.config, self.store, self.evidence, self.topology, self.counters, self.clock)
        self.schedule = Schedule(
            self.config,
            self.store,
            self.evidence,
            self.topology,
            self.counters,
            self.clock,
            self.holder,
            cloudwatch=self.cloudwatch,
            sns=self.publisher.sns if self.publisher else None,
        )

    # ---- deadline timers ----------------------------------------------------------------------
    def handle_timers(self, records: list[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
        """Timer batch -> partial batch response. Timers of one version are checked together, once."""
        versions: dict[str, list[tuple[str, Timer]]] = {}
        for record in records:
            message_id = record["messageId"]
            try:
                timer = Timer.parse(record.get("body") or "")
            except (ValueError, TypeError) as error:
                logger.error("timer message unreadable; dropped", extra={"message_id": message_id, "error": str(error)})
                self.counters.add("TimersRejected")
                continue
            versions.setdefault(timer.pk, []).append((message_id, timer))
        groups = list(versions.values())
        try:
            read = self._read([timer for group in groups for _, timer in group])
        except Exception as error:
            logger.warning("reading the batch's items failed; it will be retried", extra={"error": repr(error)})
            self.counters.add("SweeperErrors")
            return {"batchItemFailures": [{"itemIdentifier": m} for group in groups for m, _ in group]}
        outcomes = run_all(lambda group: self._check_safely([t for _, t in group], read), groups)
        failed: set[str] = set()
        rearm: list[tuple[tuple[str, ...], Timer]] = []
        for group, outcome in zip(groups, outcomes, strict=True):
            message_ids = tuple(m for m, _ in group)
            if outcome is None:
                failed.update(message_ids)
            else:
                rearm.extend((message_ids, t) for t in outcome)
        if rearm:
            unsent = {
                t.pk
                for t in send_timers(self.sqs, self.config.timer_queue_url, [t for _, t in rearm], now_s=self.clock())
            }
            failed.update(m for message_ids, t in rearm if t.pk in unsent for m in message_ids)
        return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(failed)]}

    def _read(self, timers: list[Timer]) -> dict[str, list[dict[str, Any]]]:
        """The items that timers naming their destinations are for, in one BatchGetItem per 100 keys."""
        keys = [(t.pk, dest) for t in timers if t.dests for dest in t.dests]
        read: dict[str, list[dict[str, Any]]] = {t.pk: [] for t in timers if t.dests}
        for item in self.store.items_for(keys) if keys else ():
            read[item["pk"]].append(item)
        return read

    def _check_safely(self, timers: list[Timer], read: dict[str, list[dict[str, Any]]]) -> list[Timer] | None:
        """Check one version for its timers; None when the check failed (the messages are retried)."""
        pk = timers[0].pk
        try:
            named = all(t.dests for t in timers)
            items = read.get(pk, []) if named else self.store.items_of(pk)
            siblings = items
            if named and any(item.get("two_way") for item in items):
                siblings = self.store.items_of(pk)  # two-way: the version's item in the other bucket decides too
            timer = Timer(pk, min(t.due_s for t in timers), max(t.attempt for t in timers))
            return self.check(timer, items, siblings)
        except Exception as error:
            logger.warning("deadline check failed; it will be retried", extra={"error": repr(error)})
            self.counters.add("SweeperErrors")
            return None

    def check(
        self, timer: Timer, items: list[dict[str, Any]], siblings: list[dict[str, Any]] | None = None
    ) -> list[Timer]:
        """Look at every unresolved item of one version. Returns the timer to re-arm, if any."""
        next_checks: list[int] = []
        pending: list[str] = []
        attempt = timer.attempt
        siblings = items if siblings is None else siblings
        for item in items:
            status = item.get("status")
            if status and Status(status).final:
                continue
            try:
                next_check = self.deadlines.check_item(item, siblings)
            except Throttled:
                self.counters.add("HeadsPutOff", 1, pair_dimensions(item.get("src"), item["dest"]))
                if item.get("due", 0) <= self.clock():  # a check asked for before the deadline is not late
                    self.deadlines.mark_overdue(item)
                attempt += 1
                next_check = int(self.clock()) + min(MAX_PUT_OFF_S, 30 * 2 ** min(attempt, 5))
            if next_check is not None:
                next_checks.append(next_check)
                pending.append(item["dest"])
        if not next_checks:
            return []
        return [Timer(pk=timer.pk, due_s=min(next_checks), attempt=attempt, dests=tuple(sorted(pending)))]

    # ---- TTL removals -------------------------------------------------------------------------
    def handle_removals(self, records: list[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
        """Items TTL removed before any final verdict are published as EXPIRED (the item is gone)."""
        changes = []
        for record in records:
            if not is_ttl_removal(record):
                continue
            old = from_image(record["dynamodb"].get("OldImage", {}))
            status = old.get("status")
            if not old or is_internal(old.get("pk")) or (status and Status(status).final):
                continue
            changes.append(Change(item=old, status=Status.EXPIRED, old_status=status))
        try:
            self.publisher.publish(changes, self.counters, now_ms=int(self.clock() * 1000))
        except Exception as error:
            logger.warning("publishing expiries failed; the batch will be retried", extra={"error": repr(error)})
            return {"batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]}
        return {"batchItemFailures": []}

    # ---- schedule -----------------------------------------------------------------------------
    def scheduled(self) -> dict[str, Any]:
        """Once a minute, under a lease: oldest-late gauges, silence detection, canaries."""
        return self.schedule.run()
