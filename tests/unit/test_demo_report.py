"""The demo's own words: its report's summary lines, its announced duration, and `--large`."""

from __future__ import annotations

from crrmon_local import demo
from tests.integration.test_report_render import report as html_report


def text_report(pair_changes: dict) -> dict:
    data = html_report()
    for pair in data["pairs"].values():
        pair.update(pair_changes)
    return {
        **data,
        "settings": {"rpo": 8, "give_up": 40, "delay": "lognormal:1.0,0.6", "outage": "none", "max_seconds": 600},
        "events": {**data["events"], "backlogged": 0},
        "faults": {"normal": 120},
        "backlogged": 0,
        "backlog_window_s": None,
        "missed_rpo_check": {"checked": 100, "late": 1},
        "timed_out": False,
    }


def test_a_replica_late_but_never_overdue_is_said_so_without_contradiction():
    late = {"missed_rpo": 1, "late_replicas": 1, "overdue_peak": 0, "ever_overdue": 0, "oldest_overdue_s": 0.0}
    text = demo.render_text(text_report(late))
    line = next(x for x in text.splitlines() if x.strip().startswith("overdue:"))
    assert line.endswith(
        "1 replica landed after the RPO: late, not overdue at a check (none was missing when a check came); "
        "none OVERDUE"
    )
    assert "at most 0" not in text and "oldest overdue 0.0s" not in text


def test_late_and_overdue_items_are_counted_apart():
    late = {"missed_rpo": 5, "late_replicas": 4, "overdue_peak": 2, "ever_overdue": 3, "oldest_overdue_s": 6.5}
    line = demo.overdue_line(late)
    assert line == (
        "4 replicas landed after the RPO; 1 verdict past the RPO without a replica; "
        "3 items OVERDUE at a check (at most 2 at once, the oldest for 6.5 s)"
    )
    failed_late = {"missed_rpo": 1, "late_replicas": 0, "overdue_peak": 0, "ever_overdue": 0, "oldest_overdue_s": 0}
    assert demo.overdue_line(failed_late) == "1 verdict past the RPO without a replica; none OVERDUE"
    on_time = {"missed_rpo": 0, "late_replicas": 0, "overdue_peak": 0, "ever_overdue": 0, "oldest_overdue_s": 0.0}
    assert demo.overdue_line(on_time) == "no replica landed after the RPO; none OVERDUE"


def test_the_default_run_is_announced_at_under_a_minute():
    args = demo.parser().parse_args([])
    demo.apply_large(args, [])
    assert demo.expected_seconds(args) <= 60
    said = demo.announcement(args)
    assert f"about {demo.expected_seconds(args):.0f} s" in said and "--large: 2,000 versions" in said


def test_large_takes_the_larger_values_unless_a_flag_says_otherwise():
    argv = ["--large", "--give-up", "60"]
    args = demo.parser().parse_args(argv)
    demo.apply_large(args, argv)
    assert args.objects == 2000 and args.load_seconds == 20.0 and args.outage.endswith(":3-30")
    assert args.give_up == 60  # given on the command line
    assert demo.expected_seconds(args) > 120
    assert "the large run" in demo.announcement(args)


def test_the_demo_counts_overdue_items_by_pair_whatever_shard_or_none_their_index_key_names():
    def overdue(pk: str, ovd_pair: str) -> dict:
        image = {"pk": {"S": pk}, "dest": {"S": "b"}, "status": {"S": "OVERDUE"}, "first_seen": {"N": "1000"}}
        return {"eventName": "MODIFY", "dynamodb": {"NewImage": {**image, "ovd_pair": {"S": ovd_pair}}}}

    tally = demo.Tally()
    tally.offer([overdue("v1#k", "a>b#7"), overdue("v2#k", "a>b#30"), overdue("v3#k", "a>b")])  # "a>b": unsharded
    assert {pair for pair, _ in tally.overdue.values()} == {"a>b"}
    assert dict(tally.ever_overdue) == {"a>b": {("v1#k", "b"), ("v2#k", "b"), ("v3#k", "b")}}


def test_lateness_is_judged_by_each_lines_class_and_the_class_by_the_policy():
    from types import SimpleNamespace

    from crrmon.rpo import parse_policy

    classes = parse_policy("bulk:prefix=data/001/,rpo=12")
    truths, lines = {}, []
    for n, (key, took, rpo_class, rpo_s, missed) in enumerate(
        [
            ("data/001/on-time", 10.0, "bulk", 12, False),  # late by the default RPO (8 s), not by its class's
            ("data/000/late", 11.0, "default", 8, True),
            ("data/001/wrong-class", 3.0, "default", 8, False),  # the policy puts it in bulk
        ]
    ):
        truths[("v", key, "dst")] = SimpleNamespace(
            landed_at=100.0 + took, created_at=100.0, verdict="COMPLETED", source="src", destination="dst",
            key=key, version_id="v", fault="normal",
        )  # fmt: skip
        lines.append(
            {"record_id": str(n), "version_id": "v", "key": key, "destination_bucket": "dst", "status": "COMPLETED",
             "latency_ms": int(took * 1000), "missed_rpo": missed, "rpo_class": rpo_class, "rpo_seconds": rpo_s,
             "size": 100, "replica_size": 100}
        )  # fmt: skip
    check = demo._check_missed_rpo(lines, truths, classes=classes, rpo=8)
    assert (check["checked"], check["late"]) == (2, 1)
    assert check["disagreements"] == [
        {
            "key": "data/001/wrong-class",
            "destination": "dst",
            "monitor_rpo_class": ["default", 8],
            "policy_rpo_class": [("bulk", 12)],
        }
    ]
    per_class = demo._class_report(lines, classes, rpo=8)
    assert per_class["bulk"] == {"rpo": 12, "lines": 1, "completed": 1, "missed_rpo": 0, "p50": 10.0, "max": 10.0}
    assert per_class["default"]["lines"] == 2 and per_class["default"]["missed_rpo"] == 1


def test_the_report_has_a_line_per_rpo_class_when_there_is_a_policy():
    data = text_report({})
    data["settings"]["rpo_classes"] = "bulk:prefix=data/001/,rpo=12"
    data["rpo_classes"] = {
        "bulk": {"rpo": 12, "lines": 40, "completed": 38, "missed_rpo": 2, "p50": 1.0, "max": 13.0},
        "default": {"rpo": 8, "lines": 90, "completed": 80, "missed_rpo": 5, "p50": 1.0, "max": 9.0},
    }
    text = demo.render_text(data)
    assert "RPO classes (bulk:prefix=data/001/,rpo=12; the others: default, RPO 8s)" in text
    assert "  bulk       RPO   12s    40 verdicts,   38 COMPLETED (p50 1.00s, max 13.00s), 2 missed the RPO" in text
    from crrmon_local.report_html import render_html

    assert "<h2>RPO classes</h2>" in render_html(data) and "RPO classes" not in demo.render_text(text_report({}))
