"""Each function's IAM policy allows exactly the AWS actions its code calls, on the resources it calls them on.

The calls are recorded from botocore while the real handlers run a tour of the pipeline that takes
every code path with an AWS call in it; the policies come from template.yaml as SAM translates it.
"""

from __future__ import annotations

import fnmatch
import json
from datetime import UTC, datetime

import boto3
import pytest

from crrmon import runtime
from crrmon_local import emulator
from crrmon_local.cfn import load_template, translate
from crrmon_local.lambdas import RUNNING, invoke, load_handler

from ..unit.inventory_reports import put_report, row
from .conftest import (
    BIDI_A,
    BIDI_B,
    DST,
    DST2,
    OTHER,
    READER,
    REGION,
    REGIONS,
    RPO,
    SRC,
    TAGGED,
    TEMPLATE,
    XDST,
    XSRC,
    cross_account_world,
    subscription_confirmation,
)

PARAMETERS = {
    "SourceBuckets": f"{SRC},{BIDI_A},{BIDI_B},{TAGGED},{XSRC}",
    "DestinationBuckets": f"{DST},{DST2},{BIDI_A},{BIDI_B},{XDST}",
    "ArchiveEnabled": "true",
    "ReconcileSchedule": "rate(6 hours)",
    "ReaderRoleArns": READER,
    "AllowedAccounts": OTHER,
    "InventoryReports": "s3://inventories-{region}/daily/{bucket}/crrmon",
}
INVENTORY_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
# Allowed for the answers S3 gives, not called: a HEAD of a missing version answers 404 only to a caller
# that may list the bucket (403 otherwise).
ANSWER_SIDE = {("s3:ListBucket", "SourceBuckets"), ("s3:ListBucket", "DestinationBuckets")}
# Allowed for the Lambda service on the function's behalf, not called by the function's code: its event
# source mapping polls its own queue or reads the table's stream, the stream mapping's on-failure
# destination, its logs (to its own log group only), the key that encrypts what it reads and sends.
POLLING = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility")
STREAM_READS = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams")


def service_side(function: str, *, queue: str = "", stream: bool = False) -> frozenset[tuple[str, str]]:
    grants = {(action, f"{function.removesuffix('Function')}LogGroup") for action in LOGS}
    grants |= {("kms:Decrypt", "key"), ("kms:GenerateDataKey", "key")}
    if queue:
        grants |= {(action, queue) for action in POLLING}
    if stream:
        grants |= {(action, "ReplicationTable/stream") for action in STREAM_READS}
        grants.add(("sqs:SendMessage", "StreamFailureQueue"))
    return frozenset(grants)


LOGS = ("logs:CreateLogStream", "logs:PutLogEvents")
SERVICE_SIDE = {
    "IngestFunction": service_side("IngestFunction", queue="EventsQueue"),
    "MatcherFunction": service_side("MatcherFunction", stream=True),
    "SweeperFunction": service_side("SweeperFunction", queue="TimerQueue", stream=True),
    "ReconcileFunction": service_side("ReconcileFunction"),
}
# The only actions a function's role may allow on Resource "*": AWS offers no resource-level permission
# for them (the service authorization reference lists no resource type), so "*" is required.
REQUIRED_WILDCARDS = {
    "xray:PutTraceSegments": "X-Ray trace segments; no resource-level permissions; only with EnableTracing=true",
    "xray:PutTelemetryRecords": "X-Ray telemetry; no resource-level permissions; only with EnableTracing=true",
}
LOG_GROUPS = ("IngestLogGroup", "MatcherLogGroup", "SweeperLogGroup", "ReconcileLogGroup")

ACTIONS = {  # (service, operation) -> IAM action, where the names differ
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("s3", "GetBucketReplication"): "s3:GetReplicationConfiguration",
    ("s3", "ListObjectVersions"): "s3:ListBucketVersions",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
}


def action_of(service: str, operation: str, params: dict) -> str:
    if (service, operation) == ("s3", "HeadObject"):
        return "s3:GetObjectVersion" if params.get("VersionId") else "s3:GetObject"
    return ACTIONS.get((service, operation), f"{service}:{operation}")


