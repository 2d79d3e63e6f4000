"""DuckDB reference for the core window aggregations, timed against the pandas/numpy path.

One DuckDB SQL query over the Parquet files computes, per member joined before ``as_of``, the
activity counts and weighted sums over 30 / 90 / 365 days and all history, and the recency
columns (days since the last and the first activity, has_activity). The pandas side computes the
same columns with the project's own feature functions
(:func:`features.activity.build_activity_features` and
:func:`features.activity.build_recency_features`). Both start from the same Parquet files in the
same process:

- *pandas, from Parquet*: read the two tables pruned to the columns these features need
  (member, time, weight; join time), encode them (:func:`features.encoding.encode_tables`),
  run both families;
- *pandas, encoded*: the two families alone on already-encoded tables (what every snapshot after
  the first costs in a training frame);
- *DuckDB*: the query, from Parquet to a DataFrame.

The values are checked equal (counts exactly, sums and days to 1e-9 relative) before the times
are reported. Run ``python -m benchmarks.bench_duckdb --size national``; results are appended
to ``benchmarks/results/duckdb.md``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd

from benchmarks.harness import append_results, run_step
from benchmarks.pipeline import SIZES, data_dir

__all__ = ["WINDOWS", "duckdb_query", "compute_pandas", "compute_duckdb", "compare", "main"]

WINDOWS = (30, 90, 365)
_RECENCY = ["days_since_last_activity", "days_since_first_activity", "has_activity"]


def _columns() -> list[str]:
    cols = []
    for w in WINDOWS:
        cols += [f"n_all_{w}d", f"wsum_all_{w}d"]
    return cols + ["n_all_ever", "wsum_all_ever", *_RECENCY]


def duckdb_query(folder, as_of: pd.Timestamp) -> str:
    """The single SQL query (``as_of`` inlined as a timestamp literal)."""
    ts = f"TIMESTAMP '{as_of.isoformat(sep=' ')}'"
    windows = ",\n".join(
        f"  count(*) FILTER (WHERE a.occurred_at >= {ts} - INTERVAL {w} DAY) AS n_all_{w}d,\n"
        f"  coalesce(sum(a.weight) FILTER (WHERE a.occurred_at >= {ts} - INTERVAL {w} DAY), 0)"
        f" AS wsum_all_{w}d"
        for w in WINDOWS
    )
    return f"""
WITH m AS (
  SELECT row_number() OVER () AS pos, member_id, joined_at
  FROM read_parquet('{folder}/members.parquet')
),
a AS (
  SELECT member_id, occurred_at, weight
  FROM read_parquet('{folder}/activities.parquet')
  WHERE occurred_at < {ts}
),
agg AS (
  SELECT a.member_id,
{windows},
  count(*) AS n_all_ever,
  coalesce(sum(a.weight), 0) AS wsum_all_ever,
  max(a.occurred_at) AS last_at,
  min(a.occurred_at) AS first_at
  FROM a GROUP BY a.member_id
)
SELECT m.member_id,
{", ".join(f"coalesce(agg.n_all_{w}d, 0) AS n_all_{w}d, coalesce(agg.wsum_all_{w}d, 0) AS wsum_all_{w}d" for w in WINDOWS)},
  coalesce(agg.n_all_ever, 0) AS n_all_ever,
  coalesce(agg.wsum_all_ever, 0) AS wsum_all_ever,
  CASE WHEN agg.last_at IS NULL
       THEN (epoch_ns({ts}) - epoch_ns(m.joined_at)) / 86400e9
       ELSE (epoch_ns({ts}) - epoch_ns(agg.last_at)) / 86400e9 END AS days_since_last_activity,
  CASE WHEN agg.first_at IS NULL THEN 0.0
       ELSE (epoch_ns({ts}) - epoch_ns(agg.first_at)) / 86400e9 END AS days_since_first_activity,
  CAST(agg.last_at IS NOT NULL AS BIGINT) AS has_activity
