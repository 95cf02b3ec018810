"""crrmon reconcile: source versus destinations, by listing or from S3 Inventory, and --feed."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import UTC, datetime

from crrmon_local import emulator

from .conftest import DST, DST2, RPO, SRC, deny


def _states(answer: dict) -> dict[tuple[str, str], dict]:
    return {(row["key"], row["destination"]): row for row in answer["items"]}


def test_reconcile_all_replicated_and_tracked(world, cli):
    for i in range(3):
        world.replicated(f"fine/{i}")
    code, answer = cli.json("reconcile", f"s3://{SRC}")
    assert code == 0 and answer["items"] == []
    assert answer["summary"]["checked"] == 6 and answer["summary"]["ok"] == 6
    assert cli("reconcile", f"s3://{SRC}") == 0 and "no differences" in cli.out


def test_reconcile_finds_missing_different_in_flight_and_untracked(world, cli):
    world.replicated("data/fine")
    missing = world.put(SRC, "data/missing")
    # S3's time of the version on the test's clock (moto stamps the machine's, which a slow set-up leaves behind)
    written = emulator.object_version(SRC, "data/missing", missing["version_id"])
    written.last_modified = datetime.fromtimestamp(world.clock(), UTC).replace(tzinfo=None)
    world.send(world.created_event(SRC, "data/missing", missing))
    world.run()
    world.replicate(SRC, "data/missing", missing, DST2)  # never reaches DST
    different = world.put(SRC, "data/different")
    world.replicate(SRC, "data/different", different, DST, body=b"corrupted!")
    world.replicate(SRC, "data/different", different, DST2)
    world.send(world.created_event(SRC, "data/different", different))
    world.run()
    unseen = world.put(SRC, "data/unseen")  # replicated, but no event ever reached the monitor
    world.replicate(SRC, "data/unseen", unseen, DST)
    world.replicate(SRC, "data/unseen", unseen, DST2)
    world.clock.advance(RPO + 5)
    fresh = world.put(SRC, "data/fresh")  # written just now (on the test's clock): in flight
    written = emulator.object_version(SRC, "data/fresh", fresh["version_id"])
    written.last_modified = datetime.fromtimestamp(world.clock(), UTC).replace(tzinfo=None)
    world.send(world.created_event(SRC, "data/fresh", fresh))
    world.run()

    code, answer = cli.json("reconcile", f"s3://{SRC}/data/")
    assert code == 1
    rows = _states(answer)
    assert rows[("data/missing", DST)]["state"] == "MISSING"
    assert ("data/missing", DST2) not in rows  # OK and tracked: not shown
    assert rows[("data/different", DST)]["state"] == "DIFFERENT"
    assert rows[("data/different", DST)]["detail"] == "size 13 != 10"
    assert rows[("data/unseen", DST)]["state"] == "OK" and rows[("data/unseen", DST)]["tracked"] == "no"
    assert rows[("data/fresh", DST)]["state"] == "IN_FLIGHT"
    summary = answer["summary"]
    assert summary["missing"] == 1 and summary["different"] == 1 and summary["untracked"] == 2
    assert summary["in_flight"] == 2 and summary["checked"] == 10

    _, only = cli.json("reconcile", f"s3://{SRC}/data/", "--destination", DST2)
    assert {row["destination"] for row in only["items"]} == {DST2}
    code, _ = cli.json("reconcile", f"s3://{SRC}/data/fine")
    assert code == 0


def test_reconcile_feed_makes_the_monitor_track_what_it_missed(world, cli):
    unseen = world.put(SRC, "lost/events")
    world.replicate(SRC, "lost/events", unseen, DST)
    world.replicate(SRC, "lost/events", unseen, DST2)
    code, answer = cli.json("reconcile", f"s3://{SRC}", "--feed")
    assert code == 1 and answer["summary"]["fed"] == 3  # one source event, two replica events
    world.run()
    for dest in (DST, DST2):
        item = world.item("lost/events", unseen["version_id"], dest)
        assert item["status"] == "COMPLETED"
    code, answer = cli.json("reconcile", f"s3://{SRC}")
    assert code == 0 and answer["summary"]["untracked"] == 0


def test_reconcile_pages_through_versions(world, cli):
    for i in range(12):
        obj = world.put(SRC, f"many/{i:02d}")
        world.replicate(SRC, f"many/{i:02d}", obj, DST)
        world.replicate(SRC, f"many/{i:02d}", obj, DST2)
    pages = []
    world.session.events.register(
        "after-call.s3.ListObjectVersions", lambda parsed, **_: pages.append(len(parsed.get("Versions", [])))
    )
    code, answer = cli.json("reconcile", f"s3://{SRC}/many/", "--page-size", "5")
    assert answer["summary"]["checked"] == 24 and answer["summary"]["untracked"] == 24 and code == 1
    assert len(pages) >= 9  # 3 pages per bucket, three buckets


def test_reconcile_progress_goes_to_stderr(world, cli, monkeypatch):
    world.replicated("p/1")
    monkeypatch.setenv("CRRMON_PROGRESS", "1")
    assert cli("reconcile", f"s3://{SRC}") == 0
    assert f"\rlisting s3://{SRC}/: 1" in cli.err and "\r" not in cli.out


def _inventory(world, bucket: str, rows: list[list[str]]) -> str:
    schema = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, ReplicationStatus"
    text = io.StringIO()
    csv.writer(text, quoting=csv.QUOTE_ALL).writerows(rows)
    world.s3.create_bucket(Bucket="inventories") if "inventories" not in [
        b["Name"] for b in world.s3.list_buckets()["Buckets"]
    ] else None
    data_key = f"{bucket}/all/data/part-0.csv.gz"
    world.s3.put_object(Bucket="inventories", Key=data_key, Body=gzip.compress(text.getvalue().encode()))
    manifest = {
        "sourceBucket": bucket,
        "destinationBucket": "arn:aws:s3:::inventories",
        "version": "2016-11-30",
        "fileFormat": "CSV",
        "fileSchema": schema,
        "files": [{"key": data_key, "size": 1, "MD5checksum": "x"}],
    }
    world.s3.put_object(Bucket="inventories", Key=f"{bucket}/all/manifest.json", Body=json.dumps(manifest))
    return f"s3://inventories/{bucket}/all/manifest.json"


def test_reconcile_reads_s3_inventory_reports(world, cli):
    obj = world.put(SRC, "inv/a b.txt")
    world.replicate(SRC, "inv/a b.txt", obj, DST)
    emulator.set_replication_status(SRC, "inv/a b.txt", obj["version_id"], "FAILED")
    old = "2026-01-01T00:00:00.000Z"
    manifest = _inventory(
        world,
        SRC,
        [[SRC, "inv/a+b.txt", obj["version_id"], "true", "false", str(obj["size"]), old, obj["etag"], "FAILED"]],
    )
    code, answer = cli.json("reconcile", f"s3://{SRC}", "--inventory", manifest, "--destination", DST2)
    assert code == 1
    [row] = answer["items"]
    assert row["key"] == "inv/a b.txt" and row["state"] == "MISSING"
    assert "inventory says replication FAILED" in row["detail"] and row["tracked"] == "aged out?"


def test_reconcile_usage_and_permission_errors(world, cli):
    # a bucket the monitor does not watch as a source is named as such, with what it does watch
    assert cli("reconcile", f"s3://{DST}") == 2 and f"source bucket '{DST}' is not watched" in cli.err
    assert f"Watched source buckets: bidi-a-use1, bidi-b-usw2, {SRC}, tagged-src-use1" in cli.err
    assert cli("reconcile", f"s3://{DST}", "--source-buckets", DST) == 2 and "no replication rules" in cli.err
    assert cli("reconcile", f"s3://{SRC}", "--destination", "nope") == 2 and "not a destination" in cli.err
    deny(world.session, "before-call.s3.ListObjectVersions")
    assert cli("reconcile", f"s3://{SRC}") == 2
    assert f"s3:ListBucketVersions on arn:aws:s3:::{SRC}" in cli.err
