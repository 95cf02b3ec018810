"""Deadline timers: delayed messages on the TimerQueue, one per object version.

SQS delays a message by at most 15 minutes; a timer that arrives before its deadline is simply sent
again with the time that remains (re-armed). Messages go out 10 per SendMessageBatch. A timer names the
destinations whose items it is for, so that the sweeper reads a whole batch's items in one BatchGetItem
(a timer without them, as older versions sent, is read with a Query of the version's items).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass

MAX_DELAY_S = 900
BATCH = 10


@dataclass(frozen=True)
class Timer:
    pk: str
    due_s: int  # epoch seconds when the sweeper should look at the version
    attempt: int = 0  # how many times a check was put off (rate limit, S3 throttling)
    dests: tuple[str, ...] = ()  # the destinations whose items to look at; () = every item of the version

    def body(self) -> str:
        raw: dict = {"pk": self.pk, "due": self.due_s, "attempt": self.attempt}
        if self.dests:
            raw["d"] = list(self.dests)
        return json.dumps(raw, separators=(",", ":"))

    @classmethod
    def parse(cls, body: str) -> Timer:
        raw = json.loads(body)
        if not isinstance(raw, dict) or not isinstance(raw.get("pk"), str) or not isinstance(raw.get("due"), int):
            raise ValueError("a timer body is {'pk': str, 'due': int, 'attempt': int, 'd': [str]}")
        dests = raw.get("d", [])
        if not isinstance(dests, list) or not all(isinstance(d, str) and d for d in dests):
            raise ValueError("a timer's 'd' is a list of bucket names")
        return cls(pk=raw["pk"], due_s=raw["due"], attempt=int(raw.get("attempt", 0)), dests=tuple(sorted(set(dests))))


def delay_for(due_s: int, now_s: float) -> int:
    return max(0, min(MAX_DELAY_S, math.ceil(due_s - now_s)))


def send_timers(sqs, queue_url: str, timers: Iterable[Timer], *, now_s: float) -> list[Timer]:
    """Send timers (one per pk: the earliest due, for every destination named) in batches of 10. Returns
    those not sent."""
    merged: dict[str, Timer] = {}
    for timer in timers:
        other = merged.get(timer.pk)
        if other is None:
            merged[timer.pk] = timer
            continue
        first = timer if timer.due_s < other.due_s else other
        # A timer for every destination (no names) stays one; otherwise the names add up.
        dests = () if not (timer.dests and other.dests) else tuple(sorted({*timer.dests, *other.dests}))
        merged[timer.pk] = Timer(first.pk, first.due_s, first.attempt, dests)
    pending = list(merged.values())
    failed: list[Timer] = []
    for start in range(0, len(pending), BATCH):
        chunk = pending[start : start + BATCH]
        entries = [
            {"Id": str(i), "MessageBody": t.body(), "DelaySeconds": delay_for(t.due_s, now_s)}
            for i, t in enumerate(chunk)
        ]
        try:
            answer = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        except Exception:  # the whole request failed: every timer in it is retried by the caller
            failed.extend(chunk)
            continue
        failed.extend(chunk[int(entry["Id"])] for entry in answer.get("Failed", []))
    return failed
