"""Metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from features.errors import ConfigError
from models.metrics import (
    brier_score,
    capacity_k,
    chapter_roc_auc,
    chapter_top_precision,
    evaluate_scores,
    expected_calibration_error,
    is_better,
    log_loss,
    pr_auc,
    precision_at_k,
    recall_at_k,
    roc_auc,
    top_fraction_lift,
)


def test_roc_auc_counts_ordered_pairs_and_half_ties():
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered correctly
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    # a tie counts one half
    assert roc_auc([0, 1, 0], [0.5, 0.5, 0.1]) == pytest.approx(0.75)
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_pr_auc_is_step_average_precision():
    # ranked: 0.8 (pos) 0.4 (neg) 0.35 (pos) 0.1 (neg)
    # recall steps 0.5 at precision 1, then 0.5 at precision 2/3 -> 0.5 + 1/3
    assert pr_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.5 + 1 / 3)
    assert math.isnan(pr_auc([0, 0], [0.1, 0.2]))


def test_brier_and_log_loss():
    assert brier_score([1, 0], [0.8, 0.3]) == pytest.approx((0.04 + 0.09) / 2)
    expected = -(math.log(0.8) + math.log(0.7)) / 2
    assert log_loss([1, 0], [0.8, 0.3]) == pytest.approx(expected)
    # clipped, not infinite
    assert math.isfinite(log_loss([1], [0.0]))


def test_ece_equal_mass_and_equal_width_bins():
    y = [0, 0, 1, 1, 0, 1]
    p = [0.1, 0.2, 0.3, 0.45, 0.7, 0.9]
    # equal mass, 2 bins: {0.1,0.2,0.3} mean 0.2 vs rate 1/3; {0.45,0.7,0.9} mean 0.68333 vs 2/3
    expected_quantile = 0.5 * abs(0.2 - 1 / 3) + 0.5 * abs((0.45 + 0.7 + 0.9) / 3 - 2 / 3)
    assert expected_calibration_error(y, p, 2, "quantile") == pytest.approx(expected_quantile)
    assert expected_quantile == pytest.approx(0.075)
    # equal width, 2 bins: [0, .5) holds four rows (mean .2625, rate .5); [.5, 1] two (.8, .5)
    expected_uniform = 4 / 6 * abs(0.2625 - 0.5) + 2 / 6 * abs(0.8 - 0.5)
    assert expected_calibration_error(y, p, 2, "uniform") == pytest.approx(expected_uniform)
    # a perfectly calibrated constant has no error
    assert expected_calibration_error([0, 1, 0, 1], [0.5] * 4, 1) == pytest.approx(0.0)
    with pytest.raises(ConfigError):
        expected_calibration_error(y, p, 2, "bogus")


def test_capacity_k_is_a_floor_share_with_minimum_one():
    assert capacity_k(1000, 0.01) == 10
    assert capacity_k(250, 0.01) == 2
    assert capacity_k(50, 0.01) == 1
    assert capacity_k(0, 0.01) == 1
    with pytest.raises(ConfigError):
        capacity_k(100, 0.0)


def test_precision_and_recall_at_k_share_ties_fairly():
    y = [1, 0, 1, 0, 0]
    s = [0.9, 0.8, 0.8, 0.1, 0.2]
    # top 2: 0.9 (pos) plus one of the two rows tied at 0.8 (one pos): 1 + 0.5 hits
    assert precision_at_k(y, s, 2) == pytest.approx(0.75)
    assert recall_at_k(y, s, 2) == pytest.approx(0.75)
    # without the tie the order decides
    assert precision_at_k(y, [0.9, 0.7, 0.8, 0.1, 0.2], 2) == pytest.approx(1.0)
    # the row order of a tie does not matter
    assert precision_at_k([0, 1, 1, 0, 0], [0.8, 0.9, 0.8, 0.1, 0.2], 2) == pytest.approx(0.75)
    assert precision_at_k(y, s, 10) == pytest.approx(2 / 5)


def test_top_decile_lift():
    y = np.array([1] + [0] * 9 + [1] * 2 + [0] * 8)  # 20 rows, 3 positives
    s = np.linspace(1, 0, 20)  # first row is the best
    # top ceil(0.1 * 20) = 2 rows: one positive -> precision 0.5, base rate 0.15
    assert top_fraction_lift(y, s, 0.1) == pytest.approx(0.5 / 0.15)


def test_chapter_top_precision_pools_each_chapters_top_n():
    y = [1, 0, 1, 1, 0, 1]
    s = [0.9, 0.8, 0.7, 0.1, 0.5, 0.2]
    chapter = ["a", "a", "a", "a", "b", "b"]
    # a: top 3 = 0.9 (1), 0.8 (0), 0.7 (1) -> 2 hits; b: both rows -> 1 hit; 3 / 5
    assert chapter_top_precision(y, s, chapter, top=3) == pytest.approx(0.6)
    # ties at a chapter's cut-off: 0.9 (0) + two of three rows tied at 0.5 (one positive)
    y_tie, s_tie = [0, 1, 0, 0], [0.9, 0.5, 0.5, 0.5]
    assert chapter_top_precision(y_tie, s_tie, ["c"] * 4, top=3) == pytest.approx((2 / 3) / 3)


def test_chapter_roc_auc_min_median_max_over_chapters_with_both_classes():
    y = [1, 0, 1, 1, 0, 1, 0, 0, 1, 0]
    s = [0.9, 0.8, 0.7, 0.1, 0.5, 0.2, 0.4, 0.3, 0.6, 0.3]
    chapter = ["a", "a", "a", "a", "b", "b", "c", "c", "d", "d"]
    out = chapter_roc_auc(y, s, chapter)
    # a: negative 0.8 beats 0.7 and 0.1, loses to 0.9 -> 1/3; b: 0; c: one class, skipped; d: 1
    assert out["chapter_roc_auc_min"] == pytest.approx(0.0)
    assert out["chapter_roc_auc_median"] == pytest.approx(1 / 3)
    assert out["chapter_roc_auc_max"] == pytest.approx(1.0)
    assert out["chapters_with_both_classes"] == 3
    assert math.isnan(chapter_roc_auc([0, 0], [0.1, 0.2], ["a", "b"])["chapter_roc_auc_min"])


def test_evaluate_scores_combines_everything():
    y = [1, 0, 1, 0, 0]
    s = [0.9, 0.8, 0.8, 0.1, 0.2]
    out = evaluate_scores(y, s, ["a", "a", "b", "b", "b"], capacity_share=0.4)
    assert out["k"] == 2
    assert out["precision_at_k"] == pytest.approx(0.75)
    assert out["base_rate"] == pytest.approx(0.4)
    assert out["brier"] == pytest.approx(np.mean((np.array(s) - np.array(y)) ** 2))
    # five rows, ten equal-mass bins: every row alone in its bin -> mean |p - y|
    assert out["ece"] == pytest.approx((0.1 + 0.8 + 0.2 + 0.1 + 0.2) / 5)
    ranks_only = evaluate_scores(y, s, ["a"] * 5, probabilities=False)
    assert "brier" not in ranks_only and "roc_auc" in ranks_only


def test_is_better_respects_direction_and_tolerance():
    assert is_better("pr_auc", 0.5, 0.5)
    assert not is_better("pr_auc", 0.49, 0.5)
    assert is_better("pr_auc", 0.49, 0.5, tolerance=0.02)
    assert is_better("brier", 0.10, 0.20)
    assert not is_better("brier", 0.21, 0.20)
    assert not is_better("roc_auc", float("nan"), 0.5)
    assert is_better("roc_auc", 0.5, float("nan"))
    with pytest.raises(ConfigError):
        is_better("accuracy", 1.0, 0.0)
