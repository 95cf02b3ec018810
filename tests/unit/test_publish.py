"""Archive lines, Firehose packing and digests (crrmon.publish), and timers (crrmon.timers).

Firehose's happy path runs on moto; moto never throttles, so throttling is played by small fakes
(FakeFirehose) and botocore's Stubber, which answer as PutRecordBatch does when a stream's quota is
exceeded: per record (FailedPutCount, ErrorCode ServiceUnavailableException) or for the whole call.
"""

import gzip
import json
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber
from moto import mock_aws

from crrmon.metrics import Counters
from crrmon.model import Status
from crrmon.publish import (
    RETRY_SECONDS,
    Change,
    Publisher,
    PublishError,
    archive_line,
    count_metrics,
    digests,
    pack_records,
    read_archive,
    record_id,
)
from crrmon.timers import MAX_DELAY_S, Timer, delay_for, send_timers
from crrmon_local.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]

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
        "size_band": "<1MB",
        "replica_size": 5,
        "source_etag": "e",
        "replica_etag": "e",
        "status": "COMPLETED",
        "reason": None,
        "missed_rpo": False,
        "rpo_class": "default",
        "rpo_seconds": None,
        "verified_by": "etag",
        "source_time": "2023-11-14T22:13:20.000Z",
        "replica_time": "2023-11-14T22:13:22.500Z",
        "latency_ms": 2500,
        "detected_at": "2023-11-14T22:13:23.000Z",
    }


def test_archive_lines_carry_the_rpo_class_the_deadline_was_computed_with():
    classed = {**ITEM, "rpo_c": "invoices", "rpo_s": 300, "missed_rpo": True}
    line = archive_line(Change(classed, Status.COMPLETED), now_ms=0, default_rpo_s=900)
    assert (line["rpo_class"], line["rpo_seconds"], line["missed_rpo"]) == ("invoices", 300, True)
    # An item of no class (written without a policy) is in the default class, with RpoSeconds.
    line = archive_line(Change(ITEM, Status.COMPLETED), now_ms=0, default_rpo_s=900)
    assert (line["rpo_class"], line["rpo_seconds"]) == ("default", 900)


@pytest.mark.parametrize(
    ("sizes", "band"),
    [({"s_size": 16 * 1024**2}, "16-128MB"), ({"s_size": None, "r_size": 1024**3}, "1-5GB"), ({}, "unknown")],
)
def test_archive_lines_carry_the_size_band_of_the_version(sizes, band):
    item = {k: v for k, v in ITEM.items() if k not in ("s_size", "r_size")}
    assert archive_line(Change({**item, **sizes}, Status.COMPLETED), now_ms=0)["size_band"] == band


def test_the_athena_table_has_a_column_for_every_field_of_the_line():
    table = load_template(ROOT / "template.yaml")["Resources"]["ArchiveTable"]["Properties"]["TableInput"]
    columns = [c["Name"] for c in table["StorageDescriptor"]["Columns"]]
    verdict = list(archive_line(Change(ITEM, Status.COMPLETED), now_ms=0))
    assert columns[: len(verdict)] == verdict  # the daily proof's own fields follow (tests/unit/test_proof.py)


def test_latency_and_lateness_are_counted_per_rpo_class_only_under_a_policy():
    late = {**ITEM, "rpo_c": "invoices", "rpo_s": 300, "missed_rpo": True}
    overdue = {**ITEM, "status": "OVERDUE"}  # no class of its own: the default class
    invoices, default = (("RpoClass", "invoices"),), (("RpoClass", "default"),)
    counters = Counters()
    count_metrics(Change(late, Status.COMPLETED), counters, by_class=True)
    count_metrics(Change(overdue, Status.OVERDUE, None), counters, by_class=True)
    assert counters.values("ReplicationLatency", invoices) == [2500]
    assert counters.total("ObjectsReplicatedLate", invoices) == 1
    assert counters.total("ObjectsOverdue", default) == 1 and counters.total("ObjectsOverdue", invoices) == 0
    assert counters.total("ObjectsReplicated", invoices) == 0  # counts of every verdict stay per pair
    assert counters.total("ObjectsReplicatedLate") == 1  # and the service-wide total is counted once
    plain = Counters()
    count_metrics(Change(late, Status.COMPLETED), plain)
    assert plain.values("ReplicationLatency", invoices) == [] and plain.values("ReplicationLatency") == [2500]


