"""Create the monitor's data plane from template.yaml's own definitions, in a (moto) boto3 session.

Tests, the demo and the benchmark need the table, queues, event bus, rules, topic, archive bucket and
delivery stream exactly as the template defines them: same keys, index, stream, TTL, redrive
policies, event patterns and targets. `provision()` reads them from the template rather than from a
second copy, resolves the intrinsic functions the template uses in those places, and returns the
physical names and the functions' environment (template Globals) resolved against them.

Functions, roles, policies, alarms, log groups, the dashboard and the Glue catalog are not created:
moto runs no Lambda code without Docker (crrmon_local.lambdas drives the handlers) and enforces no
policies. Physical names are `<stack name>-<logical ID>` unless the template names the resource itself.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from crrmon_local.cfn import load_template

__all__ = ["ProvisionError", "Stack", "provision"]

PARTITION = "aws"
_NO_VALUE = object()  # what {"Ref": "AWS::NoValue"} resolves to; dropped from lists and mappings


class ProvisionError(ValueError):
    """The template or the parameters hold something provision() does not know how to create."""


@dataclass(frozen=True)
class Stack:
    stack_name: str
    region: str
    account_id: str
    table_name: str
    overdue_index_name: str
    stream_arn: str
    events_queue_url: str
    events_dlq_url: str
    timer_queue_url: str
    timer_dlq_url: str
    stream_failure_queue_url: str
    event_bus_name: str  # "default": S3 events and forwarded ones arrive on the region's default bus
    default_bus_rule_name: str
    alert_topic_arn: str
    archive_bucket: str  # "" when ArchiveEnabled is false
    delivery_stream_name: str  # "" when ArchiveEnabled is false
    key_arn: str
    # The functions' environment: template Globals with every reference resolved.
    environment: dict[str, str] = field(hash=False)
    # Logical ID -> what {"Ref": logical ID} gives, for every resource created.
    physical_ids: dict[str, str] = field(hash=False)
    # Logical IDs of the functions the template declares under these parameters (conditions applied).
    functions: tuple[str, ...] = ()


# ---------------------------------------------------------------- intrinsic functions


class Resolver:
    """Resolves the intrinsic functions of one template against parameters and created resources."""

    def __init__(
        self, template: dict[str, Any], parameters: Mapping[str, str], *, stack_name: str, region: str, account: str
    ):
        self.template = template
        self.pseudo = {
            "AWS::StackName": stack_name,
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            # A stack ID's last part is a UUID CloudFormation draws; a fixed one per stack name here.
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{region}:{account}:stack/{stack_name}/"
            + str(uuid.uuid5(uuid.NAMESPACE_URL, stack_name)),
        }
        self.parameters = self._parameter_values(template.get("Parameters", {}), parameters)
        self.refs: dict[str, str] = {}
        self.attributes: dict[tuple[str, str], str] = {}
        self._conditions: dict[str, bool] = {}

    @staticmethod
    def _parameter_values(declared: dict[str, Any], given: Mapping[str, str]) -> dict[str, Any]:
        unknown = set(given) - set(declared)
        if unknown:
            raise ProvisionError(f"parameters not in the template: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in given:
                raw = str(given[name])
            elif "Default" in spec:
                raw = str(spec["Default"])
            else:
                raise ProvisionError(f"parameter {name} has no default and was not given")
            allowed = spec.get("AllowedValues")
            if allowed is not None and raw not in {str(a) for a in allowed}:
                raise ProvisionError(f"parameter {name}={raw!r} is not one of {allowed}")
            if spec["Type"] == "CommaDelimitedList":
                values[name] = [part.strip() for part in raw.split(",")]
            elif spec["Type"] in ("String", "Number"):
                values[name] = raw
            else:
                raise ProvisionError(f"parameter {name} has type {spec['Type']}, which provision() does not read")
        return values

    # ---- conditions
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            try:
                definition = self.template["Conditions"][name]
            except KeyError:
                raise ProvisionError(f"no condition named {name}") from None
            self._conditions[name] = self._truth(definition)
        return self._conditions[name]

    def _truth(self, value: Any) -> bool:
        if not isinstance(value, dict) or len(value) != 1:
            raise ProvisionError(f"not a condition: {value!r}")
        [(fn, args)] = value.items()
        if fn == "Condition":
            return self.condition(args)
        if fn == "Fn::Equals":
            left, right = (self.resolve(a) for a in args)
            return _scalar(left) == _scalar(right)
        if fn == "Fn::Not":
            return not self._truth(args[0])
        if fn == "Fn::And":
            return all(self._truth(a) for a in args)
        if fn == "Fn::Or":
            return any(self._truth(a) for a in args)
        raise ProvisionError(f"condition function {fn} is not supported")

    def active(self, logical_id: str) -> bool:
        """Whether the resource (or output) exists under the current parameters."""
        resource = self.template["Resources"][logical_id]
        return "Condition" not in resource or self.condition(resource["Condition"])

    # ---- values
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key,) = value
            if key == "Ref" or key.startswith("Fn::"):
                return self._function(key, value[key])
        items = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if v is not _NO_VALUE}

    def _function(self, fn: str, args: Any) -> Any:
        if fn == "Ref":
            return self._ref(args)
        if fn == "Fn::GetAtt":
            name, attribute = args if isinstance(args, list) else args.split(".", 1)
            return self._get_att(name, attribute)
        if fn == "Fn::If":
            name, yes, no = args
            return self.resolve(yes if self.condition(name) else no)
        if fn == "Fn::Sub":
            return self._sub(args)
        if fn == "Fn::Join":
            delimiter, parts = args
            parts = self.resolve(parts)
            if not isinstance(parts, list):
                raise ProvisionError(f"Fn::Join needs a list, got {parts!r}")
            return delimiter.join(_scalar(p) for p in parts)
        if fn == "Fn::Split":
            delimiter, source = args
            return _scalar(self.resolve(source)).split(delimiter)
        if fn == "Fn::Select":
            index, items = args
            items = self.resolve(items)
            return items[int(_scalar(self.resolve(index)))]
        raise ProvisionError(f"{fn} is not supported by provision()")

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise ProvisionError(f"Ref {name}: not a parameter, and no such resource was provisioned")

    def _get_att(self, name: str, attribute: str) -> str:
        try:
            return self.attributes[(name, attribute)]
        except KeyError:
            raise ProvisionError(f"Fn::GetAtt {name}.{attribute}: not provisioned") from None

    def _sub(self, args: Any) -> str:
        if isinstance(args, str):
            text, variables = args, {}
        else:
            text, variables = args[0], {k: self.resolve(v) for k, v in args[1].items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _scalar(variables[name])
            if "." in name:
                resource, attribute = name.split(".", 1)
                return self._get_att(resource, attribute)
            return _scalar(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def created(self, logical_id: str, ref: str, **attributes: str) -> None:
        self.refs[logical_id] = ref
        for attribute, value in attributes.items():
            self.attributes[(logical_id, attribute)] = value


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ProvisionError(f"expected a single value, got {value!r}")


# ---------------------------------------------------------------- resources


# Queue properties that are also queue attributes of the SQS API, under the same names.
QUEUE_ATTRIBUTES = frozenset(
    {
        "DelaySeconds",
        "KmsDataKeyReusePeriodSeconds",
        "KmsMasterKeyId",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
        "RedrivePolicy",
        "VisibilityTimeout",
    }
)


class _Builder:
    def __init__(self, session: boto3.Session, resolver: Resolver, stack_name: str, region: str):
        self.session, self.r, self.stack_name, self.region = session, resolver, stack_name, region
        self.account = resolver.pseudo["AWS::AccountId"]

    def client(self, service: str):
        return self.session.client(service, region_name=self.region)

    def name(self, logical_id: str) -> str:
        return f"{self.stack_name}-{logical_id}"

    def of_type(self, type_: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (logical_id, resource.get("Properties", {}))
            for logical_id, resource in self.r.template["Resources"].items()
            if resource["Type"] == type_ and self.r.active(logical_id)
        ]

    def props(self, properties: dict[str, Any], *keys: str) -> dict[str, Any]:
        """The given properties, resolved; absent or AWS::NoValue ones left out."""
        resolved = {k: self.r.resolve(properties[k]) for k in keys if k in properties}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    # ---- KMS
    def keys(self) -> None:
        kms = self.client("kms")
        for logical_id, props in self.of_type("AWS::KMS::Key"):
            p = self.props(props, "Description", "KeyPolicy")
            key = kms.create_key(Description=p.get("Description", ""), Policy=json.dumps(p.get("KeyPolicy", {})))
            meta = key["KeyMetadata"]
            self.r.created(logical_id, meta["KeyId"], Arn=meta["Arn"])

    # ---- SQS
    def queues(self) -> None:
        sqs = self.client("sqs")
        pending = dict(self.of_type("AWS::SQS::Queue"))
        while pending:
            # redrive targets first: a queue's RedrivePolicy names its DLQ's ARN
            ready = [q for q, props in pending.items() if _redrive_target(props) not in pending]
            if not ready:
                raise ProvisionError(f"queues redrive to each other: {sorted(pending)}")
            for logical_id in ready:
                props = pending.pop(logical_id)
                unknown = set(props) - QUEUE_ATTRIBUTES - {"QueueName", "Tags"}
                if unknown:
                    raise ProvisionError(
                        f"{logical_id}: queue properties provision() does not apply: {sorted(unknown)}"
                    )
                attributes = {
                    key: json.dumps(value) if isinstance(value, dict) else _scalar(value)
                    for key, value in self.props(props, *sorted(QUEUE_ATTRIBUTES)).items()
                }
                name = _scalar(self.r.resolve(props["QueueName"])) if "QueueName" in props else self.name(logical_id)
                url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
                arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                self.r.created(logical_id, url, Arn=arn, QueueName=name)

    # ---- DynamoDB
    def tables(self) -> None:
        ddb = self.client("dynamodb")
        for logical_id, props in self.of_type("AWS::DynamoDB::Table"):
            p = self.props(
                props,
                "AttributeDefinitions",
                "KeySchema",
                "GlobalSecondaryIndexes",
                "BillingMode",
                "ProvisionedThroughput",
                "StreamSpecification",
                "SSESpecification",
                "TimeToLiveSpecification",
                "PointInTimeRecoverySpecification",
            )
            name = _scalar(self.r.resolve(props["TableName"])) if "TableName" in props else self.name(logical_id)
            request: dict[str, Any] = {
                "TableName": name,
                "AttributeDefinitions": p["AttributeDefinitions"],
                "KeySchema": p["KeySchema"],
                "BillingMode": p.get("BillingMode", "PROVISIONED"),
            }
            if "ProvisionedThroughput" in p:
                request["ProvisionedThroughput"] = p["ProvisionedThroughput"]
            if "GlobalSecondaryIndexes" in p:
                request["GlobalSecondaryIndexes"] = p["GlobalSecondaryIndexes"]
            if "StreamSpecification" in p:
                request["StreamSpecification"] = {"StreamEnabled": True, **p["StreamSpecification"]}
            if "SSESpecification" in p:  # CloudFormation's SSEEnabled is the API's Enabled
                sse = p["SSESpecification"]
                request["SSESpecification"] = {
                    "Enabled": sse["SSEEnabled"],
                    **({"SSEType": sse["SSEType"]} if "SSEType" in sse else {}),
                    **({"KMSMasterKeyId": sse["KMSMasterKeyId"]} if "KMSMasterKeyId" in sse else {}),
                }
            table = ddb.create_table(**request)["TableDescription"]
            if "TimeToLiveSpecification" in p:
                ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=p["TimeToLiveSpecification"])
            if "PointInTimeRecoverySpecification" in p:
                ddb.update_continuous_backups(
                    TableName=name, PointInTimeRecoverySpecification=p["PointInTimeRecoverySpecification"]
                )
            attributes = {"Arn": table["TableArn"]}
            if "LatestStreamArn" in table:
                attributes["StreamArn"] = table["LatestStreamArn"]
            self.r.created(logical_id, name, **attributes)

    # ---- EventBridge
    def event_buses(self) -> None:
        events = self.client("events")
        for logical_id, props in self.of_type("AWS::Events::EventBus"):
            name = _scalar(self.r.resolve(props["Name"])) if "Name" in props else self.name(logical_id)
            arn = events.create_event_bus(Name=name)["EventBusArn"]
            self.r.created(logical_id, name, Arn=arn, Name=name)

    def rules(self) -> None:
        events = self.client("events")
        for logical_id, props in self.of_type("AWS::Events::Rule"):
            p = self.props(props, "EventPattern", "EventBusName", "Description", "State", "ScheduleExpression")
            name = _scalar(self.r.resolve(props["Name"])) if "Name" in props else self.name(logical_id)
            request: dict[str, Any] = {"Name": name, "State": p.get("State", "ENABLED")}
            if "EventPattern" in p:
                request["EventPattern"] = json.dumps(p["EventPattern"])
            if "ScheduleExpression" in p:
                request["ScheduleExpression"] = p["ScheduleExpression"]
            if "Description" in p:
                request["Description"] = p["Description"]
            bus = p.get("EventBusName", "default")
            request["EventBusName"] = bus
            arn = events.put_rule(**request)["RuleArn"]
            targets = [
                {
                    k: v
                    for k, v in target.items()
                    if k in ("Id", "Arn", "Input", "InputPath", "DeadLetterConfig", "RetryPolicy", "SqsParameters")
                }
                for target in self.r.resolve(props.get("Targets", []))
            ]
            if targets:
                events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
            # CloudFormation's Ref of a rule on a custom bus is "<bus>|<rule>"; the name is what callers need.
            self.r.created(logical_id, name, Arn=arn)

    # ---- SNS
    def topics(self) -> None:
        sns = self.client("sns")
        for logical_id, props in self.of_type("AWS::SNS::Topic"):
            attributes = {k: _scalar(v) for k, v in self.props(props, "KmsMasterKeyId", "DisplayName").items()}
            name = _scalar(self.r.resolve(props["TopicName"])) if "TopicName" in props else self.name(logical_id)
            arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
            self.r.created(logical_id, arn, TopicName=name, TopicArn=arn)

    # ---- S3
    def buckets(self) -> None:
        s3 = self.client("s3")
        for logical_id, props in self.of_type("AWS::S3::Bucket"):
            p = self.props(
                props,
                "BucketEncryption",
                "VersioningConfiguration",
                "PublicAccessBlockConfiguration",
                "OwnershipControls",
                "ObjectLockEnabled",
                "ObjectLockConfiguration",
                "LoggingConfiguration",
            )
            name = (
                _scalar(self.r.resolve(props["BucketName"]))
                if "BucketName" in props
                else self.name(logical_id).lower()[:63]
            )
            request: dict[str, Any] = {"Bucket": name}
            if self.region != "us-east-1":
                request["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            if p.get("ObjectLockEnabled"):
                request["ObjectLockEnabledForBucket"] = True
            s3.create_bucket(**request)
            if "VersioningConfiguration" in p:
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=p["VersioningConfiguration"])
            if "BucketEncryption" in p:
                # CloudFormation's names for the API's Rules and ApplyServerSideEncryptionByDefault
                rules = [
                    {
                        ("ApplyServerSideEncryptionByDefault" if k == "ServerSideEncryptionByDefault" else k): v
                        for k, v in rule.items()
                    }
                    for rule in p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                ]
                s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
            if "PublicAccessBlockConfiguration" in p:
                s3.put_public_access_block(
                    Bucket=name, PublicAccessBlockConfiguration=p["PublicAccessBlockConfiguration"]
                )
            if "OwnershipControls" in p:
                s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=p["OwnershipControls"])
            if "ObjectLockConfiguration" in p:
                lock = p["ObjectLockConfiguration"]
                retention = lock.get("Rule", {}).get("DefaultRetention", {})
                for unit in ("Days", "Years"):  # parameters resolve to strings; the API takes integers
                    if unit in retention:
                        retention[unit] = int(_scalar(retention[unit]))
                s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=lock)
            if "LoggingConfiguration" in p:  # server access logs, to a bucket that must already exist
                logging = p["LoggingConfiguration"]
                enabled = {
                    "TargetBucket": logging["DestinationBucketName"],
                    "TargetPrefix": logging.get("LogFilePrefix", ""),
                }
                s3.put_bucket_logging(Bucket=name, BucketLoggingStatus={"LoggingEnabled": enabled})
            self.r.created(logical_id, name, Arn=f"arn:{PARTITION}:s3:::{name}")

    # ---- IAM (only as something for Firehose to name)
    def roles(self, needed: set[str]) -> None:
        iam = self.client("iam")
        for logical_id, props in self.of_type("AWS::IAM::Role"):
            if logical_id not in needed:
                continue
            name = self.name(logical_id)[:64]
            trust = self.r.resolve(props["AssumeRolePolicyDocument"])
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
            self.r.created(logical_id, name, Arn=arn)

    # ---- Firehose
    def delivery_streams(self) -> None:
        firehose = self.client("firehose")
        streams = self.of_type("AWS::KinesisFirehose::DeliveryStream")
        self.roles({ref for _, props in streams for ref in _refs(props.get("ExtendedS3DestinationConfiguration", {}))})
        for logical_id, props in streams:
            destination = props["ExtendedS3DestinationConfiguration"]
            s3 = self.props(
                destination,
                "BucketARN",
                "RoleARN",
                "Prefix",
                "ErrorOutputPrefix",
                "BufferingHints",
                "CompressionFormat",
                "EncryptionConfiguration",
            )
            name = (
                _scalar(self.r.resolve(props["DeliveryStreamName"]))
                if "DeliveryStreamName" in props
                else self.name(logical_id)[:64]
            )
            request: dict[str, Any] = {
                "DeliveryStreamName": name,
                "DeliveryStreamType": props.get("DeliveryStreamType", "DirectPut"),
                "ExtendedS3DestinationConfiguration": s3,
            }
            if "DeliveryStreamEncryptionConfigurationInput" in props:
                request["DeliveryStreamEncryptionConfigurationInput"] = self.r.resolve(
                    props["DeliveryStreamEncryptionConfigurationInput"]
                )
            arn = firehose.create_delivery_stream(**request)["DeliveryStreamARN"]
            self.r.created(logical_id, name, Arn=arn)


def _redrive_target(props: dict[str, Any]) -> str | None:
    target = props.get("RedrivePolicy", {}).get("deadLetterTargetArn")
    if isinstance(target, dict) and "Fn::GetAtt" in target:
        return target["Fn::GetAtt"][0]
    return None


def _refs(value: Any) -> set[str]:
    """Logical IDs named by Ref or Fn::GetAtt anywhere inside `value`."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            found.add(value["Fn::GetAtt"][0])
        for v in value.values():
            found |= _refs(v)
    elif isinstance(value, list):
        for v in value:
            found |= _refs(v)
    return found


