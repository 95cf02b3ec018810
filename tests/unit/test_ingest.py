"""Ingest's decisions one event at a time, on the template's table and SQS queues on moto (in-process
`mock_aws`): what each kind of event writes, which timers it starts, what it ignores or rejects, and how a
batch reports failures, parks bad bodies and writes heartbeats.

moto's S3 keeps no replication status, so the HEAD that tells a two-way bucket's replica from its source
is a hand-written `Evidence` stand-in answering the `VersionFacts` a test gives it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from unittest import mock

import boto3
import pytest
from moto.sqs import models as moto_sqs

from crrmon.config import Config
from crrmon.events import parse_body
from crrmon.evidence import Refused, VersionFacts
from crrmon.ingest import Heartbeats, Ingest
from crrmon.metrics import Counters
from crrmon.model import ObjectChange, ObjectEvent, Rejected, ReplicationEvent, ReplicationOutcome
from crrmon.store import HEARTBEAT_PK, Store, make_pk
from crrmon.timers import Timer
from crrmon.topology import LIFECYCLE_EXPIRATION, Role, Rule, Topology, TopologyCache
from crrmon.verify import deadline_s
from crrmon_local import emulator

NOW = 1_700_000_000.0
ACCOUNT, OTHER = "123456789012", "999988887777"
SRC, DST, DST2, SOLO, BOTH = "src", "dst", "dst2", "solo", "both"
RPO, GIVE_UP = 60, 600
TOPIC = f"arn:aws:sns:eu-west-1:{OTHER}:crrmon-forwarder"


def topology() -> Topology:
    return Topology(
        sources={
            SRC: [Rule("to-dst", DST, priority=1), Rule("to-dst2", DST2, priority=2, prefix="logs/")],
            SOLO: [Rule("solo-to-dst", DST)],
        },
        regions={SRC: "us-east-1", DST: "us-west-2", DST2: "eu-west-1", SOLO: "us-east-2"},
    )


class Heads:
    """Evidence stand-in: answers HEAD with the facts given per version (moto keeps no replication status)."""

    def __init__(self):
        self.facts: dict[str, VersionFacts | Exception] = {}
        self.asked: list[tuple[str, str, str]] = []

    def head(self, bucket, key, version_id):
        self.asked.append((bucket, key, version_id))
        answer = self.facts[version_id]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Env:
    def __init__(self, ddb, **config):
        sqs = boto3.client("sqs", region_name="us-east-1")
        self.timer_queue = sqs.create_queue(QueueName="timers")["QueueUrl"]
        self.dlq = sqs.create_queue(QueueName="events-dlq")["QueueUrl"]
        settings = {
            "table_name": "t",
            "timer_queue_url": self.timer_queue,
            "events_dlq_url": self.dlq,
            "rpo_seconds": RPO,
            "give_up_seconds": GIVE_UP,
            "account_id": ACCOUNT,
            **config,
        }
        self.config = Config(**settings)
        self.store = Store(ddb, "t")
        self.topo = topology()
        self.loads = 0
        self.heads = Heads()
        self.counters = Counters()
        self.now = NOW
        self.sqs = sqs
        self.ingest = Ingest(
            config=self.config,
            store=self.store,
            topology=TopologyCache(self._load, max_age=300, min_refresh_interval=0),
            evidence=self.heads,
            sqs=sqs,
            counters=self.counters,
            clock=lambda: self.now,
            heartbeats=Heartbeats(),
        )

    def _load(self) -> Topology:
        self.loads += 1
        return self.topo

    def observe(self, event, *, retried: bool = False):
        return self.ingest.observe(event, retried=retried)

    def item(self, version_id: str, dest: str, key: str = "k") -> dict | None:
        return self.store.get(make_pk(version_id, key), dest)

    def messages(self, queue: str) -> list[dict]:
        """Every message of the queue, delayed ones too (moto counts delays in its own clock's time)."""
        later = moto_sqs.unix_time_millis() + 3_600_000
        with mock.patch.object(moto_sqs, "unix_time_millis", lambda: later):
            answer = self.sqs.receive_message(
                QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
            )
        return answer.get("Messages", [])


@pytest.fixture
def env(ddb):
    return Env(ddb)


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def created(bucket=SRC, key="k", version="v1", *, t=NOW - 10, size=5, etag="abc", **kw) -> ObjectEvent:
    return ObjectEvent(
        bucket=bucket,
        key=key,
        version_id=version,
        change=kw.pop("change", ObjectChange.CREATED),
        event_time=at(t),
        size=size,
        etag=etag,
        **kw,
    )


def failed(
    destination=DST, *, bucket=SRC, reason="DstBucketNotFound", outcome=ReplicationOutcome.FAILED, **kw
) -> ReplicationEvent:
    return ReplicationEvent(
        bucket=bucket,
        key="k",
        version_id="v1",
        outcome=outcome,
        event_time=at(NOW - 10),
        destination_bucket=destination,
        failure_reason=reason,
        rule_id="to-dst",
        **kw,
    )


def due(t: float, size: int | None = 5) -> int:
    return deadline_s(int(t * 1000), size, rpo_seconds=RPO, throughput_mbps=50.0)


# ---- sources ---------------------------------------------------------------------------------------------------


def test_a_source_version_is_expected_at_each_destination_its_rules_name(env):
    timers = env.observe(created(key="logs/a", size=5, etag="abc", encryption="AES256"))
    pk = make_pk("v1", "logs/a")
    assert timers == [Timer(pk=pk, due_s=due(NOW - 10), dests=(DST,)), Timer(pk=pk, due_s=due(NOW - 10), dests=(DST2,))]
    for dest, rid, dreg in ((DST, "to-dst", "us-west-2"), (DST2, "to-dst2", "eu-west-1")):
        item = env.item("v1", dest, "logs/a")
        assert {k: v for k, v in item.items() if k not in ("pk", "dest")} == {
            "src": SRC,
            "sreg": "us-east-1",
            "dreg": dreg,
            "rid": rid,
            "s_etag": "abc",
            "s_size": 5,
            "s_time": int((NOW - 10) * 1000),
            "s_enc": "AES256",
            "first_seen": int(NOW * 1000),
            "due": due(NOW - 10),
            "expires_at": int(NOW) + GIVE_UP + 3600,
        }
    assert env.counters.values("EventAge") == [10.0]


def test_the_events_region_comes_before_the_topologys(env):
    env.observe(created(region="ap-south-1"))
    assert env.item("v1", DST)["sreg"] == "ap-south-1"


def test_a_bigger_version_gets_a_later_deadline(env):
    env.observe(created(size=500_000_000))
    assert env.item("v1", DST)["due"] == due(NOW - 10, 500_000_000) == int(NOW - 10) + RPO + 10


def test_a_version_seen_again_starts_no_second_timer_unless_its_message_is_retried(env):
    assert len(env.observe(created())) == 1
    assert env.observe(created()) == []
    assert env.observe(created(), retried=True) == [Timer(pk=make_pk("v1", "k"), due_s=due(NOW - 10), dests=(DST,))]


def test_a_version_no_rule_covers_is_counted_out_of_scope(env):
    env.topo = Topology(sources={SRC: [Rule("logs", DST, prefix="logs/")]}, regions={})
    assert env.observe(created(key="data/a")) == []
    assert env.counters.total("EventsOutOfScope", (("Bucket", SRC),)) == 1
    assert env.item("v1", DST, "data/a") is None


def test_an_sse_kms_version_a_rule_does_not_replicate_is_recorded_out_of_scope(env):
    env.observe(created(encryption="aws:kms"))
    assert env.item("v1", DST)["oos"] == "SSE-KMS object and the rule does not replicate SSE-KMS objects"


def test_a_source_delete_marker_is_expected_only_where_its_rule_replicates_them(env):
    env.topo = Topology(sources={SRC: [Rule("dm", DST, delete_markers=True), Rule("nodm", DST2)]}, regions={})
    env.observe(created(change=ObjectChange.DELETE_MARKER, size=None, etag=None, reason="DeleteObject"))
    assert env.item("v1", DST)["s_dm"] is True
    assert "s_size" not in env.item("v1", DST)
    assert env.item("v1", DST2) is None


def test_a_version_from_the_future_counts_from_now(env):
    env.observe(created(t=NOW + 3_600))
    assert env.item("v1", DST)["s_time"] == int(NOW * 1000)
    assert env.counters.values("EventAge") == [0]


# ---- replicas ----------------------------------------------------------------------------------------------------


def test_a_replica_before_its_source_is_recorded_with_its_only_source_named(env):
    timers = env.observe(created(DST2, key="logs/x", version="v2", t=NOW - 5, encryption="aws:kms"))
    assert timers == [Timer(pk=make_pk("v2", "logs/x"), due_s=due(NOW - 5), dests=(DST2,))]
    item = env.item("v2", DST2, "logs/x")
    assert {k: v for k, v in item.items() if k not in ("pk", "dest")} == {
        "r_etag": "abc",
        "r_size": 5,
        "r_time": int((NOW - 5) * 1000),
        "r_enc": "aws:kms",
        "dreg": "eu-west-1",
        "src": SRC,
        "sreg": "us-east-1",
        "first_seen": int(NOW * 1000),
        "due": due(NOW - 5),
        "expires_at": int(NOW) + GIVE_UP + 3600,
    }


def test_a_destination_with_two_sources_names_none_until_the_source_is_seen(env):
    env.observe(created(DST, t=NOW - 5))
    item = env.item("v1", DST)
    assert "src" not in item and "sreg" not in item
    assert item["dreg"] == "us-west-2"


def test_a_matching_replica_after_its_source_is_completed_in_one_write(env):
    env.observe(created(SRC, t=NOW - 10))
    assert env.observe(created(DST, t=NOW - 4)) == []
    item = env.item("v1", DST)
    assert (item["status"], item["verified_by"], item["latency_ms"]) == ("COMPLETED", "etag", 6_000)
    assert (item["decided_at"], item["expires_at"]) == (int(NOW * 1000), int(NOW) + 24 * 3600)
    assert item["r_time"] == int((NOW - 4) * 1000)


@pytest.mark.parametrize(
    ("mode", "etag", "verified_by"),
    [("size", "other", "size"), ("etag", "abc", "etag")],
)
def test_the_one_write_checks_what_the_verify_mode_asks(ddb, mode, etag, verified_by):
    env = Env(ddb, verify_mode=mode)
    env.observe(created(SRC))
    env.observe(created(DST, etag=etag))
    assert env.item("v1", DST)["verified_by"] == verified_by


@pytest.mark.parametrize(
    ("mode", "replica"),
    [
        ("checksum", {}),
        ("etag", {"etag": None}),
        ("etag", {"size": None}),
        ("etag", {"change": ObjectChange.DELETE_MARKER}),
        ("etag", {"etag": "other"}),
        ("size", {"size": 6}),
    ],
)
def test_anything_else_is_recorded_for_the_matcher_to_decide(ddb, mode, replica):
    env = Env(ddb, verify_mode=mode)
    env.observe(created(SRC))
    assert env.observe(created(DST, **replica)) == []  # not the first sighting of the item: no timer
    item = env.item("v1", DST)
    assert "status" not in item and item["r_time"] == int((NOW - 10) * 1000)


def test_a_replica_delete_marker_is_recorded_as_one(env):
    env.observe(created(DST, change=ObjectChange.DELETE_MARKER, size=None, etag=None))
    assert env.item("v1", DST)["r_dm"] is True


def test_a_lifecycle_marker_in_a_destination_is_ignored(env):
    marker = created(DST, change=ObjectChange.DELETE_MARKER, size=None, etag=None, reason=LIFECYCLE_EXPIRATION)
    assert env.observe(marker) == []
    assert env.item("v1", DST) is None
    assert env.counters.total("EventsIgnored", (("Reason", "lifecycle-marker-in-destination"),)) == 1


def test_a_lifecycle_marker_in_a_source_is_expected_nowhere(env):
    env.topo = Topology(sources={SRC: [Rule("dm", DST, delete_markers=True)]}, regions={})
    marker = created(SRC, change=ObjectChange.DELETE_MARKER, size=None, etag=None, reason=LIFECYCLE_EXPIRATION)
    assert env.observe(marker) == []
    assert env.counters.total("EventsIgnored", (("Reason", "lifecycle-marker-in-destination"),)) == 0
    assert env.counters.total("EventsOutOfScope", (("Bucket", SRC),)) == 1


# ---- replication events ------------------------------------------------------------------------------------------


def test_a_replication_failure_is_recorded_for_its_destination(env):
    assert env.observe(failed(region="us-east-1", size=5)) == [
        Timer(pk=make_pk("v1", "k"), due_s=due(NOW - 10), dests=(DST,))
    ]
    item = env.item("v1", DST)
    assert {k: item[k] for k in ("src", "sreg", "dreg", "rid", "fail")} == {
        "src": SRC,
        "sreg": "us-east-1",
        "dreg": "us-west-2",
        "rid": "to-dst",
        "fail": "DstBucketNotFound",
    }
    assert "xacct" not in item and "s_time" not in item


def test_a_failure_without_a_reason_is_named_by_its_event(env):
    env.observe(failed(reason=None))
    assert env.item("v1", DST)["fail"] == "OperationFailedReplication"
    assert env.item("v1", DST)["sreg"] == "us-east-1"  # the topology's, as the event has none


@pytest.mark.parametrize(
    ("outcome", "metric"),
    [
        (ReplicationOutcome.MISSED_THRESHOLD, "ReplicationMissedThreshold"),
        (ReplicationOutcome.REPLICATED_AFTER_THRESHOLD, "ReplicationReplicatedAfterThreshold"),
        (ReplicationOutcome.NOT_TRACKED, "ReplicationNotTracked"),
    ],
)
def test_other_replication_events_are_counted_only(env, outcome, metric):
    assert env.observe(failed(outcome=outcome)) == []
    assert env.counters.total(metric) == 1
    assert env.item("v1", DST) is None


def test_a_failure_must_name_a_destination_of_the_sources_rules(env):
    assert env.observe(failed(destination=None)) == Rejected(
        "missing-destination", "a replication failure event without a destination"
    )
    assert env.observe(failed(destination="elsewhere")) == Rejected(
        "unknown-destination", "not a destination of the source's rules"
    )
    assert env.observe(failed(bucket=DST, destination=SRC)) == Rejected(  # a bucket that is no source
        "unknown-destination", "not a destination of the source's rules"
    )
    assert env.item("v1", DST) is None


def test_a_failure_report_through_another_accounts_topic_is_confirmed_by_a_head(ddb):
    env = Env(ddb, allowed_accounts=(OTHER,))
    env.topo.accounts[SRC] = OTHER
    env.observe(failed(topic_arn=TOPIC))
    assert env.item("v1", DST)["xacct"] is True


def test_an_event_of_a_known_bucket_does_not_reload_the_topology(env):
    env.observe(created())
    env.observe(failed())
    assert env.loads == 1


# ---- what is skipped or refused ----------------------------------------------------------------------------------


def test_unversioned_and_deleted_versions_are_ignored(env):
    assert env.observe(created(version=None)) == []
    assert env.counters.total("UnversionedObjects", (("Bucket", SRC),)) == 1
    assert env.counters.total("EventsIgnored", (("Reason", "unversioned"),)) == 1
    assert env.observe(created(change=ObjectChange.VERSION_DELETED)) == []
    assert env.counters.total("EventsIgnored", (("Reason", "version-deleted"),)) == 1
    assert env.item("v1", DST) is None


def test_an_event_older_than_the_records_kept_is_ignored(env):
    retention = 24 * 3600
    assert env.observe(created(t=NOW - retention - 1)) == []
    assert env.counters.total("EventsIgnored", (("Reason", "stale-event"),)) == 1
    assert len(env.observe(created(version="v2", t=NOW - retention))) == 1  # exactly as old: still judged


def test_events_of_accounts_not_allowed_are_rejected(env):
    assert env.observe(created(account=OTHER)) == Rejected("account-not-allowed", OTHER)
    assert env.observe(created(topic_arn=TOPIC)) == Rejected("topic-not-allowed", OTHER)
    assert env.item("v1", DST) is None


def test_an_unknown_bucket_reloads_the_topology_once_then_is_rejected(env):
    assert env.observe(created("stranger")) == Rejected("unknown-bucket", "stranger")
    assert env.loads == 2


def test_a_bucket_added_since_the_topology_was_loaded_is_found_by_reloading(env):
    env.observe(created(SRC))
    env.topo = Topology(sources={"new": [Rule("r", DST)]}, regions={})
    assert len(env.observe(created("new", version="v9"))) == 1


def test_a_topic_speaks_only_for_buckets_of_its_own_account(ddb):
    env = Env(ddb, allowed_accounts=(OTHER,))
    assert env.observe(created(topic_arn=TOPIC)) == Rejected(
        "topic-account-mismatch", f"{OTHER} for a bucket of {ACCOUNT}"
    )
    env.topo.accounts[SRC] = OTHER
    assert len(env.observe(created(topic_arn=TOPIC))) == 1
    assert env.item("v1", DST)["xacct"] is True  # crossed: a HEAD confirms it


def test_a_forwarder_topic_needs_no_confirming_head(ddb):
    env = Env(ddb, allowed_accounts=(OTHER,), forwarder_topic_arns=(TOPIC,))
    env.topo.accounts[SRC] = OTHER
    env.observe(created(topic_arn=TOPIC))
    assert "xacct" not in env.item("v1", DST)


def test_an_event_from_another_account_is_marked_and_never_completed_in_one_write(ddb):
    env = Env(ddb, allowed_accounts=(OTHER,))
    env.observe(created(SRC))
    env.observe(created(DST, account=OTHER))
    item = env.item("v1", DST)
    assert item["xacct"] is True and "status" not in item
    env.observe(created(SRC, version="v2", account=ACCOUNT))
    assert "xacct" not in env.item("v2", DST)


def test_without_a_known_account_nothing_crossed(ddb):
    env = Env(ddb, account_id="")
    env.observe(created(account=OTHER))
    assert "xacct" not in env.item("v1", DST)


# ---- a bucket that is both source and destination ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "role", "two_way"),
    [
        (VersionFacts(exists=True, replication_status="REPLICA"), Role.DESTINATION, None),
        (VersionFacts(exists=True, replication_status=None), Role.SOURCE, None),
        (VersionFacts(exists=True, replication_status="PENDING"), Role.SOURCE, True),
        (VersionFacts(exists=True, delete_marker=True), Role.SOURCE, True),
        (VersionFacts(exists=True, readable=False), Role.SOURCE, True),
        (Refused(BOTH, "403"), Role.SOURCE, True),
    ],
)
def test_a_two_way_buckets_version_is_placed_by_its_replication_status(ddb, facts, role, two_way):
    env = Env(ddb)
    env.topo = Topology(
        sources={BOTH: [Rule("out", DST2)], SRC: [Rule("in", BOTH)]}, regions={BOTH: "us-east-1", DST2: "eu-west-1"}
    )
    env.heads.facts["v1"] = facts
    env.observe(created(BOTH))
    assert env.heads.asked == [(BOTH, "k", "v1")]
    if role is Role.DESTINATION:
        item = env.item("v1", BOTH)
        assert (item["src"], item["r_size"]) == (SRC, 5)
        assert env.item("v1", DST2) is None
    else:
        item = env.item("v1", DST2)
        assert (item["src"], item["s_size"], item.get("two_way")) == (BOTH, 5, two_way)
        assert env.item("v1", BOTH) is None
    assert env.counters.total("HeadsRefused", (("Bucket", BOTH),)) == (1 if isinstance(facts, Refused) else 0)


