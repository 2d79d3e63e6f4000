"""A short markdown model card for one trained target.

:func:`render_card` makes the card of a training result (:class:`models.train.TrainResult`);
:func:`render_model_card` lays it out from plain values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models.metrics import capacity_k
from models.split import TemporalSplit

if TYPE_CHECKING:
    from models.train import TrainResult

__all__ = ["CardFacts", "render_card", "validation_notes", "render_model_card", "holdout_table"]

_CARD_METRICS = (
    ("roc_auc", "ROC-AUC"),
    ("pr_auc", "PR-AUC"),
    ("precision_at_k", "precision@k"),
    ("recall_at_k", "recall@k"),
    ("lift_top_decile", "lift top 10 %"),
    ("chapter_top_precision", "chapter top-n precision"),
    ("chapter_roc_auc_median", "chapter ROC-AUC (median)"),
    ("brier", "Brier"),
    ("ece", "ECE"),
)

_QUESTIONS = {
    "readiness": "Which members are likely to take on the core role within the horizon?",
    "disengagement": "Which currently active members are likely to stop showing up?",
}


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}"


def holdout_table(metrics: Mapping[str, float], scorer: str) -> pd.DataFrame:
    """A one-row ``comparison`` (indexed by ``scorer``) from flat ``holdout.<metric>`` values.

    For results without a comparison of scorers (a ranking rule); empty when ``metrics`` holds
    none of the card's metrics.
    """
    row = {m: float(metrics[f"holdout.{m}"]) for m, _ in _CARD_METRICS if f"holdout.{m}" in metrics}
    frame = pd.DataFrame([row], index=pd.Index([scorer], name="scorer")) if row else pd.DataFrame()
    return frame


def _interval_lines(
    intervals: Mapping[str, tuple[float, float]],
    level: float,
    comparison: pd.DataFrame,
    scorer: str,
) -> list[str]:
    """A list of the card metrics that have an interval: the scorer's value and its interval
    (no lines when none has)."""
    row = comparison.loc[scorer] if scorer in comparison.index else pd.Series(dtype=float)
    percent = f"{100 * level:g} %"
    entries = []
    for metric, label in _CARD_METRICS:
        if metric not in intervals:
            continue
        low, high = intervals[metric]
        value = _fmt(row.get(metric, float("nan")))
        if math.isnan(low) or math.isnan(high):
            spread = "interval undefined: too few resamples hold both classes"
        else:
            spread = f"{percent} interval {_fmt(low)}–{_fmt(high)}, bootstrap over members"
        entries.append(f"- {label} {value} ({spread})")
    if not entries:
        return []
    return [
        "",
        f"Uncertainty of `{scorer}` on the holdout (percentile intervals; each bootstrap "
        "resample draws members with replacement, each with all its snapshots):",
        "",
        *entries,
    ]


@dataclass(frozen=True)
class CardFacts:
    """What a model card says, gathered from a training result (:func:`render_card`).

    Attributes:
        target: Target name.
        candidate: Chosen model family.
        calibration: Calibration method used.
        horizon_days: Label window.
        train_range: First and last training snapshot dates; ``None`` when nothing was trained
            on labels (an unvalidated rule).
        holdout_dates: Holdout snapshot dates.
        n_train_rows: Training rows (member-snapshots).
        n_holdout_rows: Holdout rows.
        holdout_positives: Positive labels in the holdout.
        capacity_k: k of precision@k.
        comparison: Holdout metrics, one row per scorer (model, baselines, oracle), indexed by
            scorer name.
        importance: Permutation importance (``feature``, ``importance_mean``,
            ``importance_std``).
        backtest_summary: Mean backtest metric per candidate (``{candidate: value}``).
        primary_metric: Metric used for selection and promotion.
        limits: Extra known limits to list.
        intervals: Bootstrap intervals of ``interval_scorer``'s holdout metrics
            (``{metric: (low, high)}``, e.g. from :func:`models.metrics.bootstrap_intervals`);
            listed under the table for the card's metrics that have one. ``None``: no list.
        level: Coverage of ``intervals`` (0.9 for 90 %).
        interval_scorer: Row of ``comparison`` the intervals belong to.
        method: ``model`` or ``rule:<name>`` (a ranking rule, see :mod:`models.rules`); a
            rule's card says what it ranks by and whether it was checked against outcomes.
        validated: Whether the scores were judged on labelled snapshots.
        notes: Plain sentences on what was done and why, listed under "What was done".
    """

    target: str
    candidate: str
    calibration: str
    horizon_days: int
    train_range: tuple[pd.Timestamp, pd.Timestamp] | None
    holdout_dates: tuple[pd.Timestamp, ...]
    n_train_rows: int
    n_holdout_rows: int
    holdout_positives: int
    capacity_k: int
    comparison: pd.DataFrame
    importance: pd.DataFrame
    backtest_summary: Mapping[str, float]
    primary_metric: str
    limits: tuple[str, ...] = ()
    intervals: Mapping[str, tuple[float, float]] | None = None
    level: float = 0.9
    interval_scorer: str = "model"
    method: str = "model"
    validated: bool = True
    notes: tuple[str, ...] = ()


def render_model_card(**facts) -> str:
    """Render the model card of the :class:`CardFacts` given by name.

    Returns:
        Markdown text. It names no member: only aggregates and feature names.
    """
    card = CardFacts(**facts)
    if card.method != "model":
        return _rule_card(card)
    lines = [
        f"# corecast model card: {card.target}",
        "",
        f"**Question.** {_QUESTIONS.get(card.target, card.target)} "
        f"Horizon: {card.horizon_days} days.",
        "",
    ]
    if card.validated:
        lines += _validated_model_lines(
            card.candidate, card.calibration, card.primary_metric, card.backtest_summary,
            card.train_range, card.n_train_rows, card.holdout_dates, card.n_holdout_rows,
            card.holdout_positives, card.capacity_k, card.comparison,
        )
        if card.intervals:
            lines += _interval_lines(
                card.intervals, card.level, card.comparison, card.interval_scorer
            )
    else:
        lines += _unvalidated_model_lines(
            card.candidate, card.calibration, card.train_range, card.n_train_rows
        )
    lines += _notes_lines(card.notes)
    lines += _importance_lines(card.importance)
    lines += _model_limit_lines(card.calibration, card.validated, card.limits)
    return "\n".join(lines)


def _validated_model_lines(
    candidate: str, calibration: str, primary_metric: str, backtest_summary: Mapping[str, float],
    train_range: tuple[pd.Timestamp, pd.Timestamp], n_train_rows: int,
    holdout_dates: tuple[pd.Timestamp, ...], n_holdout_rows: int, holdout_positives: int,
    capacity_k: int, comparison: pd.DataFrame,
) -> list[str]:
    """How a validated model was chosen, its data window and its holdout metrics table."""
    return [
        f"**Model.** `{candidate}` with `{calibration}` calibration, chosen by mean backtest "
        f"`{primary_metric}`: "
        + ", ".join(f"{name} {_fmt(value)}" for name, value in backtest_summary.items())
        + ".",
        "",
        f"**Data window.** Training snapshots {train_range[0]:%Y-%m-%d} to "
        f"{train_range[1]:%Y-%m-%d} ({n_train_rows} member-snapshots); holdout "
        + ", ".join(f"{d:%Y-%m-%d}" for d in holdout_dates)
        + f" ({n_holdout_rows} members, {holdout_positives} positives). "
        f"Capacity k = {capacity_k}.",
        "",
        "## Holdout metrics",
        "",
        *_metric_table(comparison),
    ]


def _importance_lines(importance: pd.DataFrame) -> list[str]:
    """The ten most important features (permutation importance on the holdout)."""
    lines = []
    if not importance.empty:
        lines += ["", "## Top features (permutation importance on the holdout)", ""]
    top = importance.sort_values("importance_mean", ascending=False).head(10)
    for _, row in top.iterrows():
        lines.append(
            f"- `{row['feature']}`: {row['importance_mean']:.4f} ± {row['importance_std']:.4f}"
        )
    return lines


def _model_limit_lines(calibration: str, validated: bool, limits: tuple[str, ...]) -> list[str]:
    """The "Known limits" section of a model's card."""
    return [
        "",
        "## Known limits",
        "",
        "- Scores rank members; they are not decisions. "
        + (
            "Probabilities are the model's own (no calibration map was applied). "
            if calibration == "none"
            else f"Probabilities are mapped by a {calibration} calibration fitted on "
            "out-of-time backtest predictions. "
        )
        + "They drift when the community changes (seasons, growth): watch the calibration plot.",
        *(
            ["- Baselines are scored by rank; their probability metrics come from an isotonic "
             "map fitted on the training snapshots."]
            if validated
            else []
        ),
        "- Per-chapter metrics are noisy for small chapters (few members, few positives).",
        "- The model sees activity, roles and membership only: nothing about why people engage.",
        *[f"- {limit}" for limit in limits],
        "",
    ]