def test_digests_count_their_objects_per_rpo_class_under_a_policy():
    overdue = {**ITEM, "status": "OVERDUE", "rpo_c": "invoices", "rpo_s": 300}
    changes = [Change({**overdue, "pk": f"V{i}#invoices/{i}"}, Status.OVERDUE) for i in range(2)] + [
        Change({**overdue, "pk": "V9#x", "rpo_c": "default", "rpo_s": 900}, Status.OVERDUE)
    ]
    [found] = digests(changes)
    assert json.loads(found.body_json())["rpo_classes"] == {"default": 1, "invoices": 2}
    [found] = digests([Change({**ITEM, "status": "OVERDUE"}, Status.OVERDUE)])
    assert "rpo_classes" not in json.loads(found.body_json())  # no policy: the digest is as it was


def test_record_id_is_stable_per_verdict_and_differs_between_verdicts():
    assert record_id(ITEM, Status.COMPLETED) == record_id(dict(ITEM, latency_ms=1), Status.COMPLETED)
    assert record_id(ITEM, Status.COMPLETED) != record_id(ITEM, Status.EXPIRED)
    assert record_id(ITEM, Status.COMPLETED) != record_id(dict(ITEM, dest="other"), Status.COMPLETED)


def test_expired_lines_say_why_and_count_as_late():
    line = archive_line(Change({**ITEM, "status": "OVERDUE"}, Status.EXPIRED, "OVERDUE"), now_ms=1_700_000_009_000)
    assert line["status"] == "EXPIRED" and line["missed_rpo"] is True
    assert line["reason"] == "removed by TTL before a verdict" and line["detected_at"] == "2023-11-14T22:13:29.000Z"


def test_lines_are_packed_into_few_gzip_records_under_the_firehose_limit():
    lines = [{"n": i, "pad": f"{i:x}" * 300} for i in range(3000)]
    records = pack_records(lines)
    assert 2 <= len(records) <= 4
    assert all(len(r) <= 1_024_000 and r[:2] == b"\x1f\x8b" for r in records)
    assert all(len(gzip.decompress(r)) <= 1_000_000 and gzip.decompress(r).endswith(b"\n") for r in records)
    # What Firehose writes to S3: the records one after the other, a valid gzip file of several members.
    assert [json.loads(x)["n"] for x in gzip.decompress(b"".join(records)).splitlines()] == list(range(3000))
    assert [x["n"] for x in read_archive(b"".join(records))] == list(range(3000))


def test_a_realistic_batch_is_several_times_smaller_on_the_wire():
    lines = [
        archive_line(
            Change(
                {**ITEM, "pk": f"{i:032x}#logs/2026/12/07/part-{i:05d}.json", "s_etag": f"{i * 7919:032x}"},
                Status.COMPLETED,
            ),
            now_ms=0,
        )
        for i in range(100)
    ]
    [record] = pack_records(lines)
    plain = sum(len(json.dumps(x, separators=(",", ":"))) + 1 for x in lines)
    assert len(record) * 3 < plain  # ~6x on the demo's lines (docs/internals.md)


