"""Size bands and age bands: the bounded, ordered sets of names that metrics carry as the `SizeBand` and
`AgeBand` dimensions (and the archive as `size_band`).

Each band holds the values from its own lower bound (inclusive) up to the next band's lower bound
(exclusive); the last band has no upper bound. "MB" and "GB" in the names are binary units: 1 MB is
1,048,576 bytes, 1 GB 1,073,741,824, and 5 GB (5,368,709,120 bytes) is S3's largest single PUT. So an
object of exactly 1,048,576 bytes is in `1-16MB`, one of 1,048,575 bytes in `<1MB`; an overdue item first
seen exactly 15 minutes ago is in `15m-1h`.

Size bands split replication latency (per pair, `ReplicationLatency` with `SizeBand`): large objects take
longer, and a p99 over every size hides whether small objects are slow. A size that is not known is in
`unknown`. Age bands split the overdue backlog (`OverdueByAge`), by the time since the monitor first heard
of the version (`first_seen`, the range key of the Overdue index, so a band is a key condition and its
items are counted without being read).
"""

from __future__ import annotations

from bisect import bisect_right
from typing import NamedTuple

MB = 1024**2
GB = 1024**3


class Band(NamedTuple):
    name: str
    low: int  # inclusive; the band ends where the next one begins


SIZE_BANDS = (
    Band("<1MB", 0),
    Band("1-16MB", MB),
    Band("16-128MB", 16 * MB),
    Band("128MB-1GB", 128 * MB),
    Band("1-5GB", GB),
    Band(">=5GB", 5 * GB),
)
UNKNOWN_SIZE = "unknown"
SIZE_BAND_NAMES = (*(b.name for b in SIZE_BANDS), UNKNOWN_SIZE)

AGE_BANDS = (  # lower bounds in seconds
    Band("<15m", 0),
    Band("15m-1h", 15 * 60),
    Band("1-6h", 3600),
    Band("6-24h", 6 * 3600),
    Band(">=24h", 24 * 3600),
)
AGE_BAND_NAMES = tuple(b.name for b in AGE_BANDS)

_SIZE_LOWS = [b.low for b in SIZE_BANDS]
_AGE_LOWS = [b.low for b in AGE_BANDS]


def size_band(size: int | None) -> str:
    """The band of an object of `size` bytes; `unknown` when the size is not known (None, or not a size)."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return UNKNOWN_SIZE
    return SIZE_BANDS[bisect_right(_SIZE_LOWS, size) - 1].name


def age_band_index(age_s: float) -> int:
    """The position in AGE_BANDS of an age in seconds. A negative age (an item first seen by a container
    whose clock runs ahead) is in the youngest band."""
    return max(0, bisect_right(_AGE_LOWS, age_s) - 1)


def age_band(age_s: float) -> str:
    return AGE_BANDS[age_band_index(age_s)].name


def first_seen_bounds(index: int, now_ms: int) -> tuple[int | None, int | None]:
    """The inclusive bounds (epoch ms; None: unbounded) of `first_seen` for an item's age at `now_ms` to be
    in AGE_BANDS[index]: the age (now_ms - first_seen) / 1000 is at least the band's lower bound and less
    than the next band's. The youngest band has no upper bound on `first_seen` (it takes negative ages),
    the oldest no lower bound."""
    high = None if index == 0 else now_ms - AGE_BANDS[index].low * 1000
    low = None if index == len(AGE_BANDS) - 1 else now_ms - AGE_BANDS[index + 1].low * 1000 + 1
    return low, high
