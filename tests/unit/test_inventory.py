"""S3 Inventory reports read from moto S3: the manifest, gzipped CSV files streamed row by row, URL-encoded
keys decoded, delete markers, and malformed rows logged and counted without ending the read."""

from __future__ import annotations

import gzip
import io
import json

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from crrmon import inventory

from .inventory_reports import put_report, row

INV = "inventories"


@pytest.fixture
def s3(fake_credentials):
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=INV)
        yield client


def test_a_manifest_names_its_bucket_schema_and_files_in_order(s3):
    key = put_report(s3, INV, "src", [[row("src", "a", "v1")], [row("src", "b", "v2")], []])
    manifest = inventory.read_manifest(s3, INV, key)
    assert manifest.source_bucket == "src" and manifest.bucket == INV
    assert manifest.schema[:3] == ("Bucket", "Key", "VersionId") and manifest.schema[-1] == "EncryptionStatus"
    assert [f.rsplit("-", 1)[1] for f in manifest.files] == ["0.csv.gz", "1.csv.gz", "2.csv.gz"]
    assert manifest.created_s == 1796605200.0 and len(manifest.sha256) == 64
    assert manifest.url == f"s3://{INV}/{key}"


def test_every_row_of_every_file_is_read_with_keys_decoded(s3):
    files = [
        [row("src", "plain/one", "v1", size=5), row("src", "with space/é ü 日本.txt", "v2", size=6)],
        [row("src", "plus+sign & percent%", "v3", status="PENDING", encryption="SSE-KMS")],
        [row("src", "gone", "v4", delete_marker=True, status="")],
    ]
    manifest = inventory.read_manifest(s3, INV, put_report(s3, INV, "src", files))
    versions = list(inventory.read_versions(s3, manifest))
    assert [v.key for v in versions] == ["plain/one", "with space/é ü 日本.txt", "plus+sign & percent%", "gone"]
    assert [v.version_id for v in versions] == ["v1", "v2", "v3", "v4"]
    first, _, kms, marker = versions
    assert first.size == 5 and first.etag == "d41d8cd98f00b204e9800998ecf8427e" and first.encryption == "AES256"
    assert first.replication_status == "COMPLETED" and first.modified_s == 1796551200.0
    assert kms.replication_status == "PENDING" and kms.encryption == "aws:kms"
    assert marker.delete_marker and marker.size is None and marker.etag is None and marker.replication_status is None


def test_a_file_is_decompressed_as_it_is_read(s3):
    manifest = inventory.read_manifest(s3, INV, put_report(s3, INV, "src", [[row("src", "k", "v")]]))
    body = s3.get_object(Bucket=INV, Key=manifest.files[0])["Body"]
    reads: list[int] = []
    real_read = body.read

    def counted(amt=None):
        reads.append(-1 if amt is None else amt)
        return real_read(amt)

    body.read = counted
    assert len(list(inventory.lines(body, compressed=True))) == 1
    assert -1 not in reads  # never the whole body at once


def test_malformed_rows_are_logged_counted_and_skipped(s3, caplog):
    good = row("src", "good", "v1")
    short = good[:4]
    bad_size = row("src", "bad-size", "v2")
    bad_size[5] = "ten"
    bad_time = row("src", "bad-time", "v3", modified="yesterday")
    manifest = inventory.read_manifest(
        s3, INV, put_report(s3, INV, "src", [[short, good, bad_size], [bad_time, row("src", "last", "v4")]])
    )
    reasons: list[str] = []
    versions = list(inventory.read_versions(s3, manifest, on_bad=reasons.append))
    assert [v.key for v in versions] == ["good", "last"]
    assert len(reasons) == 3 and "4 columns" in reasons[0]
    skipped = [r for r in caplog.records if r.getMessage() == "inventory row skipped"]
    assert [(r.file.rsplit("-", 1)[1], r.line) for r in skipped] == [("0.csv.gz", 1), ("0.csv.gz", 3), ("1.csv.gz", 1)]
    assert "4 columns" in skipped[0].error and "ten" in skipped[1].error


def test_a_line_filter_skips_rows_before_they_are_parsed(s3):
    rows = [row("src", "today", "v1"), row("src", "earlier", "v2", modified="2026-12-05T23:59:59.000Z")]
    manifest = inventory.read_manifest(s3, INV, put_report(s3, INV, "src", [rows]))
    kept = list(inventory.read_versions(s3, manifest, containing="2026-12-06T"))
    assert [v.key for v in kept] == ["today"]


