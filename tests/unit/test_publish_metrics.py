"""The metrics each status change counts and the SNS digests it makes (crrmon.publish), whole: every
metric name, value and dimension set, and every field of a digest, for each status."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from crrmon.digest import Digest, Monitor, sns_message
from crrmon.metrics import Counters
from crrmon.model import Status
from crrmon.publish import Change, Publisher, count_metrics, digests

PAIR = (("SourceBucket", "src"), ("DestinationBucket", "dst"))
ITEM = {"pk": "v1#docs/a.txt", "dest": "dst", "src": "src"}


def counted(*changes: Change) -> dict:
    """Everything the counters hold: {dimensions: {metric: [values]}}."""
    counters = Counters()
    for change in changes:
        count_metrics(change, counters)
    return {
        dims: {name: list(values) for name, values in metrics.items()} for dims, metrics in counters._values.items()
    }


def both(name: str, value: float = 1) -> dict:
    return {(): {name: [value]}, PAIR: {name: [value]}}


@pytest.mark.parametrize(
    ("status", "metric"),
    [
        (Status.OVERDUE, "ObjectsOverdue"),
        (Status.MISMATCH, "ChecksumMismatches"),
        (Status.SOURCE_DELETED, "SourcesDeleted"),
        (Status.NOT_IN_SCOPE, "ObjectsNotInScope"),
        (Status.EXPIRED, "ObjectsExpired"),
    ],
)
def test_each_status_counts_one_object_in_total_and_for_its_pair(status, metric):
    assert counted(Change(ITEM, status)) == both(metric)


def test_a_completed_version_counts_its_bytes_latency_and_lateness():
    item = {**ITEM, "s_size": 7, "r_size": 9, "latency_ms": 2_500, "missed_rpo": True}
    expected = {"ObjectsReplicated": [1], "BytesReplicated": [7], "ReplicationLatency": [2_500]}
    assert counted(Change(item, Status.COMPLETED)) == {
        (): {**expected, "ObjectsReplicatedLate": [1]},
        PAIR: {**expected, "ObjectsReplicatedLate": [1]},
        (*PAIR, ("SizeBand", "<1MB")): {"ReplicationLatency": [2_500]},
    }


def test_a_completed_version_on_time_without_latency_counts_the_replicas_bytes():
    item = {**ITEM, "r_size": 9, "latency_ms": None, "missed_rpo": False}
    assert counted(Change(item, Status.COMPLETED)) == {
        (): {"ObjectsReplicated": [1], "BytesReplicated": [9]},
        PAIR: {"ObjectsReplicated": [1], "BytesReplicated": [9]},
    }


def test_a_completed_version_of_no_known_size_counts_no_bytes_and_zero_latency_counts():
    item = {**ITEM, "latency_ms": 0}
    assert counted(Change(item, Status.COMPLETED)) == {
        (): {"ObjectsReplicated": [1], "BytesReplicated": [0], "ReplicationLatency": [0]},
        PAIR: {"ObjectsReplicated": [1], "BytesReplicated": [0], "ReplicationLatency": [0]},
        (*PAIR, ("SizeBand", "unknown")): {"ReplicationLatency": [0]},
    }


@pytest.mark.parametrize(
    ("sizes", "band"),
    [
        ({"s_size": 1_048_575}, "<1MB"),
        ({"s_size": 1_048_576, "r_size": 1_048_576}, "1-16MB"),
        ({"r_size": 5 * 1024**3}, ">=5GB"),  # only the replica's size is known
        ({"s_size": 0, "r_size": 0}, "<1MB"),
    ],
)
def test_latency_is_also_counted_per_pair_and_size_band(sizes, band):
    found = counted(Change({**ITEM, **sizes, "latency_ms": 40}, Status.COMPLETED))
    assert found[(*PAIR, ("SizeBand", band))] == {"ReplicationLatency": [40]}
    assert [dims for dims in found if any(name == "SizeBand" for name, _ in dims)] == [(*PAIR, ("SizeBand", band))]


def test_the_size_band_goes_out_in_the_emf_document_of_the_latency(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "CRRMonitor")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "crr-monitor")
    counters = Counters()
    for size, latency in ((20 * 1024**2, 900), (30 * 1024**2, 1_100), (10, 50)):
        count_metrics(Change({**ITEM, "s_size": size, "latency_ms": latency}, Status.COMPLETED), counters)
    counters.flush()
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    banded = {
        doc["SizeBand"]: doc
        for doc in docs
        if sorted(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0])
        == ["DestinationBucket", "SizeBand", "SourceBucket", "service"]
    }
    assert sorted(banded) == ["16-128MB", "<1MB"]
    doc = banded["16-128MB"]
    assert (doc["SourceBucket"], doc["DestinationBucket"], doc["service"]) == ("src", "dst", "crr-monitor")
    assert doc["ReplicationLatency"] == [900, 1_100] and set(doc) - {"_aws"} == {
        "ReplicationLatency",
        "SourceBucket",
        "DestinationBucket",
        "SizeBand",
        "service",
    }
    [metric] = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    assert metric == {"Name": "ReplicationLatency", "Unit": "Milliseconds"}
    assert doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "CRRMonitor"
    assert banded["<1MB"]["ReplicationLatency"] == [50]


def test_a_failure_is_also_counted_by_its_reason_cut_to_64_characters():
    assert counted(Change({**ITEM, "reason": "R" * 70}, Status.FAILED)) == {
        (): {"ObjectsFailed": [1]},
        PAIR: {"ObjectsFailed": [1]},
        (*PAIR, ("Reason", "R" * 64)): {"ObjectsFailed": [1]},
    }
    assert counted(Change(ITEM, Status.FAILED))[(*PAIR, ("Reason", "unknown"))] == {"ObjectsFailed": [1]}


def test_an_unknown_source_is_counted_as_unknown():
    item = {"pk": "v1#k", "dest": "dst"}
    assert counted(Change(item, Status.OVERDUE)) == {
        (): {"ObjectsOverdue": [1]},
        (("SourceBucket", "unknown"), ("DestinationBucket", "dst")): {"ObjectsOverdue": [1]},
    }


def digest(found: Digest) -> tuple[str, dict]:
    return found.subject, json.loads(found.body_json())


def test_a_digest_per_pair_status_and_reason_with_its_count_and_samples():
    changes = [
        Change({**ITEM, "pk": f"v{i}#k{i}", "reason": "DstBucketNotFound"}, Status.FAILED) for i in range(12)
    ] + [
        Change({**ITEM, "pk": "v20#late"}, Status.OVERDUE),
        Change({"pk": "v21#gone", "dest": "dst", "reason": "ignored"}, Status.EXPIRED),
        Change({**ITEM, "pk": "v22#ok"}, Status.COMPLETED),  # not an alert
        Change({**ITEM, "pk": "v23#x", "reason": "size differs"}, Status.MISMATCH),
        Change({**ITEM, "pk": "v24#y"}, Status.SOURCE_DELETED),  # not an alert
    ]
    found = [digest(d) for d in digests(changes)]
    assert [subject for subject, _ in found] == [
        "CRR Monitor: 12 FAILED src -> dst",
        "CRR Monitor: 1 MISMATCH src -> dst",
        "CRR Monitor: 1 OVERDUE src -> dst",
        "CRR Monitor: 1 EXPIRED unknown -> dst",
    ]
    assert found[0][1] == {
        "source_bucket": "src",
        "destination_bucket": "dst",
        "status": "FAILED",
        "reason": "DstBucketNotFound",
        "count": 12,
        "samples": [{"key": f"k{i}", "version_id": f"v{i}"} for i in range(10)],
    }
    assert found[2][1]["reason"] is None
    assert found[3][1] == {
        "source_bucket": "unknown",
        "destination_bucket": "dst",
        "status": "EXPIRED",
        "reason": "removed by TTL",
        "count": 1,
        "samples": [{"key": "gone", "version_id": "v21"}],
    }


def test_reasons_make_digests_of_their_own_and_keys_keep_their_characters():
    changes = [
        Change({**ITEM, "pk": "v1#été/a", "reason": "B"}, Status.FAILED),
        Change({**ITEM, "pk": "v2#b", "reason": "A"}, Status.FAILED),
    ]
    (first, second) = (d.body_json() for d in digests(changes))
    assert json.loads(first)["reason"] == "A" and json.loads(second)["reason"] == "B"
    assert '"été/a"' in second  # not \u-escaped
    assert second.startswith('{\n "source_bucket"')  # indented by one


def test_a_long_subject_is_cut_to_what_sns_takes():
    change = Change({"pk": "v1#k", "dest": "d" * 63, "src": "s" * 63}, Status.OVERDUE)
    (found,) = digests([change])
    subject = found.subject
    assert subject == f"CRR Monitor: 1 OVERDUE {'s' * 63} -> {'d' * 63}"[:100] and len(subject) == 100


def test_the_publisher_sends_each_digest_to_the_topic(fake_credentials):
    with mock_aws():
        sns = boto3.client("sns", region_name="us-east-1")
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        sent: list[dict] = []
        sns.meta.events.register("provide-client-params.sns.Publish", lambda params, **_: sent.append(params))
        counters = Counters()
        changes = [Change({**ITEM, "reason": "X"}, Status.FAILED), Change(ITEM, Status.COMPLETED)]
        Publisher(sns=sns, topic_arn=topic, stack_name="crr").publish(changes, counters, now_ms=0)
        monitor = Monitor("crr", "us-east-1")
        assert [(p["TopicArn"], p["Subject"], p["MessageStructure"], p["Message"]) for p in sent] == [
            (topic, d.subject, "json", sns_message(d, monitor)) for d in digests(changes)
        ]
        assert counters.total("ObjectsFailed") == 1 and counters.total("ObjectsReplicated") == 1
        sent.clear()
        Publisher(sns=sns).publish(changes, Counters(), now_ms=0)  # no topic: no digest
        Publisher(sns=sns, topic_arn=topic).publish([], Counters(), now_ms=0)
        assert sent == []
        Publisher(sns=sns, topic_arn=topic).publish(changes[:1], Counters(), now_ms=0)  # no stack known
        [found] = [p["Message"] for p in sent]
        assert found == sns_message(digests(changes[:1])[0], Monitor("", "us-east-1")) and "--stack" not in found
