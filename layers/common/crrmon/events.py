"""Turn one SQS message body into model values.

Accepted bodies (see docs and the samples in `events/`):

- EventBridge S3 "Object Created" / "Object Deleted" (key not url-encoded, `time` in whole seconds);
  moto's variant (`eTag`, numeric `time`, no deletion-type) is accepted too.
- S3 event notifications `{"Records": [...]}` v2.x (key url-encoded, `+` for space), direct or inside
  an SNS envelope, including the replication events `Replication:Operation*`.
- `s3:TestEvent`, direct or inside SNS: ignored.
- EventBridge "AWS API Call via CloudTrail" for PutObject, CopyObject, CompleteMultipartUpload and
  DeleteObject.

`parse_body` never raises. Every problem becomes a `Rejected` whose `reason` is one of `REJECT_REASONS`
(short, stable, used as a metric dimension) and whose `detail` names the field, never the object's data.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from crrmon.model import (
    Ignored,
    ObjectChange,
    ObjectEvent,
    Parsed,
    Rejected,
    ReplicationEvent,
    ReplicationOutcome,
    SubscriptionRequest,
)

DEFAULT_MAX_BYTES = 262144  # the SQS message size limit

# Rejected.reason codes.
OVERSIZED = "oversized"  # body larger than max_bytes (not parsed)
MALFORMED_JSON = "malformed-json"  # body (or an SNS Message) is not JSON
UNKNOWN_SHAPE = "unknown-shape"  # valid JSON, but none of the accepted forms
UNKNOWN_EVENT_NAME = "unknown-event-name"  # an S3 event of a type this parser does not know
UNSUPPORTED_VERSION = "unsupported-version"  # S3 notification eventVersion other than 2.x
EMPTY_RECORDS = "empty-records"  # "Records": []
MISSING_FIELD = "missing-field"  # a required field is absent or null
BAD_TYPE = "bad-type"  # a field has the wrong JSON type
BAD_VALUE = "bad-value"  # right type, impossible value (negative size, bad version ID, invalid text...)
BAD_TIME = "bad-time"  # a time that cannot be read, or outside 1970..2200
EMPTY_KEY = "empty-key"
KEY_TOO_LONG = "key-too-long"  # over 1,024 UTF-8 bytes
BAD_KEY_ENCODING = "bad-key-encoding"  # bad %-escape, or not valid UTF-8 once decoded
INTERNAL_ERROR = "internal-error"  # a bug in this module; the message is rejected, the batch goes on

REJECT_REASONS = (
    OVERSIZED,
    MALFORMED_JSON,
    UNKNOWN_SHAPE,
    UNKNOWN_EVENT_NAME,
    UNSUPPORTED_VERSION,
    EMPTY_RECORDS,
    MISSING_FIELD,
    BAD_TYPE,
    BAD_VALUE,
    BAD_TIME,
    EMPTY_KEY,
    KEY_TOO_LONG,
    BAD_KEY_ENCODING,
    INTERNAL_ERROR,
)

MAX_KEY_BYTES = 1024
MAX_SIZE = 2**63 - 1
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_DIGITS = re.compile(r"[0-9]{1,19}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")
_ETAG = re.compile(r"[0-9A-Za-z]{1,64}(-[0-9]{1,5})?")
_FAILURE_REASON = re.compile(r"[A-Za-z0-9 ._:/()-]{1,128}")  # S3's reasons are identifiers: DstBucketNotFound...
_RULE_ID = re.compile(r"[^\x00-\x1f\x7f]{1,255}")  # S3 allows up to 255 characters in a rule ID

# EventBridge detail-types from aws.s3 that need no work, and the Ignored reason for each.
_IGNORED_DETAIL_TYPES = {
    "Object Restore Initiated": "object-restore-initiated",
    "Object Restore Completed": "object-restore-completed",
    "Object Restore Expired": "object-restore-expired",
    "Object Tags Added": "object-tags-added",
    "Object Tags Deleted": "object-tags-deleted",
    "Object ACL Updated": "object-acl-updated",
    "Object Storage Class Changed": "object-storage-class-changed",
    "Object Access Tier Changed": "object-access-tier-changed",
}

# S3 notification eventName categories that need no work.
_IGNORED_CATEGORIES = {
    "ObjectRestore": "object-restore",
    "ObjectTagging": "object-tagging",
    "ObjectAcl": "object-acl",
    "LifecycleTransition": "lifecycle-transition",
    "IntelligentTiering": "intelligent-tiering",
    "ReducedRedundancyLostObject": "reduced-redundancy-lost-object",
}

# ObjectCreated:<action> -> the reason EventBridge gives for the same request.
_CREATED_REASONS = {
    "Put": "PutObject",
    "Post": "POST Object",
    "Copy": "CopyObject",
    "CompleteMultipartUpload": "CompleteMultipartUpload",
}

_REMOVED_CHANGES = {
    "DeleteMarkerCreated": ObjectChange.DELETE_MARKER,
    "Delete": ObjectChange.VERSION_DELETED,
}

_DELETION_TYPES = {
    "Delete Marker Created": ObjectChange.DELETE_MARKER,
    "Permanently Deleted": ObjectChange.VERSION_DELETED,
}

_OUTCOMES = {outcome.value: outcome for outcome in ReplicationOutcome}

_CLOUDTRAIL_CREATES = ("PutObject", "CopyObject", "CompleteMultipartUpload")
_SSE_HEADER = "x-amz-server-side-encryption"
_SNS_TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")


class _Reject(Exception):
    """Raised by the field readers below; turned into one Rejected by `_guard`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------------------------------------------
