"""Work overlapped on threads kept for the container's life (ingest's writes, the sweeper's checks).

A batch's requests are mostly waiting for AWS: ten of them on threads take about one round trip, not ten.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

MAX_WORKERS = 10
THREAD_PREFIX = "crrmon-pool"
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0  # the process that made the pool: a forked child has none of its threads


def run_all(work: Callable[[Any], Any], tasks: list) -> list:
    """`work` over every task, overlapping on the container's threads; results in the tasks' order.

    The container's very first task runs alone first: botocore loads a client's models and endpoint
    rules on its first request, and ten threads making that first request together would each load
    them (a peak of ~150 MB instead of ~90 MB).
    """
    global _pool, _pool_pid
    if not tasks:
        return []
    if threading.current_thread().name.startswith(THREAD_PREFIX):
        return [work(task) for task in tasks]  # on a pool thread already: waiting on the pool could deadlock
    if _pool is None or _pool_pid != os.getpid():
        first = [work(tasks[0])]
        _pool, _pool_pid = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix=THREAD_PREFIX), os.getpid()
        return first + list(_pool.map(work, tasks[1:]))
    return list(_pool.map(work, tasks))
