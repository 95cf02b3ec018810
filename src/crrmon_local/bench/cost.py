"""Billing arithmetic and the price table: what AWS charges for the requests the monitor makes.

Pure functions over numbers, so that the unit tests can check the rules that decide the bill:
DynamoDB item sizes and write/read units (1 KB / 4 KB), Firehose's 5 KB record rounding, SQS and
SNS 64 KB request chunks, and the break-even object size against S3 Replication Time Control.
Prices live in bench/prices.json, each with its source and the date it was recorded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
PRICES = ROOT / "bench" / "prices.json"
KB = 1024
GIB = 1024**3
WRITE_UNIT_BYTES = KB
READ_UNIT_BYTES = 4 * KB
FIREHOSE_ROUNDING_BYTES = 5 * KB
REQUEST_CHUNK_BYTES = 64 * KB  # SQS, SNS and EventBridge bill each 64 KB of payload as one request


# ---------------------------------------------------------------- price table


@dataclass(frozen=True)
class Price:
    key: str
    usd: float  # for `per` units
    per: float
    unit: str
    source: str
    url: str
    recorded: str  # ISO date the price was read from its page

    @property
    def each(self) -> float:
        """Dollars for one unit."""
        return self.usd / self.per


@dataclass(frozen=True)
class PriceTable:
    region: str
    prices: dict[str, Price]

    def __getitem__(self, key: str) -> Price:
        return self.prices[key]

    @property
    def recorded(self) -> str:
        """The dates the prices were recorded, oldest to newest ("2026-11-27 to 2026-12-07")."""
        dates = sorted({p.recorded for p in self.prices.values()})
        return dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"


def load_prices(path: Path = PRICES) -> PriceTable:
    raw = json.loads(path.read_text())
    prices = {key: Price(key=key, **value) for key, value in raw["prices"].items()}
    return PriceTable(region=raw["region"], prices=prices)


# ---------------------------------------------------------------- DynamoDB


def _number_size(text: str) -> int:
    """About 1 byte per two significant digits, plus 1 (DynamoDB's item size rules)."""
    digits = Decimal(text).normalize().as_tuple().digits
    significant = len(digits) if any(digits) else 1
    return math.ceil(significant / 2) + 1


def attribute_value_size(value: Mapping[str, Any]) -> int:
    """Size of one attribute value in DynamoDB JSON ({"S": ...}, {"N": ...}, ...), without its name."""
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return _number_size(v)
    if kind == "B":
        return len(v if isinstance(v, bytes | bytearray) else str(v).encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in v)
    if kind == "NS":
        return sum(_number_size(n) for n in v)
    if kind == "BS":
        return sum(len(b) for b in v)
    if kind == "L":
        return 3 + sum(1 + attribute_value_size(e) for e in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_value_size(e) for k, e in v.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]] | None) -> int:
    """Bytes DynamoDB bills an item as: attribute names (UTF-8) plus their values."""
    if not item:
        return 0
    return sum(len(name.encode()) + attribute_value_size(value) for name, value in item.items())


def write_units(before_bytes: int, after_bytes: int) -> int:
    """Write request units of one write: the larger of the item before and after, per 1 KB, at least 1."""
    return max(1, math.ceil(max(before_bytes, after_bytes) / WRITE_UNIT_BYTES))


def read_units(total_bytes: int, *, consistent: bool) -> float:
    """Read request units of one GetItem/Query: the bytes read per 4 KB (half when eventually consistent)."""
    units = max(1, math.ceil(total_bytes / READ_UNIT_BYTES))
    return units if consistent else units / 2


def projection(
    item: Mapping[str, Mapping[str, Any]] | None,
    keys: Iterable[str],
    index_keys: Iterable[str],
    included: Iterable[str],
) -> dict[str, Mapping[str, Any]] | None:
    """The item as a sparse GSI stores it, or None when the item lacks the index's key attributes."""
    index_keys = tuple(index_keys)
    if not item or any(k not in item for k in index_keys):
        return None
    names = (*keys, *index_keys, *included)
    return {n: item[n] for n in names if n in item}