def test_a_two_way_version_that_is_gone_is_ignored(env):
    env.topo = Topology(sources={BOTH: [Rule("out", DST2)], SRC: [Rule("in", BOTH)]}, regions={})
    env.heads.facts["v1"] = VersionFacts(exists=False)
    assert env.observe(created(BOTH)) == []
    assert env.counters.total("EventsIgnored", (("Reason", "version-gone"),)) == 1
    assert env.item("v1", DST2) is None and env.item("v1", BOTH) is None


def test_a_two_way_buckets_delete_marker_is_a_source_without_a_head(env):
    env.topo = Topology(sources={BOTH: [Rule("out", DST2, delete_markers=True)], SRC: [Rule("in", BOTH)]}, regions={})
    env.observe(created(BOTH, change=ObjectChange.DELETE_MARKER, size=None, etag=None))
    assert env.heads.asked == []
    item = env.item("v1", DST2)
    assert (item["s_dm"], item["two_way"]) == (True, True)


# ---- batches -----------------------------------------------------------------------------------------------------


def body(bucket=SRC, version="v1", *, key="k", t=NOW - 10, account=ACCOUNT) -> str:
    return emulator.eventbridge_object_event(
        bucket=bucket, key=key, version_id=version, time_s=t, region="us-east-1", account=account, size=5, etag="abc"
    )


