"""The container's thread pool: results in order, work overlapped, no deadlock when nested."""

from __future__ import annotations

import threading

import pytest

from crrmon import concurrency


@pytest.fixture(autouse=True)
def fresh_pool(monkeypatch):
    monkeypatch.setattr(concurrency, "_pool", None)


def test_results_come_back_in_the_tasks_order_and_the_work_runs_on_several_threads():
    barrier = threading.Barrier(3, timeout=5)  # passes only if three tasks run at the same time

    def work(n):
        if n:
            barrier.wait()
        return n * n, threading.current_thread().name

    answers = concurrency.run_all(work, [0, 1, 2, 3])
    assert [square for square, _ in answers] == [0, 1, 4, 9]
    assert len({name for _, name in answers[1:]}) == 3


def test_work_that_itself_runs_work_on_the_pool_finishes_every_thread_busy():
    def inner(n):
        return n + 1

    def outer(n):
        return sum(concurrency.run_all(inner, list(range(n))))

    tasks = [20] * (concurrency.MAX_WORKERS * 2)  # every pool thread waits on nested work at once
    assert concurrency.run_all(outer, tasks) == [210] * len(tasks)


def test_no_tasks_no_pool():
    assert concurrency.run_all(lambda n: n, []) == []
    assert concurrency._pool is None


def test_a_forked_process_makes_a_pool_of_its_own(monkeypatch):
    concurrency.run_all(lambda n: n, [1, 2])
    inherited = concurrency._pool
    monkeypatch.setattr(concurrency.os, "getpid", lambda: -1)  # as in a child forked after the pool was made
    assert concurrency.run_all(lambda n: n * 2, [1, 2, 3]) == [2, 4, 6]
    assert concurrency._pool is not inherited