def _lines(text: bytes, containing: str | None, block: int, monkeypatch) -> list[tuple[int, bytes]]:
    monkeypatch.setattr(inventory, "BLOCK_BYTES", block)
    return list(inventory.lines(io.BytesIO(text), compressed=False, containing=containing))


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.sampled_from(["a,2026-12-06T1", "b,2026-12-05T2", "", "x2026-12-06T", "\u00e9,2026-12-06T"])),
    last_newline=st.booleans(),
    block=st.sampled_from([1, 2, 3, 5, 8, 13, 21, 40, 1 << 20]),
    containing=st.sampled_from([None, "2026-12-06T"]),
)
def test_lines_are_split_and_numbered_alike_whatever_the_blocks(monkeypatch, rows, last_newline, block, containing):
    text = "\n".join(rows).encode() + (b"\n" if last_newline else b"")
    every = text.split(b"\n")
    if every[-1] == b"":  # a newline ends the last line; it does not start another
        every.pop()
    expected = [(n, line) for n, line in enumerate(every, 1) if containing is None or containing.encode() in line]
    assert _lines(text, containing, block, monkeypatch) == expected


def test_every_line_holding_the_text_is_found_however_many_a_block_holds(monkeypatch):
    text = b"".join(b"k%d,2026-12-06T\nold,2026-12-05T\n" % n for n in range(5))
    got = _lines(text, "2026-12-06T", 1 << 20, monkeypatch)
    assert got == [(2 * n + 1, b"k%d,2026-12-06T" % n) for n in range(5)]


def test_a_row_without_its_newline_at_the_end_of_a_file_is_read(monkeypatch):
    assert _lines(b"one\ntwo", None, 3, monkeypatch) == [(1, b"one"), (2, b"two")]


@pytest.mark.parametrize("block", [4, 16, 64])
def test_a_line_longer_than_any_row_is_given_up_and_the_rows_after_it_are_read(monkeypatch, block):
    monkeypatch.setattr(inventory, "MAX_LINE_BYTES", 10)
    got = _lines(b"first\n" + b"x" * 50 + b"\nafter\nmore\nlast", None, block, monkeypatch)
    assert got[0] == (1, b"first")
    # given up as it starts when it spans blocks; a line whole within one block is given whole
    assert got[1] == (2, b"x" * (50 if block == 64 else 10))
    assert got[2:] == [(3, b"after"), (4, b"more"), (5, b"last")]


def test_a_long_line_that_ends_with_a_block_is_given_up_and_reading_goes_on(monkeypatch):
    monkeypatch.setattr(inventory, "MAX_LINE_BYTES", 5)
    text = b"ab\n" + b"x" * 12 + b"\n" + b"after\n"  # the long line's newline is the 16th byte: a block's last
    got = _lines(text, None, 4, monkeypatch)
    assert [n for n, _ in got] == [1, 2, 3] and got[0] == (1, b"ab") and got[2] == (3, b"after")


def test_a_file_that_ends_inside_a_long_line_ends_the_read(monkeypatch):
    monkeypatch.setattr(inventory, "MAX_LINE_BYTES", 5)
    got = _lines(b"ab\n" + b"x" * 30, None, 4, monkeypatch)
    assert got[0] == (1, b"ab") and len(got) == 2 and got[1][0] == 2


def test_a_line_of_the_longest_a_row_may_be_is_read_whole(monkeypatch):
    monkeypatch.setattr(inventory, "MAX_LINE_BYTES", 8)
    assert _lines(b"x" * 8 + b"y\nz\n", None, 4, monkeypatch) == [(1, b"x" * 8 + b"y"), (2, b"z")]


def test_empty_lines_are_passed_over_and_the_rows_after_them_read(s3):
    data = gzip.compress(b'"src","a","v1"\n\n\n' + b'"src","b","v2"\n')
    schema = "Bucket, Key, VersionId"
    manifest = inventory.read_manifest(s3, INV, put_report(s3, INV, "src", [data], schema=schema))
    assert [v.key for v in inventory.read_versions(s3, manifest)] == ["a", "b"]


def test_row_fields_s3_may_leave_empty_or_quote(s3):
    plain = row("src", "unversioned", "")  # written before versioning was enabled
    plain[3] = "false"  # IsLatest: a noncurrent version
    quoted = row("src", "quoted", "v2", etag='"abc"', encryption="SSE-FUTURE", modified="")  # no LastModifiedDate
    manifest = inventory.read_manifest(s3, INV, put_report(s3, INV, "src", [[plain, quoted]]))
    first, second = inventory.read_versions(s3, manifest)
    assert first.version_id == "null" and first.latest is False and not first.delete_marker
    assert second.latest is True and second.etag == "abc" and second.modified_s == 0.0
    assert second.encryption == "SSE-FUTURE"  # an encryption this code does not know is kept as S3 wrote it


