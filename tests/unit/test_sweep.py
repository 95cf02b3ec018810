"""The sweeper's timer and TTL paths (crrmon.sweep) on the template's table, a timer queue and S3 on moto
(in-process `mock_aws`): which items a batch of timers reads, what is re-armed and when, which messages a
failure retries, how a spent HEAD budget puts a check off, and which TTL removals are published EXPIRED.
The decision for one item is crrmon.deadline's; these tests give it items that settle without S3, or a
budget that is spent."""

from __future__ import annotations

import dataclasses
import json
import uuid
from unittest import mock

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from botocore.stub import Stubber
from moto.sqs import models as moto_sqs

from crrmon.config import Config
from crrmon.evidence import Evidence, RateLimiter
from crrmon.metrics import Counters
from crrmon.model import Status
from crrmon.publish import Change, Publisher
from crrmon.schedule import CANARY_KEY
from crrmon.store import CANARY_PK, HEARTBEAT_PK, LEASE_PK, Store
from crrmon.sweep import MAX_PUT_OFF_S, TTL_PRINCIPAL, Sweeper, is_ttl_removal
from crrmon.timers import Timer
from crrmon.topology import Rule, Topology, TopologyCache

NOW = 1_700_000_000.0
SRC, DST, DST2 = "src", "dst", "dst2"
MISSING_QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/missing"


class Env:
    def __init__(self, ddb, *, timer_queue_url: str | None = None):
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.queue = self.sqs.create_queue(QueueName="timers")["QueueUrl"]
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (SRC, DST, DST2):
            s3.create_bucket(Bucket=bucket)
        self.config = Config(
            table_name="t",
            timer_queue_url=self.queue if timer_queue_url is None else timer_queue_url,
            verify_mode="size",
            rpo_seconds=60,
            give_up_seconds=3600,
        )
        self.store = Store(ddb, "t")
        self.limiter = RateLimiter(1, burst=1, clock=lambda: 0.0)  # one HEAD per bucket: the test's clock stands
        self.counters = Counters()
        topology = Topology(sources={SRC: [Rule("a", DST), Rule("b", DST2)]}, regions={})
        self.sweeper = Sweeper(
            config=self.config,
            store=self.store,
            evidence=Evidence(s3, self.limiter),
            topology=TopologyCache(lambda: topology, max_age=300),
            publisher=Publisher(),
            sqs=self.sqs,
            counters=self.counters,
            clock=lambda: NOW,
        )

    def sweeper_with(self, **changes) -> Sweeper:
        """Another sweeper instance (its own lease holder) like this one but for `changes`."""
        return dataclasses.replace(self.sweeper, holder=uuid.uuid4().hex, **changes)

    def seed(self, pk: str, dest: str, *, due: int, **fields) -> None:
        self.store.record_observation(
            pk, dest, now_ms=int((NOW - 100) * 1000), due_s=due, expires_s=int(NOW) + 9_999, fields=fields
        )

    def timers(self) -> list[dict]:
        later = moto_sqs.unix_time_millis() + 3_600_000
        with mock.patch.object(moto_sqs, "unix_time_millis", lambda: later):
            answer = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10)
        return sorted((json.loads(m["Body"]) for m in answer.get("Messages", [])), key=lambda t: t["pk"])


@pytest.fixture
def env(ddb):
    return Env(ddb)


def message(timer: Timer, message_id: str = "m1") -> dict:
    return {"messageId": message_id, "body": timer.body()}


BOTH = {"src": SRC, "s_size": 5, "r_size": 5, "s_time": 1_000, "r_time": 2_000}
SOURCE_ONLY = {"src": SRC, "s_size": 5, "s_time": 1_000}


# ---- deadline timers ---------------------------------------------------------------------------------------------


def test_an_item_with_both_sides_is_decided_at_its_timer(env):
    env.seed("v1#k", DST, due=int(NOW) - 1, **BOTH)
    assert env.sweeper.handle_timers([message(Timer("v1#k", int(NOW) - 1, dests=(DST,)))]) == {"batchItemFailures": []}
    item = env.store.get("v1#k", DST)
    assert (item["status"], item["verified_by"], item["decided_at"]) == ("COMPLETED", "size", int(NOW * 1000))
    assert env.timers() == []


def test_an_item_before_its_deadline_is_rearmed_for_it(env):
    env.seed("v1#k", DST, due=int(NOW) + 50, **SOURCE_ONLY)
    env.seed("v1#k", DST2, due=int(NOW) + 40, **SOURCE_ONLY)
    env.sweeper.handle_timers([message(Timer("v1#k", int(NOW), attempt=2, dests=(DST, DST2)))])
    assert env.timers() == [{"pk": "v1#k", "due": int(NOW) + 40, "attempt": 2, "d": [DST, DST2]}]
    assert "status" not in env.store.get("v1#k", DST)


