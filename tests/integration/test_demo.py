"""`make demo` as it runs by default (its workload has every fault kind), through the same command and code path.

The demo runs as a subprocess (it starts moto server on 127.0.0.1 and sets the process's AWS
environment), exactly as `make demo ARGS=...` runs it: with its default workload, plus the TTL expiry
it can emulate at the end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crrmon_local.demo import parser

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RUN = ["--ttl-expire"]
# How long `make demo` takes is measured (docs/demo.md), never asserted: a shared machine's load would
# make a timed test fail for no fault of the code. The test checks what the demo announces instead.
OBJECTS = parser().get_default("objects")


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'layers' / 'common'}{os.pathsep}{ROOT / 'src'}"}
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        env.pop(name, None)
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "crrmon_local.demo",
            *DEFAULT_RUN,
            "--html",
            str(out / "report.html"),
            "--log",
            str(out / "lambda.log"),
            "--json",
            str(out / "report.json"),
            "--replication-report",
            str(out / "replication-report.html"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    result.duration = time.monotonic() - started
    result.out = out
    return result


@pytest.mark.slow
def test_small_demo_agrees_with_ground_truth_on_everything_it_could_see(small_demo):
    assert small_demo.returncode == 0, small_demo.stdout + small_demo.stderr[-3000:]
    report = json.loads((small_demo.out / "report.json").read_text())
    assert report["objects_written"] == OBJECTS  # the default workload
    assert report["disagreements"] == []
    assert report["compared"] > 200 and report["agreed"] == report["compared"]
    # every kind of verdict the faults call for was given, and given right
    for verdict in ("COMPLETED", "FAILED", "MISMATCH", "SOURCE_DELETED", "NOT_IN_SCOPE", "NONE"):
        score = report["scores"][verdict]
        assert score["truth"] > 0 and score["precision"] == score["recall"] == 1.0, (verdict, score)
    assert report["events"]["lost"] > 0 and report["events"]["duplicated"] > 0
    # every fault kind happened, among them what real S3 does that a naive monitor misreads
    for fault in (
        "failure", "outage", "corrupt", "source-deleted", "tag-filter", "sse-kms", "multipart",
        "lifecycle-delete-marker", "delete-marker",
        "sse-c", "sse-c-replica-events-lost", "direct-write", "lifecycle-in-destination", "cross-account",
        "two-way-delete-marker", "two-way-echo",
    ):  # fmt: skip
        assert report["faults"].get(fault, 0) > 0, (fault, report["faults"])
    # a backlog in the event path held events past their versions' deadlines
    assert report["events"]["backlogged"] > 0 and report["backlogged"] > 0
    # lateness by S3's times: the late replicas (the outage) missed the RPO, the others did not
    assert report["missed_rpo_check"]["checked"] > 100 and report["missed_rpo_check"]["late"] > 0
    assert report["ttl_removed"] > 0
    # the outage made replicas late: OVERDUE alerts went out, and the late ones still completed
    outage = report["pairs"]["demo-src-use1>demo-dst-euw1"]
    assert outage["alerts"]["objects"].get("OVERDUE", 0) > 0 and outage["missed_rpo"] > 0
    assert outage["overdue_peak"] > 0 and outage["latency"]["max"] > 5
    assert (
        report["alert_messages"] > 0
        and report["archive_lines"] >= report["compared"] - report["scores"]["NONE"]["truth"]
    )


@pytest.mark.slow
@pytest.mark.slow
def test_the_default_demo_says_how_long_it_takes_and_takes_about_that(small_demo):
    assert small_demo.returncode == 0, small_demo.stdout + small_demo.stderr[-3000:]
    report = json.loads((small_demo.out / "report.json").read_text())
    first = small_demo.stderr.splitlines()[0]
    announced = int(re.search(r"about (\d+) s on two cores", first).group(1))
    assert announced == report["expected_seconds"] <= 60
    assert report["total_seconds"] > 0
    # its steps, each on its own line, the report's last line with the time it took against the announced
    steps = ("[1/4] set-up", f"[2/4] workload: {OBJECTS} object versions", "[3/4] the last verdicts", "[4/4] report")
    for step in steps:
        assert step in small_demo.stderr
    assert f"(announced: about {announced}s)" in small_demo.stdout


@pytest.mark.slow
def test_small_demo_prints_progress_and_a_section_per_pair(small_demo):
    text = small_demo.stdout
    for pair in (
        "demo-src-use1 -> demo-dst-usw2",
        "demo-src-use1 -> demo-dst-euw1",
        "demo-bidi-a-use1 -> demo-bidi-b-usw2",
        "demo-bidi-b-usw2 -> demo-bidi-a-use1",
        "demo-tagged-use1 -> demo-dst-usw2",
        "demo-xacct-src-use1 -> demo-backup-xacct-usw2",
    ):
        assert f"pair {pair}\n  verdicts:" in text
    for line in (
        "latency:       p50",
        "overdue:",
        "alerts sent:",
        "archive lines:",
        "precision",
        "agreement: ",
        "faults (object versions x destinations):",
        "held in the backlog",
        "two-way-echo ",
    ):
        assert line in text
    assert "no disagreements" in text and "wall time" in text and "peak memory" in text
    # the live progress line, redrawn in place ('\r', read back as a newline by text mode)
    assert small_demo.stderr.count("written ") >= 3 and f"written {OBJECTS}/{OBJECTS}" in small_demo.stderr
    # replicas landed and verdicts reached, each of those expected: at the end all of them
    last = small_demo.stderr.split("[4/4]")[0].strip().splitlines()[-1]
    replicas = re.search(r"replicas (\d+)/(\d+)", last).groups()
    verdicts = re.search(r"verdicts (\d+)/(\d+)", last).groups()
    assert replicas[0] == replicas[1] and verdicts[0] == verdicts[1] and int(verdicts[1]) > 200, last
    assert (small_demo.out / "report.html").stat().st_size > 2000


@pytest.mark.slow
def test_small_demo_writes_the_crrmon_report_page_of_its_archive(small_demo):
    """The page `crrmon report` makes of the run's archive: every archived verdict that counts, per pair
    and RPO class, as the demo's own report counts them."""
    page = (small_demo.out / "replication-report.html").read_text(encoding="utf-8")
    assert "<h1>Replication report" in page and "critical" in page
    data = json.loads((small_demo.out / "replication-report.json").read_text(encoding="utf-8"))
    demo = json.loads((small_demo.out / "report.json").read_text(encoding="utf-8"))
    counted = ("COMPLETED", "FAILED", "MISMATCH", "EXPIRED")
    assert data["lines"]["outside_window"] == data["lines"]["without_time"] == 0  # the window is the whole run
    known = [pair for pair in data["pairs"] if pair["pair"] in demo["pairs"]]  # not "unknown>...": no source seen
    for pair in known:
        verdicts = demo["pairs"][pair["pair"]]["verdicts"]
        assert pair["objects"] == sum(verdicts.get(status, 0) for status in counted), pair["pair"]
    assert len(known) == len(demo["pairs"]) and data["total"]["objects"] > 200
    classes = {c["rpo_class"] for pair in data["pairs"] for c in pair["classes"]}
    assert {"critical", "multipart", "default"} <= classes
    assert f"Replication report (crrmon report): {small_demo.out / 'replication-report.html'}" in small_demo.stdout