def kinds_of_call(stack, service: str, params: dict) -> set[str]:
    """Which of the template's resources a recorded call touched."""
    if service == "dynamodb":
        return {"ReplicationTable/index" if params.get("IndexName") else "ReplicationTable"}
    if service == "sqs":
        urls = {
            stack.timer_queue_url: "TimerQueue",
            stack.events_dlq_url: "EventsDeadLetterQueue",
            stack.events_queue_url: "EventsQueue",
            stack.stream_failure_queue_url: "StreamFailureQueue",
        }
        return {urls[params["QueueUrl"]]}
    if service == "sns":
        if params["TopicArn"] == stack.alert_topic_arn:
            return {"AlertTopic"}
        return {"AllowedAccounts/topics"} if params["TopicArn"].split(":")[4] == OTHER else {"?"}
    if service == "sts":
        return {"ReaderRoleArns"} if params["RoleArn"] in PARAMETERS["ReaderRoleArns"].split(",") else {"?"}
    if service == "firehose":
        return {"ArchiveDeliveryStream"} if params["DeliveryStreamName"] == stack.delivery_stream_name else {"?"}
    if service == "s3":
        suffix = "/*" if "Key" in params else ""
        if params["Bucket"] in {f"inventories-{region}" for region in INVENTORY_REGIONS}:
            return {f"InventoryReports{suffix}"}
        found = {
            f"{name}{suffix}"
            for name in ("SourceBuckets", "DestinationBuckets")
            if params["Bucket"] in PARAMETERS[name].split(",")
        }
        return found or {"?"}
    if service == "ssm":
        return {"ssm"}
    return {"?"}


def kinds_of_resource(resource) -> set[str]:
    """The template resources a policy statement's Resource names (read from its intrinsics)."""
    out = set()
    for item in resource if isinstance(resource, list) else [resource]:
        if item == "*":
            out.add("*")
            continue
        text = json.dumps(item)
        if "ReplicationTable" in text or "tableName" in text:
            out.add(
                "ReplicationTable/index"
                if "/index/" in text
                else "ReplicationTable/stream"
                if "/stream/" in text or "StreamArn" in text
                else "ReplicationTable"
            )
        for group in LOG_GROUPS:
            if group in text:
                out.add(group)
        for logical in (
            "EventsQueue",
            "TimerQueue",
            "EventsDeadLetterQueue",
            "StreamFailureQueue",
            "AlertTopic",
            "ArchiveDeliveryStream",
        ):
            if logical in text:
                out.add(logical)
        for parameter in ("SourceBuckets", "DestinationBuckets"):
            if parameter in text:
                out.add(
                    f"{parameter}/canary"
                    if "crr-monitor-canary" in text
                    else f"{parameter}/*"
                    if "/*" in text
                    else parameter
                )
        if "ReaderRoleArns" in text:
            out.add("ReaderRoleArns")
        if "AllowedAccounts" in text and "sns" in text:
            out.add("AllowedAccounts/topics")
        if "MonitorKey" in text or "KmsKeyArn" in text:
            out.add("key")
        if "TopologyParameterName" in text:
            out.add("ssm")
        if "InventoryReports" in text:
            out.add("InventoryReports/*" if "/*" in text else "InventoryReports")
    return out


def resolve(expr, values: dict):
    """The value of the few intrinsics conditions use, with these parameter values."""
    if not isinstance(expr, dict):
        return expr
    ((name, args),) = expr.items()
    if name == "Ref":
        return values.get(args, "")
    if name == "Fn::Join":
        items = resolve(args[1], values)
        return args[0].join(items.split(",") if isinstance(items, str) else items)
    if name == "Fn::Split":
        return str(resolve(args[1], values)).split(args[0])
    if name == "Fn::Select":
        return resolve(args[1], values)[int(args[0])]
    raise ValueError(f"unknown intrinsic {name}")


