"""Feature configuration, vocabulary resolution and the per-snapshot context.

:class:`FeatureConfig` holds every knob of the point-in-time features. Its activity-type and role
vocabularies may be left open (``None``): :func:`resolve_vocabulary` then fills them with the
most frequent values among the rows strictly before ``as_of``. Training resolves them once and
freezes them so every snapshot and every later scoring run gets the same columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from features.encoding import NS_PER_DAY, EncodedTables, encode_tables
from features.errors import ConfigError
from features.tables import Tables, parse_as_of

__all__ = [
    "FeatureConfig",
    "Snapshot",
    "build_snapshot",
    "resolve_vocabulary",
    "column_slugs",
    "OTHER",
]

#: Name of the bucket that pools activity types / roles outside the vocabulary.
OTHER = "other"

_INT_FIELDS = (
    "max_types",
    "max_roles",
    "trend_days",
    "regularity_days",
    "diversity_days",
    "network_window_days",
    "active_within_days",
    "chapter_active_days",
    "block_pairs",
)


@dataclass(frozen=True)
class FeatureConfig:
    """Settings of :func:`features.build.build_features`.

    Attributes:
        windows_days: Look-back windows (days) of the activity counts and weighted sums.
        activity_types: Activity-type vocabulary; ``None`` = the ``max_types`` most frequent
            types before as_of. Types outside it are pooled into ``other``.
        roles: Activity-role vocabulary; ``None`` = the ``max_roles`` most frequent roles.
        max_types: Size of the resolved activity-type vocabulary.
        max_roles: Size of the resolved role vocabulary.
        organizing_types: Activity types that count as organizing.
        organizing_roles: Activity roles that count as organizing.
        trend_days: Length of the two periods compared by the trend features.
        regularity_days: Window of the active-weeks and streak features.
        diversity_days: Window of the distinct types / events / chapters features.
        core_role: The role of the ``roles`` table tracked by the role-history features.
        network_window_days: Window of the co-participation and direct-tie network.
        tie_decay_per_month: Tie strength factor per month since the shared event (0.9 = -10 %).
        love_decay_per_month: Love factor per month since the activity.
        days_per_month: Length of a month for the decays.
        direct_tie_weight: Strength of one direct interaction relative to one shared event.
        active_within_days: A tie is "quiet" without activity in this many days before as_of.
        chapter_active_days: Window of the chapter's active members and activity volume.
        block_pairs: Upper bound of member pairs materialised at once by the network features
            (bounds memory; does not change results).
    """

    windows_days: tuple[int, ...] = (30, 90, 365)
    activity_types: tuple[str, ...] | None = None
    roles: tuple[str, ...] | None = None
    max_types: int = 8
    max_roles: int = 8
    organizing_types: tuple[str, ...] = ("organize",)
    organizing_roles: tuple[str, ...] = ("organizer", "host", "speaker")
    trend_days: int = 90
    regularity_days: int = 365
    diversity_days: int = 365
    core_role: str = "ambassador"
    network_window_days: int = 365
    tie_decay_per_month: float = 0.9
    love_decay_per_month: float = 0.9
    days_per_month: float = 30.4375
    direct_tie_weight: float = 1.0
    active_within_days: int = 90
    chapter_active_days: int = 90
    block_pairs: int = 4_000_000

    def __post_init__(self) -> None:
        for name in ("windows_days", "activity_types", "roles", "organizing_types",
                     "organizing_roles"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, tuple(value))
        windows = self.windows_days
        if not windows or any(
            isinstance(w, bool) or not isinstance(w, int | np.integer) or w <= 0
            for w in windows
        ):
            raise ConfigError(
                f"features.windows_days: {windows!r} must be positive whole numbers of days"
            )
        if len(set(windows)) != len(windows):
            raise ConfigError(f"features.windows_days: {windows!r} has duplicates")
        object.__setattr__(self, "windows_days", tuple(sorted(int(w) for w in windows)))
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
                raise ConfigError(f"features.{name}: {value!r} must be a positive integer")
        for name in ("tie_decay_per_month", "love_decay_per_month"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ConfigError(f"features.{name}: {value!r} must be in (0, 1]")
        if not self.days_per_month > 0:
            raise ConfigError(f"features.days_per_month: {self.days_per_month!r} must be > 0")
        if not self.direct_tie_weight > 0:
            raise ConfigError(
                f"features.direct_tie_weight: {self.direct_tie_weight!r} must be > 0"
            )
        for name in ("activity_types", "roles"):
            value = getattr(self, name)
            if value is not None and len(set(value)) != len(value):
                raise ConfigError(f"features.{name}: {value!r} has duplicates")
            if value is not None and OTHER in value:
                raise ConfigError(
                    f"features.{name}: {OTHER!r} is the bucket that pools values outside the "
                    "vocabulary; remove it from the list"
                )

    @property
    def is_resolved(self) -> bool:
        """True when both vocabularies are fixed."""
        return self.activity_types is not None and self.roles is not None

    def to_dict(self) -> dict:
        """Plain, JSON-friendly dict of the settings (tuples become lists)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> FeatureConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"features: unknown setting(s) {unknown}; known: {sorted(known)}")
        return cls(**data)


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Everything the feature families share for one ``as_of``.

    Attributes:
        enc: The encoded tables.
        as_of: The snapshot time.
        now: ``as_of`` in int64 ns.
        n: Number of activities strictly before as_of (they are ``enc.time[:n]``).
        rows: Member codes of the output rows (members with ``joined_at < as_of``), in table order.
        index: ``member_id`` of the output rows.
    """

    enc: EncodedTables
    as_of: pd.Timestamp
    now: int
    n: int
    rows: np.ndarray
    index: pd.Index

    def start(self, days: float) -> int:
        """First activity row inside the window ``[as_of - days, as_of)``."""
        cut = self.now - int(round(days * NS_PER_DAY))
        return min(int(np.searchsorted(self.enc.time, cut, side="left")), self.n)

    def tenure_days(self) -> np.ndarray:
        """Days since joining of the output rows (float64, > 0)."""
        return (self.now - self.enc.joined[self.rows]) / NS_PER_DAY

    def frame(self, columns: dict[str, np.ndarray]) -> pd.DataFrame:
        """Build a family's output frame on the snapshot's index (values given per row)."""
        return pd.DataFrame(columns, index=self.index.copy())


def build_snapshot(tables: Tables, as_of) -> Snapshot:
    """Encode ``tables`` (memoised) and locate ``as_of`` in it.

    Args:
        tables: A validated data source.
        as_of: The snapshot time (anything :func:`features.tables.parse_as_of` accepts).
    """
    ts = parse_as_of(as_of)
    enc = encode_tables(tables)
    now = int(ts.value)
    rows = np.flatnonzero(enc.joined < now)
    index = enc.member_ids[rows]
    index.name = "member_id"
    return Snapshot(enc=enc, as_of=ts, now=now, n=enc.rows_before(now), rows=rows, index=index)


def _top_values(codes: np.ndarray, names: pd.Index, limit: int) -> tuple[str, ...]:
    valid = codes[codes >= 0]
    counts = np.bincount(valid, minlength=len(names))
    order = sorted(
        (i for i in range(len(names)) if counts[i] > 0 and str(names[i]) != OTHER),
        key=lambda i: (-counts[i], str(names[i])),
    )
    return tuple(str(names[i]) for i in order[:limit])


def resolve_vocabulary(tables: Tables, as_of, config: FeatureConfig) -> FeatureConfig:
    """Fix the open vocabularies of ``config`` from the rows strictly before ``as_of``.

    The most frequent values come first (ties broken by name); the literal value ``other`` is
    never a vocabulary entry (it is the pooled bucket). Already fixed vocabularies are kept.

    Args:
        tables: A validated data source.
        as_of: The snapshot time.
        config: Settings whose ``activity_types`` / ``roles`` may be ``None``.

    Returns:
        A copy of ``config`` with both vocabularies set.
    """
    if config.is_resolved:
        return config
    snap = build_snapshot(tables, as_of)
    enc = snap.enc
    changes = {}
    if config.activity_types is None:
        changes["activity_types"] = _top_values(
            enc.activity_type[: snap.n], enc.type_names, config.max_types
        )
    if config.roles is None:
        changes["roles"] = _top_values(enc.role[: snap.n], enc.role_names, config.max_roles)
    return replace(config, **changes)


_RESERVED = {"all", OTHER, "ever", "role"}


def _slug(value: str) -> str:
    slug = re.sub(r"[^0-9a-z]+", "_", str(value).lower()).strip("_")
    return slug or "x"


def column_slugs(values: tuple[str, ...], kind: str) -> list[str]:
    """Column-safe names for vocabulary values, unique and clear of reserved words.

    Args:
        values: Vocabulary values in order.
        kind: ``"type"`` or ``"role"`` (type slugs must not look like role columns).

    Returns:
        One slug per value (lower case, ``[0-9a-z_]``), then ``other`` for the pooled bucket.
    """
    used = set(_RESERVED)
    out = []
    for value in values:
        slug = _slug(value)
        if kind == "type" and slug.startswith("role_"):
            slug = f"type_{slug}"
        base, k = slug, 2
        while slug in used:
            slug = f"{base}_{k}"
            k += 1
        used.add(slug)
        out.append(slug)
    out.append(OTHER)
    return out
