"""Calendar features on the reference community (see conftest)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import build_features
from features.calendar import build_calendar_features
from tests.features.conftest import MEMBERS, T


def col(frame: pd.DataFrame, name: str) -> list:
    return frame.loc[list(MEMBERS), name].tolist()


def test_calendar_is_the_time_of_year_for_everyone(community):
    f = build_calendar_features(community, T)
    # 2024-07-01 is day 183 of a leap year: angle 2 pi 182 / 365.25
    angle = 2 * np.pi * 182 / 365.25
    assert col(f, "season_sin") == pytest.approx([np.sin(angle)] * 4)
    assert col(f, "season_cos") == pytest.approx([np.cos(angle)] * 4)
    new_year = build_calendar_features(community, "2024-01-01")
    assert new_year["season_sin"].tolist() == pytest.approx([0.0] * len(new_year))
    assert new_year["season_cos"].tolist() == pytest.approx([1.0] * len(new_year))


def test_calendar_columns_are_part_of_the_features(community):
    f = build_features(community, T)
    assert {"season_sin", "season_cos"} <= set(f.columns)
    # 31 December (day 365 of 2023: angle 2 pi 364 / 365.25) and 1 January (angle 0) are
    # neighbours on the circle: 1.25 days of 365.25 apart, a chord of about 2 pi 1.25 / 365.25.
    a = build_calendar_features(community, "2023-12-31").iloc[0]
    b = build_calendar_features(community, "2024-01-01").iloc[0]
    chord = np.hypot(a["season_sin"] - b["season_sin"], a["season_cos"] - b["season_cos"])
    assert chord == pytest.approx(2 * np.pi * 1.25 / 365.25, rel=1e-4)
