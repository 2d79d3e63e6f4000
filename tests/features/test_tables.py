"""Tables helpers: last observed time, as_of and duration parsing."""

from __future__ import annotations

import pandas as pd
import pytest

from features.errors import ConfigError
from features.tables import Tables, cut_tables, parse_as_of, parse_duration_days


def _tables(role_end: str | None) -> Tables:
    members = pd.DataFrame({"member_id": ["a"], "joined_at": pd.to_datetime(["2024-01-01"])})
    activities = pd.DataFrame({"member_id": ["a"], "occurred_at": pd.to_datetime(["2024-03-01"])})
    roles = pd.DataFrame(
        {
            "member_id": ["a"],
            "role": ["ambassador"],
            "started_at": pd.to_datetime(["2024-02-01"]),
            "ended_at": pd.to_datetime([role_end]),
        }
    )
    return Tables(members=members, activities=activities, roles=roles)


def test_last_observed_ignores_role_ends_in_the_future():
    # the spell "ends" in 2030: the data still only reaches the last activity
    assert _tables("2030-01-01").last_observed == pd.Timestamp("2024-03-01")
    # an end before the last activity does not move it either
    assert _tables("2024-02-15").last_observed == pd.Timestamp("2024-03-01")
    assert _tables(None).first_observed == pd.Timestamp("2024-01-01")


def test_parse_as_of_converts_aware_to_naive_utc():
    assert parse_as_of("2024-05-01T00:00:00+02:00") == pd.Timestamp("2024-04-30 22:00")
    with pytest.raises(ConfigError, match="as_of"):
        parse_as_of("not a date")


@pytest.mark.parametrize(
    ("text", "days"), [("90d", 90), ("12w", 84), ("6m", 180), ("1y", 365), ("45", 45), (30, 30)]
)
def test_parse_duration_days(text, days):
    assert parse_duration_days(text) == days


@pytest.mark.parametrize("bad", ["0d", "-3d", "1.5d", "soon", ""])
def test_parse_duration_days_rejects_bad_values(bad):
    with pytest.raises(ConfigError, match="duration"):
        parse_duration_days(bad)


def _history() -> Tables:
    members = pd.DataFrame(
        {
            "member_id": ["a", "b", "c"],
            "joined_at": pd.to_datetime(["2020-01-01", "2020-06-01", "2021-01-01"]),
        }
    )
    activities = pd.DataFrame(
        {
            "member_id": ["a", "b", "a", "c", "b"],
            "occurred_at": pd.to_datetime(
                ["2020-01-01 00:00", "2020-06-01 00:00", "2020-12-31 23:59", "2021-01-01 00:00",
                 "2021-02-01 00:00"]
            ),
        }
    )
    roles = pd.DataFrame(
        {
            "member_id": ["a", "b", "a", "b"],
            "role": ["maintainer"] * 4,
            "started_at": pd.to_datetime(["2020-02-01", "2020-07-01", "2020-09-01", "2021-01-01"]),
            "ended_at": pd.to_datetime(["2020-03-01", "2021-01-01", None, None]),
        }
    )
    chapters = pd.DataFrame({"chapter_id": ["x"], "name": ["X"]})
    return Tables(members, activities, roles, chapters, source="hist")


def test_cut_tables_keeps_only_what_was_known_at_the_cut():
    full = _history()
    cut = cut_tables(full, "2021-01-01")
    # c joined exactly at the cut: not yet a member
    assert cut.members["member_id"].tolist() == ["a", "b"]
    # activities strictly before the cut, re-indexed, still sorted
    assert cut.activities["member_id"].tolist() == ["a", "b", "a"]
    assert cut.activities.index.tolist() == [0, 1, 2]
    assert cut.activities["occurred_at"].is_monotonic_increasing
    # the spell starting at the cut is dropped; ends at/after the cut are not known yet
    assert cut.roles["member_id"].tolist() == ["a", "b", "a"]
    assert cut.roles["ended_at"].tolist()[0] == pd.Timestamp("2020-03-01")
    assert cut.roles["ended_at"].iloc[1:].isna().all()
    assert cut.chapters is full.chapters
    assert cut.source == "hist"
    # the full tables are untouched
    assert full.roles["ended_at"].iloc[1] == pd.Timestamp("2021-01-01")
    assert len(full.activities) == 5


def test_cut_tables_without_roles_or_chapters():
    full = _history()
    bare = Tables(full.members, full.activities, source="bare")
    cut = cut_tables(bare, pd.Timestamp("2020-06-01"))
    assert cut.roles is None and cut.chapters is None
    assert cut.members["member_id"].tolist() == ["a"]
    assert cut.activities["occurred_at"].tolist() == [pd.Timestamp("2020-01-01")]


@pytest.mark.parametrize("text", ["01/02/2022", "2/1/2022", "1 Feb 2022", "20220201x"])
def test_an_as_of_that_is_not_iso_8601_is_refused_not_guessed(text):
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        parse_as_of(text)


def test_iso_8601_as_of_values_parse_to_utc():
    assert parse_as_of(" 2022-02-01 ") == pd.Timestamp("2022-02-01")
    assert parse_as_of("2022-02-01T02:00:00+02:00") == pd.Timestamp("2022-02-01")
    assert parse_as_of(pd.Timestamp("2022-02-01")) == pd.Timestamp("2022-02-01")


def test_cut_tables_keeps_outreach_outcomes_known_at_the_cut():
    members = pd.DataFrame({"member_id": ["a"], "joined_at": pd.to_datetime(["2024-01-01"])})
    activities = pd.DataFrame({"member_id": ["a"], "occurred_at": pd.to_datetime(["2024-03-01"])})
    outreach = pd.DataFrame(
        {
            "member_id": ["a", "a", "a", "a"],
            "contacted_at": pd.to_datetime(
                ["2024-02-01", "2024-05-20", "2024-05-25", "2024-07-01"]
            ),
            "purpose": ["readiness", "retention", "retention", "retention"],
            "outcome": ["accepted", "declined", "accepted", "pending"],
            # dated before the cut; dated after it; undated (known 30 days after the contact)
            "outcome_at": pd.to_datetime(["2024-02-10", "2024-06-05", None, None]),
        }
    )
    full = Tables(members=members, activities=activities, outreach=outreach)
    cut = cut_tables(full, "2024-06-01").outreach
    # the July contact had not happened; May's outcomes were not known on 1 June
    assert cut["contacted_at"].dt.strftime("%m-%d").tolist() == ["02-01", "05-20", "05-25"]
    assert cut["outcome"].tolist() == ["accepted", "pending", "pending"]
    assert cut["outcome_at"].isna().tolist() == [False, True, True]
    # by 1 July both May outcomes are known (the undated one 30 days after 25 May)
    assert cut_tables(full, "2024-07-01").outreach["outcome"].tolist() == [
        "accepted", "declined", "accepted"
    ]
    assert cut_tables(Tables(members=members, activities=activities), "2024-06-01").outreach is None
