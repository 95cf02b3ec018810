"""Section 8 of bench/results.md: the scale simulation's figures, and its rows of the summary table."""

from __future__ import annotations

import statistics

from crrmon_local.bench import model, quotas
from crrmon_local.bench.scale import CROSS_REGION_S3_S, HOLD_S, LATENCY_S, ScaleRun

HEADING = "## 8. Scale simulation"
SUMMARY_PREFIX = "| scale, "
TARGET_P99_S = 60.0


def _s(seconds: float) -> str:
    return f"{seconds:,.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


def detection(run: ScaleRun) -> str:
    """p50 / p99 / max seconds from the deadline to the first check; "≥" where versions were never checked."""
    values = [run.detection_percentile(q) for q in (0.5, 0.99, 1.0)]
    censored = [bool(run.unchecked) and v >= run.unchecked_floor for v in values]
    return " / ".join(("≥ " if c else "") + _s(v) for v, c in zip(values, censored, strict=True))


def hot_partition_throttles(run: ScaleRun) -> float:
    return sum(v for k, v in run.throttles.items() if k.startswith("DynamoDB"))


def meets_target(run: ScaleRun) -> bool:
    return (
        not run.unchecked
        and run.detection_percentile(0.99) <= TARGET_P99_S
        and run.lost == 0
        and hot_partition_throttles(run) == 0
    )


def _knobs(run: ScaleRun) -> str:
    k = run.knobs
    parts = [f"ingest {k['ingest concurrency']}", f"sweeper {k['sweeper concurrency']}"]
    if run.scenario.matcher_parallelization:
        parts.append(f"matcher ParallelizationFactor {run.scenario.matcher_parallelization}")
    firehose = run.scenario.firehose_bytes_s / quotas.FIREHOSE_BYTES_S
    if firehose != 1:
        parts.append(f"Firehose {firehose:g} MiB/s")
    return ", ".join(parts)