# Entry point and dispatcher


def parse_body(body: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Parsed]:
    """One SQS message body -> one or more model values (one per S3 record). Never raises."""
    try:
        return _parse_body(body, max_bytes)
    except Exception:  # a bug here must cost one message, never the whole batch
        return [Rejected(INTERNAL_ERROR, "unexpected error while parsing")]


def _parse_body(body: Any, max_bytes: int) -> list[Parsed]:
    if isinstance(body, bytes | bytearray):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return [Rejected(MALFORMED_JSON, "body is not UTF-8")]
    if not isinstance(body, str):
        return [Rejected(BAD_TYPE, "body is not text")]
    if len(body) > max_bytes or len(body.encode("utf-8", "surrogatepass")) > max_bytes:
        return [Rejected(OVERSIZED, f"body larger than {max_bytes} bytes")]
    try:
        document = json.loads(body)
    except RecursionError:
        return [Rejected(MALFORMED_JSON, "JSON nested too deeply")]
    except ValueError:
        return [Rejected(MALFORMED_JSON, "body is not JSON")]
    return _parse_document(document, inside_sns=False)


def _parse_document(document: Any, *, inside_sns: bool) -> list[Parsed]:
    if not isinstance(document, dict):
        return [Rejected(UNKNOWN_SHAPE, f"JSON {type(document).__name__}, not an object")]
    if "Records" in document:
        return _s3_notification(document)
    if document.get("Event") == "s3:TestEvent":
        return [Ignored("s3-test-event")]
    if "detail-type" in document and "source" in document:
        return _eventbridge(document)
    if not inside_sns and document.get("Type") in _SNS_TYPES:
        return _sns(document)
    return [Rejected(UNKNOWN_SHAPE, "not an accepted event form")]


def _guard(parse: Callable[..., Parsed], *args: Any) -> Parsed:
    """Run one single-event parser; its `_Reject` becomes a Rejected, any other error internal-error."""
    try:
        return parse(*args)
    except _Reject as problem:
        return Rejected(problem.reason, problem.detail)
    except Exception:
        return Rejected(INTERNAL_ERROR, "unexpected error while parsing a record")


