"""Alert digests in their three forms (crrmon.digest): the AWS Chatbot custom notification (SNS
`default`, what HTTPS subscribers get), the e-mail text, and the machine-readable JSON (e-mail-json,
SQS, Lambda); the `crrmon` command each suggests, parsed by the CLI's own parser; SNS's size limit.

Delivery runs on moto, whose SNS picks each subscription's form from a MessageStructure="json"
message for SQS and HTTP(S) subscriptions (the HTTP one reaches a server on 127.0.0.1, standing in
for AWS Chatbot's endpoint). moto delivers nothing to e-mail subscriptions, so the `email` and
`email-json` forms are checked in the message SNS is given.
"""

from __future__ import annotations

import json
import shlex
import threading
import unicodedata
from http.server import BaseHTTPRequestHandler, HTTPServer

import boto3
import pytest
from moto import mock_aws

from crrmon.digest import (
    SNS_MESSAGE_BYTES,
    Digest,
    Monitor,
    chatbot_notification,
    email_text,
    next_step,
    sns_message,
    thread_id,
)
from crrmon.metrics import Counters
from crrmon.model import Status
from crrmon.publish import Change, Publisher, digests
from crrmon_cli.main import build_parser
from crrmon_cli.values import pair

MONITOR = Monitor(stack="crr-monitor", region="us-east-1")
CLI = "crrmon failed --pair 'prod-data-use1>prod-data-usw2' --stack crr-monitor --region us-east-1"
# The look-alikes shown for characters that would be markup.
GRAVE, AMP = "\N{MODIFIER LETTER GRAVE ACCENT}", "\N{FULLWIDTH AMPERSAND}"
LT, GT = "\N{SINGLE LEFT-POINTING ANGLE QUOTATION MARK}", "\N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK}"
STAR, LOW = "\N{ASTERISK OPERATOR}", "\N{FULLWIDTH LOW LINE}"

SRC, DST = "prod-data-use1", "prod-data-usw2"


def failed(samples, count=None, reason="DstPutObjectNotPermitted", **kwargs) -> Digest:
    samples = tuple(samples)
    return Digest(SRC, DST, "FAILED", reason, count or len(samples), samples, **kwargs)


def description_lines(digest: Digest) -> list[str]:
    return chatbot_notification(digest, MONITOR)["content"]["description"].split("\n")


# ---------------------------------------------------------------- worked examples


def test_a_failed_digest_as_chatbot_shows_it():
    digest = failed([("invoices/2026/11/INV-000123.pdf", "3HL4kqtJ")], count=1312, rpo_classes={"invoices": 1312})
    assert chatbot_notification(digest, MONITOR) == {
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": "🔴 CRR Monitor: 1312 FAILED, prod-data-use1 → prod-data-usw2",
            "description": "1312 object versions failed to replicate, from `prod-data-use1` to `prod-data-usw2`.\n"
            "- Reason: DstPutObjectNotPermitted\n"
            "- RPO classes: `invoices` 1312\n"
            "\n"
            "Samples (1 of 1312):\n"
            "- `invoices/2026/11/INV-000123.pdf` version `3HL4kqtJ`",
            "nextSteps": [f"List them all: `{CLI}`"],
            "keywords": ["FAILED", "prod-data-use1 → prod-data-usw2", "DstPutObjectNotPermitted"],
        },
        "metadata": {
            "threadId": thread_id(digest),
            "summary": "1312 FAILED prod-data-use1 → prod-data-usw2",
            "eventType": "crr-monitor-failed",
            "relatedResources": ["arn:aws:s3:::prod-data-use1", "arn:aws:s3:::prod-data-usw2"],
            "additionalContext": {
                "sourceBucket": SRC,
                "destinationBucket": DST,
                "status": "FAILED",
                "reason": "DstPutObjectNotPermitted",
                "count": "1312",
                "command": CLI,
            },
        },
    }


