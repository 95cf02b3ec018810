"""`make demo`: the whole monitor on a local AWS emulator, with S3 replication emulated and faults injected.

moto server runs in this process on 127.0.0.1. The monitor's table, queues, bus, topic and archive are
provisioned from template.yaml; its three real handlers run behind the template's event source
mappings (crrmon_local.lambdas) and reach AWS only over HTTP. Source and destination buckets in three
regions carry replication rules that crrmon_local.emulator applies to every new version, with delays,
outages, failures and lost, duplicated or late events. At the end the monitor's verdicts are compared
with what the emulator knows it did.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import os
import random
import resource
import sys
import threading
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "crrmon-demo"

SRC, DST, DST2 = "demo-src-use1", "demo-dst-usw2", "demo-dst-euw1"
BIDI_A, BIDI_B = "demo-bidi-a-use1", "demo-bidi-b-usw2"
TAGGED = "demo-tagged-use1"
# A backup account: its bucket takes replicas from XSRC; the monitor reads it through the account's
# read-only role (the forwarder stack's MonitorReadOnlyRoleArn, the stack's ReaderRoleArns).
OTHER_ACCOUNT = "222222222222"
XSRC, XDST = "demo-xacct-src-use1", "demo-backup-xacct-usw2"
READER_ROLE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/crr-monitor-read"
REGIONS = {
    SRC: "us-east-1",
    DST: "us-west-2",
    DST2: "eu-west-1",
    BIDI_A: "us-east-1",
    BIDI_B: "us-west-2",
    TAGGED: "us-east-1",
    XSRC: "us-east-1",
    XDST: "us-west-2",
}
TAG = {"replicate": "yes"}
FAILURE_REASONS = ("DstPutObjectNotPermitted", "DstKmsKeyNotFound", "SrcGetObjectNotPermitted", "DstBucketNotFound")
REPLICATION_METRICS = {"Metrics": {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}}
FORWARDER = "crrmon-forwarder"
# RPO classes (the stack's RpoClasses): the workload's keys under data/001/ have an RPO of 5 s, versions of
# 2 KB and more (the multipart uploads) 6 s, the rest --rpo. A multipart upload under data/001/ is
# "critical": the first class that matches wins.
RPO_CLASSES = "critical:prefix=data/001/,rpo=5;multipart:min=2KB,rpo=6"
VERDICTS = ("COMPLETED", "FAILED", "MISMATCH", "SOURCE_DELETED", "NOT_IN_SCOPE", "EXPIRED", "NONE")


def _rule(
    rule_id: str, dest: str, *, priority: int = 1, tags: bool = False, sse_kms: bool = True, account: str = ""
) -> dict:
    rule: dict[str, Any] = {
        "ID": rule_id,
        "Priority": priority,
        "Status": "Enabled",
        "Filter": {"Tag": {"Key": "replicate", "Value": "yes"}} if tags else {"Prefix": ""},
        "Destination": {"Bucket": f"arn:aws:s3:::{dest}", **({"Account": account} if account else {})},
        "DeleteMarkerReplication": {"Status": "Disabled" if tags else "Enabled"},
    }
    if sse_kms:
        rule["SourceSelectionCriteria"] = {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
    return rule


# One source with two destinations in two regions; a bidirectional pair (rules without SSE-KMS, delete
# markers replicated both ways); a tag-filtered rule into a destination that also receives SRC's
# replicas; a source whose destination is a bucket of another account.
RULES = {
    SRC: [_rule("to-west", DST), _rule("to-eu", DST2, priority=2)],
    BIDI_A: [_rule("a-to-b", BIDI_B, sse_kms=False)],
    BIDI_B: [_rule("b-to-a", BIDI_A, sse_kms=False)],
    TAGGED: [_rule("tagged-to-west", DST, tags=True)],
    XSRC: [_rule("to-backup-account", XDST, account=OTHER_ACCOUNT)],
}
SOURCES = {SRC: 0.5, BIDI_A: 0.15, BIDI_B: 0.15, TAGGED: 0.2}


# ---------------------------------------------------------------- command line


def _delay_sampler(spec: str, rng: random.Random):
    """`lognormal:MEDIAN,SIGMA` | `uniform:LOW,HIGH` | `exponential:MEAN` | `fixed:SECONDS`."""
    kind, _, raw = spec.partition(":")
    values = [float(v) for v in raw.split(",") if v]
    if kind == "lognormal" and len(values) == 2:
        import math

        mu = math.log(values[0])
        return lambda: rng.lognormvariate(mu, values[1])
    if kind == "uniform" and len(values) == 2:
        return lambda: rng.uniform(values[0], values[1])
    if kind == "exponential" and len(values) == 1:
        return lambda: rng.expovariate(1 / values[0])
    if kind == "fixed" and len(values) == 1:
        return lambda: values[0]
    raise argparse.ArgumentTypeError(f"not a delay distribution: {spec!r}")


def _backlog(spec: str) -> tuple[float, float]:
    """`SHARE:SECONDS`: once SHARE of the versions are written, events are held for SECONDS."""
    share, _, seconds = spec.partition(":")
    try:
        at, length = float(share), float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a backlog: {spec!r} (SHARE:SECONDS)") from None
    if not 0 <= at < 1 or length <= 0:
        raise argparse.ArgumentTypeError(f"not a backlog: {spec!r} (SHARE in [0, 1), SECONDS > 0)")
    return at, length


def _outage(spec: str) -> tuple[str, float, float]:
    """`BUCKET:START-END` in seconds after the workload starts; `none` for no outage."""
    bucket, _, window = spec.rpartition(":")
    start, _, end = window.partition("-")
    try:
        return bucket, float(start), float(end)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an outage window: {spec!r} (BUCKET:START-END)") from None


# `--large`: the run the demo made before it was sized to finish within a minute on two cores.
LARGE = {
    "objects": 2000,
    "load_seconds": 20.0,
    "give_up": 90,
    "outage": f"{DST2}:3-30",
    "backlog": "0.3:12",
    "max_seconds": 1800.0,
}
# Seconds of one core per object version with the default faults (moto, the handlers and the emulator
# share one process), and for the set-up and the report: what "about N s" is made of.
CPU_PER_OBJECT_S = 0.2
SET_UP_S = 10.0


def apply_large(args, argv: list[str]) -> None:
    """With --large, the LARGE values for every flag not given on the command line."""
    if not args.large:
        return
    given = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    for name, value in LARGE.items():
        if f"--{name.replace('_', '-')}" not in given:
            setattr(args, name, value)


def expected_seconds(args) -> float:
    """About how long the run takes on two cores: the set-up, the writes (paced by the monitor: one core
    does all the work), and the tail: replicas held by the outage, events held by the backlog, and the
    deadline (RPO) of the last versions, after which the sweeper's HEADs decide them."""
    writes = max(args.load_seconds, args.objects * CPU_PER_OBJECT_S)
    rpo = largest_rpo(args)
    tail = rpo + 4.0
    if args.outage != "none":
        tail = max(tail, _outage(args.outage)[2] - writes + rpo)
    return SET_UP_S + writes + tail


