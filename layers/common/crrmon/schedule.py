"""The sweeper's schedule, once a minute under a lease: overdue gauges (the oldest item, the backlog by age),
silence, canaries, SLO burn rates."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from crrmon.bands import AGE_BAND_NAMES, AGE_BANDS, age_band_index, first_seen_bounds
from crrmon.config import Config
from crrmon.evidence import Evidence
from crrmon.metrics import Counters, pair_dimensions
from crrmon.model import Status
from crrmon.slo import SloBurns
from crrmon.store import CANARY_PK, HEARTBEAT_PK, Store, make_pk, pair_name
from crrmon.topology import TopologyCache

logger = Logger(child=True)

CANARY_PREFIX = "crr-monitor-canary/"  # the only prefix the sweeper may write to and delete from
CANARY_KEY = CANARY_PREFIX + "canary"  # one key per source bucket; each canary is a new version of it
CANARIES_KEPT = 50  # versions remembered for clean-up per bucket; older ones are forgotten
# OverdueByAge counts at most this many items per index shard and age band (33 shards: about 33,000 per
# pair and band; beyond that the gauge is a floor and a warning says so). COUNT reads every index entry
# it counts, about 330 bytes each: this bounds a pair's reads to about 6,700 read units a minute however
# large an outage grows (docs/internals.md, "Overdue gauges").
OVERDUE_COUNT_MOST = 1_000


@dataclass
class Schedule:
    config: Config
    store: Store
    evidence: Evidence  # its S3 client writes and deletes canaries
    topology: TopologyCache
    counters: Counters
    clock: Callable[[], float]
    holder: str = field(default_factory=lambda: uuid.uuid4().hex)
    count_most: int = OVERDUE_COUNT_MOST
    cloudwatch: Any = None  # reads back the SLO's counts (GetMetricData); only with an SLO
    sns: Any = None  # the alert topic's client, for SLO burn messages

    def run(self) -> dict[str, Any]:
        """Once a minute, under a lease: overdue gauges, silence detection, canaries, SLO burn rates.

        Each part runs even when another fails (the failure is logged and counted).
        """
        now_s = self.clock()
        if not self.store.acquire_lease("sweeper-schedule", self.holder, now_s=int(now_s), duration_s=55):
            return {"skipped": "another run holds the lease"}
        result: dict[str, Any] = {}
        oldest: dict[str, int | None] = {}  # per pair: first_seen of its oldest OVERDUE item, None: none
        parts = [
            ("oldest_overdue_age", lambda now: self._oldest_overdue(now, oldest)),
            ("overdue_by_age", lambda now: self._overdue_by_age(now, oldest)),
        ]
        if self.config.silence_minutes > 0:
            parts.append(("seconds_since_last_event", self._silence))
        if self.config.canary_interval_minutes > 0:
            parts.append(("canaries", self._canaries))
        if self.config.slo_objective:
            parts.append(("slo_burn", self._slo_burn))
        for name, part in parts:
            try:
                result[name] = part(now_s)
            except Exception as error:
                logger.warning("scheduled task failed", extra={"task": name, "error": repr(error)})
                self.counters.add("ScheduleErrors", 1, (("Task", name),))
                result.setdefault("errors", []).append(name)
        return result

    def _oldest_overdue(self, now_s: float, oldest: dict[str, int | None]) -> dict[str, int]:
        """Per pair, the age in seconds (since first seen) of its oldest OVERDUE item, 0 when none; each
        item's first_seen is left in `oldest` for the backlog count."""
        ages = {}
        for source, dest in self.topology.get().pairs():
            pair = pair_name(source, dest)
            item = self.store.oldest_overdue(pair)
            oldest[pair] = item["first_seen"] if item else None
            age = int(now_s - item["first_seen"] / 1000) if item else 0
            ages[pair] = age
            self.counters.add("OldestOverdueAge", age, pair_dimensions(source, dest))
        return ages

    def _overdue_by_age(self, now_s: float, oldest: dict[str, int | None]) -> dict[str, dict[str, int]]:
        """Per pair, how many OVERDUE items are in each age band (crrmon.bands, by the time since first seen:
        the Overdue index's range key, so a band is a key condition): OverdueByAge per pair and AgeBand,
        every band every run, 0 included, so graphs have no gaps.

        A band is a COUNT Query on each of the pair's 33 index key values (no item is returned). Only the
        bands up to the oldest item's are asked: no item can be older, so a pair with nothing overdue
        costs no Query, one whose oldest item is under 15 minutes old 33. A pair whose oldest item was
        not read (that part failed) is asked in every band. An item that turns OVERDUE between the two
        parts with an older first_seen than the oldest read is counted at the next run.
        """
        now_ms = round(now_s * 1000)
        backlog = {}
        for source, dest in self.topology.get().pairs():
            pair = pair_name(source, dest)
            if pair not in oldest:
                last = len(AGE_BANDS) - 1
            elif oldest[pair] is None:
                last = -1
            else:
                last = age_band_index((now_ms - oldest[pair]) / 1000)
            counts = dict.fromkeys(AGE_BAND_NAMES, 0)
            floors = []
            for index in range(last + 1):
                low, high = first_seen_bounds(index, now_ms)
                tally = self.store.count_overdue(pair, low=low, high=high, most=self.count_most)
                counts[AGE_BANDS[index].name] = tally.items
                if not tally.complete:
                    floors.append(AGE_BANDS[index].name)
            if floors:
                logger.warning(
                    "overdue items counted up to the limit per shard; the count is a floor",
                    extra={"pair": pair, "bands": floors, "limit_per_shard": self.count_most},
                )
            for band, number in counts.items():
                self.counters.add("OverdueByAge", number, (*pair_dimensions(source, dest), ("AgeBand", band)))
            backlog[pair] = counts
        return backlog

    def _silence(self, now_s: float) -> dict[str, int]:
        """Seconds since an event about each watched source bucket arrived; SilentBuckets counts the quiet ones.

        Ingest writes a bucket's heartbeat at most once a minute per container; this reads them all with
        BatchGetItem. A bucket that never sent an event starts its clock at the first run that sees it.
        """
        watched = sorted(self.topology.get().sources)
        beats = self.store.bookkeeping(HEARTBEAT_PK, watched)
        since = {}
        for bucket in watched:
            if bucket not in beats:
                self.store.beat(bucket, int(now_s), only_if_absent=True)
                last = int(now_s)
            else:
                last = beats[bucket]["last"]
            since[bucket] = max(0, int(now_s) - last)
            self.counters.add("SecondsSinceLastEvent", since[bucket], (("Bucket", bucket),))
        silent = [b for b, seconds in since.items() if seconds >= self.config.silence_minutes * 60]
        self.counters.add("SilentBuckets", len(silent))
        if silent:
            logger.warning("watched buckets are silent", extra={"buckets": silent})
        return since

    def _canaries(self, now_s: float) -> dict[str, str]:
        """Per source bucket: write a canary version when one is due; delete earlier ones once judged.

        A canary is an ordinary object version under CANARY_PREFIX: its events, deadline and verdicts
        go through the pipeline like any other object's, so a broken replication or event path shows.
        """
        s3 = self.evidence.s3
        sources = sorted(self.topology.get().sources)
        states = self.store.bookkeeping(CANARY_PK, sources)
        done: dict[str, str] = {}
        for bucket in sources:
            state = states.get(bucket, {})
            entries = list(state.get("versions") or [])
            kept = [e for e in entries if not self._cleaned(s3, bucket, e, now_s)][-CANARIES_KEPT:]
            if kept != entries:
                self.store.save_progress(CANARY_PK, bucket, {"versions": kept})
            if now_s - state.get("last", 0) < self.config.canary_interval_minutes * 60:
                continue
            body = json.dumps({"crr-monitor-canary": True, "written_at": int(now_s)}).encode()
            answer = s3.put_object(Bucket=bucket, Key=CANARY_KEY, Body=body, ContentType="application/json")
            version_id = answer.get("VersionId")
            if not version_id:
                logger.warning("canary bucket is not versioned; nothing to follow", extra={"bucket": bucket})
                continue
            self.store.record_canary(bucket, f"{int(now_s)}:{version_id}", now_s=int(now_s))
            self.counters.add("CanariesWritten", 1, (("Bucket", bucket),))
            done[bucket] = version_id
        return done

    def _cleaned(self, s3, bucket: str, entry: str, now_s: float) -> bool:
        """Delete one canary version once every destination has its final verdict. True when gone."""
        written_s, _, version_id = entry.partition(":")
        items = self.store.items_of(make_pk(version_id, CANARY_KEY))
        judged = bool(items) and all(i.get("status") and Status(i["status"]).final for i in items)
        forgotten = not items and now_s - int(written_s) > self.config.give_up_seconds  # TTL removed its items
        if not (judged or forgotten):
            return False
        try:
            s3.delete_object(Bucket=bucket, Key=CANARY_KEY, VersionId=version_id)
        except Exception as error:
            self.counters.add("CanaryCleanupErrors", 1, (("Bucket", bucket),))
            logger.warning("canary version not deleted", extra={"bucket": bucket, "error": repr(error)})
            return False
        return True

    def _slo_burn(self, now_s: float) -> dict[str, Any]:
        """Every five minutes: each pair's SLO burn rates, and a message when its firing policies change."""
        cfg = self.config
        burns = SloBurns(
            objective=cfg.slo_objective,
            window_days=cfg.slo_window_days,
            cloudwatch=self.cloudwatch,
            store=self.store,
            counters=self.counters,
            namespace=cfg.metrics_namespace,
            service=cfg.service_name,
            sns=self.sns,
            topic_arn=cfg.alert_topic_arn,
        )
        return burns.run(self.topology.get().pairs(), now_s)
