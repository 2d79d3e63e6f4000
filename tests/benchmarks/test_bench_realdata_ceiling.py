"""The ceiling benchmark's hand-built features, on a tiny log with hand-computed answers."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks import bench_realdata_ceiling as bc
from features.tables import Tables

AT = pd.Timestamp("2021-01-01")


def _tables() -> Tables:
    rows = [
        # a: commits in pull requests merged by m, then a direct commit in an area
        ("a", "2020-01-01", "commit", "pr-1", "m"),
        ("a", "2020-03-01", "commit", "pr-2", "m"),
        ("a", "2020-03-01", "commit", "pr-2", "m"),
        ("a", "2020-11-01", "commit", "scipy/stats:2020-11", None),
        ("m", "2020-03-02", "merge", "pr-2", "a"),
        ("m", "2020-12-31", "merge", "pr-9", None),
        ("a", "2021-01-01", "commit", "pr-3", "m"),  # at AT: not read
    ]
    acts = pd.DataFrame(rows, columns=["member_id", "occurred_at", "activity_type", "event_id",
                                       "counterpart_id"])
    acts["occurred_at"] = pd.to_datetime(acts["occurred_at"]).dt.tz_localize("UTC")
    members = pd.DataFrame({"member_id": ["a", "m"],
                            "joined_at": pd.to_datetime(["2020-01-01", "2019-01-01"], utc=True)})
    roles = pd.DataFrame({"member_id": ["m"], "role": ["maintainer"],
                          "started_at": pd.to_datetime(["2019-06-01"]),
                          "ended_at": [pd.NaT]})
    return Tables(members=members, activities=acts, roles=roles, chapters=None, source="<t>")


def test_snapshot_features_by_hand():
    tables = _tables()
    acts = bc.prepared_activities(tables)
    f = bc.snapshot_features(acts, tables.roles, AT, pd.Index(["a", "m"]))
    a = f.loc["a"]
    # a: active days 2020-01-01, 2020-03-01 (twice), 2020-11-01; silent for 61 days.
    assert (a["first"], a["last"], a["n_ever"], a["n_365"]) == (366.0, 61.0, 4.0, 3.0)
    assert (a["c_365"], a["m_365"], a["pr_365"], a["direct_365"]) == (3.0, 0.0, 1.0, 1.0)
    assert (a["active_months_365"], a["cp_365"], a["areas"]) == (2.0, 1.0, 1.0)
    # breaks: 60 days (Jan 1 -> Mar 1) and 245 days (Mar 1 -> Nov 1); usual = 305 / 2
    assert a["longest_break"] == 245.0 and a["usual_break"] == pytest.approx(152.5)
    assert a["silence_vs_longest"] == pytest.approx(61 / 275)
    assert a["silence_vs_usual"] == pytest.approx(61 / 159.5)
    # a's counterpart m merged on 2020-12-31: active in the last 90 days
    assert a["cp_active_share"] == 1.0 and a["role_held"] == 0.0
    m = f.loc["m"]
    assert (m["m_365"], m["longest_break"], m["role_held"], m["last"]) == (2.0, 304.0, 1.0, 1.0)
