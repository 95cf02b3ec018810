"""bench/results.md: every figure with its target and its ratio against the baseline or alternative."""

from __future__ import annotations

import math
import os
import statistics
from datetime import UTC, datetime

from crrmon_local.bench import cost, costreport, model, rates, speed
from crrmon_local.bench.speed import InventoryScan, ReconcileRun, SweepRun, Timing
from crrmon_local.bench.usage import TEMPLATE, Scenario
from crrmon_local.cfn import load_template

RTT_MS = 10.0
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
    """The event path's functions' memory (the Globals')."""
    return int(load_template(TEMPLATE)["Globals"]["Function"].get("MemorySize", 128))


def reconcile_memory_mb() -> int:
    """The reconciliation function's memory: its own parameter, ReconcileMemorySize's default."""
    return model.function_memory_mb(load_template(TEMPLATE), "ReconcileFunction")


def _read_units(s: Scenario) -> str:
    """Read units per object of the counted Query/GetItem calls, by consistency."""
    parts = []
    for key, label in (
        ("dynamodb.read_units", "strongly consistent"),
        ("dynamodb.read_units_eventual", "eventually consistent"),
    ):
        if key in s.units:
            parts.append(f"{s.units[key] / s.objects:,.2f} read units ({label})")
    return " + ".join(parts) or "0.00 read units"


def _usd(bill: list[cost.Line], prices: cost.PriceTable, item: str) -> float:
    """Dollars per million objects of the line named `item` (0 when the bill has none)."""
    return sum(x.usd_per_million(prices) for x in bill if x.item == item)


def _money(usd: float) -> str:
    return f"${usd:,.3f}" if usd < 10 else f"${usd:,.2f}"


def _kib(n: float) -> str:
    return f"{n / KIB:,.0f} KiB"


# ---------------------------------------------------------------- the scheduled reconciliation

MILLION = 1_000_000


def reconcile_seconds(run: ReconcileRun, *, with_round_trips: bool = True) -> float:
    """Lambda duration of one pass per version listed: its CPU (measured on a full core) at the function's
    CPU share, plus the round trips one after the other when asked."""
    waiting = speed.waiting_s(run.pass_calls) if with_round_trips else 0.0
    return model.lambda_duration_s(run.timing.cpu, waiting, reconcile_memory_mb()) / run.versions


def reconcile_lines(run: ReconcileRun, *, with_round_trips: bool) -> list[cost.Line]:
    """One pass's bill per version listed: CPU at the memory's share as Lambda duration, plus the round
    trips when asked."""
    per = 1 / run.versions
    seconds = reconcile_seconds(run, with_round_trips=with_round_trips)
    return cost.reconcile_lines(
        listings=run.pass_calls["s3.ListObjectVersions"] * per,
        read_units=run.read_units * per,
        progress_writes=run.pass_calls["dynamodb.UpdateItem"] * per,
        sqs_requests=run.sqs_requests * per,
        lambda_seconds=seconds,
        memory_mb=reconcile_memory_mb(),
        arch=architecture(),
    )


def architecture() -> str:
    return (load_template(TEMPLATE)["Globals"]["Function"].get("Architectures") or ["x86_64"])[0].replace(
        "x86_64", "x86"
    )


def _spread(values: list[float], scale: float = 1.0) -> str:
    """The interquartile range, or the range when there are too few values for quartiles."""
    if len(values) >= 4:
        return _iqr(values, scale)
    return f"{min(values) * scale:,.0f}-{max(values) * scale:,.0f}"


