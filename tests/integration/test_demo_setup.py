"""`make demo` sets its buckets up as an operator would, so `crrmon doctor` agrees with what the demo shows.

The demo's set-up runs in a subprocess (it starts moto server on 127.0.0.1 and sets the process's AWS
environment), then `crrmon doctor --local` reads the stack file it wrote, over HTTP, as a user would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from crrmon_cli.main import main
    from crrmon_local import demo

    args = demo.parser().parse_args(["--stack-file", sys.argv[1], "--log", sys.argv[2]])
    d = demo.Demo(args)
    d.start_server()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            d.provision()

        def doctor():
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = main(["doctor", "--local", sys.argv[1], "--output", "json"])
            return code, json.loads(out.getvalue())["items"]

        answers = {"set_up": doctor()}
        # the same set-up with one thing broken: EventBridge off on a destination (its other entries kept)
        d.s3.put_bucket_notification_configuration(Bucket=demo.DST, NotificationConfiguration={})
        answers["broken"] = doctor()
        print(json.dumps(answers))
    finally:
        d.stop()
    """
)


@pytest.fixture(scope="module")
def doctor_on_the_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-setup")
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'layers' / 'common'}{os.pathsep}{ROOT / 'src'}"}
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out / "stack.json"), str(out / "lambda.log")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_doctor_finds_the_demos_set_up_whole(doctor_on_the_demo):
    code, findings = doctor_on_the_demo["set_up"]
    problems = [f for f in findings if f["severity"] in ("ERROR", "WARN")]
    assert problems == [] and code == 0
    checked = {(f["check"], f["resource"]) for f in findings if f["severity"] == "OK"}
    for bucket in ("demo-src-use1", "demo-dst-usw2", "demo-dst-euw1", "demo-backup-xacct-usw2"):
        assert ("eventbridge", bucket) in checked
    for source in ("demo-src-use1", "demo-bidi-b-usw2", "demo-xacct-src-use1"):
        assert ("failure events", source) in checked
    assert ("metrics", "demo-src-use1 rule to-west") in checked
    assert ("forwarder", "us-west-2") in checked and ("forwarder", "eu-west-1") in checked


def test_doctor_still_finds_a_broken_demo_set_up(doctor_on_the_demo):
    code, findings = doctor_on_the_demo["broken"]
    [eventbridge] = [f for f in findings if f["check"] == "eventbridge" and f["resource"] == "demo-dst-usw2"]
    assert eventbridge["severity"] == "ERROR" and code == 1
