"""The matcher on the table's stream records, with the template's table and a timer queue on moto
(in-process `mock_aws`): which records it decides, the verdict it writes, when it asks the sweeper for a
HEAD, what it publishes, and which record a failed batch retries from."""

from __future__ import annotations

import json
from functools import partial
from unittest import mock

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from moto.sqs import models as moto_sqs

from crrmon import pair_index
from crrmon.config import Config
from crrmon.match import Matcher, status_change
from crrmon.metrics import Counters
from crrmon.model import Status
from crrmon.publish import Change, Publisher
from crrmon.store import HEARTBEAT_PK, Store, Verdict
from crrmon.timers import Timer

NOW = 1_700_000_000.25
PK, DEST = "v1#k", "dst"
BOTH_SIDES = {"pk": PK, "dest": DEST, "src": "src", "s_size": 5, "r_size": 5, "s_time": 1_000, "r_time": 3_000}


def image(item: dict) -> dict:
    serializer = TypeSerializer()
    return {name: serializer.serialize(value) for name, value in item.items()}


def record(new: dict | None, old: dict | None = None, *, name: str = "MODIFY", seq: str = "1") -> dict:
    stream: dict = {"SequenceNumber": seq}
    if new is not None:
        stream["NewImage"] = image(new)
    if old is not None:
        stream["OldImage"] = image(old)
    return {"eventName": name, "dynamodb": stream}


class Published(Publisher):
    """Keeps what it was asked to publish (no archive, no topic configured)."""

    def __init__(self, error: Exception | None = None):
        super().__init__()
        self.batches: list[tuple[list[Change], int]] = []
        self.error = error

    def publish(self, changes, counters, *, now_ms):
        self.batches.append((list(changes), now_ms))
        if self.error:
            raise self.error


class Env:
    def __init__(self, ddb, *, verify_mode: str = "etag", timer_queue_url: str | None = None):
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.queue = self.sqs.create_queue(QueueName="timers")["QueueUrl"]
        self.config = Config(
            table_name="t",
            timer_queue_url=self.queue if timer_queue_url is None else timer_queue_url,
            verify_mode=verify_mode,
            record_retention_hours=2,
        )
        self.store = Store(ddb, "t")
        self.publisher = Published()
        self.counters = Counters()
        self.matcher = Matcher(
            config=self.config,
            store=self.store,
            publisher=self.publisher,
            sqs=self.sqs,
            counters=self.counters,
            clock=lambda: NOW,
        )

    def seed(self, item: dict) -> None:
        fields = {k: v for k, v in item.items() if k not in ("pk", "dest")}
        self.store.record_observation(item["pk"], item["dest"], now_ms=1, due_s=9, expires_s=99, fields=fields)

    def timers(self) -> list[dict]:
        later = moto_sqs.unix_time_millis() + 3_600_000
        with mock.patch.object(moto_sqs, "unix_time_millis", lambda: later):
            answer = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


@pytest.fixture
def env(ddb):
    return Env(ddb)


def test_a_status_change_is_one_from_the_old_image_to_the_new():
    assert status_change(None, {"status": "OVERDUE"}) == Change(item={"status": "OVERDUE"}, status=Status.OVERDUE)
    assert status_change({"status": "OVERDUE"}, {"status": "COMPLETED"}) == Change(
        item={"status": "COMPLETED"}, status=Status.COMPLETED, old_status="OVERDUE"
    )
    assert status_change({"status": "OVERDUE"}, {"status": "OVERDUE", "r_size": 1}) is None
    assert status_change({"status": "OVERDUE"}, {}) is None
    assert status_change(None, {}) is None


def test_an_item_with_both_sides_gets_its_verdict_written_once(env):
    env.seed(BOTH_SIDES)
    change, timer = env.matcher.on_record(record(BOTH_SIDES))
    assert (change, timer) == (None, None)  # the verdict's own stream record publishes it
    item = env.store.get(PK, DEST)
    assert {k: item[k] for k in ("status", "verified_by", "latency_ms", "missed_rpo", "decided_at")} == {
        "status": "COMPLETED",
        "verified_by": "size",
        "latency_ms": 2_000,
        "missed_rpo": False,
        "decided_at": int(NOW * 1000),
    }
    assert item["expires_at"] == int(NOW) + 2 * 3600


def test_a_failed_verdict_joins_the_failed_index_under_its_pair(env):
    item = {"pk": PK, "dest": DEST, "src": "src", "fail": "DstBucketNotFound", "headed": True}
    env.seed(item)
    env.matcher.on_record(record(item))
    assert env.store.get(PK, DEST)["fail_pair"] == pair_index.key_value("src>dst", PK, DEST)


def test_a_pair_without_a_known_source_is_named_unknown(env):
    item = {"pk": PK, "dest": DEST, "fail": "DstBucketNotFound", "headed": True}
    env.seed(item)
    env.matcher.on_record(record(item))
    assert env.store.get(PK, DEST)["fail_pair"] == pair_index.key_value("unknown>dst", PK, DEST)