def reconcile_section(runs: dict[str, ReconcileRun], prices: cost.PriceTable) -> tuple[list[str], list[str]]:
    """Section 7's Markdown, and its rows for the summary table."""
    from crrmon.reconcile import RUN_MARGIN_S

    out: list[str] = []
    w = out.append
    tracked, untracked, old, latency = runs["tracked"], runs["untracked"], runs["old"], runs["latency"]
    cases = {"tracked": tracked, "untracked": untracked, "old": old}
    labels = {
        "tracked": "all tracked",
        "untracked": "1% untracked",
        "old": f"all older than the {tracked.retention_hours} h retention",
    }
    list_ms, rtt_ms = speed.LATENCIES_S["s3.ListObjectVersions"] * 1e3, speed.RTT_S * 1e3
    w("## 7. Scheduled reconciliation")
    w("")
    w(
        "The real handler (`functions/reconcile/app.py`, Powertools decorators included) run as its schedule "
        "runs it, on AWS answered at botocore's HTTP layer as in section 1: one source bucket, one destination. "
        "ListObjectVersions is answered with ListVersionsResult XML as S3 writes it (1,000 `Version` entries a "
        "page, url-encoded keys, `IsTruncated`, `NextKeyMarker`, `NextVersionIdMarker`), BatchGetItem with "
        "DynamoDB JSON holding those of the keys asked that exist; both are built before the clock starts. "
        f'"All tracked": every version was written between 23 h and 40 min ago, inside the '
        f"{tracked.retention_hours} h record retention and past the 30 min settle time, so every one is judged, and "
        'every one has its item (the common case). "1% untracked": the same, but one version in a hundred has no '
        'item, and its event is sent to the EventsQueue. "All older": every version was written before the '
        "retention window, so it is listed and parsed but not asked about. Each timed run is a complete pass "
        "from the first page; CPU is `time.process_time()`, median of the passes, after one warm-up pass."
    )
    w("")
    w(
        "| case | versions per pass | AWS calls per pass | CPU per pass, median (range) | CPU per 1,000 versions "
        "| versions/s per core | of which canned answers | events fed |"
    )
    w("|---|---|---|---|---|---|---|---|")
    for name, run in cases.items():
        calls = ", ".join(f"{k} {v}" for k, v in sorted(run.timing.calls.items()))
        canned_share = statistics.median(run.canned_cpu_s) / run.timing.cpu
        w(
            f"| {labels[name]} | {run.versions:,} | {calls} | {run.timing.cpu * 1e3:,.0f} ms "
            f"({_spread(run.timing.cpu_s, 1e3)}) | {run.cpu_ms_per_thousand:,.0f} ms "
            f"| {run.versions / run.timing.cpu:,.0f} | {canned_share:.1%} | {run.fed:,} |"
        )
    w("")
    waited = speed.waiting_s(latency.timing.calls)
    page_kib = latency.list_bytes / max(1, latency.timing.calls["s3.ListObjectVersions"]) / KIB
    w(
        "The canned answers' own CPU (looking a page up; reading the keys asked and echoing those that exist) is "
        "included in the figures: the share column. One more pass, of "
        f"{latency.versions:,} versions with the suite's {rtt_ms:.0f} ms per AWS call (section 2) and "
        f"{list_ms:.0f} ms per ListObjectVersions page (assumed: a page of 1,000 versions is {page_kib:,.0f} KiB "
        f"of XML), took {latency.timing.wall * 1e3:,.0f} ms of wall time; its CPU "
        f"({latency.timing.cpu * 1e3:,.0f} ms) plus every round trip one after the other ({waited * 1e3:,.0f} ms) "
        f"is {(latency.timing.cpu + waited) * 1e3:,.0f} ms. The pass waits for each answer before its next request: "
        "its duration is its CPU plus its round trips."
    )
    w("")
    per = {name: MILLION / run.versions for name, run in cases.items()}
    calls = {name: run.pass_calls for name, run in cases.items()}
    keys_each = tracked.keys_asked / max(1, calls["tracked"]["dynamodb.BatchGetItem"])
    w("| per million versions listed | " + " | ".join(labels.values()) + " | billed as |")
    w("|---|" + "---|" * (len(cases) + 1))
    rows = [
        ("s3.ListObjectVersions", lambda c: calls[c]["s3.ListObjectVersions"], "LIST requests"),
        (
            f"dynamodb.BatchGetItem ({keys_each:,.0f} keys each, keys only, eventually consistent)",
            lambda c: calls[c]["dynamodb.BatchGetItem"],
            "read units, next row",
        ),
        ("DynamoDB read units", lambda c: cases[c].read_units, "0.5 per key asked, found or not (items under 4 KB)"),
        (
            "dynamodb.UpdateItem (progress, one per page)",
            lambda c: calls[c]["dynamodb.UpdateItem"],
            "one write unit each",
        ),
        (
            "sqs.SendMessageBatch (events of untracked versions, 10 a request)",
            lambda c: calls[c]["sqs.SendMessageBatch"],
            "SQS requests, next row",
        ),
        ("SQS requests billed", lambda c: cases[c].sqs_requests, "one per 64 KB chunk of a request"),
        ("events fed to the EventsQueue", lambda c: cases[c].fed, "—"),
    ]
    for label, value, billed in rows:
        w(f"| {label} | " + " | ".join(f"{value(c) * per[c]:,.0f}" for c in cases) + f" | {billed} |")
    w("")
    w(
        "Per run, not per version, and not in the figures: PutItem 2 (the lease, taken and released), "
        f"BatchGetItem 1 (the `__reconcile__` items, strongly consistent: {tracked.bookkeeping_read_units:g} "
        "read unit per bucket), ssm.GetParameter on a cold container."
    )
    w("")
    bills = {
        (name, rt): reconcile_lines(run, with_round_trips=rt) for name, run in cases.items() for rt in (False, True)
    }
    totals = {key: cost.total_per_million(bill, prices) for key, bill in bills.items()}
    w(
        f"Dollars per million versions listed, per pass, one destination, prices from `bench/prices.json`. Lambda "
        f"at {reconcile_memory_mb()} MB {architecture()}, its duration either the measured CPU alone, stretched to "
        f"the function's CPU share ({model.cpu_share(reconcile_memory_mb()):.3f} vCPU: `model.lambda_duration_s`), "
        "or that "
        f"plus the round trips above ({rtt_ms:.0f} ms per call, {list_ms:.0f} ms per listing page; on AWS the "
        "pass waits for the network, so this is the nearer figure)."
    )
    w("")
    w("| line item | " + " | ".join(labels.values()) + " |")
    w("|---|" + "---|" * len(cases))
    for i, line in enumerate(bills["tracked", False]):
        for rt in (False, True) if line.service == "Lambda" else (False,):
            cells = [bills[name, rt][i].usd_per_million(prices) for name in cases]
            label = (
                f"{line.item}, {'CPU plus round trips' if rt else 'CPU only'}"
                if line.service == "Lambda"
                else line.item
            )
            if any(cells):
                w(f"| {line.service}: {label} | " + " | ".join(f"${c:,.4f}" for c in cells) + " |")
    for rt in (False, True):
        w(
            f"| **total per million versions per pass, Lambda {'CPU plus round trips' if rt else 'CPU only'}** | "
            + " | ".join(f"**${totals[name, rt]:,.4f}**" for name in cases)
            + " |"
        )
    w("")
    seconds = {name: reconcile_seconds(run) for name, run in cases.items()}
    timeout = int(load_template(TEMPLATE)["Resources"]["ReconcileFunction"]["Properties"]["Timeout"])
    run_s = timeout - RUN_MARGIN_S
    reads = sum(x.usd_per_million(prices) for x in bills["tracked", True] if x.price == "dynamodb_read_unit")
    w(
        f"Reads are {reads / totals['tracked', True]:.0%} of the bill of a pass over versions inside the retention "
        "window: one key per version and destination, whether or not the version is new; a second destination "
        "doubles them, not the listing. Each version fed then costs what any monitored object costs (section 6), "
        "its event coming through SendMessageBatch instead of S3's delivery. Left out, as not per version: each "
        "run's invocation, lease writes and log lines."
    )
    w("")
    billion_runs = seconds["old"] * 1e9 / run_s
    w(
        "The listing covers every version in the bucket, however old: a version older than the window costs no "
        f"read, but its share of a LIST request and {old.cpu_ms_per_thousand / 1000:,.3f} ms of CPU "
        f"(${totals['old', True]:,.4f} per million with the round trips). With its round trips a pass takes "
        f"{seconds['tracked'] * MILLION:,.0f} s per million versions inside the window "
        f"({reconcile_seconds(tracked, with_round_trips=False) * MILLION:,.0f} s of it CPU at "
        f"{reconcile_memory_mb()} MB's share) and "
        f"{seconds['old'] * MILLION:,.0f} s per million older ones; a run lists for up to {run_s} s (the "
        f"{timeout} s timeout less its {RUN_MARGIN_S} s margin): {run_s / seconds['tracked'] / MILLION:,.1f} or "
        f"{run_s / seconds['old'] / MILLION:,.1f} million versions. A bucket holding a billion versions, however "
        f"few of them recent, takes about {billion_runs:,.0f} runs ({seconds['old'] * 1e9 / 3600:,.0f} hours of "
        f"Lambda, ${totals['old', True] * 1000:,.2f}) per pass, and a pass that outlasts the "
        f"{tracked.retention_hours} h window leaves versions written behind it unjudged."
    )
    w("")
    summary = [
        f"| reconciliation CPU per 1,000 versions listed (all tracked) | {tracked.cpu_ms_per_thousand:,.0f} ms "
        f"({tracked.versions / tracked.timing.cpu:,.0f} versions/s per core) | — | — |",
        f"| reconciliation $ per million versions per pass (1 dest., all tracked) | "
        f"${totals['tracked', True]:,.4f} (Lambda CPU plus round trips), ${totals['tracked', False]:,.4f} "
        "(CPU only) | — | — |",
    ]
    return out, summary


