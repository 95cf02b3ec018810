"""AWS usage per monitored object: the whole pipeline on moto, every request the handlers make counted.

The monitor is provisioned from template.yaml on moto (in-process `mock_aws`), driven through its
queues and stream by `crrmon_local.lambdas` with a fake clock, exactly as the integration tests do.
Every client the handlers build (crrmon.runtime.client, on boto3's default session) carries a
`before-call`/`after-call` hook that counts requests and their billed units: DynamoDB write units
from the item's size before and after each write (an uncounted client reads it), index writes when
an item enters or leaves the sparse Overdue index, read units from what reads return, Firehose bytes
rounded per record, SQS/SNS 64 KB chunks. Requests that AWS makes on the monitor's behalf (EventBridge
or SNS delivering events to the queue, S3 publishing notifications, Lambda's pollers receiving and
deleting) are counted from the pipeline's own numbers, assuming full batches.
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from crrmon.pair_index import OVERDUE
from crrmon_local.bench import cost

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"
SRC1, SRC2, DST_A, DST_B = "usage-src-one", "usage-src-two", "usage-dst-usw2", "usage-dst-euw1"
REGIONS = {SRC1: "us-east-1", SRC2: "us-east-1", DST_A: "us-west-2", DST_B: "eu-west-1"}
RPO = 900
GIVE_UP = 7200
INDEX_KEYS = (OVERDUE.hash_attribute, OVERDUE.range_attribute)
TABLE_KEYS = ("pk", "dest")


def _rule(rule_id: str, dest: str, priority: int) -> dict:
    return {
        "ID": rule_id,
        "Priority": priority,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "Destination": {"Bucket": f"arn:aws:s3:::{dest}"},
        "DeleteMarkerReplication": {"Status": "Enabled"},
    }


RULES = {SRC1: [_rule("one", DST_A, 1)], SRC2: [_rule("two-a", DST_A, 1), _rule("two-b", DST_B, 2)]}


@dataclass
class Meter:
    """Requests and billed units by (service, operation), from botocore's before-call/after-call events."""

    table_name: str
    index_included: tuple[str, ...]
    reader: Any  # an uncounted DynamoDB client, to read items before and after a write
    calls: Counter = field(default_factory=Counter)
    units: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    _before: dict[int, dict | None] = field(default_factory=dict)

    def _get(self, key: dict) -> dict | None:
        return self.reader.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item")

    def before_parameter_build(self, params, model, context, **_):
        op = f"{model.service_model.service_name}.{model.name}"
        self.calls[op] += 1
        context["bench_op"] = op
        if op in ("dynamodb.UpdateItem", "dynamodb.PutItem", "dynamodb.DeleteItem"):
            key = params.get("Key") or {k: params["Item"][k] for k in TABLE_KEYS}
            context["bench_key"] = key
            context["bench_before"] = self._get(key)
        elif op in ("dynamodb.Query", "dynamodb.GetItem"):
            context["bench_consistent"] = bool(params.get("ConsistentRead"))
        elif op == "firehose.PutRecordBatch":
            sizes = [len(r["Data"]) for r in params["Records"]]
            self.units["firehose.billed_bytes"] += cost.firehose_billed_bytes(sizes)
            self.units["firehose.raw_bytes"] += sum(sizes)
            self.units["firehose.records"] += len(sizes)
        elif op in ("sqs.SendMessageBatch", "sqs.SendMessage"):
            entries = params.get("Entries") or [params]
            payload = sum(len(e["MessageBody"].encode()) + _attribute_bytes(e) for e in entries)
            self.units["sqs.requests"] += cost.chunked_requests(payload)
            if op == "sqs.SendMessageBatch":
                self.units["sqs.timer_messages"] += len(entries)
        elif op == "sns.Publish":
            payload = len(params["Message"].encode()) + len(params.get("Subject", "").encode())
            self.units["sns.requests"] += cost.chunked_requests(payload)

    def after_call(self, parsed, context, **_):
        op = context.get("bench_op")
        if op in ("dynamodb.UpdateItem", "dynamodb.PutItem", "dynamodb.DeleteItem"):
            before = context.get("bench_before")
            after = self._get(context["bench_key"])
            units = cost.write_units(cost.item_size(before), cost.item_size(after))
            if context["bench_key"]["pk"]["S"].startswith("__"):  # lease, heartbeat, canary: per container/minute
                self.units["dynamodb.bookkeeping_write_units"] += units
                self.calls["dynamodb.UpdateItem (bookkeeping)"] += 1
                self.calls[op] -= 1
                return
            self.units["dynamodb.write_units"] += units
            project = [TABLE_KEYS, INDEX_KEYS, self.index_included]
            gsi = cost.index_write_units(
                cost.projection(before, *project), cost.projection(after, *project), INDEX_KEYS
            )
            self.units["dynamodb.index_write_units"] += gsi
        elif op == "dynamodb.BatchGetItem":  # heartbeats on the schedule: per minute, not per object
            for items in (parsed.get("Responses") or {}).values():
                size = sum(cost.item_size(i) for i in items)
                self.units["dynamodb.bookkeeping_read_units"] += cost.read_units(size, consistent=False)
        elif op in ("dynamodb.Query", "dynamodb.GetItem"):
            items = parsed.get("Items") or ([parsed["Item"]] if parsed.get("Item") else [])
            size = sum(cost.item_size(i) for i in items)
            key = "dynamodb.read_units" if context.get("bench_consistent") else "dynamodb.read_units_eventual"
            self.units[key] += cost.read_units(size, consistent=bool(context.get("bench_consistent")))

    def install(self, session: boto3.Session) -> None:
        session.events.register("before-parameter-build", self.before_parameter_build)
        session.events.register("after-call", self.after_call)

    def reset(self) -> None:
        self.calls.clear()
        self.units.clear()