def rpo_classes(args) -> tuple:
    """The run's RPO classes (crrmon.rpo), parsed as the stack parses them."""
    from crrmon.rpo import parse_policy

    return parse_policy(args.rpo_classes)


def largest_rpo(args) -> int:
    return max([args.rpo, *(c.rpo_seconds for c in rpo_classes(args))])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="make demo ARGS=...",
        description="Run CRR Monitor on a local AWS emulator with emulated S3 replication, and report.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--large",
        action="store_true",
        help="a larger run: "
        + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in LARGE.items())
        + " (flags given explicitly win)",
    )
    p.add_argument("--objects", type=int, default=150, help="object versions written by the workload")
    p.add_argument("--load-seconds", type=float, default=6.0, help="the workload is spread over this many seconds")
    p.add_argument(
        "--max-backlog",
        type=int,
        default=300,
        help="writes pause while more events, stream records or due timers than this wait (0: never pause)",
    )
    p.add_argument("--rpo", type=int, default=8, help="RPO the monitor enforces (seconds)")
    p.add_argument(
        "--rpo-classes",
        default=RPO_CLASSES,
        help="RPO classes by key prefix and size (the template's RpoClasses; '' for one RPO)",
    )
    p.add_argument("--give-up", type=int, default=40, help="age at which an unresolved object is FAILED (seconds)")
    p.add_argument("--delay", default="lognormal:1.0,0.6", help="replication delay distribution (seconds)")
    p.add_argument("--failures", type=float, default=0.03, help="share of versions whose replication fails")
    p.add_argument("--failure-reasons", default=",".join(FAILURE_REASONS), help="reasons S3 reports, drawn evenly")
    p.add_argument(
        "--outage",
        default=f"{DST2}:2-12",
        help="destination outage window BUCKET:START-END (seconds after the workload starts), or 'none'",
    )
    p.add_argument(
        "--backlog",
        default="0.4:9",
        help="SHARE:SECONDS: once SHARE of the versions are written, events due for delivery in the next SECONDS "
        "are held and delivered at the end, their S3 times unchanged; 'none' for no backlog",
    )
    p.add_argument("--lost-events", type=float, default=0.02, help="share of events never delivered")
    p.add_argument("--duplicates", type=float, default=0.03, help="share of events delivered twice")
    p.add_argument("--reorder", type=float, default=0.03, help="share of events delivered 1-4 s late")
    p.add_argument("--sse-kms", type=float, default=0.03, help="share of versions encrypted with SSE-KMS")
    p.add_argument(
        "--verify-mode",
        choices=("size", "etag", "checksum"),
        default="etag",
        help="the stack's VerifyMode (checksum: HEADs in checksum mode, refused for KMS keys the monitor may not use)",
    )
    p.add_argument(
        "--sse-c", type=float, default=0.03, help="share of versions written with SSE-C (customer-provided keys)"
    )
    p.add_argument(
        "--sse-c-lost-replica-events",
        type=float,
        default=0.5,
        help="share of SSE-C versions whose replica events are all lost (the monitor can only see they exist)",
    )
    p.add_argument("--multipart", type=float, default=0.03, help="share of versions uploaded in parts")
    p.add_argument("--lifecycle-deletes", type=float, default=0.02, help="lifecycle delete markers, per version")
    p.add_argument("--user-deletes", type=float, default=0.03, help="DeleteObject delete markers, per version")
    p.add_argument(
        "--two-way-deletes",
        type=float,
        default=0.15,
        help="DeleteObject delete markers in the two-way buckets, per version written there",
    )
    p.add_argument(
        "--dest-lifecycle-deletes",
        type=float,
        default=0.05,
        help=f"lifecycle delete markers a destination's own rule puts on replicas, per version written to {SRC}",
    )
    p.add_argument(
        "--direct-writes", type=float, default=0.02, help="versions an application writes into a destination bucket"
    )
    p.add_argument(
        "--cross-account",
        type=float,
        default=0.03,
        help=f"share of versions written to {XSRC}, replicated to a bucket of another account",
    )
    p.add_argument("--source-deleted", type=float, default=0.02, help="versions deleted before they replicate")
    p.add_argument("--out-of-scope", type=float, default=0.03, help="versions no rule applies to (untagged)")
    p.add_argument("--corrupt", type=float, default=0.02, help="versions whose replica differs in size")
    p.add_argument("--notifications", type=float, default=0.1, help="share of events sent as S3 notifications/SNS")
    p.add_argument("--ttl-expire", action="store_true", help="at the end, expire items as TTL would a day later")
    p.add_argument("--seed", type=int, default=7, help="random seed: the same seed gives the same workload")
    p.add_argument(
        "--max-seconds", type=float, default=600.0, help="stop waiting for verdicts after this long (a safety stop)"
    )
    p.add_argument("--html", default="demo-output/report.html", help="where to write the HTML report")
    p.add_argument("--json", default="demo-output/report.json", help="where to write the report as JSON")
    p.add_argument(
        "--replication-report",
        default="demo-output/replication-report.html",
        help="where to write `crrmon report`'s page of the run's archive (per pair and RPO class, against RTC); "
        "its figures go beside it as .json",
    )
    p.add_argument("--log", default="demo-output/lambda.log", help="where the handlers' logs and EMF lines go")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    p.add_argument(
        "--stack-file",
        default="demo-output/stack.json",
        help="where to write the local stack's endpoint and names, for `crrmon --local FILE`",
    )
    p.add_argument(
        "--serve",
        action="store_true",
        help="after the report, keep the emulator (and its state) up for `crrmon --local` until Ctrl-C",
    )
    return p


# ---------------------------------------------------------------- the world


@dataclass
class Plan:
    """One object version the workload writes, and what happens to it."""

    at: float
    bucket: str
    key: str
    fault: str
    size: int
    tags: dict[str, str] | None = None
    encryption: str | None = None
    parts: int = 0
    fail_reason: str | None = None
    lose_replica_events: bool = False


