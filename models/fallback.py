"""Every target gets a ranking: a learned model when one can be trained and validated, else a rule.

:func:`train_or_fallback` first trains a model (:func:`models.train.train_target`, whose backtest
already lets the rules compete with the models). When the data cannot support a learned model -
too short a history for a backtest and a holdout, too few promotions, no fold with both outcomes -
it falls back to :func:`train_rule`:

- with labelled snapshots holding at least ``min_holdout_positives`` positives, every rule of the
  target is judged on all of them (a rule has nothing fitted, so this is an honest evaluation);
  the best one is kept, calibrated to probabilities on those snapshots, and marked *validated*;
- otherwise the target's first rule ranks the members at the newest date; its scores are
  percentiles within the community (a rank, not a probability) and it is marked *not
  validated*, with what history would validate a model.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from features.build import build_features
from features.errors import InsufficientDataError, TargetUnavailable
from features.feature_config import FeatureConfig, resolve_vocabulary
from features.frames import FrameConfig, TrainingFrame
from features.labels import LabelConfig, select_disengagement_eligible, select_readiness_eligible
from features.tables import Tables
from models.config import TrainConfig
from models.estimators import CalibratedModel, fit_calibrator
from models.evaluation import evaluate, holdout_intervals, interval_metrics, member_chapters
from models.fitting import fit_sampled, row_uniforms
from models.rules import Rule, RuleScorer, rules_for
from models.selection import choose_candidate
from models.split import TemporalSplit
from models.train import (
    Oracle,
    TrainResult,
    fingerprint_tables,
    horizon_days_for,
    train_target,
)

__all__ = ["train_or_fallback", "train_rule"]


def train_or_fallback(
    tables: Tables,
    target: str,
    labels: LabelConfig,
    frame: FrameConfig,
    features: FeatureConfig,
    config: TrainConfig,
    *,
    oracle: Oracle | None = None,
    training_frame: TrainingFrame | None = None,
    frame_error: InsufficientDataError | TargetUnavailable | None = None,
) -> TrainResult:
    """A learned model of ``target`` when the data supports one, else the best rule.

    Args:
        tables, target, labels, frame, features, config, oracle: As for
            :func:`models.train.train_target`.
        training_frame: The target's frame when built (``None`` with ``frame_error``).
        frame_error: Why no frame could be built (too short a history), if so.

    A readiness target whose core role no member has held yet (or without a roles table) gets
    the unvalidated rule too, with a note naming ``--core-role`` in case the role has another
    name.

    Raises:
        InsufficientDataError: If not even a rule can rank anybody (no eligible member).
    """
    why = frame_error
    if why is None:
        try:
            return train_target(
                tables, target, labels, frame, features, config,
                oracle=oracle, training_frame=training_frame,
            )
        except (InsufficientDataError, TargetUnavailable) as exc:
            why = exc
    usable = training_frame if frame_error is None else None
    if usable is not None and _learnable(usable.data, config):
        return _unvalidated_model(tables, target, labels, frame, config, usable, str(why))
    return train_rule(tables, target, labels, frame, features, config, usable, str(why))


def _learnable(data: pd.DataFrame, config: TrainConfig) -> bool:
    """Enough labelled positives to learn from, though not to validate: at least
    ``min_train_positives`` positive rows from ``min_holdout_positives`` distinct members."""
    y = data["label"].to_numpy()
    members = data.loc[y == 1, "member_id"].nunique()
    return (
        int(y.sum()) >= config.min_train_positives
        and members >= config.min_holdout_positives
        and int(y.sum()) < len(y)
    )


def _unvalidated_model(
    tables: Tables, target: str, labels: LabelConfig, frame: FrameConfig, config: TrainConfig,
    training_frame: TrainingFrame, why: str,
) -> TrainResult:
    """The preferred model fitted on every labelled snapshot, marked not validated."""
    data = training_frame.data.reset_index(drop=True)
    columns = list(training_frame.feature_columns)
    y = data["label"].to_numpy(dtype=np.int64)
    config = config.for_members(data["member_id"].nunique())
    candidate = config.candidates[0]
    # per-row uniforms of the negative subsampling, only when the fit exceeds the cap
    cap = config.max_fit_rows
    u = row_uniforms(data, config.seed) if cap is not None and len(data) > cap else None
    fitted = fit_sampled(
        candidate, config, data, data[columns], y, np.ones(len(y), dtype=bool),
        config.max_fit_rows, u,
    )
    model = CalibratedModel(fitted, method="none")
    dates = tuple(pd.Timestamp(d) for d in sorted(data["as_of"].unique()))
    members = data.loc[y == 1, "member_id"].nunique()
    notes = (
        f"Learned model, not validated: {why}",
        f"The {candidate} model learned from {len(dates)} labelled snapshot(s) with {members} "
        "positive member(s), but no outcome was left aside to check it on; its probabilities "
        "are its own, not calibrated on unseen outcomes. The reason above says what history "
        "would validate it.",
    )
    metrics = _size_metrics(training_frame, len(data), int(y.sum()), len(dates))
    metrics["holdout.snapshots"] = 0.0
    empty = data.iloc[0:0].copy()
    empty.insert(2, "chapter_id", pd.Series(dtype=object))
    empty["score"] = pd.Series(dtype="float64")
    return _result(
        tables, target, labels, frame, config, training_frame.feature_config, model, candidate,
        TemporalSplit(horizon_days_for(target, labels), (dates[-1],), dates, (), ()),
        data, empty, metrics, {}, validated=False, notes=notes,
    )


def train_rule(
    tables: Tables,
    target: str,
    labels: LabelConfig,
    frame: FrameConfig,
    features: FeatureConfig,
    config: TrainConfig,
    training_frame: TrainingFrame | None,
    why: str,
) -> TrainResult:
    """The best rule of ``target``, judged on every labelled snapshot there is (see module)."""
    data = training_frame.data if training_frame is not None else None
    if data is not None and _judgeable(data["label"].to_numpy(), config):
        return _validated_rule(tables, target, labels, frame, config, training_frame, why)
    return _unvalidated_rule(tables, target, labels, frame, features, config, why)


def _judgeable(y: np.ndarray, config: TrainConfig) -> bool:
    positives = int(np.sum(y))
    return positives >= config.min_holdout_positives and positives < len(y)


def _rule_means(
    data: pd.DataFrame, y: np.ndarray, chapter: np.ndarray, rules: tuple[Rule, ...],
    config: TrainConfig,
) -> dict[str, dict[str, float]]:
    """Every rule's metrics on the labelled snapshots (mean over dates)."""
    return {
        rule.candidate: evaluate(
            data["as_of"], y, rule.direction * data[rule.column].to_numpy(dtype=np.float64),
            chapter, config, probabilities=False,
        )
        for rule in rules
    }


