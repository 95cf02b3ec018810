"""The domain's vocabulary: what an event says, and the verdicts the monitor gives.

Parsers (events.py) turn queue bodies into these values; everything downstream works on them only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Status(StrEnum):
    """State of one object version at one destination. Only OVERDUE is not final."""

    OVERDUE = "OVERDUE"
    COMPLETED = "COMPLETED"
    MISMATCH = "MISMATCH"
    FAILED = "FAILED"
    SOURCE_DELETED = "SOURCE_DELETED"
    NOT_IN_SCOPE = "NOT_IN_SCOPE"
    EXPIRED = "EXPIRED"

    @property
    def final(self) -> bool:
        return self is not Status.OVERDUE


FINAL_STATUSES = tuple(s.value for s in Status if s.final)


class ObjectChange(StrEnum):
    CREATED = "created"  # a new object version (PutObject, CopyObject, CompleteMultipartUpload, POST)
    DELETE_MARKER = "delete_marker"  # a delete marker version was created
    VERSION_DELETED = "version_deleted"  # a specific version was permanently deleted (never replicated)


class ReplicationOutcome(StrEnum):
    """S3 replication event notifications (eventName s3:Replication:<...>)."""

    FAILED = "OperationFailedReplication"
    MISSED_THRESHOLD = "OperationMissedThreshold"
    REPLICATED_AFTER_THRESHOLD = "OperationReplicatedAfterThreshold"
    NOT_TRACKED = "OperationNotTracked"


@dataclass(frozen=True)
class ObjectEvent:
    """An object version appeared or went away in a bucket (source or destination, not yet known)."""

    bucket: str
    key: str  # decoded, exactly as S3 stores it
    version_id: str | None  # None: unversioned bucket
    change: ObjectChange
    event_time: datetime  # timezone-aware UTC
    size: int | None = None
    etag: str | None = None  # without quotes
    sequencer: str | None = None
    reason: str | None = None  # PutObject, CopyObject, CompleteMultipartUpload, DeleteObject, Lifecycle Expiration...
    region: str | None = None
    account: str | None = None
    encryption: str | None = None  # AES256 | aws:kms | aws:kms:dsse | None when the event does not say
    origin: str = ""  # eventbridge | s3-notification | cloudtrail
    topic_arn: str | None = None  # the SNS topic that delivered it (its account is the sender's)


@dataclass(frozen=True)
class ReplicationEvent:
    """S3 told us about the replication of one source version to one destination."""

    bucket: str  # the source bucket
    key: str
    version_id: str | None
    outcome: ReplicationOutcome
    event_time: datetime
    destination_bucket: str | None  # bucket name (the ARN's last part); None when S3 did not say
    failure_reason: str | None = None  # verbatim, unknown reasons kept as they are
    rule_id: str | None = None
    region: str | None = None
    account: str | None = None
    size: int | None = None
    etag: str | None = None
    origin: str = "s3-notification"
    topic_arn: str | None = None


@dataclass(frozen=True)
class Ignored:
    """A well-formed message that needs no work (s3:TestEvent, Object Tags Added, ...)."""

    reason: str


@dataclass(frozen=True)
class SubscriptionRequest:
    """SNS asks to confirm a subscription of the events queue to a topic: a forwarder topic of another
    account, whose owner subscribed the queue (such a subscription waits until confirmed)."""

    topic_arn: str
    token: str


@dataclass(frozen=True)
class Rejected:
    """A record that cannot be understood. `reason` is a short stable code used as a metric dimension."""

    reason: str
    detail: str = ""


Parsed = ObjectEvent | ReplicationEvent | SubscriptionRequest | Ignored | Rejected
