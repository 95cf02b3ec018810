"""What the sweeper decides for one item at its deadline (crrmon.deadline), rule by rule, on the template's
table on moto (in-process `mock_aws`): the verdict written (status, reason, how verified, missed RPO, the
evidence kept), when the item is looked at again, which HEADs were made and what was counted.

moto's S3 keeps no replication status and has no SSE-C, so S3's answers are a hand-written `Evidence`
stand-in giving the `VersionFacts` (or the refusal) a test sets per bucket. Every rule here is one of
docs/s3-semantics.md.
"""

from __future__ import annotations

from unittest import mock

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from crrmon import pair_index
from crrmon.config import Config
from crrmon.deadline import NOT_IN_SCOPE_REASON, Deadlines
from crrmon.evidence import Refused, VersionFacts
from crrmon.metrics import Counters
from crrmon.store import Store
from crrmon.topology import Rule, Topology, TopologyCache

NOW = 1_700_000_000.0
SRC, DST, OTHER_SRC = "src", "dst", "other"
PK = "v1#k"
FIRST_SEEN_MS = int((NOW - 100) * 1000)
GIVE_UP = 3600
GIVE_UP_AT = FIRST_SEEN_MS / 1000 + GIVE_UP
PASSED = int(NOW) - 1  # a deadline that has passed
MISSING = VersionFacts(exists=False)
SSE_C = VersionFacts(exists=True, encryption="SSE-C", readable=False)


def facts(status: str | None = None, *, size: int = 5, etag: str = "e1", **more) -> VersionFacts:
    return VersionFacts(exists=True, replication_status=status, size=size, etag=etag, encryption="none", **more)


class Heads:
    """Evidence stand-in: S3's answer per bucket (a `VersionFacts` or an exception), and the HEADs asked."""

    def __init__(self):
        self.answers: dict[str, VersionFacts | Exception] = {}
        self.asked: list[str] = []

    def head(self, bucket, key, version_id):
        assert (version_id, key) == ("v1", "k")
        self.asked.append(bucket)
        answer = self.answers.get(bucket, MISSING)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Env:
    def __init__(self, ddb, **config):
        settings = {"table_name": "t", "verify_mode": "size", "rpo_seconds": 60, "give_up_seconds": GIVE_UP}
        self.config = Config(**{**settings, **config})
        self.store = Store(ddb, "t")
        self.heads = Heads()
        self.counters = Counters()
        self.now = NOW
        self.topology = Topology(
            sources={SRC: [Rule("a", DST)], OTHER_SRC: [Rule("b", DST)]},
            regions={SRC: "us-east-1", OTHER_SRC: "eu-west-1", DST: "us-west-2"},
        )
        self.deadlines = Deadlines(
            config=self.config,
            store=self.store,
            evidence=self.heads,
            topology=TopologyCache(lambda: self.topology, max_age=300),
            counters=self.counters,
            clock=lambda: self.now,
        )

    def seed(self, dest: str = DST, *, due: int = PASSED, first_seen_ms: int = FIRST_SEEN_MS, **fields) -> dict:
        self.store.record_observation(
            PK, dest, now_ms=first_seen_ms, due_s=due, expires_s=int(NOW) + 9_999, fields=fields
        )
        return self.store.get(PK, dest)

    def check(self, item: dict, siblings: list[dict] = ()) -> int | None:
        return self.deadlines.check_item(item, siblings)

    def item(self, dest: str = DST) -> dict:
        return self.store.get(PK, dest)

    def verdict(self, dest: str = DST) -> tuple:
        item = self.item(dest)
        return item.get("status"), item.get("reason"), item.get("verified_by"), item.get("missed_rpo")


@pytest.fixture
def env(ddb):
    return Env(ddb)


SOURCE = {"src": SRC, "s_size": 5, "s_time": 1_000, "s_etag": "e1"}
LATE = int(NOW) + 60  # when a late item is looked at again: now + its RPO


def assert_overdue(env: Env, returned: int | None, *, again: int = LATE) -> None:
    item = env.item()
    assert (item["status"], item["missed_rpo"], item["ovd_since"]) == ("OVERDUE", True, int(env.now * 1000))
    assert item["ovd_pair"] == pair_index.key_value(f"{item.get('src') or 'unknown'}>{DST}", PK, DST)
    assert returned == again


# ---- settled by the events, or not due yet ----------------------------------------------------------------------


def test_an_item_the_events_settle_is_decided_without_a_head(env):
    item = env.seed(**SOURCE, r_size=5, r_time=2_500)
    assert env.check(item) is None
    stored = env.item()
    assert (stored["status"], stored["verified_by"], stored["latency_ms"], stored["missed_rpo"]) == (
        "COMPLETED",
        "size",
        1_500,
        False,
    )
    assert (stored["decided_at"], stored["expires_at"]) == (int(NOW * 1000), int(NOW) + 24 * 3600)
    assert env.heads.asked == []


def test_before_its_deadline_an_item_waits_for_it(env):
    item = env.seed(**SOURCE, due=int(NOW) + 30)
    assert env.check(item) == int(NOW) + 30
    assert env.heads.asked == [] and "status" not in env.item()