def index_write_units(before: Mapping | None, after: Mapping | None, index_keys: Iterable[str]) -> int:
    """Write units a GSI charges for one table write, from the item's projection before and after.

    Entering or leaving the index costs one index write; staying with a changed projection costs one
    (two when the index key changes: a delete and a put); no change costs nothing.
    """
    if before is None and after is None:
        return 0
    if before is None:
        return write_units(0, item_size(after))
    if after is None:
        return write_units(item_size(before), 0)
    if before == after:
        return 0
    if any(before.get(k) != after.get(k) for k in index_keys):
        return write_units(item_size(before), 0) + write_units(0, item_size(after))
    return write_units(item_size(before), item_size(after))


# ---------------------------------------------------------------- Firehose, SQS, SNS


def firehose_billed_bytes(record_sizes: Iterable[int]) -> int:
    """Firehose bills every record rounded up to the next 5 KB."""
    return sum(max(1, math.ceil(size / FIREHOSE_ROUNDING_BYTES)) * FIREHOSE_ROUNDING_BYTES for size in record_sizes)


def chunked_requests(payload_bytes: int) -> int:
    """SQS/SNS/EventBridge requests billed for one API call: one per 64 KB chunk of payload, at least one."""
    return max(1, math.ceil(payload_bytes / REQUEST_CHUNK_BYTES))


# ---------------------------------------------------------------- lines of a bill


@dataclass(frozen=True)
class Line:
    """`quantity` units of `price` per monitored object."""

    service: str
    item: str
    quantity: float
    price: str  # key in the price table

    def usd_per_million(self, table: PriceTable) -> float:
        return self.quantity * table[self.price].each * 1_000_000


def total_per_million(lines: Iterable[Line], table: PriceTable) -> float:
    return sum(line.usd_per_million(table) for line in lines)


def by_service(lines: Iterable[Line], table: PriceTable) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in lines:
        out[line.service] = out.get(line.service, 0.0) + line.usd_per_million(table)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def lambda_lines(
    name: str, *, invocations: float, ms: float, memory_mb: int, arch: str = "arm64", requests: bool = True
) -> list[Line]:
    """Lambda requests and GB-seconds (billed per 1 ms) for `invocations` of `ms` each, per object."""
    gb_s = invocations * math.ceil(ms) / 1000 * memory_mb / 1024
    lines = [Line("Lambda", f"{name} duration ({memory_mb} MB {arch})", gb_s, f"lambda_gb_second_{arch}")]
    if requests:
        lines.insert(0, Line("Lambda", f"{name} invocations", invocations, "lambda_request"))
    return lines


# ---------------------------------------------------------------- the scheduled reconciliation


def reconcile_lines(
    *,
    listings: float,
    read_units: float,
    progress_writes: float,
    sqs_requests: float,
    lambda_seconds: float,
    memory_mb: int,
    arch: str = "arm64",
) -> list[Line]:
    """One reconciliation pass, per version listed (every argument is per version).

    ListObjectVersions is billed at the LIST price (S3's PUT/COPY/POST/LIST tier); BatchGetItem by read
    units, not requests; each progress UpdateItem writes a bookkeeping item under 1 KB (one write unit);
    the untracked versions' events go out in SendMessageBatch requests. Lambda: GB-seconds for
    `lambda_seconds` of duration. A run covers many thousand versions, so its invocation, its lease
    writes and its per-millisecond rounding are left out.
    """
    return [
        Line("S3", "ListObjectVersions (LIST requests)", listings, "s3_put_request"),
        Line("DynamoDB", "BatchGetItem read units (keys only, eventual)", read_units, "dynamodb_read_unit"),
        Line("DynamoDB", "progress UpdateItem, one per page", progress_writes, "dynamodb_write_unit"),
        Line("SQS", "SendMessageBatch of untracked versions' events", sqs_requests, "sqs_request"),
        Line(
            "Lambda",
            f"reconcile duration ({memory_mb} MB {arch})",
            lambda_seconds * memory_mb / 1024,
            f"lambda_gb_second_{arch}",
        ),
    ]


