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
