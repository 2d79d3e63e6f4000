"""Calendar feature family: the time of year of the snapshot.

Volunteer communities have seasons (summer holidays, the end-of-year break): the same member is
less likely to show up in a label window that covers August or late December. Every member of a
snapshot gets the same values, so these columns never reorder members within one date; they let
a model stacked over many dates set each date's level (its share of positives) by its season
rather than averaging the seasons, which keeps its probabilities calibrated date by date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.feature_config import FeatureConfig, build_snapshot
from features.tables import Tables

__all__ = ["build_calendar_features", "DAYS_PER_YEAR"]

#: Mean length of a calendar year in days.
DAYS_PER_YEAR = 365.25


def build_calendar_features(
    tables: Tables, as_of, config: FeatureConfig = FeatureConfig()
) -> pd.DataFrame:
    """The day of the year of ``as_of`` as a point on the unit circle.

    Columns: ``season_sin`` and ``season_cos``, the sine and cosine of
    ``2 pi (day of year - 1) / 365.25`` (1 January is ``(0, 1)``, early April ``(1, 0)``), the
    same for every member. A circle rather than the day number keeps 31 December next to
    1 January.
    """
    snap = build_snapshot(tables, as_of)
    angle = 2.0 * np.pi * (snap.as_of.day_of_year - 1) / DAYS_PER_YEAR
    n = len(snap.rows)
    return snap.frame(
        {"season_sin": np.full(n, np.sin(angle)), "season_cos": np.full(n, np.cos(angle))}
    )
