"""Every target gets a ranking: a learned model, else a rule, and the result says which."""

from __future__ import annotations

import numpy as np
import pytest

from features.build import build_features
from features.errors import InsufficientDataError
from features.feature_config import FeatureConfig
from features.frames import FrameConfig, align_features
from features.labels import LabelConfig, select_readiness_eligible
from models.fallback import train_or_fallback
from models.train import build_target_frames
from tests.models.conftest import fast_config, without_roles

LABELS = LabelConfig()


def _train(tables, target, frame, config):
    built, errors = build_target_frames(tables, {target: frame}, LABELS, FeatureConfig())
    return train_or_fallback(
        tables, target, LABELS, frame, FeatureConfig(), config,
        training_frame=built.get(target), frame_error=errors.get(target),
    )


def test_too_short_a_history_gets_an_unvalidated_rule_that_ranks_everyone(small_tables):
    # --until inside the 90-day warm-up: no snapshot at all
    until = small_tables.first_observed + np.timedelta64(60, "D")
    result = _train(
        small_tables, "disengagement", FrameConfig(until=until), fast_config("disengagement")
    )
    assert result.method == "rule:silence_vs_rhythm" and not result.validated
    assert result.holdout_data.empty and not result.split.train_dates
    assert "--horizon" in result.notes[0] and "percentiles" in result.notes[1]
    assert result.split.holdout_dates == (until,)  # ranked as of --until
    x = result.train_data[list(result.feature_columns)]
    p = result.model.predict_proba(x)[:, 1]
    assert len(p) == len(x) > 0 and p.min() >= 0.0 and p.max() <= 1.0
    # more silence against the usual rhythm ranks higher
    order = np.argsort(x["silence_surprise"].to_numpy(), kind="stable")
    assert np.all(np.diff(p[order]) >= 0)


def test_one_labelled_snapshot_is_enough_to_judge_the_rules(small_tables):
    until = small_tables.first_observed + np.timedelta64(120, "D")
    result = _train(
        small_tables, "disengagement", FrameConfig(until=until), fast_config("disengagement")
    )
    assert result.method.startswith("rule:") and result.validated
    assert len(result.split.holdout_dates) == 1
    assert "judged on 1 labelled snapshot(s)" in result.notes[1]


def test_labelled_snapshots_without_a_learnable_model_judge_the_rules(small_tables):
    config = fast_config("disengagement", min_train_positives=10**6, bootstrap_samples=50)
    result = _train(small_tables, "disengagement", FrameConfig(snapshots=4), config)
    assert result.method.startswith("rule:") and result.validated
    m = result.metrics
    assert m["holdout.positives"] >= config.min_holdout_positives
    rules = [k for k in m if k.startswith("backtest.rule:")]
    assert len(rules) == 3  # every rule was judged on the labelled snapshots
    best = max(rules, key=lambda k: m[k])
    assert best == f"backtest.{result.candidate}.pr_auc"
    low, high = result.intervals["roc_auc"]
    assert low <= m["holdout.roc_auc"] <= high
    assert result.calibration_method == "isotonic"


def test_a_learnable_model_without_a_backtest_is_kept_and_marked_not_validated(small_tables):
    config = fast_config("disengagement", validation="holdout")
    result = _train(small_tables, "disengagement", FrameConfig(snapshots=4), config)
    assert result.method == "model" and not result.validated
    # A 300-member community: the logistic regression is the preferred model of every target.
    assert result.candidate == "logreg" == config.for_members(300).candidates[0]
    assert "not validated" in result.notes[0] and "fully observed snapshots" in result.notes[0]
    assert len(result.train_data) == result.metrics["train.rows"]


def test_readiness_without_a_roles_table_is_ranked_by_a_rule_and_says_so(small_tables):
    tables = without_roles(small_tables)
    result = _train(tables, "readiness", FrameConfig(), fast_config("readiness"))
    assert result.method == "rule:activity_365d" and not result.validated
    assert "roles" in result.notes[0]
    as_of = result.split.holdout_dates[0]
    eligible = select_readiness_eligible(tables, as_of, LABELS, allow_no_spells=True)
    assert len(result.train_data) == len(eligible)
    x = align_features(build_features(tables, as_of, result.feature_config), result.feature_columns)
    assert np.isfinite(result.model.predict_proba(x)[:, 1]).all()


def test_nothing_to_rank_is_an_error_naming_the_reason(small_tables):
    until = small_tables.first_observed - np.timedelta64(1, "D")
    with pytest.raises(InsufficientDataError, match="no member is eligible"):
        _train(
            small_tables, "disengagement", FrameConfig(until=until), fast_config("disengagement")
        )