def test_at_exactly_its_deadline_an_item_is_looked_at(env):
    env.heads.answers[SRC] = facts("PENDING")
    item = env.seed(**SOURCE, due=int(NOW))
    assert_overdue(env, env.check(item))
    assert env.heads.asked == [SRC, DST]


# ---- a failure report -------------------------------------------------------------------------------------------


def test_a_failure_report_confirmed_by_the_sources_status_is_failed_at_once(env):
    env.heads.answers[SRC] = facts("FAILED")
    item = env.seed(**SOURCE, fail="AssumeRoleNotPermitted", due=int(NOW) + 30)
    assert env.check(item) is None
    assert env.verdict() == ("FAILED", "AssumeRoleNotPermitted", None, False)
    assert env.item()["fail_pair"] == pair_index.key_value(f"{SRC}>{DST}", PK, DST)
    assert env.heads.asked == [SRC, DST]


def test_a_confirmed_failure_of_an_overdue_item_missed_its_rpo(env):
    env.heads.answers[SRC] = facts("FAILED")
    item = env.seed(**SOURCE, fail="DstBucketNotFound", status="OVERDUE")
    env.check(item)
    assert env.verdict() == ("FAILED", "DstBucketNotFound", None, True)


def test_a_failure_report_with_the_replica_not_readable_is_still_failed(env):
    env.heads.answers[SRC] = facts("FAILED")
    env.heads.answers[DST] = Refused(DST, "403")
    env.check(env.seed(**SOURCE, fail="DstBucketNotFound"))
    assert env.verdict()[0] == "FAILED"


def test_a_failure_report_for_a_destination_that_has_its_replica_is_anothers(env):
    env.heads.answers[SRC] = facts("FAILED")
    env.heads.answers[DST] = facts("REPLICA")
    assert env.check(env.seed(**SOURCE, fail="DstBucketNotFound")) is None
    assert env.verdict() == ("COMPLETED", None, "size", False)
    stored = env.item()
    assert (stored["r_size"], stored["r_etag"], stored["r_enc"], stored["s_enc"]) == (5, "e1", "none", "none")


def test_an_unconfirmed_failure_report_waits_for_the_deadline(env):
    env.heads.answers[SRC] = facts("PENDING")
    item = env.seed(**SOURCE, fail="forged", due=int(NOW) + 30)
    assert env.check(item) == int(NOW) + 30
    assert env.heads.asked == [SRC] and "status" not in env.item()


def test_an_unconfirmed_failure_report_at_exactly_its_deadline_is_looked_at(env):
    env.heads.answers[SRC] = facts("PENDING")
    assert_overdue(env, env.check(env.seed(**SOURCE, fail="forged", due=int(NOW))))


@pytest.mark.parametrize(
    "source, replica, status",
    [
        (facts("COMPLETED"), facts("REPLICA"), "COMPLETED"),  # the report was another destination's, or forged
        (facts("PENDING"), MISSING, "OVERDUE"),
        (facts("COMPLETED"), MISSING, "FAILED"),  # S3 says every replica is there: this one is not
        (facts(None), MISSING, "NOT_IN_SCOPE"),
    ],
)
def test_a_failure_report_whose_source_event_was_lost_is_decided_by_the_sources_status(env, source, replica, status):
    env.heads.answers[SRC] = source
    env.heads.answers[DST] = replica
    env.check(env.seed(src=SRC, fail="DstPutObjectNotPermitted"))
    assert env.item()["status"] == status
    assert env.heads.asked == [SRC, DST] if status != "NOT_IN_SCOPE" else [SRC]


def test_a_failure_report_in_two_way_replication_is_judged_with_the_versions_other_sighting(env):
    _, mirror = two_way(env, mine={"s_time": 3_000}, theirs={"s_time": 1_000})
    env.store.record_observation(PK, DST, now_ms=0, due_s=PASSED, expires_s=int(NOW) + 99, fields={"fail": "x"})
    env.heads.answers[SRC] = facts("PENDING")
    env.check(env.item(), [env.item(), mirror])
    assert env.verdict()[0] == "NOT_IN_SCOPE"  # the later sighting: a replica, not a source version


def test_an_unconfirmed_failure_report_at_the_deadline_is_late_with_one_source_head(env):
    env.heads.answers[SRC] = facts("PENDING")
    assert_overdue(env, env.check(env.seed(**SOURCE, fail="forged")))
    assert env.heads.asked == [SRC, DST]


def test_a_failure_report_with_the_source_not_readable_asks_the_replica(env):
    env.heads.answers[SRC] = Refused(SRC, "403")
    env.heads.answers[DST] = facts("REPLICA")
    assert env.check(env.seed(**SOURCE, fail="forged")) is None
    assert env.verdict() == ("COMPLETED", None, "size", False)
    assert env.heads.asked == [SRC, DST]


def test_a_failure_report_for_an_sse_c_source_is_not_confirmed_by_its_status(env):
    env.heads.answers[SRC] = VersionFacts(exists=True, replication_status="FAILED", encryption="SSE-C", readable=False)
    assert_overdue(env, env.check(env.seed(**SOURCE, fail="forged")))


