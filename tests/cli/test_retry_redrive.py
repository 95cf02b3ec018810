"""crrmon retry (S3 Batch Replication manifests and jobs) and redrive (dead letters back to their queues)."""

from __future__ import annotations

import json

import pytest
from botocore.stub import ANY, Stubber

from crrmon_cli.aws import Aws

from .conftest import ACCOUNT, DST, DST2, REGION, SRC, deny, fail

# ---------------------------------------------------------------- retry


def test_retry_writes_one_line_per_failed_version(world, cli, tmp_path):
    world.replicated("ok/fine")
    first = fail(world, "bad/one two", dest=DST)
    second = fail(world, "bad/ü+three", dest=DST2)
    manifest = tmp_path / "retry.csv"
    assert cli("retry", "--manifest", str(manifest)) == 0
    lines = sorted(manifest.read_text().splitlines())
    assert lines == sorted(
        [f"{SRC},bad/one%20two,{first['version_id']}", f"{SRC},bad/%C3%BC%2Bthree,{second['version_id']}"]
    )
    assert "--submit" in cli.out


def test_retry_with_nothing_failed(world, cli, tmp_path):
    manifest = tmp_path / "retry.csv"
    assert cli("retry", "--manifest", str(manifest)) == 0
    assert "nothing to retry" in cli.out and not manifest.exists()


def test_retry_submit_needs_s3_and_a_role(world, cli, tmp_path):
    assert cli("retry", "--manifest", str(tmp_path / "m.csv"), "--submit") == 2 and "s3://" in cli.err
    assert cli("retry", "--manifest", "s3://b/m.csv", "--submit") == 2 and "--role-arn" in cli.err


def test_retry_submit_creates_the_batch_replication_job(world, cli, monkeypatch):
    """moto has no S3 Batch Operations: the CreateJob request is asserted with a botocore Stubber."""
    obj = fail(world, "bad/again")
    world.s3.create_bucket(Bucket="ops-manifests")
    s3control = world.session.client("s3control", region_name=REGION)
    stub = Stubber(s3control)
    stub.add_response(
        "create_job",
        {"JobId": "b6f1c2d3-job"},
        {
            "AccountId": ACCOUNT,
            "ConfirmationRequired": False,
            "Operation": {"S3ReplicateObject": {}},
            "Manifest": {
                "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key", "VersionId"]},
                "Location": {"ObjectArn": "arn:aws:s3:::ops-manifests/retry/m.csv", "ETag": ANY},
            },
            "Report": {
                "Bucket": "arn:aws:s3:::ops-manifests",
                "Format": "Report_CSV_20180820",
                "Enabled": True,
                "ReportScope": "FailedTasksOnly",
                "Prefix": "reports",
            },
            "Priority": 10,
            "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/batch-replication",
            "ClientRequestToken": ANY,
            "Description": f"CRR Monitor retry of 1 FAILED versions of {SRC}",
        },
    )
    stub.activate()
    plain = Aws.client
    monkeypatch.setattr(
        Aws,
        "client",
        lambda self, service, region=None: s3control if service == "s3control" else plain(self, service, region),
    )
    code, answer = cli.json(
        "retry",
        "--manifest", "s3://ops-manifests/retry/m.csv",
        "--submit",
        "--role-arn", f"arn:aws:iam::{ACCOUNT}:role/batch-replication",
        "--report", "s3://ops-manifests/reports/",
    )  # fmt: skip
    assert code == 0
    stub.assert_no_pending_responses()
    assert answer["items"] == [
        {"source_bucket": SRC, "versions": 1, "manifest": "s3://ops-manifests/retry/m.csv", "job_id": "b6f1c2d3-job"}
    ]
    body = world.s3.get_object(Bucket="ops-manifests", Key="retry/m.csv")["Body"].read().decode()
    assert body == f"{SRC},bad/again,{obj['version_id']}\n"


def test_retry_access_denied_writing_the_manifest(world, cli):
    fail(world, "bad/x")
    world.s3.create_bucket(Bucket="ops-manifests")
    deny(world.session, "before-call.s3.PutObject")
    assert cli("retry", "--manifest", "s3://ops-manifests/m.csv") == 2
    assert "s3:PutObject on arn:aws:s3:::ops-manifests/m.csv" in cli.err


# ---------------------------------------------------------------- redrive


def _dead_letters(world, count: int, *, rejected: int = 0) -> list[dict]:
    objects = []
    for i in range(count):
        key = f"dlq/{i}"
        obj = world.put(SRC, key)
        objects.append({"key": key, **obj})
        world.sqs.send_message(QueueUrl=world.stack.events_dlq_url, MessageBody=world.created_event(SRC, key, obj))
    for i in range(rejected):
        world.sqs.send_message(
            QueueUrl=world.stack.events_dlq_url,
            MessageBody=json.dumps({"not": "an event", "n": i}),
            MessageAttributes={"RejectedReason": {"DataType": "String", "StringValue": "unknown_shape"}},
        )
    return objects


