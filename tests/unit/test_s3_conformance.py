"""S3 behaviours of docs/s3-semantics.md proved at unit level: HEAD answers as S3 gives them (botocore
Stubber), ETag and checksum comparability, and what replication rules make the monitor expect."""

from __future__ import annotations

from unittest import mock

import boto3
import pytest
from botocore.stub import Stubber

from crrmon.evidence import Refused, Throttled, VersionFacts, head_version
from crrmon.model import Status
from crrmon.topology import Topology, rules_from_configuration
from crrmon.verify import NEEDS_HEAD, decide

BUCKET, KEY, VERSION = "src-bucket", "folder/file.bin", "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"
EXPECTED = {"Bucket": BUCKET, "Key": KEY, "VersionId": VERSION}
WITH_CHECKSUM = {**EXPECTED, "ChecksumMode": "ENABLED"}


@pytest.fixture
def s3():
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    with Stubber(client) as stubber:
        client.stubber = stubber
        yield client
        stubber.assert_no_pending_responses()


def refuse(s3, status: int, expected: dict = EXPECTED, headers: dict | None = None) -> None:
    """A HEAD error as S3 sends it: no body, so botocore's error code is the HTTP status."""
    s3.stubber.add_client_error(
        "head_object",
        service_error_code=str(status),
        http_status_code=status,
        expected_params=expected,
        response_meta={"HTTPHeaders": headers or {}},
    )


def answer(s3, response: dict, expected: dict = EXPECTED) -> None:
    s3.stubber.add_response("head_object", response, expected)


# ---- HEAD answers ----------------------------------------------------------------------------------


def ranged_get_fails(s3, code: str, status: int = 400) -> None:
    """The one-byte GET that tells a HEAD's 400s apart, answered with S3's error code."""
    s3.stubber.add_client_error(
        "get_object",
        service_error_code=code,
        http_status_code=status,
        expected_params={**EXPECTED, "Range": "bytes=0-0"},
    )


def test_head_400_is_an_sse_c_version_that_exists(s3):
    refuse(s3, 400)
    ranged_get_fails(s3, "InvalidRequest")  # "...stored using a form of Server Side Encryption..."
    facts = head_version(s3, BUCKET, KEY, VERSION)
    assert (facts.exists, facts.readable, facts.encryption, facts.size) == (True, False, "SSE-C", None)
    assert facts.as_fields("s") == {"s_enc": "SSE-C"}


def test_head_400_for_a_version_id_s3_never_issues_is_no_such_version(s3):
    refuse(s3, 400)
    ranged_get_fails(s3, "InvalidArgument")  # "Invalid version id specified"
    assert head_version(s3, BUCKET, KEY, VERSION) == VersionFacts(exists=False)


def test_the_get_after_a_head_400_refused_or_throttled_is_that_answer(s3):
    refuse(s3, 400)
    ranged_get_fails(s3, "AccessDenied", 403)
    with pytest.raises(Refused, match=r"^HEAD refused in src-bucket \(AccessDenied\)$") as refused:
        head_version(s3, BUCKET, KEY, VERSION)
    assert refused.value.bucket == BUCKET
    refuse(s3, 400)
    ranged_get_fails(s3, "SlowDown", 503)
    with pytest.raises(Throttled, match="throttled GET on src-bucket"):
        head_version(s3, BUCKET, KEY, VERSION)


def test_a_get_that_answers_after_a_head_400_says_the_version_exists(s3):
    refuse(s3, 400)
    body = mock.Mock()
    s3.stubber.add_response("get_object", {"Body": body}, {**EXPECTED, "Range": "bytes=0-0"})
    facts = head_version(s3, BUCKET, KEY, VERSION)
    assert (facts.exists, facts.readable, facts.encryption) == (True, False, "SSE-C")
    body.close.assert_called_once()


def test_a_checksum_is_a_field_of_its_side():
    facts = VersionFacts(exists=True, size=5, checksum="CRC32:AAAA")
    assert facts.as_fields("r") == {"r_size": 5, "r_ck": "CRC32:AAAA"}


def test_head_403_is_a_refusal_that_says_nothing_of_existence(s3):
    refuse(s3, 403)
    with pytest.raises(Refused) as raised:
        head_version(s3, BUCKET, KEY, VERSION)
    assert raised.value.bucket == BUCKET


def test_head_404_means_the_version_is_gone(s3):
    refuse(s3, 404)
    facts = head_version(s3, BUCKET, KEY, VERSION)
    assert facts.exists is False


def test_head_405_names_a_delete_marker(s3):
    refuse(s3, 405, headers={"x-amz-delete-marker": "true"})
    facts = head_version(s3, BUCKET, KEY, VERSION)
    assert (facts.exists, facts.delete_marker) == (True, True)
    assert facts.as_fields("r") == {"r_dm": True}