def _attribute_bytes(entry: dict) -> int:
    total = 0
    for name, value in (entry.get("MessageAttributes") or {}).items():
        total += len(name) + len(value.get("DataType", "")) + len(str(value.get("StringValue", "")))
    return total


@dataclass
class Scenario:
    name: str
    destinations: int  # per object
    objects: int
    calls: Counter
    units: dict[str, float]
    events: int  # S3 events into the events queue (one SQS SendMessage each)
    cross_region_events: int  # of which came from buckets outside the monitor's region (forwarded)
    failure_notifications: int  # of which were S3 replication failure notifications (SNS publishes by S3)
    timers: int  # timer messages sent (first sightings and re-arms)
    records: dict[str, int]  # records each event source mapping handed to its function
    emf_bytes: int  # what the handlers printed (EMF metrics, logs)
    invocations: dict[str, int]
    outcomes: Counter

    def per_object(self, value: float) -> float:
        return value / self.objects


class World:
    """The integration tests' harness, reduced to what a usage count needs."""

    def __init__(self, session, stack, clock):
        from crrmon_local.lambdas import mappings_for_stack

        self.session, self.stack, self.clock = session, stack, clock
        self.s3 = session.client("s3", region_name=REGION)
        self.sqs = session.client("sqs", region_name=REGION)
        self.mappings = mappings_for_stack(TEMPLATE, stack, session, region=REGION)
        self.events = 0
        self.cross_region = 0
        self.failures = 0
        self.records: Counter = Counter()
        for mapping in [*self.mappings.queues, *self.mappings.stream.consumers]:
            kind = "SQS" if hasattr(mapping, "queue_url") else "stream"
            mapping.handler = self._counting(f"{mapping.function_name} ({kind})", mapping.handler)

    def _counting(self, name: str, handler):
        def counted(event, context):
            self.records[name] += sum(not _moto_key_only_insert(r) for r in event.get("Records", []))
            return handler(event, context)

        return counted

    def put(self, bucket: str, key: str) -> dict:
        answer = self.s3.put_object(Bucket=bucket, Key=key, Body=b"x" * 1000)
        return {"version_id": answer["VersionId"], "etag": answer["ETag"].strip('"'), "size": 1000}

    def event(self, bucket: str, key: str, obj: dict) -> None:
        """An "object created" event as it reaches the events queue.

        A bucket in the monitor's region: an EventBridge event from the default bus. A bucket in another
        region: an S3 event notification published to the forwarder's SNS topic, in its SNS envelope (the
        recommended set-up; EventBridge cross-region forwarding delivers the same event in EventBridge's
        form and is costed from the same count).
        """
        from crrmon_local import emulator

        region = REGIONS[bucket]
        if region == REGION:
            body = emulator.eventbridge_object_event(
                bucket=bucket,
                key=key,
                version_id=obj["version_id"],
                size=obj["size"],
                etag=obj["etag"],
                time_s=self.clock.t,
                region=region,
                account=ACCOUNT,
            )
        else:
            record = emulator.s3_notification(
                event_name="ObjectCreated:Put",
                bucket=bucket,
                key=key,
                version_id=obj["version_id"],
                time_s=self.clock.t,
                region=region,
                size=obj["size"],
                etag=obj["etag"],
            )
            body = emulator.in_sns([record], topic_arn=f"arn:aws:sns:{region}:{ACCOUNT}:crrmon-forwarder")
        self.sqs.send_message(QueueUrl=self.stack.events_queue_url, MessageBody=body)
        self.events += 1
        self.cross_region += region != REGION

    def failure(self, src: str, key: str, obj: dict, dest: str) -> None:
        from crrmon_local import emulator

        record = emulator.replication_failure(
            bucket=src,
            key=key,
            version_id=obj["version_id"],
            destination_bucket=dest,
            reason="DstPutObjectNotPermitted",
            rule_id="one",
            time_s=self.clock.t,
            region=REGIONS[src],
        )
        body = emulator.in_sns([record], topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT}:s3-failures")
        self.sqs.send_message(QueueUrl=self.stack.events_queue_url, MessageBody=body)
        self.events += 1
        self.failures += 1

    def replicate(self, src: str, key: str, obj: dict, dest: str, status: str = "COMPLETED") -> None:
        from crrmon_local import emulator

        emulator.replicate(self.s3, src, key, obj["version_id"], dest)
        emulator.set_replication_status(src, key, obj["version_id"], status)

    def run(self) -> None:
        self.mappings.pump()

    def advance(self, seconds: float) -> None:
        self.run()
        self.clock.t += seconds
        self.run()