# ---------------------------------------------------------------- proof from S3 Inventory reports

# aws-samples/sample-RVT-S3, README "Charges": "approximately $0.06 per month per million objects in scope",
# from a daily comparison of two buckets' S3 Inventory reports with Athena. Its cost table lists Athena,
# report PUTs and storage, and cross-region transfer; it shows no S3 Inventory listing charge.
RVT_S3_USD_PER_MILLION_MONTH = 0.06
INVENTORY_FILES_PER_MILLION = 1.0  # S3 writes large report files: about one GET per million rows read (upper)


def inventory_proof_lines(*, destinations: int, scan_seconds: float, memory_mb: int, arch: str = "arm64") -> list[Line]:
    """One daily proof (crrmon.proof), per source object: the S3 Inventory reports of the source and of
    each destination (one row listed per object in each), the GETs of their files, and the Lambda
    duration of reading them (`scan_seconds` per row read, at `memory_mb`)."""
    reports = 1 + destinations
    return [
        Line("S3", "S3 Inventory, objects listed (source and destination reports)", reports, "s3_inventory_object"),
        Line("S3", "GET of the reports' files", reports * INVENTORY_FILES_PER_MILLION / 1_000_000, "s3_get_request"),
        Line(
            "Lambda",
            f"proof duration ({memory_mb} MB {arch})",
            reports * scan_seconds * memory_mb / 1024,
            f"lambda_gb_second_{arch}",
        ),
    ]


def listing_proof_lines(*, destinations: int, page_size: int = 1000) -> list[Line]:
    """The same comparison from listings (`crrmon reconcile`): ListObjectVersions of the source and of each
    destination, `page_size` versions a LIST request. Lambda or CLI time left out."""
    return [
        Line("S3", "ListObjectVersions of source and destinations", (1 + destinations) / page_size, "s3_put_request")
    ]


def proof_comparison(
    prices: PriceTable,
    *,
    reconcile_usd_per_million: float,
    scan_seconds: float,
    memory_mb: int,
    arch: str = "arm64",
    destinations: int = 1,
    passes_per_month: int = 30,
) -> list[tuple[str, float, float]]:
    """(way, $ per million objects per pass, $ per million objects per month at `passes_per_month`) for: the
    daily proof from S3 Inventory, the same from listings, the scheduled reconciliation's pass (measured,
    passed in) and RVT-S3's published monthly figure (per pass: a thirtieth)."""
    inventory = total_per_million(
        inventory_proof_lines(destinations=destinations, scan_seconds=scan_seconds, memory_mb=memory_mb, arch=arch),
        prices,
    )
    listing = total_per_million(listing_proof_lines(destinations=destinations), prices)
    rows = [
        ("daily proof from S3 Inventory reports (crrmon.proof)", inventory),
        ("the same comparison from listings (crrmon reconcile, LIST requests only)", listing),
        ("scheduled reconciliation, one pass (measured above: listing + table reads)", reconcile_usd_per_million),
    ]
    out = [(name, usd, usd * passes_per_month) for name, usd in rows]
    out.append(
        (
            "RVT-S3, published (Athena over S3 Inventory)",
            RVT_S3_USD_PER_MILLION_MONTH / 30,
            RVT_S3_USD_PER_MILLION_MONTH,
        )
    )
    return out


# ---------------------------------------------------------------- delivery of other regions' events