def _validated_rule(
    tables: Tables, target: str, labels: LabelConfig, frame: FrameConfig, config: TrainConfig,
    training_frame: TrainingFrame, why: str,
) -> TrainResult:
    """The rule with the best primary metric on every labelled snapshot, calibrated there."""
    data = training_frame.data.reset_index(drop=True)
    y = data["label"].to_numpy(dtype=np.int64)
    chapter = member_chapters(tables, data["member_id"])
    rules = rules_for(target, training_frame.feature_columns)
    judged = _rule_means(data, y, chapter, rules, config)
    best = choose_candidate(
        {name: m[config.primary_metric] for name, m in judged.items()}, config, among=tuple(judged)
    )
    rule = next(r for r in rules if r.candidate == best)
    x = data[list(training_frame.feature_columns)]
    scorer = RuleScorer(rule.column, rule.direction).fit(x, y)
    model = CalibratedModel(scorer, **fit_calibrator(scorer.decision_function(x), y, "isotonic"))
    prob = model.predict_proba(x)[:, 1]
    metrics = evaluate(data["as_of"], y, prob, chapter, config, probabilities=True)
    intervals = holdout_intervals(data, y, prob, config)
    dates = tuple(pd.Timestamp(d) for d in sorted(data["as_of"].unique()))
    notes = (
        f"No learned model: {why}",
        f"Scores rank members by {rule.description} (rule {rule.name}), chosen among "
        f"{len(rules)} rules and judged on {len(dates)} labelled snapshot(s) with "
        f"{int(y.sum())} positive label(s); probabilities are calibrated on the same snapshots.",
    )
    holdout = data.copy()
    holdout.insert(2, "chapter_id", chapter)
    holdout["score"] = prob
    all_metrics = {f"holdout.{k}": v for k, v in metrics.items()}
    all_metrics.update(interval_metrics(intervals))
    for name, m in judged.items():
        all_metrics[f"backtest.{name}.{config.primary_metric}"] = m[config.primary_metric]
    all_metrics.update(_size_metrics(training_frame, len(data), int(y.sum()), len(dates)))
    return _result(
        tables, target, labels, frame, config, training_frame.feature_config, model, rule,
        TemporalSplit(horizon_days_for(target, labels), dates, dates, (), ()),
        data, holdout, all_metrics, intervals, validated=True, notes=notes,
    )


