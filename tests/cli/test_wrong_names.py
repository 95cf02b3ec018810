"""What a new operator gets wrong first: names the monitor does not watch, a demo that has ended, a stack
that does not exist, no credentials, no network. Every command must say so in one line and exit 2:
never an all-clear (exit 0 with "nothing found"), never a traceback, never a long wait.
"""

from __future__ import annotations

import json
import socket
import time
import tomllib
from pathlib import Path

import pytest

from crrmon_cli.main import COMMANDS, main

from .conftest import DST, REGION, SRC, overdue_item

ROOT = Path(__file__).resolve().parents[2]

# Every command, with the arguments it needs to start; `{src}` is a watched source bucket.
RUNS = {
    "doctor": ["doctor"],
    "status": ["status", "s3://{src}/some/key"],
    "overdue": ["overdue"],
    "failed": ["failed"],
    "stats": ["stats"],
    "report": ["report", "--since", "1h"],
    "reconcile": ["reconcile", "s3://{src}"],
    "retry": ["retry", "--manifest", "{tmp}/retry.csv"],
    "redrive": ["redrive", "--dry-run"],
}


def run_of(command: str, tmp_path, src: str = SRC) -> list[str]:
    return [a.format(src=src, tmp=tmp_path) for a in RUNS[command]]


def test_every_command_is_covered_here():
    assert set(RUNS) == set(COMMANDS)


# ---------------------------------------------------------------- names the monitor does not watch

WRONG_NAMES = [
    # the README once showed these names, which the demo does not create
    (["doctor", "--bucket", "demo-src-use"], "bucket 'demo-src-use' is not watched"),
    (["status", "s3://nosuch/key"], "bucket 'nosuch' is not watched"),
    (["status", "s3://nosuch/key", "--version-id", "v1"], "bucket 'nosuch' is not watched"),
    (["overdue", "--pair", "nosuch>dst"], "pair 'nosuch>dst' is not watched"),
    (["overdue", "--pair", f"{SRC}>nosuch"], f"pair '{SRC}>nosuch' is not watched"),
    (["overdue", "--summary", "--pair", "nosuch>dst"], "pair 'nosuch>dst' is not watched"),
    (["failed", "--pair", "nosuch>dst"], "pair 'nosuch>dst' is not watched"),
    (["failed", "--from", "archive", "--pair", "nosuch>dst"], "pair 'nosuch>dst' is not watched"),
    (["failed", "--since", "7d", "--pair", f"{DST}>{SRC}"], f"pair '{DST}>{SRC}' is not watched"),
    (["retry", "--pair", "nosuch>dst", "--manifest", "retry.csv"], "pair 'nosuch>dst' is not watched"),
    (["reconcile", "s3://nosuchbucket"], "source bucket 'nosuchbucket' is not watched"),
    (["reconcile", f"s3://{DST}"], f"source bucket '{DST}' is not watched"),
]


@pytest.mark.parametrize(("argv", "message"), WRONG_NAMES, ids=[" ".join(a) for a, _ in WRONG_NAMES])
def test_a_name_the_monitor_does_not_watch_is_an_error_listing_what_it_watches(world, cli, argv, message):
    assert cli(*argv) == 2
    assert cli.out == ""  # nothing that could read as "all clear"
    [line] = cli.err.splitlines()
    assert message in line and "Traceback" not in line
    assert "Watched" in line and SRC in line  # what is watched, so the right name can be copied


def test_the_nearest_watched_name_is_offered(world, cli):
    assert cli("doctor", "--bucket", "src-use") == 2 and "(did you mean src-use1?)" in cli.err
    assert cli("overdue", "--pair", f"{SRC}>dst-usw") == 2 and f"(did you mean {SRC}>{DST}?)" in cli.err


def test_a_watched_pair_with_nothing_overdue_is_still_all_clear(world, cli):
    assert cli("overdue", "--pair", f"{SRC}>{DST}") == 0 and cli.out.strip() == "no overdue objects"
    overdue_item("late/one", "v1", first_seen_ms=int(world.clock() * 1000) - 600_000)
    assert cli("overdue", "--pair", f"{SRC}>{DST}") == 1 and "late/one" in cli.out


