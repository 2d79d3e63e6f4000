"""The time split never trains on labels that overlap the date being evaluated."""

from __future__ import annotations

import pandas as pd
import pytest

from features.errors import InsufficientDataError
from models.split import (
    plan_backtest_split,
    plan_pooled_split,
    plan_temporal_split,
    pooled_positives,
    required_snapshots,
)

START = pd.Timestamp("2023-01-01")


def monthly(n: int) -> list[pd.Timestamp]:
    return [START + pd.Timedelta(days=30 * i) for i in range(n)]


def test_holdout_is_newest_observed_and_training_labels_end_before_it():
    dates = monthly(12)
    split = plan_temporal_split(dates, 90, last_observed=dates[-1] + pd.Timedelta(days=90))
    assert split.holdout_dates == (dates[11],)
    # d8 + 90 days == d11: its label window ends exactly at the holdout date; d9, d10 overlap
    assert split.train_dates == tuple(dates[:9])
    assert split.unused_dates == (dates[9], dates[10])
    assert [f.origin for f in split.folds] == [dates[8], dates[7], dates[6]]
    assert split.folds[0].train_dates == tuple(dates[:6])
    assert split.folds[2].train_dates == tuple(dates[:4])


def test_no_fold_or_final_model_sees_labels_overlapping_its_evaluation_date():
    dates = monthly(16)
    horizon = pd.Timedelta(days=90)
    split = plan_temporal_split(dates, 90, last_observed=dates[-1] + horizon, backtest_origins=5)
    for train_date in split.train_dates:
        assert train_date + horizon <= split.holdout_start
    for fold in split.folds:
        assert fold.origin in split.train_dates
        assert all(d + horizon <= fold.origin for d in fold.train_dates)
    assert len(split.folds) == 5


def test_unobserved_snapshots_are_not_used_as_holdout():
    dates = monthly(12)
    split = plan_temporal_split(dates, 90, last_observed=dates[-1] + pd.Timedelta(days=60))
    assert split.holdout_dates == (dates[10],)
    assert dates[11] in split.unused_dates


def test_short_history_uses_fewer_origins_and_fails_clearly_when_none_fit():
    dates = monthly(9)
    split = plan_temporal_split(dates, 90, backtest_origins=3)
    assert [f.origin for f in split.folds] == [dates[5], dates[4]]
    assert required_snapshots(90, 30, backtest_origins=3) == 10
    assert required_snapshots(180, 30) == 14
    with pytest.raises(InsufficientDataError, match="at least 14 fully observed snapshots"):
        plan_temporal_split(monthly(12), 180, target="readiness")
    with pytest.raises(InsufficientDataError, match="too few snapshots"):
        plan_temporal_split(monthly(1), 90)


def _monthly(n: int) -> list[pd.Timestamp]:
    return [pd.Timestamp("2020-01-01") + pd.DateOffset(months=k) for k in range(n)]


def test_a_pooled_holdout_grows_until_it_holds_enough_distinct_positive_members():
    dates = _monthly(12)  # 2020-01 .. 2020-12, 31-day windows
    positives = {d: frozenset() for d in dates}
    positives[dates[-1]] = frozenset({"a"})
    positives[dates[-2]] = frozenset({"a"})  # the same member again: no new evidence
    positives[dates[-3]] = frozenset({"b"})
    positives[dates[-4]] = frozenset({"c", "d"})
    split = plan_pooled_split(
        positives, 31, target_positives=3, max_holdout_snapshots=6, backtest_origins=1
    )
    # newest 3 snapshots hold a, b (2 members); the 4th adds c, d: 4 >= 3
    assert split.holdout_dates == tuple(dates[-4:])
    assert pooled_positives(positives, dates[-3:]) == 2
    assert all(d + pd.Timedelta(days=31) <= dates[-4] for d in split.train_dates)


def test_a_pooled_holdout_stops_where_no_backtest_fold_would_fit():
    dates = _monthly(6)
    positives = {d: frozenset() for d in dates}
    split = plan_pooled_split(
        positives, 31, target_positives=5, max_holdout_snapshots=6, backtest_origins=1,
        min_train_snapshots=2,
    )
    # Holding out May and June would leave Jan-Mar to train, and no origin among them has two
    # earlier snapshots whose windows end by it; so June alone, the fold at May trained on
    # Jan-Mar (April's window ends on May 2).
    assert split.holdout_dates == (dates[5],)
    assert [(f.origin, f.train_dates) for f in split.folds] == [(dates[4], tuple(dates[:3]))]


def test_a_backtest_split_trains_on_every_labelled_snapshot_and_keeps_no_holdout():
    dates = _monthly(8)
    split = plan_backtest_split(
        dates, 61, last_observed=dates[-1] + pd.Timedelta(days=30), backtest_origins=12,
        min_train_snapshots=2,
    )
    # labelled: as_of + 61 days <= last observed (2020-09-01 + ... ) -> the first 7 dates
    assert split.holdout_dates == () and split.train_dates == tuple(dates[:7])
    for fold in split.folds:
        assert all(d + pd.Timedelta(days=61) <= fold.origin for d in fold.train_dates)
        assert len(fold.train_dates) >= 2
    assert [f.origin for f in split.folds] == dates[6:3:-1]  # 2020-07, -06, -05
    with pytest.raises(InsufficientDataError, match="--every"):
        plan_backtest_split(dates[:3], 61)


def test_the_phases_of_plan_temporal_split():
    from models.split import _backtest_folds, _observed, _spacing_days, _too_short

    dates = monthly(8)
    horizon = pd.Timedelta(days=60)
    assert _observed(dates, horizon, None) == dates
    assert _observed(dates, horizon, dates[-1]) == dates[:6]  # d5 + 60 days == d7
    assert _spacing_days(dates) == 30 and _spacing_days(dates[:1]) == 30
    assert _spacing_days([START, START + pd.Timedelta(hours=6)]) == 1
    folds = _backtest_folds(dates[:6], horizon, backtest_origins=2, min_train_snapshots=2)
    assert [f.origin for f in folds] == [dates[5], dates[4]]  # newest origin first
    assert folds[0].train_dates == tuple(dates[:4]) and folds[1].train_dates == tuple(dates[:3])
    assert _backtest_folds(dates[:3], horizon, 3, 2) == []
    error = _too_short("too few", target="readiness", horizon_days=60, every=30,
                       holdout_snapshots=1, min_train_snapshots=2, observed=2, dates=3)
    assert isinstance(error, InsufficientDataError)
    needed = required_snapshots(60, 30, holdout_snapshots=1, backtest_origins=1,
                                min_train_snapshots=2)
    assert str(error).startswith(f"readiness: too few. With a 60-day label window and snapshots "
                                 f"every 30 days, training needs at least {needed} fully")
    assert "got 2 observed snapshot(s) of 3." in str(error)
