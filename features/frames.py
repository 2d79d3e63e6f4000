"""Training frames: stacked point-in-time snapshots of features and labels.

A training frame for a target is built at a series of snapshot dates ``as_of`` (every
``every_days`` back from the newest date whose label window is fully observed). At each date
the eligible members get their features at ``as_of`` (rows strictly before it) and their label
from the window after it, so no label ever looks past the data's last observed time and no
feature ever looks past its own as_of.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from features.build import build_features
from features.errors import ConfigError, InsufficientDataError
from features.feature_config import FeatureConfig, resolve_vocabulary
from features.labels import (
    LabelConfig,
    build_disengagement_labels,
    build_readiness_labels,
    check_target_available,
    label_horizon_days,
)
from features.tables import Tables, parse_as_of

__all__ = [
    "FrameConfig",
    "TrainingFrame",
    "snapshot_dates",
    "build_training_frame",
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
    """

    every_days: int = 30
    snapshots: int = 12
    until: pd.Timestamp | None = None
    warmup_days: int = 90

    def __post_init__(self) -> None:
        for name in ("every_days", "snapshots", "warmup_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
                raise ConfigError(f"frame.{name}: {value!r} must be a positive whole number")
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
    """

    target: str
    data: pd.DataFrame
    feature_columns: tuple[str, ...]
    feature_config: FeatureConfig
    as_of_dates: tuple[pd.Timestamp, ...]


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
        limit = f" and until={frame.until.date()}" if frame.until is not None else ""
        raise InsufficientDataError(
            f"{tables.source}: not enough history for a {target} training frame: the data spans "
            f"{span:.0f} days ({first.date()} to {last.date()}){limit}, but one snapshot needs "
            f"at least {needed} days ({frame.warmup_days} days of warm-up before it and its "
            f"{horizon}-day label window after it). Provide a longer activity history or lower "
            "frame.warmup_days / the label horizon."
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
    about the float32 frame plus one snapshot's features.

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
    check_target_available(tables, target, labels)
    dates = snapshot_dates(tables, target, labels, frame)
    config = resolve_vocabulary(
        tables, dates[-1], replace(features, core_role=labels.core_role)
    )
    label_fn = build_readiness_labels if target == "readiness" else build_disengagement_labels
    # Ascending dates, each sorted by member_id: the stack is sorted by (as_of, member_id).
    ys = [(as_of, label_fn(tables, as_of, labels).sort_index(kind="stable")) for as_of in dates]
    ys = [(as_of, y) for as_of, y in ys if not y.empty]
    if not ys:
        raise InsufficientDataError(
            f"{tables.source}: no member is eligible for {target} at any of the "
            f"{len(dates)} snapshot dates ({dates[0].date()} to {dates[-1].date()}); "
            "check consent values and the activity log."
        )
    n_rows = sum(len(y) for _, y in ys)
    block: np.ndarray | None = None  # (feature, row): each column contiguous
    columns: tuple[str, ...] = ()
    start = 0
    for as_of, y in ys:
        x = build_features(tables, as_of, config)
        if block is None:
            columns = tuple(x.columns)
            block = np.empty((len(columns), n_rows), dtype=np.float32)
        rows = x.index.get_indexer(y.index)
        if (rows < 0).any():  # eligible members are a subset of the members known at as_of
            raise KeyError(f"{as_of.date()}: eligible members without features")
        stop = start + len(y)
        for j, name in enumerate(columns):  # one gather per column (not per member)
            block[j, start:stop] = x[name].to_numpy()[rows]
        start = stop
        del x
    data = pd.DataFrame(block.T, columns=list(columns), copy=False)
    data.insert(0, "member_id", _stack_index(y.index for _, y in ys))
    data.insert(
        1,
        "as_of",
        np.repeat(
            np.array([as_of.as_unit("ns").to_datetime64() for as_of, _ in ys]),
            [len(y) for _, y in ys],
        ),
    )
    data[LABEL_COLUMN] = np.concatenate([y.to_numpy(dtype=np.int64) for _, y in ys])
    return TrainingFrame(
        target=target,
        data=data,
        feature_columns=columns,
        feature_config=config,
        as_of_dates=tuple(dates),
    )


def _stack_index(indexes) -> pd.Series:
    """The ``member_id`` values of the snapshots' label indexes, one after another."""
    values = [index.to_series(index=None, name="member_id") for index in indexes]
    return pd.concat(values, ignore_index=True)
