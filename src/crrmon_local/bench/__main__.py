"""`python -m crrmon_local.bench [--quick] [--output bench/results.md]`: run every section, write the results."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from crrmon_local.bench import report, scale, scale_report, speed, usage

ROOT = Path(__file__).resolve().parents[3]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crrmon_local.bench", description=__doc__)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results.md")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and 10,000 timers: a smoke run")
    parser.add_argument(
        "--only",
        choices=["cold-start", "scale"],
        help="measure section 4 (cold-start) or 8 (scale) alone and replace it (and its summary rows) in the "
        "existing output file",
    )
    args = parser.parse_args(argv)
    rounds, samples, timers, objects = (5, 3, 10_000, 8) if args.quick else (30, 9, 100_000, 40)
    # Reconciliation: versions listed per pass (all tracked; 1% untracked; all older than the retention).
    versions, untracked, old = (4_000, 2_000, 2_000) if args.quick else (20_000, 3_000, 3_000)

    started = time.perf_counter()
    load_at_start = os.getloadavg()[0]

    def step(name: str):
        print(f"[{time.perf_counter() - started:6.1f}s] {name}", file=sys.stderr, flush=True)

    if args.only == "cold-start":
        step("4. cold start and peak memory, fresh processes")
        load = os.getloadavg()[0]
        cold = speed.cold_start(samples)
        memory = speed.peak_memory(samples=max(2, samples // 2))
        machine = f"{platform.machine()}, {report.cpu_count()} CPUs, Python {platform.python_version()}"
        note = (
            f"Measured again alone (`make bench ARGS='--only cold-start'`) on {time.strftime('%Y-%m-%d')} "
            f"({machine}, load average {load:.1f} when it started); the other sections are from the run named "
            "at the top."
        )
        text = report.splice_cold_start(
            args.output.read_text(),
            report.cold_start_section(cold, memory, speed.baseline_memory()),
            report.cold_start_summary(cold, memory),
            note,
        )
        args.output.write_text(text)
        step(f"rewrote section 4 of {args.output}")
        return 0
    if args.only == "scale":
        step("8. scale simulation: the real domain code under load, an hour of simulated time per rate")
        scale_started = time.perf_counter()
        runs = scale.run(args.quick)
        machine = f"{platform.machine()}, {report.cpu_count()} CPUs, Python {platform.python_version()}"
        note = (
            f"Measured again alone (`make bench ARGS='--only scale'`) on {time.strftime('%Y-%m-%d')} ({machine})"
            + (" with `--quick` (a smaller sample: a smoke run, not the committed figures)" if args.quick else "")
            + "; the other sections are from the run named at the top."
        )
        section, rows = scale_report.scale_section(runs, time.perf_counter() - scale_started)
        args.output.write_text(scale_report.splice(args.output.read_text(), section, rows, note))
        step(f"rewrote section 8 of {args.output}")
        return 0
    step("1. CPU per event, AWS answered at botocore's HTTP layer")
    cpu = speed.cpu_per_event(rounds)
    small = speed.cpu_small_batches(rounds)
    step("2. one batch with a 10 ms round trip per AWS call")
    overlap = speed.overlap(max(5, rounds // 3))
    step("3. AWS usage per object, end to end on moto")
    scenarios = usage.run_scenarios(objects)
    step("4. cold start and peak memory, fresh processes")
    cold = speed.cold_start(samples)
    memory = speed.peak_memory(samples=max(2, samples // 2))
    baseline_memory = speed.baseline_memory()
    step(f"5. the sweeper against {timers:,} due timers, stubbed clients")
    sweeps = [speed.sweep_at_scale(timers, "decided"), speed.sweep_at_scale(timers, "outage")]
    step(f"7. the scheduled reconciliation, passes over {versions:,} versions, AWS answered at botocore's HTTP layer")
    passes = max(2, samples // 3)
    reconcile = speed.reconcile(
        versions, passes, untracked_versions=untracked, untracked_rounds=passes, old_versions=old
    )
    inventory_scan = speed.inventory_scan(100_000 if args.quick else 1_000_000, passes)
    inventory_skim = speed.inventory_scan(100_000 if args.quick else 1_000_000, passes, day_share=0.001)
    step("8. scale simulation: the real domain code under load, an hour of simulated time per rate")
    scale_started = time.perf_counter()
    scale_runs = scale.run(args.quick)
    scale_seconds = time.perf_counter() - scale_started
    elapsed = time.perf_counter() - started
    step("6. dollars per million objects (and versions reconciled); writing the report")
    text = report.render(
        cpu=cpu,
        overlap=overlap,
        scenarios=scenarios,
        cold=cold,
        memory=memory,
        baseline_memory=baseline_memory,
        sweeps=sweeps,
        run_seconds=elapsed,
        machine=(
            f"{platform.machine()}, {report.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"load average {load_at_start:.1f} when it started"
        ),
        quick=args.quick,
        reconcile=reconcile,
        small=small,
        scale=(scale_runs, scale_seconds),
        inventory_scan=inventory_scan,
        inventory_skim=inventory_skim,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    step(f"wrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
