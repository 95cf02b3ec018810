"""Verdicts from an item's evidence (crrmon.verify): pure logic, no AWS."""

import pytest

from crrmon.model import Status
from crrmon.store import Verdict
from crrmon.verify import NEEDS_HEAD, deadline_s, decide, multipart_parts

BASE = {"pk": "v1#k", "dest": "d", "src": "s", "first_seen": 1_000_000, "due": 1_900}
SOURCE = {"s_time": 1_000_000, "s_size": 10, "s_etag": "abc"}
REPLICA = {"r_time": 1_004_000, "r_size": 10, "r_etag": "abc"}


def item(*parts, **extra):
    merged = dict(BASE)
    for part in parts:
        merged.update(part)
    merged.update(extra)
    return merged


def test_nothing_to_decide_without_both_sides():
    assert decide(item(SOURCE), verify_mode="etag") is None
    assert decide(item(REPLICA), verify_mode="etag") is None


def test_equal_etags_complete_with_latency():
    verdict = decide(item(SOURCE, REPLICA), verify_mode="etag")
    assert verdict == Verdict(Status.COMPLETED, verified_by="etag", latency_ms=4000, missed_rpo=False)


def test_size_mode_never_reads_etags():
    verdict = decide(item(SOURCE, REPLICA, r_etag="zzz"), verify_mode="size")
    assert verdict.status is Status.COMPLETED and verdict.verified_by == "size"


def test_size_difference_is_a_mismatch_in_every_mode():
    for mode in ("size", "etag", "checksum"):
        verdict = decide(item(SOURCE, REPLICA, r_size=11), verify_mode=mode)
        assert verdict.status is Status.MISMATCH
        assert verdict.reason == "size differs: source 10 bytes, replica 11 bytes"


def test_differing_etags_with_unknown_encryption_ask_for_a_head():
    assert decide(item(SOURCE, REPLICA, r_etag="other"), verify_mode="etag") == NEEDS_HEAD


def test_differing_etags_on_plaintext_sides_are_a_mismatch():
    verdict = decide(item(SOURCE, REPLICA, r_etag="other", s_enc="none", r_enc="AES256"), verify_mode="etag")
    assert verdict.status is Status.MISMATCH


@pytest.mark.parametrize("encryption", ["aws:kms", "aws:kms:dsse"])
def test_kms_etags_differing_is_not_a_mismatch(encryption):
    verdict = decide(item(SOURCE, REPLICA, r_etag="other", s_enc=encryption, r_enc=encryption), verify_mode="etag")
    assert verdict.status is Status.COMPLETED and verdict.verified_by == "size"


def test_multipart_etags_with_other_part_counts_fall_back_to_size():
    verdict = decide(item(SOURCE, REPLICA, s_etag="a-3", r_etag="b-4"), verify_mode="etag")
    assert verdict.verified_by == "size"
    assert multipart_parts("a-3") == 3 and multipart_parts("abc") is None and multipart_parts("x-y") is None


def test_checksum_mode_heads_then_compares_full_object_checksums():
    both = item(SOURCE, REPLICA)
    assert decide(both, verify_mode="checksum") == NEEDS_HEAD
    same = decide({**both, "headed": True, "s_ck": "CRC64NVME:AA", "r_ck": "CRC64NVME:AA"}, verify_mode="checksum")
    assert same.verified_by == "checksum"
    other = decide({**both, "headed": True, "s_ck": "CRC64NVME:AA", "r_ck": "CRC64NVME:BB"}, verify_mode="checksum")
    assert other.status is Status.MISMATCH and "CRC64NVME" in other.reason
    # checksums of different algorithms cannot be compared
    mixed = decide({**both, "headed": True, "s_ck": "CRC32:AA", "r_ck": "CRC64NVME:BB"}, verify_mode="checksum")
    assert mixed.verified_by == "etag"


def test_failure_report_without_replica_fails_with_s3s_reason_once_s3_confirms():
    # A report is a message (it could be forged): S3's own word is asked first.
    assert decide(item(SOURCE, fail="DstPutObjectNotPermitted"), verify_mode="etag") == NEEDS_HEAD
    verdict = decide(item(SOURCE, fail="DstPutObjectNotPermitted", headed=True), verify_mode="etag")
    assert verdict.status is Status.FAILED and verdict.reason == "DstPutObjectNotPermitted"
    # a failure report alone (source event lost) is enough too
    assert decide(item(fail="SomeNewReason", headed=True), verify_mode="etag").reason == "SomeNewReason"


