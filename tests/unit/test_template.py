"""template.yaml and forwarder/template.yaml: what the code relies on, and the security and publishing
properties an operator expects (encryption, TLS, least privilege, dead-letter queues, SAR types)."""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_file

from crrmon import config, slo
from crrmon.bands import AGE_BAND_NAMES
from crrmon.metrics import Counters
from crrmon.model import Status
from crrmon.publish import Change, count_metrics
from crrmon.store import FAILED_INDEX
from crrmon_local.cfn import load_template, translate
from crrmon_local.provision import Resolver

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
FORWARDER = ROOT / "forwarder" / "template.yaml"

POWERTOOLS_VARS = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_TRACE_DISABLED",
}

# AWS Serverless Application Repository, "List of Supported AWS Resources": a copy with its source and the
# date it was read. The test fails on any type of the translated template outside it.
SAR_SUPPORTED_RESOURCES = ROOT / "tests" / "data" / "sar-supported-resources.txt"

# Allow statements of identity policies that may name Resource "*": actions AWS offers no resource-level
# permission for (the service authorization reference lists no resource type for them).
WILDCARD_ALLOW_EXCEPTIONS: dict[str, str] = {
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions; only with EnableTracing=true",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions; only with EnableTracing=true",
    "cloudwatch:GetMetricData": "CloudWatch has no resource-level permissions for it; only with SloObjective set",
}

FUNCTIONS = ("IngestFunction", "MatcherFunction", "SweeperFunction", "ReconcileFunction")

# Every optional part on, so that every conditional statement is translated and checked.
PARAMETERS = {
    "SourceBuckets": "src-a,src-b",
    "DestinationBuckets": "dst-a,dst-b",
    "EnableTracing": "true",
    "ReconcileSchedule": "rate(6 hours)",
    "AllowedAccounts": "210987654321",
    "SloObjective": "99.9",
}


# ---------------------------------------------------------------- helpers


@cache
def _template(path: Path = TEMPLATE) -> dict[str, Any]:
    return load_template(path)


def template() -> dict[str, Any]:
    return copy.deepcopy(_template())


def resources(tpl: dict[str, Any], type_: str | None = None) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in tpl["Resources"].items() if type_ is None or v["Type"] == type_}


def branches(value: Any) -> list[Any]:
    """Every value a (possibly conditional) property can take; AWS::NoValue drops out."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        _, yes, no = value["Fn::If"]
        return branches(yes) + branches(no)
    if value == {"Ref": "AWS::NoValue"}:
        return []
    return [value]


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document.get("Statement", [])
    found = found if isinstance(found, list) else [found]
    return [s for item in found for s in branches(item)]


def ref_name(value: Any) -> str | None:
    """The logical ID behind {"Ref": X} or {"Fn::GetAtt": [X, ...]}."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
    return None


def role_of(tpl: dict[str, Any], function: str) -> dict[str, Any]:
    """The explicit role a function names (Role: !GetAtt <role>.Arn)."""
    role = tpl["Resources"][function]["Properties"]["Role"]
    assert set(role) == {"Fn::GetAtt"} and role["Fn::GetAtt"][1] == "Arn", function
    return tpl["Resources"][role["Fn::GetAtt"][0]]


def role_statements(tpl: dict[str, Any], function: str) -> list[dict[str, Any]]:
    """Every statement (each branch of a conditional one) of the function's role and the policies attached to it."""
    role_name = tpl["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    documents = [
        p["PolicyDocument"] for policy in role_of(tpl, function)["Properties"]["Policies"] for p in branches(policy)
    ]
    documents += [
        res["Properties"]["PolicyDocument"]
        for res in resources(tpl, "AWS::IAM::Policy").values()
        if {"Ref": role_name} in res["Properties"]["Roles"]
    ]
    return [s for document in documents for s in statements(document)]


@cache
def _translated() -> dict[str, Any]:
    return translate(template(), PARAMETERS)


def translated() -> dict[str, Any]:
    return copy.deepcopy(_translated())


