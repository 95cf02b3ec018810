"""Commands over the state table: `status` of one object, `overdue` from the sparse Overdue index."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from crrmon.store import from_image, make_pk, pair_name, split_pk
from crrmon_cli.context import Context
from crrmon_cli.errors import UsageError
from crrmon_cli.output import duration, iso
from crrmon_cli.values import decode_token, encode_token, pair, s3_url, seconds

PROBLEMS = {"OVERDUE", "FAILED", "MISMATCH"}

STATUS_COLUMNS = (
    "destination",
    "status",
    "first_seen",
    "due",
    "source_time",
    "replica_time",
    "latency",
    "verified_by",
    "missed_rpo",
    "reason",
)


def latest_version(ctx: Context, bucket: str, key: str) -> str:
    try:
        answer = ctx.aws.client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise UsageError(
                f"s3://{bucket}/{key}: no such object (or its latest version is a delete marker)"
            ) from None
        raise
    version_id = answer.get("VersionId")
    if not version_id or version_id == "null":
        raise UsageError(f"s3://{bucket}/{key} has no version ID: is versioning on? (replication needs it)")
    return version_id


def status_row(item: dict[str, Any], now_s: float) -> dict[str, Any]:
    state = item.get("status") or "PENDING"
    latency = item.get("latency_ms")
    due = item.get("due")
    reason = item.get("reason") or item.get("fail")
    if state == "PENDING" and due is not None and now_s > due:
        reason = reason or f"deadline passed {duration(now_s - due)} ago; the sweeper decides at its next run"
    return {
        "destination": item["dest"],
        "status": state,
        "first_seen": iso(item.get("first_seen")),
        "due": iso(due * 1000) if due is not None else None,
        "source_time": iso(item.get("s_time")),
        "replica_time": iso(item.get("r_time")),
        "latency": duration(latency / 1000) if latency is not None else None,
        "latency_ms": latency,
        "verified_by": item.get("verified_by"),
        "missed_rpo": bool(item.get("missed_rpo")),
        "reason": reason,
        "rule": item.get("rid"),
        "source_size": item.get("s_size"),
        "replica_size": item.get("r_size"),
        "source_etag": item.get("s_etag"),
        "replica_etag": item.get("r_etag"),
    }


def status(ctx: Context, args) -> int:
    bucket, key = s3_url(args.url, key_required=True)
    version_id = args.version_id or latest_version(ctx, bucket, key)
    items = ctx.store().items_of(make_pk(version_id, key))
    rows = [status_row(item, ctx.now()) for item in sorted(items, key=lambda i: i["dest"])]
    source = items[0].get("src") if items else None
    ctx.printer.result(
        rows,
        STATUS_COLUMNS,
        empty=(
            f"s3://{bucket}/{key} version {version_id}: not tracked by the monitor "
            "(no event reached it, it is out of every rule, or its record aged out). "
            f"Check with: crrmon reconcile s3://{bucket}/{key}"
        ),
        extra={"bucket": bucket, "key": key, "version_id": version_id, "source_bucket": source},
        notes=[f"s3://{bucket}/{key} version {version_id}" + (f" (source {source})" if source else "")] if rows else [],
    )
    return 1 if not rows or any(r["status"] in PROBLEMS for r in rows) else 0


OVERDUE_COLUMNS = ("pair", "key", "version_id", "first_seen", "overdue_for", "waiting", "size", "rule")


def _pairs(ctx: Context, args) -> list[str]:
    if args.pair:
        return [pair_name(*pair(args.pair))]
    pairs = [pair_name(s, d) for s, d in ctx.topology().pairs()]
    if not pairs:
        raise UsageError("no replication pairs: the stack watches no bucket with rules (give --pair SRC>DST)")
    return pairs


def overdue(ctx: Context, args) -> int:
    """One Query per pair on the sparse index; paging carries (pair, ExclusiveStartKey) in the token."""
    ddb = ctx.aws.client("dynamodb")
    table = ctx.target.need("table_name", "--table")
    pairs = _pairs(ctx, args)
    if args.summary:
        return overdue_summary(ctx, ddb, table, pairs)
    state = decode_token(args.next_token)
    index, start = int(state.get("p", 0)), state.get("k")
    now_s = ctx.now()
    cutoff_ms = int((now_s - seconds(args.older_than)) * 1000) if args.older_than else None
    rows: list[dict[str, Any]] = []
    while index < len(pairs) and len(rows) < args.limit:
        query: dict[str, Any] = {
            "TableName": table,
            "IndexName": ctx.target.overdue_index_name,
            "KeyConditionExpression": "ovd_pair = :p",
            "ExpressionAttributeValues": {":p": {"S": pairs[index]}},
            "Limit": 200 if args.prefix else args.limit - len(rows),
        }
        if cutoff_ms is not None:
            query["KeyConditionExpression"] += " AND first_seen < :t"
            query["ExpressionAttributeValues"][":t"] = {"N": str(cutoff_ms)}
        if start:
            query["ExclusiveStartKey"] = start
        answer = ddb.query(**query)
        raw_items = answer.get("Items", [])
        stopped_at = None
        for position, raw in enumerate(raw_items):
            item = from_image(raw)
            version_id, key = split_pk(item["pk"])
            if args.prefix and not key.startswith(args.prefix):
                continue
            rows.append(
                {
                    "pair": item.get("ovd_pair"),
                    "key": key,
                    "version_id": version_id,
                    "first_seen": iso(item.get("first_seen")),
                    "overdue_for": duration(now_s - item["due"]) if item.get("due") else None,
                    "waiting": duration(now_s - item["first_seen"] / 1000),
                    "size": item.get("s_size"),
                    "rule": item.get("rid"),
                    "destination_region": item.get("dreg"),
                }
            )
            if len(rows) >= args.limit and position < len(raw_items) - 1:
                stopped_at = {name: raw[name] for name in ("pk", "dest", "ovd_pair", "first_seen")}
                break
        if stopped_at:
            start = stopped_at
        elif answer.get("LastEvaluatedKey"):
            start = answer["LastEvaluatedKey"]
        else:
            index, start = index + 1, None
    token = encode_token({"p": index, "k": start}) if index < len(pairs) else None
    ctx.printer.result(rows, OVERDUE_COLUMNS, empty="no overdue objects", extra={"next_token": token})
    return 1 if rows else 0


def overdue_summary(ctx: Context, ddb, table: str, pairs: list[str]) -> int:
    """Per pair: how many objects are overdue (a COUNT Query, paged) and the oldest of them."""
    store = ctx.store()
    now_s = ctx.now()
    rows = []
    for name in pairs:
        count, start = 0, None
        while True:
            query: dict[str, Any] = {
                "TableName": table,
                "IndexName": ctx.target.overdue_index_name,
                "KeyConditionExpression": "ovd_pair = :p",
                "ExpressionAttributeValues": {":p": {"S": name}},
                "Select": "COUNT",
            }
            if start:
                query["ExclusiveStartKey"] = start
            answer = ddb.query(**query)
            count += answer.get("Count", 0)
            start = answer.get("LastEvaluatedKey")
            if not start:
                break
        oldest = store.oldest_overdue(name) if count else None
        rows.append(
            {
                "pair": name,
                "overdue": count,
                "oldest_key": split_pk(oldest["pk"])[1] if oldest else None,
                "oldest_waiting": duration(now_s - oldest["first_seen"] / 1000) if oldest else None,
            }
        )
    ctx.printer.result(rows, ("pair", "overdue", "oldest_key", "oldest_waiting"), empty="no pairs")
    return 1 if any(r["overdue"] for r in rows) else 0
