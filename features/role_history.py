"""Role-history feature family, from the optional ``roles`` table.

Point in time: a spell counts only if ``started_at < as_of``; it is *held* at as_of when its
``ended_at`` is missing or ``>= as_of`` (so an end date at or after as_of is treated as "still
open" and never read), and it is *past* when ``ended_at < as_of``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.encoding import NO_TIME, NS_PER_DAY
from features.feature_config import FeatureConfig, build_snapshot
from features.tables import Tables

__all__ = ["build_role_features", "ROLE_COLUMNS"]

ROLE_COLUMNS = (
    "role_core_now",
    "role_core_past_spells",
    "role_core_days_total",
    "role_core_days_current",
    "days_since_role_core_end",
    "role_any_now",
    "role_any_spells",
)


def build_role_features(
    tables: Tables, as_of, config: FeatureConfig = FeatureConfig()
) -> pd.DataFrame:
    """Role history of ``config.core_role`` (default ``ambassador``) and of any role.

    Columns: ``role_core_now`` (0/1, holds the core role at as_of), ``role_core_past_spells``
    (core spells ended before as_of), ``role_core_days_total`` (days held, current spell counted
    up to as_of), ``role_core_days_current`` (days into the current core spell, 0 when not
    holding), ``days_since_role_core_end`` (days since the last core spell ended; fill when
    none ended: tenure in days), ``role_any_now`` (0/1, holds any role of the table) and
    ``role_any_spells`` (spells of any role started before as_of). Without a roles table every
    column is 0 (``days_since_role_core_end`` = tenure).
    """
    snap = build_snapshot(tables, as_of)
    enc, n_members, rows = snap.enc, snap.enc.n_members, snap.rows
    tenure = snap.tenure_days()
    zeros = np.zeros(len(rows), dtype=np.int64)
    spells = enc.roles
    if spells is None:
        return snap.frame(
            {
                "role_core_now": zeros,
                "role_core_past_spells": zeros.copy(),
                "role_core_days_total": np.zeros(len(rows)),
                "role_core_days_current": np.zeros(len(rows)),
                "days_since_role_core_end": tenure,
                "role_any_now": zeros.copy(),
                "role_any_spells": zeros.copy(),
            }
        )

    now = snap.now
    started = spells.started < now
    member = spells.member[started]
    start = spells.started[started]
    end = spells.ended[started]
    core_code = spells.role_code(config.core_role)
    core = (spells.role[started] == core_code) & (core_code >= 0)
    held = end >= now
    past = ~held

    def per_member(mask: np.ndarray, weights=None) -> np.ndarray:
        w = None if weights is None else weights[mask]
        return np.bincount(member[mask], weights=w, minlength=n_members)[rows]

    held_days = (np.minimum(end, now) - start) / NS_PER_DAY
    current = np.zeros(n_members)
    np.maximum.at(current, member[core & held], (now - start[core & held]) / NS_PER_DAY)
    last_end = np.full(n_members, NO_TIME, dtype=np.int64)
    np.maximum.at(last_end, member[core & past], end[core & past])
    last_end = last_end[rows]
    return snap.frame(
        {
            "role_core_now": (per_member(core & held) > 0).astype(np.int64),
            "role_core_past_spells": per_member(core & past).astype(np.int64),
            "role_core_days_total": per_member(core, held_days).astype(np.float64),
            "role_core_days_current": current[rows],
            "days_since_role_core_end": np.where(
                last_end != NO_TIME, (now - last_end) / NS_PER_DAY, tenure
            ),
            "role_any_now": (per_member(held) > 0).astype(np.int64),
            "role_any_spells": per_member(np.ones(len(member), dtype=bool)).astype(np.int64),
        }
    )
