"""Training of one target: time split, rolling-origin backtest, calibration, holdout evaluation.

The procedure (no MLflow here, see :mod:`models.registry` for logging):

1. Build the snapshot training frame (one row per eligible member and snapshot date).
2. Split in time (:mod:`models.split`): the newest fully observed snapshot(s) are the holdout;
   training uses only snapshots whose label windows end by the holdout date.
3. Rolling-origin backtest: at each of the newest ``backtest_origins`` origins, every
   candidate is fitted on the snapshots whose label windows end by the origin and scores the
   origin's members. The candidate with the best mean primary metric wins; one listed later
   (more complex) must beat the earlier choice by ``selection_margin``.
4. Calibration: the winner's out-of-time scores are pooled over up to ``calibration_origins``
   origins (a seasonal cycle of monthly origins; on large data every third older origin, see
   :func:`calibration_extra_folds`); isotonic, sigmoid and the model's own
   probabilities are compared by member-grouped cross-validated log loss
   (``calibration="auto"``) and the best map is fitted on the whole pool. The winner is then
   refitted on all training snapshots and wrapped with that map (the time-respecting analogue of
   ``CalibratedClassifierCV`` with ``ensemble=False``).
5. Holdout evaluation of the model, the baselines and - on simulated data - the oracle (the
   simulator's true probabilities), plus permutation feature importance.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.inspection import permutation_importance
from threadpoolctl import threadpool_limits

from features.contract import TABLE_NAMES
from features.errors import ConfigError, InsufficientDataError, TargetUnavailable
from features.feature_config import FeatureConfig
from features.frames import (
    FrameConfig,
    TrainingFrame,
    align_features,
    build_training_frame,
    build_training_frames,
)
from features.labels import LabelConfig, label_horizon_days
from features.tables import Tables
from models.baselines import BASELINES, fit_baseline_map, resolve_baselines, score_baseline
from models.card import holdout_table, render_model_card
from models.config import TrainConfig
from models.estimators import CalibratedModel, apply_calibration, fit_calibrator
from models.factories import build_candidate
from models.metrics import (
    METRIC_DIRECTIONS,
    PROBABILITY_METRICS,
    RANK_METRICS,
    bootstrap_intervals,
    capacity_k,
    evaluate_scores,
    log_loss,
    paired_bootstrap_difference,
)
from models.rules import RuleScorer, is_rule, method_of, rule_named
from models.split import (
    TemporalSplit,
    plan_backtest_split,
    plan_pooled_split,
    plan_temporal_split,
    pooled_positives,
    required_snapshots,
)

__all__ = [
    "TrainResult",
    "Oracle",
    "train_target",
    "build_target_frames",
    "horizon_days_for",
    "default_frame_config",
    "DEFAULT_SNAPSHOTS",
    "SMALL_FRAME_ROWS",
    "fingerprint_tables",
    "render_card",
    "evaluate_on_holdout",
    "sample_fit_rows",
    "calibration_extra_folds",
    "choose_candidate",
    "RATIO_METRICS",
    "selection_folds",
    "holdout_intervals",
    "interval_metrics",
    "evaluate_rows",
]

#: Metrics reported as model / oracle ratios.
RATIO_METRICS = (
    "roc_auc",
    "pr_auc",
    "precision_at_k",
    "recall_at_k",
    "lift_top_decile",
    "chapter_top_precision",
)

_SCORERS = {
    "roc_auc": "roc_auc",
    "pr_auc": "average_precision",
    "brier": "neg_brier_score",
    "log_loss": "neg_log_loss",
}



class Oracle(Protocol):
    """True probabilities for the holdout rows, when the data's true odds are known.

    Training never knows where the data came from: whoever loaded it (the command line or a
    flow, from a simulated community's folder) may hand an oracle to :func:`train_target`, and
    the holdout is then also scored with it (the ``oracle`` scorer and the ``oracle_ratio.*``
    metrics). :func:`simulator.oracle.oracle_for` builds the simulator's.
    """

    def __call__(
        self, tables: Tables, target: str, labels: LabelConfig, holdout: pd.DataFrame
    ) -> np.ndarray | None:
        """Score ``holdout`` (columns ``member_id`` and ``as_of``, one row per member and
        snapshot) for ``target`` under ``labels``: one probability per row, in row order, or
        ``None`` when no true odds are known for these tables."""


@dataclass(frozen=True, eq=False)
class TrainResult:
    """Everything a training run produced for one target.

    Attributes:
        target: ``"readiness"`` or ``"disengagement"``.
        config: The training configuration.
        label_config: Label settings.
        frame_config: Snapshot settings.
        feature_config: The *resolved* feature settings (fixed vocabularies) scoring must reuse.
        model: The fitted, calibrated model (``predict_proba`` on ``feature_columns``).
        candidate: The chosen model family.
        calibration_method: ``"isotonic"``, ``"sigmoid"`` or ``"none"``.
        feature_columns: Feature columns, in model order.
        split: Which snapshot dates were used for what.
        train_data: Training rows (``member_id``, ``as_of``, features, ``label``).
        holdout_data: Holdout rows (``member_id``, ``as_of``, ``chapter_id``, features,
            ``label``, ``score``).
        metrics: Flat ``{name: value}``: ``holdout.*``, ``backtest.*``, ``baseline.<name>.*``,
            ``oracle.*`` and ``oracle_ratio.*`` (model / oracle).
        comparison: Holdout metrics with one row per scorer (model, baselines, oracle).
        backtest: One row per candidate (and baseline) and origin with its metrics.
        calibration_table: Cross-validated log loss of each calibration method per candidate.
        importance: Permutation importance on the holdout (``feature``, ``importance_mean``,
            ``importance_std``).
        other_scores: Holdout scores of the baselines and the oracle, aligned with
            ``holdout_data``.
        data_fingerprint: Hash of the input tables.
        source: Name of the data source (no secrets).
        intervals: Bootstrap intervals (over members) of holdout metrics, ``{metric: (low,
            high)}`` at ``config.interval_level``.
        validated: Whether the scores were judged on labelled snapshots they were not fitted
            on (a rule, which has nothing fitted, may be judged on every labelled snapshot).
        notes: Plain sentences on what was done and why (e.g. why a rule stands in).
    """

    target: str
    config: TrainConfig
    label_config: LabelConfig
    frame_config: FrameConfig
    feature_config: object
    model: CalibratedModel
    candidate: str
    calibration_method: str
    feature_columns: tuple[str, ...]
    split: TemporalSplit
    train_data: pd.DataFrame
    holdout_data: pd.DataFrame
    metrics: dict[str, float]
    comparison: pd.DataFrame
    backtest: pd.DataFrame
    calibration_table: pd.DataFrame
    importance: pd.DataFrame
    other_scores: dict[str, np.ndarray] = field(default_factory=dict)
    data_fingerprint: str = ""
    source: str = "<memory>"
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    validated: bool = True
    notes: tuple[str, ...] = ()

    @property
    def method(self) -> str:
        """``model`` or ``rule:<name>``: what produces the scores."""
        return method_of(self.candidate)

    @property
    def primary_metric(self) -> str:
        """Name of the selection and promotion metric."""
        return self.config.primary_metric

    @property
    def holdout_value(self) -> float:
        """The model's primary metric on the holdout."""
        return self.metrics[f"holdout.{self.primary_metric}"]

    @property
    def snapshot_dates(self) -> tuple[pd.Timestamp, ...]:
        """Every snapshot date used (training and holdout), oldest first."""
        return tuple(sorted(set(self.split.train_dates) | set(self.split.holdout_dates)))

    @property
    def has_oracle(self) -> bool:
        """Whether oracle metrics were computed (simulated data)."""
        return "oracle" in self.other_scores


def horizon_days_for(target: str, labels: LabelConfig) -> int:
    """Label window of ``target`` under ``labels``."""
    return int(label_horizon_days(target, labels))


#: Snapshots stacked by default: two years of monthly snapshots (fewer when history is short).
DEFAULT_SNAPSHOTS = 24


#: A community whose members x possible snapshot dates stay below this stacks every monthly
#: snapshot its history allows: a small community's whole history is cheap, and with a handful
#: of promotions a year every one of them counts.
SMALL_FRAME_ROWS = 500_000


def default_frame_config(
    target: str,
    labels: LabelConfig,
    config: TrainConfig,
    base: FrameConfig | None = None,
    tables: Tables | None = None,
) -> FrameConfig:
    """Snapshot settings that give ``config`` all its backtest origins.

    Without ``base``: monthly snapshots, up to :data:`DEFAULT_SNAPSHOTS` of them (more history
    helped the rare readiness target; the history available caps the number), or every one the
    history allows when ``tables`` is a small community (:data:`SMALL_FRAME_ROWS`). With
    ``base``: its settings, with the snapshot count raised to what the label horizon, the
    holdout and ``config.backtest_origins`` need (see :func:`models.split.required_snapshots`).
    """
    wanted = DEFAULT_SNAPSHOTS if base is None else int(base.snapshots)
    explicit = base is not None
    base = base or FrameConfig()
    horizon = horizon_days_for(target, labels)
    needed = required_snapshots(
        horizon,
        base.every_days,
        holdout_snapshots=config.holdout_snapshots or config.max_holdout_snapshots,
        backtest_origins=config.backtest_origins,
        min_train_snapshots=config.min_train_snapshots,
    )
    if tables is not None and not explicit:
        span = (tables.last_observed - tables.first_observed) / pd.Timedelta(days=1)
        possible = int((span - base.warmup_days - horizon) // base.every_days) + 1
        if possible > wanted and len(tables.members) * possible <= SMALL_FRAME_ROWS:
            wanted = possible
    return replace(base, snapshots=max(wanted, needed))


def fingerprint_tables(tables: Tables) -> str:
    """A SHA-256 fingerprint of the table contents (column names and every value)."""
    digest = hashlib.sha256()
    for name in TABLE_NAMES:
        df = getattr(tables, name)
        if df is None and name not in ("roles", "chapters"):
            continue  # a table added to the contract later leaves older fingerprints unchanged
        digest.update(name.encode())
        if df is None:
            digest.update(b"<none>")
            continue
        digest.update("|".join(map(str, df.columns)).encode())
        digest.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _member_chapters(tables: Tables, member_ids: pd.Series) -> np.ndarray:
    chapters = tables.members.set_index("member_id")["chapter_id"]
    mapped = member_ids.map(chapters)
    return mapped.astype(object).where(mapped.notna(), "<none>").to_numpy()


def _evaluate(
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
    :func:`sample_fit_rows`) and score every member of its origin."""
    fit_mask = train_data["as_of"].isin(fold.train_dates).to_numpy()
    val_mask = (train_data["as_of"] == fold.origin).to_numpy()
    model = _fit_sampled(name, config, train_data, x_train, y_train, fit_mask, max_rows, u)
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
                **_evaluate(
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
                **_evaluate(
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


def _rows(data: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """The rows of ``mask`` numbered from 0, without copying the features when they are one
    contiguous run (a frame is sorted by ``as_of``, so the training snapshots are): at
    federation size a copy of the training rows alone is several gigabytes."""
    where = np.flatnonzero(mask)
    if where.size and where[-1] - where[0] + 1 == where.size:
        return data.iloc[where[0] : where[-1] + 1].reset_index(drop=True)
    return data.loc[mask].reset_index(drop=True)


def _check_positives(target: str, what: str, y: np.ndarray, needed: int) -> None:
    positives = int(np.sum(y))
    if positives < needed:
        window = "--readiness-horizon" if target == "readiness" else "--horizon"
        raise InsufficientDataError(
            f"{target}: the {what} contain {positives} positive label(s) among {len(y)} "
            f"member-snapshots; a learned model needs at least {needed}. A longer history, "
            f"more snapshots (--snapshots) or a longer label window ({window}) gives more."
        )


def _fit(name: str, config: TrainConfig, x: pd.DataFrame, y: np.ndarray, weight=None):
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


def _row_uniforms(data: pd.DataFrame, seed: int) -> np.ndarray:
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
        u: Uniform per row (:func:`_row_uniforms`).
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


def _fit_sampled(
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
        return _fit(name, config, x_train.loc[mask], y_train[mask])
    index, weight = sample_fit_rows(
        train_data["as_of"].to_numpy(), y_train, u, mask, max_rows
    )
    return _fit(name, config, x_train.iloc[index], y_train[index], weight)


def train_target(
    tables: Tables,
    target: str,
    labels: LabelConfig,
    frame: FrameConfig,
    features,
    config: TrainConfig,
    *,
    oracle: Oracle | None = None,
    training_frame: TrainingFrame | None = None,
) -> TrainResult:
    """Train, calibrate and evaluate the model of one target.

    Args:
        tables: The validated data source.
        target: ``"readiness"`` or ``"disengagement"``.
        labels: Label settings.
        frame: Snapshot settings (:func:`default_frame_config` sizes them for the backtest).
        features: Feature settings (``FeatureConfig``).
        config: Training settings; ``config.target`` must equal ``target``.
        oracle: The data's true probabilities (:class:`Oracle`), when known (on a simulated
            community); the holdout is then also scored with them.
        training_frame: The target's frame when already built (by
            :func:`build_target_frames`, which shares the features of both targets; it must
            have been built with ``labels``, ``frame`` and ``features``); ``None`` builds it.

    Returns:
        The fitted model with its evaluation.

    Raises:
        TargetUnavailable: If the data cannot express the target (e.g. no roles table).
        InsufficientDataError: If there are too few snapshots or positive labels (the message
            says how many are needed).
        ConfigError: If ``config.target`` disagrees with ``target``.
    """
    if config.target != target:
        raise ConfigError(f"TrainConfig.target is {config.target!r} but {target!r} was asked")
    if training_frame is not None and training_frame.target != target:
        raise ConfigError(
            f"the training frame given is the {training_frame.target!r} frame, not {target!r}'s"
        )
    with threadpool_limits(limits=config.threads):
        if training_frame is None:
            training_frame = build_training_frame(tables, target, labels, frame, features)
        config = config.for_members(training_frame.data["member_id"].nunique())
        return _train_target(tables, target, labels, frame, config, oracle, training_frame)


def build_target_frames(
    tables: Tables,
    frames: Mapping[str, FrameConfig],
    labels: LabelConfig,
    features: FeatureConfig,
) -> tuple[dict[str, TrainingFrame], dict[str, InsufficientDataError | TargetUnavailable]]:
    """The training frames of several targets, sharing their features where they can.

    Targets the data cannot express or has too little history for are left out with their
    error (found before any feature is built), and the others are built together
    (:func:`features.frames.build_training_frames`).

    Args:
        tables: The validated data source.
        frames: ``{target: FrameConfig}`` (e.g. from :func:`default_frame_config`).
        labels: Label settings.
        features: Feature settings.

    Returns:
        ``({target: TrainingFrame}, {target: error})``.
    """
    errors: dict[str, InsufficientDataError | TargetUnavailable] = {}
    built = build_training_frames(tables, frames, labels, features, errors=errors)
    return built, errors


@dataclass(frozen=True, eq=False)
class _Prepared:
    """The split of a training frame and the arrays every phase of training reads."""

    split: TemporalSplit
    feature_columns: list[str]
    train_data: pd.DataFrame
    holdout_data: pd.DataFrame
    x_train: pd.DataFrame
    y_train: np.ndarray
    y_hold: np.ndarray
    train_chapter: np.ndarray
    u: np.ndarray | None


def _holdout_split(
    data: pd.DataFrame, horizon: int, last_observed, config: TrainConfig, target: str,
    positives: dict[pd.Timestamp, frozenset],
) -> TemporalSplit:
    """The temporal split with a holdout: fixed size, or pooled until it holds enough positives
    (``positives``: :func:`positive_members` of ``data``)."""
    origins = max(config.backtest_origins, config.calibration_origins)
    if config.holdout_snapshots is not None:
        return plan_temporal_split(
            data["as_of"].unique(), horizon, last_observed=last_observed,
            holdout_snapshots=config.holdout_snapshots, backtest_origins=origins,
            min_train_snapshots=config.min_train_snapshots, target=target,
        )
    return plan_pooled_split(
        positives, horizon,
        last_observed=last_observed, target_positives=config.pooled_positives,
        max_holdout_snapshots=config.max_holdout_snapshots, backtest_origins=origins,
        min_train_snapshots=config.min_train_snapshots, target=target,
    )


def positive_members(data: pd.DataFrame) -> dict[pd.Timestamp, frozenset]:
    """The positive members of every snapshot date of a frame (empty sets included)."""
    positive = data.loc[data["label"].to_numpy() == 1]
    found = positive.groupby("as_of")["member_id"].agg(frozenset).to_dict()
    return {pd.Timestamp(d): found.get(d, frozenset()) for d in data["as_of"].unique()}


def _split_rows(data: pd.DataFrame, split: TemporalSplit) -> tuple:
    """Training rows, holdout rows and their labels."""
    train_data = _rows(data, data["as_of"].isin(split.train_dates).to_numpy())
    holdout_data = _rows(data, data["as_of"].isin(split.holdout_dates).to_numpy())
    return (
        train_data, holdout_data, train_data["label"].to_numpy(dtype=np.int64),
        holdout_data["label"].to_numpy(dtype=np.int64),
    )


def _plan_split(
    data: pd.DataFrame, horizon: int, last_observed, config: TrainConfig, target: str
) -> tuple[TemporalSplit, tuple]:
    """The split and its rows: with a holdout when possible (``validation``), else without.

    Raises:
        InsufficientDataError: If neither split has positives enough to learn and judge.
    """
    if config.validation != "backtest":
        try:
            positives = positive_members(data)
            split = _holdout_split(data, horizon, last_observed, config, target, positives)
            rows = _split_rows(data, split)
            _check_positives(target, "training snapshots", rows[2], config.min_train_positives)
            _check_positives(target, "holdout snapshot(s)", rows[3], config.min_holdout_positives)
            if config.validation == "auto" and config.holdout_snapshots is None:
                _check_pooled(positives, split, config, target)
            return _usable_folds(split, rows[0], rows[2], target), rows
        except InsufficientDataError:
            if config.validation == "holdout":
                raise
    split = plan_backtest_split(
        data["as_of"].unique(), horizon, last_observed=last_observed,
        backtest_origins=max(config.backtest_origins, config.calibration_origins),
        min_train_snapshots=config.min_train_snapshots, target=target,
    )
    rows = _split_rows(data, split)
    _check_positives(target, "training snapshots", rows[2], config.min_train_positives)
    return _usable_folds(split, rows[0], rows[2], target), rows


def _check_pooled(
    positives: dict[pd.Timestamp, frozenset], split: TemporalSplit, config: TrainConfig,
    target: str,
) -> None:
    """An automatic holdout must hold ``pooled_positives`` distinct positive members."""
    found = pooled_positives(positives, split.holdout_dates)
    if found < config.pooled_positives:
        raise InsufficientDataError(
            f"{target}: the newest {len(split.holdout_dates)} labelled snapshot(s) hold "
            f"{found} positive member(s), fewer than the {config.pooled_positives} a holdout "
            "needs to judge a model"
        )


def _prepare(
    tables: Tables, target: str, labels: LabelConfig, config: TrainConfig,
    training_frame: TrainingFrame,
) -> _Prepared:
    """Split the frame in time and check there are positives to learn from and judge by."""
    split, (train_data, holdout_data, y_train, y_hold) = _plan_split(
        training_frame.data, horizon_days_for(target, labels), tables.last_observed, config,
        target,
    )
    caps = [c for c in (config.max_fit_rows, config.calibration_fit_rows) if c is not None]
    # Per-row uniforms of the seeded negative subsampling, only when some fit can exceed a cap.
    u = _row_uniforms(train_data, config.seed) if caps and len(train_data) > min(caps) else None
    feature_columns = list(training_frame.feature_columns)
    return _Prepared(
        split=split,
        feature_columns=feature_columns,
        train_data=train_data,
        holdout_data=holdout_data,
        x_train=train_data[feature_columns],
        y_train=y_train,
        y_hold=y_hold,
        train_chapter=_member_chapters(tables, train_data["member_id"]),
        u=u,
    )


def _usable_folds(split: TemporalSplit, train_data: pd.DataFrame, y_train: np.ndarray,
                  target: str) -> TemporalSplit:
    """The split keeping only the backtest folds whose training snapshots hold both classes.

    Raises:
        InsufficientDataError: If no fold does.
    """
    folds = []
    as_of = train_data["as_of"]
    for fold in split.folds:
        mask = as_of.isin(fold.train_dates).to_numpy()
        if 0 < y_train[mask].sum() < mask.sum():
            folds.append(fold)
    if not folds:
        raise InsufficientDataError(
            f"{target}: no backtest fold has both positive and negative labels to train on; "
            "a longer history or more snapshots (--snapshots) gives more"
        )
    return replace(split, folds=tuple(folds))


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


def _select_candidate(
    prep: _Prepared, config: TrainConfig, target: str, folds: list
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
    _check_positives(
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


def comparison_confidence(config: TrainConfig) -> float:
    """The share of resamples one challenger must win, for ``selection_confidence`` overall.

    Every candidate after the first is a challenger; with several, one of them would often beat
    the preferred candidate by chance alone. The bar of each comparison is raised so that the
    chance of any such win stays below ``1 - selection_confidence`` (Bonferroni): 0.9 with four
    challengers asks each for 0.975.
    """
    challengers = max(len(config.all_candidates) - 1, 1)
    return 1.0 - (1.0 - config.selection_confidence) / challengers


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


def _calibrate(
    prep: _Prepared, config: TrainConfig, candidate: str, folds: list, chosen_folds: list,
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


def _backtest_as_holdout(
    prep: _Prepared, pool: pd.DataFrame, chosen_folds: list
) -> tuple[_Prepared, np.ndarray]:
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


def _final_model(
    prep: _Prepared, config: TrainConfig, candidate: str, method: str, pool: pd.DataFrame
) -> CalibratedModel:
    """The winner refitted on every training snapshot, wrapped with its calibration map."""
    final = _fit_sampled(
        candidate, config, prep.train_data, prep.x_train, prep.y_train,
        np.ones(len(prep.y_train), dtype=bool), config.max_fit_rows, prep.u,
    )
    if method == "none":
        return CalibratedModel(final, method="none")
    return CalibratedModel(
        final, **fit_calibrator(pool["decision"].to_numpy(), pool["label"], method)
    )


def _compare_on_holdout(
    prep: _Prepared, config: TrainConfig, target: str, prob: np.ndarray, hold_chapter,
    oracle: np.ndarray | None,
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """Holdout metrics of the model, every baseline and the oracle; their holdout scores."""
    as_of, y_hold = prep.holdout_data["as_of"], prep.y_hold
    rows = {"model": _evaluate(as_of, y_hold, prob, hold_chapter, config, probabilities=True)}
    other: dict[str, np.ndarray] = {}
    columns = resolve_baselines(prep.feature_columns)
    for baseline in BASELINES:
        column = columns[baseline.name]
        train_score = score_baseline(prep.train_data, baseline, column, target)
        hold_score = score_baseline(prep.holdout_data, baseline, column, target)
        mapped = fit_baseline_map(train_score, prep.y_train).predict(hold_score)
        other[baseline.name] = hold_score
        rows[f"baseline:{baseline.name}"] = _evaluate(
            as_of, y_hold, hold_score, hold_chapter, config, probabilities=True, prob=mapped
        )
    if oracle is not None:
        other["oracle"] = oracle
        rows["oracle"] = _evaluate(as_of, y_hold, oracle, hold_chapter, config, probabilities=True)
    return rows, other


def _baseline_backtest(prep: _Prepared, config: TrainConfig, target: str, folds) -> pd.DataFrame:
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


def _collect_metrics(
    comparison_rows: dict[str, dict[str, float]], backtest: pd.DataFrame, candidate: str,
    config: TrainConfig,
) -> dict[str, float]:
    """The flat metrics of a run: holdout, baselines, oracle and its ratios, backtest."""
    metrics = {f"holdout.{name}": value for name, value in comparison_rows["model"].items()}
    for row_name, row in comparison_rows.items():
        if row_name == "model":
            continue
        prefix = "oracle" if row_name == "oracle" else row_name.replace(":", ".")
        for name in (*RANK_METRICS, *PROBABILITY_METRICS):
            metrics[f"{prefix}.{name}"] = row[name]
    if "oracle" in comparison_rows:
        for name in RATIO_METRICS:
            denom = comparison_rows["oracle"][name]
            metrics[f"oracle_ratio.{name}"] = (
                comparison_rows["model"][name] / denom if denom and not pd.isna(denom) else np.nan
            )
    selection = backtest[backtest["phase"] == "selection"]
    chosen = selection[selection["scorer"] == candidate]
    for name in (*RANK_METRICS, *PROBABILITY_METRICS):
        metrics[f"backtest.{name}"] = float(chosen[name].mean())
    means = selection.groupby("scorer")[config.primary_metric].mean()
    for name in config.all_candidates:
        metrics[f"backtest.{name}.{config.primary_metric}"] = float(means.get(name, np.nan))
    return metrics


@dataclass(frozen=True, eq=False)
class _Fitted:
    """What the backtest, the calibration and the final fit hand to the evaluation.

    ``prep`` holds the evaluation rows as ``holdout_data``/``y_hold``: the holdout, or without
    one the selection origins' out-of-time rows (:func:`_backtest_as_holdout`); ``prob`` is the
    model's probability for each of them.
    """

    prep: _Prepared
    candidate: str
    method: str
    chosen_folds: list
    pool: pd.DataFrame
    calibration_rows: list[dict]
    backtest: pd.DataFrame
    model: CalibratedModel
    prob: np.ndarray


@dataclass(frozen=True, eq=False)
class _Judged:
    """The evaluation of a fitted model: every scorer's metrics on the evaluation rows."""

    hold_chapter: np.ndarray
    comparison_rows: dict[str, dict[str, float]]
    other_scores: dict[str, np.ndarray]
    intervals: dict[str, tuple[float, float]]
    metrics: dict[str, float]