# ---------------------------------------------------------------------------------------------------
# SNS envelope


def _sns(envelope: dict[str, Any]) -> list[Parsed]:
    if envelope["Type"] == "SubscriptionConfirmation":
        return [_guard(_subscription_request, envelope)]
    if envelope["Type"] == "UnsubscribeConfirmation":
        return [Ignored("sns-unsubscribe-confirmation")]
    message = envelope.get("Message")
    if message is None:
        return [Rejected(MISSING_FIELD, "Message")]
    if not isinstance(message, str):
        return [Rejected(BAD_TYPE, "Message: not a string")]
    try:
        inner = json.loads(message)
    except RecursionError:
        return [Rejected(MALFORMED_JSON, "SNS Message nested too deeply")]
    except ValueError:
        return [Rejected(MALFORMED_JSON, "SNS Message is not JSON")]
    if not isinstance(inner, dict) or not ("Records" in inner or inner.get("Event") == "s3:TestEvent"):
        # Topics carry S3 event notifications only: an EventBridge or CloudTrail shape in an SNS message
        # is someone's forgery (S3 never sends those through SNS).
        return [Rejected(UNKNOWN_SHAPE, "an SNS message carries S3 event notification records only")]
    try:
        topic_arn = _topic_arn(envelope.get("TopicArn"))
    except _Reject as problem:
        return [Rejected(problem.reason, problem.detail)]
    return [
        replace(parsed, topic_arn=topic_arn) if isinstance(parsed, ObjectEvent | ReplicationEvent) else parsed
        for parsed in _parse_document(inner, inside_sns=True)
    ]


def _topic_arn(value: Any) -> str:
    topic_arn = _text(value, "TopicArn")
    if not _TOPIC_ARN.fullmatch(topic_arn):
        raise _Reject(BAD_VALUE, "TopicArn: not an SNS topic ARN")
    return topic_arn


def topic_account(topic_arn: str) -> str:
    return topic_arn.split(":")[4]


_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]{1,32}:[0-9]{12}:[A-Za-z0-9_.-]{1,256}")
_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{1,2048}")


def _subscription_request(envelope: dict[str, Any]) -> SubscriptionRequest:
    topic_arn = _topic_arn(envelope.get("TopicArn"))
    token = _text(envelope.get("Token"), "Token")
    if not _TOKEN.fullmatch(token):
        raise _Reject(BAD_VALUE, "Token: not a subscription token")
    return SubscriptionRequest(topic_arn=topic_arn, token=token)


# ---------------------------------------------------------------------------------------------------
# S3 event notifications (Records), including replication events


def _s3_notification(document: dict[str, Any]) -> list[Parsed]:
    records = document["Records"]
    if not isinstance(records, list):
        return [Rejected(BAD_TYPE, "Records: not a list")]
    if not records:
        return [Rejected(EMPTY_RECORDS, "Records is empty")]
    return [_guard(_s3_record, record) for record in records]


def _s3_record(record: Any) -> Parsed:
    if not isinstance(record, dict):
        raise _Reject(BAD_TYPE, "Records[]: not an object")
    if record.get("eventSource") != "aws:s3":
        raise _Reject(UNKNOWN_SHAPE, "Records[].eventSource is not aws:s3")
    version = record.get("eventVersion")
    if version is not None and not (isinstance(version, str) and version.startswith("2.")):
        raise _Reject(UNSUPPORTED_VERSION, "eventVersion is not 2.x")
    name = _text(record.get("eventName"), "eventName").removeprefix("s3:")
    category, _, action = name.partition(":")

    if category == "ObjectCreated":
        return _s3_object_event(record, ObjectChange.CREATED, _CREATED_REASONS.get(action, action or None))
    if category in ("ObjectRemoved", "LifecycleExpiration") and action in _REMOVED_CHANGES:
        reason = "Lifecycle Expiration" if category == "LifecycleExpiration" else "DeleteObject"
        return _s3_object_event(record, _REMOVED_CHANGES[action], reason)
    if category == "Replication" and action in _OUTCOMES:
        return _replication_record(record, _OUTCOMES[action])
    if category in _IGNORED_CATEGORIES:
        return Ignored(_IGNORED_CATEGORIES[category])
    raise _Reject(UNKNOWN_EVENT_NAME, "eventName not known")