def records(*bodies: str, receive_count: int = 1) -> list[dict]:
    return [
        {"messageId": f"m{i}", "body": b, "attributes": {"ApproximateReceiveCount": str(receive_count)}}
        for i, b in enumerate(bodies)
    ]


def test_a_batch_records_its_events_and_sends_their_timers(env):
    answer = env.ingest.handle_batch(records(body(version="v1"), body(version="v2")))
    assert answer == {"batchItemFailures": []}
    assert env.item("v1", DST) and env.item("v2", DST)
    sent = sorted(json.loads(m["Body"])["pk"] for m in env.messages(env.timer_queue))
    assert sent == [make_pk("v1", "k"), make_pk("v2", "k")]
    assert env.counters.total("EventsReceived") == 2


def test_a_bad_body_is_parked_with_its_reasons_and_the_rest_recorded(env):
    stranger = body("stranger", "v3")
    answer = env.ingest.handle_batch(records("not json", body(version="v2"), stranger))
    assert answer == {"batchItemFailures": []}
    assert env.item("v2", DST)
    parked = {m["Body"]: m["MessageAttributes"] for m in env.messages(env.dlq)}
    assert {
        b: (a["RejectedReason"]["StringValue"], a["SourceMessageId"]["StringValue"]) for b, a in parked.items()
    } == {
        "not json": ("malformed-json", "m0"),
        stranger: ("unknown-bucket", "m2"),
    }
    assert env.counters.total("EventsRejected", (("Reason", "unknown-bucket"),)) == 1


