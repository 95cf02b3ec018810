"""The daily proof of one pair from S3 Inventory reports on moto (S3, DynamoDB, SQS): known answers for each
state a source version can be in, what is fed back, the archive line, and a pass split across runs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime

import boto3
import pytest

from crrmon import inventory, proof
from crrmon.metrics import Counters
from crrmon.store import PROOF_PK, Store, make_pk
from crrmon.topology import Rule, Topology
from crrmon_local import emulator
from crrmon_local.cfn import load_template

from .conftest import TEMPLATE
from .inventory_reports import SCHEMA, put_report, row

SCHEMA_FIELDS = tuple(f.strip() for f in SCHEMA.split(","))

INV, SRC, DST = "inventories", "src", "dst"
DAY = "2026-12-06"
NOW = datetime(2026, 12, 7, 2, tzinfo=UTC).timestamp()
KMS_ETAG, OTHER_KMS_ETAG = "0a1b" * 8, "9f8e" * 8
TOPOLOGY = Topology(sources={SRC: [Rule(id="data", destination_bucket=DST, prefix="data/", sse_kms=True)]})

# (row in the source report, its replica's row or None, the state the proof must find)
CASES = [
    (row(SRC, "data/ok", "v1"), row(DST, "data/ok", "v1", status="REPLICA"), "present"),
    (row(SRC, "data/missing", "v2"), None, "missing"),
    (row(SRC, "data/size", "v3", size=10), row(DST, "data/size", "v3", size=11, status="REPLICA"), "differing"),
    (row(SRC, "data/etag", "v4"), row(DST, "data/etag", "v4", etag="f" * 32, status="REPLICA"), "differing"),
    (
        row(SRC, "data/kms etag", "v5", etag=KMS_ETAG, encryption="SSE-KMS"),
        row(DST, "data/kms etag", "v5", etag=OTHER_KMS_ETAG, encryption="SSE-KMS", status="REPLICA"),
        "present",  # SSE-KMS ETags are not MD5s: crrmon.verify does not compare them
    ),
    (
        row(SRC, "data/multipart", "v6", etag="aa-2"),
        row(DST, "data/multipart", "v6", etag="bb-3", status="REPLICA"),
        "present",  # other part counts: the ETags are not comparable
    ),
    (row(SRC, "data/pending", "v7", status="PENDING"), None, "pending"),
    (row(SRC, "data/failed", "v8", status="FAILED"), None, "missing"),
    (row(SRC, "data/no status", "v9", status=""), None, "not_in_scope"),
]
# Source rows the proof does not check: outside the rule, a delete marker, another day, a replica.
UNCHECKED = [
    row(SRC, "other/x", "u1", status=""),
    row(SRC, "data/marker", "u2", delete_marker=True),
    row(SRC, "data/yesterday", "u3", modified="2026-12-05T23:59:59.999Z", status="FAILED"),
    row(SRC, "data/from-elsewhere", "u4", status="REPLICA"),
]


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


class S3:
    """The moto client, with each source data file read counted and moving the clock on by 100 s."""

    def __init__(self, client, clock: Clock):
        self.client, self.clock = client, clock
        self.reads: list[str] = []

    def get_object(self, **kwargs):
        if "/data/" in kwargs["Key"]:
            self.reads.append(kwargs["Key"])
            if f"/{SRC}/" in kwargs["Key"]:
                self.clock.now += 100
        return self.client.get_object(**kwargs)


@pytest.fixture
def aws(ddb):
    # S3 as it answers (a missing key is 404 only to a caller that may list the bucket), whichever test
    # installed the emulator first; the reconcile role may list the reports bucket (template.yaml).
    emulator.install()
    emulator.grant_list(INV)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=INV)
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="events")["QueueUrl"]
    return s3, sqs, queue


def reports(s3, source_files, destination_files) -> proof.PairDay:
    src_key = put_report(s3, INV, SRC, source_files)
    dst_key = put_report(s3, INV, DST, destination_files)
    return proof.PairDay(
        SRC, DST, DAY, inventory.read_manifest(s3, INV, src_key), inventory.read_manifest(s3, INV, dst_key)
    )


def prover(aws, ddb, clock, tmp_path, *, s3=None, retention_hours=48, lines=None, work="container-1"):
    client, sqs, queue = aws
    return proof.Prover(
        store=Store(ddb, "t"),
        s3=s3 or client,
        sqs=sqs,
        counters=Counters(),
        clock=clock,
        account="123456789012",
        region="us-east-1",
        events_queue_url=queue,
        record_retention_hours=retention_hours,
        archive=(lambda batch, _counters: lines.extend(batch)) if lines is not None else None,
        work_root=str(tmp_path / work),
        partitions=4,
    )


def fed(aws) -> list[dict]:
    _, sqs, queue = aws
    answer = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


def expected_sum(rows: list[list[str]]) -> str:
    total = 0
    for r in rows:
        text = f"{inventory.version_of_row(SCHEMA_FIELDS, r).key}\t{r[2]}\t{r[5]}\t{r[7]}\n"
        total += int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")
    return format(total % 2**256, "064x")


def test_each_source_version_of_the_day_is_judged_against_the_destination(aws, ddb, tmp_path):
    s3 = aws[0]
    sources = [c[0] for c in CASES] + UNCHECKED
    replicas = [c[1] for c in CASES if c[1]] + [row(DST, "data/extra", "x1", status="REPLICA")]
    pair = reports(s3, [sources[:5], sources[5:]], [replicas[:3], replicas[3:]])
    lines: list[dict] = []
    result = prover(aws, ddb, Clock(NOW), tmp_path, lines=lines).run(pair, TOPOLOGY, stop_at=NOW + 600)

    states = [c[2] for c in CASES]
    assert result["complete"] and result["checked"] == len(CASES)
    for state in ("present", "differing", "missing", "pending", "not_in_scope"):
        assert result[state] == states.count(state), state
    assert result["malformed"] == 0

    (line,) = lines
    assert line["kind"] == "daily-proof" and line["day"] == DAY
    assert (line["source_bucket"], line["destination_bucket"]) == (SRC, DST)
    assert (line["present"], line["missing"], line["differing"], line["pending"]) == (3, 2, 2, 1)
    assert line["rows_sha256"] == expected_sum([c[0] for c in CASES])
    assert line["source_manifest_sha256"] == pair.source_manifest.sha256
    assert line["destination_manifest"] == pair.destination_manifest.url

    # missing and differing versions, within the retention and unknown to the monitor, go back as events
    events = fed(aws)
    assert sorted(e["detail"]["object"]["key"] for e in events) == [
        "data/etag",
        "data/failed",
        "data/missing",
        "data/size",
    ]
    assert all(e["detail-type"] == "Object Created" and e["detail"]["bucket"]["name"] == SRC for e in events)


def test_the_digest_does_not_depend_on_the_order_of_files_or_rows(aws, ddb, tmp_path):
    s3 = aws[0]
    sources = [c[0] for c in CASES]
    first = reports(s3, [sources[:4], sources[4:]], [])
    one = prover(aws, ddb, Clock(NOW), tmp_path, lines=(a := [])).run(first, TOPOLOGY, stop_at=NOW + 600)
    ddb.delete_item(TableName="t", Key={"pk": {"S": PROOF_PK}, "dest": {"S": first.name}})
    second = reports(s3, [list(reversed(sources[4:])), list(reversed(sources[:4]))], [])
    two = prover(aws, ddb, Clock(NOW), tmp_path, lines=(b := [])).run(second, TOPOLOGY, stop_at=NOW + 600)
    assert one["rows_sha256"] == two["rows_sha256"] == a[0]["rows_sha256"] == b[0]["rows_sha256"]
    altered = reports(s3, [sources[1:]], [])
    ddb.delete_item(TableName="t", Key={"pk": {"S": PROOF_PK}, "dest": {"S": first.name}})
    three = prover(aws, ddb, Clock(NOW), tmp_path).run(altered, TOPOLOGY, stop_at=NOW + 600)
    assert three["rows_sha256"] != one["rows_sha256"]


def test_versions_the_monitor_tracks_or_older_than_the_retention_are_not_fed(aws, ddb, tmp_path):
    s3 = aws[0]
    pair = reports(s3, [[c[0] for c in CASES]], [[c[1] for c in CASES if c[1]]])
    ddb.put_item(TableName="t", Item={"pk": {"S": make_pk("v2", "data/missing")}, "dest": {"S": DST}})
    result = prover(aws, ddb, Clock(NOW), tmp_path).run(pair, TOPOLOGY, stop_at=NOW + 600)
    assert result["missing"] == 2  # the proof counts it all the same
    assert sorted(e["detail"]["object"]["key"] for e in fed(aws)) == ["data/etag", "data/failed", "data/size"]

    ddb.delete_item(TableName="t", Key={"pk": {"S": PROOF_PK}, "dest": {"S": pair.name}})
    aws[1].purge_queue(QueueUrl=aws[2])
    short = prover(aws, ddb, Clock(NOW), tmp_path, retention_hours=12).run(pair, TOPOLOGY, stop_at=NOW + 600)
    assert short["missing"] == 2 and fed(aws) == []  # written 16 h ago: ingest would ignore them as stale


def test_malformed_rows_are_counted_in_the_proof(aws, ddb, tmp_path):
    s3 = aws[0]
    broken = row(SRC, "data/broken", "b1")
    broken[5] = "many"
    pair = reports(s3, [[CASES[0][0], broken]], [[CASES[0][1], [*row(DST, "data/x", "b2")[:3], "2026-12-06T"]]])
    lines: list[dict] = []
    p = prover(aws, ddb, Clock(NOW), tmp_path, lines=lines)
    result = p.run(pair, TOPOLOGY, stop_at=NOW + 600)
    assert result["malformed"] == 2 and result["checked"] == result["present"] == 1
    assert lines[0]["malformed"] == 2
    assert p.counters.total("InventoryRowsMalformed") == 2


def test_a_pass_split_across_runs_resumes_at_the_next_source_file(aws, ddb, tmp_path):
    client = aws[0]
    sources = [c[0] for c in CASES]
    pair = reports(client, [sources[0:3], sources[3:6], sources[6:9]], [[c[1] for c in CASES if c[1]]])
    whole = prover(aws, ddb, Clock(NOW), tmp_path, lines=(whole_lines := [])).run(pair, TOPOLOGY, stop_at=NOW + 600)
    ddb.delete_item(TableName="t", Key={"pk": {"S": PROOF_PK}, "dest": {"S": pair.name}})
    aws[1].purge_queue(QueueUrl=aws[2])

    clock = Clock(NOW)
    s3 = S3(client, clock)
    lines: list[dict] = []
    first = prover(aws, ddb, clock, tmp_path, s3=s3, lines=lines).run(pair, TOPOLOGY, stop_at=NOW + 150)
    assert first["complete"] is False and first["next_file"] == 2 and lines == []
    assert first["checked"] == 6
    saved = Store(ddb, "t").bookkeeping(PROOF_PK, [pair.name])[pair.name]
    assert int(saved["next_file"]) == 2 and int(saved["checked"]) == 6

    # the next run lands on another container: the destination's rows are spread again, the source's
    # first two files are not read again
    s3.reads.clear()
    second = prover(aws, ddb, clock, tmp_path, s3=s3, lines=lines, work="container-2").run(
        pair, TOPOLOGY, stop_at=clock.now + 600
    )
    assert second["complete"] is True
    assert [k for k in s3.reads if f"/{SRC}/" in k] == [pair.source_manifest.files[2]]
    assert [k for k in s3.reads if f"/{DST}/" in k] == list(pair.destination_manifest.files)
    for name in proof.COUNTS:
        assert second[name] == whole[name], name
    assert lines[0]["rows_sha256"] == whole_lines[0]["rows_sha256"]
    assert len(fed(aws)) == 4  # each missing or differing version fed once over both runs

    again = prover(aws, ddb, clock, tmp_path, s3=s3).run(pair, TOPOLOGY, stop_at=clock.now + 600)
    assert again["already"] and again["checked"] == whole["checked"]


def test_a_run_on_the_same_container_reuses_the_spread_destination_rows(aws, ddb, tmp_path):
    client = aws[0]
    sources = [c[0] for c in CASES]
    pair = reports(client, [sources[0:3], sources[3:6], sources[6:9]], [[c[1] for c in CASES if c[1]]])
    clock = Clock(NOW)
    s3 = S3(client, clock)
    prover(aws, ddb, clock, tmp_path, s3=s3).run(pair, TOPOLOGY, stop_at=NOW + 150)
    s3.reads.clear()
    done = prover(aws, ddb, clock, tmp_path, s3=s3).run(pair, TOPOLOGY, stop_at=clock.now + 600)
    assert done["complete"] and [k for k in s3.reads if f"/{DST}/" in k] == []
    assert not list((tmp_path / "container-1").iterdir())  # the work files are removed at the end


def test_judge_follows_verify_for_etags():
    src = inventory.version_of_row(SCHEMA_FIELDS, row(SRC, "k", "v", etag="a" * 32))
    kms = inventory.version_of_row(SCHEMA_FIELDS, row(DST, "k", "v", etag="b" * 32, encryption="SSE-KMS"))
    plain = inventory.version_of_row(SCHEMA_FIELDS, row(DST, "k", "v", etag="b" * 32, encryption="NOT-SSE"))
    assert proof.judge(src, kms) == "present"  # the replica re-encrypted under KMS: ETags not comparable
    assert proof.judge(src, plain) == "differing"  # both MD5 ETags
    assert proof.judge(src, None) == "missing"


def test_the_newest_manifest_is_found_by_its_folder_name(aws):
    s3 = aws[0]
    for folder in ("2026-12-05T01-00Z", "2026-12-07T01-00Z", "2026-12-06T01-00Z"):
        put_report(s3, INV, SRC, [], folder=folder)
    assert proof.latest_manifest(s3, INV, f"inv/{SRC}/all") == f"inv/{SRC}/all/2026-12-07T01-00Z/manifest.json"
    assert proof.latest_manifest(s3, INV, "inv/nothing/") is None


def test_the_athena_table_has_a_column_for_every_field_of_the_proof_line():
    table = load_template(TEMPLATE)["Resources"]["ArchiveTable"]["Properties"]["TableInput"]
    columns = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
    manifest = inventory.parse_manifest(b'{"fileFormat": "CSV", "fileSchema": "Key, VersionId"}', bucket="b", key="m")
    line = proof.proof_line(
        proof.PairDay(SRC, DST, DAY, manifest, manifest), dict.fromkeys(proof.COUNTS, 1), 5, now_s=NOW
    )
    assert set(line) <= set(columns)
    assert all(columns[name] == "bigint" for name in proof.COUNTS)


def test_reports_are_found_per_bucket_and_the_day_proven_is_the_one_before_the_earlier_report():
    reports = proof.Reports("s3://reports/daily/{bucket}/all-versions")
    assert reports.folder("src") == ("reports", "daily/src/all-versions")
    regional = proof.Reports("s3://reports-{region}/daily/{bucket}/all-versions")
    assert regional.folder("dst", "eu-west-1") == ("reports-eu-west-1", "daily/dst/all-versions")
    manifest = inventory.parse_manifest(b'{"fileFormat": "CSV", "fileSchema": "Key, VersionId"}', bucket="b", key="m")
    early = replace(manifest, created_s=datetime(2026, 12, 7, 0, 30, tzinfo=UTC).timestamp())
    late = replace(manifest, created_s=datetime(2026, 12, 8, 3, tzinfo=UTC).timestamp())
    assert proof.proof_day(early, late) == proof.proof_day(late, early) == "2026-12-06"
    undated = replace(manifest, key="x/src/cfg/2026-12-09T05-00Z/manifest.json")
    assert proof.proof_day(undated) == "2026-12-08"  # no creationTimestamp: the folder's name


def test_the_scheduled_proof_lists_a_bucket_without_report_and_skips_a_destination_without_one(aws, ddb, tmp_path):
    s3 = aws[0]
    reports = proof.Reports(f"s3://{INV}/inv/{{bucket}}/all")
    p = prover(aws, ddb, Clock(NOW), tmp_path)
    assert proof.prove_bucket(p, reports, SRC, TOPOLOGY, NOW + 600) is None  # no report yet: list it
    put_report(s3, INV, SRC, [[CASES[0][0]]])
    assert proof.prove_bucket(p, reports, SRC, TOPOLOGY, NOW + 600) == {DST: {"error": "no inventory report"}}
    assert p.counters.total("InventoryReportsMissing") == 1
    put_report(s3, INV, DST, [[CASES[0][1]]])
    result = proof.prove_bucket(p, reports, SRC, TOPOLOGY, NOW + 600)
    assert result[DST]["complete"] and result[DST]["present"] == 1


def test_a_destination_report_that_does_not_fit_in_a_run_stops_the_proof_with_a_reason(aws, ddb, tmp_path, monkeypatch):
    monkeypatch.setattr(proof, "CLOCK_EVERY_ROWS", 1)
    client = aws[0]
    pair = reports(client, [[CASES[0][0]]], [[c[1] for c in CASES if c[1]]])
    clock = Clock(NOW)

    class SlowDestination(S3):
        def get_object(self, **kwargs):
            if f"/{DST}/" in kwargs["Key"]:
                self.clock.now += 1000
            return super().get_object(**kwargs)

    p = prover(aws, ddb, clock, tmp_path, s3=SlowDestination(client, clock))
    with pytest.raises(proof.ProofError, match="could not be read within one run"):
        p.run(pair, TOPOLOGY, stop_at=NOW + 600)
    assert p.counters.total("InventoryReportTooLarge") == 1
    assert Store(ddb, "t").bookkeeping(PROOF_PK, [pair.name]) == {}  # nothing saved: the next run starts over


def test_a_pass_of_another_day_leaves_no_work_files_behind(aws, ddb, tmp_path):
    client = aws[0]
    sources = [c[0] for c in CASES]
    first = reports(client, [sources[0:3], sources[3:6], sources[6:9]], [[c[1] for c in CASES if c[1]]])
    clock = Clock(NOW)
    prover(aws, ddb, clock, tmp_path, s3=S3(client, clock)).run(first, TOPOLOGY, stop_at=NOW + 150)
    assert len(list((tmp_path / "container-1").iterdir())) == 1  # the cut-short pass's destination rows
    later = replace(first, day="2026-12-07")
    prover(aws, ddb, clock, tmp_path).run(later, TOPOLOGY, stop_at=clock.now + 600)
    assert list((tmp_path / "container-1").iterdir()) == []


def test_a_report_folder_without_its_manifest_yet_is_passed_over(aws):
    s3 = aws[0]
    put_report(s3, INV, SRC, [], folder="2026-12-06T01-00Z")
    s3.put_object(Bucket=INV, Key=f"inv/{SRC}/all/2026-12-07T01-00Z/data-being-written.csv.gz", Body=b"")
    s3.put_object(Bucket=INV, Key=f"inv/{SRC}/all/hive/dt=2026-12-07-01-00/symlink.txt", Body=b"")
    assert proof.latest_manifest(s3, INV, f"inv/{SRC}/all") == f"inv/{SRC}/all/2026-12-06T01-00Z/manifest.json"
