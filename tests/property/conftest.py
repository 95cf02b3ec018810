"""A pipeline of the real domain objects (Ingest, Matcher, Sweeper) on moto, for property-based tests.

One moto account per test module: the table, queues, topic and delivery stream come from template.yaml
(crrmon_local.provision), the buckets hold real versions whose replication facts the emulator sets.
Each hypothesis example works on keys of its own, so examples never see each other's items. The
test, not a poller, decides when each event batch arrives, when time passes, when due timers fire and
when the table's stream is read: hypothesis chooses all of it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from hypothesis import HealthCheck, settings
from moto import mock_aws

from crrmon.config import Config
from crrmon.evidence import Evidence, RateLimiter
from crrmon.ingest import Heartbeats, Ingest
from crrmon.match import Matcher
from crrmon.metrics import Counters
from crrmon.publish import Publisher, read_archive
from crrmon.store import Store
from crrmon.sweep import Sweeper
from crrmon.topology import Rule, Topology, TopologyCache
from crrmon_local import emulator
from crrmon_local.lambdas import StreamConsumer, StreamMapping
from crrmon_local.provision import provision

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
SRC, SOLO = "prop-src", "prop-solo"  # SRC -> DST and DST2; SOLO -> DST (DST has two sources)
DST, DST2 = "prop-dst", "prop-dst2"
DESTINATIONS = {SRC: (DST, DST2), SOLO: (DST,)}
RPO = 60
GIVE_UP = 600


def examples(default: int) -> int:
    """How many cases a property tries: small in `make test`, CRRMON_FUZZ_EXAMPLES in `make fuzz`."""
    return int(os.environ.get("CRRMON_FUZZ_EXAMPLES", default))


def property_settings(default: int):
    return settings(
        max_examples=examples(default),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        database=None,
    )


class Clock:
    def __init__(self) -> None:
        self.t = float(int(time.time()))

    def __call__(self) -> float:
        return self.t


@dataclass
class Pipeline:
    session: boto3.Session
    clock: Clock
    ingest: Ingest
    matcher: Matcher
    sweeper: Sweeper
    stream: StreamMapping
    timer_queue_url: str
    events_dlq_url: str
    archived: list[dict] = field(default_factory=list)  # every archive line sent to Firehose
    digests: list[dict] = field(default_factory=list)  # every SNS digest (subject, body)
    counters: Counters = field(default_factory=Counters)
    message_ids: int = 0

    def __post_init__(self) -> None:
        self.s3 = self.session.client("s3")
        self.sqs = self.sweeper.sqs

    # ---- what the event source mappings would do -------------------------------------------------
    def deliver(self, bodies: list[tuple[str, int]]) -> dict:
        """One events-queue batch: (body, receive count) pairs."""
        records = []
        for body, receive_count in bodies:
            self.message_ids += 1
            records.append(
                {
                    "messageId": f"m{self.message_ids}",
                    "body": body,
                    "attributes": {"ApproximateReceiveCount": str(receive_count)},
                }
            )
        return self.ingest.handle_batch(records)

    def fire_timers(self, *, max_batches: int = 200) -> int:
        """Hand every due timer to the sweeper, ten at a time; failed ones become visible again."""
        handled = 0
        for _ in range(max_batches):
            answer = self.sqs.receive_message(
                QueueUrl=self.timer_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30
            )
            messages = answer.get("Messages", [])
            if not messages:
                break
            records = [{"messageId": m["MessageId"], "body": m["Body"]} for m in messages]
            failed = {f["itemIdentifier"] for f in self.sweeper.handle_timers(records)["batchItemFailures"]}
            for m in messages:
                if m["MessageId"] in failed:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.timer_queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                    )
                else:
                    self.sqs.delete_message(QueueUrl=self.timer_queue_url, ReceiptHandle=m["ReceiptHandle"])
            handled += len(messages)
            if failed:
                break
        return handled

    def read_stream(self, *, max_rounds: int = 50) -> int:
        handled = 0
        for _ in range(max_rounds):
            work = self.stream.read() + sum(c.poll() for c in self.stream.consumers)
            handled += work
            if not work:
                break
        return handled

    def settle(self) -> None:
        for _ in range(20):
            if not (self.read_stream() + self.fire_timers()):
                return

    def advance(self, seconds: float) -> None:
        self.clock.t += seconds


def _capture(pipeline: Pipeline, session_clients: dict) -> None:
    def archive(params, **_):
        for record in params["Records"]:
            pipeline.archived.extend(read_archive(record["Data"]))

    def digest(params, **_):
        # MessageStructure json: one form per protocol; the SQS form is the machine-readable one.
        pipeline.digests.append({"subject": params["Subject"], **json.loads(json.loads(params["Message"])["sqs"])})

    session_clients["firehose"].meta.events.register("provide-client-params.firehose.PutRecordBatch", archive)
    session_clients["sns"].meta.events.register("provide-client-params.sns.Publish", digest)


def _buckets(s3) -> None:
    for bucket in (SRC, SOLO, DST, DST2):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def topology() -> Topology:
    rules = {
        source: [Rule(id=f"{source}-to-{dest}", destination_bucket=dest, priority=i) for i, dest in enumerate(dests)]
        for source, dests in DESTINATIONS.items()
    }
    return Topology(sources=rules, regions={b: REGION for b in (SRC, SOLO, DST, DST2)})


@pytest.fixture(scope="module")
def moto_account():
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
    )
    clock = Clock()
    patcher = pytest.MonkeyPatch()
    patcher.setattr("moto.sqs.models.unix_time_millis", lambda *a: clock.t * 1000)
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        emulator.install()
        _buckets(session.client("s3"))
        stack = provision(
            ROOT / "template.yaml",
            session=session,
            stack_name="crrmon-prop",
            parameters={
                "SourceBuckets": f"{SRC},{SOLO}",
                "DestinationBuckets": f"{DST},{DST2}",
                "ArchiveEnabled": "true",
            },
            region=REGION,
        )
        stream = StreamMapping(session.client("dynamodbstreams"), stack.stream_arn, [])
        yield session, stack, clock, stream
    patcher.undo()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def build_pipeline(
    session, stack, clock: Clock, stream: StreamMapping, *, clients: dict | None = None, **config
) -> Pipeline:
    """The three domain objects wired to moto clients (or the `clients` given, by service)."""
    clients = dict(clients or {})
    for service in ("dynamodb", "dynamodbstreams", "sqs", "s3", "firehose", "sns"):
        clients.setdefault(service, session.client(service))
    cfg = Config(
        table_name=stack.table_name,
        overdue_index_name=stack.overdue_index_name,
        timer_queue_url=stack.timer_queue_url,
        events_dlq_url=stack.events_dlq_url,
        delivery_stream_name=stack.delivery_stream_name,
        alert_topic_arn=stack.alert_topic_arn,
        source_buckets=(SRC, SOLO),
        destination_buckets=(DST, DST2),
        rpo_seconds=RPO,
        give_up_seconds=GIVE_UP,
        head_requests_per_second=1000,
        **config,
    )
    store = Store(clients["dynamodb"], cfg.table_name, cfg.overdue_index_name)
    topo = topology()
    cache = TopologyCache(lambda: topo, max_age=1e9)
    evidence = Evidence(clients["s3"], RateLimiter(1000, clock=clock))
    counters = Counters()
    publisher = Publisher(
        firehose=clients["firehose"],
        delivery_stream=cfg.delivery_stream_name,
        sns=clients["sns"],
        topic_arn=cfg.alert_topic_arn,
    )
    ingest = Ingest(cfg, store, cache, evidence, clients["sqs"], counters, clock, heartbeats=Heartbeats())
    matcher = Matcher(cfg, store, publisher, clients["sqs"], counters, clock)
    sweeper = Sweeper(cfg, store, evidence, cache, publisher, clients["sqs"], counters, clock)
    consumer = StreamConsumer(
        lambda event, _context: matcher.handle_batch(event["Records"]),
        "MatcherFunction",
        filters=[{"eventName": ["INSERT", "MODIFY"]}],
    )
    stream.consumers = []
    stream.read()  # start after what earlier examples wrote
    stream.consumers = [consumer]
    pipeline = Pipeline(
        session,
        clock,
        ingest,
        matcher,
        sweeper,
        stream,
        stack.timer_queue_url,
        stack.events_dlq_url,
        counters=counters,
    )
    _capture(pipeline, clients)
    return pipeline