def _fit_target(prep: _Prepared, config: TrainConfig, target: str) -> _Fitted:
    """Backtest and choose, calibrate, refit the winner; its scores on the evaluation rows."""
    folds = list(prep.split.folds)
    candidate, chosen_folds, oot, backtest = _select_candidate(prep, config, target, folds)
    method, pool, calibration_rows, backtest = _calibrate(
        prep, config, candidate, folds, chosen_folds, oot, backtest
    )
    backtest = pd.concat(
        [backtest, _baseline_backtest(prep, config, target, chosen_folds)], ignore_index=True
    )
    model = _final_model(prep, config, candidate, method, pool)
    if prep.split.holdout_dates:
        prob = model.predict_proba(prep.holdout_data[prep.feature_columns])[:, 1]
    else:
        prep, prob = _backtest_as_holdout(prep, pool, chosen_folds)
    return _Fitted(
        prep=prep, candidate=candidate, method=method, chosen_folds=chosen_folds, pool=pool,
        calibration_rows=calibration_rows, backtest=backtest, model=model, prob=prob,
    )


def _judge(
    tables: Tables, target: str, labels: LabelConfig, config: TrainConfig,
    oracle: Oracle | None, training_frame: TrainingFrame, fitted: _Fitted,
) -> _Judged:
    """Holdout metrics of the model, the baselines and the oracle; intervals; run metrics."""
    prep = fitted.prep
    hold_chapter = _member_chapters(tables, prep.holdout_data["member_id"])
    truth = _oracle_scores(tables, target, labels, prep.holdout_data, oracle)
    comparison_rows, other_scores = _compare_on_holdout(
        prep, config, target, fitted.prob, hold_chapter, truth
    )
    metrics = _collect_metrics(comparison_rows, fitted.backtest, fitted.candidate, config)
    metrics.update(_run_counts(fitted, training_frame))
    intervals = holdout_intervals(prep.holdout_data, prep.y_hold, fitted.prob, config)
    metrics.update(interval_metrics(intervals))
    return _Judged(
        hold_chapter=hold_chapter, comparison_rows=comparison_rows, other_scores=other_scores,
        intervals=intervals, metrics=metrics,
    )