def test_head_503_is_throttling_never_an_answer(s3):
    refuse(s3, 503)
    with pytest.raises(Throttled):
        head_version(s3, BUCKET, KEY, VERSION)


def test_checksum_mode_refused_for_kms_falls_back_to_a_plain_head(s3):
    refuse(s3, 403, expected=WITH_CHECKSUM)  # no kms:Decrypt on the object's key
    answer(s3, {"ContentLength": 7, "ETag": '"abc"', "ServerSideEncryption": "aws:kms"})
    facts = head_version(s3, BUCKET, KEY, VERSION, checksum=True)
    assert facts.checksum_refused and facts.exists and facts.checksum is None
    assert (facts.size, facts.etag, facts.encryption) == (7, "abc", "aws:kms")


def test_a_plain_head_never_asks_for_checksums(s3):
    answer(s3, {"ContentLength": 7, "ETag": '"abc"', "ChecksumCRC64NVME": "AAAAAAAAAAA="})
    facts = head_version(s3, BUCKET, KEY, VERSION)  # the stub fails if ChecksumMode is sent
    assert facts.encryption == "none"


def test_full_object_checksums_are_kept(s3):
    answer(
        s3,
        {"ContentLength": 7, "ETag": '"abc"', "ChecksumCRC64NVME": "q8Kx7w+Xl2s=", "ChecksumType": "FULL_OBJECT"},
        WITH_CHECKSUM,
    )
    assert head_version(s3, BUCKET, KEY, VERSION, checksum=True).checksum == "CRC64NVME:q8Kx7w+Xl2s="


def test_composite_checksums_are_not_taken_for_the_objects_checksum(s3):
    answer(
        s3,
        {"ContentLength": 7, "ETag": '"abc-2"', "ChecksumSHA256": "c2hhMjU2LTI=", "ChecksumType": "COMPOSITE"},
        WITH_CHECKSUM,
    )
    facts = head_version(s3, BUCKET, KEY, VERSION, checksum=True)
    assert facts.checksum is None and facts.etag == "abc-2"


def test_replication_status_and_encryption_are_read_from_the_head(s3):
    answer(s3, {"ContentLength": 0, "ETag": '"d41d8cd98f00b204e9800998ecf8427e"', "ReplicationStatus": "PENDING"})
    answer(s3, {"ContentLength": 3, "ETag": '"x"', "ReplicationStatus": "REPLICA", "ServerSideEncryption": "AES256"})
    answer(s3, {"ContentLength": 3, "ETag": '"y"', "SSECustomerAlgorithm": "AES256"})
    pending = head_version(s3, BUCKET, KEY, VERSION)
    assert (pending.replication_status, pending.size) == ("PENDING", 0)
    replica = head_version(s3, BUCKET, KEY, VERSION)
    assert (replica.replication_status, replica.encryption) == ("REPLICA", "AES256")
    assert head_version(s3, BUCKET, KEY, VERSION).encryption == "SSE-C"  # a HEAD made with the customer key


def test_object_lock_retention_does_not_change_what_a_head_proves(s3):
    lock = {"ObjectLockMode": "COMPLIANCE", "ObjectLockLegalHoldStatus": "ON"}
    answer(s3, {"ContentLength": 5, "ETag": '"e"', "ReplicationStatus": "COMPLETED", **lock})
    answer(s3, {"ContentLength": 5, "ETag": '"e"', "ReplicationStatus": "REPLICA", **lock})
    source, replica = head_version(s3, BUCKET, KEY, VERSION), head_version(s3, BUCKET, KEY, VERSION)
    item = {"s_time": 1, "r_time": 2, **source.as_fields("s"), **replica.as_fields("r"), "headed": True}
    verdict = decide(item, verify_mode="etag")
    assert (verdict.status, verdict.verified_by) == (Status.COMPLETED, "etag")


# ---- ETag comparability ----------------------------------------------------------------------------

SOURCE = {"s_time": 1_000, "s_size": 10, "s_etag": "aaa"}
REPLICA = {"r_time": 2_000, "r_size": 10, "r_etag": "bbb"}


def test_sse_c_etags_that_differ_are_not_a_mismatch():
    item = {**SOURCE, **REPLICA, "s_enc": "SSE-C", "r_enc": "SSE-C", "headed": True}
    verdict = decide(item, verify_mode="etag")
    assert (verdict.status, verdict.verified_by) == (Status.COMPLETED, "size")


