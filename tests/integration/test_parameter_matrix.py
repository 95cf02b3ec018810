"""Every parameter value that changes what runs, run from what `sam build` produced.

A parameter of template.yaml changes the functions' environment, their tracing configuration, or
which functions exist; it never changes their code (`test_one_build_serves_every_parameter_value`
holds the template to that), so one `sam build` output serves every value. For each value below:

- the template lints with it (the value written as the parameter's default, so cfn-lint also holds
  it against the parameter's constraints), SAM's translator translates it, and every intrinsic of
  every resource and output that exists with it resolves;
- the monitor's data plane is provisioned from the template on moto server (127.0.0.1 only);
- the pipeline runs end to end: an object version and its replica, a version the monitor never heard
  of, and the schedules. Every invocation of every function runs in a fresh interpreter holding only
  the built function folder and the built layer on its path (plus boto3 standing in for the runtime's,
  as Lambda appends it), with the environment and tracing configuration of that function in the
  translated template, and the variables Lambda itself sets;
- what the value switches on shows: the verdict's method, the archive line, the canary version, the
  reconciled version, the override's destination, the refused account, X-Ray segments at the daemon
  address (and the X-Ray SDK not even imported when tracing is off).

Values whose code paths do not meet share a case (CASES), so six stacks run, not eleven. The
forwarder template has no code: each of its values lints, translates and resolves.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.api import lint_file

from crrmon.publish import read_archive
from crrmon.store import Store, make_pk
from crrmon_local import emulator
from crrmon_local.cfn import load_template, translate
from crrmon_local.lambdas import build_mappings
from crrmon_local.provision import Resolver, Stack, provision
from tests.integration.test_built_handlers import runtime_python
from tests.unit.inventory_reports import put_report, row

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
FORWARDER = ROOT / "forwarder" / "template.yaml"
BUILD = ROOT / ".aws-sam" / "build"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account; the translator's default too
OTHER_ACCOUNT = "210987654321"  # allowed with AllowedAccounts
STRANGER = "999988887777"  # never allowed

SRC, DST, OVERRIDE_DST = "mx-src", "mx-dst", "mx-dst-override"
TOPOLOGY_PARAMETER = "/crr-monitor/topology"
KMS_KEY = "{kms key}"  # replaced by a key made on the emulator
RPO_POLICY = "matrix:prefix=tracing/,rpo=1h"  # the tracing case's keys are under tracing/
INVENTORIES = "mx-inventories"
INVENTORY_REPORTS = f"s3://{INVENTORIES}/{{bucket}}/crrmon"

# Parameters every case shares: one watched bucket and its destination.
BASE = {"SourceBuckets": SRC, "DestinationBuckets": f"{DST},{OVERRIDE_DST}", "HeadRequestsPerSecond": "1000"}

# The parameters that change what runs (which functions exist, which code paths their environment
# selects, what they write to), and the values each takes.
CHANGES_WHAT_RUNS: dict[str, tuple[str, ...]] = {
    "EnableTracing": ("false", "true"),
    "VerifyMode": ("size", "etag", "checksum"),
    "ArchiveEnabled": ("true", "false"),
    "ArchiveObjectLock": ("false", "true", "GOVERNANCE", "COMPLIANCE"),
    "ReconcileSchedule": ("", "rate(6 hours)"),
    "CanaryIntervalMinutes": ("0", "5"),
    "TopologyParameterName": ("", TOPOLOGY_PARAMETER),
    "AllowedAccounts": ("", OTHER_ACCOUNT),
    "KmsKeyArn": ("", KMS_KEY),
    "TableCapacity": ("on-demand", "provisioned"),
    "RpoClasses": ("", RPO_POLICY),
    "InventoryReports": ("", INVENTORY_REPORTS),
    "SloObjective": ("", "99.9"),
}

# Every value above in at least one case (test_every_value_has_a_case); values whose paths do not
# meet share a case, so the matrix runs six stacks, not eleven. Tracing goes with the case that
# runs every function and the most AWS calls (checksum HEADs, reconciliation's listing).
CASES: dict[str, dict[str, str]] = {
    "defaults": {},
    "tracing": {
        "EnableTracing": "true",
        "VerifyMode": "checksum",
        "ReconcileSchedule": "rate(6 hours)",
        "ArchiveObjectLock": "COMPLIANCE",
        "RpoClasses": RPO_POLICY,
    },
    "size-without-archive": {"VerifyMode": "size", "ArchiveEnabled": "false", "TableCapacity": "provisioned"},
    "locked-archive-own-key": {"ArchiveObjectLock": "true", "KmsKeyArn": KMS_KEY},
    "canary-other-accounts": {"CanaryIntervalMinutes": "5", "AllowedAccounts": OTHER_ACCOUNT},
    "topology-override": {"TopologyParameterName": TOPOLOGY_PARAMETER, "ArchiveObjectLock": "GOVERNANCE"},
    "inventory-proof-and-slo": {
        "ReconcileSchedule": "rate(6 hours)",
        "InventoryReports": INVENTORY_REPORTS,
        "SloObjective": "99.9",
    },
}

FORWARDER_BASE = {
    "MonitorEventBusArn": f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/crr-monitor-crr-monitor",
    "MonitorEventsQueueArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:crr-monitor-EventsQueue",
    "Buckets": "bucket-a,bucket-b",
}
FORWARDER_CASES: dict[str, dict[str, str]] = {
    "defaults": {},
    "read-only-role": {"CreateReadOnlyRole": "true"},
    "monitor-in-other-account": {"MonitorAccountId": OTHER_ACCOUNT},
    "read-only-role-for-other-account": {"CreateReadOnlyRole": "true", "MonitorAccountId": OTHER_ACCOUNT},
}

REPORT = "crrmon-built-handler-report "
RUNNER = """
import importlib.util, json, sys
function_dir, layer_dir, boto_dir, remaining_ms, marker = sys.argv[1:6]
sys.path[:0] = [function_dir, layer_dir]
sys.path.append(boto_dir)  # where the Lambda runtime keeps its boto3: after the layers
event = json.load(sys.stdin)
spec = importlib.util.spec_from_file_location("app", function_dir + "/app.py")
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)

