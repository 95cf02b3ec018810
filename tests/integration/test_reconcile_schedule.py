"""The scheduled reconciliation (ReconcileFunction) on moto: versions whose events never arrived are found
by listing the source buckets, sent back into the EventsQueue, and judged by the monitor like any other.

The function is invoked as its schedule would (moto runs no EventBridge schedules); its clients come from
boto3's default session so the tests can see and steer the calls it makes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError

from crrmon import reconcile, runtime
from crrmon.store import RECONCILE_PK, make_pk
from crrmon.topology import Rule, Topology
from crrmon_local import emulator
from crrmon_local.lambdas import invoke, load_handler

from .conftest import BIDI_A, BIDI_B, DST, DST2, REGION, RPO, SRC

SETTLED = reconcile.SETTLE_S + 30  # moto stamps versions with the wall clock, which runs on meanwhile
SCHEDULED_EVENT = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}


@pytest.fixture
def session(world):
    """The handlers' boto3 session (their clients are made from it after runtime.reset())."""
    boto3.setup_default_session(region_name=REGION)
    runtime.reset()
    yield boto3.DEFAULT_SESSION
    boto3.DEFAULT_SESSION = None
    runtime.reset()


def run_reconcile(world) -> dict:
    return invoke(load_handler("reconcile"), dict(SCHEDULED_EVENT), "ReconcileFunction")


def written_at(bucket: str, key: str, version_id: str, time_s: float) -> None:
    """Set a version's LastModified (moto stamps the wall clock; the tests run on a fake one)."""
    version = emulator.object_version(bucket, key, version_id)
    version.last_modified = datetime.fromtimestamp(time_s, UTC).replace(tzinfo=None)


def fed_events(world) -> list[dict]:
    """The events waiting in the EventsQueue (left there: receiving with a zero visibility timeout)."""
    answer = world.sqs.receive_message(
        QueueUrl=world.stack.events_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
    )
    return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


def lost(world, key: str, *, bucket: str = SRC, replicate_to=(DST, DST2)) -> dict:
    """A version written and replicated while every event about it was lost."""
    obj = world.put(bucket, key)
    for dest in replicate_to:
        world.replicate(bucket, key, obj, dest)
    return obj


def progress(world, bucket: str) -> dict:
    return runtime.store().bookkeeping(RECONCILE_PK, [bucket]).get(bucket, {})


def test_versions_whose_events_were_lost_are_fed_back_and_judged(world, session):
    seen = world.put(SRC, "r/seen")
    world.send(world.created_event(SRC, "r/seen", seen))
    world.run()
    missed = lost(world, "r/missed")
    never = lost(world, "r/never-replicated", replicate_to=())
    emulator.set_replication_status(SRC, "r/never-replicated", never["version_id"], "FAILED")
    world.clock.advance(SETTLED)

    result = run_reconcile(world)
    assert result[SRC] == {"complete": True, "started": result[SRC]["started"], "listed": 3, "untracked": 2}
    events = fed_events(world)
    assert sorted(e["detail"]["object"]["key"] for e in events) == ["r/missed", "r/never-replicated"]
    (event,) = [e for e in events if e["detail"]["object"]["key"] == "r/missed"]
    assert event["detail-type"] == "Object Created" and event["source"] == "aws.s3"
    assert event["detail"]["object"]["version-id"] == missed["version_id"]
    assert event["detail"]["object"]["size"] == missed["size"] and event["account"] == world.stack.account_id

    state = progress(world, SRC)
    assert "km" not in state and state["untracked"] == 2 and state["done_at"] == int(world.clock())

    world.advance(RPO + 1)  # ingest records them; at their deadlines the sweeper HEADs and decides
    for dest in (DST, DST2):
        assert world.item("r/missed", missed["version_id"], dest)["status"] == "COMPLETED"
        assert world.item("r/never-replicated", never["version_id"], dest)["status"] == "FAILED"

    again = run_reconcile(world)
    assert again[SRC]["untracked"] == 0 and fed_events(world) == []


