"""Training frames: stacked point-in-time snapshots of features and labels.

A training frame for a target is built at a series of snapshot dates ``as_of`` (every
``every_days`` back from the newest date whose label window is fully observed). At each date
the eligible members get their features at ``as_of`` (rows strictly before it) and their label
from the window after it, so no label ever looks past the data's last observed time and no
feature ever looks past its own as_of.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from features.build import build_features
from features.errors import ConfigError, InsufficientDataError, TargetUnavailable
from features.feature_config import FeatureConfig, resolve_vocabulary
from features.labels import (
    LabelConfig,
    build_disengagement_labels,
    build_training_labels,
    check_target_available,
    label_horizon_days,
)
from features.partition import build_features_for_members, hash_member_ids
from features.tables import Tables, parse_as_of

__all__ = [
    "FrameConfig",
    "TrainingFrame",
    "snapshot_dates",
    "build_training_frame",
    "build_training_frames",
    "sample_members",
    "align_features",
    "KEY_COLUMNS",
    "LABEL_COLUMN",
]

#: Identifying columns of a training frame (before the feature columns).
KEY_COLUMNS = ("member_id", "as_of")
#: The 0/1 label column of a training frame.
LABEL_COLUMN = "label"


@dataclass(frozen=True)
class FrameConfig:
    """Which snapshot dates a training frame stacks.

    Attributes:
        every_days: Days between consecutive snapshots.
        snapshots: Maximum number of snapshots.
        until: Latest allowed snapshot date (``None`` = as late as the labels allow).
        warmup_days: Snapshots start at least this many days after the first observed time,
            so the first features see some history.
        max_rows: Cap on the frame's rows (eligible member-snapshots; ``None`` = every row).
            Above it a fixed share of the *members* is kept (chosen by a keyed hash of
            ``member_id``, the same members at every date and in every run), so each kept
            member's whole history is in the frame and the temporal split is unchanged; the
            share is ``max_rows / eligible rows``. Model fits are capped far lower
            (``TrainConfig.max_fit_rows``), so on a very large community the cap only bounds
            the memory and time of the out-of-time scoring and the evaluation, whose metrics
            are then estimated on the sampled members. A national community (about 200,000
            members, under a million rows) is below the default and keeps every row.
    """

    every_days: int = 30
    snapshots: int = 12
    until: pd.Timestamp | None = None
    warmup_days: int = 90
    max_rows: int | None = 2_000_000

    def __post_init__(self) -> None:
        for name in ("every_days", "snapshots", "warmup_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
                raise ConfigError(f"frame.{name}: {value!r} must be a positive whole number")
        if self.max_rows is not None and (
            isinstance(self.max_rows, bool)
            or not isinstance(self.max_rows, int | np.integer)
            or self.max_rows <= 0
        ):
            raise ConfigError(
                f"frame.max_rows: {self.max_rows!r} must be a positive whole number or None "
                "(no cap)"
            )
        if self.until is not None:
            object.__setattr__(self, "until", parse_as_of(self.until))


@dataclass(frozen=True)
class TrainingFrame:
    """A stacked training set for one target.

    Attributes:
        target: ``"readiness"`` or ``"disengagement"``.
        data: Columns ``member_id``, ``as_of``, the feature columns, ``label`` (int 0/1); one
            row per eligible member and snapshot, sorted by (as_of, member_id).
        feature_columns: The feature columns, in order.
        feature_config: The feature settings with the vocabularies frozen (score with it).
        as_of_dates: The snapshot dates, ascending.
        eligible_rows: Eligible member-snapshots before the ``max_rows`` member sample.
        member_share: Share of the members kept by the ``max_rows`` sample (1.0 = all).
        outreach_left_out: Member-snapshots left out because a manager's retention call shaped
            their outcome (:func:`features.labels.build_training_labels`).
    """

    target: str
    data: pd.DataFrame
    feature_columns: tuple[str, ...]
    feature_config: FeatureConfig
    as_of_dates: tuple[pd.Timestamp, ...]
    eligible_rows: int = 0
    member_share: float = 1.0
    outreach_left_out: int = 0


def snapshot_dates(
    tables: Tables, target: str, labels: LabelConfig, frame: FrameConfig
) -> list[pd.Timestamp]:
    """Snapshot dates of a training frame, ascending.

    The newest date is ``min(until, last_observed - horizon)`` floored to midnight (horizon of
    ``target``), so its label window ends no later than the last observed time; then one every
    ``every_days`` back, at most ``snapshots`` dates, keeping only dates at least
    ``warmup_days`` after the first observed time.

    Raises:
        ConfigError: For an unknown target.
        InsufficientDataError: When no date fits; the message says how much history is needed.
    """
    horizon = label_horizon_days(target, labels)
    first, last = tables.first_observed, tables.last_observed
    newest = last - pd.Timedelta(days=horizon)
    if frame.until is not None:
        newest = min(newest, frame.until)
    newest = newest.normalize()
    earliest = first + pd.Timedelta(days=frame.warmup_days)
    dates = [newest - pd.Timedelta(days=k * frame.every_days) for k in range(frame.snapshots)]
    dates = [d for d in dates if d >= earliest]
    if not dates:
        span = (last - first) / pd.Timedelta(days=1)
        needed = frame.warmup_days + horizon + 1
        limit = f" and --until {frame.until.date()}" if frame.until is not None else ""
        raise InsufficientDataError(
            f"{tables.source}: not enough history for a {target} training frame: the data spans "
            f"{span:.0f} days ({first.date()} to {last.date()}){limit}, but one snapshot needs "
            f"at least {needed} days ({frame.warmup_days} days of warm-up before it and its "
            f"{horizon}-day label window after it). Provide a longer activity history or "
            "a shorter label window (--horizon, --readiness-horizon); with --until, a later date."
        )
    return sorted(dates)


def align_features(frame: pd.DataFrame, feature_columns) -> pd.DataFrame:
    """Reindex ``frame`` to exactly ``feature_columns`` (missing columns are 0, extras dropped).

    Args:
        frame: Features (e.g. from :func:`features.build.build_features`).
        feature_columns: The columns a model was trained on, in order.

    Returns:
        A new frame on the same index with those columns.
    """
    return frame.reindex(columns=list(feature_columns), fill_value=0)


def build_training_frame(
    tables: Tables,
    target: Literal["readiness", "disengagement"],
    labels: LabelConfig = LabelConfig(),
    frame: FrameConfig = FrameConfig(),
    features: FeatureConfig = FeatureConfig(),
) -> TrainingFrame:
    """Stack features and labels of the eligible members over the snapshot dates.

    The activity-type and role vocabularies are resolved once, from the rows before the newest
    date, and frozen into the returned ``feature_config`` (whose ``core_role`` follows
    ``labels.core_role``), so every snapshot, and later scoring, has the same columns.

    The frame is built lean, for millions of rows: the labels of every date come first (they
    are cheap), so the number of rows is known and the feature columns are written into one
    preallocated float32 block snapshot by snapshot, keeping only the eligible rows; a
    snapshot's full float64 features are dropped before the next one is built. Peak memory is
    about the float32 frame plus one snapshot's features. Above ``frame.max_rows`` eligible
    member-snapshots, a hash sample of the members is kept (:func:`sample_members`) and the
    network features are computed for those members only.

    Args:
        tables: A validated data source.
        target: ``"readiness"`` or ``"disengagement"``.
        labels: Target settings.
        frame: Snapshot dates settings.
        features: Feature settings.

    Returns:
        The frame; its feature columns are **float32** (the values of
        :func:`features.build.build_features` rounded to single precision: counts and whole
        days below 2**24 are exact, other values keep about 7 significant digits), one
        contiguous float32 block; ``member_id`` is text, ``as_of`` is ``datetime64[ns]`` and
        ``label`` is int64 0/1.

    Raises:
        ConfigError: For an unknown target.
        TargetUnavailable: For readiness without a roles table holding the core role.
        InsufficientDataError: When no snapshot date fits or no member is eligible at any date.
    """
    return build_training_frames(tables, {target: frame}, labels, features)[target]


def build_training_frames(
    tables: Tables,
    frames: Mapping[str, FrameConfig],
    labels: LabelConfig = LabelConfig(),
    features: FeatureConfig = FeatureConfig(),
    *,
    errors: dict[str, TargetUnavailable | InsufficientDataError] | None = None,
) -> dict[str, TrainingFrame]:
    """The training frames of several targets, sharing one feature pass per snapshot date.

    Each target gets exactly what :func:`build_training_frame` describes, except that the
    vocabularies are resolved once, at the newest snapshot date of *all* the targets, so the
    frames (and the models trained on them) have the same feature columns and scoring builds
    the features once for both. The snapshot dates of the targets mostly coincide (the same
    monthly grid, shifted by the difference of their label horizons), and the features of a
    date are built once and gathered into every frame that has the date: training both
    targets costs little more than one target's features.

    Args:
        tables: A validated data source.
        frames: ``{target: FrameConfig}``.
        labels: Target settings (shared).
        features: Feature settings.
        errors: When given, a target the data cannot express or has too little history for
            is left out and its error recorded here (``{target: error}``), found before any
            feature is built; the other targets are built together. ``None`` raises instead.

    Returns:
        ``{target: TrainingFrame}`` in the order of ``frames``.

    Raises:
        ConfigError: For an unknown target or no target.
        TargetUnavailable: For readiness without a roles table holding the core role.
        InsufficientDataError: When a target has no snapshot date or no eligible member.
    """
    if not frames:
        raise ConfigError("build_training_frames: no target asked")
    plans = _plan_frames(tables, frames, labels, errors)
    if not plans:
        return {}
    newest = max(plan.dates[-1] for plan in plans.values())
    config = resolve_vocabulary(tables, newest, replace(features, core_role=labels.core_role))
    columns, blocks = _feature_blocks(tables, plans, config)
    return {
        target: _assemble_frame(target, plan, blocks.pop(target), columns, config)
        for target, plan in plans.items()
    }


def _plan_frames(
    tables: Tables,
    frames: Mapping[str, FrameConfig],
    labels: LabelConfig,
    errors: dict[str, TargetUnavailable | InsufficientDataError] | None,
) -> dict[str, _FramePlan]:
    """Every target's plan; with ``errors``, a target that cannot be built is recorded there."""
    plans: dict[str, _FramePlan] = {}
    for target, frame in frames.items():
        try:
            plans[target] = _plan_frame(tables, target, labels, frame)
        except (TargetUnavailable, InsufficientDataError) as exc:
            if errors is None:
                raise
            errors[target] = exc
    return plans