def test_only_the_named_destinations_are_read(env):
    env.seed("v1#k", DST, due=int(NOW) + 50, **SOURCE_ONLY)
    env.seed("v1#k", DST2, due=int(NOW) - 1, **BOTH)  # not named: not looked at
    env.sweeper.handle_timers([message(Timer("v1#k", int(NOW), dests=(DST,)))])
    assert "status" not in env.store.get("v1#k", DST2)
    assert env.timers() == [{"pk": "v1#k", "due": int(NOW) + 50, "attempt": 0, "d": [DST]}]


def test_a_timer_without_destinations_reads_every_item_of_the_version(env):
    env.seed("v1#k", DST, due=int(NOW) - 1, **BOTH)
    env.seed("v1#k", DST2, due=int(NOW) + 30, **SOURCE_ONLY)
    env.sweeper.handle_timers([message(Timer("v1#k", int(NOW)))])
    assert env.store.get("v1#k", DST)["status"] == "COMPLETED"
    assert env.timers() == [{"pk": "v1#k", "due": int(NOW) + 30, "attempt": 0, "d": [DST2]}]


def test_timers_of_one_version_are_checked_once_together(env):
    env.seed("v1#k", DST, due=int(NOW) + 50, **SOURCE_ONLY)
    env.seed("v1#k", DST2, due=int(NOW) + 60, **SOURCE_ONLY)
    records = [
        message(Timer("v1#k", int(NOW), attempt=1, dests=(DST,)), "m1"),
        message(Timer("v1#k", int(NOW) - 5, attempt=3, dests=(DST2,)), "m2"),
    ]
    assert env.sweeper.handle_timers(records) == {"batchItemFailures": []}
    assert env.timers() == [{"pk": "v1#k", "due": int(NOW) + 50, "attempt": 3, "d": [DST, DST2]}]


def test_items_with_a_final_verdict_are_left_alone(env):
    env.seed("v1#k", DST, due=int(NOW) - 1, **BOTH, status="MISMATCH")
    env.sweeper.handle_timers([message(Timer("v1#k", int(NOW), dests=(DST,)))])
    assert env.store.get("v1#k", DST)["status"] == "MISMATCH"
    assert env.timers() == []
    assert env.sweeper.evidence.requests == 0  # not looked at: no HEAD


def test_a_decided_item_does_not_end_the_check_of_the_others(env):
    env.seed("v1#k", DST, due=int(NOW) - 1, **BOTH, status="MISMATCH")
    env.seed("v1#k", DST2, due=int(NOW) + 30, **SOURCE_ONLY)
    env.sweeper.handle_timers([message(Timer("v1#k", int(NOW), dests=(DST, DST2)))])
    assert env.timers() == [{"pk": "v1#k", "due": int(NOW) + 30, "attempt": 0, "d": [DST2]}]


def test_a_timer_for_an_item_that_is_gone_ends(env):
    assert env.sweeper.handle_timers([message(Timer("v9#k", int(NOW), dests=(DST,)))]) == {"batchItemFailures": []}
    assert env.timers() == []


def test_an_unreadable_timer_is_dropped_and_counted(env):
    records = [{"messageId": "bad", "body": "{}"}, {"messageId": "empty"}]
    assert env.sweeper.handle_timers(records) == {"batchItemFailures": []}
    assert env.counters.total("TimersRejected") == 2


def test_when_the_batch_cannot_be_read_every_message_is_retried(env):
    env.store.items_for = mock.Mock(side_effect=RuntimeError("throttled"))
    records = [
        message(Timer("v1#k", int(NOW), dests=(DST,)), "m2"),
        message(Timer("v2#k", int(NOW), dests=(DST,)), "m1"),
    ]
    assert env.sweeper.handle_timers(records) == {
        "batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m1"}]
    }
    assert env.counters.total("SweeperErrors") == 1


def test_a_version_whose_check_fails_retries_its_messages_only(env):
    env.seed("v2#k", DST, due=int(NOW) + 50, **SOURCE_ONLY)
    real = env.store.items_of

    def items_of(pk):
        if pk == "v1#k":
            raise RuntimeError("throttled")
        return real(pk)

    env.store.items_of = items_of
    records = [
        message(Timer("v1#k", int(NOW)), "m1"),
        message(Timer("v1#k", int(NOW)), "m3"),
        message(Timer("v2#k", int(NOW)), "m2"),
    ]
    assert env.sweeper.handle_timers(records) == {
        "batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]
    }
    assert env.counters.total("SweeperErrors") == 1
    assert [t["pk"] for t in env.timers()] == ["v2#k"]


