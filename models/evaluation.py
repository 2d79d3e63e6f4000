"""Evaluation of scores: metrics per snapshot date, the holdout comparison of the model, the
baselines and the oracle, bootstrap intervals and permutation importance.

:func:`evaluate_on_holdout` and :func:`evaluate_rows` judge a registered champion on a new
result's evaluation rows (the promotion gate, :mod:`models.gate`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from threadpoolctl import threadpool_limits

from features.errors import ConfigError, InsufficientDataError
from features.frames import align_features
from features.labels import LabelConfig
from features.tables import Tables
from models.baselines import BASELINES, fit_baseline_map, resolve_baselines, score_baseline
from models.config import TrainConfig
from models.estimators import CalibratedModel
from models.fitting import Prepared
from models.metrics import PROBABILITY_METRICS, bootstrap_intervals, capacity_k, evaluate_scores

if TYPE_CHECKING:
    from models.train import Oracle, TrainResult

__all__ = [
    "member_chapters",
    "evaluate",
    "compare_on_holdout",
    "holdout_intervals",
    "interval_metrics",
    "oracle_scores",
    "holdout_importance",
    "evaluate_on_holdout",
    "evaluate_rows",
]


_SCORERS = {
    "roc_auc": "roc_auc",
    "pr_auc": "average_precision",
    "brier": "neg_brier_score",
    "log_loss": "neg_log_loss",
}


def member_chapters(tables: Tables, member_ids: pd.Series) -> np.ndarray:
    chapters = tables.members.set_index("member_id")["chapter_id"]
    mapped = member_ids.map(chapters)
    return mapped.astype(object).where(mapped.notna(), "<none>").to_numpy()


def evaluate(
    as_of: pd.Series,
    y: np.ndarray,
    score: np.ndarray,
    chapter: np.ndarray,
    config: TrainConfig,
    *,
    probabilities: bool,
    prob: np.ndarray | None = None,
) -> dict[str, float]:
    """Metrics per snapshot date, averaged over dates (one date: the plain metrics).

    Rank metrics use ``score``; probability metrics use ``prob`` (default ``score``).
    """
    prob = score if prob is None else prob
    per_date = []
    for _, idx in pd.Series(np.arange(len(y))).groupby(as_of.to_numpy()).groups.items():
        idx = np.asarray(idx)
        ranks = evaluate_scores(
            y[idx],
            score[idx],
            chapter[idx],
            capacity_share=config.capacity_share,
            chapter_top=config.chapter_top,
            ece_bins=config.ece_bins,
            ece_strategy=config.ece_strategy,
            probabilities=False,
        )
        if probabilities:
            probs = evaluate_scores(
                y[idx],
                prob[idx],
                chapter[idx],
                capacity_share=config.capacity_share,
                chapter_top=config.chapter_top,
                ece_bins=config.ece_bins,
                ece_strategy=config.ece_strategy,
                probabilities=True,
            )
            ranks.update({m: probs[m] for m in PROBABILITY_METRICS})
        per_date.append(ranks)
    if len(per_date) == 1:
        return per_date[0]
    frame = pd.DataFrame(per_date)
    out = frame.mean(numeric_only=True).to_dict()
    out["n"] = float(frame["n"].sum())
    out["positives"] = float(frame["positives"].sum())
    return {k: float(v) for k, v in out.items()}


def compare_on_holdout(
    prep: Prepared, config: TrainConfig, target: str, prob: np.ndarray, hold_chapter,
    oracle: np.ndarray | None,
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """Holdout metrics of the model, every baseline and the oracle; their holdout scores."""
    as_of, y_hold = prep.holdout_data["as_of"], prep.y_hold
    rows = {"model": evaluate(as_of, y_hold, prob, hold_chapter, config, probabilities=True)}
    other: dict[str, np.ndarray] = {}
    columns = resolve_baselines(prep.feature_columns)
    for baseline in BASELINES:
        column = columns[baseline.name]
        train_score = score_baseline(prep.train_data, baseline, column, target)
        hold_score = score_baseline(prep.holdout_data, baseline, column, target)
        mapped = fit_baseline_map(train_score, prep.y_train).predict(hold_score)
        other[baseline.name] = hold_score
        rows[f"baseline:{baseline.name}"] = evaluate(
            as_of, y_hold, hold_score, hold_chapter, config, probabilities=True, prob=mapped
        )
    if oracle is not None:
        other["oracle"] = oracle
        rows["oracle"] = evaluate(as_of, y_hold, oracle, hold_chapter, config, probabilities=True)
    return rows, other


def holdout_intervals(
    holdout: pd.DataFrame, y: np.ndarray, prob: np.ndarray, config: TrainConfig
) -> dict[str, tuple[float, float]]:
    """Bootstrap intervals (over members) of the holdout's ROC-AUC, PR-AUC and precision@k,
    each averaged over the holdout's snapshot dates as the point figures are."""
    if config.bootstrap_samples == 0 or len(y) == 0:
        return {}
    share = config.capacity_share
    return bootstrap_intervals(
        y, prob, holdout["member_id"].to_numpy(),
        metrics=("roc_auc", "pr_auc", "precision_at_k"),
        k=lambda n: capacity_k(n, share),
        dates=holdout["as_of"].to_numpy(),
        n_boot=config.bootstrap_samples,
        level=config.interval_level,
        seed=config.seed,
    )


