"""The ReplicationTable: one item per object version and destination (layout in docs/internals.md).

Every write is one conditional UpdateItem, so the same event twice changes nothing, a replica may
arrive before its source, and a final verdict is written exactly once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from crrmon import pair_index
from crrmon.model import Status
from crrmon.pair_index import FAILED, OVERDUE

# Items that are not about an object version: their pk starts with "__" and, unlike every object
# version's pk, holds no "#". Stream readers skip them.
LEASE_PK = "__lease__"
HEARTBEAT_PK = "__heartbeat__"  # sort key: a watched bucket; `last` = epoch s an event about it last arrived
CANARY_PK = "__canary__"  # sort key: a source bucket; `last` = epoch s of the last canary, `versions` to clean
BUDGET_PK = "__budget__"  # sort key: a bucket; `tat` = epoch ms its HEAD budget is spent until (crrmon.evidence)
RECONCILE_PK = "__reconcile__"  # sort key: a source bucket; where its listing pass stands (crrmon.reconcile)
PROOF_PK = "__proof__"  # sort key: "<source>><destination>"; where its daily proof stands (crrmon.proof)
SLO_PK = "__slo__"  # sort key: a pair's name, its SLO burn policies firing; "*": the last evaluation (crrmon.slo)
FAILED_INDEX = (
    "Failed"  # sparse: only FAILED items carry `fail_pair` (hash) and `decided_at` (range): crrmon.pair_index
)
BATCH_GET_KEYS = 100  # BatchGetItem takes up to 100 keys per request
BATCH_GET_TRIES = 6
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def make_pk(version_id: str, key: str) -> str:
    """Version ID first: version IDs never hold '#', so the key after it may hold anything."""
    return f"{version_id}#{key}"


def is_internal(pk: str | None) -> bool:
    """Lease, heartbeat and canary bookkeeping items: never an object version."""
    return bool(pk) and pk.startswith("__") and "#" not in pk


def split_pk(pk: str) -> tuple[str, str]:
    version_id, _, key = pk.partition("#")
    return version_id, key


def pair_name(source_bucket: str, destination_bucket: str) -> str:
    return f"{source_bucket}>{destination_bucket}"


def from_image(image: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB JSON (a stream image or a low-level GetItem answer) -> plain Python, numbers as int/float."""
    out = {}
    for name, value in image.items():
        plain = _deserializer.deserialize(value)
        if isinstance(plain, Decimal):
            plain = int(plain) if plain == plain.to_integral_value() else float(plain)
        out[name] = plain
    return out


def _value(v: Any) -> dict:
    if isinstance(v, float):
        v = Decimal(str(v))
    return _serializer.serialize(v)


@dataclass(frozen=True)
class Verdict:
    status: Status
    reason: str | None = None
    verified_by: str | None = None
    latency_ms: int | None = None
    missed_rpo: bool = False


class _Update:
    """Builds one UpdateItem expression: names and values are always placeholders."""

    def __init__(self) -> None:
        self.sets: list[str] = []
        self.removes: list[str] = []
        self.names: dict[str, str] = {}
        self.values: dict[str, dict] = {}

    def _name(self, attribute: str) -> str:
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, v: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = _value(v)
        return placeholder

    def set(self, attribute: str, v: Any) -> None:
        if v is not None:
            self.sets.append(f"{self._name(attribute)} = {self.value(v)}")

    def set_if_absent(self, attribute: str, v: Any) -> None:
        if v is not None:
            n = self._name(attribute)
            self.sets.append(f"{n} = if_not_exists({n}, {self.value(v)})")

    def remove(self, attribute: str) -> None:
        self.removes.append(self._name(attribute))

    def name(self, attribute: str) -> str:
        for placeholder, existing in self.names.items():
            if existing == attribute:
                return placeholder
        return self._name(attribute)

    def expression(self) -> str:
        parts = []
        if self.sets:
            parts.append("SET " + ", ".join(self.sets))
        if self.removes:
            parts.append("REMOVE " + ", ".join(self.removes))
        return " ".join(parts)


