"""Lambda event source mappings, emulated: the real handlers fed from moto's queues and stream.

moto runs Lambda code only in Docker, and has no event source mappings. This module does what
Lambda's pollers do: receive SQS batches and delete what the handler did not report failed; read the
table's stream shard by shard, apply the mapping's filter criteria, retry from the first failed
record, and send a record that keeps failing to the on-failure destination.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
Handler = Callable[[dict, Any], Any]


def load_handler(function: str, root: Path = ROOT) -> Handler:
    """Import functions/<function>/app.py under its own module name (all three files are app.py)."""
    name = f"crrmon_function_{function}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, root / "functions" / function / "app.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name].lambda_handler


@dataclass
class FakeContext:
    """The parts of Lambda's context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


RUNNING: dict[str, str | None] = {"function": None}  # the function being invoked, for call recorders


def invoke(handler: Handler, event: dict, function_name: str) -> Any:
    """Call a handler as Lambda would, noting which function runs (its worker threads included)."""
    RUNNING["function"] = function_name
    os.environ["AWS_LAMBDA_FUNCTION_NAME"] = function_name  # as Lambda sets it
    try:
        return handler(event, FakeContext(function_name))
    finally:
        RUNNING["function"] = None
        os.environ.pop("AWS_LAMBDA_FUNCTION_NAME", None)


def matches(pattern: Any, value: Any) -> bool:
    """Lambda filter criteria (the subset the template uses): nested objects, lists of allowed values."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(matches(p, value.get(k)) for k, p in pattern.items())
    if isinstance(pattern, list):
        return any(matches(p, value) for p in pattern) if pattern else value is None
    return pattern == value


def passes(filters: list[dict], record: dict) -> bool:
    """A record passes when any filter's pattern matches (none given: every record passes)."""
    return not filters or any(matches(f, record) for f in filters)


@dataclass
class SqsMapping:
    """One SQS event source mapping with ReportBatchItemFailures."""

    sqs: Any
    queue_url: str
    handler: Handler
    function_name: str
    batch_size: int = 10
    region: str = "us-east-1"
    invocations: int = 0
    _arn: str | None = None

    def poll(self) -> int:
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(self.batch_size, 10),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=30,
        )
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        if self._arn is None:
            self._arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
        arn = self._arn
        records = [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {
                    k: {"stringValue": v.get("StringValue"), "dataType": v["DataType"]}
                    for k, v in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": self.region,
            }
            for m in messages
        ]
        self.invocations += 1
        try:
            response = invoke(self.handler, {"Records": records}, self.function_name) or {}
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:
            failed = {r["messageId"] for r in records}
        done = []
        for record in records:
            if record["messageId"] in failed:  # visible again at once; the queue's redrive policy applies
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
                )
            else:
                done.append({"Id": str(len(done)), "ReceiptHandle": record["receiptHandle"]})
        if done:  # what Lambda does with the messages of a batch that succeeded: one DeleteMessageBatch
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=done)
        return len(records)


@dataclass
class StreamConsumer:
    """One DynamoDB stream event source mapping: filter, batch, bisect-free retry, on-failure queue."""

    handler: Handler
    function_name: str
    filters: list[dict] = field(default_factory=list)
    batch_size: int = 100
    max_retries: int = 10
    on_failure: Callable[[list[dict]], None] | None = None
    pending: list[dict] = field(default_factory=list)
    attempts: int = 0
    invocations: int = 0

    def offer(self, records: list[dict]) -> None:
        self.pending.extend(r for r in records if passes(self.filters, r))

    def poll(self) -> int:
        if not self.pending:
            return 0
        batch = self.pending[: self.batch_size]
        self.invocations += 1
        try:
            response = invoke(self.handler, {"Records": batch}, self.function_name) or {}
            failures = [f["itemIdentifier"] for f in response.get("batchItemFailures", [])]
        except Exception:
            failures = [batch[0]["dynamodb"]["SequenceNumber"]]
        if not failures:
            del self.pending[: len(batch)]
            self.attempts = 0
            return len(batch)
        first = next(i for i, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] in failures)
        del self.pending[:first]  # what came before the failure is done
        self.attempts += 1
        if self.attempts > self.max_retries:  # what bisecting ends with: the one record that fails
            failed = self.pending.pop(0)
            self.attempts = 0
            if self.on_failure:
                self.on_failure([failed])
        return len(batch)


