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


def cpu_per_event(rounds: int) -> dict[str, Any]:
    """Ingest (SQS batches of 10) and matcher (stream batches of 100) with AWS answered at once."""
    warnings.filterwarnings("ignore")
    aws = canned.install()
    ingest = time_handler("ingest", lambda: workload.source_events(10), rounds, aws)
    matcher = time_handler("matcher", lambda: workload.stream_records(100), rounds, aws)
    aws.responders["dynamodb.Query"] = workload.final_item_answer
    sweeper = time_handler("sweeper", lambda: workload.timer_records(10), rounds, aws)
    return {"ingest": (ingest, 10), "matcher": (matcher, 100), "sweeper": (sweeper, 10)}


def overlap(rounds: int, latency_s: float = 0.010) -> dict[str, Any]:
    """Wall time of one batch when every AWS call takes `latency_s`."""
    warnings.filterwarnings("ignore")
    aws = canned.install(latency_s)
    out = {
        "ingest": time_handler("ingest", lambda: workload.source_events(10), rounds, aws),
        "matcher": time_handler("matcher", lambda: workload.stream_records(100), rounds, aws),
    }
    aws.responders["dynamodb.Query"] = workload.final_item_answer
    out["sweeper"] = time_handler("sweeper", lambda: workload.timer_records(10), rounds, aws)
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


def _run_child(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], env=_child_env(), capture_output=True, text=True, check=True, cwd=ROOT
    )
    return done.stdout.strip().splitlines()[-1]


def cold_start(samples: int) -> dict[str, list[float]]:
    """Import time in a fresh process: each handler module, and `import boto3` + one client (interleaved)."""
    codes = {"boto3 + client": _IMPORT_BOTO3}
    for name in FUNCTIONS:
        path = str(ROOT / "functions" / name / "app.py")
        codes[name] = _IMPORT_HANDLER.format(layer=str(ROOT / "layers" / "common"), path=path)
    for code in codes.values():  # compile and cache bytecode once, as the deployment package has it
        _run_child(code)
    out: dict[str, list[float]] = {name: [] for name in codes}
    for _ in range(samples):
        for name, code in codes.items():
            out[name].append(float(_run_child(code)))
    return out


def memory_child(function: str) -> None:
    """In a fresh process: import one handler, run one full batch on canned AWS, print peak RSS in MB."""
    aws = canned.install()
    aws.responders["dynamodb.Query"] = workload.final_item_answer
    events = {
        "ingest": lambda: workload.source_events(10),
        "matcher": lambda: workload.stream_records(100),
        "sweeper": lambda: workload.timer_records(10),
    }
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
