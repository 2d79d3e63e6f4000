"""Point-in-time member features: one row per member known at ``as_of``.

:func:`build_features` joins the feature families, each a pure function
``(tables, as_of, config) -> DataFrame`` on the same index:

========== ==========================================================
activity   :func:`features.activity.build_activity_features`
recency    :func:`features.activity.build_recency_features`
tenure     :func:`features.activity.build_tenure_features`
trend      :func:`features.activity.build_trend_features`
regularity :func:`features.activity.build_regularity_features`
breaks     :func:`features.activity.build_break_features`
diversity  :func:`features.activity.build_diversity_features`
roles      :func:`features.role_history.build_role_features`
network    :func:`features.network.build_network_features`
chapter    :func:`features.chapter.build_chapter_features`
orbit      :func:`features.network.build_orbit_features`
calendar   :func:`features.calendar.build_calendar_features`
========== ==========================================================

Guarantees: rows are the members with ``joined_at < as_of`` (members-table order, index
``member_id``); only rows with timestamps strictly before ``as_of`` are read (role spells that
started before it, with an end at or after it treated as open); every column is float64 or int64
and there is no NaN (see :mod:`features.catalog` for what fills "never happened"); the input
tables are never modified (derived encodings are memoised in ``tables.cache``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from features.activity import (
    build_activity_features,
    build_break_features,
    build_diversity_features,
    build_recency_features,
    build_regularity_features,
    build_tenure_features,
    build_trend_features,
)
from features.calendar import build_calendar_features
from features.chapter import build_chapter_features
from features.feature_config import FeatureConfig, resolve_vocabulary
from features.network import build_network_features, build_orbit_features
from features.role_history import build_role_features
from features.tables import Tables, parse_as_of

__all__ = ["FeatureConfig", "FAMILY_BUILDERS", "build_features", "resolve_vocabulary"]

FamilyBuilder = Callable[[Tables, pd.Timestamp, FeatureConfig], pd.DataFrame]

#: Feature family name -> builder, in output column order.
FAMILY_BUILDERS: dict[str, FamilyBuilder] = {
    "activity": build_activity_features,
    "recency": build_recency_features,
    "tenure": build_tenure_features,
    "trend": build_trend_features,
    "regularity": build_regularity_features,
    "breaks": build_break_features,
    "diversity": build_diversity_features,
    "roles": build_role_features,
    "network": build_network_features,
    "chapter": build_chapter_features,
    "orbit": build_orbit_features,
    "calendar": build_calendar_features,
}


def build_features(tables: Tables, as_of, config: FeatureConfig = FeatureConfig()) -> pd.DataFrame:
    """Build every feature family at ``as_of`` and join them.

    Args:
        tables: A validated data source (not modified).
        as_of: Snapshot time (ISO string, date, datetime or Timestamp; aware values are
            converted to UTC).
        config: Feature settings. Open vocabularies are resolved from the rows before
            ``as_of``; pass a resolved config (see :func:`resolve_vocabulary`) to get the same
            columns at every date.

    Returns:
        One row per member with ``joined_at < as_of``, index ``member_id``, numeric columns
        only (float64 / int64), no NaN.
    """
    ts = parse_as_of(as_of)
    config = resolve_vocabulary(tables, ts, config)
    parts = [builder(tables, ts, config) for builder in FAMILY_BUILDERS.values()]
    out = pd.concat(parts, axis=1)
    out.index.name = "member_id"
    for name, dtype in out.dtypes.items():
        if dtype != np.float64 and dtype != np.int64:
            out[name] = out[name].astype(np.float64)
    return out