def _s3_object_event(record: dict[str, Any], change: ObjectChange, reason: str | None) -> ObjectEvent:
    _object(record, "s3.object")  # absent -> missing-field naming s3.object, not s3.object.key
    return ObjectEvent(
        bucket=_bucket(_get(record, "s3.bucket.name", required=True), "s3.bucket.name"),
        key=_encoded_key(_get(record, "s3.object.key", required=True), "s3.object.key"),
        version_id=_version_id(_get(record, "s3.object.versionId"), "s3.object.versionId"),
        change=change,
        event_time=_time(_get(record, "eventTime", required=True), "eventTime"),
        size=_size(_get(record, "s3.object.size"), "s3.object.size"),
        etag=_etag(_get(record, "s3.object.eTag"), "s3.object.eTag"),
        sequencer=_optional_text(_get(record, "s3.object.sequencer"), "s3.object.sequencer"),
        reason=reason,
        region=_region(record.get("awsRegion"), "awsRegion"),
        origin="s3-notification",
    )


def _replication_record(record: dict[str, Any], outcome: ReplicationOutcome) -> ReplicationEvent:
    _object(record, "s3.object")
    data = _object(record, "replicationEventData")
    return ReplicationEvent(
        bucket=_bucket(_get(record, "s3.bucket.name", required=True), "s3.bucket.name"),
        key=_encoded_key(_get(record, "s3.object.key", required=True), "s3.object.key"),
        version_id=_version_id(_get(record, "s3.object.versionId"), "s3.object.versionId"),
        outcome=outcome,
        event_time=_time(_get(record, "eventTime", required=True), "eventTime"),
        destination_bucket=_destination_bucket(data.get("destinationBucket")),
        failure_reason=_capped(data.get("failureReason"), "replicationEventData.failureReason", _FAILURE_REASON),
        rule_id=_capped(data.get("replicationRuleId"), "replicationEventData.replicationRuleId", _RULE_ID),
        region=_region(record.get("awsRegion"), "awsRegion"),
        size=_size(_get(record, "s3.object.size"), "s3.object.size"),
        etag=_etag(_get(record, "s3.object.eTag"), "s3.object.eTag"),
    )


def _destination_bucket(value: Any) -> str | None:
    """`arn:<partition>:s3:::<bucket>` -> `<bucket>`; a plain name is kept; absent -> None."""
    path = "replicationEventData.destinationBucket"
    text = _optional_text(value, path)
    if text is None:
        return None
    if text.startswith("arn:"):
        parts = text.split(":", 5)
        if len(parts) != 6 or parts[2] != "s3" or parts[3] or parts[4]:
            raise _Reject(BAD_VALUE, f"{path}: not an S3 bucket ARN")
        text = parts[5]
        if not text:
            raise _Reject(BAD_VALUE, f"{path}: ARN without a bucket name")
    return _bucket(text, path)


# ---------------------------------------------------------------------------------------------------
# EventBridge: Object Created / Object Deleted, and CloudTrail API calls


def _eventbridge(event: dict[str, Any]) -> list[Parsed]:
    if event.get("source") != "aws.s3":
        return [Rejected(UNKNOWN_SHAPE, "EventBridge event not from aws.s3")]
    detail_type = event["detail-type"]
    if detail_type in ("Object Created", "Object Deleted"):
        return [_guard(_eventbridge_object, event)]
    if detail_type == "AWS API Call via CloudTrail":
        return [_guard(_cloudtrail, event)]
    if isinstance(detail_type, str) and detail_type in _IGNORED_DETAIL_TYPES:
        return [Ignored(_IGNORED_DETAIL_TYPES[detail_type])]
    return [Rejected(UNKNOWN_EVENT_NAME, "detail-type not known")]


