"""Model factories return unfitted pipelines; the custom blocks behave as documented."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from features.errors import ConfigError
from models.config import TrainConfig, flatten_params
from models.estimators import (
    SKOPS_TRUSTED_TYPES,
    CalibratedModel,
    Log1pNonNegative,
    apply_calibration,
    fit_calibrator,
)
from models.factories import build_candidate, build_hgb_pipeline, build_logreg_pipeline


def tiny_data(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"count": rng.poisson(3, n).astype(float), "trend": rng.normal(size=n)})
    y = (rng.random(n) < 0.05 + 0.05 * x["count"]).astype(int).to_numpy()
    return x, y


def test_factories_return_unfitted_pipelines_with_balanced_weights():
    for pipe in (build_logreg_pipeline(), build_hgb_pipeline()):
        assert isinstance(pipe, Pipeline)
        with pytest.raises(NotFittedError):
            check_is_fitted(pipe)
        assert pipe.steps[-1][1].class_weight == "balanced"
    logreg = build_logreg_pipeline()
    assert [name for name, _ in logreg.steps] == ["log1p", "scale", "model"]
    config = TrainConfig(logreg_c=0.25, hgb_max_iter=7)
    assert build_candidate("logreg", config).named_steps["model"].C == 0.25
    assert build_candidate("hgb", config).named_steps["model"].max_iter == 7
    with pytest.raises(ConfigError, match="unknown candidate"):
        build_candidate("svm", config)


def test_log1p_applies_only_to_non_negative_columns():
    x = pd.DataFrame({"count": [0.0, np.e - 1], "trend": [-1.0, 2.0]})
    out = Log1pNonNegative().fit(x).transform(x)
    np.testing.assert_allclose(out, [[0.0, -1.0], [1.0, 2.0]])
    # new negative values in a logged column are clipped to zero
    later = pd.DataFrame({"count": [-3.0], "trend": [-5.0]})
    np.testing.assert_allclose(Log1pNonNegative().fit(x).transform(later), [[0.0, -5.0]])


def test_isotonic_calibrator_maps_scores_and_breaks_step_ties_by_score():
    cal = fit_calibrator([0.0, 1.0, 2.0, 3.0], [0, 0, 1, 1], "isotonic")
    p = apply_calibration(np.array([0.2, 0.4, 2.5, 10.0]), **cal)
    # first two sit on the 0 step (floored at 1e-4), last two on the 1 step (capped)
    np.testing.assert_allclose(p, [1e-4, 1e-4, 1 - 1e-4, 1 - 1e-4], atol=2e-6)
    assert p[0] < p[1] and p[2] < p[3]


def test_sigmoid_calibrator_is_monotone_platt_scaling():
    rng = np.random.default_rng(1)
    score = rng.normal(size=2000)
    y = (rng.random(2000) < 1 / (1 + np.exp(-(2 * score - 1)))).astype(int)
    cal = fit_calibrator(score, y, "sigmoid")
    assert cal["slope"] == pytest.approx(2.0, abs=0.3)
    assert cal["intercept"] == pytest.approx(-1.0, abs=0.3)


@pytest.mark.parametrize("name", ["logreg", "hgb"])
def test_calibrated_model_round_trips_through_skops(name):
    x, y = tiny_data()
    pipe = build_candidate(name, TrainConfig(hgb_max_iter=20)).fit(x, y)
    model = CalibratedModel(pipe, **fit_calibrator(pipe.decision_function(x), y, "isotonic"))
    proba = model.predict_proba(x)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(model.feature_names_in_) == ["count", "trend"]
    loaded = sio.loads(sio.dumps(model), trusted=SKOPS_TRUSTED_TYPES)
    np.testing.assert_allclose(loaded.predict_proba(x), proba)


def test_train_config_validates_and_flattens():
    params = TrainConfig(target="readiness").to_params()
    assert params["train.target"] == "readiness"
    assert params["train.candidates"] == "logreg,hgb"
    assert TrainConfig(target="disengagement").candidates == ("hgb", "logreg")
    assert TrainConfig(target="disengagement", candidates=["logreg"]).candidates == ("logreg",)
    assert flatten_params({"a": {"b": (1, 2)}}, "x") == {"x.a.b": "1,2"}
    with pytest.raises(ConfigError):
        TrainConfig(target="churn")
    with pytest.raises(ConfigError):
        TrainConfig(candidates=("svm",))
    with pytest.raises(ConfigError):
        TrainConfig(calibration="platt")
    with pytest.raises(ConfigError):
        TrainConfig(primary_metric="accuracy")


@pytest.mark.parametrize("name", ["logreg", "hgb"])
def test_every_candidate_probability_is_expit_of_its_decision(name):
    # Training scores out-of-time rows once (decision) and derives the probability from it.
    from scipy.special import expit

    rng = np.random.default_rng(3)
    x = pd.DataFrame({"a": rng.gamma(1.0, 2.0, 400), "b": rng.normal(size=400)})
    y = (x["a"] + rng.normal(size=400) > 2).astype(int).to_numpy()
    model = build_candidate(name, TrainConfig(hgb_max_iter=10, hgb_min_samples_leaf=20)).fit(x, y)
    np.testing.assert_array_equal(
        expit(model.decision_function(x)), model.predict_proba(x)[:, 1]
    )