def test_an_empty_body_is_parked_as_empty(env):
    env.ingest.handle_batch([{"messageId": "m0", "body": ""}])
    (message,) = env.messages(env.dlq)
    assert message["Body"] == "(empty)"


def test_without_a_dead_letter_queue_a_bad_body_is_dropped_after_logging(ddb):
    env = Env(ddb, events_dlq_url="")
    assert env.ingest.handle_batch(records("not json")) == {"batchItemFailures": []}
    assert env.counters.total("EventsRejected") == 1


def test_a_body_that_cannot_be_parked_is_retried(ddb):
    env = Env(ddb, events_dlq_url="https://sqs.us-east-1.amazonaws.com/123456789012/missing")
    assert env.ingest.handle_batch(records("not json")) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}


def test_ignored_events_are_counted_by_reason(env):
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": SRC})
    assert env.ingest.handle_batch(records(test_event, body(version="v2"))) == {"batchItemFailures": []}
    assert env.counters.total("EventsIgnored", (("Reason", "s3-test-event"),)) == 1
    assert env.counters.total("EventsReceived") == 2  # each parsed event, the ignored one too
    two = [
        emulator.s3_notification(
            event_name="ObjectCreated:Put", bucket=SRC, key="k", version_id=v, time_s=NOW - 5, region="us-east-1"
        )
        for v in ("v3", "v4")
    ]
    env.ingest.handle_batch(records(json.dumps({"Records": two})))  # one message, two events
    assert env.counters.total("EventsReceived") == 4