def test_only_versions_within_the_retention_window_and_settled_are_judged(world, session):
    now = world.clock()
    retention_s = int(world.stack.environment["RECORD_RETENTION_HOURS"]) * 3600
    old = lost(world, "w/older-than-the-records")
    written_at(SRC, "w/older-than-the-records", old["version_id"], now - retention_s - 60)
    edge = lost(world, "w/at-the-retention-edge")  # its replayed event would be ignored as stale
    written_at(SRC, "w/at-the-retention-edge", edge["version_id"], now - retention_s + 60)
    fresh = lost(world, "w/fresh")  # its event may still be on the way
    written_at(SRC, "w/fresh", fresh["version_id"], now - 10)
    due = lost(world, "w/due")
    written_at(SRC, "w/due", due["version_id"], now - SETTLED)

    result = run_reconcile(world)
    assert result[SRC]["listed"] == 4 and result[SRC]["untracked"] == 1
    assert [e["detail"]["object"]["key"] for e in fed_events(world)] == ["w/due"]


def test_replicas_in_bidirectional_buckets_are_known(world, session):
    key = "bidi/one"
    a = world.put(BIDI_A, key)
    emulator.set_replication_status(BIDI_A, key, a["version_id"], "PENDING")
    world.send(world.created_event(BIDI_A, key, a))
    world.replicate(BIDI_A, key, a, BIDI_B)
    world.send(world.created_event(BIDI_B, key, a))  # the replica's event: tracked under BIDI_B
    world.run()
    unseen = world.put(BIDI_B, "bidi/unseen")  # a version written in BIDI_B nobody heard of
    world.clock.advance(SETTLED)

    result = run_reconcile(world)
    assert result[BIDI_A]["listed"] == 1 and result[BIDI_A]["untracked"] == 0
    # The replica in BIDI_B has no item for BIDI_A as destination, yet it is known as a replica.
    assert result[BIDI_B]["listed"] == 2 and result[BIDI_B]["untracked"] == 1
    (event,) = fed_events(world)
    assert event["detail"]["bucket"]["name"] == BIDI_B
    assert event["detail"]["object"]["version-id"] == unseen["version_id"]


def test_delete_markers_are_left_to_the_command(world, session):
    """A listing cannot tell a lifecycle expiration's marker (never replicated) from a DeleteObject's."""
    lost(world, "gone/marker")
    world.s3.delete_object(Bucket=SRC, Key="gone/marker")
    world.clock.advance(SETTLED)
    result = run_reconcile(world)
    assert result[SRC]["listed"] == 2 and result[SRC]["untracked"] == 1
    (event,) = fed_events(world)
    assert event["detail-type"] == "Object Created"


def test_untracked_asks_about_the_destinations_each_rule_sends_a_version_to(world, session):
    """moto's GetBucketReplication drops DeleteMarkerReplication, so the rules are given here."""
    rules = {
        SRC: [
            Rule(id="with-markers", destination_bucket=DST, priority=2, delete_markers=True),
            Rule(id="without", destination_bucket=DST2, priority=1, delete_markers=False),
        ]
    }
    topology = Topology(sources=rules)
    marker = reconcile.Version(key="gone", version_id="m1", size=None, etag=None, modified_s=0, delete_marker=True)
    tracked = reconcile.Version(key="kept", version_id="v1", size=1, etag="e", modified_s=0)
    runtime.store().record_observation(
        make_pk("v1", "kept"), DST, now_ms=0, due_s=60, expires_s=int(world.clock()) + 3600, fields={"src": SRC}
    )
    found = reconcile.untracked(runtime.store(), topology, SRC, [marker, tracked])
    assert found == [(marker, [DST]), (tracked, [DST2])]
    event = reconcile.object_event(marker, bucket=SRC, region=REGION, account="123456789012")
    assert event["detail-type"] == "Object Deleted" and event["detail"]["deletion-type"] == "Delete Marker Created"
    assert event["detail"]["reason"] == "DeleteObject" and "size" not in event["detail"]["object"]


