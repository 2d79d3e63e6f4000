"""What every feature column means, including the pattern columns (``n_attend_30d``, ...).

:func:`describe_columns` turns column names into one-line meanings (used by reports and reason
codes); :data:`FEATURE_FAMILIES` describes the families of :mod:`features.build`. The fill used
when something never happened is part of each meaning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["FEATURE_FAMILIES", "describe_columns", "family_of", "UNKNOWN_COLUMN"]

#: Family name -> what the family measures (the keys match ``features.build.FAMILY_BUILDERS``).
FEATURE_FAMILIES: dict[str, str] = {
    "activity": "Activity counts and weighted sums per look-back window, in total, by activity "
    "type and by role (rare types and roles pooled into 'other').",
    "recency": "Days since the last activity, the last organizing activity, the first "
    "activity and the last contact from another member, with has_* indicators.",
    "tenure": "Days since the member joined.",
    "trend": "The last 90 days against the 90 days before them (difference and bounded ratio).",
    "regularity": "Distinct active ISO weeks in the last 365 days, and streaks of consecutive "
    "active weeks.",
    "breaks": "The member's own pauses over the whole history (longest and usual days between "
    "active days), and the current silence against them.",
    "diversity": "Distinct activity types, events and chapters in the last 365 days.",
    "roles": "Role history from the roles table: holds the core role now, past spells, days in "
    "the role (all zero without a roles table).",
    "network": "Ties in the last 365 days (co-participation in an event or direct interaction): "
    "how many, how strong, how many have gone quiet, how many outside the home chapter.",
    "chapter": "The home chapter: size, active members, activity volume, link density, and its "
    "core members (how many, per active member, shortfall against the community-wide ratio, days "
    "since one last stepped down or left).",
    "orbit": "Orbit-style baseline scores: love (decayed activity weight) and reach (sum of "
    "decayed tie strengths).",
    "calendar": "The time of year of the snapshot (the same for every member).",
}

UNKNOWN_COLUMN = "no description (not a corecast feature column)"

_FIXED: dict[str, tuple[str, str]] = {
    "n_all_ever": ("activity", "number of activities before as_of, all history"),
    "wsum_all_ever": ("activity", "sum of activity weights before as_of, all history"),
    "days_since_last_activity": (
        "recency",
        "days since the last activity (tenure in days when there was none)",
    ),
    "days_since_last_organizing": (
        "recency",
        "days since the last organizing activity (organizing type or organizer/host/speaker "
        "role; tenure in days when there was none)",
    ),
    "days_since_first_activity": ("recency", "days since the first activity (0 when none)"),
    "has_activity": ("recency", "1 if the member has any activity before as_of"),
    "has_organized": ("recency", "1 if the member has ever organized before as_of"),
    "days_since_last_contact": (
        "recency",
        "days since another member's activity last named the member as its counterpart (e.g. "
        "a message to them; tenure in days when there was none)",
    ),
    "has_contact": (
        "recency",
        "1 if another member's activity named the member as its counterpart before as_of",
    ),
    "tenure_days": ("tenure", "days since the member joined"),
    "trend_count_prior": ("trend", "number of activities in the 90 days before the last 90"),
    "trend_count_diff": (
        "trend",
        "activities in the last 90 days minus activities in the 90 days before",
    ),
    "trend_count_ratio": (
        "trend",
        "(last 90 d - prior 90 d) / (last 90 d + prior 90 d) of activity counts, -1..1 "
        "(0 without activity)",
    ),
    "trend_weight_prior": ("trend", "sum of activity weights in the 90 days before the last 90"),
    "trend_weight_diff": (
        "trend",
        "activity weight in the last 90 days minus activity weight in the 90 days before",
    ),
    "trend_weight_ratio": (
        "trend",
        "(last 90 d - prior 90 d) / (last 90 d + prior 90 d) of activity weights, -1..1 "
        "(0 without activity)",
    ),
    "streak_current_weeks": (
        "regularity",
        "consecutive active ISO weeks up to the current week (or the week before when the "
        "current week has no activity yet)",
    ),
    "streak_longest_weeks": (
        "regularity",
        "longest run of consecutive active ISO weeks in the last 365 days",
    ),
    "silence_surprise": (
        "regularity",
        "-ln P(the current silence) given the member's active-week share over the last 365 "
        "days: weeks since the last activity x -ln(1 - share); 0 without activity",
    ),
    "longest_break_days": (
        "breaks",
        "most days between two consecutive active days before as_of (0 with fewer than two)",
    ),
    "usual_break_days": (
        "breaks",
        "days from the first to the last active day / (active days - 1), 0 with fewer than two",
    ),
    "silence_vs_longest_break": (
        "breaks",
        "days since the last activity / (longest break + 30); above 1: silent for longer than "
        "any break the member came back from",
    ),
    "silence_vs_usual_break": (
        "breaks",
        "days since the last activity / (usual break + 7)",
    ),
    "role_core_now": ("roles", "1 if the member holds the core role (ambassador) at as_of"),
    "role_core_past_spells": ("roles", "number of core-role spells that ended before as_of"),
    "role_core_days_total": ("roles", "total days in the core role up to as_of"),
    "role_core_days_current": (
        "roles",
        "days into the current core-role spell (0 when not holding it)",
    ),
    "days_since_role_core_end": (
        "roles",
        "days since the last core-role spell ended (tenure in days when none ended)",
    ),
    "role_any_now": ("roles", "1 if the member holds any role of the roles table at as_of"),
    "role_any_spells": ("roles", "number of role spells (any role) started before as_of"),
    "net_coparticipants": (
        "network",
        "distinct members who shared an event with the member in the last 365 days",
    ),
    "net_direct_ties": (
        "network",
        "distinct members with a direct interaction (counterpart, either direction) in the "
        "last 365 days",
    ),
    "net_ties": ("network", "distinct tied members (co-participation or direct), last 365 days"),
    "net_tie_strength_mean": (
        "network",
        "mean tie strength (shared events and interactions, -10 % per month; 0 without ties)",
    ),
    "net_quiet_tie_share": (
        "network",
        "share of the member's ties with no activity in the last 90 days (0 without ties)",
    ),
    "net_ties_outside_chapter": ("network", "ties whose home chapter differs from the member's"),
    "net_outside_chapter_share": (
        "network",
        "share of the member's ties outside the home chapter (0 without ties)",
    ),
    "has_ties": ("network", "1 if the member has at least one tie in the last 365 days"),
    "chapter_size": ("chapter", "members of the home chapter known at as_of (0 without one)"),
    "chapter_link_density": (
        "chapter",
        "share of member pairs of the home chapter that are tied (0..1)",
    ),
    "chapter_core_members": (
        "chapter",
        "members of the home chapter holding the core role (ambassador) at as_of",
    ),
    "chapter_core_shortfall": (
        "chapter",
        "how far the home chapter falls below the community-wide ratio of core members to "
        "active members, 0..1 (1 = no core member; 0 without a chapter)",
    ),
    "days_since_chapter_core_end": (
        "chapter",
        "days since a core-role spell of a home-chapter member last ended (tenure in days when "
        "none ended)",
    ),
    "orbit_love": (
        "orbit",
        "Orbit-style love: sum of activity weights, each -10 % per month since it happened",
    ),
    "season_sin": ("calendar", "sine of the time of year of the snapshot (same for everyone)"),
    "season_cos": ("calendar", "cosine of the time of year of the snapshot (same for everyone)"),
    "orbit_reach": (
        "orbit",
        "Orbit-style reach: sum of the strengths of the member's ties (-10 % per month)",
    ),
}


def _type(value: str) -> str:
    if value == "other":
        return "of other activity types (outside the type vocabulary)"
    return f"of type '{value}'"


def _role(value: str) -> str:
    if value == "other":
        return "in other roles (outside the role vocabulary)"
    return f"in role '{value}'"


_PATTERNS: list[tuple[re.Pattern, str, object]] = [
    (re.compile(r"^n_all_(\d+)d$"), "activity",
     lambda w: f"number of activities in the last {w} days"),
    (re.compile(r"^wsum_all_(\d+)d$"), "activity",
     lambda w: f"sum of activity weights in the last {w} days"),
    (re.compile(r"^n_role_(.+)_(\d+)d$"), "activity",
     lambda r, w: f"number of activities {_role(r)} in the last {w} days"),
    (re.compile(r"^wsum_role_(.+)_(\d+)d$"), "activity",
     lambda r, w: f"sum of weights of activities {_role(r)} in the last {w} days"),
    (re.compile(r"^n_(.+)_(\d+)d$"), "activity",
     lambda t, w: f"number of activities {_type(t)} in the last {w} days"),
    (re.compile(r"^wsum_(.+)_(\d+)d$"), "activity",
     lambda t, w: f"sum of weights of activities {_type(t)} in the last {w} days"),
    (re.compile(r"^active_weeks_(\d+)d$"), "regularity",
     lambda d: f"distinct ISO weeks with at least one activity in the last {d} days"),
    (re.compile(r"^active_week_share_(\d+)d$"), "regularity",
     lambda d: f"active weeks / weeks since joining, within the last {d} days (0..1)"),
    (re.compile(r"^distinct_types_(\d+)d$"), "diversity",
     lambda d: f"distinct activity types in the last {d} days"),
    (re.compile(r"^distinct_events_(\d+)d$"), "diversity",
     lambda d: f"distinct events attended or joined in the last {d} days"),
    (re.compile(r"^distinct_chapters_(\d+)d$"), "diversity",
     lambda d: f"distinct chapters of the member's activities in the last {d} days"),
    (re.compile(r"^chapter_active_members_(\d+)d$"), "chapter",
     lambda d: f"members of the home chapter with an activity in the last {d} days"),
    (re.compile(r"^chapter_active_share_(\d+)d$"), "chapter",
     lambda d: f"share of the home chapter's members active in the last {d} days"),
    (re.compile(r"^chapter_core_per_active_(\d+)d$"), "chapter",
     lambda d: f"core members of the home chapter per member active in the last {d} days"),
    (re.compile(r"^chapter_activities_per_member_(\d+)d$"), "chapter",
     lambda d: f"activities in the home chapter in the last {d} days, per member"),
    (re.compile(r"^chapter_activities_(\d+)d$"), "chapter",
     lambda d: f"activities in the home chapter in the last {d} days"),
]


def _lookup(column: str) -> tuple[str, str] | None:
    if column in _FIXED:
        return _FIXED[column]
    for pattern, family, text in _PATTERNS:
        match = pattern.match(column)
        if match:
            return family, text(*match.groups())
    return None


def describe_columns(columns: Iterable[str]) -> dict[str, str]:
    """Meaning of each feature column.

    Args:
        columns: Column names (e.g. ``TrainingFrame.feature_columns``).

    Returns:
        Column name -> one-line meaning; columns that are not corecast features get
        :data:`UNKNOWN_COLUMN`.
    """
    out = {}
    for column in columns:
        found = _lookup(str(column))
        out[column] = found[1] if found else UNKNOWN_COLUMN
    return out


def family_of(column: str) -> str | None:
    """The feature family of a column (a key of :data:`FEATURE_FAMILIES`), or ``None``."""
    found = _lookup(str(column))
    return found[0] if found else None