def interval_metrics(intervals: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """``holdout.<metric>_ci_low`` / ``_ci_high`` for MLflow and the reports."""
    out: dict[str, float] = {}
    for name, (low, high) in intervals.items():
        out[f"holdout.{name}_ci_low"] = float(low)
        out[f"holdout.{name}_ci_high"] = float(high)
    return out


def oracle_scores(
    tables: Tables,
    target: str,
    labels: LabelConfig,
    holdout_data: pd.DataFrame,
    oracle: Oracle | None,
) -> np.ndarray | None:
    """The oracle's probabilities for the holdout rows, or ``None`` without one."""
    if oracle is None:
        return None
    values = oracle(tables, target, labels, holdout_data[["member_id", "as_of"]])
    if values is None:
        return None
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(holdout_data),):
        raise ConfigError(
            f"{target}: the oracle gave {values.shape} values for {len(holdout_data)} holdout rows"
        )
    missing = int(np.isnan(values).sum())
    if missing:
        raise InsufficientDataError(
            f"{target}: the oracle lacks {missing} of {len(values)} holdout members; "
            "its true odds do not match this data source"
        )
    return values


def holdout_importance(
    model: CalibratedModel, x: pd.DataFrame, y: np.ndarray, config: TrainConfig
) -> pd.DataFrame:
    """Permutation importance on (a sample of) the holdout with the primary metric's scorer."""
    rng = np.random.default_rng(config.seed)
    if len(x) > config.importance_max_rows:
        positives = np.flatnonzero(y == 1)
        negatives = np.flatnonzero(y == 0)
        share = config.importance_max_rows / len(x)
        keep = np.concatenate(
            [
                rng.choice(positives, max(1, int(len(positives) * share)), replace=False),
                rng.choice(negatives, max(1, int(len(negatives) * share)), replace=False),
            ]
        )
        x, y = x.iloc[np.sort(keep)], y[np.sort(keep)]
    scoring = _SCORERS.get(config.primary_metric, "average_precision")
    # Hundreds of small repeated predictions: one native thread, because starting and syncing
    # a thread team for every tree of every call costs more than the prediction itself.
    with threadpool_limits(limits=1):
        result = _permutation(model, x, y, scoring, config)
    return (
        pd.DataFrame(
            {
                "feature": list(x.columns),
                "importance_mean": result.importances_mean,
                "importance_std": result.importances_std,
            }
        )
        .sort_values("importance_mean", ascending=False)
        .reset_index(drop=True)
    )


def _permutation(model, x: pd.DataFrame, y: np.ndarray, scoring: str, config: TrainConfig):
    return permutation_importance(
        model,
        x,
        y,
        scoring=scoring,
        n_repeats=config.importance_repeats,
        random_state=config.seed,
        n_jobs=1,
    )


def evaluate_on_holdout(
    model, feature_columns: Sequence[str], result: TrainResult
) -> dict[str, float]:
    """Score ``model`` on ``result``'s holdout and return the holdout metrics.

    Used by the promotion gate to compare a registered champion with a new challenger on the
    same rows. The holdout features are aligned to ``feature_columns`` (the champion may have
    been trained with a different feature set; see :func:`features.frames.align_features`).
    """
    x = align_features(result.holdout_data, list(feature_columns))
    prob = np.asarray(model.predict_proba(x))[:, 1]
    return evaluate(
        result.holdout_data["as_of"],
        result.holdout_data["label"].to_numpy(dtype=np.int64),
        prob,
        result.holdout_data["chapter_id"].to_numpy(),
        result.config,
        probabilities=True,
    )


def evaluate_rows(rows: pd.DataFrame, config: TrainConfig) -> dict[str, float]:
    """The metrics of evaluation rows by their stored ``score`` (``as_of``, ``label``,
    ``chapter_id``, ``score``), averaged over dates as the holdout's are."""
    return evaluate(
        rows["as_of"], rows["label"].to_numpy(dtype=np.int64),
        rows["score"].to_numpy(dtype=np.float64), rows["chapter_id"].to_numpy(), config,
        probabilities=True,
    )
