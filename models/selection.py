"""Choosing a candidate and its calibration from a rolling-origin backtest.

At each selection origin every candidate (models, then rules) is fitted on the snapshots whose
label windows end by the origin and scores the origin's members (:func:`select_candidate`);
the best mean primary metric wins, a later candidate only by a margin
(:func:`choose_candidate`). The winner's out-of-time scores, pooled over older origins too
(:func:`calibration_extra_folds`), choose and fit its calibration (:func:`calibrate`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy.special import expit

from models.baselines import BASELINES, fit_baseline_map, resolve_baselines, score_baseline
from models.config import TrainConfig
from models.estimators import apply_calibration, fit_calibrator
from models.evaluation import evaluate
from models.fitting import Prepared, check_positives, fit_sampled
from models.metrics import (
    METRIC_DIRECTIONS,
    capacity_k,
    log_loss,
    paired_bootstrap_difference,
)
from models.rules import is_rule

__all__ = [
    "choose_candidate",
    "calibration_extra_folds",
    "selection_folds",
    "comparison_confidence",
    "select_candidate",
    "calibrate",
    "baseline_backtest",
    "backtest_as_holdout",
]


def _member_folds(member_ids: pd.Series, n_folds: int) -> np.ndarray:
    """Deterministic fold per member (all snapshots of a member share a fold)."""
    hashed = pd.util.hash_array(member_ids.astype(str).to_numpy(dtype=object))
    return (hashed % np.uint64(n_folds)).astype(np.int64)


def _cross_fit_calibration(
    score: np.ndarray, y: np.ndarray, folds: np.ndarray, method: str
) -> np.ndarray:
    """Out-of-fold calibrated probabilities (each fold mapped by a calibrator fitted on the
    others)."""
    out = np.empty(len(score), dtype=np.float64)
    for fold in np.unique(folds):
        test = folds == fold
        train = ~test
        if y[train].sum() == 0 or y[train].sum() == train.sum():
            out[test] = np.clip(y[train].mean() if train.any() else 0.5, 1e-4, 1 - 1e-4)
            continue
        cal = fit_calibrator(score[train], y[train], method)
        out[test] = apply_calibration(
            score[test],
            cal["method"],
            cal["knots_x"],
            cal["knots_y"],
            cal["slope"],
            cal["intercept"],
        )
    return out


def _out_of_time(
    name: str,
    fold,
    config: TrainConfig,
    train_data: pd.DataFrame,
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    chapter: np.ndarray,
    max_rows: int | None = None,
    u: np.ndarray | None = None,
) -> pd.DataFrame:
    """Fit candidate ``name`` on a fold's training snapshots (at most ``max_rows`` of them, see
    :func:`models.fitting.sample_fit_rows`) and score every member of its origin."""
    fit_mask = train_data["as_of"].isin(fold.train_dates).to_numpy()
    val_mask = (train_data["as_of"] == fold.origin).to_numpy()
    model = fit_sampled(name, config, train_data, x_train, y_train, fit_mask, max_rows, u)
    x_val = x_train.loc[val_mask]
    # One pass over the origin's rows: both candidates' binary probability is expit(decision).
    decision = np.asarray(model.decision_function(x_val), dtype=np.float64)
    return pd.DataFrame(
        {
            "candidate": name,
            "origin": fold.origin,
            "member_id": train_data.loc[val_mask, "member_id"].to_numpy(),
            "label": y_train[val_mask],
            "chapter": chapter[val_mask],
            "decision": decision,
            "raw_prob": expit(decision),
            "n_train": int(fit_mask.sum()),
        }
    )


def _backtest_baselines(
    fold,
    config: TrainConfig,
    target: str,
    train_data: pd.DataFrame,
    y_train: np.ndarray,
    chapter: np.ndarray,
    baseline_columns: dict[str, str],
) -> list[dict]:
    """Metrics of every baseline at one backtest origin."""
    fit_mask = train_data["as_of"].isin(fold.train_dates).to_numpy()
    val_mask = (train_data["as_of"] == fold.origin).to_numpy()
    rows = []
    for baseline in BASELINES:
        column = baseline_columns[baseline.name]
        fit_score = score_baseline(train_data.loc[fit_mask], baseline, column, target)
        val_score = score_baseline(train_data.loc[val_mask], baseline, column, target)
        mapped = fit_baseline_map(fit_score, y_train[fit_mask]).predict(val_score)
        rows.append(
            {
                "scorer": f"baseline:{baseline.name}",
                "origin": fold.origin,
                "phase": "selection",
                "calibration": "isotonic",
                "n_train": int(fit_mask.sum()),
                **evaluate(
                    pd.Series([fold.origin] * int(val_mask.sum())),
                    y_train[val_mask],
                    val_score,
                    chapter[val_mask],
                    config,
                    probabilities=True,
                    prob=mapped,
                ),
            }
        )
    return rows


def _choose_calibration(
    part: pd.DataFrame, config: TrainConfig
) -> tuple[str, dict[str, np.ndarray], list[dict]]:
    """Pick the calibration of one candidate from its pooled out-of-time scores.

    ``"auto"`` compares isotonic, sigmoid and the model's own probabilities by member-grouped
    cross-validated log loss (every member's snapshots in one fold).

    Returns:
        The method, the cross-fitted probabilities of every method tried, and a table row per
        method.
    """
    y = part["label"].to_numpy(dtype=np.int64)
    probs: dict[str, np.ndarray] = {"none": part["raw_prob"].to_numpy()}
    rule = is_rule(part["candidate"].iloc[0]) if len(part) else False
    if config.calibration == "none":
        methods: tuple[str, ...] = ("none",)
    elif config.calibration == "auto":
        # A rule's own "probability" is a percentile, never a candidate calibration.
        methods = ("isotonic", "sigmoid") if rule else ("isotonic", "sigmoid", "none")
    else:
        methods = (config.calibration,)
    folds = _member_folds(part["member_id"], config.calibration_folds)
    for method in methods:
        if method != "none":
            probs[method] = _cross_fit_calibration(part["decision"].to_numpy(), y, folds, method)
    losses = {method: log_loss(y, probs[method]) for method in methods}
    chosen = min(methods, key=lambda m: losses[m])
    rows = [
        {
            "method": method,
            "cv_log_loss": losses[method],
            "origins": int(part["origin"].nunique()),
            "rows": len(part),
        }
        for method in methods
    ]
    return chosen, probs, rows


def _backtest_rows(
    part: pd.DataFrame, prob: np.ndarray, method: str, config: TrainConfig, phase: str
) -> list[dict]:
    """Per-origin metrics of one candidate: ranks from its scores, probabilities calibrated."""
    y = part["label"].to_numpy(dtype=np.int64)
    rows = []
    for origin, idx in part.groupby("origin").groups.items():
        idx = np.asarray(idx)
        rows.append(
            {
                "scorer": part["candidate"].iloc[0],
                "origin": origin,
                "phase": phase,
                "calibration": method,
                "n_train": int(part.loc[idx[0], "n_train"]),
                **evaluate(
                    part.loc[idx, "origin"],
                    y[idx],
                    part.loc[idx, "decision"].to_numpy(),
                    part.loc[idx, "chapter"].to_numpy(),
                    config,
                    probabilities=True,
                    prob=prob[idx],
                ),
            }
        )
    return rows


def choose_candidate(
    means: pd.Series | dict,
    config: TrainConfig,
    among: Sequence[str] | None = None,
    better=None,
) -> str:
    """The candidate with the best backtest mean of the primary metric, simplest first.

    Candidates are visited in ``among`` order (default ``config.all_candidates``: the models,
    then the rules); a later one replaces the current choice only when it is better by more
    than ``config.selection_margin`` and, when ``better`` is given, ``better(later, current)``
    holds (e.g. better in most paired resamples, not only on average). Candidates without a
    value (e.g. a metric undefined on every origin) are skipped; if none has one, the first is
    chosen.
    """
    direction = METRIC_DIRECTIONS[config.primary_metric]
    order = tuple(among) if among is not None else config.all_candidates
    chosen, best = order[0], -math.inf
    for name in order:
        value = means.get(name, np.nan)
        if pd.isna(value):
            continue
        score = direction * float(value)
        if best == -math.inf or (
            score > best + config.selection_margin and (better is None or better(name, chosen))
        ):
            chosen, best = name, score
    return chosen


def calibration_extra_folds(folds: Sequence, config: TrainConfig, train_rows: int) -> list:
    """The older backtest folds whose out-of-time scores join the calibration pool.

    ``folds`` are newest first; the newest ``config.backtest_origins`` already served the
    candidate selection. Of the older ones up to ``config.calibration_origins``, every
    ``config.calibration_stride``-th is kept (``None``: 1 when ``train_rows`` fits under the
    calibration row cap, else 3), counted so the oldest origin of the span is always included.
    """
    stride = config.calibration_stride
    if stride is None:
        cap = config.calibration_fit_rows or config.max_fit_rows
        stride = 1 if cap is None or train_rows <= cap else 3
    older = list(folds[config.backtest_origins : config.calibration_origins])
    return older[::-1][::stride][::-1]


def selection_folds(folds: Sequence, origin_positives: Sequence[int], config: TrainConfig) -> list:
    """The backtest folds that choose the candidate, newest first.

    The newest ``config.backtest_origins``; while their origins hold fewer than
    ``config.pooled_positives`` positive labels, older origins are pooled in too, up to
    ``config.calibration_origins`` (a community with few promotions needs more of them).
    """
    chosen, positives = [], 0
    for fold, count in zip(folds[: config.calibration_origins], origin_positives, strict=False):
        chosen.append(fold)
        positives += int(count)
        if len(chosen) >= config.backtest_origins and positives >= config.pooled_positives:
            break
    return chosen


def comparison_confidence(config: TrainConfig) -> float:
    """The share of resamples one challenger must win, for ``selection_confidence`` overall.

    Every candidate after the first is a challenger; with several, one of them would often beat
    the preferred candidate by chance alone. The bar of each comparison is raised so that the
    chance of any such win stays below ``1 - selection_confidence`` (Bonferroni): 0.9 with four
    challengers asks each for 0.975.
    """
    challengers = max(len(config.all_candidates) - 1, 1)
    return 1.0 - (1.0 - config.selection_confidence) / challengers


def select_candidate(
    prep: Prepared, config: TrainConfig, target: str, folds: list
) -> tuple[str, list, pd.DataFrame, pd.DataFrame]:
    """Rolling-origin backtest of every candidate (models and rules); the winner.

    Returns:
        ``(candidate, selection folds, out-of-time scores, backtest rows)``.
    """
    as_of = prep.train_data["as_of"]
    counts = [int(prep.y_train[(as_of == f.origin).to_numpy()].sum()) for f in folds]
    chosen_folds = selection_folds(folds, counts, config)
    oot = pd.concat(
        [
            _out_of_time(
                name, fold, config, prep.train_data, prep.x_train, prep.y_train,
                prep.train_chapter, config.max_fit_rows, prep.u,
            )
            for fold in chosen_folds
            for name in config.all_candidates
        ],
        ignore_index=True,
    )
    check_positives(
        target,
        "backtest origins",
        oot.loc[oot["candidate"] == config.all_candidates[0], "label"].to_numpy(),
        max(2, config.min_holdout_positives),
    )
    rows = []
    for name in config.all_candidates:
        part = oot[oot["candidate"] == name].reset_index(drop=True)
        method, probs, _ = _choose_calibration(part, config)
        rows += _backtest_rows(part, probs[method], method, config, "selection")
    backtest = pd.DataFrame(rows)
    means = backtest.groupby("scorer")[config.primary_metric].mean()
    chosen = choose_candidate(means, config, better=_clearly_better(oot, config))
    return chosen, chosen_folds, oot, backtest


def _clearly_better(oot: pd.DataFrame, config: TrainConfig):
    """``better(a, b)``: candidate ``a`` beats ``b`` on the same out-of-time rows in at least
    :func:`comparison_confidence` of the paired member resamples."""
    if config.selection_confidence == 0 or config.bootstrap_samples == 0:
        return None
    if METRIC_DIRECTIONS[config.primary_metric] < 0:
        return None  # the paired bootstrap compares rank metrics only
    needed = comparison_confidence(config)

    def better(a: str, b: str) -> bool:
        one = oot[oot["candidate"] == a]
        other = oot[oot["candidate"] == b]
        diff = paired_bootstrap_difference(
            one["label"].to_numpy(), one["decision"].to_numpy(), other["decision"].to_numpy(),
            one["member_id"].to_numpy(), metric=config.primary_metric,
            dates=one["origin"].to_numpy(), k=lambda n: capacity_k(n, config.capacity_share),
            n_boot=config.bootstrap_samples, seed=config.seed,
        )
        worse = diff["p_a_worse"]
        return bool(not np.isnan(worse) and 1.0 - worse >= needed)

    return better


def calibrate(
    prep: Prepared, config: TrainConfig, candidate: str, folds: list, chosen_folds: list,
    oot: pd.DataFrame, backtest: pd.DataFrame,
) -> tuple[str, pd.DataFrame, list[dict], pd.DataFrame]:
    """The winner's out-of-time scores over up to a year of origins, and the calibration map.

    Returns:
        ``(method, pooled scores, calibration table rows, backtest with calibration rows)``;
        the pooled scores gain ``prob``, their cross-fitted calibrated probabilities.
    """
    cap = config.calibration_fit_rows or config.max_fit_rows
    used = {f.origin for f in chosen_folds}
    extra = [
        _out_of_time(
            candidate, fold, config, prep.train_data, prep.x_train, prep.y_train,
            prep.train_chapter, cap, prep.u,
        )
        for fold in calibration_extra_folds(folds, config, len(prep.train_data))
        if fold.origin not in used
    ]
    pool = pd.concat([oot[oot["candidate"] == candidate], *extra], ignore_index=True)
    method, pool_probs, calibration_rows = _choose_calibration(pool, config)
    pool["prob"] = pool_probs[method]
    if extra:
        is_extra = ~pool["origin"].isin(used).to_numpy()
        rows = _backtest_rows(
            pool.loc[is_extra].reset_index(drop=True), pool_probs[method][is_extra], method,
            config, "calibration",
        )
        backtest = pd.concat([backtest, pd.DataFrame(rows)], ignore_index=True)
    return method, pool, calibration_rows, backtest


def baseline_backtest(prep: Prepared, config: TrainConfig, target: str, folds) -> pd.DataFrame:
    """Every baseline's metrics at the selection origins."""
    columns = resolve_baselines(prep.feature_columns)
    rows = [
        row
        for fold in folds
        for row in _backtest_baselines(
            fold, config, target, prep.train_data, prep.y_train, prep.train_chapter, columns
        )
    ]
    return pd.DataFrame(rows)


def backtest_as_holdout(
    prep: Prepared, pool: pd.DataFrame, chosen_folds: list
) -> tuple[Prepared, np.ndarray]:
    """Without a holdout, the selection origins' out-of-time rows are the evaluation rows.

    Each origin was scored by a model that never saw its labels, with probabilities
    calibrated across member folds; the final model, trained on every snapshot, is judged by
    how its procedure did there.
    """
    as_of = prep.train_data["as_of"]
    parts = [prep.train_data[(as_of == f.origin).to_numpy()] for f in chosen_folds]
    rows = pd.concat(parts, ignore_index=True)
    scored = pool[pool["origin"].isin([f.origin for f in chosen_folds])]
    if not np.array_equal(scored["member_id"].to_numpy(), rows["member_id"].to_numpy()):
        raise RuntimeError("out-of-time rows do not line up with the training rows")
    y = rows["label"].to_numpy(dtype=np.int64)
    return replace(prep, holdout_data=rows, y_hold=y), scored["prob"].to_numpy()
