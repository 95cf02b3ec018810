"""What moto lacks, emulated in one place.

moto stores replication configurations but does not replicate, has no `x-amz-replication-status`,
and gives every object version its own random ID. S3 replication keeps the source's key, version
ID and data, marks the source version PENDING -> COMPLETED | FAILED and the replica REPLICA. This
module produces those facts inside moto's in-process S3 backend (the same process as moto server
when it runs threaded), so that the monitor reads them through the real S3 API.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import pickle
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote_plus

from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import FakeKey, s3_backends

from crrmon import events
from crrmon_local import atomic

_install_lock = threading.Lock()
_installed = False

# What real S3 answers to a HEAD and moto does not (each from the HeadObject API reference):
# - 404 for a missing version only to a caller with s3:ListBucket on the bucket; 403 to others.
# - 400 to a HEAD of an SSE-C object made without the customer key (the version exists).
# - 400 to a HEAD with a version ID S3 never issues (malformed; a well-formed unknown one is 404). A HEAD
#   answer has no body, so these two 400s look alike; a GET tells them apart by its error code:
#   InvalidArgument ("Invalid version id specified") or InvalidRequest (an SSE-C object without its key).
# - 403 to a HEAD with checksum mode of an object encrypted with a KMS key the caller may not
#   use for kms:Decrypt (S3 stores a checksum on every new object since December 2024).
# - 403 to a caller of another account than the bucket's, unless the bucket's policy lets it read.
# The grants that decide these answers are held here, set by whoever builds the world (tests, demo).
LISTABLE: dict[str, set[str]] = {}  # bucket -> accounts whose callers have s3:ListBucket on it
KMS_USERS: dict[str, set[str]] = {}  # KMS key ID -> accounts whose callers may use it for kms:Decrypt
READERS: dict[str, set[str]] = {}  # bucket -> accounts other than the owner's that may read its objects


def reset_grants() -> None:
    for grants in (LISTABLE, KMS_USERS, READERS):
        grants.clear()


def grant_list(bucket: str, account_id: str = DEFAULT_ACCOUNT_ID) -> None:
    LISTABLE.setdefault(bucket, set()).add(account_id)


def grant_kms(key_id: str, account_id: str = DEFAULT_ACCOUNT_ID) -> None:
    KMS_USERS.setdefault(key_id, set()).add(account_id)


def grant_read(bucket: str, account_id: str) -> None:
    READERS.setdefault(bucket, set()).add(account_id)


def owner_of(bucket: str) -> str | None:
    entry = s3_backends.bucket_accounts.get(bucket)
    return entry[1] if entry else None


_ISSUED_VERSION_ID = re.compile(r"null|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def issued_version_id(version_id: str | None) -> bool:
    """Whether `version_id` has the form of the version IDs this S3 issues (moto's: UUIDs; "null" for an
    object written while versioning was off). Real S3's have a form of their own, and it refuses others."""
    return version_id is None or _ISSUED_VERSION_ID.fullmatch(version_id) is not None


def _error(status: int, code: str, message: str) -> tuple[int, dict, str]:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return status, {"content-type": "application/xml"}, body


def get_refusal(bucket: str, key_name: str, version_id: str | None, *, customer_key: bool):
    """The error real S3 answers instead of moto's for this GET, or None (moto's answer stands)."""
    if not issued_version_id(version_id):
        return _error(400, "InvalidArgument", "Invalid version id specified")
    owner = owner_of(bucket)
    try:
        key = s3_backends[owner]["aws"].get_object(bucket, key_name, version_id=version_id) if owner else None
    except Exception:
        key = None
    if getattr(key, "sse_c", False) and not customer_key:
        return _error(
            400,
            "InvalidRequest",
            "The object was stored using a form of Server Side Encryption. "
            "The correct parameters must be provided to retrieve the object.",
        )
    return None


def head_refusal(caller: str, bucket: str, key, *, checksum_mode: bool, customer_key: bool) -> int | None:
    """The status real S3 answers instead of moto's for this HEAD, or None (moto's answer stands).

    `key` is the version found (None: no such version; a delete marker is left to moto's 405)."""
    owner = owner_of(bucket) or caller
    if owner != caller and caller not in READERS.get(bucket, set()):
        return 403
    if key is None:
        return None if caller in LISTABLE.get(bucket, set()) else 403
    if getattr(key, "sse_c", False) and not customer_key:
        return 400
    encrypted_with_kms = getattr(key, "encryption", None) in ("aws:kms", "aws:kms:dsse")
    if checksum_mode and encrypted_with_kms and caller not in KMS_USERS.get(key.kms_key_id or "aws/s3", set()):
        return 403
    return None


_silenced = False


def silence_moto_s3_notifications() -> None:
    """Switch off the S3 events moto sends itself (idempotent; process-wide).

    moto's events differ from AWS's (`eTag`, numeric `time`, reason "ObjectCreated", no deletion-type,
    "Object Tags Added" on every tagged put) and it sends them for writes the emulator makes, so with
    EventBridge notifications on they would reach the monitor beside the emulator's own, AWS-shaped
    ones. The s3:TestEvent sent when a notification configuration is saved still goes out, as on AWS."""
    global _silenced
    with _silence_lock:
        if _silenced:
            return
        from moto.s3 import notifications

        notifications.send_event = lambda *args, **kwargs: None
        _answer_eventbridge_configuration()
        _silenced = True


def _answer_eventbridge_configuration() -> None:
    """moto stores a bucket's EventBridgeConfiguration but leaves it out of GetBucketNotificationConfiguration's
    answer; S3 answers it (an empty element), and `crrmon doctor` reads it there."""
    from moto.s3.responses import S3Response

    plain = S3Response.get_bucket_notification

    def get_bucket_notification(self):
        answer = plain(self)
        configuration = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if configuration is None or configuration.event_bridge is None:
            return answer
        status, headers, body = answer
        text = body.decode() if isinstance(body, bytes) else body
        closing = "</NotificationConfiguration>"
        if closing in text:
            text = text.replace(closing, "<EventBridgeConfiguration></EventBridgeConfiguration>" + closing)
        else:  # an otherwise empty configuration
            text = (
                '<?xml version="1.0" encoding="UTF-8"?><NotificationConfiguration '
                'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><EventBridgeConfiguration></EventBridgeConfiguration>'
                "</NotificationConfiguration>"
            )
        return status, headers, text

    S3Response.get_bucket_notification = get_bucket_notification


