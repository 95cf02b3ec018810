"""The SLO's arithmetic (crrmon.slo): objective and budget, burn rates from counts, the thresholds derived
from budget shares, which policies fire for given window counts, and the message a change sends.
Worked examples from Google's SRE workbook, "Alerting on SLOs"."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from crrmon.config import Config
from crrmon.slo import (
    POLICIES,
    WINDOWS,
    Counts,
    ObjectiveError,
    alert_message,
    budget,
    budget_spent,
    burn_rate,
    firing,
    parse_objective,
    threshold,
    window_counts,
    window_name,
)

OBJECTIVE = Fraction("99.9")
FAST, MEDIUM, SLOW = POLICIES
M5, M30, H1, H6, D3 = 300, 1800, 3600, 21600, 259200


def counts(**by_window: tuple[int, int]) -> dict[int, Counts]:
    """Counts(total, bad) per window, given as m5=(total, bad), h1=..., zero elsewhere."""
    names = {"m5": M5, "m30": M30, "h1": H1, "h6": H6, "d3": D3}
    return {window: Counts(*by_window.get(name, (0, 0))) for name, window in names.items()}


# ---- objective, budget, burn rate -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", None), ("0", None), ("99.9", Fraction(999, 10)), ("99", Fraction(99)), ("99.999999", Fraction("99.999999"))],
)
def test_an_objective_is_a_percent_and_empty_or_zero_is_off(text, expected):
    assert parse_objective(text) == expected


@pytest.mark.parametrize("text", ["100", "99.9%", "abc", "-1", "0.5", "99.1234567", "1e2", "99,9", "150"])
def test_an_objective_that_is_not_a_percent_below_100_is_refused_with_what_is_allowed(text):
    with pytest.raises(ObjectiveError, match=r"SLO_OBJECTIVE .* below 100, such as 99\.9"):
        parse_objective(text)


def test_the_configuration_reads_the_objective_and_refuses_what_cannot_work():
    cfg = Config.from_env({"TABLE_NAME": "t", "SLO_OBJECTIVE": "99.95", "SLO_WINDOW_DAYS": "28"})
    assert (cfg.slo_objective, cfg.slo_window_days) == (Fraction("99.95"), 28)
    assert Config.from_env({"TABLE_NAME": "t"}).slo_objective is None
    with pytest.raises(ValueError, match=r"SLO_OBJECTIVE '99\.9%'"):
        Config.from_env({"TABLE_NAME": "t", "SLO_OBJECTIVE": "99.9%"})
    with pytest.raises(ValueError, match="SLO_WINDOW_DAYS 3 must be from 7 to 90 days"):
        Config.from_env({"TABLE_NAME": "t", "SLO_OBJECTIVE": "99.9", "SLO_WINDOW_DAYS": "3"})


def test_the_budget_is_what_the_objective_leaves():
    assert budget(OBJECTIVE) == Fraction(1, 1000)
    assert budget(Fraction(99)) == Fraction(1, 100)


def test_burn_rate_is_the_error_ratio_over_the_budget():
    # 144 bad objects of 10,000 against 99.9%: 1.44% errors, 14.4 times the budget's pace, exactly.
    assert burn_rate(144, 10_000, OBJECTIVE) == Fraction(72, 5)
    assert burn_rate(10, 10_000, OBJECTIVE) == 1  # spends the budget in exactly the SLO window
    assert burn_rate(7, 7, OBJECTIVE) == 1000  # everything late: the most a 99.9% budget can burn
    assert burn_rate(0, 0, OBJECTIVE) == 0  # no objects spend nothing


# ---- thresholds from budget shares -------------------------------------------------------------------------------


def test_the_workbook_thresholds_follow_from_the_budget_shares_of_a_30_day_window():
    # 2% of a 30-day budget in 1 hour, 5% in 6 hours, 10% in 3 days.
    assert {p.name: threshold(p, 30) for p in POLICIES} == {"fast": Fraction(72, 5), "medium": 6, "slow": 1}
    assert [(p.severity, p.long_s, p.short_s) for p in POLICIES] == [
        ("page", H1, M5),
        ("page", H6, M30),
        ("ticket", D3, H6),
    ]


def test_other_slo_windows_scale_the_thresholds():
    assert [threshold(p, 28) for p in POLICIES] == [Fraction("13.44"), Fraction("5.6"), Fraction(14, 15)]
    assert [threshold(p, 90) for p in POLICIES] == [Fraction("43.2"), 18, 3]


def test_each_short_window_is_a_twelfth_of_its_long_window_and_every_window_is_named():
    assert all(p.long_s == 12 * p.short_s for p in POLICIES)
    assert [window_name(w) for w in WINDOWS] == ["5m", "30m", "1h", "6h", "3d"]


@pytest.mark.parametrize("days", [7, 28, 30, 90])
def test_at_the_threshold_the_long_window_spends_exactly_its_budget_share(days):
    # What the stack-wide alarms compare: the budget one long window spends at the measured rate.
    for policy in POLICIES:
        at_threshold = threshold(policy, days) * budget(OBJECTIVE)  # the error ratio of the threshold
        total = 3 * 10**9
        bad = at_threshold * total
        assert bad.denominator == 1
        spent = budget_spent(int(bad), total, OBJECTIVE, window_s=policy.long_s, window_days=days)
        assert spent == policy.budget_share


# ---- which policies fire ---------------------------------------------------------------------------------------


def test_the_fast_policy_fires_at_14_4_over_the_hour_only_while_the_last_5_minutes_burn_as_fast():
    hour = (10_000, 144)  # burn 14.4: at the threshold
    assert firing(counts(h1=hour, m5=(1_000, 15)), OBJECTIVE, 30) == ("fast",)  # 5 minutes at 15
    assert firing(counts(h1=hour, m5=(1_000, 14)), OBJECTIVE, 30) == ()  # 5 minutes at 14: stopped burning
    assert firing(counts(h1=hour, m5=(0, 0)), OBJECTIVE, 30) == ()  # no objects in the last 5 minutes
    assert firing(counts(h1=(10_000, 143), m5=(1_000, 1_000)), OBJECTIVE, 30) == ()  # the hour below 14.4
    assert firing(counts(h1=(1, 1), m5=(1, 1)), OBJECTIVE, 30) == ("fast",)  # one object, late: burn 1000


def test_a_single_late_object_among_many_does_not_fire():
    assert (
        firing(
            counts(m5=(2_000, 1), m30=(12_000, 1), h1=(24_000, 1), h6=(150_000, 1), d3=(1_800_000, 1)), OBJECTIVE, 30
        )
        == ()
    )


def test_the_medium_and_slow_policies_need_both_their_windows():
    six_hours = (100_000, 600)  # burn 6
    assert firing(counts(h6=six_hours, m30=(10_000, 60)), OBJECTIVE, 30) == ("medium",)
    assert firing(counts(h6=six_hours, m30=(10_000, 59)), OBJECTIVE, 30) == ()
    three_days = (1_000_000, 1_000)  # burn 1
    assert firing(counts(d3=three_days, h6=(100_000, 100)), OBJECTIVE, 30) == ("slow",)
    assert firing(counts(d3=three_days, h6=(100_000, 99)), OBJECTIVE, 30) == ()
    assert firing(counts(d3=(1_000_000, 999), h6=(100_000, 100_000)), OBJECTIVE, 30) == ()


def test_a_heavy_burn_fires_every_policy():
    burning = (1_000, 100)  # burn 100 in every window
    assert firing(counts(m5=burning, m30=burning, h1=burning, h6=burning, d3=burning), OBJECTIVE, 30) == (
        "fast",
        "medium",
        "slow",
    )


def test_a_longer_slo_window_raises_the_bar():
    hour = counts(h1=(10_000, 144), m5=(1_000, 15))
    assert firing(hour, OBJECTIVE, 30) == ("fast",)
    assert firing(hour, OBJECTIVE, 90) == ()  # 2% of a 90-day budget in an hour is a burn of 43.2


# ---- counts per window from 5-minute sums ----------------------------------------------------------------------------


def test_window_counts_sum_the_buckets_that_start_within_each_window():
    end = 1_000_000_200
    series = {
        "ObjectsReplicated": [(end - 300, 100.0), (end - 3600, 1000.0), (end - 3900, 5000.0), (end, 7.0)],
        "ObjectsReplicatedLate": [(end - 300, 3.0), (end - 259200, 2.0), (end - 259500, 9.0)],
        "ObjectsFailed": [(end - 600, 4.0)],
        "ChecksumMismatches": [(end - 1800, 1.0)],
        "ObjectsExpired": [(end - 21600, 5.0)],
    }
    by_window = window_counts(series, end_s=end)
    # A bucket starting at `end` is after the window; one starting a window's length before `end` is its first.
    assert by_window[M5] == Counts(total=100, bad=3)
    assert by_window[M30] == Counts(total=100 + 4 + 1, bad=3 + 4 + 1)
    assert by_window[H1] == Counts(total=1100 + 4 + 1, bad=3 + 4 + 1)
    assert by_window[H6] == Counts(total=6100 + 4 + 1 + 5, bad=3 + 4 + 1 + 5)
    assert by_window[D3] == Counts(total=6100 + 4 + 1 + 5, bad=3 + 2 + 4 + 1 + 5)


# ---- the message of a change -------------------------------------------------------------------------------------


def test_a_page_message_names_the_pair_the_policies_and_their_windows():
    by_window = counts(m5=(1_000, 20), h1=(10_000, 200), m30=(1_000, 1), h6=(10_000, 200), d3=(10_000, 200))
    subject, body = alert_message(
        "src",
        "dst",
        started=("fast",),
        stopped=(),
        now_firing=("fast", "slow"),
        counts=by_window,
        objective=OBJECTIVE,
        window_days=30,
    )
    assert subject == "CRR Monitor: SLO page: error budget burning src -> dst"
    message = json.loads(body)
    assert message["started"] == ["fast"] and message["firing"] == ["fast", "slow"] and message["stopped"] == []
    assert message["objective_percent"] == 99.9 and message["slo_window_days"] == 30
    assert message["policies"]["fast"] == {
        "severity": "page",
        "burn_rate_threshold": 14.4,
        "windows": {
            "1h": {"objects": 10_000, "bad": 200, "burn_rate": 20.0},
            "5m": {"objects": 1_000, "bad": 20, "burn_rate": 20.0},
        },
    }
    assert message["policies"]["slow"]["windows"]["3d"] == {"objects": 10_000, "bad": 200, "burn_rate": 20.0}


def test_a_ticket_starting_and_a_burn_ending_say_so_in_the_subject():
    ticket, _ = alert_message(
        "s", "d", started=("slow",), stopped=(), now_firing=("slow",), counts={}, objective=OBJECTIVE, window_days=30
    )
    assert ticket == "CRR Monitor: SLO ticket: error budget burning s -> d"
    eased, body = alert_message(
        "s", "d", started=(), stopped=("fast",), now_firing=("slow",), counts={}, objective=OBJECTIVE, window_days=30
    )
    assert eased == "CRR Monitor: SLO burn eased s -> d" and json.loads(body)["stopped"] == ["fast"]
    over, _ = alert_message(
        "s", "d", started=(), stopped=("slow",), now_firing=(), counts={}, objective=OBJECTIVE, window_days=30
    )
    assert over == "CRR Monitor: SLO burn over s -> d"