def test_a_report_without_the_optional_columns_reads_its_rows_as_current_versions(s3):
    data = gzip.compress(b'"src","k","v1"\n')
    manifest = inventory.read_manifest(s3, INV, put_report(s3, INV, "src", [data], schema="Bucket, Key, VersionId"))
    [version] = inventory.read_versions(s3, manifest)
    assert version.latest is True and version.delete_marker is False and version.size is None


def test_the_reason_a_row_is_skipped_is_logged_cut_to_200_characters(s3, caplog):
    long_date = row("src", "k", "v1", modified="x" * 500)
    manifest = inventory.read_manifest(s3, INV, put_report(s3, INV, "src", [[long_date]]))
    assert list(inventory.read_versions(s3, manifest)) == []
    [record] = [r for r in caplog.records if r.getMessage() == "inventory row skipped"]
    assert len(record.error) == 200 and "x" * 100 in record.error


def test_a_row_without_a_key_is_malformed(s3):
    manifest = inventory.read_manifest(s3, INV, put_report(s3, INV, "src", [[row("src", "", "v1")]]))
    reasons: list[str] = []
    assert list(inventory.read_versions(s3, manifest, on_bad=reasons.append)) == []
    assert reasons == ["no key"]


def test_a_manifest_without_files_or_source_bucket_names_none(s3):
    body = json.dumps({"fileFormat": "CSV", "fileSchema": "Bucket, Key, VersionId"}).encode()
    manifest = inventory.parse_manifest(body, bucket=INV, key="m.json")
    assert manifest.files == () and manifest.source_bucket == ""


def test_rows_that_are_not_utf8_or_far_too_long_are_counted_malformed_and_the_read_goes_on(s3, monkeypatch):
    monkeypatch.setattr(inventory, "MAX_LINE_BYTES", 4096)
    monkeypatch.setattr(inventory, "BLOCK_BYTES", 1024)  # the long row spans blocks, as a huge one would
    good = row("src", "good", "v1")
    long_key = row("src", "k" * 10_000, "v2")
    key = put_report(s3, INV, "src", [[good, long_key, row("src", "after", "v3")]])
    manifest = inventory.read_manifest(s3, INV, key)
    data = gzip.decompress(s3.get_object(Bucket=INV, Key=manifest.files[0])["Body"].read())
    broken = data.replace(b"after", b"af\xfftr")  # invalid UTF-8 in one row
    s3.put_object(Bucket=INV, Key=manifest.files[0], Body=gzip.compress(broken + b'"src","fine","v4"\n'))
    reasons: list[str] = []
    versions = list(inventory.read_versions(s3, manifest, on_bad=reasons.append))
    assert [v.key for v in versions] == ["good"]
    assert len(reasons) == 3  # the long row, the row that is not UTF-8, the row with too few columns


@pytest.mark.parametrize("file_format", ["Parquet", "ORC"])
def test_only_csv_reports_are_read(s3, file_format):
    key = put_report(s3, INV, "src", [], file_format=file_format)
    refused = rf"a '{file_format}' report; only CSV reports can be read \(Parquet and ORC need pyarrow"
    with pytest.raises(inventory.InventoryError, match=refused):
        inventory.read_manifest(s3, INV, key)


def test_a_report_without_version_ids_is_refused(s3):
    key = put_report(s3, INV, "src", [], schema="Bucket, Key, Size, LastModifiedDate")
    with pytest.raises(inventory.InventoryError, match=r"no VersionId column \(configure the inventory with all"):
        inventory.read_manifest(s3, INV, key)
    key = put_report(s3, INV, "src", [], schema="Bucket, Size", folder="2026-12-08T01-00Z")
    with pytest.raises(inventory.InventoryError, match="no Key, VersionId column"):
        inventory.read_manifest(s3, INV, key)


def test_a_manifest_that_is_not_json_is_refused():
    with pytest.raises(inventory.InventoryError, match="not JSON"):
        inventory.parse_manifest(b"{", bucket="b", key="k")


def test_uncompressed_files_are_read_too(s3):
    key = put_report(s3, INV, "src", [[row("src", "k", "v")]])
    manifest = inventory.read_manifest(s3, INV, key)
    plain_key = manifest.files[0].removesuffix(".gz")
    s3.put_object(
        Bucket=INV, Key=plain_key, Body=b'"src","a+b","v9","true","false","1","2026-12-06T00:00:00Z","e","",""\n'
    )
    assert [(v.key, v.size) for v in inventory.read_file(s3, manifest, plain_key)] == [("a b", 1)]
