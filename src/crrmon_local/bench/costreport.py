"""Section 6 of bench/results.md: dollars per million objects as a function of the object rate, beside
the CRR Monitor model and RTC, with noise bands, memory sizes and the levers that would lower the bill."""

from __future__ import annotations

from dataclasses import replace

from crrmon.bands import AGE_BAND_NAMES
from crrmon_local.bench import cost, model, rates
from crrmon_local.bench.rates import INGEST, MATCHER, RATES, SWEEPER, Measured, Setup
from crrmon_local.bench.usage import Scenario

KIB = 1024
LEVER_RATES = (10, 1_000, 10_000)
TARGET_RATIO = 0.5  # at most half the CRR Monitor's cost
TARGET_BREAK_EVEN = 256 * KIB
TARGET_PER_MILLION = 2.50  # one destination, the figure the levers are held against
MEMORY_SIZES = (128, 256, 512)
FIXED_METRICS = 10  # service-wide custom metrics
# Per pair, always: the 8 of the event path and the sweeper's gauges, and OverdueByAge's 5 age bands. Not
# counted (they depend on the set-up): ReplicationLatency per SizeBand, one per band the pair's objects
# fall in (1 to 7), and SloBurnRate's 5 windows with SloObjective.
METRICS_PER_PAIR = 8 + len(AGE_BAND_NAMES)
SNS, EB = cost.SNS_NOTIFICATIONS, cost.EVENTBRIDGE_FORWARDING
DELIVERY = {SNS: "SNS delivery", EB: "EventBridge delivery"}


def money(usd: float) -> str:
    return f"${usd:,.3f}" if usd < 10 else f"${usd:,.2f}"


def band_text(b: model.Band) -> str:
    return f"{money(b.mid)} ({money(b.low)}-{money(b.high)})"


def rate_text(rate: float) -> str:
    return f"{rate:,.0f}/s"


class Bills:
    """Totals per million objects for a scenario at a rate and set-up, at the three band points."""

    def __init__(self, scenarios: list[Scenario], measured: dict[str, Measured], prices: cost.PriceTable):
        self.by_name = {s.name: s for s in scenarios}
        self.measured = measured
        self.prices = prices

    def lines(self, scenario: str, rate: float, setup: Setup, point: str = "mid") -> list[cost.Line]:
        return rates.monitor_lines(self.by_name[scenario], rate, self.measured[point], setup)

    def band(self, scenario: str, rate: float, setup: Setup) -> model.Band:
        values = [cost.total_per_million(self.lines(scenario, rate, setup, p), self.prices) for p in self.measured]
        mid = cost.total_per_million(self.lines(scenario, rate, setup, "mid"), self.prices)
        return model.Band(min(values), mid, max(values))


def fixed_monthly_usd(pairs: int, prices: cost.PriceTable) -> float:
    """Custom metrics (about 10 service-wide and 13 per pair) and the KMS key, per month."""
    metrics = (FIXED_METRICS + METRICS_PER_PAIR * pairs) * prices["cloudwatch_custom_metric_month"].each
    return metrics + prices["kms_key_month"].each


def crr_low_ms(measured: Measured) -> float:
    """The CRR Monitor's low estimate per event: its calls one after the other at this suite's round
    trip, each with the CPU this run measured for one of ingest's DynamoDB calls, at 128 MB."""
    calls = cost.CRR_MONITOR_CALLS_PER_EVENT + 0.5  # the statistics write, once per object of two events
    per_call_cpu = measured.handlers["ingest"].per_record_cpu_s
    return 1000 * model.lambda_duration_s(calls * per_call_cpu, calls * measured.rtt_s, 128)


def crossover(bills: Bills, scenario: str, setup: Setup, crr_at, fixed_usd_month: float = 0.0) -> float | None:
    """The lowest rate (on a 1-2-5 grid from 0.01/s to 10,000/s) from which the monitor costs less;
    `fixed_usd_month` of the monitor's fixed costs spread over the month's objects."""
    grid = [m * 10**e for e in range(-2, 4) for m in (1, 2, 5)] + [10_000]
    for rate in sorted(grid):
        fixed = fixed_usd_month / (rate * model.SECONDS_PER_MONTH) * 1e6
        if bills.band(scenario, rate, setup).mid + fixed <= crr_at(rate):
            return rate
    return None


