"""The schedule's per-pair SLO evaluation (crrmon.slo.SloBurns through crrmon.schedule) on moto: the
template's table, CloudWatch holding the metrics the publisher's EMF documents declare (put with
PutMetricData, since moto does not turn EMF log lines into metrics), and the alert topic read through
an SQS subscription."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from crrmon.config import Config
from crrmon.evidence import Evidence, RateLimiter
from crrmon.metrics import Counters
from crrmon.model import Status
from crrmon.publish import Change, count_metrics
from crrmon.schedule import Schedule
from crrmon.slo import QUERIES_PER_CALL, Counts, read_counts
from crrmon.store import SLO_PK, Store
from crrmon.topology import Rule, Topology, TopologyCache

NOW = 1_700_000_160.0  # the schedule's clock: the last 5-minute bucket it reads ends a minute before
END = 1_700_000_100  # that bucket's end
SRC, SRC2, DST = "src", "src2", "dst"
PAIR = (("SourceBucket", SRC), ("DestinationBucket", DST))
PAIR2 = (("SourceBucket", SRC2), ("DestinationBucket", DST))


def item(n: int, source: str = SRC, **fields) -> dict:
    return {"pk": f"v{n}#k{n}", "dest": DST, "src": source, **fields}


def on_time(n: int, source: str = SRC) -> list[Change]:
    return [Change(item(i, source, missed_rpo=False, latency_ms=1_000), Status.COMPLETED) for i in range(n)]


def late(n: int, source: str = SRC) -> list[Change]:
    return [Change(item(i, source, missed_rpo=True, latency_ms=99_000), Status.COMPLETED) for i in range(n)]


def of(status: Status, n: int, source: str = SRC) -> list[Change]:
    return [Change(item(i, source, reason="DstPutObjectNotPermitted"), status) for i in range(n)]


class Env:
    def __init__(self, ddb, capsys, monkeypatch, **config):
        monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "CRRMonitor")
        monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "crr-monitor")
        self.capsys = capsys
        self.cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        self.sns = boto3.client("sns", region_name="us-east-1")
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.topic = self.sns.create_topic(Name="alerts")["TopicArn"]
        self.queue = self.sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]
        self.sns.subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=queue_arn["QueueArn"])
        s3 = boto3.client("s3", region_name="us-east-1")
        self.config = Config(table_name="t", alert_topic_arn=self.topic, **{"slo_objective": "99.9", **config})
        self.store = Store(ddb, "t")
        self.counters = Counters()
        self.now = NOW
        topology = Topology(sources={SRC: [Rule("a", DST)], SRC2: [Rule("b", DST)]}, regions={})
        self.schedule = Schedule(
            config=self.config,
            store=self.store,
            evidence=Evidence(s3, RateLimiter(1, burst=1, clock=lambda: 0.0)),
            topology=TopologyCache(lambda: topology, max_age=300),
            counters=self.counters,
            clock=lambda: self.now,
            cloudwatch=self.cloudwatch,
            sns=self.sns,
        )

    def emit(self, at_s: float, changes: list[Change]) -> None:
        """What the publisher writes for these changes (its EMF documents), as CloudWatch would hold it."""
        counters = Counters()
        for change in changes:
            count_metrics(change, counters)
        self.capsys.readouterr()
        counters.flush()
        for line in self.capsys.readouterr().out.splitlines():
            document = json.loads(line)
            (directive,) = document["_aws"]["CloudWatchMetrics"]
            (dimensions,) = directive["Dimensions"]
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                self.cloudwatch.put_metric_data(
                    Namespace=directive["Namespace"],
                    MetricData=[
                        {
                            "MetricName": metric["Name"],
                            "Dimensions": [{"Name": d, "Value": document[d]} for d in dimensions],
                            "Value": sum(value) if isinstance(value, list) else value,
                            "Timestamp": datetime.fromtimestamp(at_s, UTC),
                        }
                    ],
                )

    def run(self) -> dict:
        """One scheduled run, its lease then given up (as if the next ran a minute later)."""
        result = self.schedule.run()
        self.store.release_lease("sweeper-schedule", self.schedule.holder, now_s=int(self.now))
        return result

    def messages(self) -> list[tuple[str, dict]]:
        found = []
        while True:
            answer = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10)
            if not answer.get("Messages"):
                return found
            for message in answer["Messages"]:
                envelope = json.loads(message["Body"])
                found.append((envelope["Subject"], json.loads(envelope["Message"])))
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])

    def burn(self, pair, window: str) -> list[float]:
        return self.counters.values("SloBurnRate", (*pair, ("Window", window)))

    def firing_state(self, name: str = f"{SRC}>{DST}") -> list[str] | None:
        return self.store.bookkeeping(SLO_PK, [name]).get(name, {}).get("firing")


@pytest.fixture
def env(ddb, capsys, monkeypatch):
    return Env(ddb, capsys, monkeypatch)


def test_a_pair_burning_its_budget_fast_pages_once_and_says_when_it_is_over(env):
    # The last 5 minutes: 1,000 objects with a verdict, 20 of them bad (late, failed, different, expired);
    # the hour before: 9,000 more, 180 late. Burn 20 over both windows: the fast policy (14.4) fires.
    env.emit(END - 200, on_time(980) + late(15) + of(Status.FAILED, 3) + of(Status.MISMATCH, 1))
    env.emit(END - 250, of(Status.EXPIRED, 1) + of(Status.OVERDUE, 15))  # OVERDUE is no verdict: not counted
    env.emit(END - 3000, on_time(8_820) + late(180))
    # Over 6 hours and 3 days the same bad objects are a slower burn: 5 (below 6) and 0.95 (below 1).
    env.emit(END - 10_000, on_time(30_000))
    env.emit(END - 100_000, on_time(170_000))
    # The other pair: one late object of 2,001.
    env.emit(END - 200, on_time(2_000, SRC2) + late(1, SRC2))

    result = env.run()
    assert result["slo_burn"] == {"evaluated_until": END, "firing": {"src>dst": ["fast"], "src2>dst": []}}
    assert env.burn(PAIR, "5m") == [20.0] and env.burn(PAIR, "1h") == [20.0] and env.burn(PAIR, "30m") == [20.0]
    assert env.burn(PAIR, "6h") == [5.0] and env.burn(PAIR, "3d") == [0.9524]
    assert env.burn(PAIR2, "5m") == [0.4998]
    assert env.counters.values("SloBurnRate") == []  # per pair and window only: no service-wide mixture
    [(subject, message)] = env.messages()
    assert subject == "CRR Monitor: SLO page: error budget burning src -> dst"
    assert message["started"] == ["fast"] and message["firing"] == ["fast"]
    assert message["policies"]["fast"]["windows"]["1h"] == {"objects": 10_000, "bad": 200, "burn_rate": 20.0}
    assert env.firing_state() == ["fast"]

    env.now = NOW + 120  # the same 5-minute bucket: not evaluated again
    assert env.run()["slo_burn"] == {"skipped": f"evaluated until {END}"}
    env.now = NOW + 240  # the next bucket has not settled for a minute yet
    assert "skipped" in env.run()["slo_burn"]
    assert env.messages() == [] and env.burn(PAIR, "1h") == [20.0]

    env.now = NOW + 300  # the next bucket: no objects in its last 5 minutes, the fast burn is over
    assert env.run()["slo_burn"]["firing"] == {"src>dst": [], "src2>dst": []}
    [(subject, message)] = env.messages()
    assert subject == "CRR Monitor: SLO burn over src -> dst" and message["stopped"] == ["fast"]
    assert env.firing_state() == []

    env.now = NOW + 600
    env.run()
    assert env.messages() == []  # nothing changed, nothing sent


def test_an_alert_that_cannot_be_sent_is_counted_and_sent_at_the_next_evaluation(env):
    env.emit(END - 7_200, on_time(980) + late(20))  # two hours ago: burn 20 over 6 hours and 3 days
    env.sns.delete_topic(TopicArn=env.topic)
    result = env.run()
    assert result["slo_burn"]["firing"]["src>dst"] == ["slow"]  # 30 minutes and 1 hour hold no objects
    assert env.counters.values("SloAlertErrors", PAIR) == [1]
    assert "errors" not in result and env.firing_state() is None  # not remembered: it was not sent

    assert env.sns.create_topic(Name="alerts")["TopicArn"] == env.topic
    queue_arn = env.sqs.get_queue_attributes(QueueUrl=env.queue, AttributeNames=["QueueArn"])["Attributes"]
    env.sns.subscribe(TopicArn=env.topic, Protocol="sqs", Endpoint=queue_arn["QueueArn"])
    env.now = NOW + 300
    env.run()
    [(subject, message)] = env.messages()
    assert subject == "CRR Monitor: SLO ticket: error budget burning src -> dst" and message["started"] == ["slow"]
    assert env.firing_state() == ["slow"]


def test_a_failed_metrics_read_is_counted_the_other_parts_run_and_the_bucket_is_read_again(env):
    env.emit(END - 200, on_time(90) + late(10))
    # botocore's own Stubber stands in for a CloudWatch that refuses the call (moto never throttles).
    refusing = boto3.client("cloudwatch", region_name="us-east-1")
    stubber = Stubber(refusing)
    stubber.add_client_error("get_metric_data", service_error_code="Throttling", http_status_code=400)
    stubber.activate()
    env.schedule.cloudwatch = refusing
    result = env.run()
    assert result["errors"] == ["slo_burn"] and "oldest_overdue_age" in result
    assert env.counters.values("ScheduleErrors", (("Task", "slo_burn"),)) == [1]
    assert env.messages() == []

    env.schedule.cloudwatch = env.cloudwatch
    env.now = NOW + 60  # the same bucket: it was never evaluated, so it is now
    assert env.run()["slo_burn"]["firing"]["src>dst"] == ["fast", "medium", "slow"]
    [(subject, _)] = env.messages()
    assert subject.startswith("CRR Monitor: SLO page")


def test_without_an_objective_the_schedule_reads_no_metrics(ddb, capsys, monkeypatch):
    env = Env(ddb, capsys, monkeypatch, slo_objective="")
    env.schedule.cloudwatch = None  # any call would fail
    result = env.run()
    assert "slo_burn" not in result and "errors" not in result
    assert env.counters.values("SloBurnRate", (*PAIR, ("Window", "1h"))) == []


def test_counts_of_more_pairs_than_one_call_takes_are_read_in_several(env):
    pairs = [(f"src-{i:03}", DST) for i in range(QUERIES_PER_CALL // 5 + 1)]  # 5 metrics a pair: 505 queries
    env.emit(END - 100, on_time(7, pairs[0][0]) + late(2, pairs[0][0]))
    env.emit(END - 4_000, on_time(3, pairs[-1][0]) + of(Status.FAILED, 1, pairs[-1][0]))
    calls = []
    env.cloudwatch.meta.events.register("before-call.cloudwatch.GetMetricData", lambda **kw: calls.append(1))
    counts = read_counts(env.cloudwatch, pairs, end_s=END, namespace="CRRMonitor", service="crr-monitor")
    assert len(calls) == 2
    assert counts[pairs[0]][300] == Counts(total=9, bad=2)
    assert counts[pairs[-1]][300] == Counts() and counts[pairs[-1]][21600] == Counts(total=4, bad=1)
    assert counts[pairs[50]][259200] == Counts()
