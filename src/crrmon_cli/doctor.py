"""`doctor`: can this set-up work at all? Every check gives a finding with its severity and fix.

Per watched bucket: versioning, EventBridge notifications, and for sources the replication rules,
their metrics (S3 sends replication failure events only for rules with metrics on) and a
notification for those events. Per other region: a forwarder (an EventBridge rule targeting the
monitor's bus). Per stack: KMS key policies that let EventBridge, S3 and SNS into the encrypted
queue and CloudWatch into the encrypted alert topic, alert subscriptions, dead letters, and where
each source bucket's scheduled reconciliation stands.

PutBucketNotificationConfiguration replaces a bucket's whole configuration, so where a bucket needs
a change, doctor prints the merged configuration (existing entries kept) to apply.
"""

from __future__ import annotations

import fnmatch
import json
import textwrap
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

from crrmon.reconcile import SETTLE_S, STALE_MARGIN_S
from crrmon.store import RECONCILE_PK
from crrmon.topology import bucket_region
from crrmon_cli import watched
from crrmon_cli.context import Context
from crrmon_cli.output import TABLE_WIDTH, duration

REPLICATION_EVENTS = [
    "s3:Replication:OperationFailedReplication",
    "s3:Replication:OperationMissedThreshold",
    "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:Replication:OperationNotTracked",
]
FORWARDER_TOPIC = "<ReplicationFailureTopicArn output of the forwarder stack in {region}>"
SEVERITY_ORDER = {"ERROR": 0, "WARN": 1, "INFO": 2, "OK": 3}


@dataclass
class Finding:
    severity: str  # OK | INFO | WARN | ERROR
    check: str
    resource: str
    finding: str
    fix: str = ""