FROM m LEFT JOIN agg USING (member_id)
WHERE m.joined_at < {ts}
ORDER BY m.pos
"""  # noqa: E501


#: Columns the compared features read; the others are not loaded (Parquet column pruning).
MEMBER_READ = ["member_id", "joined_at"]
ACTIVITY_READ = ["member_id", "occurred_at", "weight"]


def _read_tables(folder):
    """The two tables with only the needed columns read; the others are empty (all missing).

    The compared columns depend on member, time and weight only, so the type, role, event,
    chapter and counterpart columns are never loaded.
    """
    from features.tables import ACTIVITY_COLUMNS, MEMBER_COLUMNS, Tables

    members = pd.read_parquet(folder / "members.parquet", columns=MEMBER_READ)
    activities = pd.read_parquet(folder / "activities.parquet", columns=ACTIVITY_READ)
    for frame, wanted in ((members, MEMBER_COLUMNS), (activities, ACTIVITY_COLUMNS)):
        for name in wanted:
            if name not in frame.columns:
                frame[name] = pd.Series(pd.NA, index=frame.index, dtype="str")
    members["consent"] = True
    return Tables(
        members=members[MEMBER_COLUMNS], activities=activities[ACTIVITY_COLUMNS],
        source=str(folder),
    )


def compute_pandas(tables, as_of: pd.Timestamp) -> pd.DataFrame:
    """The same columns from the project's activity and recency families."""
    from features.activity import build_activity_features, build_recency_features
    from features.feature_config import FeatureConfig

    config = FeatureConfig(windows_days=WINDOWS, activity_types=(), roles=())
    act = build_activity_features(tables, as_of, config)
    rec = build_recency_features(tables, as_of, config)
    out = pd.concat([act, rec], axis=1)
    return out[_columns()]


def compute_duckdb(folder, as_of: pd.Timestamp, threads: int | None = None) -> pd.DataFrame:
    """Run :func:`duckdb_query` and return its frame indexed by ``member_id``."""
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    frame = con.execute(duckdb_query(folder, as_of)).df()
    con.close()
    return frame.set_index("member_id")[_columns()]


def compare(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """Raise ``AssertionError`` unless both frames hold the same values."""
    if not left.index.equals(right.index):
        raise AssertionError("member rows differ")
    for name in left.columns:
        a = left[name].to_numpy(dtype=np.float64)
        b = right[name].to_numpy(dtype=np.float64)
        if name.startswith(("n_", "has_")):
            if not np.array_equal(a, b):
                raise AssertionError(f"{name}: {int((a != b).sum())} rows differ")
        elif not np.allclose(a, b, rtol=1e-9, atol=1e-9):
            raise AssertionError(f"{name}: max difference {np.abs(a - b).max()}")


def measure(size: str, repeats: int = 3) -> dict:
    """Time both paths (best of ``repeats``) in this process and check equal values."""
    from features.encoding import encode_tables
    from serving.score import default_as_of

    folder = data_dir(size)
    figures: dict = {}
    best = {"pandas_parquet_s": np.inf, "pandas_encoded_s": np.inf, "duckdb_s": np.inf}
    for _ in range(repeats):
        t0 = time.perf_counter()
        tables = _read_tables(folder)
        as_of = default_as_of(tables)
        encode_tables(tables)
        t1 = time.perf_counter()
        pandas_out = compute_pandas(tables, as_of)
        t2 = time.perf_counter()
        best["pandas_parquet_s"] = min(best["pandas_parquet_s"], t2 - t0)
        best["pandas_encoded_s"] = min(best["pandas_encoded_s"], t2 - t1)
        t0 = time.perf_counter()
        duck_out = compute_duckdb(folder, as_of)
        best["duckdb_s"] = min(best["duckdb_s"], time.perf_counter() - t0)
        del tables
    compare(pandas_out, duck_out)
    figures.update({k: round(v, 3) for k, v in best.items()})
    figures["rows"] = len(pandas_out)
    figures["ratio_parquet"] = round(best["pandas_parquet_s"] / best["duckdb_s"], 2)
    figures["ratio_encoded"] = round(best["pandas_encoded_s"] / best["duckdb_s"], 2)
    return figures


def main(argv: list[str] | None = None, **params) -> int | dict:
    """Command line (``argv``), or the harness's child entry point (``params``)."""
    if params:
        return measure(**params)
    parser = argparse.ArgumentParser(description="DuckDB reference of the window aggregations")
    parser.add_argument("--size", choices=sorted(SIZES), default="national")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    result = run_step("duckdb", "benchmarks.bench_duckdb", {"size": args.size,
                                                            "repeats": args.repeats})
    f = result.info
    row = [args.size, f"{f['rows']:,}", f"{f['pandas_parquet_s']:.2f}",
           f"{f['pandas_encoded_s']:.2f}", f"{f['duckdb_s']:.2f}", f"{f['ratio_parquet']:.2f}",
           f"{f['ratio_encoded']:.2f}", f"{result.peak_rss_mb:,.0f}"]
    print(" | ".join(row))
    if not args.no_write:
        append_results(
            "duckdb.md", "Window aggregations: pandas/numpy vs one DuckDB query",
            ["size", "members", "pandas from Parquet s", "pandas encoded s", "DuckDB s",
             "ratio Parquet", "ratio encoded", "peak RSS MB (process)"],
            [row],
            notes=["Columns: n_all / wsum_all over 30, 90, 365 days and ever, "
                   "days_since_last_activity, days_since_first_activity, has_activity; values "
                   "checked equal. Best of the repeats; ratio = pandas / DuckDB (target <= 1.5)."],
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
