"""The benchmark's section 4: import times with tracing off and on, and replacing the section alone."""

from __future__ import annotations

from crrmon_local.bench import report

COLD = {
    "boto3 + client": [0.250, 0.260, 0.270],
    "ingest": [0.220, 0.230, 0.240],
    "ingest (tracing on)": [0.500, 0.510, 0.520],
    "matcher": [0.210, 0.220, 0.230],
    "matcher (tracing on)": [0.490, 0.500, 0.510],
    "sweeper": [0.215, 0.225, 0.235],
    "sweeper (tracing on)": [0.495, 0.505, 0.515],
}
MEMORY = {"ingest": [89.0, 90.0], "matcher": [80.0, 81.0], "sweeper": [85.0, 85.0]}

RESULTS = """# CRR Monitor: benchmark results

## Summary

| figure | measured | target | ratio / status |
|---|---|---|---|
| ingest CPU per event | 774 µs (1,293/s per core) | — | — |
| handler import vs boto3 + client (worst of three) | 229 ms vs 261 ms | ≤ 1.5x | 0.88x; met |
| peak memory (worst handler, worst of 4 processes) | 89 MB | ≤ 128 MB | 70%; met |
| sweeper, 100,000 due timers, decided | 43,686 items/s | HEADs ≤ 20/s + burst | met |

## 3. AWS usage

unchanged

## 4. Cold start and peak memory

old text

## 5. The sweeper

unchanged too
"""


def test_section_shows_tracing_off_against_the_target_and_tracing_on_beside_it():
    text = "\n".join(report.cold_start_section(COLD, MEMORY, 73.0))
    assert "| functions/ingest/app.py | 230 ms (n/a) | 0.88 | met |" in text
    assert "| functions/ingest/app.py, tracing on | 510 ms (n/a) | 1.96 | — (tracing off is the default) |" in text
    rows = report.cold_start_summary(COLD, MEMORY)
    assert rows[0] == "| handler import vs boto3 + client (worst of three) | 230 ms vs 260 ms | ≤ 1.5x | 0.88x; met |"
    assert rows[1] == (
        "| handler import with tracing on (worst of three) | 510 ms vs 260 ms | — | 1.96x; +280 ms over tracing off |"
    )


def test_splice_replaces_section_4_and_its_summary_rows_only():
    section = report.cold_start_section(COLD, MEMORY, 73.0)
    rows = report.cold_start_summary(COLD, MEMORY)
    text = report.splice_cold_start(RESULTS, section, rows, "Measured again alone.")
    assert "old text" not in text
    assert "## 4. Cold start and peak memory\n\nMeasured again alone.\n\nImport time" in text
    assert "## 3. AWS usage\n\nunchanged\n\n## 4." in text and text.endswith("## 5. The sweeper\n\nunchanged too\n")
    summary = text.split("## 3.")[0]
    assert "229 ms vs 261 ms" not in summary
    lines = [line for line in summary.splitlines() if line.startswith("|")]
    assert lines[2:] == [
        "| ingest CPU per event | 774 µs (1,293/s per core) | — | — |",
        *rows,
        "| sweeper, 100,000 due timers, decided | 43,686 items/s | HEADs ≤ 20/s + burst | met |",
    ]
