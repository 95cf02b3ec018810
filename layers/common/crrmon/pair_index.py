"""The sparse per-pair indexes Overdue and Failed: their hash key values are sharded, and read back merged.

An item joins an index under `<source>><destination>#<shard>`, the shard a stable hash of the item's key
(pk and dest) modulo SHARDS, so that one pair's writes spread over SHARDS partition key values. A reader
asks every shard of the pair (and the bare pair, see `key_values`) and merges their answers in the
index's order: by the range attribute, then by shard, then in each shard's own order. Bucket names hold
no '#', so the pair is everything before the first '#'. The shard never leaves the table: the archive,
metrics, alerts and the CLI show the pair.
"""

from __future__ import annotations

import heapq
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

# DynamoDB takes about 1,000 write units/s per partition key value, a GSI's too, and a throttled GSI
# throttles the table's writes (ingest and sweeper with them). In a destination outage at 10,000
# objects/s every object enters the Overdue index and later leaves it, one write unit each (the projection
# is well under 1 KB for keys of ordinary length). 10,000 / 32 = 313 write units/s per shard entering: a
# third of the limit; 625 if objects enter and leave at full rate at once (the outage ends while the
# intake goes on): still under it, with room for the hash's unevenness (about +-6% per second at that
# rate) and keys long enough to cost two units. DynamoDB's split for heat cannot help one value: the
# range keys (first_seen, decided_at) grow with time. Readers pay one Query per shard: the sweeper's
# oldest-overdue gauge makes 33 Limit=1 Queries per pair a minute, its backlog gauge 33 COUNT Queries
# per age band it counts (none for a pair with nothing overdue). The count may grow, never shrink while
# items are indexed: readers ask shards 0..SHARDS-1 only.
SHARDS = 32
QUERY_THREADS = 8  # concurrent shard Queries; botocore's client keeps 10 connections per host
_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True)
class PairIndex:
    """The key attributes of one sparse per-pair index (its name is configuration)."""

    hash_attribute: str
    range_attribute: str

    def cursor(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Where a reading stopped: the key of an item as the index answered it (DynamoDB JSON)."""
        return {name: raw[name] for name in ("pk", "dest", self.hash_attribute, self.range_attribute)}


OVERDUE = PairIndex("ovd_pair", "first_seen")  # only OVERDUE items carry ovd_pair
FAILED = PairIndex("fail_pair", "decided_at")  # only FAILED items carry fail_pair


def shard_of(pk: str, dest: str) -> int:
    """A stable hash (the same in every process, unlike hash()) of the item's key, modulo SHARDS."""
    return zlib.crc32(f"{pk}\x00{dest}".encode()) % SHARDS


def key_value(pair: str, pk: str, dest: str) -> str:
    """The index hash key value the item `pk`/`dest` of `pair` is written with."""
    return f"{pair}#{shard_of(pk, dest)}"


def key_values(pair: str) -> list[str]:
    """Every index hash key value the items of `pair` may carry, in merge order: its shards, then the bare
    pair. Items indexed before the keys were sharded (a stack upgraded while items were OVERDUE or FAILED)
    keep the bare pair until they leave the index, so readers ask for it too."""
    return [f"{pair}#{n}" for n in range(SHARDS)] + [pair]


def pair_of(value: str) -> str:
    """The pair of an index hash key value, sharded or not."""
    return value.partition("#")[0]


def concurrently(function: Callable[[_T], _R], values: Iterable[_T]) -> list[_R]:
    """function(value) for each value, up to QUERY_THREADS at a time, answers in order of the values."""
    values = list(values)
    if len(values) < 2:
        return [function(v) for v in values]
    with ThreadPoolExecutor(max_workers=min(QUERY_THREADS, len(values))) as pool:
        return list(pool.map(function, values))


@dataclass
class _Shard:
    position: int
    value: str
    low: int | None
    high: int | None
    start: dict[str, Any] | None
    items: deque = field(default_factory=deque)
    done: bool = False
    taken: int = 0

    def __post_init__(self) -> None:
        self.bound(self.low, self.high)

    def bound(self, low: int | None, high: int | None) -> None:
        """Read only range values from `low` to `high` (inclusive); none at all when low > high (a Query
        with such a BETWEEN is refused)."""
        self.low, self.high = low, high
        self.done = low is not None and high is not None and low > high


def _key_condition(keys: PairIndex, value: str, low: int | None, high: int | None) -> dict[str, Any]:
    """A Query's key condition: the hash key value `value`, the range attribute from `low` to `high`
    (inclusive; None: unbounded)."""
    condition, names = "#h = :p", {"#h": keys.hash_attribute}
    values: dict[str, Any] = {":p": {"S": value}}
    if low is not None:
        values[":lo"] = {"N": str(low)}
    if high is not None:
        values[":hi"] = {"N": str(high)}
    if low is not None and high is not None:
        condition += " AND #r BETWEEN :lo AND :hi"
    elif low is not None:
        condition += " AND #r >= :lo"
    elif high is not None:
        condition += " AND #r <= :hi"
    if low is not None or high is not None:
        names["#r"] = keys.range_attribute
    return {"KeyConditionExpression": condition, "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}


def items(
    dynamodb,
    *,
    table: str,
    index: str,
    keys: PairIndex,
    pair: str,
    after: dict[str, Any] | None = None,
    low: int | None = None,
    high: int | None = None,
    newest_first: bool = False,
    batch: int | None = None,
) -> Iterator[dict[str, Any]]:
    """The items (DynamoDB JSON) of `pair` on the index, oldest first (`newest_first`: newest first) by the
    range attribute, which `low`/`high` bound (inclusive); after the item whose `keys.cursor` is `after`.

    Every shard is asked at once (`batch` items a Query; None: DynamoDB's pages), a shard again when the
    merge has used what it gave. Raises ValueError at once when `after` is not a cursor of this pair.
    """
    values = key_values(pair)
    shards = [_Shard(n, value, low, high, None) for n, value in enumerate(values)]
    if after is not None:
        try:
            after = keys.cursor(after)
            at = values.index(after[keys.hash_attribute]["S"])
            edge = int(after[keys.range_attribute]["N"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("not a cursor of this pair's index items") from None
        for shard in shards:
            _resume(shard, at, edge, after, newest_first)

    def fetch(shard: _Shard) -> _Shard:
        request: dict[str, Any] = {
            "TableName": table,
            "IndexName": index,
            **_key_condition(keys, shard.value, shard.low, shard.high),
            "ScanIndexForward": not newest_first,
        }
        if batch is not None:
            request["Limit"] = batch
        if shard.start:
            request["ExclusiveStartKey"] = shard.start
        answer = dynamodb.query(**request)
        shard.items.extend(answer.get("Items", []))
        shard.start = answer.get("LastEvaluatedKey")
        shard.done = not shard.start
        return shard

    def order(shard: _Shard, raw: dict[str, Any]) -> tuple[int, int, int]:
        value = int(raw[keys.range_attribute]["N"])
        shard.taken += 1
        return (-value if newest_first else value, shard.position, shard.taken)

    def merged() -> Iterator[dict[str, Any]]:
        live = [s for s in shards if not s.done]
        heap = []
        for shard in concurrently(fetch, live):
            if shard.items:
                raw = shard.items.popleft()
                heap.append((order(shard, raw), raw, shard.position))
        heapq.heapify(heap)
        while heap:
            _, raw, position = heapq.heappop(heap)
            yield raw
            shard = shards[position]
            while not shard.items and not shard.done:
                fetch(shard)
            if shard.items:
                following = shard.items.popleft()
                heapq.heappush(heap, (order(shard, following), following, position))

    return merged()


def _resume(shard: _Shard, at: int, edge: int, after: dict[str, Any], newest_first: bool) -> None:
    """Bound `shard` to what follows the item `after` (in shard `at`, range value `edge`) in merge order.

    The merge took, from the shards before `at`, every item up to and including the range value `edge`;
    from the shards after it, every item before `edge`; from shard `at`, everything up to `after` itself.
    """
    if shard.position == at:
        shard.start = after
        return
    took_edge = shard.position < at  # the merge took this shard's items at `edge` too
    if newest_first:
        bound = edge - 1 if took_edge else edge
        shard.bound(shard.low, bound if shard.high is None else min(shard.high, bound))
    else:
        bound = edge + 1 if took_edge else edge
        shard.bound(bound if shard.low is None else max(shard.low, bound), shard.high)


@dataclass(frozen=True)
class Tally:
    """What COUNT Queries found: `items`, exact when `complete`; otherwise a floor (a key value held more
    than the `most` items asked for)."""

    items: int
    complete: bool = True


def tally(
    dynamodb,
    *,
    table: str,
    index: str,
    keys: PairIndex,
    pair: str,
    low: int | None = None,
    high: int | None = None,
    most: int | None = None,
) -> Tally:
    """How many items of `pair` the index holds with the range attribute from `low` to `high` (inclusive;
    None: unbounded): a COUNT Query per shard (and the bare pair), paged, concurrently. COUNT returns no
    items, but DynamoDB reads (and bills) the index entries it counts. `most` bounds what each key value
    may count: a key value that reaches it stops there, and the tally is then not complete."""
    if low is not None and high is not None and low > high:
        return Tally(0)  # DynamoDB refuses such a BETWEEN; nothing can be in it

    def one(value: str) -> Tally:
        total, start = 0, None
        while True:
            request: dict[str, Any] = {
                "TableName": table,
                "IndexName": index,
                **_key_condition(keys, value, low, high),
                "Select": "COUNT",
            }
            if most is not None:
                request["Limit"] = most - total
            if start:
                request["ExclusiveStartKey"] = start
            answer = dynamodb.query(**request)
            total += answer.get("Count", 0)
            start = answer.get("LastEvaluatedKey")
            if not start:
                return Tally(total)
            if most is not None and total >= most:
                return Tally(total, complete=False)

    found = concurrently(one, key_values(pair))
    return Tally(sum(t.items for t in found), all(t.complete for t in found))


def count(dynamodb, *, table: str, index: str, keys: PairIndex, pair: str) -> int:
    """How many items of `pair` the index holds: every one counted (`tally` without bounds)."""
    return tally(dynamodb, table=table, index=index, keys=keys, pair=pair).items