def test_archive_objects_of_every_form_read_back_whole():
    first, second = [{"record_id": "a", "key": "k\u001f"}], [{"record_id": "b", "key": "ü"}]
    members = pack_records(first) + pack_records(second)
    plain = b"".join((json.dumps(x, ensure_ascii=False) + "\n").encode() for x in first + second)
    assert read_archive(b"".join(members)) == first + second  # one member per Firehose record
    assert read_archive(gzip.compress(plain)) == first + second  # Firehose compressing plain records
    assert read_archive(plain) == first + second  # no compression at all
    # Plain lines and members in one object, or Firehose compressing members: records sent while a
    # stack update changed where compression happens.
    assert read_archive(plain + members[1]) == first + second + second
    assert read_archive(gzip.compress(b"".join(members))) == first + second
    with pytest.raises(ValueError):
        read_archive(members[0][:-4])


def test_the_archive_reaches_a_moto_delivery_stream_as_gzip():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="archive")
        firehose = boto3.client("firehose", region_name="us-east-1")
        firehose.create_delivery_stream(
            DeliveryStreamName="s",
            ExtendedS3DestinationConfiguration={
                "BucketARN": "arn:aws:s3:::archive",
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "CompressionFormat": "UNCOMPRESSED",
            },
        )
        counters = Counters()
        Publisher(firehose=firehose, delivery_stream="s").publish(
            [Change(ITEM, Status.COMPLETED), Change({**ITEM, "dest": "dst2"}, Status.COMPLETED)], counters, now_ms=0
        )
        [entry] = s3.list_objects_v2(Bucket="archive")["Contents"]
        data = s3.get_object(Bucket="archive", Key=entry["Key"])["Body"].read()
    assert data[:2] == b"\x1f\x8b"
    assert [x["destination_bucket"] for x in read_archive(data)] == ["dst", "dst2"]
    assert counters.total("ArchiveThrottled") == 0


class FakeClock:
    """Backoff pauses move this clock instead of sleeping; `pauses` keeps what was asked for."""

    def __init__(self):
        self.t, self.pauses = 0.0, []

    def __call__(self):
        return self.t

    def sleep(self, seconds):
        self.pauses.append(seconds)
        self.t += seconds


def publisher_for(firehose, clock, **kw):
    return Publisher(firehose=firehose, delivery_stream="s", clock=clock, sleep=clock.sleep, jitter=lambda: 1.0, **kw)


def throttled(codes):
    """A PutRecordBatch answer refusing the records whose code is not None."""
    return {
        "FailedPutCount": sum(1 for c in codes if c),
        "Encrypted": False,
        "RequestResponses": [
            {"ErrorCode": c, "ErrorMessage": "Slow down."} if c else {"RecordId": f"id{i}"} for i, c in enumerate(codes)
        ],
    }


class FakeFirehose:
    """Answers PutRecordBatch from a script: per call, an answer (dict), an exception, or None for all in."""

    def __init__(self, *script):
        self.calls, self.script = [], list(script)

    def put_record_batch(self, DeliveryStreamName, Records):
        self.calls.append([r["Data"] for r in Records])
        step = self.script.pop(0) if self.script else None
        if isinstance(step, Exception):
            raise step
        return step or {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "x"}] * len(Records)}


def many_records(n):
    """Lines that pack into n Firehose records (each record near 1,000,000 bytes before gzip)."""
    return [{"n": i, "pad": f"{i:07d}" * 140_000} for i in range(n)]


def test_records_refused_for_throughput_are_sent_again_alone_after_a_growing_pause():
    unavailable = "ServiceUnavailableException"
    firehose = FakeFirehose(throttled([unavailable, None, unavailable]), throttled([None, unavailable]))
    clock, counters = FakeClock(), Counters()
    publisher_for(firehose, clock).archive(many_records(3), counters)
    assert [len(c) for c in firehose.calls] == [3, 2, 1]
    assert firehose.calls[1] == [firehose.calls[0][0], firehose.calls[0][2]] and firehose.calls[2] == [
        firehose.calls[0][2]
    ]
    assert clock.pauses == [0.1, 0.2]  # exponential, here with the jitter at its top
    assert counters.total("ArchiveThrottled") == 3


