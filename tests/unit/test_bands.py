"""Size and age bands (crrmon.bands): each band from its lower bound (inclusive) to the next band's
(exclusive), checked on both sides of every boundary, and the Overdue index's key bounds that count a band."""

from __future__ import annotations

import pytest

from crrmon.bands import (
    AGE_BAND_NAMES,
    AGE_BANDS,
    GB,
    MB,
    SIZE_BAND_NAMES,
    UNKNOWN_SIZE,
    age_band,
    age_band_index,
    first_seen_bounds,
    size_band,
)

NOW_MS = 1_700_000_000_000


def test_the_band_names_are_the_documented_ordered_sets():
    assert SIZE_BAND_NAMES == ("<1MB", "1-16MB", "16-128MB", "128MB-1GB", "1-5GB", ">=5GB", "unknown")
    assert AGE_BAND_NAMES == ("<15m", "15m-1h", "1-6h", "6-24h", ">=24h")


@pytest.mark.parametrize(
    ("size", "band"),
    [
        (0, "<1MB"),
        (MB - 1, "<1MB"),
        (1_048_576, "1-16MB"),
        (16 * MB - 1, "1-16MB"),
        (16 * MB, "16-128MB"),
        (128 * MB - 1, "16-128MB"),
        (128 * MB, "128MB-1GB"),
        (GB - 1, "128MB-1GB"),
        (1_073_741_824, "1-5GB"),
        (5 * GB - 1, "1-5GB"),
        (5_368_709_120, ">=5GB"),
        (5 * 1024**4, ">=5GB"),  # S3's largest object, 5 TiB
    ],
)
def test_each_size_band_starts_at_its_bound_and_ends_just_before_the_next(size, band):
    assert size_band(size) == band


@pytest.mark.parametrize("size", [None, -1, True, "12", 1.5])
def test_a_size_that_is_not_known_is_in_the_unknown_band(size):
    assert size_band(size) == UNKNOWN_SIZE


@pytest.mark.parametrize(
    ("age_s", "band"),
    [
        (-30, "<15m"),  # first seen by a container whose clock runs ahead
        (0, "<15m"),
        (899.999, "<15m"),
        (900, "15m-1h"),
        (3599.999, "15m-1h"),
        (3600, "1-6h"),
        (21_599.999, "1-6h"),
        (21_600, "6-24h"),
        (86_399.999, "6-24h"),
        (86_400, ">=24h"),
        (10**9, ">=24h"),
    ],
)
def test_each_age_band_starts_at_its_bound_and_ends_just_before_the_next(age_s, band):
    assert age_band(age_s) == band
    assert AGE_BANDS[age_band_index(age_s)].name == band


def test_the_key_bounds_of_each_age_band():
    assert [first_seen_bounds(i, NOW_MS) for i in range(len(AGE_BANDS))] == [
        (NOW_MS - 900_000 + 1, None),
        (NOW_MS - 3_600_000 + 1, NOW_MS - 900_000),
        (NOW_MS - 21_600_000 + 1, NOW_MS - 3_600_000),
        (NOW_MS - 86_400_000 + 1, NOW_MS - 21_600_000),
        (None, NOW_MS - 86_400_000),
    ]


@pytest.mark.parametrize("boundary_s", [0, 900, 3600, 21_600, 86_400])
@pytest.mark.parametrize("offset_ms", [-1, 0, 1])
def test_an_item_is_within_the_key_bounds_of_exactly_the_band_of_its_age(boundary_s, offset_ms):
    first_seen = NOW_MS - boundary_s * 1000 - offset_ms
    holding = [
        AGE_BANDS[i].name
        for i in range(len(AGE_BANDS))
        for low, high in [first_seen_bounds(i, NOW_MS)]
        if (low is None or low <= first_seen) and (high is None or first_seen <= high)
    ]
    assert holding == [age_band((NOW_MS - first_seen) / 1000)]
