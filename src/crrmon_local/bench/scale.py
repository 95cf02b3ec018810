"""Section 8: the real domain code under a load generator, an hour of simulated time, AWS quotas enforced.

How it works (docs/performance.md, "Scale simulation"):

- A load generator writes objects at a fixed rate for an hour of simulated time. A *sample* of them
  (24,000 objects; 1,500 with --quick) runs through the real domain classes, built as
  `crrmon/runtime.py` builds them but with stub clients and a simulated clock: `Ingest.handle_batch`
  (SQS batches of S3 events), `Matcher.handle_batch` (the table's stream records) and
  `Sweeper.handle_timers` (timer messages).
  Each sampled object stands for `weight` objects.
- The queues between them are modelled at full scale: every sampled message carries its weight, and each
  simulated second a function serves as many messages as its concurrency and its measured batch
  duration allow, oldest first. Batch duration = the batch's CPU (measured on the real code, plus
  botocore's CPU for each AWS call, measured by sending the same request through a real client answered
  locally), stretched to the function's share of a vCPU, plus the round trips on its critical path
  times a per-service latency.
- AWS is stubbed at the boto3-call level. DynamoDB is a small interpreter of the expressions the
  store writes (conditions applied, ConditionalCheckFailedException raised as boto3 raises it) that
  emits the table's stream records and counts write and read units from the items' sizes, for the table
  and for each index from the key attributes written. Per partition key value the units are scaled by
  the sample's weight (an object's own item takes only its own writes) and metered against 1,000
  write units a second; a refused write raises ProvisionedThroughputExceededException. Firehose bytes,
  records and requests, S3 HEADs per prefix, SNS publishes and Lambda concurrency are metered the same
  way.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import random
import re
import statistics
import threading
import time
import tracemalloc
import uuid
import warnings
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from heapq import heappop, heappush
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from crrmon_local.bench import canned, cost, model, quotas

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "template.yaml"
REGION, DEST_REGION = "us-east-1", "us-west-2"
ACCOUNT = "123456789012"
SOURCE, DESTINATION = "scale-src", "scale-dst"
TABLE = "scale-ReplicationTable"
TIMER_QUEUE = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/scale-TimerQueue"
EVENTS_QUEUE = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/scale-EventsQueue"
EVENTS_DLQ = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/scale-EventsDeadLetterQueue"
FORWARDER_TOPIC = f"arn:aws:sns:{DEST_REGION}:{ACCOUNT}:crr-monitor-forwarder"
EPOCH = 1_796_601_600  # 2026-12-07T00:00:00Z: simulated second 0
HOUR = 3600
RPO = 900
VISIBILITY_S = 360  # both queues' VisibilityTimeout in template.yaml
MAX_RECEIVES = 5  # both queues' maxReceiveCount
STREAM_RETRIES = 10  # the stream mappings' MaximumRetryAttempts
# Batch APIs: called once per batch whatever its size; every other call is taken as made per message when a
# sampled batch is extrapolated to a full one.
BATCH_OPS = frozenset(
    {
        "sqs.SendMessageBatch",
        "firehose.PutRecordBatch",
        "sns.Publish",
        "dynamodb.BatchGetItem",
        "dynamodb.BatchWriteItem",
    }
)
HOLD_S = 5  # sampled messages served in a second wait up to this long to be run in fuller batches
POOL_WIDTH = 10  # calls made on worker threads overlap this many at a time (ingest's pool)
# Round trip per AWS call, seconds (same region unless named): assumptions, stated in the report.
LATENCY_S = {"dynamodb": 0.008, "sqs": 0.010, "firehose": 0.015, "sns": 0.015, "s3": 0.020}
CROSS_REGION_S3_S = 0.070  # a HEAD of the destination bucket in another region


# ---------------------------------------------------------------- DynamoDB expressions


class Unsupported(Exception):
    """An expression form the interpreter does not know: extend it rather than guess."""


_TOKEN = re.compile(r"\s*(<=|>=|<>|[=<>(),+\-]|#\w+|:\w+|[A-Za-z_][\w.]*)")


def _tokens(text: str) -> list[str]:
    text, out, pos = text.strip(), [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise Unsupported(text)
        out.append(match.group(1))
        pos = match.end()
    return out


def _plain(value: dict | None) -> Any:
    """A DynamoDB JSON value as something comparable (None when absent)."""
    if value is None:
        return None
    ((kind, v),) = value.items()
    if kind == "N":
        return Decimal(v)
    return v


def _typed(value: Any) -> dict:
    if isinstance(value, Decimal):
        return {"N": str(value.normalize()) if value != value.to_integral_value() else str(int(value))}
    raise Unsupported(f"arithmetic on {value!r}")


class _Expr:
    """Recursive descent over one expression's tokens, evaluated against one item."""

    def __init__(self, text: str, names: dict[str, str], values: dict[str, dict], item: dict[str, dict]):
        self.tokens = _tokens(text)
        self.pos = 0
        self.names, self.values, self.item = names, values, item

    def peek(self, offset: int = 0) -> str | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token.upper() != expected.upper()):
            raise Unsupported(f"expected {expected!r} at {token!r} in {' '.join(self.tokens)}")
        self.pos += 1
        return token

    def path(self) -> str:
        token = self.take()
        if token.startswith("#"):
            return self.names[token]
        if token.startswith(":") or not re.fullmatch(r"[A-Za-z_]\w*", token):
            raise Unsupported(f"attribute path {token!r}")
        return token

    # -- values (DynamoDB JSON)
    def operand(self) -> dict | None:
        token = self.peek()
        if token.startswith(":"):
            self.take()
            return self.values[token]
        lowered = token.lower()
        if lowered == "if_not_exists":
            self.take(), self.take("(")
            name = self.path()
            self.take(",")
            default = self.value()
            self.take(")")
            return self.item.get(name, default)
        if lowered == "list_append":
            self.take(), self.take("(")
            first = self.value()
            self.take(",")
            second = self.value()
            self.take(")")
            return {"L": [*(first or {}).get("L", []), *(second or {}).get("L", [])]}
        return self.item.get(self.path())

    def value(self) -> dict | None:
        left = self.operand()
        while self.peek() in ("+", "-"):
            op = self.take()
            right = self.operand()
            a, b = _plain(left), _plain(right)
            left = _typed(a + b if op == "+" else a - b)
        return left

    # -- conditions
    def condition(self) -> bool:
        result = self.conjunction()
        while (self.peek() or "").upper() == "OR":
            self.take()
            right = self.conjunction()
            result = result or right
        return result

    def conjunction(self) -> bool:
        result = self.negation()
        while (self.peek() or "").upper() == "AND":
            self.take()
            right = self.negation()
            result = result and right
        return result

    def negation(self) -> bool:
        if (self.peek() or "").upper() == "NOT":
            self.take()
            return not self.negation()
        return self.primary()

    def primary(self) -> bool:
        token = self.peek()
        if token == "(":
            self.take()
            result = self.condition()
            self.take(")")
            return result
        lowered = token.lower()
        if lowered in ("attribute_exists", "attribute_not_exists") and self.peek(1) == "(":
            self.take(), self.take("(")
            present = self.path() in self.item
            self.take(")")
            return present if lowered == "attribute_exists" else not present
        if lowered == "begins_with" and self.peek(1) == "(":
            self.take(), self.take("(")
            a = _plain(self.value())
            self.take(",")
            b = _plain(self.value())
            self.take(")")
            return isinstance(a, str) and isinstance(b, str) and a.startswith(b)
        left = _plain(self.value())
        op = self.take()
        right = _plain(self.value())
        if op == "=":
            return left is not None and left == right
        if op == "<>":
            return left != right
        if left is None or right is None or type(left) is not type(right):
            return False
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]

    def done(self) -> None:
        if self.peek() is not None:
            raise Unsupported(f"trailing {self.peek()!r} in {' '.join(self.tokens)}")


