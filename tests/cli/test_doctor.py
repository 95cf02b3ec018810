"""crrmon doctor: set-up findings with their fixes, on the moto-provisioned stack and buckets."""

from __future__ import annotations

import json

from tests.integration.conftest import BIDI_A, BIDI_B, TAGGED

from .conftest import ACCOUNT, DST, REGION, SRC, deny


def _findings(answer: dict, check: str, resource: str | None = None) -> list[dict]:
    return [f for f in answer["items"] if f["check"] == check and (resource is None or f["resource"] == resource)]


def test_doctor_on_a_fresh_set_up_finds_what_is_missing(world, cli):
    other_topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:someone-elses-topic"
    world.session.client("sns", region_name=REGION).create_topic(Name="someone-elses-topic")
    existing = {"TopicConfigurations": [{"Id": "theirs", "TopicArn": other_topic, "Events": ["s3:ObjectCreated:*"]}]}
    world.s3.put_bucket_notification_configuration(Bucket=SRC, NotificationConfiguration=existing)

    code, answer = cli.json("doctor")
    assert code == 1
    assert _findings(answer, "eventbridge", SRC)[0]["severity"] == "ERROR"
    assert _findings(answer, "versioning", SRC)[0]["severity"] == "OK"
    metrics = _findings(answer, "metrics", f"{SRC} rule to-west")
    assert metrics[0]["severity"] == "WARN" and "Metrics" in metrics[0]["fix"]
    assert _findings(answer, "forwarder", "us-west-2")[0]["severity"] == "ERROR"
    assert "forwarder/template.yaml" in _findings(answer, "forwarder", "us-west-2")[0]["fix"]
    assert {f["severity"] for f in _findings(answer, "kms")} == {"OK"}  # the template's key policy
    assert _findings(answer, "alerts")[0]["severity"] == "OK"  # the harness subscribes a queue
    assert answer["items"][0]["severity"] == "ERROR"  # worst first

    merged = answer["merged_notification_configurations"][SRC]
    assert merged["TopicConfigurations"][0]["Id"] == "theirs"  # kept, not replaced
    assert "EventBridgeConfiguration" in merged
    [queue] = merged["QueueConfigurations"]
    assert queue["QueueArn"].endswith(":crrmon-test-EventsQueue")
    assert "s3:Replication:OperationFailedReplication" in queue["Events"]

    assert cli("doctor") == 1
    assert "PutBucketNotificationConfiguration replaces the whole configuration" in cli.out
    assert f"put-bucket-notification-configuration --region {REGION} --bucket {SRC}" in cli.out


def test_doctor_is_clean_once_the_fixes_are_applied(world, cli, eventbridge_answers):
    _, answer = cli.json("doctor", "--bucket", SRC)
    world.s3.put_bucket_notification_configuration(
        Bucket=SRC, NotificationConfiguration=answer["merged_notification_configurations"][SRC]
    )
    rules = world.s3.get_bucket_replication(Bucket=SRC)["ReplicationConfiguration"]
    for rule in rules["Rules"]:
        rule["Destination"]["Metrics"] = {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}
    world.s3.put_bucket_replication(Bucket=SRC, ReplicationConfiguration=rules)

    code, answer = cli.json("doctor", "--bucket", SRC)
    assert {f["severity"] for f in answer["items"]} == {"OK"}, answer["items"]
    assert code == 0 and "merged_notification_configurations" not in answer


def test_doctor_finds_the_forwarder_of_another_region(world, cli):
    _, answer = cli.json("doctor", "--bucket", DST)
    assert _findings(answer, "forwarder", "us-west-2")[0]["severity"] == "ERROR"
    bus_arn = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{world.stack.event_bus_name}"
    events = world.session.client("events", region_name="us-west-2")
    events.put_rule(Name="crrmon-forwarder-ForwardRule", EventPattern=json.dumps({"source": ["aws.s3"]}))
    events.put_targets(Rule="crrmon-forwarder-ForwardRule", Targets=[{"Id": "monitor", "Arn": bus_arn}])
    _, answer = cli.json("doctor", "--bucket", DST)
    [forwarder] = _findings(answer, "forwarder", "us-west-2")
    assert forwarder["severity"] == "OK" and "crrmon-forwarder-ForwardRule" in forwarder["finding"]


