"""The handlers `sam build` produced import and run with only the built function and layer folders.

Lambda puts the function's folder and each layer's `python/` folder on the path, and brings boto3
itself. Each handler runs here in a fresh interpreter (python3.13, the runtime's version, when
one is installed) with exactly that path, plus boto3 and its dependencies from this environment
standing in for the runtime's (and nothing else of this environment), and answers a batch that
needs no AWS call. tests/integration/test_parameter_matrix.py runs them under every parameter value.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".aws-sam" / "build"
FUNCTIONS = {
    "IngestFunction": "ingest",
    "MatcherFunction": "matcher",
    "SweeperFunction": "sweeper",
    "ReconcileFunction": "reconcile",
}
TEST_EVENT_BODY = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b", "Time": "t"})
EVENTS = {
    "IngestFunction": {
        "Records": [
            {
                "messageId": "m1",
                "body": TEST_EVENT_BODY,
                "attributes": {"ApproximateReceiveCount": "1"},
                "eventSource": "aws:sqs",
            }
        ]
    },
    "MatcherFunction": {
        "Records": [
            {
                "eventName": "MODIFY",
                "eventSource": "aws:dynamodb",
                "dynamodb": {
                    "SequenceNumber": "1",
                    "NewImage": {"pk": {"S": "__lease__"}, "dest": {"S": "sweeper-schedule"}},
                },
            }
        ]
    },
    "SweeperFunction": {"Records": []},
    # The sample event; the runner's context has 10 s left: too little for a run, which says so
    # before any AWS call.
    "ReconcileFunction": json.loads((ROOT / "events" / "reconcile-schedule.json").read_text()),
}
ANSWERS = {"ReconcileFunction": {"skipped": "a run needs more than 30 s (the function's Timeout is too short)"}}

RUNNER = """
import importlib.util, json, sys
function_dir, layer_dir, boto_dir, event = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
sys.path[:0] = [function_dir, layer_dir]
sys.path.append(boto_dir)
spec = importlib.util.spec_from_file_location("app", function_dir + "/app.py")
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)

class Context:
    function_name = "fn"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:fn"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self):
        return 10_000

result = app.lambda_handler(event, Context())
import crrmon, aws_lambda_powertools
print(json.dumps({"result": result, "crrmon": crrmon.__file__, "powertools": aws_lambda_powertools.__file__,
                  "python": sys.version_info[:2]}))
"""


def runtime_python() -> str:
    """python3.13 (the Lambda runtime's version) if installed, else the interpreter running the tests."""
    found = shutil.which("python3.13")
    candidates = ([found] if found else []) + sorted(
        glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13"))
    )
    for candidate in candidates:
        if subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    return sys.executable


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_built_handler_runs_with_only_the_built_folders(function, runtime_sdk_dir):
    assert (BUILD / "template.yaml").exists(), "no sam build output: run `make build` first"
    function_dir = BUILD / function
    layer_dir = BUILD / "CommonLayer" / "python"
    boto_dir = runtime_sdk_dir
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "TABLE_NAME": "table",
        "TIMER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/timers",
        "POWERTOOLS_SERVICE_NAME": "crr-monitor",
        "POWERTOOLS_METRICS_NAMESPACE": "CRRMonitor",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    done = subprocess.run(
        [
            runtime_python(),
            "-I",
            "-c",
            RUNNER,
            str(function_dir),
            str(layer_dir),
            boto_dir,
            json.dumps(EVENTS[function]),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["result"] == ANSWERS.get(function, {"batchItemFailures": []})
    assert report["crrmon"].startswith(str(layer_dir))
    assert report["powertools"].startswith(str(layer_dir))
