"""Calibration maps keep the order of the scores they map."""

from __future__ import annotations

import numpy as np

from models.estimators import apply_calibration, fit_calibrator


def test_a_platt_map_fitted_on_reversed_scores_gives_the_base_rate_in_the_same_order():
    score = np.array([0.0, 1.0, 2.0, 3.0])
    y = np.array([1, 1, 0, 0])  # higher scores did worse in this sample
    cal = fit_calibrator(score, y, "sigmoid")
    assert cal["slope"] > 0
    p = apply_calibration(score, "sigmoid", slope=cal["slope"], intercept=cal["intercept"])
    assert np.all(np.diff(p) > 0)  # the order of the scores is kept
    np.testing.assert_allclose(p, 0.5, atol=1e-5)  # 2 positives of 4


def test_a_platt_map_on_informative_scores_is_fitted_as_usual():
    score = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    y = np.array([0, 0, 1, 0, 1, 1])
    cal = fit_calibrator(score, y, "sigmoid")
    assert cal["slope"] > 0.1
    p = apply_calibration(score, "sigmoid", slope=cal["slope"], intercept=cal["intercept"])
    assert p[0] < 0.3 < 0.7 < p[-1]
