"""AWS quotas the scale simulation enforces, and the meters that enforce them in simulated time.

Pure arithmetic, tested by tests/unit/test_bench_scale.py. Every figure is a default quota; the
sources are listed in docs/scaling.md. Lambda time at a memory size is `model.lambda_duration_s`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

# DynamoDB: per partition key value (table and each global secondary index), and per on-demand table.
PARTITION_WRITE_UNITS_S = 1000
PARTITION_READ_UNITS_S = 3000
TABLE_WRITE_UNITS_S = 40_000  # on-demand per-table default (a new table serves 4,000 at once, then doubles)
TABLE_READ_UNITS_S = 40_000
# Firehose Direct PUT, per stream, most regions (us-east-1, us-west-2, eu-west-1: 5 MiB/s, 2,000 requests/s,
# 500,000 records/s); PutRecordBatch takes at most 500 records.
FIREHOSE_BYTES_S = 1024 * 1024
FIREHOSE_REQUESTS_S = 1000
FIREHOSE_RECORDS_S = 100_000
SQS_IN_FLIGHT = 120_000  # standard queue: messages received and not yet deleted
LAMBDA_ACCOUNT_CONCURRENCY = 1000
S3_HEAD_PER_PREFIX_S = 5500
SNS_PUBLISH_S = 30_000  # us-east-1 standard topics; several regions are far lower


def critical_round_trips(caller_calls: int, other_thread_calls: int, pool_width: int) -> int:
    """Round trips a batch waits for: the calling thread's calls one after the other, plus the calls made
    on worker threads overlapped `pool_width` at a time."""
    return caller_calls + math.ceil(other_thread_calls / max(1, pool_width))


class WindowMeter:
    """Units per key over a sliding window of simulated seconds, against a per-second limit.

    `add` returns the share of this request's units that the limit refuses: 0 while the key's rate over
    the window (this request included) stays within the limit, 1 - limit/rate above it. `peak` keeps the
    highest rate offered, so a key pushed past its limit shows by how much. A window of several seconds stands for
    DynamoDB's burst capacity and keeps a sample's own lumpiness from passing for a hot key.
    """

    def __init__(self, limit_per_s: float, window_s: int = 10):
        self.limit = limit_per_s
        self.window = window_s
        self._buckets: dict[str, deque[list[float]]] = {}  # key -> [second, units] for recent seconds
        self.peak: dict[str, float] = {}  # key -> highest rate over the window seen
        self.refused: dict[str, float] = {}  # key -> units refused

    def rate(self, key: str, now_s: float) -> float:
        buckets = self._buckets.get(key)
        if not buckets:
            return 0.0
        second = math.floor(now_s)
        while buckets and buckets[0][0] <= second - self.window:
            buckets.popleft()
        return sum(units for _, units in buckets) / self.window

    def add(self, key: str, units: float, now_s: float) -> float:
        """Offer `units` at `now_s`; returns the share refused. Of what is offered over the window (retries
        of refused requests included) the limit admits `limit` a second: each request is refused with
        probability 1 - limit/offered."""
        second = math.floor(now_s)
        buckets = self._buckets.setdefault(key, deque())
        if buckets and buckets[-1][0] == second:
            buckets[-1][1] += units
        else:
            buckets.append([second, units])
        rate = self.rate(key, now_s)
        self.peak[key] = max(self.peak.get(key, 0.0), rate)
        refused = 0.0 if rate <= self.limit else 1.0 - self.limit / rate
        if refused:
            self.refused[key] = self.refused.get(key, 0.0) + units * refused
        return refused

    def hottest(self) -> tuple[str, float]:
        if not self.peak:
            return "", 0.0
        key = max(self.peak, key=self.peak.__getitem__)
        return key, self.peak[key]


@dataclass(frozen=True)
class Use:
    """How much of one quota a run used at its peak."""

    quota: str
    peak: float
    limit: float
    lift: str  # the knob or quota increase that raises it

    @property
    def ratio(self) -> float:
        return self.peak / self.limit if self.limit else 0.0


def binding(uses: list[Use]) -> Use:
    """The quota closest to (or furthest past) its limit: the first to bind as the rate grows."""
    return max(uses, key=lambda u: u.ratio)