def test_unencrypted_source_and_default_encrypted_destination_etags_stay_comparable():
    # SSE-S3 keeps the ETag an MD5: a plaintext source and an SSE-S3 replica must carry the same one.
    item = {**SOURCE, **REPLICA, "s_enc": "none", "r_enc": "AES256"}
    assert decide(item, verify_mode="etag").status is Status.MISMATCH
    # with a KMS default on the destination the ETags are not comparable
    item = {**SOURCE, **REPLICA, "s_enc": "none", "r_enc": "aws:kms"}
    assert decide(item, verify_mode="etag").verified_by == "size"


def test_same_multipart_layout_with_other_etags_asks_s3_before_judging():
    item = {**SOURCE, **REPLICA, "s_etag": "aaa-3", "r_etag": "bbb-3"}
    assert decide(item, verify_mode="etag") == NEEDS_HEAD


def test_composite_and_full_object_checksums_of_other_algorithms_are_not_compared():
    item = {**SOURCE, **REPLICA, "s_ck": "SHA256:AAAA", "r_ck": "CRC64NVME:BBBB", "headed": True}
    item.update(s_enc="aws:kms", r_enc="aws:kms")
    verdict = decide(item, verify_mode="checksum")
    assert (verdict.status, verdict.verified_by) == (Status.COMPLETED, "size")


# ---- what replication rules make the monitor expect -----------------------------------------------


def rule(dest: str, **extra) -> dict:
    raw = {
        "ID": f"to-{dest}",
        "Priority": 1,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "Destination": {"Bucket": f"arn:aws:s3:::{dest}"},
        "DeleteMarkerReplication": {"Status": "Disabled"},
    }
    raw.update(extra)
    return raw


def topology(*rules: dict, regions: dict | None = None) -> Topology:
    return Topology(sources={"src": rules_from_configuration({"Rules": list(rules)})}, regions=regions or {})


def test_dsse_kms_objects_need_the_rules_sse_kms_criterion():
    kms = {"SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"}}}
    topo = topology(rule("plain"), rule("kms", **kms))
    out = {e.destination_bucket: e.out_of_scope for e in topo.expectations("src", "k", encryption="aws:kms:dsse")}
    assert out["plain"] and out["kms"] is None
    # SSE-S3 and SSE-C objects need no criterion
    for encryption in ("AES256", "SSE-C", None):
        assert [e.out_of_scope for e in topo.expectations("src", "k", encryption=encryption)] == [None, None]


def test_cross_account_destination_names_the_account_whose_read_role_heads_it():
    owner_override = {
        "Bucket": "arn:aws:s3:::backup",
        "Account": "222222222222",
        "AccessControlTranslation": {"Owner": "Destination"},
    }
    topo = topology(rule("backup", Destination=owner_override), rule("local"))
    assert topo.accounts == {"backup": "222222222222"}
    assert [e.destination_bucket for e in topo.expectations("src", "k")] == ["backup", "local"]


def test_same_region_replication_is_expected_like_cross_region():
    topo = Topology(
        sources={"src": rules_from_configuration({"Rules": [rule("same-region"), rule("other-region")]})},
        regions={"src": "eu-west-1", "same-region": "eu-west-1", "other-region": "us-east-1"},
    )
    found = {e.destination_bucket: e.destination_region for e in topo.expectations("src", "k")}
    assert found == {"same-region": "eu-west-1", "other-region": "us-east-1"}
    assert ("src", "same-region") in topo.pairs()


def test_a_rule_with_and_of_prefix_and_tags_never_expects_delete_markers():
    tagged = {
        "Filter": {"And": {"Prefix": "logs/", "Tags": [{"Key": "keep", "Value": "yes"}]}},
        "DeleteMarkerReplication": {"Status": "Enabled"},
    }
    topo = topology(rule("dst", **tagged))
    assert [e.destination_bucket for e in topo.expectations("src", "logs/a")] == ["dst"]
    assert topo.expectations("src", "other/a") == []
    assert topo.expectations("src", "logs/a", delete_marker=True) == []


def test_s3_throttling_backs_off_that_bucket_only(s3):
    from crrmon.evidence import Evidence, RateLimiter

    now = [0.0]
    evidence = Evidence(s3, RateLimiter(100, clock=lambda: now[0]), back_off_s=30)
    s3.stubber.add_client_error("head_object", service_error_code="SlowDown", http_status_code=503)
    with pytest.raises(Throttled):
        evidence.head(BUCKET, KEY, VERSION)
    with pytest.raises(Throttled):  # no request: the bucket's budget is empty for the back-off
        evidence.head(BUCKET, KEY, VERSION)
    assert evidence.requests == 1
    answer(s3, {"ContentLength": 1, "ETag": '"a"'}, {**EXPECTED, "Bucket": "other-bucket"})
    assert evidence.head("other-bucket", KEY, VERSION).exists
    now[0] += 31
    answer(s3, {"ContentLength": 1, "ETag": '"a"'})
    assert evidence.head(BUCKET, KEY, VERSION).size == 1
