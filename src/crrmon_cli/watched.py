"""What the monitor watches, and names that are not in it.

A monitoring tool must never answer "all clear" about something it does not watch: a mistyped
bucket or pair would otherwise read as "nothing overdue, nothing failed". Every bucket or pair a
command is given is checked here first; one that is not watched is a usage error (exit 2) listing
what is watched, with the nearest name when one is close.
"""

from __future__ import annotations

import difflib

from crrmon.store import pair_name
from crrmon_cli.context import Context
from crrmon_cli.errors import UsageError
from crrmon_cli.values import pair

UNKNOWN = (
    "the monitor's watched buckets are unknown: give --stack NAME (a deployed stack), "
    "--local demo-output/stack.json (the local demo) or --source-buckets A,B"
)


def not_watched(what: str, name: str, known: list[str]) -> UsageError:
    close = [k for k in known if name in k] or difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    hint = f" (did you mean {close[0]}?)" if close else ""
    listed = ", ".join(known) if known else "none"
    return UsageError(f"{what} {name!r} is not watched by this monitor{hint}. Watched {what}s: {listed}")


def sources(ctx: Context) -> list[str]:
    watched = ctx.target.source_buckets
    if not watched:
        raise UsageError(UNKNOWN)
    return watched


def pairs(ctx: Context) -> list[str]:
    """Every source>destination pair the watched buckets' rules create."""
    sources(ctx)
    return [pair_name(s, d) for s, d in ctx.topology().pairs()]


def buckets(ctx: Context) -> list[str]:
    """Watched sources, DestinationBuckets and every destination of their rules."""
    known = set(sources(ctx)) | set(ctx.target.destination_buckets)
    known |= {d for _, d in ctx.topology().pairs()}
    return sorted(known)


def check_source(ctx: Context, bucket: str) -> None:
    watched = sources(ctx)
    if bucket not in watched:
        raise not_watched("source bucket", bucket, sorted(watched))


def check_bucket(ctx: Context, bucket: str) -> None:
    known = buckets(ctx)
    if bucket not in known:
        raise not_watched("bucket", bucket, known)


def check_pair(ctx: Context, text: str) -> str:
    """'SRC>DST' -> its pair name, when a rule of a watched source creates it."""
    name = pair_name(*pair(text))
    known = pairs(ctx)
    if name not in known:
        raise not_watched("pair", name, known)
    return name
