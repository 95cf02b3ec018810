"""The crrmon command against the monitor provisioned from template.yaml on moto.

The stack, buckets and pipeline are the integration harness's (`tests/integration/conftest.py`); the
command reaches the stack through the same stack file the local demo writes (`--local FILE`).
"""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from botocore.exceptions import ClientError

from crrmon import runtime
from crrmon.store import Store, make_pk, pair_name
from crrmon_cli.main import main
from tests.integration import conftest as harness
from tests.integration.conftest import ACCOUNT, DST, DST2, REGION, REGIONS, RPO, SRC, World  # noqa: F401 (for the CLI tests)

# The integration harness's fixtures: buckets with rules, the stack from template.yaml, a fake clock.
aws, clock, world = harness.aws, harness.clock, harness.world


@pytest.fixture
def stack_file(world, tmp_path):
    path = tmp_path / "stack.json"
    stack = asdict(world.stack)
    path.write_text(json.dumps({"endpoint_url": None, "environment": stack.pop("environment"), "stack": stack}))
    return str(path)


class Cli:
    def __init__(self, world: World, stack_file: str, capsys, monkeypatch):
        self.world, self.stack_file, self.capsys = world, stack_file, capsys
        self.out = self.err = ""

    def __call__(self, *argv: str, local: bool = True) -> int:
        self.capsys.readouterr()
        args = [*argv, "--local", self.stack_file] if local else list(argv)
        code = main(args, session=self.world.session, now=self.world.clock)
        captured = self.capsys.readouterr()
        self.out, self.err = captured.out, captured.err
        return code

    def json(self, *argv: str) -> tuple[int, dict]:
        code = self(*argv, "--output", "json")
        return code, json.loads(self.out)


@pytest.fixture
def cli(world, stack_file, capsys, monkeypatch) -> Cli:
    return Cli(world, stack_file, capsys, monkeypatch)


def store() -> Store:
    return runtime.store()


def overdue_item(key: str, version_id: str, *, src: str = SRC, dest: str = DST, first_seen_ms: int, size: int = 5):
    """An item the sweeper marked OVERDUE, written through the domain's own Store."""
    pk = make_pk(version_id, key)
    s = store()
    s.record_observation(
        pk,
        dest,
        now_ms=first_seen_ms,
        due_s=first_seen_ms // 1000 + RPO,
        expires_s=first_seen_ms // 1000 + 86400,
        fields={"src": src, "sreg": REGIONS[src], "dreg": REGIONS[dest], "rid": "to-west", "s_size": size},
    )
    assert s.mark_overdue(pk, dest, pair=pair_name(src, dest), now_ms=first_seen_ms + RPO * 1000)


def index_before_sharding(pk: str, dest: str, attribute: str, pair: str) -> None:
    """Give an indexed item the bare pair as its index key, as a monitor that did not shard the keys wrote it."""
    s = store()
    s.dynamodb.update_item(
        TableName=s.table_name,
        Key={"pk": {"S": pk}, "dest": {"S": dest}},
        UpdateExpression="SET #a = :p",
        ExpressionAttributeNames={"#a": attribute},
        ExpressionAttributeValues={":p": {"S": pair}},
    )


def deny(session, event: str, code: str = "AccessDenied"):
    """Make every call named by `event` (e.g. 'before-call.s3.GetBucketReplication') fail with `code`."""

    def refuse(model, **_):
        raise ClientError({"Error": {"Code": code, "Message": "Access Denied"}}, model.name)

    session.events.register(event, refuse)


def fail(world: World, key: str, *, dest: str = DST, reason: str = "DstPutObjectNotPermitted") -> dict:
    """An object whose replication to `dest` S3 reports failed, driven through the whole pipeline."""
    obj = world.put(SRC, key)
    world.send(world.created_event(SRC, key, obj))
    world.send(world.failure_notification(SRC, key, obj, dest, reason=reason, rule_id="to-west"))
    world.run()
    return obj


class Recorder:
    """Remembers the parameters of every call of one operation (what the command sent)."""

    def __init__(self, session, event: str):
        self.calls: list[dict] = []
        session.events.register(event, self)

    def __call__(self, params, **_):
        self.calls.append(dict(params))


@pytest.fixture
def eventbridge_answers(world):
    """moto stores a bucket's EventBridgeConfiguration but leaves it out of GetBucketNotificationConfiguration's
    answer; this puts it back from moto's own state, as S3 answers."""
    from moto.s3.models import s3_backends

    asked: list[str] = []

    def remember(params, **_):
        asked.append(params["Bucket"])

    def complete(parsed, **_):
        configuration = s3_backends[ACCOUNT]["aws"].get_bucket(asked[-1]).notification_configuration
        if configuration is not None and configuration.event_bridge is not None:
            parsed["EventBridgeConfiguration"] = {}

    world.session.events.register("before-parameter-build.s3.GetBucketNotificationConfiguration", remember)
    world.session.events.register("after-call.s3.GetBucketNotificationConfiguration", complete)