# ---------------------------------------------------------------- entry point


def _function_role_statements(template: dict[str, Any], resolver: Resolver, function: str) -> list[dict[str, Any]]:
    """The statements of the role a function names (its Role: !GetAtt <role>.Arn), resolved."""
    role_ref = template["Resources"][function]["Properties"].get("Role")
    if not (isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref):
        return []
    role = template["Resources"][role_ref["Fn::GetAtt"][0]]
    found: list[dict[str, Any]] = []
    for policy in resolver.resolve(role["Properties"].get("Policies", [])):
        statements = policy["PolicyDocument"].get("Statement", [])
        found.extend(statements if isinstance(statements, list) else [statements])
    return found


def _grant_what_the_roles_allow(template: dict[str, Any], resolver: Resolver) -> None:
    """Tell the S3 emulator which buckets the functions' roles may list (and forget earlier grants): real S3
    answers a HEAD of a missing version with 404 only to a caller with s3:ListBucket on the bucket, with
    403 to others."""
    from crrmon_local import emulator

    account = resolver.pseudo["AWS::AccountId"]
    emulator.reset_grants()
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function" or not resolver.active(logical_id):
            continue
        for statement in _function_role_statements(template, resolver, logical_id):
            actions = statement.get("Action", [])
            actions = actions if isinstance(actions, list) else [actions]
            if statement.get("Effect") != "Allow" or "s3:ListBucket" not in actions:
                continue
            resources = statement.get("Resource", [])
            for arn in resources if isinstance(resources, list) else [resources]:
                bucket = str(arn).rsplit(":", 1)[-1]
                if bucket and "/" not in bucket:
                    emulator.grant_list(bucket, account)