def test_timers_that_cannot_be_rearmed_retry_their_messages(ddb):
    env = Env(ddb, timer_queue_url=MISSING_QUEUE)
    env.seed("v1#k", DST, due=int(NOW) + 50, **SOURCE_ONLY)
    env.seed("v2#k", DST, due=int(NOW) - 1, **BOTH)
    records = [
        message(Timer("v1#k", int(NOW), dests=(DST,)), "m1"),
        message(Timer("v2#k", int(NOW), dests=(DST,)), "m2"),
    ]
    assert env.sweeper.handle_timers(records) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}


def test_a_two_way_item_is_checked_with_every_item_of_its_version(env):
    # Seen as a source in both buckets of a two-way pair: the earlier sighting (DST2's item, a source in
    # DST) is the original; the later one is its replica, not a source.
    env.seed("v1#k", DST, due=int(NOW) - 1, src=DST2, s_size=5, s_time=2_000, two_way=True)
    env.seed("v1#k", DST2, due=int(NOW) - 1, src=DST, s_size=5, s_time=1_000, two_way=True)
    env.sweeper.handle_timers([message(Timer("v1#k", int(NOW), dests=(DST,)))])
    item = env.store.get("v1#k", DST)
    assert (item["status"], item["reason"]) == (
        "NOT_IN_SCOPE",
        f"replica of the version written in {DST} (two-way replication), not a new source version",
    )
    assert "status" not in env.store.get("v1#k", DST2)  # read to decide the named item, not decided itself


def test_timers_naming_their_destinations_are_read_without_a_query(env):
    env.seed("v1#k", DST, due=int(NOW) - 1, **BOTH)
    env.seed("v2#k", DST, due=int(NOW) + 50, **SOURCE_ONLY)
    with mock.patch.object(env.store, "items_of", wraps=env.store.items_of) as items_of:
        env.sweeper.handle_timers(
            [message(Timer("v1#k", int(NOW), dests=(DST,)), "m1"), message(Timer("v2#k", int(NOW), dests=(DST,)), "m2")]
        )
    assert items_of.call_count == 0
    assert env.store.get("v1#k", DST)["status"] == "COMPLETED"


# ---- a spent HEAD budget -----------------------------------------------------------------------------------------


def spend(env: Env, bucket: str = SRC) -> None:
    assert env.limiter.try_acquire(bucket)


def test_a_late_item_whose_head_is_put_off_is_overdue_and_looked_at_again_later(env):
    spend(env)
    env.seed("v1#k", DST, due=int(NOW), **SOURCE_ONLY)  # due now: late
    env.sweeper.handle_timers([message(Timer("v1#k", int(NOW), attempt=1, dests=(DST,)))])
    assert env.store.get("v1#k", DST)["status"] == "OVERDUE"
    assert env.counters.total("HeadsPutOff", (("SourceBucket", SRC), ("DestinationBucket", DST))) == 1
    assert env.timers() == [{"pk": "v1#k", "due": int(NOW) + 30 * 2**2, "attempt": 2, "d": [DST]}]


def test_put_off_checks_wait_longer_each_time_up_to_fifteen_minutes(env):
    spend(env)
    for attempt, wait in ((0, 60), (3, 480), (4, 900), (9, MAX_PUT_OFF_S)):
        env.seed(f"v{attempt}#k", DST, due=int(NOW), **SOURCE_ONLY)
        assert env.sweeper.check(
            Timer(f"v{attempt}#k", int(NOW), attempt=attempt), [env.store.get(f"v{attempt}#k", DST)]
        ) == [Timer(f"v{attempt}#k", int(NOW) + wait, attempt + 1, (DST,))]


def test_a_head_asked_for_before_the_deadline_and_put_off_is_not_late(env):
    spend(env)
    env.seed("v1#k", DST, due=int(NOW) + 1, src=SRC, fail="DstBucketNotFound")  # a failure report: HEAD at once
    env.sweeper.handle_timers([message(Timer("v1#k", int(NOW), dests=(DST,)))])
    assert "status" not in env.store.get("v1#k", DST)
    assert env.timers() == [{"pk": "v1#k", "due": int(NOW) + 60, "attempt": 1, "d": [DST]}]


