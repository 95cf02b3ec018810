"""The per-bucket HEAD budget shared by every function instance through the table (moto DynamoDB)."""

from __future__ import annotations

import boto3
import pytest

from crrmon.evidence import SharedBudget
from crrmon.store import BUDGET_PK, Store


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(ddb):
    return Store(boto3.client("dynamodb", region_name="us-east-1"), "t")


def test_an_idle_budget_gives_a_lease_and_a_burst_then_refuses(store):
    # 1 token a second, bursts of 3: three leases of 1 s fit in the 3 s window, the fourth does not.
    taken = [store.take_budget("b", now_ms=10_000, cost_ms=1000, window_ms=3000) for _ in range(4)]
    assert taken == [True, True, True, False]
    assert store.take_budget("b", now_ms=11_000, cost_ms=1000, window_ms=3000)  # a second later: one more
    assert not store.take_budget("b", now_ms=11_000, cost_ms=1000, window_ms=3000)
    assert store.take_budget("other", now_ms=11_000, cost_ms=1000, window_ms=3000)  # budgets are per bucket


def test_a_budget_idle_for_long_starts_from_now_not_from_its_old_debt(store):
    assert store.take_budget("b", now_ms=0, cost_ms=1000, window_ms=1000)
    assert store.take_budget("b", now_ms=3_600_000, cost_ms=1000, window_ms=1000)
    item = store.bookkeeping(BUDGET_PK, ["b"])["b"]
    assert item["tat"] == 3_601_000 and item["expires_at"] == 3_600 + 86_400


def test_a_hold_stops_every_taker_until_it_ends_and_never_shortens_a_later_hold(store):
    store.hold_budget("b", until_ms=30_000, window_ms=5000)
    store.hold_budget("b", until_ms=20_000, window_ms=5000)
    assert not store.take_budget("b", now_ms=30_000, cost_ms=1000, window_ms=5000)
    assert store.take_budget("b", now_ms=31_000, cost_ms=1000, window_ms=5000)  # one lease after the hold


def test_instances_sharing_the_table_together_stay_within_the_rate(store):
    """Four instances (four SharedBudget objects, as four containers hold) HEADing as fast as they can for
    10 s at 20 a second with bursts of 20: together at most 20 + 20 x 10 HEADs, not four times that."""
    clock = Clock(1_000.0)
    instances = [SharedBudget(store, 20, clock=clock) for _ in range(4)]
    granted = 0
    for _ in range(100):  # 10 s in steps of 0.1 s, each instance trying 20 HEADs a step
        for instance in instances:
            granted += sum(instance.try_acquire("bucket") for _ in range(20))
        clock.now += 0.1
    assert 150 <= granted <= 20 + 20 * 10


def test_a_spent_budget_is_not_asked_again_for_every_head(store, monkeypatch):
    clock = Clock(1_000.0)
    budget = SharedBudget(store, 4, burst=4, clock=clock)  # leases of one token
    calls = []
    real = store.take_budget
    monkeypatch.setattr(store, "take_budget", lambda *a, **k: calls.append(1) or real(*a, **k))
    results = [budget.try_acquire("bucket") for _ in range(50)]
    assert sum(results) == 4 and len(calls) == 5  # four leases, one refusal, then no request at all


def test_s3_throttling_stops_other_instances_too(store):
    clock = Clock(1_000.0)
    first, second = SharedBudget(store, 20, clock=clock), SharedBudget(store, 20, clock=clock)
    first.back_off("bucket", 30)
    assert not second.try_acquire("bucket")
    clock.now += 31
    assert second.try_acquire("bucket")


