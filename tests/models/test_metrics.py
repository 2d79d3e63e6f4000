"""Metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from features.errors import ConfigError
from models.metrics import (
    _member_weight_chunks,
    bootstrap_intervals,
    brier_score,
    capacity_k,
    chapter_roc_auc,
    chapter_top_precision,
    evaluate_scores,
    expected_calibration_error,
    is_better,
    log_loss,
    paired_bootstrap_difference,
    pr_auc,
    precision_at_k,
    recall_at_k,
    roc_auc,
    top_fraction_lift,
    weighted_rank_metric,
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


def test_brier_and_log_loss_edge_cases_by_hand():
    # probabilities of exactly 0 and 1 are clipped to [1e-15, 1 - 1e-15]
    assert log_loss([1], [0.0]) == pytest.approx(-math.log(1e-15), rel=1e-12)
    assert log_loss([0, 1], [0.0, 1.0]) == pytest.approx(-math.log1p(-1e-15), abs=1e-18)
    # 1 - 1e-15 rounds to a float whose distance from 1 is 1.11e-15
    both_wrong = -(math.log(1e-15) + math.log1p(-(1 - 1e-15))) / 2
    assert log_loss([1, 0], [0.0, 1.0]) == pytest.approx(both_wrong, rel=1e-12)
    # a single class is still scored (a holdout date with no positive is data)
    assert log_loss([0, 0], [0.2, 0.4]) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    assert log_loss([1, 1], [0.2, 0.4]) == pytest.approx(-(math.log(0.2) + math.log(0.4)) / 2)
    assert brier_score([0, 0], [0.2, 0.4]) == pytest.approx((0.04 + 0.16) / 2)
    assert brier_score([1], [0.25]) == pytest.approx(0.5625)
    assert brier_score([0, 1], [0.0, 1.0]) == 0.0
    # no rows: undefined, not an error
    assert math.isnan(log_loss([], []))
    assert math.isnan(brier_score([], []))
    with pytest.raises(ValueError, match="differ in length"):
        log_loss([0, 1], [0.5])
    with pytest.raises(ValueError):
        brier_score([0, 1], [0.5, 1.5])  # not a probability


def test_brier_and_log_loss_match_the_plain_formulas_to_rounding():
    rng = np.random.default_rng(3)
    p = rng.beta(0.5, 5.0, 5000)
    p[:50] = 0.0
    y = (rng.random(5000) < p).astype(int)
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    plain_log_loss = -np.mean(y * np.log(clipped) + (1 - y) * np.log1p(-clipped))
    assert log_loss(y, p) == pytest.approx(plain_log_loss, rel=1e-14)
    assert brier_score(y, p) == pytest.approx(np.mean((p - y) ** 2), rel=1e-14)


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


def _random_tied_data(rng, n):
    y = rng.integers(0, 2, n)
    s = rng.integers(0, 5, n) / 4  # five distinct scores: many ties
    return y, s


def test_weighted_metrics_with_unit_weights_match_sklearn_and_ours_on_ties():
    rng = np.random.default_rng(7)
    for _ in range(50):
        n = int(rng.integers(3, 40))
        y, s = _random_tied_data(rng, n)
        if not 0 < y.sum() < n:
            continue
        ones = np.ones(n)
        assert weighted_rank_metric("roc_auc", y, s, ones) == pytest.approx(roc_auc_score(y, s))
        assert weighted_rank_metric("pr_auc", y, s, ones) == pytest.approx(
            average_precision_score(y, s)
        )
        k = int(rng.integers(1, n + 1))
        assert weighted_rank_metric("precision_at_k", y, s, ones, k=k) == pytest.approx(
            precision_at_k(y, s, k)
        )


def test_integer_weights_equal_repeating_rows():
    rng = np.random.default_rng(8)
    checked = 0
    for _ in range(50):
        n = int(rng.integers(3, 30))
        y, s = _random_tied_data(rng, n)
        w = rng.integers(0, 4, n)
        rows = np.repeat(np.arange(n), w)
        y_rep, s_rep = y[rows], s[rows]
        if not 0 < y_rep.sum() < y_rep.size:
            continue
        checked += 1
        assert weighted_rank_metric("roc_auc", y, s, w) == pytest.approx(roc_auc(y_rep, s_rep))
        assert weighted_rank_metric("pr_auc", y, s, w) == pytest.approx(pr_auc(y_rep, s_rep))
        k = int(rng.integers(1, y_rep.size + 1))
        assert weighted_rank_metric("precision_at_k", y, s, w, k=k) == pytest.approx(
            precision_at_k(y_rep, s_rep, k)
        )
    assert checked > 20
    # many weight vectors at once give one value per row, nan where a class is missing
    y, s = np.array([0, 1, 0, 1]), np.array([0.1, 0.2, 0.3, 0.4])
    weights = np.array([[1, 1, 1, 1], [0, 1, 0, 2], [1, 0, 0, 1]])
    many = weighted_rank_metric("roc_auc", y, s, weights)
    assert many[0] == pytest.approx(0.75) and math.isnan(many[1]) and many[2] == pytest.approx(1.0)


def test_bootstrap_of_a_perfect_ranking_is_one_whenever_defined():
    y, s, members = [0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], ["a", "b", "c", "d"]
    out = bootstrap_intervals(y, s, members, k=1)
    # a replicate lacks a class with probability 2 / 2**4 = 1/8: most replicates define it
    assert out["roc_auc"] == (1.0, 1.0) and out["pr_auc"] == (1.0, 1.0)
    # precision@k is 0 where a replicate has no positive (1/16 of them), as on a holdout date
    assert out["precision_at_k"] == (0.0, 1.0)
    reversed_ = bootstrap_intervals(y, s[::-1], members, metrics=("roc_auc",))
    assert reversed_["roc_auc"] == (0.0, 0.0)


def test_bootstrap_is_seeded_and_without_positives_undefined():
    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.1).astype(int)
    s = rng.random(300) + 0.3 * y
    members = np.arange(300)
    first = bootstrap_intervals(y, s, members, seed=5, n_boot=100)
    assert first == bootstrap_intervals(y, s, members, seed=5, n_boot=100)
    assert first != bootstrap_intervals(y, s, members, seed=6, n_boot=100)
    for low, high in first.values():
        assert 0 <= low <= high <= 1
    empty = bootstrap_intervals(np.zeros(300), s, members)
    assert all(math.isnan(v) for v in (*empty["roc_auc"], *empty["pr_auc"]))
    assert empty["precision_at_k"] == (0.0, 0.0)  # no positive: no hit, as the point figure
    # one positive among two members: half the replicates at most have both classes -> nan
    assert math.isnan(bootstrap_intervals([0, 1], [0.1, 0.9], ["a", "b"])["roc_auc"][0])
    with pytest.raises(ConfigError):
        bootstrap_intervals(y, s, members, metrics=("brier",))
    with pytest.raises(ConfigError):
        bootstrap_intervals(y, s, members, level=1.0)


def test_bootstrap_averages_over_dates_and_skips_dates_lacking_a_class():
    members = ["a", "b", "c", "d"] * 2
    dates = ["2024-01-01"] * 4 + ["2024-04-01"] * 4
    y = [1, 1, 0, 0] * 2
    # first date ranked perfectly (AUC 1), second reversed (AUC 0); a member's label is the
    # same on both dates, so a replicate has both classes on both dates or on neither
    s = [0.9, 0.8, 0.2, 0.1, 0.3, 0.15, 0.6, 0.7]
    out = bootstrap_intervals(y, s, members, dates=dates, metrics=("roc_auc",))
    assert out["roc_auc"] == (0.5, 0.5)
    # pooled as one date, the replicates differ
    low, high = bootstrap_intervals(y, s, members, metrics=("roc_auc",))["roc_auc"]
    assert low < high
    # no positive on the second date: the rank metrics skip it, leaving the perfect first date;
    # precision@k counts it as 0, as the holdout evaluation does (point figure (1 + 0) / 2)
    y_skip = [1, 1, 0, 0, 0, 0, 0, 0]
    out = bootstrap_intervals(y_skip, s, members, dates=dates, k=lambda n: max(1, n // 4))
    assert out == {"roc_auc": (1.0, 1.0), "pr_auc": (1.0, 1.0), "precision_at_k": (0.0, 0.5)}


def _naive_replicate(y, s, members, dates, counts, k):
    """The replicate with every member's rows repeated by its draw count, metric per date."""
    rows = np.repeat(np.arange(y.size), counts[members])
    values = []
    for date in np.unique(dates):
        part = rows[dates[rows] == date]
        y_d, s_d = y[part], s[part]
        if 0 < y_d.sum() < y_d.size:
            values.append(
                (roc_auc(y_d, s_d), pr_auc(y_d, s_d), precision_at_k(y_d, s_d, k(y_d.size)))
            )
    return np.mean(values, axis=0) if values else np.full(3, np.nan)