def _eventbridge_object(event: dict[str, Any]) -> ObjectEvent:
    obj = _object(event, "detail.object")
    if event["detail-type"] == "Object Created":
        change = ObjectChange.CREATED
    else:
        change = _deletion_type(_get(event, "detail.deletion-type"))
    etag = obj["etag"] if "etag" in obj else obj.get("eTag")  # moto says eTag
    return ObjectEvent(
        bucket=_bucket(_get(event, "detail.bucket.name", required=True), "detail.bucket.name"),
        key=_raw_key(obj.get("key"), "detail.object.key"),
        version_id=_version_id(obj.get("version-id"), "detail.object.version-id"),
        change=change,
        event_time=_time(_get(event, "time", required=True), "time"),
        size=_size(obj.get("size"), "detail.object.size"),
        etag=_etag(etag, "detail.object.etag"),
        sequencer=_optional_text(obj.get("sequencer"), "detail.object.sequencer"),
        reason=_optional_text(_get(event, "detail.reason"), "detail.reason"),
        region=_region(event.get("region"), "region"),
        account=_account(event.get("account"), "account"),
        origin="eventbridge",
    )


def _deletion_type(value: Any) -> ObjectChange:
    # moto sends no deletion-type; it only emits events for permanent deletes.
    text = _optional_text(value, "detail.deletion-type")
    if text is None:
        return ObjectChange.VERSION_DELETED
    if text not in _DELETION_TYPES:
        raise _Reject(BAD_VALUE, "detail.deletion-type not known")
    return _DELETION_TYPES[text]


def _cloudtrail(event: dict[str, Any]) -> Parsed:
    if _get(event, "detail.eventSource") != "s3.amazonaws.com":
        raise _Reject(UNKNOWN_SHAPE, "detail.eventSource is not s3.amazonaws.com")
    name = _text(_get(event, "detail.eventName"), "detail.eventName")
    if name not in _CLOUDTRAIL_CREATES and name != "DeleteObject":
        return Ignored("cloudtrail-other-call")
    if _get(event, "detail.errorCode") is not None:
        return Ignored("cloudtrail-failed-call")
    request = _object(event, "detail.requestParameters")
    response = _get(event, "detail.responseElements") or {}
    if not isinstance(response, dict):
        raise _Reject(BAD_TYPE, "detail.responseElements: not an object")

    new_version = _version_id(response.get("x-amz-version-id"), "detail.responseElements.x-amz-version-id")
    size = None
    if name == "DeleteObject":
        requested = _version_id(request.get("versionId"), "detail.requestParameters.versionId")
        if requested is not None:  # deleting one version (even a delete marker) removes it for good
            change, version_id = ObjectChange.VERSION_DELETED, requested
        elif str(response.get("x-amz-delete-marker")).lower() == "true":
            change, version_id = ObjectChange.DELETE_MARKER, new_version
        else:  # unversioned bucket: the object is gone
            change, version_id = ObjectChange.VERSION_DELETED, None
    else:
        change, version_id = ObjectChange.CREATED, new_version
        if name == "PutObject":
            # Only for PutObject is bytesTransferredIn the object's size (CopyObject: 0; CompleteMultipartUpload:
            # the XML part list).
            path = "detail.additionalEventData.bytesTransferredIn"
            size = _size(_get(event, path), path)

    encryption = response.get(_SSE_HEADER) or request.get(_SSE_HEADER)
    return ObjectEvent(
        bucket=_bucket(request.get("bucketName"), "detail.requestParameters.bucketName"),
        key=_raw_key(request.get("key"), "detail.requestParameters.key"),
        version_id=version_id,
        change=change,
        event_time=_time(_get(event, "detail.eventTime", required=True), "detail.eventTime"),
        size=size,
        reason=name,
        region=_region(_get(event, "detail.awsRegion"), "detail.awsRegion") or _region(event.get("region"), "region"),
        account=_account(event.get("account"), "account"),
        encryption=_optional_text(encryption, f"detail.responseElements.{_SSE_HEADER}"),
        origin="cloudtrail",
    )


