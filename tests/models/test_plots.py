"""The evaluation plots draw the curves the metrics describe."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_recall_curve, roc_curve

from models.plots import (
    calibration_bins,
    plot_calibration,
    plot_precision_recall,
    plot_roc,
    write_evaluation_plots,
)


@pytest.fixture
def scored():
    rng = np.random.default_rng(5)
    y = (rng.random(300) < 0.2).astype(int)
    score = np.clip(0.2 + 0.3 * (y - 0.2) + rng.normal(0, 0.15, 300), 0, 1)
    return y, score


def _lines(fig, label_start: str):
    return [line for line in fig.axes[0].get_lines()
            if str(line.get_label()).startswith(label_start)]


def test_roc_and_pr_curves_are_scikit_learns_and_skip_scorers_they_cannot_draw(scored):
    y, score = scored
    curves = {"model": (y, score), "one class": (np.zeros(300, int), score)}
    (roc,) = _lines(plot_roc(curves, "ROC"), "model")
    fpr, tpr, _ = roc_curve(y, score)
    np.testing.assert_array_equal(roc.get_xdata(), fpr)
    np.testing.assert_array_equal(roc.get_ydata(), tpr)
    assert "AUC" in roc.get_label() and not _lines(plot_roc(curves, "ROC"), "one class")
    (pr,) = _lines(plot_precision_recall(curves, "PR"), "model")
    precision, recall, _ = precision_recall_curve(y, score)
    np.testing.assert_array_equal(pr.get_xdata(), recall)
    np.testing.assert_array_equal(pr.get_ydata(), precision)
    assert pr.get_drawstyle() == "steps-post"


def test_the_reliability_diagram_shows_the_equal_mass_bins():
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.2, 0.3, 0.45, 0.7, 0.9])
    bins = calibration_bins(y, p, 2)
    np.testing.assert_allclose(bins["p"], [0.2, (0.45 + 0.7 + 0.9) / 3])
    np.testing.assert_allclose(bins["y"], [1 / 3, 2 / 3])
    (line,) = _lines(plot_calibration(y, p, "calibration", 2), "model")
    np.testing.assert_allclose(line.get_xdata(), bins["p"])
    np.testing.assert_allclose(line.get_ydata(), bins["y"])


def test_write_evaluation_plots_writes_every_png(tmp_path, scored):
    y, score = scored
    importance = pd.DataFrame(
        {"feature": ["a", "b"], "importance_mean": [0.1, 0.02], "importance_std": [0.01, 0.01]}
    )
    paths = write_evaluation_plots(
        tmp_path, target="disengagement", y=y, prob=score, others={"rule": 1 - score},
        importance=importance,
    )
    assert sorted(p.name for p in paths) == [
        "calibration.png", "feature_importance.png", "lift.png", "precision_recall.png",
        "roc.png",
    ]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)