class Doctor:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.findings: list[Finding] = []
        self.merged: dict[str, dict] = {}
        self.regions: dict[str, str] = {}
        self.denied = False

    def add(self, severity: str, check: str, resource: str, finding: str, fix: str = "") -> None:
        self.findings.append(Finding(severity, check, resource, finding, fix))

    def guarded(self, check: str, resource: str, step, *args) -> Any:
        """Run one check; a refused call becomes an ERROR finding naming the permission, not an abort."""
        try:
            return step(*args)
        except ClientError as error:
            denied = self.ctx.aws.denied(error)
            if denied is None:
                code = error.response.get("Error", {}).get("Code", "")
                self.add("ERROR", check, resource, f"could not check: {code}: {error}")
                return None
            self.denied = True
            self.add("ERROR", check, resource, f"could not check: {denied}", "grant the permission and run again")
            return None

    # ---------------------------------------------------------------- buckets
    def bucket(self, bucket: str, *, is_source: bool, monitor: dict[str, str]) -> None:
        s3 = self.ctx.aws.client("s3")
        region = self.guarded("bucket", bucket, bucket_region, s3, bucket) or "unknown"
        self.regions[bucket] = region
        client = self.ctx.aws.client("s3", region if region != "unknown" else None)
        self.guarded("versioning", bucket, self.versioning, client, bucket)
        self.guarded("encryption", bucket, self.encryption, client, bucket)
        notifications = self.guarded("notifications", bucket, self.notifications, client, bucket)
        if notifications is None:
            return
        wanted = dict(notifications)
        if "EventBridgeConfiguration" not in notifications:
            self.add(
                "ERROR",
                "eventbridge",
                bucket,
                "EventBridge notifications are off: the monitor sees no event",
                "apply the merged notification configuration below (it keeps the existing entries)",
            )
            wanted["EventBridgeConfiguration"] = {}
        else:
            self.add("OK", "eventbridge", bucket, "EventBridge notifications on")
        if is_source:
            self.guarded("replication", bucket, self.replication, client, bucket)
            self.failure_notifications(bucket, region, notifications, wanted, monitor)
        if region not in ("unknown", self.ctx.aws.region):
            self.forwarder(region, monitor)
        if wanted != notifications:
            self.merged[bucket] = wanted

    def versioning(self, s3, bucket: str) -> None:
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
        if status == "Enabled":
            self.add("OK", "versioning", bucket, "versioning enabled")
        else:
            self.add(
                "ERROR",
                "versioning",
                bucket,
                f"versioning is {status or 'off'}: replication needs it on both sides",
                f"aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled",
            )

    def encryption(self, s3, bucket: str) -> None:
        """A bucket whose default encryption is a KMS key: checksum-mode HEADs (VerifyMode=checksum) need
        kms:Decrypt on that key for the monitor's HEAD roles; plain HEADs need nothing."""
        try:
            rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            rules = []
        default = (rules[0] if rules else {}).get("ApplyServerSideEncryptionByDefault") or {}
        algorithm, key = default.get("SSEAlgorithm", "none"), default.get("KMSMasterKeyID") or "aws/s3"
        if algorithm not in ("aws:kms", "aws:kms:dsse"):
            self.add("OK", "encryption", bucket, f"default encryption {algorithm}: HEADs need no KMS grant")
            return
        if self.ctx.target.environment.get("VERIFY_MODE", "etag") != "checksum":
            self.add("OK", "encryption", bucket, f"{algorithm} ({key}): HEADs without checksum mode need no KMS grant")
            return
        roles = [r for r in self.ctx.target.head_role_arns.split(",") if r]
        if key == "aws/s3" or not key.startswith("arn:"):
            self.add(
                "WARN",
                "encryption",
                bucket,
                f"{algorithm} with {key}: checksum-mode HEADs need kms:Decrypt on it; they fall back to plain HEADs",
                "a customer managed key allowing kms:Decrypt to the HeadRoleArns output, or VerifyMode=etag",
            )
            return
        region = key.split(":")[3]
        kms = self.ctx.aws.client("kms", region)
        policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
        if roles and all(grants_decrypt(policy, role) for role in roles):
            self.add("OK", "encryption", bucket, f"{algorithm}: the key policy lets the monitor's roles decrypt")
        else:
            self.add(
                "WARN",
                "encryption",
                bucket,
                f"{algorithm}: the policy of {key} does not name the monitor's HEAD roles for kms:Decrypt",
                f"allow kms:Decrypt on {key} to {', '.join(roles) or 'the HeadRoleArns output'} in its key policy",
            )

    @staticmethod
    def notifications(s3, bucket: str) -> dict:
        answer = s3.get_bucket_notification_configuration(Bucket=bucket)
        return {k: v for k, v in answer.items() if k != "ResponseMetadata"}

    def replication(self, s3, bucket: str) -> None:
        try:
            rules = s3.get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"].get("Rules", [])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ReplicationConfigurationNotFoundError":
                raise
            rules = []
        if not rules:
            self.add("ERROR", "replication", bucket, "no replication rules", "add rules (put-bucket-replication)")
            return
        known = set(self.ctx.target.destination_buckets)
        for rule in rules:
            rule_id = rule.get("ID", "?")
            destination = rule["Destination"]["Bucket"].rsplit(":", 1)[-1]
            name = f"{bucket} rule {rule_id}"
            if rule.get("Status") != "Enabled":
                self.add("WARN", "replication", name, "rule disabled: nothing replicates through it", "enable the rule")
                continue
            self.add("OK", "replication", name, f"enabled, to {destination}")
            metrics = (rule["Destination"].get("Metrics") or {}).get("Status")
            if metrics != "Enabled":
                self.add(
                    "WARN",
                    "metrics",
                    name,
                    "replication metrics off: S3 sends no OperationFailedReplication events for this rule; failures "
                    "are found only at the deadline",
                    'set Destination.Metrics to {"Status": "Enabled", "EventThreshold": {"Minutes": 15}} in the rule '
                    "(put-bucket-replication with the whole configuration)",
                )
            else:
                self.add("OK", "metrics", name, "replication metrics on")
            if known and destination not in known:
                self.add(
                    "INFO",
                    "stack",
                    name,
                    f"{destination} is not in DestinationBuckets: the monitor cannot HEAD replicas there",
                    "add it to the DestinationBuckets parameter",
                )

    def failure_notifications(
        self, bucket: str, region: str, existing: dict, wanted: dict, monitor: dict[str, str]
    ) -> None:
        local = region == self.ctx.aws.region
        kind, arn_field = ("QueueConfigurations", "QueueArn") if local else ("TopicConfigurations", "TopicArn")
        target = monitor.get("events_queue_arn", "") if local else FORWARDER_TOPIC.format(region=region)
        for config in existing.get("QueueConfigurations", []) + existing.get("TopicConfigurations", []):
            events = config.get("Events", [])
            if any(e in ("s3:Replication:*", "s3:Replication:OperationFailedReplication") for e in events):
                where = config.get("QueueArn") or config.get("TopicArn")
                if local and where != target:
                    self.add("WARN", "failure events", bucket, f"replication events go to {where}, not the monitor")
                else:
                    self.add("OK", "failure events", bucket, f"replication failure events to {where}")
                    return
                break
        self.add(
            "WARN",
            "failure events",
            bucket,
            "no notification for s3:Replication:* events: failures are found only at the deadline",
            "apply the merged notification configuration below (it keeps the existing entries)",
        )
        wanted[kind] = [
            *wanted.get(kind, []),
            {"Id": "crr-monitor-replication", arn_field: target, "Events": REPLICATION_EVENTS},
        ]

    def forwarder(self, region: str, monitor: dict[str, str]) -> None:
        if region in monitor.setdefault("_regions_checked", ""):
            return
        monitor["_regions_checked"] += f" {region}"
        bus_arn = monitor.get("bus_arn", "")
        events = self.ctx.aws.client("events", region)
        answer = (
            self.guarded("forwarder", region, events.list_rule_names_by_target, TargetArn=bus_arn) if False else None
        )
        try:
            answer = events.list_rule_names_by_target(TargetArn=bus_arn)
        except ClientError as error:
            denied = self.ctx.aws.denied(error)
            self.denied = self.denied or denied is not None
            self.add("ERROR", "forwarder", region, f"could not check: {denied or error}")
            return
        rules = answer.get("RuleNames", [])
        if rules:
            self.add("OK", "forwarder", region, f"rule {', '.join(rules)} forwards to the monitor's bus")
        else:
            self.add(
                "ERROR",
                "forwarder",
                region,
                "no EventBridge rule in this region targets the monitor's bus: events of its buckets never arrive",
                f"sam deploy --template-file forwarder/template.yaml --region {region} --stack-name crrmon-forwarder "
                f"--capabilities CAPABILITY_IAM --parameter-overrides MonitorEventBusArn={bus_arn} "
                f"MonitorEventsQueueArn={monitor.get('events_queue_arn', '')} Buckets=<buckets in {region}>",
            )

    # ---------------------------------------------------------------- the stack
    def queue_key(self, monitor: dict[str, str]) -> None:
        url = self.ctx.target.events_queue_url
        sqs = self.ctx.aws.client("sqs")
        key = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["KmsMasterKeyId"])["Attributes"].get(
            "KmsMasterKeyId"
        )
        if not key:
            self.add("INFO", "kms", "EventsQueue", "not encrypted with KMS (SSE-SQS or none): nothing to allow")
            return
        if key.startswith("alias/aws/"):
            self.add(
                "ERROR",
                "kms",
                "EventsQueue",
                f"encrypted with the AWS managed key {key}: EventBridge and S3 cannot use it",
                "use a customer managed key whose policy allows events, s3 and sns (the stack's own key does)",
            )
            return
        policy = json.loads(self.ctx.aws.client("kms").get_key_policy(KeyId=key, PolicyName="default")["Policy"])
        for service in ("events.amazonaws.com", "s3.amazonaws.com", "sns.amazonaws.com"):
            if allows(policy, service):
                self.add(
                    "OK", "kms", f"EventsQueue key / {service.split('.')[0]}", "key policy lets it encrypt messages"
                )
            else:
                self.add(
                    "ERROR",
                    "kms",
                    f"EventsQueue key / {service.split('.')[0]}",
                    "the key policy does not allow kms:GenerateDataKey* and kms:Decrypt: its messages are dropped",
                    f'add {{"Effect": "Allow", "Principal": {{"Service": "{service}"}}, "Action": '
                    '["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"} to the key policy of ' + key,
                )

    def alert_topic(self) -> None:
        arn = self.ctx.target.alert_topic_arn
        sns = self.ctx.aws.client("sns")
        key = sns.get_topic_attributes(TopicArn=arn)["Attributes"].get("KmsMasterKeyId")
        if key and key.startswith("alias/aws/sns"):
            self.add(
                "ERROR",
                "kms",
                "AlertTopic",
                "encrypted with alias/aws/sns: CloudWatch alarm notifications are dropped",
                "use a customer managed key whose policy allows cloudwatch.amazonaws.com",
            )
        elif key:
            policy = json.loads(self.ctx.aws.client("kms").get_key_policy(KeyId=key, PolicyName="default")["Policy"])
            if allows(policy, "cloudwatch.amazonaws.com"):
                self.add("OK", "kms", "AlertTopic key / cloudwatch", "alarms can publish")
            else:
                self.add(
                    "ERROR",
                    "kms",
                    "AlertTopic key / cloudwatch",
                    "the key policy does not let CloudWatch use it: alarm notifications are dropped",
                    "allow cloudwatch.amazonaws.com kms:Decrypt and kms:GenerateDataKey* in the key policy",
                )
        subscriptions = sns.list_subscriptions_by_topic(TopicArn=arn).get("Subscriptions", [])
        confirmed = [s for s in subscriptions if s.get("SubscriptionArn", "").startswith("arn:")]
        if confirmed:
            endpoints = ", ".join(sorted(s["Protocol"] + ":" + s["Endpoint"] for s in confirmed))
            self.add("OK", "alerts", "AlertTopic", f"{len(confirmed)} confirmed subscription(s): {endpoints}")
        elif subscriptions:
            self.add(
                "WARN",
                "alerts",
                "AlertTopic",
                "subscriptions wait for confirmation: no one hears the alarms",
                "confirm the subscription e-mail",
            )
        else:
            self.add(
                "WARN",
                "alerts",
                "AlertTopic",
                "no subscriptions: alarms and digests reach no one",
                f"aws sns subscribe --topic-arn {arn} --protocol email --notification-endpoint you@example.com",
            )

    def reconciliation(self, sources: list[str]) -> None:
        """Where each source bucket's scheduled reconciliation stands (its `__reconcile__` item)."""
        states = self.ctx.store().bookkeeping(RECONCILE_PK, sources)
        if not states:
            self.add(
                "INFO",
                "reconcile",
                "ReconcileSchedule",
                "no reconciliation pass recorded: lost events are found only by running crrmon reconcile",
                "set ReconcileSchedule, e.g. rate(6 hours), to list the source buckets on a schedule",
            )
            return
        now_s = self.ctx.now()
        # A version is judged while inside the table's window: from the start of one complete pass to
        # the end of the next, no more than the window less the margins may pass.
        horizon_s = self.ctx.target.retention_seconds - STALE_MARGIN_S - SETTLE_S
        fix = (
            "list this bucket with crrmon reconcile (S3 Inventory reports for large buckets), "
            "or run the schedule more often"
        )
        for bucket in sources:
            state = states.get(bucket)
            if state is None:
                self.add("INFO", "reconcile", bucket, "no pass recorded yet")
                continue
            under_way = f"; a pass under way: {state.get('listed', 0)} versions listed" if "km" in state else ""
            if "last_started" not in state:
                age = now_s - state.get("started", now_s)
                severity = "WARN" if age > horizon_s else "INFO"
                self.add(severity, "reconcile", bucket, f"first pass under way for {duration(age)}{under_way}", fix)
                continue
            last = (
                f"last pass ended {duration(now_s - state['done_at'])} ago: {state.get('last_listed', 0)} versions "
                f"in {duration(state.get('last_pass_seconds', 0))}{under_way}"
            )
            if now_s - state["last_started"] > horizon_s:
                self.add(
                    "WARN",
                    "reconcile",
                    bucket,
                    f"{last}; it started {duration(now_s - state['last_started'])} ago, more than the "
                    f"{duration(horizon_s)} a pass may take before versions leave the table's window unchecked",
                    fix,
                )
            elif state.get("last_untracked"):
                self.add(
                    "WARN",
                    "reconcile",
                    bucket,
                    f"{last}; {state['last_untracked']} version(s) had never reached the monitor (sent in since)",
                    "an event path was broken: check this bucket's findings above, and the forwarder of its region",
                )
            else:
                self.add("OK", "reconcile", bucket, last)

    def dead_letters(self) -> None:
        sqs = self.ctx.aws.client("sqs")
        for name, url, fix in (
            ("EventsDeadLetterQueue", self.ctx.target.events_dlq_url, "crrmon redrive --queue events --dry-run"),
            ("TimerDeadLetterQueue", self.ctx.target.timer_dlq_url, "crrmon redrive --queue timer --dry-run"),
            ("StreamFailureQueue", self.ctx.target.stream_failure_queue_url, "crrmon redrive --show-stream-failures"),
        ):
            if not url:
                continue
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
            waiting = int(attributes["Attributes"].get("ApproximateNumberOfMessages", 0))
            if waiting:
                self.add("WARN", "dead letters", name, f"{waiting} message(s) waiting", fix)
            else:
                self.add("OK", "dead letters", name, "empty")


