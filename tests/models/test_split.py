"""The time split never trains on labels that overlap the date being evaluated."""

from __future__ import annotations

import pandas as pd
import pytest

from features.errors import InsufficientDataError
from models.split import plan_temporal_split, required_snapshots

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
