"""RPO classes: different recovery point objectives for different data.

An optional policy (the `RpoClasses` template parameter, environment variable RPO_CLASSES) is an
ordered list of classes, each a name, what it matches — a key prefix, a size band, or both — and an
RPO:

    invoices:prefix=invoices/,rpo=5m;logs:prefix=logs/,rpo=1h;large:min=1GiB,rpo=2h

Classes are separated by `;`, fields by `,`. A class's fields:

- `prefix=`: the key starts with it (S3's safe key characters: letters, digits, `/ ! - _ . * ' ( )`);
- `min=`, `max=`: the object's size is at least `min` and below `max` bytes (units B, KB, MB, GB, TB
  in powers of 1000, KiB, MiB, GiB, TiB in powers of 1024; none: bytes);
- `rpo=` (required): seconds, or with a unit `s`, `m`, `h`, `d`.

The first class that matches an object version gives its RPO; a version no class matches is in the
class `default`, whose RPO is RpoSeconds. A size band never matches a version whose size the monitor
does not know (a delete marker, a failure report without a size): such a version falls to the next
class. The class name is a metric dimension, so names are short, from a small alphabet, and at most
MAX_CLASSES classes are allowed. A policy that breaks any rule is refused when the configuration is
read, with a message naming the class at fault.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_CLASS = "default"
MAX_CLASSES = 20  # the class is a metric dimension: a bounded set
MAX_RPO_SECONDS = 30 * 86400  # the largest GiveUpSeconds; the give-up age is raised to the largest RPO

NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}"
PREFIX = r"[A-Za-z0-9/!_.*'()-]{1,256}"
SIZE = r"[0-9]{1,16}(B|[KMGT]i?B)?"
DURATION = r"[0-9]{1,8}[smhd]?"
_FIELD = rf"(prefix={PREFIX}|(min|max)={SIZE}|rpo={DURATION})"
# The whole policy's syntax, as the template's AllowedPattern checks it before a deployment (a test
# compares them); what a pattern cannot check (names used twice, bands, the number of classes) is
# checked when the configuration is read.
PATTERN = rf"^({NAME}:{_FIELD}(,{_FIELD})*(;|$))*$"

SIZE_UNITS = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
FIELDS = ("prefix", "min", "max", "rpo")


@dataclass(frozen=True)
class RpoClass:
    name: str
    rpo_seconds: int
    prefix: str = ""
    min_size: int | None = None  # inclusive
    max_size: int | None = None  # exclusive

    def matches(self, key: str, size: int | None) -> bool:
        if not key.startswith(self.prefix):
            return False
        if self.min_size is None and self.max_size is None:
            return True
        if size is None:
            return False
        return (self.min_size is None or size >= self.min_size) and (self.max_size is None or size < self.max_size)


def classify(classes: Iterable[RpoClass], key: str, size: int | None) -> RpoClass | None:
    """The first class matching the version, None for the default class."""
    return next((c for c in classes if c.matches(key, size)), None)


class PolicyError(ValueError):
    """An RPO class policy that cannot be used; the message names the class at fault."""


def _number(text: str, units: dict[str, int], pattern: str, what: str) -> int:
    match = re.fullmatch(pattern, text)
    if not match:
        raise ValueError(f"{what} {text!r} is not a whole number with an optional unit ({', '.join(units)})")
    digits = re.match(r"[0-9]+", text).group()
    unit = text[len(digits) :] or next(u for u, factor in units.items() if factor == 1)
    return int(digits) * units[unit]


def parse_class(entry: str) -> RpoClass:
    name, colon, rest = entry.partition(":")
    name = name.strip()
    if not re.fullmatch(NAME, name):
        raise ValueError("the name must be 1 to 32 letters, digits, '_' or '-', starting with a letter or digit")
    if name == DEFAULT_CLASS:
        raise ValueError(f"{DEFAULT_CLASS!r} is the name of the class of versions no class matches (RpoSeconds)")
    if not colon or not rest.strip():
        raise ValueError("no fields: write NAME:prefix=...,min=...,max=...,rpo=...")
    values: dict[str, str] = {}
    for part in rest.split(","):
        field, equals, value = (s.strip() for s in part.partition("="))
        if field not in FIELDS or not equals:
            raise ValueError(f"unknown field {part.strip()!r} (fields: {', '.join(f + '=' for f in FIELDS)})")
        if field in values:
            raise ValueError(f"{field}= given twice")
        values[field] = value
    if "rpo" not in values:
        raise ValueError("no rpo= (the class's RPO: seconds, or with a unit s, m, h, d)")
    rpo = _number(values["rpo"], DURATION_UNITS, DURATION, "rpo")
    if not 1 <= rpo <= MAX_RPO_SECONDS:
        raise ValueError(f"rpo {values['rpo']!r} must be from 1 second to {MAX_RPO_SECONDS // 86400} days")
    prefix = values.get("prefix", "")
    if "prefix" in values and not re.fullmatch(PREFIX, prefix):
        raise ValueError(
            f"prefix {prefix!r} must be 1 to 256 of S3's safe key characters (letters, digits, / ! - _ . * ' ( ))"
        )
    min_size = _number(values["min"], SIZE_UNITS, SIZE, "min") if "min" in values else None
    max_size = _number(values["max"], SIZE_UNITS, SIZE, "max") if "max" in values else None
    if min_size is not None and max_size is not None and min_size >= max_size:
        raise ValueError(f"min {values['min']} is not below max {values['max']}: no size is in the band")
    if max_size == 0:
        raise ValueError("max 0: no size is below it")
    if not prefix and min_size is None and max_size is None:
        raise ValueError("matches every version (no prefix=, min= or max=): set RpoSeconds for that")
    return RpoClass(name=name, rpo_seconds=rpo, prefix=prefix, min_size=min_size, max_size=max_size)


def parse_policy(text: str) -> tuple[RpoClass, ...]:
    """RPO_CLASSES -> its classes, in order. Raises PolicyError naming the class at fault."""
    entries = [e.strip() for e in text.split(";")]
    entries = [e for e in entries if e]
    if len(entries) > MAX_CLASSES:
        raise PolicyError(
            f"RPO_CLASSES has {len(entries)} classes; at most {MAX_CLASSES} (the class is a metric dimension)"
        )
    classes: list[RpoClass] = []
    for number, entry in enumerate(entries, 1):
        try:
            parsed = parse_class(entry)
        except ValueError as error:
            raise PolicyError(f"RPO_CLASSES class {number} ({entry!r}): {error}") from None
        if any(c.name == parsed.name for c in classes):
            raise PolicyError(f"RPO_CLASSES class {number} ({entry!r}): the name {parsed.name!r} is used twice")
        classes.append(parsed)
    return tuple(classes)