def dead_letter_queues(tpl: dict[str, Any]) -> set[str]:
    """Queues that receive what failed elsewhere: redrive targets, on-failure and rule DLQs."""
    queues = set(resources(tpl, "AWS::SQS::Queue"))
    redrive = {
        ref_name(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for q in resources(tpl, "AWS::SQS::Queue").values()
        if "RedrivePolicy" in q.get("Properties", {})
    }
    on_failure = {
        ref_name(event["Properties"]["DestinationConfig"]["OnFailure"]["Destination"])
        for fn in resources(tpl, "AWS::Serverless::Function").values()
        for event in fn["Properties"].get("Events", {}).values()
        if "DestinationConfig" in event.get("Properties", {})
    }
    rule_dlqs = {
        ref_name(target["DeadLetterConfig"]["Arn"])
        for rule in resources(tpl, "AWS::Events::Rule").values()
        for target in rule["Properties"].get("Targets", [])
        if "DeadLetterConfig" in target
    }
    subscription_dlqs = {
        ref_name(sub["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for sub in resources(tpl, "AWS::SNS::Subscription").values()
        if "RedrivePolicy" in sub["Properties"]
    }
    return (redrive | on_failure | rule_dlqs | subscription_dlqs) & queues


def batch_events(tpl: dict[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    return {
        f"{fn_name}.{event_name}": event["Properties"]
        for fn_name, fn in resources(tpl, "AWS::Serverless::Function").items()
        for event_name, event in fn["Properties"].get("Events", {}).items()
        if event["Type"] in types
    }


# ---------------------------------------------------------------- what the code relies on


def test_globals_environment_is_exactly_the_config_variables_plus_powertools():
    tpl = template()
    variables = tpl["Globals"]["Function"]["Environment"]["Variables"]
    assert set(variables) == set(config.ENV_VARS) | POWERTOOLS_VARS
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "CRRMonitor"
    assert variables["OVERDUE_INDEX_NAME"] == "Overdue"
    for name, fn in resources(tpl, "AWS::Serverless::Function").items():
        assert "Environment" not in fn["Properties"], f"{name} must take the shared environment from Globals"


def test_names_shared_with_the_code_exist():
    tpl = template()
    expected = {
        "EventsQueue": "AWS::SQS::Queue",
        "EventsDeadLetterQueue": "AWS::SQS::Queue",
        "TimerQueue": "AWS::SQS::Queue",
        "TimerDeadLetterQueue": "AWS::SQS::Queue",
        "StreamFailureQueue": "AWS::SQS::Queue",
        "ReplicationTable": "AWS::DynamoDB::Table",
        "ArchiveDeliveryStream": "AWS::KinesisFirehose::DeliveryStream",
        "ArchiveBucket": "AWS::S3::Bucket",
        "AlertTopic": "AWS::SNS::Topic",
        "CommonLayer": "AWS::Serverless::LayerVersion",
        "IngestFunction": "AWS::Serverless::Function",
        "MatcherFunction": "AWS::Serverless::Function",
        "SweeperFunction": "AWS::Serverless::Function",
        "ReconcileFunction": "AWS::Serverless::Function",
        # HeadRoleArns names the sweeper's role; the forwarder's read-only role trusts it.
        "SweeperFunctionRole": "AWS::IAM::Role",
    }
    assert {name: tpl["Resources"][name]["Type"] for name in expected} == expected
    for name in ("IngestFunction", "MatcherFunction", "SweeperFunction", "ReconcileFunction"):
        folder = name.removesuffix("Function").lower()
        assert tpl["Resources"][name]["Properties"]["CodeUri"].rstrip("/") == f"functions/{folder}"
    assert tpl["Globals"]["Function"]["Handler"] == "app.lambda_handler"


def test_table_matches_the_documented_item_model():
    table = template()["Resources"]["ReplicationTable"]["Properties"]
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "dest", "KeyType": "RANGE"},
    ]
    overdue, failed = table["GlobalSecondaryIndexes"]
    assert overdue["IndexName"] == "Overdue"
    assert overdue["KeySchema"] == [
        {"AttributeName": "ovd_pair", "KeyType": "HASH"},
        {"AttributeName": "first_seen", "KeyType": "RANGE"},
    ]
    assert failed["IndexName"] == FAILED_INDEX
    assert failed["KeySchema"] == [
        {"AttributeName": "fail_pair", "KeyType": "HASH"},
        {"AttributeName": "decided_at", "KeyType": "RANGE"},
    ]
    # What `crrmon failed` shows comes from the index alone.
    assert {"src", "reason", "s_size"} <= set(failed["Projection"]["NonKeyAttributes"])
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_stream_filters_split_the_stream_between_matcher_and_sweeper():
    events = batch_events(template(), "DynamoDB")
    patterns = {name: json.loads(e["FilterCriteria"]["Filters"][0]["Pattern"]) for name, e in events.items()}
    assert patterns["MatcherFunction.TableChanges"] == {"eventName": ["INSERT", "MODIFY"]}
    assert patterns["SweeperFunction.TtlExpiries"] == {
        "eventName": ["REMOVE"],
        "userIdentity": {"type": ["Service"], "principalId": ["dynamodb.amazonaws.com"]},
    }
    # A DynamoDB stream shard serves at most two Lambda readers.
    assert len(events) == 2


def test_event_rules_match_watched_buckets_and_the_pattern_fits_with_many_buckets():
    tpl = template()
    rules = resources(tpl, "AWS::Events::Rule")
    # One rule on the default bus takes this region's S3 events and those forwarders send (SAR deploys no
    # AWS::Events::EventBus).
    (rule,) = rules.values()
    assert "EventBusName" not in rule["Properties"]
    assert not resources(tpl, "AWS::Events::EventBus")
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created", "Object Deleted"]
    # The documented capacity: 28 bucket names of 63 characters stay under EventBridge's default
    # 2048-character pattern limit.
    names = [f"{i:02d}".ljust(63, "b") for i in range(28)]
    concrete = {**pattern, "detail": {"bucket": {"name": names}}}
    assert len(json.dumps(concrete)) <= 2048


# ---------------------------------------------------------------- reliability


def test_queues_other_than_dead_letter_queues_redrive_to_one():
    for tpl in (template(), load_template(FORWARDER)):
        dlqs = dead_letter_queues(tpl)
        for name, queue in resources(tpl, "AWS::SQS::Queue").items():
            if name in dlqs:
                assert "RedrivePolicy" not in queue.get("Properties", {}), name
                continue
            redrive = queue["Properties"].get("RedrivePolicy")
            assert redrive, f"{name} has no dead-letter queue"
            assert ref_name(redrive["deadLetterTargetArn"]) in dlqs
            assert 1 <= redrive["maxReceiveCount"] <= 10
    assert dead_letter_queues(template()) == {"EventsDeadLetterQueue", "TimerDeadLetterQueue", "StreamFailureQueue"}


def test_stream_events_bisect_and_send_failures_somewhere():
    events = batch_events(template(), "DynamoDB")
    assert events
    for name, props in events.items():
        assert props["BisectBatchOnFunctionError"] is True, name
        assert ref_name(props["DestinationConfig"]["OnFailure"]["Destination"]) == "StreamFailureQueue", name
        assert props["MaximumRetryAttempts"] >= 1, name
        assert props["StartingPosition"] == "TRIM_HORIZON", name


def test_batch_events_report_item_failures():
    events = batch_events(template(), "SQS", "DynamoDB", "Kinesis")
    assert len(events) == 4
    for name, props in events.items():
        assert "ReportBatchItemFailures" in props.get("FunctionResponseTypes", []), name


def test_functions_have_log_groups_with_retention():
    tpl = template()
    groups = resources(tpl, "AWS::Logs::LogGroup")
    subs = {json.dumps(g["Properties"].get("LogGroupName")) for g in groups.values()}
    for fn in resources(tpl, "AWS::Serverless::Function"):
        assert json.dumps({"Fn::Sub": f"/aws/lambda/${{{fn}}}"}) in subs, fn
    for name, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name


# ---------------------------------------------------------------- security


def test_every_data_store_is_encrypted_with_kms():
    key_refs = {"MonitorKey", "KmsKeyArn", "ForwarderKey"}

    def uses_key(value: Any) -> bool:
        return bool(branches(value)) and all(ref_name(v) in key_refs for v in branches(value))

    for tpl in (template(), load_template(FORWARDER)):
        for name, res in tpl["Resources"].items():
            props = res.get("Properties", {})
            match res["Type"]:
                case "AWS::SQS::Queue" | "AWS::SNS::Topic":
                    assert uses_key(props.get("KmsMasterKeyId")), name
                case "AWS::DynamoDB::Table":
                    sse = props["SSESpecification"]
                    assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS" and uses_key(sse["KMSMasterKeyId"])
                case "AWS::S3::Bucket":
                    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                    default = rule["ServerSideEncryptionByDefault"]
                    assert default["SSEAlgorithm"] == "aws:kms" and uses_key(default["KMSMasterKeyID"]), name
                case "AWS::KinesisFirehose::DeliveryStream":
                    assert props["DeliveryStreamEncryptionConfigurationInput"]["KeyType"] == "CUSTOMER_MANAGED_CMK"
                    assert uses_key(props["DeliveryStreamEncryptionConfigurationInput"]["KeyARN"])
                    s3 = props["ExtendedS3DestinationConfiguration"]
                    assert uses_key(s3["EncryptionConfiguration"]["KMSEncryptionConfig"]["AWSKMSKeyARN"])
                case "AWS::Logs::LogGroup":
                    assert uses_key(props.get("KmsKeyId")), name
                case "AWS::KMS::Key":
                    assert props["EnableKeyRotation"] is True, name


def test_alert_topic_key_admits_cloudwatch_alarms():
    key = template()["Resources"]["MonitorKey"]["Properties"]["KeyPolicy"]
    services = {json.dumps(s["Principal"].get("Service")) for s in statements(key) if "Service" in s["Principal"]}
    assert '"cloudwatch.amazonaws.com"' in services  # alias/aws/sns would drop alarm notifications silently


def test_key_policies_bind_every_service_principal_to_its_sources():
    for tpl, key in ((template(), "MonitorKey"), (load_template(FORWARDER), "ForwarderKey")):
        policy = tpl["Resources"][key]["Properties"]["KeyPolicy"]
        services = [s for s in statements(policy) if "Service" in s["Principal"]]
        assert services, key
        for s in services:
            condition = json.dumps(s.get("Condition", {}))
            # CloudWatch Logs states its source in the encryption context (the log group's ARN).
            bound = ("aws:SourceAccount" in condition or "aws:SourceArn" in condition) or (
                "kms:EncryptionContext:aws:logs:arn" in condition
            )
            assert bound, f"{key}: {s['Sid']} admits its service for any account's resources"
            assert set(s["Action"]) <= {
                "kms:Decrypt",
                "kms:GenerateDataKey*",
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:Describe*",
            }, s["Sid"]


def test_event_bus_policy_admits_only_s3_object_events_of_the_allowed_accounts():
    tpl = template()
    policy = tpl["Resources"]["MonitorEventBusPolicy"]
    assert policy["Condition"] == "HasAllowedAccounts"
    props = policy["Properties"]
    assert props["EventBusName"] == "default"
    statement = props["Statement"]
    assert statement["Principal"] == {"AWS": {"Ref": "AllowedAccounts"}}
    assert statement["Action"] == "events:PutEvents"
    assert statement["Condition"] == {
        "StringEquals": {"events:source": "aws.s3", "events:detail-type": ["Object Created", "Object Deleted"]}
    }
    # The rule matches the same: a forwarder can put nothing else that reaches the monitor.
    (rule,) = resources(tpl, "AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert [pattern["source"], pattern["detail-type"]] == [["aws.s3"], ["Object Created", "Object Deleted"]]


def test_archive_bucket_object_lock_modes_and_optional_access_logs():
    tpl = template()
    lock = tpl["Parameters"]["ArchiveObjectLock"]
    assert set(lock["AllowedValues"]) == {"false", "true", "GOVERNANCE", "COMPLIANCE"}
    assert lock["Default"] == "false"
    bucket = tpl["Resources"]["ArchiveBucket"]["Properties"]
    retention = bucket["ObjectLockConfiguration"]["Fn::If"][1]["Rule"]["DefaultRetention"]
    assert retention["Mode"] == {"Fn::If": ["ArchiveObjectLockCompliance", "COMPLIANCE", "GOVERNANCE"]}
    assert tpl["Conditions"]["ArchiveObjectLockCompliance"] == {
        "Fn::Equals": [{"Ref": "ArchiveObjectLock"}, "COMPLIANCE"]
    }
    # "true" (the earlier form) still turns the lock on, in GOVERNANCE mode.
    assert tpl["Conditions"]["ArchiveObjectLockEnabled"] == {
        "Fn::And": [
            {"Condition": "ArchiveEnabled"},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "ArchiveObjectLock"}, "false"]}]},
        ]
    }
    assert tpl["Parameters"]["ArchiveAccessLogBucket"]["Default"] == ""
    logging = bucket["LoggingConfiguration"]["Fn::If"]
    assert logging[0] == "HasArchiveAccessLogs" and logging[2] == {"Ref": "AWS::NoValue"}
    assert logging[1]["DestinationBucketName"] == {"Ref": "ArchiveAccessLogBucket"}