def test_an_item_already_overdue_is_not_marked_again(env):
    spend(env)
    env.seed("v1#k", DST, due=int(NOW) - 1, **SOURCE_ONLY)
    env.store.mark_overdue("v1#k", DST, pair="src>dst", now_ms=1)
    item = env.store.get("v1#k", DST)
    env.sweeper.check(Timer("v1#k", int(NOW)), [item])
    assert env.store.get("v1#k", DST)["ovd_since"] == 1


def test_a_version_whose_source_event_never_came_is_found_in_a_source_of_its_destination(env):
    # Only the replica's event came: the destination's sources (from the topology) are asked for the version.
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.put_bucket_versioning(Bucket=SRC, VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket=SRC, Key="k", Body=b"12345")["VersionId"]
    env.seed(f"{version}#k", DST, due=int(NOW) - 1, r_size=5, r_time=2_000)
    env.sweeper.handle_timers([message(Timer(f"{version}#k", int(NOW), dests=(DST,)))])
    item = env.store.get(f"{version}#k", DST)
    assert (item["status"], item["verified_by"], item["src"], item["s_size"]) == ("COMPLETED", "size", SRC, 5)


def test_a_refused_head_is_counted_by_its_bucket(ddb):
    env = Env(ddb)
    s3 = boto3.client("s3", region_name="us-east-1")
    stub = Stubber(s3)  # moto answers every caller: S3's 403 is played by botocore's Stubber
    for _ in range(2):
        stub.add_client_error("head_object", service_error_code="AccessDenied", http_status_code=403)
    sweeper = env.sweeper_with(evidence=Evidence(s3, RateLimiter(10, burst=10, clock=lambda: 0.0)))
    env.seed("v1#k", DST, due=int(NOW) - 1, **SOURCE_ONLY)
    with stub:
        sweeper.handle_timers([message(Timer("v1#k", int(NOW), dests=(DST,)))])
    assert env.counters.total("HeadsRefused", (("Bucket", SRC),)) == 1
    assert env.counters.total("HeadsRefused", (("Bucket", DST),)) == 1
    assert env.store.get("v1#k", DST)["status"] == "OVERDUE"


def test_the_schedule_runs_once_a_minute_under_its_lease(env):
    env.seed("v1#k", DST, due=int(NOW) - 100, **SOURCE_ONLY)  # first seen 100 s ago
    env.store.mark_overdue("v1#k", DST, pair="src>dst", now_ms=1)
    result = env.sweeper.scheduled()
    assert result["oldest_overdue_age"] == {"src>dst": 100, "src>dst2": 0}
    assert result["overdue_by_age"]["src>dst"]["<15m"] == 1 and sum(result["overdue_by_age"]["src>dst2"].values()) == 0
    assert env.counters.values("OldestOverdueAge", (("SourceBucket", SRC), ("DestinationBucket", DST))) == [100]
    other = env.sweeper_with(counters=Counters())
    assert other.scheduled() == {"skipped": "another run holds the lease"}
    assert env.store.get(LEASE_PK, "sweeper-schedule")["holder"] == env.sweeper.holder


def test_the_schedule_writes_canaries_through_the_sweepers_s3_client(env):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.put_bucket_versioning(Bucket=SRC, VersioningConfiguration={"Status": "Enabled"})
    sweeper = env.sweeper_with(config=dataclasses.replace(env.config, canary_interval_minutes=1), counters=Counters())
    assert "canaries" in sweeper.scheduled()
    (version,) = s3.list_object_versions(Bucket=SRC, Prefix=CANARY_KEY)["Versions"]
    assert env.store.get(CANARY_PK, SRC)["versions"] == [f"{int(NOW)}:{version['VersionId']}"]


# ---- TTL removals ------------------------------------------------------------------------------------------------


def image(item: dict) -> dict:
    serializer = TypeSerializer()
    return {name: serializer.serialize(value) for name, value in item.items()}


def removal(old: dict | None, *, principal: str = TTL_PRINCIPAL, kind: str = "Service", seq: str = "1") -> dict:
    stream: dict = {"SequenceNumber": seq}
    if old is not None:
        stream["OldImage"] = image(old)
    return {"eventName": "REMOVE", "userIdentity": {"type": kind, "principalId": principal}, "dynamodb": stream}


def test_only_a_removal_by_dynamodbs_ttl_is_one():
    assert is_ttl_removal(removal({"pk": "v1#k"})) is True
    assert is_ttl_removal({**removal({"pk": "v1#k"}), "eventName": "MODIFY"}) is False
    assert is_ttl_removal(removal({"pk": "v1#k"}, kind="User")) is False
    assert is_ttl_removal(removal({"pk": "v1#k"}, principal="someone")) is False
    assert is_ttl_removal({"eventName": "REMOVE", "dynamodb": {}}) is False


