"""Commands over the state table: `status` of one object; `overdue` and (within the table's retention)
`failed` from the sparse Overdue and Failed indexes, a Query per pair, never a Scan."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from crrmon.store import FAILED_INDEX, from_image, make_pk, split_pk
from crrmon_cli import watched
from crrmon_cli.context import Context
from crrmon_cli.errors import UsageError
from crrmon_cli.output import duration, iso
from crrmon_cli.values import decode_token, encode_token, s3_url, seconds

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
    watched.check_bucket(ctx, bucket)
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
    """The pairs to ask about: `--pair` when a watched bucket's rule creates it, else every watched pair."""
    if args.pair:
        return [watched.check_pair(ctx, args.pair)]
    pairs = watched.pairs(ctx)
    if not pairs:
        raise UsageError("no replication pairs: the stack watches no bucket with rules (give --pair SRC>DST)")
    return pairs


def pair_index_items(
    ctx: Context,
    *,
    index: str,
    pair_attribute: str,
    range_attribute: str,
    pairs: list[str],
    token: str | None,
    limit: int | None,
    prefix: str | None = None,
    low: int | None = None,
    high: int | None = None,
    newest_first: bool = False,
) -> tuple[list[dict[str, Any]], str | None]:
    """Items of a sparse per-pair index, pair after pair, one Query at a time: a page of `limit` items
    (None: all of them) and the token of the next page, which carries (pair position, ExclusiveStartKey).

    `low`/`high` bound the range attribute (inclusive); `prefix` filters keys here (they sit inside pk).
    """
    ddb = ctx.aws.client("dynamodb")
    table = ctx.target.need("table_name", "--table")
    state = decode_token(token)
    position, start = int(state.get("p", 0)), state.get("k")
    condition = "#h = :p"
    if low is not None and high is not None:
        condition += " AND #r BETWEEN :lo AND :hi"
    elif low is not None:
        condition += " AND #r >= :lo"
    elif high is not None:
        condition += " AND #r <= :hi"
    bounds = {name: {"N": str(v)} for name, v in ((":lo", low), (":hi", high)) if v is not None}
    names = {"#h": pair_attribute, **({"#r": range_attribute} if bounds else {})}

    def query(name: str, limit_: int | None, start_: dict | None) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TableName": table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":p": {"S": name}, **bounds},
            "ScanIndexForward": not newest_first,
        }
        if limit_ is not None:
            request["Limit"] = limit_
        if start_:
            request["ExclusiveStartKey"] = start_
        return ddb.query(**request)

    items: list[dict[str, Any]] = []
    while position < len(pairs) and (limit is None or len(items) < limit):
        # One item more than the page needs: whether this pair has more is then known, not guessed.
        wanted = None if limit is None else (200 if prefix else limit - len(items) + 1)
        answer = query(pairs[position], wanted, start)
        stopped_at = None
        for raw in answer.get("Items", []):
            if limit is not None and len(items) >= limit:
                break
            stopped_at = {name: raw[name] for name in ("pk", "dest", pair_attribute, range_attribute)}
            item = from_image(raw)
            if prefix and not split_pk(item["pk"])[1].startswith(prefix):
                continue
            items.append(item)
        else:
            stopped_at = None  # every item of the answer was taken
        if stopped_at:
            start = stopped_at
        elif answer.get("LastEvaluatedKey"):
            start = answer["LastEvaluatedKey"]
        else:
            position, start = position + 1, None
    if start is None:  # the page ended with a pair: skip the pairs after it that hold nothing
        while position < len(pairs) and not query(pairs[position], 1, None).get("Items"):
            position += 1
    following = encode_token({"p": position, "k": start}) if position < len(pairs) else None
    return items, following


def overdue(ctx: Context, args) -> int:
    """One Query per pair on the sparse Overdue index, oldest first."""
    pairs = _pairs(ctx, args)
    if args.summary:
        return overdue_summary(ctx, ctx.aws.client("dynamodb"), ctx.target.need("table_name", "--table"), pairs)
    now_s = ctx.now()
    items, token = pair_index_items(
        ctx,
        index=ctx.target.overdue_index_name,
        pair_attribute="ovd_pair",
        range_attribute="first_seen",
        pairs=pairs,
        token=args.next_token,
        limit=args.limit,
        prefix=args.prefix,
        high=int((now_s - seconds(args.older_than)) * 1000) - 1 if args.older_than else None,
    )
    rows = []
    for item in items:
        version_id, key = split_pk(item["pk"])
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
    ctx.printer.result(rows, OVERDUE_COLUMNS, empty="no overdue objects", extra={"next_token": token})
    return 1 if rows else 0


def failed_from_table(
    ctx: Context, args, *, since_s: float, now_s: float, limit: int | None, token: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """FAILED verdicts of the retention window from the sparse Failed index, newest first per pair."""
    items, following = pair_index_items(
        ctx,
        index=FAILED_INDEX,
        pair_attribute="fail_pair",
        range_attribute="decided_at",
        pairs=_pairs(ctx, args),
        token=token,
        limit=limit,
        prefix=args.prefix,
        low=int(since_s * 1000),
        high=int((now_s - seconds(args.older_than)) * 1000) - 1 if args.older_than else None,
        newest_first=True,
    )
    rows = []
    for item in items:
        version_id, key = split_pk(item["pk"])
        source, _, destination = item["fail_pair"].partition(">")
        rows.append(
            {
                "pair": item["fail_pair"],
                "source_bucket": source,
                "destination_bucket": destination,
                "key": key,
                "version_id": version_id,
                "size": item.get("s_size"),
                "reason": item.get("reason"),
                "detected_at": iso(item.get("decided_at")),
            }
        )
    return rows, following


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
