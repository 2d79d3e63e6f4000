"""Targets: disengagement and ambassador readiness, with their eligibility rules.

Time conventions (``as_of`` is the snapshot time, features use rows strictly before it):

- *disengagement*: eligible = consenting members joined before as_of with at least one
  activity in ``[as_of - active_within_days, as_of)``; label ``True`` = no activity in the label
  window ``(as_of, as_of + horizon_days]`` (open at as_of, closed at the end).
- *readiness*: eligible = consenting members joined before as_of who do not hold ``core_role``
  at as_of (held = a spell with ``started_at < as_of`` and ``ended_at`` missing or
  ``>= as_of``) and were active in the last ``readiness_active_within_days`` (365; ``None``
  drops that condition); label ``True`` = a ``core_role`` spell starts in
  ``(as_of, as_of + readiness_horizon_days]``.

Members with ``consent == False`` are never eligible: never trained on, never scored. An activity
exactly at as_of is in neither the features nor the label window.

What community managers did (the optional ``outreach`` table) changes the *training* labels only,
through :func:`build_training_labels`:

- *readiness*: a readiness contact made in the label window whose outcome is ``accepted`` is a
  positive, like a core-role start (the member said yes; the spell may be recorded later or
  never). A ``declined`` one is simply not a positive; scoring keeps such members out of
  ``ready-now`` for a while (``serving.segments``).
- *disengagement*: a member contacted for retention within ``horizon_days`` before as_of or in
  the label window is left out of that snapshot: whether they stayed is partly the call's doing,
  and a model trained on them would learn the effect of the call as if it were the member's own
  behaviour. The rows left out are counted (:func:`retention_contacted`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.encoding import NS_PER_DAY, EncodedRoles, EncodedTables, encode_tables, to_ns
from features.errors import ConfigError, TargetUnavailable
from features.tables import Tables

__all__ = [
    "LabelConfig",
    "TARGETS",
    "select_disengagement_eligible",
    "build_disengagement_labels",
    "select_readiness_eligible",
    "build_readiness_labels",
    "build_training_labels",
    "retention_contacted",
    "label_horizon_days",
    "check_target_available",
]

#: The prediction targets corecast knows.
TARGETS = ("readiness", "disengagement")


@dataclass(frozen=True)
class LabelConfig:
    """Settings of the targets.

    Attributes:
        horizon_days: Disengagement label window after as_of.
        active_within_days: Disengagement eligibility: active in this many days before as_of.
        readiness_horizon_days: Readiness label window after as_of.
        core_role: The role whose start defines readiness (a ``roles`` table value).
        readiness_active_within_days: Readiness eligibility also needs an activity in this many
            days before as_of (``None``: no activity needed). Members gone for longer are not
            candidates anyone would call, and counting them makes ranking look easier than it is.
    """

    horizon_days: int = 90
    active_within_days: int = 90
    readiness_horizon_days: int = 180
    core_role: str = "ambassador"
    readiness_active_within_days: int | None = 365

    def __post_init__(self) -> None:
        names = ["horizon_days", "active_within_days", "readiness_horizon_days"]
        if self.readiness_active_within_days is not None:
            names.append("readiness_active_within_days")
        for name in names:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
                raise ConfigError(f"labels.{name}: {value!r} must be a positive whole number")
        if not isinstance(self.core_role, str) or not self.core_role.strip():
            raise ConfigError(f"labels.core_role: {self.core_role!r} must be a non-empty role")

    def fingerprint(self) -> str:
        """A short digest of these settings (12 hex digits): equal settings, equal digest."""
        import hashlib
        import json
        from dataclasses import asdict

        text = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def describe(self) -> str:
        """The settings as a person reads them: core role and label windows."""
        return (
            f"core role {self.core_role}, readiness window {self.readiness_horizon_days} days, "
            f"disengagement window {self.horizon_days} days (active within "
            f"{self.active_within_days} days)"
        )


def label_horizon_days(target: str, config: LabelConfig) -> int:
    """Length of the label window of ``target`` in days.

    Raises:
        ConfigError: If ``target`` is not one of :data:`TARGETS`.
    """
    if target == "disengagement":
        return config.horizon_days
    if target == "readiness":
        return config.readiness_horizon_days
    raise ConfigError(f"target: {target!r} is not one of {', '.join(TARGETS)}")


def _index(enc: EncodedTables, mask: np.ndarray) -> pd.Index:
    index = enc.member_ids[np.flatnonzero(mask)]
    index.name = "member_id"
    return index


def _base_eligible(enc: EncodedTables, now: int) -> np.ndarray:
    return enc.consent & (enc.joined < now)


def _active(enc: EncodedTables, now: int, days: int) -> np.ndarray:
    """Members with at least one activity in ``[now - days, now)``."""
    lo = enc.rows_before(now - days * NS_PER_DAY)
    hi = enc.rows_before(now)
    return np.bincount(enc.member[lo:hi], minlength=enc.n_members) > 0


def select_disengagement_eligible(
    tables: Tables, as_of, config: LabelConfig = LabelConfig()
) -> pd.Index:
    """Members who can be scored for disengagement at ``as_of``.

    Eligible: ``consent`` is true, ``joined_at < as_of`` and at least one activity with
    ``as_of - active_within_days <= occurred_at < as_of``.

    Returns:
        ``member_id`` values in members-table order (index named ``member_id``).
    """
    enc = encode_tables(tables)
    now = to_ns(as_of)
    return _index(enc, _base_eligible(enc, now) & _active(enc, now, config.active_within_days))


def build_disengagement_labels(
    tables: Tables, as_of, config: LabelConfig = LabelConfig()
) -> pd.Series:
    """Disengagement labels of the eligible members at ``as_of``.

    Returns:
        Boolean Series named ``disengaged`` on the eligible ``member_id`` index: ``True`` when the
        member has no activity with ``as_of < occurred_at <= as_of + horizon_days``.
    """
    enc = encode_tables(tables)
    now = to_ns(as_of)
    eligible = select_disengagement_eligible(tables, as_of, config)
    lo = enc.rows_at_or_before(now)
    hi = enc.rows_at_or_before(now + config.horizon_days * NS_PER_DAY)
    later = np.bincount(enc.member[lo:hi], minlength=enc.n_members) > 0
    codes = enc.member_ids.get_indexer(eligible)
    return pd.Series(~later[codes], index=eligible, name="disengaged", dtype=bool)


def check_target_available(tables: Tables, target: str, config: LabelConfig) -> None:
    """Raise :class:`TargetUnavailable` when ``target`` cannot be built from ``tables``.

    Readiness needs a ``roles`` table with at least one spell of ``config.core_role``;
    disengagement only needs the activity log.
    """
    label_horizon_days(target, config)
    if target == "readiness":
        _core_spells(tables, config)


def _core_spells(tables: Tables, config: LabelConfig) -> tuple[EncodedRoles, int]:
    enc = encode_tables(tables)
    if enc.roles is None:
        raise TargetUnavailable(
            f"{tables.source}: the readiness target needs a `roles` table (member_id, role, "
            f"started_at, ended_at) with spells of the core role {config.core_role!r}; this "
            "data source has no roles table. Add one so readiness can be learned and checked."
        )
    code = enc.roles.role_code(config.core_role)
    if code < 0 or not np.any(enc.roles.role == code):
        found = ", ".join(repr(str(r)) for r in enc.roles.role_names[:10]) or "none"
        raise TargetUnavailable(
            f"{tables.source}: the readiness target needs spells of the core role "
            f"{config.core_role!r} in the `roles` table, but it has none (roles found: {found}). "
            "Set the role that marks your core members: --core-role, or labels.core_role in the "
            "project file (corecast.toml)."
        )
    return enc.roles, code


def select_readiness_eligible(
    tables: Tables, as_of, config: LabelConfig = LabelConfig(), *, allow_no_spells: bool = False
) -> pd.Index:
    """Members who can be scored for readiness at ``as_of``.

    Eligible: ``consent`` is true, ``joined_at < as_of``, not holding ``core_role`` at
    as_of (a spell with ``started_at < as_of`` and ``ended_at`` missing or ``>= as_of``) and,
    unless ``readiness_active_within_days`` is ``None``, at least one activity in
    ``[as_of - readiness_active_within_days, as_of)``.

    Args:
        tables: A validated data source.
        as_of: The date.
        config: Label settings.
        allow_no_spells: Without any spell of the core role (no roles table, or a community
            whose first core member is still to come), nobody holds it and the other conditions
            decide; ``False`` raises instead.

    Raises:
        TargetUnavailable: Without a roles table holding spells of ``core_role`` (unless
            ``allow_no_spells``).
    """
    enc = encode_tables(tables)
    now = to_ns(as_of)
    eligible = _base_eligible(enc, now) & ~_holding_core(tables, config, now, allow_no_spells)
    if config.readiness_active_within_days is not None:
        eligible &= _active(enc, now, config.readiness_active_within_days)
    return _index(enc, eligible)


def _holding_core(tables: Tables, config: LabelConfig, now: int, allow_no_spells: bool):
    """Per member (members-table order): holds the core role at ``now``."""
    enc = encode_tables(tables)
    try:
        spells, code = _core_spells(tables, config)
    except TargetUnavailable:
        if allow_no_spells:
            return np.zeros(enc.n_members, dtype=bool)
        raise
    core = spells.role == code
    holding = core & (spells.started < now) & (spells.ended >= now)
    return np.bincount(spells.member[holding], minlength=enc.n_members) > 0


def build_readiness_labels(
    tables: Tables, as_of, config: LabelConfig = LabelConfig()
) -> pd.Series:
    """Readiness labels of the eligible members at ``as_of``.

    Returns:
        Boolean Series named ``ready`` on the eligible ``member_id`` index: ``True`` when a
        ``core_role`` spell starts with ``as_of < started_at <= as_of + readiness_horizon_days``.

    Raises:
        TargetUnavailable: Without a roles table holding spells of ``core_role``.
    """
    spells, code = _core_spells(tables, config)
    enc = encode_tables(tables)
    now = to_ns(as_of)
    eligible = select_readiness_eligible(tables, as_of, config)
    end = now + config.readiness_horizon_days * NS_PER_DAY
    starts = (spells.role == code) & (spells.started > now) & (spells.started <= end)
    ready = np.bincount(spells.member[starts], minlength=enc.n_members) > 0
    codes = enc.member_ids.get_indexer(eligible)
    return pd.Series(ready[codes], index=eligible, name="ready", dtype=bool)


def _contacts(tables: Tables, purpose: str, lo: int, hi: int, outcome: str | None = None):
    """Member codes (members-table order) with a ``purpose`` contact in ``(lo, hi]`` (ns)."""
    enc = encode_tables(tables)
    hit = np.zeros(enc.n_members, dtype=bool)
    outreach = tables.outreach
    if outreach is None or outreach.empty:
        return hit
    when = outreach["contacted_at"].to_numpy(dtype="datetime64[ns]").view("int64")
    keep = (outreach["purpose"] == purpose).to_numpy(dtype=bool) & (when > lo) & (when <= hi)
    if outcome is not None:
        keep &= (outreach["outcome"] == outcome).to_numpy(dtype=bool)
    codes = enc.member_ids.get_indexer(outreach["member_id"][keep])
    hit[codes[codes >= 0]] = True
    return hit


def retention_contacted(tables: Tables, as_of, config: LabelConfig = LabelConfig()) -> pd.Index:
    """Members contacted for retention within ``horizon_days`` either side of ``as_of``.

    A contact in ``(as_of - horizon_days, as_of + horizon_days]``: before as_of it may have
    shaped the recent activity the features see, after it the outcome the label records.
    """
    now = to_ns(as_of)
    span = config.horizon_days * NS_PER_DAY
    return _index(encode_tables(tables), _contacts(tables, "retention", now - span, now + span))


def build_training_labels(
    tables: Tables, target: str, as_of, config: LabelConfig = LabelConfig()
) -> pd.Series:
    """The labels a model of ``target`` learns from at ``as_of`` (see the module docstring).

    The target's labels (:func:`build_readiness_labels`, :func:`build_disengagement_labels`)
    with what the outreach table says: accepted readiness contacts in the window are positives;
    members contacted for retention around ``as_of`` are left out.
    """
    if target == "readiness":
        y = build_readiness_labels(tables, as_of, config)
        now = to_ns(as_of)
        end = now + config.readiness_horizon_days * NS_PER_DAY
        accepted = _contacts(tables, "readiness", now, end, outcome="accepted")
        if accepted.any():
            codes = encode_tables(tables).member_ids.get_indexer(y.index)
            y = y | pd.Series(accepted[codes], index=y.index)
        return y.rename("ready")
    label_horizon_days(target, config)
    y = build_disengagement_labels(tables, as_of, config)
    if tables.outreach is None:
        return y
    return y[~y.index.isin(retention_contacted(tables, as_of, config))]