def test_doctor_flags_the_aws_managed_sns_key_and_missing_subscribers(world, cli):
    sns = world.session.client("sns", region_name=REGION)
    sns.set_topic_attributes(
        TopicArn=world.stack.alert_topic_arn, AttributeName="KmsMasterKeyId", AttributeValue="alias/aws/sns"
    )
    for subscription in sns.list_subscriptions_by_topic(TopicArn=world.stack.alert_topic_arn)["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
    code, answer = cli.json("doctor", "--source-buckets", SRC)
    assert code == 1
    [kms] = _findings(answer, "kms", "AlertTopic")
    assert kms["severity"] == "ERROR" and "dropped" in kms["finding"]
    [alerts] = _findings(answer, "alerts")
    assert alerts["severity"] == "WARN" and "sns subscribe" in alerts["fix"]


def test_doctor_reports_dead_letters(world, cli):
    world.sqs.send_message(QueueUrl=world.stack.timer_dlq_url, MessageBody="{}")
    _, answer = cli.json("doctor", "--source-buckets", SRC)
    [timer] = _findings(answer, "dead letters", "TimerDeadLetterQueue")
    assert timer["severity"] == "WARN" and timer["fix"] == "crrmon redrive --queue timer --dry-run"


def test_doctor_permission_errors_are_findings_and_exit_2(world, cli):
    deny(world.session, "before-call.s3.GetBucketVersioning")
    code, answer = cli.json("doctor", "--bucket", SRC)
    assert code == 2
    [versioning] = _findings(answer, "versioning", SRC)
    assert versioning["severity"] == "ERROR"
    assert f"s3:GetBucketVersioning on arn:aws:s3:::{SRC}" in versioning["finding"]
    assert _findings(answer, "eventbridge", SRC)  # the other checks still ran


def test_doctor_reports_where_reconciliation_stands(world, cli):
    from crrmon import runtime
    from crrmon.store import RECONCILE_PK

    _, answer = cli.json("doctor")
    [off] = _findings(answer, "reconcile")
    assert off["severity"] == "INFO" and "ReconcileSchedule" in off["fix"]

    store, now = runtime.store(), int(world.clock())
    done = {"done_at": now - 600, "last_pass_seconds": 300, "last_listed": 12000}
    store.save_progress(
        RECONCILE_PK, SRC, {**done, "last_started": now - 900, "last_untracked": 0, "km": "k", "listed": 3000}
    )
    store.save_progress(RECONCILE_PK, BIDI_A, {**done, "last_started": now - 900, "last_untracked": 3})
    store.save_progress(RECONCILE_PK, BIDI_B, {**done, "last_started": now - 86400})
    store.save_progress(RECONCILE_PK, TAGGED, {"started": now - 2 * 86400, "km": "k", "listed": 9})
    _, answer = cli.json("doctor")
    [fine] = _findings(answer, "reconcile", SRC)
    assert fine["severity"] == "OK"
    assert (
        fine["finding"] == "last pass ended 10m00s ago: 12000 versions in 5m00s; a pass under way: 3000 versions listed"
    )
    [lossy] = _findings(answer, "reconcile", BIDI_A)
    assert lossy["severity"] == "WARN" and "3 version(s) had never reached the monitor" in lossy["finding"]
    [stale] = _findings(answer, "reconcile", BIDI_B)  # 24 h since its last pass began: coverage lost
    assert stale["severity"] == "WARN" and "started 1d00h ago, more than the 23h15m" in stale["finding"]
    assert "Inventory" in stale["fix"]
    [slow] = _findings(answer, "reconcile", TAGGED)
    assert (
        slow["severity"] == "WARN"
        and slow["finding"] == "first pass under way for 2d00h; a pass under way: 9 versions listed"
    )


def _checksum_mode_stack(stack_file: str, roles: list[str]) -> None:
    with open(stack_file) as f:
        raw = json.load(f)
    raw["environment"]["VERIFY_MODE"] = "checksum"
    raw["stack"]["head_role_arns"] = ",".join(roles)
    with open(stack_file, "w") as f:
        json.dump(raw, f)


def test_doctor_names_the_kms_grant_checksum_mode_needs(world, cli, stack_file):
    roles = [f"arn:aws:iam::{ACCOUNT}:role/crrmon-test-IngestFunctionRole", f"arn:aws:iam::{ACCOUNT}:role/sweeper"]
    kms = world.session.client("kms", region_name=REGION)
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*"}],
    }
    key = kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]
    default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}
    world.s3.put_bucket_encryption(
        Bucket=SRC, ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": default}]}
    )
    _, answer = cli.json("doctor", "--bucket", SRC)  # VerifyMode etag: plain HEADs need no grant
    assert _findings(answer, "encryption", SRC)[0]["severity"] == "OK"

    _checksum_mode_stack(stack_file, roles)
    _, answer = cli.json("doctor", "--bucket", SRC)
    (finding,) = _findings(answer, "encryption", SRC)
    assert finding["severity"] == "WARN" and key in finding["fix"] and roles[1] in finding["fix"]

    policy["Statement"].append({"Effect": "Allow", "Principal": {"AWS": roles}, "Action": "kms:Decrypt"})
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    _, answer = cli.json("doctor", "--bucket", SRC)
    assert _findings(answer, "encryption", SRC)[0]["severity"] == "OK"


