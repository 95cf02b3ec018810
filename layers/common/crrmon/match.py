"""Matcher: reads the table's stream, decides what the items' evidence supports, publishes changes.

(1) An item that holds both the source's and the replica's observation (or S3's failure report) gets
its verdict, written once and conditionally. (2) Every change of status seen between old and new
image is published. Publishing follows persisted state, so the stream's redelivery makes it safe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from crrmon.config import Config
from crrmon.metrics import Counters
from crrmon.model import Status
from crrmon.publish import Change, Publisher
from crrmon.store import Store, Verdict, from_image, is_internal, pair_name
from crrmon.timers import Timer, send_timers
from crrmon.verify import NEEDS_HEAD, decide

logger = Logger(child=True)


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
        """Stream batch -> partial batch response (the first record that failed, and all after it, retry)."""
        changes: list[Change] = []
        head_timers: list[Timer] = []
        failure: str | None = None
        for record in records:
            try:
                change, timer = self.on_record(record)
            except Exception as error:
                failure = record["dynamodb"]["SequenceNumber"]
                logger.warning("stream record failed; it will be retried", extra={"error": repr(error)})
                self.counters.add("MatcherErrors")
                break
            if change:
                changes.append(change)
            if timer:
                head_timers.append(timer)
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

    def on_record(self, record: dict[str, Any]) -> tuple[Change | None, Timer | None]:
        if record.get("eventName") not in ("INSERT", "MODIFY"):
            return None, None
        stream = record["dynamodb"]
        new = from_image(stream.get("NewImage", {}))
        if not new or is_internal(new.get("pk")):
            return None, None
        old = from_image(stream["OldImage"]) if "OldImage" in stream else None
        change = status_change(old, new)
        decision = decide(new, verify_mode=self.config.verify_mode)
        if isinstance(decision, Verdict):
            self.store.write_verdict(
                new["pk"],
                new["dest"],
                decision,
                pair=pair_name(new.get("src") or "unknown", new["dest"]),
                now_ms=int(self.clock() * 1000),
                retention_s=self.config.record_retention_hours * 3600,
            )
            return change, None
        if decision == NEEDS_HEAD and not (old and decide(old, verify_mode=self.config.verify_mode) == NEEDS_HEAD):
            # The evidence just came to need S3's word (both sides met but the events cannot tell whether
            # the data is the same; a failure report; an observation from another account): ask the
            # sweeper to HEAD now.
            return change, Timer(pk=new["pk"], due_s=int(self.clock()), dests=(new["dest"],))
        return change, None
