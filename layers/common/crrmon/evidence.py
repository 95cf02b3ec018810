"""What S3 itself says about one object version (HEAD), asked at a bounded rate per bucket.

The monitor HEADs only where events left a question: at a deadline, for a bucket that is both source
and destination, or to compare checksums. A token bucket per bucket keeps the request rate under
HeadRequestsPerSecond; S3 throttling (503 SlowDown) empties the bucket's tokens for a back-off.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError

NOT_FOUND_CODES = {"404", "NoSuchKey", "NoSuchVersion", "NotFound", "InvalidArgument", "400"}
THROTTLE_CODES = {"503", "SlowDown", "ServiceUnavailable", "RequestLimitExceeded", "Throttling"}
CHECKSUM_FIELDS = ("ChecksumCRC64NVME", "ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256")


class Throttled(Exception):
    """S3 asked us to slow down, or the per-bucket budget is spent: try again later."""


@dataclass(frozen=True)
class VersionFacts:
    exists: bool
    delete_marker: bool = False
    replication_status: str | None = None  # PENDING | COMPLETED | FAILED | REPLICA | None (not in scope)
    size: int | None = None
    etag: str | None = None
    encryption: str | None = None  # "none" when S3 reports no server-side encryption header
    checksum: str | None = None  # "<ALGORITHM>:<value>", full-object checksums only

    def as_fields(self, side: str) -> dict:
        """Item attributes for `side` "s" (source) or "r" (replica)."""
        fields = {f"{side}_size": self.size, f"{side}_etag": self.etag, f"{side}_enc": self.encryption}
        fields[f"{side}_ck"] = self.checksum
        if self.delete_marker:
            fields[f"{side}_dm"] = True
        return {k: v for k, v in fields.items() if v is not None}


def head_version(s3, bucket: str, key: str, version_id: str) -> VersionFacts:
    try:
        answer = s3.head_object(Bucket=bucket, Key=key, VersionId=version_id, ChecksumMode="ENABLED")
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        if code in ("405", "MethodNotAllowed") or headers.get("x-amz-delete-marker") == "true":
            return VersionFacts(exists=True, delete_marker=True)
        if code in NOT_FOUND_CODES:
            return VersionFacts(exists=False)
        if code in THROTTLE_CODES:
            raise Throttled(f"S3 throttled HEAD on {bucket}") from error
        raise
    checksum = None
    if answer.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
        for name in CHECKSUM_FIELDS:
            if answer.get(name):
                checksum = f"{name.removeprefix('Checksum')}:{answer[name]}"
                break
    return VersionFacts(
        exists=True,
        delete_marker=bool(answer.get("DeleteMarker")),
        replication_status=answer.get("ReplicationStatus"),
        size=answer.get("ContentLength"),
        etag=(answer.get("ETag") or "").strip('"') or None,
        encryption=answer.get("ServerSideEncryption") or "none",
        checksum=checksum,
    )


class RateLimiter:
    """Token bucket per S3 bucket. `try_acquire` never blocks: callers put the work off instead."""

    def __init__(self, rate_per_s: float, *, burst: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.rate = rate_per_s
        self.burst = burst if burst is not None else max(1.0, rate_per_s)
        self.clock = clock
        self._state: dict[str, tuple[float, float]] = {}  # bucket -> (tokens, at)
        self._lock = threading.Lock()

    def try_acquire(self, bucket: str) -> bool:
        with self._lock:
            now = self.clock()
            tokens, at = self._state.get(bucket, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1:
                self._state[bucket] = (tokens - 1, now)
                return True
            self._state[bucket] = (tokens, now)
            return False

    def back_off(self, bucket: str, seconds: float) -> None:
        """After S3 throttling: no tokens for `seconds`."""
        with self._lock:
            self._state[bucket] = (-seconds * self.rate, self.clock())


class Evidence:
    """HEADs through the rate limiter. Raises Throttled when the budget for a bucket is spent."""

    def __init__(self, s3, limiter: RateLimiter, *, back_off_s: float = 30.0):
        self.s3 = s3
        self.limiter = limiter
        self.back_off_s = back_off_s
        self.requests = 0

    def head(self, bucket: str, key: str, version_id: str) -> VersionFacts:
        if not self.limiter.try_acquire(bucket):
            raise Throttled(f"HEAD budget for {bucket} spent")
        self.requests += 1
        try:
            return head_version(self.s3, bucket, key, version_id)
        except Throttled:
            self.limiter.back_off(bucket, self.back_off_s)
            raise
