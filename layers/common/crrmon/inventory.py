"""S3 Inventory reports read as streams: a manifest.json and the gzipped CSV files it lists.

S3 writes each report under `<prefix>/<source bucket>/<configuration ID>/YYYY-MM-DDTHH-MMZ/manifest.json`.
The manifest names the inventoried bucket (`sourceBucket`), the bucket holding the report
(`destinationBucket`, an ARN), the format (`fileFormat`), the columns in their order (`fileSchema`,
e.g. "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag,
ReplicationStatus, EncryptionStatus") and the data files (`files`: key, size, MD5checksum).

Only CSV reports are read: Parquet and ORC need pyarrow, far larger than the layer. In CSV reports the
object key is URL-encoded (`+` for a space); it is decoded here. Rows are yielded one at a time from the
decompressing stream, so memory does not grow with the bucket. A row that cannot be read (too few
columns, a size that is not a number, a bad date) is logged, counted and skipped.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger

from crrmon.reconcile import Version
from crrmon.topology import bucket_name

logger = Logger(child=True)

REQUIRED_FIELDS = ("Key", "VersionId")
# Inventory's EncryptionStatus in the words a HEAD uses (crrmon.evidence), so crrmon.verify can judge ETags.
ENCRYPTIONS = {
    "NOT-SSE": "none",
    "SSE-S3": "AES256",
    "SSE-KMS": "aws:kms",
    "DSSE-KMS": "aws:kms:dsse",
    "SSE-C": "SSE-C",
}


class InventoryError(Exception):
    """A report the monitor cannot read (its format, or a manifest without the fields it needs)."""


@dataclass(frozen=True)
class Manifest:
    bucket: str  # where the report is
    key: str  # of manifest.json
    source_bucket: str  # the inventoried bucket
    schema: tuple[str, ...]
    files: tuple[str, ...]  # keys of the data files, in the manifest's order
    created_s: float | None  # creationTimestamp: when S3 began the report
    sha256: str  # of the manifest's bytes: names exactly which report a claim was made from

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_manifest(data: bytes, *, bucket: str, key: str) -> Manifest:
    try:
        raw = json.loads(data)
    except ValueError as error:
        raise InventoryError(f"s3://{bucket}/{key}: not JSON ({error})") from None
    file_format = str(raw.get("fileFormat", "")).upper()
    if file_format != "CSV":
        raise InventoryError(
            f"s3://{bucket}/{key}: a {raw.get('fileFormat')!r} report; only CSV reports can be read "
            "(Parquet and ORC need pyarrow, which the layer leaves out)"
        )
    schema = tuple(name.strip() for name in str(raw.get("fileSchema", "")).split(",") if name.strip())
    absent = [name for name in REQUIRED_FIELDS if name not in schema]
    if absent:
        raise InventoryError(
            f"s3://{bucket}/{key}: the report has no {', '.join(absent)} column "
            "(configure the inventory with all versions)"
        )
    created = raw.get("creationTimestamp")
    return Manifest(
        bucket=bucket,
        key=key,
        source_bucket=bucket_name(str(raw.get("sourceBucket", ""))),
        schema=schema,
        files=tuple(entry["key"] for entry in raw.get("files", [])),
        created_s=int(created) / 1000 if created else None,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def read_manifest(s3, bucket: str, key: str) -> Manifest:
    return parse_manifest(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), bucket=bucket, key=key)


def lines(body, *, compressed: bool) -> Iterator[str]:
    """The text lines of one data file, decompressed as they are read (S3 writes `.csv.gz` files)."""
    if compressed:
        yield from io.TextIOWrapper(gzip.GzipFile(fileobj=body), encoding="utf-8", newline="")
    else:
        for line in body.iter_lines(keepends=True):
            yield line.decode("utf-8")


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def version_of_row(schema: tuple[str, ...], values: list[str]) -> Version:
    """One CSV row as a Version; ValueError when the row is malformed."""
    if len(values) != len(schema):
        raise ValueError(f"{len(values)} columns, the schema has {len(schema)}")
    row = dict(zip(schema, values, strict=True))
    if not row["Key"]:
        raise ValueError("no key")
    status = row.get("EncryptionStatus")
    return Version(
        key=unquote_plus(row["Key"]),
        version_id=row["VersionId"] or "null",
        size=int(row["Size"]) if row.get("Size") else None,
        etag=(row.get("ETag") or "").strip('"') or None,
        modified_s=parse_time(row["LastModifiedDate"]) if row.get("LastModifiedDate") else 0.0,
        latest=(row.get("IsLatest") or "true").lower() == "true",
        delete_marker=(row.get("IsDeleteMarker") or "false").lower() == "true",
        replication_status=row.get("ReplicationStatus") or None,
        encryption=ENCRYPTIONS.get(status, status) if status else None,
    )


def read_file(
    s3,
    manifest: Manifest,
    file_key: str,
    *,
    keep: Callable[[str], bool] | None = None,
    on_bad: Callable[[str], None] | None = None,
) -> Iterator[Version]:
    """The versions of one data file, streamed. `keep(raw_line)`, when given, is asked first about each
    raw line, before it is parsed: a cheap filter (such as "holds this day's date") that skips the cost
    of parsing rows the caller does not want. `on_bad(reason)` hears of each malformed row."""
    body = s3.get_object(Bucket=manifest.bucket, Key=file_key)["Body"]
    for number, line in enumerate(lines(body, compressed=file_key.endswith(".gz")), 1):
        if not line.strip() or (keep is not None and not keep(line)):
            continue
        try:
            values = next(csv.reader([line]))
            version = version_of_row(manifest.schema, values)
        except (ValueError, KeyError, csv.Error) as error:
            logger.warning("inventory row skipped", extra={"file": file_key, "line": number, "error": str(error)[:200]})
            if on_bad is not None:
                on_bad(str(error))
            continue
        yield version


def read_versions(s3, manifest: Manifest, **kwargs) -> Iterator[Version]:
    """Every version of the report, file by file in the manifest's order."""
    for file_key in manifest.files:
        yield from read_file(s3, manifest, file_key, **kwargs)
