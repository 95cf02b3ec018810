"""The sweeper's batch path on the emulated stack: one read for a batch's items, older timers still
served, and a check put off by the HEAD budget before its deadline never reported late."""

from __future__ import annotations

import json

from crrmon import runtime
from crrmon.store import make_pk
from crrmon_local import emulator

from .conftest import DST, DST2, RPO, SRC


class Calls:
    """Counts one operation of the handlers' DynamoDB client (botocore's event hook)."""

    def __init__(self, operation: str):
        self.client, self.event, self.count = runtime.client("dynamodb"), f"before-call.dynamodb.{operation}", 0
        self.client.meta.events.register(self.event, self)

    def __call__(self, **_):
        self.count += 1

    def stop(self) -> None:
        self.client.meta.events.unregister(self.event, self)


def test_a_batch_of_due_timers_is_read_with_one_request_not_one_per_version(world):
    keys = [f"batch/{i}" for i in range(10)]  # one emulated sweeper invocation takes 10 timers
    for key in keys:
        obj = world.put(SRC, key)
        world.send(world.created_event(SRC, key, obj))
        for dest in (DST, DST2):
            world.replicate(SRC, key, obj, dest)
            world.send(world.created_event(dest, key, obj))
    world.run()
    batch_gets, queries = Calls("BatchGetItem"), Calls("Query")
    try:
        world.advance(RPO + 1)
    finally:
        batch_gets.stop(), queries.stop()
    assert (batch_gets.count, queries.count) == (1, 0)
    assert all(line["status"] == "COMPLETED" for key in keys for line in world.lines_for(key))


def test_a_timer_without_destinations_as_older_versions_sent_is_still_served(world):
    key = "batch/old-timer"
    obj = world.put(SRC, key)
    emulator.set_replication_status(SRC, key, obj["version_id"], "PENDING")
    world.send(world.created_event(SRC, key, obj))
    world.run()
    world.sqs.purge_queue(QueueUrl=world.stack.timer_queue_url)  # the new timer is gone; an old one is due
    old_body = {"pk": make_pk(obj["version_id"], key), "due": int(world.clock()) + RPO, "attempt": 0}
    world.sqs.send_message(QueueUrl=world.stack.timer_queue_url, MessageBody=json.dumps(old_body), DelaySeconds=RPO)
    world.advance(RPO + 1)
    assert {world.item(key, obj["version_id"], d)["status"] for d in (DST, DST2)} == {"OVERDUE"}
    for dest in (DST, DST2):  # the re-armed timer names the destinations: the late replicas are found
        world.replicate(SRC, key, obj, dest)
    world.advance(RPO + 1)
    assert {world.item(key, obj["version_id"], d)["status"] for d in (DST, DST2)} == {"COMPLETED"}


def test_a_check_put_off_before_the_deadline_leaves_the_item_pending(world):
    """S3's failure report asks for a HEAD at once (to confirm it); when the HEAD budget is spent the check
    is put off, and the item is not late: its deadline has not come."""
    key = "batch/confirm-later"
    obj = world.put(SRC, key)
    world.send(world.created_event(SRC, key, obj))
    runtime.store().hold_budget(SRC, until_ms=int((world.clock() + 20) * 1000), window_ms=1000)
    world.send(world.failure_notification(SRC, key, obj, DST, rule_id="to-west"))
    world.run()
    item = world.item(key, obj["version_id"], DST)
    assert item["fail"] == "DstPutObjectNotPermitted" and "status" not in item and "ovd_pair" not in item
    world.advance(RPO + 1)  # the hold is over: S3's FAILED status confirms the report
    assert world.item(key, obj["version_id"], DST)["status"] == "FAILED"
