"""Time-respecting splits of a snapshot training frame: holdout, training and backtest folds.

A snapshot taken at ``as_of`` carries a label observed over ``(as_of, as_of + horizon]``. A model
evaluated at date ``v`` may only learn from snapshots whose label windows have **ended** by ``v``
(``as_of + horizon <= v``): otherwise it would have seen outcomes that happen after ``v`` - the
very outcomes being predicted. Every split here follows that rule:

- **holdout**: the newest ``holdout_snapshots`` snapshots whose labels are fully observed
  (``as_of + horizon <= last_observed``);
- **training**: snapshots whose label windows end on or before the oldest holdout date;
- **backtest folds** (rolling origin): each origin is a training snapshot ``v`` (newest first)
  evaluated by a model trained on the training snapshots whose windows end by ``v``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.errors import InsufficientDataError

__all__ = [
    "BacktestFold",
    "TemporalSplit",
    "plan_temporal_split",
    "plan_pooled_split",
    "plan_backtest_split",
    "pooled_positives",
    "required_snapshots",
]


@dataclass(frozen=True)
class BacktestFold:
    """One rolling-origin fold: train on ``train_dates``, evaluate on ``origin``."""

    origin: pd.Timestamp
    train_dates: tuple[pd.Timestamp, ...]


@dataclass(frozen=True)
class TemporalSplit:
    """Which snapshot dates play which role.

    Attributes:
        horizon_days: Length of the label window.
        holdout_dates: Dates evaluated last, never trained on before the final evaluation.
        train_dates: Dates the final model is fitted on (label windows end by the holdout).
        folds: Backtest folds, newest origin first.
        unused_dates: Dates in neither role (label windows overlap the holdout, or unobserved).
    """

    horizon_days: int
    holdout_dates: tuple[pd.Timestamp, ...]
    train_dates: tuple[pd.Timestamp, ...]
    folds: tuple[BacktestFold, ...]
    unused_dates: tuple[pd.Timestamp, ...]

    @property
    def holdout_start(self) -> pd.Timestamp:
        """The oldest holdout date."""
        return min(self.holdout_dates)


def required_snapshots(
    horizon_days: int,
    every_days: int,
    *,
    holdout_snapshots: int = 1,
    backtest_origins: int = 1,
    min_train_snapshots: int = 2,
) -> int:
    """How many evenly spaced, fully observed snapshots a split needs.

    With a gap of ``g = ceil(horizon / every)`` snapshots between a model's newest training
    snapshot and the date it is evaluated on, the oldest backtest origin needs
    ``min_train_snapshots`` snapshots ``g`` steps before it, and the newest origin sits ``g``
    steps before the holdout: ``holdout + (origins - 1) + 2 * g + min_train - 1`` in total.
    """
    gap = math.ceil(horizon_days / every_days)
    return holdout_snapshots + (backtest_origins - 1) + 2 * gap + min_train_snapshots - 1


def plan_temporal_split(
    as_of_dates: Sequence,
    horizon_days: int,
    *,
    last_observed: pd.Timestamp | None = None,
    holdout_snapshots: int = 1,
    backtest_origins: int = 3,
    min_train_snapshots: int = 2,
    target: str = "target",
) -> TemporalSplit:
    """Assign snapshot dates to holdout, training and backtest folds.

    Args:
        as_of_dates: Snapshot dates of the training frame (any order, duplicates ignored).
        horizon_days: Label window length in days.
        last_observed: Latest timestamp in the data; snapshots whose label windows end after it
            are not fully observed and are left out. ``None`` trusts the dates as observed.
        holdout_snapshots: Newest observed snapshots kept for the final evaluation.
        backtest_origins: Backtest folds wanted; fewer are used when history is short.
        min_train_snapshots: Snapshots each backtest fold trains on, at least.
        target: Target name, for error messages.

    Raises:
        InsufficientDataError: If the dates allow no holdout or no backtest fold; the message
            says how many snapshots are needed.
    """
    horizon = pd.Timedelta(days=int(horizon_days))
    dates = sorted({pd.Timestamp(d) for d in as_of_dates})
    observed = _observed(dates, horizon, last_observed)
    every = _spacing_days(dates)

    def short(why: str) -> InsufficientDataError:
        return _too_short(
            why, target=target, horizon_days=horizon_days, every=every,
            holdout_snapshots=holdout_snapshots, min_train_snapshots=min_train_snapshots,
            observed=len(observed), dates=len(dates),
        )

    if len(observed) < holdout_snapshots + 1:
        raise short("too few snapshots with fully observed labels")
    holdout = observed[-holdout_snapshots:]
    train = [d for d in observed if d + horizon <= holdout[0]]
    if not train:
        raise short("no snapshot's label window ends before the holdout")
    folds = _backtest_folds(train, horizon, backtest_origins, min_train_snapshots)
    if not folds:
        raise short("no backtest fold has enough earlier snapshots to train on")
    used = set(holdout) | set(train)
    return TemporalSplit(
        horizon_days=int(horizon_days),
        holdout_dates=tuple(holdout),
        train_dates=tuple(train),
        folds=tuple(folds),
        unused_dates=tuple(d for d in dates if d not in used),
    )


def _observed(
    dates: list[pd.Timestamp], horizon: pd.Timedelta, last_observed: pd.Timestamp | None
) -> list[pd.Timestamp]:
    """The ``dates`` whose label windows end by ``last_observed`` (``None``: all of them)."""
    if last_observed is None:
        return list(dates)
    return [d for d in dates if d + horizon <= pd.Timestamp(last_observed)]


def _spacing_days(dates: list[pd.Timestamp]) -> int:
    """Median days between the sorted snapshot ``dates`` (30 for a single date; at least 1)."""
    every = int(np.median(np.diff(dates)).days) if len(dates) > 1 else 30
    return max(every, 1)


def _too_short(
    why: str,
    *,
    target: str,
    horizon_days: int,
    every: int,
    holdout_snapshots: int,
    min_train_snapshots: int,
    observed: int,
    dates: int,
) -> InsufficientDataError:
    """The error of a history too short to split: ``why``, what a split needs and what there
    is (``observed`` fully observed snapshots of ``dates``), and what to change."""
    needed = required_snapshots(
        horizon_days,
        every,
        holdout_snapshots=holdout_snapshots,
        backtest_origins=1,
        min_train_snapshots=min_train_snapshots,
    )
    return InsufficientDataError(
        f"{target}: {why}. With a {horizon_days}-day label window and snapshots every "
        f"{every} days, training needs at least {needed} fully observed snapshots "
        f"({holdout_snapshots} holdout, a gap of {math.ceil(horizon_days / every)} while "
        f"labels mature, and {min_train_snapshots} to train each backtest fold), i.e. about "
        f"{(needed - 1) * every + horizon_days} days of history after the first snapshot; "
        f"got {observed} observed snapshot(s) of {dates}. Use a longer history, "
        "more or closer snapshots (--snapshots, --every) or a shorter label window "
        "(--horizon, --readiness-horizon)."
    )


def _backtest_folds(
    train: list[pd.Timestamp],
    horizon: pd.Timedelta,
    backtest_origins: int,
    min_train_snapshots: int,
) -> list[BacktestFold]:
    """Rolling-origin folds, newest origin first: each training date whose earlier label
    windows give ``min_train_snapshots`` dates to train on, up to ``backtest_origins``."""
    folds = []
    for origin in reversed(train):
        fold_train = [d for d in train if d + horizon <= origin]
        if len(fold_train) >= min_train_snapshots:
            folds.append(BacktestFold(origin=origin, train_dates=tuple(fold_train)))
        if len(folds) == backtest_origins:
            break
    return folds


def pooled_positives(
    positives_by_date: Mapping[pd.Timestamp, Collection], dates: Sequence
) -> int:
    """How many distinct members are positive at one or more of ``dates``."""
    members: set = set()
    for d in dates:
        members.update(positives_by_date.get(pd.Timestamp(d), ()))
    return len(members)


def plan_pooled_split(
    positives_by_date: Mapping[pd.Timestamp, Collection],
    horizon_days: int,
    *,
    last_observed: pd.Timestamp | None = None,
    target_positives: int = 20,
    max_holdout_snapshots: int = 6,
    backtest_origins: int = 3,
    min_train_snapshots: int = 2,
    target: str = "target",
) -> TemporalSplit:
    """:func:`plan_temporal_split` with a holdout of as many snapshots as its positives need.

    The holdout grows from the newest fully observed snapshot backwards until it holds
    ``target_positives`` positive *members* or reaches ``max_holdout_snapshots``, as long as a
    backtest fold still fits before it; the smallest holdout that reaches the target is used,
    else the largest that fits (the most positives there are). Members are counted once:
    a member promoted next month is a positive at every snapshot of the months before, and
    pooling those snapshots adds rows, not evidence.

    Args:
        positives_by_date: The positive members per snapshot date (every snapshot date of the
            frame, with an empty collection where there is none).
        horizon_days: Label window length in days.
        last_observed: As in :func:`plan_temporal_split`.
        target_positives: Distinct positive members the pooled holdout aims for.
        max_holdout_snapshots: The most snapshots it pools.
        backtest_origins: As in :func:`plan_temporal_split`.
        min_train_snapshots: As in :func:`plan_temporal_split`.
        target: Target name, for error messages.

    Raises:
        InsufficientDataError: If not even a one-snapshot holdout fits.
    """
    dates = sorted(positives_by_date)
    best: TemporalSplit | None = None
    for k in range(1, max(1, int(max_holdout_snapshots)) + 1):
        try:
            split = plan_temporal_split(
                dates, horizon_days, last_observed=last_observed, holdout_snapshots=k,
                backtest_origins=backtest_origins, min_train_snapshots=min_train_snapshots,
                target=target,
            )
        except InsufficientDataError:
            if best is None:
                raise
            break
        best = split
        if pooled_positives(positives_by_date, split.holdout_dates) >= target_positives:
            break
    assert best is not None
    return best


def plan_backtest_split(
    as_of_dates: Sequence,
    horizon_days: int,
    *,
    last_observed: pd.Timestamp | None = None,
    backtest_origins: int = 12,
    min_train_snapshots: int = 2,
    target: str = "target",
) -> TemporalSplit:
    """A split without a separate holdout, for histories too short to keep one aside.

    Every fully observed snapshot is a training date (the final model learns from all of
    them); the evaluation is the rolling-origin backtest alone: each origin is scored by a
    model trained on the snapshots whose label windows end by it. A holdout costs a whole
    label window of history on top of the backtest's; with long windows (two years for a
    promotion) and a short history that is the difference between a validated model and none.

    Raises:
        InsufficientDataError: If no origin has ``min_train_snapshots`` earlier snapshots whose
            label windows end by it.
    """
    horizon = pd.Timedelta(days=int(horizon_days))
    dates = sorted({pd.Timestamp(d) for d in as_of_dates})
    observed = [
        d for d in dates if last_observed is None or d + horizon <= pd.Timestamp(last_observed)
    ]
    folds = []
    for origin in reversed(observed):
        fold_train = [d for d in observed if d + horizon <= origin]
        if len(fold_train) >= min_train_snapshots:
            folds.append(BacktestFold(origin=origin, train_dates=tuple(fold_train)))
        if len(folds) == backtest_origins:
            break
    if not folds:
        raise InsufficientDataError(
            f"{target}: no snapshot has {min_train_snapshots} earlier snapshots whose "
            f"{horizon_days}-day label windows end by it, so no model can be checked against "
            f"outcomes it did not see; this needs about {2 * int(horizon_days) + 60} days of "
            f"history after the first snapshot ({len(observed)} labelled snapshot(s) here). "
            "A longer history, closer snapshots (--every) or a shorter label window (--horizon, "
            "--readiness-horizon) gives one."
        )
    return TemporalSplit(
        horizon_days=int(horizon_days),
        holdout_dates=(),
        train_dates=tuple(observed),
        folds=tuple(folds),
        unused_dates=tuple(d for d in dates if d not in set(observed)),
    )