def test_a_failed_digest_as_an_e_mail_reads_it():
    digest = failed([("invoices/a.pdf", "v1"), ("invoices/b.pdf", "v2")], count=12, rpo_classes={"default": 2, "x": 10})
    assert email_text(digest, MONITOR) == (
        "12 object versions failed to replicate, from prod-data-use1 to prod-data-usw2.\n"
        "\n"
        "Pair:        prod-data-use1 -> prod-data-usw2\n"
        "Status:      FAILED\n"
        "Reason:      DstPutObjectNotPermitted\n"
        "Count:       12\n"
        "RPO classes: x 10, default 2\n"
        "\n"
        "Samples (2 of 12), key and version ID:\n"
        "  invoices/a.pdf\n"
        "    version v1\n"
        "  invoices/b.pdf\n"
        "    version v2\n"
        "\n"
        "List them all:\n"
        f"  {CLI}\n"
    )


def test_without_a_policy_no_rpo_classes_are_shown():
    digest = failed([("k", "v")])
    assert not any("RPO" in line for line in description_lines(digest))
    assert "RPO" not in email_text(digest, MONITOR)
    assert "rpo_classes" not in digest.body()


def test_one_object_is_told_in_the_singular():
    digest = Digest(SRC, DST, "OVERDUE", "", 1, (("k", "v"),))
    assert description_lines(digest)[0] == (
        "1 object version is past its deadline with no replica seen, from `prod-data-use1` to `prod-data-usw2`."
    )
    assert not any(line.startswith("- Reason") for line in description_lines(digest))  # no reason, no line
    assert chatbot_notification(digest, MONITOR)["content"]["title"].startswith("🟠 CRR Monitor: 1 OVERDUE,")


def test_twelve_members_show_ten_samples_and_the_count():
    changes = [
        Change({"pk": f"v{i}#logs/{i:02}.gz", "dest": DST, "src": SRC, "reason": "R"}, Status.FAILED) for i in range(12)
    ]
    (digest,) = digests(changes)
    lines = description_lines(digest)
    assert "Samples (10 of 12):" in lines
    assert [line for line in lines if line.startswith("- `")] == [
        f"- `logs/{i:02}.gz` version `v{i}`" for i in range(10)
    ]
    text = email_text(digest, MONITOR)
    assert "Samples (10 of 12), key and version ID:" in text and "logs/09.gz" in text and "logs/10.gz" not in text


# ---------------------------------------------------------------- untrusted keys


def test_markdown_characters_in_a_key_stay_inside_its_code_span():
    key = "reports/*bold*_under_~strike~ [link](x) #h |t|.csv"
    (line,) = [line for line in description_lines(failed([(key, "v1")])) if line.startswith("- `")]
    assert line == f"- `{key}` version `v1`"  # nothing in a code span is markup: shown as it is, unaltered


def test_a_backtick_in_a_key_cannot_end_its_code_span():
    key = "a`*b*`<!channel>&amp;c"
    (line,) = [line for line in description_lines(failed([(key, "v`1")])) if line.startswith("- `")]
    assert line == f"- `a{GRAVE}*b*{GRAVE}{LT}!channel>{AMP}amp;c` version `v{GRAVE}1` (altered for display)"
    assert line.count("`") == 4  # two code spans, each opened and closed
    assert "<" not in line and "&" not in line  # no Slack control sequence or entity


def test_a_unicode_key_is_shown_as_it_is():
    key = "été/日本語/😀 notes.txt"
    digest = failed([(key, "v1")])
    assert f"- `{key}` version `v1`" in description_lines(digest)
    assert f"  {key}\n    version v1\n" in email_text(digest, MONITOR)
    assert json.loads(digest.body_json())["samples"] == [{"key": key, "version_id": "v1"}]  # and exact in JSON


def test_control_and_format_characters_are_escaped_in_chat_and_e_mail():
    key = "evil\nStatus: COMPLETED\r\t\x00\u202etxt.exe\x1b[31m"
    digest = failed([(key, "v\n1")])
    shown = "evil\\nStatus: COMPLETED\\r\\t\\x00\\u202etxt.exe\\x1b[31m"
    assert f"- `{shown}` version `v\\n1` (altered for display)" in description_lines(digest)
    text = email_text(digest, MONITOR)
    assert f"  {shown} (altered for display)\n    version v\\n1\n" in text
    for line in text.split("\n"):  # a sample cannot make a line of its own
        assert all(unicodedata.category(c) not in ("Cc", "Cf") for c in line)
        assert not line.startswith("Status: COMPLETED")
    assert json.loads(digest.body_json())["samples"][0]["key"] == key  # byte-exact for machines