def check_condition(text: str | None, item: dict, names: dict, values: dict) -> bool:
    if not text:
        return True
    expr = _Expr(text, names, values, item)
    result = expr.condition()
    expr.done()
    return result


_CLAUSES = ("SET", "REMOVE", "ADD", "DELETE")


def apply_update(text: str, item: dict, names: dict, values: dict) -> dict:
    """The item after an UpdateExpression; every right-hand side reads the item as it was."""
    old = dict(item)
    new = dict(item)
    expr = _Expr(text, names, values, old)
    clause = None
    while expr.peek() is not None:
        token = expr.peek()
        if token.upper() in _CLAUSES:
            clause = expr.take().upper()
            continue
        if token == ",":
            expr.take()
            continue
        if clause == "SET":
            name = expr.path()
            expr.take("=")
            value = expr.value()
            if value is not None:
                new[name] = value
        elif clause == "REMOVE":
            new.pop(expr.path(), None)
        elif clause == "ADD":
            name = expr.path()
            value = expr.value()
            current = _plain(old.get(name)) or Decimal(0)
            new[name] = _typed(current + _plain(value))
        else:
            raise Unsupported(f"{clause} clause in {text}")
    return new


# ---------------------------------------------------------------- the world the stubs share


def _error(code: str, operation: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message or code}}, operation)


@dataclass(frozen=True)
class Index:
    name: str
    hash_key: str
    range_key: str
    included: tuple[str, ...]

    def projection(self, item: dict | None) -> dict | None:
        return cost.projection(item, ("pk", "dest"), (self.hash_key, self.range_key), self.included)