def test_doctor_warns_that_the_aws_managed_key_cannot_serve_checksum_mode(world, cli, stack_file):
    default = {"SSEAlgorithm": "aws:kms"}
    world.s3.put_bucket_encryption(
        Bucket=SRC, ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": default}]}
    )
    _checksum_mode_stack(stack_file, [])
    _, answer = cli.json("doctor", "--bucket", SRC)
    (finding,) = _findings(answer, "encryption", SRC)
    assert finding["severity"] == "WARN" and "aws/s3" in finding["finding"]


def test_doctor_table_fits_120_columns_and_gives_details_on_demand(world, cli):
    assert cli("doctor") == 1
    table, _, rest = cli.out.partition("\n\n")
    header, *rows = table.splitlines()
    assert header.split() == ["#", "SEVERITY", "CHECK", "RESOURCE", "FINDING"]
    assert rows and all(len(line) <= 120 for line in [header, *rows])
    assert any(line.endswith("...") for line in rows)  # the metrics finding is longer than its room
    # each fix under its finding's number; prose wrapped to 120 columns, commands whole to be copied
    fixes = rest.split("\n\nMerged notification configuration")[0].splitlines()
    assert fixes[0].startswith("Fixes, by finding")
    metrics = next(line for line in rows if " metrics " in line)
    number = metrics.split()[0]
    assert any(line.startswith(f"{number:<3}set Destination.Metrics") for line in fixes)
    assert all(len(line) <= 120 for line in fixes if not line[3:].startswith(("aws ", "sam ")))

    assert cli("doctor", "--verbose") == 1
    full = "replication metrics off: S3 sends no OperationFailedReplication events for this rule; failures"
    assert full in cli.out.replace("\n   ", " ")  # the whole finding, wrapped
    assert "   fix: set Destination.Metrics" in cli.out


def test_a_key_statement_bound_to_its_sources_still_lets_the_service_use_the_key():
    from crrmon_cli.doctor import allows

    def policy(condition):
        statement = {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Resource": "*"}
        statement["Action"] = ["kms:Decrypt", "kms:GenerateDataKey*"]
        return {"Statement": [{**statement, **({"Condition": condition} if condition else {})}]}

    bound = {"StringEquals": {"aws:SourceAccount": "123456789012"}, "ArnLike": {"aws:SourceArn": "arn:*:s3:::b"}}
    assert allows(policy(None), "s3.amazonaws.com")
    assert allows(policy(bound), "s3.amazonaws.com")
    # Any other condition may withhold the key from the service: the doctor does not count it.
    assert not allows(policy({"StringEquals": {"kms:ViaService": "sqs.us-east-1.amazonaws.com"}}), "s3.amazonaws.com")