def test_observations_from_another_account_are_confirmed_by_s3():
    assert decide(item(SOURCE, REPLICA, xacct=True), verify_mode="etag") == NEEDS_HEAD
    assert decide(item(SOURCE, REPLICA, xacct=True, headed=True), verify_mode="etag").status is Status.COMPLETED


def test_replica_after_deadline_missed_rpo_by_s3s_own_times():
    late = decide(item(SOURCE, REPLICA, r_time=1_900_001), verify_mode="etag")
    assert late.missed_rpo and late.status is Status.COMPLETED
    # Marked OVERDUE at the deadline while the replica's event was on its way: S3 wrote it in time.
    in_time = decide(item(SOURCE, REPLICA, status="OVERDUE", missed_rpo=True), verify_mode="etag")
    assert in_time.status is Status.COMPLETED and not in_time.missed_rpo
    # The replica found by HEAD after the deadline, its time unknown: the OVERDUE stands.
    headed = {k: v for k, v in item(SOURCE, REPLICA, status="OVERDUE", headed=True).items() if k != "r_time"}
    assert decide(headed, verify_mode="etag").missed_rpo


def test_final_items_are_never_decided_again():
    assert decide(item(SOURCE, REPLICA, status="COMPLETED"), verify_mode="etag") is None


def test_delete_markers():
    assert decide(item(s_dm=True, s_time=1, r_dm=True, r_time=2), verify_mode="etag").verified_by == "delete-marker"
    assert decide(item(REPLICA, s_dm=True, s_time=1), verify_mode="etag").status is Status.MISMATCH


def test_out_of_scope_is_decided_at_once():
    verdict = decide(item(SOURCE, oos="SSE-KMS object"), verify_mode="etag")
    assert verdict == Verdict(Status.NOT_IN_SCOPE, reason="SSE-KMS object")


def test_deadline_adds_transfer_time_for_large_objects():
    assert deadline_s(1_000_000, 0, rpo_seconds=900, throughput_mbps=50) == 1900
    # 5 GB at 50 MB/s is 100 s more
    assert deadline_s(1_000_000, 5_000_000_000, rpo_seconds=900, throughput_mbps=50) == 2000
    assert deadline_s(1_000_500, None, rpo_seconds=2, throughput_mbps=50) == 1003


ENCRYPTIONS = ("none", "AES256", "aws:kms", "aws:kms:dsse", "SSE-C")
MD5 = ("none", "AES256")  # the ETag of a single-part object stays the MD5 of its data


@pytest.mark.parametrize("parts", [None, 3], ids=["single-part", "multipart"])
@pytest.mark.parametrize("source_encryption", ENCRYPTIONS)
@pytest.mark.parametrize("replica_encryption", ENCRYPTIONS)
def test_etags_are_compared_only_where_both_sides_keep_an_md5(source_encryption, replica_encryption, parts):
    suffix = f"-{parts}" if parts else ""
    evidence = item(
        SOURCE,
        REPLICA,
        s_etag=f"{'a' * 32}{suffix}",
        r_etag=f"{'b' * 32}{suffix}",
        s_enc=source_encryption,
        r_enc=replica_encryption,
        headed=True,
    )
    verdict = decide(evidence, verify_mode="etag")
    if source_encryption in MD5 and replica_encryption in MD5:
        assert verdict.status is Status.MISMATCH and "ETag differs" in verdict.reason
    else:  # another key, or no MD5 at all: ETags differ by design, the sizes decide
        assert (verdict.status, verdict.verified_by) == (Status.COMPLETED, "size")


def test_etags_of_other_part_counts_are_not_compared():
    evidence = item(SOURCE, REPLICA, s_etag="a" * 32 + "-3", r_etag="b" * 32 + "-4", s_enc="none", r_enc="none")
    assert decide(evidence, verify_mode="etag").verified_by == "size"


def test_a_replica_at_its_deadline_is_on_time_and_a_millisecond_later_is_late():
    on_time = decide(item(SOURCE, REPLICA, r_time=1_900_000), verify_mode="etag")
    late = decide(item(SOURCE, REPLICA, r_time=1_900_001), verify_mode="etag")
    assert (on_time.missed_rpo, late.missed_rpo) == (False, True)


# Tests below kill mutants `make mutate MODULES=verify` found alive (mutation/results.md).


