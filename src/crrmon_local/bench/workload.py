"""What the handlers are fed in the benchmark: SQS batches of S3 events, stream records, timers."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from crrmon.store import is_internal, make_pk
from crrmon_local import emulator
from crrmon_local.bench.canned import ACCOUNT, ENVIRONMENT, REGION

SOURCE, DESTINATION = "bench-src", "bench-dst"
_serializer = TypeSerializer()
_sequence = itertools.count(10**20)


def version_id() -> str:
    return uuid.uuid4().hex


def sqs_record(body: str) -> dict[str, Any]:
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "r",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:bench-EventsQueue",
        "awsRegion": REGION,
    }


def source_events(n: int) -> dict[str, Any]:
    """An SQS event of `n` EventBridge "Object Created" events for new versions in the source bucket."""
    now = time.time()
    bodies = [
        emulator.eventbridge_object_event(
            bucket=SOURCE,
            key=f"data/2026/11/27/part-{i:05d}.parquet",
            version_id=version_id(),
            time_s=now,
            region=REGION,
            account=ACCOUNT,
            size=180_000 + i,
            etag=uuid.uuid4().hex,
        )
        for i in range(n)
    ]
    return {"Records": [sqs_record(b) for b in bodies]}


def _image(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items() if v is not None}


def _stream_record(name: str, old: dict | None, new: dict) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ApproximateCreationDateTime": int(time.time()),
        "Keys": {"pk": {"S": new["pk"]}, "dest": {"S": new["dest"]}},
        "NewImage": _image(new),
        "SequenceNumber": str(next(_sequence)),
        "SizeBytes": 400,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if old is not None:
        data["OldImage"] = _image(old)
    return {
        "eventID": uuid.uuid4().hex,
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": data,
        "eventSourceARN": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{ENVIRONMENT['TABLE_NAME']}/stream/x",
    }


def object_items(i: int) -> tuple[dict, dict]:
    """One object version's item as the stream shows it: source seen, then the replica seen with its
    verdict (an on-time replica with the same size and ETag writes both in one UpdateItem)."""
    now_ms = int(time.time() * 1000)
    etag = uuid.uuid4().hex
    source = {
        "pk": make_pk(version_id(), f"data/2026/11/27/part-{i:05d}.parquet"),
        "dest": DESTINATION,
        "first_seen": now_ms,
        "due": now_ms // 1000 + 904,
        "expires_at": now_ms // 1000 + 90000,
        "src": SOURCE,
        "sreg": REGION,
        "dreg": "us-west-2",
        "rid": "to-west",
        "s_etag": etag,
        "s_size": 180_000 + i,
        "s_time": now_ms - 300,
    }
    final = {
        **source,
        "r_etag": etag,
        "r_size": 180_000 + i,
        "r_time": now_ms + 4_200,
        "status": "COMPLETED",
        "verified_by": "etag",
        "latency_ms": 4_500,
        "missed_rpo": False,
        "decided_at": now_ms + 5_000,
    }
    return source, final


def stream_records(n_records: int) -> dict[str, Any]:
    """`n_records` stream records, two per object (INSERT with the source, MODIFY with the replica and its verdict)."""
    records: list[dict[str, Any]] = []
    i = 0
    while len(records) < n_records:
        source, final = object_items(i)
        records.extend([_stream_record("INSERT", None, source), _stream_record("MODIFY", source, final)])
        i += 1
    return {"Records": records[:n_records]}


def timer_records(n: int) -> dict[str, Any]:
    """`n` due timers, each naming its destination as ingest's timers do (the sweeper reads their items
    in one BatchGetItem per 100 keys)."""
    now = int(time.time())
    bodies = [
        json.dumps({"pk": make_pk(version_id(), f"k/{i}"), "due": now - 1, "attempt": 0, "d": [DESTINATION]})
        for i in range(n)
    ]
    return {"Records": [sqs_record(b) for b in bodies]}


def final_items_answer(request) -> tuple[int, dict[str, str], bytes]:
    """A BatchGetItem answer holding, for every key asked, an item that already has its verdict (the
    happy path at the deadline)."""
    asked = json.loads(request.body)["RequestItems"]
    _, final = object_items(0)
    responses = {table: [{**_image(final), **key} for key in spec["Keys"]] for table, spec in asked.items()}
    body = json.dumps({"Responses": responses, "UnprocessedKeys": {}}, default=int)
    return 200, {"Content-Type": "application/x-amz-json-1.0"}, body.encode()


def final_item_answer(_request) -> tuple[int, dict[str, str], bytes]:
    """A Query answer holding one item that already has its verdict (the happy path at the deadline)."""
    _, final = object_items(0)
    body = json.dumps({"Items": [_image(final)], "Count": 1, "ScannedCount": 1}, default=int)
    return 200, {"Content-Type": "application/x-amz-json-1.0"}, body.encode()


# ---------------------------------------------------------------- the scheduled reconciliation

LIST_PAGE_SIZE = 1000  # ListObjectVersions' maximum; the pages below are cut at it
_OWNER = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a"
_VERSION_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._"


def _iso(time_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time_s)) + f".{int(time_s * 1000) % 1000:03d}Z"


class Listing:
    """A versioned source bucket as ListObjectVersions shows it, and the table's answers about it.

    `n` versions of distinct keys (sorted as S3 lists them), written evenly between `age_hours` ago (by
    default 23 h to 40 min: inside the default 24 h record retention and past the 30 min settle time, so every
    one is judged), one destination. Every `untracked_every`-th version (0: none) has no item in the
    table; every other version's item exists. The S3 answers are real ListVersionsResult XML (url-encoded
    keys, as botocore asks for), built once here so the timed runs spend their CPU in botocore and the
    handler, not in building answers.
    """

    def __init__(
        self,
        n: int,
        *,
        untracked_every: int = 0,
        age_hours: tuple[float, float] = (23.0, 40 / 60),
        destination: str = DESTINATION,
        seed: int = 7,
    ):
        import random
        from urllib.parse import quote
        from xml.sax.saxutils import escape

        rng = random.Random(seed)
        oldest, newest = time.time() - age_hours[0] * 3600, time.time() - age_hours[1] * 3600
        rows = []
        for i in range(n):
            hour = i * 24 // max(1, n)
            key = f"data/2026/11/27/{hour:02d}/part-{i:07d}-{rng.getrandbits(32):08x}.snappy.parquet"
            vid = "".join(rng.choices(_VERSION_ID_ALPHABET, k=32))
            modified = oldest + (newest - oldest) * i / max(1, n)
            rows.append((key, vid, 100_000 + rng.randrange(10_000_000), f"{rng.getrandbits(128):032x}", modified))
        rows.sort()
        self.destination = destination
        self.versions = len(rows)
        self.untracked = (
            {make_pk(vid, key) for j, (key, vid, *_) in enumerate(rows) if (j + 1) % untracked_every == 0}
            if untracked_every
            else set()
        )
        self.pages: dict[tuple[str, str], bytes] = {}
        marker = ("", "")
        for start in range(0, max(1, len(rows)), LIST_PAGE_SIZE):
            page = rows[start : start + LIST_PAGE_SIZE]
            truncated = start + LIST_PAGE_SIZE < len(rows)
            last = page[-1] if page else ("", "")
            head = [
                '<?xml version="1.0" encoding="UTF-8"?>\n',
                '<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
                f"<Name>{SOURCE}</Name><Prefix></Prefix>",
                f"<KeyMarker>{quote(marker[0], safe='/')}</KeyMarker><VersionIdMarker>{marker[1]}</VersionIdMarker>",
            ]
            if truncated:
                head.append(
                    f"<NextKeyMarker>{quote(last[0], safe='/')}</NextKeyMarker>"
                    f"<NextVersionIdMarker>{last[1]}</NextVersionIdMarker>"
                )
            head.append(
                f"<MaxKeys>{LIST_PAGE_SIZE}</MaxKeys><EncodingType>url</EncodingType>"
                f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
            )
            body = [
                f"<Version><Key>{escape(quote(key, safe='/'))}</Key><VersionId>{vid}</VersionId>"
                f"<IsLatest>true</IsLatest><LastModified>{_iso(modified)}</LastModified>"
                f"<ETag>&quot;{etag}&quot;</ETag><ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm>"
                f"<ChecksumType>FULL_OBJECT</ChecksumType><Size>{size}</Size>"
                f"<Owner><ID>{_OWNER}</ID></Owner><StorageClass>STANDARD</StorageClass></Version>"
                for key, vid, size, etag, modified in page
            ]
            self.pages[marker] = "".join([*head, *body, "</ListVersionsResult>"]).encode()
            marker = (last[0], last[1])
        self.reset()

    def reset(self) -> None:
        """Forget what was asked (per pass)."""
        self.list_bytes = 0
        self.existing_requests = 0  # BatchGetItem requests about object versions
        self.keys_asked = 0  # keys in BatchGetItem requests about object versions (Store.existing)
        self.keys_found = 0
        self.read_units = 0.0  # of those requests: 0.5 per key eventually consistent, 1 strongly (items < 4 KB)
        self.bookkeeping_keys = 0  # `__reconcile__` items read at the start of a run
        self.bookkeeping_read_units = 0.0

    def list_object_versions(self, request) -> tuple[int, dict[str, str], bytes]:
        from urllib.parse import parse_qs, urlsplit

        query = parse_qs(urlsplit(request.url).query, keep_blank_values=True)
        if query.get("max-keys") != [str(LIST_PAGE_SIZE)]:
            raise ValueError(f"the canned listing is cut in pages of {LIST_PAGE_SIZE}, asked {query.get('max-keys')}")
        marker = (query.get("key-marker", [""])[0], query.get("version-id-marker", [""])[0])
        body = self.pages[marker]
        self.list_bytes += len(body)
        return 200, {"Content-Type": "application/xml"}, body

    def batch_get_item(self, request) -> tuple[int, dict[str, str], bytes]:
        """Every key asked exists, but the untracked versions' and the bookkeeping items (a fresh pass)."""
        responses = {}
        about_versions = False
        for table, spec in json.loads(request.body)["RequestItems"].items():
            unit = 1.0 if spec.get("ConsistentRead") else 0.5  # every item asked is billed, found or not
            found = []
            for key in spec["Keys"]:
                pk = key["pk"]["S"]
                if is_internal(pk):  # bookkeeping items: no "#", unlike any version's pk
                    self.bookkeeping_keys += 1
                    self.bookkeeping_read_units += unit
                    continue
                about_versions = True
                self.keys_asked += 1
                self.read_units += unit
                if pk not in self.untracked and key["dest"]["S"] == self.destination:
                    found.append(key)
            self.keys_found += len(found)
            responses[table] = found
        self.existing_requests += about_versions
        body = json.dumps({"Responses": responses, "UnprocessedKeys": {}}).encode()
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