def test_a_pass_asks_the_table_only_about_versions_written_since_the_last_pass(world, session):
    for i in range(3):
        lost(world, f"again/{i}")
    world.clock.advance(SETTLED + 120)  # written well before the pass: its judgement of them is final
    asked: list[str] = []

    def count(params, **_):
        for table in params["RequestItems"].values():
            asked.extend(k["pk"]["S"].split("#", 1)[1] for k in table["Keys"] if not k["pk"]["S"].startswith("__"))

    session.events.register("provide-client-params.dynamodb.BatchGetItem", count)
    assert run_reconcile(world)[SRC]["untracked"] == 3
    assert sorted(asked) == [f"again/{i}" for i in range(3) for _ in (DST, DST2)]
    world.run()
    world.clock.advance(3600)  # long after the first pass: its versions were judged by it
    later = lost(world, "again/later")
    written_at(SRC, "again/later", later["version_id"], world.clock() - SETTLED)
    asked.clear()
    second = run_reconcile(world)
    assert second[SRC]["listed"] == 4 and second[SRC]["untracked"] == 1
    assert sorted(asked) == ["again/later", "again/later"]


def test_a_multipart_upload_dated_before_the_last_pass_is_still_asked_about(world, session):
    """S3 dates a multipart upload's version from the upload's start: completed after a pass went by,
    it can carry a date the next pass would otherwise take as already judged."""
    world.clock.advance(SETTLED)
    first = run_reconcile(world)[SRC]
    assert first["complete"] and first["listed"] == 0
    upload = world.s3.create_multipart_upload(Bucket=SRC, Key="big/upload")
    part = world.s3.upload_part(
        Bucket=SRC, Key="big/upload", UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 1024
    )
    done = world.s3.complete_multipart_upload(
        Bucket=SRC,
        Key="big/upload",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    assert done["ETag"].strip('"').endswith("-1")
    started_at = first["started"] - 2 * 3600  # the upload began two hours before the first pass
    written_at(SRC, "big/upload", done["VersionId"], started_at)
    plain = lost(world, "plain/old")
    written_at(SRC, "plain/old", plain["version_id"], started_at)
    world.clock.advance(SETTLED + 120)

    second = run_reconcile(world)[SRC]
    assert second["listed"] == 2 and second["untracked"] == 1
    (event,) = fed_events(world)
    assert event["detail"]["object"]["key"] == "big/upload"


def test_a_large_bucket_is_listed_over_several_runs(world, session, monkeypatch):
    monkeypatch.setattr(reconcile, "LIST_PAGE_SIZE", 4)
    versions = {f"many/{i:02d}": lost(world, f"many/{i:02d}") for i in range(10)}
    world.clock.advance(SETTLED)

    # Each listing of SRC takes 20 s of the run's 60: its second page ends past the 30 s margin.
    def slow(params, **_):
        if params["Bucket"] == SRC:
            world.clock.advance(20)

    session.events.register("provide-client-params.s3.ListObjectVersions", slow)

    first = run_reconcile(world)
    assert first[SRC] == {"complete": False, "started": first[SRC]["started"], "listed": 8, "untracked": 8}
    assert set(first) == {BIDI_A, BIDI_B, SRC}  # in name order; the last one waits for the next run
    state = progress(world, SRC)
    assert state["km"] == "many/07" and state["listed"] == 8

    second = run_reconcile(world)  # the pass under way goes first, from where it stopped
    assert second[SRC]["complete"] and second[SRC]["listed"] == 10 and second[SRC]["untracked"] == 10
    assert second[SRC]["started"] == first[SRC]["started"]
    world.run()
    for key, obj in versions.items():
        assert world.item(key, obj["version_id"], DST) is not None, key


def test_runs_do_not_overlap(world, session):
    store = runtime.store()
    assert store.acquire_lease(reconcile.LEASE, "another-run", now_s=int(world.clock()), duration_s=600)
    assert run_reconcile(world) == {"skipped": "another run holds the lease"}
    world.clock.advance(601)
    assert SRC in run_reconcile(world)
    assert SRC in run_reconcile(world)  # a finished run gives the lease back at once


def test_a_bucket_that_cannot_be_listed_does_not_stop_the_others(world, session, capsys, caplog):
    lost(world, "denied/one")
    lost(world, "fine/one", bucket=BIDI_A, replicate_to=())
    world.clock.advance(SETTLED)

    def refuse(params, **_):
        if params["Bucket"] == SRC:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "ListObjectVersions")

    session.events.register("provide-client-params.s3.ListObjectVersions", refuse)
    result = run_reconcile(world)
    assert result[SRC] == {"error": "ClientError"}
    assert result[BIDI_A]["untracked"] == 1
    failures = [r for r in caplog.records if r.getMessage() == "reconciliation of a bucket failed"]
    assert [(r.levelname, r.bucket) for r in failures] == [("WARNING", SRC)]
    assert "AccessDenied" in failures[0].error
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(line.get("Bucket") == SRC and line["ReconcileErrors"] == [1.0] for line in metrics)
    assert progress(world, SRC) == {}  # nothing recorded: the next run starts its pass again