def evaluate(condition, conditions: dict, values: dict) -> bool:
    if isinstance(condition, dict) and "Condition" in condition:
        return evaluate(conditions[condition["Condition"]], conditions, values)
    ((name, args),) = condition.items()
    if name == "Fn::Equals":
        left, right = (resolve(a, values) for a in args)
        return str(left) == str(right)
    if name == "Fn::Not":
        return not evaluate(args[0], conditions, values)
    if name == "Fn::And":
        return all(evaluate(a, conditions, values) for a in args)
    if name == "Fn::Or":
        return any(evaluate(a, conditions, values) for a in args)
    raise ValueError(f"unknown condition function {name}")


def active(value, conditions: dict, values: dict) -> list:
    """The values a property takes with these parameters (Fn::If resolved, AWS::NoValue dropped)."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        name, yes, no = value["Fn::If"]
        return active(yes if evaluate(conditions[name], conditions, values) else no, conditions, values)
    if value == {"Ref": "AWS::NoValue"}:
        return []
    return [value]


def role_documents(translated: dict, function: str) -> list:
    """The policies of a function's role: inline ones and the AWS::IAM::Policy resources attached to it."""
    role_name = f"{function}Role"
    role = translated["Resources"][role_name]
    documents = list(role["Properties"].get("Policies", []))
    for resource in translated["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_name} in resource["Properties"]["Roles"]:
            documents.append({"PolicyDocument": resource["Properties"]["PolicyDocument"]})
    return documents


def role_statements(function: str, parameters: dict) -> list[dict]:
    """Every Allow statement of the function's role with these parameters (conditions applied)."""
    template = load_template(TEMPLATE)
    values = {name: spec.get("Default", "") for name, spec in template["Parameters"].items()}
    values.update(parameters)
    translated = translate(template, parameters)
    conditions = translated.get("Conditions", {})
    found = []
    for policy in role_documents(translated, function):
        for document in active(policy, conditions, values):
            statements = document["PolicyDocument"]["Statement"]
            for statement in statements if isinstance(statements, list) else [statements]:
                found.extend(s for s in active(statement, conditions, values) if s["Effect"] == "Allow")
    return found


def allowed_by_role(function: str, parameters: dict = PARAMETERS) -> set[tuple[str, str]]:
    """(action, resource kind) of every grant of the function's role."""
    template = load_template(TEMPLATE)
    values = {name: spec.get("Default", "") for name, spec in template["Parameters"].items()}
    values.update(parameters)
    conditions = template.get("Conditions", {})
    allowed = set()
    for s in role_statements(function, parameters):
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        for resource in active(s["Resource"], conditions, values):
            kinds = kinds_of_resource(resource)
            assert kinds, f"{function}: a statement on resources the test cannot name: {resource}"
            allowed.update((action, kind) for action in actions for kind in kinds)
    return allowed


def permitted(action: str, kinds: set[str], allowed: set[tuple[str, str]]) -> bool:
    return any(fnmatch.fnmatchcase(action, a) and kind in kinds for a, kind in allowed)


@pytest.fixture
def world(aws, clock, monkeypatch, capsys, backup_account):
    """The harness's world with the tour's parameters: a destination in another account, read through its
    role, whose forwarder topic's subscription is confirmed."""
    yield cross_account_world(
        aws,
        clock,
        monkeypatch,
        ReconcileSchedule=PARAMETERS["ReconcileSchedule"],
        ReaderRoleArns=READER,
        InventoryReports=PARAMETERS["InventoryReports"],
    )
    runtime.reset()


@pytest.fixture
def recorded(world):
    """(function, action, resource kinds) of every AWS call the handlers make."""
    calls: list[tuple[str, str, frozenset[str]]] = []

    def record(params, model, **_):
        function = RUNNING["function"]
        if function:
            service = model.service_model.service_name
            kinds = frozenset(kinds_of_call(world.stack, service, params))
            calls.append((function, action_of(service, model.name, params), kinds))

    boto3.setup_default_session(region_name=REGION)
    boto3.DEFAULT_SESSION.events.register("provide-client-params", record)
    runtime.reset()  # the handlers' clients come from the recording session from now on
    yield calls
    boto3.DEFAULT_SESSION = None


def tour(world) -> None:
    """Every code path that calls AWS: events, verdicts, HEADs at deadlines, digests, schedule, TTL."""
    happy = "tour/happy"
    obj = world.put(SRC, happy)
    world.send(world.created_event(SRC, happy, obj))
    for dest in (DST, DST2):
        world.replicate(SRC, happy, obj, dest, encryption="aws:kms", etag="f" * 32)  # ETags differ: HEADs
        world.send(world.created_event(dest, happy, {**obj, "etag": "f" * 32}))
    bidi = "tour/bidi"
    a = world.put(BIDI_A, bidi)
    emulator.set_replication_status(BIDI_A, bidi, a["version_id"], "PENDING")
    world.send(world.created_event(BIDI_A, bidi, a))
    first = "tour/replica-first"  # the replica's event before the source's: the matcher writes the verdict
    first_obj = world.put(SRC, first)
    for dest in (DST, DST2):
        world.replicate(SRC, first, first_obj, dest)
        world.send(world.created_event(dest, first, first_obj))
    world.run()
    world.send(world.created_event(SRC, first, first_obj))
    unjudged = "tour/unjudged"  # still replicating at its deadline (OVERDUE), then removed by TTL
    unjudged_obj = world.put(SRC, unjudged)
    emulator.set_replication_status(SRC, unjudged, unjudged_obj["version_id"], "PENDING")
    world.send(world.created_event(SRC, unjudged, unjudged_obj))
    late = "tour/late"
    late_obj = world.put(SRC, late)
    emulator.set_replication_status(SRC, late, late_obj["version_id"], "PENDING")
    world.send(world.created_event(SRC, late, late_obj))
    world.send(world.failure_notification(SRC, late, late_obj, DST2, reason="DstBucketNotFound", rule_id="to-eu"))
    world.send("not an event")  # parked in the events DLQ
    world.send(subscription_confirmation(f"arn:aws:sns:{REGION}:{OTHER}:crr-forwarder-failures"))
    elsewhere = "tour/other-account"  # replicated to another account's bucket, its replica event lost
    other = world.put(XSRC, elsewhere)
    world.send(world.created_event(XSRC, elsewhere, other))
    world.replicate(XSRC, elsewhere, other, XDST)
    world.advance(RPO + 1)
    world.schedule()
    # TTL removes an item that never got a verdict: the sweeper publishes it as EXPIRED.
    item = world.item(unjudged, unjudged_obj["version_id"], DST)
    world.ddb.delete_item(TableName=world.stack.table_name, Key={"pk": {"S": item["pk"]}, "dest": {"S": DST}})
    world.mappings.stream.ttl_removed.add((item["pk"], DST))
    world.run()
    # Reconciliation (its schedule is off in the harness's stack: invoked as the schedule would). SRC has
    # S3 Inventory reports: its pairs get the daily proof, which finds the lost version missing in DST's
    # report and feeds it; the other source buckets have none and are listed.
    lost = world.put(SRC, "tour/lost")
    world.replicate(SRC, "tour/lost", lost, DST)
    world.advance(3600)
    inventory_reports(world, lost)
    invoke(load_handler("reconcile"), {"detail-type": "Scheduled Event", "detail": {}}, "ReconcileFunction")
    world.run()
    assert world.item("tour/lost", lost["version_id"], DST) is not None  # fed back and recorded


def inventory_reports(world, lost: dict) -> None:
    """Daily reports of SRC (holding the lost version, written the day before) and of its destinations."""
    now = world.clock()
    day_start = (now // 86400 - 1) * 86400
    written = now - 23 * 3600 if now - 23 * 3600 < day_start + 86400 else day_start + 86400 - 60
    when = datetime.fromtimestamp(written, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    for region in INVENTORY_REGIONS:
        configuration = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        world.s3.create_bucket(Bucket=f"inventories-{region}", **configuration)
    reports = {
        SRC: [row(SRC, "tour/lost", lost["version_id"], size=lost["size"], etag=lost["etag"], modified=when)],
        DST: [],
        DST2: [],
    }
    for bucket, rows in reports.items():
        put_report(
            world.s3,
            f"inventories-{REGIONS[bucket]}",
            bucket,
            [rows],
            base="daily/{bucket}/crrmon",
            created_ms=int(now * 1000),
        )


def test_each_function_calls_exactly_what_its_policy_allows(world, recorded):
    tour(world)
    statuses = {(line.get("key"), line["destination_bucket"], line.get("status")) for line in world.archive()}
    assert ("tour/unjudged", DST, "EXPIRED") in statuses and ("tour/late", DST2, "FAILED") in statuses  # paths taken
    assert ("tour/other-account", XDST, "COMPLETED") in statuses
    proofs = {(p["destination_bucket"], p["missing"]) for p in world.archive() if p.get("kind") == "daily-proof"}
    assert proofs == {(DST, 1), (DST2, 1)}
    by_function: dict[str, set[tuple[str, frozenset[str]]]] = {}
    for function, action, kinds in recorded:
        by_function.setdefault(function, set()).add((action, kinds))
    assert set(by_function) == {"IngestFunction", "MatcherFunction", "SweeperFunction", "ReconcileFunction"}
    for function, calls in by_function.items():
        allowed = allowed_by_role(function)
        for action, kinds in calls:
            assert permitted(action, set(kinds), allowed), f"{function} calls {action} on {set(kinds)} unpermitted"
        used = {(a, k) for a, kinds in calls for k in kinds}
        unused = {
            (action, kind)
            for action, kind in allowed
            if (action, kind) not in SERVICE_SIDE[function] | ANSWER_SIDE
            and not any(fnmatch.fnmatchcase(a, action) and k == kind for a, k in used)
        }
        assert not unused, f"{function} is allowed more than it uses: {sorted(unused)}"
        # What Lambda needs on the function's behalf is there, on the function's own resources.
        missing = SERVICE_SIDE[function] - allowed
        assert not missing, f"{function} lacks what Lambda uses on its behalf: {sorted(missing)}"


# Every option that adds a grant, so that every conditional statement is checked.
EVERY_OPTION = {
    **PARAMETERS,
    "EnableTracing": "true",
    "CanaryIntervalMinutes": "5",
    "TopologyParameterName": "/crr-monitor/topology",
}


@pytest.mark.parametrize("function", sorted(SERVICE_SIDE))
def test_every_grant_names_its_resources_and_star_only_where_aws_requires_it(function):
    wildcards = set()
    for s in role_statements(function, EVERY_OPTION):
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        assert "NotResource" not in s and "NotAction" not in s, function
        assert not any("*" in action for action in actions), s
        if "*" in resources:
            assert resources == ["*"], s
            wildcards.update(actions)
    assert wildcards <= set(REQUIRED_WILDCARDS), f"{function}: Resource '*' for {sorted(wildcards)}"
    allowed = allowed_by_role(function, EVERY_OPTION)
    assert {kind for _, kind in allowed} - {"*"}, function
    # X-Ray only with tracing on.
    assert {a for a, k in allowed if k == "*"} == set(REQUIRED_WILDCARDS), function
    assert not {a for a, k in allowed_by_role(function, PARAMETERS) if k == "*"}, function


@pytest.mark.parametrize("function", sorted(SERVICE_SIDE))
def test_lambda_polls_reads_and_logs_only_the_functions_own_resources(function):
    allowed = allowed_by_role(function, EVERY_OPTION)
    polling = {kind for action, kind in allowed if action in POLLING}
    assert polling == {kind for action, kind in SERVICE_SIDE[function] if action in POLLING}, function
    reads = {kind for action, kind in allowed if action in STREAM_READS}
    assert reads <= {"ReplicationTable/stream"}, function
    logs = {kind for action, kind in allowed if action.startswith("logs:")}
    assert logs == {f"{function.removesuffix('Function')}LogGroup"}, function