def test_a_failed_observation_retries_its_record_only(env):
    class Failing(Store):
        def record_observation(self, pk, dest, **kwargs):
            if pk.startswith("bad"):
                raise RuntimeError("throttled")
            return super().record_observation(pk, dest, **kwargs)

    env.ingest.store = Failing(env.store.dynamodb, "t")
    answer = env.ingest.handle_batch(records(body(version="bad1"), body(version="v2")))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert env.counters.total("ObservationErrors") == 1
    sent = [json.loads(m["Body"])["pk"] for m in env.messages(env.timer_queue)]
    assert sent == [make_pk("v2", "k")]


def test_a_retried_message_sends_its_timer_again(env):
    env.ingest.handle_batch(records(body()))
    env.messages(env.timer_queue)
    env.ingest.handle_batch(records(body(), receive_count=2))
    assert len(env.messages(env.timer_queue)) == 1


def test_timers_that_cannot_be_sent_retry_their_records(ddb):
    env = Env(ddb, timer_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/missing")
    assert env.ingest.handle_batch(records(body())) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}


def test_without_a_timer_queue_nothing_is_sent(ddb):
    env = Env(ddb, timer_queue_url="")
    assert env.ingest.handle_batch(records(body())) == {"batchItemFailures": []}
    assert env.item("v1", DST)