# ---------------------------------------------------------------------------------------------------
# Field readers: each returns a clean value or raises _Reject naming the field.


def _get(root: Any, path: str, *, required: bool = False) -> Any:
    """The value at a dotted path from the document's root. Absent or null: None, or missing-field if required.

    A non-object on the way is bad-type.
    """
    value = root
    walked: list[str] = []
    for name in path.split("."):
        if not isinstance(value, dict):
            raise _Reject(BAD_TYPE, f"{'.'.join(walked) or 'event'}: not an object")
        walked.append(name)
        value = value.get(name)
        if value is None:
            if required:
                raise _Reject(MISSING_FIELD, ".".join(walked))
            return None
    return value


def _object(root: Any, path: str) -> dict[str, Any]:
    value = _get(root, path, required=True)
    if not isinstance(value, dict):
        raise _Reject(BAD_TYPE, f"{path}: not an object")
    return value


def _text(value: Any, path: str) -> str:
    if value is None:
        raise _Reject(MISSING_FIELD, path)
    if not isinstance(value, str):
        raise _Reject(BAD_TYPE, f"{path}: not a string")
    if not _is_utf8(value):
        raise _Reject(BAD_VALUE, f"{path}: not valid Unicode")
    return value


def _optional_text(value: Any, path: str) -> str | None:
    """Absent, null or empty -> None."""
    if value is None or value == "":
        return None
    return _text(value, path)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from JSON "\ud800" escapes
        return False
    return True


def _bucket(value: Any, path: str) -> str:
    """An S3 bucket name by S3's rules: 3 to 63 lowercase letters, digits, dots and hyphens, starting and
    ending with a letter or digit."""
    name = _text(value, path)
    if not name:
        raise _Reject(MISSING_FIELD, path)
    if not _BUCKET.fullmatch(name) or ".." in name:
        raise _Reject(BAD_VALUE, f"{path}: not a bucket name")
    return name


def _region(value: Any, path: str) -> str | None:
    region = _optional_text(value, path)
    if region is not None and not _REGION.fullmatch(region):
        raise _Reject(BAD_VALUE, f"{path}: not a region name")
    return region


def _account(value: Any, path: str) -> str | None:
    account = _optional_text(value, path)
    if account is not None and not (len(account) == 12 and account.isdigit() and account.isascii()):
        raise _Reject(BAD_VALUE, f"{path}: not an account ID")
    return account


def _capped(value: Any, path: str, pattern: re.Pattern[str]) -> str | None:
    """Free text S3 fills in (a failure reason, a rule ID): kept verbatim when it has the expected
    characters and length, refused otherwise (a forged event could carry anything)."""
    text = _optional_text(value, path)
    if text is not None and not pattern.fullmatch(text):
        raise _Reject(BAD_VALUE, f"{path}: unexpected characters or too long")
    return text


def _raw_key(value: Any, path: str) -> str:
    """A key as S3 stores it (EventBridge, CloudTrail)."""
    if value is None:
        raise _Reject(MISSING_FIELD, path)
    if not isinstance(value, str):
        raise _Reject(BAD_TYPE, f"{path}: not a string")
    if not value:
        raise _Reject(EMPTY_KEY, path)
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise _Reject(BAD_KEY_ENCODING, f"{path}: not valid UTF-8") from None
    if size > MAX_KEY_BYTES:
        raise _Reject(KEY_TOO_LONG, f"{path}: {size} bytes")
    return value


