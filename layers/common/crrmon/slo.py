"""Replication SLOs: "99.9% of objects within their RPO over 30 days", and alerts on its error budget.

The objective (the `SloObjective` template parameter, environment variable SLO_OBJECTIVE) is a percent
of objects; its error budget is the rest: 99.9% leaves 0.1% of the objects of the SLO window
(`SloWindowDays`, SLO_WINDOW_DAYS) to be late or lost. Each object version and destination counts
once, at its final verdict (written once: crrmon.store):

- good: COMPLETED within its RPO (`missed_rpo` false);
- bad: COMPLETED late, FAILED, MISMATCH, and EXPIRED (removed by TTL before a verdict) — the verdicts
  whose archive line is not "completed, not late";
- not counted: SOURCE_DELETED and NOT_IN_SCOPE (nothing to replicate), and OVERDUE, which is not a
  verdict: an overdue object counts once it has one (late, or FAILED at the give-up age), so it never
  counts twice, and one that S3's own time shows on time (marked OVERDUE while its replica's event was
  on its way) counts as good.

In the metrics the publisher writes (crrmon.publish), per pair and service-wide:
total = ObjectsReplicated + ObjectsFailed + ChecksumMismatches + ObjectsExpired and
bad = ObjectsReplicatedLate + ObjectsFailed + ChecksumMismatches + ObjectsExpired.

The burn rate over a window is (bad / total) / budget: at 1 the budget lasts exactly the SLO window.
Alerting follows Google's SRE workbook ("Alerting on SLOs", multiwindow, multi-burn-rate): a policy
fires when its long window has spent a given share of the SLO window's budget — burn rate >= share x
SLO window / long window — and its short window (a twelfth of the long one) burns as fast, so that an
alert starts while the budget is burning and stops soon after it no longer is. For 30 days:

    policy  severity  long  short  budget share  burn rate
    fast    page      1 h   5 min  2%            14.4
    medium  page      6 h   30 min 5%            6
    slow    ticket    3 d   6 h    10%           1

The arithmetic is exact (fractions): 144 bad objects of 10,000 against 99.9% burn at exactly 14.4.
Per source/destination pair the schedule reads the counts from CloudWatch every five minutes
(`SloBurns`), writes the burn-rate gauges and sends one message when a pair's policies change;
stack-wide, the template's alarms do the same arithmetic in metric math.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from aws_lambda_powertools import Logger

from crrmon.metrics import Counters, pair_dimensions
from crrmon.store import SLO_PK, Store, pair_name

logger = Logger(child=True)

# What SLO_OBJECTIVE may hold: empty or 0 (off), or a percent from 1 to below 100 with up to six
# decimals. The template's AllowedPattern is the same (a test compares them).
PATTERN = r"^(0|[1-9][0-9]?(\.[0-9]{1,6})?)?$"
MIN_WINDOW_DAYS, MAX_WINDOW_DAYS = 7, 90

TOTAL_METRICS = ("ObjectsReplicated", "ObjectsFailed", "ChecksumMismatches", "ObjectsExpired")
BAD_METRICS = ("ObjectsReplicatedLate", "ObjectsFailed", "ChecksumMismatches", "ObjectsExpired")
METRICS = tuple(dict.fromkeys(TOTAL_METRICS + BAD_METRICS))

EVALUATION_S = 300  # per pair: evaluated every 5 minutes, over 5-minute buckets
SETTLE_S = 60  # a bucket is read a minute after it closed: EMF metrics take seconds to land
RUN = "*"  # the SLO_PK item holding the end of the last bucket evaluated ("*" is in no bucket name)
QUERIES_PER_CALL = 500  # GetMetricData takes up to 500 queries


@dataclass(frozen=True)
class Policy:
    name: str
    severity: str  # page | ticket
    long_s: int
    short_s: int
    budget_share: Fraction  # of the SLO window's error budget, spent within the long window


POLICIES = (
    Policy("fast", "page", 3600, 300, Fraction(2, 100)),
    Policy("medium", "page", 6 * 3600, 1800, Fraction(5, 100)),
    Policy("slow", "ticket", 3 * 86400, 6 * 3600, Fraction(10, 100)),
)
WINDOWS = tuple(sorted({w for p in POLICIES for w in (p.long_s, p.short_s)}))  # 5m, 30m, 1h, 6h, 3d


def window_name(seconds: int) -> str:
    """300 -> "5m", 3600 -> "1h", 259200 -> "3d": the `Window` dimension of SloBurnRate."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class ObjectiveError(ValueError):
    """An SLO setting that cannot be used; the message says what is allowed."""


def parse_objective(text: str) -> Fraction | None:
    """SLO_OBJECTIVE -> the objective as a percent (exact), or None when empty or 0 (SLOs off)."""
    text = text.strip()
    if not re.fullmatch(PATTERN, text):
        raise ObjectiveError(
            f"SLO_OBJECTIVE {text!r} must be a percent from 1 to below 100, such as 99.9 (at most six"
            " decimals, no % sign), or empty or 0 for no SLO"
        )
    objective = Fraction(text) if text else Fraction(0)
    return objective or None


