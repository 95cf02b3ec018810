"""The archive path of crrmon.publish at its edges: how lines are packed and batched against Firehose's
limits (shrunk here so that a few bytes reach them), what each refusal says, when retrying stops, and
archive objects read back in every order of their parts. Throttling is played by the FakeFirehose of
test_publish.py (moto never throttles)."""

from __future__ import annotations

import gzip
import json

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from crrmon import publish
from crrmon.metrics import Counters
from crrmon.model import Status
from crrmon.publish import Change, Publisher, PublishError, archive_line, pack_records, read_archive, record_id
from tests.unit.test_publish import ITEM, FakeClock, FakeFirehose, publisher_for, throttled


def sent_sizes(firehose: FakeFirehose) -> list[list[int]]:
    return [[len(r) for r in call] for call in firehose.calls]


def archive_of_sizes(monkeypatch, sizes: list[int], **limits) -> list[list[int]]:
    """Archive records of these sizes (packing left out) with Firehose's batch limits set to `limits`."""
    for name, value in limits.items():
        monkeypatch.setattr(publish, name, value)
    monkeypatch.setattr(publish, "pack_records", lambda lines: [b"x" * n for n in lines])
    firehose, clock = FakeFirehose(), FakeClock()
    publisher_for(firehose, clock).archive(sizes, Counters())
    return sent_sizes(firehose)


def test_a_batch_takes_records_up_to_its_byte_limit_exactly(monkeypatch):
    assert archive_of_sizes(monkeypatch, [100, 100, 50], FIREHOSE_BATCH_BYTES=250) == [[100, 100, 50]]
    assert archive_of_sizes(monkeypatch, [100, 100, 100], FIREHOSE_BATCH_BYTES=250) == [[100, 100], [100]]


def test_a_new_batch_counts_its_bytes_from_nothing(monkeypatch):
    sizes = [100, 100, 150, 100]
    assert archive_of_sizes(monkeypatch, sizes, FIREHOSE_BATCH_BYTES=250) == [[100, 100], [150, 100]]


def test_a_batch_takes_up_to_its_record_limit(monkeypatch):
    assert archive_of_sizes(monkeypatch, [1] * 5, FIREHOSE_BATCH_RECORDS=2) == [[1, 1], [1, 1], [1]]


def test_a_record_takes_lines_up_to_its_byte_limit_exactly(monkeypatch):
    line = {"k": "ü"}  # 11 bytes a line with its newline, the ü as UTF-8
    encoded = b'{"k":"\xc3\xbc"}\n'
    monkeypatch.setattr(publish, "FIREHOSE_RECORD_BYTES", 2 * len(encoded))
    records = pack_records([line] * 3)
    assert [gzip.decompress(r) for r in records] == [encoded * 2, encoded]
    assert all(r[4:8] == b"\x00\x00\x00\x00" for r in records)  # mtime 0: the same lines make the same bytes


def test_a_record_id_is_32_hex_digits():
    assert len(record_id(ITEM, Status.COMPLETED)) == 32
    int(record_id(ITEM, Status.COMPLETED), 16)


def test_a_lines_reason_and_lateness_are_the_items():
    line = archive_line(Change({**ITEM, "reason": "size differs", "missed_rpo": True}, Status.MISMATCH), now_ms=0)
    assert (line["reason"], line["missed_rpo"]) == ("size differs", True)


def test_the_lines_go_to_firehose_with_their_detection_time():
    firehose = FakeFirehose()
    item = {**ITEM, "decided_at": None}
    Publisher(firehose=firehose, delivery_stream="s").publish(
        [Change(item, Status.COMPLETED), Change(item, Status.OVERDUE)], Counters(), now_ms=1_700_000_009_000
    )
    ((record,),) = firehose.calls
    assert [line["detected_at"] for line in read_archive(record)] == ["2023-11-14T22:13:29.000Z"]  # finals only


def test_a_call_refused_without_a_code_says_so():
    firehose, clock = FakeFirehose(ClientError({}, "PutRecordBatch")), FakeClock()
    with pytest.raises(PublishError) as raised:
        publisher_for(firehose, clock).archive([{"a": 1}], Counters())
    assert str(raised.value) == "Firehose refused PutRecordBatch: "


