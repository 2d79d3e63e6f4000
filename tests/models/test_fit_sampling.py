"""The seeded, snapshot-stratified negative subsampling of large training fits."""

from __future__ import annotations

import numpy as np
import pytest

from features.errors import ConfigError
from models.config import TrainConfig
from models.train import sample_fit_rows


def test_within_the_cap_every_row_is_used_unweighted():
    as_of = np.array([1, 1, 2, 2, 2])
    y = np.array([0, 1, 0, 0, 1])
    u = np.array([0.5, 0.1, 0.9, 0.2, 0.3])
    mask = np.array([True, True, False, True, True])
    index, weight = sample_fit_rows(as_of, y, u, mask, max_rows=10)
    assert index.tolist() == [0, 1, 3, 4] and weight is None


def test_above_the_cap_negatives_are_sampled_per_snapshot():
    # Snapshot 1: negatives 0..5 (6), positive 6. Snapshot 2: negatives 7..10 (4), positive 11.
    as_of = np.array([1] * 7 + [2] * 5)
    y = np.array([0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1])
    u = np.array([0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.5, 0.4, 0.05, 0.6, 0.95, 0.5])
    mask = np.ones(12, dtype=bool)
    # cap 7: rate = (7 - 2) / 10 = 0.5 -> 3 of snapshot 1 (u 0.1, 0.2, 0.3: rows 1, 3, 5) and
    # 2 of snapshot 2 (u 0.05, 0.4: rows 8, 7); weights 6/3 = 2 and 4/2 = 2.
    index, weight = sample_fit_rows(as_of, y, u, mask, max_rows=7)
    assert index.tolist() == [1, 3, 5, 6, 7, 8, 11]
    assert weight.tolist() == [2.0, 2.0, 2.0, 1.0, 2.0, 2.0, 1.0]
    # Weighted negatives add up to the real number of negatives.
    assert weight[y[index] == 0].sum() == pytest.approx(10)


def test_sampling_respects_the_mask_and_is_deterministic():
    rng = np.random.default_rng(0)
    as_of = np.repeat(np.arange(5), 400)
    y = (rng.random(2000) < 0.05).astype(int)
    u = rng.random(2000)
    mask = as_of < 4
    first = sample_fit_rows(as_of, y, u, mask, max_rows=500)
    second = sample_fit_rows(as_of, y, u, mask, max_rows=500)
    np.testing.assert_array_equal(first[0], second[0])
    index = first[0]
    assert mask[index].all()
    assert set(np.flatnonzero(mask & (y == 1))) <= set(index.tolist())  # all positives kept
    assert abs(len(index) - 500) <= 5


@pytest.mark.parametrize("field", ["max_fit_rows", "calibration_fit_rows"])
def test_caps_are_validated(field):
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{field: 10})
    assert getattr(TrainConfig(**{field: None}), field) is None


def test_calibration_origins_span_the_year_with_fewer_fits_when_data_is_large():
    from models.train import calibration_extra_folds

    folds = [f"origin-{i}" for i in range(12)]  # newest first, monthly
    config = TrainConfig(backtest_origins=3, calibration_origins=12, max_fit_rows=1000,
                         calibration_fit_rows=1000)
    # Small data (fits are not capped): every older origin.
    assert calibration_extra_folds(folds, config, train_rows=1000) == folds[3:]
    # Large data: every third, counted from the oldest -> months 5, 8 and 11.
    assert calibration_extra_folds(folds, config, train_rows=1001) == [
        "origin-5", "origin-8", "origin-11"
    ]
    # Explicit stride, and a history shorter than the span.
    assert calibration_extra_folds(
        folds[:8], TrainConfig(calibration_stride=2), train_rows=10
    ) == ["origin-3", "origin-5", "origin-7"]
    # No caps at all: never strided automatically.
    uncapped = TrainConfig(max_fit_rows=None, calibration_fit_rows=None)
    assert calibration_extra_folds(folds, uncapped, train_rows=10**9) == folds[3:]


@pytest.mark.parametrize("stride", [0, -1, 1.5])
def test_calibration_stride_must_be_a_positive_whole_number(stride):
    with pytest.raises(ConfigError, match="calibration_stride"):
        TrainConfig(calibration_stride=stride)


