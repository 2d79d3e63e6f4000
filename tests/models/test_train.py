"""Training end to end on a small simulated community: time split, baselines, oracle, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import ConfigError, InsufficientDataError, TargetUnavailable
from features.feature_config import FeatureConfig
from features.frames import FrameConfig, build_training_frame
from features.labels import LabelConfig
from models.train import (
    DEFAULT_SNAPSHOTS,
    build_target_frames,
    calibration_extra_folds,
    default_frame_config,
    evaluate_on_holdout,
    render_card,
    train_target,
)
from tests.models.conftest import fast_config, without_roles

LABELS = LabelConfig()


@pytest.fixture
def fits_and_result(trained_disengagement):
    return trained_disengagement


@pytest.mark.slow
def test_no_model_is_fitted_on_labels_overlapping_its_evaluation_date(fits_and_result):
    calls, result = fits_and_result
    horizon = pd.Timedelta(days=LABELS.horizon_days)
    as_of = result.train_data["as_of"].to_numpy()
    holdout = min(result.split.holdout_dates)
    assert (result.train_data["as_of"] + horizon <= holdout).all()
    assert not set(result.train_data["as_of"]) & set(result.holdout_data["as_of"])
    n_candidates = len(result.config.candidates)
    n_selection = result.config.backtest_origins
    folds = result.split.folds
    assert len(folds) > n_selection  # older origins feed the calibration
    # backtest fits: every candidate at each of the newest origins, then the winner at older
    # origins; each on exactly the snapshots whose windows end by that origin
    expected = [f for f in folds[:n_selection] for _ in range(n_candidates)]
    expected += calibration_extra_folds(folds, result.config, len(result.train_data))
    # small data: every older origin up to calibration_origins
    assert expected[n_selection * n_candidates :] == list(
        folds[n_selection : result.config.calibration_origins]
    )
    assert len(calls) == len(expected) + 1
    for rows, fold in zip(calls[:-1], expected, strict=True):
        fitted_dates = pd.to_datetime(np.unique(as_of[rows]))
        assert (fitted_dates + horizon <= fold.origin).all()
        assert set(fitted_dates) == set(fold.train_dates)
    # the final fit: every training row
    assert len(calls[-1]) == len(result.train_data)


@pytest.mark.slow
def test_result_has_holdout_baseline_backtest_and_oracle_metrics(fits_and_result):
    _, result = fits_and_result
    m = result.metrics
    for prefix in (
        "holdout",
        "backtest",
        "baseline.orbit_love",
        "baseline.recency",
        "baseline.frequency",
        "oracle",
    ):
        for metric in ("roc_auc", "pr_auc", "precision_at_k", "ece", "chapter_top_precision"):
            assert f"{prefix}.{metric}" in m, f"{prefix}.{metric}"
    assert 0.5 < m["holdout.roc_auc"] <= 1.0
    # rules point the right way: more recent / more frequent activity = less risk of leaving
    assert m["baseline.recency.roc_auc"] > 0.5
    assert m["baseline.frequency.roc_auc"] > 0.5
    assert m["oracle_ratio.roc_auc"] == pytest.approx(m["holdout.roc_auc"] / m["oracle.roc_auc"])
    assert set(result.comparison.index) >= {"model", "baseline:orbit_love", "oracle"}
    backtest = result.backtest
    assert set(backtest["scorer"]) == {
        *result.config.candidates,
        "baseline:orbit_love",
        "baseline:recency",
        "baseline:frequency",
    }
    selection = backtest[backtest["phase"] == "selection"]
    assert selection.groupby("scorer")["origin"].nunique().eq(3).all()
    assert set(backtest.loc[backtest["phase"] == "calibration", "scorer"]) == {result.candidate}
    assert backtest["roc_auc"].between(0, 1).all()
    assert result.candidate in result.config.candidates
    assert result.calibration_method in ("isotonic", "sigmoid")
    # the stored holdout scores are the model's calibrated probabilities
    x = result.holdout_data[list(result.feature_columns)]
    np.testing.assert_allclose(result.model.predict_proba(x)[:, 1], result.holdout_data["score"])
    again = evaluate_on_holdout(result.model, result.feature_columns, result)
    assert again["pr_auc"] == pytest.approx(m["holdout.pr_auc"])
    assert set(result.importance["feature"]) == set(result.feature_columns)
    card = render_card(result)
    assert "disengagement" in card and "oracle" in card and "Known limits" in card


def test_readiness_is_unavailable_without_roles(small_tables):
    with pytest.raises(TargetUnavailable):
        train_target(
            without_roles(small_tables),
            "readiness",
            LABELS,
            FrameConfig(),
            FeatureConfig(),
            fast_config("readiness"),
        )


def test_too_few_snapshots_or_positives_say_what_is_needed(small_tables):
    with pytest.raises(InsufficientDataError, match=r"at least \d+ fully observed snapshots"):
        train_target(
            small_tables,
            "disengagement",
            LABELS,
            FrameConfig(snapshots=4),
            FeatureConfig(),
            fast_config("disengagement", validation="holdout"),
        )
    # automatic validation tries the backtest alone, and says what history would allow it
    with pytest.raises(InsufficientDataError, match=r"(?s)no model can be checked.*--every"):
        train_target(
            small_tables,
            "disengagement",
            LABELS,
            FrameConfig(snapshots=4),
            FeatureConfig(),
            fast_config("disengagement"),
        )
    config = fast_config("disengagement", min_train_positives=10**6)
    with pytest.raises(InsufficientDataError, match=r"a learned model needs at least 1000000"):
        train_target(
            small_tables,
            "disengagement",
            LABELS,
            default_frame_config("disengagement", LABELS, config),
            FeatureConfig(),
            config,
        )


def test_default_frame_config_sizes_snapshots_for_the_backtest():
    config = fast_config("readiness")
    # 1 holdout + 2 more origins + 2 gaps of 6 snapshots (180 days / 30) + 2 to train - 1 = 16
    assert default_frame_config("readiness", LABELS, config, FrameConfig()).snapshots == 16
    # an automatic holdout is sized for its largest pool: 6 + 2 + 12 + 1 = 21
    pooled = fast_config("readiness", holdout_snapshots=None)
    assert default_frame_config("readiness", LABELS, pooled, FrameConfig()).snapshots == 21
    assert default_frame_config("disengagement", LABELS, config, FrameConfig()).snapshots == 12
    assert (
        default_frame_config("readiness", LABELS, config, FrameConfig(snapshots=20)).snapshots == 20
    )
    assert default_frame_config("readiness", LABELS, config).snapshots == DEFAULT_SNAPSHOTS


def test_target_frames_keep_the_buildable_targets_and_say_why_others_are_not(small_tables):
    tables = without_roles(small_tables)
    frames = {"readiness": FrameConfig(snapshots=3), "disengagement": FrameConfig(snapshots=3)}
    built, errors = build_target_frames(tables, frames, LABELS, FeatureConfig())
    assert list(built) == ["disengagement"] and list(errors) == ["readiness"]
    assert isinstance(errors["readiness"], TargetUnavailable)
    alone = build_training_frame(tables, "disengagement", LABELS, frames["disengagement"])
    pd.testing.assert_frame_equal(built["disengagement"].data, alone.data)


def test_a_frame_of_another_target_is_refused(small_tables):
    frame = FrameConfig(snapshots=3)
    tf = build_training_frame(small_tables, "disengagement", LABELS, frame)
    with pytest.raises(ConfigError, match="'disengagement' frame, not 'readiness'"):
        train_target(
            small_tables, "readiness", LABELS, frame, FeatureConfig(), fast_config("readiness"),
            training_frame=tf,
        )


@pytest.mark.slow
def test_card_says_when_the_frame_was_a_member_sample(fits_and_result):
    import dataclasses

    _, result = fits_and_result
    assert result.metrics["frame.member_share"] == 1.0  # the small community is below the cap
    # Every row of the frame: training, holdout and the snapshots between them (whose labels
    # overlap the holdout, so they train nothing).
    assert result.metrics["frame.eligible_rows"] >= len(result.train_data) + len(
        result.holdout_data
    )
    assert "hash sample" not in render_card(result)
    sampled = dataclasses.replace(
        result,
        metrics={**result.metrics, "frame.member_share": 0.25, "frame.eligible_rows": 8e6},
    )
    card = render_card(sampled)
    assert "25.0% hash sample of the members" in card and "8,000,000 eligible" in card


def test_without_a_holdout_the_backtest_judges_and_the_model_learns_every_snapshot(small_tables):
    config = fast_config("disengagement", holdout_snapshots=None, validation="backtest")
    frame = default_frame_config("disengagement", LABELS, config)
    result = train_target(small_tables, "disengagement", LABELS, frame, FeatureConfig(), config)
    assert result.split.holdout_dates == () and result.validated
    assert result.notes[0].startswith("Validated by the backtest alone")
    # every labelled snapshot trains the final model ...
    labelled = [d for d in frame_dates(small_tables, frame) if d + pd.Timedelta(days=90)
                <= small_tables.last_observed]
    assert set(result.train_data["as_of"]) == set(labelled)
    # ... and the evaluation rows are backtest origins, each scored out of time
    origins = {f.origin for f in result.split.folds}
    assert set(result.holdout_data["as_of"]) <= origins
    assert 0.5 < result.metrics["holdout.roc_auc"] <= 1.0


def frame_dates(tables, frame):
    from features.frames import snapshot_dates

    return snapshot_dates(tables, "disengagement", LABELS, frame)
