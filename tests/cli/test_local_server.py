"""The installed `crrmon` command, as a separate process, against a stack on moto server over HTTP.

This is how operators reach the local demo: `--local demo-output/stack.json`, whose endpoint_url
points at the emulator. The stack file here has exactly the demo's shape.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import boto3
import pytest

from crrmon.store import Store, make_pk, pair_name
from tests.integration.conftest import DST, REGION, RULES, SRC, TEMPLATE, make_buckets

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served_stack(tmp_path, monkeypatch):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,  # provision() and make_buckets() make their own clients
        }.items():
            monkeypatch.setenv(name, value)
        from crrmon_local.provision import provision

        session = boto3.Session(region_name=REGION)
        make_buckets(session)
        stack = provision(
            TEMPLATE,
            session=session,
            stack_name="crrmon-served",
            parameters={"SourceBuckets": ",".join(RULES), "RpoSeconds": "60"},
            region=REGION,
        )
        fields = asdict(stack)
        path = tmp_path / "demo-output" / "stack.json"
        path.parent.mkdir()
        path.write_text(
            json.dumps({"endpoint_url": endpoint, "environment": fields.pop("environment"), "stack": fields})
        )
        yield session, stack, path
    finally:
        server.stop()


def crrmon(*argv: str) -> subprocess.CompletedProcess:
    executable = shutil.which("crrmon", path=str(Path(sys.executable).parent))
    command = [executable] if executable else [sys.executable, "-m", "crrmon_cli.main"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # only the stack file says where
    env["PYTHONPATH"] = f"{ROOT / 'layers' / 'common'}{os.pathsep}{ROOT / 'src'}"
    return subprocess.run([*command, *argv], capture_output=True, text=True, env=env, timeout=120, check=False)


@pytest.mark.slow
def test_installed_command_against_a_served_stack(served_stack):
    session, stack, path = served_stack
    store = Store(session.client("dynamodb", region_name=REGION), stack.table_name)
    first_seen_ms = int(time.time() * 1000) - 600_000
    pk = make_pk("v-served", "served/late.bin")
    store.record_observation(
        pk, DST, now_ms=first_seen_ms, due_s=first_seen_ms // 1000 + 60, expires_s=first_seen_ms // 1000 + 86400,
        fields={"src": SRC, "s_size": 7, "rid": "to-west"},
    )  # fmt: skip
    store.mark_overdue(pk, DST, pair=pair_name(SRC, DST), now_ms=first_seen_ms + 60_000)
    sqs = session.client("sqs", region_name=REGION)
    sqs.send_message(QueueUrl=stack.timer_dlq_url, MessageBody='{"timer": 1}')

    done = crrmon("overdue", "--local", str(path), "--output", "json")
    assert done.returncode == 1, done.stderr
    [row] = json.loads(done.stdout)["items"]
    assert row["key"] == "served/late.bin" and row["pair"] == f"{SRC}>{DST}" and row["waiting"].startswith("10m")

    done = crrmon("redrive", "--local", str(path), "--queue", "timer")
    assert done.returncode == 0, done.stderr
    assert "copy" in done.stdout  # the emulator has no StartMessageMoveTask
    moved = sqs.receive_message(QueueUrl=stack.timer_queue_url, MaxNumberOfMessages=10).get("Messages", [])
    assert [m["Body"] for m in moved] == ['{"timer": 1}']

    done = crrmon("status", f"s3://{SRC}/nothing/here", "--local", str(path))
    assert done.returncode == 2 and "no such object" in done.stderr
