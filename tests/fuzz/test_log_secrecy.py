"""Logs never hold object data, nor object keys: a batch with secret-looking keys and bodies, accepted,
rejected and failing records alike, leaves neither in any log record (message or structured fields)."""

from __future__ import annotations

import json
import logging
import time

from botocore.exceptions import ClientError

from crrmon_local import emulator
from tests.property.conftest import SRC, build_pipeline

SECRET_KEY = "payroll/ssn-078-05-1120/AKIAIOSFODNN7EXAMPLE.csv"
SECRET_DATA = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.lines.append(json.dumps(record.__dict__, default=str))


def event(key: str, version_id: str, **extra) -> str:

    document = json.loads(
        emulator.eventbridge_object_event(
            bucket=SRC, key=key, version_id=version_id, size=1, etag="e" * 32, time_s=time.time(), region="us-east-1"
        )
    )
    document["detail"].update(extra)
    return json.dumps(document)


def test_no_key_or_body_bytes_in_any_log(moto_account, capsys):
    session, stack, clock, stream = moto_account
    pipeline = build_pipeline(session, stack, clock, stream, allowed_accounts=("111111111111",))
    fail_once = {"left": 1}

    def throttle(params, **_):
        if fail_once["left"] and "#" in params["Key"]["pk"]["S"]:  # an observation, not a heartbeat
            fail_once["left"] -= 1
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "UpdateItem")

    pipeline.ingest.store.dynamodb.meta.events.register("provide-client-params.dynamodb.UpdateItem", throttle)
    bodies = [
        event(SECRET_KEY, "vSecret1", note=SECRET_DATA),  # foreign account: rejected
        json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": SECRET_DATA}]}),
        "{" + SECRET_DATA,  # not JSON
        SECRET_DATA * 20000,  # oversized
        event(SECRET_KEY + "%zz", "vSecret2").replace('"account": "123456789012"', '"account": "111111111111"'),
    ]
    capture = Capture()
    root = logging.getLogger()
    root.addHandler(capture)
    try:
        pipeline.deliver([(b, 1) for b in bodies])
        clock.t += 1
        pipeline.deliver([(event(SECRET_KEY, "vSecret3").replace("123456789012", "111111111111"), 1)])
    finally:
        root.removeHandler(capture)
    logged = "\n".join(capture.lines) + capsys.readouterr().out
    assert "event rejected" in logged and "observation failed" in logged  # the paths that log ran
    assert SECRET_DATA not in logged
    assert "AKIAIOSFODNN7EXAMPLE" not in logged and "ssn-078-05-1120" not in logged
