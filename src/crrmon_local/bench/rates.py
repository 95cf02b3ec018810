"""The monitor's bill per object at a given object rate: section 3's counted usage, with every
per-invocation and per-request charge divided by the batch fill the event source mappings reach at
that rate (crrmon_local.bench.model), and Lambda time at the configured memory's CPU share."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace

from crrmon_local.bench import cost, model
from crrmon_local.bench.usage import Scenario

INGEST = "IngestFunction (SQS)"
MATCHER = "MatcherFunction (stream)"
SWEEPER = "SweeperFunction (SQS)"
SWEEPER_STREAM = "SweeperFunction (stream)"
RATES = (1, 10, 100, 1_000, 10_000)
PLATFORM_LOG_BYTES = 300  # START, END and REPORT lines Lambda writes per invocation (text format; assumed)


def ingest_round_trips(records: float, workers: int) -> float:
    """Ingest's UpdateItems go out `workers` at a time, then the timers in SendMessageBatch calls of 10
    (at most one timer per event), also `workers` calls at a time: an upper count of its round trips one
    after the other, and the floor its latency target is held against (bench section 2)."""
    n = max(1.0, records)
    return math.ceil(n / workers - 1e-9) + math.ceil(math.ceil(n / 10 - 1e-9) / workers - 1e-9)


def matcher_round_trips(records: float) -> float:
    """The matcher archives its whole batch in one PutRecordBatch."""
    return 1.0


def sweeper_round_trips(records: float) -> float:
    """The sweeper reads its timers' items in one BatchGetItem per 100 keys; on the happy path every item
    is decided and nothing more is asked."""
    return max(1.0, math.ceil(records / 100 - 1e-9))


@dataclass(frozen=True)
class Measured:
    """What this run measured of the handlers, for one point of the noise band."""

    handlers: dict[str, model.HandlerCost]  # "ingest", "matcher", "sweeper"
    log_bytes: dict[str, tuple[float, float]]  # stdout bytes per invocation: (fixed, per record)
    rtt_s: float = 0.010


def measured_from(cpu: dict, small: dict, *, workers: int, point: str = "mid", rtt_s: float = 0.010) -> Measured:
    """Handler costs from full batches and the smallest ones (each: name -> (Timing, records)).
    `point`: "low", "mid" or "high", the fastest, median or slowest repetition."""
    pick = {"low": min, "mid": statistics.median, "high": max}[point]
    trips = {
        "ingest": lambda n: ingest_round_trips(n, workers),
        "matcher": matcher_round_trips,
        "sweeper": sweeper_round_trips,
    }
    handlers, logs = {}, {}
    for name, (timing, size) in cpu.items():
        few, k = small[name]
        fixed, per = model.linear_cpu(pick(few.cpu_s), k, pick(timing.cpu_s), size)
        handlers[name] = model.HandlerCost(fixed, per, trips[name])
        logs[name] = model.linear_cpu(
            statistics.median(few.stdout_bytes), k, statistics.median(timing.stdout_bytes), size
        )
    return Measured(handlers, logs, rtt_s)


@dataclass(frozen=True)
class Setup:
    """How the monitor is deployed and billed; the defaults are template.yaml's (`batching`, memory)."""

    memory_mb: int
    batching: dict[str, model.Batching]
    arch: str = "arm64"
    delivery: str = cost.SNS_NOTIFICATIONS
    default_bus_billed: bool = False
    timers_per_message: int = 1  # > 1: the deadline timers of a batch's objects packed into one message
    dynamodb: str = "on-demand"  # or "provisioned": auto scaling at `target_utilisation`
    target_utilisation: float = 0.70
    platform_log_bytes: int = PLATFORM_LOG_BYTES
    sqs_batches_filling: int = 1  # > 1: a queue's messages spread over this many pollers' batches

    def with_batching(self, name: str, **changes) -> Setup:
        return replace(self, batching={**self.batching, name: replace(self.batching[name], **changes)})


@dataclass(frozen=True)
class Flow:
    """Per object at a rate: records, invocations and fill of one event source mapping."""

    records: float  # per object
    fill: float  # records per invocation
    invocations: float  # per object
    receives: float = 0.0  # SQS ReceiveMessage per object (non-empty)
    deletes: float = 0.0  # SQS DeleteMessageBatch per object
    empty_receives: float = 0.0  # SQS empty long polls per object