# Condition keys that only say which sources the service acts for (confused-deputy protection, as the
# stack's own key policy has them): a statement bound by them still lets the service use the key.
SOURCE_CONDITION_KEYS = frozenset({"aws:sourceaccount", "aws:sourcearn"})


def _only_source_conditions(condition: dict) -> bool:
    return all(
        isinstance(keys, dict) and {key.lower() for key in keys} <= SOURCE_CONDITION_KEYS for keys in condition.values()
    )


def allows(policy: dict, service: str, actions: tuple[str, ...] = ("kms:GenerateDataKey", "kms:Decrypt")) -> bool:
    granted: list[str] = []
    for statement in policy.get("Statement", []):
        if statement.get("Effect") != "Allow" or not _only_source_conditions(statement.get("Condition") or {}):
            continue
        principal = statement.get("Principal") or {}
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = [services] if isinstance(services, str) else services
        if service not in services:
            continue
        listed = statement.get("Action", [])
        granted += [listed] if isinstance(listed, str) else listed
    return all(any(fnmatch.fnmatchcase(action, pattern) for pattern in granted) for action in actions)


def grants_decrypt(policy: dict, role_arn: str) -> bool:
    """Whether the key policy allows kms:Decrypt to this role by name (a grant through the account root
    and IAM policies is not counted: the doctor cannot read those)."""
    for statement in policy.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal") or {}
        names = principal.get("AWS", []) if isinstance(principal, dict) else [principal]
        names = [names] if isinstance(names, str) else names
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if role_arn in names and any(fnmatch.fnmatchcase("kms:Decrypt", a) for a in actions):
            return True
    return False