def template_indexes() -> list[Index]:
    from crrmon_local.cfn import load_template

    table = load_template(TEMPLATE)["Resources"]["ReplicationTable"]["Properties"]
    out = []
    for index in table["GlobalSecondaryIndexes"]:
        keys = {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
        included = tuple(index["Projection"].get("NonKeyAttributes", ()))
        out.append(Index(index["IndexName"], keys["HASH"], keys["RANGE"], included))
    return out


def template_knobs() -> dict[str, Any]:
    """What template.yaml sets for the functions: memory and each mapping's MaximumConcurrency and batch size
    (a parameter's default where the template refers to one)."""
    from crrmon_local.cfn import load_template

    template = load_template(TEMPLATE)
    parameters = template.get("Parameters", {})

    def value(v: Any) -> Any:
        if isinstance(v, dict) and "Ref" in v:
            return parameters[v["Ref"]]["Default"]
        return v

    knobs: dict[str, Any] = {"memory_mb": value(template["Globals"]["Function"]["MemorySize"])}
    for function in ("IngestFunction", "SweeperFunction", "MatcherFunction"):
        props = template["Resources"][function]["Properties"]
        for event in props.get("Events", {}).values():
            p = event.get("Properties", {})
            if event.get("Type") == "SQS":
                knobs[f"{function}.max_concurrency"] = value(p.get("ScalingConfig", {}).get("MaximumConcurrency", 1000))
                knobs[f"{function}.batch"] = value(p.get("BatchSize", 10))
            elif event.get("Type") == "DynamoDB" and function == "MatcherFunction":
                knobs[f"{function}.batch"] = value(p.get("BatchSize", 100))
                knobs[f"{function}.parallelization"] = value(p.get("ParallelizationFactor", 1))
    return knobs


def quota_table(*, firehose_bytes_s: float = quotas.FIREHOSE_BYTES_S) -> dict[str, float]:
    """The limits a World enforces (quotas.py's defaults)."""
    return {
        "partition_wcu": quotas.PARTITION_WRITE_UNITS_S,
        "partition_rcu": quotas.PARTITION_READ_UNITS_S,
        "table_wcu": quotas.TABLE_WRITE_UNITS_S,
        "table_rcu": quotas.TABLE_READ_UNITS_S,
        "firehose_bytes": firehose_bytes_s,
        "firehose_requests": quotas.FIREHOSE_REQUESTS_S,
        "firehose_records": quotas.FIREHOSE_RECORDS_S,
    }


class World:
    """Simulated time, the sample's weight, and every meter the stubs feed."""

    def __init__(self, weight: float, rng: random.Random, quota: dict[str, float]):
        self.now = 0.0  # simulated seconds since EPOCH
        self.weight = weight
        self.rng = rng
        self.quota = quota
        # A window long enough that one sampled write is at most a tenth of a partition's second.
        window = max(10, math.ceil(10 * weight / quota["partition_wcu"]))
        self.partition_w = quotas.WindowMeter(quota["partition_wcu"], window_s=window)
        self.partition_r = quotas.WindowMeter(quota["partition_rcu"], window_s=window)
        # Quotas on a whole table, stream, prefix or account see the sample's Poisson noise; a minute's
        # window keeps that noise under about a third of the mean at the full run's sample.
        wide = max(60, window)
        self.table_w = quotas.WindowMeter(quota["table_wcu"], window_s=wide)
        self.table_r = quotas.WindowMeter(quota["table_rcu"], window_s=wide)
        self.firehose_bytes = quotas.WindowMeter(quota["firehose_bytes"], window_s=wide)
        self.firehose_requests = quotas.WindowMeter(quota["firehose_requests"], window_s=wide)
        self.firehose_records = quotas.WindowMeter(quota["firehose_records"], window_s=wide)
        self.s3_heads = quotas.WindowMeter(quotas.S3_HEAD_PER_PREFIX_S, window_s=wide)
        # The HEAD budget is met by design; a window holding ten sampled HEADs at 20 a second resolves it.
        self.heads_by_bucket = quotas.WindowMeter(float("inf"), window_s=max(wide, math.ceil(10 * weight / 20)))
        self.sns = quotas.WindowMeter(quotas.SNS_PUBLISH_S, window_s=wide)
        self.windows = (window, wide)
        self.units: Counter[str] = Counter()  # full-scale totals (weighted)
        self.calls: Counter[str] = Counter()  # full-scale calls (weighted)
        self.throttles: Counter[str] = Counter()  # full-scale refused requests, by where
        self.object_pk_peak_wcu = 0.0
        self.replicas: dict[str, float] = {}  # pk -> simulated second the replica lands
        self.gone: set[str] = set()  # pks whose source version was deleted
        self.heartbeat_weight = 1.0  # ingest containers running: each writes heartbeats on its own
        self.batch_weight = weight  # full-size batches the running sampled batch stands for
        self.budget_lease = 1.0  # HEAD tokens one take of the shared budget gets at full scale

    @property
    def epoch(self) -> float:
        return EPOCH + self.now


class CallLog:
    """Per batch: the calls made, on which thread, and the stubs' own CPU (taken off the batch's)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset(threading.get_ident())

    def reset(self, caller: int) -> None:
        self.caller = caller
        self.calls: Counter[tuple[str, bool]] = Counter()  # (service.Operation, on the calling thread)
        self.latency: dict[str, float] = {}
        self.ops: Counter[str] = Counter()
        self.slept = 0.0  # back-off pauses the code took (simulated: they pass no real time)
        self.stub_cpu = 0.0
        self.requests: list[tuple[str, str, dict]] = []

    def record(self, service: str, op: str, kwargs: dict, latency: float, stub_cpu: float) -> None:
        name = f"{service}.{op}"
        with self.lock:
            self.ops[name] += 1
            self.calls[(name, threading.get_ident() == self.caller)] += 1
            self.latency[name] = max(self.latency.get(name, 0.0), latency)
            self.stub_cpu += stub_cpu
            if len(self.requests) < 64:
                self.requests.append((service, op, kwargs))

    def waiting_s(self, scale: float = 1.0, per_message: set[str] | frozenset = frozenset()) -> float:
        """Time a batch waits for AWS: calls on the calling thread one after the other, calls on worker
        threads overlapped POOL_WIDTH at a time at the slowest of their latencies
        (quotas.critical_round_trips). `scale` extrapolates a sampled batch to a full one: an operation
        not a batch API (`per_message`, see BATCH_OPS) is scaled, a batch API counted as made."""
        caller_wait, worker_calls, worker_latency = 0.0, 0.0, 0.0
        for (name, on_caller), n in self.calls.items():
            n_full = n * scale if name in per_message else n
            if on_caller:
                caller_wait += n_full * self.latency[name]
            else:
                worker_calls += n_full
                worker_latency = max(worker_latency, self.latency[name])
        overlapped = quotas.critical_round_trips(0, math.ceil(worker_calls), POOL_WIDTH) * worker_latency
        return caller_wait + overlapped + self.slept


def _stubbed(service: str, latency: Callable[[str, dict], float] | float):
    """Decorator for a stub method: its CPU and a round trip are logged for the batch."""

    def wrap(method):
        op = "".join(part.capitalize() for part in method.__name__.split("_"))

        def call(self, **kwargs):
            started = time.thread_time()  # this thread's CPU only: ingest calls from several threads
            try:
                return method(self, **kwargs)
            finally:
                wait = latency(op, kwargs) if callable(latency) else latency
                self.log.record(service, op, kwargs, wait, time.thread_time() - started)

        call.__name__ = method.__name__
        return call

    return wrap


class DynamoStub:
    """The table: items in DynamoDB JSON, expressions applied, stream records emitted, units metered."""

    def __init__(self, world: World, log: CallLog, indexes: list[Index], on_change: Callable[[dict], None]):
        self.world, self.log, self.indexes, self.on_change = world, log, indexes, on_change
        self.items: dict[tuple[str, str], dict] = {}
        self.lock = threading.RLock()
        self.sequence = 10**20

    @staticmethod
    def _internal(pk: str) -> bool:
        return pk.startswith("__") and "#" not in pk

    def _write_meter(self, key: tuple[str, str], before: dict | None, after: dict | None, op: str) -> None:
        """Meter one write (a failed condition too: it is billed); raise when a partition refuses it."""
        from crrmon.store import BUDGET_PK, HEARTBEAT_PK

        world = self.world
        units = cost.write_units(cost.item_size(before), cost.item_size(after))
        pk = key[0]
        shared = self._internal(pk)
        scale = world.weight
        if pk == HEARTBEAT_PK:  # once a minute per bucket and container: per running ingest container
            scale = world.heartbeat_weight
        elif pk == BUDGET_PK:
            # The sample's budget hands out one token per take, the fleet's a lease of several: scale by
            # tokens, not by takes (an estimate: docs/performance.md).
            scale = world.weight / world.budget_lease
        refused = world.table_w.add("table", units * scale, world.now)
        world.units["dynamodb.write_units"] += units * scale
        if shared:
            refused = max(refused, world.partition_w.add(f"table {pk}", units * scale, world.now))
        else:
            world.object_pk_peak_wcu = max(world.object_pk_peak_wcu, units)
        for index in self.indexes:
            old, new = index.projection(before), index.projection(after)
            index_units = cost.index_write_units(old, new, (index.hash_key, index.range_key))
            if not index_units:
                continue
            world.units[f"dynamodb.index_write_units.{index.name}"] += index_units * world.weight
            for projected in {p[index.hash_key]["S"] for p in (old, new) if p}:
                refused = max(
                    refused, world.partition_w.add(f"{index.name} {projected}", index_units * scale, world.now)
                )
        if refused and world.rng.random() < refused:
            world.throttles[f"DynamoDB {op}"] += world.weight
            raise _error("ProvisionedThroughputExceededException", op)

    def _read_meter(self, pk: str, nbytes: int, consistent: bool, op: str) -> None:
        world = self.world
        units = cost.read_units(nbytes, consistent=consistent)
        world.units["dynamodb.read_units"] += units * world.weight
        refused = world.table_r.add("table", units * world.weight, world.now)
        if self._internal(pk):
            refused = max(refused, world.partition_r.add(f"table {pk}", units * world.weight, world.now))
        if refused and world.rng.random() < refused:
            world.throttles[f"DynamoDB {op}"] += world.weight
            raise _error("ProvisionedThroughputExceededException", op)

    def _commit(self, key: tuple[str, str], before: dict | None, after: dict | None) -> None:
        if after is None:
            self.items.pop(key, None)
        else:
            self.items[key] = after
        if before == after or self._internal(key[0]):
            return
        self.sequence += 1
        name = "INSERT" if before is None else ("REMOVE" if after is None else "MODIFY")
        record = {
            "eventID": uuid.uuid4().hex,
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": REGION,
            "dynamodb": {
                "ApproximateCreationDateTime": int(self.world.epoch),
                "Keys": {"pk": {"S": key[0]}, "dest": {"S": key[1]}},
                "SequenceNumber": str(self.sequence),
                "SizeBytes": cost.item_size(after or before),
                "StreamViewType": "NEW_AND_OLD_IMAGES",
                **({"NewImage": after} if after is not None else {}),
                **({"OldImage": before} if before is not None else {}),
            },
        }
        self.on_change(record)

    @_stubbed("dynamodb", LATENCY_S["dynamodb"])
    def update_item(self, **kw):
        key = (kw["Key"]["pk"]["S"], kw["Key"]["dest"]["S"])
        names, values = kw.get("ExpressionAttributeNames", {}), kw.get("ExpressionAttributeValues", {})
        with self.lock:
            before = self.items.get(key)
            current = before or {}
            if not check_condition(kw.get("ConditionExpression"), current, names, values):
                self._write_meter(key, before, before, "UpdateItem")
                raise _error("ConditionalCheckFailedException", "UpdateItem", "The conditional request failed")
            after = apply_update(kw["UpdateExpression"], {**current, **kw["Key"]}, names, values)
            self._write_meter(key, before, after, "UpdateItem")
            self._commit(key, before, after)
        returns = kw.get("ReturnValues", "NONE")
        if returns == "ALL_OLD":
            return {"Attributes": before} if before else {}
        if returns == "ALL_NEW":
            return {"Attributes": after}
        if returns != "NONE":
            raise Unsupported(f"ReturnValues {returns}")
        return {}

    @_stubbed("dynamodb", LATENCY_S["dynamodb"])
    def put_item(self, **kw):
        item = kw["Item"]
        key = (item["pk"]["S"], item["dest"]["S"])
        with self.lock:
            before = self.items.get(key)
            names, values = kw.get("ExpressionAttributeNames", {}), kw.get("ExpressionAttributeValues", {})
            if not check_condition(kw.get("ConditionExpression"), before or {}, names, values):
                self._write_meter(key, before, before, "PutItem")
                raise _error("ConditionalCheckFailedException", "PutItem", "The conditional request failed")
            self._write_meter(key, before, item, "PutItem")
            self._commit(key, before, dict(item))
        return {}

    @_stubbed("dynamodb", LATENCY_S["dynamodb"])
    def get_item(self, **kw):
        key = (kw["Key"]["pk"]["S"], kw["Key"]["dest"]["S"])
        item = self.items.get(key)
        self._read_meter(key[0], cost.item_size(item), bool(kw.get("ConsistentRead")), "GetItem")
        return {"Item": item} if item else {}

    @_stubbed("dynamodb", LATENCY_S["dynamodb"])
    def query(self, **kw):
        values = kw["ExpressionAttributeValues"]
        match = re.fullmatch(r"\s*(#?\w+)\s*=\s*(:\w+)\s*", kw["KeyConditionExpression"])
        if not match:
            raise Unsupported(kw["KeyConditionExpression"])
        attribute = kw.get("ExpressionAttributeNames", {}).get(match.group(1), match.group(1))
        wanted = values[match.group(2)]
        index_name = kw.get("IndexName")
        if index_name:
            [index] = [i for i in self.indexes if i.name == index_name]
            found = [index.projection(i) for i in self.items.values() if i.get(attribute) == wanted]
            found = [f for f in found if f]
            found.sort(key=lambda i: _plain(i[index.range_key]), reverse=not kw.get("ScanIndexForward", True))
        else:
            found = [i for (pk, _), i in self.items.items() if pk == wanted["S"]]
        if "Limit" in kw:
            found = found[: kw["Limit"]]
        self._read_meter(
            "" if index_name else wanted["S"],
            sum(cost.item_size(i) for i in found),
            bool(kw.get("ConsistentRead")),
            "Query",
        )
        return {"Items": found, "Count": len(found), "ScannedCount": len(found)}

    @_stubbed("dynamodb", LATENCY_S["dynamodb"])
    def batch_get_item(self, **kw):
        responses: dict[str, list] = {}
        for table, spec in kw["RequestItems"].items():
            names = spec.get("ExpressionAttributeNames", {})
            wanted = None
            if spec.get("ProjectionExpression"):
                wanted = {names.get(p.strip(), p.strip()) for p in spec["ProjectionExpression"].split(",")}
            out = []
            for key in spec["Keys"]:
                item = self.items.get((key["pk"]["S"], key["dest"]["S"]))
                self._read_meter(key["pk"]["S"], cost.item_size(item), bool(spec.get("ConsistentRead")), "BatchGetItem")
                if item:
                    out.append({k: v for k, v in item.items() if wanted is None or k in wanted})
            responses[table] = out
        return {"Responses": responses, "UnprocessedKeys": {}}


class S3Stub:
    """HEAD answers from the simulated world: the source is PENDING until its replica lands, then COMPLETED."""

    def __init__(self, world: World, log: CallLog):
        self.world, self.log = world, log

    def _latency(op: str, kw: dict) -> float:
        return CROSS_REGION_S3_S if kw.get("Bucket") == DESTINATION else LATENCY_S["s3"]

    @_stubbed("s3", _latency)
    def head_object(self, **kw):
        world = self.world
        prefix = kw["Key"].split("/", 1)[0]
        refused = world.s3_heads.add(f"{kw['Bucket']}/{prefix}", world.weight, world.now)
        world.heads_by_bucket.add(kw["Bucket"], world.weight, world.now)
        if refused and world.rng.random() < refused:
            world.throttles["S3 HeadObject (SlowDown)"] += world.weight
            raise ClientError({"Error": {"Code": "503", "Message": "Slow Down"}}, "HeadObject")
        pk = f"{kw['VersionId']}#{kw['Key']}"
        landed = world.replicas.get(pk)
        replicated = landed is not None and landed <= world.now
        if kw["Bucket"] == DESTINATION:
            if not replicated:
                raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")
            return {
                "ContentLength": 180_000,
                "ETag": '"e"',
                "ReplicationStatus": "REPLICA",
                "ServerSideEncryption": "AES256",
            }
        if pk in world.gone:
            raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")
        status = "COMPLETED" if replicated else "PENDING"
        return {"ContentLength": 180_000, "ETag": '"e"', "ReplicationStatus": status, "ServerSideEncryption": "AES256"}


class SqsStub:
    """Queues at the boto3 level: timers go to the simulation's timer queue, parked bodies are counted."""

    def __init__(self, world: World, log: CallLog, on_timer: Callable[[str, float], None]):
        self.world, self.log, self.on_timer = world, log, on_timer
        self.parked = 0.0

    @_stubbed("sqs", LATENCY_S["sqs"])
    def send_message_batch(self, **kw):
        if kw["QueueUrl"] != TIMER_QUEUE:
            raise Unsupported(f"SendMessageBatch to {kw['QueueUrl']}")
        for entry in kw["Entries"]:
            self.on_timer(entry["MessageBody"], self.world.now + entry.get("DelaySeconds", 0))
        return {"Successful": [{"Id": e["Id"], "MessageId": "m"} for e in kw["Entries"]], "Failed": []}

    @_stubbed("sqs", LATENCY_S["sqs"])
    def send_message(self, **kw):
        self.parked += self.world.weight
        return {"MessageId": "m"}


class FirehoseStub:
    def __init__(self, world: World, log: CallLog, on_archived: Callable[[list[bytes]], None]):
        self.world, self.log, self.on_archived = world, log, on_archived

    @_stubbed("firehose", LATENCY_S["firehose"])
    def put_record_batch(self, **kw):
        world = self.world
        records = [r["Data"] for r in kw["Records"]]
        if len(records) > 500:
            raise _error("InvalidArgumentException", "PutRecordBatch", "more than 500 records")
        nbytes = sum(len(r) for r in records)
        world.units["firehose.raw_bytes"] += nbytes * world.weight
        world.units["firehose.records"] += len(records) * world.batch_weight
        refused = max(
            world.firehose_bytes.add("stream", nbytes * world.weight, world.now),
            world.firehose_requests.add("stream", world.batch_weight, world.now),
            world.firehose_records.add("stream", len(records) * world.batch_weight, world.now),
        )
        if refused and world.rng.random() < refused:
            world.throttles["Firehose PutRecordBatch"] += world.batch_weight
            failed = [{"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}] * len(records)
            return {"FailedPutCount": len(records), "RequestResponses": failed}
        self.on_archived(records)
        return {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "r"}] * len(records)}


class SnsStub:
    def __init__(self, world: World, log: CallLog):
        self.world, self.log = world, log

    @_stubbed("sns", LATENCY_S["sns"])
    def publish(self, **kw):
        refused = self.world.sns.add("account", self.world.batch_weight, self.world.now)
        if refused and self.world.rng.random() < refused:
            self.world.throttles["SNS Publish"] += self.world.batch_weight
            raise _error("Throttling", "Publish", "Rate exceeded")
        return {"MessageId": "m"}


# ---------------------------------------------------------------- botocore's own CPU per call


class BotocoreCpu:
    """CPU botocore spends building, signing and parsing one call, measured per operation by sending the
    simulation's own first requests through a real client whose HTTP layer answers at once."""

    def __init__(self) -> None:
        self.per_op: dict[str, float] = {}
        self._clients: dict[str, Any] = {}

    def _client(self, service: str):
        if service not in self._clients:
            import boto3

            class Answers(dict):
                def __missing__(self, _name):
                    return lambda _request: (200, {"Content-Type": "application/x-amz-json-1.0"}, b"{}")

            answers = canned.CannedAws()
            answers.responders = Answers(answers.responders)
            session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
            session.events.register("before-send", answers)
            self._clients[service] = session.client(service)
        return self._clients[service]

    def measure(self, requests: list[tuple[str, str, dict]]) -> None:
        for service, op, kwargs in requests:
            name = f"{service}.{op}"
            if name in self.per_op:
                continue
            client = self._client(service)
            method = getattr(client, re.sub(r"(?<!^)(?=[A-Z])", "_", op).lower())
            samples = []
            for _ in range(7):
                started = time.process_time()
                with contextlib.suppress(ClientError):
                    method(**kwargs)
                samples.append(time.process_time() - started)
            self.per_op[name] = statistics.median(samples)

    def cpu_s(self, ops: Counter[str]) -> float:
        return sum(self.per_op.get(name, 0.0) * n for name, n in ops.items())


# ---------------------------------------------------------------- queues at full scale


def peak_rate(per_second: Counter[int], window_s: int = 60) -> float:
    """Highest total over any `window_s` consecutive seconds, per second."""
    if not per_second:
        return 0.0
    best = running = 0.0
    last = max(per_second)
    for second in range(min(per_second), last + 1):
        running += per_second.get(second, 0.0) - per_second.get(second - window_s, 0.0)
        best = max(best, running)
    return best / window_s


@dataclass(order=True)
class Message:
    visible_at: float
    seq: int
    body: str = field(compare=False)
    weight: float = field(compare=False)
    receives: int = field(default=0, compare=False)
    sent_at: float = field(default=0.0, compare=False)
    pk: str = field(default="", compare=False)


class Queue:
    """A queue of sampled messages, each worth `weight` real ones, served oldest-visible first."""

    def __init__(self, name: str):
        self.name = name
        self.heap: list[Message] = []
        self.seq = 0
        self.credit = 0.0
        self.backlog = 0.0  # weighted messages in the queue
        self.peak_backlog = 0.0
        self.dead = 0.0
        self.arrivals: Counter[int] = Counter()  # second -> weighted messages becoming visible

    def put(self, body: str, visible_at: float, weight: float, *, pk: str = "", receives: int = 0, sent_at=None):
        self.seq += 1
        heappush(
            self.heap,
            Message(visible_at, self.seq, body, weight, receives, visible_at if sent_at is None else sent_at, pk),
        )
        self.backlog += weight
        self.arrivals[int(visible_at)] += weight

    def peak_rate(self, window_s: int = 60) -> float:
        """Highest rate of messages becoming visible, over `window_s` seconds."""
        return peak_rate(self.arrivals, window_s)

    def serve(self, now: float, capacity: float) -> list[Message]:
        """Messages visible by `now` that `capacity` (messages this second) covers, oldest first."""
        self.credit += capacity
        out = []
        while self.heap and self.heap[0].visible_at <= now and self.credit > 0:
            message = heappop(self.heap)
            self.credit -= message.weight
            self.backlog -= message.weight
            out.append(message)
        if not self.heap or self.heap[0].visible_at > now:
            self.credit = min(self.credit, capacity)  # idle capacity is not banked
        if int(now) % 60 == 0:  # visible backlog, once a simulated minute
            visible = sum(m.weight for m in self.heap if m.visible_at <= now)
            self.peak_backlog = max(self.peak_backlog, visible)
        return out

    def oldest_age(self, now: float) -> float:
        return max(0.0, now - self.heap[0].visible_at) if self.heap and self.heap[0].visible_at <= now else 0.0


# ---------------------------------------------------------------- one run


@dataclass
class Scenario:
    name: str
    rate: float  # objects per second
    sample: int  # objects run through the real code
    seconds: int = HOUR
    outage: tuple[float, float] | None = None  # destination unreachable between these seconds
    ingest_concurrency: int | None = None  # None: template.yaml's
    sweeper_concurrency: int | None = None
    matcher_parallelization: int | None = None  # the stream mapping's ParallelizationFactor (template: 1)
    firehose_bytes_s: float = quotas.FIREHOSE_BYTES_S
    late_share: float = 0.002  # objects whose replica lands after the deadline
    seed: int = 7


@dataclass
class FunctionStats:
    invocations: float = 0.0  # full scale
    messages: float = 0.0
    durations: list[float] = field(default_factory=list)  # simulated seconds per sampled batch
    cpu_s: list[float] = field(default_factory=list)
    peak_concurrency: float = 0.0
    concurrency_seconds: float = 0.0
    gb_seconds: float = 0.0
    heap_peak_bytes: int = 0


@dataclass
class ScaleRun:
    scenario: Scenario
    weight: float
    knobs: dict[str, Any]
    detection: list[float]  # seconds after the deadline each sampled version was first checked
    unchecked: int  # sampled versions whose deadline passed and were never checked by the end
    unchecked_floor: float  # their smallest wait so far
    overdue_delay: list[float]  # late objects: seconds from the deadline to OVERDUE
    lost: float
    lost_detail: dict[str, float]
    throttles: dict[str, float]
    functions: dict[str, FunctionStats]
    queue_age: dict[str, float]
    queue_backlog: dict[str, float]
    uses: list[quotas.Use]
    units: dict[str, float]
    calls: dict[str, float]
    hottest: dict[str, tuple[str, float]]
    object_pk_peak_wcu: float
    wall_s: float
    cpu_s: float
    simulated_s: float
    objects: float
    usd_per_million: float = 0.0
    bill: list[cost.Line] = field(default_factory=list)
    botocore_cpu: dict[str, float] = field(default_factory=dict)

    @property
    def binding(self) -> quotas.Use:
        return quotas.binding(self.uses)

    def detection_percentile(self, q: float) -> float:
        values = sorted(self.detection + [self.unchecked_floor] * self.unchecked)
        if not values:
            return 0.0
        return values[min(len(values) - 1, math.ceil(q * len(values)) - 1)]


class Simulation:
    def __init__(self, scenario: Scenario, knobs: dict[str, Any], botocore: BotocoreCpu):
        from crrmon.config import Config
        from crrmon.evidence import Evidence, SharedBudget
        from crrmon.ingest import Heartbeats, Ingest
        from crrmon.match import Matcher
        from crrmon.metrics import Counters
        from crrmon.publish import Publisher
        from crrmon.store import Store
        from crrmon.sweep import Sweeper
        from crrmon.topology import Rule, Topology, TopologyCache

        for name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"):  # the EMF lines need them
            os.environ.setdefault(name, canned.ENVIRONMENT[name])
        self.s = scenario
        self.knobs = knobs
        self.botocore = botocore
        total = scenario.rate * scenario.seconds
        self.weight = total / scenario.sample
        quota = quota_table(firehose_bytes_s=scenario.firehose_bytes_s)
        self.rng = random.Random(scenario.seed)
        self.world = World(self.weight, self.rng, quota)
        self.log = CallLog()
        self.memory_mb = knobs["memory_mb"]
        self.concurrency = {
            "ingest": scenario.ingest_concurrency or knobs["IngestFunction.max_concurrency"],
            "sweeper": scenario.sweeper_concurrency or knobs["SweeperFunction.max_concurrency"],
        }
        self.batch = {
            "ingest": knobs["IngestFunction.batch"],
            "sweeper": knobs["SweeperFunction.batch"],
            "matcher": knobs["MatcherFunction.batch"],
        }
        self.events = Queue("EventsQueue")
        self.timers = Queue("TimerQueue")
        self.stream: list[tuple[dict, int]] = []  # (record, tries) waiting for the matcher, in order
        self.stream_seq = 0
        self.dynamo = DynamoStub(self.world, self.log, template_indexes(), self._on_change)
        self.s3 = S3Stub(self.world, self.log)
        self.sqs = SqsStub(self.world, self.log, self._on_timer)
        self.archived: set[str] = set()
        self.firehose = FirehoseStub(self.world, self.log, self._on_archived)
        self.sns = SnsStub(self.world, self.log)
        self.config = Config(
            table_name=TABLE,
            timer_queue_url=TIMER_QUEUE,
            events_dlq_url=EVENTS_DLQ,
            delivery_stream_name="scale-archive",
            alert_topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT}:scale-AlertTopic",
            source_buckets=(SOURCE,),
            destination_buckets=(DESTINATION,),
            rpo_seconds=RPO,
            head_requests_per_second=20.0,
            account_id=ACCOUNT,
            forwarder_topic_arns=(FORWARDER_TOPIC,),
        )
        topology = Topology(
            sources={SOURCE: [Rule(id="to-west", destination_bucket=DESTINATION, priority=1, delete_markers=True)]},
            regions={SOURCE: REGION, DESTINATION: DEST_REGION},
        )
        topology_cache = TopologyCache(lambda: topology, max_age=300)
        store = Store(self.dynamo, TABLE, self.config.overdue_index_name, sleep=lambda _s: None)
        publisher = Publisher(
            firehose=self.firehose,
            delivery_stream="scale-archive",
            sns=self.sns,
            topic_arn=self.config.alert_topic_arn,
            clock=lambda: self.world.epoch + self.log.slept,
            sleep=self._sleep,
        )
        clock = lambda: self.world.epoch  # noqa: E731

        # The HEAD budget lives in the table and is shared by every instance (HeadRequestsPerSecond per
        # bucket); each sampled HEAD stands for `weight` HEADs, so the sample gets 1/weight of it.
        def budget() -> SharedBudget:
            return SharedBudget(store, self.config.head_requests_per_second / self.weight, clock=clock)

        self.world.budget_lease = SharedBudget(store, self.config.head_requests_per_second).lease

        self.counters = Counters()
        self.ingest = Ingest(
            self.config,
            store,
            topology_cache,
            Evidence(self.s3, budget()),
            self.sqs,
            self.counters,
            clock,
            heartbeats=Heartbeats(),
        )
        self.matcher = Matcher(self.config, store, publisher, self.sqs, self.counters, clock)
        self.sweeper = Sweeper(
            self.config, store, Evidence(self.s3, budget()), topology_cache, publisher, self.sqs, self.counters, clock
        )
        self.stats = {name: FunctionStats() for name in ("ingest", "matcher", "sweeper")}
        self.duration = {"ingest": 0.05, "matcher": 0.05, "sweeper": 0.05}  # seconds per full batch, as measured
        self.recent = {name: deque(maxlen=50) for name in ("ingest", "matcher", "sweeper")}  # full-batch durations
        self.held: dict[str, list] = {name: [] for name in ("ingest", "matcher", "sweeper")}
        self.held_since: dict[str, float] = {name: 0.0 for name in ("ingest", "matcher", "sweeper")}
        self.first_check: dict[str, float] = {}
        self.overdue_at: dict[str, float] = {}
        self.due: dict[str, float] = {}
        self.late: set[str] = set()
        self.dropped: Counter[str] = Counter()
        self.arrivals: list[tuple[float, int, str, str]] = []  # (visible at, seq, body, pk)
        self.peak_shards = 1
        self.peak_in_flight = 0.0
        self.peak_total_concurrency = 0.0
        self.busy = {name: quotas.WindowMeter(float("inf"), window_s=60) for name in ("ingest", "matcher", "sweeper")}
        self._stream_credit = 0.0
        self.stream_arrivals: Counter[int] = Counter()
        # Demand is the busiest window's arrivals: a minute, or longer where the sample is small, so that the
        # window holds some 400 sampled events (two per object) and its Poisson noise stays near 5%.
        self.demand_window = max(60, math.ceil(400 * scenario.seconds / (2 * scenario.sample)))

    # -- stub callbacks
    def _on_change(self, record: dict) -> None:
        if record["eventName"] in ("INSERT", "MODIFY"):  # the matcher mapping's filter
            self.stream.append((record, 0))
            self.stream_arrivals[int(self.world.now)] += self.weight
        new = record["dynamodb"].get("NewImage", {})
        status = new.get("status", {}).get("S")
        pk = record["dynamodb"]["Keys"]["pk"]["S"]
        if "due" in new:
            self.due[pk] = float(new["due"]["N"]) - EPOCH
        if status in ("OVERDUE", "FAILED") and pk not in self.overdue_at:
            self.overdue_at[pk] = self.world.now

    def _on_timer(self, body: str, visible_at: float) -> None:
        pk = json.loads(body).get("pk", "")
        self.timers.put(body, visible_at, self.weight, pk=pk, sent_at=self.world.now)

    def _on_archived(self, records: list[bytes]) -> None:
        from crrmon.publish import read_archive

        for record in records:
            self.archived.update(line["record_id"] for line in read_archive(record))

    def _sleep(self, seconds: float) -> None:
        self.log.slept += seconds

    # -- the load
    def generate(self) -> None:
        from crrmon_local import emulator

        s, rng = self.s, self.rng
        times = sorted(rng.uniform(0, s.seconds) for _ in range(s.sample))
        recover_at = None
        if s.outage:
            start, end = s.outage
            backlog = sum(1 for t in times if start <= t < end)
            drain_s = (end - start) / 3  # replication catches up at three times the normal rate
            recover_at = (end, drain_s, backlog)
        landed_in_backlog = 0
        for i, t0 in enumerate(times):
            version = uuid.uuid4().hex
            key = f"data/{i % 97:02d}/part-{i:07d}.parquet"
            size = 180_000 + i % 1000
            etag = uuid.uuid4().hex
            pk = f"{version}#{key}"
            source = emulator.eventbridge_object_event(
                bucket=SOURCE,
                key=key,
                version_id=version,
                time_s=EPOCH + t0,
                region=REGION,
                account=ACCOUNT,
                size=size,
                etag=etag,
            )
            self._arrive(t0 + 0.5, source, pk)
            latency = rng.lognormvariate(math.log(8), 0.9)
            if rng.random() < s.late_share:
                latency = RPO + rng.uniform(60, 900)
                self.late.add(pk)
            landed = t0 + latency
            if recover_at and s.outage[0] <= landed and t0 < s.outage[1]:
                end, drain_s, backlog = recover_at
                landed = max(landed, end + drain_s * landed_in_backlog / max(1, backlog))
                landed_in_backlog += 1
                if landed > t0 + RPO:
                    self.late.add(pk)
            self.world.replicas[pk] = landed
            record = emulator.s3_notification(
                event_name="ObjectCreated:Put",
                bucket=DESTINATION,
                key=key,
                version_id=version,
                time_s=EPOCH + landed,
                region=DEST_REGION,
                size=size,
                etag=etag,
            )
            self._arrive(landed + 1.0, emulator.in_sns([record], topic_arn=FORWARDER_TOPIC), pk)
        self.arrivals.sort()

    def _arrive(self, at: float, body: str, pk: str) -> None:
        self.arrivals.append((at, len(self.arrivals), body, pk))

    # -- running real code
    def _run(self, function: str, work: Callable[[], dict], size: int) -> dict:
        """Run one sampled batch of `size` messages; its duration extrapolated to a full batch."""
        self.log.reset(threading.get_ident())
        self.world.batch_weight = self.weight * size / self.batch[function]
        self.counters._values.clear()
        cpu0 = time.process_time()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            answer = work()
            self.world.units["heads_put_off"] += self.counters.total("HeadsPutOff") * self.weight
            self.counters.flush()
        domain_cpu = max(0.0, time.process_time() - cpu0 - self.log.stub_cpu)
        self.botocore.measure(self.log.requests)
        full = self.batch[function]
        scale = full / max(1, size)
        per_message = {op for op in self.log.ops if op not in BATCH_OPS}
        full_ops: Counter[str] = Counter()
        for op, n in self.log.ops.items():
            full_ops[op] = n * scale if op in per_message else n
            self.world.calls[op] += n * (self.weight if op in per_message else self.weight * size / full)
        cpu_full = domain_cpu * scale + self.botocore.cpu_s(full_ops)
        duration = model.lambda_duration_s(cpu_full, self.log.waiting_s(scale, per_message), self.memory_mb)
        stats = self.stats[function]
        stats.durations.append(duration)
        stats.cpu_s.append(cpu_full)
        invocations = self.weight * size / full  # full batches at scale
        stats.invocations += invocations
        stats.messages += size * self.weight
        stats.gb_seconds += invocations * math.ceil(duration * 1000) / 1000 * self.memory_mb / 1024
        recent = self.recent[function]
        recent.append(duration)
        self.duration[function] = statistics.median(recent)
        return answer

    def _sqs_records(self, messages: list[Message]) -> list[dict]:
        return [
            {
                "messageId": f"m{m.seq}",
                "receiptHandle": "r",
                "body": m.body,
                "attributes": {"ApproximateReceiveCount": str(m.receives + 1)},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
            }
            for m in messages
        ]

    def _serve_queue(self, function: str, queue: Queue, handle: Callable[[list[dict]], dict], now: float) -> float:
        concurrency = self.concurrency[function]
        batch = self.batch[function]
        capacity = concurrency * batch / self.duration[function]
        served = queue.serve(now, capacity)
        used = self._concurrency(
            function, len(served) * self.weight / batch * self.duration[function], now, concurrency
        )
        self.peak_in_flight = max(self.peak_in_flight, used * batch)
        if function == "sweeper":
            for m in served:
                due = self._due(m.pk)
                if due is not None and now >= due and m.pk not in self.first_check:
                    self.first_check[m.pk] = now - due + self.duration[function] / 2
        held = self.held[function]
        held.extend(served)
        while held and (len(held) >= batch or now - self.held_since[function] >= HOLD_S):
            group, held[:] = held[:batch], held[batch:]
            answer = self._run(function, lambda g=group: handle(self._sqs_records(g)), len(group))
            failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
            for m in group:
                if f"m{m.seq}" in failed:
                    if m.receives + 1 >= MAX_RECEIVES:
                        self.dropped[f"{queue.name} dead-lettered"] += m.weight
                        queue.dead += m.weight
                    else:
                        queue.put(m.body, now + VISIBILITY_S, m.weight, pk=m.pk, receives=m.receives + 1)
        if not held or (served and len(held) == len(served)):
            self.held_since[function] = now
        return used

    def _due(self, pk: str) -> float | None:
        return self.due.get(pk)

    def _serve_stream(self, now: float) -> float:
        """The matcher: one invocation at a time per shard, 100 records a batch, in order."""
        table_wcu = self.world.table_w.rate("table", now)
        shards = max(4, math.ceil(table_wcu / quotas.PARTITION_WRITE_UNITS_S))
        self.peak_shards = max(self.peak_shards, shards)
        batch = self.batch["matcher"]
        parallel = shards * (self.s.matcher_parallelization or self.knobs.get("MatcherFunction.parallelization", 1))
        capacity = parallel * batch / self.duration["matcher"]  # records a second
        self._stream_credit += capacity / self.weight
        take = 0
        while take < len(self.stream) and self._stream_credit > 0:
            take += 1
            self._stream_credit -= 1
        if take == len(self.stream):
            self._stream_credit = min(self._stream_credit, capacity / self.weight)  # idle capacity is not banked
        if not take:
            return self._concurrency("matcher", 0.0, now, parallel)
        if take:
            if not self.held["matcher"]:
                self.held_since["matcher"] = now
            self.held["matcher"].extend(self.stream[:take])
            self.stream = self.stream[take:]
        held = self.held["matcher"]
        retry: list[tuple[dict, int]] = []
        while held and (len(held) >= batch or now - self.held_since["matcher"] >= HOLD_S):
            chunk, held[:] = held[:batch], held[batch:]
            answer = self._run("matcher", lambda c=chunk: self.matcher.handle_batch([r for r, _ in c]), len(chunk))
            failures = [f["itemIdentifier"] for f in answer.get("batchItemFailures", [])]
            if failures:
                first = next(i for i, (r, _) in enumerate(chunk) if r["dynamodb"]["SequenceNumber"] == failures[0])
                for record, tries in chunk[first:]:
                    if tries + 1 > STREAM_RETRIES:
                        self.dropped["stream records past MaximumRetryAttempts"] += self.weight
                    else:
                        retry.append((record, tries + 1))
        self.stream = retry + self.stream
        return self._concurrency("matcher", take * self.weight / batch * self.duration["matcher"], now, parallel)

    def _concurrency(self, function: str, busy_s: float, now: float, limit: float) -> float:
        """Invocations running, averaged over a simulated minute (the sample serves in lumps)."""
        meter = self.busy[function]
        meter.add(function, busy_s, now)
        used = min(limit, meter.rate(function, now))
        stats = self.stats[function]
        stats.peak_concurrency = max(stats.peak_concurrency, used)
        stats.concurrency_seconds += busy_s
        return used

    def run(self) -> ScaleRun:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        self.generate()
        horizon = self.s.seconds + 2 * HOUR  # the hour of load, then two hours to drain
        arrival = 0
        now = 0.0
        ages = defaultdict(float)
        for second in range(int(horizon)):
            now = float(second)
            self.world.now = now + 0.5
            while arrival < len(self.arrivals) and self.arrivals[arrival][0] < now + 1:
                at, _, body, pk = self.arrivals[arrival]
                self.events.put(body, at, self.weight, pk=pk)
                arrival += 1
            self.world.heartbeat_weight = max(1.0, self.stats["ingest"].peak_concurrency)
            total = self._serve_queue("ingest", self.events, self.ingest.handle_batch, now)
            total += self._serve_queue("sweeper", self.timers, self.sweeper.handle_timers, now)
            total += self._serve_stream(now)
            self.peak_total_concurrency = max(self.peak_total_concurrency, total)
            for queue in (self.events, self.timers):
                ages[queue.name] = max(ages[queue.name], queue.oldest_age(now))
            drained = not (self.events.heap or self.stream or self.timers.heap or any(self.held.values()))
            if second > self.s.seconds and arrival >= len(self.arrivals) and drained:
                break
        self._heap_peaks()
        return self._result(now, ages, time.perf_counter() - wall0, time.process_time() - cpu0)

    def _heap_peaks(self) -> None:
        """Python heap allocated during one more batch of each function (tracemalloc), a few batches each."""
        from crrmon_local import emulator
        from crrmon_local.bench import workload

        self.world.weight = 0.0  # nothing of this counts against quotas or the bill
        bodies = [
            emulator.eventbridge_object_event(
                bucket=SOURCE,
                key=f"heap/{i}",
                version_id=uuid.uuid4().hex,
                time_s=self.world.epoch,
                region=REGION,
                account=ACCOUNT,
                size=1000,
                etag=uuid.uuid4().hex,
            )
            for i in range(10)
        ]
        events = [{"messageId": f"h{i}", "body": b, "attributes": {}} for i, b in enumerate(bodies)]
        timers = [
            {
                "messageId": f"t{i}",
                "body": json.dumps(
                    {
                        "pk": json.loads(b)["detail"]["object"]["version-id"] + "#heap/" + str(i),
                        "due": int(self.world.epoch),
                        "attempt": 0,
                    }
                ),
            }
            for i, b in enumerate(bodies)
        ]
        tracemalloc.start()
        for function, run in (
            ("ingest", lambda: self.ingest.handle_batch(events)),
            ("matcher", lambda: self.matcher.handle_batch(workload.stream_records(100)["Records"])),
            ("sweeper", lambda: self.sweeper.handle_timers(timers)),
        ):
            tracemalloc.reset_peak()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                run()
            self.stats[function].heap_peak_bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()

    def _result(self, end: float, ages: dict[str, float], wall: float, cpu: float) -> ScaleRun:
        s, world = self.s, self.world
        unchecked = [
            end - due
            for pk in self.world.replicas
            if pk not in self.first_check and (due := self._due(pk)) is not None and due < end
        ]
        overdue_delay = [
            self.overdue_at[pk] - self.due[pk] for pk in self.late if pk in self.overdue_at and pk in self.due
        ]
        lost_detail = dict(self.dropped)
        if self.sqs.parked:
            lost_detail["events parked in the dead-letter queue"] = self.sqs.parked
        hottest = {
            "table/index key, writes": world.partition_w.hottest(),
            "table/index key, reads": world.partition_r.hottest(),
        }

        def need(function: str, queue_rate: float) -> float:
            durations = self.stats[function].durations
            return queue_rate / self.batch[function] * (statistics.median(durations) if durations else 0.0)

        uses = [
            quotas.Use(
                "IngestFunction MaximumConcurrency",
                need("ingest", self.events.peak_rate(self.demand_window)),
                self.concurrency["ingest"],
                "IngestConcurrency (template parameter), or more memory",
            ),
            quotas.Use(
                "SweeperFunction MaximumConcurrency",
                need("sweeper", self.timers.peak_rate(self.demand_window)),
                self.concurrency["sweeper"],
                "SweeperConcurrency (template parameter)",
            ),
            quotas.Use(
                "matcher: one invocation per stream shard",
                need("matcher", peak_rate(self.stream_arrivals, self.demand_window)),
                self.peak_shards,
                "ParallelizationFactor on the stream mapping (1 to 10)",
            ),
            quotas.Use(
                "Lambda account concurrency",
                self.peak_total_concurrency,
                quotas.LAMBDA_ACCOUNT_CONCURRENCY,
                "Service Quotas: Lambda concurrent executions",
            ),
            quotas.Use(
                "DynamoDB write units per partition key (table or index)",
                world.partition_w.hottest()[1],
                quotas.PARTITION_WRITE_UNITS_S,
                "spread the hot key (index key shards)",
            ),
            quotas.Use(
                "DynamoDB read units per partition key",
                world.partition_r.hottest()[1],
                quotas.PARTITION_READ_UNITS_S,
                "spread the hot key",
            ),
            quotas.Use(
                "DynamoDB on-demand table write units",
                world.table_w.hottest()[1],
                quotas.TABLE_WRITE_UNITS_S,
                "Service Quotas: table-level write throughput (on-demand); warm throughput for a new table",
            ),
            quotas.Use(
                "Firehose bytes per second",
                world.firehose_bytes.hottest()[1],
                s.firehose_bytes_s,
                "Firehose limit increase (Kinesis Data Firehose Limits form)",
            ),
            quotas.Use(
                "Firehose requests per second",
                world.firehose_requests.hottest()[1],
                quotas.FIREHOSE_REQUESTS_S,
                "Firehose limit increase",
            ),
            quotas.Use(
                "Firehose records per second",
                world.firehose_records.hottest()[1],
                quotas.FIREHOSE_RECORDS_S,
                "Firehose limit increase",
            ),
            quotas.Use(
                "HEAD budget per bucket (HeadRequestsPerSecond, shared)",
                world.heads_by_bucket.hottest()[1],
                self.config.head_requests_per_second,
                "HeadRequestsPerSecond (template parameter): checks past the budget are marked OVERDUE and put off",
            ),
            quotas.Use(
                "S3 HEAD per prefix", world.s3_heads.hottest()[1], quotas.S3_HEAD_PER_PREFIX_S, "more key prefixes"
            ),
            quotas.Use("SQS in-flight messages", self.peak_in_flight, quotas.SQS_IN_FLIGHT, "none needed"),
            quotas.Use("SNS publishes", world.sns.hottest()[1], quotas.SNS_PUBLISH_S, "Service Quotas: SNS Publish"),
        ]
        objects = s.rate * s.seconds
        run = ScaleRun(
            scenario=s,
            weight=self.weight,
            knobs={
                **self.knobs,
                "windows": self.world.windows,
                "demand_window": self.demand_window,
                "ingest concurrency": self.concurrency["ingest"],
                "sweeper concurrency": self.concurrency["sweeper"],
            },
            detection=sorted(self.first_check.values()),
            unchecked=len(unchecked),
            unchecked_floor=min(unchecked) if unchecked else 0.0,
            overdue_delay=sorted(overdue_delay),
            lost=sum(lost_detail.values()),
            lost_detail=lost_detail,
            throttles=dict(world.throttles),
            functions=self.stats,
            queue_age=dict(ages),
            queue_backlog={"EventsQueue": self.events.peak_backlog, "TimerQueue": self.timers.peak_backlog},
            uses=uses,
            units=dict(world.units),
            calls=dict(world.calls),
            hottest=hottest,
            object_pk_peak_wcu=world.object_pk_peak_wcu,
            wall_s=wall,
            cpu_s=cpu,
            simulated_s=end,
            objects=objects,
            botocore_cpu=dict(self.botocore.per_op),
        )
        run.bill = bill(run, self.memory_mb)
        run.usd_per_million = cost.total_per_million(run.bill, cost.load_prices())
        return run