def _run_counts(fitted: _Fitted, training_frame: TrainingFrame) -> dict[str, float]:
    """The sizes of a run: origins, rows, positives and snapshots."""
    prep = fitted.prep
    return {
        "backtest.origins": float(len(fitted.chosen_folds)),
        "calibration.origins": float(fitted.pool["origin"].nunique()),
        "train.rows": float(len(prep.train_data)),
        "frame.eligible_rows": float(training_frame.eligible_rows or len(training_frame.data)),
        "frame.member_share": float(training_frame.member_share),
        "frame.outreach_left_out": float(training_frame.outreach_left_out),
        "train.positives": float(prep.y_train.sum()),
        "train.snapshots": float(len(prep.split.train_dates)),
        "holdout.snapshots": float(len(prep.split.holdout_dates)),
    }


def _train_target(
    tables: Tables,
    target: str,
    labels: LabelConfig,
    frame: FrameConfig,
    config: TrainConfig,
    oracle: Oracle | None,
    training_frame: TrainingFrame,
) -> TrainResult:
    prep = _prepare(tables, target, labels, config, training_frame)
    fitted = _fit_target(prep, config, target)
    judged = _judge(tables, target, labels, config, oracle, training_frame, fitted)
    return _result(tables, target, labels, frame, config, training_frame, fitted, judged)


