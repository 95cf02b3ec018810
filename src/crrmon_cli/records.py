"""Commands over the state table: `status` of one object; `overdue` and (within the table's retention)
`failed` from the sparse Overdue and Failed indexes, Queries on each pair's shards merged in order,
never a Scan."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from crrmon import pair_index
from crrmon.pair_index import FAILED, OVERDUE, PairIndex
from crrmon.publish import rpo_class
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
        "rpo_class": rpo_class(item),  # the RPO class the deadline `due` was computed with (RpoClasses)
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
    keys: PairIndex,
    pairs: list[str],
    token: str | None,
    limit: int | None,
    prefix: str | None = None,
    low: int | None = None,
    high: int | None = None,
    newest_first: bool = False,
) -> tuple[list[dict[str, Any]], str | None]:
    """Items of a sparse per-pair index, pair after pair, each pair's shards merged in the index's order
    (crrmon.pair_index): a page of `limit` items (None: all of them) and the token of the next page, which
    carries (pair position, the key of the last item read).

    `low`/`high` bound the range attribute (inclusive); `prefix` filters keys here (they sit inside pk).
    """
    ddb = ctx.aws.client("dynamodb")
    table = ctx.target.need("table_name", "--table")
    state = decode_token(token)
    position, start = int(state.get("p", 0)), state.get("k")

    def read(pair: str, after: dict | None, batch: int | None):
        try:
            return pair_index.items(
                ddb,
                table=table,
                index=index,
                keys=keys,
                pair=pair,
                after=after,
                low=low,
                high=high,
                newest_first=newest_first,
                batch=batch,
            )
        except ValueError:
            raise UsageError("--next-token is not a token this command gave") from None

    items: list[dict[str, Any]] = []
    while position < len(pairs) and (limit is None or len(items) < limit):
        # One item more than the page needs: whether this pair has more is then known, not guessed.
        batch = None if limit is None else (200 if prefix else limit - len(items) + 1)
        more = False
        for raw in read(pairs[position], start, batch):
            if limit is not None and len(items) >= limit:
                more = True
                break
            start = keys.cursor(raw)
            item = from_image(raw)
            if prefix and not split_pk(item["pk"])[1].startswith(prefix):
                continue
            items.append(item)
        if not more:
            position, start = position + 1, None
    if start is None:  # the page ended with a pair: skip the pairs after it that hold nothing
        while position < len(pairs) and next(read(pairs[position], None, 1), None) is None:
            position += 1
    following = encode_token({"p": position, "k": start}) if position < len(pairs) else None
    return items, following


def overdue(ctx: Context, args) -> int:
    """Queries on each pair's shards of the sparse Overdue index, oldest first."""
    pairs = _pairs(ctx, args)
    if args.summary:
        return overdue_summary(ctx, ctx.aws.client("dynamodb"), ctx.target.need("table_name", "--table"), pairs)
    now_s = ctx.now()
    items, token = pair_index_items(
        ctx,
        index=ctx.target.overdue_index_name,
        keys=OVERDUE,
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
                "pair": pair_index.pair_of(item[OVERDUE.hash_attribute]),
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
        keys=FAILED,
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
        pair = pair_index.pair_of(item[FAILED.hash_attribute])
        source, _, destination = pair.partition(">")
        rows.append(
            {
                "pair": pair,
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
    """Per pair: how many objects are overdue (COUNT Queries on its shards, paged) and the oldest of them."""
    store = ctx.store()
    now_s = ctx.now()
    rows = []
    for name in pairs:
        count = pair_index.count(ddb, table=table, index=ctx.target.overdue_index_name, keys=OVERDUE, pair=name)
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