def test_items_removed_by_ttl_before_a_verdict_are_expired(env):
    pending = {"pk": "v1#k", "dest": DST, "src": SRC, "s_size": 5}
    overdue = {"pk": "v2#k", "dest": DST, "src": SRC, "status": "OVERDUE"}
    answer = env.sweeper.handle_removals(
        [
            removal(pending),
            removal(overdue),
            removal({"pk": "v3#k", "dest": DST, "status": "COMPLETED"}),
            removal({"pk": HEARTBEAT_PK, "dest": SRC, "last": 1}),
            removal(None),
            removal({"pk": "v4#k", "dest": DST}, principal="someone"),
        ]
    )
    assert answer == {"batchItemFailures": []}
    assert env.counters.total("ObjectsExpired") == 2
    assert env.counters.total("ObjectsExpired", (("SourceBucket", SRC), ("DestinationBucket", DST))) == 2


def test_each_expiry_is_handed_to_the_publisher_with_the_status_it_had(env):
    class Recording(Publisher):
        def __init__(self):
            super().__init__()
            self.calls = []

        def publish(self, changes, counters, *, now_ms):
            self.calls.append((changes, now_ms))

    env.sweeper.publisher = publisher = Recording()
    pending = {"pk": "v1#k", "dest": DST}
    overdue = {"pk": "v2#k", "dest": DST, "status": "OVERDUE"}
    env.sweeper.handle_removals(
        [
            removal({"pk": "v0#k", "dest": DST}, principal="someone"),  # a removal by someone else first
            removal({"pk": "v3#k", "dest": DST, "status": "FAILED"}),  # a decided item first
            removal(pending),
            removal(overdue),
        ]
    )
    assert publisher.calls == [
        (
            [
                Change(item=pending, status=Status.EXPIRED, old_status=None),
                Change(item=overdue, status=Status.EXPIRED, old_status="OVERDUE"),
            ],
            int(NOW * 1000),
        )
    ]


def test_expiries_that_cannot_be_published_retry_the_batch(env):
    firehose = boto3.client("firehose", region_name="us-east-1")
    env.sweeper.publisher = Publisher(firehose=firehose, delivery_stream="missing", retry_seconds=0)
    answer = env.sweeper.handle_removals(
        [removal({"pk": "v1#k", "dest": DST}, seq="5"), removal({"pk": "v2#k", "dest": DST}, seq="6")]
    )
    assert answer == {"batchItemFailures": [{"itemIdentifier": "5"}]}


def logged(caplog) -> list[tuple[str, str, dict]]:
    fields = ("message_id", "error")
    return [
        (r.levelname, r.getMessage(), {f: getattr(r, f) for f in fields if hasattr(r, f)})
        for r in caplog.records
        if r.name.endswith("crrmon.sweep")
    ]


def test_each_failure_is_logged_with_what_failed(env, caplog):
    env.sweeper.handle_timers([{"messageId": "bad", "body": "[]"}])
    env.store.items_for = mock.Mock(side_effect=RuntimeError("read"))
    env.sweeper.handle_timers([message(Timer("v1#k", int(NOW), dests=(DST,)))])
    env.store.items_of = mock.Mock(side_effect=RuntimeError("query"))
    env.sweeper.handle_timers([message(Timer("v1#k", int(NOW)))])
    firehose = boto3.client("firehose", region_name="us-east-1")
    env.sweeper.publisher = Publisher(firehose=firehose, delivery_stream="missing", retry_seconds=0)
    env.sweeper.handle_removals([removal({"pk": "v1#k", "dest": DST})])
    assert logged(caplog) == [
        (
            "ERROR",
            "timer message unreadable; dropped",
            {"message_id": "bad", "error": "a timer body is {'pk': str, 'due': int, 'attempt': int, 'd': [str]}"},
        ),
        ("WARNING", "reading the batch's items failed; it will be retried", {"error": "RuntimeError('read')"}),
        ("WARNING", "deadline check failed; it will be retried", {"error": "RuntimeError('query')"}),
        (
            "WARNING",
            "publishing expiries failed; the batch will be retried",
            {"error": "PublishError('Firehose refused PutRecordBatch: ResourceNotFoundException')"},
        ),
    ]


def test_the_schedule_reads_metrics_and_sends_slo_messages_through_the_sweepers_clients(env):
    cloudwatch, sns = object(), object()
    sweeper = env.sweeper_with(cloudwatch=cloudwatch, publisher=Publisher(sns=sns))
    assert (sweeper.schedule.cloudwatch, sweeper.schedule.sns) == (cloudwatch, sns)
    assert env.sweeper_with(publisher=None).schedule.sns is None
