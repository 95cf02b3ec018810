"""`retry`: S3 Batch Replication of FAILED objects.

S3 does not retry a FAILED replication by itself; S3 Batch Replication (an S3 Batch Operations job
with the S3ReplicateObject operation) does, for the versions a manifest lists. This command writes
that manifest (CSV: bucket,key,version ID; keys URL-encoded as Batch Operations requires), one per
source bucket, and with --submit creates the job for each.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote

from crrmon_cli.archive import failed_rows
from crrmon_cli.context import Context
from crrmon_cli.errors import UsageError
from crrmon_cli.values import s3_url

MANIFEST_FORMAT = "S3BatchOperations_CSV_20180820"


def manifest_csv(bucket: str, versions: list[tuple[str, str]]) -> str:
    return "".join(f"{bucket},{quote(key, safe='/')},{version_id}\n" for key, version_id in versions)


def _location(manifest: str, source: str, several: bool) -> str:
    if not several:
        return manifest
    stem, dot, extension = manifest.rpartition(".")
    return f"{stem}-{source}.{extension}" if dot and "/" not in extension else f"{manifest}-{source}"


def create_job(ctx: Context, args, *, bucket: str, key: str, etag: str, source: str, count: int) -> str:
    account = ctx.target.account_id or ctx.aws.client("sts").get_caller_identity()["Account"]
    report: dict = {"Enabled": False}
    if args.report:
        report_bucket, prefix = s3_url(args.report)
        report = {
            "Bucket": f"arn:aws:s3:::{report_bucket}",
            "Format": "Report_CSV_20180820",
            "Enabled": True,
            "ReportScope": "FailedTasksOnly",
            **({"Prefix": prefix.rstrip("/")} if prefix else {}),
        }
    answer = ctx.aws.client("s3control").create_job(
        AccountId=account,
        ConfirmationRequired=False,
        Operation={"S3ReplicateObject": {}},
        Manifest={
            "Spec": {"Format": MANIFEST_FORMAT, "Fields": ["Bucket", "Key", "VersionId"]},
            "Location": {"ObjectArn": f"arn:aws:s3:::{bucket}/{key}", "ETag": etag},
        },
        Report=report,
        Priority=args.priority,
        RoleArn=args.role_arn,
        ClientRequestToken=str(uuid.uuid4()),
        Description=f"CRR Monitor retry of {count} FAILED versions of {source}"[:256],
    )
    return answer["JobId"]


def retry(ctx: Context, args) -> int:
    if args.submit and not args.manifest.startswith("s3://"):
        raise UsageError("--submit needs the manifest in S3: --manifest s3://BUCKET/KEY.csv")
    if args.submit and not args.role_arn:
        raise UsageError("--submit needs --role-arn (a role S3 Batch Operations may assume, allowed to replicate)")
    rows, _ = failed_rows(ctx, args, limit=None, token=None)
    versions: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:  # one line per version, however many of its destinations failed
        entry = (row["key"], row["version_id"])
        if entry not in versions[row["source_bucket"]]:
            versions[row["source_bucket"]].append(entry)
    out = []
    for source in sorted(versions):
        location = _location(args.manifest, source, len(versions) > 1)
        text = manifest_csv(source, versions[source])
        job_id = None
        if location.startswith("s3://"):
            bucket, key = s3_url(location, key_required=True)
            etag = ctx.aws.client("s3").put_object(Bucket=bucket, Key=key, Body=text.encode(), ContentType="text/csv")
            if args.submit:
                job_id = create_job(
                    ctx, args, bucket=bucket, key=key, etag=etag["ETag"].strip('"'), source=source,
                    count=len(versions[source]),
                )  # fmt: skip
        else:
            Path(location).write_text(text)
        out.append({"source_bucket": source, "versions": len(versions[source]), "manifest": location, "job_id": job_id})
    notes = []
    if out and not args.submit:
        notes.append("submit with --submit --role-arn ARN (the manifest must be in S3), or in the S3 console")
    ctx.printer.result(
        out,
        ("source_bucket", "versions", "manifest", "job_id"),
        empty=f"no FAILED objects {f'since {args.since} ago' if args.since else 'in the table'}: nothing to retry",
        notes=notes,
    )
    return 0