def test_a_heard_source_bucket_beats_once_a_minute(env):
    env.ingest.handle_batch(records(body(version="v1"), body(DST, version="v2")))
    assert env.store.get(HEARTBEAT_PK, SRC)["last"] == int(NOW)
    assert env.store.get(HEARTBEAT_PK, DST) is None  # only watched sources beat
    env.now += 30
    env.ingest.handle_batch(records(body(version="v3")))
    assert env.store.get(HEARTBEAT_PK, SRC)["last"] == int(NOW)
    env.now += 30
    env.ingest.handle_batch(records(body(version="v4")))
    assert env.store.get(HEARTBEAT_PK, SRC)["last"] == int(NOW) + 60


def test_a_bucket_that_beat_this_minute_does_not_keep_the_others_from_beating(env):
    env.ingest.handle_batch(records(body(SOLO, version="v1")))
    env.now += 30
    env.ingest.handle_batch(records(body(SOLO, version="v2"), body(SRC, version="v3")))  # "solo" sorts first
    assert env.store.get(HEARTBEAT_PK, SOLO)["last"] == int(NOW)
    assert env.store.get(HEARTBEAT_PK, SRC)["last"] == int(NOW) + 30


def test_a_failed_heartbeat_is_counted_and_tried_again_by_the_next_batch(env):
    class Failing(Store):
        fail = True

        def beat(self, bucket, now_s, *, only_if_absent=False):
            if self.fail:
                raise RuntimeError("throttled")
            super().beat(bucket, now_s, only_if_absent=only_if_absent)

    store = env.ingest.store = Failing(env.store.dynamodb, "t")
    assert env.ingest.handle_batch(records(body())) == {"batchItemFailures": []}
    assert env.counters.total("HeartbeatErrors") == 1
    store.fail = False
    env.ingest.handle_batch(records(body(version="v2")))
    assert env.store.get(HEARTBEAT_PK, SRC)["last"] == int(NOW)


def test_a_rejected_event_is_no_heartbeat(env):
    env.ingest.handle_batch(records(body(account=OTHER)))
    assert env.store.get(HEARTBEAT_PK, SRC) is None


# ---- heartbeats and subscriptions ----------------------------------------------------------------------------------


def test_a_heartbeat_is_due_once_a_minute_per_table_and_bucket():
    beats = Heartbeats(every_s=60)
    assert beats.claim("t", "b", 100) is True
    assert beats.claim("t", "b", 159.9) is False
    assert beats.claim("t", "other", 120) is True
    assert beats.claim("t2", "b", 120) is True
    assert beats.claim("t", "b", 160) is True
    assert beats.claim("t", "b", 100) is True  # a clock that went back: due again
    beats.release("t", "b")
    assert beats.claim("t", "b", 101) is True
    beats.forget()
    assert beats.claim("t", "other", 121) is True and beats.claim("t2", "b", 121) is True


