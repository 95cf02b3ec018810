"""Outages: a watched bucket that falls silent, canaries that prove the whole path end to end, and a
destination that is down for an hour under load."""

from __future__ import annotations

import heapq
import json
import os

import pytest
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from crrmon import runtime
from crrmon.config import Config
from crrmon.evidence import Evidence, RateLimiter
from crrmon.ingest import CONTAINER_HEARTBEATS
from crrmon.match import Matcher
from crrmon.metrics import Counters
from crrmon.publish import Publisher, read_archive
from crrmon.schedule import CANARY_KEY
from crrmon.store import HEARTBEAT_PK
from crrmon.sweep import Sweeper
from crrmon.timers import Timer
from crrmon.topology import Rule, Topology, TopologyCache

from .conftest import BIDI_A, BIDI_B, DST, DST2, RPO, SRC, TAGGED, FakeClock


def emf_values(out: str, name: str, **dimensions) -> list[float]:
    """Values of metric `name` in EMF documents whose dimensions are exactly `dimensions` (plus service)."""
    found = []
    for line in out.splitlines():
        if '"_aws"' not in line:
            continue
        doc = json.loads(line)
        names = set(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) - {"service"}
        if name in doc and names == set(dimensions) and all(doc.get(k) == v for k, v in dimensions.items()):
            value = doc[name]
            found.extend(value if isinstance(value, list) else [value])
    return found


@pytest.fixture
def fresh_container():
    CONTAINER_HEARTBEATS.forget()
    yield
    CONTAINER_HEARTBEATS.forget()


def test_silent_buckets_are_counted_and_each_reports_its_quiet_time(world, capsys, fresh_container):
    heartbeat_writes = []
    ddb = runtime.client("dynamodb")

    def spy(params, **_):
        if params["Key"]["pk"]["S"] == HEARTBEAT_PK:
            heartbeat_writes.append(params["Key"]["dest"]["S"])

    ddb.meta.events.register("provide-client-params.dynamodb.UpdateItem", spy)
    [first] = world.schedule()  # no bucket has sent anything yet: each one's clock starts now
    assert first["seconds_since_last_event"] == {SRC: 0, BIDI_A: 0, BIDI_B: 0, TAGGED: 0}
    world.clock.advance(10 * 60)
    for i in range(3):  # three events within a minute: one heartbeat write
        obj = world.put(SRC, f"alive/{i}")
        world.send(world.created_event(SRC, f"alive/{i}", obj))
        world.run()
        world.clock.advance(5)
    assert heartbeat_writes.count(SRC) == 1 + 1  # the schedule's start of the clock, then one beat
    world.clock.advance(6 * 60)
    capsys.readouterr()
    [second] = world.schedule()
    ddb.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", spy)

    since = second["seconds_since_last_event"]
    assert 6 * 60 <= since[SRC] < 7 * 60
    assert since[BIDI_A] == since[BIDI_B] == since[TAGGED] == 16 * 60 + 15
    out = capsys.readouterr().out
    assert emf_values(out, "SilentBuckets") == [3]  # the service-wide total the alarm watches
    assert emf_values(out, "SecondsSinceLastEvent", Bucket=SRC) == [since[SRC]]
    assert emf_values(out, "SecondsSinceLastEvent", Bucket=TAGGED) == [16 * 60 + 15]


def test_silence_off_reports_nothing(world, monkeypatch, capsys):
    monkeypatch.setenv("SILENCE_MINUTES", "0")
    runtime.reset()
    [result] = world.schedule()
    assert "seconds_since_last_event" not in result
    assert emf_values(capsys.readouterr().out, "SilentBuckets") == []


def test_canaries_are_written_followed_verified_and_cleaned_up(world, monkeypatch):
    monkeypatch.setenv("CANARY_INTERVAL_MINUTES", "5")
    runtime.reset()
    [result] = world.schedule()
    versions = result["canaries"]
    assert set(versions) == {SRC, BIDI_A, BIDI_B, TAGGED}
    first = versions[SRC]
    head = world.s3.head_object(Bucket=SRC, Key=CANARY_KEY, VersionId=first)
    obj = {"version_id": first, "etag": head["ETag"].strip('"'), "size": head["ContentLength"]}
    world.send(world.created_event(SRC, CANARY_KEY, obj))  # S3 announces the canary like any object
    world.run()
    world.replicate(SRC, CANARY_KEY, obj, DST)
    world.replicate(SRC, CANARY_KEY, obj, DST2)
    world.send(world.created_event(DST, CANARY_KEY, obj), world.created_event(DST2, CANARY_KEY, obj))
    world.run()
    assert {(line["destination_bucket"], line["status"]) for line in world.lines_for(CANARY_KEY)} == {
        (DST, "COMPLETED"),
        (DST2, "COMPLETED"),
    }

    world.clock.advance(2 * 60)
    [early] = world.schedule()  # not yet due: nothing new written, the judged canary is cleaned up
    assert early["canaries"] == {}
    world.clock.advance(3 * 60 + 1)
    [due] = world.schedule()
    assert set(due["canaries"]) == {SRC, BIDI_A, BIDI_B, TAGGED} and due["canaries"][SRC] != first
    gone = world.s3.list_object_versions(Bucket=SRC, Prefix=CANARY_KEY).get("Versions", [])
    assert [v["VersionId"] for v in gone] == [due["canaries"][SRC]]  # the judged one was deleted
    # BIDI_A's first canary was never announced: it is kept until its items are judged or forgotten
    kept = world.s3.list_object_versions(Bucket=BIDI_A, Prefix=CANARY_KEY).get("Versions", [])
    assert len(kept) == 2


