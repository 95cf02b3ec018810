"""moto answers one request at a time (crrmon_local.atomic), in-process and as a server: writes made at once
from many threads, as the functions make them, each get a stream record of their own, in order. And the
local stream reader stops with an error, not a loop, when a shard hands it a record it has read."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from crrmon_local import atomic
from crrmon_local.lambdas import StreamMapping

THREADS, WRITES = 8, 60


@pytest.fixture
def busy_switching():
    """Threads switch as often as the interpreter can, so that racing requests interleave."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def _table(ddb) -> str:
    ddb.create_table(
        TableName="t",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return ddb.describe_table(TableName="t")["Table"]["LatestStreamArn"]


def _write_at_once(ddb) -> None:
    def writes(thread: int) -> None:
        for n in range(WRITES):
            ddb.put_item(TableName="t", Item={"pk": {"S": f"{thread}-{n}"}})

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(writes, range(THREADS)))


def _read_all(streams, stream_arn: str) -> list[dict]:
    got: list[dict] = []

    class Collect:
        def offer(self, records):
            got.extend(records)

    StreamMapping(streams, stream_arn, [Collect()]).read()
    return got


def _assert_one_record_per_write_in_order(records: list[dict]) -> None:
    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert len(numbers) == THREADS * WRITES
    assert numbers == sorted(set(numbers))  # unique and growing
    assert {r["dynamodb"]["Keys"]["pk"]["S"] for r in records} == {
        f"{t}-{n}" for t in range(THREADS) for n in range(WRITES)
    }


def test_in_process_writes_from_many_threads_each_get_their_own_stream_record(busy_switching, monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        stream_arn = _table(ddb)
        _write_at_once(ddb)
        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        _assert_one_record_per_write_in_order(_read_all(streams, stream_arn))


def test_moto_server_writes_from_many_threads_each_get_their_own_stream_record(busy_switching):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        session = boto3.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1")
        endpoint = f"http://{host}:{port}"
        ddb, streams = (session.client(s, endpoint_url=endpoint) for s in ("dynamodb", "dynamodbstreams"))
        stream_arn = _table(ddb)
        _write_at_once(ddb)
        _assert_one_record_per_write_in_order(_read_all(streams, stream_arn))
    finally:
        server.stop()


def test_installing_twice_wraps_once():
    from moto.core.botocore_stubber import BotocoreStubber

    handle = BotocoreStubber.process_request
    atomic.install()
    assert BotocoreStubber.process_request is handle


class _StuckShard:
    """A stream whose shard hands back its last record at every read (what moto did when two writes got
    one sequence number)."""

    def __init__(self) -> None:
        self.reads = 0

    def describe_stream(self, StreamArn):
        return {"StreamDescription": {"Shards": [{"ShardId": "s"}]}}

    def get_shard_iterator(self, **_):
        return {"ShardIterator": "i"}

    def get_records(self, ShardIterator, Limit):
        self.reads += 1
        record = {"eventName": "INSERT", "dynamodb": {"SequenceNumber": "7", "Keys": {"pk": {"S": "a"}}}}
        return {"Records": [record], "NextShardIterator": "i"}


def test_the_stream_reader_stops_at_a_record_read_twice_instead_of_reading_it_forever():
    shard = _StuckShard()
    with pytest.raises(RuntimeError, match="sequence number 7 after 7"):
        StreamMapping(shard, "arn", []).read()
    assert shard.reads == 2
