"""Alert digests and the forms they are published in.

A digest tells of the object versions of one source/destination pair that reached one alert status
(with one reason) in one publishing batch: how many, up to 10 sample keys with their version IDs, the
count per RPO class under a policy, and the `crrmon` command that lists them all. It goes to the alert
topic as one SNS message with `MessageStructure="json"`, one form per subscription protocol:

- `default` (HTTPS subscribers, among them AWS Chatbot, now Amazon Q Developer in chat applications):
  a Chatbot *custom notification* (version 1.0, source `custom`, `client-markdown`), rendered in Slack
  and Microsoft Teams;
- `email`: plain text for people;
- `email-json`, `sqs`, `lambda`: the machine-readable JSON body.

Keys and version IDs are untrusted text. In the chat form they stand in code spans, where neither
Slack nor Teams reads `*`, `_` or `~`; the characters that would end a code span or open a Slack
control sequence or entity (a backtick, `<`, `&`) are shown as look-alikes (U+02CB, U+2039, U+FF06),
control and format characters (line breaks, bidirectional overrides) as escapes (`\\n`, `\\u202e`),
and keys longer than 200 characters by their head and tail. A sample shown in any altered form says
so. The e-mail text escapes control and format characters and shortens long keys the same way; the
JSON body keeps every key byte-exact. The whole message stays within SNS's 256 KiB: if pathological
keys would pass it, samples are left out, last first (the count stays).
"""

from __future__ import annotations

import hashlib
import json
import shlex
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

SNS_MESSAGE_BYTES = 262_144  # Publish: a message (all its protocol forms together) is at most 256 KiB
SUBJECT_CHARS = 100  # Publish: an e-mail subject is at most 100 characters
SHOWN_CHARS = 200  # longer keys and version IDs are shown by their head and tail (chat and e-mail forms)
UNKNOWN_SOURCE = "unknown"  # the source bucket of an item that never learnt it (an EXPIRED item, say)

# What each alert status says of its object versions: (one, several).
MEANING = {
    "OVERDUE": ("is past its deadline with no replica seen", "are past their deadline with no replica seen"),
    "FAILED": ("failed to replicate", "failed to replicate"),
    "MISMATCH": ("has a replica that differs from it", "have replicas that differ from them"),
    "EXPIRED": (
        "left the table before a verdict: its replication was never confirmed",
        "left the table before a verdict: their replication was never confirmed",
    ),
}
LISTED = ("OVERDUE", "FAILED")  # statuses `crrmon` lists by pair (the sparse indexes)
MARK = {"OVERDUE": "🟠", "FAILED": "🔴", "MISMATCH": "🔴", "EXPIRED": "⚪"}
# In a code span: a backtick would end it; `<` opens a Slack control sequence (`<!channel>`), `&` an entity.
_IN_CODE = {
    "`": "\N{MODIFIER LETTER GRAVE ACCENT}",
    "<": "\N{SINGLE LEFT-POINTING ANGLE QUOTATION MARK}",
    "&": "\N{FULLWIDTH AMPERSAND}",
}
# In running text, also what Slack or Teams reads as emphasis, strike-through, quotes or links.
_IN_TEXT = str.maketrans(
    _IN_CODE
    | {
        ">": "\N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK}",
        "*": "\N{ASTERISK OPERATOR}",
        "_": "\N{FULLWIDTH LOW LINE}",
        "~": "\N{TILDE OPERATOR}",
        "[": "\N{FULLWIDTH LEFT SQUARE BRACKET}",
        "]": "\N{FULLWIDTH RIGHT SQUARE BRACKET}",
    }
)
_IN_CODE = str.maketrans(_IN_CODE)
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