_silence_lock = threading.Lock()


def install() -> None:
    """Teach moto's HEAD/GET answers the `x-amz-replication-status` header, and its HEAD and GET the
    errors real S3 gives (above) (idempotent)."""
    global _installed
    atomic.install()
    with _install_lock:
        if _installed:
            return
        from moto.s3.exceptions import HeadOnDeleteMarker
        from moto.s3.responses import S3Response

        plain = FakeKey.response_dict.fget

        def response_dict(self):
            headers = plain(self)
            status = getattr(self, "replication_status", None)
            if status:
                headers["x-amz-replication-status"] = status
            return headers

        FakeKey.response_dict = property(response_dict)
        plain_head = S3Response.head_object

        def head_object(self, bucket_name, query, key_name, headers):
            version_id = query.get("versionId", [None])[0]
            if not issued_version_id(version_id):
                return 400, {}, ""
            caller = self.get_current_account()
            owner = owner_of(bucket_name) or caller
            try:
                key = s3_backends[owner]["aws"].head_object(bucket_name, key_name, version_id=version_id)
            except HeadOnDeleteMarker:
                key = "delete-marker"
            except Exception:
                key = None
            if key != "delete-marker":
                refusal = head_refusal(
                    caller,
                    bucket_name,
                    key,
                    checksum_mode=headers.get("x-amz-checksum-mode") == "ENABLED",
                    customer_key=bool(headers.get("x-amz-server-side-encryption-customer-algorithm")),
                )
                if refusal:
                    return refusal, {}, ""
            return plain_head(self, bucket_name, query, key_name, headers)

        S3Response.head_object = head_object
        plain_get = S3Response.get_object

        def get_object(self):
            refusal = get_refusal(
                self.bucket_name,
                self.parse_key_name(),
                self.querystring.get("versionId", [None])[0],
                customer_key=bool(self.headers.get("x-amz-server-side-encryption-customer-algorithm")),
            )
            return refusal or plain_get(self)

        S3Response.get_object = get_object
        _installed = True


def _backend(account_id: str = DEFAULT_ACCOUNT_ID):
    return s3_backends[account_id]["aws"]


def object_version(bucket: str, key: str, version_id: str, *, account_id: str = DEFAULT_ACCOUNT_ID):
    found = _backend(account_id).get_object(bucket, key, version_id=version_id, return_delete_marker=True)
    if found is None:
        raise KeyError(f"no version {version_id} of {key!r} in {bucket}")
    return found


def set_replication_status(
    bucket: str, key: str, version_id: str, status: str | None, *, account_id: str = DEFAULT_ACCOUNT_ID
) -> None:
    """PENDING, COMPLETED, FAILED, REPLICA, or None (not in scope of any rule)."""
    install()
    object_version(bucket, key, version_id, account_id=account_id).replication_status = status


def set_sse_c(bucket: str, key: str, version_id: str, *, account_id: str = DEFAULT_ACCOUNT_ID) -> None:
    """The version was written with SSE-C: S3 answers a HEAD without the customer's key with 400."""
    object_version(bucket, key, version_id, account_id=account_id).sse_c = True