def test_canaries_off_writes_nothing(world):
    [result] = world.schedule()
    assert "canaries" not in result
    assert world.s3.list_object_versions(Bucket=SRC, Prefix="crr-monitor-canary/").get("Versions", []) == []


def test_one_destination_down_does_not_fail_a_replica_whose_event_was_lost(world):
    """The source stays PENDING while any destination lacks its replica: the sweeper must look at the
    replica that did land (its event was lost) instead of judging it by the source's status."""
    key = "outage/one-dest-down"
    obj = world.put(SRC, key)
    world.send(world.created_event(SRC, key, obj))
    world.run()
    world.replicate(SRC, key, obj, DST, status="PENDING")  # DST has it, no event; DST2 is down
    world.advance(RPO + 1)
    assert world.item(key, obj["version_id"], DST)["status"] == "COMPLETED"
    assert world.item(key, obj["version_id"], DST2)["status"] == "OVERDUE"
    line = [x for x in world.lines_for(key) if x["destination_bucket"] == DST]
    assert [(x["status"], x["verified_by"]) for x in line] == [("COMPLETED", "etag")]


# ---- a destination down under load: fast fakes ---------------------------------------------------------
# At 1,000 objects/s moto (~700 writes/s) cannot keep up, so this test swaps the AWS side for fakes: a
# dict with the table's conditional-write rules (final verdicts once, OVERDUE only from pending), an S3
# that answers HEAD from the outage's state and counts requests, and queues that keep delayed timers in
# a heap. Sweeper, Matcher, Publisher, Evidence and RateLimiter are the real ones.


class TableFake:
    table_name = "fake"

    def __init__(self) -> None:
        self.items: dict[str, dict] = {}
        self.changes: list[tuple[dict, dict]] = []  # (old image, new image): what the stream would carry

    def items_of(self, pk):
        item = self.items.get(pk)
        return [dict(item)] if item else []

    def items_for(self, keys):
        return [dict(self.items[pk]) for pk, _dest in keys if pk in self.items]

    def get(self, pk, dest):
        return dict(self.items[pk]) if pk in self.items else None

    def _change(self, pk, **fields):
        old = dict(self.items[pk])
        self.items[pk].update({k: v for k, v in fields.items() if v is not None})
        self.changes.append((old, dict(self.items[pk])))

    def mark_overdue(self, pk, dest, *, pair, now_ms):
        if "status" in self.items[pk]:
            return False
        self._change(pk, status="OVERDUE", missed_rpo=True, ovd_pair=pair, ovd_since=now_ms)
        return True

    def write_verdict(self, pk, dest, verdict, *, pair, now_ms, retention_s, evidence=None):
        if self.items[pk].get("status") not in (None, "OVERDUE"):
            return False
        for k, v in (evidence or {}).items():
            self.items[pk].setdefault(k, v)
        self._change(
            pk,
            status=verdict.status.value,
            reason=verdict.reason,
            verified_by=verdict.verified_by,
            missed_rpo=verdict.missed_rpo,
            decided_at=now_ms,
        )
        return True


class S3Fake:
    def __init__(self, clock, source, dest) -> None:
        self.clock, self.source, self.dest = clock, source, dest
        self.down = True
        self.heads: dict[tuple[str, int], int] = {}

    def head_object(self, Bucket, Key, VersionId, **_):
        second = (Bucket, int(self.clock()))
        self.heads[second] = self.heads.get(second, 0) + 1
        if Bucket == self.dest and self.down:
            raise ClientError({"Error": {"Code": "NoSuchVersion", "Message": "x"}}, "HeadObject")
        status = "REPLICA" if Bucket == self.dest else ("PENDING" if self.down else "COMPLETED")
        return {"ReplicationStatus": status, "ContentLength": 1, "ETag": '"e"'}


class QueueFake:
    def __init__(self, clock) -> None:
        self.clock, self.heap, self.n = clock, [], 0

    def send_message_batch(self, QueueUrl, Entries):
        for entry in Entries:
            self.n += 1
            heapq.heappush(self.heap, (self.clock() + entry["DelaySeconds"], self.n, entry["MessageBody"]))
        return {"Successful": [{"Id": e.get("Id", "0")} for e in Entries]}

    def due(self) -> list[str]:
        out = []
        while self.heap and self.heap[0][0] <= self.clock():
            out.append(heapq.heappop(self.heap)[2])
        return out


class TopicFake:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    def publish(self, TopicArn, Subject, Message, MessageStructure):
        assert MessageStructure == "json"
        self.messages.append(json.loads(json.loads(Message)["sqs"]))  # the machine-readable form


