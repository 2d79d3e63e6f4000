"""Co-participation network on big events: time and peak memory stay bounded.

A synthetic community of ``members`` members gets one year of small events (8-30 attendees)
plus ``big_events`` events of ``attendees`` attendees each (e.g. 500 or 2,000). Each case runs
:func:`features.network.build_network_features` in a fresh interpreter, so its peak RSS is its
own. The pair products are computed in row blocks bounded by ``FeatureConfig.block_pairs``
member pairs, so memory grows with the block budget and the output, not with the square of an
event's size times the number of events.

Run ``python -m benchmarks.bench_network``; results are appended to
``benchmarks/results/network.md``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd

from benchmarks.harness import append_results, run_step

__all__ = ["CASES", "build_event_tables", "measure", "main"]

#: (big events, attendees each) per case; the first is the reference without big events.
CASES = [(0, 0), (20, 500), (5, 2000), (20, 2000)]


def build_event_tables(members: int, big_events: int, attendees: int, seed: int = 0):
    """A :class:`features.tables.Tables` with small events and ``big_events`` big ones."""
    from features.tables import Tables

    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2024-01-01")
    ids = np.array([f"m{i:07d}" for i in range(members)], dtype=object)
    chapters = np.array([f"c{i:03d}" for i in range(50)], dtype=object)
    member_df = pd.DataFrame(
        {
            "member_id": pd.Series(ids, dtype="str"),
            "joined_at": t0 - pd.to_timedelta(rng.integers(1, 1000, members), unit="D"),
            "chapter_id": pd.Series(chapters[rng.integers(0, 50, members)], dtype="str"),
            "email": pd.Series([f"{x}@corecast.invalid" for x in ids], dtype="str"),
            "consent": np.ones(members, dtype=bool),
        }
    )
    n_small = members // 4
    sizes = rng.integers(8, 31, n_small)
    who = [rng.choice(members, s, replace=False) for s in sizes]
    ev = np.repeat(np.arange(n_small), sizes)
    mem = np.concatenate(who)
    day = np.repeat(rng.uniform(0, 364, n_small), sizes)
    if big_events:
        big_who = np.concatenate(
            [rng.choice(members, attendees, replace=False) for _ in range(big_events)]
        )
        mem = np.concatenate([mem, big_who])
        ev = np.concatenate([ev, n_small + np.repeat(np.arange(big_events), attendees)])
        day = np.concatenate([day, np.repeat(rng.uniform(0, 364, big_events), attendees)])
    order = np.argsort(day, kind="stable")
    n = len(order)
    activities = pd.DataFrame(
        {
            "member_id": pd.Series(ids[mem[order]], dtype="str"),
            "occurred_at": t0 + pd.to_timedelta(day[order], unit="D"),
            "activity_type": pd.Series(["attend"] * n, dtype="str"),
            "event_id": pd.Series([f"e{x}" for x in ev[order]], dtype="str"),
            "chapter_id": pd.Series(chapters[rng.integers(0, 50, n)], dtype="str"),
            "role": pd.Series(["attendee"] * n, dtype="str"),
            "counterpart_id": pd.Series([None] * n, dtype="str"),
            "weight": np.ones(n),
        }
    )
    return Tables(members=member_df, activities=activities, source="<bench-network>")


def measure(members: int, big_events: int, attendees: int) -> dict:
    """Child entry: build the tables, then time the network family alone."""
    import resource
    import tracemalloc

    from features.encoding import encode_tables
    from features.feature_config import FeatureConfig
    from features.network import build_network_features

    tables = build_event_tables(members, big_events, attendees)
    encode_tables(tables)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    as_of = pd.Timestamp("2025-01-01")
    tracemalloc.start()
    t0 = time.perf_counter()
    f = build_network_features(tables, as_of, FeatureConfig())
    secs = time.perf_counter() - t0
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {
        "traced_peak_mb": traced_peak,
        "core_s": secs,
        "rss_before_mb": before,
        "activities": len(tables.activities),
        "tie_pairs": int(f["net_coparticipants"].sum()),
        "max_ties": int(f["net_ties"].max()),
    }


def main(argv: list[str] | None = None, **params) -> int | dict:
    """Command line (``argv``), or the harness's child entry point (``params``)."""
    if params:
        return measure(**params)
    parser = argparse.ArgumentParser(description="network features on big events")
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    for big, size in CASES:
        r = run_step("network", "benchmarks.bench_network",
                     {"members": args.members, "big_events": big, "attendees": size})
        f = r.info
        rows.append([f"{big} x {size:,}" if big else "none", f"{f['activities']:,}",
                     f"{f['tie_pairs']:,}", f"{f['max_ties']:,}", f"{f['core_s']:.2f}",
                     f"{f['rss_before_mb']:,.0f}", f"{r.peak_rss_mb:,.0f}",
                     f"{f['traced_peak_mb']:,.0f}"])
        print(" | ".join(rows[-1]), flush=True)
    if not args.no_write:
        append_results(
            "network.md", f"Network features with big events ({args.members:,} members)",
            ["big events", "activities", "tie pairs (directed)", "max ties", "network s",
             "RSS before MB", "peak RSS MB", "network peak MB"],
            rows,
            notes=["Small events: members/4 events of 8-30 attendees over one year. network peak = "
                   "peak of the memory allocated during the network family alone (tracemalloc, "
                   "numpy/scipy buffers; default block_pairs = 4M pairs per block); RSS before "
                   "= process peak after building and encoding the tables."],
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
