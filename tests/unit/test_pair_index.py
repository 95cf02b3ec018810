"""Reading a pair's sharded index back in order, on the template's table (moto): every shard and the bare pair
merged by the range attribute, and a reading resumed from any item's cursor giving exactly what follows it."""

from __future__ import annotations

import pytest

from crrmon import pair_index
from crrmon.pair_index import FAILED, OVERDUE, SHARDS, key_value, pair_of

PAIR, DEST = "src>dst", "dst-usw2"


def put(ddb, pk: str, first_seen: int, *, legacy: bool = False, pair: str = PAIR) -> None:
    value = pair if legacy else key_value(pair, pk, DEST)
    ddb.put_item(
        TableName="t",
        Item={"pk": {"S": pk}, "dest": {"S": DEST}, "ovd_pair": {"S": value}, "first_seen": {"N": str(first_seen)}},
    )


@pytest.fixture
def indexed(ddb):
    """30 items of the pair, many sharing a first_seen (ties across shards), three indexed before sharding;
    and one item of another pair, which no reading of this pair may return."""
    for i in range(30):
        put(ddb, f"v{i}#k/{i}", 1_000 * (i % 7), legacy=i % 10 == 3)
    put(ddb, "v99#other", 500, pair="src>elsewhere")
    return ddb


def read(ddb, **kwargs) -> list[dict]:
    return list(pair_index.items(ddb, table="t", index="Overdue", keys=OVERDUE, pair=PAIR, **kwargs))


def seen(raw: dict) -> int:
    return int(raw["first_seen"]["N"])


def test_the_items_are_spread_over_shards_and_come_back_merged_in_order(indexed):
    everything = read(indexed)
    assert sorted(r["pk"]["S"] for r in everything) == sorted(f"v{i}#k/{i}" for i in range(30))
    assert [seen(r) for r in everything] == sorted(seen(r) for r in everything)
    values = {r["ovd_pair"]["S"] for r in everything}
    assert PAIR in values and len(values) > 10 and {pair_of(v) for v in values} == {PAIR}
    # Small Queries (a shard asked again as the merge uses its items) give the same order.
    assert read(indexed, batch=1) == read(indexed, batch=2) == everything


@pytest.mark.parametrize("newest_first", [False, True])
def test_a_reading_resumed_after_any_item_gives_exactly_the_items_that_follow_it(indexed, newest_first):
    everything = read(indexed, newest_first=newest_first)
    ordered = [seen(r) for r in everything]
    assert ordered == sorted(ordered, reverse=newest_first)
    for n, raw in enumerate(everything):
        assert read(indexed, newest_first=newest_first, after=OVERDUE.cursor(raw), batch=3) == everything[n + 1 :]


def test_bounds_hold_with_a_cursor(indexed):
    # Newest first from first_seen 4000 down to 1000: the cursor narrows the range further for other shards.
    everything = read(indexed, newest_first=True, low=1_000, high=4_000)
    assert {seen(r) for r in everything} == {1_000, 2_000, 3_000, 4_000}
    assert len(everything) == sum(1 for i in range(30) if 1 <= i % 7 <= 4)
    for n in (0, 5, len(everything) - 1):
        after = OVERDUE.cursor(everything[n])
        assert read(indexed, newest_first=True, low=1_000, high=4_000, after=after) == everything[n + 1 :]


def test_an_empty_range_asks_nothing(indexed):
    class Refusing:
        def query(self, **_):
            raise AssertionError("a Query with BETWEEN low > high: DynamoDB refuses it")

    assert read(Refusing(), low=2_000, high=1_999) == []
    assert read(indexed, low=2_000, high=2_000) == [r for r in read(indexed) if seen(r) == 2_000] != []


def test_a_cursor_of_another_pair_or_index_is_refused_at_once(indexed):
    other = {
        "pk": {"S": "v99#other"},
        "dest": {"S": DEST},
        "ovd_pair": {"S": "src>elsewhere#1"},
        "first_seen": {"N": "5"},
    }
    for after in (other, {"pk": {"S": "x"}}, "not a key"):
        with pytest.raises(ValueError, match="not a cursor"):
            pair_index.items(indexed, table="t", index="Overdue", keys=OVERDUE, pair=PAIR, after=after)
    with pytest.raises(ValueError, match="not a cursor"):  # an Overdue cursor read on the Failed index
        pair_index.items(indexed, table="t", index="Failed", keys=FAILED, pair=PAIR, after=OVERDUE.cursor(other))


def test_count_adds_up_every_shard_and_the_bare_pair(indexed):
    assert pair_index.count(indexed, table="t", index="Overdue", keys=OVERDUE, pair=PAIR) == 30
    assert pair_index.count(indexed, table="t", index="Overdue", keys=OVERDUE, pair="src>elsewhere") == 1
    assert pair_index.count(indexed, table="t", index="Overdue", keys=OVERDUE, pair="src>none") == 0


def test_the_key_values_of_a_pair_are_its_shards_then_the_bare_pair():
    values = pair_index.key_values(PAIR)
    assert values[:SHARDS] == [f"{PAIR}#{n}" for n in range(SHARDS)] and values[SHARDS:] == [PAIR]
    assert {pair_of(v) for v in values} == {PAIR}


class Recording:
    """The moto client, with every Query's request kept."""

    def __init__(self, ddb):
        self.ddb, self.requests = ddb, []

    def query(self, **request):
        self.requests.append(request)
        return self.ddb.query(**request)


def tally(ddb, **kwargs) -> pair_index.Tally:
    return pair_index.tally(ddb, table="t", index="Overdue", keys=OVERDUE, pair=PAIR, **kwargs)


@pytest.mark.parametrize(
    ("low", "high"), [(1_000, 4_000), (1_000, 1_000), (None, 2_000), (5_000, None), (1, 999), (None, None)]
)
def test_a_tally_counts_the_items_whose_range_attribute_is_within_the_bounds(indexed, low, high):
    recording = Recording(indexed)
    expected = [r for r in read(indexed) if (low is None or low <= seen(r)) and (high is None or seen(r) <= high)]
    assert tally(recording, low=low, high=high) == pair_index.Tally(len(expected), complete=True)
    # COUNT on every key value of the pair: no item comes back.
    assert sorted(r["ExpressionAttributeValues"][":p"]["S"] for r in recording.requests) == sorted(
        pair_index.key_values(PAIR)
    )
    assert all(r["Select"] == "COUNT" and "Limit" not in r for r in recording.requests)


def test_a_tally_of_an_empty_range_asks_nothing():
    class Refusing:
        def query(self, **_):
            raise AssertionError("a Query with BETWEEN low > high: DynamoDB refuses it")

    assert tally(Refusing(), low=2_000, high=1_999) == pair_index.Tally(0)


def test_a_tally_stops_each_key_value_at_the_most_it_may_count(ddb):
    for i in range(5):  # five items on the bare pair, one key value; one more on a shard
        put(ddb, f"v{i}#legacy/{i}", 1_000 + i, legacy=True)
    put(ddb, "v9#sharded", 1_000)
    assert tally(ddb, most=3) == pair_index.Tally(4, complete=False)  # 3 of the bare pair's 5, and the shard's 1
    assert tally(ddb, most=6) == pair_index.Tally(6, complete=True)
    assert tally(ddb, low=1_003, most=3) == pair_index.Tally(2, complete=True)
