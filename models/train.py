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

This module holds the result (:class:`TrainResult`), the :class:`Oracle` protocol, the frames
and their split in time, and the phases of one run (``_prepare`` → ``_fit_target`` →
``_judge`` → ``_result``). The steps live by concern: fitting and row sampling in
:mod:`models.fitting`, the backtest and the choice of candidate and calibration in
:mod:`models.selection`, holdout metrics, intervals and importance in :mod:`models.evaluation`,
the model card in :mod:`models.card`. The public names of those steps that callers import from
here are re-exported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from features.contract import TABLE_NAMES
from features.errors import ConfigError, InsufficientDataError, TargetUnavailable
from features.feature_config import FeatureConfig
from features.frames import (
    FrameConfig,
    TrainingFrame,
    build_training_frame,
    build_training_frames,
)
from features.labels import LabelConfig, label_horizon_days
from features.tables import Tables
from models.card import render_card, validation_notes
from models.config import TrainConfig
from models.estimators import CalibratedModel
from models.evaluation import (
    compare_on_holdout,
    evaluate_on_holdout,
    evaluate_rows,
    holdout_importance,
    holdout_intervals,
    interval_metrics,
    member_chapters,
    oracle_scores,
)
from models.fitting import Prepared, check_positives, final_model, row_uniforms, sample_fit_rows
from models.metrics import PROBABILITY_METRICS, RANK_METRICS
from models.rules import method_of
from models.selection import (
    backtest_as_holdout,
    baseline_backtest,
    calibrate,
    calibration_extra_folds,
    choose_candidate,
    select_candidate,
    selection_folds,
)
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


def _rows(data: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """The rows of ``mask`` numbered from 0, without copying the features when they are one
    contiguous run (a frame is sorted by ``as_of``, so the training snapshots are): at
    federation size a copy of the training rows alone is several gigabytes."""
    where = np.flatnonzero(mask)
    if where.size and where[-1] - where[0] + 1 == where.size:
        return data.iloc[where[0] : where[-1] + 1].reset_index(drop=True)
    return data.loc[mask].reset_index(drop=True)


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
            check_positives(target, "training snapshots", rows[2], config.min_train_positives)
            check_positives(target, "holdout snapshot(s)", rows[3], config.min_holdout_positives)
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
    check_positives(target, "training snapshots", rows[2], config.min_train_positives)
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
) -> Prepared:
    """Split the frame in time and check there are positives to learn from and judge by."""
    split, (train_data, holdout_data, y_train, y_hold) = _plan_split(
        training_frame.data, horizon_days_for(target, labels), tables.last_observed, config,
        target,
    )
    caps = [c for c in (config.max_fit_rows, config.calibration_fit_rows) if c is not None]
    # Per-row uniforms of the seeded negative subsampling, only when some fit can exceed a cap.
    u = row_uniforms(train_data, config.seed) if caps and len(train_data) > min(caps) else None
    feature_columns = list(training_frame.feature_columns)
    return Prepared(
        split=split,
        feature_columns=feature_columns,
        train_data=train_data,
        holdout_data=holdout_data,
        x_train=train_data[feature_columns],
        y_train=y_train,
        y_hold=y_hold,
        train_chapter=member_chapters(tables, train_data["member_id"]),
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
    one the selection origins' out-of-time rows (:func:`backtest_as_holdout`); ``prob`` is the
    model's probability for each of them.
    """

    prep: Prepared
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


def _fit_target(prep: Prepared, config: TrainConfig, target: str) -> _Fitted:
    """Backtest and choose, calibrate, refit the winner; its scores on the evaluation rows."""
    folds = list(prep.split.folds)
    candidate, chosen_folds, oot, backtest = select_candidate(prep, config, target, folds)
    method, pool, calibration_rows, backtest = calibrate(
        prep, config, candidate, folds, chosen_folds, oot, backtest
    )
    backtest = pd.concat(
        [backtest, baseline_backtest(prep, config, target, chosen_folds)], ignore_index=True
    )
    model = final_model(prep, config, candidate, method, pool)
    if prep.split.holdout_dates:
        prob = model.predict_proba(prep.holdout_data[prep.feature_columns])[:, 1]
    else:
        prep, prob = backtest_as_holdout(prep, pool, chosen_folds)
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
    hold_chapter = member_chapters(tables, prep.holdout_data["member_id"])
    truth = oracle_scores(tables, target, labels, prep.holdout_data, oracle)
    comparison_rows, other_scores = compare_on_holdout(
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
        importance=holdout_importance(
            fitted.model, prep.holdout_data[prep.feature_columns], prep.y_hold, config
        ),
        other_scores=judged.other_scores,
        data_fingerprint=fingerprint_tables(tables),
        source=str(tables.source),
        intervals=judged.intervals,
        notes=validation_notes(prep.split, fitted.chosen_folds, int(prep.y_hold.sum())),
    )


