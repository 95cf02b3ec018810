"""provision(): the resources moto holds are the ones template.yaml defines, field by field."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from crrmon import config
from crrmon_local.cfn import load_template
from crrmon_local.provision import ProvisionError, Stack, provision

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
SOURCES = ["src-one", "src-two"]
DESTINATIONS = ["dst-one"]
PARAMETERS = {"SourceBuckets": ",".join(SOURCES), "DestinationBuckets": ",".join(DESTINATIONS), "RpoSeconds": "120"}


@pytest.fixture
def session(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.Session(region_name=REGION)


@pytest.fixture
def resources():
    return load_template(TEMPLATE)["Resources"]


def make(session, **parameters) -> Stack:
    return provision(
        TEMPLATE, session=session, stack_name="prov-test", parameters={**PARAMETERS, **parameters}, region=REGION
    )


def queue_attributes(sqs, url: str) -> dict[str, str]:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_table_matches_the_template(session, resources):
    stack = make(session)
    definition = resources["ReplicationTable"]["Properties"]
    ddb = session.client("dynamodb")
    table = ddb.describe_table(TableName=stack.table_name)["Table"]

    assert table["KeySchema"] == definition["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
        definition["AttributeDefinitions"], key=lambda a: a["AttributeName"]
    )
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    expected_indexes = definition["GlobalSecondaryIndexes"]
    assert set(indexes) == {e["IndexName"] for e in expected_indexes} == {stack.overdue_index_name, "Failed"}
    for expected in expected_indexes:
        index = indexes[expected["IndexName"]]
        assert index["KeySchema"] == expected["KeySchema"]
        assert index["Projection"]["ProjectionType"] == expected["Projection"]["ProjectionType"]
        assert sorted(index["Projection"]["NonKeyAttributes"]) == sorted(expected["Projection"]["NonKeyAttributes"])
    assert table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": definition["StreamSpecification"]["StreamViewType"],
    }
    assert table["LatestStreamArn"] == stack.stream_arn
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"  # TableCapacity's default: on-demand
    assert table["SSEDescription"]["SSEType"] == "KMS"
    assert table["SSEDescription"]["KMSMasterKeyArn"] == stack.key_arn

    ttl = ddb.describe_time_to_live(TableName=stack.table_name)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == definition["TimeToLiveSpecification"]["AttributeName"] == "expires_at"
    assert ttl["TimeToLiveStatus"] == "ENABLED"
    backups = ddb.describe_continuous_backups(TableName=stack.table_name)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_queues_redrive_policies_and_encryption_match_the_template(session, resources):
    stack = make(session)
    sqs = session.client("sqs")
    urls = {
        "EventsQueue": stack.events_queue_url,
        "EventsDeadLetterQueue": stack.events_dlq_url,
        "TimerQueue": stack.timer_queue_url,
        "TimerDeadLetterQueue": stack.timer_dlq_url,
        "StreamFailureQueue": stack.stream_failure_queue_url,
    }
    assert {k for k, v in resources.items() if v["Type"] == "AWS::SQS::Queue"} == set(urls)
    arns = {name: queue_attributes(sqs, url)["QueueArn"] for name, url in urls.items()}
    for name, url in urls.items():
        definition = resources[name]["Properties"]
        attributes = queue_attributes(sqs, url)
        assert attributes["KmsMasterKeyId"] == stack.key_arn, name
        for key in ("MessageRetentionPeriod", "VisibilityTimeout", "KmsDataKeyReusePeriodSeconds"):
            if key in definition:
                assert attributes[key] == str(definition[key]), f"{name}.{key}"
        if "RedrivePolicy" in definition:
            redrive = json.loads(attributes["RedrivePolicy"])
            target = definition["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            assert redrive["deadLetterTargetArn"] == arns[target], name
            assert int(redrive["maxReceiveCount"]) == definition["RedrivePolicy"]["maxReceiveCount"] == 5
        else:
            assert "RedrivePolicy" not in attributes, name


def test_rules_carry_the_template_pattern_with_the_bucket_lists_and_target_the_events_queue(session, resources):
    stack = make(session)
    events = session.client("events")
    sqs = session.client("sqs")
    events_queue_arn = queue_attributes(sqs, stack.events_queue_url)["QueueArn"]
    events_dlq_arn = queue_attributes(sqs, stack.events_dlq_url)["QueueArn"]
    expected_names = SOURCES + DESTINATIONS

    for logical_id, name, bus in (("DefaultBusObjectEventsRule", stack.default_bus_rule_name, "default"),):
        definition = resources[logical_id]["Properties"]
        rule = events.describe_rule(Name=name, EventBusName=bus)
        pattern = json.loads(rule["EventPattern"])
        assert pattern["source"] == definition["EventPattern"]["source"]
        assert pattern["detail-type"] == definition["EventPattern"]["detail-type"]
        assert pattern["detail"] == {"bucket": {"name": expected_names}}
        (target,) = events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]
        (expected,) = definition["Targets"]
        assert target["Id"] == expected["Id"]
        assert target["Arn"] == events_queue_arn
        assert target["DeadLetterConfig"] == {"Arn": events_dlq_arn}
        assert target["RetryPolicy"] == expected["RetryPolicy"]


def test_events_of_watched_buckets_reach_the_events_queue_from_the_default_bus(session):
    stack = make(session)
    events = session.client("events")
    sqs = session.client("sqs")

    def put(bucket: str, bus: str) -> None:
        detail = {"bucket": {"name": bucket}, "object": {"key": "k", "version-id": "v"}}
        entry = {"Source": "aws.s3", "DetailType": "Object Created", "Detail": json.dumps(detail), "EventBusName": bus}
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0

    assert stack.event_bus_name == "default"  # forwarders target it: no bus of the monitor's own
    put("src-one", stack.event_bus_name)  # forwarded from another region
    put("dst-one", "default")  # a bucket in the monitor's region
    put("not-watched", "default")
    messages = sqs.receive_message(QueueUrl=stack.events_queue_url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(json.loads(m["Body"])["detail"]["bucket"]["name"] for m in messages) == ["dst-one", "src-one"]


def test_prefix_matching_replaces_the_bucket_lists(session):
    stack = make(session, EventBucketPrefix="team-")
    rule = session.client("events").describe_rule(Name=stack.default_bus_rule_name)
    assert json.loads(rule["EventPattern"])["detail"] == {"bucket": {"name": [{"prefix": "team-"}]}}


def test_alert_topic_archive_bucket_and_delivery_stream(session, resources):
    stack = make(session)
    topic = session.client("sns").get_topic_attributes(TopicArn=stack.alert_topic_arn)["Attributes"]
    assert topic["KmsMasterKeyId"] == stack.key_arn

    s3 = session.client("s3")
    encryption = s3.get_bucket_encryption(Bucket=stack.archive_bucket)["ServerSideEncryptionConfiguration"]
    (rule,) = encryption["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": stack.key_arn}
    assert s3.get_bucket_versioning(Bucket=stack.archive_bucket)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=stack.archive_bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4

    definition = resources["ArchiveDeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    firehose = session.client("firehose")
    description = firehose.describe_delivery_stream(DeliveryStreamName=stack.delivery_stream_name)
    (destination,) = description["DeliveryStreamDescription"]["Destinations"]
    s3_destination = destination["ExtendedS3DestinationDescription"]
    assert s3_destination["BucketARN"] == f"arn:aws:s3:::{stack.archive_bucket}"
    assert s3_destination["Prefix"] == definition["Prefix"]
    assert s3_destination["ErrorOutputPrefix"] == definition["ErrorOutputPrefix"]
    assert s3_destination["BufferingHints"] == definition["BufferingHints"]
    assert s3_destination["CompressionFormat"] == definition["CompressionFormat"]

    firehose.put_record_batch(DeliveryStreamName=stack.delivery_stream_name, Records=[{"Data": b'{"a": 1}\n'}])
    assert s3.list_objects_v2(Bucket=stack.archive_bucket)["KeyCount"] == 1


def test_environment_is_the_template_globals_resolved(session):
    stack = make(session)
    env = stack.environment
    assert set(config.ENV_VARS) <= set(env)
    assert all(isinstance(value, str) for value in env.values())
    assert env["TABLE_NAME"] == stack.table_name
    assert env["OVERDUE_INDEX_NAME"] == stack.overdue_index_name == "Overdue"
    assert env["TIMER_QUEUE_URL"] == stack.timer_queue_url
    assert env["EVENTS_QUEUE_URL"] == stack.events_queue_url
    assert env["EVENTS_DLQ_URL"] == stack.events_dlq_url
    assert env["DELIVERY_STREAM_NAME"] == stack.delivery_stream_name
    assert env["ALERT_TOPIC_ARN"] == stack.alert_topic_arn
    assert env["SOURCE_BUCKETS"] == "src-one,src-two"
    assert env["DESTINATION_BUCKETS"] == "dst-one"
    assert env["RPO_SECONDS"] == "120"  # given
    assert env["GIVE_UP_SECONDS"] == "86400"  # the template's default
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "CRRMonitor"
    loaded = config.Config.from_env(env)
    assert loaded.source_buckets == ("src-one", "src-two")
    assert loaded.rpo_seconds == 120
    # No list: the stack's own account only (an event naming another account is refused).
    assert loaded.allowed_accounts == (loaded.account_id,) and len(loaded.account_id) == 12
    assert loaded.accepts_account(loaded.account_id) and not loaded.accepts_account("999988887777")


def test_allowed_accounts_always_include_the_stacks_own_account(session):
    """Events of the stack's own buckets carry its account ID: a list of other accounts must not reject them."""
    stack = make(session, AllowedAccounts="999988887777,444455556666")
    loaded = config.Config.from_env(stack.environment)
    assert loaded.allowed_accounts == (stack.account_id, "999988887777", "444455556666")