def _sqs_flow(records: float, rate: float, b: model.Batching, batches_filling: int = 1) -> Flow:
    if records <= 0:
        return Flow(0.0, 0.0, 0.0)
    msg_rate = rate * records
    fill = model.records_per_invocation(msg_rate / batches_filling, b.batch_size, b.window_s)
    receives, deletes = model.sqs_requests_per_invocation(fill, msg_rate, b.batch_size)
    inv = records / fill
    return Flow(records, fill, inv, receives * inv, deletes * inv, model.empty_receives_per_s(msg_rate) / rate)


def _stream_flow(records: float, rate: float, b: model.Batching, write_units: float) -> Flow:
    if records <= 0:
        return Flow(0.0, 0.0, 0.0)
    per_shard = rate * records / model.shards(rate * write_units)
    fill = model.records_per_invocation(per_shard, b.batch_size, b.window_s)
    return Flow(records, fill, records / fill)


def flows(s: Scenario, rate: float, setup: Setup) -> dict[str, Flow]:
    """The event source mappings' records, fill and invocations per object at `rate` objects/s."""
    n = s.objects
    events = s.events / n
    timers = s.timers / n
    write_units = (s.units.get("dynamodb.write_units", 0) + s.units.get("dynamodb.index_write_units", 0)) / n
    ingest = _sqs_flow(events, rate, setup.batching[INGEST], setup.sqs_batches_filling)
    timer_messages = s.records.get(SWEEPER, 0) / n
    if setup.timers_per_message > 1 and ingest.fill:
        per_batch = ingest.fill * timers / events if events else 0
        timer_messages /= max(1.0, min(setup.timers_per_message, per_batch))
    out = {
        INGEST: ingest,
        SWEEPER: _sqs_flow(timer_messages, rate, setup.batching[SWEEPER], setup.sqs_batches_filling),
        MATCHER: _stream_flow(s.records.get(MATCHER, 0) / n, rate, setup.batching[MATCHER], write_units),
    }
    if s.records.get(SWEEPER_STREAM) and SWEEPER_STREAM in setup.batching:
        out[SWEEPER_STREAM] = _stream_flow(
            s.records[SWEEPER_STREAM] / n, rate, setup.batching[SWEEPER_STREAM], write_units
        )
    return out