@dataclass(frozen=True)
class Digest:
    source: str
    destination: str
    status: str
    reason: str  # "" when the verdict has none
    count: int
    samples: tuple[tuple[str, str], ...]  # (key, version ID), at most 10
    rpo_classes: dict[str, int] | None = field(default=None)  # under a policy: objects per RPO class

    @property
    def subject(self) -> str:
        return f"CRR Monitor: {self.count} {self.status} {self.source} -> {self.destination}"[:SUBJECT_CHARS]

    @property
    def pair(self) -> str:
        return f"{self.source}>{self.destination}"

    def body(self) -> dict[str, Any]:
        """The machine-readable form (e-mail-json, SQS and Lambda subscribers)."""
        body: dict[str, Any] = {
            "source_bucket": self.source,
            "destination_bucket": self.destination,
            "status": self.status,
            "reason": self.reason or None,
            "count": self.count,
            "samples": [{"key": key, "version_id": version_id} for key, version_id in self.samples],
        }
        if self.rpo_classes is not None:
            body["rpo_classes"] = dict(sorted(self.rpo_classes.items()))
        return body

    def body_json(self) -> str:
        return json.dumps(self.body(), ensure_ascii=False, indent=1)


@dataclass(frozen=True)
class Monitor:
    """What a `crrmon` command needs to find this monitor: its stack's name (STACK_NAME) and region,
    and the partition its ARNs are in (the alert topic's)."""

    stack: str = ""
    region: str = ""
    partition: str = "aws"

    @classmethod
    def of(cls, topic_arn: str, stack: str = "") -> Monitor:
        parts = topic_arn.split(":")
        if len(parts) >= 6 and parts[0] == "arn":
            return cls(stack=stack, region=parts[3], partition=parts[1] or "aws")
        return cls(stack=stack)

    def flags(self) -> list[str]:
        """Without a stack name the command names no monitor; `crrmon` then says which flag to add."""
        return [*(["--stack", self.stack] if self.stack else []), *(["--region", self.region] if self.region else [])]


# ---------------------------------------------------------------- untrusted text


def printable(text: str) -> str:
    """`text` with control and format characters (line breaks, NUL, bidirectional overrides) escaped."""
    return "".join(_escape(c) if unicodedata.category(c) in _UNPRINTABLE else c for c in text)