def test_a_small_community_prefers_the_logistic_regression_for_every_target():
    disengagement = TrainConfig(target="disengagement")
    assert disengagement.candidates == ("hgb", "logreg")
    assert disengagement.for_members(4_999).candidates == ("logreg", "hgb")
    assert disengagement.for_members(5_000) is disengagement
    readiness = TrainConfig(target="readiness")
    assert readiness.for_members(10) is readiness  # already first
    trees_only = TrainConfig(candidates=("hgb",))
    assert trees_only.for_members(10) is trees_only  # nothing to move
    listed = TrainConfig(target="disengagement", linear_first_below_members=0)
    assert listed.for_members(10).candidates == ("hgb", "logreg")
    with pytest.raises(ConfigError, match="linear_first_below_members"):
        TrainConfig(linear_first_below_members=-1)


def test_each_challenger_needs_more_confidence_when_there_are_several():
    from models.selection import comparison_confidence

    # One challenger: the overall confidence itself. Four (hgb + three rules): 1 - 0.1 / 4.
    assert comparison_confidence(TrainConfig(target="readiness", rules=())) == pytest.approx(0.9)
    assert comparison_confidence(TrainConfig(target="readiness")) == pytest.approx(0.975)
    alone = TrainConfig(candidates=("logreg",), rules=())
    assert comparison_confidence(alone) == pytest.approx(0.9)


def test_a_more_complex_candidate_must_beat_the_simpler_by_the_margin():
    from models.train import choose_candidate

    config = TrainConfig(candidates=("logreg", "hgb"), primary_metric="pr_auc",
                         selection_margin=0.01)
    # hgb better by 0.006 (PR-AUC 0.609 vs 0.603): not enough, the simpler model stays.
    assert choose_candidate({"logreg": 0.603, "hgb": 0.609}, config) == "logreg"
    # better by 0.02: chosen.
    assert choose_candidate({"logreg": 0.603, "hgb": 0.623}, config) == "hgb"
    # margin 0: the plain best.
    plain = TrainConfig(candidates=("logreg", "hgb"), selection_margin=0.0)
    assert choose_candidate({"logreg": 0.603, "hgb": 0.609}, plain) == "hgb"
    # lower-is-better metric: brier 0.10 vs 0.08 -> hgb better by 0.02.
    brier = TrainConfig(candidates=("logreg", "hgb"), primary_metric="brier")
    assert choose_candidate({"logreg": 0.10, "hgb": 0.08}, brier) == "hgb"
    assert choose_candidate({"logreg": 0.10, "hgb": 0.095}, brier) == "logreg"
    # undefined values are skipped.
    assert choose_candidate({"logreg": float("nan"), "hgb": 0.5}, config) == "hgb"
    assert choose_candidate({}, config) == "logreg"


def test_logistic_regularisation_defaults_per_target_and_is_validated():
    from models.config import DEFAULT_LOGREG_C

    assert TrainConfig(target="readiness").logreg_c == DEFAULT_LOGREG_C["readiness"] == 0.003
    assert TrainConfig(target="disengagement").logreg_c == 0.05
    assert TrainConfig(target="readiness", logreg_c=0.2).logreg_c == 0.2
    assert TrainConfig(target="readiness").to_params()["train.logreg_c"] == "0.003"
    for bad in ({"logreg_c": 0.0}, {"selection_margin": -0.1}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            TrainConfig(**bad)


@pytest.mark.parametrize("name", ["logreg", "hgb"])
def test_a_capped_fit_keeps_probabilities_on_the_population_scale(name):
    import pandas as pd

    from models.fitting import fit_sampled, row_uniforms

    # 20,000 rows in 4 snapshots, ~3 % positives driven by one feature; cap 4,000 rows keeps
    # all ~620 positives and ~17 % of the negatives, so an uncorrected fit predicts ~15 %.
    rng = np.random.default_rng(1)
    n = 20_000
    x1 = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(x1 * 1.5 - 4.4)))).astype(int)
    data = pd.DataFrame({
        "member_id": [f"m{i % 5000}" for i in range(n)],
        "as_of": pd.to_datetime("2024-01-01") + pd.to_timedelta((np.arange(n) // 5000) * 30, "D"),
        "x1": x1, "x2": rng.normal(size=n),
    })
    config = TrainConfig(seed=0, hgb_max_iter=30, hgb_min_samples_leaf=50)
    u = row_uniforms(data, 0)
    x = data[["x1", "x2"]]
    model = fit_sampled(name, config, data, x, y, np.ones(n, bool), 4_000, u)
    mean = model.predict_proba(x)[:, 1].mean()
    assert mean == pytest.approx(y.mean(), abs=0.006), (mean, y.mean())
