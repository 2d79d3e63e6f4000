"""Chapter-context feature family: the member's home chapter (``members.chapter_id``) at as_of.

Members of a chapter are the members with that home chapter and ``joined_at < as_of``. Members
without a home chapter get 0 in every column (tenure in days for ``days_since_chapter_core_end``).
Core-role columns read the ``roles`` table like :mod:`features.role_history` (a spell counts
once started before as_of; it is held when its end is missing or at / after as_of); without a
roles table they are 0 (tenure for the days column).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.encoding import NO_TIME, NS_PER_DAY
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

    Core-role context (the core role is ``config.core_role``): ``chapter_core_members`` (members
    of the chapter holding it at as_of), ``chapter_core_per_active_<D>d`` (of them, per active
    member), ``chapter_core_shortfall`` (how far the chapter falls below the community-wide ratio
    of core members to active members: ``expected = ratio * active members``,
    ``clip((max(1, expected) - core members) / max(1, expected), 0, 1)``; 1 = no core member)
    and ``days_since_chapter_core_end`` (days since a core spell of a chapter member last ended;
    fill: the member's tenure in days).
    """
    snap = build_snapshot(tables, as_of)
    enc = snap.enc
    chapter = enc.member_chapter
    known = (enc.joined < snap.now) & (chapter >= 0)
    days = config.chapter_active_days
    size, active_size, volume = _chapter_activity(snap, chapter, known, days)
    density = _chapter_density(tables, as_of, config, chapter, known, size)
    core, last_end = _chapter_core(snap, config, chapter, known, enc.n_chapters)
    ratio = core.sum() / max(int(active_size.sum()), 1) if enc.n_chapters else 0.0
    expected = np.maximum(ratio * active_size, 1.0)
    shortfall = np.clip((expected - core) / expected, 0.0, 1.0)

    mine = chapter[snap.rows]
    has = mine >= 0
    safe = np.where(has, mine, 0)

    def pick(values: np.ndarray, dtype) -> np.ndarray:
        if enc.n_chapters == 0:
            return np.zeros(len(snap.rows), dtype=dtype)
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
            "chapter_core_members": pick(core, np.int64),
            f"chapter_core_per_active_{days}d": pick(core, np.float64) / np.maximum(active_r, 1),
            "chapter_core_shortfall": pick(shortfall, np.float64),
            "days_since_chapter_core_end": np.where(
                has & (pick(last_end, np.int64) != NO_TIME),
                (snap.now - pick(last_end, np.int64)) / NS_PER_DAY,
                snap.tenure_days(),
            ),
        }
    )


def _chapter_activity(
    snap, chapter: np.ndarray, known: np.ndarray, days: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per chapter: members known, members active in the last ``days``, activities then."""
    enc = snap.enc
    size = np.bincount(chapter[known], minlength=enc.n_chapters)
    lo = snap.start(days)
    recent_member = enc.member[lo : snap.n]
    active = np.bincount(recent_member, minlength=enc.n_members) > 0
    active_size = np.bincount(chapter[known & active], minlength=enc.n_chapters)
    act_chapter = enc.chapter[lo : snap.n]
    act_chapter = np.where(act_chapter >= 0, act_chapter, chapter[recent_member])
    volume = np.bincount(act_chapter[act_chapter >= 0], minlength=enc.n_chapters)
    return size, active_size, volume


def _chapter_density(
    tables: Tables,
    as_of,
    config: FeatureConfig,
    chapter: np.ndarray,
    known: np.ndarray,
    size: np.ndarray,
) -> np.ndarray:
    """Per chapter: linked member pairs over possible pairs, in [0, 1]."""
    n_chapters = len(size)
    stats = compute_network_stats(tables, as_of, config)
    linked = np.bincount(
        chapter[known], weights=stats.chapter_known_ties[known], minlength=n_chapters
    ) / 2.0
    possible = size * (size - 1) / 2.0
    density = np.zeros(n_chapters)
    np.divide(linked, possible, out=density, where=possible > 0)
    return np.clip(density, 0.0, 1.0)


def _chapter_core(snap, config: FeatureConfig, chapter: np.ndarray, known: np.ndarray,
                  n_chapters: int) -> tuple[np.ndarray, np.ndarray]:
    """Core-role holders per chapter at as_of and the last end of a chapter member's core spell
    before as_of (``NO_TIME`` when none)."""
    core = np.zeros(n_chapters, dtype=np.int64)
    last_end = np.full(n_chapters, NO_TIME, dtype=np.int64)
    spells = snap.enc.roles
    code = -1 if spells is None else spells.role_code(config.core_role)
    if code < 0 or n_chapters == 0:
        return core, last_end
    now = snap.now
    member_chapter = chapter[spells.member]
    mine = (spells.role == code) & (spells.started < now) & known[spells.member] & (
        member_chapter >= 0
    )
    held = mine & (spells.ended >= now)
    holders = np.zeros(len(chapter), dtype=bool)
    holders[spells.member[held]] = True
    core = np.bincount(chapter[holders], minlength=n_chapters).astype(np.int64)
    past = mine & (spells.ended < now)
    np.maximum.at(last_end, member_chapter[past], spells.ended[past])
    return core, last_end
