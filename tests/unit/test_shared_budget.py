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