def _reference_date(tables: Tables, frame: FrameConfig) -> pd.Timestamp:
    """The date an unvalidated rule ranks at: the day after the data ends, or ``--until``."""
    newest = tables.last_observed.normalize() + pd.Timedelta(days=1)
    return newest if frame.until is None else min(newest, pd.Timestamp(frame.until))


def _unvalidated_rule(
    tables: Tables, target: str, labels: LabelConfig, frame: FrameConfig,
    features: FeatureConfig, config: TrainConfig, why: str,
) -> TrainResult:
    """The target's first rule, as percentiles among the members eligible at the newest date.

    Raises:
        InsufficientDataError: If nobody is eligible at that date (nothing to rank).
    """
    as_of = _reference_date(tables, frame)
    if target == "readiness":
        eligible = select_readiness_eligible(tables, as_of, labels, allow_no_spells=True)
    else:
        eligible = select_disengagement_eligible(tables, as_of, labels)
    if not len(eligible):
        raise InsufficientDataError(
            f"{target}: no learned model ({why}), and no member is eligible on "
            f"{as_of.date()} to rank by a rule: the data (or --until) ends before any "
            "eligible member's activity."
        )
    feature_config = resolve_vocabulary(
        tables, as_of, replace(features, core_role=labels.core_role)
    )
    x = build_features(tables, as_of, feature_config).loc[eligible]
    rule = rules_for(target, x.columns)[0]
    model = CalibratedModel(RuleScorer(rule.column, rule.direction).fit(x), method="none")
    horizon = horizon_days_for(target, labels)
    notes = (
        f"No learned model and no validation: {why}",
        f"Scores rank the {len(x)} eligible members by {rule.description} (rule {rule.name}); "
        "they are percentiles within the community (a rank, not a probability), not yet "
        f"checked against outcomes. Once the data holds {horizon}-day label windows with at "
        f"least {config.min_holdout_positives} positive labels, training judges the rules on "
        "them; a learned model needs the history the reason above names.",
    )
    train_data = x.reset_index().rename(columns={"index": "member_id"})
    train_data.insert(1, "as_of", as_of)
    metrics = {"train.rows": float(len(x)), "train.snapshots": 0.0, "holdout.snapshots": 0.0}
    empty = train_data.iloc[0:0].assign(label=pd.Series(dtype="int64"))
    return _result(
        tables, target, labels, frame, config, feature_config, model, rule,
        TemporalSplit(horizon, (as_of,), (), (), ()), train_data, empty, metrics, {},
        validated=False, notes=notes,
    )


def _size_metrics(
    training_frame: TrainingFrame, rows: int, positives: int, snapshots: int
) -> dict[str, float]:
    return {
        "train.rows": float(rows),
        "train.positives": float(positives),
        "train.snapshots": float(snapshots),
        "holdout.snapshots": float(snapshots),
        "frame.eligible_rows": float(training_frame.eligible_rows or rows),
        "frame.member_share": float(training_frame.member_share),
        "frame.outreach_left_out": float(training_frame.outreach_left_out),
    }


def _result(
    tables: Tables, target: str, labels: LabelConfig, frame: FrameConfig, config: TrainConfig,
    feature_config: FeatureConfig, model: CalibratedModel, rule: Rule | str,
    split: TemporalSplit,
    train_data: pd.DataFrame, holdout: pd.DataFrame, metrics: dict[str, float],
    intervals: dict, *, validated: bool, notes: tuple[str, ...],
) -> TrainResult:
    """A :class:`TrainResult` of the fallback (no backtest, calibration table or importance).

    ``rule`` is the rule, or the candidate name of an unvalidated learned model.
    """
    candidate = rule.candidate if isinstance(rule, Rule) else str(rule)
    used = [rule.column] if isinstance(rule, Rule) else []
    comparison = pd.DataFrame()
    comparison.index.name = "scorer"
    return TrainResult(
        target=target,
        config=config,
        label_config=labels,
        frame_config=frame,
        feature_config=feature_config,
        model=model,
        candidate=candidate,
        calibration_method=model.method,
        feature_columns=tuple(str(c) for c in model.feature_names_in_),
        split=split,
        train_data=train_data,
        holdout_data=holdout,
        metrics=metrics,
        comparison=comparison,
        backtest=pd.DataFrame(),
        calibration_table=pd.DataFrame(
            columns=["candidate", "method", "cv_log_loss", "origins", "rows"]
        ),
        importance=pd.DataFrame(
            {"feature": used, "importance_mean": [np.nan] * len(used),
             "importance_std": [np.nan] * len(used)}
        ),
        data_fingerprint=fingerprint_tables(tables),
        source=str(tables.source),
        intervals=intervals,
        validated=validated,
        notes=notes,
    )
