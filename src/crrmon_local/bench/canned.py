"""AWS answered locally at botocore's HTTP layer: every request is built, signed and serialised as
for real, then a `before-send` hook returns a canned HTTP response instead of opening a connection.

So CPU figures include botocore's request serialisation and response parsing, and an optional sleep
per call stands for the network round trip.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

REGION = "us-east-1"
ACCOUNT = "123456789012"
Answer = tuple[int, dict[str, str], bytes]  # status, headers, body
Responder = Callable[[Any], Answer]

ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "crr-monitor",
    "POWERTOOLS_METRICS_NAMESPACE": "CRRMonitor",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "TABLE_NAME": "bench-ReplicationTable",
    "OVERDUE_INDEX_NAME": "Overdue",
    "TIMER_QUEUE_URL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/bench-TimerQueue",
    "EVENTS_QUEUE_URL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/bench-EventsQueue",
    "EVENTS_DLQ_URL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/bench-EventsDeadLetterQueue",
    "DELIVERY_STREAM_NAME": "bench-archive",
    "ALERT_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:bench-AlertTopic",
    "SOURCE_BUCKETS": "bench-src",
    "DESTINATION_BUCKETS": "bench-dst",
    "TOPOLOGY_PARAMETER_NAME": "/bench/topology",
    "RPO_SECONDS": "900",
    "GIVE_UP_SECONDS": "86400",
    "HEAD_REQUESTS_PER_SECOND": "20",
}
TOPOLOGY = {
    "sources": {
        "bench-src": {
            "region": REGION,
            "rules": [
                {
                    "ID": "to-west",
                    "Priority": 1,
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Destination": {"Bucket": "arn:aws:s3:::bench-dst"},
                    "DeleteMarkerReplication": {"Status": "Enabled"},
                }
            ],
        }
    },
    "regions": {"bench-dst": "us-west-2"},
}


def _json(payload: dict, version: str = "1.0") -> Answer:
    return 200, {"Content-Type": f"application/x-amz-json-{version}"}, json.dumps(payload).encode()


def _sns_publish(_request) -> Answer:
    body = (
        '<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult>'
        "<MessageId>00000000-0000-0000-0000-000000000000</MessageId></PublishResult>"
        "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishResponse>"
    )
    return 200, {"Content-Type": "text/xml"}, body.encode()


def _head_object(_request) -> Answer:
    headers = {
        "Content-Length": "13",
        "ETag": '"5a42489ab9c5a7a8a7a6a5a4a3a2a1a0"',
        "x-amz-version-id": "v",
        "x-amz-replication-status": "PENDING",
        "x-amz-server-side-encryption": "AES256",
        "x-amz-checksum-crc64nvme": "AAAAAAAAAAA=",
        "x-amz-checksum-type": "FULL_OBJECT",
    }
    return 200, headers, b""


def _firehose(request) -> Answer:
    count = len(json.loads(request.body)["Records"])
    return _json({"FailedPutCount": 0, "Encrypted": False, "RequestResponses": [{"RecordId": "r"}] * count}, "1.1")


def _sqs_batch(request) -> Answer:
    entries = json.loads(request.body)["Entries"]
    ok = [{"Id": e["Id"], "MessageId": "m", "MD5OfMessageBody": "0" * 32} for e in entries]
    return _json({"Successful": ok, "Failed": []})


def _ssm_parameter(_request) -> Answer:
    parameter = {"Name": "/bench/topology", "Type": "String", "Value": json.dumps(TOPOLOGY), "Version": 1}
    return _json({"Parameter": parameter}, "1.1")


class _Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_) -> Iterator[bytes]:
        yield self._body


class CannedAws:
    """A `before-send` handler: canned answers per (service, operation), an optional delay, a count.

    `latency_s` delays every answer; `latencies` ("service.Operation" -> seconds) overrides it per operation.
    """

    def __init__(self, latency_s: float = 0.0, latencies: dict[str, float] | None = None):
        self.latency_s = latency_s
        self.latencies = dict(latencies or {})
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.responders: dict[str, Responder] = {
            "dynamodb.UpdateItem": lambda _r: _json({}),
            "dynamodb.PutItem": lambda _r: _json({}),
            "dynamodb.Query": lambda _r: _json({"Items": [], "Count": 0, "ScannedCount": 0}),
            "dynamodb.GetItem": lambda _r: _json({}),
            "dynamodb.BatchGetItem": lambda _r: _json({"Responses": {}, "UnprocessedKeys": {}}),
            "sqs.SendMessageBatch": _sqs_batch,
            "sqs.SendMessage": lambda _r: _json({"MessageId": "m", "MD5OfMessageBody": "0" * 32}),
            "firehose.PutRecordBatch": _firehose,
            "sns.Publish": _sns_publish,
            "s3.HeadObject": _head_object,
            "ssm.GetParameter": _ssm_parameter,
        }

    def __call__(self, request, event_name: str, **_) -> AWSResponse:
        _, service, operation = event_name.split(".", 2)
        name = f"{service}.{operation}"
        with self._lock:
            self.calls[name] += 1
        delay = self.latencies.get(name, self.latency_s)
        if delay:
            time.sleep(delay)
        status, headers, body = self.responders[name](request)
        return AWSResponse(request.url, status, headers, _Raw(body))

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()


def install(latency_s: float = 0.0) -> CannedAws:
    """Environment for the handlers, a fresh default boto3 session answered by a new CannedAws."""
    from crrmon import runtime

    os.environ.update(ENVIRONMENT)
    runtime.reset()
    boto3.setup_default_session(region_name=REGION)
    canned = CannedAws(latency_s)
    boto3.DEFAULT_SESSION.events.register("before-send", canned)
    return canned