def test_a_watched_bucket_that_does_not_exist_is_one_line(world, cli):
    assert cli("reconcile", "s3://gone-bucket", "--source-buckets", "gone-bucket") == 2
    [line] = cli.err.splitlines()
    assert line.startswith("crrmon reconcile: s3:GetReplicationConfiguration on arn:aws:s3:::gone-bucket (https://")
    assert "answered NoSuchBucket" in line and "check its name" in line


# ---------------------------------------------------------------- no monitor, a missing stack


@pytest.mark.parametrize("command", sorted(RUNS))
def test_no_monitor_named_says_so(command, tmp_path, capsys):
    assert main(run_of(command, tmp_path)) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"crrmon {command}: no monitor named:") and "--stack NAME" in line and "--local" in line


@pytest.mark.parametrize("command", sorted(RUNS))
def test_a_missing_stack_is_named(world, cli, command, tmp_path):
    assert cli(*run_of(command, tmp_path), "--stack", "crr-monitor-prod", "--region", REGION, local=False) == 2
    assert cli.err == f"crrmon {command}: no CloudFormation stack 'crr-monitor-prod' in {REGION} (wrong --region?)\n"


# ---------------------------------------------------------------- the demo has ended: nothing listens


@pytest.fixture
def dead_stack_file(tmp_path) -> Path:
    """The local demo's stack file after the demo ended: its endpoint is a port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    queue = f"{endpoint}/123456789012/crrmon-demo-"
    stack = {
        "region": REGION,
        "table_name": "crrmon-demo-ReplicationTable",
        "events_queue_url": queue + "EventsQueue",
        "events_dlq_url": queue + "EventsDeadLetterQueue",
        "timer_queue_url": queue + "TimerQueue",
        "timer_dlq_url": queue + "TimerDeadLetterQueue",
        "archive_bucket": "crrmon-demo-archive",
        "alert_topic_arn": f"arn:aws:sns:{REGION}:123456789012:crrmon-demo-AlertTopic",
    }
    path = tmp_path / "stack.json"
    environment = {"SOURCE_BUCKETS": SRC, "TABLE_NAME": stack["table_name"], "RPO_SECONDS": "8"}
    path.write_text(json.dumps({"endpoint_url": endpoint, "environment": environment, "stack": stack}))
    return path


@pytest.fixture
def no_aws_environment(monkeypatch, tmp_path):
    """No credentials anywhere boto3 looks (and no instance metadata to ask over the network)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.mark.parametrize("command", sorted(RUNS))
def test_a_demo_that_has_ended_fails_fast_in_one_line(command, dead_stack_file, no_aws_environment, tmp_path, capsys):
    started = time.monotonic()
    code = main([*run_of(command, tmp_path), "--local", str(dead_stack_file)])
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 2 and elapsed < 2, (code, elapsed, err)
    [line] = err.splitlines()
    endpoint = json.loads(dead_stack_file.read_text())["endpoint_url"]
    assert line.startswith(f"crrmon {command}: cannot reach {endpoint} (") and "connection refused" in line
    assert "make demo ARGS=--serve" in line


def test_debug_shows_the_traceback_too(dead_stack_file, no_aws_environment, capsys):
    assert main(["overdue", "--local", str(dead_stack_file), "--debug"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "EndpointConnectionError" in err
    assert err.splitlines()[-1].startswith("crrmon overdue: cannot reach http://127.0.0.1:")


def test_no_network_is_one_line(no_aws_environment, monkeypatch, capsys):
    def no_dns(*_args, **_kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    code = main(["overdue", "--stack", "crr-monitor", "--endpoint-url", "http://monitor.invalid:4566"])
    assert code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("crrmon overdue: cannot reach http://monitor.invalid:4566 (cloudformation:DescribeStacks)")
    assert "the host name does not resolve" in line


# ---------------------------------------------------------------- credentials


@pytest.mark.parametrize("command", sorted(RUNS))
def test_missing_credentials_are_one_line(command, no_aws_environment, tmp_path, capsys):
    assert main([*run_of(command, tmp_path), "--stack", "crr-monitor", "--region", REGION]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"crrmon {command}: no AWS credentials found") and "--profile" in line


def test_an_unknown_profile_is_one_line(no_aws_environment, capsys):
    assert main(["overdue", "--stack", "crr-monitor", "--profile", "nosuch"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "nosuch" in line and "--profile" in line and "Traceback" not in line


# ---------------------------------------------------------------- version


def test_version_comes_from_the_package_metadata(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert capsys.readouterr().out.strip() == f"crrmon {declared}"
