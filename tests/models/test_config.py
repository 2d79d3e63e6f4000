"""TrainConfig's checks, grouped by concern: target and candidates, rules, choices, counts,
fitting, and selection and the gate."""

from __future__ import annotations

import pytest

from features.errors import ConfigError
from models.config import DEFAULT_CANDIDATES, DEFAULT_LOGREG_C, TrainConfig


def test_the_defaults_pass_and_resolve_candidates_and_logreg_c_per_target():
    for target in ("readiness", "disengagement"):
        config = TrainConfig(target=target)
        assert config.candidates == DEFAULT_CANDIDATES[target]
        assert config.logreg_c == DEFAULT_LOGREG_C[target]
    assert TrainConfig(candidates=["logreg"], logreg_c=0.5).candidates == ("logreg",)
    assert TrainConfig(logreg_c=0.5).logreg_c == 0.5


@pytest.mark.parametrize(("field", "value", "message"), [
    # target and candidates
    ("target", "churn", "target must be one of"),
    ("candidates", (), "candidates must be a non-empty subset"),
    ("candidates", ("svm",), "candidates must be a non-empty subset"),
    # choices
    ("calibration", "platt", "calibration must be one of"),
    ("primary_metric", "accuracy", "primary_metric must be one of"),
    ("validation", "cv", "validation must be one of"),
    ("class_weight", "auto", "class_weight must be none or balanced"),
    ("ece_strategy", "kmeans", "ece_strategy must be quantile or uniform"),
    # counts
    ("capacity_share", 0.0, r"capacity_share must be in \(0, 1\]"),
    ("capacity_share", 1.5, r"capacity_share must be in \(0, 1\]"),
    ("backtest_origins", 0, "backtest_origins must be a positive whole number"),
    ("holdout_snapshots", 1.5, "holdout_snapshots must be a positive whole number"),
    ("importance_max_rows", -1, "importance_max_rows must be a positive whole number"),
    # fitting
    ("logreg_c", 0.0, "logreg_c must be > 0"),
    ("selection_margin", -0.1, "selection_margin must be >= 0"),
    ("calibration_stride", 0, "calibration_stride must be None"),
    ("threads", 0, "threads must be None or a positive whole number"),
    ("max_fit_rows", 999, "max_fit_rows must be None or a whole number >= 1000"),
    ("calibration_fit_rows", 1500.5, "calibration_fit_rows must be None or a whole number"),
    # selection and the gate
    ("calibration_folds", 1, "calibration_folds must be at least 2"),
    ("promotion_tolerance", -0.01, "promotion_tolerance must be >= 0"),
    ("bootstrap_samples", -1, "bootstrap_samples must be a whole number >= 0"),
    ("linear_first_below_members", 1.5, "linear_first_below_members must be a whole number"),
    ("selection_confidence", 1.0, r"selection_confidence must be in \[0, 1\)"),
    ("interval_level", 1.0, r"interval_level must be in \(0, 1\)"),
])
def test_each_check_names_the_field_it_refuses(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{field: value})


@pytest.mark.parametrize(("bad", "first"), [
    ({"target": "churn", "calibration": "platt"}, "target"),
    ({"target": "readiness", "rules": ("recency",), "calibration": "platt"}, "recency"),
    ({"ece_strategy": "kmeans", "capacity_share": 2.0}, "ece_strategy"),
    ({"ece_bins": 0, "logreg_c": -1.0}, "ece_bins"),
    ({"max_fit_rows": 10, "calibration_folds": 1}, "max_fit_rows"),
    ({"calibration_folds": 1, "interval_level": 2.0}, "calibration_folds"),
])
def test_with_several_bad_settings_the_checks_run_in_their_order(bad, first):
    with pytest.raises(ConfigError) as refused:
        TrainConfig(**bad)
    assert first in str(refused.value)