def _encoded_key(value: Any, path: str) -> str:
    """A key url-encoded the way S3 notifications do it: %XX escapes, `+` for space."""
    if value is None:
        raise _Reject(MISSING_FIELD, path)
    if not isinstance(value, str):
        raise _Reject(BAD_TYPE, f"{path}: not a string")
    if _BAD_PERCENT.search(value):
        raise _Reject(BAD_KEY_ENCODING, f"{path}: bad %-escape")
    try:
        decoded = unquote_plus(value, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise _Reject(BAD_KEY_ENCODING, f"{path}: not UTF-8 once decoded") from None
    return _raw_key(decoded, path)


def _version_id(value: Any, path: str) -> str | None:
    """None when absent, empty or "null" (S3's word for unversioned)."""
    if value is None or value in ("", "null"):
        return None
    text = _text(value, path)
    if len(text) > 1024 or "#" in text or not text.isprintable() or any(c.isspace() for c in text):
        raise _Reject(BAD_VALUE, f"{path}: not a version ID")
    return text


def _etag(value: Any, path: str) -> str | None:
    text = _optional_text(value, path)
    if text is None:
        return None
    etag = text.strip('"') or None
    if etag is not None and not _ETAG.fullmatch(etag):
        raise _Reject(BAD_VALUE, f"{path}: not an ETag")
    return etag


def _size(value: Any, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise _Reject(BAD_TYPE, f"{path}: not a number")
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            raise _Reject(BAD_TYPE, f"{path}: not a number")
        value = int(value)
    elif isinstance(value, float):
        if not value.is_integer():
            raise _Reject(BAD_VALUE, f"{path}: not a whole number")
        value = int(value)
    elif not isinstance(value, int):
        raise _Reject(BAD_TYPE, f"{path}: not a number")
    if not 0 <= value <= MAX_SIZE:
        raise _Reject(BAD_VALUE, f"{path}: out of range")
    return value


def _time(value: Any, path: str) -> datetime:
    """ISO 8601 text (AWS) or epoch seconds (moto) -> timezone-aware UTC datetime."""
    try:
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            parsed = parsed.astimezone(UTC)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            parsed = datetime.fromtimestamp(value, UTC)
        else:
            raise _Reject(BAD_TYPE, f"{path}: not a string or number")
    except (ValueError, OverflowError, OSError):
        raise _Reject(BAD_TIME, f"{path}: not a time") from None
    if not _EARLIEST <= parsed < _LATEST:
        raise _Reject(BAD_TIME, f"{path}: out of range")
    return parsed


def eventbridge_object_event(
    *,
    bucket: str,
    key: str,
    version_id: str,
    time_s: float,
    region: str,
    account: str,
    size: int | None = None,
    etag: str | None = None,
    reason: str = "PutObject",
    deletion_type: str | None = None,
    sequencer: str | None = None,
    request_id: str | None = None,
    source_ip: str = "203.0.113.10",
) -> dict[str, Any]:
    """The EventBridge event S3 sends: "Object Created", or with `deletion_type` "Object Deleted".

    The inverse of what `parse_body` reads (key not URL-encoded, `time` in whole seconds). Used to
    feed the monitor versions it never heard of (`crrmon reconcile --feed`) and by the local emulator.
    """
    obj: dict[str, Any] = {"key": key}
    if size is not None:
        obj["size"] = size
    if etag:
        obj["etag"] = etag
    obj["version-id"] = version_id
    if sequencer:
        obj["sequencer"] = sequencer
    detail: dict[str, Any] = {
        "version": "0",
        "bucket": {"name": bucket},
        "object": obj,
        "request-id": request_id or uuid.uuid4().hex[:16].upper(),
        "requester": account,
        "source-ip-address": source_ip,
        "reason": reason,
    }
    if deletion_type:
        detail["deletion-type"] = deletion_type
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Deleted" if deletion_type else "Object Created",
        "source": "aws.s3",
        "account": account,
        "time": datetime.fromtimestamp(int(time_s), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": detail,
    }
