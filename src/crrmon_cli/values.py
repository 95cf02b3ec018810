"""Command-line values: s3:// URLs, durations, points in time, pairs and paging tokens."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

from crrmon_cli.errors import UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def s3_url(url: str, *, key_required: bool = False) -> tuple[str, str]:
    """'s3://bucket/key' -> ('bucket', 'key')."""
    if not url.startswith("s3://") or len(url) <= 5:
        raise UsageError(f"{url!r} is not an s3://bucket[/key] URL")
    bucket, _, key = url[5:].partition("/")
    if not bucket:
        raise UsageError(f"{url!r} names no bucket")
    if key_required and not key:
        raise UsageError(f"{url!r} names no object key")
    return bucket, key


def seconds(text: str) -> int:
    """'90s', '15m', '2h', '3d', '1w' or a plain number of seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not match:
        raise UsageError(f"{text!r} is not a duration like 90s, 15m, 2h, 3d")
    return int(float(match.group(1)) * _UNITS[match.group(2) or "s"])


def since(text: str, now_s: float) -> float:
    """A duration ago ('2h') or an ISO 8601 time ('2026-11-27T06:00:00Z') -> epoch seconds."""
    try:
        return now_s - seconds(text)
    except UsageError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{text!r} is neither a duration (2h) nor an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def pair(text: str) -> tuple[str, str]:
    source, sep, destination = text.partition(">")
    if not sep or not source or not destination:
        raise UsageError(f"{text!r} is not a pair SOURCE>DESTINATION (quote it: the shell reads '>')")
    return source, destination


def encode_token(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str | None) -> dict[str, Any]:
    if not token:
        return {}
    try:
        padded = token + "=" * (-len(token) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded))
    except ValueError:
        raise UsageError("--next-token is not a token this command gave") from None
    if not isinstance(state, dict):
        raise UsageError("--next-token is not a token this command gave")
    return state