def section(
    scenarios: list[Scenario],
    measured: dict[str, Measured],
    base: Setup,
    prices: cost.PriceTable,
    *,
    ingest_workers: int,
) -> tuple[list[str], list[str]]:
    """Section 6's Markdown and its summary rows."""
    out: list[str] = []
    w = out.append
    bills = Bills(scenarios, measured, prices)
    one, two, fault = (s.name for s in scenarios[:3])
    mid = measured["mid"]
    eb = replace(base, delivery=EB)
    billed = replace(base, default_bus_billed=True)
    spread = replace(base, sqs_batches_filling=model.SQS_INITIAL_POLLERS)
    crr_est = cost.crr_monitor_estimates(crr_low_ms(mid))

    def crr(d: int, rate: float, est: str, bus: bool = False) -> float:
        a = replace(crr_est[est], default_bus_billed=bus)
        return cost.total_per_million(cost.crr_monitor_lines(d, rate, a), prices)

    bi, bm, bs = base.batching[INGEST], base.batching[MATCHER], base.batching[SWEEPER]
    w("## 6. Dollars per million monitored objects, by object rate")
    w("")
    w(
        "Section 3's counted usage per object, with every charge made per invocation or per request (Lambda "
        "requests and duration, SQS receives and deletes, the timers' SendMessageBatch, Firehose's 5 KB "
        "rounding per record, log lines) divided by the batch fill the event source mappings reach at the "
        "object rate. The mappings' batching is read from template.yaml: ingest "
        f"BatchSize {bi.batch_size}, MaximumBatchingWindowInSeconds {bi.window_s:g}; matcher {bm.batch_size}, "
        f"{bm.window_s:g} s; sweeper {bs.batch_size}, {bs.window_s:g} s. The model "
        "(`crrmon_local/bench/model.py`, each rule with its source): a batch holds its first record and what "
        "arrives within the window, at most the batch size (E[min(B, 1 + Poisson(rate x window))]); a long-poll "
        "ReceiveMessage returns what arrived during its round trip (20 ms assumed), at most 10; Lambda's five "
        "initial pollers each long-poll for 20 s, and a poll comes back empty when no message reaches it "
        "(pollers / 20 s x exp(-20 s x rate / pollers) empty receives a second); the stream's records spread "
        "over one shard per 1,000 write units a second. Lambda duration: "
        f"CPU / share + round trips x {mid.rtt_s * 1000:.0f} ms, share = memory / 1,769 MB "
        f"({model.cpu_share(base.memory_mb):.3f} vCPU at {base.memory_mb} MB), `model.lambda_duration_s`; CPU "
        "per invocation is linear in its records, from the smallest and the full batches measured in section 1 "
        "(table below). Prices from `bench/prices.json`, each with its source and date "
        f"({prices.region}, recorded {prices.recorded})."
    )
    w("")
    w(
        "Noise band: every total is given as median (fastest-slowest), the bill computed again with the "
        "fastest and the slowest of the repeated CPU measurements; a verdict says met or missed only when "
        "the whole band (and, against the CRR Monitor, its whole low-high range) is on one side of the target, "
        "and within noise otherwise."
    )
    w("")
    w(
        "EventBridge's default bus: AWS's pricing page says AWS management events are ingested for free, and "
        'names S3\'s events apart, as "AWS opt-in data events", without a price of their own in the copy read '
        "for `bench/prices.json`. The tables cost them as free (the reading of most secondary sources); the "
        '"default bus billed" column costs this monitor\'s in-region events as custom events ($1.00 per '
        "million). Billed the same way, the CRR Monitor model's CloudTrail events on the default buses would "
        f"add {money(crr(1, 100, 'low', True) - crr(1, 100, 'low'))} per million objects with one destination, "
        f"{money(crr(2, 100, 'low', True) - crr(2, 100, 'low'))} with two."
    )
    w("")

    # the CPU model
    w(
        "| handler | CPU per invocation (median of section 1's repetitions) | round trips for n records | "
        f"one full batch at {base.memory_mb} MB |"
    )
    w("|---|---|---|---|")
    for name, b, trips in (
        ("ingest", bi, f"ceil(n / {ingest_workers}) + ceil(ceil(n / 10) / {ingest_workers})"),
        ("matcher", bm, "1"),
        ("sweeper", bs, "ceil(n / 100) (a BatchGetItem per 100 timers)"),
    ):
        h = mid.handlers[name]
        seconds = h.duration_s(b.batch_size, base.memory_mb, mid.rtt_s)
        w(
            f"| {name} | {h.fixed_cpu_s * 1e3:.2f} ms + {h.per_record_cpu_s * 1e3:.3f} ms per record | {trips} | "
            f"{b.batch_size} records: {seconds * 1e3:,.0f} ms |"
        )
    w("")

    # batch fill
    w("Records per invocation at each object rate (one destination, happy path):")
    w("")
    w("| mapping | " + " | ".join(rate_text(r) for r in RATES) + " |")
    w("|---|" + "---|" * len(RATES))
    fills = {r: rates.flows(bills.by_name[one], r, base) for r in RATES}
    for key, label in (
        (INGEST, "ingest (EventsQueue)"),
        (MATCHER, "matcher (stream)"),
        (SWEEPER, "sweeper (TimerQueue)"),
    ):
        w(f"| {label} | " + " | ".join(f"{fills[r][key].fill:,.1f}" for r in RATES) + " |")
    w("")

    # the curve
    w(
        "Dollars per million objects by object rate. This monitor: median (fastest-slowest repetition). CRR "
        "Monitor: a model of its code, low-high estimate (below)."
    )
    w("")
    w(
        "| objects/s | 1 dest., SNS delivery (recommended) | 1 dest., EventBridge delivery | 1 dest., SNS, default "
        "bus billed | 1 dest., SNS, messages spread over 5 pollers | 2 dest., SNS delivery | 2 dest., EventBridge "
        "delivery | 1 dest., fault mix, SNS | CRR Monitor model, 1 dest. | CRR Monitor model, 2 dest. |"
    )
    w("|---|---|---|---|---|---|---|---|---|---|")
    for r in RATES:
        cells = [
            band_text(bills.band(one, r, base)),
            band_text(bills.band(one, r, eb)),
            band_text(bills.band(one, r, billed)),
            band_text(bills.band(one, r, spread)),
            band_text(bills.band(two, r, base)),
            band_text(bills.band(two, r, eb)),
            band_text(bills.band(fault, r, base)),
            f"{money(crr(1, r, 'low'))}-{money(crr(1, r, 'high'))}",
            f"{money(crr(2, r, 'low'))}-{money(crr(2, r, 'high'))}",
        ]
        w(f"| {r:,} | " + " | ".join(cells) + " |")
    w("")
    pairs = 1
    fixed = fixed_monthly_usd(pairs, prices)
    w(
        f"Not in these figures: fixed monthly costs, about {money(fixed)} a month for one pair "
        f"({FIXED_METRICS} service-wide and {METRICS_PER_PAIR} per-pair custom metrics at "
        f"{money(prices['cloudwatch_custom_metric_month'].each)}, the KMS key; latency per size band adds one "
        "metric per band a pair's objects fall in, an SLO five per pair), which add "
        + ", ".join(f"{money(fixed / (r * model.SECONDS_PER_MONTH) * 1e6)} per million at {r:,}/s" for r in RATES[:3])
        + "; the CRR Monitor's own fixed costs (its every-minute run, its five-minute housekeeping, its "
        "metrics and alarms) are not modelled either."
    )
    w("")

    # where it crosses the CRR Monitor
    cross = {
        (d, est, f): crossover(
            bills, one if d == 1 else two, base, lambda r, d=d, est=est: crr(d, r, est), fixed if f else 0.0
        )
        for d in (1, 2)
        for est in ("low", "high")
        for f in (False, True)
    }

    def cross_text(rate: float | None) -> str:
        return "at no rate up to 10,000/s" if rate is None else f"from {rate:g}/s"

    w(
        "Where this monitor (SNS delivery, median) costs less than the CRR Monitor model, per object: one "
        f"destination {cross_text(cross[1, 'low', False])} against its low estimate, "
        f"{cross_text(cross[1, 'high', False])} against its high; two destinations "
        f"{cross_text(cross[2, 'low', False])} and {cross_text(cross[2, 'high', False])} (the lowest rate "
        "tried is 0.01/s). Counting this monitor's fixed monthly costs for one pair and none of the CRR "
        f"Monitor's: one destination {cross_text(cross[1, 'low', True])} (low estimate) and "
        f"{cross_text(cross[1, 'high', True])} (high). At low rates its batches hold few records and it pays "
        "Lambda invocations, SQS receives and log lines nearly per event, while the CRR Monitor drains its "
        "queue once a minute in full receives; its per-event CloudTrail data events keep it dearer."
    )
    w("")

    # targets with verdicts
    w("| figure | this monitor | alternative | ratio (band) | target | verdict |")
    w("|---|---|---|---|---|---|")
    verdicts = []
    for d, name in ((1, one), (2, two)):
        for r in LEVER_RATES:
            b = bills.band(name, r, base)
            lo, hi = crr(d, r, "low"), crr(d, r, "high")
            ratio_low, ratio_high = b.low / hi, b.high / lo
            v = model.verdict(ratio_low, ratio_high, TARGET_RATIO)
            verdicts.append((d, r, b, lo, hi, ratio_low, ratio_high, v))
            w(
                f"| $ per million objects, {d} dest., SNS delivery, {r:,} objects/s | {band_text(b)} | CRR Monitor "
                f"model {money(lo)}-{money(hi)} | {b.mid / hi:.2f}-{b.mid / lo:.2f} ({ratio_low:.2f}-{ratio_high:.2f}) "
                f"| ≤ {TARGET_RATIO:.1f}x | {v} |"
            )
    break_even = []
    for d, name in ((1, one), (2, two)):
        for r in LEVER_RATES:
            b = bills.band(name, r, base)
            be = model.Band(*(cost.break_even_object_bytes(x, d, prices) for x in (b.low, b.mid, b.high)))
            v = model.verdict(be.low, be.high, TARGET_BREAK_EVEN)
            break_even.append((d, r, be, v))
            t = TARGET_BREAK_EVEN
            w(
                f"| break-even object size against RTC, {d} dest., {r:,} objects/s | {be.mid / KIB:,.0f} KiB "
                f"({be.low / KIB:,.0f}-{be.high / KIB:,.0f}) | RTC $0.015/GB per destination | "
                f"{be.mid / t:.2f} ({be.low / t:.2f}-{be.high / t:.2f}) "
                f"| ≤ 256 KiB | {v} |"
            )
    w("")
    w(
        "Above the break-even size the monitor costs less than RTC; below it RTC is cheaper (and it also "
        "replicates faster)."
    )
    w("")

    # where the money goes
    shown = (1, 10, 1_000, 10_000)
    w("Where the money goes, one destination, SNS delivery (median), per million objects:")
    w("")
    w("| line item | " + " | ".join(f"{r:,}/s" for r in shown) + " |")
    w("|---|" + "---|" * len(shown))
    per_rate = {r: bills.lines(one, r, base) for r in shown}
    for i, line in enumerate(per_rate[shown[0]]):
        cells = [per_rate[r][i].usd_per_million(prices) for r in shown]
        if any(c >= 0.0005 for c in cells):
            w(f"| {line.service}: {line.item} | " + " | ".join(money(c) for c in cells) + " |")
    w("| **total** | " + " | ".join(f"**{money(cost.total_per_million(per_rate[r], prices))}**" for r in shown) + " |")
    w("")

    # the CRR Monitor model
    w("### The CRR Monitor, modelled")
    w("")
    w(
        f"A model of the archived AWS solution's code ({cost.CRR_MONITOR_REPO}), not a measurement: nothing of "
        "it runs here. What each line assumes, with the file it comes from, is in "
        "`crrmon_local/bench/cost.py` `CrrMonitorAssumptions`: per object, the source's and each replica's "
        "PutObject are events, each a CloudTrail data event (its trail logs `ReadWriteType: All` on the "
        "source and replica buckets, so its own HeadObject of each event is a data event too), published by "
        "its agent's rule to SNS and delivered to its queue; per event a HeadObject, a DescribeTable, a "
        "strongly consistent GetItem and an UpdateItem of the object's one item; one statistics write per "
        "object; its queue drained once a minute, 10 messages a ReceiveMessage; an hourly Scan of the whole "
        "table. Low estimate: each item scanned once before TTL removes it, "
        f"{crr_est['low'].lambda_ms_per_event:.0f} ms of Lambda per event (its calls at 10 ms each plus their "
        "CPU at 128 MB); high: 48 scans (TTL deletes expired items within days), 160 ms per event (the "
        "solution's own figure, in a comment of CRRMonitor.py). Lambda at 128 MB x86 (its template sets no "
        "MemorySize)."
    )
    w("")
    r0 = 100
    w(f"| CRR Monitor line item, {r0} objects/s | 1 dest., low | 1 dest., high | 2 dest., low | 2 dest., high |")
    w("|---|---|---|---|---|")
    crr_lines = {(d, est): cost.crr_monitor_lines(d, r0, crr_est[est]) for d in (1, 2) for est in ("low", "high")}
    for i, line in enumerate(crr_lines[1, "high"]):
        cells = [crr_lines[d, est][i].usd_per_million(prices) for d in (1, 2) for est in ("low", "high")]
        w(f"| {line.service}: {crr_lines[1, 'low'][i].item} | " + " | ".join(money(c) for c in cells) + " |")
    w(
        "| **total per million objects** | "
        + " | ".join(f"**{money(cost.total_per_million(crr_lines[k], prices))}**" for k in crr_lines)
        + " |"
    )
    w("")

    # memory sizes
    w("### Memory size: cost and throughput")
    w("")
    w(
        "The same bill at other memory sizes (CPU share = memory / 1,769 MB), and the most each function "
        "takes with full batches back to back at its mapping's MaximumConcurrency (ingest "
        f"{bi.max_concurrency}, sweeper {bs.max_concurrency}; the matcher one batch per stream shard). Timers "
        "per object as counted in section 3 (one on the happy path)."
    )
    w("")
    w(
        "| memory | ingest batch of 10 | $ per million, 1 dest., 10/s | $ per million, 1 dest., 1,000/s | "
        "ingest, most objects/s | sweeper, most timers/s | matcher, most records/s per shard |"
    )
    w("|---|---|---|---|---|---|---|")
    s_one = bills.by_name[one]
    events_per_object = s_one.events / s_one.objects
    memory_cost = {}
    for mb in MEMORY_SIZES:
        setup = replace(base, memory_mb=mb)
        memory_cost[mb] = {r: bills.band(one, r, setup).mid for r in (10, 1_000)}
        ingest_ms = mid.handlers["ingest"].duration_s(bi.batch_size, mb, mid.rtt_s) * 1e3
        w(
            f"| {mb} MB{' (template)' if mb == base.memory_mb else ''} | {ingest_ms:,.0f} ms | "
            f"{money(memory_cost[mb][10])} | {money(memory_cost[mb][1_000])} | "
            f"{rates.throughput(mid, setup, 'ingest', events_per_object):,.0f} | "
            f"{rates.throughput(mid, setup, 'sweeper', 1):,.0f} | "
            f"{rates.throughput(mid, setup, 'matcher', 1):,.0f} |"
        )
    w("")
    cheapest = {r: min(MEMORY_SIZES, key=lambda mb, r=r: memory_cost[mb][r]) for r in (10, 1_000)}
    sweeper_max = rates.throughput(mid, base, "sweeper", 1)
    ingest_max = rates.throughput(mid, base, "ingest", events_per_object)
    w(
        f"Cheapest per object: {cheapest[10]} MB at 10 objects/s, {cheapest[1_000]} MB at 1,000 objects/s. "
        f"At {base.memory_mb} MB and the template's default concurrency the sweeper's mapping "
        f"(MaximumConcurrency {bs.max_concurrency}) takes at most about {sweeper_max:,.0f} timers a second, and "
        f"ingest's ({bi.max_concurrency}) about {ingest_max:,.0f} objects a second: above those rates the queues "
        "grow (the figures above assume they keep up), unless IngestConcurrency and SweeperConcurrency are raised."
    )
    w("")

    # levers
    w("### Levers, per million objects (one destination, SNS delivery)")
    w("")
    levers = {
        **(
            {"ingest BatchSize 10 -> 100 (window 1 s)": base.with_batching(INGEST, batch_size=100, window_s=1.0)}
            if bi.batch_size < 100
            else {}
        ),
        "deadline timers packed, up to 10 objects a message": replace(base, timers_per_message=10),
        "TableCapacity=provisioned (auto scaling at 70%)": replace(base, dynamodb="provisioned"),
        "SystemLogLevel WARN (JSON log format)": replace(base, platform_log_bytes=0),
        "memory 128 MB": replace(base, memory_mb=128),
        "memory 512 MB": replace(base, memory_mb=512),
    }
    together = replace(
        base.with_batching(INGEST, batch_size=100, window_s=1.0),
        timers_per_message=10,
        dynamodb="provisioned",
        platform_log_bytes=0,
        memory_mb=cheapest[1_000],
    )
    baseline = {r: bills.band(one, r, base).mid for r in LEVER_RATES}
    w("| lever | " + " | ".join(f"{r:,}/s" for r in LEVER_RATES) + " |")
    w("|---|" + "---|" * len(LEVER_RATES))
    w("| today's template | " + " | ".join(money(baseline[r]) for r in LEVER_RATES) + " |")
    lever_rows = []
    for label, setup in levers.items():
        cells = []
        for r in LEVER_RATES:
            v = bills.band(one, r, setup).mid
            cells.append(f"{money(v)} ({v - baseline[r]:+,.3f})")
        lever_rows.append(label)
        w(f"| {label} | " + " | ".join(cells) + " |")
    all_cells = []
    for r in LEVER_RATES:
        v = bills.band(one, r, together).mid
        all_cells.append(
            f"**{money(v)}** ({v - baseline[r]:+,.3f}; {'≤' if v <= TARGET_PER_MILLION else '>'} "
            f"${TARGET_PER_MILLION:.2f})"
        )
    w(f"| all of them ({together.memory_mb} MB) | " + " | ".join(all_cells) + " |")
    w("")
    ingest_lever = (
        "Ingest batch 100: a batch takes up to 100 events within its 1 s window (receives still bring at most "
        f"10, deletes take 10 a call); a full batch's UpdateItems go out {ingest_workers} at a time, so its "
        "duration grows. "
        if bi.batch_size < 100
        else ""
    )
    w(
        f"How each lever is costed. {ingest_lever}Packed timers: the deadline timers of one ingest "
        "batch's first sightings go out as one message (up to 10 objects), so the TimerQueue's receives, "
        "deletes and sweeper invocations fall with the packing; the sweeper still reads each version's "
        "items. Provisioned capacity: a write (read) unit a second for an hour costs the unit-hour price, "
        "with auto scaling keeping use at 70% of what is provisioned; not costed: the minimum capacity at "
        "low rates, and that auto scaling follows a burst only after minutes, throttling meanwhile. "
        "SystemLogLevel WARN: needs `LoggingConfig: {LogFormat: JSON}`; Lambda then leaves out its "
        "platform START/END/REPORT records (INFO level; about 300 bytes an invocation assumed). Lambda gives "
        'JSON lines without a "level" field the level INFO, so EMF metric lines stay only while '
        "ApplicationLogLevel is INFO or lower: set SystemLogLevel alone. Memory: duration from the CPU-share "
        "formula, GB-seconds at the new size."
    )
    w("")

    summary = []
    for d, r, b, lo, hi, ratio_low, ratio_high, v in verdicts:
        if r in (10, 1_000):
            summary.append(
                f"| $ per million objects, {d} dest., SNS delivery, {r:,} objects/s | {band_text(b)} vs CRR Monitor "
                f"model {money(lo)}-{money(hi)} | ≤ 0.5x | {ratio_low:.2f}-{ratio_high:.2f}x; {v} |"
            )
    for d, r, be, v in break_even:
        if r in (10, 1_000):
            summary.append(
                f"| break-even vs RTC, {d} dest., SNS delivery, {r:,} objects/s | {be.mid / KIB:,.0f} KiB "
                f"({be.low / KIB:,.0f}-{be.high / KIB:,.0f}) | ≤ 256 KiB | "
                f"{be.low / TARGET_BREAK_EVEN:.2f}-{be.high / TARGET_BREAK_EVEN:.2f}x; {v} |"
            )
    summary.append(
        f"| rate from which the monitor costs less than the CRR Monitor model, 1 dest. (low / high estimate), "
        f"its fixed monthly costs counted | {cross_text(cross[1, 'low', True])} / "
        f"{cross_text(cross[1, 'high', True])} | — | — |"
    )
    summary.append(
        f"| most objects/s at {base.memory_mb} MB: ingest / sweeper timers | {ingest_max:,.0f} / "
        f"{sweeper_max:,.0f} | — | — |"
    )
    return out, summary