def make_plan(args, rng: random.Random) -> list[Plan]:
    reasons = [r.strip() for r in args.failure_reasons.split(",") if r.strip()]
    faults = [
        ("failure", args.failures),
        ("sse-kms", args.sse_kms),
        ("multipart", args.multipart),
        ("source-deleted", args.source_deleted),
        ("out-of-scope", args.out_of_scope),
        ("corrupt", args.corrupt),
        ("sse-c", args.sse_c),
        ("direct-write", args.direct_writes),
        ("cross-account", args.cross_account),
    ]
    buckets, weights = zip(*SOURCES.items(), strict=True)
    # Every fault kind asked for happens at least once, however small the run: one version of each, spread
    # over the workload; the others draw their fault by its share.
    kinds = [name for name, share in faults if share > 0]
    if args.sse_c > 0 and args.sse_c_lost_replica_events > 0:
        kinds.append("sse-c-replica-events-lost")
    step = max(1, args.objects // (len(kinds) + 1))
    plans = []
    for i in range(args.objects):
        draw, fault = rng.random(), "normal"
        for name, share in faults:
            if draw < share:
                fault = name
                break
            draw -= share
        if i % step == step // 2 and i // step < len(kinds):
            fault = kinds[i // step]
        bucket = rng.choices(buckets, weights)[0]
        if fault == "out-of-scope":
            bucket = TAGGED
        elif fault.startswith(("source-deleted", "corrupt", "sse-c")) and bucket in (BIDI_A, BIDI_B, TAGGED):
            # In a bidirectional pair ingest HEADs each version: keep these on one-way rules (and SSE-C
            # on a rule without a tag filter).
            bucket = SRC
        elif fault == "direct-write":
            bucket = rng.choice((DST, DST2))  # an application's PutObject into a destination
        elif fault == "cross-account":
            bucket = XSRC
        prefix = "app" if fault == "direct-write" else "data"
        name = f"{prefix}/{i // 100:03d}/object-{i:05d}" + (" ü+.bin" if i % 37 == 0 else ".bin")
        plan = Plan(
            at=args.load_seconds * i / max(1, args.objects), bucket=bucket, key=name, fault=fault, size=64 + i % 900
        )
        if bucket == TAGGED and fault != "out-of-scope":
            plan.tags = dict(TAG)
        if fault == "sse-kms":
            plan.encryption = "aws:kms"
        elif fault == "multipart":
            plan.parts, plan.size = 3, 3000 + i % 500
        elif fault == "failure":
            plan.fail_reason = rng.choice(reasons)
        elif fault == "sse-c" and rng.random() < args.sse_c_lost_replica_events:
            fault = "sse-c-replica-events-lost"
        if fault == "sse-c-replica-events-lost":
            plan.fault, plan.lose_replica_events = fault, True
        plans.append(plan)
    return plans


@dataclass
class Tally:
    """What the table's stream showed: the latest status of every item."""

    status: dict[tuple[str, str], str] = field(default_factory=dict)
    overdue: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)  # item -> (pair, first_seen)
    overdue_series: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    oldest_overdue: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    ever_overdue: dict[str, set] = field(default_factory=lambda: defaultdict(set))  # pair -> items marked OVERDUE

    def offer(self, records: list[dict]) -> None:
        for record in records:
            if record.get("eventName") == "REMOVE":
                continue
            image = record["dynamodb"].get("NewImage", {})
            if "status" in image and image.get("pk", {}).get("S") != "__lease__":
                ident = (image["pk"]["S"], image["dest"]["S"])
                status = self.status[ident] = image["status"]["S"]
                if status == "OVERDUE":
                    from crrmon.pair_index import OVERDUE, pair_of

                    # The index key value carries a shard ("<pair>#<n>"): the pair is what is shown.
                    pair = pair_of(image.get(OVERDUE.hash_attribute, {}).get("S", "unknown"))
                    self.overdue[ident] = (pair, int(image["first_seen"]["N"]))
                    self.ever_overdue[pair].add(ident)
                else:
                    self.overdue.pop(ident, None)

    def counts(self) -> Counter:
        return Counter(self.status.values())


class Demo:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.t0 = time.time()
        self.tally = Tally()
        self.pairs = sorted({(s, r["Destination"]["Bucket"].rsplit(":", 1)[-1]) for s, rs in RULES.items() for r in rs})

    # ---- set-up
    def start_server(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": f"http://{host}:{port}",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        self.endpoint = f"http://{host}:{port}"

    def provision(self) -> None:
        import boto3

        from crrmon import runtime
        from crrmon_local import emulator
        from crrmon_local.provision import provision

        emulator.install()
        emulator.answer_replication_faithfully()
        emulator.speed_up_moto()
        self.session = session = boto3.Session(region_name=REGION)
        # The backup account's bucket is made by that account (moto keeps one store per account and
        # tells accounts apart by the credentials, here those of a role assumed in it).
        assumed = session.client("sts").assume_role(RoleArn=READER_ROLE, RoleSessionName="backup-admin")
        other = {
            "aws_access_key_id": assumed["Credentials"]["AccessKeyId"],
            "aws_secret_access_key": assumed["Credentials"]["SecretAccessKey"],
            "aws_session_token": assumed["Credentials"]["SessionToken"],
        }
        for bucket, region in REGIONS.items():
            s3 = session.client("s3", region_name=region, **(other if bucket == XDST else {}))
            extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            s3.create_bucket(Bucket=bucket, **extra)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        self.s3 = session.client("s3", region_name=REGION)
        for bucket, rules in RULES.items():
            self.s3.put_bucket_replication(
                Bucket=bucket,
                ReplicationConfiguration={
                    "Role": f"arn:aws:iam::{ACCOUNT}:role/replication",
                    # with replication metrics: S3 sends OperationFailedReplication only for rules with them
                    "Rules": [{**r, "Destination": {**r["Destination"], **REPLICATION_METRICS}} for r in rules],
                },
            )
        destinations = sorted({d for _, d in self.pairs})
        self.stack = provision(
            TEMPLATE,
            session=session,
            stack_name=STACK,
            parameters={
                "SourceBuckets": ",".join(RULES),
                "DestinationBuckets": ",".join(destinations),
                "RpoSeconds": str(self.args.rpo),
                "RpoClasses": self.args.rpo_classes,
                "GiveUpSeconds": str(self.args.give_up),
                "VerifyMode": self.args.verify_mode,
                "ArchiveEnabled": "true",
                "HeadRequestsPerSecond": "1000",
                "RecordRetentionHours": "1",
                "AllowedAccounts": OTHER_ACCOUNT,
                "ReaderRoleArns": READER_ROLE,
            },
            region=REGION,
        )
        # The backup account's read-only role may list its bucket (as the forwarder stack grants), so
        # a missing version there answers 404, not 403. No KMS key grants the monitor kms:Decrypt.
        emulator.grant_list(XDST, OTHER_ACCOUNT)
        self.set_up_buckets(other)
        os.environ.update(self.stack.environment)
        stack = dataclasses.asdict(self.stack)
        environment = stack.pop("environment")
        Path(self.args.stack_file).parent.mkdir(parents=True, exist_ok=True)
        Path(self.args.stack_file).write_text(
            json.dumps({"endpoint_url": self.endpoint, "environment": environment, "stack": stack}, indent=1),
            encoding="utf-8",
        )
        runtime.reset()
        self.sqs = session.client("sqs", region_name=REGION)
        self.ddb = session.client("dynamodb", region_name=REGION)
        self.alerts_url = self.sqs.create_queue(QueueName=f"{STACK}-alert-inbox")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.alerts_url, AttributeNames=["QueueArn"])["Attributes"]
        session.client("sns", region_name=REGION).subscribe(
            TopicArn=self.stack.alert_topic_arn, Protocol="sqs", Endpoint=arn["QueueArn"]
        )

    def set_up_buckets(self, other: dict[str, str]) -> None:
        """What an operator does next to deploying the stack (docs/operating.md), so that
        `crrmon doctor --local` finds this set-up whole (the rules already have replication metrics):
        EventBridge notifications on every watched bucket, replication failure notifications of every source (to the
        events queue in the monitor's region, to a forwarder's topic elsewhere), and a forwarder rule
        in each other region. The configurations are merged into what the buckets have.

        S3's events themselves still come from the emulator, in AWS's shapes: moto's own S3
        notifications (other shapes) are switched off, except the s3:TestEvent that saving a
        configuration sends, which the monitor ignores as it does on AWS."""
        from crrmon_local import emulator

        emulator.silence_moto_s3_notifications()
        session = self.session
        queue_arn = self.sqs_arn(self.stack.events_queue_url)
        bus_arn = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{self.stack.event_bus_name}"
        topics: dict[str, str] = {}
        for region in sorted({r for r in REGIONS.values() if r != REGION}):
            # The forwarder stack of this region (forwarder/template.yaml): its rule to the monitor's bus,
            # and its topic for replication failure events, subscribed by the monitor's events queue.
            buckets = sorted(b for b, r in REGIONS.items() if r == region and b != XDST)
            events = session.client("events", region_name=region)
            pattern = {
                "source": ["aws.s3"],
                "detail-type": ["Object Created", "Object Deleted"],
                "detail": {"bucket": {"name": buckets}},
            }
            events.put_rule(Name=f"{FORWARDER}-ForwardRule", EventPattern=json.dumps(pattern))
            events.put_targets(Rule=f"{FORWARDER}-ForwardRule", Targets=[{"Id": "MonitorEventBus", "Arn": bus_arn}])
            sns = session.client("sns", region_name=region)
            topics[region] = sns.create_topic(Name=f"{FORWARDER}-ReplicationFailureTopic")["TopicArn"]
            sns.subscribe(TopicArn=topics[region], Protocol="sqs", Endpoint=queue_arn)
        for bucket, region in REGIONS.items():
            s3 = session.client("s3", region_name=region, **(other if bucket == XDST else {}))
            existing = s3.get_bucket_notification_configuration(Bucket=bucket)
            wanted = {k: v for k, v in existing.items() if k != "ResponseMetadata"}
            wanted["EventBridgeConfiguration"] = {}
            if bucket in RULES:
                kind, field_, target = (
                    ("QueueConfigurations", "QueueArn", queue_arn)
                    if region == REGION
                    else ("TopicConfigurations", "TopicArn", topics[region])
                )
                wanted[kind] = [
                    *wanted.get(kind, []),
                    {"Id": "crr-monitor-replication", field_: target, "Events": ["s3:Replication:*"]},
                ]
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=wanted)

    def sqs_arn(self, url: str) -> str:
        sqs = self.session.client("sqs", region_name=REGION)
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def wire(self) -> None:
        from crrmon_local import emulator
        from crrmon_local.lambdas import mappings_for_stack

        self.queue_names = {"EventsQueue": self.stack.events_queue_url, "TimerQueue": self.stack.timer_queue_url}
        self.received: dict[str, int] = {}
        self._timers_due, self._timers_checked_at = 0, 0.0
        self.mappings = mappings_for_stack(TEMPLATE, self.stack, self.session, region=REGION)
        self.mappings.stream.describe_every = 5.0  # the table has one shard here; Lambda too describes rarely
        first = self.mappings.stream.consumers[0]
        plain_offer = first.offer

        def offer(records):
            self.tally.offer(records)
            plain_offer(records)

        first.offer = offer
        args = self.args
        self.channel = emulator.EventChannel(
            self.sqs,
            self.stack.events_queue_url,
            rng=random.Random(args.seed + 1),
            lost=args.lost_events,
            duplicates=args.duplicates,
            reorder=args.reorder,
        )  # the backlog window is set when the workload starts
        self.replicator = emulator.Replicator(
            self.channel,
            regions=REGIONS,
            delay=_delay_sampler(args.delay, random.Random(args.seed + 2)),
            rng=random.Random(args.seed + 3),
            notification_share=args.notifications,
        )  # the outage window is set when the workload starts

    # ---- running
    def run(self) -> None:
        """The world (workload, S3, event delivery) and each event source mapping run in their own threads."""
        args = self.args
        self.plans = make_plan(args, self.rng)
        self.written = 0
        self.paused = False
        announced_wait = False
        self.timed_out = False
        self.world_done = threading.Event()
        self.stop_polling = threading.Event()
        self.errors: list[BaseException] = []
        self.t0 = time.time()
        if args.outage != "none":  # the window counts from the workload's start
            from crrmon_local import emulator

            bucket, start, end = _outage(args.outage)
            self.replicator.outages = (emulator.Outage(bucket, self.t0 + start, self.t0 + end),)
        threads = [
            threading.Thread(target=self._guard(self._world), name="world"),
            *(
                threading.Thread(target=self._guard(self._poll_queue), args=(m,), name=m.function_name)
                for m in self.mappings.queues
            ),
            threading.Thread(target=self._guard(self._poll_stream), name="stream"),
        ]
        for thread in threads:
            thread.start()
        last_sample = 0.0
        try:
            while True:
                time.sleep(0.25)
                now = time.time()
                elapsed = now - self.t0
                if now - last_sample >= 2:
                    self._sample_overdue(elapsed)
                    last_sample = now
                if self.written == len(self.plans) and not announced_wait:
                    announced_wait = True
                    if not args.no_progress:
                        self._progress(elapsed, len(self.plans))
                        sys.stderr.write("\n")
                    phase(3, self._waiting_for())
                if not args.no_progress:
                    self._progress(elapsed, len(self.plans))
                if self.errors:
                    break
                if self.world_done.is_set() and self._settled():
                    time.sleep(0.5)  # let the stream's last publications through
                    break
                if elapsed > args.max_seconds:
                    self.timed_out = True
                    break
        finally:
            self.stop_polling.set()
            for thread in threads:
                thread.join()
        if self.errors:
            raise self.errors[0]
        self.mappings.pump()
        if args.ttl_expire:
            self._expire()
        self._sample_overdue(time.time() - self.t0)
        if not args.no_progress:
            self._progress(time.time() - self.t0, len(self.plans))
            sys.stderr.write("\n")
        self.elapsed = time.time() - self.t0
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu_seconds = usage.ru_utime + usage.ru_stime

    def _guard(self, target):
        def run(*a):
            try:
                target(*a)
            except BaseException as error:  # reported by the main thread
                self.errors.append(error)
                self.stop_polling.set()

        return run

    def _world(self) -> None:
        """The customers' applications and S3: writes, deletes, replication, event delivery, in real time."""
        args, plans = self.args, self.plans
        deletes: list[tuple[float, str, str, str]] = []  # (at, kind, bucket, key)
        # The backlog starts when a share of the workload is written (whatever the pace), lasts its seconds.
        backlog_at, backlog_s = _backlog(args.backlog) if args.backlog != "none" else (None, 0.0)
        waited: Counter = Counter()  # how often a delete waited for its version's replicas
        shares = {
            "lifecycle": args.lifecycle_deletes,
            "user": args.user_deletes,
            "dest-lifecycle": args.dest_lifecycle_deletes,
            "two-way": args.two_way_deletes,
        }
        missing = [kind for kind, share in shares.items() if share > 0]  # kinds of delete not made yet
        while not self.stop_polling.is_set():
            now = time.time()
            elapsed = now - self.t0
            due = self.written < len(plans) and plans[self.written].at <= elapsed
            self.paused = due and self._backlogged()
            while self.written < len(plans) and plans[self.written].at <= elapsed and not self._backlogged():
                plan = plans[self.written]
                if backlog_at is not None and self.written >= backlog_at * len(plans):
                    self.channel.backlog, backlog_at = (now, now + backlog_s), None
                self._write(plan)
                self.written += 1
                # Past a quarter of the workload, a version takes a kind of delete that has not happened
                # yet: every kind asked for happens at least once, however small the run.
                late_enough = self.written > len(plans) // 4
                if plan.fault == "normal" and plan.bucket == SRC:
                    draw, kind = self.rng.random(), None
                    if draw < args.lifecycle_deletes:
                        kind = "lifecycle"
                    elif draw < args.lifecycle_deletes + args.user_deletes:
                        kind = "user"
                    elif draw < args.lifecycle_deletes + args.user_deletes + args.dest_lifecycle_deletes:
                        kind = "dest-lifecycle"
                    elif late_enough and (here := [k for k in missing if k != "two-way"]):
                        kind = here[0]
                    if kind:
                        wait = self.rng.uniform(1, 3) if kind == "lifecycle" else 5 + self.rng.uniform(0, 2)
                        deletes.append((elapsed + wait, kind, plan.bucket, plan.key))
                        missing[:] = [k for k in missing if k != kind]
                elif (
                    plan.fault == "normal"
                    and plan.bucket in (BIDI_A, BIDI_B)
                    and (self.rng.random() < args.two_way_deletes or (late_enough and "two-way" in missing))
                ):
                    deletes.append((elapsed + 5 + self.rng.uniform(0, 2), "user", plan.bucket, plan.key))
                    missing[:] = [k for k in missing if k != "two-way"]
            for entry in [d for d in deletes if d[0] <= elapsed]:
                deletes.remove(entry)
                _, kind, bucket, key = entry
                if kind == "lifecycle":
                    self.replicator.expire_by_lifecycle(bucket, key)
                elif not self._replicated_everywhere(bucket, key):
                    # Deleted once replicated everywhere (after an outage, say); not at all if it never is.
                    waited[(kind, bucket, key)] += 1
                    if waited[(kind, bucket, key)] < 20:
                        deletes.append((elapsed + 2, kind, bucket, key))
                    continue
                elif kind == "dest-lifecycle":  # the destination's own rule expires the replica
                    self.replicator.expire_in_destination(self.rng.choice((DST, DST2)), key)
                else:
                    self.replicator.delete(bucket, key)
            self.replicator.run_due(now)
            self.channel.flush(now)
            settled = not deletes and not self.replicator.pending() and not self.channel.pending()
            if self.written == len(plans) and settled:
                self.world_done.set()
                return
            time.sleep(0.02)

    def _backlogged(self) -> bool:
        """More than --max-backlog events wait in the events queue, or stream records for the matcher."""
        limit = self.args.max_backlog
        if not limit:
            return False
        queued = self.channel.counts["delivered"] - self.received.get("EventsQueue", 0)
        streamed = max((len(c.pending) for c in self.mappings.stream.consumers), default=0)
        if time.time() - self._timers_checked_at >= 1:  # due timers the sweeper has not taken yet
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.stack.timer_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            self._timers_due = int(attributes["ApproximateNumberOfMessages"])
            self._timers_checked_at = time.time()
        return queued > limit or streamed > limit or self._timers_due > limit

    def _poll_queue(self, mapping) -> None:
        """Lambda's SQS poller: batches while there are messages, a short wait when the queue is empty."""
        name = next(k for k, url in self.queue_names.items() if url == mapping.queue_url)
        while not self.stop_polling.is_set():
            handled = mapping.poll()
            self.received[name] = self.received.get(name, 0) + handled
            if not handled:
                time.sleep(0.1)

    def _poll_stream(self) -> None:
        """Lambda's stream poller for both consumers, and the one-minute schedule (run every 10 s here)."""
        stream = self.mappings.stream
        last_schedule = 0.0
        while not self.stop_polling.is_set():
            work = stream.read()
            for consumer in stream.consumers:
                while consumer.poll():
                    work += 1
            if time.time() - last_schedule >= 10:
                self.mappings.run_schedules()
                last_schedule = time.time()
            if not work:
                time.sleep(0.1)

    def _write(self, plan: Plan) -> None:
        body = os.urandom(plan.size)
        if plan.fault == "direct-write":
            self.replicator.write_direct(plan.bucket, plan.key, body)
            return
        self.replicator.put(
            plan.bucket,
            plan.key,
            body,
            tags=plan.tags,
            encryption=plan.encryption,
            parts=plan.parts,
            fault=plan.fault,
            fail_reason=plan.fail_reason,
            corrupt=plan.fault == "corrupt",
            delete_source=plan.fault == "source-deleted",
            sse_c=plan.fault.startswith("sse-c"),
            lose_replica_events=plan.lose_replica_events,
        )

    def _replicated_everywhere(self, bucket: str, key: str) -> bool:
        entries = [t for t in self.replicator.truth.values() if t.source == bucket and t.key == key]
        return bool(entries) and all(t.landed_at is not None and t.verdict == "COMPLETED" for t in entries)

    def _settled(self) -> bool:
        """Every item the monitor could know of has a final verdict in the table's stream."""
        from crrmon.store import make_pk

        for truth in self.replicator.truth.values():
            if truth.verdict == "NONE" or not truth.seen:
                continue
            status = self.tally.status.get((make_pk(truth.version_id, truth.key), truth.destination))
            if status in (None, "OVERDUE"):
                return False
        return True

    def _sample_overdue(self, elapsed: float) -> None:
        """How many items are OVERDUE per pair now, and how old the oldest is (from the stream's images)."""
        counts = dict.fromkeys((f"{s}>{d}" for s, d in self.pairs), 0)
        now_ms = time.time() * 1000
        for pair, first_seen in list(self.tally.overdue.values()):
            counts[pair] = counts.get(pair, 0) + 1
            age = (now_ms - first_seen) / 1000
            self.tally.oldest_overdue[pair] = max(self.tally.oldest_overdue[pair], age)
        self.tally.overdue_series.append((round(elapsed, 1), counts))

    def _expire(self) -> None:
        from crrmon_local import emulator

        later = time.time() + 86400 + 3600
        self.ttl_removed = emulator.expire_ttl(
            self.ddb, self.stack.table_name, now_s=later, removed=self.mappings.stream.ttl_removed
        )
        self.mappings.pump()

    def _waiting_for(self) -> str:
        """What the run waits for once every version is written."""
        args = self.args
        parts = [
            f"verdicts of the last versions (their deadline is S3's time + the RPO of {args.rpo} s, or their class's)"
        ]
        if args.outage != "none":
            bucket, _, end = _outage(args.outage)
            parts.append(f"replicas {bucket} takes only after its outage ends ({end:.0f} s)")
        return "the last verdicts: " + "; ".join(parts)

    def counts(self) -> dict[str, int]:
        """Replicas landed of those due so far, and verdicts reached of those the monitor can reach so far
        (the versions and destinations it heard of): what the run waits for."""
        from crrmon.store import make_pk

        truths = list(self.replicator.truth.values())
        replicas_due = sum(
            1 for t in truths if t.verdict in ("COMPLETED", "MISMATCH") and t.source and t.fault != "two-way-echo"
        )
        expected = [t for t in truths if t.verdict != "NONE" and t.seen]
        status = dict(self.tally.status)
        reached = sum(
            1 for t in expected if status.get((make_pk(t.version_id, t.key), t.destination)) not in (None, "OVERDUE")
        )
        return {"replicas_due": replicas_due, "verdicts_expected": len(expected), "verdicts": reached}

    def _progress(self, elapsed: float, total: int) -> None:
        """One line redrawn in place: the bar follows the writes, then the verdicts."""
        counts = self.tally.counts()
        c = self.counts()
        width = 20
        writing = self.written < total
        share = self.written / max(1, total) if writing else c["verdicts"] / max(1, c["verdicts_expected"])
        done = int(width * share)
        bar = "#" * done + "." * (width - done)
        line = (
            f"\r[{bar}] {elapsed:5.1f}s written {self.written}/{total} "
            f"replicas {self.replicator.replicas}/{c['replicas_due']} "
            f"verdicts {c['verdicts']}/{c['verdicts_expected']} overdue now {counts.get('OVERDUE', 0)} "
            f"events {self.channel.counts['delivered']} (lost {self.channel.counts['lost']}, "
            f"held {self.channel.counts.get('backlogged', 0)})"
            + (" - writes wait for the monitor" if self.paused else "")
            + " " * 8
        )
        sys.stderr.write(line)
        sys.stderr.flush()

    # ---- what the monitor said
    def archive_lines(self) -> list[dict]:
        from crrmon.publish import read_archive

        lines = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.stack.archive_bucket):
            for entry in page.get("Contents", []):
                data = self.s3.get_object(Bucket=self.stack.archive_bucket, Key=entry["Key"])["Body"].read()
                lines.extend(read_archive(data))
        return lines

    def digests(self) -> list[dict]:
        found = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.alerts_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for m in messages:
                envelope = json.loads(m["Body"])
                found.append({"subject": envelope.get("Subject"), **json.loads(envelope["Message"])})
            self.sqs.delete_message_batch(
                QueueUrl=self.alerts_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.server.stop()


# ---------------------------------------------------------------- the report


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def build_report(demo: Demo, lines: list[dict], digests: list[dict], peak_mb: float) -> dict:
    truths = demo.replicator.truth
    by_ident: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for line in lines:
        by_ident[(line["version_id"], line["key"], line["destination_bucket"])].add(line["status"])
    pairs = {}
    for source, dest in demo.pairs:
        mine = [ln for ln in lines if ln["source_bucket"] == source and ln["destination_bucket"] == dest]
        unique = {ln["record_id"]: ln for ln in mine}.values()
        latencies = [
            ln["latency_ms"] / 1000 for ln in unique if ln["status"] == "COMPLETED" and ln["latency_ms"] is not None
        ]
        pair = f"{source}>{dest}"
        alerts = [d for d in digests if d["source_bucket"] == source and d["destination_bucket"] == dest]
        pairs[pair] = {
            "source": source,
            "destination": dest,
            "verdicts": dict(Counter(ln["status"] for ln in unique)),
            "latency": {p: percentile(latencies, p) for p in (50, 95, 99)} | {"max": max(latencies, default=None)},
            "latencies": sorted(round(v, 3) for v in latencies),
            "missed_rpo": sum(1 for ln in unique if ln["missed_rpo"]),
            "late_replicas": sum(1 for ln in unique if ln["missed_rpo"] and ln["status"] in ("COMPLETED", "MISMATCH")),
            "overdue_peak": max((c.get(pair, 0) for _, c in demo.tally.overdue_series), default=0),
            "oldest_overdue_s": round(demo.tally.oldest_overdue.get(pair, 0.0), 1),
            "ever_overdue": len(demo.tally.ever_overdue.get(pair, ())),
            "alerts": {
                "messages": len(alerts),
                "objects": dict(Counter({d["status"]: 0 for d in alerts}) + _sum_counts(alerts)),
            },
            "archive_lines": len(mine),
        }

    agree, disagreements, unseen, found_anyway = 0, [], [], 0
    confusion: Counter = Counter()
    for ident, truth in truths.items():
        got = by_ident.get(ident, set())
        said = next(iter(got)) if len(got) == 1 else ("NONE" if not got else "+".join(sorted(got)))
        if truth.verdict != "NONE" and not truth.seen:
            if said == "NONE":
                unseen.append(truth)
                continue
            found_anyway += 1
        confusion[(truth.verdict, said)] += 1
        if said == truth.verdict:
            agree += 1
        else:
            disagreements.append({**_truth_dict(truth), "monitor": said})
    for ident, got in by_ident.items():
        if ident not in truths:
            confusion[("NONE", "+".join(sorted(got)))] += 1
            disagreements.append({"version_id": ident[0], "key": ident[1], "destination": ident[2], "monitor": got})
    classes = rpo_classes(demo.args)
    rpo_check = _check_missed_rpo(lines, truths, classes=classes, rpo=demo.args.rpo)
    disagreements.extend(rpo_check.pop("disagreements"))
    scores = {}
    for verdict in VERDICTS:
        tp = confusion[(verdict, verdict)]
        predicted = sum(v for (_, s), v in confusion.items() if s == verdict)
        actual = sum(v for (t, _), v in confusion.items() if t == verdict)
        if predicted or actual:
            scores[verdict] = {
                "truth": actual,
                "monitor": predicted,
                "precision": tp / predicted if predicted else None,
                "recall": tp / actual if actual else None,
            }
    compared = sum(confusion.values())
    return {
        "settings": {k: v for k, v in vars(demo.args).items() if k not in ("html", "json", "log", "no_progress")},
        "wall_seconds": round(demo.elapsed, 1),
        "peak_memory_mb": round(peak_mb, 1),
        "cpu_seconds": round(demo.cpu_seconds, 1),
        "objects_written": demo.written,
        "replicas_landed": demo.replicator.replicas,
        "events": dict(demo.channel.counts),
        # what the emulator did, per version and destination (each entry one verdict the truth calls for)
        "faults": dict(sorted(Counter(t.fault for t in truths.values()).items())),
        "backlogged": sum(1 for t in truths.values() if t.backlogged),
        "backlog_window_s": ([round(t - demo.t0, 1) for t in demo.channel.backlog] if demo.channel.backlog else None),
        "pairs": pairs,
        "rpo_classes": _class_report(lines, classes, rpo=demo.args.rpo),
        "archive_lines": len(lines),
        "alert_messages": len(digests),
        "overdue_series": demo.tally.overdue_series,
        "compared": compared,
        "agreed": agree,
        "agreement": agree / compared if compared else 1.0,
        "scores": scores,
        "unseen": [_truth_dict(t) for t in unseen],
        "found_without_events": found_anyway,
        "missed_rpo_check": rpo_check,
        "disagreements": disagreements,
        "ttl_removed": getattr(demo, "ttl_removed", None),
        "timed_out": demo.timed_out,
    }


def _policy_class(line: dict, classes: tuple, rpo: int) -> set[tuple[str, int]]:
    """The RPO classes the policy gives the line's version: by its key and its size (the source's, or the
    replica's where the monitor first heard of the replica; both when they differ)."""
    from crrmon.rpo import DEFAULT_CLASS, classify

    found = set()
    for size in {x for x in (line["size"], line["replica_size"]) if x is not None} or {None}:
        match = classify(classes, line["key"], size)
        found.add((match.name, match.rpo_seconds) if match else (DEFAULT_CLASS, rpo))
    return found


def _class_report(lines: list[dict], classes: tuple, *, rpo: int) -> dict:
    """Per RPO class: its RPO, the archive's verdicts, how many missed it, and COMPLETED latencies."""
    from crrmon.rpo import DEFAULT_CLASS

    out = {c.name: {"rpo": c.rpo_seconds} for c in classes} | {DEFAULT_CLASS: {"rpo": rpo}}
    unique = list({ln["record_id"]: ln for ln in lines}.values())
    for name, entry in out.items():
        mine = [ln for ln in unique if ln["rpo_class"] == name]
        latencies = [
            ln["latency_ms"] / 1000 for ln in mine if ln["status"] == "COMPLETED" and ln["latency_ms"] is not None
        ]
        entry.update(
            lines=len(mine),
            completed=sum(1 for ln in mine if ln["status"] == "COMPLETED"),
            missed_rpo=sum(1 for ln in mine if ln["missed_rpo"]),
            p50=percentile(latencies, 50),
            max=max(latencies, default=None),
        )
    return out


def _check_missed_rpo(lines: list[dict], truths: dict, *, classes: tuple = (), rpo: int) -> dict:
    """Lateness by S3's times: a COMPLETED verdict whose two event times the monitor had (a latency)
    missed the RPO of its class exactly when the emulator landed the replica more than that RPO after
    its source. Every line must carry the class the policy gives its version.

    Not judged: replicas from a second under the RPO to two seconds over it. EventBridge times have whole
    seconds (a second either way), and the monitor's deadline is a whole second rounded up (S3's time +
    RPO + size/throughput, ceil): it calls a replica late only when its times prove it later than that."""
    checked, late, disagreements = 0, 0, []
    for line in {ln["record_id"]: ln for ln in lines}.values():
        policy = _policy_class(line, classes, rpo)
        if (line["rpo_class"], line["rpo_seconds"]) not in policy:
            disagreements.append(
                {
                    "key": line["key"],
                    "destination": line["destination_bucket"],
                    "monitor_rpo_class": [line["rpo_class"], line["rpo_seconds"]],
                    "policy_rpo_class": sorted(policy),
                }
            )
            continue
        rpo_s = line["rpo_seconds"]
        truth = truths.get((line["version_id"], line["key"], line["destination_bucket"]))
        if line["status"] != "COMPLETED" or line.get("latency_ms") is None or truth is None:
            continue
        if truth.landed_at is None or truth.verdict != "COMPLETED":
            continue
        took = truth.landed_at - truth.created_at
        if rpo_s - 1.0 <= took <= rpo_s + 2.0:
            continue
        checked += 1
        late += took > rpo_s
        if bool(line["missed_rpo"]) != (took > rpo_s):
            disagreements.append(
                {**_truth_dict(truth), "replicated_in_s": round(took, 2), "monitor_missed_rpo": line["missed_rpo"]}
            )
    return {"checked": checked, "late": late, "disagreements": disagreements}


def _sum_counts(alerts: list[dict]) -> Counter:
    total: Counter = Counter()
    for d in alerts:
        total[d["status"]] += d["count"]
    return total


def _truth_dict(truth) -> dict:
    return {
        "source": truth.source,
        "destination": truth.destination,
        "key": truth.key,
        "version_id": truth.version_id,
        "truth": truth.verdict,
        "fault": truth.fault,
    }


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _n(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def overdue_line(p: dict) -> str:
    """Lateness (a replica landed after its RPO, by S3's times) and OVERDUE (a check at the deadline found no
    replica yet) are different things: a replica can land late yet before any check saw it missing."""
    replicas = p.get("late_replicas", p["missed_rpo"])
    others = p["missed_rpo"] - replicas
    ever = p.get("ever_overdue", p["overdue_peak"])
    parts = []
    if replicas:
        parts.append(
            _n(replicas, "replica", "replicas")
            + " landed after the RPO"
            + ("" if ever else ": late, not overdue at a check (none was missing when a check came)")
        )
    if others > 0:
        parts.append(_n(others, "verdict", "verdicts") + " past the RPO without a replica")
    if not parts:
        parts.append("no replica landed after the RPO")
    if ever:
        parts.append(
            f"{_n(ever, 'item', 'items')} OVERDUE at a check (at most {p['overdue_peak']} at once, "
            f"the oldest for {p['oldest_overdue_s']} s)"
        )
    else:
        parts.append("none OVERDUE")
    return "; ".join(parts)


def render_text(report: dict) -> str:
    out = ["", "CRR Monitor demo report", "=" * 23]
    s = report["settings"]
    out.append(
        f"{report['objects_written']} versions written, {report['replicas_landed']} replicas landed; "
        f"RPO {s['rpo']}s, give-up {s['give_up']}s, delays {s['delay']}, outage {s['outage']}"
    )
    e = report["events"]
    out.append(
        f"events: {e['emitted']} emitted, {e['delivered']} delivered, {e['lost']} lost, "
        f"{e['duplicated']} duplicated, {e['reordered']} late, {e.get('backlogged', 0)} held in the backlog "
        + (f"({window[0]}-{window[1]} s after the workload's start)" if (window := report["backlog_window_s"]) else "")
    )
    out.append("faults (object versions x destinations):")
    for chunk in _chunks([f"{k} {v}" for k, v in report["faults"].items()], 6):
        out.append("  " + ", ".join(chunk))
    out.append(f"  with an event held in the backlog: {report['backlogged']}")
    if len(report.get("rpo_classes") or ()) > 1:
        out.append(f"RPO classes ({s.get('rpo_classes')}; the others: default, RPO {s['rpo']}s)")
        for name, c in report["rpo_classes"].items():
            out.append(
                f"  {name:<10} RPO {c['rpo']:>4}s  {c['lines']:>4} verdicts, {c['completed']:>4} COMPLETED "
                f"(p50 {_fmt_s(c['p50'])}, max {_fmt_s(c['max'])}), {c['missed_rpo']} missed the RPO"
            )
    for p in report["pairs"].values():
        out.append("")
        out.append(f"pair {p['source']} -> {p['destination']}")
        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(p["verdicts"].items())) or "none"
        out.append(f"  verdicts:      {verdicts}")
        lat = p["latency"]
        out.append(
            f"  latency:       p50 {_fmt_s(lat[50])}  p95 {_fmt_s(lat[95])}  p99 {_fmt_s(lat[99])}  "
            f"max {_fmt_s(lat['max'])}"
        )
        out.append(f"  overdue:       {overdue_line(p)}")
        alerts = ", ".join(f"{k} {v}" for k, v in sorted(p["alerts"]["objects"].items())) or "none"
        out.append(f"  alerts sent:   {p['alerts']['messages']} digests ({alerts})")
        out.append(f"  archive lines: {p['archive_lines']}")
    out.append("")
    out.append("verdicts compared with the emulator's ground truth")
    out.append(f"  {'verdict':<15} {'truth':>6} {'monitor':>8} {'precision':>10} {'recall':>8}")
    for verdict, sc in report["scores"].items():
        precision = "-" if sc["precision"] is None else f"{sc['precision']:.1%}"
        recall = "-" if sc["recall"] is None else f"{sc['recall']:.1%}"
        out.append(f"  {verdict:<15} {sc['truth']:>6} {sc['monitor']:>8} {precision:>10} {recall:>8}")
    out.append(
        f"  agreement: {report['agreed']}/{report['compared']} ({report['agreement']:.2%}) "
        "of the object versions and destinations the monitor could see"
    )
    if report["found_without_events"]:
        out.append(f"  found although every event about them was lost: {report['found_without_events']}")
    out.append(f"  not seen (every event about them lost), reported apart: {len(report['unseen'])}")
    for u in report["unseen"][:10]:
        out.append(f"    {u['source']} -> {u['destination']} {u['key']} ({u['fault']}, truth {u['truth']})")
    rc = report["missed_rpo_check"]
    out.append(
        f"  missed RPO by S3's times: {rc['checked']} COMPLETED verdicts with both event times checked, "
        f"{rc['late']} of them late"
    )
    if report["ttl_removed"] is not None:
        out.append(f"  TTL expiry emulated: {report['ttl_removed']} items removed")
    if report["timed_out"]:
        out.append(f"STOPPED after --max-seconds {s['max_seconds']}: versions still undecided count as disagreements")
    if report["disagreements"]:
        out.append(f"DISAGREEMENTS: {len(report['disagreements'])}")
        for d in report["disagreements"][:50]:
            out.append(f"  {json.dumps(d, default=sorted, ensure_ascii=False)}")
    else:
        out.append("no disagreements")
    out.append("")
    whole = (
        f"wall time {report['total_seconds']}s (announced: about {report['expected_seconds']}s): "
        f"set-up {report['set_up_seconds']}s, run {report['wall_seconds']}s"
        if "total_seconds" in report
        else f"wall time {report['wall_seconds']}s"
    )
    out.append(
        f"{whole} (CPU {report['cpu_seconds']}s), peak memory {report['peak_memory_mb']} MB, "
        f"{report['archive_lines']} archive lines, {report['alert_messages']} alert digests"
    )
    return "\n".join(out) + "\n"


def announcement(args) -> str:
    """What the run does and about how long it takes, before anything starts."""
    large = argparse.Namespace(**{**vars(args), **LARGE})
    size = (
        "the large run"
        if args.large
        else f"--large: {LARGE['objects']:,} versions, about {expected_seconds(large) / 60:.0f} min"
    )
    return (
        f"CRR Monitor demo: {args.objects:,} object versions with every fault kind, replicated and judged in real "
        f"time; about {expected_seconds(args):.0f} s on two cores ({size}).\n"
    )


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = cli.parse_args(argv)
    apply_large(args, argv)
    try:  # malformed values are usage errors, reported before anything starts
        try:
            rpo_classes(args)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        _delay_sampler(args.delay, random.Random())
        if args.outage != "none":
            _outage(args.outage)
        if args.backlog != "none":
            _backlog(args.backlog)
    except argparse.ArgumentTypeError as error:
        cli.error(str(error))
    # Powertools warns on every invocation that publishes no metric of its own: noise here.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    for path in (args.html, args.log, args.json, args.replication_report):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    sys.stderr.write(announcement(args))
    demo = Demo(args)
    try:
        with open(args.log, "w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
            phase(1, "set-up: moto server on 127.0.0.1, the stack from template.yaml, buckets set up as a user would")
            demo.start_server()
            demo.provision()
            demo.wire()
            set_up_s = time.time() - started
            outage = "" if args.outage == "none" else f", {args.outage.replace(':', ' down ')} s"
            phase(
                2,
                f"workload: {args.objects} object versions over {args.load_seconds:g} s; S3 replicates them, "
                f"with faults{outage}",
            )
            demo.run()
            phase(4, "report: the archive's verdicts compared with the ground truth")
            lines = demo.archive_lines()
            digests = demo.digests()
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        report = build_report(demo, lines, digests, peak_mb)
        report["set_up_seconds"] = round(set_up_s, 1)
        report["expected_seconds"] = round(expected_seconds(args))
        report["total_seconds"] = round(time.time() - started, 1)
    except BaseException:
        demo.stop()
        raise
    if not args.serve:
        demo.stop()
    sys.stdout.write(render_text(report))
    from crrmon_local.report_html import render_html

    Path(args.html).write_text(render_html(report), encoding="utf-8")
    Path(args.json).write_text(json.dumps(report, indent=1, default=sorted, ensure_ascii=False), encoding="utf-8")
    sys.stdout.write(f"HTML report: {args.html}\n")
    from crrmon_cli.report import Window, write_report

    # What `crrmon report --archive-dir` gives for the archive the run wrote (the window: the whole run).
    window = Window.between(math.floor(started), math.ceil(time.time()))
    figures = write_report(lines, window, "html", args.replication_report)
    Path(args.replication_report).with_suffix(".json").write_text(json.dumps(figures, indent=1), encoding="utf-8")
    sys.stdout.write(f"Replication report (crrmon report): {args.replication_report}\n")
    if args.serve:
        serve(args)
        demo.stop()
    return 1 if report["disagreements"] else 0


def phase(number: int, text: str) -> None:
    """A step of the run, on its own line of stderr (the report goes to stdout)."""
    sys.stderr.write(f"[{number}/4] {text}\n")
    sys.stderr.flush()


def serve(args) -> None:
    """Keep a fresh emulator answering while an operator tries `crrmon --local` on the demo's state."""
    sys.stdout.write(
        f"\nThe emulator stays up at {os.environ['AWS_ENDPOINT_URL']} (Ctrl-C stops it). In another shell:\n"
        f"  .venv/bin/crrmon overdue --local {args.stack_file}\n"
        f"  .venv/bin/crrmon stats --local {args.stack_file}\n"
    )
    sys.stdout.flush()
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