@dataclass
class StreamMapping:
    """Reads every shard of a table's stream and offers new records to each consumer."""

    streams: Any
    stream_arn: str
    consumers: list[StreamConsumer]
    region: str = "us-east-1"
    ttl_removed: set[tuple[str, str]] = field(default_factory=set)  # keys the emulated TTL deleted
    describe_every: float = 0.0  # seconds between DescribeStream calls (0: before every read)
    _iterators: dict[str, str | None] = field(default_factory=dict)
    _shards: list[dict] = field(default_factory=list)
    _described_at: float = float("-inf")
    _last_read: dict[str, int] = field(default_factory=dict)  # per shard, the last sequence number read

    def read(self) -> int:
        if time.monotonic() - self._described_at >= self.describe_every:
            self._shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
            self._described_at = time.monotonic()
        shards = self._shards
        new = []
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            iterator = self._iterators[shard_id]
            while iterator:
                answer = self.streams.get_records(ShardIterator=iterator, Limit=1000)
                records = answer.get("Records", [])
                iterator = answer.get("NextShardIterator")
                self._in_order(shard_id, records)
                new.extend(records)
                if not records:
                    break
            self._iterators[shard_id] = iterator
        for record in new:
            self._lambda_shape(record)
        for consumer in self.consumers:
            consumer.offer(new)
        return len(new)

    def _in_order(self, shard_id: str, records: list[dict]) -> None:
        """Sequence numbers only grow along a shard; one read twice means the emulator lost its order
        (moto handling two writes at once, see atomic.py), and following it would never end."""
        for record in records:
            number = int(record["dynamodb"]["SequenceNumber"])
            if number <= self._last_read.get(shard_id, -1):
                raise RuntimeError(
                    f"stream shard {shard_id} returned sequence number {number} after "
                    f"{self._last_read[shard_id]}: its records are out of order"
                )
            self._last_read[shard_id] = number

    def _lambda_shape(self, record: dict) -> None:
        record["eventSourceARN"] = self.stream_arn
        record["eventSource"] = "aws:dynamodb"
        record["awsRegion"] = self.region
        keys = record["dynamodb"].get("Keys", {})
        key = (keys.get("pk", {}).get("S"), keys.get("dest", {}).get("S"))
        if record.get("eventName") == "REMOVE" and key in self.ttl_removed:
            # What AWS writes on a TTL delete (moto writes no userIdentity at all).
            record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
            self.ttl_removed.discard(key)


def failure_sink(sqs, queue_url: str, function_name: str) -> Callable[[list[dict]], None]:
    """What Lambda sends to a stream mapping's on-failure destination: where the batch was, not the data."""

    def send(records: list[dict]) -> None:
        body = {
            "requestContext": {
                "functionArn": FakeContext(function_name).invoked_function_arn,
                "condition": "RetryAttemptsExhausted",
            },
            "DDBStreamBatchInfo": {
                "batchSize": len(records),
                "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "streamArn": records[0].get("eventSourceARN"),
            },
        }
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))

    return send


def pump(sqs_mappings: list[SqsMapping], stream: StreamMapping | None, *, max_rounds: int = 1000) -> int:
    """Poll every mapping until none has anything to do. Returns how many records were handled."""
    handled = 0
    for _ in range(max_rounds):
        work = sum(m.poll() for m in sqs_mappings)
        if stream is not None:
            work += stream.read()
            work += sum(c.poll() for c in stream.consumers)
        handled += work
        if not work:
            return handled
    raise RuntimeError(f"still busy after {max_rounds} rounds")