def _escape(char: str) -> str:
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    """At most `limit` characters: the head and the tail (where a key's file name is), joined by '…'."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return f"{text[:head]}…{text[len(text) - (limit - 1 - head) :]}"


def shown(text: str, *, in_code: bool = False) -> tuple[str, bool]:
    """A key or version ID as the e-mail (or, `in_code`, a chat code span) shows it, and whether that
    differs from it."""
    out = shorten(printable(text))
    if in_code:
        out = out.translate(_IN_CODE)
    return out, out != text


def code_span(text: str) -> str:
    """`text` as a code span in Slack's and Teams' markdown that nothing in it can end or escape."""
    return f"`{shown(text, in_code=True)[0]}`"


def plain(text: str) -> str:
    """`text` as running markdown text that renders as itself (markup characters as look-alikes)."""
    return printable(text).translate(_IN_TEXT)


# ---------------------------------------------------------------- what to run next


def next_step(digest: Digest, monitor: Monitor) -> tuple[str, str]:
    """What to do next, in words, and the `crrmon` command that does it: it shows every object of the
    digest, not only its samples."""
    known = digest.source != UNKNOWN_SOURCE
    if digest.status in LISTED:
        step, args = "List them all", [digest.status.lower(), *(["--pair", digest.pair] if known else [])]
    elif known:  # MISMATCH, EXPIRED: the monitor keeps no list of them
        step, args = "Compare the buckets", ["reconcile", f"s3://{digest.source}", "--destination", digest.destination]
    else:
        step, args = "Count them per pair", ["stats"]  # from the archive
    return step, shlex.join(["crrmon", *args, *monitor.flags()])


def thread_id(digest: Digest) -> str:
    """One chat thread per pair and status: repeats of an alert gather under the first."""
    return "crrmon-" + hashlib.sha256(f"{digest.pair}\x00{digest.status}".encode()).hexdigest()[:32]


def _meaning(digest: Digest) -> str:
    one, several = MEANING.get(digest.status, (f"is {digest.status}", f"are {digest.status}"))
    return f"1 object version {one}" if digest.count == 1 else f"{digest.count} object versions {several}"


def _classes(digest: Digest, name: Callable[[str], str]) -> str:
    """Objects per RPO class, most first."""
    return ", ".join(f"{name(c)} {n}" for c, n in sorted(digest.rpo_classes.items(), key=lambda cn: (-cn[1], cn[0])))


# ---------------------------------------------------------------- the forms


def chatbot_notification(digest: Digest, monitor: Monitor) -> dict[str, Any]:
    """The AWS Chatbot custom notification (version 1.0): markdown that Slack and Teams render alike."""
    lines = [f"{_meaning(digest)}, from {code_span(digest.source)} to {code_span(digest.destination)}."]
    if digest.reason:
        lines.append(f"- Reason: {plain(digest.reason)}")
    if digest.rpo_classes:
        lines.append(f"- RPO classes: {_classes(digest, code_span)}")
    if digest.samples:
        lines += ["", f"Samples ({len(digest.samples)} of {digest.count}):"]
        for key, version_id in digest.samples:
            key_shown, key_altered = shown(key, in_code=True)
            version_shown, version_altered = shown(version_id, in_code=True)
            note = " (altered for display)" if key_altered or version_altered else ""
            lines.append(f"- `{key_shown}` version `{version_shown}`{note}")
    step, cli = next_step(digest, monitor)
    keywords = [digest.status, plain(f"{digest.source} → {digest.destination}")]
    if digest.reason:
        keywords.append(plain(shorten(digest.reason, 60)))
    context = {"sourceBucket": digest.source, "destinationBucket": digest.destination, "status": digest.status}
    context |= ({"reason": digest.reason} if digest.reason else {}) | {"count": str(digest.count), "command": cli}
    return {
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": f"{MARK[digest.status]} CRR Monitor: {digest.count} {digest.status}, "
            f"{plain(digest.source)} → {plain(digest.destination)}",
            "description": "\n".join(lines),
            "nextSteps": [f"{step}: {code_span(cli)}"],
            "keywords": keywords,
        },
        "metadata": {
            "threadId": thread_id(digest),
            "summary": plain(f"{digest.count} {digest.status} {digest.source} → {digest.destination}"),
            "eventType": f"crr-monitor-{digest.status.lower()}",
            "relatedResources": [
                f"arn:{monitor.partition}:s3:::{bucket}"
                for bucket in (digest.source, digest.destination)
                if bucket != UNKNOWN_SOURCE
            ],
            "additionalContext": {name: printable(value) for name, value in context.items()},
        },
    }


def email_text(digest: Digest, monitor: Monitor) -> str:
    """The plain text an e-mail subscriber reads."""
    rows = [("Pair", f"{digest.source} -> {digest.destination}"), ("Status", digest.status)]
    rows += [("Reason", digest.reason)] if digest.reason else []
    rows += [("Count", str(digest.count))]
    rows += [("RPO classes", _classes(digest, str))] if digest.rpo_classes else []
    lines = [f"{_meaning(digest)}, from {printable(digest.source)} to {printable(digest.destination)}.", ""]
    lines += [f"{name + ':':<13}{printable(value)}" for name, value in rows]
    if digest.samples:
        lines += ["", f"Samples ({len(digest.samples)} of {digest.count}), key and version ID:"]
        for key, version_id in digest.samples:
            key_shown, key_altered = shown(key)
            version_shown, version_altered = shown(version_id)
            note = " (altered for display)" if key_altered or version_altered else ""
            lines += [f"  {key_shown}{note}", f"    version {version_shown}"]
    step, cli = next_step(digest, monitor)
    lines += ["", f"{step}:", f"  {printable(cli)}", ""]
    return "\n".join(lines)


def sns_message(digest: Digest, monitor: Monitor) -> str:
    """The Message of an SNS Publish with MessageStructure="json": each protocol's form, within 256 KiB."""
    for count in range(len(digest.samples), -1, -1):
        trimmed = replace(digest, samples=digest.samples[:count])
        machine = trimmed.body_json()
        message = json.dumps(
            {
                "default": json.dumps(chatbot_notification(trimmed, monitor), ensure_ascii=False),
                "email": email_text(trimmed, monitor),
                "email-json": machine,
                "sqs": machine,
                "lambda": machine,
            },
            ensure_ascii=False,
        )
        if len(message.encode()) <= SNS_MESSAGE_BYTES:
            return message
    raise ValueError("a digest without samples does not fit in an SNS message")
