"""Chapter-context feature family: the member's home chapter (``members.chapter_id``) at as_of.

Members of a chapter are the members with that home chapter and ``joined_at < as_of``. Members
without a home chapter get 0 in every column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.feature_config import FeatureConfig, build_snapshot
from features.network import compute_network_stats
from features.tables import Tables

__all__ = ["build_chapter_features"]


def build_chapter_features(
    tables: Tables, as_of, config: FeatureConfig = FeatureConfig()
) -> pd.DataFrame:
    """Size, activity and cohesion of the member's home chapter.

    Columns (D = ``chapter_active_days``, default 90): ``chapter_size`` (members known at
    as_of, the member included), ``chapter_active_members_<D>d`` (of them, with an activity in
    the last D days), ``chapter_active_share_<D>d``, ``chapter_activities_<D>d`` (activities of
    the last D days in the chapter: the activity's ``chapter_id``, or the acting member's home
    chapter when missing), ``chapter_activities_per_member_<D>d`` and ``chapter_link_density``
    (linked member pairs / possible pairs ``size * (size - 1) / 2``; linked = co-participation or
    direct tie in the network window, see :mod:`features.network`).
    """
    snap = build_snapshot(tables, as_of)
    enc, n_members, rows = snap.enc, snap.enc.n_members, snap.rows
    days = config.chapter_active_days
    n_chapters = enc.n_chapters
    chapter = enc.member_chapter
    known = (enc.joined < snap.now) & (chapter >= 0)

    size = np.bincount(chapter[known], minlength=n_chapters)
    lo = snap.start(days)
    recent_member = enc.member[lo : snap.n]
    active = np.bincount(recent_member, minlength=n_members) > 0
    active_size = np.bincount(chapter[known & active], minlength=n_chapters)
    act_chapter = enc.chapter[lo : snap.n]
    act_chapter = np.where(act_chapter >= 0, act_chapter, chapter[recent_member])
    volume = np.bincount(act_chapter[act_chapter >= 0], minlength=n_chapters)

    stats = compute_network_stats(tables, as_of, config)
    linked = np.bincount(
        chapter[known], weights=stats.chapter_known_ties[known], minlength=n_chapters
    ) / 2.0
    possible = size * (size - 1) / 2.0
    density = np.zeros(n_chapters)
    np.divide(linked, possible, out=density, where=possible > 0)
    density = np.clip(density, 0.0, 1.0)

    mine = chapter[rows]
    has = mine >= 0
    safe = np.where(has, mine, 0)

    def pick(values: np.ndarray, dtype) -> np.ndarray:
        if n_chapters == 0:
            return np.zeros(len(rows), dtype=dtype)
        return np.where(has, values[safe], 0).astype(dtype)

    size_r = pick(size, np.int64)
    active_r = pick(active_size, np.int64)
    volume_r = pick(volume, np.int64)
    return snap.frame(
        {
            "chapter_size": size_r,
            f"chapter_active_members_{days}d": active_r,
            f"chapter_active_share_{days}d": active_r / np.maximum(size_r, 1),
            f"chapter_activities_{days}d": volume_r,
            f"chapter_activities_per_member_{days}d": volume_r / np.maximum(size_r, 1),
            "chapter_link_density": pick(density, np.float64),
        }
    )