def subscription(account=OTHER, region="eu-west-1") -> str:
    return json.dumps(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": "m",
            "Token": "tok",
            "TopicArn": f"arn:aws:sns:{region}:{account}:crrmon-forwarder",
            "Message": "You have chosen to subscribe",
            "SubscribeURL": "https://sns.example/confirm",
            "Timestamp": "2026-01-01T00:00:00.000Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.example/cert.pem",
        }
    )


class Subscriptions:
    """Records ConfirmSubscription per region; moto answers it for any token without checking it."""

    def __init__(self, error: Exception | None = None):
        self.calls: list[tuple[str, dict]] = []
        self.error = error

    def __call__(self, region):
        outer = self

        class Client:
            def confirm_subscription(self, **kwargs):
                outer.calls.append((region, kwargs))
                if outer.error:
                    raise outer.error
                return {"SubscriptionArn": "arn"}

        return Client()


def test_a_subscription_of_an_allowed_account_is_confirmed(ddb):
    env = Env(ddb, allowed_accounts=(OTHER,))
    env.ingest.sns = confirmations = Subscriptions()
    assert env.ingest.handle_batch(records(subscription())) == {"batchItemFailures": []}
    assert confirmations.calls == [
        (
            "eu-west-1",
            {
                "TopicArn": f"arn:aws:sns:eu-west-1:{OTHER}:crrmon-forwarder",
                "Token": "tok",
                "AuthenticateOnUnsubscribe": "true",
            },
        )
    ]
    assert env.counters.total("SubscriptionsConfirmed") == 1
    assert env.messages(env.dlq) == []


def test_a_subscription_request_of_a_stranger_is_parked_with_its_reason(env):
    assert env.ingest.handle_batch(records(subscription(account="999999999999"))) == {"batchItemFailures": []}
    [parked] = env.messages(env.dlq)
    attributes = parked["MessageAttributes"]
    assert attributes["RejectedReason"]["StringValue"] == "subscription-not-allowed"
    assert attributes["SourceMessageId"]["StringValue"] == "m0"


def test_a_subscription_that_fails_to_confirm_is_retried(ddb):
    env = Env(ddb, allowed_accounts=(OTHER,))
    env.ingest.sns = Subscriptions(error=RuntimeError("endpoint unreachable"))
    assert env.ingest.handle_batch(records(subscription())) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert env.counters.total("ObservationErrors") == 1
    assert env.messages(env.dlq) == []


@pytest.mark.parametrize(
    ("allowed", "account", "with_sns", "detail"),
    [
        ((), OTHER, True, OTHER),
        ((OTHER,), ACCOUNT, True, ACCOUNT),  # this account's own subscriptions confirm themselves
        ((OTHER,), OTHER, False, "no SNS client"),
    ],
)
def test_any_other_subscription_is_refused_and_parked(ddb, allowed, account, with_sns, detail):
    env = Env(ddb, allowed_accounts=allowed)
    confirmations = Subscriptions()
    env.ingest.sns = confirmations if with_sns else None
    (request,) = parse_body(subscription(account))
    assert env.ingest.confirm(request) == Rejected("subscription-not-allowed", detail)
    assert confirmations.calls == []


# ---- what is logged ------------------------------------------------------------------------------------------------

LOGGED_FIELDS = ("message_id", "bucket", "error", "reason", "detail", "timers", "topic_arn")


def logged(caplog) -> list[tuple[str, str, dict]]:
    return [
        (r.levelname, r.getMessage(), {f: getattr(r, f) for f in LOGGED_FIELDS if hasattr(r, f)})
        for r in caplog.records
        if r.name.endswith("crrmon.ingest")
    ]


def test_a_rejected_event_is_logged_with_its_reason_and_message(env, caplog):
    env.ingest.handle_batch(records("not json"))
    assert logged(caplog) == [
        ("WARNING", "event rejected", {"message_id": "m0", "reason": "malformed-json", "detail": "body is not JSON"})
    ]


def test_a_failed_observation_is_logged_with_its_message_and_bucket(env, caplog):
    env.ingest.store = mock.Mock(wraps=env.store, table_name="t")
    env.ingest.store.record_observation.side_effect = RuntimeError("throttled")
    env.ingest.handle_batch(records(body()))
    assert logged(caplog)[0] == (
        "WARNING",
        "observation failed; the record will be retried",
        {"message_id": "m0", "bucket": SRC, "error": "RuntimeError('throttled')"},
    )


