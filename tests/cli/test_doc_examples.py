"""Every `crrmon` example in README.md and docs/operating.md runs as written against the demo's stack.

How examples are found: inside fenced code blocks, a line `$ crrmon COMMAND ARGS` is an example; the
lines after it, up to the next `$ ` line or its `# exit N` line, are what it printed, and `# exit N` its
exit status. A line `crrmon COMMAND ARGS` without `$` (a command shown without output) is an example
too; a line `crrmon COMMAND: ...` is a message, not a command. Lines ending in `\\` continue on the
next line.

How they run: against a stack provisioned like `make demo`'s (its buckets, regions and rules, imported
from `crrmon_local.demo`, and the template parameters it passes), holding the objects of `scenario()`
below: the run the docs' outputs were pasted from. The stack file is written where the demo writes it,
`demo-output/stack.json`, relative to the working directory, so `--local demo-output/stack.json` is taken
as written. The examples of a file run in their order, and the monitor handles what each one sent
(`--feed`, `redrive`) before the next, as the demo's running monitor would.

What is checked: the exit status; a table's header line (the columns, in order); a JSON document's keys
and its items' keys; an error line on stderr, word for word. Rows, times and version IDs differ from run
to run and are not compared.

Commands that need a deployed AWS stack or an identity the demo does not have (Athena, S3 Batch
Operations, a refused permission) are marked in the docs with an HTML comment on the line before their
code block: `<!-- crrmon-example: parse-only -->`. For those, only the arguments are parsed (as the
command would parse them) and the command is not run.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from crrmon import runtime
from crrmon_cli.main import COMMANDS, build_parser, main
from crrmon_local import demo, emulator
from crrmon_local.provision import provision
from tests.integration import conftest as harness
from tests.integration.conftest import ACCOUNT, TEMPLATE, World

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["README.md", "docs/operating.md"]
PARSE_ONLY = "<!-- crrmon-example: parse-only -->"
SRC, DST, DST2 = demo.SRC, demo.DST, demo.DST2
BIDI_A, BIDI_B, TAGGED = demo.BIDI_A, demo.BIDI_B, demo.TAGGED

aws, clock = harness.aws, harness.clock


@dataclass
class Example:
    doc: str
    line: int
    argv: list[str]
    output: list[str] = field(default_factory=list)
    exit: int | None = None
    parse_only: bool = False

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: crrmon {shlex.join(self.argv)}"


def examples(doc: str) -> list[Example]:
    found: list[Example] = []
    lines = (ROOT / doc).read_text().splitlines()
    in_block, parse_only, current = False, False, None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            in_block = not in_block
            parse_only = in_block and i > 0 and lines[i - 1].strip() == PARSE_ONLY
            current = None
        elif in_block:
            text = line.strip()
            command = text[2:] if text.startswith("$ ") else text
            words = command.split()
            is_command = len(words) > 1 and words[0] == "crrmon" and words[1] in COMMANDS
            if is_command and (text.startswith("$ ") or current is None):
                start = i
                while command.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    command = command[:-1] + " " + lines[i].strip()
                current = Example(doc, start + 1, shlex.split(command)[1:], parse_only=parse_only)
                found.append(current)
            elif text.startswith("$ "):
                current = None  # another program's example (cat, make, aws)
            elif current is not None and (match := re.fullmatch(r"# exit (\d+)", text)):
                current.exit = int(match.group(1))
                current = None
            elif current is not None:
                current.output.append(line)
        i += 1
    return found


# ---------------------------------------------------------------- the demo's stack, with the docs' objects


class DemoWorld(World):
    """The integration harness's World over the demo's buckets (their regions are the demo's)."""

    def created_event(self, bucket: str, key: str, obj: dict, **extra) -> str:
        return emulator.eventbridge_object_event(
            bucket=bucket,
            key=key,
            version_id=obj["version_id"],
            size=obj["size"],
            etag=obj["etag"],
            time_s=self.clock(),
            region=demo.REGIONS[bucket],
            account=ACCOUNT,
            **extra,
        )

    def failure(self, src: str, key: str, obj: dict, dest: str, reason: str) -> str:
        rule = next(r["ID"] for r in demo.RULES[src] if r["Destination"]["Bucket"].endswith(f":{dest}"))
        record = emulator.replication_failure(
            bucket=src,
            key=key,
            version_id=obj["version_id"],
            destination_bucket=dest,
            reason=reason,
            rule_id=rule,
            time_s=self.clock(),
            region=demo.REGIONS[src],
        )
        return emulator.in_sns([record], topic_arn=f"arn:aws:sns:{demo.REGIONS[src]}:{ACCOUNT}:s3-failures")

    def destinations(self, src: str) -> list[str]:
        return [r["Destination"]["Bucket"].rsplit(":", 1)[-1] for r in demo.RULES[src]]

    def replicated(self, src: str, key: str, *, after_s: float = 0, failed: dict[str, str] | None = None, **put):
        """A version written to `src` and replicated to its rules' destinations `after_s` later, every event
        delivered; `failed` maps destinations to the reason S3 reports instead."""
        failed = failed or {}
        obj = self.put(src, key, **put)
        self.send(self.created_event(src, key, obj))
        self.run()
        self.clock.advance(after_s)
        for dest in self.destinations(src):
            if dest in failed:
                self.send(self.failure(src, key, obj, dest, failed[dest]))
            else:
                self.replicate(src, key, obj, dest, status=None)
                self.send(self.created_event(dest, key, obj))
        emulator.set_replication_status(src, key, obj["version_id"], "FAILED" if failed else "COMPLETED")
        self.run()
        return obj


@pytest.fixture
def demo_world(aws, clock, monkeypatch, tmp_path) -> DemoWorld:
    """The demo's buckets and rules, and the monitor provisioned from template.yaml with the parameters
    `make demo` passes (at its default flags); its stack file where the demo writes it."""
    emulator.install()
    for bucket, region in demo.REGIONS.items():
        s3 = aws.client("s3", region_name=region)
        extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **extra)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for bucket, rules in demo.RULES.items():
        aws.client("s3", region_name=demo.REGION).put_bucket_replication(
            Bucket=bucket,
            ReplicationConfiguration={"Role": f"arn:aws:iam::{ACCOUNT}:role/replication", "Rules": rules},
        )
    defaults = demo.parser().parse_args([])
    destinations = sorted({r["Destination"]["Bucket"].rsplit(":", 1)[-1] for rs in demo.RULES.values() for r in rs})
    stack = provision(
        TEMPLATE,
        session=aws,
        stack_name=demo.STACK,
        parameters={  # as crrmon_local.demo.Demo.provision passes them
            "SourceBuckets": ",".join(demo.RULES),
            "DestinationBuckets": ",".join(destinations),
            "RpoSeconds": str(defaults.rpo),
            "GiveUpSeconds": str(defaults.give_up),
            "ArchiveEnabled": "true",
            "HeadRequestsPerSecond": "1000",
            "RecordRetentionHours": "1",
        },
        region=demo.REGION,
    )
    for name, value in stack.environment.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    fields = {k: v for k, v in stack.__dict__.items() if k != "environment"}
    path = tmp_path / defaults.stack_file
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"endpoint_url": None, "environment": stack.environment, "stack": fields}))
    monkeypatch.chdir(tmp_path)
    world = DemoWorld(aws, stack, clock)
    yield world
    runtime.reset()