def bill(run: ScaleRun, memory_mb: int) -> list[cost.Line]:
    """Per object at this rate, from the run's own counts (cost.py's prices and rounding)."""
    n = run.objects
    # Full matcher batches: each PutRecordBatch packs its lines into one record, rounded up to 5 KB.
    invocations = run.functions["matcher"].invocations or 1
    per_call = run.units.get("firehose.raw_bytes", 0) / invocations
    firehose_gb = invocations * cost.firehose_billed_bytes([per_call]) / cost.GIB if per_call else 0.0
    lines = [
        cost.Line(
            "DynamoDB", "write units, table", run.units.get("dynamodb.write_units", 0) / n, "dynamodb_write_unit"
        ),
        cost.Line(
            "DynamoDB",
            "write units, indexes",
            sum(v for k, v in run.units.items() if k.startswith("dynamodb.index_write_units")) / n,
            "dynamodb_write_unit",
        ),
        cost.Line("DynamoDB", "read units", run.units.get("dynamodb.read_units", 0) / n, "dynamodb_read_unit"),
        cost.Line(
            "DynamoDB",
            "stream reads by Lambda triggers",
            run.functions["matcher"].invocations / n,
            "dynamodb_stream_read_lambda",
        ),
        cost.Line("SQS", "EventsQueue: SendMessage per event", run.functions["ingest"].messages / n, "sqs_request"),
        cost.Line(
            "SQS",
            "Receive + DeleteMessageBatch per batch",
            2 * (run.functions["ingest"].invocations + run.functions["sweeper"].invocations) / n,
            "sqs_request",
        ),
        cost.Line(
            "SQS",
            "SendMessage(Batch) by the functions",
            (run.calls.get("sqs.SendMessageBatch", 0) + run.calls.get("sqs.SendMessage", 0)) / n,
            "sqs_request",
        ),
        cost.Line("S3", "HeadObject", run.calls.get("s3.HeadObject", 0) / n, "s3_get_request"),
        cost.Line(
            "SNS",
            "forwarder publishes (replica events) and digests",
            (n + run.calls.get("sns.Publish", 0)) / n,
            "sns_publish",
        ),
        cost.Line("Firehose", "archive, packed records, 5 KB rounding", firehose_gb / n, "firehose_ingest_gb"),
    ]
    for name, stats in run.functions.items():
        lines.append(cost.Line("Lambda", f"{name} invocations", stats.invocations / n, "lambda_request"))
        lines.append(
            cost.Line(
                "Lambda", f"{name} duration ({memory_mb} MB arm64)", stats.gb_seconds / n, "lambda_gb_second_arm64"
            )
        )
    return lines


