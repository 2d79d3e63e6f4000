"""Fitting one candidate: the training rows every fit reads, row sampling and the final model.

A fit above ``TrainConfig.max_fit_rows`` keeps every positive and a seeded share of each
snapshot's negatives, weighted back to the population (:func:`sample_fit_rows`); gradient
boosting is corrected by its intercept instead (:func:`shift_intercept`). The winner of the
selection is refitted on every training snapshot and wrapped with its calibration map
(:func:`final_model`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.errors import InsufficientDataError
from models.config import TrainConfig
from models.estimators import CalibratedModel, fit_calibrator
from models.factories import build_candidate
from models.rules import RuleScorer, is_rule, rule_named
from models.split import TemporalSplit

__all__ = [
    "Prepared",
    "check_positives",
    "fit",
    "shift_intercept",
    "row_uniforms",
    "sample_fit_rows",
    "fit_sampled",
    "final_model",
]


@dataclass(frozen=True, eq=False)
class Prepared:
    """The split of a training frame and the arrays every phase of training reads (made by
    the first phase of :func:`models.train.train_target`)."""

    split: TemporalSplit
    feature_columns: list[str]
    train_data: pd.DataFrame
    holdout_data: pd.DataFrame
    x_train: pd.DataFrame
    y_train: np.ndarray
    y_hold: np.ndarray
    train_chapter: np.ndarray
    u: np.ndarray | None


def check_positives(target: str, what: str, y: np.ndarray, needed: int) -> None:
    """Refuse ``y`` (labels of ``what``) when it holds fewer than ``needed`` positives.

    Raises:
        InsufficientDataError: Saying how many there are and what gives more.
    """
    positives = int(np.sum(y))
    if positives < needed:
        window = "--readiness-horizon" if target == "readiness" else "--horizon"
        raise InsufficientDataError(
            f"{target}: the {what} contain {positives} positive label(s) among {len(y)} "
            f"member-snapshots; a learned model needs at least {needed}. A longer history, "
            f"more snapshots (--snapshots) or a longer label window ({window}) gives more."
        )


def fit(name: str, config: TrainConfig, x: pd.DataFrame, y: np.ndarray, weight=None):
    """Fit candidate ``name``; ``weight`` are the negatives' inverse sampling rates (or None).

    The logistic regression takes the weights as sample weights. Gradient boosting with sample
    weights is about ten times slower (weighted binning, non-constant hessians), so it is fitted
    unweighted on the sample and its intercept is corrected for the negatives' sampling rate
    instead (the prior correction of case-control sampling: ``logit p = logit p_sample +
    log(kept negatives / represented negatives)``), which puts its probabilities back on the
    population's scale.
    """
    if is_rule(name):
        rule = rule_named(config.target, name)
        return RuleScorer(rule.column, rule.direction).fit(x, y)
    model = build_candidate(name, config)
    if weight is None:
        return model.fit(x, y)
    if name != "hgb":
        return model.fit(x, y, model__sample_weight=weight)
    model.fit(x, y)
    negatives = np.asarray(y) == 0
    shift = math.log(negatives.sum() / float(np.asarray(weight)[negatives].sum()))
    shift_intercept(model.named_steps["model"], shift)
    return model


def shift_intercept(estimator, shift: float) -> None:
    """Add ``shift`` to the raw (log-odds) baseline of a fitted HistGradientBoostingClassifier.

    Raises:
        TypeError: If the estimator has no such baseline (another model or library version).
    """
    baseline = getattr(estimator, "_baseline_prediction", None)
    if baseline is None:
        raise TypeError(
            f"{type(estimator).__name__}: no raw baseline to correct for negative subsampling"
        )
    estimator._baseline_prediction = baseline + np.asarray(shift, dtype=baseline.dtype)


def row_uniforms(data: pd.DataFrame, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per (member_id, as_of) row, fixed by ``seed``."""
    keys = data["member_id"].astype(str) + "|" + data["as_of"].astype("int64").astype(str)
    hashed = pd.util.hash_array(keys.to_numpy(dtype=object), hash_key=f"{seed:016d}"[-16:])
    return (hashed >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def sample_fit_rows(
    as_of: np.ndarray, y: np.ndarray, u: np.ndarray, mask: np.ndarray, max_rows: int | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows of ``mask`` one fit uses, and their weights (``TrainConfig.max_fit_rows``).

    Within the cap every row of ``mask`` is used, unweighted (weights ``None``). Above it all
    positives are kept and, in every snapshot, the same share of its negatives: those with the
    smallest ``u`` (a seeded per-row uniform), ``round(rate * negatives)`` of them with
    ``rate = (max_rows - positives) / negatives`` (at least 1 %). A kept negative weighs its
    snapshot's negatives / kept negatives, so the weighted class balance is the population's.

    Args:
        as_of: Snapshot date per row (any sortable values).
        y: 0/1 label per row.
        u: Uniform per row (:func:`row_uniforms`).
        mask: The rows eligible for this fit.
        max_rows: The cap (``None`` = no cap).

    Returns:
        ``(index, weight)``: ascending row positions and their weights (``None`` = all 1).
    """
    rows = np.flatnonzero(mask)
    if max_rows is None or len(rows) <= max_rows:
        return rows, None
    pos = rows[y[rows] == 1]
    neg = rows[y[rows] == 0]
    rate = min(1.0, max(0.01, (max_rows - len(pos)) / max(len(neg), 1)))
    codes, _ = pd.factorize(as_of[neg], sort=True)
    order = np.lexsort((u[neg], codes))
    sorted_codes = codes[order]
    counts = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(order)) - starts[sorted_codes]
    quota = np.maximum(np.rint(rate * counts), 1).astype(np.int64)
    kept = neg[order[rank < quota[sorted_codes]]]
    kept_codes = sorted_codes[rank < quota[sorted_codes]]
    index = np.concatenate([pos, kept])
    weight = np.concatenate([np.ones(len(pos)), (counts / quota)[kept_codes]])
    order = np.argsort(index, kind="stable")
    return index[order], weight[order]


def fit_sampled(
    name: str,
    config: TrainConfig,
    train_data: pd.DataFrame,
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    mask: np.ndarray,
    max_rows: int | None,
    u: np.ndarray | None,
):
    """Fit ``name`` on the rows of ``mask``, subsampled to ``max_rows`` (see above)."""
    if max_rows is None or u is None or int(mask.sum()) <= max_rows:
        return fit(name, config, x_train.loc[mask], y_train[mask])
    index, weight = sample_fit_rows(
        train_data["as_of"].to_numpy(), y_train, u, mask, max_rows
    )
    return fit(name, config, x_train.iloc[index], y_train[index], weight)


def final_model(
    prep: Prepared, config: TrainConfig, candidate: str, method: str, pool: pd.DataFrame
) -> CalibratedModel:
    """The winner refitted on every training snapshot, wrapped with its calibration map."""
    final = fit_sampled(
        candidate, config, prep.train_data, prep.x_train, prep.y_train,
        np.ones(len(prep.y_train), dtype=bool), config.max_fit_rows, prep.u,
    )
    if method == "none":
        return CalibratedModel(final, method="none")
    return CalibratedModel(
        final, **fit_calibrator(pool["decision"].to_numpy(), pool["label"], method)
    )
