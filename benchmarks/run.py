"""Run the pipeline benchmarks and append the figures to ``benchmarks/results/pipeline.md``.

Usage::

    python -m benchmarks.run                       # national size (200k members, 6 years)
    python -m benchmarks.run --size small
    python -m benchmarks.run --size national --steps simulate snapshot
    python -m benchmarks.run --size national --steps train score push monthly

The other benchmarks run on their own: ``benchmarks.bench_quality`` (model quality against the
simulator's oracle), ``benchmarks.bench_realdata`` and ``benchmarks.bench_realdata_ceiling``
(real data), ``benchmarks.bench_outreach`` (the outreach measurement against the simulator's
true effects), ``benchmarks.bench_features``, ``bench_network``, ``bench_push``, ``bench_duckdb``.

Each step runs in a fresh interpreter so its peak memory is its own. Targets are printed beside
the figures as ratios (figure / target; below 1.0 meets the target).
"""

from __future__ import annotations

import argparse
import os
import sys

from benchmarks import federation
from benchmarks.harness import append_results, run_step
from benchmarks.pipeline import SIZES, STEPS

__all__ = ["TARGETS_S", "TARGETS_RSS_MB", "GUARD_RSS_MB", "STEP_MODULES", "main"]

#: Step name -> module whose ``main(step, size)`` runs it.
STEP_MODULES = {
    **{name: "benchmarks.pipeline" for name in STEPS},
    **{name: "benchmarks.federation" for name in federation.STEPS},
}

#: Wall-time targets in seconds per (size, step), from the project's performance goals.
TARGETS_S = {
    ("national", "simulate"): 60.0,
    ("national", "snapshot"): 15.0,
    ("national", "frame"): 120.0,
    ("national", "train"): 180.0,
    ("national", "score"): 20.0,
    ("national", "monthly"): 360.0,
    ("federation", "monthly"): 3600.0,
}
#: Peak-memory targets in MB per size (every step).
TARGETS_RSS_MB = {"national": 4096.0, "federation": 20480.0}
#: Default memory guard in MB: a step above it is killed (the machine is shared; a smaller
#: size's step above its own target is still measured and shows an RSS ratio above 1).
GUARD_RSS_MB = 20480.0


def _fmt(value) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.4g}"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point.

    A step stopped by the memory guard (or failing) is recorded as such with what it used, and
    the steps after it are not run (they need its output); the figures gathered so far are
    still written.
    """
    parser = argparse.ArgumentParser(description="corecast pipeline benchmarks")
    parser.add_argument("--size", choices=sorted(SIZES), default="national")
    parser.add_argument("--steps", nargs="+", choices=list(STEP_MODULES), default=list(STEPS))
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--max-rss-mb", type=float, default=None,
        help=f"kill a step whose resident memory exceeds this (default {GUARD_RSS_MB:,.0f}; "
        "0 = no guard)",
    )
    args = parser.parse_args(argv)
    rss_target = TARGETS_RSS_MB.get(args.size)
    guard = GUARD_RSS_MB if args.max_rss_mb is None else (args.max_rss_mb or None)

    rows = []
    status = 0
    for step in args.steps:
        load_before = os.getloadavg()[0]
        try:
            result = run_step(
                step, STEP_MODULES[step], {"step": step, "size": args.size},
                max_rss_mb=guard,
            )
        except RuntimeError as exc:
            load = f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"
            reason = str(exc).splitlines()[0]
            rows.append([step, "", "", "", "", "", "", load, reason.replace("|", "/")])
            print(" | ".join(rows[-1]), flush=True)
            print(str(exc), file=sys.stderr)
            status = 1
            break
        load = f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"
        core = result.info.get("core_s", result.seconds)
        target = TARGETS_S.get((args.size, step))
        ratio = f"{core / target:.2f}" if target else ""
        extra = ", ".join(f"{k}={_fmt(v)}" for k, v in result.info.items() if k != "core_s")
        rss_ratio = f"{result.peak_rss_mb / rss_target:.2f}" if rss_target else ""
        rows.append([step, f"{core:.1f}", f"{result.seconds:.1f}", f"{result.peak_rss_mb:,.0f}",
                     f"{target:.0f}" if target else "", ratio, rss_ratio, load, extra])
        print(" | ".join(rows[-1]), flush=True)
    if not args.no_write and rows:
        path = append_results(
            "pipeline.md",
            f"Pipeline, size {args.size} ({SIZES[args.size]['members']:,} members, "
            f"{SIZES[args.size]['years']:g} years)",
            ["step", "operation s", "process s", "peak RSS MB", "target s", "ratio",
             "RSS ratio", "load 1-min", "details"],
            rows,
            notes=["operation s: the step's own work (inputs loaded before the clock starts); "
                   "process s: the child's whole main(); ratio = operation / target; "
                   "RSS ratio = peak RSS / the size's memory target; load 1-min: the "
                   "machine's 1-minute load average when the step started / ended (2 cores "
                   "shared with other work, so figures above ~2 mean contended cores); "
                   f"memory guard: {f'{guard:,.0f} MB' if guard else 'none'}."],
        )
        print(f"appended to {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
