"""`make demo` in small: 200 objects with every fault on, through the same command and code path.

The demo runs as a subprocess (it starts moto server on 127.0.0.1 and sets the process's AWS
environment), exactly as `make demo ARGS=...` runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMALL = [
    "--objects", "200",
    "--load-seconds", "4",
    "--rpo", "5",
    "--give-up", "40",
    "--outage", "demo-dst-euw1:1-15",
    "--backlog", "0.3:8",
    "--failures", "0.05",
    "--lost-events", "0.05",
    "--duplicates", "0.05",
    "--reorder", "0.05",
    "--sse-kms", "0.05",
    "--multipart", "0.05",
    "--lifecycle-deletes", "0.08",
    "--user-deletes", "0.05",
    "--source-deleted", "0.05",
    "--out-of-scope", "0.05",
    "--corrupt", "0.03",
    "--sse-c", "0.05",
    "--direct-writes", "0.04",
    "--cross-account", "0.05",
    "--two-way-deletes", "0.15",
    "--dest-lifecycle-deletes", "0.05",
    "--notifications", "0.2",
    "--ttl-expire",
    "--seed", "11",
]  # fmt: skip


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
            *SMALL,
            "--html",
            str(out / "report.html"),
            "--log",
            str(out / "lambda.log"),
            "--json",
            str(out / "report.json"),
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
    assert report["objects_written"] == 200
    assert report["disagreements"] == []
    assert report["compared"] > 250 and report["agreed"] == report["compared"]
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
    assert small_demo.stderr.count("written ") >= 3 and "written 200/200" in small_demo.stderr
    assert (small_demo.out / "report.html").stat().st_size > 2000