class Store:
    def __init__(
        self,
        dynamodb,
        table_name: str,
        overdue_index_name: str = "Overdue",
        *,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.dynamodb = dynamodb
        self.table_name = table_name
        self.overdue_index_name = overdue_index_name
        self.sleep = sleep  # back-off between retries of unprocessed keys

    def _update(self, pk: str, dest: str, update: _Update, condition: str | None = None, returns: str = "NONE"):
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"pk": {"S": pk}, "dest": {"S": dest}},
            "UpdateExpression": update.expression(),
            "ExpressionAttributeNames": update.names,
            "ReturnValues": returns,
        }
        if update.values:  # DynamoDB refuses an empty map (an update that only removes attributes)
            kwargs["ExpressionAttributeValues"] = update.values
        if condition:
            kwargs["ConditionExpression"] = condition
        return self.dynamodb.update_item(**kwargs)

    def record_observation(
        self,
        pk: str,
        dest: str,
        *,
        now_ms: int,
        due_s: int,
        expires_s: int,
        fields: Mapping[str, Any],
        due_from_source: bool = False,
        rpo: Mapping[str, Any] | None = None,
    ) -> tuple[bool, int]:
        """Merge one observation into the item; each attribute keeps the first value seen.

        The deadline is the first one set, except that a source observation (`due_from_source`) sets
        it from the source version's own time: a replica's event seen first only bounds it from above.
        `rpo` (the RPO class the deadline was computed with: `rpo_c`, `rpo_s`) follows the same rule as
        the deadline, so the two always agree.
        Returns (whether this write created the item, the item's deadline).
        """
        update = _Update()
        update.set_if_absent("first_seen", now_ms)
        for attribute, v in {"due": due_s, **(rpo or {})}.items():
            if due_from_source:
                update.set(attribute, v)
            else:
                update.set_if_absent(attribute, v)
        update.set_if_absent("expires_at", expires_s)
        for attribute, v in fields.items():
            update.set_if_absent(attribute, v)
        # ALL_OLD: the item as it was (nothing when it did not exist). Costs no more than NONE.
        old = from_image(self._update(pk, dest, update, returns="ALL_OLD").get("Attributes", {}))
        return "first_seen" not in old, due_s if due_from_source else old.get("due", due_s)

    def record_matching_replica(
        self,
        pk: str,
        dest: str,
        *,
        fields: Mapping[str, Any],
        size: int,
        etag: str | None,
        replica_time_ms: int,
        now_ms: int,
        expires_s: int,
    ) -> bool:
        """The replica's observation and its COMPLETED verdict in one write (the happy path's only write
        for the replica), or nothing: False when the item is not exactly in the state that makes this the
        verdict `crrmon.verify.decide` would give.

        That state: the source is recorded, undecided, not a delete marker, not out of scope, without a
        failure report; the replica is the same size (and ETag, when `etag` is given, so verified by ETag),
        and arrived by the deadline. Latency is computed by DynamoDB from the stored source time.
        """
        update = _Update()
        for attribute, v in fields.items():
            update.set_if_absent(attribute, v)
        update.set("status", Status.COMPLETED.value)
        update.set("verified_by", "etag" if etag else "size")
        update.set("missed_rpo", False)
        update.set("decided_at", now_ms)
        update.set("expires_at", expires_s)
        s_time = update.name("s_time")
        replica_time = update.value(replica_time_ms)
        update.sets.append(f"{update.name('latency_ms')} = {replica_time} - {s_time}")
        status, due = update.name("status"), update.name("due")
        conditions = [
            f"attribute_exists({s_time})",
            f"attribute_not_exists({status})",
            f"{update.name('s_size')} = {update.value(size)}",
            f"{s_time} <= {replica_time}",
            f"{due} >= {update.value(-(-replica_time_ms // 1000))}",  # not late: r_time <= due * 1000
            f"attribute_not_exists({update.name('s_dm')})",
            f"attribute_not_exists({update.name('oos')})",
            f"attribute_not_exists({update.name('fail')})",
        ]
        if etag:
            conditions.append(f"{update.name('s_etag')} = {update.value(etag)}")
        return self._conditional(pk, dest, update, " AND ".join(conditions))

    def write_verdict(
        self,
        pk: str,
        dest: str,
        verdict: Verdict,
        *,
        pair: str,
        now_ms: int,
        retention_s: int,
        evidence: Mapping[str, Any] | None = None,
    ) -> bool:
        """Write a final verdict once, with any evidence found for it (a HEAD's answer) that the item lacks.

        The item stays `retention_s` more (TTL); a FAILED one joins the sparse Failed index under one of
        `pair`'s shards (crrmon.pair_index), and an OVERDUE one leaves the Overdue index.
        False when the item already has a final verdict (or is gone).
        """
        if not verdict.status.final:
            raise ValueError("write_verdict takes final statuses; use mark_overdue")
        update = _Update()
        update.set("status", verdict.status.value)
        update.set("reason", verdict.reason)
        update.set("verified_by", verdict.verified_by)
        update.set("latency_ms", verdict.latency_ms)
        update.set("missed_rpo", verdict.missed_rpo)
        update.set("decided_at", now_ms)
        update.set("expires_at", now_ms // 1000 + retention_s)
        if verdict.status is Status.FAILED:
            update.set(FAILED.hash_attribute, pair_index.key_value(pair, pk, dest))
        for attribute, v in (evidence or {}).items():
            update.set_if_absent(attribute, v)
        update.remove(OVERDUE.hash_attribute)
        update.remove("ovd_since")
        status = update.name("status")
        overdue = update.value(Status.OVERDUE.value)
        condition = f"attribute_exists(pk) AND (attribute_not_exists({status}) OR {status} = {overdue})"
        return self._conditional(pk, dest, update, condition)

    def mark_overdue(self, pk: str, dest: str, *, pair: str, now_ms: int) -> bool:
        """Pending -> OVERDUE (not final): joins the sparse Overdue index under one of `pair`'s shards
        (crrmon.pair_index). False if not pending."""
        update = _Update()
        update.set("status", Status.OVERDUE.value)
        update.set("missed_rpo", True)
        update.set(OVERDUE.hash_attribute, pair_index.key_value(pair, pk, dest))
        update.set("ovd_since", now_ms)
        condition = f"attribute_exists(pk) AND attribute_not_exists({update.name('status')})"
        return self._conditional(pk, dest, update, condition)

    def _conditional(self, pk: str, dest: str, update: _Update, condition: str) -> bool:
        try:
            self._update(pk, dest, update, condition)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def items_of(self, pk: str) -> list[dict[str, Any]]:
        """Every destination item of one object version.

        Eventually consistent (half the read cost): it is read at deadlines, long after the writes it
        depends on, and every decision written from it is conditional on the item's current state.
        """
        answer = self.dynamodb.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
        )
        return [from_image(item) for item in answer.get("Items", [])]

    def items_for(self, keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """The items of these (pk, dest) keys that exist: BatchGetItem, 100 keys a request, eventually
        consistent (as `items_of`, and for the same reason)."""
        return self._batch_get(keys, consistent=False)

    def get(self, pk: str, dest: str) -> dict[str, Any] | None:
        answer = self.dynamodb.get_item(
            TableName=self.table_name, Key={"pk": {"S": pk}, "dest": {"S": dest}}, ConsistentRead=True
        )
        return from_image(answer["Item"]) if "Item" in answer else None

    def oldest_overdue(self, pair: str) -> dict[str, Any] | None:
        """The longest-waiting OVERDUE item of a pair: a Limit=1 Query on each shard of the sparse index
        (and on the bare pair, for items indexed before sharding), asked concurrently, the oldest answer."""
        first = next(
            pair_index.items(
                self.dynamodb,
                table=self.table_name,
                index=self.overdue_index_name,
                keys=OVERDUE,
                pair=pair,
                batch=1,
            ),
            None,
        )
        return from_image(first) if first else None

    def count_overdue(
        self, pair: str, *, low: int | None = None, high: int | None = None, most: int | None = None
    ) -> pair_index.Tally:
        """How many OVERDUE items of a pair were first seen from `low` to `high` (epoch ms, inclusive): COUNT
        Queries on the sparse index's shards, at most `most` items counted per shard (crrmon.pair_index.tally)."""
        return pair_index.tally(
            self.dynamodb,
            table=self.table_name,
            index=self.overdue_index_name,
            keys=OVERDUE,
            pair=pair,
            low=low,
            high=high,
            most=most,
        )

    def acquire_lease(self, name: str, holder: str, *, now_s: int, duration_s: int) -> bool:
        """A lease item so that scheduled runs never overlap: taken when free or lapsed."""
        return self._lease(
            name, holder, until_s=now_s + duration_s, condition="attribute_not_exists(pk) OR #u < :v", value=now_s
        )

    def release_lease(self, name: str, holder: str, *, now_s: int) -> None:
        """End a lease early (only its holder can): the next scheduled run need not wait for it to lapse."""
        self._lease(name, holder, until_s=now_s - 1, condition="holder = :v", value=holder)

    def _lease(self, name: str, holder: str, *, until_s: int, condition: str, value: int | str) -> bool:
        try:
            self.dynamodb.put_item(
                TableName=self.table_name,
                Item={
                    "pk": {"S": LEASE_PK},
                    "dest": {"S": name},
                    "holder": {"S": holder},
                    "until": {"N": str(until_s)},
                    "expires_at": {"N": str(until_s + 86400)},
                },
                ConditionExpression=condition,
                **({"ExpressionAttributeNames": {"#u": "until"}} if "#u" in condition else {}),
                ExpressionAttributeValues={":v": _value(value)},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # ---- bookkeeping items: heartbeats, canaries, reconciliation ------------------------------------------------
    def beat(self, bucket: str, now_s: int, *, only_if_absent: bool = False) -> None:
        """Record that an event about `bucket` arrived at `now_s` (never moves `last` backwards).

        `only_if_absent`: start the clock for a bucket that never sent an event (the schedule does this,
        so a bucket silent from the start is reported once SILENCE_MINUTES have passed).
        """
        update = _Update()
        if only_if_absent:
            update.set("last", now_s)
            update.set("baseline", True)
            condition = f"attribute_not_exists({update.name('last')})"
        else:
            update.set("last", now_s)
            update.remove("baseline")
            last = update.name("last")
            condition = f"attribute_not_exists({last}) OR {last} < {update.value(now_s)}"
        self._conditional(HEARTBEAT_PK, bucket, update, condition)

    def bookkeeping(self, pk: str, names: list[str]) -> dict[str, dict[str, Any]]:
        """The bookkeeping items `pk`/`name` for each name that has one: BatchGetItem, never a Scan."""
        items = self._batch_get([(pk, name) for name in names], consistent=True)
        return {item["dest"]: item for item in items}

    def existing(self, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (pk, dest) items exist. Eventually consistent, keys only (reconciliation)."""
        items = self._batch_get(keys, consistent=False, projection=("pk", "dest"))
        return {(item["pk"], item["dest"]) for item in items}

    def _batch_get(
        self, keys: list[tuple[str, str]], *, consistent: bool, projection: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        """BatchGetItem, 100 keys a request. Unprocessed keys (the table's throughput exceeded) are asked
        again after a jittered exponential back-off, as AWS advises; still unprocessed after 6 tries (about
        3 s), an error."""
        found: list[dict[str, Any]] = []
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), BATCH_GET_KEYS):
            request_keys = [{"pk": {"S": pk}, "dest": {"S": d}} for pk, d in unique[start : start + BATCH_GET_KEYS]]
            spec: dict[str, Any] = {"Keys": request_keys, "ConsistentRead": consistent}
            if projection:
                spec["ProjectionExpression"] = ", ".join(f"#p{i}" for i in range(len(projection)))
                spec["ExpressionAttributeNames"] = {f"#p{i}": name for i, name in enumerate(projection)}
            request = {self.table_name: spec}
            for attempt in range(BATCH_GET_TRIES):
                if attempt:
                    self.sleep(random.uniform(0, 0.05 * 2**attempt))
                answer = self.dynamodb.batch_get_item(RequestItems=request)
                found.extend(from_image(item) for item in answer.get("Responses", {}).get(self.table_name, []))
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
            if request:
                raise RuntimeError(f"BatchGetItem left {len(request[self.table_name]['Keys'])} keys unprocessed")
        return found

    def take_budget(self, name: str, *, now_ms: int, cost_ms: int, window_ms: int) -> bool:
        """Take `cost_ms` of a shared rate budget (GCRA: the item holds the time `tat` until which the budget
        is spent; a request fits while `tat` stays within `window_ms` of now). Conditional UpdateItems only,
        never a read: one write when the budget is idle, two when it is in use. False: the budget is spent."""
        expires_s = now_ms // 1000 + 86400
        idle = _Update()
        idle.set("tat", now_ms + cost_ms)
        idle.set("expires_at", expires_s)
        tat = idle.name("tat")
        if self._conditional(BUDGET_PK, name, idle, f"attribute_not_exists({tat}) OR {tat} <= {idle.value(now_ms)}"):
            return True
        busy = _Update()
        tat = busy.name("tat")
        busy.sets.append(f"{tat} = {tat} + {busy.value(cost_ms)}")
        busy.set("expires_at", expires_s)
        condition = f"{tat} > {busy.value(now_ms)} AND {tat} <= {busy.value(now_ms + window_ms - cost_ms)}"
        return self._conditional(BUDGET_PK, name, busy, condition)

    def hold_budget(self, name: str, *, until_ms: int, window_ms: int) -> None:
        """Nobody takes from the budget before `until_ms` (S3 asked to slow down): the budget is spent a
        whole window beyond it. A later hold stays."""
        update = _Update()
        update.set("tat", until_ms + window_ms)
        update.set("expires_at", until_ms // 1000 + 86400)
        tat = update.name("tat")
        condition = f"attribute_not_exists({tat}) OR {tat} < {update.value(until_ms + window_ms)}"
        self._conditional(BUDGET_PK, name, update, condition)

    def record_canary(self, bucket: str, entry: str, *, now_s: int) -> None:
        """A canary version was written: remember when, and `entry` ("<epoch s>:<version id>") to clean up."""
        update = _Update()
        update.set("last", now_s)
        versions = update.name("versions")
        self.dynamodb.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": CANARY_PK}, "dest": {"S": bucket}},
            UpdateExpression=(
                f"{update.expression()}, {versions} = list_append(if_not_exists({versions}, :empty), :new)"
            ),
            ExpressionAttributeNames=update.names,
            ExpressionAttributeValues={**update.values, ":empty": {"L": []}, ":new": {"L": [{"S": entry}]}},
        )

    def save_progress(self, pk: str, name: str, fields: dict[str, Any]) -> None:
        """Overwrite the named attributes of a bookkeeping item (None removes one). Single writer: a lease."""
        update = _Update()
        for attribute, value in fields.items():
            if value is None:
                update.remove(attribute)
            else:
                update.set(attribute, value)
        self._update(pk, name, update)
