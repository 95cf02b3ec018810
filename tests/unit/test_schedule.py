"""The sweeper's scheduled tasks (crrmon.schedule) on the template's table and S3 on moto (in-process
`mock_aws`): the lease that keeps runs from overlapping, the oldest-late gauge and the backlog by age per
pair, silence per watched bucket, and canary versions written, followed and cleaned up."""

from __future__ import annotations

import json
from unittest import mock

import boto3
import pytest

from crrmon.bands import AGE_BAND_NAMES
from crrmon.config import Config
from crrmon.evidence import Evidence, RateLimiter
from crrmon.metrics import Counters
from crrmon.model import Status
from crrmon.pair_index import key_values
from crrmon.schedule import CANARIES_KEPT, CANARY_KEY, Schedule
from crrmon.store import CANARY_PK, HEARTBEAT_PK, Store, Verdict, make_pk
from crrmon.topology import Rule, Topology, TopologyCache

NOW = 1_700_000_000.0
SRC, SRC2, DST = "src", "src2", "dst"
PAIR = (("SourceBucket", SRC), ("DestinationBucket", DST))
PAIR2 = (("SourceBucket", SRC2), ("DestinationBucket", DST))
SHARD_QUERIES = len(key_values(f"{SRC}>{DST}"))  # 32 shards and the bare pair


class Env:
    def __init__(self, ddb, **config):
        self.s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (SRC, SRC2, DST):
            self.s3.create_bucket(Bucket=bucket)
        for bucket in (SRC, SRC2):
            self.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        self.config = Config(table_name="t", give_up_seconds=3600, rpo_seconds=60, **config)
        self.store = Store(ddb, "t")
        self.counters = Counters()
        self.now = NOW
        topology = Topology(sources={SRC: [Rule("a", DST)], SRC2: [Rule("b", DST)]}, regions={})
        self.schedule = Schedule(
            config=self.config,
            store=self.store,
            evidence=Evidence(self.s3, RateLimiter(1, burst=1, clock=lambda: 0.0)),
            topology=TopologyCache(lambda: topology, max_age=300),
            counters=self.counters,
            clock=lambda: self.now,
        )

    def run(self) -> dict:
        """One scheduled run, its lease then given up (as if the next ran a minute later)."""
        result = self.schedule.run()
        self.store.release_lease("sweeper-schedule", self.schedule.holder, now_s=int(self.now))
        return result

    def canary_versions(self, bucket: str = SRC) -> list[str]:
        answer = self.s3.list_object_versions(Bucket=bucket, Prefix=CANARY_KEY)
        return [v["VersionId"] for v in answer.get("Versions", [])]

    def remembered(self, bucket: str = SRC) -> list[str]:
        return self.store.bookkeeping(CANARY_PK, [bucket]).get(bucket, {}).get("versions", [])


@pytest.fixture
def env(ddb):
    return Env(ddb)


# ---- the lease ---------------------------------------------------------------------------------------------------


def test_a_run_while_another_holds_the_lease_does_nothing(env):
    assert "oldest_overdue_age" in env.schedule.run()
    other = Schedule(**{**env.schedule.__dict__, "holder": "other"})
    env.now = NOW + 54
    assert other.run() == {"skipped": "another run holds the lease"}
    assert env.counters.values("OldestOverdueAge", (("SourceBucket", SRC), ("DestinationBucket", DST))) == [0]
    env.now = NOW + 56
    assert "oldest_overdue_age" in other.run()


# ---- oldest late item per pair ----------------------------------------------------------------------------------


def test_each_pair_reports_the_age_of_its_oldest_late_item(env):
    first_seen = int((NOW - 250) * 1000)
    for pk, seen in (("v1#a", first_seen), ("v2#b", first_seen + 100_000)):
        env.store.record_observation(
            pk, DST, now_ms=seen, due_s=int(NOW) - 1, expires_s=int(NOW) + 99, fields={"src": SRC}
        )
        env.store.mark_overdue(pk, DST, pair=f"{SRC}>{DST}", now_ms=int(NOW * 1000))
    assert env.schedule.run()["oldest_overdue_age"] == {f"{SRC}>{DST}": 250, f"{SRC2}>{DST}": 0}
    assert env.counters.values("OldestOverdueAge", (("SourceBucket", SRC), ("DestinationBucket", DST))) == [250]
    assert env.counters.values("OldestOverdueAge", (("SourceBucket", SRC2), ("DestinationBucket", DST))) == [0]


# ---- the backlog by age, per pair ---------------------------------------------------------------------------------


