"""Store's BatchGetItem under throttling: unprocessed keys are asked again after a jittered back-off.

moto never answers with UnprocessedKeys, so a hand-written client stands in for DynamoDB here.
"""

from __future__ import annotations

import pytest

from crrmon.store import BATCH_GET_TRIES, Store


class ThrottledTable:
    """Answers the first `throttled` requests with every key unprocessed, then finds every key."""

    def __init__(self, throttled: int):
        self.throttled = throttled
        self.requests: list[dict] = []

    def batch_get_item(self, RequestItems):
        self.requests.append(RequestItems)
        ((table, spec),) = RequestItems.items()
        if len(self.requests) <= self.throttled:
            return {"Responses": {table: []}, "UnprocessedKeys": RequestItems}
        return {"Responses": {table: [dict(key) for key in spec["Keys"]]}, "UnprocessedKeys": {}}


def test_unprocessed_keys_are_asked_again_after_a_growing_pause():
    table, pauses = ThrottledTable(throttled=3), []
    store = Store(table, "t", sleep=pauses.append)
    found = store.existing([("v1#a", "dst"), ("v2#b", "dst"), ("v1#a", "dst")])
    assert found == {("v1#a", "dst"), ("v2#b", "dst")}
    assert len(table.requests) == 4 and len(table.requests[0]["t"]["Keys"]) == 2  # duplicates asked once
    assert len(pauses) == 3
    assert all(0 <= pause <= 0.05 * 2 ** (i + 1) for i, pause in enumerate(pauses))


def test_keys_still_unprocessed_after_every_try_are_an_error():
    table, pauses = ThrottledTable(throttled=BATCH_GET_TRIES), []
    with pytest.raises(RuntimeError, match="left 1 keys unprocessed"):
        Store(table, "t", sleep=pauses.append).existing([("v1#a", "dst")])
    assert len(table.requests) == BATCH_GET_TRIES and len(pauses) == BATCH_GET_TRIES - 1