# ---- S3 asked at the deadline -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, replica, verdict",
    [
        ("COMPLETED", facts("REPLICA"), ("COMPLETED", None, "size", True)),
        ("FAILED", facts("REPLICA"), ("COMPLETED", None, "size", True)),
        ("COMPLETED", MISSING, ("FAILED", "source reports COMPLETED but the replica version is missing", None, True)),
        ("FAILED", MISSING, ("FAILED", "replication status FAILED", None, True)),
        (
            "COMPLETED",
            Refused(DST, "403"),
            (
                "COMPLETED",
                "replica not readable (HTTP 403); the source's replication status is COMPLETED",
                "source-status",
                False,
            ),
        ),
    ],
)
def test_a_settled_replication_status_decides_with_the_replica(env, status, replica, verdict):
    env.heads.answers[SRC] = facts(status)
    env.heads.answers[DST] = replica
    assert env.check(env.seed(**SOURCE, status="OVERDUE" if verdict[2] == "size" else None)) is None
    assert env.verdict() == verdict
    assert env.heads.asked == [SRC, DST]


def test_a_failed_status_with_the_replica_not_readable_is_late(env, caplog):
    env.heads.answers[SRC] = facts("FAILED")
    env.heads.answers[DST] = Refused(DST, "403")
    assert_overdue(env, env.check(env.seed(**SOURCE)))
    assert env.counters.total("HeadsRefused", (("Bucket", DST),)) == 1
    warned = [(r.getMessage(), r.__dict__.get("bucket")) for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [("HEAD refused: the monitor may not read this bucket's versions", DST)]
    env.now = GIVE_UP_AT
    env.check(env.item())
    assert env.verdict()[1] == f"gave up after {GIVE_UP}s: replication status FAILED; replica not readable (HTTP 403)"


def test_a_missing_replica_keeps_the_reason_s3_reported(env):
    env.heads.answers[SRC] = facts("COMPLETED")
    env.check(env.seed(**SOURCE, fail="DstObjectHardDeleted"))
    assert env.verdict() == ("FAILED", "DstObjectHardDeleted", None, True)


def test_a_found_replica_fills_in_only_what_the_item_lacks(env):
    env.heads.answers[SRC] = facts("COMPLETED", size=5, etag="from-head")
    env.heads.answers[DST] = facts("REPLICA", size=5, etag="e1", checksum="CRC64NVME:AAAA")
    env.check(env.seed(**SOURCE))
    stored = env.item()
    assert (stored["s_etag"], stored["r_etag"], stored["r_ck"], stored["s_enc"]) == (
        "e1",
        "e1",
        "CRC64NVME:AAAA",
        "none",
    )


@pytest.mark.parametrize("status", ["PENDING", "PROCESSING"])
def test_a_replication_still_under_way_is_late_while_its_replica_is_missing(env, status):
    env.heads.answers[SRC] = facts(status)
    assert_overdue(env, env.check(env.seed(**SOURCE)))
    assert env.heads.asked == [SRC, DST]


def test_a_replication_still_under_way_with_its_replica_there_is_decided(env):
    env.heads.answers[SRC] = facts("PENDING")  # another destination's replica is still to come
    env.heads.answers[DST] = facts("REPLICA", size=6)
    assert env.check(env.seed(**SOURCE)) is None
    assert env.verdict() == ("MISMATCH", "size differs: source 5 bytes, replica 6 bytes", None, False)
    assert env.item()["s_enc"] == "none"  # the source's HEAD is evidence too


def test_a_replication_still_under_way_with_the_replica_not_readable_is_late(env):
    env.heads.answers[SRC] = facts("PENDING")
    env.heads.answers[DST] = Refused(DST, "403")
    assert_overdue(env, env.check(env.seed(**SOURCE)))
    env.now = GIVE_UP_AT
    env.check(env.item())
    assert env.verdict()[1] == f"gave up after {GIVE_UP}s: replication status PENDING; replica not readable (HTTP 403)"


@pytest.mark.parametrize(
    "error, code",
    [
        (ClientError({"Error": {"Code": "SlowDown"}}, "HeadObject"), "SlowDown"),
        (ClientError({"Error": {}}, "HeadObject"), "error"),
        (ClientError({}, "HeadObject"), "error"),
        (EndpointConnectionError(endpoint_url="https://dst.s3.amazonaws.com"), "EndpointConnectionError"),
    ],
)
def test_an_unreachable_destination_leaves_the_item_late_and_is_counted(env, error, code):
    env.heads.answers[SRC] = facts("PENDING")
    env.heads.answers[DST] = error
    assert_overdue(env, env.check(env.seed(**SOURCE)))
    assert env.counters.total("ReplicaHeadErrors", (("SourceBucket", SRC), ("DestinationBucket", DST))) == 1
    env.now = GIVE_UP_AT
    env.check(env.item())
    assert env.verdict()[1] == f"gave up after {GIVE_UP}s: replication status PENDING; replica not readable: {code}"


@pytest.mark.parametrize(
    "status, reason",
    [(None, NOT_IN_SCOPE_REASON), ("REPLICA", "the version is itself a replica")],
)
def test_a_source_version_replication_does_not_cover_is_not_in_scope(env, status, reason):
    env.heads.answers[SRC] = facts(status)
    assert env.check(env.seed(**SOURCE)) is None
    assert env.verdict() == ("NOT_IN_SCOPE", reason, None, False)
    assert env.heads.asked == [SRC]


# ---- the source version gone, or not readable -------------------------------------------------------------------


def test_a_source_deleted_before_it_replicated(env):
    env.check(env.seed(**SOURCE))
    assert env.verdict() == ("SOURCE_DELETED", "source version deleted before it replicated", None, False)
    assert env.heads.asked == [SRC, DST]


def test_a_source_gone_whose_replica_is_there_is_decided_with_it(env):
    env.heads.answers[DST] = facts("REPLICA")
    env.check(env.seed(**SOURCE))
    assert env.verdict() == ("COMPLETED", None, "size", False)


def test_a_source_gone_with_its_replica_not_readable_is_late(env):
    env.heads.answers[DST] = Refused(DST, "403")
    env.now = GIVE_UP_AT
    env.check(env.seed(**SOURCE))
    assert env.verdict()[1] == f"gave up after {GIVE_UP}s: source version gone; replica not readable (HTTP 403)"


@pytest.mark.parametrize(
    "source, why",
    [(Refused(SRC, "403"), "source not readable (HTTP 403)"), (SSE_C, "source is SSE-C (HEAD says no more)")],
)
@pytest.mark.parametrize(
    "replica, then",
    [(Refused(DST, "403"), "; replica not readable (HTTP 403)"), (MISSING, "; replica missing")],
)
def test_a_source_that_will_not_say_more_leaves_the_replica_to_answer(env, source, why, replica, then):
    env.heads.answers[SRC] = source
    env.heads.answers[DST] = replica
    assert_overdue(env, env.check(env.seed(**SOURCE)))
    env.now = GIVE_UP_AT
    env.check(env.item())
    assert env.verdict()[1] == f"gave up after {GIVE_UP}s: {why}{then}"


def test_an_sse_c_source_with_its_sse_c_replica_there_is_complete_by_presence(env):
    env.heads.answers[SRC] = SSE_C
    env.heads.answers[DST] = SSE_C
    env.check(env.seed(src=SRC, s_time=1_000, s_etag="e1"))  # an SSE-C event carries a size: not here
    assert env.verdict() == ("COMPLETED", None, "presence", False)
    assert (env.item()["s_enc"], env.item()["r_enc"]) == ("SSE-C", "SSE-C")


# ---- delete markers ---------------------------------------------------------------------------------------------


def test_a_delete_marker_replicated_is_complete(env):
    env.heads.answers[DST] = VersionFacts(exists=True, delete_marker=True)
    env.check(env.seed(src=SRC, s_dm=True, s_time=1_000))
    assert env.verdict() == ("COMPLETED", None, "delete-marker", False)
    assert env.heads.asked == [DST]  # the source's marker is not asked for: a HEAD of a marker says 405


@pytest.mark.parametrize(
    "replica, why",
    [
        (Refused(DST, "403"), "delete marker: replica not readable (HTTP 403)"),
        (MISSING, "delete marker not replicated yet"),
        (facts("REPLICA"), "delete marker not replicated yet"),
    ],
)
def test_a_delete_marker_not_found_in_the_destination_is_late(env, replica, why):
    env.heads.answers[DST] = replica
    assert_overdue(env, env.check(env.seed(src=SRC, s_dm=True, s_time=1_000)))
    env.now = GIVE_UP_AT
    env.check(env.item())
    assert env.verdict()[1] == f"gave up after {GIVE_UP}s: {why}"


# ---- a replica whose source event never came --------------------------------------------------------------------

REPLICA_ONLY = {"r_size": 5, "r_time": 2_000, "r_etag": "e1"}


def test_the_source_of_a_replica_is_found_among_the_destinations_sources(env):
    env.heads.answers[OTHER_SRC] = facts("COMPLETED")
    assert env.check(env.seed(**REPLICA_ONLY)) is None
    stored = env.item()
    assert env.verdict() == ("COMPLETED", None, "size", False)
    assert (stored["src"], stored["sreg"], stored["s_size"]) == (OTHER_SRC, "eu-west-1", 5)
    assert env.heads.asked == [OTHER_SRC]  # sources in name order; the first that has it ends the search


def test_a_replica_whose_known_source_has_the_version_is_decided(env):
    env.heads.answers[SRC] = facts("COMPLETED", size=4)
    env.check(env.seed(src=SRC, **REPLICA_ONLY))
    assert env.verdict()[0:2] == ("MISMATCH", "size differs: source 4 bytes, replica 5 bytes")
    assert env.heads.asked == [SRC]


def test_a_source_that_refuses_leaves_the_replica_late(env):
    env.heads.answers[OTHER_SRC] = Refused(OTHER_SRC, "403")
    assert_overdue(env, env.check(env.seed(**REPLICA_ONLY)))
    assert env.heads.asked == [OTHER_SRC, SRC]
    assert env.counters.total("HeadsRefused", (("Bucket", OTHER_SRC),)) == 1
    assert env.item()["ovd_pair"] == pair_index.key_value(f"unknown>{DST}", PK, DST)
    env.now = GIVE_UP_AT
    env.check(env.item())
    assert env.verdict()[1] == f"gave up after {GIVE_UP}s: source not readable (HTTP 403)"
    assert env.item()["fail_pair"] == pair_index.key_value(f"unknown>{DST}", PK, DST)


def test_a_failure_report_whose_source_version_is_gone_is_late(env):
    env.now = GIVE_UP_AT
    env.check(env.seed(src=SRC, fail="DstBucketNotFound"))  # the source's own event was lost
    assert env.verdict()[1] == f"gave up after {GIVE_UP}s: source version not found; S3 reported DstBucketNotFound"
    assert env.heads.asked == [SRC]  # the source's HEAD made to confirm the report is not made again


@pytest.mark.parametrize(
    "replica, verdict",
    [
        (
            facts("REPLICA"),
            ("COMPLETED", "source version no longer exists; replica present", "replica", False),
        ),
        (
            # replica modification sync: a replica reports its own replication's status
            facts("COMPLETED"),
            ("COMPLETED", "source version no longer exists; replica present", "replica", False),
        ),
        (
            MISSING,
            ("NOT_IN_SCOPE", "no source holds this version and it is gone from the destination", None, False),
        ),
        (
            VersionFacts(exists=True, delete_marker=True),
            (
                "NOT_IN_SCOPE",
                "a delete marker made in the destination itself: no source holds this version",
                None,
                False,
            ),
        ),
        (
            SSE_C,
            (
                "NOT_IN_SCOPE",
                "no source holds this version; the destination's is SSE-C: whether replication made it is unknown",
                None,
                False,
            ),
        ),
        (
            facts(None),
            (
                "NOT_IN_SCOPE",
                "written into the destination directly: not a replica, no source holds this version",
                None,
                False,
            ),
        ),
    ],
)
def test_a_destination_version_no_source_holds_is_judged_by_its_own_status(env, replica, verdict):
    env.heads.answers[DST] = replica
    assert env.check(env.seed(**REPLICA_ONLY)) is None
    assert env.verdict() == verdict
    assert env.heads.asked == [OTHER_SRC, SRC, DST]


def test_in_a_bucket_that_is_a_source_too_a_replication_status_is_its_own(env):
    env.topology = Topology(sources={SRC: [Rule("a", DST)], DST: [Rule("b", SRC)]}, regions={})
    env.heads.answers[DST] = facts("COMPLETED")  # a version written in DST and replicated out of it
    env.check(env.seed(**REPLICA_ONLY))
    assert env.verdict()[0:2] == (
        "NOT_IN_SCOPE",
        "written into the destination directly: not a replica, no source holds this version",
    )


def test_a_replica_in_a_bucket_that_is_a_source_too_is_a_replica(env):
    env.topology = Topology(sources={SRC: [Rule("a", DST)], DST: [Rule("b", SRC)]}, regions={})
    env.heads.answers[DST] = facts("REPLICA")
    env.check(env.seed(**REPLICA_ONLY))
    assert env.verdict() == ("COMPLETED", "source version no longer exists; replica present", "replica", False)


def test_a_destination_version_that_is_not_readable_is_late(env):
    env.heads.answers[DST] = Refused(DST, "403")
    env.now = GIVE_UP_AT
    env.check(env.seed(**REPLICA_ONLY))
    assert env.verdict()[1] == (
        f"gave up after {GIVE_UP}s: no source version found; the destination version is not readable (HTTP 403)"
    )


# ---- two-way replication ----------------------------------------------------------------------------------------


def two_way(env: Env, *, mine: dict, theirs: dict) -> tuple[dict, dict]:
    """The version seen as a source in DST (item for destination SRC) and in SRC (item for DST)."""
    env.topology = Topology(sources={SRC: [Rule("a", DST)], DST: [Rule("b", SRC)]}, regions={})
    item = env.seed(DST, src=SRC, two_way=True, s_size=5, s_etag="e1", **mine)
    mirror = env.seed(SRC, src=DST, two_way=True, s_size=5, s_etag="e1", **theirs)
    return item, mirror


def test_in_two_way_replication_the_earlier_sighting_is_the_original(env):
    item, mirror = two_way(env, mine={"s_time": 1_000}, theirs={"s_time": 3_000})
    assert env.check(item, [item, mirror]) is None
    stored = env.item()
    assert (stored["status"], stored["verified_by"], stored["latency_ms"]) == ("COMPLETED", "size", 2_000)
    assert (stored["r_time"], stored["r_size"], stored["r_etag"]) == (3_000, 5, "e1")
    assert env.heads.asked == []


def test_in_two_way_replication_the_later_sighting_is_a_replica(env):
    item, mirror = two_way(env, mine={"s_time": 3_000}, theirs={"s_time": 1_000})
    assert env.check(item, [item, mirror]) is None
    assert env.verdict() == (
        "NOT_IN_SCOPE",
        f"replica of the version written in {DST} (two-way replication), not a new source version",
        None,
        False,
    )


def test_in_two_way_replication_a_tie_in_time_goes_to_the_first_heard_of(ddb):
    env = Env(ddb)
    env.topology = Topology(sources={SRC: [Rule("a", DST)], DST: [Rule("b", SRC)]}, regions={})
    item = env.seed(DST, src=SRC, two_way=True, s_size=5, s_time=1_000, first_seen_ms=FIRST_SEEN_MS + 5)
    mirror = env.seed(SRC, src=DST, two_way=True, s_size=5, s_time=1_000, first_seen_ms=FIRST_SEEN_MS)
    env.check(item, [mirror])
    assert env.verdict()[0] == "NOT_IN_SCOPE"
    env.check(mirror, [item])
    assert env.verdict(SRC)[0] == "COMPLETED"


def test_in_two_way_replication_a_full_tie_goes_by_bucket_name(env):
    item, mirror = two_way(env, mine={"s_time": 1_000}, theirs={"s_time": 1_000})
    env.check(mirror, [item])  # seen in "src", which sorts after "dst"
    assert env.verdict(SRC)[0] == "NOT_IN_SCOPE"
    env.check(item, [mirror])
    assert env.verdict(DST)[0] == "COMPLETED"


def test_in_two_way_replication_the_original_that_needs_heads_gets_them(ddb):
    env = Env(ddb, verify_mode="checksum")
    item, mirror = two_way(env, mine={"s_time": 1_000}, theirs={"s_time": 3_000})
    env.heads.answers[SRC] = facts("COMPLETED", checksum="CRC32:AAAA")
    env.heads.answers[DST] = facts("REPLICA", checksum="CRC32:AAAA")
    env.check(item, [mirror])
    assert env.verdict() == ("COMPLETED", None, "checksum", False)
    assert env.heads.asked == [SRC, DST]


def test_in_two_way_replication_the_replicas_encryption_and_delete_marker_come_from_the_other_sighting(ddb):
    env = Env(ddb, verify_mode="etag")
    item, mirror = two_way(env, mine={"s_time": 1_000, "s_enc": "AES256"}, theirs={"s_time": 3_000, "s_enc": "AES256"})
    env.store.record_observation(PK, SRC, now_ms=0, due_s=0, expires_s=0, fields={})
    mirror = {**mirror, "s_etag": "other"}
    env.check(item, [mirror])
    assert env.verdict() == ("MISMATCH", "ETag differs (both sides store an MD5 ETag)", None, False)
    assert (env.item()["r_enc"], env.heads.asked) == ("AES256", [])


def test_in_two_way_replication_a_delete_marker_seen_in_both_buckets_is_replicated(env):
    env.topology = Topology(sources={SRC: [Rule("a", DST)], DST: [Rule("b", SRC)]}, regions={})
    item = env.seed(DST, src=SRC, two_way=True, s_dm=True, s_time=1_000)
    mirror = env.seed(SRC, src=DST, two_way=True, s_dm=True, s_time=2_000)
    env.check(item, [mirror])
    assert env.verdict() == ("COMPLETED", None, "delete-marker", False)


def test_a_sibling_that_is_not_the_mirror_is_not_taken_for_it(env):
    item, _ = two_way(env, mine={"s_time": 1_000}, theirs={"s_time": 3_000})
    others = [
        {"dest": SRC, "src": "elsewhere", "s_size": 5},  # another source bucket
        {"dest": "elsewhere", "src": DST, "s_size": 5},  # another destination
        {"dest": SRC, "src": DST},  # not seen as a source there
    ]
    env.heads.answers[SRC] = facts("PENDING")
    assert_overdue(env_for(env, DST), env.check(item, others))


def env_for(env: Env, dest: str) -> Env:
    """`env` whose checks read the item of `dest`."""
    env.item = lambda d=dest: env.store.get(PK, d)  # type: ignore[method-assign]
    return env


# ---- HEADs that settle what the events could not ----------------------------------------------------------------


def test_checksum_mode_asks_both_sides_and_decides_by_checksum(ddb):
    env = Env(ddb, verify_mode="checksum")
    env.heads.answers[SRC] = facts("COMPLETED", checksum="CRC32:AAAA")
    env.heads.answers[DST] = facts("REPLICA", checksum="CRC32:BBBB")
    assert env.check(env.seed(**SOURCE, r_size=5, r_time=2_000, r_etag="e1")) is None
    assert env.verdict() == ("MISMATCH", "CRC32 checksum differs", None, False)
    assert (env.item()["s_ck"], env.item()["r_ck"]) == ("CRC32:AAAA", "CRC32:BBBB")


def test_checksum_mode_with_a_side_not_readable_falls_back_to_the_etags(ddb):
    env = Env(ddb, verify_mode="checksum")
    env.heads.answers[SRC] = facts("COMPLETED", checksum="CRC32:AAAA")
    env.heads.answers[DST] = Refused(DST, "403")
    env.check(env.seed(**SOURCE, r_size=5, r_time=2_000, r_etag="e1"))
    assert env.verdict() == ("COMPLETED", None, "etag", False)


def test_a_claim_s3_denies_with_the_other_side_not_readable_is_late(env):
    env.heads.answers[SRC] = Refused(SRC, "403")  # and the replica another account's message claimed is not there
    env.now = GIVE_UP_AT
    env.check(env.seed(**SOURCE, r_size=5, r_time=2_000, xacct=True))
    assert env.verdict()[1] == f"gave up after {GIVE_UP}s: a version is not readable (HTTP 403)"


def test_an_observation_from_another_account_that_s3_does_not_confirm_is_late(env):
    env.heads.answers[SRC] = facts("COMPLETED")  # the replica the message claimed is not there
    env.now = GIVE_UP_AT
    env.check(env.seed(**SOURCE, r_size=5, r_time=2_000, xacct=True))
    assert env.verdict()[1] == f"gave up after {GIVE_UP}s: replica not found"
    assert "r_size" in env.item()  # the claim stays on record; the verdict did not rest on it


def test_an_observation_from_another_account_confirmed_by_s3_is_decided(env):
    env.heads.answers[SRC] = facts("COMPLETED")
    env.heads.answers[DST] = facts("REPLICA")
    env.check(env.seed(**SOURCE, r_size=5, r_time=2_000, xacct=True))
    assert env.verdict() == ("COMPLETED", None, "size", False)


def test_a_claim_from_another_account_is_not_taken_on_its_word_where_s3_refuses(env):
    env.heads.answers[SRC] = facts("COMPLETED")
    env.heads.answers[DST] = Refused(DST, "403")
    assert_overdue(env, env.check(env.seed(**SOURCE, r_size=5, r_time=2_000, xacct=True)))
    assert env.heads.asked == [SRC, DST]


@pytest.mark.parametrize("replica, status", [(MISSING, "OVERDUE"), (facts("REPLICA"), "COMPLETED")])
def test_a_replica_claimed_from_another_account_without_its_source_event_is_confirmed(env, replica, status):
    env.heads.answers[SRC] = facts("COMPLETED")
    env.heads.answers[DST] = replica
    env.check(env.seed(src=SRC, **REPLICA_ONLY, xacct=True))
    assert env.item()["status"] == status
    assert env.heads.asked == [SRC, DST]


def test_a_claim_from_another_account_is_not_taken_on_its_word_where_s3_refuses_the_source(env):
    env.heads.answers[SRC] = Refused(SRC, "403")
    env.heads.answers[DST] = facts("REPLICA")
    assert_overdue(env, env.check(env.seed(**SOURCE, r_size=5, r_time=2_000, xacct=True)))


def test_a_failure_report_with_a_claimed_replica_is_failed_only_on_the_sources_status(env):
    claim = {**SOURCE, "r_size": 5, "r_time": 2_000, "xacct": True, "fail": "DstPutObjectNotPermitted"}
    env.heads.answers[SRC] = facts("PENDING")  # S3 does not say FAILED
    assert_overdue(env, env.check(env.seed(**claim)))
    env.store.dynamodb.delete_item(TableName="t", Key={"pk": {"S": PK}, "dest": {"S": DST}})
    env.heads.answers[SRC] = facts("FAILED")
    env.heads.answers[DST] = Refused(DST, "403")
    env.check(env.seed(**claim))
    assert env.verdict() == ("FAILED", "DstPutObjectNotPermitted", None, False)


def test_a_claimed_replica_s3_does_not_have_with_a_failure_s3_confirms_is_failed(env):
    env.heads.answers[SRC] = facts("FAILED")
    env.check(env.seed(**SOURCE, r_size=5, r_time=2_000, xacct=True, fail="DstPutObjectNotPermitted"))
    assert env.verdict()[0:2] == ("FAILED", "DstPutObjectNotPermitted")
    assert env.heads.asked == [SRC, DST]


def test_a_claim_from_another_account_heard_of_late_with_its_replica_time_does_not_wait(env):
    item = backlog(env, heard_after_due_s=10)
    env.store.dynamodb.delete_item(TableName="t", Key={"pk": {"S": PK}, "dest": {"S": DST}})
    item = env.seed(**SOURCE, r_size=5, r_time=2_000, xacct=True, due=item["due"], first_seen_ms=item["first_seen"])
    assert env.check(item) is None
    assert env.verdict()[0] == "COMPLETED"


def test_the_replicas_encryption_is_what_head_says_too(ddb):
    env = Env(ddb, verify_mode="etag")
    head = {"exists": True, "size": 5, "encryption": "AES256"}
    env.heads.answers[SRC] = VersionFacts(**head, replication_status="COMPLETED", etag="aaa")
    env.heads.answers[DST] = VersionFacts(**head, replication_status="REPLICA", etag="bbb")
    claim = {"r_size": 5, "r_time": 2_000, "r_etag": "bbb", "r_enc": "aws:kms", "xacct": True}
    env.check(env.seed(src=SRC, s_size=5, s_time=1_000, s_etag="aaa", **claim))
    assert env.verdict()[0:2] == ("MISMATCH", "ETag differs (both sides store an MD5 ETag)")


def test_encryption_is_what_head_says_not_what_an_event_said(ddb):
    env = Env(ddb, verify_mode="etag")
    head = {"exists": True, "size": 5, "encryption": "AES256"}
    env.heads.answers[SRC] = VersionFacts(**head, replication_status="COMPLETED", etag="aaa")
    env.heads.answers[DST] = VersionFacts(**head, replication_status="REPLICA", etag="bbb")
    env.check(env.seed(src=SRC, s_size=5, s_time=1_000, s_etag="aaa", s_enc="aws:kms"))
    # both sides store an MD5 ETag (SSE-S3), so differing ETags are different data; had the event's
    # "aws:kms" stood, sizes alone would have decided
    assert env.verdict() == ("MISMATCH", "ETag differs (both sides store an MD5 ETag)", None, False)
    assert env.item()["s_enc"] == "aws:kms"  # the item keeps what was observed first


def test_a_head_whose_checksum_mode_was_refused_is_counted(env):
    env.heads.answers[SRC] = VersionFacts(exists=True, replication_status="PENDING", checksum_refused=True)
    env.check(env.seed(**SOURCE))
    assert env.counters.total("ChecksumModeRefused", (("Bucket", SRC),)) == 1
    assert env.counters.total("ChecksumModeRefused", (("Bucket", DST),)) == 0


# ---- a replica found by HEAD while its event may be on its way --------------------------------------------------


def backlog(env: Env, *, heard_after_due_s: float) -> dict:
    """An item the monitor heard of `heard_after_due_s` after its deadline (a backlog in the event path)."""
    due = int(NOW) - 30
    env.heads.answers[SRC] = facts("COMPLETED")
    env.heads.answers[DST] = facts("REPLICA")
    return env.seed(**SOURCE, due=due, first_seen_ms=int((due + heard_after_due_s) * 1000))


def test_a_replica_found_for_an_item_heard_of_late_waits_for_its_event(env):
    item = backlog(env, heard_after_due_s=10)  # heard at NOW - 20: its event may come until NOW + 40
    assert env.check(item) == int(NOW) + 40
    assert "status" not in env.item()


def test_a_replica_found_for_an_item_heard_of_late_is_decided_once_the_wait_is_over(env):
    item = backlog(env, heard_after_due_s=10)
    env.now = NOW + 40
    assert env.check(item) is None
    assert env.verdict() == ("COMPLETED", None, "size", False)


def test_a_replica_found_for_an_item_heard_of_in_time_does_not_wait(env):
    item = backlog(env, heard_after_due_s=0)
    assert env.check(item) is None
    assert env.verdict()[0] == "COMPLETED"


# ---- late items: when to look again, and when to give up ---------------------------------------------------------


@pytest.mark.parametrize("rpo_s, again", [(None, 60), (2, 5), (5, 5), (120, 120), (5_000, 900)])
def test_a_late_item_is_looked_at_again_after_its_rpo_within_bounds(env, rpo_s, again):
    env.heads.answers[SRC] = facts("PENDING")
    fields = {**SOURCE, **({"rpo_s": rpo_s} if rpo_s else {})}
    assert env.check(env.seed(**fields)) == int(NOW) + again


def test_the_last_look_before_giving_up_is_just_after_the_give_up_age(env):
    env.heads.answers[SRC] = facts("PENDING")
    env.now = GIVE_UP_AT - 10
    assert_overdue(env, env.check(env.seed(**SOURCE)), again=int(GIVE_UP_AT + 1))


def test_just_before_the_give_up_age_a_late_item_is_still_overdue(env):
    env.heads.answers[SRC] = facts("PENDING")
    env.now = GIVE_UP_AT - 0.001
    env.check(env.seed(**SOURCE))
    assert env.item()["status"] == "OVERDUE"


def test_at_the_give_up_age_a_late_item_is_failed(env):
    env.heads.answers[SRC] = facts("PENDING")
    env.now = GIVE_UP_AT
    assert env.check(env.seed(**SOURCE, status="OVERDUE")) is None
    assert env.verdict() == ("FAILED", f"gave up after {GIVE_UP}s: replication status PENDING", None, True)
    stored = env.item()
    assert "ovd_pair" not in stored and stored["fail_pair"] == pair_index.key_value(f"{SRC}>{DST}", PK, DST)


def test_an_item_already_overdue_is_not_marked_again(env):
    env.heads.answers[SRC] = facts("PENDING")
    item = env.seed(**SOURCE)
    env.check(item)
    env.now = NOW + 60
    with mock.patch.object(env.store, "mark_overdue", wraps=env.store.mark_overdue) as marked:
        assert env.check(env.item()) == int(NOW) + 120
    marked.assert_not_called()  # no write that its condition would refuse
    assert env.item()["ovd_since"] == int(NOW * 1000)  # the first time it was found late