def overdue(env: Env, pk: str, *, age_ms: int, source: str = SRC) -> None:
    """An OVERDUE item of `source`>DST first seen `age_ms` before NOW."""
    env.store.record_observation(
        pk, DST, now_ms=int(NOW * 1000) - age_ms, due_s=int(NOW) - 1, expires_s=int(NOW) + 99, fields={"src": source}
    )
    env.store.mark_overdue(pk, DST, pair=f"{source}>{DST}", now_ms=int(NOW * 1000))


def queries(ddb) -> list[dict]:
    """Every Query the client sends from now on, its request."""
    sent: list[dict] = []
    ddb.meta.events.register("provide-client-params.dynamodb.Query", lambda params, **_: sent.append(dict(params)))
    return sent


def by_age(env: Env, pair=PAIR) -> dict[str, list[float]]:
    return {band: env.counters.values("OverdueByAge", (*pair, ("AgeBand", band))) for band in AGE_BAND_NAMES}


AGES_MS = {  # item -> age at NOW; each band's edges
    "v1#a": 0,
    "v2#b": 899_999,
    "v3#c": 900_000,
    "v4#d": 3_599_999,
    "v5#e": 3_600_000,
    "v6#f": 3_600_001,
    "v7#g": 21_600_000,
    "v8#h": 86_399_999,
    "v9#i": 86_400_000,
    "v10#j": 400_000_000,
}


def test_each_pair_counts_its_overdue_items_per_age_band_every_band_every_run(env):
    for pk, age_ms in AGES_MS.items():
        overdue(env, pk, age_ms=age_ms)
    expected = {"<15m": 2, "15m-1h": 2, "1-6h": 2, "6-24h": 2, ">=24h": 2}
    result = env.schedule.run()["overdue_by_age"]
    assert result == {f"{SRC}>{DST}": expected, f"{SRC2}>{DST}": dict.fromkeys(AGE_BAND_NAMES, 0)}
    assert by_age(env) == {band: [n] for band, n in expected.items()}
    assert by_age(env, PAIR2) == {band: [0] for band in AGE_BAND_NAMES}  # a pair with nothing late: zeros
    assert env.counters.total("OverdueByAge") == 10  # service-wide: every overdue item of every pair


def test_a_pair_with_nothing_overdue_costs_no_counting_query(env, ddb):
    sent = queries(ddb)
    env.schedule.run()
    assert len(sent) == 2 * SHARD_QUERIES  # the oldest-overdue gauge's Limit=1 Queries, per pair
    assert not any(q.get("Select") == "COUNT" for q in sent)


@pytest.mark.parametrize(("oldest_ms", "bands_asked"), [(1_000, 1), (900_000, 2), (7_200_000, 3), (90_000_000, 5)])
def test_only_the_bands_up_to_the_oldest_items_are_counted(env, ddb, oldest_ms, bands_asked):
    overdue(env, "v1#old", age_ms=oldest_ms)
    overdue(env, "v2#new", age_ms=0)
    sent = queries(ddb)
    counted = env.schedule.run()["overdue_by_age"][f"{SRC}>{DST}"]
    counting = [q for q in sent if q.get("Select") == "COUNT"]
    assert {q["IndexName"] for q in counting} == {"Overdue"} and len(counting) == bands_asked * SHARD_QUERIES
    assert len(sent) == 2 * SHARD_QUERIES + bands_asked * SHARD_QUERIES
    assert sum(counted.values()) == 2 and counted["<15m"] == (2 if oldest_ms < 900_000 else 1)


def test_a_count_that_reaches_the_limit_per_shard_is_a_floor_and_says_so(ddb, caplog):
    env = Env(ddb)
    env.schedule.count_most = 1
    for n in range(40):  # 40 items over 33 key values: some shard holds two
        overdue(env, f"v{n}#k{n}", age_ms=60_000)
    counted = env.schedule.run()["overdue_by_age"][f"{SRC}>{DST}"]
    assert 0 < counted["<15m"] < 40
    warned = [r for r in caplog.records if "floor" in r.getMessage()]
    assert warned and warned[0].__dict__["bands"] == ["<15m"] and warned[0].__dict__["pair"] == f"{SRC}>{DST}"
    env.schedule.count_most = 1_000
    env.now = NOW + 60
    assert env.run()["overdue_by_age"][f"{SRC}>{DST}"]["<15m"] == 40


def test_the_backlog_is_counted_in_every_band_when_the_oldest_item_could_not_be_read(env, ddb):
    for pk, age_ms in AGES_MS.items():
        overdue(env, pk, age_ms=age_ms)
    with mock.patch.object(env.store, "oldest_overdue", side_effect=RuntimeError("throttled")):
        result = env.run()
    assert result["errors"] == ["oldest_overdue_age"]
    assert result["overdue_by_age"][f"{SRC}>{DST}"] == dict.fromkeys(AGE_BAND_NAMES, 2)


