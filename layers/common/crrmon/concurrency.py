"""Work overlapped on threads kept for the container's life (ingest's writes, the sweeper's checks).

A batch's requests are mostly waiting for AWS: ten of them on threads take about one round trip, not ten.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

MAX_WORKERS = 10
_pool: ThreadPoolExecutor | None = None


def run_all(work: Callable[[Any], Any], tasks: list) -> list:
    """`work` over every task, overlapping on the container's threads; results in the tasks' order.

    The container's very first task runs alone first: botocore loads a client's models and endpoint
    rules on its first request, and ten threads making that first request together would each load
    them (a peak of ~150 MB instead of ~90 MB).
    """
    global _pool
    if not tasks:
        return []
    if _pool is None:
        first = [work(tasks[0])]
        _pool = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="crrmon")
        return first + list(_pool.map(work, tasks[1:]))
    return list(_pool.map(work, tasks))
