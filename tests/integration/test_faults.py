"""Faults on the AWS calls each function makes: transient ones are retried to the right verdict, written
once; permanent ones end in a dead-letter queue (or the streams' on-failure queue) with what a replay needs.

Faults are raised by botocore event hooks on the clients the handlers use, before the request leaves:
what a call looks like after the SDK's own retries gave up.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from crrmon import runtime

from .conftest import DST, DST2, RPO, SRC

FAULTS = {
    "throttling": lambda op: ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, op),
    "5xx": lambda op: ClientError(
        {"Error": {"Code": "InternalServerError", "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, op
    ),
    "timeout": lambda op: ReadTimeoutError(endpoint_url="https://aws.example"),
    "access-denied": lambda op: ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, op),
}
# Every AWS call of the happy path and of the deadline path, by the function that makes it.
CALLS = [
    ("ingest", "dynamodb", "UpdateItem"),
    ("ingest", "sqs", "SendMessageBatch"),
    ("matcher", "dynamodb", "UpdateItem"),
    ("matcher", "firehose", "PutRecordBatch"),
    ("matcher", "sns", "Publish"),
    ("sweeper", "dynamodb", "BatchGetItem"),
    ("sweeper", "s3", "HeadObject"),
]


class Fault:
    """Raise `kind` on the next `times` calls of service.operation (times=None: every call)."""

    def __init__(self, service: str, operation: str, kind: str, times: int | None):
        self.client = runtime.client(service)
        self.event = f"before-call.{service}.{operation}"
        self.operation, self.kind, self.left, self.raised = operation, kind, times, 0
        self.client.meta.events.register(self.event, self)

    def __call__(self, **_):
        if self.left is None or self.left > 0:
            if self.left is not None:
                self.left -= 1
            self.raised += 1
            raise FAULTS[self.kind](self.operation)

    def stop(self) -> None:
        self.client.meta.events.unregister(self.event, self)


def scenario(world, key: str):
    """DST's replica announces itself; DST2's lands late and silently: OVERDUE (a digest), then the
    sweeper's next look finds it. Every call of CALLS is on this path."""
    obj = world.put(SRC, key)
    world.send(world.created_event(SRC, key, obj))
    world.run()
    world.replicate(SRC, key, obj, DST, status="PENDING")
    world.send(world.created_event(DST, key, obj))
    world.advance(RPO + 1)
    world.replicate(SRC, key, obj, DST2)
    return obj


def settle(world, rounds: int = 4) -> None:
    for _ in range(rounds):
        world.advance(RPO + 1)


def assert_judged_once(world, key: str) -> None:
    lines = world.lines_for(key)
    by_dest = {}
    for line in lines:
        by_dest.setdefault(line["destination_bucket"], []).append(line)
    assert set(by_dest) == {DST, DST2}
    for dest_lines in by_dest.values():  # at-least-once publishing: copies share one dedup id
        assert {(x["status"], x["record_id"]) for x in dest_lines} == {("COMPLETED", dest_lines[0]["record_id"])}


@pytest.mark.parametrize("kind", sorted(FAULTS))
@pytest.mark.parametrize(("function", "service", "operation"), CALLS)
def test_transient_faults_are_retried_to_the_right_verdict(world, function, service, operation, kind):
    key = f"fault/{function}-{operation}-{kind}"
    fault = Fault(service, operation, kind, times=2)
    try:
        scenario(world, key)
        settle(world)
    finally:
        fault.stop()
    settle(world)
    assert fault.raised == 2  # the call was made, failed twice, and the pipeline retried it
    assert_judged_once(world, key)
    assert world.queue_bodies(world.stack.events_dlq_url) == []


def test_permanent_ingest_fault_dead_letters_the_original_event_for_replay(world):
    key = "fault/ingest-permanent"
    fault = Fault("dynamodb", "UpdateItem", "access-denied", times=None)
    obj = world.put(SRC, key)
    body = world.created_event(SRC, key, obj)
    world.send(body)
    for _ in range(8):  # each failed receive waits out the queue's visibility timeout
        world.advance(400)
    fault.stop()
    assert fault.raised == 5  # the queue's maxReceiveCount
    [parked] = world.queue_bodies(world.stack.events_dlq_url)
    assert parked["Body"] == body  # the event exactly as S3 sent it: replayable once the fault is fixed
    world.sqs.delete_message(QueueUrl=world.stack.events_dlq_url, ReceiptHandle=parked["ReceiptHandle"])
    world.send(parked["Body"])  # what a redrive does
    world.replicate(SRC, key, obj, DST)
    world.replicate(SRC, key, obj, DST2)
    settle(world)
    assert_judged_once(world, key)


def test_permanent_publish_fault_goes_to_the_on_failure_queue_with_the_stream_position(world):
    key = "fault/publish-permanent"
    fault = Fault("firehose", "PutRecordBatch", "5xx", times=None)
    scenario(world, key)
    for _ in range(15):
        world.run()
    fault.stop()
    failures = world.queue_bodies(world.stack.stream_failure_queue_url)
    assert failures, "the record that kept failing must be reported"
    info = json.loads(failures[0]["Body"])["DDBStreamBatchInfo"]
    assert info["streamArn"] == world.stack.stream_arn and info["startSequenceNumber"]


def test_permanent_sweeper_fault_dead_letters_the_timer_with_its_version(world):
    key = "fault/sweeper-permanent"
    fault = Fault("dynamodb", "BatchGetItem", "access-denied", times=None)
    obj = scenario(world, key)
    for _ in range(12):
        world.advance(400)
    fault.stop()
    parked = world.queue_bodies(world.stack.timer_dlq_url)
    assert parked, "a timer that keeps failing must be dead-lettered"
    for message in parked:  # enough to replay: the version and its deadline
        assert json.loads(message["Body"])["pk"] == f"{obj['version_id']}#{key}"
        world.sqs.delete_message(QueueUrl=world.stack.timer_dlq_url, ReceiptHandle=message["ReceiptHandle"])
        world.sqs.send_message(QueueUrl=world.stack.timer_queue_url, MessageBody=message["Body"])
    settle(world)
    assert_judged_once(world, key)


def test_sweeper_stopped_mid_batch_resumes_without_skipping_or_double_reporting(world):
    keys = [f"fault/mid-batch/{i}" for i in range(6)]
    objs = [world.put(SRC, k) for k in keys]
    world.send(*(world.created_event(SRC, k, o) for k, o in zip(keys, objs, strict=True)))
    world.run()
    for k, o in zip(keys, objs, strict=True):  # every replica lands silently: the sweeper decides all
        world.replicate(SRC, k, o, DST)
        world.replicate(SRC, k, o, DST2)
    calls = {"n": 0}

    def crash_on_the_fifth_verdict(**_):
        calls["n"] += 1
        if calls["n"] == 5:
            raise ReadTimeoutError(endpoint_url="https://dynamodb.example")

    ddb = runtime.client("dynamodb")
    ddb.meta.events.register("before-call.dynamodb.UpdateItem", crash_on_the_fifth_verdict)
    try:
        world.clock.advance(RPO + 1)
        world.run()
    finally:
        ddb.meta.events.unregister("before-call.dynamodb.UpdateItem", crash_on_the_fifth_verdict)
    settle(world)
    assert calls["n"] >= 5
    for k in keys:
        assert_judged_once(world, k)
        assert len(world.lines_for(k)) == 2  # no verdict reported twice