def scenario(world: DemoWorld) -> None:
    """The objects the docs' examples show: replicated, failed, late, replicated without the monitor's
    knowledge, and dead letters."""
    world.replicated(SRC, "reports/2026/q3.csv", after_s=4)
    world.replicated(SRC, "exports/big.parquet", after_s=2, failed={DST: "DstPutObjectNotPermitted"})
    for src, number, reason, put in (
        (BIDI_A, 187, "DstKmsKeyNotFound", {}),
        (BIDI_B, 127, "DstKmsKeyNotFound", {}),
        (SRC, 186, "DstPutObjectNotPermitted", {}),
        (TAGGED, 177, "DstBucketNotFound", {"Tagging": "replicate=yes"}),
        (SRC, 190, "SrcGetObjectNotPermitted", {}),
    ):
        dest = world.destinations(src)[-1]
        body = b"x" * (number + 64)
        world.replicated(src, f"data/001/object-{number:05d}.bin", after_s=1, failed={dest: reason}, body=body, **put)
    # replicated, but the monitor never heard of it; one replica differs
    for key, replicas in (
        ("images/cat.png", {DST: b"c" * 396, DST2: None}),
        ("images/dog.png", {DST: None, DST2: None}),
    ):
        obj = world.put(SRC, key, body=b"p" * 400)
        for dest, body in replicas.items():
            world.replicate(SRC, key, obj, dest, status=None, body=body)
        emulator.set_replication_status(SRC, key, obj["version_id"], "COMPLETED")
    # events that ended in the events dead-letter queue; one ingest could not understand
    for i in (1, 2):
        obj = world.put(SRC, f"incoming/retried-{i}.json")
        world.sqs.send_message(
            QueueUrl=world.stack.events_dlq_url, MessageBody=world.created_event(SRC, f"incoming/retried-{i}.json", obj)
        )
    world.sqs.send_message(
        QueueUrl=world.stack.events_dlq_url,
        MessageBody=json.dumps({"detail-type": "Something Else", "detail": {}}),
        MessageAttributes={"RejectedReason": {"DataType": "String", "StringValue": "unknown_shape"}},
    )
    # late: written, never replicated (S3 says PENDING), past the RPO but not yet given up
    world.advance(5)
    for key in ("incoming/batch-0117.json", "incoming/batch-0118.json"):
        obj = world.put(SRC, key, body=b"b" * 512)
        emulator.set_replication_status(SRC, key, obj["version_id"], "PENDING")
        world.send(world.created_event(SRC, key, obj))
        world.advance(10)
    world.advance(demo.parser().parse_args([]).rpo + 20)


