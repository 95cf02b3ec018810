"""crrmon failed and stats: the archive of final verdicts, read directly (local) or through Athena."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

from moto.athena.models import QueryResults, athena_backends

from crrmon.publish import pack_records
from crrmon.store import make_pk

from .conftest import ACCOUNT, DST, DST2, REGION, SRC, Recorder, deny, fail, index_before_sharding, store


def test_failed_empty(world, cli):
    code, answer = cli.json("failed")
    assert code == 0 and answer["items"] == []
    assert cli("failed") == 0 and "no FAILED verdicts in the table's retention window" in cli.out
    assert cli("failed", "--from", "archive", "--since", "7d") == 0 and "since 7d ago" in cli.out


def _five_failures(world) -> None:
    world.replicated("ok/1")
    for i in range(5):
        world.clock.advance(1)
        fail(world, f"bad/{i}", reason="DstPutObjectNotPermitted" if i % 2 else "DstKmsKeyNotFound")


def _all_pages(cli, *argv: str) -> tuple[list[str], int, dict]:
    """Every page of `failed`, the clock moving on between pages as it does for an operator."""
    keys, token, pages = [], None, 0
    while True:
        code, answer = cli.json("failed", "--limit", "2", *argv, *(["--next-token", token] if token else []))
        assert code == 1 and 1 <= len(answer["items"]) <= 2
        keys += [row["key"] for row in answer["items"]]
        pages += 1
        token = answer.get("next_token")
        if not token:
            return keys, pages, answer
        cli.world.clock.advance(5)


def test_failed_lists_failures_from_the_table_index_with_paging(world, cli):
    """Within the retention window the sparse Failed index answers: a Query per shard of each pair, never a Scan."""
    _five_failures(world)
    fail(world, "bad/eu", dest=DST2, reason="DstBucketNotFound")
    _, answer = cli.json("failed", "--since", "2s")  # bad/i failed at i+1 s, bad/eu with bad/4
    assert [r["key"] for r in answer["items"]] == ["bad/eu", "bad/4", "bad/3", "bad/2"]
    queries = Recorder(world.session, "provide-client-params.dynamodb.Query")
    scans = Recorder(world.session, "provide-client-params.dynamodb.Scan")
    keys, pages, answer = _all_pages(cli, "--from", "table")
    assert keys == ["bad/eu", *(f"bad/{i}" for i in reversed(range(5)))]  # pair by pair, newest first
    assert pages == 3 and scans.calls == []
    assert {q["IndexName"] for q in queries.calls} == {"Failed"}
    row = answer["items"][-1]
    assert row["pair"] == f"{SRC}>{DST}" and row["reason"] == "DstKmsKeyNotFound" and row["version_id"]
    assert row["source_bucket"] == SRC and row["destination_bucket"] == DST and row["size"] == 13

    assert _all_pages(cli)[0] == keys  # the default, with the default window (the table's retention)
    _, answer = cli.json("failed", "--prefix", "bad/3")
    assert [r["key"] for r in answer["items"]] == ["bad/3"]
    _, answer = cli.json("failed", "--pair", f"{SRC}>{DST2}")
    assert [r["key"] for r in answer["items"]] == ["bad/eu"]
    assert cli("failed", "--older-than", "1h") == 0  # all failed seconds ago


def test_failed_lists_failures_indexed_before_sharding_with_the_others(world, cli):
    old = fail(world, "bad/before-upgrade")
    index_before_sharding(make_pk(old["version_id"], "bad/before-upgrade"), DST, "fail_pair", f"{SRC}>{DST}")
    for i in range(3):
        world.clock.advance(1)
        fail(world, f"bad/{i}")
    assert store().get(make_pk(old["version_id"], "bad/before-upgrade"), DST)["fail_pair"] == f"{SRC}>{DST}"
    keys, _, answer = _all_pages(cli, "--from", "table", "--pair", f"{SRC}>{DST}")
    assert keys == ["bad/2", "bad/1", "bad/0", "bad/before-upgrade"]  # newest first over shards and the bare pair
    assert answer["items"][-1]["pair"] == f"{SRC}>{DST}"


def test_failed_lists_failures_from_the_archive_with_paging(world, cli):
    _five_failures(world)
    keys, pages, answer = _all_pages(cli, "--from", "archive")
    assert pages == 3
    assert keys == [f"bad/{i}" for i in reversed(range(5))]  # newest first
    row = answer["items"][-1]
    assert row["pair"] == f"{SRC}>{DST}" and row["reason"] == "DstKmsKeyNotFound" and row["version_id"]

    _, answer = cli.json("failed", "--from", "archive", "--prefix", "bad/3")
    assert [r["key"] for r in answer["items"]] == ["bad/3"]
    _, answer = cli.json("failed", "--from", "archive", "--pair", f"{SRC}>{DST2}")
    assert answer["items"] == []
    assert cli("failed", "--from", "archive", "--older-than", "1h") == 0
    # Beyond the table's retention the archive answers, without being asked to.
    _, answer = cli.json("failed", "--since", "7d")
    assert [r["key"] for r in answer["items"]][:2] == ["bad/4", "bad/3"] and len(answer["items"]) == 5


def test_failed_access_denied(world, cli):
    deny(world.session, "before-call.dynamodb.Query")
    assert cli("failed") == 2
    assert "dynamodb:Query" in cli.err
    deny(world.session, "before-call.s3.ListObjectsV2")
    assert cli("failed", "--since", "7d") == 2
    assert "s3:ListBucket on arn:aws:s3:::" in cli.err


def test_stats_from_the_archive(world, cli):
    for i, delay in enumerate((2, 4, 6, 8)):
        world.replicated(f"ok/{i}", after_s=delay)
    fail(world, "bad/1")
    code, answer = cli.json("stats", "--since", "1h")
    assert code == 1  # a failure is a finding
    rows = {row["pair"]: row for row in answer["items"]}
    west, eu = rows[f"{SRC}>{DST}"], rows[f"{SRC}>{DST2}"]
    assert west["completed"] == 4 and west["failed"] == 1 and west["objects"] == 5
    assert eu["completed"] == 4 and eu["failed"] == 0
    assert west["p50_ms"] == 4000 and west["p90_ms"] == 8000 and west["max_ms"] == 8000 and west["max"] == "8s"
    assert cli("stats") == 1 and "P50" in cli.out


def test_stats_read_archive_objects_of_every_form_once_per_record_id(world, cli):
    """Gzip members (one per Firehose record, as the monitor sends them), a Firehose-compressed object of
    plain lines, and an object holding both (written during a stack update): each line counted once."""
    world.replicated("ok/members", after_s=2)  # through the pipeline and moto's Firehose: gzip members
    now = datetime.fromtimestamp(world.clock(), UTC)
    at = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def line(n: int, status: str = "COMPLETED") -> dict:
        return {
            "record_id": f"r{n}",
            "source_bucket": SRC,
            "destination_bucket": DST,
            "key": f"old/{n}",
            "status": status,
            "missed_rpo": False,
            "latency_ms": 1000,
            "detected_at": at,
        }

    plain = b"".join((json.dumps(line(n)) + "\n").encode() for n in (1, 2))
    prefix = f"records/year={now:%Y}/month={now:%m}/day={now:%d}/"
    world.s3.put_object(Bucket=world.stack.archive_bucket, Key=prefix + "firehose-gzip.gz", Body=gzip.compress(plain))
    mixed = plain + b"".join(pack_records([line(3, "FAILED"), line(2)]))  # r1, r2 again: copies of one verdict
    world.s3.put_object(Bucket=world.stack.archive_bucket, Key=prefix + "mixed.json.gz", Body=mixed)
    proof = {**line(9), "kind": "daily-proof", "status": None, "key": None}  # a pair's daily proof: no verdict
    world.s3.put_object(
        Bucket=world.stack.archive_bucket, Key=prefix + "proof.json.gz", Body=b"".join(pack_records([proof]))
    )
    code, answer = cli.json("stats", "--since", "1h")
    row = {r["pair"]: r for r in answer["items"]}[f"{SRC}>{DST}"]
    assert code == 1 and row["objects"] == 4 and row["completed"] == 3 and row["failed"] == 1


def test_stats_empty(world, cli):
    assert cli("stats") == 0 and "no verdicts archived" in cli.out


def _athena_results(rows: list[list[str]], names: list[str]) -> None:
    """What Athena would answer (moto runs no SQL): header row first, as Athena sends it."""
    backend = athena_backends[ACCOUNT][REGION]
    data = [{"Data": [{"VarCharValue": v} for v in row]} for row in [names, *rows]]
    backend.query_results_queue.append(
        QueryResults(rows=data, column_info=[{"Name": n, "Type": "varchar"} for n in names])
    )


def test_stats_through_athena_sends_the_query_and_reads_its_answer(world, cli):
    sent = Recorder(world.session, "before-parameter-build.athena.StartQueryExecution")
    names = [
        "source_bucket",
        "destination_bucket",
        "status",
        "objects",
        "missed_rpo",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "max_ms",
    ]
    _athena_results(
        [
            [SRC, DST, "COMPLETED", "120", "3", "4200", "9100", "60000", "61000"],
            [SRC, DST, "FAILED", "2", "2", None, None, None, None],
        ],
        names,
    )
    code, answer = cli.json(
        "stats", "--from", "athena", "--athena-database", "crrmon_test_archive", "--athena-output", "s3://results/q/"
    )
    assert code == 1
    [row] = answer["items"]
    assert row["pair"] == f"{SRC}>{DST}" and row["completed"] == 120 and row["failed"] == 2 and row["objects"] == 122
    assert row["late"] == 3 and row["p50_ms"] == 4200 and row["p99"] == "1m00s"
    [request] = sent.calls
    text = request["QueryString"]
    assert request["QueryExecutionContext"] == {"Database": "crrmon_test_archive"}
    assert request["ResultConfiguration"] == {"OutputLocation": "s3://results/q/"}
    assert '"crrmon_test_archive"."replication_records"' in text and "approx_percentile(latency_ms, 0.99)" in text
    assert "AND kind IS NULL GROUP BY source_bucket, destination_bucket, status" in text  # verdicts only
    assert "concat(year, '-', month, '-', day) >=" in text


def test_failed_through_athena_filters_in_sql(world, cli):
    sent = Recorder(world.session, "before-parameter-build.athena.StartQueryExecution")
    names = ["source_bucket", "destination_bucket", "key", "version_id", "size", "reason", "detected_at", "source_time"]
    _athena_results(
        [[SRC, DST, "it's/a key", "v1", "12", "DstBucketNotFound", "2026-11-27T07:00:00.000Z", None]], names
    )
    code, answer = cli.json(
        "failed", "--from", "athena", "--athena-database", "db", "--pair", f"{SRC}>{DST}", "--prefix", "it's/a_"
    )
    assert code == 1 and answer["items"][0]["key"] == "it's/a key" and answer["items"][0]["size"] == 12
    text = sent.calls[0]["QueryString"]
    assert "status = 'FAILED'" in text and f"source_bucket = '{SRC}'" in text
    assert "key LIKE 'it''s/a\\_%' ESCAPE '\\'" in text


def test_athena_access_denied(world, cli):
    deny(world.session, "before-call.athena.StartQueryExecution", code="AccessDeniedException")
    assert cli("stats", "--from", "athena", "--athena-database", "db") == 2
    assert "athena:StartQueryExecution on workgroup primary" in cli.err


def test_failed_pages_through_athena_without_running_the_query_again(world, cli, monkeypatch):
    """moto answers every GetQueryResults in one piece: Athena's paging is asserted with a Stubber."""
    from botocore.stub import ANY, Stubber

    from crrmon_cli.aws import Aws

    athena = world.session.client("athena", region_name=REGION)
    stub = Stubber(athena)
    names = ["source_bucket", "destination_bucket", "key", "version_id", "size", "reason", "detected_at", "source_time"]

    def rows(*values):
        return {
            "ResultSet": {
                "Rows": [{"Data": [{"VarCharValue": v} for v in row]} for row in values],
                "ResultSetMetadata": {"ColumnInfo": [{"Name": n, "Type": "varchar"} for n in names]},
            }
        }

    one = [SRC, DST, "k/1", "v1", "1", "DstBucketNotFound", "2026-11-27T07:00:00.000Z", "2026-11-27T06:59:00.000Z"]
    two = [SRC, DST, "k/2", "v2", "2", "DstBucketNotFound", "2026-11-27T06:00:00.000Z", "2026-11-27T05:59:00.000Z"]
    stub.add_response(
        "start_query_execution",
        {"QueryExecutionId": "q-1"},
        {"QueryString": ANY, "QueryExecutionContext": ANY, "WorkGroup": "ops"},
    )
    stub.add_response(
        "get_query_execution", {"QueryExecution": {"Status": {"State": "RUNNING"}}}, {"QueryExecutionId": "q-1"}
    )
    stub.add_response(
        "get_query_execution", {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}}, {"QueryExecutionId": "q-1"}
    )
    stub.add_response(
        "get_query_results", {**rows(names, one), "NextToken": "athena-2"}, {"QueryExecutionId": "q-1", "MaxResults": 1}
    )
    stub.add_response(
        "get_query_results", rows(two), {"QueryExecutionId": "q-1", "MaxResults": 1, "NextToken": "athena-2"}
    )
    stub.activate()
    plain = Aws.client
    monkeypatch.setattr(
        Aws,
        "client",
        lambda self, service, region=None: athena if service == "athena" else plain(self, service, region),
    )
    monkeypatch.setattr("crrmon_cli.archive.time.sleep", lambda s: None)
    base = ["failed", "--from", "athena", "--athena-database", "db", "--workgroup", "ops", "--limit", "1"]
    _, first = cli.json(*base)
    assert [r["key"] for r in first["items"]] == ["k/1"] and first["next_token"]
    _, second = cli.json(*base, "--next-token", first["next_token"])
    assert [r["key"] for r in second["items"]] == ["k/2"] and "next_token" not in second
    stub.assert_no_pending_responses()