def _result(
    tables: Tables, target: str, labels: LabelConfig, frame: FrameConfig, config: TrainConfig,
    training_frame: TrainingFrame, fitted: _Fitted, judged: _Judged,
) -> TrainResult:
    """The result of a run: the fitted model, its evaluation rows and its figures."""
    prep, candidate = fitted.prep, fitted.candidate
    comparison = pd.DataFrame.from_dict(judged.comparison_rows, orient="index")
    comparison.index.name = "scorer"
    holdout_out = prep.holdout_data.copy()
    holdout_out.insert(2, "chapter_id", judged.hold_chapter)
    holdout_out["score"] = fitted.prob
    return TrainResult(
        target=target,
        config=config,
        label_config=labels,
        frame_config=frame,
        feature_config=training_frame.feature_config,
        model=fitted.model,
        candidate=candidate,
        calibration_method=fitted.method,
        feature_columns=tuple(prep.feature_columns),
        split=prep.split,
        train_data=prep.train_data,
        holdout_data=holdout_out,
        metrics=judged.metrics,
        comparison=comparison,
        backtest=fitted.backtest,
        calibration_table=pd.DataFrame(
            [{"candidate": candidate, **row} for row in fitted.calibration_rows],
            columns=["candidate", "method", "cv_log_loss", "origins", "rows"],
        ),
        importance=_permutation_importance(
            fitted.model, prep.holdout_data[prep.feature_columns], prep.y_hold, config
        ),
        other_scores=judged.other_scores,
        data_fingerprint=fingerprint_tables(tables),
        source=str(tables.source),
        intervals=judged.intervals,
        notes=_validation_notes(prep.split, fitted.chosen_folds, int(prep.y_hold.sum())),
    )