def _feature_blocks(
    tables: Tables, plans: Mapping[str, _FramePlan], config: FeatureConfig
) -> tuple[tuple[str, ...], dict[str, np.ndarray]]:
    """The feature columns and, per target, its (feature, row) float32 block.

    The features of a date are built once and gathered into every target's block that has the
    date; with a member sample, for the kept members only (the costly network family).
    """
    blocks: dict[str, np.ndarray] = {}
    starts = dict.fromkeys(plans, 0)
    columns: tuple[str, ...] = ()
    wanted: dict[pd.Timestamp, list[tuple[str, pd.Series]]] = {}
    for target, plan in plans.items():
        for as_of, y in plan.ys:
            wanted.setdefault(as_of, []).append((target, y))
    sampled = any(plan.share < 1.0 for plan in plans.values())
    for as_of in sorted(wanted):
        x = _snapshot_features(tables, as_of, config, wanted[as_of], sampled)
        if not blocks:
            columns = tuple(x.columns)
            for target, plan in plans.items():
                n_rows = sum(len(y) for _, y in plan.ys)  # (feature, row): contiguous columns
                blocks[target] = np.empty((len(columns), n_rows), dtype=np.float32)
        for target, y in wanted[as_of]:
            starts[target] = _gather(x, y, blocks[target], starts[target], columns, as_of)
        del x
    return columns, blocks


