"""Small scikit-learn compatible building blocks: count scaling and score calibration.

Both classes hold only numpy arrays, plain numbers and fitted scikit-learn objects, so a model
made of them serialises with skops (see :data:`SKOPS_TRUSTED_TYPES`).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = [
    "Log1pNonNegative",
    "CalibratedModel",
    "fit_calibrator",
    "apply_calibration",
    "SKOPS_TRUSTED_TYPES",
]

#: Types a skops-serialised corecast model may contain beyond skops' default allow-list.
SKOPS_TRUSTED_TYPES = [
    "models.estimators.Log1pNonNegative",
    "models.estimators.CalibratedModel",
    "models.rules.RuleScorer",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]

# Probabilities never reach exactly 0 or 1: "certain to leave" is never a useful statement.
_PROB_FLOOR = 1e-4
_TIE_BREAK = 1e-7
_BOUNDS = (_PROB_FLOOR + _TIE_BREAK, 1.0 - _PROB_FLOOR - _TIE_BREAK)
# Slope (per standard deviation of the score) of a Platt map whose fitted slope was not
# positive: small enough to leave every probability at the base rate to about 1e-6, large
# enough to keep the order of the scores.
_FLAT_SLOPE = 1e-6


class Log1pNonNegative(TransformerMixin, BaseEstimator):
    """Apply ``log1p`` to the columns that are non-negative in the training data.

    Activity counts, durations and scores are heavy-tailed; ``log1p`` brings them to a scale a
    linear model can use. Columns that contain negative values in training (trends, differences)
    pass through unchanged. At transform time, values below zero in a logged column are clipped
    to zero.
    """

    def fit(self, X, y=None):
        """Record which columns are non-negative."""
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite=True)
        self.log_mask_ = np.asarray(X.min(axis=0) >= 0)
        return self

    def transform(self, X):
        """Return a float64 copy with ``log1p`` applied to the recorded columns.

        The copy is column-major and each logged column is transformed in place, so a frame
        of a million rows costs one float64 copy and no temporaries.
        """
        check_is_fitted(self, "log_mask_")
        out = validate_data(
            self, X, dtype=np.float64, reset=False, ensure_all_finite=True, copy=True, order="F"
        )
        for j in np.flatnonzero(self.log_mask_):  # one pass per column, not per row
            column = out[:, j]
            np.maximum(column, 0.0, out=column)
            np.log1p(column, out=column)
        return out

    def get_feature_names_out(self, input_features=None):
        """Same names as the input."""
        check_is_fitted(self, "log_mask_")
        if input_features is not None:
            return np.asarray(input_features, dtype=object)
        if hasattr(self, "feature_names_in_"):
            return np.asarray(self.feature_names_in_, dtype=object)
        return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)


class CalibratedModel(ClassifierMixin, BaseEstimator):
    """A fitted classifier whose decision scores are mapped to calibrated probabilities.

    The calibration map is learned elsewhere (on out-of-time predictions, see
    :func:`fit_calibrator`) and stored as plain arrays: for ``"isotonic"`` the step function's
    knots (linearly interpolated, clipped at the ends); for ``"sigmoid"`` Platt's ``a, b`` with
    ``p = 1 / (1 + exp(-(a * score + b)))``; for ``"none"`` the estimator's own
    ``predict_proba``.

    Args:
        estimator: A fitted binary classifier (a scikit-learn Pipeline) with
            ``decision_function``.
        method: ``"isotonic"``, ``"sigmoid"`` or ``"none"``.
        knots_x: Isotonic knots (scores), increasing.
        knots_y: Isotonic knot values (probabilities).
        slope: Platt slope ``a``.
        intercept: Platt intercept ``b``.
    """

    def __init__(
        self,
        estimator=None,
        method: str = "none",
        knots_x=None,
        knots_y=None,
        slope: float = 1.0,
        intercept: float = 0.0,
    ):
        self.estimator = estimator
        self.method = method
        self.knots_x = knots_x
        self.knots_y = knots_y
        self.slope = slope
        self.intercept = intercept

    @property
    def classes_(self) -> np.ndarray:
        """The estimator's classes (``[0, 1]``)."""
        return self.estimator.classes_

    @property
    def feature_names_in_(self) -> np.ndarray:
        """The feature columns the estimator was fitted on, in order."""
        return self.estimator.feature_names_in_

    @property
    def n_features_in_(self) -> int:
        """Number of feature columns."""
        return self.estimator.n_features_in_

    def fit(self, X, y):
        """Not supported: build with :func:`fit_calibrator` from out-of-time scores."""
        raise NotImplementedError(
            "CalibratedModel wraps an already fitted estimator; use fit_calibrator()"
        )

    def decision_function(self, X):
        """The uncalibrated decision score of the estimator."""
        return self.estimator.decision_function(X)

    def predict_proba(self, X):
        """Calibrated ``[P(0), P(1)]`` per row."""
        if self.method == "none":
            p = self.estimator.predict_proba(X)[:, 1]
        else:
            p = apply_calibration(
                self.decision_function(X),
                self.method,
                self.knots_x,
                self.knots_y,
                self.slope,
                self.intercept,
            )
        return np.column_stack([1.0 - p, p])

    def predict(self, X):
        """Class with the larger calibrated probability."""
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


