"""Integration harness: the monitor provisioned from template.yaml on moto, driven through its queues.

Everything AWS does is moto's (S3, DynamoDB and its stream, SQS, SNS, Firehose), except what moto
lacks, which comes from `crrmon_local.emulator` (replication facts, AWS-shaped S3 events) and
`crrmon_local.lambdas` (event source mappings feeding the real handlers). A fake clock drives the
handlers and moto's SQS delays together, so deadlines pass without sleeping.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from crrmon import runtime
from crrmon.publish import read_archive
from crrmon.store import make_pk
from crrmon_local import emulator
from crrmon_local.lambdas import mappings_for_stack
from crrmon_local.provision import provision

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"

SRC, DST, DST2 = "src-use1", "dst-usw2", "dst-euw1"
BIDI_A, BIDI_B = "bidi-a-use1", "bidi-b-usw2"
TAGGED = "tagged-src-use1"
REGIONS = {SRC: "us-east-1", DST: "us-west-2", DST2: "eu-west-1", BIDI_A: "us-east-1", BIDI_B: "us-west-2"}
REGIONS[TAGGED] = "us-east-1"
RPO = 60
GIVE_UP = 600


class FakeClock:
    def __init__(self, start: float):
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def rule(rule_id: str, dest: str, *, priority: int = 1, tags: bool = False, delete_markers: bool = True) -> dict:
    filt = {"Tag": {"Key": "replicate", "Value": "yes"}} if tags else {"Prefix": ""}
    return {
        "ID": rule_id,
        "Priority": priority,
        "Status": "Enabled",
        "Filter": filt,
        "Destination": {"Bucket": f"arn:aws:s3:::{dest}"},
        "DeleteMarkerReplication": {"Status": "Enabled" if delete_markers and not tags else "Disabled"},
        "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"}},
    }


RULES = {
    SRC: [rule("to-west", DST), rule("to-eu", DST2, priority=2)],
    BIDI_A: [rule("a-to-b", BIDI_B)],
    BIDI_B: [rule("b-to-a", BIDI_A)],
    TAGGED: [rule("tagged", DST, tags=True)],
}


class World:
    """Buckets with replication rules, the monitor's stack, and ways to make things happen."""

    def __init__(self, session, stack, clock: FakeClock):
        self.session, self.stack, self.clock = session, stack, clock
        self.s3 = session.client("s3", region_name=REGION)
        self.sqs = session.client("sqs", region_name=REGION)
        self.ddb = session.client("dynamodb", region_name=REGION)
        self.mappings = mappings_for_stack(TEMPLATE, stack, session, region=REGION)
        self.alerts_url = self.sqs.create_queue(QueueName="alert-inbox")["QueueUrl"]
        alerts_arn = self.sqs.get_queue_attributes(QueueUrl=self.alerts_url, AttributeNames=["QueueArn"])
        session.client("sns", region_name=REGION).subscribe(
            TopicArn=stack.alert_topic_arn, Protocol="sqs", Endpoint=alerts_arn["Attributes"]["QueueArn"]
        )
        self._digests: list[dict] = []

    # ---- S3 happenings -------------------------------------------------------------------------
    def put(self, bucket: str, key: str, body: bytes = b"hello replica", **extra) -> dict:
        answer = self.s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)
        return {"version_id": answer["VersionId"], "etag": answer["ETag"].strip('"'), "size": len(body)}

    def created_event(self, bucket: str, key: str, obj: dict, **extra) -> str:
        return emulator.eventbridge_object_event(
            bucket=bucket,
            key=key,
            version_id=obj["version_id"],
            size=obj["size"],
            etag=obj["etag"],
            time_s=self.clock(),
            region=REGIONS[bucket],
            **{"account": ACCOUNT, **extra},
        )

    def replicated(self, key: str, *, after_s: float = 3) -> dict:
        """A version of `key` in SRC replicated to both destinations `after_s` seconds after its source
        event, every event delivered and handled."""
        obj = self.put(SRC, key)
        self.send(self.created_event(SRC, key, obj))
        self.run()
        self.clock.advance(after_s)
        self.replicate(SRC, key, obj, DST)
        self.replicate(SRC, key, obj, DST2)
        self.send(self.created_event(DST, key, obj), self.created_event(DST2, key, obj))
        self.run()
        return obj

    def failure_notification(
        self, src: str, key: str, obj: dict, dest: str, *, reason: str = "DstPutObjectNotPermitted", rule_id: str
    ) -> str:
        """S3's OperationFailedReplication notification of `obj`'s replication to `dest`, in SNS (the
        forwarder topic's delivery). S3 marks the source version FAILED with it."""
        emulator.set_replication_status(src, key, obj["version_id"], "FAILED")
        record = emulator.replication_failure(
            bucket=src,
            key=key,
            version_id=obj["version_id"],
            destination_bucket=dest,
            reason=reason,
            rule_id=rule_id,
            time_s=self.clock(),
            region=REGIONS[src],
        )
        return emulator.in_sns([record], topic_arn=f"arn:aws:sns:{REGIONS[src]}:{ACCOUNT}:s3-failures")

    def replicate(self, src: str, key: str, obj: dict, dest: str, *, status: str | None = "COMPLETED", **extra):
        facts = emulator.replicate(self.s3, src, key, obj["version_id"], dest, **extra)
        if status:
            emulator.set_replication_status(src, key, obj["version_id"], status)
        return {**obj, "size": facts["size"], "etag": facts["etag"]}

    # ---- the monitor ---------------------------------------------------------------------------
    def send(self, *bodies: str) -> None:
        for body in bodies:
            self.sqs.send_message(QueueUrl=self.stack.events_queue_url, MessageBody=body)

    def run(self) -> int:
        return self.mappings.pump()

    def advance(self, seconds: float) -> None:
        """Let what is queued happen now, then let time pass and what is due happen."""
        self.run()
        self.clock.advance(seconds)
        self.run()

    def schedule(self) -> list:
        return self.mappings.run_schedules()

    def item(self, key: str, version_id: str, dest: str) -> dict | None:
        return runtime.store().get(make_pk(version_id, key), dest)

    def archive(self) -> list[dict]:
        lines = []
        listing = self.s3.list_objects_v2(Bucket=self.stack.archive_bucket)
        for entry in sorted(listing.get("Contents", []), key=lambda e: (e["LastModified"], e["Key"])):
            data = self.s3.get_object(Bucket=self.stack.archive_bucket, Key=entry["Key"])["Body"].read()
            lines.extend(read_archive(data))
        return lines

    def lines_for(self, key: str) -> list[dict]:
        return [line for line in self.archive() if line.get("key") == key]

    def digests(self) -> list[dict]:
        while True:
            answer = self.sqs.receive_message(QueueUrl=self.alerts_url, MaxNumberOfMessages=10)
            messages = answer.get("Messages", [])
            if not messages:
                return self._digests
            for m in messages:
                envelope = json.loads(m["Body"])
                self._digests.append({"subject": envelope.get("Subject"), **json.loads(envelope["Message"])})
                self.sqs.delete_message(QueueUrl=self.alerts_url, ReceiptHandle=m["ReceiptHandle"])

    def queue_bodies(self, url: str) -> list[dict]:
        answer = self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
        )
        return answer.get("Messages", [])


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock(float(int(time.time())))
    monkeypatch.setattr("moto.sqs.models.unix_time_millis", lambda *a: fake.t * 1000)
    monkeypatch.setattr(runtime, "now", fake)
    monkeypatch.setattr(runtime, "sleep", fake.advance)  # backoff pauses pass on the fake clock
    return fake


