"""For any objects, destinations and fates, and any interleaving, duplication and delay of their events
and of the moments timers fire and the stream is read, every object version and destination ends with
its ground-truth verdict, archived once, under one dedup id."""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from crrmon.store import is_internal, make_pk
from crrmon_local import emulator

from .conftest import DESTINATIONS, GIVE_UP, RPO, SOLO, SRC, build_pipeline, property_settings

# What happens to one object at one destination, and what S3's events say about it.
REPLICATED, REPLICATED_SILENT = "replicated", "replicated-no-event"
CORRUPT, CORRUPT_SILENT = "corrupt", "corrupt-no-event"
FAILED_EVENT, FAILED_SILENT = "failed", "failed-no-event"
PENDING = "pending-forever"
DEST_FATES = (REPLICATED, REPLICATED_SILENT, CORRUPT, CORRUPT_SILENT, FAILED_EVENT, FAILED_SILENT, PENDING)
# What happens to the whole object.
NORMAL, NOT_IN_SCOPE, SOURCE_DELETED = "normal", "not-in-scope", "source-deleted"

EXPECTED = {
    REPLICATED: "COMPLETED",
    REPLICATED_SILENT: "COMPLETED",
    CORRUPT: "MISMATCH",
    CORRUPT_SILENT: "MISMATCH",
    FAILED_EVENT: "FAILED",
    FAILED_SILENT: "FAILED",
    PENDING: "FAILED",  # gave up
}


@dataclass
class ObjectPlan:
    source: str
    fate: str
    dest_fates: dict[str, str]
    fmt: str  # eventbridge | notification


@st.composite
def object_plans(draw) -> ObjectPlan:
    source = draw(st.sampled_from(sorted(DESTINATIONS)))
    fate = draw(st.sampled_from((NORMAL, NORMAL, NORMAL, NOT_IN_SCOPE, SOURCE_DELETED)))
    dest_fates = {d: draw(st.sampled_from(DEST_FATES)) for d in DESTINATIONS[source]}
    return ObjectPlan(source, fate, dest_fates, draw(st.sampled_from(("eventbridge", "notification"))))


def ground_truth(plan: ObjectPlan) -> dict[str, str]:
    if plan.fate == NOT_IN_SCOPE:
        return dict.fromkeys(plan.dest_fates, "NOT_IN_SCOPE")
    if plan.fate == SOURCE_DELETED:
        return dict.fromkeys(plan.dest_fates, "SOURCE_DELETED")
    return {d: EXPECTED[f] for d, f in plan.dest_fates.items()}


def source_status(plan: ObjectPlan) -> str | None:
    """x-amz-replication-status of the source version: COMPLETED only when every destination has it."""
    if plan.fate == NOT_IN_SCOPE:
        return None
    fates = set(plan.dest_fates.values())
    if PENDING in fates:
        return "PENDING"
    if fates & {FAILED_EVENT, FAILED_SILENT}:
        return "FAILED"
    return "COMPLETED"


def event_body(p, plan: ObjectPlan, bucket: str, key: str, obj: dict) -> str:
    if plan.fmt == "eventbridge":
        return emulator.eventbridge_object_event(
            bucket=bucket,
            key=key,
            version_id=obj["version_id"],
            size=obj["size"],
            etag=obj["etag"],
            time_s=p.clock(),
            region="us-east-1",
        )
    record = emulator.s3_notification(
        event_name="ObjectCreated:Put",
        bucket=bucket,
        key=key,
        version_id=obj["version_id"],
        time_s=p.clock(),
        region="us-east-1",
        size=obj["size"],
        etag=obj["etag"],
    )
    return emulator.in_sns([record], topic_arn="arn:aws:sns:us-east-1:123456789012:s3-events")