def test_forwarder_subscription_dead_letters_to_an_encrypted_queue_only_its_topic_may_write():
    tpl = load_template(FORWARDER)
    subscription = tpl["Resources"]["MonitorQueueSubscription"]["Properties"]
    dlq = ref_name(subscription["RedrivePolicy"]["deadLetterTargetArn"])
    assert tpl["Resources"][dlq]["Type"] == "AWS::SQS::Queue"
    assert ref_name(tpl["Resources"][dlq]["Properties"]["KmsMasterKeyId"]) == "ForwarderKey"
    (policy,) = [
        p for p in resources(tpl, "AWS::SQS::QueuePolicy").values() if {"Ref": dlq} in p["Properties"]["Queues"]
    ]
    (allow,) = [s for s in statements(policy["Properties"]["PolicyDocument"]) if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "sns.amazonaws.com"} and allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "ReplicationFailureTopic"}}}
    key = tpl["Resources"]["ForwarderKey"]["Properties"]["KeyPolicy"]
    assert any(s["Principal"] == {"Service": "sns.amazonaws.com"} for s in statements(key))
    assert tpl["Parameters"]["PermissionsBoundaryArn"]["Default"] == ""


def test_buckets_deny_insecure_transport_and_block_public_access():
    tpl = template()
    buckets = resources(tpl, "AWS::S3::Bucket")
    assert buckets
    policies = resources(tpl, "AWS::S3::BucketPolicy")
    for name, bucket in buckets.items():
        block = bucket["Properties"]["PublicAccessBlockConfiguration"]
        assert block == dict.fromkeys(
            ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
        ), name
        assert bucket["Properties"]["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
        (policy,) = [p for p in policies.values() if ref_name(p["Properties"]["Bucket"]) == name]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements(policy["Properties"]["PolicyDocument"])
        ), name