def monitor_lines(s: Scenario, rate: float, measured: Measured, setup: Setup) -> list[cost.Line]:
    """The monitor's bill per object at `rate` objects/s: counted usage (section 3), per-invocation
    and per-request charges at the batch fill of that rate, Lambda at the memory's CPU share."""
    n = s.objects

    def per(value: float) -> float:
        return value / n

    f = flows(s, rate, setup)
    ingest, sweeper, matcher = f[INGEST], f[SWEEPER], f[MATCHER]
    events = per(s.events)
    timers_out = per(s.timers)
    timer_messages = sweeper.records
    timer_sends = max(timer_messages / 10, min(ingest.invocations, timer_messages)) if timer_messages else 0.0
    counted_matcher = s.invocations.get(MATCHER, 0) or 1
    sns = s.units.get("sns.requests", 0) / counted_matcher * matcher.invocations
    raw = per(s.units.get("firehose.raw_bytes", 0))
    objects_per_batch = matcher.fill / matcher.records if matcher.records else 1
    firehose_bytes = cost.firehose_billed_bytes([raw * objects_per_batch]) / objects_per_batch if raw else 0
    in_region = per(s.events - s.cross_region_events - s.failure_notifications)
    timers_per_sweep = sweeper.fill * (timers_out / timer_messages) if timer_messages else 0.0

    lambdas: list[cost.Line] = []
    log_bytes = 0.0
    for name, flow, records in (
        ("ingest", ingest, ingest.fill),
        ("matcher", matcher, matcher.fill),
        ("sweeper", sweeper, timers_per_sweep),
    ):
        if not flow.invocations:
            continue
        handler = measured.handlers[name]
        seconds = handler.duration_s(records, setup.memory_mb, measured.rtt_s)
        fixed, per_record = measured.log_bytes[name]
        log_bytes += flow.invocations * (fixed + per_record * records + setup.platform_log_bytes)
        lambdas += cost.lambda_lines(
            name, invocations=flow.invocations, ms=seconds * 1000, memory_mb=setup.memory_mb, arch=setup.arch
        )

    writes = per(s.units.get("dynamodb.write_units", 0))
    index_writes = per(s.units.get("dynamodb.index_write_units", 0))
    reads = per(s.units.get("dynamodb.read_units", 0) + s.units.get("dynamodb.read_units_eventual", 0))
    if setup.dynamodb == "provisioned":
        # A unit a second for an hour serves 3,600 units; auto scaling keeps usage at the target.
        hours = 1 / 3600 / setup.target_utilisation
        dynamo = [
            cost.Line(
                "DynamoDB", "write capacity, table (provisioned)", writes * hours, "dynamodb_write_capacity_unit_hour"
            ),
            cost.Line(
                "DynamoDB",
                "write capacity, Overdue and Failed indexes (provisioned)",
                index_writes * hours,
                "dynamodb_write_capacity_unit_hour",
            ),
            cost.Line("DynamoDB", "read capacity (provisioned)", reads * hours, "dynamodb_read_capacity_unit_hour"),
        ]
    else:
        dynamo = [
            cost.Line("DynamoDB", "write units, table", writes, "dynamodb_write_unit"),
            cost.Line("DynamoDB", "write units, Overdue and Failed indexes", index_writes, "dynamodb_write_unit"),
            cost.Line("DynamoDB", "read units (the items read at each deadline)", reads, "dynamodb_read_unit"),
        ]
    return [
        *dynamo,
        cost.Line("DynamoDB", "stream reads by Lambda triggers", matcher.records, "dynamodb_stream_read_lambda"),
        cost.Line(
            "EventBridge",
            "in-region S3 events on the default bus"
            + (" (billed as custom events)" if setup.default_bus_billed else ""),
            in_region,
            "eventbridge_event" if setup.default_bus_billed else "eventbridge_s3_event_default_bus",
        ),
        *cost.forwarding_lines(per(s.cross_region_events), setup.delivery),
        cost.Line("SNS", "S3 replication failure notifications", per(s.failure_notifications), "sns_publish"),
        cost.Line("SQS", "EventsQueue: one SendMessage per S3 event", events, "sqs_request"),
        cost.Line("SQS", "EventsQueue: ReceiveMessage", ingest.receives, "sqs_request"),
        cost.Line("SQS", "EventsQueue: DeleteMessageBatch", ingest.deletes, "sqs_request"),
        cost.Line("SQS", "EventsQueue: empty long polls", ingest.empty_receives, "sqs_request"),
        cost.Line("SQS", "TimerQueue: SendMessageBatch", timer_sends, "sqs_request"),
        cost.Line("SQS", "TimerQueue: ReceiveMessage", sweeper.receives, "sqs_request"),
        cost.Line("SQS", "TimerQueue: DeleteMessageBatch", sweeper.deletes, "sqs_request"),
        cost.Line("SQS", "TimerQueue: empty long polls", sweeper.empty_receives, "sqs_request"),
        cost.Line("SQS", "dead-letter SendMessage", per(s.calls.get("sqs.SendMessage", 0)), "sqs_request"),
        cost.Line("S3", "HeadObject", per(s.calls.get("s3.HeadObject", 0)), "s3_get_request"),
        cost.Line("SNS", "alert digests (per pair and reason per batch)", sns, "sns_publish"),
        cost.Line(
            "Firehose", "archive, one record per batch, 5 KB rounding", firehose_bytes / cost.GIB, "firehose_ingest_gb"
        ),
        cost.Line(
            "CloudWatch", "logs ingested (EMF + platform lines)", log_bytes / cost.GIB, "cloudwatch_logs_ingest_gb"
        ),
        *lambdas,
    ]


def throughput(measured: Measured, setup: Setup, name: str, records_per_unit: float) -> float:
    """Most units (objects, timers) a second one mapping's function can take at its MaximumConcurrency
    (one concurrent batch per shard for a stream): full batches, back to back."""
    key = {"ingest": INGEST, "matcher": MATCHER, "sweeper": SWEEPER}[name]
    b = setup.batching[key]
    full = b.batch_size
    seconds = measured.handlers[name].duration_s(full, setup.memory_mb, measured.rtt_s)
    concurrency = b.max_concurrency or 1
    return concurrency * full / seconds / records_per_unit
