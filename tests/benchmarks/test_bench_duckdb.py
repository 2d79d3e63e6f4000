"""The DuckDB reference query gives the same values as the project's feature functions."""

from __future__ import annotations

import pytest

from benchmarks.bench_duckdb import _read_tables, compare, compute_duckdb, compute_pandas
from tests.features.conftest import T


def test_duckdb_matches_pandas_on_the_hand_written_community(community, tmp_path):
    community.members.to_parquet(tmp_path / "members.parquet", index=False)
    community.activities.to_parquet(tmp_path / "activities.parquet", index=False)
    tables = _read_tables(tmp_path)
    pandas_out = compute_pandas(tables, T)
    duck_out = compute_duckdb(tmp_path, T)
    compare(pandas_out, duck_out)
    # Hand-computed from tests/features/conftest.py: A acted at d(400), d(200), d(100), d(60)
    # (activity 14 is exactly at T and excluded): 1 in 90 days, 4 ever, last 60 days ago.
    a = duck_out.loc["A"]
    assert (a["n_all_30d"], a["n_all_90d"], a["n_all_365d"], a["n_all_ever"]) == (0, 1, 3, 4)
    assert a["days_since_last_activity"] == 60 and a["days_since_first_activity"] == 400
    assert duck_out.index.tolist() == ["A", "B", "C", "D"]


def test_compare_detects_a_difference(community, tmp_path):
    community.members.to_parquet(tmp_path / "members.parquet", index=False)
    community.activities.to_parquet(tmp_path / "activities.parquet", index=False)
    duck_out = compute_duckdb(tmp_path, T)
    changed = duck_out.copy()
    changed.loc["B", "n_all_ever"] += 1
    with pytest.raises(AssertionError, match="n_all_ever: 1 rows differ"):
        compare(duck_out, changed)