def test_feeding_sends_in_batches_of_ten_and_counts_what_sqs_accepted(world, session):
    versions = [
        reconcile.Version(key=f"k/{i}", version_id=f"v{i}", size=1, etag="e", modified_s=world.clock())
        for i in range(23)
    ]
    events = [reconcile.object_event(v, bucket=SRC, region=REGION, account="123456789012") for v in versions]
    batches = []
    session.events.register("provide-client-params.sqs.SendMessageBatch", lambda params, **_: batches.append(params))
    sent = reconcile.send_events(runtime.client("sqs"), world.stack.events_queue_url, events)
    assert sent == 23 and [len(b["Entries"]) for b in batches] == [10, 10, 3]
    assert {make_pk(e["detail"]["object"]["version-id"], e["detail"]["object"]["key"]) for e in events} == {
        make_pk(v.version_id, v.key) for v in versions
    }


def test_with_inventory_reports_a_bucket_with_a_report_is_proven_instead_of_listed(aws, clock, monkeypatch):
    """InventoryReports set: SRC's pairs are proven from their reports (crrmon.proof); the buckets without a
    report (the bidirectional pair) are listed as before."""
    from ..unit.inventory_reports import put_report, row
    from .conftest import build_world

    world = build_world(aws, clock, monkeypatch, InventoryReports="s3://inventories/daily/{bucket}/all-versions")
    boto3.setup_default_session(region_name=REGION)
    runtime.reset()
    try:
        world.s3.create_bucket(Bucket="inventories")
        reports = {
            SRC: [[row(SRC, "p/ok", "v1"), row(SRC, "p/missing", "v2"), row(SRC, "p/pending", "v3", status="PENDING")]],
            DST: [[row(DST, "p/ok", "v1", status="REPLICA")]],
            DST2: [[row(DST2, "p/ok", "v1", status="REPLICA"), row(DST2, "p/missing", "v2", status="REPLICA")]],
        }
        for bucket, files in reports.items():
            put_report(world.s3, "inventories", bucket, files, base="daily/{bucket}/all-versions")
        world.clock.t = datetime(2026, 12, 7, 2, tzinfo=UTC).timestamp()  # an hour after the reports began

        result = run_reconcile(world)
        assert set(result[SRC]) == {DST, DST2}
        west, eu = result[SRC][DST], result[SRC][DST2]
        assert west["complete"] and (west["checked"], west["present"], west["missing"], west["pending"]) == (3, 1, 1, 1)
        assert eu["complete"] and (eu["present"], eu["missing"], eu["pending"]) == (2, 0, 1)
        assert "listed" in result[BIDI_A] and "listed" in result[BIDI_B]
        (event,) = fed_events(world)  # the missing version, written 16 h ago, unknown to the monitor
        assert event["detail"]["object"]["key"] == "p/missing" and event["detail"]["bucket"]["name"] == SRC
        proofs = [line for line in world.archive() if line.get("kind") == "daily-proof"]
        assert sorted((p["destination_bucket"], p["day"], p["missing"]) for p in proofs) == [
            (DST2, "2026-12-06", 0),
            (DST, "2026-12-06", 1),
        ]
        again = run_reconcile(world)  # the day is proven: nothing read or fed twice
        assert again[SRC][DST]["already"] and len(world.archive()) == len(proofs)
    finally:
        boto3.DEFAULT_SESSION = None
        runtime.reset()