class Context:
    function_name = "fn"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:fn"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self):
        return int(remaining_ms)

result = app.lambda_handler(event, Context())
import boto3, botocore, crrmon, aws_lambda_powertools
files = {m.__name__: m.__file__ for m in (boto3, botocore, crrmon, aws_lambda_powertools)}
print(marker + json.dumps({"result": result, "files": files, "xray_imported": "aws_xray_sdk" in sys.modules}))
"""


# ---------------------------------------------------------------- the template, per value


def parameters(case: dict[str, str], kms_key_arn: str = "") -> dict[str, str]:
    return {**BASE, **{k: (kms_key_arn if v == KMS_KEY else v) for k, v in case.items()}}


def with_defaults(path: Path, values: dict[str, str], out: Path) -> Path:
    """The template with `values` as its parameters' defaults: what cfn-lint checks values against."""
    template = load_template(path)
    for name, value in values.items():
        template["Parameters"][name]["Default"] = value
    out.write_text(json.dumps(template))
    return out


def lint_errors(path: Path) -> list[str]:
    return [str(m) for m in lint_file(path) if m.rule.id.startswith("E")]


def test_one_build_serves_every_parameter_value():
    """Code, handler, runtime and layers of every function are fixed strings: no parameter or
    condition chooses them, so the one `sam build` output the matrix runs is the code of every value."""
    template = load_template(TEMPLATE)
    fixed = {"CodeUri", "Handler", "Runtime", "Architectures", "Layers", "ContentUri", "CompatibleRuntimes"}

    def chosen_by_template(value: Any) -> bool:
        text = json.dumps(value)
        return any(fn in text for fn in ('"Fn::If"', '"Fn::Sub"', '"Fn::Join"', '"Fn::Select"'))

    globals_ = template["Globals"]["Function"]
    assert globals_["Layers"] == [{"Ref": "CommonLayer"}]
    assert not any(chosen_by_template(globals_.get(k)) for k in fixed)
    code = [r for r in template["Resources"].values() if r["Type"].startswith("AWS::Serverless::")]
    code = [r for r in code if r["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion")]
    assert len(code) == 5
    for resource in code:
        props = resource["Properties"]
        for name in fixed & set(props):
            assert isinstance(props[name], (str, list)) and not chosen_by_template(props[name]), name
        assert "Metadata" not in resource or not chosen_by_template(resource["Metadata"])