class ArchiveFake:
    def __init__(self) -> None:
        self.lines = 0

    def put_record_batch(self, DeliveryStreamName, Records):
        self.lines += sum(len(read_archive(r["Data"])) for r in Records)
        return {"FailedPutCount": 0}


def test_destination_down_under_load(monkeypatch):
    """1,000 new objects a second while the destination is down (CRRMON_OUTAGE_SECONDS, 90 in `make test`;
    3600 for the full hour), then the destination returns and S3 replicates the backlog."""
    rate, outage_s, head_rate = 1000, int(os.environ.get("CRRMON_OUTAGE_SECONDS", "90")), 20
    source, dest = "prod-src", "prod-dst"
    clock = FakeClock(1_800_000_000.0)
    table, s3, queue, topic, archive = (
        TableFake(),
        S3Fake(clock, source, dest),
        QueueFake(clock),
        TopicFake(),
        ArchiveFake(),
    )
    config = Config(
        table_name="fake",
        timer_queue_url="timers",
        delivery_stream_name="archive",
        alert_topic_arn="topic",
        source_buckets=(source,),
        rpo_seconds=30,
        give_up_seconds=86400,
        head_requests_per_second=head_rate,
    )
    topology = TopologyCache(lambda: Topology(sources={source: [Rule("r", dest)]}), max_age=1e9)
    publisher = Publisher(firehose=archive, delivery_stream="archive", sns=topic, topic_arn="topic")
    counters = Counters()
    evidence = Evidence(s3, RateLimiter(head_rate, clock=clock))
    sweeper = Sweeper(config, table, evidence, topology, publisher, queue, counters, clock)
    matcher = Matcher(config, table, publisher, queue, counters, clock)
    serialize = TypeSerializer().serialize
    digests_per_batch: list[int] = []

    def stream(replica_events: list[str] = ()) -> None:
        """What the matcher sees: the table's changes, 100 records per batch, then replica events."""
        records = [
            {
                "eventName": "MODIFY",
                "dynamodb": {
                    "SequenceNumber": str(i),
                    "OldImage": {k: serialize(v) for k, v in old.items()},
                    "NewImage": {k: serialize(v) for k, v in new.items()},
                },
            }
            for i, (old, new) in enumerate(table.changes)
        ]
        table.changes.clear()
        for start in range(0, len(records), 100):
            before = len(topic.messages)
            assert matcher.handle_batch(records[start : start + 100]) == {"batchItemFailures": []}
            digests_per_batch.append(len(topic.messages) - before)

    created = 0
    start = int(clock())
    while True:
        now = int(clock())
        if now < start + outage_s:
            for _ in range(rate):
                pk = f"v{created:09d}#logs/{created}"
                table.items[pk] = {
                    "pk": pk,
                    "dest": dest,
                    "src": source,
                    "s_size": 1,
                    "s_etag": "e",
                    "s_time": now * 1000,
                    "first_seen": now * 1000,
                    "due": now + 30,
                }
                queue.send_message_batch("timers", [{"MessageBody": Timer(pk, now + 30).body(), "DelaySeconds": 30}])
                created += 1
        elif s3.down:
            s3.down = False  # the destination is back: S3 replicates the backlog, replica events arrive
            for item in table.items.values():
                old = dict(item)
                item.update(r_size=1, r_etag="e", r_time=now * 1000)
                table.changes.append((old, dict(item)))
        bodies = queue.due()
        for batch in range(0, len(bodies), 10):
            records = [{"messageId": str(i), "body": b} for i, b in enumerate(bodies[batch : batch + 10])]
            assert sweeper.handle_timers(records) == {"batchItemFailures": []}
        stream()
        if not s3.down and not queue.heap:
            break
        clock.advance(1)
        assert clock() < start + outage_s + 4 * 3600, "the backlog never drained"

    # HEADs never beyond the per-bucket budget: a burst of `head_rate`, then `head_rate` a second.
    for bucket in (source, dest):
        per_second = [n for (b, _), n in s3.heads.items() if b == bucket]
        assert max(per_second) <= 2 * head_rate
        assert sum(per_second) <= head_rate * (int(clock()) - start + 1) + head_rate
    # Digests: at most one per pair and reason in a publishing batch, never one per object.
    assert max(digests_per_batch) <= 2  # OVERDUE, and at most one other reason per batch
    late = [item for item in table.items.values() if "ovd_since" in item]
    assert len(late) >= (outage_s - 30 - 1) * rate  # every object whose deadline passed in the outage
    assert sum(m["count"] for m in topic.messages if m["status"] == "OVERDUE") == len(late)
    assert len(topic.messages) <= created / 50
    # Clean recovery: every object COMPLETED once and archived once; late exactly when it was OVERDUE.
    statuses = [item.get("status") for item in table.items.values()]
    assert statuses.count("COMPLETED") == created == len(statuses)
    assert all(bool(item.get("missed_rpo")) == ("ovd_since" in item) for item in table.items.values())
    assert archive.lines == created
