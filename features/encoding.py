"""Integer encodings of a :class:`~features.tables.Tables`, computed once and memoised.

Feature, label and frame builders never touch the text columns of the activity log per snapshot:
they work on the arrays of :class:`EncodedTables`, built on first use and kept in
``tables.cache``. Member codes follow the order of ``tables.members``; times are int64
nanoseconds; activity types, roles, events and chapters are dense int32 codes with ``-1`` for
missing values. The activity arrays stay sorted by time, so "rows strictly before as_of" is always
the prefix ``[0, rows_before(as_of))`` and a window ``[as_of - w, as_of)`` is a contiguous slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.tables import Tables, parse_as_of

__all__ = [
    "NS_PER_DAY",
    "OPEN_END",
    "NO_TIME",
    "EncodedRoles",
    "EncodedTables",
    "encode_tables",
    "to_ns",
]

NS_PER_DAY = 86_400 * 10**9
#: Stands for "still open" (a role spell without ended_at).
OPEN_END = np.iinfo(np.int64).max
#: Stands for "never happened" in per-member last-time arrays.
NO_TIME = np.iinfo(np.int64).min

_CACHE_KEY = "features.encoding"


@dataclass(frozen=True, eq=False)
class EncodedRoles:
    """Role spells as arrays (rows with an unknown member or no start are dropped).

    Attributes:
        member: Member code per spell (int32).
        role: Role code per spell (int32, codes into ``role_names``; -1 when missing).
        role_names: The distinct role names of the roles table.
        started: Start time (int64 ns).
        ended: End time (int64 ns); :data:`OPEN_END` when the spell is still held.
    """

    member: np.ndarray
    role: np.ndarray
    role_names: pd.Index
    started: np.ndarray
    ended: np.ndarray

    def role_code(self, name: str) -> int:
        """Return the code of a role name, or -1 when the roles table never mentions it."""
        hits = np.flatnonzero(np.asarray(self.role_names == name))
        return int(hits[0]) if len(hits) else -1


@dataclass(frozen=True, eq=False)
class EncodedTables:
    """Read-only integer view of a data source (see the module docstring).

    Attributes:
        member_ids: ``members.member_id`` in table order (member code = position).
        joined: Join time per member (int64 ns). A missing join time is replaced by the member's
            first activity, or :data:`OPEN_END` (never counted as joined) without any.
        consent: Consent flag per member (bool; missing counts as no consent).
        member_chapter: Home chapter code per member (int32, -1 when missing).
        chapter_names: Chapter names of the chapter codes (members and activities together).
        time: Activity times (int64 ns), ascending.
        member: Member code per activity (int32).
        activity_type: Activity type code (int32, -1 when missing).
        type_names: Names of the activity type codes.
        role: Role code of the activity (int32, -1 when missing).
        role_names: Names of the activity role codes.
        event: Event code (int32, -1 when the activity is not tied to an event).
        n_events: Number of distinct events.
        chapter: Chapter code of the activity (int32, -1 when missing).
        counterpart: Member code of the counterpart (int32, -1 when missing or unknown).
        weight: Activity weight (float64).
        roles: The roles table as arrays, or ``None`` when the source has none.
    """

    member_ids: pd.Index
    joined: np.ndarray
    consent: np.ndarray
    member_chapter: np.ndarray
    chapter_names: pd.Index
    time: np.ndarray
    member: np.ndarray
    activity_type: np.ndarray
    type_names: pd.Index
    role: np.ndarray
    role_names: pd.Index
    event: np.ndarray
    n_events: int
    chapter: np.ndarray
    counterpart: np.ndarray
    weight: np.ndarray
    roles: EncodedRoles | None

    @property
    def n_members(self) -> int:
        """Number of members (rows of the members table)."""
        return len(self.member_ids)

    @property
    def n_chapters(self) -> int:
        """Number of distinct chapter codes."""
        return len(self.chapter_names)

    def rows_before(self, when_ns: int) -> int:
        """Number of activities with ``time < when_ns`` (the point-in-time prefix)."""
        return int(np.searchsorted(self.time, when_ns, side="left"))

    def rows_at_or_before(self, when_ns: int) -> int:
        """Number of activities with ``time <= when_ns``."""
        return int(np.searchsorted(self.time, when_ns, side="right"))


def to_ns(value) -> int:
    """Return ``parse_as_of(value)`` as int64 nanoseconds since the epoch."""
    return int(parse_as_of(value).value)


def _times(series: pd.Series) -> np.ndarray:
    """Datetime column -> int64 ns (NaT becomes :data:`NO_TIME`)."""
    return series.to_numpy(dtype="datetime64[ns]").view("int64")


def _codes(series: pd.Series) -> tuple[np.ndarray, pd.Index]:
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return codes.astype(np.int32, copy=False), pd.Index(uniques)


def _positions(index: pd.Index, values: pd.Series) -> np.ndarray:
    """Position of each value in ``index`` (int32, -1 when missing or unknown).

    Factorises first, so the (slow) string look-up runs once per distinct value.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    lookup = np.append(index.get_indexer(uniques), -1).astype(np.int32)
    return lookup[codes]


