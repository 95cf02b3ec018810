"""Which monitor stack a command talks to: a deployed CloudFormation stack, the local demo, or flags.

- `--stack NAME`: DescribeStacks (outputs and parameters), then ListStackResources for anything the
  outputs do not hold.
- `--local FILE`: the JSON the local demo writes, `{"endpoint_url": ..., "environment": {...},
  "stack": {<crrmon_local.provision.Stack fields>}}`.
- Flags (`--table`, `--events-queue`, ...) fill in or override either.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from crrmon_cli.errors import UsageError

# Template outputs -> Target fields.
OUTPUTS = {
    "ReplicationTableName": "table_name",
    "EventsQueueUrl": "events_queue_url",
    "EventsQueueArn": "events_queue_arn",
    "EventsDeadLetterQueueUrl": "events_dlq_url",
    "TimerQueueUrl": "timer_queue_url",
    "TimerDeadLetterQueueUrl": "timer_dlq_url",
    "StreamFailureQueueUrl": "stream_failure_queue_url",
    "MonitorEventBusName": "event_bus_name",
    "MonitorEventBusArn": "event_bus_arn",
    "AlertTopicArn": "alert_topic_arn",
    "KeyArn": "key_arn",
    "ArchiveBucketName": "archive_bucket",
    "AthenaDatabase": "athena_database",
    "AthenaTable": "athena_table",
    "AthenaWorkGroup": "athena_workgroup",  # when the template defines one with its result location
    "HeadRoleArns": "head_role_arns",
}
# Logical IDs -> Target fields, for stacks whose outputs lack them (their physical ID is the Ref value).
RESOURCES = {
    "ReplicationTable": "table_name",
    "EventsQueue": "events_queue_url",
    "EventsDeadLetterQueue": "events_dlq_url",
    "TimerQueue": "timer_queue_url",
    "TimerDeadLetterQueue": "timer_dlq_url",
    "StreamFailureQueue": "stream_failure_queue_url",
    "MonitorEventBus": "event_bus_name",
    "AlertTopic": "alert_topic_arn",
    "ArchiveBucket": "archive_bucket",
    "ArchiveDatabase": "athena_database",
}
# Template parameters -> the functions' environment variables.
PARAMETERS = {
    "SourceBuckets": "SOURCE_BUCKETS",
    "DestinationBuckets": "DESTINATION_BUCKETS",
    "TopologyParameterName": "TOPOLOGY_PARAMETER_NAME",
    "RpoSeconds": "RPO_SECONDS",
    "GiveUpSeconds": "GIVE_UP_SECONDS",
    "AllowedAccounts": "ALLOWED_ACCOUNTS",
    "RecordRetentionHours": "RECORD_RETENTION_HOURS",
    "VerifyMode": "VERIFY_MODE",
}
# Fields of the local demo's "stack" object -> Target fields (same names unless listed).
LOCAL_RENAMES = {"account_id": "account_id"}


@dataclass
class Target:
    region: str
    endpoint_url: str | None = None
    stack_name: str = ""
    account_id: str = ""
    table_name: str = ""
    overdue_index_name: str = "Overdue"
    events_queue_url: str = ""
    events_queue_arn: str = ""
    events_dlq_url: str = ""
    timer_queue_url: str = ""
    timer_dlq_url: str = ""
    stream_failure_queue_url: str = ""
    event_bus_name: str = ""
    event_bus_arn: str = ""
    alert_topic_arn: str = ""
    key_arn: str = ""
    archive_bucket: str = ""
    athena_database: str = ""
    athena_table: str = ""
    athena_workgroup: str = ""
    head_role_arns: str = ""  # the functions' roles that HEAD versions, comma separated
    local: bool = False  # the local demo: no Athena, the archive is read directly
    environment: dict[str, str] = field(default_factory=dict)

    # ---- the monitor's configuration, as its functions see it
    def _csv(self, name: str) -> list[str]:
        return [b.strip() for b in self.environment.get(name, "").split(",") if b.strip()]

    @property
    def source_buckets(self) -> list[str]:
        return self._csv("SOURCE_BUCKETS")

    @property
    def destination_buckets(self) -> list[str]:
        return self._csv("DESTINATION_BUCKETS")

    @property
    def rpo_seconds(self) -> int:
        return int(self.environment.get("RPO_SECONDS") or 900)

    @property
    def retention_seconds(self) -> int:
        """How long the table keeps an item after its final verdict (RecordRetentionHours)."""
        return int(self.environment.get("RECORD_RETENTION_HOURS") or 24) * 3600

    @property
    def topology_parameter_name(self) -> str:
        return self.environment.get("TOPOLOGY_PARAMETER_NAME", "")

    def need(self, attribute: str, flag: str) -> str:
        value = getattr(self, attribute)
        if not value:
            what = attribute.replace("_", " ")
            raise UsageError(f"this command needs the {what}: give --stack NAME, --local FILE or {flag}")
        return value

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def from_local_file(path: str, region: str | None) -> Target:
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"--local {path}: no such file (run `make demo` first, it writes it)") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"--local {path}: not JSON ({error})") from None
    stack = raw.get("stack") or {}
    environment = {k: str(v) for k, v in (raw.get("environment") or stack.get("environment") or {}).items()}
    known = {f.name for f in fields(Target)}
    values = {k: v for k, v in stack.items() if k in known and isinstance(v, str)}
    target = Target(
        region=region or stack.get("region") or "us-east-1", **{k: v for k, v in values.items() if k != "region"}
    )
    target.endpoint_url = raw.get("endpoint_url")
    target.environment = environment
    target.local = True
    target.table_name = target.table_name or environment.get("TABLE_NAME", "")
    target.overdue_index_name = environment.get("OVERDUE_INDEX_NAME") or target.overdue_index_name
    target.timer_queue_url = target.timer_queue_url or environment.get("TIMER_QUEUE_URL", "")
    target.events_dlq_url = target.events_dlq_url or environment.get("EVENTS_DLQ_URL", "")
    target.alert_topic_arn = target.alert_topic_arn or environment.get("ALERT_TOPIC_ARN", "")
    return target


def from_stack(aws, name: str) -> Target:
    cfn = aws.client("cloudformation")
    try:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as error:
        if "does not exist" in error.response.get("Error", {}).get("Message", ""):
            raise UsageError(f"no CloudFormation stack {name!r} in {aws.region} (wrong --region?)") from None
        raise
    target = Target(region=aws.region, stack_name=stack["StackName"], endpoint_url=aws.endpoint_url)
    arn_parts = stack.get("StackId", "").split(":")
    target.account_id = arn_parts[4] if len(arn_parts) > 4 else ""
    for output in stack.get("Outputs", []):
        attribute = OUTPUTS.get(output["OutputKey"])
        if attribute:
            setattr(target, attribute, output["OutputValue"])
    for parameter in stack.get("Parameters", []):
        variable = PARAMETERS.get(parameter["ParameterKey"])
        if variable:
            target.environment[variable] = parameter.get("ResolvedValue", parameter.get("ParameterValue", ""))
    missing = {logical: attr for logical, attr in RESOURCES.items() if not getattr(target, attr)}
    if missing:
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=target.stack_name):
            for resource in page["StackResourceSummaries"]:
                attribute = missing.get(resource.get("LogicalResourceId", ""))
                if attribute and resource.get("PhysicalResourceId"):
                    setattr(target, attribute, resource["PhysicalResourceId"])
    if target.athena_database and not target.athena_table:
        target.athena_table = "replication_records"
    target.environment.setdefault("TABLE_NAME", target.table_name)
    return target


# Flag name -> Target field, for the override flags.
OVERRIDES = {
    "table": "table_name",
    "overdue_index": "overdue_index_name",
    "events_queue": "events_queue_url",
    "events_dlq": "events_dlq_url",
    "timer_queue": "timer_queue_url",
    "timer_dlq": "timer_dlq_url",
    "archive_bucket": "archive_bucket",
    "athena_database": "athena_database",
    "athena_table": "athena_table",
}


def resolve(args, aws) -> Target:
    if getattr(args, "local", None):
        target = from_local_file(args.local, args.region)
    elif getattr(args, "stack", None):
        target = from_stack(aws, args.stack)
    else:
        target = Target(region=aws.region, endpoint_url=aws.endpoint_url)
    for flag, attribute in OVERRIDES.items():
        value = getattr(args, flag, None)
        if value:
            setattr(target, attribute, value)
    if getattr(args, "source_buckets", None):
        target.environment["SOURCE_BUCKETS"] = args.source_buckets
    if getattr(args, "rpo", None):
        target.environment["RPO_SECONDS"] = str(args.rpo)
    return target