def proof_section(
    scan: InventoryScan, runs: dict[str, ReconcileRun], prices: cost.PriceTable, skim: InventoryScan | None = None
) -> list[str]:
    """Section 7's part on the daily proof from S3 Inventory: what reading a report costs, and a pass per
    million objects against listing and against RVT-S3's published figure. `skim`: a report with few rows
    of the day (what a large, old bucket's report is), for how large a report one run can read."""
    from crrmon.reconcile import RUN_MARGIN_S

    memory = reconcile_memory_mb()
    run_s = int(load_template(TEMPLATE)["Resources"]["ReconcileFunction"]["Properties"]["Timeout"]) - RUN_MARGIN_S
    listing = cost.total_per_million(reconcile_lines(runs["tracked"], with_round_trips=True), prices)

    def at_share(s: InventoryScan) -> float:
        """Seconds a row at the function's CPU share."""
        return s.seconds_per_row / model.cpu_share(memory)

    rows = cost.proof_comparison(
        prices, reconcile_usd_per_million=listing, scan_seconds=at_share(scan), memory_mb=memory, arch=architecture()
    )

    def read(s: InventoryScan) -> str:
        return (
            f"one gzipped CSV report of {s.rows:,} rows ({s.compressed_bytes / KIB:,.0f} KiB), {s.day_rows:,} of "
            f"them of the day being proven: {statistics.median(s.cpu_s) * 1e3:,.0f} ms CPU, median of "
            f"{len(s.cpu_s)} reads, {s.seconds_per_row * 1e6:,.2f} µs per row on a full core, "
            f"{at_share(s) * 1e6:,.2f} µs at {memory} MB's CPU share: a run reading for {run_s} s reads about "
            f"{run_s / at_share(s) / 1e6:,.0f} million rows"
        )

    out = [
        "### Daily proof from S3 Inventory reports",
        "",
        "`crrmon.inventory` searches the decompressed report for the day's date a block at a time; only the "
        f"rows that hold it are split out and parsed. Reading {read(scan)}.",
        "",
    ]
    if skim is not None:
        billion_cpu_s = skim.seconds_per_row * 1e9
        need = (
            f"{math.ceil(model.MB_PER_VCPU * billion_cpu_s / run_s / 64) * 64:,} MB (`ReconcileMemorySize`)"
            if billion_cpu_s < run_s
            else "more than one vCPU, which one thread cannot use: more than one run"
        )
        out += [
            f"Reading {read(skim)}. The destination's report is read within one run, so a destination of a "
            f"billion versions with as few of the day needs {billion_cpu_s:,.0f} s of a full core: {need}. CPU "
            "only: streaming the report from S3 overlaps nothing and comes on top (not measured here).",
            "",
        ]
    out += [
        "Dollars per million source objects, one destination, prices from `bench/prices.json`: a pass, and a "
        "month of daily passes. The inventory line bills both buckets' reports (S3 Inventory's charge per object "
        "listed), their GETs and the Lambda reading them; the listing line bills the LIST requests of "
        "ListObjectVersions over both buckets; the reconciliation line is the measured pass above (all tracked, "
        "Lambda CPU plus round trips). RVT-S3's figure is quoted from its README (aws-samples/sample-RVT-S3, "
        '"Charges"); its cost table shows no S3 Inventory listing charge.',
        "",
        "| way | $ per million objects per pass | $ per million objects per month (30 passes) |",
        "|---|---|---|",
    ]
    out.extend(f"| {name} | ${per_pass:,.4f} | ${per_month:,.3f} |" for name, per_pass, per_month in rows)
    out.append("")
    return out