def test_a_long_key_is_shown_by_its_head_and_tail():
    key = "deep/" + "x" * 1000 + "/file-name.parquet"
    (line,) = [line for line in description_lines(failed([(key, "v1")])) if line.startswith("- `")]
    shown = line.split("`")[1]
    assert len(shown) == 200 and shown.startswith("deep/xxx") and shown.endswith("/file-name.parquet")
    assert "…" in shown and line.endswith("(altered for display)")


def test_bucket_names_and_reasons_in_running_text_render_as_themselves():
    digest = Digest("src", "dst", "MISMATCH", "size *differs*: <b>_x_</b>", 2, ())
    content = chatbot_notification(digest, MONITOR)["content"]
    reason = f"- Reason: size {STAR}differs{STAR}: {LT}b{GT}{LOW}x{LOW}{LT}/b{GT}"
    assert reason in content["description"].split("\n")
    assert all(c not in content["description"].split("\n")[1] for c in "*_<>")


# ---------------------------------------------------------------- the command to run next


def step_command(digest: Digest, monitor: Monitor) -> str:
    return next_step(digest, monitor)[1]


def parse(cli: str):
    words = shlex.split(cli)
    assert words[0] == "crrmon"
    return build_parser().parse_args(words[1:])


@pytest.mark.parametrize(("status", "subcommand"), [("OVERDUE", "overdue"), ("FAILED", "failed")])
def test_overdue_and_failed_suggest_their_listing_of_the_pair(status, subcommand):
    args = parse(step_command(Digest(SRC, DST, status, "", 3, ()), MONITOR))
    assert args.command == subcommand and pair(args.pair) == (SRC, DST)
    assert (args.stack, args.region) == ("crr-monitor", "us-east-1")


@pytest.mark.parametrize("status", ["MISMATCH", "EXPIRED"])
def test_mismatch_and_expired_suggest_comparing_the_buckets(status):
    step, cli = next_step(Digest(SRC, DST, status, "r", 3, ()), MONITOR)
    assert step == "Compare the buckets"
    args = parse(cli)
    assert args.command == "reconcile" and args.url == f"s3://{SRC}" and args.destination == [DST]
    assert (args.stack, args.region) == ("crr-monitor", "us-east-1")


def test_an_unknown_source_is_left_out_of_the_command():
    assert parse(step_command(Digest("unknown", DST, "OVERDUE", "", 1, ()), MONITOR)).pair is None
    step, cli = next_step(Digest("unknown", DST, "EXPIRED", "removed by TTL", 1, ()), MONITOR)
    assert step == "Count them per pair" and parse(cli).command == "stats"
    digest = Digest("unknown", DST, "EXPIRED", "removed by TTL", 1, (("gone", "v9"),))
    assert chatbot_notification(digest, MONITOR)["metadata"]["relatedResources"] == [f"arn:aws:s3:::{DST}"]
    assert "- Reason: removed by TTL" in description_lines(digest)


def test_the_command_names_the_stack_and_the_topics_region_and_partition():
    monitor = Monitor.of("arn:aws-cn:sns:cn-north-1:123456789012:alerts", "mon")
    assert monitor == Monitor(stack="mon", region="cn-north-1", partition="aws-cn")
    args = parse(step_command(failed([]), monitor))
    assert (args.stack, args.region) == ("mon", "cn-north-1")
    digest = failed([])
    assert chatbot_notification(digest, monitor)["metadata"]["relatedResources"][0] == f"arn:aws-cn:s3:::{SRC}"
    bare = parse(step_command(digest, Monitor.of("topic")))  # no stack known, no ARN: no naming flags
    assert (bare.stack, bare.region) == (None, None)


# ---------------------------------------------------------------- threads, SNS message, size


