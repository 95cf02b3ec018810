"""`reconcile`: the source bucket against each destination, version by version, like `rclone check`.

Versions come from ListObjectVersions (paged) or from S3 Inventory reports (CSV, manifest.json).
Replication keeps version IDs, so a source version and its replica meet on (key, version ID). Each
pair is OK, DIFFERENT (size, or ETag unless --size-only), MISSING (no replica after the RPO) or
IN_FLIGHT (no replica yet, within the RPO). Each source version is also looked up in the monitor's
table (BatchGetItem): `tracked: no` means its events never reached the monitor; --feed sends them.

ETags differ legitimately for SSE-KMS objects and for replicas re-encrypted under another key: use
--size-only for buckets with such objects.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from crrmon import inventory
from crrmon.reconcile import Version, object_event, send_events, untracked, versions_of_page
from crrmon.topology import load_topology
from crrmon_cli import watched
from crrmon_cli.context import Context
from crrmon_cli.errors import UsageError
from crrmon_cli.output import Progress, duration
from crrmon_cli.values import s3_url, since

FINDINGS = {"MISSING", "DIFFERENT"}


def list_versions(s3, bucket: str, prefix: str, page_size: int, label: str) -> dict[tuple[str, str], Version]:
    found: dict[tuple[str, str], Version] = {}
    paginator = s3.get_paginator("list_object_versions")
    with Progress(f"listing {label}") as progress:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}):
            versions = versions_of_page(page)
            found.update(((v.key, v.version_id), v) for v in versions)
            progress.add(len(versions))
    return found


def inventory_versions(s3, url: str, prefix: str, label: str) -> dict[tuple[str, str], Version]:
    """Versions from an S3 Inventory report: its manifest.json and the CSV files it lists (crrmon.inventory)."""
    bucket, key = s3_url(url, key_required=True)
    try:
        manifest = inventory.read_manifest(s3, bucket, key)
    except inventory.InventoryError as error:
        raise UsageError(str(error)) from None
    found: dict[tuple[str, str], Version] = {}
    with Progress(f"reading inventory of {label}", len(manifest.files)) as progress:
        for file_key in manifest.files:
            for version in inventory.read_file(s3, manifest, file_key):
                if version.key.startswith(prefix):
                    found[(version.key, version.version_id)] = version
            progress.add()
    return found


def missing_items(ctx: Context, topology, bucket: str, versions: list[Version]) -> set[tuple[str, str, str]]:
    """(key, version ID, destination) of each expected item the monitor's table lacks (keys-only reads);
    a replica written into a bidirectional bucket is known by its own item, as the scheduled run does."""
    store = ctx.store()
    missing: set[tuple[str, str, str]] = set()
    with Progress("asking the monitor", len(versions)) as progress:
        for start in range(0, len(versions), 1000):
            chunk = versions[start : start + 1000]
            for version, destinations in untracked(store, topology, bucket, chunk):
                missing.update((version.key, version.version_id, d) for d in destinations)
            progress.add(len(chunk))
    return missing


def compare(source: Version, replica: Version | None, *, size_only: bool, age_s: float, rpo_s: int) -> tuple[str, str]:
    if replica is None:
        if age_s > rpo_s:
            return "MISSING", f"no replica {duration(age_s - rpo_s)} after the RPO"
        return "IN_FLIGHT", "no replica yet, within the RPO"
    if source.delete_marker != replica.delete_marker:
        return "DIFFERENT", "delete marker on one side only"
    if source.size is not None and replica.size is not None and source.size != replica.size:
        return "DIFFERENT", f"size {source.size} != {replica.size}"
    if not size_only and source.etag and replica.etag and source.etag != replica.etag:
        return "DIFFERENT", f"ETag {source.etag} != {replica.etag}"
    return "OK", ""


def reconcile(ctx: Context, args) -> int:
    bucket, url_prefix = s3_url(args.url)
    watched.check_source(ctx, bucket)
    prefix = args.prefix if args.prefix is not None else url_prefix
    now_s = ctx.now()
    since_s = since(args.since, now_s) if args.since else None
    s3 = ctx.aws.client("s3")
    topology = load_topology(
        [bucket],
        s3=s3,
        ssm=ctx.aws.client("ssm") if ctx.target.topology_parameter_name else None,
        parameter_name=ctx.target.topology_parameter_name,
    )
    if not topology.sources.get(bucket):
        raise UsageError(f"s3://{bucket} has no replication rules (GetBucketReplication): nothing to reconcile")
    destinations = sorted({r.destination_bucket for r in topology.sources[bucket] if r.enabled})
    if args.destination:
        unknown = set(args.destination) - set(destinations)
        if unknown:
            raise UsageError(f"not a destination of s3://{bucket}: {', '.join(sorted(unknown))}")
        destinations = [d for d in destinations if d in args.destination]
    inventories = dict(item.split("=", 1) for item in (args.destination_inventory or []) if "=" in item)

    if args.inventory:
        sources = inventory_versions(ctx.aws.client("s3", topology.regions.get(bucket)), args.inventory, prefix, bucket)
    else:
        sources = list_versions(s3, bucket, prefix, args.page_size, f"s3://{bucket}/{prefix}")
    replicas: dict[str, dict[tuple[str, str], Version]] = {}
    for destination in destinations:
        client = ctx.aws.client("s3", topology.regions.get(destination))
        if destination in inventories:
            replicas[destination] = inventory_versions(client, inventories[destination], prefix, destination)
        else:
            replicas[destination] = list_versions(client, destination, prefix, args.page_size, f"s3://{destination}")

    checks: list[tuple[Version, str]] = []
    for (key, _), version in sorted(sources.items(), key=lambda kv: (kv[0][0], kv[1].modified_s)):
        if args.latest_only and not version.latest:
            continue
        if since_s is not None and version.modified_s < since_s:
            continue
        if version.replication_status == "REPLICA":
            continue  # a replica written into this bucket by another rule (bidirectional set-ups)
        expected = topology.expectations(bucket, key, delete_marker=version.delete_marker)
        for expectation in expected:
            if expectation.destination_bucket in replicas:
                checks.append((version, expectation.destination_bucket))

    missing: set[tuple[str, str, str]] | None = None
    if ctx.target.table_name and checks:
        missing = missing_items(ctx, topology, bucket, list(dict.fromkeys(v for v, _ in checks)))
    retention_s = ctx.target.retention_seconds

    rows: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    unknown: list[tuple[Version, str]] = []
    for version, destination in checks:
        replica = replicas[destination].get((version.key, version.version_id))
        age_s = now_s - version.modified_s
        state, detail = compare(version, replica, size_only=args.size_only, age_s=age_s, rpo_s=ctx.target.rpo_seconds)
        if version.replication_status == "FAILED":
            detail = (detail + "; " if detail else "") + "inventory says replication FAILED"
        known = None
        if missing is not None:
            if (version.key, version.version_id, destination) not in missing:
                known = "yes"
            elif age_s > retention_s:
                known = "aged out?"
            else:
                known = "no"
                unknown.append((version, destination))
                counts["UNTRACKED"] += 1
        counts[state] += 1
        if args.all or state != "OK" or known == "no":
            rows.append(
                {
                    "state": state,
                    "destination": destination,
                    "key": version.key,
                    "version_id": version.version_id,
                    "size": version.size,
                    "age": duration(age_s),
                    "tracked": known,
                    "detail": detail or None,
                }
            )

    fed = 0
    if args.feed and unknown:
        fed = feed_monitor(ctx, topology, bucket, unknown, replicas)
    summary = {
        "source": f"s3://{bucket}/{prefix}",
        "destinations": destinations,
        "checked": len(checks),
        **{state.lower(): counts[state] for state in ("OK", "DIFFERENT", "MISSING", "IN_FLIGHT", "UNTRACKED")},
        "fed": fed if args.feed else None,
    }
    notes = [
        f"checked {len(checks)} version/destination pairs: {counts['OK']} ok, {counts['DIFFERENT']} different, "
        f"{counts['MISSING']} missing, {counts['IN_FLIGHT']} in flight, {counts['UNTRACKED']} unknown to the monitor"
    ]
    if args.feed:
        notes.append(f"fed {fed} events to the monitor's EventsQueue")
    elif unknown:
        notes.append("send the unknown versions to the monitor with --feed")
    ctx.printer.result(
        rows,
        ("state", "destination", "key", "version_id", "size", "age", "tracked", "detail"),
        empty="no differences",
        extra={"summary": summary},
        notes=notes,
    )
    return 1 if counts["MISSING"] or counts["DIFFERENT"] or counts["UNTRACKED"] else 0


def feed_monitor(ctx: Context, topology, bucket: str, unknown: list[tuple[Version, str]], replicas) -> int:
    """One source event per untracked version, and one replica event per replica already there."""
    queue_url = ctx.target.need("events_queue_url", "--events-queue")
    account = ctx.target.account_id or ctx.aws.client("sts").get_caller_identity()["Account"]
    events: list[dict] = []
    sent_sources: set[tuple[str, str]] = set()
    for version, destination in unknown:
        if (version.key, version.version_id) not in sent_sources:
            sent_sources.add((version.key, version.version_id))
            region = topology.regions.get(bucket) or ctx.aws.region
            events.append(object_event(version, bucket=bucket, region=region, account=account))
        replica = replicas[destination].get((version.key, version.version_id))
        if replica is not None:
            region = topology.regions.get(destination) or ctx.aws.region
            events.append(object_event(replica, bucket=destination, region=region, account=account))
    return send_events(ctx.aws.client("sqs"), queue_url, events)
