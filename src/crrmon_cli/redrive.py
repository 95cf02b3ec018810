"""`redrive`: dead-lettered messages back to the queue they came from.

EventsDeadLetterQueue -> EventsQueue, TimerDeadLetterQueue -> TimerQueue. On AWS, SQS moves them
itself (StartMessageMoveTask); where that API is missing (local emulators) the command receives,
sends and deletes in batches of 10. StreamFailureQueue is different: Lambda puts there a pointer to
a table stream batch that failed every retry (shard, sequence numbers), not the records. There is
nothing to re-drive; --show-stream-failures lists the batches, whose items are still in the table.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from crrmon_cli.context import Context
from crrmon_cli.output import Progress

# name -> (DLQ attribute, queue attribute, DLQ logical ID, queue logical ID)
PAIRS = {
    "events": ("events_dlq_url", "events_queue_url", "EventsDeadLetterQueue", "EventsQueue"),
    "timer": ("timer_dlq_url", "timer_queue_url", "TimerDeadLetterQueue", "TimerQueue"),
}
UNSUPPORTED = {"UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", "InvalidAction"}
REJECTED_ATTRIBUTE = "RejectedReason"  # ingest parks bodies it cannot understand with this attribute


def _attributes(sqs, url: str, *names: str) -> dict[str, str]:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names))["Attributes"]


def copy_messages(sqs, dlq_url: str, queue_url: str, *, include_rejected: bool, limit: int | None, total: int):
    """Receive, send, delete, 10 at a time. Returns (moved, skipped)."""
    moved = skipped = 0
    with Progress(f"re-driving {dlq_url.rsplit('/', 1)[-1]}", total) as progress:
        while limit is None or moved < limit:
            answer = sqs.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=10 if limit is None else max(1, min(10, limit - moved)),
                MessageAttributeNames=["All"],
                VisibilityTimeout=120,
                WaitTimeSeconds=0,
            )
            messages = answer.get("Messages", [])
            if not messages:
                break
            keep = []
            for m in messages:
                if not include_rejected and REJECTED_ATTRIBUTE in m.get("MessageAttributes", {}):
                    skipped += 1  # stays in the DLQ (visible again after the visibility timeout)
                else:
                    keep.append(m)
            if keep:
                entries = []
                for i, m in enumerate(keep):
                    entry: dict[str, Any] = {"Id": str(i), "MessageBody": m["Body"]}
                    if m.get("MessageAttributes"):
                        entry["MessageAttributes"] = m["MessageAttributes"]
                    entries.append(entry)
                sent = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
                done = {int(s["Id"]) for s in sent.get("Successful", [])}
                deletions = [{"Id": str(i), "ReceiptHandle": keep[i]["ReceiptHandle"]} for i in sorted(done)]
                if deletions:
                    sqs.delete_message_batch(QueueUrl=dlq_url, Entries=deletions)
                moved += len(done)
            progress.add(len(messages))
    return moved, skipped


def redrive(ctx: Context, args) -> int:
    sqs = ctx.aws.client("sqs")
    if args.show_stream_failures:
        return show_stream_failures(ctx, sqs)
    names = list(PAIRS) if args.queue == "all" else [args.queue]
    method = args.method
    if method == "auto":
        method = "copy" if ctx.aws.endpoint_url or ctx.target.local else "move-task"
    rows = []
    for name in names:
        dlq_attr, queue_attr, dlq_id, queue_id = PAIRS[name]
        dlq_url = ctx.target.need(dlq_attr, f"--{name}-dlq")
        queue_url = ctx.target.need(queue_attr, f"--{name}-queue")
        dlq = _attributes(sqs, dlq_url, "QueueArn", "ApproximateNumberOfMessages")
        queue_arn = _attributes(sqs, queue_url, "QueueArn")["QueueArn"]
        waiting = int(dlq.get("ApproximateNumberOfMessages", 0))
        row: dict[str, Any] = {"queue": name, "from": dlq_id, "to": queue_id, "waiting": waiting, "moved": 0}
        row["skipped"], row["method"], row["task"] = 0, method, None
        if args.dry_run or not waiting:
            row["method"] = "dry run" if args.dry_run else "-"
        elif method == "move-task":
            try:
                task = sqs.start_message_move_task(SourceArn=dlq["QueueArn"], DestinationArn=queue_arn)
                row["moved"], row["task"] = f"~{waiting} (task)", task["TaskHandle"]
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in UNSUPPORTED:
                    raise
                row["method"] = "copy"
        if row["method"] == "copy" and waiting and not args.dry_run:
            row["moved"], row["skipped"] = copy_messages(
                sqs, dlq_url, queue_url, include_rejected=args.include_rejected, limit=args.max, total=waiting
            )
        rows.append(row)
    notes = []
    if any(r["skipped"] for r in rows):
        notes.append(
            "skipped: events ingest could not understand (RejectedReason attribute); they would come back. "
            "Inspect them, or move them anyway with --include-rejected."
        )
    if any(r["method"] == "move-task" and r["task"] for r in rows):
        notes.append("SQS moves the messages in the background: watch with `aws sqs list-message-move-tasks`.")
    ctx.printer.result(rows, ("queue", "from", "to", "waiting", "moved", "skipped", "method"), notes=notes)
    return 1 if args.dry_run and any(r["waiting"] for r in rows) else 0


def show_stream_failures(ctx: Context, sqs) -> int:
    url = ctx.target.need("stream_failure_queue_url", "--stack/--local")
    rows = []
    answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0)
    for m in answer.get("Messages", []):
        try:
            body = json.loads(m["Body"])
        except ValueError:
            body = {}
        info = body.get("DDBStreamBatchInfo", {})
        rows.append(
            {
                "function": (body.get("requestContext", {}).get("functionArn") or "").rsplit(":", 1)[-1] or None,
                "condition": body.get("requestContext", {}).get("condition"),
                "shard": info.get("shardId"),
                "first_sequence": info.get("startSequenceNumber"),
                "last_sequence": info.get("endSequenceNumber"),
                "records": info.get("batchSize"),
                "first_record_at": info.get("approximateArrivalOfFirstRecord"),
            }
        )
    waiting = int(_attributes(sqs, url, "ApproximateNumberOfMessages").get("ApproximateNumberOfMessages", 0))
    ctx.printer.result(
        rows,
        ("function", "condition", "shard", "first_sequence", "last_sequence", "records", "first_record_at"),
        empty="no failed stream batches",
        extra={"waiting": waiting},
        notes=[
            f"{waiting} failed batch pointer(s). They are not messages to re-drive: the items are still in the table. "
            "Fix the function's error, then let the sweeper re-check them at their deadlines; delete these "
            "pointers from StreamFailureQueue once understood."
        ]
        if rows
        else [],
    )
    return 1 if rows else 0