def _unvalidated_model_lines(
    candidate: str,
    calibration: str,
    train_range: tuple[pd.Timestamp, pd.Timestamp] | None,
    n_train_rows: int,
) -> list[str]:
    """The model and data lines of a learned model nothing was left aside to check."""
    window = (
        f"Training snapshots {train_range[0]:%Y-%m-%d} to {train_range[1]:%Y-%m-%d} "
        if train_range
        else ""
    )
    return [
        f"**Model.** `{candidate}` with `{calibration}` calibration; no backtest could choose "
        "or check it.",
        "",
        f"**Data window.** {window}({n_train_rows} member-snapshots).",
        "",
        "**Not validated.** No outcome was left aside to check the model on, so there are no "
        "holdout metrics.",
    ]


def _metric_table(comparison: pd.DataFrame) -> list[str]:
    """The card's metrics as a markdown table, one row per scorer of ``comparison``."""
    lines = [
        "| scorer | " + " | ".join(label for _, label in _CARD_METRICS) + " |",
        "|---|" + "---|" * len(_CARD_METRICS),
    ]
    for name, row in comparison.iterrows():
        cells = [_fmt(row.get(metric, float("nan"))) for metric, _ in _CARD_METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _notes_lines(notes: tuple[str, ...]) -> list[str]:
    """The "What was done" section listing ``notes`` (no lines without notes)."""
    if not notes:
        return []
    return ["", "## What was done", "", *[f"- {note}" for note in notes]]


def _dates(dates: tuple[pd.Timestamp, ...]) -> str:
    return ", ".join(f"{d:%Y-%m-%d}" for d in dates)


def _rule_card(card: CardFacts) -> str:
    """The card of a ranking rule (see :func:`render_model_card`): what it ranks by, whether
    and on what it was judged, why no learned model stands in its place."""
    columns = ", ".join(f"`{f}`" for f in card.importance.get("feature", pd.Series(dtype=str)))
    judged = ", ".join(f"{name} {_fmt(value)}" for name, value in card.backtest_summary.items())
    lines = [
        f"# corecast model card: {card.target}",
        "",
        f"**Question.** {_QUESTIONS.get(card.target, card.target)} "
        f"Horizon: {card.horizon_days} days.",
        "",
        f"**Method.** Ranking rule `{card.method}` on {columns or 'one feature'}: "
        "no learned weights.",
        "",
    ]
    if card.validated:
        lines += [
            f"**Validated** on every labelled snapshot ({_dates(card.holdout_dates)}: "
            f"{card.n_holdout_rows} member-snapshots, {card.holdout_positives} positives); rules "
            f"compared by mean `{card.primary_metric}`: {judged or '-'}. Probabilities come from a "
            f"`{card.calibration}` calibration fitted on the same snapshots.",
            "",
            "## Metrics on the labelled snapshots",
            "",
            *_metric_table(card.comparison),
        ]
        if card.intervals:
            lines += _interval_lines(
                card.intervals, card.level, card.comparison, card.interval_scorer
            )
        meaning = "Scores are calibrated probabilities of the labelled snapshots' outcomes."
    else:
        lines += [
            f"**Not validated.** Ranks the {card.n_train_rows} eligible members on "
            f"{_dates(card.holdout_dates)}; there is no labelled snapshot to check the ranking "
            "against, so there are no metrics.",
        ]
        meaning = (
            "Scores are percentiles within the community (0.9: ranked above 90 % of the "
            "eligible members), not probabilities."
        )
    lines += _notes_lines(card.notes)
    lines += [
        "",
        "## Known limits",
        "",
        f"- Scores rank members; they are not decisions. {meaning}",
        "- A rule sees one column only: members it ranks alike may differ in every other way.",
        *[f"- {limit}" for limit in card.limits],
        "",
    ]
    return "\n".join(lines)


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


def validation_notes(split: TemporalSplit, chosen_folds: list, positives: int) -> tuple:
    """What judged the model, in words, when it was not a holdout kept aside."""
    if split.holdout_dates:
        return ()
    return (
        f"Validated by the backtest alone: {len(chosen_folds)} labelled snapshot(s), each "
        f"scored by a model that never saw its outcomes ({positives} positive label(s) in "
        "all); the history holds too few promotions or too short a span to also keep a "
        "holdout aside. The model then learned from every labelled snapshot.",
    )
