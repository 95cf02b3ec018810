"""crrmon status and overdue: the state table through the command, on moto."""

from __future__ import annotations

from crrmon.store import make_pk
from crrmon_local import emulator

from .conftest import DST, DST2, RPO, SRC, deny, index_before_sharding, overdue_item, store


def test_status_of_a_replicated_object_per_destination(world, cli):
    key = "reports/q3.csv"
    obj = world.replicated(key, after_s=4)

    code, answer = cli.json("status", f"s3://{SRC}/{key}")
    assert code == 0
    assert answer["version_id"] == obj["version_id"]  # the latest version, found by HEAD
    rows = {row["destination"]: row for row in answer["items"]}
    assert set(rows) == {DST, DST2}
    assert rows[DST]["status"] == "COMPLETED" and rows[DST]["verified_by"] == "etag"
    assert rows[DST]["latency_ms"] == 4000 and rows[DST]["latency"] == "4s"
    assert rows[DST]["rpo_class"] == "default"  # the stack has no RpoClasses

    assert cli("status", f"s3://{SRC}/{key}", "--version-id", obj["version_id"]) == 0
    assert "COMPLETED" in cli.out and "DESTINATION" in cli.out


def test_status_shows_overdue_and_exits_1(world, cli):
    key = "slow/one"
    obj = world.put(SRC, key)
    emulator.set_replication_status(SRC, key, obj["version_id"], "PENDING")
    world.send(world.created_event(SRC, key, obj))
    world.advance(RPO + 1)
    code, answer = cli.json("status", f"s3://{SRC}/{key}")
    assert code == 1
    assert {row["status"] for row in answer["items"]} == {"OVERDUE"}
    assert all(row["missed_rpo"] for row in answer["items"])


def test_status_of_an_untracked_object(world, cli):
    obj = world.put(SRC, "never/seen")
    assert cli("status", f"s3://{SRC}/never/seen") == 1
    assert "not tracked" in cli.out and obj["version_id"] in cli.out


def test_status_usage_errors(world, cli):
    assert cli("status", "s3://") == 2 and "not an s3://" in cli.err
    assert cli("status", f"s3://{SRC}/missing/key") == 2 and "no such object" in cli.err


def test_status_access_denied_names_action_and_resource(world, cli):
    obj = world.put(SRC, "k")
    deny(world.session, "before-call.dynamodb.Query")
    assert cli("status", f"s3://{SRC}/k", "--version-id", obj["version_id"]) == 2
    assert "dynamodb:Query on table crrmon-test-ReplicationTable" in cli.err


def test_overdue_empty(world, cli):
    code, answer = cli.json("overdue")
    assert code == 0 and answer["items"] == [] and "next_token" not in answer
    assert cli("overdue") == 0 and cli.out.strip() == "no overdue objects"


def test_overdue_pages_across_pairs_without_losing_or_repeating(world, cli):
    base_ms = int(world.clock() * 1000) - 3_600_000
    expected = set()
    for i in range(7):
        overdue_item(f"a/{i}", f"v{i}", dest=DST, first_seen_ms=base_ms + i * 1000)
        expected.add((f"{SRC}>{DST}", f"a/{i}"))
    for i in range(4):
        overdue_item(f"b/{i}", f"w{i}", dest=DST2, first_seen_ms=base_ms + i * 1000)
        expected.add((f"{SRC}>{DST2}", f"b/{i}"))

    seen, token, pages = [], None, 0
    while True:
        argv = ["overdue", "--limit", "3"] + (["--next-token", token] if token else [])
        code, answer = cli.json(*argv)
        assert code == (1 if answer["items"] else 0)
        assert len(answer["items"]) <= 3
        seen += [(row["pair"], row["key"]) for row in answer["items"]]
        pages += 1
        token = answer.get("next_token")
        if not token:
            break
    assert pages >= 4
    assert len(seen) == len(set(seen)) == 11 and set(seen) == expected
    # oldest first within a pair
    assert [k for p, k in seen if p == f"{SRC}>{DST}"] == [f"a/{i}" for i in range(7)]


