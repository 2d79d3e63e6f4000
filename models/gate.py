"""The promotion decision: whether a challenger replaces the champion, and why.

Pure: no MLflow here. :func:`models.registry.gate_promotion` reads the champion from the
registry, hands it to :func:`compare_with_champion` and :func:`decide_promotion`, and records
the :class:`PromotionDecision` they return.

The rules:

- no champion yet: the challenger is promoted (validated or not);
- an unvalidated challenger (a ranking rule with no labelled snapshot to judge it by) replaces
  an existing champion only when that champion is unvalidated too (or when forced);
- otherwise the champion is scored on the challenger's holdout, restricted to the snapshots the
  champion did not train on (:func:`unseen_by_champion`), and a paired bootstrap over members
  (:func:`models.metrics.paired_bootstrap_difference`) estimates the difference. The challenger
  is refused when it is worse than the champion by more than ``promotion_tolerance`` on the
  point estimate **and** worse in most member resamples (``p_a_worse > 0.5``; on the point
  estimate alone when the bootstrap is off or undefined); it is promoted otherwise;
- a refusal is overridden when promotion is forced (recorded as forced, with who forced it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from features.errors import ModelNotFound
from features.frames import align_features
from models.metrics import BOOTSTRAP_METRICS, capacity_k, is_better, paired_bootstrap_difference
from models.train import TrainResult, evaluate_on_holdout, evaluate_rows

__all__ = [
    "PromotionDecision",
    "Comparison",
    "evaluation_dates",
    "feature_columns_of",
    "unseen_by_champion",
    "paired_resamples",
    "score_champion",
    "compare_with_champion",
    "decide_promotion",
]


@dataclass(frozen=True)
class PromotionDecision:
    """What the gate decided about a challenger.

    Attributes:
        promoted: Whether the challenger is now the champion.
        forced: Whether promotion was forced by a human.
        reason: One sentence, also stored as a tag.
        metric: The primary metric compared.
        challenger_value: The challenger's value on the holdout.
        champion_value: The previous champion's value on the same holdout (``None`` if none).
        champion_version: The previous champion's version (``None`` if none).
        tolerance: Allowed shortfall.
        paired: Paired bootstrap over members of ``challenger - champion`` on the holdout
            (:func:`models.metrics.paired_bootstrap_difference`: ``difference``, ``low``,
            ``high``, ``p_a_worse``); empty when no champion was scored.
    """

    promoted: bool
    forced: bool
    reason: str
    metric: str
    challenger_value: float
    champion_value: float | None
    champion_version: str | None
    tolerance: float
    paired: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Comparison:
    """The challenger next to the champion it may replace.

    Attributes:
        rival: The champion's version compared against; ``None`` when there is no champion
            (or the challenger already holds the alias).
        rival_validated: Whether the rival's scores were validated (true without a rival).
        judged: The challenger as judged: itself, or restricted to the snapshots unseen by the
            rival; ``None`` when no such snapshot with both outcomes is left.
        challenger_value: The challenger's primary metric on the rows it is judged on.
        champion_value: The rival's primary metric on the same rows (``None`` when not scored).
        paired: The paired bootstrap of challenger minus rival (empty when not scored).
    """

    rival: str | None
    rival_validated: bool
    judged: TrainResult | None
    challenger_value: float
    champion_value: float | None = None
    paired: dict[str, float] = field(default_factory=dict)


def evaluation_dates(result: TrainResult) -> tuple[pd.Timestamp, ...]:
    """The dates the scores were judged on: the evaluation rows' dates, else the holdout's."""
    held = result.holdout_data
    if len(held):
        return tuple(pd.Timestamp(d) for d in sorted(held["as_of"].unique()))
    return tuple(result.split.holdout_dates)


def feature_columns_of(model) -> tuple[str, ...]:
    """The feature columns a fitted model was trained on, in its order.

    Raises:
        ModelNotFound: The model does not record them.
    """
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        raise ModelNotFound("the registered model does not record its feature columns")
    return tuple(str(c) for c in names)


def paired_resamples(result: TrainResult, champion_scores: np.ndarray) -> dict[str, float]:
    """Paired bootstrap over members of challenger minus champion on the primary metric
    (empty when the metric has no bootstrap or ``bootstrap_samples`` is 0)."""
    config, held = result.config, result.holdout_data
    metric = config.primary_metric
    if metric not in BOOTSTRAP_METRICS or config.bootstrap_samples == 0 or not len(held):
        return {}
    return paired_bootstrap_difference(
        held["label"].to_numpy(),
        held["score"].to_numpy(dtype=np.float64),
        champion_scores,
        groups=held["member_id"].to_numpy(),
        metric=metric,
        dates=held["as_of"].to_numpy(),
        k=lambda n: capacity_k(n, config.capacity_share),
        n_boot=config.bootstrap_samples,
        level=config.interval_level,
        seed=config.seed,
    )


def unseen_by_champion(result: TrainResult, champion_train_dates) -> TrainResult | None:
    """The challenger judged only on the snapshots after the champion's newest training one.

    A champion must not be scored on outcomes it learned from: it would look better than it
    is. Without a holdout (validation by the backtest alone) the challenger's evaluation rows
    are labelled snapshots an older champion may have trained on. Returns ``result`` itself
    when every row is new to the champion, a copy restricted to the new rows (the challenger's
    figure recomputed from its stored out-of-time scores), or ``None`` when no row with both
    outcomes is left.
    """
    held = result.holdout_data
    if champion_train_dates:
        newest = max(pd.Timestamp(d) for d in champion_train_dates)
        held = held[held["as_of"] > newest]
    if held.empty or held["label"].nunique() < 2:
        return None
    if len(held) == len(result.holdout_data):
        return result
    held = held.reset_index(drop=True)
    figures = evaluate_rows(held, result.config)
    metrics = {**result.metrics, **{f"holdout.{k}": v for k, v in figures.items()}}
    return replace(result, holdout_data=held, metrics=metrics)


def score_champion(result: TrainResult, champion) -> tuple[float, dict[str, float]]:
    """The champion's primary metric on the challenger's holdout, and the paired bootstrap."""
    columns = feature_columns_of(champion)
    value = float(evaluate_on_holdout(champion, columns, result)[result.primary_metric])
    x = align_features(result.holdout_data, list(columns))
    return value, paired_resamples(result, np.asarray(champion.predict_proba(x))[:, 1])


def compare_with_champion(
    result: TrainResult,
    rival: str | None,
    *,
    rival_validated: bool = True,
    champion=None,
    champion_train_dates: Sequence = (),
) -> Comparison:
    """Judge the challenger ``result`` against the champion version ``rival``.

    Args:
        result: The challenger.
        rival: The champion's version, ``None`` when there is none to compare with.
        rival_validated: Whether the champion's scores were validated.
        champion: The champion's fitted model; ``None`` when it is not to be scored (no rival,
            or an unvalidated challenger, which is not compared on figures).
        champion_train_dates: The snapshot dates the champion trained on.
    """
    value = float(result.metrics.get(f"holdout.{result.primary_metric}", np.nan))
    if rival is None or champion is None:
        return Comparison(rival, rival_validated, result, value)
    judged = unseen_by_champion(result, champion_train_dates)
    if judged is None:
        return Comparison(rival, rival_validated, None, value)
    champion_value, paired = score_champion(judged, champion)
    return Comparison(rival, rival_validated, judged, judged.holdout_value, champion_value, paired)


def _resamples_text(paired: Mapping[str, float], level: float) -> str:
    """``; worse in 83 % of member resamples, difference 90 % interval [-0.04, 0.01]``."""
    p = paired.get("p_a_worse", float("nan"))
    if p is None or np.isnan(p):
        return "; no paired bootstrap" if not paired else "; paired bootstrap undefined"
    return (
        f"; worse in {100 * p:.0f} % of member resamples, difference {100 * level:g} % "
        f"interval [{paired['low']:.4f}, {paired['high']:.4f}]"
    )


def _decide(
    result: TrainResult,
    challenger_value: float,
    champion: tuple[str | None, float | None, bool],
    paired: Mapping[str, float],
) -> tuple[bool, str]:
    """Whether the challenger replaces the champion (see the module's rules), and why.

    Args:
        champion: ``(version, value on the challenger's holdout, validated)``; version ``None``
            when there is no champion.
    """
    version, value, validated = champion
    metric, tol = result.primary_metric, float(result.config.promotion_tolerance)
    if version is None:
        if result.validated:
            return True, f"first champion ({metric} {challenger_value:.4f})"
        return True, f"first champion ({result.method}, not validated)"
    if not result.validated:
        if not validated:
            return True, (
                f"challenger {result.method} is not validated and neither is champion "
                f"v{version}: the newer ranking replaces it"
            )
        return False, (
            f"refused: challenger {result.method} is not validated (no labelled snapshot to "
            f"judge it by) and champion v{version} is"
        )
    holdout = ",".join(f"{d:%Y-%m-%d}" for d in evaluation_dates(result))
    compared = (
        f"challenger {metric} {challenger_value:.4f} vs champion v{version} {value:.4f} on "
        f"holdout {holdout} (tolerance {tol:g})"
    )
    if is_better(metric, challenger_value, value, tol):
        return True, compared
    resamples = _resamples_text(paired, result.config.interval_level)
    p = paired.get("p_a_worse", float("nan"))
    if not np.isnan(p) and p <= 0.5:
        return True, f"{compared}: worse on the point estimate but not in most resamples" + (
            resamples
        )
    return False, (
        f"refused: challenger {metric} {challenger_value:.4f} is worse than champion "
        f"v{version} {value:.4f} on holdout {holdout} (tolerance {tol:g}){resamples}"
    )


def decide_promotion(
    result: TrainResult,
    comparison: Comparison,
    champion_version: str | None,
    *,
    force_promote: bool = False,
    forced_by: str = "unknown",
) -> PromotionDecision:
    """The gate's decision on ``result`` given its :class:`Comparison` with the champion.

    Args:
        result: The challenger.
        comparison: What :func:`compare_with_champion` found.
        champion_version: The version holding the champion alias before the decision (``None``
            when none does).
        force_promote: Promote even when the rules refuse (recorded as forced).
        forced_by: Who forces it (named in the reason).
    """
    rival = comparison.rival
    if comparison.judged is None:
        promoted, reason = True, (
            f"no outcome unseen by champion v{rival} to compare on (it trained on every "
            "snapshot this challenger is judged on): the newer version is promoted"
        )
    else:
        promoted, reason = _decide(
            comparison.judged,
            comparison.challenger_value,
            (rival, comparison.champion_value, comparison.rival_validated),
            comparison.paired,
        )
    forced = False
    if not promoted and force_promote:
        promoted, forced = True, True
        reason = f"forced by {forced_by} despite: {reason}"
    return PromotionDecision(
        promoted=promoted,
        forced=forced,
        reason=reason,
        metric=result.primary_metric,
        challenger_value=comparison.challenger_value,
        champion_value=comparison.champion_value,
        champion_version=champion_version,
        tolerance=float(result.config.promotion_tolerance),
        paired=dict(comparison.paired),
    )