def test_a_heartbeat_not_written_is_logged_with_its_bucket(env, caplog):
    env.ingest.store = mock.Mock(wraps=env.store, table_name="t")
    env.ingest.store.beat.side_effect = RuntimeError("throttled")
    env.ingest.handle_batch(records(body()))
    assert logged(caplog) == [
        ("WARNING", "heartbeat not written", {"bucket": SRC, "error": "RuntimeError('throttled')"})
    ]


def test_timers_not_sent_and_bodies_not_parked_are_logged(ddb, caplog):
    missing = "https://sqs.us-east-1.amazonaws.com/123456789012/missing"
    env = Env(ddb, timer_queue_url=missing, events_dlq_url=missing)
    env.ingest.handle_batch(records(body(version="v1"), body(version="v2"), "not json"))
    found = logged(caplog)
    assert ("ERROR", "could not park a rejected event; it will be retried", {}) in found
    assert ("WARNING", "timers not sent; their records will be retried", {"timers": 2}) in found


def test_subscriptions_are_logged_confirmed_or_not(ddb, caplog):
    caplog.set_level("INFO")
    env = Env(ddb, allowed_accounts=(OTHER,))
    env.ingest.sns = Subscriptions()
    env.ingest.handle_batch(records(subscription()))
    env.ingest.sns = Subscriptions(error=RuntimeError("unreachable"))
    env.ingest.handle_batch(records(subscription()))
    assert logged(caplog) == [
        ("INFO", "subscription confirmed", {"topic_arn": f"arn:aws:sns:eu-west-1:{OTHER}:crrmon-forwarder"}),
        ("WARNING", "subscription not confirmed; the record will be retried", {"error": "RuntimeError('unreachable')"}),
    ]


def test_a_heartbeat_claimed_this_second_is_not_due_again_and_releasing_an_unclaimed_one_is_harmless():
    beats = Heartbeats(every_s=60)
    assert beats.claim("t", "b", 100) is True
    assert beats.claim("t", "b", 100) is False
    assert beats.claim("t", "b", 100.5) is False
    beats.release("t", "never-claimed")
    assert beats.claim("t", "b", 100.5) is False


def test_a_confirmed_subscription_says_so(ddb):
    env = Env(ddb, allowed_accounts=(OTHER,))
    env.ingest.sns = Subscriptions()
    (request,) = parse_body(subscription())
    assert env.ingest.confirm(request) is True


def test_a_body_with_several_reasons_is_parked_with_all_of_them(env):
    bad = json.dumps({"Records": [7, {"eventSource": "aws:sqs"}]})
    env.ingest.handle_batch(records(bad))
    (message,) = env.messages(env.dlq)
    assert message["MessageAttributes"]["RejectedReason"]["StringValue"] == "bad-type,unknown-shape"


def test_a_message_received_the_first_time_starts_no_timer_for_an_item_already_recorded(env):
    first = body()
    env.ingest.handle_batch(records(first))
    env.messages(env.timer_queue)
    env.ingest.handle_batch(records(body(), receive_count=1))  # the same version, another message
    assert env.messages(env.timer_queue) == []


# ---- RPO classes and the deadline ----------------------------------------------------------------------------------


def test_under_a_policy_each_version_gets_its_class_and_its_deadline_from_it(ddb):
    env = Env(ddb, rpo_classes="gold:prefix=gold/,rpo=30;big:min=1KiB,rpo=300")
    env.observe(created(key="gold/a", version="v1"))
    env.observe(created(key="plain", version="v2", size=2048))
    env.observe(created(key="plain", version="v3"))
    got = {v: env.store.get(make_pk(v, k), DST) for v, k in (("v1", "gold/a"), ("v2", "plain"), ("v3", "plain"))}
    assert {v: (i["rpo_c"], i["rpo_s"]) for v, i in got.items()} == {
        "v1": ("gold", 30),
        "v2": ("big", 300),
        "v3": ("default", RPO),
    }
    throughput = env.config.expected_throughput_mbps
    assert got["v1"]["due"] == deadline_s(int((NOW - 10) * 1000), 5, rpo_seconds=30, throughput_mbps=throughput)
    assert got["v2"]["due"] == deadline_s(int((NOW - 10) * 1000), 2048, rpo_seconds=300, throughput_mbps=throughput)


def test_without_a_policy_items_hold_no_class(env):
    env.observe(created())
    assert "rpo_c" not in env.item("v1", DST) and "rpo_s" not in env.item("v1", DST)


def test_the_source_sets_the_deadline_even_when_its_replica_was_seen_first(env):
    env.observe(created(DST, t=NOW - 2))  # the replica's event first: a deadline from its time
    assert env.item("v1", DST)["due"] == due(NOW - 2)
    env.observe(created(SRC, t=NOW - 10))
    assert env.item("v1", DST)["due"] == due(NOW - 10)