def test_a_backlog_count_that_fails_is_counted_and_the_oldest_age_still_reported(env):
    overdue(env, "v1#a", age_ms=1_000_000)
    with mock.patch.object(env.store, "count_overdue", side_effect=RuntimeError("throttled")):
        result = env.run()
    assert result["errors"] == ["overdue_by_age"] and result["oldest_overdue_age"][f"{SRC}>{DST}"] == 1_000
    assert env.counters.total("ScheduleErrors", (("Task", "overdue_by_age"),)) == 1
    assert env.counters.values("OldestOverdueAge", PAIR) == [1_000]


# ---- silence ------------------------------------------------------------------------------------------------------


def test_silence_is_not_watched_unless_asked_for(env):
    assert "seconds_since_last_event" not in env.schedule.run()
    assert env.store.bookkeeping(HEARTBEAT_PK, [SRC, SRC2]) == {}


def test_a_bucket_that_never_sent_an_event_starts_its_clock_at_the_first_run(ddb):
    env = Env(ddb, silence_minutes=5)
    assert env.run()["seconds_since_last_event"] == {SRC: 0, SRC2: 0}
    beat = env.store.bookkeeping(HEARTBEAT_PK, [SRC])[SRC]
    assert (beat["last"], beat["baseline"]) == (int(NOW), True)  # a start, not an event (ingest's beat drops it)
    env.now = NOW + 299
    assert env.run()["seconds_since_last_event"] == {SRC: 299, SRC2: 299}
    assert env.counters.values("SilentBuckets") == [0, 0]


def test_a_bucket_quiet_for_the_silence_minutes_is_silent(ddb, caplog):
    env = Env(ddb, silence_minutes=5)
    env.store.beat(SRC, int(NOW) - 300)
    env.store.beat(SRC2, int(NOW) - 299)
    assert env.run()["seconds_since_last_event"] == {SRC: 300, SRC2: 299}
    assert env.counters.values("SilentBuckets") == [1]
    assert env.counters.values("SecondsSinceLastEvent", (("Bucket", SRC),)) == [300]
    assert [(r.getMessage(), r.__dict__.get("buckets")) for r in caplog.records if r.levelname == "WARNING"] == [
        ("watched buckets are silent", [SRC])
    ]


def test_a_heartbeat_from_the_future_counts_as_no_silence(ddb):
    env = Env(ddb, silence_minutes=5)
    env.store.beat(SRC, int(NOW) + 30)  # another container's clock ahead of this one's
    assert env.run()["seconds_since_last_event"][SRC] == 0


# ---- canaries -----------------------------------------------------------------------------------------------------


def test_no_canaries_unless_asked_for(env):
    assert "canaries" not in env.schedule.run()
    assert env.canary_versions() == []


def test_a_canary_is_written_to_each_source_bucket_once_per_interval(ddb):
    env = Env(ddb, canary_interval_minutes=10)
    written = env.run()["canaries"]
    assert sorted(written) == [SRC, SRC2] and env.canary_versions() == [written[SRC]]
    assert env.remembered() == [f"{int(NOW)}:{written[SRC]}"]
    assert env.counters.total("CanariesWritten", (("Bucket", SRC),)) == 1
    env.now = NOW + 599
    assert env.run()["canaries"] == {}
    env.now = NOW + 600
    again = env.run()["canaries"]
    assert len(env.canary_versions()) == 2 and again[SRC] in env.canary_versions()


def test_a_canary_is_a_small_json_document_saying_what_it_is(ddb):
    env = Env(ddb, canary_interval_minutes=10)
    version = env.run()["canaries"][SRC]
    got = env.s3.get_object(Bucket=SRC, Key=CANARY_KEY, VersionId=version)
    assert got["ContentType"] == "application/json"
    assert json.loads(got["Body"].read()) == {"crr-monitor-canary": True, "written_at": int(NOW)}


def test_a_bucket_whose_canary_is_not_due_keeps_no_other_from_its_own(ddb):
    env = Env(ddb, canary_interval_minutes=10)
    env.store.save_progress(CANARY_PK, SRC, {"last": int(NOW)})  # "src" sorts before "src2"
    assert list(env.run()["canaries"]) == [SRC2]


