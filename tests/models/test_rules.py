"""Ranking rules: one column, the right direction, percentiles until calibrated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import ConfigError
from models.config import TrainConfig
from models.rules import RULES, RuleScorer, is_rule, method_of, rule_named, rules_for
from models.train import choose_candidate


def _x() -> pd.DataFrame:
    return pd.DataFrame({"n_all_365d": [0.0, 5.0, 10.0, 2.0], "other": [1.0, 1.0, 1.0, 1.0]})


def test_a_rule_scores_by_its_column_and_direction():
    up = RuleScorer("n_all_365d", +1).fit(_x())
    np.testing.assert_array_equal(up.decision_function(_x()), [0, 5, 10, 2])
    down = RuleScorer("n_all_365d", -1).fit(_x())
    np.testing.assert_array_equal(down.decision_function(_x()), [0, -5, -10, -2])
    assert list(up.feature_names_in_) == ["n_all_365d", "other"]


def test_before_calibration_a_rule_gives_percentiles_within_what_it_saw():
    p = RuleScorer("n_all_365d", +1).fit(_x()).predict_proba(_x())[:, 1]
    # the lowest of the four is the 0th percentile, the highest the 100th, in order
    assert p[0] == 0.0 and p[2] == 1.0
    assert p[0] < p[3] < p[1] < p[2]
    outside = pd.DataFrame({"n_all_365d": [-1.0, 99.0], "other": [1.0, 1.0]})
    np.testing.assert_array_equal(
        RuleScorer("n_all_365d", +1).fit(_x()).predict_proba(outside)[:, 1], [0.0, 1.0]
    )


def test_a_rule_refuses_features_without_its_column():
    with pytest.raises(ConfigError, match="no column 'n_all_365d'"):
        RuleScorer("n_all_365d", +1).fit(pd.DataFrame({"x": [1.0]}))
    with pytest.raises(ConfigError, match="direction"):
        RuleScorer("n_all_365d", 2).fit(_x())


def test_rules_are_named_and_filtered_by_the_columns_there_are():
    assert [r.name for r in rules_for("readiness", ["n_all_365d"])] == ["activity_365d"]
    assert rules_for("disengagement") == RULES["disengagement"]
    assert rule_named("readiness", "rule:breadth_365d").column == "distinct_events_365d"
    with pytest.raises(ConfigError, match="known rules: rule:activity_365d"):
        rule_named("readiness", "rule:nope")
    assert is_rule("rule:recency") and not is_rule("logreg")
    assert method_of("rule:recency") == "rule:recency" and method_of("hgb") == "model"


def test_a_config_lists_the_models_then_the_rules():
    config = TrainConfig(target="readiness", candidates=("logreg",))
    assert config.all_candidates == (
        "logreg", "rule:activity_365d", "rule:active_weeks_365d", "rule:breadth_365d"
    )
    assert TrainConfig(target="readiness", rules=("breadth_365d",)).rules == ("rule:breadth_365d",)
    with pytest.raises(ConfigError, match="no rule"):
        TrainConfig(target="readiness", rules=("recency",))


def test_a_later_candidate_must_be_better_by_the_margin_and_in_most_resamples():
    config = TrainConfig(target="readiness", candidates=("logreg",), rules=("activity_365d",))
    means = {"logreg": 0.30, "rule:activity_365d": 0.35}
    assert choose_candidate(means, config) == "rule:activity_365d"
    assert choose_candidate(means, config, better=lambda a, b: False) == "logreg"
    assert choose_candidate(means, config, better=lambda a, b: True) == "rule:activity_365d"
    close = {"logreg": 0.30, "rule:activity_365d": 0.305}  # inside the 0.01 margin
    assert choose_candidate(close, config, better=lambda a, b: True) == "logreg"