# ---------------------------------------------------------------- Markdown


def cold_start_section(
    cold: dict[str, list[float]], memory: dict[str, list[float]], baseline_memory: float
) -> list[str]:
    """Section 4: import times (tracing off and on) and peak memory."""
    import crrmon.ingest as ingest_module

    out: list[str] = []
    w = out.append
    w("## 4. Cold start and peak memory")
    w("")
    w(
        "Import time of each handler module (`functions/<name>/app.py`, the layer on `sys.path`, "
        "`POWERTOOLS_TRACE_DISABLED=true`) in a fresh interpreter, against `import boto3` plus creating one "
        f"client in a fresh interpreter; {len(cold['boto3 + client'])} samples each, interleaved, after one "
        "run that writes the bytecode caches. The handler modules build no client at import (clients are "
        "built on the first batch), so the baseline includes one client the handlers have not built yet. "
        "With tracing on (`EnableTracing=true`: `POWERTOOLS_TRACE_DISABLED=false`, and the variables Lambda "
        "sets for active tracing) the import also builds Powertools' Tracer, which imports the X-Ray SDK "
        "and patches botocore; tracing off, the X-Ray SDK is never imported. The target is held against "
        "tracing off, the default."
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
    for name in ("ingest", "matcher", "sweeper"):
        traced = cold.get(f"{name} (tracing on)")
        if traced:
            m = statistics.median(traced)
            w(
                f"| functions/{name}/app.py, tracing on | {m * 1e3:,.0f} ms ({_iqr(traced, 1e3)}) | {m / base:.2f} "
                f"| — (tracing off is the default) |"
            )
    w("")
    samples = len(next(iter(memory.values())))
    w(
        "Peak resident memory (VmHWM) of a fresh process that imported the handler and ran three full "
        "batches on canned AWS (a full batch each, template.yaml's BatchSize: "
        + ", ".join(f"{k} {v}" for k, v in speed.full_batches().items())
        + f"); {samples} processes "
        "per handler, interleaved, and the worst of them held against the limit. A bare interpreter "
        f"with boto3 and one client peaks at {baseline_memory:,.0f} MB on this machine."
    )
    w("")
    w(
        f"| handler | peak RSS, median | peak RSS, worst of {samples} | share of a {LAMBDA_MB} MB Lambda (worst) "
        f"| target: fits {LAMBDA_MB} MB |"
    )
    w("|---|---|---|---|---|")
    for name, mbs in memory.items():
        worst = max(mbs)
        target = _ok(worst <= LAMBDA_MB) if "=" not in name else "— (environment, not code)"
        w(f"| {name} | {statistics.median(mbs):,.0f} MB | {worst:,.0f} MB | {worst / LAMBDA_MB:.0%} | {target} |")
    w("")
    ingest_mb = memory["ingest"]
    limited = next((v for k, v in memory.items() if k.startswith("ingest, ")), None)
    if limited:
        w(
            f"Ingest's peak ranges from {min(ingest_mb):,.0f} to {max(ingest_mb):,.0f} MB between the processes of "
            "this run, and it differs more between runs on a shared machine than within one: the worst process is "
            f"the figure to hold against a limit. Its {ingest_module.MAX_WORKERS} threads allocate at the same "
            "time, and glibc gives busy threads malloc arenas of their own; with at most two arenas "
            f"(`MALLOC_ARENA_MAX=2` in the function's environment) it ranged from {min(limited):,.0f} to "
            f"{max(limited):,.0f} MB."
        )
        w("")
    w(
        f"The template gives ingest, matcher and sweeper {memory_mb()} MB; Lambda's own runtime process adds a "
        "few MB to "
        "the figure Lambda reports as Max Memory Used."
    )
    w("")
    return out


def cold_start_summary(cold: dict[str, list[float]], memory: dict[str, list[float]]) -> list[str]:
    """The summary's rows of section 4."""
    summary: list[str] = []
    base = statistics.median(cold["boto3 + client"])
    samples = len(next(iter(memory.values())))
    worst_import = max(statistics.median(cold[n]) for n in ("ingest", "matcher", "sweeper"))
    summary.append(
        f"| handler import vs boto3 + client (worst of three) | {worst_import * 1e3:,.0f} ms vs {base * 1e3:,.0f} ms "
        f"| ≤ 1.5x | {worst_import / base:.2f}x; {_ok(worst_import / base <= 1.5)} |"
    )
    traced = [statistics.median(cold[k]) for k in cold if k.endswith(" (tracing on)")]
    if traced:
        summary.append(
            f"| handler import with tracing on (worst of three) | {max(traced) * 1e3:,.0f} ms vs "
            f"{base * 1e3:,.0f} ms | — | {max(traced) / base:.2f}x; +{(max(traced) - worst_import) * 1e3:,.0f} ms "
            "over tracing off |"
        )
    peak = max(max(v) for k, v in memory.items() if "=" not in k)
    summary.append(
        f"| peak memory (worst handler, worst of {samples} processes) | {peak:,.0f} MB | ≤ {LAMBDA_MB} MB "
        f"| {peak / LAMBDA_MB:.0%}; "
        f"{_ok(peak <= LAMBDA_MB)} |"
    )
    return summary


SUMMARY_ROWS_OF_SECTION_4 = ("| handler import vs boto3", "| handler import with tracing on", "| peak memory (worst")


def splice_cold_start(text: str, section: list[str], rows: list[str], note: str) -> str:
    """`text` (a results file) with section 4 and its summary rows replaced by a new measurement."""
    start, end = text.index("## 4. Cold start"), text.index("## 5. ")
    lines = [*section[:2], note, "", *section[2:]]
    text = text[:start] + "\n".join(lines).rstrip("\n") + "\n\n" + text[end:]
    out, placed = [], False
    for line in text.split("\n"):
        if line.startswith(SUMMARY_ROWS_OF_SECTION_4):
            if not placed:
                out.extend(rows)
                placed = True
            continue
        out.append(line)
    if not placed:
        raise ValueError("the results file has no summary rows of section 4")
    return "\n".join(out)


def render(
    *,
    cpu: dict,
    overlap: dict[str, Timing],
    scenarios: list[Scenario],
    cold: dict[str, list[float]],
    memory: dict[str, list[float]],
    baseline_memory: float,
    sweeps: list[SweepRun],
    run_seconds: float,
    machine: str,
    quick: bool,
    reconcile: dict[str, ReconcileRun] | None = None,
    small: dict | None = None,
    scale: tuple[list, float] | None = None,
    inventory_scan: InventoryScan | None = None,
    inventory_skim: InventoryScan | None = None,
) -> str:
    """The results file. `small`: section 1's handlers on their smallest batches (speed.cpu_small_batches)."""
    import crrmon.ingest as ingest_module

    small = small or speed.cpu_small_batches(3)

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
        "answered at botocore's HTTP layer (1, 2, 4, 7), by moto (3) or by stubbed clients (5, 8). "
        "How to reproduce and read these: `docs/performance.md`."
    )
    w("")
    summary_at = len(out)

    # 1 ------------------------------------------------------------------------------------------
    w("## 1. CPU per event, AWS answered locally")
    w("")
    w(
        "The real handlers (`functions/<name>/app.py`, Powertools decorators included) on full batches (and, "
        "for section 6's split of an invocation's CPU into a fixed and a per-record part, on their smallest "
        "batches); a "
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
    one = scenarios[0]
    s3_events = one.events / one.objects
    stream_per_object = one.records.get("MatcherFunction (stream)", 0) / one.objects
    object_us = s3_events * ingest_us + stream_per_object * matcher_us
    w(
        "The ingest batch holds source events (a replica's conditional UpdateItem is built and signed the same "
        "way); the matcher's batch is the happy path's stream: per object an INSERT with the source and a MODIFY "
        "with the replica and its verdict, which ingest wrote together, so the matcher writes nothing and only "
        f"archives. Per monitored object (one destination: {s3_events:.0f} S3 events, {stream_per_object:.2f} "
        f"stream records, as counted in section 3) that is about {object_us:,.0f} µs of CPU: ingest's share is "
        f"{s3_events * ingest_us / object_us:.0%}. Most of ingest's CPU is botocore building and signing one "
        "UpdateItem per event."
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
    rt_low, rt_high = (f(overlap["ingest"].wall_s) * 1000 / RTT_MS for f in (min, max))
    ingest_events = speed.full_batches()["ingest"]
    floor_rt = int(rates.ingest_round_trips(ingest_events, ingest_module.MAX_WORKERS))
    ingest_verdict = model.verdict(rt_low, rt_high, floor_rt)
    ingest_status = (
        f"{_ok(ingest_verdict == 'met')} ({rt_low:.1f}-{rt_high:.1f})"
        if ingest_verdict != "within noise"
        else f"within noise ({rt_low:.1f}-{rt_high:.1f})"
    )
    sizes = speed.full_batches()
    for name, label in (
        ("ingest", f"{sizes['ingest']} SQS events"),
        ("matcher", f"{sizes['matcher']} stream records"),
        ("sweeper", f"{sizes['sweeper']} due timers"),
    ):
        t = overlap[name]
        calls = sum(t.calls.values())
        wall = t.wall * 1000
        target = f"≤ {floor_rt} round trips: " + ingest_status if name == "ingest" else "none set"
        w(
            f"| {name} | {label} | {calls} | {wall:,.1f} ms | {wall / RTT_MS:.1f} | "
            f"{calls * RTT_MS:,.0f} ms | {wall / (calls * RTT_MS):.2f} | {target} |"
        )
    w("")
    batch_cpu_ms = ingest_events * ingest_us / 1000
    w(
        f"Ingest overlaps its UpdateItems on `MAX_WORKERS` = {ingest_module.MAX_WORKERS} threads kept for the "
        "container's life (crrmon/concurrency.py `run_all()`), then sends the batch's timers, ten a "
        "SendMessageBatch, the requests overlapping on the same threads; the timers need the UpdateItems' "
        f"answers. The floor for {ingest_events} events, every one a first sighting: {floor_rt} round trips "
        f"({math.ceil(ingest_events / ingest_module.MAX_WORKERS)} rounds of UpdateItems, then the timers), plus CPU. "
        f"Measured: {ingest_rt:.1f} round trips, against {sum(overlap['ingest'].calls.values())} sequentially. "
        f"Above the floor: {ingest_rt - floor_rt:.1f} round trips. The batch's requests are built, signed and parsed "
        f"under the GIL, about {batch_cpu_ms:.1f} ms of CPU for {ingest_events} events (section 1), "
        f"{batch_cpu_ms / RTT_MS:.1f} round trips' worth; the rest is threads waiting for the GIL and waking up "
        "(not measured apart). The matcher archives "
        "its batch in one PutRecordBatch; the sweeper reads its timers' items in one BatchGetItem per 100 and "
        "checks them on the same threads (on the happy path every item is decided: nothing more to ask)."
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
        "write (read by an uncounted client), index writes from each sparse index's projection (Overdue, Failed: "
        "the item is in an index when it carries the index's key attributes) entering, changing or leaving."
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
            if op in ("dynamodb.Query", "dynamodb.BatchGetItem"):
                both = "dynamodb.Query" in s.calls and "dynamodb.BatchGetItem" in s.calls
                if not both or op == "dynamodb.BatchGetItem":
                    billed = _read_units(s) + (" (with the Query row's)" if both else "")
                else:
                    billed = "in the BatchGetItem row"
            if op == "dynamodb.UpdateItem" and s.units.get("dynamodb.index_write_units"):
                by_index = ", ".join(
                    f"{k.rsplit('.', 1)[1]} {v / n:,.2f}"
                    for k, v in sorted(s.units.items())
                    if k.startswith("dynamodb.index_write_units.") and v
                )
                billed += f" + {s.units['dynamodb.index_write_units'] / n:,.2f} index write units ({by_index})"
            w(f"| {op} | {count / n:,.2f} | {billed} |")
        others = s.events - s.cross_region_events - s.failure_notifications
        w(
            f"| (S3 events into EventsQueue) | {s.events / n:,.2f}: {others / n:,.2f} from the monitor's region "
            f"(default bus), {s.cross_region_events / n:,.2f} from other regions (forwarded), "
            f"{s.failure_notifications / n:,.2f} replication failure notifications (SNS) | — |"
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
        f"no S3 request: {one_heads:.2f} ({_ok(one_heads == 0)}); "
        f"no SNS publish by the monitor: {one_sns:.2f} ({_ok(one_sns == 0)})."
    )
    w("")
    w(
        "The meter changes no answer: ingest asks for `ReturnValues=ALL_OLD`, which moto answers as DynamoDB "
        "does, so a first sighting is recognised as on AWS. Events from buckets in other regions enter the queue "
        "as S3 event notifications in an SNS envelope (the recommended delivery, section 6); those from the "
        "monitor's region as EventBridge events. Failed conditional writes are billed like any write and are "
        "counted. Stream records are counted as DynamoDB writes them: when an UpdateItem creates an item, moto 5 "
        "first writes its key alone and streams that as an extra INSERT, which is left out. "
        f"Timers per object counted: {one.timers / one.objects:.2f}."
    )
    w("")

    # 4 ------------------------------------------------------------------------------------------
    out.extend(cold_start_section(cold, memory, baseline_memory))

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
        f"In the outage every timer still costs an eventually consistent Query and a conditional UpdateItem "
        f"(OVERDUE), and is re-armed; HEADs stay within the per-bucket budget, the rest are put off "
        f"({outage.timers - sum(outage.heads_per_bucket.values()):,} without a HEAD). Digests go out per pair "
        f"and reason per matcher batch: {outage.digests:,} SNS messages for {outage.timers:,} late objects."
    )
    w("")

    # 6 ------------------------------------------------------------------------------------------
    workers = ingest_module.MAX_WORKERS
    measured = {p: rates.measured_from(cpu, small, workers=workers, point=p) for p in ("low", "mid", "high")}
    base = rates.Setup(
        memory_mb=memory_mb(),
        arch=architecture(),
        batching=model.batching_from_template(load_template(TEMPLATE)),
    )
    section, cost_summary = costreport.section(scenarios, measured, base, prices, ingest_workers=workers)
    out.extend(section)
    w("### Other targets")
    w("")
    ingest_gap = ingest_rt - floor_rt
    if ingest_gap > 0:
        w(
            f"Ingest's batch misses its latency target: {ingest_rt:.1f} round trips against ≤ {floor_rt} (section 2), "
            f"{ingest_gap:.1f} over: the floor is round trips alone, and the batch's CPU adds "
            f"{batch_cpu_ms / RTT_MS:.1f} (the requests are built, signed and parsed under the GIL). The timers wait "
            "for the UpdateItems' answers (only a first sighting starts one); sending every event's timer alongside "
            "its UpdateItem would save one round trip, at the price of a timer per event instead of per object: "
            "one more per destination on the happy path."
        )
        w("")
    over_memory = {k: max(v) for k, v in memory.items() if "=" not in k and max(v) > LAMBDA_MB}
    for name, worst in over_memory.items():
        limited = next((max(v) for k, v in memory.items() if k.startswith(f"{name}, ")), None)
        w(
            f"{name}'s peak memory misses {LAMBDA_MB} MB in its worst process: {worst:,.0f} MB "
            f"(section 4), {worst - LAMBDA_MB:,.0f} MB over"
            + (
                f"; with `MALLOC_ARENA_MAX=2` in the function's environment its worst was {limited:,.0f} MB "
                f"({_ok(limited <= LAMBDA_MB)})."
                if limited is not None
                else "."
            )
            + f" The template gives ingest, matcher and sweeper {memory_mb()} MB."
        )
        w("")
    if not ingest_gap > 0 and not over_memory:
        w("None missed.")
        w("")
    w(
        "Fixed monthly costs outside the per-object figures: custom metrics ($0.30 per metric per month: "
        f"about {costreport.FIXED_METRICS} service-wide plus {costreport.METRICS_PER_PAIR} per pair), "
        "the KMS key ($1 per month), Lambda's SQS pollers on two queues "
        "when idle (five 20 s long polls each, ~1.3 million empty receives a month, ~$0.52), the one-minute "
        "schedule (43,200 invocations, a lease write and one Query per pair each), topology refreshes "
        "(GetBucketReplication per source bucket every 5 minutes per warm container) and ingest's heartbeats "
        "(one write per watched bucket a minute per warm container; on moto's fake clock, which jumps minutes at "
        "a time, they show up in section 3 as bookkeeping writes)."
    )
    w("")

    # 7 ------------------------------------------------------------------------------------------
    reconcile_summary: list[str] = []
    if reconcile:
        section, reconcile_summary = reconcile_section(reconcile, prices)
        out.extend(section)
        if inventory_scan is not None:
            out.extend(proof_section(inventory_scan, reconcile, prices, inventory_skim))

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
        f"| ingest batch of {ingest_events}, 10 ms per AWS call | {overlap['ingest'].wall * 1e3:,.1f} ms = "
        f"{ingest_rt:.1f} round trips "
        f"| ≤ {floor_rt} round trips | {overlap['ingest'].wall * 1e3 / (ingest_calls * RTT_MS):.2f} of sequential; "
        f"{ingest_status} |"
    )
    summary.append(f"| write units per object (1 destination, happy) | {wru:.2f} | ≤ 3 | {_ok(wru <= 3)} |")
    summary.append(
        f"| S3 requests / SNS publishes by the monitor per object (happy) | {one_heads:.2f} / {one_sns:.2f} | 0 / 0 | "
        f"{_ok(one_heads == 0 and one_sns == 0)} |"
    )
    summary.extend(cold_start_summary(cold, memory))
    for r in sweeps:
        pk = max(r.max_heads_in_a_second.values(), default=0)
        summary.append(
            f"| sweeper, {r.timers:,} due timers, {r.scenario} | {r.timers / r.wall_s:,.0f} items/s; "
            f"{sum(r.heads_per_bucket.values()):,} HEADs, max {pk} in 1 s | HEADs ≤ {r.head_limit_per_s:g}/s "
            f"+ burst | {_ok(pk <= 2 * r.head_limit_per_s)} |"
        )
    summary.extend(cost_summary)
    summary.extend(reconcile_summary)
    if scale:
        from crrmon_local.bench import scale_report

        section, scale_summary = scale_report.scale_section(*scale)
        out.extend(section)
        summary.extend(scale_summary)
    summary.append("")
    out[summary_at:summary_at] = summary
    return "\n".join(out) + "\n"