def scenarios(quick: bool) -> list[Scenario]:
    """100, 1,000 and 10,000 objects/s as template.yaml deploys them; 10,000/s with the knobs that bind raised;
    a 30-minute outage of the destination at 1,000/s, as deployed and with the knobs raised."""
    sample = 1_500 if quick else 24_000
    return [
        Scenario("100/s", 100, sample),
        Scenario("1,000/s", 1_000, sample),
        Scenario("10,000/s", 10_000, sample),
        Scenario(
            "10,000/s, knobs raised",
            10_000,
            sample,
            ingest_concurrency=300,
            firehose_bytes_s=5 * quotas.FIREHOSE_BYTES_S,
        ),
        Scenario("1,000/s, destination outage 30 min", 1_000, sample, outage=(1200.0, 3000.0)),
        Scenario(
            "1,000/s, destination outage 30 min, knobs raised",
            1_000,
            sample,
            outage=(1200.0, 3000.0),
            ingest_concurrency=60,
            sweeper_concurrency=20,
        ),
    ]


def run(quick: bool = False, only: list[str] | None = None) -> list[ScaleRun]:
    warnings.filterwarnings("ignore")
    knobs = template_knobs()
    botocore = BotocoreCpu()
    out = []
    for scenario in scenarios(quick):
        if only and scenario.name not in only:
            continue
        out.append(Simulation(scenario, knobs, botocore).run())
    return out
