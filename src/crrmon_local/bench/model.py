"""How the bill changes with the object rate: batch fill, Lambda time at a memory size, noise bands.

Pure arithmetic over numbers, tested by tests/unit/test_bench_model.py. The sources of each rule:

- Batch fill. An event source mapping with a batching window (`MaximumBatchingWindowInSeconds` W,
  `BatchSize` B, both read from template.yaml) invokes its function when the batch is full or when W
  has passed since the batch's first record, whichever comes first (AWS Lambda Developer Guide,
  "Batching behavior"). With records arriving at random (Poisson) at rate r, a batch holds its first
  record plus those arriving within W, at most B: E[min(B, 1 + N)], N ~ Poisson(r·W).
- SQS receives. ReceiveMessage returns at most 10 messages; with long polling it returns as soon as a
  message is there (Amazon SQS Developer Guide, "Short and long polling"), so a receive carries what
  arrived during one round trip: min(10, 1 + r·RECEIVE_ROUND_TRIP_S) messages (the round trip is an
  assumption). A batch of n then takes n / that many receives, at least one, and one
  DeleteMessageBatch per 10 messages (its limit).
- Empty receives. Lambda polls an SQS queue with long polls (20 s) and starts with five concurrent
  pollers (AWS Compute Blog, "Understanding how AWS Lambda scales with Amazon SQS standard queues").
  A long poll comes back empty when no message reaches its poller in 20 s: per second,
  pollers / 20 · exp(-20 · r / pollers).
- Stream shards. A DynamoDB stream has a shard per table partition; a partition takes up to 1,000
  write units a second (Amazon DynamoDB Developer Guide, "Partitions and data distribution"). The
  stream's records spread over max(1, writes per second / 1,000) shards, and each shard batches its
  own share: fewer records per batch than one shard would hold.
- Lambda CPU. A function gets CPU in proportion to its memory, one vCPU at 1,769 MB (AWS Lambda
  Developer Guide, "Configuring Lambda function memory"). The handlers run their Python on one
  thread at a time (the GIL), so more than one vCPU does not help them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MB_PER_VCPU = 1769
SQS_MAX_MESSAGES_PER_RECEIVE = 10
SQS_MAX_DELETE_ENTRIES = 10
SQS_LONG_POLL_S = 20
SQS_INITIAL_POLLERS = 5
RECEIVE_ROUND_TRIP_S = 0.020  # one ReceiveMessage, request to answer (assumed)
WRITE_UNITS_PER_PARTITION_S = 1000
SECONDS_PER_MONTH = 30 * 24 * 3600


# ---------------------------------------------------------------- event source mappings


@dataclass(frozen=True)
class Batching:
    """One event source mapping as template.yaml declares it."""

    function: str  # logical ID
    kind: str  # "SQS" or "stream"
    batch_size: int
    window_s: float
    max_concurrency: int | None = None

    @property
    def name(self) -> str:
        """The key the usage counts use: "IngestFunction (SQS)"."""
        return f"{self.function} ({self.kind})"


def batching_from_template(template: Mapping[str, Any]) -> dict[str, Batching]:
    """Every SQS and DynamoDB stream event source of every function, by `Batching.name`."""
    out = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (resource["Properties"].get("Events") or {}).values():
            kind = {"SQS": "SQS", "DynamoDB": "stream"}.get(event["Type"])
            if kind is None:
                continue
            props = event.get("Properties") or {}
            default_size = 10 if kind == "SQS" else 100
            scaling = props.get("ScalingConfig") or {}
            b = Batching(
                function=logical_id,
                kind=kind,
                batch_size=int(_value(template, props.get("BatchSize", default_size))),
                window_s=float(_value(template, props.get("MaximumBatchingWindowInSeconds", 0))),
                max_concurrency=(
                    int(_value(template, scaling["MaximumConcurrency"])) if "MaximumConcurrency" in scaling else None
                ),
            )
            out[b.name] = b
    return out


def function_memory_mb(template: Mapping[str, Any], logical_id: str) -> int:
    """A function's memory as deployed with the defaults: its own MemorySize (a parameter's Default when
    it refers to one), else the Globals' (128, Lambda's default, when neither says)."""
    globals_mb = template.get("Globals", {}).get("Function", {}).get("MemorySize", 128)
    own = template["Resources"][logical_id]["Properties"].get("MemorySize", globals_mb)
    return int(_value(template, own))


def _value(template: Mapping[str, Any], value: Any) -> Any:
    """A property's value: a `!Ref` to a parameter gives the parameter's Default."""
    if isinstance(value, Mapping) and "Ref" in value:
        return template["Parameters"][value["Ref"]]["Default"]
    return value


def records_per_invocation(rate_per_s: float, batch_size: int, window_s: float) -> float:
    """Expected records in one batch: its first record plus what arrives within the window, at most
    `batch_size`: E[min(B, 1 + N)] with N ~ Poisson(rate · window)."""
    if batch_size <= 1 or rate_per_s <= 0 or window_s <= 0:
        return 1.0
    lam = rate_per_s * window_s
    # E[min(B-1, N)] = sum over j < B-1 of P(N > j)
    total, cdf = 0.0, 0.0
    log_lam = math.log(lam)
    for j in range(batch_size - 1):
        cdf += math.exp(j * log_lam - lam - math.lgamma(j + 1))
        tail = max(0.0, 1.0 - cdf)
        total += tail
        if tail < 1e-12:
            break
    return 1.0 + total


def shards(write_units_per_s: float) -> int:
    """Stream shards of a table taking `write_units_per_s`: one per partition of 1,000 write units/s."""
    return max(1, math.ceil(write_units_per_s / WRITE_UNITS_PER_PARTITION_S))


def messages_per_receive(rate_per_s: float, batch_size: int) -> float:
    """Messages one long-poll ReceiveMessage brings: those arriving during its round trip, at most 10."""
    return min(SQS_MAX_MESSAGES_PER_RECEIVE, batch_size, 1.0 + rate_per_s * RECEIVE_ROUND_TRIP_S)


def sqs_requests_per_invocation(fill: float, rate_per_s: float, batch_size: int) -> tuple[float, float]:
    """(ReceiveMessage, DeleteMessageBatch) requests for one batch of `fill` messages."""
    receives = max(1.0, fill / messages_per_receive(rate_per_s, batch_size))
    deletes = max(1.0, math.ceil(fill / SQS_MAX_DELETE_ENTRIES - 1e-9))
    return receives, deletes


def empty_receives_per_s(rate_per_s: float, pollers: int = SQS_INITIAL_POLLERS) -> float:
    """Long polls that come back empty, per second, on a queue receiving `rate_per_s` messages."""
    return pollers / SQS_LONG_POLL_S * math.exp(-SQS_LONG_POLL_S * rate_per_s / pollers)


# ---------------------------------------------------------------- Lambda time at a memory size


def cpu_share(memory_mb: float) -> float:
    """vCPU a function gets at `memory_mb`: proportional to memory, one at 1,769 MB; the handlers use
    one thread at a time, so the share is capped at one."""
    return min(1.0, memory_mb / MB_PER_VCPU)


def lambda_duration_s(cpu_s: float, io_s: float, memory_mb: float) -> float:
    """Duration of one invocation: its CPU (measured on a full core) stretched by the CPU share at
    `memory_mb`, plus the time it waits for AWS. The two are added, not overlapped: an upper figure
    for a handler that waits on threads while another computes (ingest)."""
    return cpu_s / cpu_share(memory_mb) + io_s


@dataclass(frozen=True)
class HandlerCost:
    """One handler's measured CPU per invocation, linear in its records: cpu(n) = fixed + per_record·n,
    from a batch of one and a full batch; and its round trips per invocation of n records."""

    fixed_cpu_s: float
    per_record_cpu_s: float
    round_trips: Any  # Callable[[float], float]: sequential AWS round trips for n records

    def cpu_s(self, records: float) -> float:
        return max(0.0, self.fixed_cpu_s + self.per_record_cpu_s * records)

    def duration_s(self, records: float, memory_mb: float, rtt_s: float) -> float:
        return lambda_duration_s(self.cpu_s(records), self.round_trips(records) * rtt_s, memory_mb)


def linear_cpu(small_s: float, small: int, full_s: float, full: int) -> tuple[float, float]:
    """(fixed, per record) cost of an invocation from a batch of `small` and a batch of `full` records."""
    per = max(0.0, (full_s - small_s) / (full - small)) if full > small else full_s / full
    return max(0.0, small_s - per * small), per


# ---------------------------------------------------------------- noise bands and verdicts


@dataclass(frozen=True)
class Band:
    """A figure with the spread of its repeated measurements: (low, median, high)."""

    low: float
    mid: float
    high: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Band:
        values = sorted(values)
        return cls(values[0], statistics.median(values), values[-1])

    def scaled(self, factor: float) -> Band:
        return Band(self.low * factor, self.mid * factor, self.high * factor)


def verdict(low: float, high: float, target: float, *, at_most: bool = True) -> str:
    """ "met" / "missed" only when the whole band is on one side of the target; else "within noise"."""
    if at_most:
        if high <= target:
            return "met"
        if low > target:
            return "missed"
    else:
        if low >= target:
            return "met"
        if high < target:
            return "missed"
    return "within noise"