class Placeholders(Resolver):
    """Resolves a whole template under given parameters: a resource that exists under them stands for
    itself (a placeholder name or ARN); one its condition leaves out must never be named."""

    def _ref(self, name: str) -> Any:
        if name in self.template["Resources"]:
            assert self.active(name), f"Ref {name}: no such resource with these parameter values"
            return f"ref:{name}"
        return super()._ref(name)

    def _get_att(self, name: str, attribute: str) -> str:
        assert self.active(name), f"Fn::GetAtt {name}.{attribute}: no such resource with these parameter values"
        return f"arn:aws:placeholder:{REGION}:{ACCOUNT}:{name}/{attribute}/of/{name}"  # ARN-shaped: split, selected


def resolve_everything(translated: dict, values: dict[str, str]) -> dict[str, Any]:
    """Every property and output of every resource that exists under `values`, resolved."""
    resolver = Placeholders(translated, values, stack_name="crr-monitor", region=REGION, account=ACCOUNT)
    resolved = {
        name: resolver.resolve(resource.get("Properties", {}))
        for name, resource in translated["Resources"].items()
        if resolver.active(name)
    }
    for name, output in translated.get("Outputs", {}).items():
        if "Condition" not in output or resolver.condition(output["Condition"]):
            resolved[f"Outputs.{name}"] = resolver.resolve(output["Value"])
    return resolved


def test_every_value_has_a_case():
    declared = load_template(TEMPLATE)["Parameters"]
    for name, values in CHANGES_WHAT_RUNS.items():
        allowed = declared[name].get("AllowedValues")
        assert allowed is None or sorted(map(str, allowed)) == sorted(values), name
        assert str(declared[name].get("Default", "")) in values, name
        covered = {case.get(name, str(declared[name].get("Default", ""))) for case in CASES.values()}
        assert covered == set(values), name


@pytest.mark.parametrize("case", sorted(FORWARDER_CASES))
def test_forwarder_lints_and_translates_with_each_value(case, tmp_path):
    values = {**FORWARDER_BASE, **FORWARDER_CASES[case]}
    assert lint_errors(with_defaults(FORWARDER, values, tmp_path / "forwarder.json")) == []
    translated = translate(load_template(FORWARDER), values)
    resolved = resolve_everything(translated, values)
    assert ("MonitorReadOnlyRole" in resolved) == (values.get("CreateReadOnlyRole") == "true")
    assert ("Outputs.MonitorReadOnlyRoleArn" in resolved) == ("MonitorReadOnlyRole" in resolved)
    monitor = values.get("MonitorAccountId") or ACCOUNT
    if "MonitorReadOnlyRole" in resolved:
        trust = resolved["MonitorReadOnlyRole"]["AssumeRolePolicyDocument"]["Statement"]
        assert [s["Principal"] for s in trust] == [{"AWS": f"arn:aws:iam::{monitor}:root"}]
    statements = resolved["ReplicationFailureTopicPolicy"]["PolicyDocument"]["Statement"]
    subscribes = [s for s in statements if s.get("Action") == "sns:Subscribe"]
    expected = [{"AWS": f"arn:aws:iam::{monitor}:root"}] if values.get("MonitorAccountId") else []
    assert [s["Principal"] for s in subscribes] == expected
    assert resolved["MonitorQueueSubscription"]["Endpoint"] == values["MonitorEventsQueueArn"]


# ---------------------------------------------------------------- the emulator


