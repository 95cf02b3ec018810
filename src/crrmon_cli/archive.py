"""Commands over the archive of final verdicts: `failed` and `stats`.

The archive is the monitor's history: one JSON line per object version and destination with its
final verdict (crrmon.publish.archive_line), date-partitioned, with a Glue table for Athena. The
state table keeps FAILED items (in its sparse Failed index) only until their TTL, so FAILED objects
older than that are listed from here: with Athena on a deployed stack, or by reading the JSON lines
(local demo, or `--from archive`).
"""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from crrmon.publish import is_verdict, read_archive
from crrmon_cli import watched
from crrmon_cli.context import Context
from crrmon_cli.errors import UsageError
from crrmon_cli.output import Progress, duration
from crrmon_cli.records import failed_from_table
from crrmon_cli.values import decode_token, encode_token, pair, seconds, since

RECORDS_PREFIX = "records/"
_PARTITION = re.compile(r"year=(\d{4})/month=(\d{2})/day=(\d{2})/")


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _day(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d")


# ---------------------------------------------------------------- the archive's JSON lines


def archive_lines(ctx: Context, since_s: float) -> Iterator[dict[str, Any]]:
    """Every archive line with detected_at >= since, once per record_id (Firehose may deliver twice)."""
    bucket = ctx.target.need("archive_bucket", "--archive-bucket")
    s3 = ctx.aws.client("s3")
    since_iso, since_day = _iso(since_s), _day(since_s)
    seen: set[str] = set()
    with Progress("reading archive objects") as progress:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=RECORDS_PREFIX):
            for entry in page.get("Contents", []):
                progress.add()
                partition = _PARTITION.search(entry["Key"])
                if partition and "-".join(partition.groups()) < since_day:
                    continue
                data = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
                for line in read_archive(data):
                    if not is_verdict(line):
                        continue
                    if (line.get("detected_at") or "") < since_iso or line.get("record_id") in seen:
                        continue
                    seen.add(line.get("record_id"))
                    yield line


