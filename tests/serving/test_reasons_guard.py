"""The exact tree what-if uses scikit-learn internals only on releases known to have them;
elsewhere reasons take the generic what-if and say the same."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from packaging.version import Version

import features.versions as versions
import serving.reasons as reasons
from serving.reasons import ReasonConfig, explain_scores


def _fitted_trees():
    from models.factories import build_hgb_pipeline

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.poisson(2.0, size=(400, 4)).astype(float),
                     columns=["n_attend_90d", "net_ties", "tenure_days", "has_ties"])
    x["trend_count_diff"] = rng.normal(size=400)
    y = ((x["n_attend_90d"] + x["trend_count_diff"] + rng.normal(size=400)) > 2.5).astype(int)
    return build_hgb_pipeline(max_iter=20, min_samples_leaf=20).fit(x, y), x


def _pretend_sklearn(monkeypatch, text: str) -> None:
    real = versions.installed_version
    monkeypatch.setattr(
        versions, "installed_version",
        lambda name: Version(text) if name == "scikit-learn" else real(name),
    )


def test_the_installed_scikit_learn_is_within_the_known_good_range():
    # The range names the releases the exact path was checked on; CI runs the lowest and the
    # newest. A release outside it still works, through the generic path.
    assert versions.known_good("scikit-learn", reasons.HGB_INTERNALS_KNOWN_GOOD)


@pytest.mark.parametrize("text", ["1.5.2", "1.99.0", "2.0.0"])
def test_outside_the_range_the_trees_are_not_used_and_the_reasons_are_the_same(
    monkeypatch, text
):
    model, x = _fitted_trees()
    config = ReasonConfig(min_contribution=0.01, sample_size=200)
    assert reasons.tree_ensemble(model) is not None
    exact = explain_scores(model, x, x, config)
    _pretend_sklearn(monkeypatch, text)
    assert reasons.tree_ensemble(model) is None
    generic = explain_scores(model, x, x, config)
    pd.testing.assert_frame_equal(generic, exact)
    given = ~generic["reason_1_contribution"].isna()
    assert given.sum() > 50


def test_a_missing_internal_means_the_generic_path(monkeypatch):
    model, x = _fitted_trees()
    monkeypatch.setattr(reasons, "_HGB_INTERNALS", (*reasons._HGB_INTERNALS, "_gone_in_a_release"))
    assert reasons.tree_ensemble(model) is None
    values = x.to_numpy(dtype=float)
    reference = x.median().to_numpy()
    tries = [(j, np.flatnonzero(values[:, j] != reference[j])) for j in range(x.shape[1])]
    for (j, rows), got in zip(
        tries, reasons._what_if(model, values, list(x.columns), reference, tries), strict=True
    ):
        alt = x.iloc[rows].copy()
        alt.iloc[:, j] = reference[j]
        np.testing.assert_array_equal(got, model.predict_proba(alt)[:, 1])
