"""S3 Inventory reports as S3 writes them (manifest.json + gzipped CSV files), put into a moto bucket."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from urllib.parse import quote_plus

SCHEMA = (
    "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, ReplicationStatus, "
    "EncryptionStatus"
)


def row(
    bucket: str,
    key: str,
    version_id: str,
    *,
    size: int | None = 10,
    modified: str = "2026-12-06T10:00:00.000Z",
    etag: str = "d41d8cd98f00b204e9800998ecf8427e",
    status: str = "COMPLETED",
    encryption: str = "SSE-S3",
    delete_marker: bool = False,
) -> list[str]:
    """One CSV row in SCHEMA's order; the key URL-encoded as S3 writes it in CSV reports."""
    return [
        bucket,
        quote_plus(key, safe="/"),
        version_id,
        "true",
        "true" if delete_marker else "false",
        "" if size is None or delete_marker else str(size),
        modified,
        "" if delete_marker else etag,
        status,
        encryption,
    ]


def csv_gz(rows: list[list[str]]) -> bytes:
    text = io.StringIO()
    csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return gzip.compress(text.getvalue().encode())


def put_report(
    s3,
    bucket: str,
    source_bucket: str,
    files: list[list[list[str]] | bytes],
    *,
    folder: str = "2026-12-07T01-00Z",
    schema: str = SCHEMA,
    file_format: str = "CSV",
    base: str = "inv/{bucket}/all",
    created_ms: int = 1796605200000,  # 2026-12-07T01:00Z
) -> str:
    """Write the data files and their manifest under `base`/<folder>/ (`{bucket}`: the source bucket's
    name, as S3 puts it between the configured prefix and the configuration ID); the manifest's key."""
    base = base.replace("{bucket}", source_bucket)
    entries = []
    for i, content in enumerate(files):
        data = content if isinstance(content, bytes) else csv_gz(content)
        key = f"{base}/data/{folder}-{i}.csv.gz"
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        entries.append({"key": key, "size": len(data), "MD5checksum": hashlib.md5(data).hexdigest()})
    manifest = {
        "sourceBucket": source_bucket,
        "destinationBucket": f"arn:aws:s3:::{bucket}",
        "version": "2016-11-30",
        "creationTimestamp": str(created_ms),
        "fileFormat": file_format,
        "fileSchema": schema,
        "files": entries,
    }
    key = f"{base}/{folder}/manifest.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode())
    return key
