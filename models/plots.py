"""Evaluation plots (ROC, precision-recall, calibration, lift, feature importance) as PNG files.

Uses matplotlib's object-oriented API only (no pyplot, no global state), so it is safe in
worker threads and never opens a window. The ROC and precision-recall curves are
scikit-learn's displays (``RocCurveDisplay``, ``PrecisionRecallDisplay``); the reliability
diagram is drawn by ``CalibrationDisplay`` from corecast's equal-mass bins (the bins of the
expected calibration error in :mod:`models.metrics`, which ``calibration_curve`` does not
make). Cumulative gains and permutation importance have no display there and are drawn here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.calibration import CalibrationDisplay
from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

__all__ = [
    "plot_roc",
    "plot_precision_recall",
    "plot_calibration",
    "calibration_bins",
    "plot_lift",
    "plot_importance",
    "write_evaluation_plots",
]

Curves = Mapping[str, tuple[np.ndarray, np.ndarray]]


def _both_classes(y: np.ndarray) -> bool:
    return 0 < np.sum(y) < len(y)


def plot_roc(curves: Curves, title: str) -> Figure:
    """ROC curves of several scorers on the same rows: ``{name: (y, score)}``; a scorer whose
    rows hold a single class is left out (no curve exists)."""
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    for name, (y, score) in curves.items():
        if not _both_classes(np.asarray(y)):
            continue
        RocCurveDisplay.from_predictions(y, score, name=name, ax=ax)
        ax.get_lines()[-1].set_linewidth(1.5)
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title=title)
    ax.legend(loc="lower right", fontsize="small")
    return fig


def plot_precision_recall(curves: Curves, title: str) -> Figure:
    """Precision-recall curves of several scorers: ``{name: (y, score)}``; a scorer without
    positives is left out."""
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    base = None
    for name, (y, score) in curves.items():
        y = np.asarray(y)
        if y.sum() == 0:
            continue
        PrecisionRecallDisplay.from_predictions(y, score, name=name, ax=ax)
        ax.get_lines()[-1].set_linewidth(1.5)
        base = y.mean()
    if base is not None:
        ax.axhline(base, ls=":", color="grey", lw=1, label=f"base rate {base:.3f}")
    ax.set(xlabel="Recall", ylabel="Precision", title=title, ylim=(0, 1.02))
    ax.legend(loc="upper right", fontsize="small")
    return fig


def calibration_bins(y: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Equal-mass bins of a reliability diagram: mean probability ``p`` and observed rate
    ``y`` per bin (rows sorted by probability, bin ``b`` holds rows ``floor(i * n_bins / n)
    == b``, as :func:`models.metrics.expected_calibration_error` bins them)."""
    y = np.asarray(y, dtype=float)
    prob = np.asarray(prob, dtype=float)
    order = np.argsort(prob, kind="stable")
    bins = np.empty(len(prob), dtype=int)
    bins[order] = (np.arange(len(prob)) * n_bins) // max(len(prob), 1)
    return pd.DataFrame({"bin": bins, "p": prob, "y": y}).groupby("bin").mean()


def plot_calibration(y: np.ndarray, prob: np.ndarray, title: str, n_bins: int = 10) -> Figure:
    """Reliability diagram with equal-mass bins: mean predicted vs observed rate per bin,
    zoomed to the range the probabilities cover (a rare target's all sit near 0)."""
    frame = calibration_bins(y, prob, n_bins)
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    top = max(float(frame[["p", "y"]].to_numpy().max()), 1e-3) * 1.05 if len(frame) else 1.0
    display = CalibrationDisplay(
        frame["y"].to_numpy(), frame["p"].to_numpy(), np.asarray(prob, dtype=float)
    )
    display.plot(ax=ax, name="model")
    ax.set(
        xlabel="Mean predicted probability",
        ylabel="Observed rate",
        title=title,
        xlim=(0, top),
        ylim=(0, top),
    )
    ax.legend(loc="upper left", fontsize="small")
    return fig


def plot_lift(curves: Curves, title: str) -> Figure:
    """Cumulative gains: share of all positives found in the top x % of each scorer."""
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    for name, (y, score) in curves.items():
        y = np.asarray(y, dtype=float)
        if y.sum() == 0:
            continue
        order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
        gains = np.concatenate([[0.0], np.cumsum(y[order]) / y.sum()])
        share = np.linspace(0, 1, len(gains))
        ax.plot(share, gains, label=name, lw=1.5)
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1, label="random")
    ax.set(xlabel="Share of members contacted", ylabel="Share of positives found", title=title)
    ax.legend(loc="lower right", fontsize="small")
    return fig


def plot_importance(importance: pd.DataFrame, title: str, top: int = 20) -> Figure:
    """Horizontal bars of permutation importance (``feature``, ``importance_mean``,
    ``importance_std``)."""
    head = importance.sort_values("importance_mean", ascending=False).head(top).iloc[::-1]
    fig = Figure(figsize=(7, max(3, 0.3 * len(head) + 1)))
    ax = fig.add_subplot()
    ax.barh(head["feature"], head["importance_mean"], xerr=head["importance_std"], color="C0")
    ax.set(xlabel="Drop in score when shuffled", title=title)
    fig.tight_layout()
    return fig


def write_evaluation_plots(
    folder: Path,
    *,
    target: str,
    y: np.ndarray,
    prob: np.ndarray,
    others: Mapping[str, np.ndarray],
    importance: pd.DataFrame,
    n_bins: int = 10,
) -> list[Path]:
    """Write the ROC, PR, calibration, lift and importance PNGs of one evaluation.

    Args:
        folder: Existing folder to write into.
        target: Target name (used in titles).
        y: Holdout outcomes.
        prob: Model probabilities on the holdout.
        others: Scores of comparison scorers (baselines, oracle) on the same rows.
        importance: Permutation importance table.
        n_bins: Bins of the reliability diagram.

    Returns:
        The written paths.
    """
    curves = {"model": (y, prob), **{name: (y, s) for name, s in others.items()}}
    figures = {
        "roc.png": plot_roc(curves, f"{target}: ROC on holdout"),
        "precision_recall.png": plot_precision_recall(curves, f"{target}: precision-recall"),
        "calibration.png": plot_calibration(y, prob, f"{target}: calibration", n_bins),
        "lift.png": plot_lift(curves, f"{target}: cumulative gains"),
        "feature_importance.png": plot_importance(importance, f"{target}: permutation importance"),
    }
    paths = []
    for name, fig in figures.items():
        path = Path(folder) / name
        fig.savefig(path, dpi=90)
        paths.append(path)
    return paths