def _snapshot_features(
    tables: Tables,
    as_of: pd.Timestamp,
    config: FeatureConfig,
    wanted: list[tuple[str, pd.Series]],
    sampled: bool,
) -> pd.DataFrame:
    """One date's features: every member's, or only the wanted members' with a sample."""
    if not sampled:
        return build_features(tables, as_of, config)
    ids = wanted[0][1].index
    for _, y in wanted[1:]:
        ids = ids.union(y.index)
    return build_features_for_members(tables, as_of, config, ids)


def _gather(
    x: pd.DataFrame,
    y: pd.Series,
    block: np.ndarray,
    start: int,
    columns: tuple[str, ...],
    as_of: pd.Timestamp,
) -> int:
    """Copy the features of ``y``'s members into ``block`` from row ``start``; the next start."""
    rows = x.index.get_indexer(y.index)
    if (rows < 0).any():  # eligible members are a subset of the members known at as_of
        raise KeyError(f"{as_of.date()}: eligible members without features")
    stop = start + len(y)
    for j, name in enumerate(columns):  # one gather per column (not per member)
        block[j, start:stop] = x[name].to_numpy()[rows]
    return stop


def _assemble_frame(
    target: str,
    plan: _FramePlan,
    block: np.ndarray,
    columns: tuple[str, ...],
    config: FeatureConfig,
) -> TrainingFrame:
    """The training frame of one target from its plan and filled feature block."""
    ys = plan.ys
    data = pd.DataFrame(block.T, columns=list(columns), copy=False)
    data.insert(0, "member_id", _stack_index(y.index for _, y in ys))
    dates = np.array([as_of.as_unit("ns").to_datetime64() for as_of, _ in ys])
    data.insert(1, "as_of", np.repeat(dates, [len(y) for _, y in ys]))
    data[LABEL_COLUMN] = np.concatenate([y.to_numpy(dtype=np.int64) for _, y in ys])
    return TrainingFrame(
        target=target,
        data=data,
        feature_columns=columns,
        feature_config=config,
        as_of_dates=tuple(plan.dates),
        eligible_rows=int(plan.eligible_rows),
        member_share=float(plan.share),
        outreach_left_out=int(plan.left_out),
    )