def _account(session: boto3.Session, region: str) -> str:
    return session.client("sts", region_name=region).get_caller_identity()["Account"]


def provision(
    template_path: str | Path,
    *,
    session: boto3.Session,
    stack_name: str,
    parameters: dict[str, str],
    region: str,
) -> Stack:
    """Create the table, queues, event bus and rules, topic and archive of template.yaml in `session`."""
    template = load_template(template_path)
    resolver = Resolver(template, parameters, stack_name=stack_name, region=region, account=_account(session, region))
    builder = _Builder(session, resolver, stack_name, region)
    steps: list[Callable[[], None]] = [
        builder.keys,
        builder.queues,
        builder.tables,
        builder.event_buses,
        builder.rules,
        builder.topics,
        builder.buckets,
        builder.delivery_streams,
    ]
    for step in steps:
        step()

    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    environment = {name: _scalar(resolver.resolve(value)) for name, value in variables.items()}
    # Tracing never runs locally (no X-Ray daemon), whatever EnableTracing says.
    environment["POWERTOOLS_TRACE_DISABLED"] = "true"

    refs = resolver.refs
    _grant_what_the_roles_allow(template, resolver)

    def ref(logical_id: str) -> str:
        return refs.get(logical_id, "")

    index_names = [
        index["IndexName"]
        for index in template["Resources"]["ReplicationTable"]["Properties"].get("GlobalSecondaryIndexes", [])
    ]
    return Stack(
        stack_name=stack_name,
        region=region,
        account_id=resolver.pseudo["AWS::AccountId"],
        table_name=ref("ReplicationTable"),
        overdue_index_name=environment.get("OVERDUE_INDEX_NAME") or index_names[0],
        stream_arn=resolver.attributes[("ReplicationTable", "StreamArn")],
        events_queue_url=ref("EventsQueue"),
        events_dlq_url=ref("EventsDeadLetterQueue"),
        timer_queue_url=ref("TimerQueue"),
        timer_dlq_url=ref("TimerDeadLetterQueue"),
        stream_failure_queue_url=ref("StreamFailureQueue"),
        event_bus_name="default",
        default_bus_rule_name=ref("DefaultBusObjectEventsRule"),
        alert_topic_arn=ref("AlertTopic"),
        archive_bucket=ref("ArchiveBucket"),
        delivery_stream_name=ref("ArchiveDeliveryStream"),
        key_arn=resolver.attributes.get(("MonitorKey", "Arn"), _scalar(resolver.parameters.get("KmsKeyArn", ""))),
        environment=environment,
        physical_ids=dict(refs),
        functions=tuple(
            logical_id
            for logical_id, resource in template["Resources"].items()
            if resource["Type"] == "AWS::Serverless::Function" and resolver.active(logical_id)
        ),
    )