def test_a_server_error_of_any_code_is_sent_again():
    error = ClientError({"Error": {"Code": "Odd"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "PutRecordBatch")
    firehose, clock = FakeFirehose(error), FakeClock()
    publisher_for(firehose, clock).archive([{"a": 1}], Counters())
    assert len(firehose.calls) == 2


def test_a_client_error_of_an_unknown_code_is_final():
    error = ClientError({"Error": {"Code": "Odd"}, "ResponseMetadata": {"HTTPStatusCode": 499}}, "PutRecordBatch")
    firehose, clock = FakeFirehose(error), FakeClock()
    with pytest.raises(PublishError, match=r"^Firehose refused PutRecordBatch: Odd$"):
        publisher_for(firehose, clock).archive([{"a": 1}], Counters())
    assert len(firehose.calls) == 1


def test_records_refused_for_good_are_named():
    firehose, clock = FakeFirehose(throttled(["KMS.DisabledException", "AccessDenied", None])), FakeClock()
    with pytest.raises(PublishError) as raised:
        publisher_for(firehose, clock).archive([{"a": 1}], Counters())
    assert str(raised.value) == "Firehose refused records: AccessDenied, KMS.DisabledException"


def test_retrying_stops_at_the_budget_and_says_how_it_went():
    gone = EndpointConnectionError(endpoint_url="https://firehose.example")
    firehose, clock = FakeFirehose(gone, gone, gone), FakeClock()
    # jitter 1: pauses 0.1 then 0.2; a pause that ends exactly at the budget is still taken.
    publisher = publisher_for(firehose, clock, retry_seconds=0.1)
    with pytest.raises(PublishError) as raised:
        publisher.archive([{"a": 1}], Counters())
    assert str(raised.value) == "Firehose still refused 1 records (EndpointConnectionError) after 2 attempts"
    assert clock.pauses == [0.1] and len(firehose.calls) == 2


def test_archive_objects_read_back_in_every_order_of_their_parts():
    a, b, c = ({"record_id": x} for x in "abc")
    plain_a, plain_c = (json.dumps(x).encode() + b"\n" for x in (a, c))
    (member_b,) = pack_records([b])
    assert read_archive(plain_a + member_b + plain_c + member_b) == [a, b, c, b]
    assert read_archive(member_b + plain_a) == [b, a]
    with pytest.raises(ValueError, match=r"^archive object ends inside a gzip member$"):
        read_archive(member_b[:-4])


def test_throttling_of_any_batch_is_counted_in_the_publishers_counters(monkeypatch):
    monkeypatch.setattr(publish, "FIREHOSE_BATCH_RECORDS", 1)
    monkeypatch.setattr(publish, "pack_records", lambda lines: [b"x"] * len(lines))
    unavailable = throttled(["ServiceUnavailableException"])
    firehose, clock, counters = FakeFirehose(unavailable, None, unavailable), FakeClock(), Counters()
    publisher_for(firehose, clock).publish(
        [Change(ITEM, Status.COMPLETED), Change(ITEM, Status.FAILED)], counters, now_ms=0
    )
    assert len(firehose.calls) == 4 and clock.pauses == [0.1, 0.1]  # each batch its own backoff
    assert counters.total("ArchiveThrottled") == 2


def test_a_publishers_settings_reach_its_archive_lines_and_metrics():
    """RpoSeconds is archived as the RPO of an item without a class; with a policy, metrics also go per class."""
    change = Change({**ITEM, "latency_ms": 10}, Status.COMPLETED)
    firehose, clock = FakeFirehose(), FakeClock()
    plain, counters = Counters(), Counters()
    publisher_for(firehose, clock, default_rpo_s=900).publish([change], plain, now_ms=0)
    [line] = [json.loads(raw) for raw in gzip.decompress(firehose.calls[0][0]).splitlines()]
    assert (line["rpo_class"], line["rpo_seconds"]) == ("default", 900)
    publisher_for(FakeFirehose(), clock, rpo_classes=True).publish([change], counters, now_ms=0)
    by_class = (("RpoClass", "default"),)
    assert (plain.total("ReplicationLatency", by_class), counters.total("ReplicationLatency", by_class)) == (0, 10)


def test_plain_lines_followed_by_gzip_members_are_all_read():
    """An archive object written during a stack update: Firehose-compressed plain lines were decompressed
    into text, gzip members of the monitor's own packing follow."""
    plain = b'{"n": 1}\n{"n": 2}\n'
    packed = b"".join(pack_records([{"n": 3}]))
    assert [line["n"] for line in read_archive(plain + packed + plain)] == [1, 2, 3, 1, 2]


@pytest.mark.parametrize("line, verdict", [({"status": "COMPLETED"}, True), ({"kind": "daily-proof"}, False)])
def test_daily_proofs_are_no_verdicts(line, verdict):
    assert publish.is_verdict(line) is verdict