def test_a_whole_call_refused_or_unanswered_is_sent_again():
    busy = ClientError({"Error": {"Code": "ServiceUnavailableException", "Message": "Slow down."}}, "PutRecordBatch")
    internal = ClientError(
        {"Error": {"Code": "InternalFailure"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "PutRecordBatch"
    )
    gone = EndpointConnectionError(endpoint_url="https://firehose.example")
    firehose = FakeFirehose(busy, internal, gone)
    clock, counters = FakeClock(), Counters()
    publisher_for(firehose, clock).archive([{"a": 1}], counters)
    assert len(firehose.calls) == 4 and len({tuple(c) for c in firehose.calls}) == 1
    assert clock.pauses == [0.1, 0.2, 0.4]
    assert counters.total("ArchiveThrottled") == 1  # only the refusal for throughput counts as throttling


def test_throttling_past_the_budget_hands_the_batch_back():
    class Saturated(FakeFirehose):
        def put_record_batch(self, DeliveryStreamName, Records):
            self.calls.append(Records)
            return throttled(["ServiceUnavailableException"] * len(Records))

    firehose, clock, counters = Saturated(), FakeClock(), Counters()
    with pytest.raises(PublishError, match="ServiceUnavailableException"):
        publisher_for(firehose, clock).archive([{"a": 1}], counters)
    assert clock.t <= RETRY_SECONDS and max(clock.pauses) == 4.0  # the pause is capped
    assert len(firehose.calls) == counters.total("ArchiveThrottled") > 5


def test_refusals_that_waiting_cannot_cure_fail_at_once():
    missing = ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "PutRecordBatch")
    for step in (missing, throttled(["KMS.DisabledException"])):
        firehose, clock = FakeFirehose(step), FakeClock()
        with pytest.raises(PublishError):
            publisher_for(firehose, clock).archive([{"a": 1}], Counters())
        assert len(firehose.calls) == 1 and clock.pauses == []


def test_botocore_stubbed_throttling_then_success():
    """The same through botocore's own client and parser (Stubber): a per-record refusal, then all in."""
    client = boto3.client("firehose", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    stub.add_response("put_record_batch", throttled(["ServiceUnavailableException"]))
    stub.add_client_error("put_record_batch", "ServiceUnavailableException", http_status_code=500)
    stub.add_response("put_record_batch", throttled([None]))
    clock, counters = FakeClock(), Counters()
    with stub:
        publisher_for(client, clock).archive([{"a": 1}], counters)
        stub.assert_no_pending_responses()
    assert counters.total("ArchiveThrottled") == 2 and len(clock.pauses) == 2


def test_a_batch_of_changes_that_cannot_be_archived_raises_for_the_caller_to_retry():
    class Refusing(FakeFirehose):
        def put_record_batch(self, DeliveryStreamName, Records):
            raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "PutRecordBatch")

    with pytest.raises(PublishError):
        Publisher(firehose=Refusing(), delivery_stream="s").publish(
            [Change(ITEM, Status.COMPLETED)], Counters(), now_ms=0
        )


def test_digests_are_one_per_pair_and_reason_with_ten_samples():
    changes = [
        Change({**ITEM, "pk": f"v{i}#k{i}", "reason": "DstPutObjectNotPermitted"}, Status.FAILED) for i in range(25)
    ]
    changes += [Change({**ITEM, "pk": "v#other", "reason": "DstBucketNotFound"}, Status.FAILED)]
    changes += [Change({**ITEM, "pk": "v#ok"}, Status.COMPLETED)]
    out = digests(changes)
    assert len(out) == 2
    by_reason = {d.reason: json.loads(d.body_json()) for d in out}
    assert by_reason["DstPutObjectNotPermitted"]["count"] == 25
    assert len(by_reason["DstPutObjectNotPermitted"]["samples"]) == 10
    assert by_reason["DstBucketNotFound"]["count"] == 1
    assert all(len(d.subject) <= 100 for d in out)


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