COMMANDS = ("aws ", "sam ")  # fixes that are commands stay on one line, to be copied whole


def _wrapped(text: str, indent: str) -> list[str]:
    if text.startswith(COMMANDS):
        return [indent + text]
    following = " " * len(indent)
    return textwrap.wrap(
        text, TABLE_WIDTH, initial_indent=indent, subsequent_indent=following, break_on_hyphens=False
    ) or [indent]


def details(findings: list[Finding], *, verbose: bool) -> list[str]:
    """Under the table (which cuts long findings to fit 120 columns): each finding's fix by its number, or
    with `verbose` every finding in full with its fix."""
    lines: list[str] = []
    for n, f in enumerate(findings, 1):
        number = f"{n:<3d}"
        if verbose:
            lines += _wrapped(f"{f.severity} {f.check} {f.resource}: {f.finding}", number)
            lines += _wrapped(f.fix, "   fix: ") if f.fix else []
        elif f.fix:
            lines += _wrapped(f.fix, number)
    if not lines:
        return []
    title = "Every finding in full, with its fix:" if verbose else "Fixes, by finding (--verbose: findings in full):"
    return ["", title, *lines]


def doctor(ctx: Context, args) -> int:
    d = Doctor(ctx)
    target = ctx.target
    monitor: dict[str, str] = {}
    if target.events_queue_url:
        monitor["events_queue_arn"] = (
            target.events_queue_arn
            or d.guarded(
                "stack",
                "EventsQueue",
                lambda: ctx.aws.client("sqs").get_queue_attributes(
                    QueueUrl=target.events_queue_url, AttributeNames=["QueueArn"]
                )["Attributes"]["QueueArn"],
            )
            or ""
        )
    if target.event_bus_arn or target.event_bus_name:
        events = ctx.aws.client("events")
        bus = target.event_bus_arn or d.guarded(
            "stack", "MonitorEventBus", lambda: events.describe_event_bus(Name=target.event_bus_name)["Arn"]
        )
        monitor["bus_arn"] = bus or ""
    sources = target.source_buckets
    destinations = [b for b in target.destination_buckets if b not in sources]
    for name in args.bucket or ():
        if name not in sources + destinations:  # a mistyped name must not read as "nothing wrong"
            raise watched.not_watched("bucket", name, sorted(sources + destinations))
    if not sources:
        d.add("ERROR", "stack", target.stack_name or "stack", "no watched source buckets", "set SourceBuckets")
    for bucket in sources + destinations:
        if args.bucket and bucket not in args.bucket:
            continue
        d.bucket(bucket, is_source=bucket in sources, monitor=monitor)
    if not args.bucket:
        if target.events_queue_url:
            d.guarded("kms", "EventsQueue", d.queue_key, monitor)
        if target.alert_topic_arn:
            d.guarded("alerts", "AlertTopic", d.alert_topic)
        d.guarded("dead letters", "queues", d.dead_letters)
        if target.table_name and sources:
            d.guarded("reconcile", "ReplicationTable", d.reconciliation, sources)
    findings = sorted(d.findings, key=lambda f: SEVERITY_ORDER[f.severity])
    rows = [asdict(f) for f in findings]
    notes = details(findings, verbose=args.verbose)
    for bucket, configuration in sorted(d.merged.items()):
        notes.append(
            f"\nMerged notification configuration for s3://{bucket}. PutBucketNotificationConfiguration replaces the "
            "whole configuration:\napply this one, which keeps the existing entries:\n"
            f"aws s3api put-bucket-notification-configuration --region {d.regions.get(bucket, ctx.aws.region)} "
            f"--bucket {bucket} --notification-configuration "
            f"'{json.dumps(configuration, separators=(',', ':'))}'"
        )
    numbered = [{"#": n, **row} for n, row in enumerate(rows, 1)]
    ctx.printer.result(
        numbered if ctx.printer.fmt == "table" else rows,
        ("#", "severity", "check", "resource", "finding"),
        extra={"merged_notification_configurations": d.merged or None},
        notes=notes,
        fit="finding",
    )
    if d.denied:
        return 2
    return 1 if any(f.severity in ("ERROR", "WARN") for f in findings) else 0