def _moto_key_only_insert(record: dict) -> bool:
    """moto 5 creates an item for an UpdateItem by first writing its key alone, which its stream shows as
    an INSERT of the key only, before the INSERT of the item; DynamoDB writes one record. Not counted."""
    image = (record.get("dynamodb") or {}).get("NewImage")
    return record.get("eventName") == "INSERT" and image is not None and set(image) <= set(TABLE_KEYS)


class _Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def _make_buckets(session) -> None:
    for bucket, region in REGIONS.items():
        s3 = session.client("s3", region_name=region)
        extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **extra)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3 = session.client("s3", region_name=REGION)
    for bucket, rules in RULES.items():
        s3.put_bucket_replication(
            Bucket=bucket, ReplicationConfiguration={"Role": f"arn:aws:iam::{ACCOUNT}:role/r", "Rules": rules}
        )


def _happy(world: World, src: str, dests: list[str], key: str, outcomes: Counter) -> None:
    obj = world.put(src, key)
    world.event(src, key, obj)
    world.run()
    world.clock.t += 5
    for dest in dests:
        world.replicate(src, key, obj, dest)
        world.event(dest, key, obj)
    world.run()
    outcomes["completed in time"] += 1


def _fault(world: World, i: int, key: str, outcomes: Counter) -> None:
    """One object of the fault mix: late, S3-reported failure, lost replica event, or never replicated."""
    src, dest = SRC1, DST_A
    obj = world.put(src, key)
    world.event(src, key, obj)
    world.run()
    kind = i % 4
    if kind == 0:  # late: OVERDUE at the deadline, completes afterwards
        from crrmon_local import emulator

        emulator.set_replication_status(src, key, obj["version_id"], "PENDING")
        world.advance(RPO + 1)
        world.replicate(src, key, obj, dest)
        world.event(dest, key, obj)
        world.run()
        outcomes["late (OVERDUE, then COMPLETED)"] += 1
    elif kind == 1:  # S3 reports OperationFailedReplication
        world.failure(src, key, obj, dest)
        world.run()
        outcomes["failed (S3 failure event)"] += 1
    elif kind == 2:  # replica lands, its event is lost: HEADs at the deadline
        world.replicate(src, key, obj, dest)
        world.advance(RPO + 1)
        outcomes["replica event lost (HEAD at deadline)"] += 1
    else:  # never replicated: OVERDUE, re-checked until the give-up age, FAILED
        from crrmon_local import emulator

        emulator.set_replication_status(src, key, obj["version_id"], "PENDING")
        for _ in range(GIVE_UP // RPO + 2):
            world.advance(RPO)
        outcomes["never replicated (OVERDUE, gave up)"] += 1


def run_scenarios(objects: int) -> list[Scenario]:
    """Happy path with one and with two destinations, and a fault mix; `objects` objects each."""
    import os

    import moto.sqs.models
    from moto import mock_aws

    from crrmon import runtime
    from crrmon_local import emulator
    from crrmon_local.provision import provision

    warnings.filterwarnings("ignore")
    saved_env = dict(os.environ)
    saved_now, saved_millis = runtime.now, moto.sqs.models.unix_time_millis
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }
    )
    clock = _Clock(float(int(time.time())))
    results = []
    try:
        runtime.now = clock
        moto.sqs.models.unix_time_millis = lambda *a: clock.t * 1000
        with mock_aws():
            session = boto3.Session(region_name=REGION)
            emulator.install()
            _make_buckets(session)
            stack = provision(
                TEMPLATE,
                session=session,
                stack_name="crrmon-bench",
                parameters={
                    "SourceBuckets": f"{SRC1},{SRC2}",
                    "DestinationBuckets": f"{DST_A},{DST_B}",
                    "RpoSeconds": str(RPO),
                    "GiveUpSeconds": str(GIVE_UP),
                    "ArchiveEnabled": "true",
                    "HeadRequestsPerSecond": "1000",
                },
                region=REGION,
            )
            os.environ.update(stack.environment)
            runtime.reset()
            boto3.setup_default_session(region_name=REGION)
            index = _overdue_projection()
            meter = Meter(stack.table_name, index, session.client("dynamodb", region_name=REGION))
            meter.install(boto3.DEFAULT_SESSION)
            world = World(session, stack, clock)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                _happy(world, SRC1, [DST_A], "warm-up/object", Counter())  # topology loaded, containers warm
                world.advance(RPO + 60)
            plans = [
                ("one destination, happy path", 1, lambda i, oc: _happy(world, SRC1, [DST_A], f"one/{i}", oc)),
                ("two destinations, happy path", 2, lambda i, oc: _happy(world, SRC2, [DST_A, DST_B], f"two/{i}", oc)),
                ("one destination, fault mix", 1, lambda i, oc: _fault(world, i, f"fault/{i}", oc)),
            ]
            for name, destinations, one in plans:
                meter.reset()
                world.events = world.cross_region = world.failures = 0
                invocations0 = _invocations(world)
                records0 = dict(world.records)
                out = io.StringIO()
                outcomes: Counter = Counter()
                with contextlib.redirect_stdout(out):
                    for i in range(objects):
                        one(i, outcomes)
                    world.advance(RPO + 60)  # every deadline passes: the timers are swept
                    world.advance(GIVE_UP)
                invocations = {k: v - invocations0.get(k, 0) for k, v in _invocations(world).items()}
                results.append(
                    Scenario(
                        name=name,
                        destinations=destinations,
                        objects=objects,
                        calls=Counter(meter.calls),
                        units=dict(meter.units),
                        events=world.events,
                        cross_region_events=world.cross_region,
                        failure_notifications=world.failures,
                        timers=int(meter.units.get("sqs.timer_messages", 0)),
                        records={k: v - records0.get(k, 0) for k, v in world.records.items()},
                        emf_bytes=len(out.getvalue().encode()),
                        invocations=invocations,
                        outcomes=outcomes,
                    )
                )
    finally:
        runtime.now, moto.sqs.models.unix_time_millis = saved_now, saved_millis
        os.environ.clear()
        os.environ.update(saved_env)
        runtime.reset()
        boto3.DEFAULT_SESSION = None
    return results


def _overdue_projection() -> tuple[str, ...]:
    from crrmon_local.cfn import load_template

    table = load_template(TEMPLATE)["Resources"]["ReplicationTable"]["Properties"]
    [index] = [i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == "Overdue"]
    return tuple(index["Projection"].get("NonKeyAttributes", ()))


def _invocations(world: World) -> dict[str, int]:
    out = {}
    for mapping in world.mappings.queues:
        out[f"{mapping.function_name} (SQS)"] = mapping.invocations
    for consumer in world.mappings.stream.consumers:
        out[f"{consumer.function_name} (stream)"] = consumer.invocations
    return out