def test_queue_and_topic_policies_deny_insecure_transport():
    for tpl in (template(), load_template(FORWARDER)):
        covered: set[str] = set()
        for policy in resources(tpl, "AWS::SQS::QueuePolicy").values():
            if any(
                s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
                for s in statements(policy["Properties"]["PolicyDocument"])
            ):
                covered |= {ref_name(q) for q in policy["Properties"]["Queues"]}
        assert covered == set(resources(tpl, "AWS::SQS::Queue"))


def test_events_queue_admits_only_the_expected_senders():
    policy = template()["Resources"]["EventsQueuePolicy"]["Properties"]["PolicyDocument"]
    allows = [s for s in statements(policy) if s["Effect"] == "Allow"]
    assert {s["Principal"]["Service"] for s in allows} == {
        "events.amazonaws.com",
        "s3.amazonaws.com",
        "sns.amazonaws.com",
    }
    for s in allows:
        assert s["Action"] == "sqs:SendMessage"
        assert "aws:SourceArn" in json.dumps(s["Condition"]), s["Sid"]
    (rules,) = [s for s in allows if s["Principal"]["Service"] == "events.amazonaws.com"]
    assert ref_name(rules["Condition"]["ArnEquals"]["aws:SourceArn"]) == "DefaultBusObjectEventsRule"