def test_the_verify_mode_is_the_configurations(ddb):
    env = Env(ddb, verify_mode="size")
    item = {**BOTH_SIDES, "s_etag": "a", "r_etag": "b", "s_enc": "AES256", "r_enc": "AES256"}
    env.seed(item)
    env.matcher.on_record(record(item))
    assert env.store.get(PK, DEST)["verified_by"] == "size"


def test_a_change_of_status_is_handed_on_with_the_item(env):
    old = {**BOTH_SIDES, "status": "OVERDUE"}
    new = {**BOTH_SIDES, "status": "COMPLETED"}
    change, timer = env.matcher.on_record(record(new, old))
    assert change == Change(item=new, status=Status.COMPLETED, old_status="OVERDUE")
    assert timer is None


def test_an_item_that_needs_s3s_word_asks_the_sweeper_now(env):
    item = {"pk": PK, "dest": DEST, "src": "src", "fail": "DstBucketNotFound"}
    change, timer = env.matcher.on_record(record(item))
    assert change is None
    assert timer == Timer(pk=PK, due_s=int(NOW), attempt=0, dests=(DEST,))
    assert env.store.get(PK, DEST) is None  # nothing written


def test_an_item_that_already_needed_a_head_asks_no_second_time(env):
    old = {"pk": PK, "dest": DEST, "fail": "DstBucketNotFound"}
    new = {**old, "sreg": "us-east-1"}
    assert env.matcher.on_record(record(new, old)) == (None, None)


def test_an_item_that_newly_needs_a_head_asks_even_with_an_old_image(env):
    old = {"pk": PK, "dest": DEST, "src": "src"}
    new = {**old, "fail": "DstBucketNotFound"}
    _, timer = env.matcher.on_record(record(new, old))
    assert timer is not None and timer.pk == PK


def test_an_item_with_one_side_waits(env):
    item = {"pk": PK, "dest": DEST, "s_size": 5, "s_time": 1}
    assert env.matcher.on_record(record(item, name="INSERT")) == (None, None)
    assert env.store.get(PK, DEST) is None


@pytest.mark.parametrize(
    "rec",
    [
        record(BOTH_SIDES, name="REMOVE"),
        {"dynamodb": {"NewImage": image(BOTH_SIDES), "SequenceNumber": "1"}},
        record(None),
        record({"pk": HEARTBEAT_PK, "dest": "src", "last": 1}),
    ],
    ids=["remove", "no-event-name", "no-new-image", "bookkeeping"],
)
def test_removals_and_bookkeeping_items_are_not_decided(env, rec):
    env.seed(BOTH_SIDES)
    assert env.matcher.on_record(rec) == (None, None)
    assert "status" not in env.store.get(PK, DEST)


def test_a_batch_publishes_its_changes_and_sends_its_head_timers(env):
    needs_head = {"pk": "v2#k", "dest": DEST, "fail": "DstBucketNotFound"}
    changed = {**BOTH_SIDES, "status": "COMPLETED"}
    answer = env.matcher.handle_batch(
        [record(needs_head, seq="1"), record(changed, {**BOTH_SIDES, "status": "OVERDUE"}, seq="2")]
    )
    assert answer == {"batchItemFailures": []}
    ((changes, now_ms),) = env.publisher.batches
    assert changes == [Change(item=changed, status=Status.COMPLETED, old_status="OVERDUE")]
    assert now_ms == int(NOW * 1000)
    assert env.timers() == [{"pk": "v2#k", "due": int(NOW), "attempt": 0, "d": [DEST]}]