def replicate(
    s3,
    source_bucket: str,
    key: str,
    version_id: str,
    destination_bucket: str,
    *,
    body: bytes | None = None,
    encryption: str | None = None,
    etag: str | None = None,
    checksum_algorithm: str | None = None,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> dict:
    """Land a replica of one source version: same key, same version ID, status REPLICA.

    `body` replaces the data (a corrupted replica); `encryption` and `etag` model a replica
    re-encrypted under another key, whose ETag is not the source's; `checksum_algorithm` has S3 store
    a full-object checksum of the replica's data with that algorithm. Returns the replica's facts as
    {"size", "etag"}. The source's status is left to the caller (COMPLETED only when every
    destination has its replica).
    """
    install()
    source = object_version(source_bucket, key, version_id, account_id=account_id)
    data = source.value if body is None else body
    extra = {}
    if encryption:
        extra["ServerSideEncryption"] = encryption
    if checksum_algorithm:
        extra["ChecksumAlgorithm"] = checksum_algorithm
    s3.put_object(Bucket=destination_bucket, Key=key, Body=data, **extra)
    replica = _backend(account_id).get_object(destination_bucket, key)
    replica._version_id = version_id
    replica.replication_status = "REPLICA"
    replica.sse_c = getattr(source, "sse_c", False)  # S3 replicates SSE-C objects as they are
    if etag is not None:
        replica._etag = etag
    return {"size": replica.size, "etag": replica.etag.strip('"')}


def replicate_delete_marker(
    s3, destination_bucket: str, key: str, version_id: str, *, account_id: str = DEFAULT_ACCOUNT_ID
) -> None:
    """Land a replica of a source delete marker: a delete marker with the same version ID.

    The destination must already hold a replica of the key (S3 would have replicated it before).
    """
    s3.delete_object(Bucket=destination_bucket, Key=key)
    versions = _backend(account_id).get_bucket(destination_bucket).keys.getlist(key)
    if not versions:
        raise KeyError(f"{destination_bucket} holds no version of {key!r} to put a delete marker on")
    marker = versions[-1]
    marker._version_id = version_id


# ---- S3 events in AWS's exact shapes (moto's own S3 -> EventBridge events differ from AWS's) ----


def _iso_millis(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sequencer() -> str:
    return f"{random.getrandbits(72):018X}"


def eventbridge_object_event(
    *,
    bucket: str,
    key: str,
    version_id: str,
    time_s: float,
    region: str,
    account: str = DEFAULT_ACCOUNT_ID,
    size: int | None = None,
    etag: str | None = None,
    reason: str = "PutObject",
    deletion_type: str | None = None,
) -> str:
    """An EventBridge "Object Created" (or, with deletion_type, "Object Deleted") event from S3, as the
    message body the EventBridge rule delivers to the events queue."""
    return json.dumps(
        events.eventbridge_object_event(
            bucket=bucket,
            key=key,
            version_id=version_id,
            time_s=time_s,
            region=region,
            account=account,
            size=size,
            etag=etag,
            reason=reason,
            deletion_type=deletion_type,
            sequencer=_sequencer(),
        )
    )


def s3_notification(
    *,
    event_name: str,
    bucket: str,
    key: str,
    version_id: str,
    time_s: float,
    region: str,
    size: int | None = None,
    etag: str | None = None,
    replication: dict | None = None,
) -> dict:
    """One S3 event notification record (eventVersion 2.1, or 2.2 for replication events)."""
    obj: dict = {"key": quote_plus(key, safe="/")}
    if size is not None:
        obj["size"] = size
    if etag is not None:
        obj["eTag"] = etag
    obj["versionId"] = version_id
    obj["sequencer"] = _sequencer()
    record = {
        "eventVersion": "2.2" if replication else "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": _iso_millis(time_s),
        "eventName": event_name,
        "userIdentity": {"principalId": "s3.amazonaws.com" if replication else "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.10"},
        "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": "example"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "crr-monitor",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3EXAMPLE"}, "arn": f"arn:aws:s3:::{bucket}"},
            "object": obj,
        },
    }
    if replication:
        record["replicationEventData"] = replication
    return record


def replication_failure(
    *,
    bucket: str,
    key: str,
    version_id: str,
    destination_bucket: str,
    reason: str,
    rule_id: str,
    time_s: float,
    region: str,
    size: int | None = None,
    etag: str | None = None,
) -> dict:
    """An s3:Replication:OperationFailedReplication record."""
    return s3_notification(
        event_name="Replication:OperationFailedReplication",
        bucket=bucket,
        key=key,
        version_id=version_id,
        time_s=time_s,
        region=region,
        size=size,
        etag=etag,
        replication={
            "replicationRuleId": rule_id,
            "destinationBucket": f"arn:aws:s3:::{destination_bucket}",
            "s3Operation": "OBJECT_PUT",
            "requestTime": _iso_millis(time_s),
            "failureReason": reason,
        },
    )


def in_sns(records: list[dict], *, topic_arn: str) -> str:
    """S3 notification records as they reach the events queue through an SNS topic."""
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic_arn,
            "Subject": "Amazon S3 Notification",
            "Message": json.dumps({"Records": records}),
            "Timestamp": _iso_millis(time.time()),
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.example/cert.pem",
            "UnsubscribeURL": "https://sns.example/unsubscribe",
        }
    )


# ---- replication configurations as S3 answers them ----------------------------------------------


def stored_rules(bucket: str, *, account_id: str = DEFAULT_ACCOUNT_ID) -> list[dict]:
    """A bucket's replication rules in the shape GetBucketReplication answers (moto keeps them as parsed XML)."""
    replication = getattr(_backend(account_id).get_bucket(bucket), "replication", None) or {}
    rules = replication.get("Rule") or []
    if isinstance(rules, dict):
        rules = [rules]
    return [_api_rule(raw) for raw in rules]


def _api_rule(raw: dict) -> dict:
    rule: dict = {
        "ID": raw.get("ID") or "",
        "Priority": int(raw.get("Priority") or 0),
        "Status": raw.get("Status", "Enabled"),
        "Destination": dict(raw["Destination"]),
    }
    filt = raw.get("Filter")
    if filt is None and "Prefix" in raw:  # a V1 rule
        rule["Prefix"] = raw.get("Prefix") or ""
    else:
        filt = filt or {}
        if "And" in filt:
            and_ = filt["And"] or {}
            tags = and_.get("Tag") or []
            rule["Filter"] = {
                "And": {"Prefix": and_.get("Prefix") or "", "Tags": tags if isinstance(tags, list) else [tags]}
            }
        elif "Tag" in filt:
            rule["Filter"] = {"Tag": dict(filt["Tag"])}
        else:
            rule["Filter"] = {"Prefix": filt.get("Prefix") or ""}
        rule["DeleteMarkerReplication"] = {
            "Status": (raw.get("DeleteMarkerReplication") or {}).get("Status", "Disabled")
        }
    criteria = (raw.get("SourceSelectionCriteria") or {}).get("SseKmsEncryptedObjects")
    if criteria:
        rule["SourceSelectionCriteria"] = {"SseKmsEncryptedObjects": {"Status": criteria.get("Status", "Disabled")}}
    return rule


_faithful_lock = threading.Lock()
_faithful = False


def answer_replication_faithfully() -> None:
    """Make GetBucketReplication return the rules as they were put (idempotent).

    moto answers every rule with `Filter: {Prefix: ""}` and `DeleteMarkerReplication: Disabled`, and
    drops SourceSelectionCriteria; S3 returns what was stored, which the monitor's topology reads.
    """
    global _faithful
    with _faithful_lock:
        if _faithful:
            return
        from moto.core.responses import ActionResult
        from moto.s3.exceptions import ReplicationConfigurationNotFoundError
        from moto.s3.responses import S3Response

        def get_bucket_replication(self):
            self.data["Action"] = "GetBucketReplication"
            replication = self.backend.get_bucket_replication(self.bucket_name)
            if not replication:
                raise ReplicationConfigurationNotFoundError(bucket_name=self.bucket_name)
            configuration = {"Role": replication["Role"], "Rules": stored_rules(self.bucket_name)}
            return self.serialized(ActionResult({"ReplicationConfiguration": configuration}))

        S3Response.get_bucket_replication = get_bucket_replication
        _faithful = True