# ---------------------------------------------------------------- the checks


def _table_header(lines: list[str]) -> list[str] | None:
    first = next((line for line in lines if line.strip()), "")
    words = first.split()
    return words if words and all(re.fullmatch(r"[A-Z_#0-9]+", w) for w in words) else None


def check(example: Example, code: int, out: str, err: str) -> None:
    where = f"{example}\n--- stdout\n{out}--- stderr\n{err}"
    assert example.exit is not None, f"{example}: no '# exit N' line after its output"
    assert code == example.exit, where
    shown = [line for line in example.output if line.strip()]
    if not shown:
        return
    if shown[0].startswith(f"crrmon {example.argv[0]}:"):
        assert err.splitlines()[0] == shown[0], where
        return
    assert "Traceback" not in err, where
    if shown[0].strip() == "{":
        expected = json.loads("\n".join(example.output))
        actual = json.loads(out)
        assert set(actual) == set(expected), where
        if expected.get("items") and actual.get("items"):
            assert set(actual["items"][0]) == set(expected["items"][0]), where
        return
    header = _table_header(shown)
    assert header is not None, f"{example}: neither a table, JSON nor an error line"
    assert _table_header(out.splitlines()) == header, where


@pytest.mark.parametrize("doc", DOCS)
def test_examples_are_found(doc):
    found = examples(doc)
    assert len(found) >= 8
    assert all(e.exit is not None or e.parse_only for e in found), [str(e) for e in found if e.exit is None]


def test_examples_use_the_names_the_demo_creates():
    """The README once showed `src-use1` and `dst-usw2`, which the demo does not create."""
    watched = set(demo.REGIONS)
    for doc in DOCS:
        for example in examples(doc):
            if example.exit == 2:
                continue  # an example of a wrong name, on purpose
            for word in example.argv:
                for bucket in re.findall(r"s3://([^/\s]+)", word) + [
                    b for pair in re.findall(r"^([^>\s]+)>([^>\s]+)$", word) for b in pair
                ]:
                    assert bucket in watched or example.parse_only, f"{example}: {bucket} is not a demo bucket"
            if "--local" in example.argv:
                assert example.argv[example.argv.index("--local") + 1] == demo.parser().parse_args([]).stack_file


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS)
def test_examples_run_as_written_against_the_demos_stack(doc, demo_world, capsys):
    scenario(demo_world)
    parser = build_parser()
    for example in examples(doc):
        if example.parse_only:
            parser.parse_args(example.argv)  # exits (SystemExit 2) on arguments the command does not take
            continue
        capsys.readouterr()
        code = main(example.argv, session=demo_world.session, now=demo_world.clock)
        captured = capsys.readouterr()
        check(example, code, captured.out, captured.err)
        demo_world.run()  # the demo's monitor handles what the command sent (--feed, redrive)