def test_a_batch_without_head_timers_sends_none(ddb):
    env = Env(ddb, timer_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/missing")
    assert env.matcher.handle_batch([record({**BOTH_SIDES, "status": "COMPLETED"})]) == {"batchItemFailures": []}


def test_a_failed_record_is_retried_with_every_record_after_it(env):
    class Failing(Store):
        def write_verdict(self, pk, dest, verdict, **kwargs):
            raise RuntimeError("throttled")

    env.matcher.store = Failing(env.store.dynamodb, "t")
    changed = {"pk": "v0#k", "dest": DEST, "s_size": 5, "status": "OVERDUE"}  # nothing to decide yet
    answer = env.matcher.handle_batch(
        [record(changed, seq="10"), record(BOTH_SIDES, seq="11"), record(changed, seq="12")]
    )
    assert answer == {"batchItemFailures": [{"itemIdentifier": "11"}]}
    assert env.counters.total("MatcherErrors") == 1
    ((changes, _),) = env.publisher.batches  # what came before the failure is still published
    assert [c.status for c in changes] == [Status.OVERDUE]


def test_a_record_that_cannot_be_planned_is_retried_with_every_record_after_it(env, caplog):
    changed = {"pk": "v0#k", "dest": DEST, "s_size": 5, "status": "OVERDUE"}
    unknown_status = {**BOTH_SIDES, "status": "NO-SUCH-STATUS"}  # decide() cannot read it
    answer = env.matcher.handle_batch(
        [record(changed, seq="20"), record(unknown_status, seq="21"), record(BOTH_SIDES, seq="22")]
    )
    assert answer == {"batchItemFailures": [{"itemIdentifier": "21"}]}
    assert env.counters.total("MatcherErrors") == 1
    [(message, error)] = warnings(caplog)
    assert message == "stream record failed; it will be retried" and error.startswith("ValueError(")
    ((changes, _),) = env.publisher.batches
    assert [c.status for c in changes] == [Status.OVERDUE]
    assert env.store.get(PK, DEST) is None  # the record after the failure was not acted on


def test_one_items_verdict_writes_are_one_group_in_stream_order():
    def write(pk, dest, verdict):  # as Matcher.plan makes them (not called here)
        return partial(Store(None, "t").write_verdict, pk, dest, Verdict(verdict))

    plans = [
        (None, None, write("v1#k", "d1", Status.COMPLETED)),
        (None, None, None),
        (None, None, write("v2#k", "d1", Status.FAILED)),
        (None, None, write("v1#k", "d1", Status.MISMATCH)),
        (None, None, write("v1#k", "d2", Status.FAILED)),
    ]
    groups = Matcher.writes_by_item(plans)
    assert [[index for index, _ in group] for group in groups] == [[0, 3], [2], [4]]
    assert [w.args[2].status for _, w in groups[0]] == [Status.COMPLETED, Status.MISMATCH]


def test_a_failed_publication_retries_the_whole_batch(env):
    env.matcher.publisher = Published(error=RuntimeError("firehose down"))
    answer = env.matcher.handle_batch([record({**BOTH_SIDES, "status": "OVERDUE"}, seq="7"), record(None, seq="8")])
    assert answer == {"batchItemFailures": [{"itemIdentifier": "7"}]}
    assert env.counters.total("PublishErrors") == 1


def test_head_timers_that_cannot_be_sent_retry_the_whole_batch(ddb):
    env = Env(ddb, timer_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/missing")
    needs_head = {"pk": "v2#k", "dest": DEST, "fail": "DstBucketNotFound"}
    answer = env.matcher.handle_batch([record(None, seq="5"), record(needs_head, seq="6")])
    assert answer == {"batchItemFailures": [{"itemIdentifier": "5"}]}
    assert env.counters.total("PublishErrors") == 1


def test_an_empty_batch_fails_nothing(env):
    assert env.matcher.handle_batch([]) == {"batchItemFailures": []}


def warnings(caplog) -> list[tuple[str, str]]:
    return [(r.getMessage(), getattr(r, "error", None)) for r in caplog.records if r.levelname == "WARNING"]


def test_a_failed_record_is_logged_with_its_error(env, caplog):
    class Failing(Store):
        def write_verdict(self, pk, dest, verdict, **kwargs):
            raise RuntimeError("throttled")

    env.matcher.store = Failing(env.store.dynamodb, "t")
    env.matcher.handle_batch([record(BOTH_SIDES, seq="3")])
    assert warnings(caplog) == [("stream record failed; it will be retried", "RuntimeError('throttled')")]


def test_timers_not_sent_are_logged_as_a_failed_publication(ddb, caplog):
    env = Env(ddb, timer_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/missing")
    env.matcher.handle_batch([record({"pk": "v2#k", "dest": DEST, "fail": "DstBucketNotFound"}, seq="6")])
    assert warnings(caplog) == [
        ("publishing failed; the whole batch will be retried", "RuntimeError('verification timers not sent')")
    ]


def test_the_changes_are_counted_by_the_publisher(env):
    env.matcher.publisher = Publisher()  # no archive, no topic: the metrics alone
    env.matcher.handle_batch([record({**BOTH_SIDES, "status": "COMPLETED"}, {**BOTH_SIDES, "status": "OVERDUE"})])
    assert env.counters.total("ObjectsReplicated", (("SourceBucket", "src"), ("DestinationBucket", DEST))) == 1


def test_a_new_item_with_both_sides_is_decided(env):
    env.seed(BOTH_SIDES)
    env.matcher.on_record(record(BOTH_SIDES, name="INSERT"))
    assert env.store.get(PK, DEST)["status"] == "COMPLETED"


def test_in_checksum_mode_an_item_that_already_needed_a_head_asks_no_second_time(ddb):
    env = Env(ddb, verify_mode="checksum")
    old = dict(BOTH_SIDES)
    new = {**old, "sreg": "us-east-1"}
    assert env.matcher.on_record(record(new, old)) == (None, None)
    _, timer = env.matcher.on_record(record(new))
    assert timer == Timer(pk=PK, due_s=int(NOW), dests=(DEST,))
