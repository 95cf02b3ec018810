"""S3 Inventory reports read as streams: a manifest.json and the gzipped CSV files it lists.

S3 writes each report under `<prefix>/<source bucket>/<configuration ID>/YYYY-MM-DDTHH-MMZ/manifest.json`.
The manifest names the inventoried bucket (`sourceBucket`), the bucket holding the report
(`destinationBucket`, an ARN), the format (`fileFormat`), the columns in their order (`fileSchema`,
e.g. "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag,
ReplicationStatus, EncryptionStatus") and the data files (`files`: key, size, MD5checksum).

Only CSV reports are read: Parquet and ORC need pyarrow, far larger than the layer. In CSV reports the
object key is URL-encoded (`+` for a space); it is decoded here. Rows are yielded one at a time from the
decompressing stream, a block at a time, so memory does not grow with the bucket. A row that cannot be
read (too few columns, a size that is not a number, a bad date, bytes that are not UTF-8, a line longer
than any row can be) is logged, counted and skipped.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
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


BLOCK_BYTES = 1 << 20  # decompressed bytes looked at a time
MAX_LINE_BYTES = 64 << 10  # no row is longer: S3 keys are at most 1,024 bytes (3 times that URL-encoded)


def lines(body, *, compressed: bool, containing: str | None = None) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) of one data file, decompressed as it is read (S3 writes `.csv.gz` files),
    a block at a time. With `containing`, only the lines that hold it: each block is searched whole,
    and lines without it are never split out (most rows of a daily proof are of other days)."""
    stream = gzip.GzipFile(fileobj=body) if compressed else body
    needle = containing.encode() if containing is not None else None
    number, rest, overlong = 0, b"", False
    while True:
        data = stream.read(BLOCK_BYTES)
        if overlong:  # the rest of a line already given up on
            cut = data.find(b"\n")
            if cut == -1 and data:
                continue
            overlong = False
            data = data[cut + 1 :]
            if not data:
                continue  # the long line ended with the block (or the file ended): read on
        text = rest + data if data else rest + b"\n" * bool(rest)  # a last line without its newline
        end = text.rfind(b"\n") + 1
        whole, rest = text[:end], text[end:]
        yield from _lines_of(whole, number, needle)
        if not data:
            return
        number += whole.count(b"\n")
        if len(rest) > MAX_LINE_BYTES:  # not a row: given as it starts, for the reader to count malformed
            number += 1
            yield number, rest[:MAX_LINE_BYTES]
            rest, overlong = b"", True


def _lines_of(text: bytes, number: int, needle: bytes | None) -> Iterator[tuple[int, bytes]]:
    """The lines of `text` (whole lines, each ending in a newline) numbered after `number`."""
    if needle is None:
        for offset, line in enumerate(text.split(b"\n")[:-1], 1):
            yield number + offset, line
        return
    counted = 0  # newlines of `text` before `start`, counted so far
    position = text.find(needle)
    while position != -1:
        start = text.rfind(b"\n", 0, position) + 1
        stop = text.find(b"\n", position)
        number += text.count(b"\n", counted, start)
        counted = start
        yield number + 1, text[start:stop]
        position = text.find(needle, stop)


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()  # ISO 8601 in UTC, "Z" and all


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
    containing: str | None = None,
    on_bad: Callable[[str], None] | None = None,
) -> Iterator[Version]:
    """The versions of one data file, streamed. With `containing` (such as "this day's date"), only the
    rows whose raw line holds it are parsed: the cheap way past rows the caller does not want.
    `on_bad(reason)` hears of each malformed row."""
    body = s3.get_object(Bucket=manifest.bucket, Key=file_key)["Body"]
    for number, raw in lines(body, compressed=file_key.endswith(".gz"), containing=containing):
        if not raw.strip():
            continue
        try:
            values = next(csv.reader([raw.decode("utf-8")]))
            version = version_of_row(manifest.schema, values)
        except (ValueError, KeyError, csv.Error) as error:  # UnicodeDecodeError is a ValueError
            logger.warning("inventory row skipped", extra={"file": file_key, "line": number, "error": str(error)[:200]})
            if on_bad is not None:
                on_bad(str(error))
            continue
        yield version


def read_versions(s3, manifest: Manifest, **kwargs) -> Iterator[Version]:
    """Every version of the report, file by file in the manifest's order."""
    for file_key in manifest.files:
        yield from read_file(s3, manifest, file_key, **kwargs)
