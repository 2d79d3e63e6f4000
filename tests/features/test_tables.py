"""Tables helpers: last observed time, as_of and duration parsing."""

from __future__ import annotations

import pandas as pd
import pytest

from features.errors import ConfigError
from features.tables import Tables, parse_as_of, parse_duration_days


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