# ---------------------------------------------------------------- Athena


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_like_prefix(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return sql_string(escaped + "%") + " ESCAPE '\\'"


class Athena:
    """Runs one query on the archive's Glue table and pages through its results."""

    def __init__(self, ctx: Context, args, *, sleep: Callable[[float], None] = time.sleep):
        self.client = ctx.aws.client("athena")
        self.database = ctx.target.need("athena_database", "--athena-database")
        self.table = ctx.target.athena_table or "replication_records"
        self.workgroup = args.workgroup or ctx.target.athena_workgroup or "primary"
        self.output = args.athena_output
        self.sleep = sleep

    @property
    def relation(self) -> str:
        return f'"{self.database}"."{self.table}"'

    def start(self, sql: str) -> str:
        request: dict[str, Any] = {
            "QueryString": sql,
            "QueryExecutionContext": {"Database": self.database},
            "WorkGroup": self.workgroup,
        }
        if self.output:
            request["ResultConfiguration"] = {"OutputLocation": self.output}
        execution_id = self.client.start_query_execution(**request)["QueryExecutionId"]
        delay = 0.25
        while True:
            status = self.client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Status"]
            if status["State"] == "SUCCEEDED":
                return execution_id
            if status["State"] in ("FAILED", "CANCELLED"):
                raise UsageError(
                    f"Athena query {execution_id} {status['State']}: {status.get('StateChangeReason', '')}"
                )
            self.sleep(delay)
            delay = min(delay * 2, 5.0)

    def page(self, execution_id: str, token: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        request: dict[str, Any] = {"QueryExecutionId": execution_id, "MaxResults": min(max(limit, 1), 1000)}
        if token:
            request["NextToken"] = token
        answer = self.client.get_query_results(**request)
        result = answer["ResultSet"]
        names = [c["Name"] for c in result.get("ResultSetMetadata", {}).get("ColumnInfo", [])]
        rows = [[d.get("VarCharValue") for d in row.get("Data", [])] for row in result.get("Rows", [])]
        if not token and rows and rows[0] == names:
            rows = rows[1:]  # the first page starts with the header row
        return [dict(zip(names, row, strict=False)) for row in rows], answer.get("NextToken")

    def all(self, sql: str) -> list[dict[str, Any]]:
        execution_id, token, rows = self.start(sql), None, []
        while True:
            page, token = self.page(execution_id, token, 1000)
            rows += page
            if not token:
                return rows


def _use_athena(ctx: Context, args) -> bool:
    if args.source:
        return args.source == "athena"
    return bool(ctx.target.athena_database) and not ctx.target.local


def partition_filter(since_s: float) -> str:
    """Prunes the date partitions (projected from year/month/day) before the JSON is read."""
    return f"concat(year, '-', month, '-', day) >= {sql_string(_day(since_s))}"


# ---------------------------------------------------------------- failed

FAILED_COLUMNS = ("pair", "key", "version_id", "size", "reason", "detected_at")


def failed_sql(athena: Athena, args, since_s: float, now_s: float) -> str:
    conditions = ["status = 'FAILED'", partition_filter(since_s), f"detected_at >= {sql_string(_iso(since_s))}"]
    if args.pair:
        source, destination = pair(args.pair)
        conditions += [f"source_bucket = {sql_string(source)}", f"destination_bucket = {sql_string(destination)}"]
    if args.prefix:
        conditions.append(f"key LIKE {sql_like_prefix(args.prefix)}")
    if args.older_than:
        conditions.append(f"detected_at < {sql_string(_iso(now_s - seconds(args.older_than)))}")
    return (
        "SELECT source_bucket, destination_bucket, key, version_id, size, reason, detected_at, source_time "
        f"FROM {athena.relation} WHERE " + " AND ".join(conditions) + " ORDER BY detected_at DESC, key"
    )


def _failed_row(line: dict[str, Any]) -> dict[str, Any]:
    size = line.get("size")
    return {
        "pair": f"{line.get('source_bucket')}>{line.get('destination_bucket')}",
        "source_bucket": line.get("source_bucket"),
        "destination_bucket": line.get("destination_bucket"),
        "key": line.get("key"),
        "version_id": line.get("version_id"),
        "size": int(size) if size not in (None, "") else None,
        "reason": line.get("reason"),
        "detected_at": line.get("detected_at"),
    }


def failed_lines_from_archive(ctx: Context, args, since_s: float, now_s: float) -> list[dict[str, Any]]:
    want_pair = pair(args.pair) if args.pair else None
    older = _iso(now_s - seconds(args.older_than)) if args.older_than else None
    rows = []
    for line in archive_lines(ctx, since_s):
        if line.get("status") != "FAILED":
            continue
        if want_pair and (line.get("source_bucket"), line.get("destination_bucket")) != want_pair:
            continue
        if args.prefix and not (line.get("key") or "").startswith(args.prefix):
            continue
        if older and (line.get("detected_at") or "") >= older:
            continue
        rows.append(_failed_row(line))
    rows.sort(key=lambda r: (r["detected_at"] or "", r["key"] or ""), reverse=True)
    return rows


def failed_source(ctx: Context, args, since_s: float, now_s: float) -> str:
    """Where FAILED verdicts are read: the table's Failed index when the window fits in its retention,
    else the archive (through Athena on a deployed stack with an Athena table)."""
    if args.source:
        return args.source
    if since_s >= now_s - ctx.target.retention_seconds and ctx.target.table_name:
        return "table"
    return "athena" if _use_athena(ctx, args) else "archive"


def failed_rows(ctx: Context, args, *, limit: int | None, token: str | None) -> tuple[list[dict], str | None]:
    """One page of FAILED verdicts (limit None: all of them) and the token of the next page."""
    if args.pair:
        watched.check_pair(ctx, args.pair)  # a mistyped pair must not read as "no FAILED verdicts"
    now_s = ctx.now()
    state = decode_token(token)
    window = args.since or f"{ctx.target.retention_seconds}s"
    since_s = float(state.get("s", since(window, now_s)))
    # The first page chooses where to read; the following pages read on there (time moves on).
    source = state.get("src") or failed_source(ctx, args, since_s, now_s)
    if source == "table":
        inner = encode_token(state["i"]) if state.get("i") else None  # the index pager's own token
        rows, following = failed_from_table(ctx, args, since_s=since_s, now_s=now_s, limit=limit, token=inner)
        return rows, encode_token({"src": source, "i": decode_token(following), "s": since_s}) if following else None
    if source == "athena":
        athena = Athena(ctx, args)
        if limit is None:
            return [_failed_row(r) for r in athena.all(failed_sql(athena, args, since_s, now_s))], None
        execution_id = state.get("q") or athena.start(failed_sql(athena, args, since_s, now_s))
        rows, athena_token = athena.page(execution_id, state.get("t"), limit)
        following = (
            encode_token({"src": source, "q": execution_id, "t": athena_token, "s": since_s}) if athena_token else None
        )
        return [_failed_row(r) for r in rows], following
    rows = failed_lines_from_archive(ctx, args, since_s, now_s)
    if limit is None:
        return rows, None
    offset = int(state.get("o", 0))
    following = encode_token({"src": source, "o": offset + limit, "s": since_s}) if offset + limit < len(rows) else None
    return rows[offset : offset + limit], following


def failed(ctx: Context, args) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    rows, token = failed_rows(ctx, args, limit=args.limit, token=args.next_token)
    window = f"since {args.since} ago" if args.since else "in the table's retention window"
    ctx.printer.result(rows, FAILED_COLUMNS, empty=f"no FAILED verdicts {window}", extra={"next_token": token})
    return 1 if rows else 0


# ---------------------------------------------------------------- stats

STAT_STATUSES = ("COMPLETED", "FAILED", "MISMATCH", "EXPIRED", "SOURCE_DELETED", "NOT_IN_SCOPE")
STATS_COLUMNS = ("pair", "objects", "completed", "late", "failed", "mismatch", "expired", "p50", "p90", "p99", "max")
PERCENTILES = (("p50_ms", 0.5), ("p90_ms", 0.9), ("p99_ms", 0.99))


def nearest_rank(sorted_values: list[int], q: float) -> int | None:
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def stats_sql(athena: Athena, since_s: float) -> str:
    return (
        "SELECT source_bucket, destination_bucket, status, count(*) AS objects, "
        "count_if(missed_rpo) AS missed_rpo, "
        "approx_percentile(latency_ms, 0.5) AS p50_ms, approx_percentile(latency_ms, 0.9) AS p90_ms, "
        "approx_percentile(latency_ms, 0.99) AS p99_ms, max(latency_ms) AS max_ms "
        f"FROM {athena.relation} WHERE {partition_filter(since_s)} AND detected_at >= {sql_string(_iso(since_s))} "
        "AND kind IS NULL GROUP BY source_bucket, destination_bucket, status "
        "ORDER BY source_bucket, destination_bucket, status"
    )


def _int(value: Any) -> int | None:
    if value in (None, ""):
        return None
    return int(float(value))


def _stats_row(source: str, destination: str) -> dict[str, Any]:
    row: dict[str, Any] = {"pair": f"{source}>{destination}", "objects": 0, "late": 0}
    row.update({s.lower(): 0 for s in STAT_STATUSES})
    row.update({name: None for name, _ in PERCENTILES})
    row["max_ms"] = None
    return row


def _finish(row: dict[str, Any]) -> dict[str, Any]:
    for name in ("p50", "p90", "p99", "max"):
        value = row.get(f"{name}_ms")
        row[name] = duration(value / 1000) if value is not None else None
    return row


def stats_from_athena(ctx: Context, args, since_s: float) -> list[dict[str, Any]]:
    athena = Athena(ctx, args)
    rows: dict[str, dict[str, Any]] = {}
    for result in athena.all(stats_sql(athena, since_s)):
        row = rows.setdefault(
            f"{result['source_bucket']}>{result['destination_bucket']}",
            _stats_row(result["source_bucket"], result["destination_bucket"]),
        )
        count = _int(result["objects"]) or 0
        row["objects"] += count
        status = (result.get("status") or "").lower()
        row[status] = row.get(status, 0) + count
        if result.get("status") == "COMPLETED":
            row["late"] = _int(result.get("missed_rpo")) or 0
            for name, _ in PERCENTILES:
                row[name] = _int(result.get(name))
            row["max_ms"] = _int(result.get("max_ms"))
    return [_finish(rows[name]) for name in sorted(rows)]


def stats_from_archive(ctx: Context, since_s: float) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    latencies: dict[str, list[int]] = defaultdict(list)
    for line in archive_lines(ctx, since_s):
        source, destination = line.get("source_bucket") or "unknown", line.get("destination_bucket")
        row = rows.setdefault(f"{source}>{destination}", _stats_row(source, destination))
        row["objects"] += 1
        status = (line.get("status") or "").lower()
        row[status] = row.get(status, 0) + 1
        if line.get("status") == "COMPLETED":
            row["late"] += 1 if line.get("missed_rpo") else 0
            if line.get("latency_ms") is not None:
                latencies[row["pair"]].append(int(line["latency_ms"]))
    for name, row in rows.items():
        values = sorted(latencies[name])
        for column, q in PERCENTILES:
            row[column] = nearest_rank(values, q)
        row["max_ms"] = values[-1] if values else None
    return [_finish(rows[name]) for name in sorted(rows)]


def stats(ctx: Context, args) -> int:
    since_s = since(args.since, ctx.now())
    rows = stats_from_athena(ctx, args, since_s) if _use_athena(ctx, args) else stats_from_archive(ctx, since_s)
    ctx.printer.result(
        rows,
        STATS_COLUMNS,
        empty=f"no verdicts archived since {args.since} ago",
        extra={"since": _iso(since_s)},
        notes=["latency: S3's time of the source version to its replica's; late: COMPLETED after the RPO"]
        if rows
        else [],
    )
    return 1 if any(r["failed"] or r["mismatch"] or r["expired"] for r in rows) else 0