def _validation_notes(split: TemporalSplit, chosen_folds: list, positives: int) -> tuple:
    """What judged the model, in words, when it was not a holdout kept aside."""
    if split.holdout_dates:
        return ()
    return (
        f"Validated by the backtest alone: {len(chosen_folds)} labelled snapshot(s), each "
        f"scored by a model that never saw its outcomes ({positives} positive label(s) in "
        "all); the history holds too few promotions or too short a span to also keep a "
        "holdout aside. The model then learned from every labelled snapshot.",
    )


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


def _oracle_scores(
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


def _permutation_importance(
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
    return _evaluate(
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
    return _evaluate(
        rows["as_of"], rows["label"].to_numpy(dtype=np.int64),
        rows["score"].to_numpy(dtype=np.float64), rows["chapter_id"].to_numpy(), config,
        probabilities=True,
    )


def render_card(result: TrainResult, limits: Sequence[str] = ()) -> str:
    """The markdown model card of a training result: a learned model or a ranking rule.

    A rule's card says what it ranks by, whether it was validated, and why it stands in for a
    model (``result.notes``); every card lists the bootstrap intervals of ``result.intervals``.
    """
    primary, learned = result.primary_metric, result.method == "model"
    names = result.config.candidates if learned else [
        key[len("backtest."):-len(primary) - 1] for key in result.metrics
        if key.startswith("backtest.") and key.endswith(f".{primary}")
    ]
    backtest_means = {n: result.metrics.get(f"backtest.{n}.{primary}", np.nan) for n in names}
    extra = list(limits)
    if learned and result.validated and not result.has_oracle:
        extra.append("No oracle: real data has no ground-truth probabilities to compare with.")
    share = result.metrics.get("frame.member_share", 1.0)
    if share < 1.0:
        extra.append(
            f"Trained and evaluated on a {share:.1%} hash sample of the members "
            f"({int(result.metrics.get('frame.eligible_rows', 0)):,} eligible member-snapshots "
            "above the frame's row cap, `frame.max_rows`); the metrics are estimates on that "
            "sample. Scoring covers every member."
        )
    left_out = int(result.metrics.get("frame.outreach_left_out", 0))
    if left_out:
        extra.append(
            f"{left_out:,} member-snapshots were left out of training and evaluation: those "
            "members were called to keep them, so whether they stayed is partly the call's doing."
        )
    held, split = result.holdout_data, result.split
    dates = split.holdout_dates or tuple(pd.Timestamp(d) for d in sorted(held["as_of"].unique()))
    scorer = "model" if learned else result.candidate
    comparison = result.comparison
    if comparison.empty:
        comparison = holdout_table(result.metrics, scorer)
    return render_model_card(
        target=result.target,
        candidate=result.candidate,
        calibration=result.calibration_method,
        horizon_days=split.horizon_days,
        train_range=(min(split.train_dates), max(split.train_dates)) if split.train_dates else None,
        holdout_dates=dates,
        n_train_rows=len(result.train_data),
        n_holdout_rows=len(held),
        holdout_positives=int(held["label"].sum()) if "label" in held.columns else 0,
        capacity_k=capacity_k(len(held) // max(1, len(dates)), result.config.capacity_share),
        comparison=comparison,
        importance=result.importance,
        backtest_summary=backtest_means,
        primary_metric=primary,
        limits=tuple(extra),
        intervals=result.intervals,
        level=result.config.interval_level,
        interval_scorer=scorer,
        method=result.method,
        validated=result.validated,
        notes=tuple(result.notes),
    )
