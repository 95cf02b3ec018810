"""Entry point of the `crrmon` command: the operator's questions and fixes, one subcommand each.

Exit codes: 0 all well, 1 findings (overdue, failed, differences, set-up problems), 2 usage errors,
missing stacks, names the monitor does not watch, missing permissions, and AWS or connection failures
(one line each, naming the endpoint, the call and the fix; --debug adds the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from importlib import metadata

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from crrmon_cli.aws import Aws, explain
from crrmon_cli.context import Context
from crrmon_cli.errors import PermissionDenied, UsageError
from crrmon_cli.output import Printer
from crrmon_cli.target import from_local_file, resolve

EPILOG = (
    "Exit codes: 0 all well, 1 findings or differences, 2 usage errors, unknown stacks or names, permission, "
    "AWS or connection errors."
)
# Flags that name the monitor (or its resources): without one, a command would talk to nothing.
NAMING = (
    "stack",
    "local",
    "table",
    "events_queue",
    "events_dlq",
    "timer_queue",
    "timer_dlq",
    "archive_bucket",
    "athena_database",
    "athena_table",
    "source_buckets",
)
NO_MONITOR = (
    "no monitor named: give --stack NAME (a deployed stack; --region if not the profile's) or "
    "--local demo-output/stack.json (the local demo, while `make demo ARGS=--serve` runs)"
)

# command -> (module, function)
COMMANDS = {
    "doctor": ("crrmon_cli.doctor", "doctor"),
    "status": ("crrmon_cli.records", "status"),
    "overdue": ("crrmon_cli.records", "overdue"),
    "failed": ("crrmon_cli.archive", "failed"),
    "stats": ("crrmon_cli.archive", "stats"),
    "report": ("crrmon_cli.report", "report"),
    "reconcile": ("crrmon_cli.reconcile", "reconcile"),
    "retry": ("crrmon_cli.retry", "retry"),
    "redrive": ("crrmon_cli.redrive", "redrive"),
}


def _common(*, output: bool = True) -> argparse.ArgumentParser:
    """Options every command takes: where the monitor is, and how to print (`--output table|json`
    unless the command writes a document of its own: `report`)."""
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("monitor stack")
    where.add_argument("--stack", metavar="NAME", help="CloudFormation stack of the monitor (outputs and resources)")
    where.add_argument("--local", metavar="FILE", help="the local demo's stack file (demo-output/stack.json)")
    where.add_argument("--region", help="AWS region of the monitor stack (default: the profile's)")
    where.add_argument("--profile", help="AWS profile to use")
    where.add_argument("--endpoint-url", metavar="URL", help="AWS endpoint (a local emulator)")
    where.add_argument("--table", help="state table name (instead of, or over, --stack)")
    where.add_argument("--overdue-index", metavar="NAME", help="name of the sparse Overdue index (default Overdue)")
    where.add_argument("--events-queue", metavar="URL", help="EventsQueue URL")
    where.add_argument("--events-dlq", metavar="URL", help="EventsDeadLetterQueue URL")
    where.add_argument("--timer-queue", metavar="URL", help="TimerQueue URL")
    where.add_argument("--timer-dlq", metavar="URL", help="TimerDeadLetterQueue URL")
    where.add_argument("--archive-bucket", metavar="NAME", help="archive bucket name")
    where.add_argument("--athena-database", metavar="NAME", help="Glue/Athena database of the archive")
    where.add_argument("--athena-table", metavar="NAME", help="Glue/Athena table of the archive")
    where.add_argument("--source-buckets", metavar="A,B", help="watched source buckets (the SourceBuckets parameter)")
    where.add_argument("--rpo", type=int, metavar="SECONDS", help="RPO the monitor uses (the RpoSeconds parameter)")
    show = common.add_argument_group("output")
    if output:
        show.add_argument("--output", "-o", choices=("table", "json"), default="table", help="table (default) or json")
    show.add_argument("--debug", action="store_true", help="on an AWS or connection error, print the traceback too")
    return common


def version() -> str:
    """The installed package's version (pyproject.toml's), as pip recorded it."""
    try:
        return metadata.version("crr-monitor")
    except metadata.PackageNotFoundError:
        return "unknown (not installed: pip install .)"


def _paging(parser: argparse.ArgumentParser, default_limit: int = 50) -> None:
    parser.add_argument("--limit", type=int, default=default_limit, help=f"items per page (default {default_limit})")
    parser.add_argument("--next-token", metavar="TOKEN", help="continue where the previous page stopped")


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pair", metavar="SRC>DST", help="one source>destination pair (quote it)")
    parser.add_argument("--prefix", help="object keys starting with this")
    parser.add_argument("--older-than", metavar="AGE", help="only entries older than this (90s, 15m, 2h, 3d)")


def build_parser() -> argparse.ArgumentParser:
    common, document = _common(), _common(output=False)
    parser = argparse.ArgumentParser(
        prog="crrmon",
        description="Operate CRR Monitor: check the set-up, ask about objects, list what is late or failed, "
        "reconcile buckets, retry replication and re-drive dead letters.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"crrmon {version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_: str, description: str, parent=common) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[parent], help=help_, description=description, epilog=EPILOG)

    doctor = command(
        "doctor",
        "check that the set-up can work at all",
        "Preflight of the whole set-up: versioning, replication rules and metrics, EventBridge and replication "
        "notifications of every watched bucket, forwarders in other regions, KMS key policies, alarm "
        "subscriptions, dead letters. Every finding comes with its fix.",
    )
    doctor.add_argument("--bucket", action="append", help="check only this bucket (repeatable)")
    doctor.add_argument(
        "--verbose", "-v", action="store_true", help="every finding in full with its fix, not only the fixes"
    )

    status = command(
        "status",
        "tracked state of one object, per destination",
        "The monitor's record of one object version per destination: status, times, latency, reason. "
        "Without --version-id the latest version is HEADed.",
    )
    status.add_argument("url", metavar="s3://BUCKET/KEY", help="the object (in the source or a destination bucket)")
    status.add_argument("--version-id", help="the version (default: the latest)")

    overdue = command(
        "overdue",
        "objects past their deadline, per pair",
        "Objects whose replica is late, from the sparse Overdue index: a Query per shard of each pair, oldest first.",
    )
    _filters(overdue)
    _paging(overdue)
    overdue.add_argument("--summary", action="store_true", help="per pair: how many, and the oldest")

    failed = command(
        "failed",
        "objects whose replication failed",
        "FAILED verdicts, newest first: within the table's retention (RecordRetentionHours) from its sparse "
        "Failed index, a Query per shard of each pair; older ones from the archive (Athena over the Glue table, or the "
        "archive's JSON lines with --from archive and for the local demo).",
    )
    _filters(failed)
    _paging(failed)
    failed.add_argument(
        "--since", help="verdicts since (duration or ISO time; default: the table's retention, 24h unless changed)"
    )
    failed.add_argument(
        "--from",
        dest="source",
        choices=("table", "athena", "archive"),
        help="where to read (default: the table when --since fits in its retention, else athena when the stack "
        "has an Athena table, else the archive bucket)",
    )
    _athena_options(failed)

    stats = command(
        "stats",
        "verdict counts and latency percentiles per pair",
        "Counts per verdict and replication latency percentiles per pair, from the archive (Athena, or "
        "the archive's JSON lines for the local demo).",
    )
    stats.add_argument("--since", default="24h", help="verdicts since (duration or ISO time; default 24h)")
    stats.add_argument("--from", dest="source", choices=("athena", "archive"), help="where to read (see failed)")
    _athena_options(stats)

    report = command(
        "report",
        "replication evidence for a month: within RPO, within 15 minutes, latency, failures",
        "Per pair and RPO class, for the objects whose source version was written in the window: objects, the "
        "share within their RPO and within 15 minutes, latency percentiles per size band, failures by reason, the "
        "worst hours, and the comparison with S3 Replication Time Control's 99.99%% in 15 minutes. From the archive "
        "bucket, or from archive objects on disk (--archive-dir, no stack needed).",
        document,
    )
    report.add_argument("--month", metavar="YYYY-MM", help="a calendar month, UTC (2026-11)")
    report.add_argument("--since", help="start of the window (duration ago or ISO time)")
    report.add_argument("--until", help="end of the window, excluded (duration ago or ISO time; default now)")
    report.add_argument(
        "--from",
        dest="source",
        choices=("archive", "athena"),
        help="where to read: the stack's archive bucket (the default), or its lines through Athena",
    )
    report.add_argument(
        "--archive-dir",
        action="append",
        metavar="PATH",
        help="archive objects on disk: a directory (its *.json.gz and *.json, recursively) or a file (repeatable)",
    )
    report.add_argument("--format", choices=("markdown", "json", "html"), default="markdown", help="default markdown")
    report.add_argument("--output", "-o", dest="output_file", metavar="FILE", help="write to FILE (default stdout)")
    _athena_options(report)

    reconcile = command(
        "reconcile",
        "compare a source bucket with its destinations",
        "Lists the source's and each destination's object versions (or reads S3 Inventory reports) and reports "
        "what is missing, different or unknown to the monitor, like `rclone check`. --feed sends the versions "
        "the monitor never heard of to its EventsQueue as S3 EventBridge events.",
    )
    reconcile.add_argument("url", metavar="s3://SOURCE[/PREFIX]", help="the source bucket (and a key prefix)")
    reconcile.add_argument("--prefix", help="only keys starting with this")
    reconcile.add_argument("--destination", action="append", help="only this destination bucket (repeatable)")
    reconcile.add_argument("--since", help="only versions created since (duration or ISO time)")
    reconcile.add_argument("--latest-only", action="store_true", help="only current versions, not older ones")
    reconcile.add_argument("--size-only", action="store_true", help="compare sizes only, not ETags")
    reconcile.add_argument("--inventory", metavar="s3://.../manifest.json", help="the source's S3 Inventory manifest")
    reconcile.add_argument(
        "--destination-inventory",
        action="append",
        metavar="BUCKET=s3://.../manifest.json",
        help="a destination's S3 Inventory manifest (repeatable); other destinations are listed",
    )
    reconcile.add_argument("--feed", action="store_true", help="send untracked versions to the monitor's EventsQueue")
    reconcile.add_argument("--all", action="store_true", help="show matching versions too, not only differences")
    reconcile.add_argument("--page-size", type=int, default=1000, help=argparse.SUPPRESS)

    retry = command(
        "retry",
        "S3 Batch Replication for FAILED objects",
        "Writes an S3 Batch Operations manifest (CSV: bucket,key,version) of the FAILED objects, one per source "
        "bucket; with --submit creates the S3 Batch Replication job (S3ReplicateObject) for each.",
    )
    _filters(retry)
    retry.add_argument("--since", help="FAILED verdicts since (default: the table's retention, see failed)")
    retry.add_argument(
        "--from", dest="source", choices=("table", "athena", "archive"), help="where to read (see failed)"
    )
    _athena_options(retry)
    retry.add_argument(
        "--manifest",
        required=True,
        metavar="FILE|s3://BUCKET/KEY.csv",
        help="where to write the manifest (an s3:// location for --submit)",
    )
    retry.add_argument("--submit", action="store_true", help="create the S3 Batch Replication job(s)")
    retry.add_argument("--role-arn", help="IAM role S3 Batch Operations assumes (needed with --submit)")
    retry.add_argument("--report", metavar="s3://BUCKET/PREFIX", help="where the job writes its completion report")
    retry.add_argument("--priority", type=int, default=10, help="job priority (default 10)")

    redrive = command(
        "redrive",
        "move dead-lettered messages back to their queue",
        "EventsDeadLetterQueue -> EventsQueue and TimerDeadLetterQueue -> TimerQueue, with SQS "
        "StartMessageMoveTask (or receive/send/delete where it is missing, as on local emulators). "
        "StreamFailureQueue holds pointers to table stream batches, not messages to re-drive: --show-stream-failures "
        "lists them.",
    )
    redrive.add_argument("--queue", choices=("events", "timer", "all"), default="all", help="which DLQ (default all)")
    redrive.add_argument("--dry-run", action="store_true", help="count and show, move nothing")
    redrive.add_argument(
        "--include-rejected",
        action="store_true",
        help="also move events ingest parked as not understood (they will be parked again)",
    )
    redrive.add_argument(
        "--method",
        choices=("auto", "move-task", "copy"),
        default="auto",
        help="auto: StartMessageMoveTask on AWS, receive/send/delete with --local or --endpoint-url",
    )
    redrive.add_argument("--max", type=int, metavar="N", help="move at most N messages per queue (copy method)")
    redrive.add_argument(
        "--show-stream-failures", action="store_true", help="list the stream batches that failed every retry"
    )
    return parser


def _athena_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workgroup", help="Athena workgroup (default: the stack's AthenaWorkGroup output, or primary)"
    )
    parser.add_argument(
        "--athena-output", metavar="s3://BUCKET/PREFIX", help="query result location, when the workgroup sets none"
    )


def _session(args) -> boto3.Session:
    session = boto3.Session(profile_name=args.profile) if args.profile else boto3.Session()
    if (args.local or args.endpoint_url) and session.get_credentials() is None:
        # Local emulators accept any credentials, but requests must be signed.
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    return session


def main(
    argv: Sequence[str] | None = None,
    *,
    session: boto3.Session | None = None,
    now: Callable[[], float] | None = None,
) -> int:
    """Run one command. `session` and `now` let tests give an emulated AWS and a clock."""
    parser = build_parser()
    args = parser.parse_args(argv)
    printer = Printer(getattr(args, "output", "table"))
    aws = None
    try:
        if getattr(args, "archive_dir", None):
            # `report` over archive objects on disk: no stack, nothing to ask AWS
            module, function = COMMANDS[args.command]
            return getattr(importlib.import_module(module), function)(None, args, now=now or time.time)
        if args.local and args.stack:
            raise UsageError("give --stack or --local, not both")
        if not any(getattr(args, name, None) for name in NAMING):
            raise UsageError(NO_MONITOR)
        session = session or _session(args)
        region, endpoint = args.region, args.endpoint_url
        if args.local:
            local = from_local_file(args.local, args.region)
            region, endpoint = local.region, endpoint or local.endpoint_url
        region = region or session.region_name or os.environ.get("AWS_DEFAULT_REGION")
        if not region:
            raise UsageError("no region: give --region or set AWS_DEFAULT_REGION")
        aws = Aws(session, region=region, endpoint_url=endpoint, local=bool(args.local))
        target = resolve(args, aws)
        module, function = COMMANDS[args.command]
        run = getattr(importlib.import_module(module), function)
        return run(Context(aws=aws, target=target, printer=printer, now=now or time.time), args)
    except UsageError as error:
        print(f"crrmon {args.command}: {error}", file=sys.stderr)
        return 2
    except PermissionDenied as error:
        print(f"crrmon {args.command}: {error}", file=sys.stderr)
        return 2
    except NoRegionError:
        print(f"crrmon {args.command}: no region: give --region or set AWS_DEFAULT_REGION", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as error:
        # One line naming the endpoint, the call and the fix; the traceback only on request.
        if args.debug:
            traceback.print_exc()
        print(f"crrmon {args.command}: {explain(error, aws)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`crrmon failed | head`): stop quietly. Python flushes stdout once more
        # at exit, so point it at /dev/null first (the recipe of Python's signal module documentation).
        with contextlib.suppress(AttributeError, OSError, ValueError, io.UnsupportedOperation):  # not a file
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