@dataclass
class Mappings:
    """Every event source mapping the template declares, wired to the real handlers."""

    queues: list[SqsMapping]
    stream: StreamMapping
    schedules: list[Callable[[], Any]]

    def pump(self, *, max_rounds: int = 1000) -> int:
        return pump(self.queues, self.stream, max_rounds=max_rounds)

    def run_schedules(self) -> list[Any]:
        return [run() for run in self.schedules]


def _logical_id(reference: Any) -> str:
    """`!GetAtt X.Arn` / `!GetAtt X.StreamArn` / `!Ref X` -> "X"."""
    if isinstance(reference, dict) and "Fn::GetAtt" in reference:
        return reference["Fn::GetAtt"][0]
    if isinstance(reference, dict) and "Ref" in reference:
        return reference["Ref"]
    raise ValueError(f"cannot tell which resource {reference!r} names")


def build_mappings(
    template: dict,
    *,
    sqs,
    streams,
    queue_urls: dict[str, str],
    stream_arn: str,
    failure_queue_url: str,
    region: str = "us-east-1",
    root: Path = ROOT,
    functions: tuple[str, ...] | None = None,
    handler_for: Callable[[str, str], Handler] | None = None,
) -> Mappings:
    """Read each function's Events from the template: SQS batch sizes, stream filters, schedules.

    `queue_urls` maps the template's queue logical IDs to the URLs of the provisioned queues;
    `functions` names the functions that exist (a function's Condition may leave it out), None: all.
    `handler_for(logical ID, code folder name)` gives each function's handler; None: the source's
    `functions/<name>/app.py`, imported into this process.
    """
    queues, consumers, schedules = [], [], []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        if functions is not None and logical_id not in functions:
            continue
        props = resource["Properties"]
        function = Path(props["CodeUri"]).name
        handler = handler_for(logical_id, function) if handler_for else load_handler(function, root)
        for event in props.get("Events", {}).values():
            kind, ep = event["Type"], event.get("Properties", {})
            if kind == "SQS":
                url = queue_urls[_logical_id(ep["Queue"])]
                queues.append(SqsMapping(sqs, url, handler, logical_id, ep.get("BatchSize", 10), region))
            elif kind == "DynamoDB":
                filters = [json.loads(f["Pattern"]) for f in ep.get("FilterCriteria", {}).get("Filters", [])]
                on_failure = None
                if ep.get("DestinationConfig", {}).get("OnFailure"):
                    on_failure = failure_sink(sqs, failure_queue_url, logical_id)
                consumers.append(
                    StreamConsumer(
                        handler,
                        logical_id,
                        filters=filters,
                        batch_size=ep.get("BatchSize", 100),
                        max_retries=ep.get("MaximumRetryAttempts", 10),
                        on_failure=on_failure,
                    )
                )
            elif kind == "Schedule":
                scheduled_event = {
                    "version": "0",
                    "id": str(uuid.uuid4()),
                    "detail-type": "Scheduled Event",
                    "source": "aws.events",
                    "region": region,
                    "resources": [f"arn:aws:events:{region}:123456789012:rule/{logical_id}-schedule"],
                    "detail": {},
                }
                schedules.append(lambda h=handler, e=scheduled_event, n=logical_id: invoke(h, dict(e), n))
    return Mappings(queues, StreamMapping(streams, stream_arn, consumers, region), schedules)


def mappings_for_stack(template_path: Path, stack, session, *, region: str = "us-east-1") -> Mappings:
    """The template's event source mappings wired to a stack made by `crrmon_local.provision`."""
    from crrmon_local.cfn import load_template

    return build_mappings(
        load_template(template_path),
        sqs=session.client("sqs", region_name=region),
        streams=session.client("dynamodbstreams", region_name=region),
        queue_urls={"EventsQueue": stack.events_queue_url, "TimerQueue": stack.timer_queue_url},
        stream_arn=stack.stream_arn,
        failure_queue_url=stack.stream_failure_queue_url,
        region=region,
        functions=stack.functions,
    )
