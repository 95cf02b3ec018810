"""Archive lines, Firehose packing and digests (crrmon.publish), and timers (crrmon.timers)."""

import json

import pytest

from crrmon.metrics import Counters
from crrmon.model import Status
from crrmon.publish import Change, Publisher, PublishError, archive_line, digests, pack_records, record_id
from crrmon.timers import MAX_DELAY_S, Timer, delay_for, send_timers

ITEM = {
    "pk": "VID123#docs/a b+c.txt",
    "dest": "dst",
    "src": "src",
    "sreg": "us-east-1",
    "dreg": "us-west-2",
    "s_size": 5,
    "r_size": 5,
    "s_etag": "e",
    "r_etag": "e",
    "s_time": 1_700_000_000_000,
    "r_time": 1_700_000_002_500,
    "status": "COMPLETED",
    "verified_by": "etag",
    "latency_ms": 2500,
    "missed_rpo": False,
    "decided_at": 1_700_000_003_000,
}


def test_archive_line_has_every_field_and_decodes_the_key():
    line = archive_line(Change(ITEM, Status.COMPLETED), now_ms=0)
    assert line == {
        "record_id": record_id(ITEM, Status.COMPLETED),
        "source_bucket": "src",
        "source_region": "us-east-1",
        "destination_bucket": "dst",
        "destination_region": "us-west-2",
        "key": "docs/a b+c.txt",
        "version_id": "VID123",
        "size": 5,
        "replica_size": 5,
        "source_etag": "e",
        "replica_etag": "e",
        "status": "COMPLETED",
        "reason": None,
        "missed_rpo": False,
        "verified_by": "etag",
        "source_time": "2023-11-14T22:13:20.000Z",
        "replica_time": "2023-11-14T22:13:22.500Z",
        "latency_ms": 2500,
        "detected_at": "2023-11-14T22:13:23.000Z",
    }


def test_record_id_is_stable_per_verdict_and_differs_between_verdicts():
    assert record_id(ITEM, Status.COMPLETED) == record_id(dict(ITEM, latency_ms=1), Status.COMPLETED)
    assert record_id(ITEM, Status.COMPLETED) != record_id(ITEM, Status.EXPIRED)
    assert record_id(ITEM, Status.COMPLETED) != record_id(dict(ITEM, dest="other"), Status.COMPLETED)


def test_expired_lines_say_why_and_count_as_late():
    line = archive_line(Change({**ITEM, "status": "OVERDUE"}, Status.EXPIRED, "OVERDUE"), now_ms=1_700_000_009_000)
    assert line["status"] == "EXPIRED" and line["missed_rpo"] is True
    assert line["reason"] == "removed by TTL before a verdict" and line["detected_at"] == "2023-11-14T22:13:29.000Z"


def test_lines_are_packed_into_few_records_under_the_firehose_limit():
    lines = [{"n": i, "pad": "x" * 900} for i in range(3000)]
    records = pack_records(lines)
    assert 2 <= len(records) <= 4
    assert all(len(r) <= 1_000_000 and r.endswith(b"\n") for r in records)
    assert [json.loads(x)["n"] for r in records for x in r.splitlines()] == list(range(3000))


class FakeFirehose:
    """Records what PutRecordBatch received; fails the first N records of the first call."""

    def __init__(self, fail_first=0):
        self.calls, self.fail_first = [], fail_first

    def put_record_batch(self, DeliveryStreamName, Records):
        self.calls.append(Records)
        failing = self.fail_first if len(self.calls) == 1 else 0
        return {
            "FailedPutCount": failing,
            "RequestResponses": [
                {"ErrorCode": "ServiceUnavailable"} if i < failing else {} for i in range(len(Records))
            ],
        }


def test_failed_firehose_records_are_sent_again_and_give_up_loudly():
    firehose = FakeFirehose(fail_first=1)
    publisher = Publisher(firehose=firehose, delivery_stream="s")
    publisher.archive([{"a": 1}])
    assert len(firehose.calls) == 2

    class AlwaysFailing(FakeFirehose):
        def put_record_batch(self, DeliveryStreamName, Records):
            return {"FailedPutCount": len(Records), "RequestResponses": [{"ErrorCode": "x"}] * len(Records)}

    with pytest.raises(PublishError):
        Publisher(firehose=AlwaysFailing(), delivery_stream="s").archive([{"a": 1}])


def test_digests_are_one_per_pair_and_reason_with_ten_samples():
    changes = [
        Change({**ITEM, "pk": f"v{i}#k{i}", "reason": "DstPutObjectNotPermitted"}, Status.FAILED) for i in range(25)
    ]
    changes += [Change({**ITEM, "pk": "v#other", "reason": "DstBucketNotFound"}, Status.FAILED)]
    changes += [Change({**ITEM, "pk": "v#ok"}, Status.COMPLETED)]
    out = digests(changes)
    assert len(out) == 2
    by_reason = {json.loads(b)["reason"]: json.loads(b) for _, b in out}
    assert by_reason["DstPutObjectNotPermitted"]["count"] == 25
    assert len(by_reason["DstPutObjectNotPermitted"]["samples"]) == 10
    assert by_reason["DstBucketNotFound"]["count"] == 1
    assert all(len(s) <= 100 for s, _ in out)


def test_metrics_per_pair_and_in_total():
    counters = Counters()
    publisher = Publisher()
    publisher.publish(
        [Change(ITEM, Status.COMPLETED), Change({**ITEM, "reason": "X"}, Status.FAILED)], counters, now_ms=0
    )
    pair = (("SourceBucket", "src"), ("DestinationBucket", "dst"))
    assert counters.total("ObjectsReplicated") == 1 and counters.total("ObjectsReplicated", pair) == 1
    assert counters.values("ReplicationLatency", pair) == [2500]
    assert counters.total("ObjectsFailed", (*pair, ("Reason", "X"))) == 1 and counters.total("ObjectsFailed") == 1


def test_timer_delays_are_clamped_to_what_sqs_allows():
    assert delay_for(1000, 990.2) == 10
    assert delay_for(1000, 2000) == 0
    assert delay_for(100_000, 0) == MAX_DELAY_S
    assert Timer.parse(Timer("v#k", 5, attempt=2).body()) == Timer("v#k", 5, attempt=2)
    with pytest.raises(ValueError):
        Timer.parse('{"pk": 1}')


class FakeSqs:
    def __init__(self, fail_ids=()):
        self.batches, self.fail_ids = [], set(fail_ids)

    def send_message_batch(self, QueueUrl, Entries):
        self.batches.append(Entries)
        return {"Failed": [{"Id": e["Id"]} for e in Entries if json.loads(e["MessageBody"])["pk"] in self.fail_ids]}


def test_timers_go_ten_per_request_one_per_version_and_report_failures():
    timers = [Timer(f"v{i}#k", 100 + i) for i in range(23)] + [Timer("v0#k", 50)]
    sqs = FakeSqs(fail_ids={"v7#k"})
    failed = send_timers(sqs, "url", timers, now_s=40)
    assert [len(b) for b in sqs.batches] == [10, 10, 3]
    first = json.loads(sqs.batches[0][0]["MessageBody"])
    assert first["pk"] == "v0#k" and first["due"] == 50 and sqs.batches[0][0]["DelaySeconds"] == 10
    assert failed == [Timer("v7#k", 107)]
