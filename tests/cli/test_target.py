"""How crrmon finds the monitor: --stack (CloudFormation), --local (the demo's stack file), flags; --help."""

from __future__ import annotations

import json

import pytest

from crrmon_cli.main import COMMANDS, main

from .conftest import DST, REGION, SRC, Recorder, overdue_item


def _outputs_stack(world, name: str = "crr-monitor") -> None:
    """A CloudFormation stack carrying the monitor's outputs and parameters (moto cannot deploy the SAM
    template itself: it runs no Lambda code), pointing at the resources provisioned from template.yaml."""
    stack = world.stack
    outputs = {
        "ReplicationTableName": stack.table_name,
        "EventsQueueUrl": stack.events_queue_url,
        "EventsDeadLetterQueueUrl": stack.events_dlq_url,
        "TimerQueueUrl": stack.timer_queue_url,
        "TimerDeadLetterQueueUrl": stack.timer_dlq_url,
        "StreamFailureQueueUrl": stack.stream_failure_queue_url,
        "MonitorEventBusName": stack.event_bus_name,
        "AlertTopicArn": stack.alert_topic_arn,
        "ArchiveBucketName": stack.archive_bucket,
        "AthenaDatabase": "crr_monitor_archive",
        "AthenaTable": "replication_records",
        "AthenaWorkGroup": "crrmon-archive",
    }
    template = {
        "Parameters": {"SourceBuckets": {"Type": "String"}, "RpoSeconds": {"Type": "String"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    world.session.client("cloudformation", region_name=REGION).create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[
            {"ParameterKey": "SourceBuckets", "ParameterValue": stack.environment["SOURCE_BUCKETS"]},
            {"ParameterKey": "RpoSeconds", "ParameterValue": "60"},
        ],
    )


def test_stack_by_name(world, cli):
    _outputs_stack(world)
    overdue_item("via/stack", "v1", first_seen_ms=int(world.clock() * 1000) - 600_000)
    code = cli("overdue", "--stack", "crr-monitor", "--region", REGION, "--output", "json", local=False)
    assert code == 1
    assert [row["key"] for row in json.loads(cli.out)["items"]] == ["via/stack"]
    # FAILED verdicts of the table's retention window come from its Failed index; older ones, on a
    # deployed stack with an Athena table, through Athena in the stack's workgroup
    world.session.client("athena", region_name=REGION).create_work_group(Name="crrmon-archive")
    sent = Recorder(world.session, "before-parameter-build.athena.StartQueryExecution")
    code = cli("failed", "--stack", "crr-monitor", "--region", REGION, "--output", "json", local=False)
    assert code == 0 and json.loads(cli.out)["items"] == [] and sent.calls == []
    code = cli("failed", "--stack", "crr-monitor", "--region", REGION, "--since", "3d", "--output", "json", local=False)
    assert code == 0 and json.loads(cli.out)["items"] == []
    [request] = sent.calls
    assert request["WorkGroup"] == "crrmon-archive"
    assert '"crr_monitor_archive"."replication_records"' in request["QueryString"]


def test_missing_stack_is_a_usage_error(world, cli):
    assert cli("overdue", "--stack", "no-such-stack", "--region", REGION, local=False) == 2
    assert "no CloudFormation stack 'no-such-stack'" in cli.err


def test_flags_alone_and_what_is_missing(world, cli):
    overdue_item("via/flags", "v1", first_seen_ms=int(world.clock() * 1000) - 600_000)
    table, pair = world.stack.table_name, f"{SRC}>{DST}"
    code = cli("overdue", "--table", table, "--source-buckets", SRC, "--pair", pair, "--region", REGION, local=False)
    assert code == 1 and "via/flags" in cli.out
    # a pair is checked against the watched buckets' rules: with none known, it cannot be
    assert cli("overdue", "--table", table, "--pair", pair, "--region", REGION, local=False) == 2
    assert "watched buckets are unknown" in cli.err and "--source-buckets" in cli.err
    assert cli("overdue", "--source-buckets", SRC, "--pair", pair, "--region", REGION, local=False) == 2
    assert "needs the table name" in cli.err and "--table" in cli.err


def test_local_file_errors(world, cli, tmp_path):
    assert cli("overdue", "--local", str(tmp_path / "none.json"), local=False) == 2 and "make demo" in cli.err
    (tmp_path / "bad.json").write_text("{")
    assert cli("overdue", "--local", str(tmp_path / "bad.json"), local=False) == 2 and "not JSON" in cli.err
    assert cli("overdue", "--local", cli.stack_file, "--stack", "x", local=False) == 2


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: crrmon {command}" in text and "--output" in text and "--stack" in text and "Exit codes" in text


def test_a_reader_that_goes_away_ends_the_command_quietly(world, cli, monkeypatch, capsys):
    """`crrmon failed | head -1`: the pipe closes while rows are written; no traceback, exit 1."""
    from crrmon_cli.main import main

    overdue_item("piped/one", "v1", first_seen_ms=int(world.clock() * 1000) - 600_000)

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("sys.stdout", ClosedPipe())
    code = main(["overdue", "--local", cli.stack_file], session=world.session, now=world.clock)
    assert code == 1 and "Traceback" not in capsys.readouterr().err
