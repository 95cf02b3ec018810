"""crrmon.evidence beyond the HEAD answers of test_s3_conformance: the rate limiter, the Evidence wrapper,
and the details of an answer. Written to kill the mutants `make mutate MODULES=evidence` found alive."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from crrmon.evidence import Evidence, RateLimiter, Refused, Throttled, head_version

BUCKET, KEY, VERSION = "src-bucket", "folder/file.bin", "v1"


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeS3:
    """head_object answers from a list: a dict is an answer, an exception is raised."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls: list[dict] = []

    def head_object(self, **kwargs):
        self.calls.append(kwargs)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def error(code: str | None, headers: dict | None = None) -> ClientError:
    response: dict = {}
    if code is not None:
        response["Error"] = {"Code": code}
    if headers is not None:
        response["ResponseMetadata"] = {"HTTPHeaders": headers}
    return ClientError(response, "HeadObject")


# ---- head_version --------------------------------------------------------------------------------


def test_a_404_with_the_delete_marker_header_is_a_delete_marker():
    facts = head_version(FakeS3(error("404", {"x-amz-delete-marker": "true"})), BUCKET, KEY, VERSION)
    assert (facts.exists, facts.delete_marker) == (True, True)
    gone = head_version(FakeS3(error("404", {"x-amz-delete-marker": "false"})), BUCKET, KEY, VERSION)
    assert (gone.exists, gone.delete_marker) == (False, False)


@pytest.mark.parametrize("code", [None, "InternalError"])
def test_an_error_crrmon_does_not_know_is_raised_as_it_came(code):
    with pytest.raises(ClientError):
        head_version(FakeS3(error(code)), BUCKET, KEY, VERSION)


def test_a_refusal_says_where_and_what():
    with pytest.raises(Refused) as raised:
        head_version(FakeS3(error("AccessDenied", {})), BUCKET, KEY, VERSION)
    assert (raised.value.bucket, raised.value.code) == (BUCKET, "AccessDenied")
    assert str(raised.value) == f"HEAD refused in {BUCKET} (AccessDenied)"


def test_throttling_says_which_bucket():
    with pytest.raises(Throttled, match=BUCKET):
        head_version(FakeS3(error("SlowDown", {})), BUCKET, KEY, VERSION)


def test_an_answer_without_a_checksum_type_is_a_full_object_checksum():
    facts = head_version(FakeS3({"ContentLength": 3, "ChecksumCRC32": "AAAA"}), BUCKET, KEY, VERSION, checksum=True)
    assert facts.checksum == "CRC32:AAAA"
    composite = {"ContentLength": 3, "ChecksumCRC32": "AAAA", "ChecksumType": "COMPOSITE"}
    assert head_version(FakeS3(composite), BUCKET, KEY, VERSION, checksum=True).checksum is None


def test_an_answer_flagged_as_a_delete_marker_is_one():
    assert head_version(FakeS3({"DeleteMarker": True}), BUCKET, KEY, VERSION).delete_marker is True
    assert head_version(FakeS3({"ContentLength": 1}), BUCKET, KEY, VERSION).delete_marker is False


def test_an_answer_without_an_etag_has_none():
    assert head_version(FakeS3({"ContentLength": 1}), BUCKET, KEY, VERSION).etag is None
    assert head_version(FakeS3({"ETag": '"abc"'}), BUCKET, KEY, VERSION).etag == "abc"


# ---- RateLimiter ---------------------------------------------------------------------------------


def test_the_burst_is_at_least_one_request():
    limiter = RateLimiter(0.5, clock=Clock())
    assert [limiter.try_acquire(BUCKET) for _ in range(2)] == [True, False]


def test_a_token_is_spent_per_request_and_comes_back_at_the_rate():
    clock = Clock()
    limiter = RateLimiter(1.0, burst=2, clock=clock)
    assert [limiter.try_acquire(BUCKET) for _ in range(3)] == [True, True, False]
    clock.now += 0.5
    assert limiter.try_acquire(BUCKET) is False  # half a token
    clock.now += 0.5
    assert limiter.try_acquire(BUCKET) is True
    assert limiter.try_acquire("other-bucket") is True  # each bucket has its own tokens


def test_a_back_off_holds_requests_for_its_seconds():
    clock = Clock()
    limiter = RateLimiter(2.0, burst=1, clock=clock)
    limiter.back_off(BUCKET, 10)
    clock.now += 5
    assert limiter.try_acquire(BUCKET) is False
    clock.now += 5.5
    assert limiter.try_acquire(BUCKET) is True


# ---- Evidence ------------------------------------------------------------------------------------


class RecordingLimiter(RateLimiter):
    def __init__(self, grant: bool = True):
        super().__init__(1.0)
        self.grant = grant
        self.back_offs: list[tuple[str, float]] = []

    def try_acquire(self, bucket: str) -> bool:
        return self.grant

    def back_off(self, bucket: str, seconds: float) -> None:
        self.back_offs.append((bucket, seconds))


def test_evidence_counts_requests_and_asks_for_checksums_through_the_buckets_client():
    s3 = FakeS3({"ContentLength": 1}, {"ContentLength": 2})
    asked = []

    def clients(bucket):
        asked.append(bucket)
        return s3

    evidence = Evidence(None, RecordingLimiter(), checksum=True, clients=clients)
    evidence.head(BUCKET, KEY, VERSION)
    evidence.head(BUCKET, KEY, VERSION)
    assert evidence.requests == 2 and asked == [BUCKET, BUCKET]
    assert all(call.get("ChecksumMode") == "ENABLED" for call in s3.calls)


def test_evidence_backs_off_thirty_seconds_when_s3_throttles():
    limiter = RecordingLimiter()
    evidence = Evidence(FakeS3(error("SlowDown", {})), limiter)
    with pytest.raises(Throttled):
        evidence.head(BUCKET, KEY, VERSION)
    assert limiter.back_offs == [(BUCKET, 30.0)]


def test_a_spent_budget_says_which_bucket():
    evidence = Evidence(FakeS3(), RecordingLimiter(grant=False))
    with pytest.raises(Throttled, match=BUCKET):
        evidence.head(BUCKET, KEY, VERSION)
    assert evidence.requests == 0
