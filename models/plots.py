"""Evaluation plots (ROC, precision-recall, calibration, lift, feature importance) as PNG files.

Uses matplotlib's object-oriented API only (no pyplot, no global state), so it is safe in
worker threads and never opens a window.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

__all__ = [
    "plot_roc",
    "plot_precision_recall",
    "plot_calibration",
    "plot_lift",
    "plot_importance",
    "write_evaluation_plots",
]

Curves = Mapping[str, tuple[np.ndarray, np.ndarray]]


def _both_classes(y: np.ndarray) -> bool:
    return 0 < np.sum(y) < len(y)


def plot_roc(curves: Curves, title: str) -> Figure:
    """ROC curves of several scorers on the same rows: ``{name: (y, score)}``."""
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    for name, (y, score) in curves.items():
        if not _both_classes(np.asarray(y)):
            continue
        fpr, tpr, _ = roc_curve(y, score)
        ax.plot(fpr, tpr, label=name, lw=1.5)
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title=title)
    ax.legend(loc="lower right", fontsize="small")
    return fig


def plot_precision_recall(curves: Curves, title: str) -> Figure:
    """Precision-recall curves of several scorers: ``{name: (y, score)}``."""
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    base = None
    for name, (y, score) in curves.items():
        y = np.asarray(y)
        if y.sum() == 0:
            continue
        precision, recall, _ = precision_recall_curve(y, score)
        ax.step(recall, precision, where="post", label=name, lw=1.5)
        base = y.mean()
    if base is not None:
        ax.axhline(base, ls=":", color="grey", lw=1, label=f"base rate {base:.3f}")
    ax.set(xlabel="Recall", ylabel="Precision", title=title, ylim=(0, 1.02))
    ax.legend(loc="upper right", fontsize="small")
    return fig


def plot_calibration(y: np.ndarray, prob: np.ndarray, title: str, n_bins: int = 10) -> Figure:
    """Reliability diagram with equal-mass bins: mean predicted vs observed rate per bin."""
    y = np.asarray(y, dtype=float)
    prob = np.asarray(prob, dtype=float)
    order = np.argsort(prob, kind="stable")
    bins = np.empty(len(prob), dtype=int)
    bins[order] = (np.arange(len(prob)) * n_bins) // max(len(prob), 1)
    frame = pd.DataFrame({"bin": bins, "p": prob, "y": y}).groupby("bin").mean()
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    top = max(float(frame[["p", "y"]].to_numpy().max()), 1e-3) * 1.05 if len(frame) else 1.0
    ax.plot([0, top], [0, top], ls=":", color="grey", lw=1, label="perfect")
    ax.plot(frame["p"], frame["y"], marker="o", label="model")
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