@dataclass(frozen=True)
class _FramePlan:
    """What one target's frame holds, known before any feature is built."""

    dates: list[pd.Timestamp]  # the snapshot dates, ascending
    ys: list[tuple[pd.Timestamp, pd.Series]]  # labels of the kept rows per date (non-empty)
    eligible_rows: int  # before the member sample
    share: float  # of the members kept
    left_out: int = 0  # rows left out because a manager's call shaped the outcome


def _plan_frame(
    tables: Tables, target: str, labels: LabelConfig, frame: FrameConfig
) -> _FramePlan:
    """Dates, labels and member sample of one target's frame (cheap: no features)."""
    check_target_available(tables, target, labels)
    dates = snapshot_dates(tables, target, labels, frame)
    # Ascending dates, each sorted by member_id: the stack is sorted by (as_of, member_id).
    ys = [(d, *_training_labels(tables, target, d, labels)) for d in dates]
    contacted = sum(int(n) for _, _, n in ys)
    ys = [(d, y) for d, y, _ in ys if not y.empty]
    if not ys:
        raise InsufficientDataError(
            f"{tables.source}: no member is eligible for {target} at any of the "
            f"{len(dates)} snapshot dates ({dates[0].date()} to {dates[-1].date()}); "
            "check consent values and the activity log."
        )
    eligible_rows = sum(len(y) for _, y in ys)
    share = 1.0
    if frame.max_rows is not None and eligible_rows > frame.max_rows:
        share = frame.max_rows / eligible_rows
        ys = [(d, y[sample_members(y.index, share)]) for d, y in ys]
        ys = [(d, y) for d, y in ys if not y.empty]
        if not ys:
            raise InsufficientDataError(
                f"{tables.source}: --max-frame-rows {frame.max_rows:,} keeps a "
                f"{share:.2%} sample of the members, and none of the {target} rows' "
                f"members is in it ({eligible_rows:,} eligible rows); raise --max-frame-rows."
            )
    return _FramePlan(
        dates=dates, ys=ys, eligible_rows=eligible_rows, share=share, left_out=contacted
    )


def _training_labels(
    tables: Tables, target: str, as_of: pd.Timestamp, labels: LabelConfig
) -> tuple[pd.Series, int]:
    """One date's training labels sorted by member, and how many rows outreach left out."""
    y = build_training_labels(tables, target, as_of, labels).sort_index(kind="stable")
    if target != "disengagement" or tables.outreach is None:
        return y, 0
    return y, len(build_disengagement_labels(tables, as_of, labels)) - len(y)


#: Fixed 16-byte key of the training sample's member hash (independent of the partitions').
_SAMPLE_KEY = "corecast-sample1"


def sample_members(member_ids, share: float) -> np.ndarray:
    """Which members a ``share`` sample keeps: a keyed hash of the id below ``share``.

    The same member is in or out at every date, in every run and on every machine, and a
    larger share keeps a superset of a smaller one's members.

    Args:
        member_ids: Member ids (any array-like; hashed as text).
        share: Share to keep, in (0, 1].

    Returns:
        A boolean mask over ``member_ids``.
    """
    if not 0.0 < share <= 1.0:
        raise ConfigError(f"member sample share {share!r} must be in (0, 1]")
    hashed = hash_member_ids(member_ids, _SAMPLE_KEY)
    return (hashed >> np.uint64(11)).astype(np.float64) * 2.0**-53 < share


def _stack_index(indexes) -> pd.Series:
    """The ``member_id`` values of the snapshots' label indexes, one after another."""
    values = [index.to_series(index=None, name="member_id") for index in indexes]
    return pd.concat(values, ignore_index=True)