# How S3 events of watched buckets outside the monitor's region reach its events queue. Either way the
# queue bills one SendMessage per event; only the forwarding charge differs. Buckets in the monitor's
# region send to the default bus: free if S3's events count as AWS service events there, which AWS's
# pricing page leaves open (prices.json `eventbridge_s3_event_default_bus`); the bench costs both.
SNS_NOTIFICATIONS = "sns"  # S3 Event Notifications to the forwarder's SNS topic (recommended)
EVENTBRIDGE_FORWARDING = "eventbridge"  # the forwarder's EventBridge rule to the monitor's bus
DELIVERIES = {
    SNS_NOTIFICATIONS: "S3 Event Notifications to the forwarder's SNS topic",
    EVENTBRIDGE_FORWARDING: "EventBridge cross-region forwarding",
}


def forwarding_lines(cross_region_events: float, delivery: str) -> list[Line]:
    """The forwarding charge for `cross_region_events` events per object from buckets in other regions.

    SNS: one publish per S3 notification ($0.50 per million); SNS's delivery to an SQS queue is free.
    EventBridge: one cross-region event per S3 event ($1 per million).
    """
    if delivery == SNS_NOTIFICATIONS:
        return [
            Line(
                "SNS",
                "other regions' S3 notifications published to the forwarder topic",
                cross_region_events,
                "sns_publish",
            )
        ]
    if delivery == EVENTBRIDGE_FORWARDING:
        return [
            Line(
                "EventBridge",
                "other regions' S3 events forwarded cross-region",
                cross_region_events,
                "eventbridge_event",
            )
        ]
    raise ValueError(f"unknown delivery {delivery!r}")


# ---------------------------------------------------------------- the alternatives


CRR_MONITOR_REPO = "aws-solutions/aws-crr-monitor"


@dataclass(frozen=True)
class CrrMonitorAssumptions:
    """A model of the archived AWS CRR Monitor solution (aws-solutions/aws-crr-monitor), not a
    measurement: what its code does per object, with the file each assumption comes from.

    - Events: its agent's EventBridge rule matches CloudTrail's PutObject (and CopyObject,
      CompleteMultipartUpload) calls and publishes them to an SNS topic that the monitor's queue
      subscribes to (source/CRRdeployagent/CRRdeployagent.py `agent_creator`); the source's PutObject
      and each replica's are events (source/CRRMonitor/CRRMonitor.py `message_handler`: a source
      sets start_datetime, a REPLICA end_datetime).
    - CloudTrail: one trail logs data events with `ReadWriteType: All` for the source buckets and
      their replica buckets (source/CRRMonitorTrailAlarm/CRRMonitorTrailAlarm.py
      `put_event_selectors`), so the monitor's own HeadObject on each event is a data event too.
    - Per event (`message_handler`): HeadObject, DescribeTable (control plane, free), a strongly
      consistent GetItem, an UpdateItem of the object's single item (the table's key is
      ETag:versionId, one item per object whatever its destinations).
    - Statistics: `log_statistics` runs once per object, when the second of its source and replica
      events is handled (`'crr_rate' not in ddbitem`): one UpdateItem per object, not per replica.
    - Queue: the `CRRMonitor` function runs every minute (deployment/crr-monitor.template
      `MonitorTimer`, rate(1 minute)): GetQueueAttributes, then ReceiveMessage (10 at most, short
      polling) and DeleteMessageBatch until a receive comes back empty (`queue_handler`).
    - Lambda: no MemorySize in the template (128 MB, Lambda's default), python3.7 on x86. Its own
      comment puts "the average time required to process a single SQS record" at 160 ms
      (CRRMonitor.py, `maxtask`): the high estimate. The low estimate: its calls per event at this
      suite's 10 ms round trip, plus their CPU (this bench's measured CPU per DynamoDB call) at
      128 MB's CPU share.
    - Scans: every hour `CRRHourlyMaint` scans the whole table (source/CRRHourlyMaint/CRRHourlyMaint.py,
      a FilterExpression, which filters after reading). Completed items get `itemttl` = end time
      minus 24 h, already past (CRRMonitor.py), so TTL deletes them when it gets to them: DynamoDB
      documents deletion of expired items "within a few days". Low: scanned once; high: 48 scans.
    """

    item_bytes: int = 350
    scans_per_item: float = 1
    lambda_ms_per_event: float = 160.0
    lambda_memory_mb: int = 128
    head_is_a_data_event: bool = True
    default_bus_billed: bool = False