def test_a_byte_over_whole_seconds_of_transfer_moves_the_deadline_a_second():
    # 5 TB + 1 byte at 100 MB/s: 50000 s and a little, so 50001 s (ceil), not 50000
    assert deadline_s(0, 5 * 10**12 + 1, rpo_seconds=0, throughput_mbps=100) == 50_001
    assert deadline_s(0, 5 * 10**12, rpo_seconds=0, throughput_mbps=100) == 50_000


def test_the_part_count_is_what_follows_the_last_dash():
    assert multipart_parts("a-b-3") == 3
    assert multipart_parts("a-3-b") is None


def test_a_replica_written_in_the_same_millisecond_has_zero_latency():
    verdict = decide(item(SOURCE, REPLICA, r_time=SOURCE["s_time"]), verify_mode="etag")
    assert verdict.latency_ms == 0
    # a replica stamped before its source (clocks) is not a negative latency either
    assert decide(item(SOURCE, REPLICA, r_time=SOURCE["s_time"] - 5), verify_mode="etag").latency_ms == 0


def test_a_confirmed_failure_of_an_overdue_item_missed_its_rpo():
    verdict = decide(item(SOURCE, fail="DstPutObjectNotPermitted", headed=True, status="OVERDUE"), verify_mode="etag")
    assert verdict == Verdict(Status.FAILED, reason="DstPutObjectNotPermitted", missed_rpo=True)
    on_time = decide(item(SOURCE, fail="DstPutObjectNotPermitted", headed=True), verify_mode="etag")
    assert on_time.missed_rpo is False


def test_delete_marker_verdicts_in_full():
    both = decide(item(s_dm=True, s_time=1, r_dm=True, r_time=2), verify_mode="etag")
    assert (both.status, both.verified_by, both.latency_ms) == (Status.COMPLETED, "delete-marker", 1)
    one = decide(item(REPLICA, s_dm=True, s_time=1), verify_mode="etag")
    assert (one.status, one.reason) == (Status.MISMATCH, "delete marker on one side only")


def test_checksum_verdicts_in_full():
    both = item(SOURCE, REPLICA, headed=True)
    same = decide({**both, "s_ck": "CRC32:AA==", "r_ck": "CRC32:AA=="}, verify_mode="checksum")
    assert (same.status, same.verified_by) == (Status.COMPLETED, "checksum")
    other = decide({**both, "s_ck": "CRC32:AA==", "r_ck": "CRC32:BB=="}, verify_mode="checksum")
    assert (other.status, other.reason) == (Status.MISMATCH, "CRC32 checksum differs")


@pytest.mark.parametrize("sizeless", ["s_size", "r_size"])
def test_a_side_without_a_size_is_complete_by_presence_once_headed(sizeless):
    # An SSE-C version's HEAD says it exists and no more; the other side's size is known.
    evidence = item(SOURCE, REPLICA, r_etag="zzz")
    del evidence[sizeless]
    assert decide(evidence, verify_mode="etag") == NEEDS_HEAD
    verdict = decide({**evidence, "headed": True}, verify_mode="etag")
    assert (verdict.status, verdict.verified_by) == (Status.COMPLETED, "presence")


@pytest.mark.parametrize("etagless", ["s_etag", "r_etag"])
def test_with_one_etag_missing_the_sizes_decide_without_a_head(etagless):
    evidence = item(SOURCE, REPLICA)
    del evidence[etagless]
    verdict = decide(evidence, verify_mode="etag")
    assert (verdict.status, verdict.verified_by) == (Status.COMPLETED, "size")


def test_other_part_counts_complete_by_size():
    verdict = decide(item(SOURCE, REPLICA, s_etag="a-3", r_etag="b-4"), verify_mode="etag")
    assert (verdict.status, verdict.verified_by) == (Status.COMPLETED, "size")


@pytest.mark.parametrize("known", [{"s_enc": "AES256"}, {"r_enc": "AES256"}])
def test_differing_etags_with_one_encryption_unknown_ask_for_a_head_then_trust_the_size(known):
    evidence = item(SOURCE, REPLICA, r_etag="zzz", **known)
    assert decide(evidence, verify_mode="etag") == NEEDS_HEAD
    verdict = decide({**evidence, "headed": True}, verify_mode="etag")
    assert (verdict.status, verdict.verified_by) == (Status.COMPLETED, "size")


def test_the_etag_mismatch_says_why():
    verdict = decide(item(SOURCE, REPLICA, r_etag="zzz", s_enc="none", r_enc="AES256"), verify_mode="etag")
    assert (verdict.status, verdict.reason) == (Status.MISMATCH, "ETag differs (both sides store an MD5 ETag)")