def apply_calibration(
    score: np.ndarray,
    method: str,
    knots_x=None,
    knots_y=None,
    slope: float = 1.0,
    intercept: float = 0.0,
) -> np.ndarray:
    """Map decision scores to probabilities with a stored calibration map."""
    score = np.asarray(score, dtype=np.float64)
    if method == "isotonic":
        p = np.clip(np.interp(score, np.asarray(knots_x), np.asarray(knots_y)), *_BOUNDS)
        # Isotonic maps are step functions: members on one step would tie. Break those ties
        # by the raw score with a shift below 1e-6, far under any calibration error of interest.
        return p + _TIE_BREAK * score / (1.0 + np.abs(score))
    if method == "sigmoid":
        return np.clip(1.0 / (1.0 + np.exp(-(slope * score + intercept))), *_BOUNDS)
    raise ValueError(f"unknown calibration method {method!r}")


def fit_calibrator(score, y, method: str) -> dict:
    """Fit a calibration map from decision scores to outcomes.

    Args:
        score: Out-of-sample decision scores.
        y: 0/1 outcomes.
        method: ``"isotonic"`` or ``"sigmoid"``.

    Returns:
        Keyword arguments for :class:`CalibratedModel` (``method``, ``knots_x``, ``knots_y``,
        ``slope``, ``intercept``).
    """
    score = np.asarray(score, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(score, y)
        return {
            "method": "isotonic",
            "knots_x": np.asarray(iso.X_thresholds_, dtype=np.float64),
            "knots_y": np.asarray(iso.y_thresholds_, dtype=np.float64),
            "slope": 1.0,
            "intercept": 0.0,
        }
    if method == "sigmoid":
        platt = LogisticRegression(C=1e6, max_iter=1000).fit(score[:, None], y)
        slope, intercept = float(platt.coef_[0, 0]), float(platt.intercept_[0])
        if not slope > 0:
            # A calibration map must keep the model's order. Scores that do not rise with the
            # outcome in this sample get the base rate, ordered by the score underneath.
            rate = float(np.clip(y.mean(), _PROB_FLOOR, 1.0 - _PROB_FLOOR)) if y.size else 0.5
            slope = _FLAT_SLOPE / max(float(np.std(score)), 1e-12)
            intercept = float(np.log(rate / (1.0 - rate))) - slope * float(np.mean(score))
        return {
            "method": "sigmoid",
            "knots_x": None,
            "knots_y": None,
            "slope": slope,
            "intercept": intercept,
        }
    raise ValueError(f"unknown calibration method {method!r}")