def crr_monitor_estimates(low_ms_per_event: float) -> dict[str, CrrMonitorAssumptions]:
    """The low and high estimates (`low_ms_per_event` from this run's measurements)."""
    return {
        "low": CrrMonitorAssumptions(scans_per_item=1, lambda_ms_per_event=low_ms_per_event),
        "high": CrrMonitorAssumptions(scans_per_item=48, lambda_ms_per_event=160.0),
    }


CRR_MONITOR_CALLS_PER_EVENT = 4  # HeadObject, DescribeTable, GetItem, UpdateItem (+ statistics once per object)


def crr_monitor_lines(
    destinations: int, rate_per_s: float = 100.0, a: CrrMonitorAssumptions = CrrMonitorAssumptions()
) -> list[Line]:
    """Its bill per object at `rate_per_s` objects a second (the per-minute run spread over them)."""
    events = 1 + destinations
    per_minute = 1 / (60 * rate_per_s)  # one scheduled run a minute, per object
    scan_units = a.scans_per_item * a.item_bytes / (2 * READ_UNIT_BYTES)  # Scan: eventually consistent, 8 KB a unit
    receives = events / 10 + per_minute  # full receives of 10, and each run's last, empty one
    lines = [
        Line(
            "CloudTrail",
            "data events: each PutObject" + (" and the monitor's HeadObject" if a.head_is_a_data_event else ""),
            events * (2 if a.head_is_a_data_event else 1),
            "cloudtrail_data_event",
        ),
        Line(
            "EventBridge",
            "CloudTrail's events on the default bus" + (" (billed as custom events)" if a.default_bus_billed else ""),
            events,
            "eventbridge_event" if a.default_bus_billed else "eventbridge_s3_event_default_bus",
        ),
        Line("SNS", "publish per event (agent rule -> monitor topic)", events, "sns_publish"),
        Line("SQS", "SNS delivery per event", events, "sqs_request"),
        Line("SQS", "ReceiveMessage (10 a call) + DeleteMessageBatch", receives + events / 10, "sqs_request"),
        Line("SQS", "GetQueueAttributes, once a minute", per_minute, "sqs_request"),
        Line("S3", "HeadObject per event", events, "s3_get_request"),
        Line("DynamoDB", "GetItem, strongly consistent, per event", events, "dynamodb_read_unit"),
        Line("DynamoDB", "UpdateItem per event (one item per object)", events, "dynamodb_write_unit"),
        Line("DynamoDB", "statistics UpdateItem, once per object", 1, "dynamodb_write_unit"),
        Line("DynamoDB", f"hourly Scan, {a.scans_per_item:g} per item", scan_units, "dynamodb_read_unit"),
        Line("Lambda", "CRRMonitor invocations, once a minute", per_minute, "lambda_request"),
        Line(
            "Lambda",
            f"CRRMonitor duration ({a.lambda_memory_mb} MB x86, {a.lambda_ms_per_event:.0f} ms per event)",
            events * a.lambda_ms_per_event / 1000 * a.lambda_memory_mb / 1024,
            "lambda_gb_second_x86",
        ),
    ]
    return lines


def rtc_per_million(average_object_bytes: float, destinations: int, table: PriceTable) -> float:
    """S3 Replication Time Control, per million objects: $/GB replicated to each destination."""
    return 1_000_000 * destinations * average_object_bytes / GIB * table["s3_rtc_gb"].each


def break_even_object_bytes(monitor_usd_per_million: float, destinations: int, table: PriceTable) -> float:
    """Average object size at which RTC costs what the monitor costs; above it the monitor is cheaper."""
    return monitor_usd_per_million / 1_000_000 / (destinations * table["s3_rtc_gb"].each) * GIB