def test_overdue_merges_the_shards_of_a_pair_oldest_first_with_items_indexed_before_sharding(world, cli):
    base_ms = int(world.clock() * 1000) - 3_600_000
    for i in range(24):  # six first sightings, four items each: ties across shards
        overdue_item(f"s/{i:02}", f"v{i}", first_seen_ms=base_ms + (i % 6) * 1000)
    overdue_item("s/legacy", "vL", first_seen_ms=base_ms - 1000)
    index_before_sharding(make_pk("vL", "s/legacy"), DST, "ovd_pair", f"{SRC}>{DST}")
    shards = {store().get(make_pk(f"v{i}", f"s/{i:02}"), DST)["ovd_pair"] for i in range(24)}
    assert len(shards) > 8 and all(v.startswith(f"{SRC}>{DST}#") for v in shards)

    rows, token = [], None
    while True:
        argv = ["overdue", "--pair", f"{SRC}>{DST}", "--limit", "5", *(["--next-token", token] if token else [])]
        _, answer = cli.json(*argv)
        rows += answer["items"]
        token = answer.get("next_token")
        if not token:
            break
    keys = [row["key"] for row in rows]
    assert len(keys) == len(set(keys)) == 25 and keys[0] == "s/legacy"
    assert [row["first_seen"] for row in rows] == sorted(row["first_seen"] for row in rows)
    assert {row["pair"] for row in rows} == {f"{SRC}>{DST}"}  # never the shard

    _, answer = cli.json("overdue", "--summary")
    summary = {row["pair"]: row for row in answer["items"]}[f"{SRC}>{DST}"]
    assert (summary["overdue"], summary["oldest_key"]) == (25, "s/legacy")


def test_overdue_filters(world, cli):
    now_ms = int(world.clock() * 1000)
    overdue_item("logs/old", "v1", first_seen_ms=now_ms - 7200_000)
    overdue_item("logs/new", "v2", first_seen_ms=now_ms - 600_000)
    overdue_item("data/old", "v3", first_seen_ms=now_ms - 7200_000)
    overdue_item("logs/other-pair", "v4", dest=DST2, first_seen_ms=now_ms - 7200_000)

    _, answer = cli.json("overdue", "--pair", f"{SRC}>{DST}", "--prefix", "logs/")
    assert [row["key"] for row in answer["items"]] == ["logs/old", "logs/new"]
    _, answer = cli.json("overdue", "--older-than", "1h")
    assert sorted(row["key"] for row in answer["items"]) == ["data/old", "logs/old", "logs/other-pair"]
    keys, token = [], None  # pairs in name order: dst-euw1 before dst-usw2
    for _ in range(4):
        _, answer = cli.json(
            "overdue", "--prefix", "logs/", "--limit", "1", *(["--next-token", token] if token else [])
        )
        keys += [row["key"] for row in answer["items"]]
        token = answer.get("next_token")
        if not token:
            break
    assert keys == ["logs/other-pair", "logs/old", "logs/new"]


def test_overdue_summary(world, cli):
    now_ms = int(world.clock() * 1000)
    overdue_item("x/1", "v1", first_seen_ms=now_ms - 5400_000)
    overdue_item("x/2", "v2", first_seen_ms=now_ms - 600_000)
    code, answer = cli.json("overdue", "--summary")
    assert code == 1
    rows = {row["pair"]: row for row in answer["items"]}
    assert rows[f"{SRC}>{DST}"]["overdue"] == 2 and rows[f"{SRC}>{DST}"]["oldest_key"] == "x/1"
    assert rows[f"{SRC}>{DST}"]["oldest_waiting"] == "1h30m"
    assert rows[f"{SRC}>{DST2}"]["overdue"] == 0


def test_overdue_bad_pair_and_token(world, cli):
    assert cli("overdue", "--pair", "nopair") == 2 and "SOURCE>DESTINATION" in cli.err
    assert cli("overdue", "--next-token", "!!notatoken") == 2 and "--next-token" in cli.err


def test_overdue_access_denied_on_the_index(world, cli):
    deny(world.session, "before-call.dynamodb.Query", code="AccessDeniedException")
    assert cli("overdue", "--pair", f"{SRC}>{DST}") == 2
    assert "dynamodb:Query on table crrmon-test-ReplicationTable/index/Overdue" in cli.err