def make_world(p, plans: list[ObjectPlan], prefix: str) -> tuple[list[str], dict[tuple[str, str], str], dict]:
    """Put every object, land its replicas, set S3's facts. Returns the events S3 sends and the truth."""
    events, truth, keys = [], {}, {}
    for i, plan in enumerate(plans):
        key = f"{prefix}/obj-{i} +%"
        answer = p.s3.put_object(Bucket=plan.source, Key=key, Body=b"x" * (10 + i))
        obj = {"version_id": answer["VersionId"], "etag": answer["ETag"].strip('"'), "size": 10 + i}
        keys[key] = obj["version_id"]
        events.append(event_body(p, plan, plan.source, key, obj))
        for dest, expected in ground_truth(plan).items():
            truth[(key, dest)] = expected
        if plan.fate == NORMAL:
            for dest, fate in plan.dest_fates.items():
                if fate in (REPLICATED, REPLICATED_SILENT, CORRUPT, CORRUPT_SILENT):
                    body = b"y" * 3 if fate.startswith("corrupt") else None
                    facts = emulator.replicate(p.s3, plan.source, key, obj["version_id"], dest, body=body)
                    if fate in (REPLICATED, CORRUPT):
                        events.append(event_body(p, plan, dest, key, {**obj, **facts}))
                elif fate == FAILED_EVENT:
                    record = emulator.replication_failure(
                        bucket=plan.source,
                        key=key,
                        version_id=obj["version_id"],
                        destination_bucket=dest,
                        reason="DstPutObjectNotPermitted",
                        rule_id="r",
                        time_s=p.clock(),
                        region="us-east-1",
                    )
                    events.append(emulator.in_sns([record], topic_arn="arn:aws:sns:us-east-1:123456789012:f"))
        emulator.set_replication_status(plan.source, key, obj["version_id"], source_status(plan))
        if plan.fate == SOURCE_DELETED:
            p.s3.delete_object(Bucket=plan.source, Key=key, VersionId=obj["version_id"])
    return events, truth, keys


# A step between event batches: let time pass, fire due timers, read the stream, run the schedule.
steps = st.tuples(
    st.sampled_from((0, 1, 5, RPO // 2, RPO + 1, 3 * RPO)),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)


@st.composite
def deliveries(draw, n_events: int):
    """Every event at least once, some up to three times, in any order, in batches of 1..10."""
    copies = [i for i in range(n_events) for _ in range(draw(st.integers(1, 3)))]
    order = draw(st.permutations(copies))
    batches, start = [], 0
    while start < len(order):
        size = draw(st.integers(1, 10))
        batches.append(order[start : start + size])
        start += size
    return batches, draw(st.lists(steps, min_size=len(batches), max_size=len(batches)))


COUNTER = iter(range(10**9))


@property_settings(40)
@given(plans=st.lists(object_plans(), min_size=1, max_size=3), data=st.data())
def test_every_version_and_destination_gets_its_ground_truth_verdict_once(moto_account, plans, data):
    session, stack, clock, stream = moto_account
    p = build_pipeline(session, stack, clock, stream)
    events, truth, keys = make_world(p, plans, f"ex{next(COUNTER)}")
    batches, between = data.draw(deliveries(len(events)))

    seen: dict[int, int] = {}
    for batch, (advance, timers, read, schedule) in zip(batches, between, strict=True):
        bodies = []
        for index in batch:
            seen[index] = seen.get(index, 0) + 1
            bodies.append((events[index], seen[index]))
        assert p.deliver(bodies) == {"batchItemFailures": []}
        p.advance(advance)
        if read:
            p.read_stream()
        if timers:
            p.fire_timers()
        if schedule:
            p.sweeper.scheduled()

    for _ in range(GIVE_UP // RPO + 6):  # let the deadlines come, until every verdict is in
        p.settle()
        p.advance(RPO)
    p.settle()

    lines: dict[tuple[str, str], list[dict]] = {}
    for line in p.archived:
        if line["key"] in keys:
            lines.setdefault((line["key"], line["destination_bucket"]), []).append(line)
    got = {k: [line["status"] for line in v] for k, v in lines.items()}
    assert got == {k: [v] for k, v in truth.items()}, json.dumps({"plans": [vars(x) for x in plans]}, default=str)
    for (key, dest), [line] in lines.items():
        assert line["version_id"] == keys[key]
        assert line["source_bucket"] in (SRC, SOLO)
        item = p.sweeper.store.get(make_pk(keys[key], key), dest)
        assert item["status"] == truth[(key, dest)]
    for key in keys:  # no item beyond the expected destinations
        for item in p.sweeper.store.items_of(make_pk(keys[key], key)):
            assert (key, item["dest"]) in truth


@property_settings(200)
@given(version_id=st.text(min_size=1, max_size=40).filter(lambda v: "#" not in v), key=st.text(max_size=60))
def test_no_object_version_is_taken_for_a_bookkeeping_item(version_id, key):
    assert not is_internal(make_pk(version_id, key))