def test_threads_that_find_the_lease_empty_together_share_one_lease():
    """Eight threads of one instance ask at once while its lease is empty: one lease of ten tokens serves
    them all, taken with one write. A lease per thread would spend eight leases of the shared budget and
    keep one, leaving the rest of the instances (and this one, a moment later) refused."""
    import threading
    import time

    class SlowStore:
        def __init__(self) -> None:
            self.calls = 0

        def take_budget(self, bucket, *, now_ms, cost_ms, window_ms):
            self.calls += 1
            time.sleep(0.05)  # a write's round trip: the other threads arrive meanwhile
            return True

    store = SlowStore()
    budget = SharedBudget(store, 40, clock=Clock(1_000.0))  # leases of 10 tokens
    start = threading.Barrier(8)
    granted = []

    def ask() -> None:
        start.wait()
        granted.append(budget.try_acquire("bucket"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted == [True] * 8 and store.calls == 1


def test_every_write_to_a_budget_keeps_it_a_day_after_its_last_use(store):
    assert store.take_budget("b", now_ms=10_500, cost_ms=1000, window_ms=3000)  # idle: tat 11_500
    assert store.take_budget("b", now_ms=11_200, cost_ms=1000, window_ms=3000)  # in use: tat 12_500
    item = store.bookkeeping(BUDGET_PK, ["b"])["b"]
    assert (item["tat"], item["expires_at"]) == (12_500, 11 + 86_400)
    store.hold_budget("b", until_ms=3_000_500, window_ms=5000)
    assert store.bookkeeping(BUDGET_PK, ["b"])["b"]["expires_at"] == 3_000 + 86_400


def test_a_hold_extends_a_budget_in_use_to_a_window_past_its_end(store):
    assert store.take_budget("b", now_ms=30_000, cost_ms=1000, window_ms=5000)  # tat 31_000
    store.hold_budget("b", until_ms=30_000, window_ms=5000)
    assert store.bookkeeping(BUDGET_PK, ["b"])["b"]["tat"] == 35_000


class Recorded(Store):
    """The moto-backed store, recording each lease asked of the table."""

    def __init__(self, store):
        super().__init__(store.dynamodb, store.table_name)
        self.asked: list[tuple[str, int, int, int]] = []

    def take_budget(self, name, *, now_ms, cost_ms, window_ms):
        self.asked.append((name, now_ms, cost_ms, window_ms))
        return super().take_budget(name, now_ms=now_ms, cost_ms=cost_ms, window_ms=window_ms)


@pytest.mark.parametrize(
    "rate, burst, lease, cost_ms, window_ms",
    [
        (20, None, 5, 250, 1000),  # a quarter of a second's tokens a lease; the burst is a second's
        (100, None, 25, 250, 1000),
        (2, None, 1, 500, 1000),  # never less than one token a lease
        (20, 3, 3, 150, 150),  # never more than the burst
        (0.5, None, 1, 2000, 2000),  # below one a second: the burst is one token
    ],
)
def test_a_lease_is_a_quarter_seconds_tokens_within_the_burst(store, rate, burst, lease, cost_ms, window_ms):
    recorded = Recorded(store)
    budget = SharedBudget(recorded, rate, burst=burst, clock=Clock(1_000.25))
    assert budget.lease == lease
    assert budget.try_acquire("b")
    assert recorded.asked == [("b", 1_000_250, cost_ms, window_ms)]


def test_an_instance_spends_its_lease_before_asking_the_table_again(store):
    recorded, clock = Recorded(store), Clock(1_000.0)
    budget = SharedBudget(recorded, 20, clock=clock)  # leases of 5
    assert [budget.try_acquire("b") for _ in range(5)] == [True] * 5
    assert len(recorded.asked) == 1
    assert budget.try_acquire("b") and len(recorded.asked) == 2  # the sixth needs a new lease
    assert budget.try_acquire("other") and len(recorded.asked) == 3  # leases are per bucket


def test_leased_tokens_are_dropped_after_a_second(store):
    recorded, clock = Recorded(store), Clock(1_000.0)
    budget = SharedBudget(recorded, 20, clock=clock)
    assert budget.try_acquire("b")  # 4 tokens left, until 1,001.0
    clock.now = 1_000.999
    assert budget.try_acquire("b") and len(recorded.asked) == 1
    clock.now = 1_001.0
    assert budget.try_acquire("b") and len(recorded.asked) == 2  # the rest of the lease lapsed


def test_a_spent_budget_is_not_asked_again_until_a_lease_could_be_free(store):
    recorded, clock = Recorded(store), Clock(1_000.0)
    budget = SharedBudget(recorded, 4, burst=1, clock=clock)  # leases of 1 token, 250 ms each
    assert budget.try_acquire("b")
    assert not budget.try_acquire("b") and len(recorded.asked) == 2  # the table says spent
    clock.now = 1_000.249
    assert not budget.try_acquire("b") and len(recorded.asked) == 2  # not asked: no lease can be free
    clock.now = 1_000.25
    assert budget.try_acquire("b") and len(recorded.asked) == 3


def test_a_back_off_stops_this_instance_and_every_other_until_it_ends(store):
    clock = Clock(1_000.0)
    mine, other = Recorded(store), Recorded(store)
    budget, elsewhere = SharedBudget(mine, 20, clock=clock), SharedBudget(other, 20, clock=clock)
    assert budget.try_acquire("b")  # 4 tokens held
    budget.back_off("b", 30)
    assert not budget.try_acquire("b") and len(mine.asked) == 1  # held tokens dropped, the table not asked
    assert not elsewhere.try_acquire("b")  # another instance: the table holds it off
    assert budget.try_acquire("c")  # other buckets are not held
    clock.now = 1_030.0
    assert not elsewhere.try_acquire("b")  # the budget is spent a whole window past the hold
    clock.now = 1_031.0
    assert budget.try_acquire("b") and elsewhere.try_acquire("b")
