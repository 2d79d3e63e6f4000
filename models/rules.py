"""Transparent ranking rules: what corecast scores with when a learned model cannot be justified.

A rule ranks members by one feature column that every community's activity log has (activity
counts, active weeks, silence against the member's usual rhythm), in the direction that makes
sense for the target. It has no learned weights: its ranking is the same on any data, so it can
be judged honestly on every labelled snapshot there is, and it still works when there is no
labelled snapshot at all.

A rule is a scikit-learn estimator (:class:`RuleScorer`), so it is trained, calibrated,
registered, loaded, scored and explained exactly like a model. Its ``predict_proba`` before
calibration is the member's *percentile* among the rows it was fitted on (a relative rank in
the community, not a probability); once positives are known, the usual calibration map turns
its score into a probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from features.errors import ConfigError

__all__ = [
    "Rule",
    "RULES",
    "RULE_PREFIX",
    "RuleScorer",
    "is_rule",
    "rule_named",
    "rules_for",
    "method_of",
]

#: Candidate names of rules start with this prefix (``rule:activity_365d``); the ``method`` of a
#: score is ``model`` or such a name.
RULE_PREFIX = "rule:"


@dataclass(frozen=True)
class Rule:
    """A one-column ranking.

    Attributes:
        name: Short name (``activity_365d``); the candidate is ``rule:<name>``.
        column: The feature column it ranks by.
        direction: +1 when a larger value means more likely positive, -1 otherwise.
        description: What it ranks by, in words a community manager understands.
    """

    name: str
    column: str
    direction: int
    description: str

    @property
    def candidate(self) -> str:
        """The name the candidate lists use (``rule:<name>``)."""
        return f"{RULE_PREFIX}{self.name}"


#: The rules of each target, the preferred one first (it is used when no labelled snapshot can
#: choose between them). Readiness: engagement volume, breadth and regularity over the last
#: year. Disengagement: the current silence against the member's usual rhythm, plain recency,
#: and a thin record of activity.
RULES: dict[str, tuple[Rule, ...]] = {
    "readiness": (
        Rule("activity_365d", "n_all_365d", +1, "most activities in the last year"),
        Rule("active_weeks_365d", "active_weeks_365d", +1, "most active weeks in the last year"),
        Rule("breadth_365d", "distinct_events_365d", +1,
             "most distinct events or projects in the last year"),
    ),
    "disengagement": (
        Rule("silence_vs_rhythm", "silence_surprise", +1,
             "longest silence compared with the member's usual rhythm"),
        Rule("recency", "days_since_last_activity", +1, "longest time since the last activity"),
        Rule("few_activities", "n_all_ever", -1, "fewest activities ever"),
    ),
}


def is_rule(candidate: str) -> bool:
    """Whether a candidate name names a rule."""
    return str(candidate).startswith(RULE_PREFIX)


def rules_for(target: str, columns: Sequence[str] | None = None) -> tuple[Rule, ...]:
    """The rules of ``target`` whose column is among ``columns`` (all of them when ``None``)."""
    if target not in RULES:
        raise ConfigError(f"no rules for target {target!r}; choose one of {sorted(RULES)}")
    available = None if columns is None else set(columns)
    return tuple(r for r in RULES[target] if available is None or r.column in available)


def rule_named(target: str, candidate: str) -> Rule:
    """The rule a candidate name (``rule:<name>``) stands for.

    Raises:
        ConfigError: If ``target`` has no such rule.
    """
    name = str(candidate).removeprefix(RULE_PREFIX)
    for rule in RULES.get(target, ()):
        if rule.name == name:
            return rule
    known = ", ".join(r.candidate for r in RULES.get(target, ()))
    raise ConfigError(f"{target} has no rule {candidate!r}; known rules: {known}")


def method_of(candidate: str) -> str:
    """The ``method`` shown beside a score: ``model`` or ``rule:<name>``."""
    return str(candidate) if is_rule(candidate) else "model"


class RuleScorer(ClassifierMixin, BaseEstimator):
    """A :class:`Rule` as a scikit-learn classifier.

    ``decision_function`` is ``direction * column`` (only the order matters). ``predict_proba``
    is the percentile of that score among the rows ``fit`` saw (101 quantile knots, linearly
    interpolated): a rank in [0, 1], not a probability until a calibration map is put on top
    (:class:`models.estimators.CalibratedModel`).

    Args:
        column: The feature column ranked by.
        direction: +1 or -1.
    """

    def __init__(self, column: str = "n_all_365d", direction: int = 1):
        self.column = column
        self.direction = direction

    def fit(self, X: pd.DataFrame, y=None):
        """Record the feature columns and the score's quantiles (``y`` is not used)."""
        if not isinstance(X, pd.DataFrame):
            raise ConfigError("RuleScorer needs a DataFrame with named feature columns")
        if self.column not in X.columns:
            raise ConfigError(f"RuleScorer: the features have no column {self.column!r}")
        if self.direction not in (-1, 1):
            raise ConfigError(f"RuleScorer: direction must be +1 or -1, got {self.direction!r}")
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.classes_ = np.array([0, 1])
        score = self._score(X)
        levels = np.linspace(0.0, 1.0, 101)
        self.knots_x_ = np.quantile(score, levels) if len(score) else np.zeros(101)
        self.knots_y_ = levels
        return self

    def _score(self, X) -> np.ndarray:
        values = X[self.column] if isinstance(X, pd.DataFrame) else X[:, self._position()]
        return self.direction * np.nan_to_num(np.asarray(values, dtype=np.float64))

    def _position(self) -> int:
        return int(np.flatnonzero(self.feature_names_in_ == self.column)[0])

    def decision_function(self, X) -> np.ndarray:
        """``direction * column`` per row."""
        check_is_fitted(self, "knots_x_")
        return self._score(X)

    def predict_proba(self, X) -> np.ndarray:
        """``[1 - percentile, percentile]`` per row (a rank, not a probability)."""
        check_is_fitted(self, "knots_x_")
        x, idx = np.unique(self.knots_x_, return_index=True)
        if len(x) == 1:
            p = np.full(len(X), 0.5)
        else:
            p = np.interp(self._score(X), x, self.knots_y_[idx])
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        """1 for the upper half of the ranking."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