def test_bootstrap_equals_the_explicit_resample_of_members():
    rng = np.random.default_rng(11)
    n_members, n_dates, n_boot = 40, 3, 30
    members = np.tile(np.arange(n_members), n_dates)
    dates = np.repeat(np.arange(n_dates), n_members)
    y = (rng.random(members.size) < 0.15).astype(int)
    s = rng.integers(0, 8, members.size) / 7 + 0.2 * y

    def k(n):
        return max(1, n // 10)

    counts = np.concatenate(list(_member_weight_chunks(n_members, n_boot, y.size, 4)))
    reps = np.array([_naive_replicate(y, s, members, dates, c.astype(int), k) for c in counts])
    out = bootstrap_intervals(y, s, members, dates=dates, k=k, n_boot=n_boot, seed=4)
    for j, metric in enumerate(("roc_auc", "pr_auc", "precision_at_k")):
        defined = reps[~np.isnan(reps[:, j]), j]
        expected = np.quantile(defined, [0.05, 0.95])
        assert out[metric] == pytest.approx(tuple(expected))


def test_paired_difference_of_identical_scores_is_exactly_zero():
    rng = np.random.default_rng(2)
    y = (rng.random(200) < 0.1).astype(int)
    s = rng.random(200)
    members = np.arange(200) % 100
    dates = np.arange(200) // 100
    same = paired_bootstrap_difference(y, s, s.copy(), members, dates=dates)
    assert same == {"difference": 0.0, "low": 0.0, "high": 0.0, "p_a_worse": 0.0}
    # perfect challenger against a reversed champion: a is never worse
    perfect = y + 0.01 * s
    out = paired_bootstrap_difference(y, perfect, -perfect, members, metric="roc_auc")
    assert out["difference"] == pytest.approx(1.0)
    assert (out["low"], out["high"], out["p_a_worse"]) == (1.0, 1.0, 0.0)
    swapped = paired_bootstrap_difference(y, -perfect, perfect, members, metric="roc_auc")
    assert swapped["p_a_worse"] == 1.0
    none = paired_bootstrap_difference(np.zeros(200), s, perfect, members)
    assert math.isnan(none["low"]) and math.isnan(none["p_a_worse"])


def test_paired_difference_point_estimate_is_the_per_date_mean_difference():
    rng = np.random.default_rng(9)
    members = np.tile(np.arange(50), 2)
    dates = np.repeat([0, 1], 50)
    y = (rng.random(100) < 0.2).astype(int)
    a, b = rng.random(100) + 0.5 * y, rng.random(100)
    out = paired_bootstrap_difference(y, a, b, members, dates=dates, n_boot=100)
    expected = np.mean(
        [pr_auc(y[dates == d], a[dates == d]) - pr_auc(y[dates == d], b[dates == d])
         for d in (0, 1)]
    )
    assert out["difference"] == pytest.approx(expected)
    assert out["low"] <= out["difference"] <= out["high"]
    assert 0.0 <= out["p_a_worse"] <= 1.0
