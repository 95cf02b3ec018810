"""bench/results.md: every figure with its target and its ratio against the baseline or alternative."""

from __future__ import annotations

import os
import statistics
from datetime import UTC, datetime

from crrmon_local.bench import cost
from crrmon_local.bench.speed import SweepRun, Timing
from crrmon_local.bench.usage import TEMPLATE, Scenario
from crrmon_local.cfn import load_template

RTT_MS = 10.0
PLATFORM_LOG_BYTES = 300  # START, END and REPORT lines Lambda writes per invocation (assumed)
LAMBDA_MB = 128
KIB = 1024


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _ok(passed: bool) -> str:
    return "met" if passed else "**missed**"


def _iqr(values: list[float], scale: float = 1.0) -> str:
    if len(values) < 4:
        return "n/a"
    q = statistics.quantiles(values, n=4)
    return f"{q[0] * scale:,.1f}-{q[2] * scale:,.1f}"


def memory_mb() -> int:
    return int(load_template(TEMPLATE)["Globals"]["Function"].get("MemorySize", 128))


# ---------------------------------------------------------------- the monitor's bill per object


def monitor_lines(s: Scenario, overlap: dict[str, Timing], cpu: dict) -> list[cost.Line]:
    """Counted usage per object, with per-batch requests at full batches (10 SQS records, 100 stream records)."""
    n = s.objects

    def per(value: float) -> float:
        return value / n

    events = per(s.events)
    ingest_inv = events / 10
    stream = per(s.records.get("MatcherFunction (stream)", 0))
    matcher_inv = stream / 100
    timers_in = per(s.records.get("SweeperFunction (SQS)", 0))
    sweeper_inv = timers_in / 10
    timers_out = per(s.timers)
    timer_sends = max(timers_out / 10, min(ingest_inv, timers_out))
    counted_matcher = s.invocations.get("MatcherFunction (stream)", 0) or 1
    sns = s.units.get("sns.requests", 0) / counted_matcher * matcher_inv
    raw = per(s.units.get("firehose.raw_bytes", 0))
    objects_per_batch = 100 / stream if stream else 1
    firehose_bytes = cost.firehose_billed_bytes([raw * objects_per_batch]) / objects_per_batch if raw else 0
    mb = memory_mb()
    log_bytes = 0.0
    lambdas = []
    for name, invocations in (("ingest", ingest_inv), ("matcher", matcher_inv), ("sweeper", sweeper_inv)):
        timing, _ = cpu[name]
        log_bytes += invocations * (statistics.median(timing.stdout_bytes) + PLATFORM_LOG_BYTES)
        lambdas += cost.lambda_lines(name, invocations=invocations, ms=overlap[name].wall * 1000, memory_mb=mb)
    return [
        cost.Line("DynamoDB", "write units, table", per(s.units.get("dynamodb.write_units", 0)), "dynamodb_write_unit"),
        cost.Line(
            "DynamoDB",
            "write units, Overdue index",
            per(s.units.get("dynamodb.index_write_units", 0)),
            "dynamodb_write_unit",
        ),
        cost.Line(
            "DynamoDB",
            "read units (Query at each deadline)",
            per(s.units.get("dynamodb.read_units", 0) + s.units.get("dynamodb.read_units_eventual", 0)),
            "dynamodb_read_unit",
        ),
        cost.Line("DynamoDB", "stream reads by Lambda triggers", stream, "dynamodb_stream_read_lambda"),
        cost.Line(
            "EventBridge", "replica events forwarded cross-region", per(s.cross_region_events), "eventbridge_event"
        ),
        cost.Line("SQS", "EventsQueue: one SendMessage per S3 event", events, "sqs_request"),
        cost.Line("SQS", "EventsQueue: Receive + DeleteMessageBatch per 10", 2 * ingest_inv, "sqs_request"),
        cost.Line("SQS", "TimerQueue: SendMessageBatch", timer_sends, "sqs_request"),
        cost.Line("SQS", "TimerQueue: Receive + DeleteMessageBatch per 10", 2 * sweeper_inv, "sqs_request"),
        cost.Line("SQS", "dead-letter SendMessage", per(s.calls.get("sqs.SendMessage", 0)), "sqs_request"),
        cost.Line("S3", "HeadObject", per(s.calls.get("s3.HeadObject", 0)), "s3_get_request"),
        cost.Line("SNS", "alert digests (per pair and reason per batch)", sns, "sns_publish"),
        cost.Line(
            "Firehose", "archive, packed records, 5 KB rounding", firehose_bytes / cost.GIB, "firehose_ingest_gb"
        ),
        cost.Line(
            "CloudWatch", "logs ingested (EMF + platform lines)", log_bytes / cost.GIB, "cloudwatch_logs_ingest_gb"
        ),
        *lambdas,
    ]