@pytest.fixture
def aws(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def make_buckets(session) -> None:
    for bucket, region in REGIONS.items():
        s3 = session.client("s3", region_name=region)
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3 = session.client("s3", region_name=REGION)
    for bucket, rules in RULES.items():
        s3.put_bucket_replication(
            Bucket=bucket,
            ReplicationConfiguration={"Role": f"arn:aws:iam::{ACCOUNT}:role/replication", "Rules": rules},
        )


def build_world(session, clock: FakeClock, monkeypatch, **parameters: str) -> World:
    """The buckets and rules above, and the monitor's stack with these parameters over the harness's."""
    emulator.install()
    make_buckets(session)
    stack = provision(
        TEMPLATE,
        session=session,
        stack_name="crrmon-test",
        parameters={
            "SourceBuckets": ",".join(RULES),
            "DestinationBuckets": f"{DST},{DST2},{BIDI_A},{BIDI_B}",
            "RpoSeconds": str(RPO),
            "GiveUpSeconds": str(GIVE_UP),
            "ArchiveEnabled": "true",
            "HeadRequestsPerSecond": "1000",
            **parameters,
        },
        region=REGION,
    )
    for name, value in stack.environment.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    return World(session, stack, clock)


@pytest.fixture
def world(aws, clock, monkeypatch, capsys) -> World:
    yield build_world(aws, clock, monkeypatch)
    runtime.reset()


# ---- a second account: a backup bucket replicated to across accounts -------------------------------

OTHER = "222222222222"
XSRC, XDST = "xacct-src-use1", "backup-xacct-usw2"
READER = f"arn:aws:iam::{OTHER}:role/crr-monitor-read"


def other_account_session(aws):
    credentials = aws.client("sts").assume_role(RoleArn=READER, RoleSessionName="backup-admin")["Credentials"]
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }


