"""What S3 itself says about one object version (HEAD), asked at a bounded rate per bucket.

The monitor HEADs only where events left a question: at a deadline, for a bucket that is both source
and destination, or to compare checksums. A budget per bucket, shared by every instance through the
table, keeps the request rate under HeadRequestsPerSecond; S3 throttling (503 SlowDown) stops every
instance's HEADs on the bucket for a back-off.
What each answer means is written down in docs/s3-semantics.md.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from botocore.exceptions import ClientError

# What a HEAD's status means (HeadObject API reference; docs/s3-semantics.md). A HEAD's error has no
# body, so botocore's code is the HTTP status; the named codes are GET's words for the same answers.
NOT_FOUND_CODES = {"404", "NoSuchKey", "NoSuchVersion", "NotFound", "InvalidArgument"}
DELETE_MARKER_CODES = {"405", "MethodNotAllowed"}  # the version ID names a delete marker
SSE_C_CODES = {"400", "BadRequest"}  # an SSE-C object without its key, or a malformed version ID (_bad_request)
REFUSED_CODES = {"403", "AccessDenied", "Forbidden"}  # not readable by this caller: says nothing of existence
THROTTLE_CODES = {"503", "SlowDown", "ServiceUnavailable", "RequestLimitExceeded", "Throttling"}
CHECKSUM_FIELDS = ("ChecksumCRC64NVME", "ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256")
SSE_C = "SSE-C"


class Throttled(Exception):
    """S3 asked us to slow down, or the per-bucket budget is spent: try again later."""


class Refused(Exception):
    """S3 answered 403: the caller may not read the version (a bucket or object policy, another account's
    bucket without its read role, a KMS key it may not use). Whether the version exists is unknown."""

    def __init__(self, bucket: str, code: str):
        super().__init__(f"HEAD refused in {bucket} ({code})")
        self.bucket = bucket
        self.code = code


@dataclass(frozen=True)
class VersionFacts:
    exists: bool
    delete_marker: bool = False
    replication_status: str | None = None  # PENDING | COMPLETED | FAILED | REPLICA | None (not in scope)
    size: int | None = None
    etag: str | None = None
    encryption: str | None = None  # "none" when S3 reports no server-side encryption header; "SSE-C"
    checksum: str | None = None  # "<ALGORITHM>:<value>", full-object checksums only
    readable: bool = True  # False: the version exists, S3 told nothing more (an SSE-C object: 400)
    checksum_refused: bool = False  # checksum mode was refused (KMS), the facts come from a plain HEAD

    def as_fields(self, side: str) -> dict:
        """Item attributes for `side` "s" (source) or "r" (replica)."""
        fields = {f"{side}_size": self.size, f"{side}_etag": self.etag, f"{side}_enc": self.encryption}
        fields[f"{side}_ck"] = self.checksum
        if self.delete_marker:
            fields[f"{side}_dm"] = True
        return {k: v for k, v in fields.items() if v is not None}


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _bad_request(s3, bucket: str, key: str, version_id: str) -> VersionFacts:
    """A HEAD answered 400, with no body: an SSE-C object asked for without its key (the version exists),
    or a version ID S3 never issues (a malformed one: no such version, whatever a message claimed). A
    one-byte GET of the version tells them apart by its error code, InvalidArgument for the latter; no
    data comes back from an SSE-C object without its key. One more request, for 400s only."""
    try:
        answer = s3.get_object(Bucket=bucket, Key=key, VersionId=version_id, Range="bytes=0-0")
    except ClientError as error:
        code = _error_code(error)
        if code in NOT_FOUND_CODES:
            return VersionFacts(exists=False)
        if code in REFUSED_CODES:
            raise Refused(bucket, code) from error
        if code in THROTTLE_CODES:
            raise Throttled(f"S3 throttled GET on {bucket}") from error
        return VersionFacts(exists=True, encryption=SSE_C, readable=False)
    answer["Body"].close()
    return VersionFacts(exists=True, encryption=SSE_C, readable=False)


def head_version(s3, bucket: str, key: str, version_id: str, *, checksum: bool = False) -> VersionFacts:
    """What S3 says of one version. Checksum mode only when asked for: on an object encrypted with a KMS
    key it needs kms:Decrypt on that key, and a refusal is then retried without it."""
    try:
        if checksum:
            answer = s3.head_object(Bucket=bucket, Key=key, VersionId=version_id, ChecksumMode="ENABLED")
        else:
            answer = s3.head_object(Bucket=bucket, Key=key, VersionId=version_id)
    except ClientError as error:
        code = _error_code(error)
        headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        if code in DELETE_MARKER_CODES or headers.get("x-amz-delete-marker") == "true":
            return VersionFacts(exists=True, delete_marker=True)
        if code in NOT_FOUND_CODES:
            return VersionFacts(exists=False)
        if code in SSE_C_CODES:
            return _bad_request(s3, bucket, key, version_id)
        if code in REFUSED_CODES:
            if checksum:
                plain = head_version(s3, bucket, key, version_id, checksum=False)
                return replace(plain, checksum_refused=True)
            raise Refused(bucket, code) from error
        if code in THROTTLE_CODES:
            raise Throttled(f"S3 throttled HEAD on {bucket}") from error
        raise
    found = None
    if answer.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
        for name in CHECKSUM_FIELDS:
            if answer.get(name):
                found = f"{name.removeprefix('Checksum')}:{answer[name]}"
                break
    return VersionFacts(
        exists=True,
        delete_marker=bool(answer.get("DeleteMarker")),
        replication_status=answer.get("ReplicationStatus"),
        size=answer.get("ContentLength"),
        etag=(answer.get("ETag") or "").strip('"') or None,
        encryption=SSE_C if answer.get("SSECustomerAlgorithm") else answer.get("ServerSideEncryption") or "none",
        checksum=found,
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


class SharedBudget:
    """The per-bucket HEAD budget of every instance of the functions together: `rate` a second with bursts
    of `burst`, however many sweepers run. The budget lives in the table (`Store.take_budget`); an instance
    takes a lease of a few tokens at a time (one conditional write), spends them within a second, and,
    when the budget is spent, does not ask again for the bucket until a lease could have come free.
    Same interface as `RateLimiter`: `try_acquire` never blocks."""

    HOLD_S = 1.0  # leased tokens unspent after this are dropped: no instance hoards the budget

    def __init__(self, store, rate_per_s: float, *, burst: float | None = None, clock: Callable[[], float] = time.time):
        self.store = store
        self.rate = rate_per_s
        self.burst = burst if burst is not None else max(1.0, rate_per_s)
        self.lease = max(1, min(int(self.burst), round(rate_per_s / 4)))  # about four leases a second at full rate
        self._lease_ms = round(self.lease / self.rate * 1000)  # what a lease costs of the shared budget
        self._window_ms = round(self.burst / self.rate * 1000)  # how far ahead the budget may be spent
        self.clock = clock
        self._held: dict[str, tuple[int, float]] = {}  # bucket -> (tokens, until)
        self._spent_until: dict[str, float] = {}  # bucket -> do not ask the table before
        self._lock = threading.Lock()
        self._leasing: dict[str, threading.Lock] = {}  # bucket -> held while one thread takes a lease

    def _from_held(self, bucket: str, now: float) -> bool | None:
        """A token of this instance's lease (True), the budget known spent (False), or None: ask the table.
        Called with `_lock` held."""
        tokens, until = self._held.get(bucket, (0, 0.0))
        if tokens >= 1 and until > now:
            self._held[bucket] = (tokens - 1, until)
            return True
        if self._spent_until.get(bucket, 0.0) > now:
            return False
        return None

    def try_acquire(self, bucket: str) -> bool:
        with self._lock:
            held = self._from_held(bucket, self.clock())
            if held is not None:
                return held
            leasing = self._leasing.setdefault(bucket, threading.Lock())
        # One lease at a time per bucket: threads that find the lease empty together wait for the one
        # that asks the table, then share its tokens. Each asking for a lease of its own would take
        # several at once, keep one, and spend the shared budget for nothing.
        with leasing:
            with self._lock:
                now = self.clock()
                held = self._from_held(bucket, now)
                if held is not None:
                    return held
            taken = self.store.take_budget(
                bucket, now_ms=int(now * 1000), cost_ms=self._lease_ms, window_ms=self._window_ms
            )
            with self._lock:
                if not taken:
                    self._spent_until[bucket] = now + self.lease / self.rate
                    return False
                self._held[bucket] = (self.lease - 1, now + self.HOLD_S)
                return True

    def back_off(self, bucket: str, seconds: float) -> None:
        """After S3 throttling: no instance HEADs the bucket for `seconds`."""
        now = self.clock()
        with self._lock:
            self._held.pop(bucket, None)
            self._spent_until[bucket] = now + seconds
        self.store.hold_budget(bucket, until_ms=int((now + seconds) * 1000), window_ms=self._window_ms)


class Evidence:
    """HEADs through the rate limiter. Raises Throttled when the budget for a bucket is spent.

    `clients` gives the S3 client for a bucket (a bucket of another account is read through that
    account's read-only role); `checksum` asks for full-object checksums (VerifyMode=checksum).
    """

    def __init__(
        self,
        s3,
        limiter: RateLimiter,
        *,
        back_off_s: float = 30.0,
        checksum: bool = False,
        clients: Callable[[str], object] | None = None,
    ):
        self.s3 = s3
        self.limiter = limiter
        self.back_off_s = back_off_s
        self.checksum = checksum
        self.clients = clients or (lambda bucket: self.s3)
        self.requests = 0

    def head(self, bucket: str, key: str, version_id: str) -> VersionFacts:
        if not self.limiter.try_acquire(bucket):
            raise Throttled(f"HEAD budget for {bucket} spent")
        self.requests += 1
        try:
            return head_version(self.clients(bucket), bucket, key, version_id, checksum=self.checksum)
        except Throttled:
            self.limiter.back_off(bucket, self.back_off_s)
            raise