def check_window_days(days: int) -> int:
    if not MIN_WINDOW_DAYS <= days <= MAX_WINDOW_DAYS:
        raise ObjectiveError(
            f"SLO_WINDOW_DAYS {days} must be from {MIN_WINDOW_DAYS} to {MAX_WINDOW_DAYS} days (the slowest alert"
            " policy looks at 3 days)"
        )
    return days


def budget(objective: Fraction) -> Fraction:
    """The share of objects that may miss: 99.9 -> 1/1000."""
    return 1 - objective / 100


def burn_rate(bad: int, total: int, objective: Fraction) -> Fraction:
    """(bad / total) / budget; 0 for a window without objects (it spends nothing)."""
    if total <= 0:
        return Fraction(0)
    return Fraction(bad, total) / budget(objective)


def threshold(policy: Policy, window_days: int) -> Fraction:
    """The burn rate at which the policy's long window spends its share of the SLO window's budget."""
    return policy.budget_share * window_days * 86400 / policy.long_s


def budget_spent(bad: int, total: int, objective: Fraction, *, window_s: int, window_days: int) -> Fraction:
    """The share of the SLO window's budget `window_s` at this burn rate spends (what the stack-wide
    alarms compare with the policy's `budget_share`)."""
    return burn_rate(bad, total, objective) * window_s / (window_days * 86400)


@dataclass(frozen=True)
class Counts:
    total: int = 0
    bad: int = 0


def firing(counts: Mapping[int, Counts], objective: Fraction, window_days: int) -> tuple[str, ...]:
    """The policies whose long and short windows both burn at or above their threshold."""

    def burns(window: int, policy: Policy) -> bool:
        c = counts.get(window, Counts())
        return burn_rate(c.bad, c.total, objective) >= threshold(policy, window_days)

    return tuple(p.name for p in POLICIES if burns(p.long_s, p) and burns(p.short_s, p))


def window_counts(series: Mapping[str, Iterable[tuple[float, float]]], *, end_s: int) -> dict[int, Counts]:
    """Per window ending at `end_s`: the counts from each metric's (bucket start, sum) points."""
    sums = {window: dict.fromkeys(METRICS, 0.0) for window in WINDOWS}
    for metric, points in series.items():
        for start_s, value in points:
            for window in WINDOWS:
                if end_s - window <= start_s < end_s:
                    sums[window][metric] += value
    return {
        window: Counts(
            total=round(sum(s[m] for m in TOTAL_METRICS)),
            bad=round(sum(s[m] for m in BAD_METRICS)),
        )
        for window, s in sums.items()
    }


def metric_dimensions(source: str, dest: str, service: str) -> list[dict[str, str]]:
    """The pair's metric as EMF writes it (its own dimensions, then Powertools' `service`)."""
    return [{"Name": n, "Value": v} for n, v in (*pair_dimensions(source, dest), ("service", service))]


def read_counts(
    cloudwatch, pairs: list[tuple[str, str]], *, end_s: int, namespace: str, service: str
) -> dict[tuple[str, str], dict[int, Counts]]:
    """Every pair's counts per window ending at `end_s`: GetMetricData over the longest window in
    5-minute sums, 500 queries a call (100 pairs), pages followed."""
    queries, owner = [], {}
    for p, (source, dest) in enumerate(pairs):
        for m, metric in enumerate(METRICS):
            query_id = f"p{p}m{m}"
            owner[query_id] = ((source, dest), metric)
            queries.append(
                {
                    "Id": query_id,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": namespace,
                            "MetricName": metric,
                            "Dimensions": metric_dimensions(source, dest, service),
                        },
                        "Period": EVALUATION_S,
                        "Stat": "Sum",
                    },
                    "ReturnData": True,
                }
            )
    series: dict[tuple[str, str], dict[str, list[tuple[float, float]]]] = {pair: {} for pair in pairs}
    start = datetime.fromtimestamp(end_s - max(WINDOWS), UTC)
    end = datetime.fromtimestamp(end_s, UTC)
    for first in range(0, len(queries), QUERIES_PER_CALL):
        request: dict[str, Any] = {
            "MetricDataQueries": queries[first : first + QUERIES_PER_CALL],
            "StartTime": start,
            "EndTime": end,
        }
        while True:
            answer = cloudwatch.get_metric_data(**request)
            for result in answer.get("MetricDataResults", []):
                pair, metric = owner[result["Id"]]
                points = zip((t.timestamp() for t in result["Timestamps"]), result["Values"], strict=True)
                series[pair].setdefault(metric, []).extend(points)
            if not answer.get("NextToken"):
                break
            request["NextToken"] = answer["NextToken"]
    return {pair: window_counts(by_metric, end_s=end_s) for pair, by_metric in series.items()}