# ---- S3 replication, driven: every new version in a source bucket, per that bucket's rules -------

COMPLETED, FAILED, MISMATCH = "COMPLETED", "FAILED", "MISMATCH"
SOURCE_DELETED, NOT_IN_SCOPE, NO_VERDICT = "SOURCE_DELETED", "NOT_IN_SCOPE", "NONE"
LIFECYCLE = "Lifecycle Expiration"


@dataclass(frozen=True)
class Outage:
    """A destination bucket that accepts no replica between two instants (epoch s); S3 retries after."""

    destination: str
    start: float
    end: float


@dataclass
class Truth:
    """What the emulator did to one source version for one destination, and the verdict it calls for."""

    source: str
    destination: str
    key: str
    version_id: str
    verdict: str  # COMPLETED | FAILED | MISMATCH | SOURCE_DELETED | NOT_IN_SCOPE | NONE (nothing expected)
    fault: str  # what was done: normal, failure, outage, sse-kms, multipart, corrupt, ...
    reason: str | None = None
    created_at: float = 0.0
    landed_at: float | None = None  # when the replica (or the failure) happened
    seen: bool = False  # some event about this version and destination reached the events queue
    backlogged: bool = False  # an event about it was held in a backlog of the event path

    @property
    def ident(self) -> tuple[str, str, str]:
        return (self.version_id, self.key, self.destination)


@dataclass
class _Version:
    bucket: str
    key: str
    version_id: str
    waiting: set[str]
    failed: bool = False


def _rule_applies(rule: dict, key: str, tags: dict[str, str]) -> bool:
    if rule.get("Status") != "Enabled":
        return False
    if "Prefix" in rule:
        return key.startswith(rule["Prefix"])
    filt = rule.get("Filter", {})
    if "Tag" in filt:
        return tags.get(filt["Tag"]["Key"]) == filt["Tag"]["Value"]
    if "And" in filt:
        wanted = {t["Key"]: t["Value"] for t in filt["And"].get("Tags", [])}
        return key.startswith(filt["And"].get("Prefix", "")) and all(tags.get(k) == v for k, v in wanted.items())
    return key.startswith(filt.get("Prefix", ""))


def _has_tag_filter(rule: dict) -> bool:
    filt = rule.get("Filter", {})
    return "Tag" in filt or bool((filt.get("And") or {}).get("Tags"))


def _destination(rule: dict) -> str:
    return rule["Destination"]["Bucket"].rsplit(":", 1)[-1]


def multipart_etag(parts: list[bytes]) -> str:
    """S3's ETag of a multipart object: MD5 of the parts' MD5s, dash, part count."""
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts), usedforsecurity=False).hexdigest()
    return f"{digest}-{len(parts)}"


class EventChannel:
    """Delivers S3's events to the monitor's events queue, late, twice or never (faults on request).

    Each event names the (version ID, key, destination) items it is about; a truth entry is `seen`
    once any event about it was delivered.
    """

    def __init__(
        self,
        sqs,
        queue_url: str,
        *,
        rng: random.Random,
        lost=0.0,
        duplicates=0.0,
        reorder=0.0,
        backlog: tuple[float, float] | None = None,
    ):
        self.sqs, self.queue_url, self.rng = sqs, queue_url, rng
        self.lost, self.duplicates, self.reorder = lost, duplicates, reorder
        # (start, end) epoch s: events due for delivery in this window are held upstream (a stalled
        # forwarder, throttled targets) and delivered only at its end, in their order, their S3 times
        # unchanged.
        self.backlog = backlog
        self._heap: list[tuple[float, int, str, tuple]] = []
        self._seq = 0
        self.counts = {"emitted": 0, "delivered": 0, "lost": 0, "duplicated": 0, "reordered": 0, "backlogged": 0}
        self.on_delivered: Callable[[tuple], None] | None = None
        self.on_backlogged: Callable[[tuple], None] | None = None

    def emit(self, body: str, *, at: float, about: tuple = (), droppable: bool = True, lose: bool = False) -> None:
        """Deliver `body` (an event S3 emitted at `at`) later; `lose`: this one is never delivered."""
        self.counts["emitted"] += 1
        if lose or (droppable and self.rng.random() < self.lost):
            self.counts["lost"] += 1
            return
        when = at + self.rng.uniform(0.05, 0.3)  # EventBridge/SNS delivery: usually well under a second
        # An event that must not be lost (a two-way delete marker's own) is not overtaken either: heard
        # after its echo within the same second, the original is not told from the echo by any monitor.
        if droppable and self.rng.random() < self.reorder:
            when += self.rng.uniform(1.0, 4.0)  # overtaken by what happened after it
            self.counts["reordered"] += 1
        if self.backlog and self.backlog[0] <= when < self.backlog[1]:
            when = self.backlog[1] + (when - self.backlog[0]) * 1e-6  # held, in order, then all at once
            self.counts["backlogged"] += 1
            if self.on_backlogged:
                for ident in about:
                    self.on_backlogged(ident)
        self._push(when, body, about)
        if self.rng.random() < self.duplicates:
            self.counts["duplicated"] += 1
            self._push(when + self.rng.uniform(0.1, 3.0), body, about)

    def _push(self, when: float, body: str, about: tuple) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, body, about))

    def pending(self) -> int:
        return len(self._heap)

    def flush(self, now: float) -> int:
        due = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap))
        for start in range(0, len(due), 10):
            chunk = due[start : start + 10]
            entries = [{"Id": str(i), "MessageBody": body} for i, (_, _, body, _) in enumerate(chunk)]
            self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            for _, _, _, about in chunk:
                if self.on_delivered:
                    for ident in about:
                        self.on_delivered(ident)
        self.counts["delivered"] += len(due)
        return len(due)