@pytest.mark.parametrize(
    ("schedule", "functions"),
    [
        ("", ("IngestFunction", "MatcherFunction", "SweeperFunction")),
        ("rate(6 hours)", ("IngestFunction", "MatcherFunction", "SweeperFunction", "ReconcileFunction")),
    ],
)
def test_functions_are_the_templates_active_ones(session, schedule, functions):
    assert make(session, ReconcileSchedule=schedule).functions == functions


def test_archive_off_leaves_no_stream_and_an_empty_stream_name(session):
    stack = make(session, ArchiveEnabled="false")
    assert stack.delivery_stream_name == "" and stack.archive_bucket == ""
    assert stack.environment["DELIVERY_STREAM_NAME"] == ""
    assert session.client("firehose").list_delivery_streams()["DeliveryStreamNames"] == []


def test_parameters_are_checked(session):
    with pytest.raises(ProvisionError, match="no default"):
        provision(TEMPLATE, session=session, stack_name="p", parameters={}, region=REGION)
    with pytest.raises(ProvisionError, match="not in the template"):
        make(session, NoSuchParameter="x")
    with pytest.raises(ProvisionError, match="not one of"):
        make(session, VerifyMode="md5")


@pytest.mark.parametrize(
    ("choice", "mode"),
    [("GOVERNANCE", "GOVERNANCE"), ("COMPLIANCE", "COMPLIANCE"), ("true", "GOVERNANCE"), ("false", None)],
)
def test_archive_object_lock_takes_the_chosen_mode(session, choice, mode):
    stack = make(session, ArchiveObjectLock=choice, ArchiveRetentionDays="30")
    s3 = session.client("s3")
    if mode is None:
        with pytest.raises(s3.exceptions.ClientError):
            s3.get_object_lock_configuration(Bucket=stack.archive_bucket)
        return
    lock = s3.get_object_lock_configuration(Bucket=stack.archive_bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    retention = lock["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Days"], retention.get("Years", 0)) == (mode, 30, 0)  # moto adds Years: 0


def test_archive_access_logs_go_to_the_named_bucket_only_when_named(session):
    s3 = session.client("s3")
    s3.create_bucket(Bucket="access-logs")
    s3.put_bucket_acl(Bucket="access-logs", ACL="log-delivery-write")
    stack = make(session, ArchiveAccessLogBucket="access-logs")
    logging = s3.get_bucket_logging(Bucket=stack.archive_bucket)["LoggingEnabled"]
    assert logging == {"TargetBucket": "access-logs", "TargetPrefix": "prov-test/archive/"}
    other = provision(TEMPLATE, session=session, stack_name="prov-off", parameters=PARAMETERS, region=REGION)
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=other.archive_bucket)