@pytest.fixture(scope="module")
def served():
    """moto server on 127.0.0.1 with the watched buckets, the topology override and a KMS key."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    keep = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(
        {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    )
    try:
        emulator.install()
        session = boto3.Session(region_name=REGION)
        s3 = session.client("s3")
        for bucket in (SRC, DST, OVERRIDE_DST):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        rule = {
            "ID": "to-dst",
            "Priority": 1,
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "Destination": {"Bucket": f"arn:aws:s3:::{DST}"},
            "DeleteMarkerReplication": {"Status": "Enabled"},
        }
        s3.put_bucket_replication(
            Bucket=SRC, ReplicationConfiguration={"Role": f"arn:aws:iam::{ACCOUNT}:role/replication", "Rules": [rule]}
        )
        # The override names another destination than the bucket's own rules: a version it watches
        # goes to OVERRIDE_DST only when the functions read the override.
        override = {**rule, "ID": "override", "Destination": {"Bucket": f"arn:aws:s3:::{OVERRIDE_DST}"}}
        session.client("ssm").put_parameter(
            Name=TOPOLOGY_PARAMETER,
            Type="String",
            Value=json.dumps(
                {"sources": {SRC: {"region": REGION, "rules": [override]}}, "regions": {OVERRIDE_DST: REGION}}
            ),
        )
        key_arn = session.client("kms").create_key(Description="brought by the operator")["KeyMetadata"]["Arn"]
        yield session, endpoint, key_arn
    finally:
        server.stop()
        for name, value in keep.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def xray_daemon():
    """A UDP socket on 127.0.0.1 standing in for the X-Ray daemon Lambda runs beside the function."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[dict]:
    """The trace documents sent so far: each datagram is a JSON header line, then the document."""
    documents = []
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return documents
        header, _, body = data.decode().partition("\n")
        assert json.loads(header) == {"format": "json", "version": 1}
        documents.append(json.loads(body))


def names(document: dict) -> set[str]:
    found = {document.get("name", "")}
    for child in document.get("subsegments", []):
        found |= names(child)
    return found


# ---------------------------------------------------------------- built functions


@dataclass
class Invocation:
    function: str
    report: dict
    trace_id: str
    traces: list[dict]
    output: str  # what the function printed: its log lines and EMF metrics


@dataclass
class BuiltFunctions:
    """Runs each function of the translated template from the build output, one fresh interpreter per
    invocation, as Lambda would run it."""

    translated: dict
    resolver: Resolver
    stack: Stack
    endpoint: str
    daemon: socket.socket
    runtime_sdk_dir: str
    invocations: list[Invocation] = field(default_factory=list)

    def lambda_function(self, logical_id: str) -> dict:
        return self.translated["Resources"][logical_id]["Properties"]

    def environment(self, logical_id: str) -> dict[str, str]:
        variables = self.lambda_function(logical_id)["Environment"]["Variables"]
        return {name: str(value) for name, value in self.resolver.resolve(variables).items()}

    def handler_for(self, logical_id: str, folder: str):
        props = self.lambda_function(logical_id)
        assert props["Handler"] == "app.lambda_handler"
        active = self.resolver.resolve(props["TracingConfig"])["Mode"] == "Active"
        function_dir = BUILD / logical_id
        layer_dir = BUILD / "CommonLayer" / "python"
        assert (function_dir / "app.py").exists(), f"no build of {logical_id}: run `make build` first"
        boto_dir = self.runtime_sdk_dir
        host, port = self.daemon.getsockname()

        def handler(event: dict, context: Any) -> Any:
            try:
                return run(event)
            except Exception as error:  # the emulated event source mapping would retry it for ever
                pytest.fail(f"running {logical_id} failed: {error!r}")

        def run(event: dict) -> Any:
            trace_id = f"1-{int(datetime.now(UTC).timestamp()):08x}-{uuid.uuid4().hex[:24]}"
            env = {
                "PATH": os.environ.get("PATH", ""),
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ENDPOINT_URL": self.endpoint,
                # What Lambda sets for every function; the trace header samples only with active tracing.
                "AWS_LAMBDA_FUNCTION_NAME": f"{self.stack.stack_name}-{logical_id}",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.resolver.resolve(props.get("MemorySize", 128))),
                "LAMBDA_TASK_ROOT": str(function_dir),
                "AWS_XRAY_DAEMON_ADDRESS": f"{host}:{port}",
                "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
                "_X_AMZN_TRACE_ID": f"Root={trace_id};Parent={uuid.uuid4().hex[:16]};Sampled={int(active)}",
                **self.environment(logical_id),
            }
            done = subprocess.run(
                [
                    runtime_python(),
                    "-I",  # no environment variables, user site or current folder on the path
                    "-S",  # nor the interpreter's own site-packages
                    "-c",
                    RUNNER,
                    str(function_dir),
                    str(layer_dir),
                    boto_dir,
                    str(int(props.get("Timeout", 3)) * 1000),
                    REPORT,
                ],
                input=json.dumps(event, default=lambda_json),
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )
            if done.returncode != 0:
                pytest.fail(f"{logical_id} ({self.stack.stack_name}) failed:\n{done.stderr[-3000:]}")
            reports = [line for line in done.stdout.splitlines() if line.startswith(REPORT)]
            report = json.loads(reports[-1][len(REPORT) :])
            self.invocations.append(Invocation(logical_id, report, trace_id, received(self.daemon), done.stdout))
            return report["result"]

        return handler