def scale_section(runs: list[ScaleRun], seconds: float) -> tuple[list[str], list[str]]:
    out: list[str] = []
    w = out.append
    if not runs:
        return out, []
    first = runs[0]
    w(f"{HEADING}: objects per second one stack keeps up with")
    w("")
    w(
        "The real domain classes (`Ingest.handle_batch`, `Matcher.handle_batch`, `Sweeper.handle_timers`) under a "
        f"load generator for {first.scenario.seconds // 60} minutes of simulated time, then until the queues drain "
        "(at most two more hours). Per rate a sample of objects runs through the real code "
        f"({first.scenario.sample:,} objects; each stands for the rate x 3,600 / sample objects: the weight below); "
        "the queues between the functions are modelled at full scale, each function serving as many messages a "
        "second as its concurrency and its measured batch duration allow. AWS is stubbed at the boto3-call level "
        "and the default quotas are enforced on the weighted counts (method, sampling and its limits: "
        '`docs/performance.md`, "Scale simulation"; what binds and what lifts it: `docs/scaling.md`).'
    )
    w("")
    latencies = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in LATENCY_S.items())
    memory = first.knobs["memory_mb"]
    w(
        f"Batch duration = CPU at 1 vCPU (the domain code measured, plus botocore's CPU per call measured for each "
        f"operation) / the vCPU share of {memory} MB ({model.cpu_share(memory):.3f}) "
        f"+ round trips on the critical path x latency ({latencies}; a HEAD of the destination in another region "
        f"{CROSS_REGION_S3_S * 1000:.0f} ms). Concurrency and batch sizes are read from template.yaml; rows marked "
        "otherwise override them. Replication latency is log-normal (median 8 s); 0.2% of objects replicate after "
        f"their deadline. The section took {seconds:,.0f} s."
    )
    w("")
    w(
        "| run | weight | detection after the deadline p50 / p99 / max | late objects: deadline to OVERDUE, "
        "median (n) | lost | throttled requests | peak concurrency ingest / matcher / sweeper | oldest message, "
        "events / timers | binds first (peak / limit) | $ per million objects |"
    )
    w("|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        late = f"{_s(statistics.median(r.overdue_delay))} ({len(r.overdue_delay)})" if r.overdue_delay else "— (0)"
        throttled = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(r.throttles.items())) or "0"
        f = r.functions
        binds = r.binding
        w(
            f"| {r.scenario.name} ({_knobs(r)}) | {r.weight:,.0f} | {detection(r)} | {late} | {r.lost:,.0f} | "
            f"{throttled} | {f['ingest'].peak_concurrency:.1f} / {f['matcher'].peak_concurrency:.1f} / "
            f"{f['sweeper'].peak_concurrency:.1f} | {_s(r.queue_age.get('EventsQueue', 0))} / "
            f"{_s(r.queue_age.get('TimerQueue', 0))} | {binds.quota} ({binds.peak:,.1f} / {binds.limit:,.0f}, "
            f"{binds.ratio:.2f}x) | ${r.usd_per_million:,.2f} |"
        )
    w("")
    w(
        "Detection after the deadline: for every sampled version, the time from its deadline until the sweeper "
        'first looked at it (what a version that did not replicate would wait to be reported). "≥": versions '
        "whose deadline passed and that were still waiting when the run ended count with their wait so far. "
        f"Late objects: the sample's versions whose replica landed after the deadline, from the deadline until "
        f"OVERDUE was written (resolution {HOLD_S} s: sampled messages wait up to that long to run in fuller "
        "batches). Lost: messages dead-lettered after 5 receives, stream records past 10 retries, event bodies "
        "parked. Throttled requests and $ are at full scale."
    )
    w("")
    w("### Quotas used at each rate (peak over the window / limit)")
    w("")
    w("| quota | " + " | ".join(r.scenario.name for r in runs) + " | what lifts it |")
    w("|---|" + "---|" * len(runs) + "---|")
    for i, use in enumerate(first.uses):
        cells = []
        for r in runs:
            u = r.uses[i]
            cell = f"{u.ratio:.2f}x"
            cells.append(f"**{cell}**" if u.ratio >= 1 else cell)
        w(f"| {use.quota} | " + " | ".join(cells) + f" | {use.lift} |")
    w("")
    w(
        "Hottest partition key value (writes, peak units a second over the window): "
        + "; ".join(
            f"{r.scenario.name}: `{r.hottest['table/index key, writes'][0] or '-'}` "
            f"{r.hottest['table/index key, writes'][1]:,.0f}"
            for r in runs
        )
        + "."
    )
    w("")
    window, wide = first.knobs.get("windows", (10, 60))
    w(
        f"Lambda rows: concurrency needed (the busiest {first.knobs.get('demand_window', 60)} s's messages a "
        "second / batch size x median batch duration) against the "
        "mapping's MaximumConcurrency (the matcher: against the stream's shards, one per 1,000 write units a "
        "second, at least 4). DynamoDB partition rows: the hottest partition key value of the table or an "
        f"index, over a sliding window of at least {window} s; table, Firehose, S3, SNS and SQS rows over "
        f"{wide} s (the sample's own lumpiness needs that much to average out; at a weight w one sampled write "
        "reads as w / window units a second, which is the resolution of the partition rows)."
    )
    w("")
    w("### Per function (full batches, as extrapolated from the sampled batches)")
    w("")
    w(
        "| run | function | invocations | median batch duration | CPU per batch at 1 vCPU "
        "| Python heap peak, one batch |"
    )
    w("|---|---|---|---|---|---|")
    for r in runs:
        for name, stats in r.functions.items():
            if not stats.durations:
                continue
            w(
                f"| {r.scenario.name} | {name} | {stats.invocations:,.0f} | "
                f"{statistics.median(stats.durations) * 1000:,.0f} ms | "
                f"{statistics.median(stats.cpu_s) * 1000:,.1f} ms "
                f"| {stats.heap_peak_bytes / 1024:,.0f} KiB |"
            )
    w("")
    w(
        "Memory: batch sizes are fixed (the mappings' BatchSize), so what a container holds does not grow "
        "with the rate; the heap peak above is Python's allocation during one batch (tracemalloc), to be read "
        "with section 4's peak RSS."
    )
    w("")
    w(
        "Simulation cost on this machine: "
        + "; ".join(f"{r.scenario.name} {r.wall_s:,.0f} s wall, {r.cpu_s:,.0f} s CPU" for r in runs)
        + "."
    )
    w("")

    summary = []
    for r in runs:
        binds = r.binding
        target = "p99 ≤ 60 s, 0 lost, no hot partition" if r.scenario.rate >= 10_000 else "—"
        status = _status(r) if r.scenario.rate >= 10_000 else f"binds: {binds.quota} ({binds.ratio:.2f}x)"
        summary.append(
            f"{SUMMARY_PREFIX}{r.scenario.name} ({_knobs(r)}) | detection after deadline p50/p99/max {detection(r)}; "
            f"lost {r.lost:,.0f}; throttled {sum(r.throttles.values()):,.0f} | {target} | {status} |"
        )
    return out, summary


def _status(run: ScaleRun) -> str:
    binds = run.binding
    return f"{'met' if meets_target(run) else '**missed**'}; binds: {binds.quota} ({binds.ratio:.2f}x)"


def splice(text: str, section: list[str], rows: list[str], note: str) -> str:
    """`text` (a results file) with section 8 and its summary rows replaced (or added)."""
    body = "\n".join([*section[:2], note, "", *section[2:]]).rstrip("\n") + "\n"
    if HEADING in text:
        start = text.index(HEADING)
        after = text.find("\n## ", start + 1)
        text = text[:start] + body + ("\n" + text[after + 1 :] if after != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    lines = [line for line in text.split("\n") if not line.startswith(SUMMARY_PREFIX)]
    start = lines.index("## Summary")
    last = start
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("## "):
            break
        if lines[i].startswith("|"):
            last = i
    lines[last + 1 : last + 1] = rows
    return "\n".join(lines)