class Replicator:
    """S3 replication for the buckets' stored rules, in moto's backend, with the events AWS would send.

    Writes stand for the customer's applications and for S3 itself, so they go into moto's store
    directly; the monitor sees them only through events and the S3 API. Every (version,
    destination) gets a `Truth` entry: what happened and the verdict the monitor should reach.
    """

    def __init__(
        self,
        channel: EventChannel,
        *,
        regions: dict[str, str],
        delay: Callable[[], float],
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        outages: tuple[Outage, ...] = (),
        failure_topic_arn: str = "arn:aws:sns:us-east-1:123456789012:s3-replication-failures",
        notification_share: float = 0.0,
        account_id: str = DEFAULT_ACCOUNT_ID,
    ):
        install()
        self.channel, self.regions, self.delay, self.clock = channel, regions, delay, clock
        self.rng = rng or random.Random(0)
        self.outages, self.failure_topic_arn = outages, failure_topic_arn
        self.notification_share, self.account_id = notification_share, account_id
        self.backend = _backend(account_id)
        self.truth: dict[tuple[str, str, str], Truth] = {}
        self._jobs: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self._versions: dict[tuple[str, str], _Version] = {}
        self.replicas = 0
        self._at = 0.0  # when the job being run was due
        channel.on_delivered = self._seen
        channel.on_backlogged = self._held

    # ---- the customer's side
    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        *,
        tags: dict[str, str] | None = None,
        encryption: str | None = None,
        parts: int = 0,
        fault: str = "normal",
        fail_reason: str | None = None,
        corrupt: bool = False,
        delete_source: bool = False,
        sse_c: bool = False,
        lose_replica_events: bool = False,
    ) -> str:
        """A new version in `bucket`, replicated per its rules; `fault` names what happens to it.

        `sse_c`: written with a customer-provided key (HEADs without it answer 400; replicas keep it and
        get other ETags). `lose_replica_events`: no event of its replicas reaches the monitor."""
        now = self.clock()
        etag = None
        if parts:
            size = max(1, len(body) // parts)
            etag = multipart_etag(
                [body[i * size : (i + 1) * size if i < parts - 1 else len(body)] for i in range(parts)]
            )
        obj = self.backend.put_object(bucket, key, body, etag=etag, encryption=encryption, disable_notification=True)
        if tags:
            self.backend.put_object_tagging(obj, tags)
        if sse_c:
            obj.sse_c = True
        version_id = obj.version_id
        etag = obj.etag.strip('"')
        chosen = self._rules_for(bucket, key)
        in_scope = [r for r in chosen if _rule_applies(r, key, tags or {}) and (encryption != "aws:kms" or _sse_kms(r))]
        obj.replication_status = "PENDING" if in_scope else None
        for rule in chosen:
            dest = _destination(rule)
            entry = Truth(bucket, dest, key, version_id, COMPLETED, fault, created_at=now)
            self.truth[entry.ident] = entry
            if rule not in in_scope:
                entry.verdict, entry.fault = (
                    NOT_IN_SCOPE,
                    ("sse-kms-not-in-rule" if _rule_applies(rule, key, tags or {}) else "tag-filter"),
                )
        self._emit_object_event(bucket, key, version_id, now, size=len(body), etag=etag, parts=parts, about=chosen)
        if not in_scope:
            return version_id
        if delete_source:  # the version goes away before S3 gets to it
            for rule in in_scope:
                self.truth[(version_id, key, _destination(rule))].verdict = SOURCE_DELETED
            self._schedule(now + self.rng.uniform(0.05, 0.3), lambda: self._delete_version(bucket, key, version_id))
            return version_id
        self._versions[(bucket, version_id)] = _Version(bucket, key, version_id, {_destination(r) for r in in_scope})
        failing = self.rng.choice(in_scope) if fail_reason else None
        for rule in in_scope:
            dest = _destination(rule)
            at, held = self._landing_time(dest, now)
            entry = self.truth[(version_id, key, dest)]
            if held and entry.fault == "normal":
                entry.fault = "outage"
            if rule is failing:
                entry.verdict, entry.reason = FAILED, fail_reason
                self._schedule(at, lambda b=bucket, r=rule, e=entry: self._fail(b, r, e))
            else:
                if corrupt:
                    entry.verdict = MISMATCH
                self._schedule(
                    at,
                    lambda b=bucket, e=entry, c=corrupt, p=parts: self._land(
                        b, e, c, encryption, p, lose_event=lose_replica_events
                    ),
                )
        return version_id

    def expire_by_lifecycle(self, bucket: str, key: str) -> str:
        """Lifecycle expiration puts a delete marker on `key`: S3 replicates none of those."""
        marker = self._delete_marker(bucket, key)
        now = self.clock()
        chosen = self._rules_for(bucket, key)
        for rule in chosen:
            entry = Truth(
                bucket, _destination(rule), key, marker, NO_VERDICT, "lifecycle-delete-marker", created_at=now
            )
            self.truth[entry.ident] = entry
        self._emit_deleted(bucket, key, marker, now, reason=LIFECYCLE, about=chosen)
        return marker

    def delete(self, bucket: str, key: str) -> str:
        """A user's DeleteObject: a delete marker, replicated where the rule says so.

        In two-way replication the replicated marker is S3's echo of this one in the other bucket: the
        monitor sees it as a source there, and its item for this bucket calls for NOT_IN_SCOPE."""
        marker = self._delete_marker(bucket, key)
        now = self.clock()
        chosen = self._rules_for(bucket, key)
        two_way = False
        for rule in chosen:
            dest = _destination(rule)
            replicated = (rule.get("DeleteMarkerReplication") or {}).get("Status") == "Enabled" and not _has_tag_filter(
                rule
            )
            verdict = COMPLETED if replicated else NO_VERDICT
            echo = replicated and self._replicates_to(dest, bucket)
            two_way |= echo
            entry = Truth(bucket, dest, key, marker, verdict, "two-way-delete-marker" if echo else "delete-marker")
            entry.created_at = now
            self.truth[entry.ident] = entry
            if replicated:
                at = self._landing_time(dest, now)[0]
                if echo:  # the echo lands after the original's event is delivered (at most 0.3 s after S3's time)
                    at = max(at, now + 0.35)
                self._schedule(at, lambda e=entry, w=echo: self._land_delete_marker(e, echo=w))
        # A two-way marker whose own event is lost leaves only its echo, a delete marker like any other
        # (S3 gives delete markers no replication status): no monitor can tell which came first, so the
        # original's event is delivered (late, twice, held in a backlog, but delivered).
        self._emit_deleted(bucket, key, marker, now, reason="DeleteObject", about=chosen, droppable=not two_way)
        return marker

    def write_direct(self, bucket: str, key: str, body: bytes) -> str:
        """An application's PutObject into a destination bucket: a version no replication made (no
        replication status) and that no source holds. The monitor must not count it a replica."""
        now = self.clock()
        obj = self._backend_for(bucket).put_object(bucket, key, body, disable_notification=True)
        version_id = obj.version_id
        entry = Truth("", bucket, key, version_id, NOT_IN_SCOPE, "direct-write", created_at=now)
        self.truth[entry.ident] = entry
        self._emit_object_event(
            bucket,
            key,
            version_id,
            now,
            size=len(body),
            etag=obj.etag.strip('"'),
            parts=0,
            about=None,
            destination=bucket,
        )
        return version_id

    def expire_in_destination(self, bucket: str, key: str) -> str:
        """The destination's own lifecycle rule puts a delete marker on `key`: no replica, nothing to judge."""
        marker = self._delete_marker(bucket, key)
        now = self.clock()
        entry = Truth("", bucket, key, marker, NO_VERDICT, "lifecycle-in-destination", created_at=now)
        self.truth[entry.ident] = entry
        self._emit_deleted(bucket, key, marker, now, reason=LIFECYCLE, about=None, destination=bucket)
        return marker

    # ---- time passes
    def run_due(self, now: float | None = None) -> int:
        now = self.clock() if now is None else now
        done = 0
        while self._jobs and self._jobs[0][0] <= now:
            self._at, _, job = heapq.heappop(self._jobs)
            job()  # stamped with the time it was due, however late this loop came round
            done += 1
        return done

    def pending(self) -> int:
        return len(self._jobs)

    # ---- inside S3
    def _backend_for(self, bucket: str):
        """moto's S3 store of the account that owns `bucket` (a destination may be another account's)."""
        return _backend(owner_of(bucket) or self.account_id)

    def _replicates_to(self, bucket: str, destination: str) -> bool:
        """`bucket` has an enabled rule into `destination` (with the rule back, a two-way pair)."""
        if owner_of(bucket) not in (None, self.account_id):
            return False
        return any(
            r.get("Status") == "Enabled" and _destination(r) == destination
            for r in stored_rules(bucket, account_id=self.account_id)
        )

    def _rules_for(self, bucket: str, key: str) -> list[dict]:
        """Per destination, the enabled rule of highest priority whose prefix matches (tags decided later)."""
        best: dict[str, dict] = {}
        for rule in stored_rules(bucket, account_id=self.account_id):
            if rule.get("Status") != "Enabled":
                continue
            prefix = rule.get("Prefix", (rule.get("Filter") or {}).get("Prefix", ""))
            prefix = prefix or ((rule.get("Filter") or {}).get("And") or {}).get("Prefix", "")
            if not key.startswith(prefix or ""):
                continue
            dest = _destination(rule)
            if dest not in best or rule["Priority"] > best[dest]["Priority"]:
                best[dest] = rule
        return [best[d] for d in sorted(best)]

    def _landing_time(self, dest: str, now: float) -> tuple[float, bool]:
        """When a replica lands: now + a delay, or after the outage of its destination (and whether it was held)."""
        at = now + max(0.0, self.delay())
        for outage in self.outages:
            if outage.destination == dest and outage.start <= at < outage.end:
                return outage.end + max(0.0, self.delay()), True
        return at, False

    def _schedule(self, at: float, job: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._jobs, (at, self._seq, job))

    def _land(
        self, bucket: str, entry: Truth, corrupt: bool, encryption: str | None, parts: int, *, lose_event: bool = False
    ) -> None:
        source = object_version(bucket, entry.key, entry.version_id, account_id=self.account_id)
        data = source.value
        if corrupt:
            data = data[: max(0, len(data) // 2)] + b"!"  # a replica of another size: a mismatch anywhere
        etag = None
        sse_c = getattr(source, "sse_c", False)
        if encryption == "aws:kms" or sse_c:
            etag = uuid.uuid4().hex  # encrypted anew (destination's KMS key; SSE-C): not the source's ETag
        elif parts and not corrupt:
            etag = source.etag.strip('"')
        replica = self._backend_for(entry.destination).put_object(
            entry.destination, entry.key, data, etag=etag, encryption=encryption, disable_notification=True
        )
        replica._version_id = entry.version_id
        replica.replication_status = "REPLICA"
        replica.sse_c = sse_c  # S3 replicates SSE-C objects as they are
        entry.landed_at = self._at
        self.replicas += 1
        self._finished(bucket, entry, failed=False)
        self._emit_object_event(
            entry.destination,
            entry.key,
            entry.version_id,
            entry.landed_at,
            size=len(data),
            etag=replica.etag.strip('"'),
            parts=parts,
            about=None,
            destination=entry.destination,
            lose=lose_event,
        )

    def _fail(self, bucket: str, rule: dict, entry: Truth) -> None:
        entry.landed_at = now = self._at
        self._finished(bucket, entry, failed=True)
        record = replication_failure(
            bucket=bucket,
            key=entry.key,
            version_id=entry.version_id,
            destination_bucket=entry.destination,
            reason=entry.reason or "DstPutObjectNotPermitted",
            rule_id=rule["ID"],
            time_s=now,
            region=self.regions[bucket],
        )
        self.channel.emit(in_sns([record], topic_arn=self.failure_topic_arn), at=now, about=(entry.ident,))

    def _finished(self, bucket: str, entry: Truth, *, failed: bool) -> None:
        version = self._versions.get((bucket, entry.version_id))
        if version is None:
            return
        version.waiting.discard(entry.destination)
        version.failed |= failed
        if not version.waiting:  # COMPLETED only when every destination succeeded
            status = FAILED if version.failed else COMPLETED
            set_replication_status(bucket, entry.key, entry.version_id, status, account_id=self.account_id)
            del self._versions[(bucket, entry.version_id)]

    def _delete_version(self, bucket: str, key: str, version_id: str) -> None:
        self._backend_for(bucket).delete_object(bucket, key, version_id=version_id)

    def _delete_marker(self, bucket: str, key: str) -> str:
        _, meta = self._backend_for(bucket).delete_object(bucket, key)
        return meta["version-id"]

    def _land_delete_marker(self, entry: Truth, *, echo: bool = False) -> None:
        backend = self._backend_for(entry.destination)
        backend.delete_object(entry.destination, entry.key)
        marker = backend.get_bucket(entry.destination).keys.getlist(entry.key)[-1]
        marker._version_id = entry.version_id
        entry.landed_at = self._at
        self.replicas += 1
        about = entry.destination
        if echo:  # the other bucket of a two-way pair: the monitor sees a new source version there
            mirror = Truth(entry.destination, entry.source, entry.key, entry.version_id, NOT_IN_SCOPE, "two-way-echo")
            mirror.created_at = mirror.landed_at = self._at
            self.truth[mirror.ident] = mirror
            about = entry.source
        self._emit_deleted(
            entry.destination,
            entry.key,
            entry.version_id,
            entry.landed_at,
            reason="DeleteObject",
            about=None,
            destination=about,
        )

    # ---- events, in AWS's shapes
    def _about(self, key: str, version_id: str, rules: list[dict] | None, destination: str | None) -> tuple:
        if destination is not None:
            return ((version_id, key, destination),)
        return tuple((version_id, key, _destination(r)) for r in rules or ())

    def _emit_object_event(
        self, bucket, key, version_id, at, *, size, etag, parts, about, destination=None, lose=False
    ) -> None:
        reason = "CompleteMultipartUpload" if parts else "PutObject"
        idents = self._about(key, version_id, about, destination)
        if self.rng.random() < self.notification_share:
            record = s3_notification(
                event_name=f"ObjectCreated:{'CompleteMultipartUpload' if parts else 'Put'}",
                bucket=bucket,
                key=key,
                version_id=version_id,
                time_s=at,
                region=self.regions[bucket],
                size=size,
                etag=etag,
            )
            # the bucket's notification topic is its owner's (a forwarder is deployed per account)
            owner = owner_of(bucket) or self.account_id
            body = in_sns([record], topic_arn=f"arn:aws:sns:{self.regions[bucket]}:{owner}:s3-events")
        else:
            body = eventbridge_object_event(
                bucket=bucket,
                key=key,
                version_id=version_id,
                time_s=at,
                region=self.regions[bucket],
                account=owner_of(bucket) or self.account_id,
                size=size,
                etag=etag,
                reason=reason,
            )
        self.channel.emit(body, at=at, about=idents, lose=lose)

    def _emit_deleted(self, bucket, key, marker, at, *, reason, about, destination=None, droppable=True) -> None:
        body = eventbridge_object_event(
            bucket=bucket,
            key=key,
            version_id=marker,
            time_s=at,
            region=self.regions[bucket],
            account=owner_of(bucket) or self.account_id,
            reason=reason,
            deletion_type="Delete Marker Created",
        )
        self.channel.emit(body, at=at, about=self._about(key, marker, about, destination), droppable=droppable)

    def _seen(self, ident: tuple) -> None:
        entry = self.truth.get(ident)
        if entry is not None:
            entry.seen = True

    def _held(self, ident: tuple) -> None:
        entry = self.truth.get(ident)
        if entry is not None:
            entry.backlogged = True


def _sse_kms(rule: dict) -> bool:
    criteria = (rule.get("SourceSelectionCriteria") or {}).get("SseKmsEncryptedObjects") or {}
    return criteria.get("Status") == "Enabled"


# ---- DynamoDB TTL, on request ------------------------------------------------------------------


def expire_ttl(
    dynamodb, table_name: str, *, now_s: float, removed: set[tuple[str, str]], attribute="expires_at"
) -> int:
    """Delete every item whose TTL attribute is at or before `now_s`, as DynamoDB's TTL would.

    The deleted keys go into `removed` (a StreamMapping's `ttl_removed`) so their stream records
    carry the TTL service's userIdentity. Returns how many items were deleted.
    """
    deleted = 0
    kwargs = {
        "TableName": table_name,
        "FilterExpression": "#t <= :now",
        "ExpressionAttributeNames": {"#t": attribute},
        "ExpressionAttributeValues": {":now": {"N": str(int(now_s))}},
        "ProjectionExpression": "pk, dest",
    }
    while True:
        page = dynamodb.scan(**kwargs)
        for item in page.get("Items", []):
            key = {"pk": item["pk"], "dest": item["dest"]}
            removed.add((item["pk"]["S"], item["dest"]["S"]))
            dynamodb.delete_item(TableName=table_name, Key=key)
            deleted += 1
        if "LastEvaluatedKey" not in page:
            return deleted
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# ---- moto server at the speed of a demo ---------------------------------------------------------

_speed_lock = threading.Lock()
_sped_up = False


def speed_up_moto() -> None:
    """Three hot spots of moto 5.2 made cheap, answers unchanged (idempotent).

    - Each request to moto server lists moto's package directory to find the service (150 `isdir`
      calls per request): the listing is cached.
    - ReceiveMessage checks each candidate message's retention by computing every queue attribute,
      including counts that scan the whole queue, so a receive costs O(queue length²): the check reads
      the retention period alone. DeleteMessage scans the queue twice, building a list per message:
      it stops at the message.
    - Every visibility/delay check builds datetimes to learn the time: `time.time()` answers it.
    - A table Query on the key sorts every item of the table to pick one partition: it reads that
      partition only. And moto server speaks HTTP/1.1, so connections are kept between requests.
    - Item operations (UpdateItem, GetItem, Query...) and stream GetRecords answer with data already
      in DynamoDB's wire shape, which moto's generic response serializer walks member by member: it
      is dumped as JSON.
    - UpdateItem parses its update expression on every call and deep-copies the tree for each of its
      validators (`copy.deepcopy`, ~2 ms a copy): each expression is parsed once, and the trees are
      copied through pickle (~0.2 ms), which gives the same fresh tree.
    """
    global _sped_up
    with _speed_lock:
        if _sped_up:
            return
        import functools

        import moto.backends
        import moto.sqs.models as sqs_models

        moto.backends.list_of_moto_modules = functools.cache(lambda: tuple(_moto_modules()))

        def is_message_valid_based_on_retention_period(self, queue_name, message) -> bool:
            retention = int(self.get_queue(queue_name).message_retention_period)
            return retention + message.sent_timestamp / 1000 > time.time()

        sqs_models.SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period

        def delete_message(self, receipt_handle: str) -> None:
            if receipt_handle in self.deleted_messages:  # already deleted: fine, as in SQS
                return
            found = next(
                (
                    (i, m)
                    for i, m in enumerate(self._messages)
                    if m.receipt_handle == receipt_handle or receipt_handle in m._old_receipt_handles
                ),
                None,
            )
            if found is None:
                raise sqs_models.ReceiptHandleIsInvalid()
            index, message = found
            self.pending_messages.discard(message)
            self.deleted_messages.update(message.all_receipt_handles)
            self._messages = self._messages[:index] + self._messages[index + 1 :]

        sqs_models.Queue.delete_message = delete_message
        _query_by_hash_key_only()
        _item_results_as_plain_json()
        _update_expressions_parsed_once()
        # HTTP/1.1: clients keep their connections instead of opening one per request.
        from moto.moto_server.werkzeug_app import MotoRequestHandler

        MotoRequestHandler.protocol_version = "HTTP/1.1"
        plain_millis = sqs_models.unix_time_millis

        def unix_time_millis(dt=None) -> float:
            return time.time() * 1000.0 if dt is None else plain_millis(dt)

        if sqs_models.unix_time_millis is plain_millis and getattr(plain_millis, "__module__", "") == "moto.core.utils":
            sqs_models.unix_time_millis = unix_time_millis
        _sped_up = True


def _fresh_copy(tree):
    return pickle.loads(pickle.dumps(tree, pickle.HIGHEST_PROTOCOL))


def _update_expressions_parsed_once() -> None:
    import moto.dynamodb.parsing.validators as validators
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    plain_make = UpdateExpressionParser.make.__func__
    parsed: dict[str, bytes] = {}
    lock = threading.Lock()

    def make(cls, expression_str):
        with lock:
            frozen = parsed.get(expression_str)
        if frozen is None:
            frozen = pickle.dumps(plain_make(cls, expression_str), pickle.HIGHEST_PROTOCOL)
            with lock:
                if len(parsed) < 10_000:
                    parsed[expression_str] = frozen
        return pickle.loads(frozen)

    UpdateExpressionParser.make = classmethod(make)
    validators.deepcopy = _fresh_copy


_partition = threading.local()  # the hash key a Query of this thread is restricted to


def _query_by_hash_key_only() -> None:
    from moto.dynamodb.models.table import Table

    plain_query, plain_all_items = Table.query, Table.all_items

    def all_items(self):
        wanted = getattr(_partition, "key", None)
        if wanted is not None and getattr(_partition, "table", None) is self and self.range_key_attr:
            return sorted(self.items.get(wanted, {}).values(), key=lambda item: item.range_key)
        return plain_all_items(self)

    def query(self, hash_key, *args, **kwargs):
        if kwargs.get("index_name") or (len(args) > 6 and args[6]):
            return plain_query(self, hash_key, *args, **kwargs)
        _partition.key, _partition.table = hash_key, self
        try:
            return plain_query(self, hash_key, *args, **kwargs)
        finally:
            _partition.key = _partition.table = None

    Table.all_items, Table.query = all_items, query


_PLAIN_JSON_OPERATIONS = frozenset({"UpdateItem", "GetItem", "PutItem", "DeleteItem", "Query", "Scan"})


def _item_results_as_plain_json() -> None:
    from moto.dynamodb.responses import DynamoResult

    generic = DynamoResult.execute_result

    def execute_result(self, context):
        if context.operation_model.name in _PLAIN_JSON_OPERATIONS and isinstance(self.result, dict):
            try:
                body = json.dumps(self.result, separators=(",", ":"))
            except (TypeError, ValueError):
                return generic(self, context)
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
        return generic(self, context)

    DynamoResult.execute_result = execute_result

    from moto.core.responses import ActionResult
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    class PlainJson(ActionResult):
        def execute_result(self, context):
            try:
                body = json.dumps(self.result, separators=(",", ":"), default=_epoch_seconds)
            except (TypeError, ValueError):
                return super().execute_result(context)
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, body

    def get_records(self):
        limit = self._get_param("Limit") or 1000
        return PlainJson(self.backend.get_records(self._get_param("ShardIterator"), limit))

    DynamoDBStreamsHandler.get_records = get_records


def _epoch_seconds(value):
    """A naive UTC datetime (moto's stream record times) as the epoch number the JSON protocol sends."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _moto_modules():
    import os

    import moto

    path = os.path.dirname(moto.__file__)
    for name in sorted(os.listdir(path)):
        if os.path.isdir(os.path.join(path, name)) and not name.startswith("__"):
            yield name