def _money(usd: float) -> str:
    return f"${usd:,.3f}" if usd < 10 else f"${usd:,.2f}"


def _kib(n: float) -> str:
    return f"{n / KIB:,.0f} KiB"


# ---------------------------------------------------------------- Markdown


def render(
    *,
    cpu: dict,
    overlap: dict[str, Timing],
    scenarios: list[Scenario],
    cold: dict[str, list[float]],
    memory: dict[str, float],
    baseline_memory: float,
    sweeps: list[SweepRun],
    run_seconds: float,
    machine: str,
    quick: bool,
) -> str:
    prices = cost.load_prices()
    out: list[str] = []
    w = out.append
    w("# CRR Monitor: benchmark results")
    w("")
    w(
        f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d} ({machine}); the run took {run_seconds:,.0f} s"
        + (" (`--quick`: fewer rounds, not the committed figures)." if quick else ".")
    )
    w(
        "Machines are shared and noisy: figures are medians over repeated runs (interquartile range beside "
        "them), compared as ratios with a baseline measured in the same run. No AWS account is used: AWS is "
        "answered at botocore's HTTP layer (1, 2, 4), by moto (3) or by stubbed clients (5). "
        "How to reproduce and read these: `docs/performance.md`."
    )
    w("")
    summary_at = len(out)

    # 1 ------------------------------------------------------------------------------------------
    w("## 1. CPU per event, AWS answered locally")
    w("")
    w(
        "The real handlers (`functions/<name>/app.py`, Powertools decorators included) on full batches; a "
        "botocore `before-send` hook answers every request with a canned HTTP response, so request "
        "building, signing, serialisation and parsing are counted. CPU is `time.process_time()` (all threads)."
    )
    w("")
    w("| handler | batch | AWS calls per batch | CPU per record, median (IQR) | records/s per core | wall per batch |")
    w("|---|---|---|---|---|---|")
    per_event = {}
    for name, (timing, size) in cpu.items():
        us = timing.cpu / size * 1e6
        per_event[name] = us
        calls = ", ".join(f"{k} {v}" for k, v in sorted(timing.calls.items()))
        unit = {"ingest": "SQS event", "matcher": "stream record", "sweeper": "due timer"}[name]
        w(
            f"| {name} | {size} x {unit} | {calls} | {us:,.0f} µs ({_iqr(timing.cpu_s, 1e6 / size)}) "
            f"| {1e6 / us:,.0f} | {timing.wall * 1e3:,.1f} ms |"
        )
    w("")
    ingest_us, matcher_us = per_event["ingest"], per_event["matcher"]
    w(
        f"Per monitored object (one destination: two S3 events, three stream records) that is about "
        f"{2 * ingest_us + 3 * matcher_us:,.0f} µs of CPU: ingest's share is "
        f"{2 * ingest_us / (2 * ingest_us + 3 * matcher_us):.0%}. "
        "Ingest pays for a thread pool per batch and one signed UpdateItem per event."
    )
    w("")

    # 2 ------------------------------------------------------------------------------------------
    w("## 2. One batch with a 10 ms AWS round trip per call")
    w("")
    w("The `before-send` hook sleeps 10 ms before answering. Sequential = every call one after the other.")
    w("")
    w("| handler | batch | AWS calls | wall, median | in round trips | sequential | ratio to sequential | target |")
    w("|---|---|---|---|---|---|---|---|")
    ingest_rt = overlap["ingest"].wall * 1000 / RTT_MS
    for name, label in (
        ("ingest", "10 SQS events"),
        ("ingest_10_workers", "10 SQS events, what-if: MAX_WORKERS=10"),
        ("ingest_shared_pool", "10 SQS events, what-if: 10 threads kept per container"),
        ("matcher", "100 stream records"),
        ("sweeper", "10 due timers"),
    ):
        t = overlap[name]
        calls = sum(t.calls.values())
        wall = t.wall * 1000
        target = "≤ 2 round trips: " + _ok(wall / RTT_MS <= 2) if name.startswith("ingest") else "none set"
        w(
            f"| {name.split('_')[0]} | {label} | {calls} | {wall:,.1f} ms | {wall / RTT_MS:.1f} | "
            f"{calls * RTT_MS:,.0f} ms | {wall / (calls * RTT_MS):.2f} | {target} |"
        )
    w("")
    shared_rt = overlap["ingest_shared_pool"].wall * 1000 / RTT_MS
    w(
        f"Ingest overlaps its UpdateItems (crrmon/ingest.py `MAX_WORKERS` = 8), then sends the batch's timers in "
        f"one SendMessageBatch, which needs the UpdateItems' answers: the floor is 2 round trips plus CPU. "
        f"Measured: {ingest_rt:.1f} round trips, against {sum(overlap['ingest'].calls.values())} sequentially. "
        "A new `ThreadPoolExecutor` per batch starts its threads every time, and each start waits for the GIL "
        "while the other workers serialise and sign requests (a profile of section 1 shows most of the "
        "handler's wall time in `Thread.start`). Keeping the threads for the container's life (what-if row) "
        f"gives {shared_rt:.1f} round trips. The matcher writes its verdicts one after the other and the "
        "sweeper checks its timers one after the other: their wall time grows with the batch."
    )
    w("")

    # 3 ------------------------------------------------------------------------------------------
    w("## 3. AWS usage per monitored object (end to end on moto)")
    w("")
    w(
        "The stack provisioned from template.yaml on moto (in-process `mock_aws`), the real handlers fed by the "
        "emulated event source mappings, a fake clock moving past every deadline and the give-up age. "
        "Every request the handlers make is counted by a botocore hook on boto3's default session (the one "
        "`crrmon.runtime.client` builds from); write units come from each item's size before and after the "
        "write (read by an uncounted client), index writes from the Overdue projection entering or leaving."
    )
    w("")
    for s in scenarios:
        n = s.objects
        w(
            f"### {s.name} ({n} objects"
            + (f": {', '.join(f'{v} {k}' for k, v in s.outcomes.items())})" if len(s.outcomes) > 1 else ")")
        )
        w("")
        w("| service.operation | requests per object | billed units per object |")
        w("|---|---|---|")
        units_of = {
            "dynamodb.UpdateItem": ("dynamodb.write_units", "write units"),
            "dynamodb.Query": ("dynamodb.read_units", "read units (strongly consistent)"),
            "firehose.PutRecordBatch": ("firehose.billed_bytes", "bytes billed (5 KB rounding, unpacked batches)"),
            "sqs.SendMessageBatch": ("sqs.requests", "requests (64 KB chunks)"),
            "sns.Publish": ("sns.requests", "requests (64 KB chunks)"),
        }
        for op, count in sorted(s.calls.items()):
            if op == "dynamodb.UpdateItem (bookkeeping)":
                units = s.units.get("dynamodb.bookkeeping_write_units", 0) / n
                w(
                    f"| {op} | {count / n:,.2f} | {units:,.2f} write units "
                    "(heartbeats: per bucket and minute, not per object) |"
                )
                continue
            unit = units_of.get(op)
            billed = f"{s.units.get(unit[0], 0) / n:,.2f} {unit[1]}" if unit else "—"
            if op == "dynamodb.UpdateItem" and s.units.get("dynamodb.index_write_units"):
                billed += f" + {s.units['dynamodb.index_write_units'] / n:,.2f} index write units"
            w(f"| {op} | {count / n:,.2f} | {billed} |")
        w(
            f"| (EventBridge → EventsQueue) | {s.events / n:,.2f} S3 events, {s.cross_region_events / n:,.2f} "
            "cross-region | — |"
        )
        w(f"| (TimerQueue messages sent) | {s.timers / n:,.2f} | — |")
        w(
            "| (records per function) | "
            + ", ".join(f"{k} {v / n:,.2f}" for k, v in sorted(s.records.items()))
            + " | — |"
        )
        w("")
    one = scenarios[0]
    wru = (one.units.get("dynamodb.write_units", 0) + one.units.get("dynamodb.index_write_units", 0)) / one.objects
    one_heads = one.calls.get("s3.HeadObject", 0) / one.objects
    one_sns = one.calls.get("sns.Publish", 0) / one.objects
    w(
        f"Targets, one destination, happy path: ≤ 3 write units per object: {wru:.2f} ({_ok(wru <= 3)}); "
        f"no S3 request: {one_heads:.2f} ({_ok(one_heads == 0)}); no SNS publish: {one_sns:.2f} ({_ok(one_sns == 0)})."
    )
    w("")
    w(
        "One fidelity fix is applied by the meter: DynamoDB answers `ReturnValues=UPDATED_OLD` with every "
        "attribute the update names that existed before, even when `if_not_exists` left it unchanged; moto 5.2 "
        "leaves those out, which makes every observation look like a first sighting and start a second timer "
        "(a strongly consistent Query and ~0.3 SQS requests more per object). The meter puts them back "
        f"from the item it read before the write. Timers per object counted: {one.timers / one.objects:.2f}."
    )
    w("")

    # 4 ------------------------------------------------------------------------------------------
    w("## 4. Cold start and peak memory")
    w("")
    w(
        "Import time of each handler module (`functions/<name>/app.py`, the layer on `sys.path`, "
        "`POWERTOOLS_TRACE_DISABLED=true`) in a fresh interpreter, against `import boto3` plus creating one "
        f"client in a fresh interpreter; {len(cold['boto3 + client'])} samples each, interleaved, after one "
        "run that writes the bytecode caches. The handler modules build no client at import (clients are "
        "built on the first batch), so the baseline includes one client the handlers have not built yet."
    )
    w("")
    base = statistics.median(cold["boto3 + client"])
    w("| module | import, median (IQR) | ratio to boto3 + client | target ≤ 1.5x |")
    w("|---|---|---|---|")
    w(
        f"| `import boto3` + `boto3.client('sqs')` | {base * 1e3:,.0f} ms "
        f"({_iqr(cold['boto3 + client'], 1e3)}) | 1.00 | — |"
    )
    for name in ("ingest", "matcher", "sweeper"):
        m = statistics.median(cold[name])
        w(
            f"| functions/{name}/app.py | {m * 1e3:,.0f} ms ({_iqr(cold[name], 1e3)}) | {m / base:.2f} "
            f"| {_ok(m / base <= 1.5)} |"
        )
    w("")
    w(
        "Peak resident memory (VmHWM) of a fresh process that imported the handler and ran three full "
        f"batches on canned AWS (ingest 10 events, matcher 100 records, sweeper 10 timers). A bare interpreter "
        f"with boto3 and one client peaks at {baseline_memory:,.0f} MB on this machine."
    )
    w("")
    w(f"| handler | peak RSS | share of a {LAMBDA_MB} MB Lambda | target: fits {LAMBDA_MB} MB |")
    w("|---|---|---|---|")
    for name, mb in memory.items():
        w(f"| {name} | {mb:,.0f} MB | {mb / LAMBDA_MB:.0%} | {_ok(mb <= LAMBDA_MB)} |")
    w("")
    w(
        f"The template gives every function {memory_mb()} MB; Lambda's own runtime process adds a few MB to "
        "the figure Lambda reports as Max Memory Used."
    )
    w("")

    # 5 ------------------------------------------------------------------------------------------
    w("## 5. The sweeper against due timers at scale (stubbed clients)")
    w("")
    w(
        "`Sweeper.handle_timers` in SQS batches of 10 over stubbed clients (plain Python fakes, not botocore "
        "and not moto: moto would take hours at this scale), with the real `RateLimiter` on the wall clock. "
        '"decided": every replica came in time, the timer finds a final item. "outage": the destination is '
        "down, the source version says PENDING. The matcher's digests are then computed from the status "
        "changes, 100 stream records per batch."
    )
    w("")
    w(
        "| scenario | timers | wall | items/s | Query | UpdateItem | HeadObject | SendMessageBatch | SNS digests "
        "| Lambda invocations | HEADs/s (avg; max in any 1 s) | limit |"
    )
    w("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in sweeps:
        heads = sum(r.heads_per_bucket.values())
        peak = max(r.max_heads_in_a_second.values(), default=0)
        avg = heads / r.wall_s if r.wall_s else 0
        burst = max(1.0, r.head_limit_per_s)
        within = peak <= r.head_limit_per_s + burst
        w(
            f"| {r.scenario} | {r.timers:,} | {r.wall_s:,.1f} s | {r.timers / r.wall_s:,.0f} | "
            f"{r.calls.get('dynamodb.Query', 0):,} | {r.calls.get('dynamodb.UpdateItem', 0):,} | {heads:,} | "
            f"{r.calls.get('sqs.SendMessageBatch', 0):,} | {r.digests:,} | {r.invocations:,} | "
            f"{avg:,.1f}; {peak} | {r.head_limit_per_s:g}/s per bucket, burst {burst:g}: {_ok(within)} |"
        )
    w("")
    outage = sweeps[-1]
    w(
        f"In the outage every timer still costs a strongly consistent Query and a conditional UpdateItem "
        f"(OVERDUE), and is re-armed; HEADs stay within the per-bucket budget, the rest are put off "
        f"({outage.timers - sum(outage.heads_per_bucket.values()):,} without a HEAD). Digests go out per pair "
        f"and reason per matcher batch: {outage.digests:,} SNS messages for {outage.timers:,} late objects."
    )
    w("")

    # 6 ------------------------------------------------------------------------------------------
    w("## 6. Dollars per million monitored objects")
    w("")
    w(
        f"Usage from section 3, per-batch requests at full batches (10 SQS records, 100 stream records per "
        f"invocation), Lambda duration from section 2 (10 ms per AWS call) at {memory_mb()} MB arm64, "
        f"prices from `bench/prices.json` ({prices.region}, recorded {prices.recorded}, each with its source)."
    )
    w("")
    totals = {}
    for s in scenarios:
        lines = monitor_lines(s, overlap, cpu)
        totals[s.name] = (lines, cost.total_per_million(lines, prices))
    w("| line item | " + " | ".join(s.name for s in scenarios) + " |")
    w("|---|" + "---|" * len(scenarios))
    keys = [(line.service, line.item) for line in totals[scenarios[0].name][0]]
    for service, item in keys:
        cells = []
        for s in scenarios:
            line = next(x for x in totals[s.name][0] if (x.service, x.item) == (service, item))
            cells.append(_money(line.usd_per_million(prices)))
        if any(c != "$0.000" for c in cells):
            w(f"| {service}: {item} | " + " | ".join(cells) + " |")
    w("| **total per million objects** | " + " | ".join(f"**{_money(totals[s.name][1])}**" for s in scenarios) + " |")
    w("")

    w("### Beside the alternatives")
    w("")
    crr = {d: cost.crr_monitor_lines(d) for d in (1, 2)}
    crr_total = {d: cost.total_per_million(lines, prices) for d, lines in crr.items()}
    w(
        "(a) The archived AWS CRR Monitor (aws-solutions/aws-crr-monitor), per object: a CloudTrail data event "
        "for the source and each replica PutObject, an SNS publish and SQS delivery per event, a HeadObject, a "
        "strongly consistent GetItem and an UpdateItem per event, a statistics-table UpdateItem per replica, "
        "hourly table scans while items are kept (24 h), its Lambda (x86, 128 MB, ~40 ms per event). "
        "Assumptions in `crrmon_local/bench/cost.py` `CrrMonitorAssumptions`."
    )
    w("")
    w("| CRR Monitor line item | one destination | two destinations |")
    w("|---|---|---|")
    for a, b in zip(crr[1], crr[2], strict=True):
        w(f"| {a.service}: {a.item} | {_money(a.usd_per_million(prices))} | {_money(b.usd_per_million(prices))} |")
    w(f"| **total per million objects** | **{_money(crr_total[1])}** | **{_money(crr_total[2])}** |")
    w("")
    w(
        "(b) S3 Replication Time Control: $0.015 per GB replicated to each destination, plus replication "
        "metrics billed as CloudWatch custom metrics per rule (a fixed monthly cost, left out per object)."
    )
    w("")
    happy = {1: totals[scenarios[0].name][1], 2: totals[scenarios[1].name][1]}
    fault = totals[scenarios[2].name][1]
    w("| figure | this monitor | alternative | ratio | target |")
    w("|---|---|---|---|---|")
    verdicts = []
    for d in (1, 2):
        ratio = happy[d] / crr_total[d]
        verdicts.append(("crr", d, ratio))
        w(
            f"| $ per million objects, {d} destination{'s' if d > 1 else ''}, happy path | {_money(happy[d])} | "
            f"CRR Monitor {_money(crr_total[d])} | {ratio:.2f} | ≤ 0.50: {_ok(ratio <= 0.5)} |"
        )
    ratio_fault = fault / crr_total[1]
    w(
        f"| $ per million objects, 1 destination, fault mix | {_money(fault)} | CRR Monitor {_money(crr_total[1])} "
        f"| {ratio_fault:.2f} | — |"
    )
    for d in (1, 2):
        be = cost.break_even_object_bytes(happy[d], d, prices)
        verdicts.append(("rtc", d, be))
        w(
            f"| break-even average object size against RTC, {d} destination{'s' if d > 1 else ''} | {_kib(be)} | "
            f"RTC {_money(cost.rtc_per_million(256 * KIB, d, prices))} per million 256 KiB objects | "
            f"{be / (256 * KIB):.2f} of 256 KiB | ≤ 256 KiB: {_ok(be <= 256 * KIB)} |"
        )
    w("")
    w(
        "Above the break-even size the monitor costs less than RTC; below it RTC is cheaper "
        "(and it also replicates faster)."
    )
    w("")

    w("### Where the money goes, and what would close a missed target")
    w("")
    lines_one = sorted(totals[scenarios[0].name][0], key=lambda x: -x.usd_per_million(prices))
    services = cost.by_service(totals[scenarios[0].name][0], prices)
    w(
        "One destination, happy path, by service: "
        + ", ".join(f"{k} {_money(v)} ({v / happy[1]:.0%})" for k, v in services.items() if v >= 0.005)
        + ". Largest line items: "
        + "; ".join(f"{x.service} {x.item} {_money(x.usd_per_million(prices))}" for x in lines_one[:4])
        + "."
    )
    w("")
    missed = []
    for kind, d, value in verdicts:
        if kind == "crr" and value > 0.5:
            need = happy[d] - 0.5 * crr_total[d]
            missed.append(
                f"- Cost against the CRR Monitor pattern, {d} destination(s): {value:.2f}, target 0.50 — "
                f"{_money(need)} per million objects too much ({value / 0.5 - 1:.0%} over)."
            )
        if kind == "rtc" and value > 256 * KIB:
            need = happy[d] - cost.rtc_per_million(256 * KIB, d, prices)
            missed.append(
                f"- Break-even against RTC, {d} destination(s): {_kib(value)}, target 256 KiB — "
                f"{_money(need)} per million objects too much ({value / (256 * KIB) - 1:.0%} over)."
            )
    if missed:
        w("Missed targets:")
        w("")
        out.extend(missed)
        w("")
    w("Design changes, largest saving first (one destination, per million objects):")
    w("")
    wu = next(x for x in lines_one if x.item == "write units, table").usd_per_million(prices)
    w(
        f"- DynamoDB writes ({_money(wu)}): let the replica's observation write the verdict in the same "
        "UpdateItem when the source is already recorded — a conditional update that sets the replica fields "
        "and `status = COMPLETED` only if `s_size`/`s_etag` match what the replica event carries, falling back "
        f"to a plain observation. Two write units instead of three: {_money(prices['dynamodb_write_unit'].each * 1e6)} "
        "less; the matcher keeps publishing from the stream."
    )
    w(
        "- SQS requests: EventBridge delivers one SendMessage per S3 event; SQS bills each. A rule with an "
        "input transformer cannot batch; sending S3 events to the queue through S3 Event Notifications costs "
        "the same. The timer costs a Query and ~0.3 requests per object even on the happy path: skipping the "
        "timer when the source event arrives after its replica (the item already has `r_time`) saves it for "
        "that share of objects."
    )
    w(
        "- EventBridge cross-region forwarding ($1 per million replica events): run ingest in each destination "
        "region writing to the table (a regional ingest function writing cross-region costs only its requests), "
        "or deliver destination events with S3 Event Notifications to SNS ($0.50 per million) and an SQS "
        "subscription in the monitor region."
    )
    w(
        "- The deadline Query is strongly consistent (1 read unit); eventually consistent reads would halve it, "
        "at the risk of missing a verdict written in the last second (the sweeper's conditional writes make "
        "that safe to retry)."
    )
    w(
        "- Fixed monthly costs are outside these per-object figures: custom metrics ($0.30 per metric per month: "
        "about 10 service-wide plus ~8 per pair), the KMS key ($1 per month), Lambda's SQS pollers on two queues "
        "(~1.3 million empty long polls per month, ~$0.52), the one-minute schedule (43,200 invocations, a lease "
        "write and one Query per pair each), topology refreshes (GetBucketReplication per source bucket "
        "every 5 minutes per warm container) and ingest's heartbeats (one write per watched bucket a minute "
        "per warm container; on moto's fake clock, which jumps minutes at a time, they show up in section 3 "
        "as bookkeeping writes)."
    )
    w("")

    # summary ------------------------------------------------------------------------------------
    summary = ["## Summary", "", "| figure | measured | target | ratio / status |", "|---|---|---|---|"]
    summary.append(
        f"| ingest CPU per event | {per_event['ingest']:,.0f} µs "
        f"({1e6 / per_event['ingest']:,.0f}/s per core) | — | — |"
    )
    summary.append(
        f"| matcher CPU per stream record | {per_event['matcher']:,.0f} µs "
        f"({1e6 / per_event['matcher']:,.0f}/s per core) | — | — |"
    )
    ingest_calls = sum(overlap["ingest"].calls.values())
    summary.append(
        f"| ingest batch of 10, 10 ms per AWS call | {overlap['ingest'].wall * 1e3:,.1f} ms = "
        f"{ingest_rt:.1f} round trips "
        f"| ≤ 2 round trips | {overlap['ingest'].wall * 1e3 / (ingest_calls * RTT_MS):.2f} of sequential; "
        f"{_ok(ingest_rt <= 2)} |"
    )
    summary.append(f"| write units per object (1 destination, happy) | {wru:.2f} | ≤ 3 | {_ok(wru <= 3)} |")
    summary.append(
        f"| S3 requests / SNS publishes per object (happy) | {one_heads:.2f} / {one_sns:.2f} | 0 / 0 | "
        f"{_ok(one_heads == 0 and one_sns == 0)} |"
    )
    worst_import = max(statistics.median(cold[n]) for n in ("ingest", "matcher", "sweeper"))
    summary.append(
        f"| handler import vs boto3 + client (worst of three) | {worst_import * 1e3:,.0f} ms vs {base * 1e3:,.0f} ms "
        f"| ≤ 1.5x | {worst_import / base:.2f}x; {_ok(worst_import / base <= 1.5)} |"
    )
    peak = max(memory.values())
    summary.append(
        f"| peak memory (worst handler) | {peak:,.0f} MB | ≤ {LAMBDA_MB} MB | {peak / LAMBDA_MB:.0%}; "
        f"{_ok(peak <= LAMBDA_MB)} |"
    )
    for r in sweeps:
        pk = max(r.max_heads_in_a_second.values(), default=0)
        summary.append(
            f"| sweeper, {r.timers:,} due timers, {r.scenario} | {r.timers / r.wall_s:,.0f} items/s; "
            f"{sum(r.heads_per_bucket.values()):,} HEADs, max {pk} in 1 s | HEADs ≤ {r.head_limit_per_s:g}/s "
            f"+ burst | {_ok(pk <= 2 * r.head_limit_per_s)} |"
        )
    for d in (1, 2):
        ratio = happy[d] / crr_total[d]
        summary.append(
            f"| $ per million objects, {d} dest. | {_money(happy[d])} vs CRR Monitor {_money(crr_total[d])} | ≤ 0.5x "
            f"| {ratio:.2f}x; {_ok(ratio <= 0.5)} |"
        )
    for d in (1, 2):
        be = cost.break_even_object_bytes(happy[d], d, prices)
        summary.append(
            f"| break-even vs RTC, {d} dest. | {_kib(be)} | ≤ 256 KiB | {be / (256 * KIB):.2f}x; "
            f"{_ok(be <= 256 * KIB)} |"
        )
    summary.append("")
    out[summary_at:summary_at] = summary
    return "\n".join(out) + "\n"