def test_repeats_thread_per_pair_and_status_whatever_the_reason():
    one = thread_id(failed([], reason="A"))
    assert one == thread_id(failed([("k", "v")], reason="B"))
    assert one != thread_id(Digest(SRC, DST, "OVERDUE", "", 1, ()))
    assert one != thread_id(Digest(SRC, "other", "FAILED", "A", 1, ()))


def test_the_sns_message_has_one_form_per_protocol_and_a_default():
    digest = failed([("k", "v")], count=3)
    forms = json.loads(sns_message(digest, MONITOR))
    assert set(forms) == {"default", "email", "email-json", "sqs", "lambda"}
    assert all(isinstance(form, str) for form in forms.values())  # SNS takes strings only
    assert json.loads(forms["default"]) == chatbot_notification(digest, MONITOR)
    assert forms["email"] == email_text(digest, MONITOR)
    assert forms["email-json"] == forms["sqs"] == forms["lambda"] == digest.body_json()


def test_pathological_keys_leave_samples_out_to_fit_sns_and_the_count_stays():
    # Keys and version IDs of control characters: JSON writes each as \u00XX, six bytes, then escapes
    # that again inside the message; a pk holds at most 2,047 bytes (DynamoDB's partition key limit).
    samples = [("\x01" * 1024, "\x02" * 1022) for _ in range(10)]
    digest = failed(samples, count=40)
    message = sns_message(digest, MONITOR)
    assert len(message.encode()) <= SNS_MESSAGE_BYTES
    body = json.loads(json.loads(message)["sqs"])
    assert body["count"] == 40 and 0 < len(body["samples"]) < 10
    assert body["samples"] == [{"key": k, "version_id": v} for k, v in samples[: len(body["samples"])]]
    long_keys = failed([("k" * 1024, "v" * 32) for _ in range(10)])  # the longest ordinary keys fit whole
    assert len(json.loads(json.loads(sns_message(long_keys, MONITOR))["sqs"])["samples"]) == 10


# ---------------------------------------------------------------- delivery through SNS (moto)


class Receiver(BaseHTTPRequestHandler):
    bodies: list[dict] = []

    def do_POST(self):
        Receiver.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    """An HTTP endpoint on 127.0.0.1 standing in for AWS Chatbot's (an HTTPS subscription)."""
    Receiver.bodies = []
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    thread.join()


def test_sns_delivers_each_subscriber_its_form(fake_credentials, receiver):
    changes = [
        Change({"pk": f"v{i}#in/k`{i}*.txt", "dest": DST, "src": SRC, "reason": "DstBucketNotFound"}, Status.FAILED)
        for i in range(11)
    ]
    with mock_aws():
        sns, sqs = boto3.client("sns", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        queues = {}
        for name, raw in (("envelope", "false"), ("raw", "true")):
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": raw})
            queues[name] = url
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver)
        Publisher(sns=sns, topic_arn=topic, stack_name="crr-monitor").publish(changes, Counters(), now_ms=0)

        (digest,) = digests(changes)
        (envelope,) = sqs.receive_message(QueueUrl=queues["envelope"])["Messages"]
        envelope = json.loads(envelope["Body"])
        assert envelope["Subject"] == "CRR Monitor: 11 FAILED prod-data-use1 -> prod-data-usw2"
        body = json.loads(envelope["Message"])  # what tests and consumers of the queue read, as before
        assert body == digest.body() and body["count"] == 11 and len(body["samples"]) == 10
        (raw,) = sqs.receive_message(QueueUrl=queues["raw"])["Messages"]
        assert json.loads(raw["Body"]) == body

    (posted,) = Receiver.bodies
    notification = json.loads(posted["Message"])  # what AWS Chatbot reads
    assert notification["version"] == "1.0" and notification["source"] == "custom"
    assert notification["content"]["title"] == "🔴 CRR Monitor: 11 FAILED, prod-data-use1 → prod-data-usw2"
    assert f"- `in/k{GRAVE}0*.txt` version `v0` (altered for display)" in notification["content"]["description"]
    assert notification["content"]["nextSteps"] == [f"List them all: `{CLI}`"]
