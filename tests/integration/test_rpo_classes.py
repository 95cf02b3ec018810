"""RPO classes end to end: versions under different prefixes and sizes get their class's deadline, are late
(or not) by it, and carry the class to the archive and the metrics."""

from __future__ import annotations

import pytest

from crrmon import runtime
from crrmon_local import emulator

from .conftest import DST, DST2, RPO, SRC, build_world
from .test_outage import emf_values

POLICY = "invoices:prefix=invoices/,rpo=20;logs:prefix=logs/,rpo=300;big:min=1KB,rpo=100"


@pytest.fixture
def world(aws, clock, monkeypatch, capsys):
    yield build_world(aws, clock, monkeypatch, RpoClasses=POLICY)
    runtime.reset()


def test_each_class_has_its_own_deadline_lateness_archive_field_and_metrics(world, capsys):
    t0 = world.clock()
    versions = {
        "invoices/2026/0001.pdf": world.put(SRC, "invoices/2026/0001.pdf"),
        "logs/app/0001.log": world.put(SRC, "logs/app/0001.log"),
        "data/big.bin": world.put(SRC, "data/big.bin", body=b"x" * 2000),
        "images/cat.png": world.put(SRC, "images/cat.png"),
    }
    for key, obj in versions.items():
        emulator.set_replication_status(SRC, key, obj["version_id"], "PENDING")
        world.send(world.created_event(SRC, key, obj))
    world.run()

    expected = {
        "invoices/2026/0001.pdf": ("invoices", 20),
        "logs/app/0001.log": ("logs", 300),
        "data/big.bin": ("big", 100),  # by its size: no prefix of the policy matches it
        "images/cat.png": ("default", RPO),  # no class matches: RpoSeconds
    }
    for key, (name, rpo) in expected.items():
        for dest in (DST, DST2):
            item = world.item(key, versions[key]["version_id"], dest)
            assert (item["rpo_c"], item["rpo_s"]) == (name, rpo)
            assert 0 < item["due"] - (t0 + rpo) <= 1  # S3's time + the class's RPO (+ size/throughput, ceil)

    world.advance(25)  # past the invoice's deadline only: the sweeper finds no replica
    assert world.item("invoices/2026/0001.pdf", versions["invoices/2026/0001.pdf"]["version_id"], DST)["status"] == (
        "OVERDUE"
    )
    for key in ("logs/app/0001.log", "data/big.bin", "images/cat.png"):
        assert "status" not in world.item(key, versions[key]["version_id"], DST)
    digests = world.digests()
    assert {d["status"] for d in digests} == {"OVERDUE"}
    assert all(d["rpo_classes"] == {"invoices": 1} for d in digests)

    world.clock.advance(15)  # 40 s after the sources: every replica lands now
    for key, obj in versions.items():
        for dest in (DST, DST2):
            world.replicate(SRC, key, obj, dest)
            world.send(world.created_event(dest, key, obj))
    world.run()

    lines = [line for line in world.archive() if line["key"] in versions]
    assert len(lines) == 8 and {line["status"] for line in lines} == {"COMPLETED"}
    for line in lines:
        name, rpo = expected[line["key"]]
        assert (line["rpo_class"], line["rpo_seconds"]) == (name, rpo)
        assert line["latency_ms"] == 40_000
        assert line["missed_rpo"] is (name == "invoices"), line  # 40 s: late for 20 s only
    out = capsys.readouterr().out
    assert sum(emf_values(out, "ObjectsOverdue", RpoClass="invoices")) == 2
    assert sum(emf_values(out, "ObjectsReplicatedLate", RpoClass="invoices")) == 2
    assert sorted(emf_values(out, "ReplicationLatency", RpoClass="logs")) == [40_000, 40_000]
    assert emf_values(out, "ReplicationLatency", RpoClass="default") == [40_000, 40_000]
    assert sum(emf_values(out, "ObjectsReplicatedLate", RpoClass="default")) == 0


def test_without_a_policy_items_carry_no_class_and_lines_say_default(aws, clock, monkeypatch, capsys):
    plain = build_world(aws, clock, monkeypatch)
    try:
        obj = plain.replicated("invoices/2026/0002.pdf", after_s=4)
        item = plain.item("invoices/2026/0002.pdf", obj["version_id"], DST)
        assert "rpo_c" not in item and "rpo_s" not in item  # items as they were: no bytes added
        lines = plain.lines_for("invoices/2026/0002.pdf")
        assert {(line["rpo_class"], line["rpo_seconds"]) for line in lines} == {("default", RPO)}
        assert emf_values(capsys.readouterr().out, "ReplicationLatency", RpoClass="default") == []
    finally:
        runtime.reset()