def _depth(world, url: str) -> int:
    attributes = world.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_redrive_dry_run_moves_nothing(world, cli):
    _dead_letters(world, 3)
    code, answer = cli.json("redrive", "--dry-run", "--method", "copy")
    assert code == 1
    rows = {r["queue"]: r for r in answer["items"]}
    assert rows["events"]["waiting"] == 3 and rows["events"]["moved"] == 0 and rows["timer"]["waiting"] == 0
    assert _depth(world, world.stack.events_dlq_url) == 3 and _depth(world, world.stack.events_queue_url) == 0


def test_redrive_copies_more_than_one_batch_back_and_the_monitor_tracks_them(world, cli):
    objects = _dead_letters(world, 23, rejected=2)
    code, answer = cli.json("redrive", "--queue", "events", "--method", "copy")
    assert code == 0
    [row] = answer["items"]
    assert row["moved"] == 23 and row["skipped"] == 2 and row["waiting"] == 25
    assert _depth(world, world.stack.events_queue_url) == 23
    world.run()
    for obj in objects:
        assert world.item(obj["key"], obj["version_id"], DST) is not None  # ingest recorded them this time


def test_redrive_empty(world, cli):
    code, answer = cli.json("redrive")
    assert code == 0 and all(r["waiting"] == 0 and r["moved"] == 0 for r in answer["items"])


def test_redrive_uses_start_message_move_task_on_aws(world, cli, monkeypatch):
    """moto lacks StartMessageMoveTask: the requests are asserted with a Stubber."""
    sqs = world.session.client("sqs", region_name=REGION)
    stub = Stubber(sqs)
    dlq_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:crrmon-test-TimerDeadLetterQueue"
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:crrmon-test-TimerQueue"
    stub.add_response(
        "get_queue_attributes",
        {"Attributes": {"QueueArn": dlq_arn, "ApproximateNumberOfMessages": "4"}},
        {"QueueUrl": world.stack.timer_dlq_url, "AttributeNames": ["QueueArn", "ApproximateNumberOfMessages"]},
    )
    stub.add_response(
        "get_queue_attributes",
        {"Attributes": {"QueueArn": queue_arn}},
        {"QueueUrl": world.stack.timer_queue_url, "AttributeNames": ["QueueArn"]},
    )
    stub.add_response(
        "start_message_move_task", {"TaskHandle": "task-1"}, {"SourceArn": dlq_arn, "DestinationArn": queue_arn}
    )
    stub.activate()
    plain = Aws.client
    monkeypatch.setattr(
        Aws, "client", lambda self, service, region=None: sqs if service == "sqs" else plain(self, service, region)
    )
    stack = world.stack
    code = cli(
        "redrive", "--queue", "timer", "--timer-dlq", stack.timer_dlq_url, "--timer-queue", stack.timer_queue_url,
        "--region", REGION, "--output", "json", local=False,
    )  # fmt: skip
    answer = json.loads(cli.out)  # auto on AWS (neither --local nor --endpoint-url): the move task
    assert code == 0
    stub.assert_no_pending_responses()
    assert answer["items"][0]["method"] == "move-task" and answer["items"][0]["task"] == "task-1"


def test_redrive_shows_stream_failures(world, cli):
    pointer = {
        "requestContext": {
            "requestId": "r1",
            "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:crrmon-test-MatcherFunction",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 11,
        },
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "DDBStreamBatchInfo": {
            "shardId": "shardId-00000001",
            "startSequenceNumber": "100",
            "endSequenceNumber": "180",
            "approximateArrivalOfFirstRecord": "2026-11-27T06:00:00Z",
            "batchSize": 42,
            "streamArn": world.stack.stream_arn,
        },
    }
    world.sqs.send_message(QueueUrl=world.stack.stream_failure_queue_url, MessageBody=json.dumps(pointer))
    code, answer = cli.json("redrive", "--show-stream-failures")
    assert code == 1
    [row] = answer["items"]
    assert (
        row["function"] == "crrmon-test-MatcherFunction" and row["records"] == 42 and row["shard"] == "shardId-00000001"
    )
    assert _depth(world, world.stack.stream_failure_queue_url) == 1  # shown, not consumed


@pytest.mark.parametrize("operation", ["SendMessageBatch", "ReceiveMessage"])
def test_redrive_access_denied(world, cli, operation):
    _dead_letters(world, 1)
    deny(world.session, f"before-call.sqs.{operation}")
    assert cli("redrive", "--queue", "events", "--method", "copy") == 2
    assert f"sqs:{operation} on " in cli.err
