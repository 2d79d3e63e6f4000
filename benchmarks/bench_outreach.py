"""Benchmark: does the outreach measurement recover the simulator's true effects?

For each seed, simulates a community with outreach (``corecast simulate --outreach``: managers
flag members from the simulator's truth every 4 weeks after a 26-week warm-up and call them,
holding back ``--holdout`` of them), writes it to a folder, reads it back as any data source
(the contract tables, the assignment log), measures the loop with
:func:`serving.measure.measure_outreach` the day after the data ends, and compares:

- **retention**: the measured uplift of the share still active after 90 days (contacted minus
  held, Newcombe 95% interval) against the true uplift on the very members measured: the mean
  of ``retention_effect * p_disengages_untreated`` over them (``outreach_truth.parquet``);
- **readiness acceptance**: the share of contacted candidates who accepted (Wilson 95%
  interval) against the mean true acceptance probability of those candidates;
- **retention calls accepted**: the acceptance rate of retention calls against
  ``retention_effect`` (the share of calls that re-engage).

Each line says whether the truth lies within the interval; with 95% intervals about one line
in twenty may miss by chance. The holdout share is 0.3 by default (corecast's default is 0.1)
so that the held group is large enough for an informative interval.

Usage::

    python -m benchmarks.bench_outreach                         # 20,000 members, 2 years, seeds 0-4
    python -m benchmarks.bench_outreach --members 3000 --seeds 0 --no-write

Figures are appended to ``benchmarks/results/outreach.md`` (unless ``--no-write``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

__all__ = ["run_case", "report_blocks", "main"]

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "outreach.md"


def run_case(members: int, years: float, seed: int, holdout: float, folder: Path) -> dict:
    """Simulate, write, read back and measure one community; returns its figures."""
    from features.contract import load_tables
    from serving.measure import measure_outreach
    from serving.outreach import read_assignments
    from simulator.community import SimulationConfig
    from simulator.model import truth_dates_that_fit
    from simulator.outreach import (
        OutreachSimConfig,
        simulate_with_outreach,
        write_with_outreach,
    )

    config = SimulationConfig(members=members, years=years, seed=seed,
                              truth_dates=truth_dates_that_fit(years))
    sim = simulate_with_outreach(config, OutreachSimConfig(holdout_share=holdout))
    write_with_outreach(sim, folder)
    tables = load_tables(str(folder))
    as_of = tables.last_observed.normalize() + pd.Timedelta(days=1)
    measured = measure_outreach(read_assignments(folder / "assignments"), tables, as_of)
    truth = pd.read_parquet(folder / "outreach_truth.parquet")
    summary = json.loads((folder / "simulation.json").read_text(encoding="utf-8"))["outreach"]
    return {"seed": seed, "members": members, "years": years, "holdout": holdout,
            "measured": measured, "truth": truth, "summary": summary}


def _true_mean(members: pd.DataFrame, truth: pd.DataFrame, column: str) -> float:
    """Mean of a truth column over the measured (member, cycle) pairs."""
    keys = ["member_id", "cycle"]
    joined = members[keys].astype({"member_id": "string"}).merge(
        truth[[*keys, column]].astype({"member_id": "string"}), on=keys, how="left")
    return float(joined[column].mean())


def _within(value: float, low: float, high: float) -> str:
    return "yes" if low <= value <= high else "NO"


def _rows(case: dict) -> list[list[str]]:
    m, truth = case["measured"], case["truth"]
    r = m.retention
    true_up = _true_mean(m.retention_members, truth, "true_uplift")
    contacted = m.readiness_members[m.readiness_members["action"] == "contact"]
    acc = m.readiness_acceptance
    true_acc = _true_mean(contacted, truth, "p_accept")
    calls = m.acceptance.set_index(["by", "group"]).loc[("purpose", "retention")]
    effect = case["summary"]["settings"]["retention_effect"]
    seed = str(case["seed"])
    return [
        [seed, "retention uplift (still active after 90 d)", f"{r.contacted.n} / {r.held.n}",
         f"{r.uplift:+.3f} [{r.low:+.3f}, {r.high:+.3f}]", f"{true_up:+.3f}",
         _within(true_up, r.low, r.high)],
        [seed, "readiness: contacted who accepted", f"{acc.n} / -",
         f"{acc.rate:.3f} [{acc.low:.3f}, {acc.high:.3f}]", f"{true_acc:.3f}",
         _within(true_acc, acc.low, acc.high)],
        [seed, "retention calls accepted", f"{int(calls['decided'])} / -",
         f"{calls['rate']:.3f} [{calls['low']:.3f}, {calls['high']:.3f}]", f"{effect:.3f}",
         _within(effect, calls["low"], calls["high"])],
    ]


def report_blocks(cases: list[dict]) -> list[str]:
    """The Markdown blocks of the results: the comparison table and a verdict."""
    from benchmarks.bench_realdata import markdown_table

    rows = [row for case in cases for row in _rows(case)]
    header = ["seed", "figure", "contacted / held", "measured [95% interval]", "truth",
              "truth within"]
    first = cases[0]
    intro = (f"{first['members']:,} members over {first['years']:g} years, holdout share "
             f"{first['holdout']}, {len(cases)} seed(s); measured the day after the data ends.")
    misses = sum(row[-1] == "NO" for row in rows)
    verdict = (f"The truth lies within the measured interval in {len(rows) - misses} of "
               f"{len(rows)} figures (95% intervals: about one miss in twenty is expected).")
    return [intro, markdown_table(header, rows), verdict]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring); returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--years", type=float, default=2.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--holdout", type=float, default=0.3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results file (appended)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    cases = []
    with tempfile.TemporaryDirectory(prefix="bench-outreach-") as tmp:
        for seed in args.seeds:
            print(f"seed {seed} ...", flush=True)
            cases.append(run_case(args.members, args.years, seed, args.holdout,
                                  Path(tmp) / f"seed{seed}"))
    blocks = report_blocks(cases)
    if args.no_write:
        print("\n\n".join(blocks))
        return 0
    from benchmarks.bench_realdata import publish

    publish(args.out, "benchmarks.bench_outreach", argv, blocks, time.perf_counter() - t0,
            title="Outreach: measured against true effects")
    return 0


if __name__ == "__main__":
    sys.exit(main())
