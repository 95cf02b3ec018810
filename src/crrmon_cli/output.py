"""How commands show what they found: aligned tables or JSON on stdout, progress on stderr."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO


def iso(epoch_ms: int | float | None) -> str | None:
    """Epoch milliseconds -> ISO 8601 UTC with seconds, or None."""
    if epoch_ms is None:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(seconds: float | None) -> str:
    """90 -> '1m30s', 7260 -> '2h01m'; '' for None."""
    if seconds is None:
        return ""
    seconds = round(seconds)
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    if seconds < 60:
        return f"{sign}{seconds}s"
    if seconds < 3600:
        return f"{sign}{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{sign}{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{sign}{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


TABLE_WIDTH = 120  # a table that must fit a terminal cuts its `fit` column to this width


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 3)].rstrip() + "..."


def table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    out: TextIO,
    *,
    fit: str | None = None,
    width: int = TABLE_WIDTH,
) -> None:
    """Rows as an aligned text table; column headers are the keys, upper-cased. With `fit`, that column's
    cells are cut (ending in "...") so that every line fits `width` characters."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    if fit is not None:
        i = list(columns).index(fit)
        room = width - sum(w for j, w in enumerate(widths) if j != i) - 2 * (len(columns) - 1)
        widths[i] = min(widths[i], max(len(fit), room))
        for r in cells:
            r[i] = _cut(r[i], widths[i])
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    out.write("\n".join(lines) + "\n")


class Printer:
    """Writes one command's result in the chosen format (table or json)."""

    def __init__(self, fmt: str = "table", out: TextIO | None = None, err: TextIO | None = None):
        self.fmt = fmt
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def result(
        self,
        rows: Sequence[dict[str, Any]],
        columns: Sequence[str],
        *,
        empty: str = "nothing found",
        extra: dict[str, Any] | None = None,
        notes: Iterable[str] = (),
        fit: str | None = None,
    ) -> None:
        extra = {k: v for k, v in (extra or {}).items() if v is not None}
        if self.fmt == "json":
            json.dump({"items": list(rows), **extra}, self.out, indent=1, default=str, ensure_ascii=False)
            self.out.write("\n")
            return
        if rows:
            table(rows, columns, self.out, fit=fit)
        else:
            self.out.write(empty + "\n")
        for note in notes:
            self.out.write(note + "\n")
        if extra.get("next_token"):
            self.out.write(f"more: --next-token {extra['next_token']}\n")

    def note(self, text: str) -> None:
        """A remark for people (stderr), never part of the JSON on stdout."""
        self.err.write(text + "\n")


class Progress:
    """A one-line progress counter on stderr, redrawn with '\\r'.

    Drawn only when stderr is a terminal, or CRRMON_PROGRESS=1 (CRRMON_PROGRESS=0 turns it off).
    """

    def __init__(self, label: str, total: int | None = None, *, stream: TextIO | None = None, every_s: float = 0.2):
        self.label, self.total, self.count = label, total, 0
        self.stream = stream or sys.stderr
        forced = os.environ.get("CRRMON_PROGRESS")
        self.enabled = forced == "1" if forced in ("0", "1") else bool(getattr(self.stream, "isatty", bool)())
        self.every_s = every_s
        self._drawn_at = 0.0
        self._drawn = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.done()

    def add(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if self.enabled and now - self._drawn_at >= self.every_s:
            self._draw()
            self._drawn_at = now

    def _draw(self) -> None:
        if self.total:
            filled = min(30, 30 * self.count // max(1, self.total))
            bar = "#" * filled + "." * (30 - filled)
            text = f"\r{self.label} [{bar}] {self.count}/{self.total}"
        else:
            text = f"\r{self.label}: {self.count}"
        self.stream.write(text)
        self.stream.flush()
        self._drawn = True

    def done(self) -> None:
        if self.enabled:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