def alert_message(
    source: str,
    dest: str,
    *,
    started: tuple[str, ...],
    stopped: tuple[str, ...],
    now_firing: tuple[str, ...],
    counts: Mapping[int, Counts],
    objective: Fraction,
    window_days: int,
) -> tuple[str, str]:
    """(subject, JSON body) of the message sent when a pair's firing policies change."""
    policies = {p.name: p for p in POLICIES}
    if started:
        severity = "page" if any(policies[n].severity == "page" for n in started) else "ticket"
        subject = f"CRR Monitor: SLO {severity}: error budget burning {source} -> {dest}"
    else:  # only stopped: the burn eased (a slower policy still fires) or is over
        subject = f"CRR Monitor: SLO burn {'eased' if now_firing else 'over'} {source} -> {dest}"

    def window(seconds: int) -> dict[str, Any]:
        c = counts.get(seconds, Counts())
        return {
            "objects": c.total,
            "bad": c.bad,
            "burn_rate": round(float(burn_rate(c.bad, c.total, objective)), 3),
        }

    body = {
        "source_bucket": source,
        "destination_bucket": dest,
        "objective_percent": float(objective),
        "slo_window_days": window_days,
        "started": list(started),
        "stopped": list(stopped),
        "firing": list(now_firing),
        "policies": {
            name: {
                "severity": policies[name].severity,
                "burn_rate_threshold": round(float(threshold(policies[name], window_days)), 3),
                "windows": {
                    window_name(policies[name].long_s): window(policies[name].long_s),
                    window_name(policies[name].short_s): window(policies[name].short_s),
                },
            }
            for name in dict.fromkeys(started + now_firing + stopped)
        },
    }
    return subject[:100], json.dumps(body, ensure_ascii=False, indent=1)


@dataclass
class SloBurns:
    """Per pair, every five minutes (the schedule runs it each minute, under its lease): the burn-rate
    gauges (SloBurnRate, per pair and Window) and one message to the alert topic when a pair's firing
    policies change. What fires is remembered per pair in a bookkeeping item (SLO_PK / pair name)."""

    objective: Fraction
    window_days: int
    cloudwatch: Any
    store: Store
    counters: Counters
    namespace: str
    service: str
    sns: Any = None
    topic_arn: str = ""

    def run(self, pairs: Iterable[tuple[str, str]], now_s: float) -> dict[str, Any]:
        end_s = int((now_s - SETTLE_S) // EVALUATION_S) * EVALUATION_S
        last = self.store.bookkeeping(SLO_PK, [RUN]).get(RUN, {}).get("end", 0)
        if last >= end_s:  # an earlier run evaluated this bucket
            return {"skipped": f"evaluated until {last}"}
        pairs = sorted(set(pairs))
        counts = read_counts(self.cloudwatch, pairs, end_s=end_s, namespace=self.namespace, service=self.service)
        states = self.store.bookkeeping(SLO_PK, [pair_name(s, d) for s, d in pairs])
        result: dict[str, Any] = {}
        for source, dest in pairs:
            name = pair_name(source, dest)
            by_window = counts[(source, dest)]
            for window in WINDOWS:
                c = by_window[window]
                burn = round(float(burn_rate(c.bad, c.total, self.objective)), 4)
                dims = (*pair_dimensions(source, dest), ("Window", window_name(window)))
                self.counters.add("SloBurnRate", burn, dims, total=False)
            now_firing = firing(by_window, self.objective, self.window_days)
            before = tuple(states.get(name, {}).get("firing") or ())
            if set(now_firing) != set(before):
                try:
                    self._changed(source, dest, before, now_firing, by_window, end_s)
                except Exception as error:  # the next evaluation tries again: the state was not saved
                    logger.warning("SLO alert not sent", extra={"pair": name, "error": repr(error)})
                    self.counters.add("SloAlertErrors", 1, pair_dimensions(source, dest))
            result[name] = list(now_firing)
        self.store.save_progress(SLO_PK, RUN, {"end": end_s})
        return {"evaluated_until": end_s, "firing": result}

    def _changed(
        self,
        source: str,
        dest: str,
        before: tuple[str, ...],
        now_firing: tuple[str, ...],
        counts: Mapping[int, Counts],
        end_s: int,
    ) -> None:
        started = tuple(n for n in now_firing if n not in before)
        stopped = tuple(n for n in before if n not in now_firing)
        log = logger.warning if started else logger.info
        log(
            "SLO burn policies changed", extra={"pair": pair_name(source, dest), "started": started, "stopped": stopped}
        )
        if self.sns is not None and self.topic_arn:
            subject, message = alert_message(
                source,
                dest,
                started=started,
                stopped=stopped,
                now_firing=now_firing,
                counts=counts,
                objective=self.objective,
                window_days=self.window_days,
            )
            self.sns.publish(TopicArn=self.topic_arn, Subject=subject, Message=message)
        self.store.save_progress(SLO_PK, pair_name(source, dest), {"firing": list(now_firing), "since": end_s})
