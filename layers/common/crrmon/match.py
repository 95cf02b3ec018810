"""Matcher: reads the table's stream, decides what the items' evidence supports, publishes changes.

(1) An item that holds both the source's and the replica's observation (or S3's failure report) gets
its verdict, written once and conditionally. (2) Every change of status seen between old and new
image is published. Publishing follows persisted state, so the stream's redelivery makes it safe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from aws_lambda_powertools import Logger

from crrmon.concurrency import run_all
from crrmon.config import Config
from crrmon.metrics import Counters
from crrmon.model import Status
from crrmon.publish import Change, Publisher
from crrmon.store import Store, Verdict, from_image, is_internal, pair_name
from crrmon.timers import Timer, send_timers
from crrmon.verify import NEEDS_HEAD, decide

logger = Logger(child=True)

Write = partial  # a verdict write (Store.write_verdict with the item's pk and dest first), made later


def status_change(old: dict[str, Any] | None, new: dict[str, Any]) -> Change | None:
    old_status = (old or {}).get("status")
    new_status = new.get("status")
    if new_status and new_status != old_status:
        return Change(item=new, status=Status(new_status), old_status=old_status)
    return None


@dataclass
class Matcher:
    config: Config
    store: Store
    publisher: Publisher
    sqs: Any
    counters: Counters
    clock: Callable[[], float]

    def handle_batch(self, records: list[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
        """Stream batch -> partial batch response (the first record that failed, and all after it, retry).

        The batch's verdict writes overlap on the container's threads (after an outage a batch is a hundred
        late replicas, each with its verdict to write); what follows a failed record is not published."""
        plans: list[tuple[Change | None, Timer | None, Write | None]] = []
        failed_at = len(records)
        for index, record in enumerate(records):
            try:
                plans.append(self.plan(record))
            except Exception as error:
                failed_at = index
                logger.warning("stream record failed; it will be retried", extra={"error": repr(error)})
                self.counters.add("MatcherErrors")
                break
        # Writes to one item stay in the stream's order, on one thread; different items overlap.
        failed = run_all(self._write_in_order, self.writes_by_item(plans))
        failed_at = min([failed_at, *(index for index in failed if index is not None)])
        changes = [change for change, _, _ in plans[:failed_at] if change]
        head_timers = [timer for _, timer, _ in plans[:failed_at] if timer]
        failure = records[failed_at]["dynamodb"]["SequenceNumber"] if failed_at < len(records) else None
        try:
            now_s = self.clock()
            self.publisher.publish(changes, self.counters, now_ms=int(now_s * 1000))
            if head_timers and send_timers(self.sqs, self.config.timer_queue_url, head_timers, now_s=now_s):
                raise RuntimeError("verification timers not sent")
        except Exception as error:
            logger.warning("publishing failed; the whole batch will be retried", extra={"error": repr(error)})
            self.counters.add("PublishErrors")
            failure = records[0]["dynamodb"]["SequenceNumber"] if records else None
        return {"batchItemFailures": [{"itemIdentifier": failure}] if failure else []}

    @staticmethod
    def writes_by_item(plans: list[tuple[Change | None, Timer | None, Write | None]]) -> list[list[tuple[int, Write]]]:
        """The batch's verdict writes, one list per item (its key: the write's first two arguments), each in
        the stream's order, with the index of its record."""
        items: dict[tuple, list[tuple[int, Write]]] = {}
        for index, (_, _, write) in enumerate(plans):
            if write is not None:
                items.setdefault(write.args[:2], []).append((index, write))
        return list(items.values())

    def on_record(self, record: dict[str, Any]) -> tuple[Change | None, Timer | None]:
        """One record: its verdict written, the change to publish and the timer to send."""
        change, timer, write = self.plan(record)
        if write is not None:
            write()
        return change, timer

    def _write_in_order(self, writes: list[tuple[int, Write]]) -> int | None:
        """One item's verdict writes, in order. The index of the record whose write failed, or None."""
        for index, write in writes:
            try:
                write()
            except Exception as error:
                logger.warning("stream record failed; it will be retried", extra={"error": repr(error)})
                self.counters.add("MatcherErrors")
                return index
        return None

    def plan(self, record: dict[str, Any]) -> tuple[Change | None, Timer | None, Write | None]:
        """What one stream record asks for: the change to publish, a timer, the verdict write (not made)."""
        if record.get("eventName") not in ("INSERT", "MODIFY"):
            return None, None, None
        stream = record["dynamodb"]
        new = from_image(stream.get("NewImage", {}))
        if not new or is_internal(new.get("pk")):
            return None, None, None
        old = from_image(stream["OldImage"]) if "OldImage" in stream else None
        change = status_change(old, new)
        decision = decide(new, verify_mode=self.config.verify_mode)
        if isinstance(decision, Verdict):
            write = partial(
                self.store.write_verdict,
                new["pk"],
                new["dest"],
                decision,
                pair=pair_name(new.get("src") or "unknown", new["dest"]),
                now_ms=int(self.clock() * 1000),
                retention_s=self.config.record_retention_hours * 3600,
            )
            return change, None, write
        if decision == NEEDS_HEAD and not (old and decide(old, verify_mode=self.config.verify_mode) == NEEDS_HEAD):
            # The evidence just came to need S3's word (both sides met but the events cannot tell whether
            # the data is the same; a failure report; an observation from another account): ask the
            # sweeper to HEAD now.
            return change, Timer(pk=new["pk"], due_s=int(self.clock()), dests=(new["dest"],)), None
        return change, None, None
