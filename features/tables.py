"""The validated, normalised in-memory form of a data source.

A :class:`Tables` is what every feature builder, label builder and scorer takes. It is produced by
:func:`features.contract.load_tables` (or :func:`features.contract.validate_tables`), which
guarantees the column set and dtypes below, so downstream code never re-checks them.

Canonical columns (all timestamps are tz-naive ``datetime64[ns]`` in UTC; text columns are pandas
string columns with missing values as ``NA``):

- ``members``: member_id (unique), joined_at, chapter_id, email, consent (bool).
- ``activities``: member_id, occurred_at, activity_type, event_id, chapter_id, role,
  counterpart_id, weight (float64 >= 0). Sorted by occurred_at (stable), index 0..n-1.
- ``roles`` (optional): member_id, role, started_at, ended_at (NaT = still held), chapter_id.
- ``chapters`` (optional): chapter_id, name, city, country.
- ``outreach`` (optional): member_id, contacted_at, purpose (``readiness`` | ``retention``),
  outcome (``accepted`` | ``declined`` | ``no_answer`` | ``pending``), outcome_at (NaT = not
  known), channel, contacted_by. One row per contact a community manager made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

import pandas as pd

from features.errors import ConfigError

if TYPE_CHECKING:
    from features.quarantine import QuarantineReport

__all__ = [
    "Tables",
    "MEMBER_COLUMNS",
    "ACTIVITY_COLUMNS",
    "ROLE_COLUMNS",
    "CHAPTER_COLUMNS",
    "OUTREACH_COLUMNS",
    "OUTREACH_PURPOSES",
    "OUTREACH_OUTCOMES",
    "to_utc_naive",
    "parse_as_of",
    "parse_duration_days",
    "cut_tables",
]

MEMBER_COLUMNS = ["member_id", "joined_at", "chapter_id", "email", "consent"]
ACTIVITY_COLUMNS = [
    "member_id",
    "occurred_at",
    "activity_type",
    "event_id",
    "chapter_id",
    "role",
    "counterpart_id",
    "weight",
]
ROLE_COLUMNS = ["member_id", "role", "started_at", "ended_at", "chapter_id"]
CHAPTER_COLUMNS = ["chapter_id", "name", "city", "country"]
OUTREACH_COLUMNS = [
    "member_id",
    "contacted_at",
    "purpose",
    "outcome",
    "outcome_at",
    "channel",
    "contacted_by",
]
#: Why a member was contacted: to offer the core role, or to keep them.
OUTREACH_PURPOSES: tuple[str, ...] = ("readiness", "retention")
#: What came of a contact; ``pending`` until the member has answered.
OUTREACH_OUTCOMES: tuple[str, ...] = ("accepted", "declined", "no_answer", "pending")


@dataclass(frozen=True, eq=False)
class Tables:
    """A validated data source.

    Attributes:
        members: One row per member (see module docstring for columns).
        activities: The activity log, sorted by ``occurred_at``.
        roles: Role spells, or ``None`` when the source has no roles table.
        chapters: Chapter reference data, or ``None``.
        outreach: The contacts community managers made and their outcomes, or ``None``.
        source: A human-readable name of where the data came from (folder or URL, no secrets).
        cache: Private memo for derived, read-only encodings (filled lazily by feature code).
        quarantine: What a ``load_tables(..., on_invalid="quarantine")`` set aside, else ``None``.
    """

    members: pd.DataFrame
    activities: pd.DataFrame
    roles: pd.DataFrame | None = None
    chapters: pd.DataFrame | None = None
    outreach: pd.DataFrame | None = None
    source: str = "<memory>"
    cache: dict = field(default_factory=dict, repr=False, compare=False)
    quarantine: QuarantineReport | None = field(default=None, repr=False, compare=False)

    @property
    def last_observed(self) -> pd.Timestamp:
        """The latest time the data has observed: activities, joins and role starts.

        Role end dates count only up to that point: a spell planned to end in the future does not
        make the data extend into the future.
        """
        candidates = [self.activities["occurred_at"].max(), self.members["joined_at"].max()]
        if self.roles is not None and len(self.roles):
            candidates.append(self.roles["started_at"].max())
        valid = [c for c in candidates if not pd.isna(c)]
        if not valid:
            raise ConfigError(f"{self.source}: the data has no timestamps at all")
        latest = max(valid)
        if self.roles is not None and len(self.roles):
            ended = self.roles["ended_at"]
            ended = ended[ended <= latest]
            if len(ended) and not pd.isna(ended.max()):
                latest = max(latest, ended.max())
        return latest

    @property
    def first_observed(self) -> pd.Timestamp:
        """The earliest activity or join timestamp in the data."""
        candidates = [self.activities["occurred_at"].min(), self.members["joined_at"].min()]
        valid = [c for c in candidates if not pd.isna(c)]
        if not valid:
            raise ConfigError(f"{self.source}: the data has no timestamps at all")
        return min(valid)


def cut_tables(tables: Tables, at) -> Tables:
    """The tables as they were known at ``at``: nothing from ``at`` onwards.

    Members joined before ``at``; activities strictly before it (still sorted, index 0..n-1);
    role spells started before it, with ``ended_at`` set to ``NaT`` when the spell ended at or
    after ``at`` (its end was not known yet). Outreach: contacts made before ``at``; an outcome
    recorded at or after ``at`` (or undated, for a contact still in its first 30 days at ``at``)
    was not known yet, so it becomes ``pending``. Members, roles and outreach are re-indexed too.
    Chapters and ``source`` are unchanged; the derived-encoding cache starts empty.

    Args:
        tables: Validated tables.
        at: The cut time (anything :func:`parse_as_of` accepts).
    """
    when = parse_as_of(at)
    members = tables.members[tables.members["joined_at"] < when].reset_index(drop=True)
    activities = tables.activities[tables.activities["occurred_at"] < when]
    activities = activities.reset_index(drop=True)
    roles = tables.roles
    if roles is not None:
        roles = roles[roles["started_at"] < when].reset_index(drop=True)
        roles.loc[roles["ended_at"] >= when, "ended_at"] = pd.NaT
    return Tables(
        members=members,
        activities=activities,
        roles=roles,
        chapters=tables.chapters,
        outreach=None if tables.outreach is None else _cut_outreach(tables.outreach, when),
        source=tables.source,
    )


#: Days after a contact by which an undated outcome is taken as known (for point-in-time cuts).
UNDATED_OUTCOME_DAYS = 30


def _cut_outreach(outreach: pd.DataFrame, when: pd.Timestamp) -> pd.DataFrame:
    """The contacts made before ``when``, with the outcomes not known yet set to pending."""
    kept = outreach[outreach["contacted_at"] < when].reset_index(drop=True)
    known_at = kept["outcome_at"].fillna(
        kept["contacted_at"] + pd.Timedelta(days=UNDATED_OUTCOME_DAYS)
    )
    unknown = (known_at >= when) & (kept["outcome"] != "pending")
    kept.loc[unknown, "outcome"] = "pending"
    kept.loc[unknown, "outcome_at"] = pd.NaT
    return kept


def to_utc_naive(value: pd.Series) -> pd.Series:
    """Convert a datetime-like Series to tz-naive UTC ``datetime64[ns]``.

    Aware values are converted to UTC; naive values are taken as UTC already.
    """
    if isinstance(value.dtype, pd.DatetimeTZDtype):
        value = value.dt.tz_convert("UTC").dt.tz_localize(None)
    return value.astype("datetime64[ns]")


def parse_as_of(value: str | date | datetime | pd.Timestamp) -> pd.Timestamp:
    """Parse an ``as_of`` date into a tz-naive UTC timestamp.

    Args:
        value: An ISO 8601 string (``2024-05-01`` or ``2024-05-01T00:00:00+02:00``), a date,
            a datetime or a Timestamp.

    Text must be ISO 8601, as in the data contract: ``01/02/2022`` could be 1 February or
    2 January, and is refused rather than guessed.

    Raises:
        ConfigError: If the value cannot be parsed.
    """
    try:
        if isinstance(value, str):
            ts = pd.to_datetime(value.strip(), format="ISO8601")
        else:
            ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"as_of: cannot parse {value!r} as an ISO 8601 date; write it as YYYY-MM-DD "
            "(e.g. 2024-05-01), so that no day and month can be swapped"
        ) from exc
    if pd.isna(ts):
        raise ConfigError(f"as_of: cannot parse {value!r} as an ISO 8601 date")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.as_unit("ns")


def parse_duration_days(value: str | int | float) -> int:
    """Parse a duration such as ``90d``, ``12w``, ``6m`` (30-day months), ``1y`` or ``90``.

    Returns:
        The duration in whole days (> 0).

    Raises:
        ConfigError: If the value is not a positive duration.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        days = float(value)
    else:
        text = str(value).strip().lower()
        units = {"d": 1, "w": 7, "m": 30, "y": 365}
        try:
            if text and text[-1] in units:
                days = float(text[:-1]) * units[text[-1]]
            else:
                days = float(text)
        except ValueError as exc:
            raise ConfigError(
                f"duration: cannot parse {value!r}; use e.g. 90d, 12w, 6m or 1y"
            ) from exc
    if not days > 0 or days != int(days):
        raise ConfigError(f"duration: {value!r} must be a positive whole number of days")
    return int(days)
