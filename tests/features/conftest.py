"""Tiny hand-written data sources for the feature, label and frame tests.

``community`` is the reference fixture. Everything is relative to ``T = 2024-07-01 00:00``
(a Monday); ``d(n)`` is ``T - n days`` and ``a(n)`` is ``T + n days``.

Members (consent, home chapter, joined -> tenure at T):

    A  paris  consent  2023-01-01 -> 547 days
    B  paris  consent  2023-06-01 -> 396 days
    C  lyon   consent  2024-03-01 -> 122 days
    D  paris  NO       2022-01-01 -> 912 days
    E  lyon   consent  2024-08-01 (joins after T: not a feature row)

Activities (# type event chapter role counterpart weight):

     1 A d(400) attend   e0 paris attendee  -  1
     2 D d(400) attend   e0 paris attendee  -  1
     3 D d(300) post     -  paris -         -  1
     4 A d(200) organize e2 paris organizer -  5
     5 D d(200) attend   e2 paris attendee  -  1
     6 A d(100) message  -  paris -         B  0.5
     7 A d(60)  attend   e3 paris attendee  -  1
     8 B d(60)  attend   e3 paris attendee  -  1
     9 C d(60)  talk     e3 paris speaker   -  3
    10 B d(20)  message  -  paris -         A  0.5
    11 B d(10)  attend   e4 lyon  attendee  -  1
    12 D d(10)  attend   e7 lyon  attendee  -  1
    13 C d(3)   message  -  lyon  -         D  0.5
    14 A T      attend   e5 paris attendee  -  1    (exactly at as_of)
    15 C a(30)  attend   e6 lyon  attendee  -  1
    16 C a(90)  post     -  lyon  -         -  1
    17 B a(91)  post     -  paris -         -  1

Role spells (member role start end):

    r1 D ambassador d(500) d(100)
    r2 C ambassador d(30)  T        (ends exactly at as_of: still held at T)
    r3 B organizer  d(30)  open
    r4 A ambassador a(180) open
    r5 B ambassador a(181) open
    r6 A ambassador d(300) d(250)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from features.tables import Tables

T = pd.Timestamp("2024-07-01")
MEMBERS = ("A", "B", "C", "D")  # the feature rows at T, in members-table order


def d(days: float) -> pd.Timestamp:
    """``T - days``."""
    return T - pd.Timedelta(days=days)


def a(days: float) -> pd.Timestamp:
    """``T + days``."""
    return T + pd.Timedelta(days=days)


def _text(values) -> pd.Series:
    return pd.Series(list(values), dtype="str")


def _times(values) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values)), dtype="datetime64[ns]")


def make_tables(
    members: Sequence[tuple],
    activities: Sequence[tuple],
    roles: Sequence[tuple] | None = None,
    source: str = "<test>",
) -> Tables:
    """Build a contract-shaped :class:`Tables` from compact tuples.

    Args:
        members: ``(member_id, joined_at, chapter_id, consent)``.
        activities: ``(member_id, occurred_at, activity_type, event_id, chapter_id, role,
            counterpart_id, weight)``; ``None`` for missing values. Sorted here (stable).
        roles: ``(member_id, role, started_at, ended_at)`` or ``None`` for no roles table.
    """
    m = list(zip(*members, strict=True)) if members else [[], [], [], []]
    members_df = pd.DataFrame(
        {
            "member_id": _text(m[0]),
            "joined_at": _times(m[1]),
            "chapter_id": _text(m[2]),
            "email": _text(f"{x.lower()}@corecast.invalid" for x in m[0]),
            "consent": pd.Series(list(m[3]), dtype=bool),
        }
    )
    cols = list(zip(*activities, strict=True)) if activities else [[]] * 8
    acts = pd.DataFrame(
        {
            "member_id": _text(cols[0]),
            "occurred_at": _times(cols[1]),
            "activity_type": _text(cols[2]),
            "event_id": _text(cols[3]),
            "chapter_id": _text(cols[4]),
            "role": _text(cols[5]),
            "counterpart_id": _text(cols[6]),
            "weight": pd.Series(list(cols[7]), dtype="float64"),
        }
    )
    acts = acts.sort_values("occurred_at", kind="stable", ignore_index=True)
    roles_df = None
    if roles is not None:
        r = list(zip(*roles, strict=True)) if roles else [[]] * 4
        roles_df = pd.DataFrame(
            {
                "member_id": _text(r[0]),
                "role": _text(r[1]),
                "started_at": _times(r[2]),
                "ended_at": _times(r[3]),
                "chapter_id": _text([None] * len(r[0])),
            }
        )
    return Tables(members=members_df, activities=acts, roles=roles_df, source=source)


COMMUNITY_MEMBERS = [
    ("A", "2023-01-01", "paris", True),
    ("B", "2023-06-01", "paris", True),
    ("C", "2024-03-01", "lyon", True),
    ("D", "2022-01-01", "paris", False),
    ("E", "2024-08-01", "lyon", True),
]

COMMUNITY_ACTIVITIES = [
    ("A", d(400), "attend", "e0", "paris", "attendee", None, 1.0),
    ("D", d(400), "attend", "e0", "paris", "attendee", None, 1.0),
    ("D", d(300), "post", None, "paris", None, None, 1.0),
    ("A", d(200), "organize", "e2", "paris", "organizer", None, 5.0),
    ("D", d(200), "attend", "e2", "paris", "attendee", None, 1.0),
    ("A", d(100), "message", None, "paris", None, "B", 0.5),
    ("A", d(60), "attend", "e3", "paris", "attendee", None, 1.0),
    ("B", d(60), "attend", "e3", "paris", "attendee", None, 1.0),
    ("C", d(60), "talk", "e3", "paris", "speaker", None, 3.0),
    ("B", d(20), "message", None, "paris", None, "A", 0.5),
    ("B", d(10), "attend", "e4", "lyon", "attendee", None, 1.0),
    ("D", d(10), "attend", "e7", "lyon", "attendee", None, 1.0),
    ("C", d(3), "message", None, "lyon", None, "D", 0.5),
    ("A", T, "attend", "e5", "paris", "attendee", None, 1.0),
    ("C", a(30), "attend", "e6", "lyon", "attendee", None, 1.0),
    ("C", a(90), "post", None, "lyon", None, None, 1.0),
    ("B", a(91), "post", None, "paris", None, None, 1.0),
]

COMMUNITY_ROLES = [
    ("D", "ambassador", d(500), d(100)),
    ("C", "ambassador", d(30), T),
    ("B", "organizer", d(30), None),
    ("A", "ambassador", a(180), None),
    ("B", "ambassador", a(181), None),
    ("A", "ambassador", d(300), d(250)),
]


@pytest.fixture
def community() -> Tables:
    """The reference fixture of the module docstring (with a roles table)."""
    return make_tables(COMMUNITY_MEMBERS, COMMUNITY_ACTIVITIES, COMMUNITY_ROLES)


@pytest.fixture
def community_no_roles() -> Tables:
    """The reference fixture without a roles table."""
    return make_tables(COMMUNITY_MEMBERS, COMMUNITY_ACTIVITIES, None)


def random_tables(
    seed: int = 0,
    n_members: int = 40,
    n_activities: int = 1500,
    days: int = 500,
    start: str = "2023-01-01",
    with_roles: bool = True,
) -> Tables:
    """A small random community (numpy only) for frame and cross-check tests."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start)
    ids = [f"m{i:03d}" for i in range(n_members)]
    chapters = np.array(["paris", "lyon", "nantes", None], dtype=object)
    joined = [t0 + pd.Timedelta(days=float(x)) for x in rng.uniform(-100, days * 0.6, n_members)]
    members = [
        (ids[i], joined[i], chapters[rng.integers(0, 4)], bool(rng.random() < 0.9))
        for i in range(n_members)
    ]
    types = np.array(["attend", "register", "organize", "message", "post"])
    roles_of = {"attend": "attendee", "register": None, "organize": "organizer",
                "message": None, "post": None}
    acts = []
    for _ in range(n_activities):
        i = int(rng.integers(0, n_members))
        when = joined[i] + pd.Timedelta(days=float(rng.uniform(0, days)))
        kind = str(types[rng.integers(0, len(types))])
        event = f"e{rng.integers(0, 60)}" if kind in ("attend", "register", "organize") else None
        counterpart = ids[int(rng.integers(0, n_members))] if kind == "message" else None
        acts.append((ids[i], when.floor("s"), kind, event, chapters[rng.integers(0, 3)],
                     roles_of[kind], counterpart, float(rng.choice([0.5, 1.0, 3.0]))))
    roles = None
    if with_roles:
        roles = []
        for i in rng.choice(n_members, size=n_members // 3, replace=False):
            s = joined[i] + pd.Timedelta(days=float(rng.uniform(10, days)))
            e = s + pd.Timedelta(days=float(rng.uniform(20, 200))) if rng.random() < 0.5 else None
            roles.append((ids[i], "ambassador", s.floor("s"), None if e is None else e.floor("s")))
        roles.append((ids[0], "host", t0, None))
    return make_tables(members, acts, roles)
