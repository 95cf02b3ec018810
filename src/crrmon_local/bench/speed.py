"""CPU per event, I/O overlap, cold start, peak memory and the sweeper at scale.

Figures are medians over repeated runs, and the report gives ratios against a baseline measured in
the same run: the machines this runs on are shared and noisy.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crrmon_local.bench import canned, workload
from crrmon_local.lambdas import FakeContext, load_handler

ROOT = Path(__file__).resolve().parents[3]
FUNCTIONS = ("ingest", "matcher", "sweeper")


def _quiet():
    warnings.filterwarnings("ignore")  # "No application metrics to publish" and the like
    return contextlib.redirect_stdout(io.StringIO())


@dataclass
class Timing:
    cpu_s: list[float] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)
    stdout_bytes: list[int] = field(default_factory=list)
    calls: Counter = field(default_factory=Counter)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpu_s)

    @property
    def wall(self) -> float:
        return statistics.median(self.wall_s)


def time_handler(
    function: str, make_event: Callable[[], dict], rounds: int, aws: canned.CannedAws, *, warmup: int = 2
) -> Timing:
    """Run the real handler `rounds` times on fresh events; CPU (all threads) and wall time of each call."""
    handler = load_handler(function)
    timing = Timing()
    for r in range(warmup + rounds):
        event = make_event()
        buffer = io.StringIO()
        aws.reset()
        with contextlib.redirect_stdout(buffer):
            cpu0, wall0 = time.process_time(), time.perf_counter()
            handler(event, FakeContext(f"bench-{function}"))
            cpu1, wall1 = time.process_time(), time.perf_counter()
        if r >= warmup:
            timing.cpu_s.append(cpu1 - cpu0)
            timing.wall_s.append(wall1 - wall0)
            timing.stdout_bytes.append(len(buffer.getvalue().encode()))
            timing.calls = Counter(aws.calls)
    return timing


# ---------------------------------------------------------------- 1 and 2: CPU and I/O overlap


def full_batches() -> dict[str, int]:
    """Each handler's full batch: its event source mapping's BatchSize in template.yaml."""
    from crrmon_local.bench import model
    from crrmon_local.cfn import load_template

    mappings = model.batching_from_template(load_template(ROOT / "template.yaml"))
    return {
        "ingest": mappings["IngestFunction (SQS)"].batch_size,
        "matcher": mappings["MatcherFunction (stream)"].batch_size,
        "sweeper": mappings["SweeperFunction (SQS)"].batch_size,
    }


def _events(sizes: dict[str, int]) -> dict[str, Callable[[], dict]]:
    return {
        "ingest": lambda: workload.source_events(sizes["ingest"]),
        "matcher": lambda: workload.stream_records(sizes["matcher"]),
        "sweeper": lambda: workload.timer_records(sizes["sweeper"]),
    }


def cpu_per_event(rounds: int) -> dict[str, Any]:
    """Each handler on a full batch (template.yaml's BatchSize) with AWS answered at once."""
    warnings.filterwarnings("ignore")
    sizes = full_batches()
    events = _events(sizes)
    aws = canned.install()
    ingest = time_handler("ingest", events["ingest"], rounds, aws)
    matcher = time_handler("matcher", events["matcher"], rounds, aws)
    aws.responders["dynamodb.Query"] = workload.final_item_answer
    aws.responders["dynamodb.BatchGetItem"] = workload.final_items_answer
    sweeper = time_handler("sweeper", events["sweeper"], rounds, aws)
    return {
        "ingest": (ingest, sizes["ingest"]),
        "matcher": (matcher, sizes["matcher"]),
        "sweeper": (sweeper, sizes["sweeper"]),
    }


def cpu_small_batches(rounds: int) -> dict[str, Any]:
    """Each handler on its smallest batch, AWS answered at once: one SQS event or timer, and one
    object's two stream records (one record alone is an INSERT the matcher does not archive). With
    the full batches of `cpu_per_event`, the fixed and the per-record parts of an invocation's CPU."""
    warnings.filterwarnings("ignore")
    aws = canned.install()
    out = {
        "ingest": (time_handler("ingest", lambda: workload.source_events(1), rounds, aws), 1),
        "matcher": (time_handler("matcher", lambda: workload.stream_records(2), rounds, aws), 2),
    }
    aws.responders["dynamodb.Query"] = workload.final_item_answer
    aws.responders["dynamodb.BatchGetItem"] = workload.final_items_answer
    out["sweeper"] = (time_handler("sweeper", lambda: workload.timer_records(1), rounds, aws), 1)
    return out


def overlap(rounds: int, latency_s: float = 0.010) -> dict[str, Any]:
    """Wall time of one full batch when every AWS call takes `latency_s`."""
    warnings.filterwarnings("ignore")
    events = _events(full_batches())
    aws = canned.install(latency_s)
    out = {
        "ingest": time_handler("ingest", events["ingest"], rounds, aws),
        "matcher": time_handler("matcher", events["matcher"], rounds, aws),
    }
    aws.responders["dynamodb.Query"] = workload.final_item_answer
    aws.responders["dynamodb.BatchGetItem"] = workload.final_items_answer
    out["sweeper"] = time_handler("sweeper", events["sweeper"], rounds, aws)
    return out


# ---------------------------------------------------------------- 4: cold start and memory

_IMPORT_HANDLER = """
import sys, time, importlib.util
sys.path.insert(0, {layer!r})
t = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(time.perf_counter() - t)
"""
_IMPORT_BOTO3 = """
import time
t = time.perf_counter()
import boto3
boto3.client("sqs", region_name="us-east-1")
print(time.perf_counter() - t)
"""


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(canned.ENVIRONMENT)
    env["PYTHONPATH"] = f"{ROOT / 'layers' / 'common'}:{ROOT / 'src'}"
    return env


def _run_child(code: str, extra_env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**_child_env(), **(extra_env or {})},
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return done.stdout.strip().splitlines()[-1]


TRACED = " (tracing on)"


def tracing_on(function: str) -> dict[str, str]:
    """The environment of a function with EnableTracing=true: the template's
    POWERTOOLS_TRACE_DISABLED=false, and what Lambda sets for active tracing (Powertools traces only
    where LAMBDA_TASK_ROOT is set). Nothing is sent at import; the daemon address is never used."""
    return {
        "POWERTOOLS_TRACE_DISABLED": "false",
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function),
        "_X_AMZN_TRACE_ID": "Root=1-67a1b2c3-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    }


def cold_start(samples: int) -> dict[str, list[float]]:
    """Import time in a fresh process: each handler module with tracing off and on, and `import boto3`
    + one client (interleaved)."""
    codes: dict[str, tuple[str, dict[str, str]]] = {"boto3 + client": (_IMPORT_BOTO3, {})}
    for name in FUNCTIONS:
        path = str(ROOT / "functions" / name / "app.py")
        code = _IMPORT_HANDLER.format(layer=str(ROOT / "layers" / "common"), path=path)
        codes[name] = (code, {})
        codes[name + TRACED] = (code, tracing_on(name))
    for code, env in codes.values():  # compile and cache bytecode once, as the deployment package has it
        _run_child(code, env)
    out: dict[str, list[float]] = {name: [] for name in codes}
    for _ in range(samples):
        for name, (code, env) in codes.items():
            out[name].append(float(_run_child(code, env)))
    return out


def memory_child(function: str) -> None:
    """In a fresh process: import one handler, run one full batch on canned AWS, print peak RSS in MB."""
    aws = canned.install()
    aws.responders["dynamodb.Query"] = workload.final_item_answer
    aws.responders["dynamodb.BatchGetItem"] = workload.final_items_answer
    events = _events(full_batches())
    handler = load_handler(function)
    with _quiet():
        for _ in range(3):
            handler(events[function](), FakeContext(f"bench-{function}"))
    print(peak_rss_mb())


def peak_rss_mb() -> float:
    """This process's peak resident set in MB: VmHWM (ru_maxrss on Linux carries the parent's peak across exec)."""
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


ARENA_LIMIT = "MALLOC_ARENA_MAX=2"  # glibc: at most two malloc arenas, whatever the number of threads


def peak_memory(samples: int) -> dict[str, list[float]]:
    """Peak RSS (MB) of `samples` fresh processes per handler, interleaved; and ingest under ARENA_LIMIT.

    Ingest's threads allocate at the same time, and glibc may give each its own malloc arena: its peak
    differs from one process to the next, so the worst sample is the one to hold against a limit.
    """
    code = "import sys; from crrmon_local.bench.speed import memory_child; memory_child(sys.argv[1])"
    runs = [(name, name, {}) for name in FUNCTIONS]
    variable, _, value = ARENA_LIMIT.partition("=")
    runs.append((f"ingest, {ARENA_LIMIT}", "ingest", {variable: value}))
    out: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    for _ in range(samples):
        for label, name, extra in runs:
            done = subprocess.run(
                [sys.executable, "-c", code, name],
                env={**_child_env(), **extra},
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            out[label].append(float(done.stdout.strip().splitlines()[-1]))
    return out


def baseline_memory() -> float:
    """Peak RSS of a bare interpreter that imported boto3 and built one client, in MB."""
    code = _IMPORT_BOTO3 + "\nfrom crrmon_local.bench.speed import peak_rss_mb; print(peak_rss_mb())"
    return float(_run_child(code))


# ---------------------------------------------------------------- 5: the sweeper at scale, on fast fakes


class _Fakes:
    """Stubbed clients (plain Python objects, not botocore): DynamoDB, S3, SQS, Firehose, SNS."""

    def __init__(self, items: dict[str, list[dict]], replication_status: str | None):
        self.items = items
        self.replication_status = replication_status
        self.calls: Counter[str] = Counter()
        self.heads: dict[str, list[float]] = {}
        self.status_changes: list[dict] = []

    # DynamoDB
    def query(self, **kwargs):
        self.calls["dynamodb.Query"] += 1
        if "IndexName" in kwargs:
            return {"Items": []}
        return {"Items": self.items.get(kwargs["ExpressionAttributeValues"][":pk"]["S"], [])}

    def update_item(self, **kwargs):
        self.calls["dynamodb.UpdateItem"] += 1
        names, values = kwargs.get("ExpressionAttributeNames", {}), kwargs.get("ExpressionAttributeValues", {})
        for placeholder, name in names.items():
            if name == "status":
                token = kwargs["UpdateExpression"].split(f"{placeholder} = ", 1)[1].split(",")[0].split()[0]
                if token in values:
                    self.status_changes.append({"pk": kwargs["Key"]["pk"]["S"], "status": values[token]["S"]})
                break
        return {}

    def put_item(self, **_):
        self.calls["dynamodb.PutItem"] += 1
        return {}

    # S3
    def head_object(self, **kwargs):
        self.calls["s3.HeadObject"] += 1
        self.heads.setdefault(kwargs["Bucket"], []).append(time.monotonic())
        answer = {"ContentLength": 13, "ETag": '"e"', "ServerSideEncryption": "AES256"}
        if self.replication_status:
            answer["ReplicationStatus"] = self.replication_status
        return answer

    # SQS, Firehose, SNS
    def send_message_batch(self, **kwargs):
        self.calls["sqs.SendMessageBatch"] += 1
        return {"Successful": [{"Id": e["Id"]} for e in kwargs["Entries"]], "Failed": []}

    def put_record_batch(self, **kwargs):
        self.calls["firehose.PutRecordBatch"] += 1
        return {"FailedPutCount": 0, "RequestResponses": [{}] * len(kwargs["Records"])}

    def publish(self, **_):
        self.calls["sns.Publish"] += 1
        return {"MessageId": "m"}


@dataclass
class SweepRun:
    scenario: str
    timers: int
    wall_s: float
    cpu_s: float
    calls: Counter
    heads_per_bucket: dict[str, int]
    max_heads_in_a_second: dict[str, int]
    head_limit_per_s: float
    digests: int
    invocations: int


def _max_in_window(stamps: list[float], window: float = 1.0) -> int:
    best, start = 0, 0
    for end, t in enumerate(stamps):
        while t - stamps[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def sweep_at_scale(n: int, scenario: str) -> SweepRun:
    """`n` due timers through Sweeper.handle_timers in SQS batches of 10, then the matcher's digests.

    "decided": every item already has its verdict (the replica came in time): one Query per timer.
    "outage": the destination is down, the source says PENDING: HEAD within budget, OVERDUE, re-arm.
    """
    from boto3.dynamodb.types import TypeSerializer

    from crrmon.config import Config
    from crrmon.evidence import Evidence, RateLimiter
    from crrmon.metrics import Counters
    from crrmon.publish import Change, Publisher, digests
    from crrmon.store import Store
    from crrmon.sweep import Sweeper
    from crrmon.topology import Topology, TopologyCache

    serializer = TypeSerializer()
    now = time.time()
    items: dict[str, list[dict]] = {}
    timers = []
    for i in range(n):
        pk = f"{workload.version_id()}#data/{i:07d}.bin"
        item = {
            "pk": pk,
            "dest": workload.DESTINATION,
            "first_seen": int((now - 1000) * 1000),
            "due": int(now) - 1,
            "expires_at": int(now) + 90000,
            "src": workload.SOURCE,
            "sreg": "us-east-1",
            "dreg": "us-west-2",
            "rid": "to-west",
            "s_etag": "e",
            "s_size": 13,
            "s_time": int((now - 1000) * 1000),
        }
        if scenario == "decided":
            item.update(r_etag="e", r_size=13, r_time=int((now - 990) * 1000), status="COMPLETED", verified_by="etag")
        items[pk] = [{k: serializer.serialize(v) for k, v in item.items()}]
        timers.append(json.dumps({"pk": pk, "due": int(now) - 1, "attempt": 0}))
    fakes = _Fakes(items, "PENDING")
    config = Config(table_name="t", timer_queue_url="q", rpo_seconds=900, head_requests_per_second=20.0)
    topology = Topology(sources={}, regions={})
    sweeper = Sweeper(
        config,
        Store(fakes, "t"),
        Evidence(fakes, RateLimiter(config.head_requests_per_second)),
        TopologyCache(lambda: topology, max_age=300),
        Publisher(),
        fakes,
        Counters(),
        time.time,
    )
    invocations = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with _quiet():
        for start in range(0, n, 10):
            sweeper.counters = Counters()
            batch = [workload.sqs_record(body) for body in timers[start : start + 10]]
            sweeper.handle_timers(batch)
            invocations += 1
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    # The matcher then sees every status change in the stream, 100 records per batch: digests per batch.
    changes = [
        Change(item={"pk": c["pk"], "dest": workload.DESTINATION, "src": workload.SOURCE}, status=_status(c["status"]))
        for c in fakes.status_changes
    ]
    digest_count = sum(len(digests(changes[i : i + 100])) for i in range(0, len(changes), 100))
    return SweepRun(
        scenario=scenario,
        timers=n,
        wall_s=wall,
        cpu_s=cpu,
        calls=fakes.calls,
        heads_per_bucket={b: len(s) for b, s in fakes.heads.items()},
        max_heads_in_a_second={b: _max_in_window(s) for b, s in fakes.heads.items()},
        head_limit_per_s=config.head_requests_per_second,
        digests=digest_count,
        invocations=invocations,
    )


def _status(value: str):
    from crrmon.model import Status

    return Status(value)


# ---------------------------------------------------------------- 7: the scheduled reconciliation

SCHEDULED_EVENT = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
RTT_S = 0.010  # the suite's round trip per AWS call (section 2)
# A ListObjectVersions page of 1,000 versions is about 500 KB of XML: a longer round trip than the rest (assumed).
LATENCIES_S = {"s3.ListObjectVersions": 0.030}


@dataclass
class ReconcileRun:
    """Passes of the reconcile handler over one canned bucket listing; counts are per pass."""

    case: str
    versions: int  # listed per pass
    untracked: int  # of which have no item in the table (their events are sent to the EventsQueue)
    timing: Timing  # CPU and wall per pass; `calls`: the last pass's requests by operation
    canned_cpu_s: list[float]  # the canned answers' own CPU per pass (included in timing.cpu_s)
    existing_requests: int  # BatchGetItem requests about versions (Store.existing)
    keys_asked: int
    read_units: float  # of those requests
    bookkeeping_read_units: float  # the `__reconcile__` items read at the start of the run
    sqs_requests: int  # SendMessageBatch, billed per 64 KB chunk
    fed: int  # events sent to the EventsQueue (entries of the SendMessageBatch requests)
    list_bytes: int  # ListObjectVersions XML parsed
    result: dict[str, Any]
    latencies_s: dict[str, float] = field(default_factory=dict)  # per operation; "*" for any other
    retention_hours: int = 24  # the record retention the handler judged against

    @property
    def cpu_ms_per_thousand(self) -> float:
        return self.timing.cpu / self.versions * 1e6

    @property
    def pass_calls(self) -> Counter:
        """The requests that grow with the versions listed: per page, per 100 keys, per 10 events. Left out:
        the run's own (lease PutItems, the BatchGetItem of the `__reconcile__` items, SSM on a cold start)."""
        calls = self.timing.calls
        return Counter(
            {
                "s3.ListObjectVersions": calls.get("s3.ListObjectVersions", 0),
                "dynamodb.BatchGetItem": self.existing_requests,
                "dynamodb.UpdateItem": calls.get("dynamodb.UpdateItem", 0),
                "sqs.SendMessageBatch": calls.get("sqs.SendMessageBatch", 0),
            }
        )


def waiting_s(calls: Counter, latencies: dict[str, float] | None = None) -> float:
    """Seconds spent waiting for `calls` made one after the other, at `latencies` per operation ("*": any
    other; default RTT_S and LATENCIES_S). The reconciliation makes its calls one at a time."""
    latencies = {"*": RTT_S, **LATENCIES_S} if latencies is None else latencies
    return sum(n * latencies.get(op, latencies.get("*", 0.0)) for op, n in calls.items())


@dataclass
class InventoryScan:
    """Reading one gzipped CSV S3 Inventory file as the daily proof does (crrmon.inventory with its day filter)."""

    rows: int
    day_rows: int  # of which hold the day's date, and are parsed
    compressed_bytes: int
    cpu_s: list[float]  # per read

    @property
    def seconds_per_row(self) -> float:
        return statistics.median(self.cpu_s) / self.rows


BENCH_INVENTORY_SCHEMA = (
    "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, ReplicationStatus, "
    "EncryptionStatus"
)


def inventory_scan(rows: int, rounds: int = 3, day_share: float = 0.05) -> InventoryScan:
    """Time reading a report of `rows` rows (one in 1/`day_share` of the day being proven), gzip included."""
    import csv
    import gzip

    from crrmon import inventory, proof

    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    every = max(1, round(1 / day_share))
    for i in range(rows):
        day = "2026-12-06" if i % every == 0 else f"2026-{1 + i % 11:02d}-{1 + i % 28:02d}"
        writer.writerow(
            [
                "bench-src",
                f"data/{i % 997:03d}/object+{i:010d}.bin",
                f"{i:032x}",
                "true",
                "false",
                str(i * 37 % 9_999_999),
                f"{day}T{i % 24:02d}:00:00.000Z",
                f"{(i * 2654435761) % 2**128:032x}",
                "COMPLETED",
                "SSE-S3",
            ]
        )
    data = gzip.compress(text.getvalue().encode(), 6)
    manifest = inventory.Manifest(
        bucket="b",
        key="m",
        source_bucket="bench-src",
        schema=inventory.parse_manifest(
            json.dumps({"fileFormat": "CSV", "fileSchema": BENCH_INVENTORY_SCHEMA}).encode(), bucket="b", key="m"
        ).schema,
        files=("f.csv.gz",),
        created_s=None,
        sha256="",
    )

    class Reports:
        def get_object(self, **_kwargs):
            return {"Body": io.BytesIO(data)}

    needle = proof.day_needle("2026-12-06")
    cpu_s: list[float] = []
    found = 0
    for _ in range(rounds):
        started = time.process_time()
        found = sum(1 for _ in inventory.read_file(Reports(), manifest, "f.csv.gz", containing=needle))
        cpu_s.append(time.process_time() - started)
    return InventoryScan(rows=rows, day_rows=found, compressed_bytes=len(data), cpu_s=cpu_s)


def _reconcile_passes(
    aws: canned.CannedAws, listing: workload.Listing, rounds: int, case: str, latencies: dict[str, float] | None = None
) -> ReconcileRun:
    """`rounds` runs of the real reconcile handler, each a complete fresh pass over `listing`."""
    from crrmon import runtime

    handler = load_handler("reconcile")
    spent = {"cpu": 0.0, "sqs": 0, "fed": 0}

    def timed(responder):
        def answer(request):
            t = time.process_time()
            try:
                return responder(request)
            finally:
                spent["cpu"] += time.process_time() - t

        return answer

    def send_batch(request):
        from crrmon_local.bench import cost

        entries = json.loads(request.body)["Entries"]
        spent["sqs"] += cost.chunked_requests(sum(len(e["MessageBody"].encode()) for e in entries))
        spent["fed"] += len(entries)
        return canned._sqs_batch(request)

    saved = dict(aws.responders)
    aws.responders["s3.ListObjectVersions"] = timed(listing.list_object_versions)
    aws.responders["dynamodb.BatchGetItem"] = timed(listing.batch_get_item)
    aws.responders["sqs.SendMessageBatch"] = timed(send_batch)
    aws.latencies = {k: v for k, v in (latencies or {}).items() if k != "*"}
    aws.latency_s = (latencies or {}).get("*", 0.0)
    timing, canned_cpu = Timing(), []
    try:
        for _ in range(rounds):
            aws.reset()
            listing.reset()
            spent.update(cpu=0.0, sqs=0, fed=0)
            buffer = io.StringIO()
            # stderr too: loggers made before the bench set POWERTOOLS_SERVICE_NAME end up in logging's last resort
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                cpu0, wall0 = time.process_time(), time.perf_counter()
                result = handler(dict(SCHEDULED_EVENT), FakeContext("bench-reconcile"))
                cpu1, wall1 = time.process_time(), time.perf_counter()
            answer = result.get(workload.SOURCE, {})
            if not answer.get("complete") or answer.get("listed") != listing.versions:
                raise RuntimeError(f"the reconcile handler did not finish its pass over the canned listing: {result}")
            timing.cpu_s.append(cpu1 - cpu0)
            timing.wall_s.append(wall1 - wall0)
            timing.stdout_bytes.append(len(buffer.getvalue().encode()))
            timing.calls = Counter(aws.calls)
            canned_cpu.append(spent["cpu"])
    finally:
        aws.responders.clear()
        aws.responders.update(saved)
        aws.latencies, aws.latency_s = {}, 0.0
    return ReconcileRun(
        case=case,
        versions=listing.versions,
        untracked=answer["untracked"],
        timing=timing,
        canned_cpu_s=canned_cpu,
        existing_requests=listing.existing_requests,
        keys_asked=listing.keys_asked,
        read_units=listing.read_units,
        bookkeeping_read_units=listing.bookkeeping_read_units,
        sqs_requests=spent["sqs"],
        fed=spent["fed"],
        list_bytes=listing.list_bytes,
        result=answer,
        latencies_s=dict(latencies or {}),
        retention_hours=runtime.config().record_retention_hours,
    )


def reconcile(
    versions: int = 20_000,
    rounds: int = 3,
    *,
    untracked_versions: int = 3_000,
    untracked_rounds: int = 3,
    old_versions: int = 3_000,
    latency_versions: int = 2_000,
) -> dict[str, ReconcileRun]:
    """The scheduled reconciliation on canned AWS, one source bucket and one destination.

    "tracked": every version listed is inside the retention window and has its item (the common case).
    "untracked": 1% have none and are fed to the EventsQueue. "old": every version is older than the
    retention window (listed and parsed, never asked about). "latency": one pass with RTT_S per AWS call
    (LATENCIES_S for a listing page), to check that the pass waits for its round trips one after the
    other. One small pass first warms the container (imports, clients, the topology from SSM), as a
    scheduled run finds it after the first.
    """
    warnings.filterwarnings("ignore")
    aws = canned.install()
    _reconcile_passes(aws, workload.Listing(2_000), 1, "warm-up")
    out = {
        "tracked": _reconcile_passes(aws, workload.Listing(versions), rounds, "tracked"),
        "untracked": _reconcile_passes(
            aws, workload.Listing(untracked_versions, untracked_every=100), untracked_rounds, "untracked"
        ),
        "old": _reconcile_passes(aws, workload.Listing(old_versions, age_hours=(90 * 24, 48)), rounds, "old"),
    }
    latencies = {"*": RTT_S, **LATENCIES_S}
    out["latency"] = _reconcile_passes(aws, workload.Listing(latency_versions), 1, "latency", latencies)
    return out