def test_a_canary_bucket_that_is_not_versioned_is_skipped(ddb, caplog):
    env = Env(ddb, canary_interval_minutes=10)
    env.s3.put_bucket_versioning(Bucket=SRC, VersioningConfiguration={"Status": "Suspended"})  # sorts first
    assert list(env.run()["canaries"]) == [SRC2]
    assert env.remembered(SRC) == []
    warned = [(r.getMessage(), r.__dict__.get("bucket")) for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [("canary bucket is not versioned; nothing to follow", SRC)]


def canary(env: Env, *, age_s: int) -> str:
    """A canary version written `age_s` ago and remembered."""
    version = env.s3.put_object(Bucket=SRC, Key=CANARY_KEY, Body=b"{}")["VersionId"]
    env.store.record_canary(SRC, f"{int(NOW) - age_s}:{version}", now_s=int(NOW))
    return version


def judge(env: Env, version: str, *statuses: Status | None) -> None:
    for n, status in enumerate(statuses):
        pk, dest = make_pk(version, CANARY_KEY), f"d{n}"
        env.store.record_observation(pk, dest, now_ms=0, due_s=0, expires_s=int(NOW) + 99, fields={"src": SRC})
        if status is Status.OVERDUE:
            env.store.mark_overdue(pk, dest, pair="p", now_ms=0)
        elif status is not None:
            env.store.write_verdict(pk, dest, Verdict(status), pair="p", now_ms=0, retention_s=99)


@pytest.mark.parametrize(
    "statuses, cleaned",
    [
        ((Status.COMPLETED, Status.FAILED), True),
        ((Status.COMPLETED, None), False),
        ((Status.COMPLETED, Status.OVERDUE), False),
    ],
)
def test_a_canary_is_deleted_once_every_destination_has_its_verdict(ddb, statuses, cleaned):
    env = Env(ddb, canary_interval_minutes=10)
    env.store.record_canary(SRC2, "0:x", now_s=int(NOW))  # no canaries wanted now: the interval has not passed
    env.store.save_progress(CANARY_PK, SRC, {"last": int(NOW)})
    version = canary(env, age_s=60)
    judge(env, version, *statuses)
    env.run()
    assert (version in env.canary_versions()) is not cleaned
    assert env.remembered() == ([] if cleaned else [f"{int(NOW) - 60}:{version}"])


@pytest.mark.parametrize("age_s, cleaned", [(3600, False), (3601, True)])
def test_a_canary_whose_items_are_gone_is_deleted_after_the_give_up_age(ddb, age_s, cleaned):
    env = Env(ddb, canary_interval_minutes=10)
    env.store.save_progress(CANARY_PK, SRC, {"last": int(NOW)})
    version = canary(env, age_s=age_s)
    env.run()
    assert (version in env.canary_versions()) is not cleaned


def test_a_canary_that_cannot_be_deleted_is_kept_and_counted(ddb, caplog):
    env = Env(ddb, canary_interval_minutes=10)
    env.store.save_progress(CANARY_PK, SRC, {"last": int(NOW)})
    version = canary(env, age_s=60)
    judge(env, version, Status.COMPLETED)
    with mock.patch.object(env.s3, "delete_object", side_effect=RuntimeError("AccessDenied")):
        env.run()
    assert env.counters.total("CanaryCleanupErrors", (("Bucket", SRC),)) == 1
    warned = [(r.getMessage(), r.__dict__.get("bucket"), r.__dict__.get("error")) for r in caplog.records]
    assert ("canary version not deleted", SRC, "RuntimeError('AccessDenied')") in warned
    assert env.remembered() == [f"{int(NOW) - 60}:{version}"]


def test_only_the_latest_canaries_are_remembered(ddb):
    env = Env(ddb, canary_interval_minutes=10)
    env.store.save_progress(CANARY_PK, SRC, {"last": int(NOW), "versions": [f"{int(NOW)}:v{n}" for n in range(60)]})
    env.run()
    assert env.remembered() == [f"{int(NOW)}:v{n}" for n in range(60 - CANARIES_KEPT, 60)]


# ---- a failing task -----------------------------------------------------------------------------------------------


def test_a_task_that_fails_is_counted_and_the_others_still_run(ddb):
    env = Env(ddb, silence_minutes=5, canary_interval_minutes=10)
    with mock.patch.object(env.store, "oldest_overdue", side_effect=RuntimeError("throttled")):
        result = env.run()
    assert result["errors"] == ["oldest_overdue_age"]
    assert sorted(result["canaries"]) == [SRC, SRC2] and result["seconds_since_last_event"] == {SRC: 0, SRC2: 0}
    assert env.counters.total("ScheduleErrors", (("Task", "oldest_overdue_age"),)) == 1
