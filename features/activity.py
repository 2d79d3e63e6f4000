"""Activity feature families: windowed counts, recency, tenure, trend, regularity, diversity.

Each ``build_*_features(tables, as_of, config)`` is a pure function returning one row per member
with ``joined_at < as_of`` (index ``member_id``, members-table order). Only activities strictly
before ``as_of`` are read; a window of ``w`` days is ``as_of - w <= occurred_at < as_of``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.encoding import NO_TIME, NS_PER_DAY, OPEN_END
from features.feature_config import (
    FeatureConfig,
    Snapshot,
    build_snapshot,
    column_slugs,
    resolve_vocabulary,
)
from features.tables import Tables

__all__ = [
    "build_activity_features",
    "build_recency_features",
    "build_tenure_features",
    "build_trend_features",
    "build_regularity_features",
    "build_break_features",
    "build_diversity_features",
    "count_per_member",
    "distinct_per_member",
    "value_lookup",
    "organizing_mask",
    "activity_column_order",
]

_WEEK_NS = 7 * NS_PER_DAY
#: Days added to a member's longest (or usual) break before the current silence is divided by
#: it, so that one short break does not make any silence look long.
LONGEST_BREAK_SLACK_DAYS = 30.0
USUAL_BREAK_SLACK_DAYS = 7.0
_MEMBER_ORDER_KEY = "activity.member_order"
# 1970-01-01 is a Thursday: shifting by 3 days makes week numbers start on ISO Mondays.
_MONDAY_SHIFT_NS = 3 * NS_PER_DAY
_BITMAP_LIMIT = 50_000_000


def count_per_member(members: np.ndarray, n_members: int, weights=None) -> np.ndarray:
    """Count (or sum ``weights``) per member code; length ``n_members``."""
    return np.bincount(members, weights=weights, minlength=n_members)


def distinct_per_member(
    members: np.ndarray, codes: np.ndarray, n_codes: int, n_members: int
) -> np.ndarray:
    """Number of distinct non-negative ``codes`` per member code (int64, length n_members)."""
    ok = codes >= 0
    members, codes = members[ok], codes[ok]
    if n_codes == 0 or len(members) == 0:
        return np.zeros(n_members, dtype=np.int64)
    if n_members * n_codes <= _BITMAP_LIMIT:
        flag = np.zeros(n_members * n_codes, dtype=bool)
        flag[members.astype(np.int64) * n_codes + codes] = True
        return flag.reshape(n_members, n_codes).sum(axis=1, dtype=np.int64)
    mat = sp.csr_matrix(
        (np.ones(len(members), dtype=np.int8), (members, codes)), shape=(n_members, n_codes)
    )
    mat.sum_duplicates()
    return np.diff(mat.indptr).astype(np.int64)


def value_lookup(names: pd.Index, mapping: dict, default, missing) -> np.ndarray:
    """Lookup table from ``code + 1`` to a value (slot 0 is the missing code -1).

    Args:
        names: The names of the codes.
        mapping: Value per name; names not in it get ``default``.
        default: Value of names not in ``mapping``.
        missing: Value of the missing code -1.

    Returns:
        An array ``lut`` such that ``lut[codes + 1]`` maps codes to values.
    """
    values = [missing] + [mapping.get(str(name), default) for name in names]
    return np.asarray(values)


def _vocab_lookup(names: pd.Index, vocab: tuple[str, ...], missing: int) -> np.ndarray:
    position = {value: i for i, value in enumerate(vocab)}
    return value_lookup(names, position, len(vocab), missing).astype(np.int64)


def build_activity_features(
    tables: Tables, as_of, config: FeatureConfig = FeatureConfig()
) -> pd.DataFrame:
    """Activity counts and weighted sums per window, by activity type and by role.

    Columns, for every window ``w`` of ``config.windows_days``:
    ``n_all_<w>d`` / ``wsum_all_<w>d`` (all activities), ``n_<type>_<w>d`` /
    ``wsum_<type>_<w>d`` per vocabulary type plus ``other``, ``n_role_<role>_<w>d`` /
    ``wsum_role_<role>_<w>d`` per vocabulary role plus ``other`` (activities without a role are
    in no role column). Also ``n_all_ever`` / ``wsum_all_ever`` over all history.
    Counts are int64, weighted sums float64; "never" is 0.

    Args:
        tables: A validated data source.
        as_of: Snapshot time; only activities strictly before it are used.
        config: Feature settings (open vocabularies are resolved from rows before ``as_of``).
    """
    config = resolve_vocabulary(tables, as_of, config)
    snap = build_snapshot(tables, as_of)
    enc, n_members = snap.enc, snap.enc.n_members
    columns_of = _ActivityColumns.of(enc, config)
    acc = columns_of.totals()
    columns: dict[str, np.ndarray] = {}
    hi = snap.n
    # Windows are nested: add the segment [start(w), previous start) to running totals.
    for w in config.windows_days:
        lo = snap.start(w)
        columns_of.add_segment(acc, enc, lo, hi)
        hi = lo
        columns.update(columns_of.window(acc, snap.rows, w))

    member = enc.member[: snap.n]
    columns["n_all_ever"] = count_per_member(member, n_members)[snap.rows]
    columns["wsum_all_ever"] = count_per_member(member, n_members, enc.weight[: snap.n])[
        snap.rows
    ]
    ordered = {name: columns[name] for name in activity_column_order(config)}
    return snap.frame(ordered)


@dataclass(frozen=True)
class _ActivityColumns:
    """Where an activity row counts in :func:`build_activity_features`: its type column (the
    vocabulary's types plus ``other``) and its role column (the vocabulary's roles plus
    ``other``; none without a role).

    Running totals are flat arrays of ``n_members * k_type`` (``"nt"`` counts, ``"wt"``
    weighted sums) and ``n_members * k_role`` (``"nr"``, ``"wr"``) cells.
    """

    n_members: int
    type_lut: np.ndarray
    role_lut: np.ndarray
    type_slugs: list[str]
    role_slugs: list[str]

    @classmethod
    def of(cls, enc, config: FeatureConfig) -> _ActivityColumns:
        """The columns of an encoded snapshot ``enc`` for a resolved ``config``."""
        return cls(
            n_members=enc.n_members,
            type_lut=_vocab_lookup(
                enc.type_names, config.activity_types, len(config.activity_types)
            ),
            role_lut=_vocab_lookup(enc.role_names, config.roles, -1),
            type_slugs=column_slugs(config.activity_types, "type"),
            role_slugs=column_slugs(config.roles, "role"),
        )

    def totals(self) -> dict[str, np.ndarray]:
        """Zeroed running totals."""
        n_members, k_type, k_role = self.n_members, len(self.type_slugs), len(self.role_slugs)
        return {
            "nt": np.zeros(n_members * k_type, dtype=np.int64),
            "wt": np.zeros(n_members * k_type),
            "nr": np.zeros(n_members * k_role, dtype=np.int64),
            "wr": np.zeros(n_members * k_role),
        }

    def add_segment(self, acc: dict[str, np.ndarray], enc, lo: int, hi: int) -> None:
        """Add the activity rows ``lo:hi`` of ``enc`` to the running totals ``acc``."""
        n_members, k_type, k_role = self.n_members, len(self.type_slugs), len(self.role_slugs)
        member = enc.member[lo:hi].astype(np.int64)
        weight = enc.weight[lo:hi]
        key = member * k_type + self.type_lut[enc.activity_type[lo:hi] + 1]
        acc["nt"] += np.bincount(key, minlength=n_members * k_type)
        acc["wt"] += np.bincount(key, weights=weight, minlength=n_members * k_type)
        role = self.role_lut[enc.role[lo:hi] + 1]
        has_role = role >= 0
        key = member[has_role] * k_role + role[has_role]
        acc["nr"] += np.bincount(key, minlength=n_members * k_role)
        acc["wr"] += np.bincount(key, weights=weight[has_role], minlength=n_members * k_role)

    def window(
        self, acc: dict[str, np.ndarray], rows: np.ndarray, w: int
    ) -> dict[str, np.ndarray]:
        """The ``w``-day columns of the members at ``rows`` from the running totals ``acc``."""
        n_members, k_type, k_role = self.n_members, len(self.type_slugs), len(self.role_slugs)
        nt = acc["nt"].reshape(n_members, k_type)[rows]
        wt = acc["wt"].reshape(n_members, k_type)[rows]
        nr = acc["nr"].reshape(n_members, k_role)[rows]
        wr = acc["wr"].reshape(n_members, k_role)[rows]
        columns = {f"n_all_{w}d": nt.sum(axis=1), f"wsum_all_{w}d": wt.sum(axis=1)}
        for j, slug in enumerate(self.type_slugs):
            columns[f"n_{slug}_{w}d"] = nt[:, j]
        for j, slug in enumerate(self.type_slugs):
            columns[f"wsum_{slug}_{w}d"] = wt[:, j]
        for j, slug in enumerate(self.role_slugs):
            columns[f"n_role_{slug}_{w}d"] = nr[:, j]
        for j, slug in enumerate(self.role_slugs):
            columns[f"wsum_role_{slug}_{w}d"] = wr[:, j]
        return columns


def activity_column_order(config: FeatureConfig) -> list[str]:
    """Column names of :func:`build_activity_features` for a resolved ``config``, in order."""
    type_slugs = column_slugs(config.activity_types, "type")
    role_slugs = column_slugs(config.roles, "role")
    names = []
    for w in config.windows_days:
        names += [f"n_all_{w}d", f"wsum_all_{w}d"]
        names += [f"n_{s}_{w}d" for s in type_slugs] + [f"wsum_{s}_{w}d" for s in type_slugs]
        names += [f"n_role_{s}_{w}d" for s in role_slugs]
        names += [f"wsum_role_{s}_{w}d" for s in role_slugs]
    return names + ["n_all_ever", "wsum_all_ever"]


def _last_time(snap: Snapshot, mask: np.ndarray | None = None) -> np.ndarray:
    """Last activity time per member code before as_of (NO_TIME when none)."""
    enc = snap.enc
    member, time = enc.member[: snap.n], enc.time[: snap.n]
    if mask is not None:
        member, time = member[mask], time[mask]
    last = np.full(enc.n_members, NO_TIME, dtype=np.int64)
    np.maximum.at(last, member, time)
    return last


def organizing_mask(snap: Snapshot, config: FeatureConfig) -> np.ndarray:
    """Which activities before as_of count as organizing (by type or by role)."""
    enc = snap.enc
    by_type = value_lookup(
        enc.type_names, dict.fromkeys(config.organizing_types, True), False, False
    ).astype(bool)
    by_role = value_lookup(
        enc.role_names, dict.fromkeys(config.organizing_roles, True), False, False
    ).astype(bool)
    return by_type[enc.activity_type[: snap.n] + 1] | by_role[enc.role[: snap.n] + 1]


def build_recency_features(
    tables: Tables, as_of, config: FeatureConfig = FeatureConfig()
) -> pd.DataFrame:
    """Recency: days since the last activity, the last organizing, the first activity, the last
    contact.

    Columns: ``days_since_last_activity`` and ``days_since_last_organizing`` (fill when it never
    happened: the member's tenure in days, i.e. "nothing since joining"),
    ``days_since_first_activity`` (fill 0), ``has_activity`` and ``has_organized`` (0/1),
    ``days_since_last_contact`` (since another member's activity last named the member as its
    counterpart, e.g. a message to them, oneself excluded; fill: tenure in days) and
    ``has_contact`` (0/1).
    Organizing = activity type in ``config.organizing_types`` or role in
    ``config.organizing_roles``.
    """
    snap = build_snapshot(tables, as_of)
    enc = snap.enc
    tenure = snap.tenure_days()
    last = _last_time(snap)[snap.rows]
    last_org = _last_time(snap, organizing_mask(snap, config))[snap.rows]
    first = np.full(enc.n_members, OPEN_END, dtype=np.int64)
    np.minimum.at(first, enc.member[: snap.n], enc.time[: snap.n])
    first = first[snap.rows]
    has = last != NO_TIME
    has_org = last_org != NO_TIME
    to = enc.counterpart[: snap.n]
    reached = (to >= 0) & (to != enc.member[: snap.n])  # talking to oneself is no contact
    last_contact = np.full(enc.n_members, NO_TIME, dtype=np.int64)
    np.maximum.at(last_contact, to[reached], enc.time[: snap.n][reached])
    last_contact = last_contact[snap.rows]
    has_contact = last_contact != NO_TIME
    return snap.frame(
        {
            "days_since_last_activity": np.where(has, (snap.now - last) / NS_PER_DAY, tenure),
            "days_since_last_organizing": np.where(
                has_org, (snap.now - last_org) / NS_PER_DAY, tenure
            ),
            "days_since_first_activity": np.where(has, (snap.now - first) / NS_PER_DAY, 0.0),
            "has_activity": has.astype(np.int64),
            "has_organized": has_org.astype(np.int64),
            "days_since_last_contact": np.where(
                has_contact, (snap.now - last_contact) / NS_PER_DAY, tenure
            ),
            "has_contact": has_contact.astype(np.int64),
        }
    )


def build_tenure_features(
    tables: Tables, as_of, config: FeatureConfig = FeatureConfig()
) -> pd.DataFrame:
    """Tenure: ``tenure_days`` = days from ``joined_at`` to ``as_of`` (always > 0)."""
    snap = build_snapshot(tables, as_of)
    return snap.frame({"tenure_days": snap.tenure_days()})


def _ratio(recent: np.ndarray, prior: np.ndarray) -> np.ndarray:
    total = recent + prior
    out = np.zeros(len(total))
    np.divide(recent - prior, total, out=out, where=total > 0)
    return out


def build_trend_features(
    tables: Tables, as_of, config: FeatureConfig = FeatureConfig()
) -> pd.DataFrame:
    """Trend: the last ``trend_days`` against the ``trend_days`` before them.

    Columns: ``trend_count_prior`` (activities in ``[as_of - 2T, as_of - T)``),
    ``trend_count_diff`` (last T minus prior T), ``trend_count_ratio`` ((last - prior) /
    (last + prior), in [-1, 1], 0 when both are 0), and the same three for weights
    (``trend_weight_*``).
    """
    snap = build_snapshot(tables, as_of)
    enc, n_members = snap.enc, snap.enc.n_members
    mid, lo = snap.start(config.trend_days), snap.start(2 * config.trend_days)
    rows = snap.rows

    def sums(a: int, b: int, weights: bool) -> np.ndarray:
        w = enc.weight[a:b] if weights else None
        return count_per_member(enc.member[a:b], n_members, w)[rows]

    recent_n, prior_n = sums(mid, snap.n, False), sums(lo, mid, False)
    recent_w, prior_w = sums(mid, snap.n, True), sums(lo, mid, True)
    return snap.frame(
        {
            "trend_count_prior": prior_n,
            "trend_count_diff": recent_n - prior_n,
            "trend_count_ratio": _ratio(recent_n.astype(float), prior_n.astype(float)),
            "trend_weight_prior": prior_w,
            "trend_weight_diff": recent_w - prior_w,
            "trend_weight_ratio": _ratio(recent_w, prior_w),
        }
    )


def _week_number(ns: np.ndarray | int):
    return (np.asarray(ns, dtype=np.int64) + _MONDAY_SHIFT_NS) // _WEEK_NS


def build_regularity_features(
    tables: Tables, as_of, config: FeatureConfig = FeatureConfig()
) -> pd.DataFrame:
    """Regularity over the last ``regularity_days`` (default 365), in ISO weeks (Monday start).

    Columns (D = ``regularity_days``): ``active_weeks_<D>d`` (distinct ISO weeks with at least
    one activity), ``active_week_share_<D>d`` (active weeks / weeks the member could have been
    active in the window, i.e. since joining), ``streak_current_weeks`` (consecutive active
    weeks ending with the week of as_of, or with the week before when the current week has no
    activity yet), ``streak_longest_weeks`` (longest run of consecutive active weeks) and
    ``silence_surprise``: how unlikely the current silence is for this member,
    ``-ln P(no activity for g weeks)`` = ``g * -ln(1 - s)`` with ``g`` the weeks since the last
    activity and ``s`` the active-week share (capped at 0.99); 0 without any activity. A member
    who came every week and has been silent for a month scores high; an occasional one does not.
    Streaks do not reach back beyond the window.
    """
    snap = build_snapshot(tables, as_of)
    enc, n_members = snap.enc, snap.enc.n_members
    days = config.regularity_days
    lo = snap.start(days)
    first_week = int(_week_number(snap.now - days * NS_PER_DAY))
    last_week = int(_week_number(snap.now - 1))
    n_weeks = last_week - first_week + 1
    week = _week_number(enc.time[lo : snap.n]) - first_week
    flag = np.zeros(n_members * n_weeks, dtype=bool)
    flag[enc.member[lo : snap.n].astype(np.int64) * n_weeks + week] = True
    grid = flag.reshape(n_members, n_weeks)[snap.rows]

    run = np.zeros(len(snap.rows), dtype=np.int64)
    longest = np.zeros_like(run)
    before_last = np.zeros_like(run)
    for j in range(n_weeks):  # loop over weeks (<= 54), vectorised over members
        if j == n_weeks - 1:
            before_last = run.copy()
        run = (run + 1) * grid[:, j]
        np.maximum(longest, run, out=longest)
    current = np.where(grid[:, -1], run, before_last)

    active = grid.sum(axis=1, dtype=np.int64)
    joined_week = _week_number(enc.joined[snap.rows])
    possible = last_week - np.maximum(joined_week, first_week) + 1
    share = active / np.maximum(possible, 1)
    last = _last_time(snap)[snap.rows]
    gap_weeks = np.where(last != NO_TIME, (snap.now - last) / (7 * NS_PER_DAY), 0.0)
    surprise = gap_weeks * -np.log1p(-np.minimum(share, 0.99))
    return snap.frame(
        {
            f"active_weeks_{days}d": active,
            f"active_week_share_{days}d": share,
            "streak_current_weeks": current,
            "streak_longest_weeks": longest,
            "silence_surprise": surprise,
        }
    )


def _member_order(tables: Tables, enc) -> np.ndarray:
    """Activity positions grouped by member, in time order within each (memoised)."""
    order = tables.cache.get(_MEMBER_ORDER_KEY)
    if order is None:
        order = np.argsort(enc.member, kind="stable")
        tables.cache[_MEMBER_ORDER_KEY] = order
    return order


def _breaks(tables: Tables, snap: Snapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per member code: longest break, total span and distinct active days before as_of.

    A break is the number of days between two consecutive active days (calendar days, UTC).
    """
    enc = snap.enc
    order = _member_order(tables, enc)
    order = order[order < snap.n]  # the point-in-time prefix, still grouped by member
    member = enc.member[order].astype(np.int64)
    day = enc.time[order] // NS_PER_DAY
    same = member[1:] == member[:-1]
    gap = np.where(same, day[1:] - day[:-1], 0)
    longest = np.zeros(enc.n_members, dtype=np.int64)
    np.maximum.at(longest, member[1:], gap)
    active_days = np.bincount(member, minlength=enc.n_members).astype(np.int64)
    np.subtract.at(active_days, member[1:], (same & (gap == 0)).astype(np.int64))
    span = np.zeros(enc.n_members, dtype=np.int64)
    np.add.at(span, member[1:], gap)
    return longest, span, active_days


def build_break_features(
    tables: Tables, as_of, config: FeatureConfig = FeatureConfig()
) -> pd.DataFrame:
    """Breaks: the member's own pauses, over the whole history, against the current silence.

    Columns: ``longest_break_days`` (most days between two consecutive active days, 0 with fewer
    than two), ``usual_break_days`` (days from the first to the last active day / (active days -
    1), 0 with fewer than two), ``silence_vs_longest_break`` (days since the last activity /
    (longest break + 30): above 1, silent for longer than any break the member came back from)
    and ``silence_vs_usual_break`` (days since the last activity / (usual break + 7)). Without
    any activity the silence is the tenure, as for ``days_since_last_activity``.
    """
    snap = build_snapshot(tables, as_of)
    longest, span, active_days = (a[snap.rows] for a in _breaks(tables, snap))
    usual = np.where(active_days > 1, span / np.maximum(active_days - 1, 1), 0.0)
    last = _last_time(snap)[snap.rows]
    silence = np.where(last != NO_TIME, (snap.now - last) / NS_PER_DAY, snap.tenure_days())
    return snap.frame(
        {
            "longest_break_days": longest.astype(np.float64),
            "usual_break_days": usual,
            "silence_vs_longest_break": silence / (longest + LONGEST_BREAK_SLACK_DAYS),
            "silence_vs_usual_break": silence / (usual + USUAL_BREAK_SLACK_DAYS),
        }
    )


def build_diversity_features(
    tables: Tables, as_of, config: FeatureConfig = FeatureConfig()
) -> pd.DataFrame:
    """Diversity over the last ``diversity_days`` (D, default 365).

    Columns: ``distinct_types_<D>d`` (distinct raw activity types, not pooled),
    ``distinct_events_<D>d``, ``distinct_chapters_<D>d`` (chapters of the activities).
    Missing values are not counted.
    """
    snap = build_snapshot(tables, as_of)
    enc, n_members = snap.enc, snap.enc.n_members
    days = config.diversity_days
    lo = snap.start(days)
    member = enc.member[lo : snap.n]
    rows = snap.rows
    return snap.frame(
        {
            f"distinct_types_{days}d": distinct_per_member(
                member, enc.activity_type[lo : snap.n], len(enc.type_names), n_members
            )[rows],
            f"distinct_events_{days}d": distinct_per_member(
                member, enc.event[lo : snap.n], enc.n_events, n_members
            )[rows],
            f"distinct_chapters_{days}d": distinct_per_member(
                member, enc.chapter[lo : snap.n], enc.n_chapters, n_members
            )[rows],
        }
    )