@pytest.fixture
def backup_account(aws):
    """A bucket in another account, replicated to from a bucket of the monitor's account."""
    other = aws.client("s3", region_name="us-west-2", **other_account_session(aws))
    other.create_bucket(Bucket=XDST, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    other.put_bucket_versioning(Bucket=XDST, VersioningConfiguration={"Status": "Enabled"})
    s3 = aws.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=XSRC)
    s3.put_bucket_versioning(Bucket=XSRC, VersioningConfiguration={"Status": "Enabled"})
    rule = {
        "ID": "to-backup-account",
        "Priority": 1,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "Destination": {"Bucket": f"arn:aws:s3:::{XDST}", "Account": OTHER},
        "DeleteMarkerReplication": {"Status": "Disabled"},
    }
    s3.put_bucket_replication(
        Bucket=XSRC, ReplicationConfiguration={"Role": f"arn:aws:iam::{ACCOUNT}:role/replication", "Rules": [rule]}
    )
    yield
    REGIONS.pop(XSRC, None), REGIONS.pop(XDST, None)


def cross_account_world(aws, clock, monkeypatch, **parameters) -> World:
    """The world with a destination in another account (the `backup_account` fixture makes it)."""
    world = build_world(
        aws,
        clock,
        monkeypatch,
        SourceBuckets=",".join([*RULES, XSRC]),
        DestinationBuckets=f"{DST},{DST2},{BIDI_A},{BIDI_B},{XDST}",
        AllowedAccounts=OTHER,
        **parameters,
    )
    emulator.grant_list(XDST, OTHER)  # the forwarder's read-only role may list its buckets
    REGIONS[XSRC], REGIONS[XDST] = "us-east-1", "us-west-2"
    return world


def subscription_confirmation(topic_arn: str) -> str:
    return json.dumps(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37fb687f5d51e6e2425f004aed4d7f1a",
            "TopicArn": topic_arn,
            "Message": f"You have chosen to subscribe to the topic {topic_arn}.",
            "SubscribeURL": "https://sns.example/?Action=ConfirmSubscription",
            "Timestamp": "2026-12-07T10:00:00.000Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.example/cert.pem",
        }
    )


# What the Lambda Python runtime brings besides the standard library: boto3 and its dependencies.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")


@pytest.fixture(scope="session")
def runtime_sdk_dir(tmp_path_factory) -> str:
    """A folder with only the runtime's packages, linked from this environment: a built handler run
    with this environment's whole site-packages on its path would find what the runtime lacks (the
    X-Ray SDK, which moto brings here)."""
    folder = tmp_path_factory.mktemp("lambda-runtime")
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin, f"{name} is not installed"
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (folder / source.name).symlink_to(source)
    return str(folder)