def _activity_order(member: np.ndarray, time: np.ndarray) -> np.ndarray | None:
    """The rows to keep, in time order (``None``: all of them, as they are).

    Activities of unknown members or without a time are left out; the contract sorts
    activities, but an unsorted frame is sorted here (stable) so the encoding stays correct.
    """
    keep = (member >= 0) & (time != NO_TIME)
    order = None if keep.all() else np.flatnonzero(keep)
    if len(time) > 1:
        t_kept = time if order is None else time[order]
        if np.any(t_kept[1:] < t_kept[:-1]):
            base = np.arange(len(time)) if order is None else order
            order = base[np.argsort(t_kept, kind="stable")]
    return order


def _joined(members: pd.DataFrame, member: np.ndarray, time: np.ndarray) -> np.ndarray:
    """Join times (ns); a missing one is the member's first activity."""
    joined = _times(members["joined_at"]).copy()
    missing_join = joined == NO_TIME
    if missing_join.any():
        first = np.full(len(joined), OPEN_END, dtype=np.int64)
        np.minimum.at(first, member, time)
        joined[missing_join] = first[missing_join]
    return joined


def _encode_roles(roles: pd.DataFrame, member_ids: pd.Index) -> EncodedRoles:
    """Role spells of known members with a start; an open spell ends at :data:`OPEN_END`."""
    r_member = _positions(member_ids, roles["member_id"])
    r_start = _times(roles["started_at"])
    r_end = _times(roles["ended_at"]).copy()
    r_end[r_end == NO_TIME] = OPEN_END
    r_role, r_names = _codes(roles["role"])
    ok = (r_member >= 0) & (r_start != NO_TIME)
    return EncodedRoles(
        member=r_member[ok],
        role=r_role[ok],
        role_names=r_names,
        started=r_start[ok],
        ended=r_end[ok],
    )


def encode_tables(tables: Tables) -> EncodedTables:
    """Return the integer encoding of ``tables``, building it on first use.

    The result is memoised in ``tables.cache``; the tables themselves are never modified.
    Activities whose member is not in the members table, or without a time, are left out.

    Args:
        tables: A validated data source.

    Returns:
        The shared, read-only :class:`EncodedTables`.
    """
    cached = tables.cache.get(_CACHE_KEY)
    if cached is not None:
        return cached

    members = tables.members
    acts = tables.activities
    member_ids = pd.Index(members["member_id"], name="member_id")
    n_members = len(member_ids)

    member = _positions(member_ids, acts["member_id"])
    time = _times(acts["occurred_at"])
    order = _activity_order(member, time)

    def take(values: np.ndarray) -> np.ndarray:
        return values if order is None else values[order]

    chapter_codes, chapter_names = _codes(
        pd.concat([members["chapter_id"], acts["chapter_id"]], ignore_index=True)
    )
    type_codes, type_names = _codes(acts["activity_type"])
    role_codes, role_names = _codes(acts["role"])
    event_codes, event_names = _codes(acts["event_id"])
    time = take(time)
    member = take(member)
    encoded = EncodedTables(
        member_ids=member_ids,
        joined=_joined(members, member, time),
        consent=members["consent"].to_numpy(dtype=bool, na_value=False),
        member_chapter=chapter_codes[:n_members],
        chapter_names=chapter_names,
        time=np.ascontiguousarray(time),
        member=np.ascontiguousarray(member),
        activity_type=take(type_codes),
        type_names=type_names,
        role=take(role_codes),
        role_names=role_names,
        event=take(event_codes),
        n_events=len(event_names),
        chapter=take(chapter_codes[n_members:]),
        counterpart=take(_positions(member_ids, acts["counterpart_id"])),
        weight=take(acts["weight"].to_numpy(dtype=np.float64, na_value=0.0)),
        roles=None if tables.roles is None else _encode_roles(tables.roles, member_ids),
    )
    tables.cache[_CACHE_KEY] = encoded
    return encoded