def _policy_documents(tpl: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(resource, type, document) of every identity and resource policy, conditional ones included."""
    found = []
    for name, res in tpl["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                for p in branches(policy):
                    found.append((name, "identity", p["PolicyDocument"]))
        elif res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            found.append((name, "identity", props["PolicyDocument"]))
        elif res["Type"] == "AWS::KMS::Key":
            found.append((name, "key", props["KeyPolicy"]))
        elif "PolicyDocument" in props:
            found.append((name, "resource", props["PolicyDocument"]))
    return found


def test_no_allow_statement_on_every_resource_beyond_the_listed_exceptions():
    documents = _policy_documents(translated()) + _policy_documents(load_template(FORWARDER))
    assert any(kind == "identity" for _, kind, _ in documents)
    for name, kind, document in documents:
        for s in statements(document):
            assert "NotResource" not in s and "NotAction" not in s, name
            if s["Effect"] != "Allow":
                continue
            resources_ = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            if "*" not in resources_:
                continue
            if kind == "key":
                continue  # in a key policy, Resource "*" means the key itself
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            for action in actions:
                assert action in WILDCARD_ALLOW_EXCEPTIONS, f"{name}: {action} on Resource '*'"


def test_functions_have_explicit_roles_without_managed_policies_and_with_the_boundary():
    tpl = template()
    for function in FUNCTIONS:
        role = role_of(tpl, function)
        assert role["Type"] == "AWS::IAM::Role", function
        assert role.get("Condition") == tpl["Resources"][function].get("Condition"), function
    assert "PermissionsBoundary" not in tpl["Globals"]["Function"]  # SAM applies it only to roles it generates
    # SAM generates no role (nor attaches a managed policy) once every function names its own.
    roles = resources(translated(), "AWS::IAM::Role")
    assert set(roles) == {f"{function}Role" for function in FUNCTIONS} | {"ArchiveDeliveryRole"}
    for tpl_ in (translated(), load_template(FORWARDER)):
        for name, role in resources(tpl_, "AWS::IAM::Role").items():
            assert not role["Properties"].get("ManagedPolicyArns"), f"{name}: no managed policy"
            assert role["Properties"]["PermissionsBoundary"] == {
                "Fn::If": ["HasPermissionsBoundary", {"Ref": "PermissionsBoundaryArn"}, {"Ref": "AWS::NoValue"}]
            }, name


def test_tracing_permissions_exist_only_with_tracing():
    tpl = template()
    for function in FUNCTIONS:
        policies = role_of(tpl, function)["Properties"]["Policies"]
        xray = [p for p in policies if "xray:" in json.dumps(p)]
        assert len(xray) == 1 and xray[0]["Fn::If"][0] == "TracingEnabled", function
        assert xray[0]["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    assert tpl["Conditions"]["TracingEnabled"] == {"Fn::Equals": [{"Ref": "EnableTracing"}, "true"]}


def test_each_function_logs_only_to_its_own_log_group():
    tpl = template()
    for function in FUNCTIONS:
        group = f"{function.removesuffix('Function')}LogGroup"
        logs = [s for s in role_statements(tpl, function) if "logs:" in json.dumps(s["Action"])]
        assert logs, function
        for s in logs:
            assert set(s["Action"]) == {"logs:CreateLogStream", "logs:PutLogEvents"}, function
            assert s["Resource"] == {"Fn::GetAtt": [group, "Arn"]}, function


def test_event_source_permissions_name_the_functions_own_queue_and_the_tables_stream():
    tpl = template()
    polling = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"}
    stream = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}
    expected_queue = {"IngestFunction": "EventsQueue", "SweeperFunction": "TimerQueue"}
    for function in FUNCTIONS:
        found = role_statements(tpl, function)
        receive = [s for s in found if "sqs:ReceiveMessage" in json.dumps(s["Action"])]
        if function in expected_queue:
            (s,) = receive
            assert set(s["Action"]) == polling and s["Resource"] == {"Fn::GetAtt": [expected_queue[function], "Arn"]}
        else:
            assert not receive, function
        reads = [s for s in found if "dynamodb:GetRecords" in json.dumps(s["Action"])]
        if function in ("MatcherFunction", "SweeperFunction"):
            (s,) = reads
            assert set(s["Action"]) == stream and s["Resource"] == {"Fn::GetAtt": ["ReplicationTable", "StreamArn"]}
        else:
            assert not reads, function


def test_reconciliation_exists_only_with_a_schedule_and_lists_only_source_buckets():
    tpl = template()
    assert tpl["Parameters"]["ReconcileSchedule"]["Default"] == ""
    assert tpl["Conditions"]["ReconcileEnabled"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ReconcileSchedule"}, ""]}]}
    conditional = {n for n, r in tpl["Resources"].items() if r.get("Condition") == "ReconcileEnabled"}
    assert {"ReconcileFunction", "ReconcileLogGroup", "UntrackedVersionsAlarm", "ReconcileErrorsAlarm"} <= conditional
    # Nothing else names the function: with the schedule off, the stack holds no part of it.
    for name, resource in tpl["Resources"].items():
        if name not in conditional:
            assert "ReconcileFunction" not in json.dumps(resource), name
    function = tpl["Resources"]["ReconcileFunction"]["Properties"]
    (event,) = function["Events"].values()
    assert event == {
        "Type": "Schedule",
        "Properties": {"Schedule": {"Ref": "ReconcileSchedule"}, "Description": event["Properties"]["Description"]},
    }
    assert function["Timeout"] == 900  # Lambda's maximum; a run stops listing 30 s before it
    listing = [
        s for s in role_statements(tpl, "ReconcileFunction") if "s3:ListBucketVersions" in json.dumps(s["Action"])
    ]
    assert len(listing) == 1 and "SourceBuckets" in json.dumps(listing[0]["Resource"])
    assert "DestinationBuckets" not in json.dumps(listing[0]["Resource"])
    # What SAM generates for the function (role, schedule rule, invoke permission) carries the condition.
    generated = {n: r for n, r in translated()["Resources"].items() if n.startswith("ReconcileFunction")}
    assert {r["Type"] for r in generated.values()} >= {"AWS::IAM::Role", "AWS::Events::Rule", "AWS::Lambda::Permission"}
    assert {r.get("Condition") for r in generated.values()} == {"ReconcileEnabled"}


def test_canary_writes_only_under_the_canary_prefix_and_only_when_enabled():
    role = role_of(template(), "SweeperFunction")["Properties"]
    (document,) = [p["PolicyDocument"] for p in role["Policies"] if p.get("PolicyName") == "Sweeper"]
    statements_ = document["Statement"]
    writes = [
        (item["Fn::If"][0], item["Fn::If"][1])
        for item in statements_
        if isinstance(item, dict) and "Fn::If" in item and "s3:PutObject" in json.dumps(item)
    ]
    assert len(writes) == 1
    condition, statement = writes[0]
    assert condition == "CanaryEnabled"
    assert set(statement["Action"]) == {"s3:PutObject", "s3:DeleteObjectVersion"}
    assert "/crr-monitor-canary/*" in json.dumps(statement["Resource"])
    others = [s for s in statements_ if "Fn::If" not in s]
    assert not any("s3:PutObject" in json.dumps(s) or "s3:DeleteObject" in json.dumps(s) for s in others)


# ---------------------------------------------------------------- publishing


def sar_supported_types() -> set[str]:
    lines = SAR_SUPPORTED_RESOURCES.read_text().splitlines()
    header = [line for line in lines if line.startswith("#")]
    assert any("https://docs.aws.amazon.com/serverlessrepo/" in line for line in header)  # its source
    assert any(re.search(r"Read: \d{4}-\d{2}-\d{2}", line) for line in header)  # and when it was read
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


@pytest.mark.parametrize(
    "parameters",
    [PARAMETERS, {"SourceBuckets": "src-a", "ArchiveEnabled": "false", "KmsKeyArn": ""}],
    ids=["everything-on", "minimal"],
)
def test_translated_template_uses_only_sar_supported_types(parameters):
    types = {res["Type"] for res in translate(template(), parameters)["Resources"].values()}
    unsupported = types - sar_supported_types()
    assert not unsupported, f"not on SAR's list of supported resources: {sorted(unsupported)}"


def test_no_sam_features_that_sar_lacks():
    text = TEMPLATE.read_text()
    for feature in ("ScheduleV2", "FunctionUrlConfig", "AWS::Serverless::Connector", "Connectors:"):
        assert feature not in text


def test_sar_metadata_has_no_intrinsics_and_matches_the_changelog():
    metadata = template()["Metadata"]["AWS::ServerlessRepo::Application"]
    assert "Fn::" not in json.dumps(metadata) and '"Ref"' not in json.dumps(metadata)
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", metadata["Name"])
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", metadata["Author"])
    assert metadata["SpdxLicenseId"] == "Apache-2.0"
    assert (ROOT / metadata["LicenseUrl"]).is_file()
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{metadata['SemanticVersion']}]" in changelog


# SAR's limits on the application's metadata (CreateApplication in the SAR API reference; publishing
# fails on any field outside them).
SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?"
)


def test_sar_metadata_fits_sars_limits():
    metadata = template()["Metadata"]["AWS::ServerlessRepo::Application"]
    assert set(metadata) <= {
        "Name",
        "Description",
        "Author",
        "SpdxLicenseId",
        "LicenseUrl",
        "ReadmeUrl",
        "Labels",
        "HomePageUrl",
        "SemanticVersion",
        "SourceCodeUrl",
    }
    assert re.fullmatch(r"[a-zA-Z0-9-]{1,140}", metadata["Name"])
    assert 1 <= len(metadata["Description"]) <= 256, len(metadata["Description"])
    assert re.fullmatch(r"[a-zA-Z0-9-]{1,127}", metadata["Author"])
    assert len(metadata["Labels"]) <= 10
    for label in metadata["Labels"]:
        assert re.fullmatch(r"[a-zA-Z0-9+\-_:/@]{1,127}", label), label
    assert SEMVER.fullmatch(metadata["SemanticVersion"])
    for field in ("LicenseUrl", "ReadmeUrl"):  # files of the repository, uploaded by sam publish
        assert (ROOT / metadata[field]).is_file(), field
    for field in ("HomePageUrl", "SourceCodeUrl"):
        assert re.fullmatch(r"https://[^\s]+", metadata[field]), field


def test_readme_shown_by_sar_has_no_links_that_work_only_inside_the_repository():
    readme = (ROOT / template()["Metadata"]["AWS::ServerlessRepo::Application"]["ReadmeUrl"]).read_text()
    targets = re.findall(r"\]\(([^)\s]+)[^)]*\)", readme) + re.findall(r"^\[[^\]]+\]:\s*(\S+)", readme, re.M)
    targets += re.findall(r"(?:href|src)=[\"']([^\"']+)", readme)
    assert targets  # the patterns do find links
    relative = [t for t in targets if not re.match(r"(https?://|mailto:|#)", t)]
    assert not relative, f"links that work only inside the repository: {relative}"


def test_no_hard_coded_physical_names():
    for tpl in (template(), load_template(FORWARDER)):
        for name, res in tpl["Resources"].items():
            props = res.get("Properties", {})
            for key in ("Name", "QueueName", "TopicName", "TableName", "BucketName", "FunctionName", "AliasName"):
                if key in props:
                    assert "${AWS::StackName}" in json.dumps(props[key]), f"{name}.{key}"


@pytest.mark.parametrize("path", [TEMPLATE, FORWARDER], ids=["template", "forwarder"])
def test_every_accepted_checkov_finding_says_why(path):
    for name, res in load_template(path)["Resources"].items():
        for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), name
            assert len(skip.get("comment", "")) >= 20, f"{name}: {skip['id']} has no reason"


@pytest.mark.parametrize("path", [TEMPLATE, FORWARDER], ids=["template", "forwarder"])
def test_cfn_lint_finds_no_errors(path):
    errors = [m for m in lint_file(path) if m.rule.severity == "error"]
    assert not errors, "\n".join(str(m) for m in errors)


def test_forwarder_read_role_reads_versions_only_and_trusts_only_the_monitors_head_roles():
    forwarder = _template(FORWARDER)
    role = forwarder["Resources"]["MonitorReadOnlyRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"] == {
        "Fn::If": [
            "HasMonitorRoles",
            {"ArnEquals": {"aws:PrincipalArn": {"Ref": "MonitorRoleArns"}}},
            {"Ref": "AWS::NoValue"},
        ]
    }
    actions = {
        action
        for policy in role["Policies"]
        for s in statements(policy["PolicyDocument"])
        for action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    # A HEAD by version ID, and s3:ListBucket so that a missing version answers 404, not 403.
    assert actions == {
        "s3:GetObjectVersion",
        "s3:ListBucket",
        "s3:GetReplicationConfiguration",
        "s3:GetBucketNotification",
    }
    # The monitor's output names the role to trust; only that function (the sweeper) may assume the roles.
    monitor = template()
    assert monitor["Outputs"]["HeadRoleArns"]["Value"] == {"Fn::GetAtt": ["SweeperFunctionRole", "Arn"]}
    for function in FUNCTIONS:
        text = json.dumps(role_statements(monitor, function))
        grants = '"sts:AssumeRole", "Resource": {"Ref": "ReaderRoleArns"}' in text
        assert grants is (function == "SweeperFunction"), function


def test_heading_functions_may_list_the_buckets_they_head():
    for function, lists in (
        ("IngestFunction", ["SourceBuckets"]),
        ("SweeperFunction", ["SourceBuckets", "DestinationBuckets"]),
    ):
        listed = [s for s in role_statements(template(), function) if s.get("Action") == "s3:ListBucket"]
        assert sorted(p for s in listed for p in lists if p in json.dumps(s["Resource"])) == sorted(lists), function


@pytest.mark.parametrize(("capacity", "mode"), [("on-demand", "PAY_PER_REQUEST"), ("provisioned", "PROVISIONED")])
def test_table_capacity_chooses_the_billing_mode_and_auto_scaling(capacity, mode):
    tpl = template()
    assert tpl["Parameters"]["TableCapacity"]["Default"] == "on-demand"
    resolver = Resolver(
        tpl, {"SourceBuckets": "b", "TableCapacity": capacity}, stack_name="s", region="us-east-1", account="1" * 12
    )
    resolver.created("ReplicationTable", "s-table")
    table = resolver.resolve(tpl["Resources"]["ReplicationTable"]["Properties"]["BillingMode"])
    assert table == mode
    scaling = {
        logical_id: resolver.resolve(resource["Properties"])
        for logical_id, resource in tpl["Resources"].items()
        if resource["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget" and resolver.active(logical_id)
    }
    for logical_id in scaling:
        resolver.created(logical_id, f"target-{logical_id}")
    policies = [
        resolver.resolve(resource["Properties"])
        for logical_id, resource in tpl["Resources"].items()
        if resource["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy" and resolver.active(logical_id)
    ]
    throughput = [
        resolver.resolve(index.get("ProvisionedThroughput", {"Ref": "AWS::NoValue"}))
        for index in tpl["Resources"]["ReplicationTable"]["Properties"]["GlobalSecondaryIndexes"]
    ]
    if mode == "PAY_PER_REQUEST":
        assert scaling == {} and policies == []
        return
    # Every write the monitor makes (the table and both indexes), the table's reads and the Overdue index's
    # (the backlog gauge counts its entries each minute) scale, at 70% use.
    assert {(t["ResourceId"], t["ScalableDimension"]) for t in scaling.values()} == {
        ("table/s-table", "dynamodb:table:WriteCapacityUnits"),
        ("table/s-table", "dynamodb:table:ReadCapacityUnits"),
        ("table/s-table/index/Overdue", "dynamodb:index:WriteCapacityUnits"),
        ("table/s-table/index/Overdue", "dynamodb:index:ReadCapacityUnits"),
        ("table/s-table/index/Failed", "dynamodb:index:WriteCapacityUnits"),
    }
    assert all(t["MaxCapacity"] == "40000" for t in scaling.values())
    assert sorted(p["ScalingTargetId"] for p in policies) == sorted(f"target-{t}" for t in scaling)
    assert {p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] for p in policies} == {70}
    assert all(t["WriteCapacityUnits"] >= 5 for t in throughput)


# ---------------------------------------------------------------- dashboard

SEARCH = re.compile(
    r"SEARCH\('\{(?P<schema>[^}]*)\} MetricName=\"(?P<metric>\w+)\"(?P<terms>[^']*)', '(?P<stat>\w+)'\)"
)
EMITTED = {
    name
    for path in (ROOT / "layers" / "common" / "crrmon").glob("*.py")
    for name in re.findall(r'\.add\(\s*"(\w+)"', path.read_text())
}


def dashboard() -> list[dict[str, Any]]:
    """The dashboard's widgets as CloudWatch receives them (its body resolved, then parsed as JSON)."""
    tpl = template()
    resolver = Resolver(tpl, {"SourceBuckets": "b"}, stack_name="s", region="us-east-1", account="1" * 12)
    for logical_id in tpl["Resources"]:
        resolver.created(logical_id, f"ref-{logical_id}", QueueName=f"queue-{logical_id}")
    body = resolver.resolve(tpl["Resources"]["Dashboard"]["Properties"]["DashboardBody"])
    return json.loads(body)["widgets"]


def searches(widget: dict[str, Any]) -> list[tuple[dict[str, Any], re.Match[str]]]:
    """Each expression of a widget with the SEARCH inside it."""
    found = []
    for row in widget["properties"]["metrics"]:
        if isinstance(row[0], dict) and "expression" in row[0]:
            match = SEARCH.search(row[0]["expression"])
            assert match, row[0]["expression"]
            found.append((row[0], match))
    return found


def test_every_metric_on_the_dashboard_is_one_the_functions_emit():
    named = []
    for widget in dashboard():
        for row in widget["properties"]["metrics"]:
            if row[0] == "CRRMonitor":
                named.append(row[1])
        named += [match["metric"] for _, match in searches(widget)]
    assert {"ReplicationLatency", "OverdueByAge", "ObjectsOverdue"} <= set(named)
    assert set(named) <= EMITTED, set(named) - EMITTED


def test_the_dashboard_shows_latency_percentiles_per_pair_and_size_band():
    counters = Counters()
    count_metrics(
        Change({"pk": "v#k", "dest": "d", "src": "s", "latency_ms": 5, "s_size": 1}, Status.COMPLETED), counters
    )
    [banded] = [dims for dims in counters._values if "SizeBand" in dict(dims)]
    emitted = {name for name, _ in banded} | {"service"}  # Powertools adds the service dimension
    stats = []
    for widget in dashboard():
        for expression, match in searches(widget):
            if match["metric"] != "ReplicationLatency":
                continue
            schema = [part.strip() for part in match["schema"].split(",")]
            assert schema[0] == "CRRMonitor" and set(schema[1:]) == emitted  # SEARCH matches the whole set
            labelled = set(re.findall(r"\$\{PROP\('Dim\.(\w+)'\)\}", expression["label"]))
            assert labelled == {"SourceBucket", "DestinationBucket", "SizeBand"}
            stats.append(match["stat"])
    assert sorted(stats) == ["p50", "p99"]


def test_the_dashboard_stacks_the_backlog_of_every_pair_by_age_band():
    [widget] = [w for w in dashboard() if any(m["metric"] == "OverdueByAge" for _, m in searches(w))]
    assert widget["properties"]["stacked"] is True
    bands = []
    for expression, match in searches(widget):
        assert expression["expression"].startswith("SUM(SEARCH(")  # every pair's, added up
        schema = [part.strip() for part in match["schema"].split(",")]
        assert schema[0] == "CRRMonitor"
        assert set(schema[1:]) == {"SourceBucket", "DestinationBucket", "AgeBand", "service"}
        [band] = re.findall(r'AgeBand=\\?"([^"\\]+)\\?"', match["terms"])
        assert expression["label"] == band
        bands.append(band)
    assert tuple(bands) == AGE_BAND_NAMES


# ---------------------------------------------------------------- replication SLO

SLO_ALARMS = {"fast": "SloFastBurnAlarm", "medium": "SloMediumBurnAlarm", "slow": "SloSlowBurnAlarm"}


def slo_resolver(objective: str, days: str = "30") -> Resolver:
    resolver = Resolver(
        template(),
        {"SourceBuckets": "b", "SloObjective": objective, "SloWindowDays": days},
        stack_name="s",
        region="us-east-1",
        account="1" * 12,
    )
    resolver.created("AlertTopic", "arn:aws:sns:us-east-1:111111111111:s-alerts")
    return resolver


def test_slo_parameters_are_the_codes_and_off_by_default():
    parameters = template()["Parameters"]
    assert parameters["SloObjective"]["Default"] == ""
    assert parameters["SloObjective"]["AllowedPattern"] == slo.PATTERN
    days = parameters["SloWindowDays"]
    assert (days["Default"], days["MinValue"], days["MaxValue"]) == (30, slo.MIN_WINDOW_DAYS, slo.MAX_WINDOW_DAYS)
    variables = template()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["SLO_OBJECTIVE"] == {"Ref": "SloObjective"}
    assert variables["SLO_WINDOW_DAYS"] == {"Ref": "SloWindowDays"}


@pytest.mark.parametrize(("objective", "on"), [("", False), ("0", False), ("99.9", True), ("95", True)])
def test_slo_alarms_and_the_metrics_read_exist_only_with_an_objective(objective, on):
    tpl = template()
    resolver = slo_resolver(objective)
    conditional = {name for name, res in tpl["Resources"].items() if res.get("Condition") == "SloEnabled"}
    assert conditional == set(SLO_ALARMS.values())
    assert {name: resolver.active(name) for name in conditional} == dict.fromkeys(conditional, on)
    # Nothing else names the alarms; the sweeper may read metrics back only with an SLO.
    for name, resource in tpl["Resources"].items():
        if name not in conditional:
            assert not any(alarm in json.dumps(resource) for alarm in conditional), name
    policies = role_of(tpl, "SweeperFunction")["Properties"]["Policies"]
    [reading] = [p for p in policies if "cloudwatch:" in json.dumps(p)]
    assert reading["Fn::If"][0] == "SloEnabled" and reading["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    statements_ = [s for p in resolver.resolve([reading]) for s in p["PolicyDocument"]["Statement"]]
    read = {"Sid": "ReadSloCounts", "Effect": "Allow", "Action": "cloudwatch:GetMetricData", "Resource": "*"}
    assert statements_ == ([read] if on else [])
    for function in FUNCTIONS:
        if function != "SweeperFunction":
            assert "cloudwatch:" not in json.dumps(role_statements(tpl, function)), function


def evaluate(expression: str, **values: float) -> float:
    """A CloudWatch metric math expression of + - * / FILL and IF over single values, in Python."""
    functions = {
        "FILL": lambda value, fill: fill if value is None else value,
        "IF": lambda c, yes, no: yes if c else no,
    }
    return eval(expression, {"__builtins__": {}}, {**functions, **values})  # the template's own text


@pytest.mark.parametrize(("objective", "days"), [("99.9", "30"), ("99.95", "28"), ("99", "90")])
def test_slo_alarms_compute_the_budget_spent_that_crrmon_slo_defines(objective, days):
    resolver = slo_resolver(objective, days)
    for policy in slo.POLICIES:
        alarm = resolver.resolve(template()["Resources"][SLO_ALARMS[policy.name]]["Properties"])
        assert alarm["AlarmActions"] == alarm["OKActions"] == ["arn:aws:sns:us-east-1:111111111111:s-alerts"]
        assert (alarm["EvaluationPeriods"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
        assert alarm["Threshold"] == policy.budget_share * 100  # percent of the budget
        assert alarm["TreatMissingData"] == "notBreaching"
        queries = {q["Id"]: q for q in alarm["Metrics"]}
        [returned] = [q for q in alarm["Metrics"] if q.get("ReturnData", True)]
        stats = {q["Id"]: q["MetricStat"] for q in alarm["Metrics"] if "MetricStat" in q}
        # Every metric: the service-wide total, summed over the policy's long window.
        assert {s["Period"] for s in stats.values()} == {policy.long_s}
        assert {s["Stat"] for s in stats.values()} == {"Sum"}
        assert all(
            s["Metric"]["Namespace"] == "CRRMonitor"
            and s["Metric"]["Dimensions"] == [{"Name": "service", "Value": "crr-monitor"}]
            for s in stats.values()
        )
        # total and bad add exactly crrmon.slo's metrics: each metric counts a distinct power of two.
        weight = {metric_id: 2**i for i, metric_id in enumerate(sorted(stats))}
        name_of = {metric_id: stat["Metric"]["MetricName"] for metric_id, stat in stats.items()}
        for expression_id, metrics in (("total", slo.TOTAL_METRICS), ("bad", slo.BAD_METRICS)):
            expected = sum(weight[i] for i in stats if name_of[i] in metrics)
            assert evaluate(queries[expression_id]["Expression"], **weight) == expected, expression_id
            assert evaluate(queries[expression_id]["Expression"], **dict.fromkeys(stats)) == 0  # no data: 0
        # The alarm's value is the share of the budget spent, as the code computes it.
        for bad, total in ((144, 10_000), (3, 7_000), (0, 50), (1, 1)):
            spent = evaluate(returned["Expression"], bad=bad, total=total)
            expected = slo.budget_spent(
                bad, total, slo.parse_objective(objective), window_s=policy.long_s, window_days=int(days)
            )
            assert spent == pytest.approx(float(expected * 100), rel=1e-9)
        assert returned["Expression"].startswith("IF(total > 0, ")  # no division by zero without objects
        assert evaluate(returned["Expression"].replace("bad / total", "0"), bad=0, total=0) == 0


def test_slo_fast_alarm_fires_at_the_workbooks_burn_rate():
    # 99.9% over 30 days: an hour with 144 bad objects of 10,000 burns at 14.4 and spends 2% of the budget.
    alarm = slo_resolver("99.9").resolve(template()["Resources"]["SloFastBurnAlarm"]["Properties"])
    [returned] = [q for q in alarm["Metrics"] if q.get("ReturnData", True)]
    assert evaluate(returned["Expression"], bad=144, total=10_000) == pytest.approx(alarm["Threshold"])
    assert evaluate(returned["Expression"], bad=143, total=10_000) < alarm["Threshold"]


def test_inventory_reports_are_read_only_when_configured_and_only_from_their_bucket():
    tpl = template()
    assert tpl["Parameters"]["InventoryReports"]["Default"] == ""
    pattern = re.compile(tpl["Parameters"]["InventoryReports"]["AllowedPattern"])
    for good in (
        "",
        "s3://inv-bucket/{bucket}/daily",
        "s3://inv.bucket/a/b/{bucket}/all-versions",
        "s3://inventories-{region}/daily/{bucket}/crrmon",
    ):
        assert pattern.fullmatch(good), good
    for bad in (
        "s3://inv-bucket/daily",
        "inv-bucket/{bucket}/x",
        "s3://inv-bucket/{bucket}/{bucket}",
        "s3://inv-{bucket}/x/{bucket}/y",
    ):
        assert not pattern.fullmatch(bad), bad
    role = role_of(tpl, "ReconcileFunction")["Properties"]
    (document,) = [p["PolicyDocument"] for p in role["Policies"] if p.get("PolicyName") == "Reconcile"]
    conditional = {
        item["Fn::If"][1]["Sid"]: (item["Fn::If"][0], item["Fn::If"][1])
        for item in document["Statement"]
        if isinstance(item, dict) and "Fn::If" in item and "Inventory" in json.dumps(item)
    }
    assert set(conditional) == {"FindInventoryReports", "ReadInventoryReports"}
    assert {condition for condition, _ in conditional.values()} == {"InventoryProofEnabled"}
    assert conditional["FindInventoryReports"][1]["Action"] == "s3:ListBucket"
    assert conditional["ReadInventoryReports"][1]["Action"] == "s3:GetObject"
    others = [s for s in document["Statement"] if "Fn::If" not in s]
    assert not any("s3:GetObject" in json.dumps(s) or 's3:ListBucket"' in json.dumps(s) for s in others)

    archive = [p for p in role["Policies"] if "ArchiveDailyProofs" in json.dumps(p)]
    assert [p["Fn::If"][0] for p in archive] == ["InventoryProofArchived"]
    assert tpl["Conditions"]["InventoryProofArchived"] == {
        "Fn::And": [{"Condition": "InventoryProofEnabled"}, {"Condition": "ArchiveEnabled"}]
    }
    (put,) = statements(archive[0]["Fn::If"][1]["PolicyDocument"])
    assert put["Action"] == "firehose:PutRecordBatch" and put["Resource"] == {
        "Fn::GetAtt": ["ArchiveDeliveryStream", "Arn"]
    }

    def resolved(value: str) -> Resolver:
        parameters = {"SourceBuckets": "b", "ReconcileSchedule": "rate(1 day)", "InventoryReports": value}
        return Resolver(tpl, parameters, stack_name="s", region="us-east-1", account="1" * 12)

    on = resolved("s3://my-reports/daily/{bucket}/all")
    assert on.condition("InventoryProofEnabled")
    assert on.resolve(conditional["FindInventoryReports"][1]["Resource"]) == "arn:aws:s3:::my-reports"
    assert on.resolve(conditional["ReadInventoryReports"][1]["Resource"]) == "arn:aws:s3:::my-reports/*"
    regional = resolved("s3://inventories-{region}/daily/{bucket}/crrmon")
    assert regional.resolve(conditional["ReadInventoryReports"][1]["Resource"]) == "arn:aws:s3:::inventories-*/*"
    off = resolved("")
    assert not off.condition("InventoryProofEnabled")
    assert off.resolve(conditional["ReadInventoryReports"][1]["Resource"]) == "arn:aws:s3:::/*"  # resolvable, unused