def lambda_json(value: Any) -> Any:
    """What Lambda writes where boto3 parses a value (a stream record's ApproximateCreationDateTime)."""
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"{type(value).__name__} in an event")


def backdate(bucket: str, key: str, version_id: str, hours: float) -> None:
    emulator.object_version(bucket, key, version_id).last_modified = datetime.now(UTC).replace(tzinfo=None) - timedelta(
        hours=hours
    )


def archive_lines(s3, bucket: str) -> list[dict]:
    lines = []
    for entry in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        lines.extend(read_archive(s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()))
    return lines


# ---------------------------------------------------------------- the matrix


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_each_parameter_value_runs_from_the_built_artifact(name, served, xray_daemon, runtime_sdk_dir, tmp_path):
    session, endpoint, kms_key_arn = served
    case = CASES[name]
    values = parameters(case, kms_key_arn)

    # Lints and translates with this value.
    assert lint_errors(with_defaults(TEMPLATE, values, tmp_path / "template.json")) == []
    translated = translate(load_template(TEMPLATE), values)
    resolve_everything(translated, values)  # every intrinsic resolves; nothing names a resource left out
    resolver = Resolver(translated, values, stack_name=f"mx-{name}", region=REGION, account=ACCOUNT)
    functions = {
        n for n, r in translated["Resources"].items() if r["Type"] == "AWS::Lambda::Function" and resolver.active(n)
    }
    expected = {"IngestFunction", "MatcherFunction", "SweeperFunction"}
    assert functions == expected | ({"ReconcileFunction"} if "ReconcileSchedule" in case else set())
    layers = {json.dumps(translated["Resources"][f]["Properties"]["Layers"]) for f in functions}
    assert len(layers) == 1  # one layer for every function: the build's CommonLayer
    tracing = case.get("EnableTracing") == "true"
    modes = {resolver.resolve(translated["Resources"][f]["Properties"]["TracingConfig"])["Mode"] for f in functions}
    assert modes == {"Active" if tracing else "PassThrough"}

    # The data plane, and every function wired to its event sources, running from the build.
    stack_name = f"mx-{name}"
    stack = provision(TEMPLATE, session=session, stack_name=stack_name, parameters=values, region=REGION)
    assert set(stack.functions) == functions
    table = session.client("dynamodb").describe_table(TableName=stack.table_name)["Table"]
    provisioned = case.get("TableCapacity") == "provisioned"
    assert table["BillingModeSummary"]["BillingMode"] == ("PROVISIONED" if provisioned else "PAY_PER_REQUEST")
    for logical_id, physical in stack.physical_ids.items():
        resolver.created(logical_id, physical)
    built = BuiltFunctions(translated, resolver, stack, endpoint, xray_daemon, runtime_sdk_dir)
    mappings = build_mappings(
        load_template(TEMPLATE),
        sqs=session.client("sqs"),
        streams=session.client("dynamodbstreams"),
        queue_urls={"EventsQueue": stack.events_queue_url, "TimerQueue": stack.timer_queue_url},
        stream_arn=stack.stream_arn,
        failure_queue_url=stack.stream_failure_queue_url,
        region=REGION,
        functions=stack.functions,
        handler_for=built.handler_for,
    )
    s3, sqs = session.client("s3"), session.client("sqs")
    store = Store(session.client("dynamodb"), stack.table_name)
    account = OTHER_ACCOUNT if "AllowedAccounts" in case else ACCOUNT
    destination = OVERRIDE_DST if "TopologyParameterName" in case else DST

    def event(bucket: str, key: str, obj: dict) -> str:
        return emulator.eventbridge_object_event(
            bucket=bucket, key=key, version_id=obj["VersionId"], size=obj["size"], etag=obj["etag"],
            time_s=datetime.now(UTC).timestamp(), region=REGION, account=account,
        )  # fmt: skip

    def put(key: str) -> dict:
        answer = s3.put_object(Bucket=SRC, Key=key, Body=f"data of {key}".encode(), ChecksumAlgorithm="SHA256")
        return {**answer, "size": len(f"data of {key}"), "etag": answer["ETag"].strip('"')}

    # A version and its replica; a version whose event never came, written long enough ago for
    # reconciliation to look at it. The schedules run first (reconciliation queues the missed
    # version's event), then every event goes through in as few invocations as the mappings make.
    key, missed_key = f"{name}/object.bin", f"{name}/missed.bin"
    obj = put(key)
    emulator.replicate(s3, SRC, key, obj["VersionId"], destination, checksum_algorithm="SHA256")
    emulator.set_replication_status(SRC, key, obj["VersionId"], "COMPLETED")
    missed = put(missed_key)
    backdate(SRC, missed_key, missed["VersionId"], hours=1)
    if "InventoryReports" in case:  # last night's reports of both buckets: the version, and its replica
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        yesterday = (midnight - timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        s3.create_bucket(Bucket=INVENTORIES)
        for bucket, status in ((SRC, "COMPLETED"), (destination, "REPLICA")):
            version = row(
                bucket, key, obj["VersionId"], size=obj["size"], etag=obj["etag"], modified=yesterday, status=status
            )
            put_report(
                s3, INVENTORIES, bucket, [[version]], base="{bucket}/crrmon",
                folder=midnight.strftime("%Y-%m-%dT%H-%MZ"), created_ms=int(midnight.timestamp() * 1000),
            )  # fmt: skip
    canaries_before = len(s3.list_object_versions(Bucket=SRC, Prefix="crr-monitor-canary/").get("Versions", []))
    mappings.run_schedules()
    bodies = [event(SRC, key, obj), event(destination, key, obj)]
    if "AllowedAccounts" in case:
        bodies.append(
            emulator.eventbridge_object_event(
                bucket=SRC, key=f"{name}/stranger.bin", version_id="v-stranger", size=1, etag="e",
                time_s=datetime.now(UTC).timestamp(), region=REGION, account=STRANGER,
            )
        )  # fmt: skip
    for body in bodies:
        sqs.send_message(QueueUrl=stack.events_queue_url, MessageBody=body)
    mappings.pump()

    # ---- what each value switched on, or off
    ran = {i.function for i in built.invocations}
    assert ran == functions, f"functions that never ran: {functions - ran}"
    layer_dir = str(BUILD / "CommonLayer" / "python")
    for invocation in built.invocations:
        files = invocation.report["files"]
        assert files["crrmon"].startswith(layer_dir) and files["aws_lambda_powertools"].startswith(layer_dir)
        assert invocation.report["xray_imported"] == tracing
        documents = [d for d in invocation.traces if d.get("trace_id") == invocation.trace_id]
        if tracing:
            assert "## handler" in set().union(*map(names, documents)), invocation.function
        else:
            assert invocation.traces == []
    if tracing:  # the AWS SDK's calls are traced too

        def traced(function: str) -> set[str]:
            return set().union(*(names(d) for i in built.invocations if i.function == function for d in i.traces))

        assert "dynamodb" in traced("IngestFunction")
        assert "s3" in traced("SweeperFunction")  # the HEADs of a checksum verification
        assert "sqs" in traced("ReconcileFunction")  # the missed version's event, sent to the queue

    item = store.get(make_pk(obj["VersionId"], key), destination)
    assert item is not None and item["status"] == "COMPLETED", item
    assert item["verified_by"] == {"size": "size", "checksum": "checksum"}.get(case.get("VerifyMode"), "etag")
    assert store.get(make_pk(obj["VersionId"], key), OVERRIDE_DST if destination == DST else DST) is None

    if case.get("ArchiveEnabled") == "false":
        assert stack.archive_bucket == "" and built.environment("MatcherFunction")["DELIVERY_STREAM_NAME"] == ""
    else:
        archived = archive_lines(s3, stack.archive_bucket)
        lines = [line for line in archived if line.get("key") == key]
        assert [(line["status"], line["destination_bucket"]) for line in lines] == [("COMPLETED", destination)]
        rpo_class = (
            ("matrix", 3600)
            if "RpoClasses" in case
            else ("default", int(built.environment("MatcherFunction")["RPO_SECONDS"]))
        )
        assert (lines[0]["rpo_class"], lines[0]["rpo_seconds"]) == rpo_class
        lock = s3.get_object_lock_configuration if case.get("ArchiveObjectLock") == "true" else None
        if lock:
            assert lock(Bucket=stack.archive_bucket)["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"

    # With inventory reports the source is proven from them, not listed: the version missed today waits
    # for tomorrow's proof, and yesterday's version is accounted for in a daily-proof line.
    reconciled = store.get(make_pk(missed["VersionId"], missed_key), destination)
    assert (reconciled is not None) == ("ReconcileSchedule" in case and "InventoryReports" not in case)
    if "InventoryReports" in case:
        proofs = [line for line in archived if line.get("kind") == "daily-proof"]
        assert [(p["source_bucket"], p["destination_bucket"], p["checked"], p["present"]) for p in proofs] == [
            (SRC, destination, 1, 1)
        ]
    # The SLO's stack-wide alarms exist with it only; the built sweeper's schedule reads the burn rates
    # from CloudWatch and writes them per pair and window.
    slo = "SloObjective" in case
    alarms = ("SloFastBurnAlarm", "SloMediumBurnAlarm", "SloSlowBurnAlarm")
    assert [resolver.active(a) for a in alarms] == [slo] * 3
    swept = "".join(i.output for i in built.invocations if i.function == "SweeperFunction")
    assert ('"SloBurnRate"' in swept) == slo and "SloAlertErrors" not in swept

    canaries = len(s3.list_object_versions(Bucket=SRC, Prefix="crr-monitor-canary/").get("Versions", []))
    assert canaries - canaries_before == (1 if "CanaryIntervalMinutes" in case else 0)

    rejected = sqs.receive_message(QueueUrl=stack.events_dlq_url, MaxNumberOfMessages=10).get("Messages", [])
    assert len(rejected) == (1 if "AllowedAccounts" in case else 0)

    if "KmsKeyArn" in case:
        queue = sqs.get_queue_attributes(QueueUrl=stack.events_queue_url, AttributeNames=["KmsMasterKeyId"])
        assert queue["Attributes"]["KmsMasterKeyId"] == kms_key_arn == stack.key_arn
    if "TopologyParameterName" in case:
        assert built.environment("IngestFunction")["TOPOLOGY_PARAMETER_NAME"] == TOPOLOGY_PARAMETER
