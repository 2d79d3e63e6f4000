"""Typed training configuration and its flattening into MLflow parameters."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd

from features.errors import ConfigError

__all__ = [
    "TARGETS",
    "CANDIDATES",
    "CALIBRATION_METHODS",
    "VALIDATION_MODES",
    "DEFAULT_LOGREG_C",
    "DEFAULT_CANDIDATES",
    "TrainConfig",
    "flatten_params",
    "to_plain",
]

#: The two prediction targets.
TARGETS = ("readiness", "disengagement")
#: Model families the factories know.
CANDIDATES = ("logreg", "hgb")
#: Inverse regularisation strength of the logistic regression per target (``logreg_c=None``).
#: Chosen on the simulated community's backtest: readiness gains ROC-AUC and PR-AUC at 0.003 (its
#: rare positives and collinear engagement signals reward strong shrinkage); disengagement keeps
#: 0.05 (precision@k drops at 0.003).
DEFAULT_LOGREG_C = {"readiness": 0.003, "disengagement": 0.05}
#: Candidates compared per target (``candidates=None``), the preferred one first: a later one
#: replaces it only when better by ``selection_margin`` on the backtest. Chosen on the simulated
#: community: disengagement ranks better with the trees (ROC-AUC about 0.006-0.008 x oracle
#: higher on the four newest snapshots and on twelve backtest origins) and, with the calendar
#: features, is as well calibrated. Readiness keeps the logistic regression first (the trees
#: did not rank its rare positives better, and it trains several times faster).
DEFAULT_CANDIDATES = {
    "readiness": ("logreg", "hgb"),
    "disengagement": ("hgb", "logreg"),
}
#: How a learned model is judged (``TrainConfig.validation``).
VALIDATION_MODES = ("auto", "holdout", "backtest")
#: Calibration choices; ``auto`` picks isotonic, sigmoid or none on held-out predictions.
CALIBRATION_METHODS = ("auto", "isotonic", "sigmoid", "none")


@dataclass(frozen=True)
class TrainConfig:
    """How one target is trained, evaluated and gated.

    Attributes:
        target: ``"readiness"`` or ``"disengagement"``.
        candidates: Model families to compare in the backtest (``"logreg"``, ``"hgb"``), the
            preferred one first (``None`` = the target's default, :data:`DEFAULT_CANDIDATES`).
        backtest_origins: Rolling-origin backtest folds wanted (fewer are used when the history
            is too short for that many; at least one is required).
        holdout_snapshots: Newest fully observed snapshots kept aside for the final evaluation
            (``None`` = automatic: as few as hold ``pooled_positives`` positive labels, at most
            ``max_holdout_snapshots``; a community with a handful of promotions a year needs
            several snapshots pooled before its holdout says anything).
        max_holdout_snapshots: The most snapshots an automatic holdout pools.
        pooled_positives: Positive labels an automatic holdout, and the candidate selection's
            backtest, pool snapshots until they hold (more origins are pooled into the
            selection, up to ``calibration_origins``, when the newest ``backtest_origins``
            hold fewer).
        rules: Transparent ranking rules that compete with the models in the backtest and
            stand in when no model can be trained or validated (``None`` = the target's rules,
            :data:`models.rules.RULES`; ``()`` = none in the backtest, the fallback still uses
            the target's rules). A rule replaces the models only when better by
            ``selection_margin``.
        validation: How a learned model is judged: ``"holdout"`` (the newest snapshots kept
            aside, never trained on before the final evaluation), ``"backtest"`` (no holdout:
            the rolling-origin backtest is the evaluation and the final model learns from every
            labelled snapshot) or ``"auto"`` (a holdout when the history allows one with
            ``min_holdout_positives`` positives, else the backtest alone; a holdout costs a
            whole label window of history, which a short history or a two-year promotion
            window cannot spare).
        bootstrap_samples: Member resamples behind the confidence intervals of the holdout
            metrics (0 = no intervals).
        interval_level: Coverage of those intervals.
        min_train_snapshots: Snapshots each backtest fold must train on.
        min_train_positives: Positive labels the pre-holdout training data must contain.
        min_holdout_positives: Positive labels the holdout must contain.
        calibration: ``"auto"`` (isotonic, sigmoid or the model's own probabilities, whichever
            has the lowest cross-validated log loss on out-of-time predictions),
            ``"isotonic"``, ``"sigmoid"`` or ``"none"``.
        calibration_origins: Backtest origins whose out-of-time predictions of the chosen model
            are pooled to fit the calibration (the newest ``backtest_origins`` plus older ones;
            twelve monthly origins span a seasonal cycle, so the map is not biased towards the
            season of the newest months). Fewer are used when history is short.
        calibration_stride: Every how many of the older calibration origins the winner is
            refitted (``None`` = automatic: every origin when the training data fits under the
            calibration row cap, so small communities pool all twelve months; every third
            otherwise, so a large community still spans the seasonal cycle - months 0, 1, 2, 5,
            8 and 11 - with half the fits, each of which sees a capped but large sample).
        calibration_folds: Member-grouped folds used by ``"auto"`` to compare the methods.
        capacity_share: Share of eligible members the team can act on (k of precision@k).
        chapter_top: Members each chapter puts forward (per-chapter precision).
        ece_bins: Bins of the expected calibration error.
        ece_strategy: ``"quantile"`` (equal mass) or ``"uniform"`` (equal width).
        primary_metric: Metric that picks the candidate and gates promotion.
        promotion_tolerance: Allowed shortfall of a challenger against the champion on the primary
            metric (in the metric's units; 0 means "at least as good").
        seed: Random seed for models, permutation importance and sampling.
        class_weight: ``"none"`` (plain likelihood) or ``"balanced"`` (positives up-weighted to
            the negatives' total weight). Imbalance is otherwise handled by calibration, a
            ranking primary metric (PR-AUC) and minimum-positive checks; on the simulated
            community up-weighting lowered ranking quality.
        selection_confidence: A later candidate replaces the earlier choice only when it is
            better in at least this share of member resamples of the selection backtest (a
            paired bootstrap; 0 = the mean alone decides). With a handful of positives a mean
            difference is mostly noise, and the preferred, simpler candidate should stay.
        linear_first_below_members: Below this many distinct members in the training frame,
            the logistic regression is the preferred candidate of every target
            (:meth:`for_members`; 0 keeps ``candidates`` as listed). Trees need many members to
            learn more than a linear ranking of counts does; in a small community their
            variance costs more than their flexibility brings (``benchmarks/results/realdata.md``
            has the figures on a real community).
        selection_margin: How much better (in the primary metric's units, mean over the
            backtest origins) a candidate must be than the one chosen among the candidates
            listed before it to replace it. Candidates are listed preferred first, so another
            model must earn its place. 0 picks the plain best.
        logreg_c: Inverse L2 regularisation strength of the logistic regression (``None`` = the
            target's default, :data:`DEFAULT_LOGREG_C`: readiness is rare and its signals are
            strongly collinear, so it is regularised harder).
        logreg_max_iter: Solver iterations of the logistic regression.
        hgb_learning_rate: Learning rate of the gradient boosting.
        hgb_max_iter: Boosting iterations (100 at learning rate 0.1 ranked as well as 200 at
            0.05 on the simulated community, in half the time).
        hgb_max_leaf_nodes: Leaves per tree.
        hgb_max_depth: Depth limit of the trees (``None`` = only the leaf limit).
        hgb_min_samples_leaf: Minimum rows per leaf. Shallow, heavily regularised trees did best
            on the simulated community, where positives are few and noisy.
        hgb_max_features: Share of features considered at each split.
        hgb_l2_regularization: L2 penalty on leaf values.
        importance_repeats: Shuffles per feature for permutation importance.
        importance_max_rows: Holdout rows sampled for permutation importance.
        threads: Native threads (OpenMP / BLAS) used while training; ``None`` = all cores.
            Default 1: a batch job usually shares its machine, and with a core taken by other
            work the boosting's OpenMP threads wait on each other at every split (training
            measured several times slower with two threads than with one on a busy 2-core
            machine). Use ``None`` on a dedicated machine.
        max_fit_rows: Cap on the rows one model fit sees (``None`` = no cap). Above it the
            negatives (label 0) are subsampled at one rate, stratified by snapshot (the same
            share of each snapshot's negatives, chosen by a seeded hash of member and date, so
            a member-snapshot is in or out in every fold alike); every positive is kept and the
            kept negatives are weighted by their snapshot's inverse sampling rate, so the fitted
            probabilities stay on the population's scale. Out-of-time scores, calibration and
            the holdout evaluation always use every row. Communities below the cap (the
            20,000-member demo community has about 74,000 training rows) train exactly as
            without it.
        calibration_fit_rows: Fits of the extra calibration origins (beyond the selection
            backtest) are capped at this many rows by the same rule (``None`` = ``max_fit_rows``);
            they only provide out-of-time scores for the calibration map.
    """

    target: str = "disengagement"
    candidates: tuple[str, ...] | None = None
    backtest_origins: int = 3
    holdout_snapshots: int | None = None
    max_holdout_snapshots: int = 6
    pooled_positives: int = 20
    rules: tuple[str, ...] | None = None
    validation: str = "auto"
    bootstrap_samples: int = 200
    interval_level: float = 0.9
    min_train_snapshots: int = 2
    min_train_positives: int = 20
    min_holdout_positives: int = 5
    calibration: str = "auto"
    calibration_origins: int = 12
    calibration_stride: int | None = None
    calibration_folds: int = 5
    capacity_share: float = 0.01
    chapter_top: int = 3
    ece_bins: int = 10
    ece_strategy: str = "quantile"
    primary_metric: str = "pr_auc"
    promotion_tolerance: float = 0.0
    seed: int = 0
    class_weight: str = "none"
    selection_margin: float = 0.01
    selection_confidence: float = 0.9
    linear_first_below_members: int = 5_000
    logreg_c: float | None = None
    logreg_max_iter: int = 500
    hgb_learning_rate: float = 0.1
    hgb_max_iter: int = 100
    hgb_max_leaf_nodes: int = 15
    hgb_max_depth: int | None = 3
    hgb_min_samples_leaf: int = 300
    hgb_max_features: float = 0.5
    hgb_l2_regularization: float = 10.0
    importance_repeats: int = 3
    importance_max_rows: int = 10_000
    threads: int | None = 1
    max_fit_rows: int | None = 75_000
    calibration_fit_rows: int | None = 75_000

    def __post_init__(self) -> None:
        self._resolve_candidates()
        self._check_rules()
        self._check_choices()
        self._check_counts()
        self._check_fitting()
        self._check_selection_and_gate()

    def _resolve_candidates(self) -> None:
        """Check ``target``; resolve ``candidates`` (``None``: the target's default) and check
        them."""
        if self.target not in TARGETS:
            raise ConfigError(f"target must be one of {TARGETS}, got {self.target!r}")
        if self.candidates is None:
            object.__setattr__(self, "candidates", DEFAULT_CANDIDATES[self.target])
        object.__setattr__(self, "candidates", tuple(self.candidates))
        unknown = [c for c in self.candidates if c not in CANDIDATES]
        if not self.candidates or unknown:
            raise ConfigError(
                f"candidates must be a non-empty subset of {CANDIDATES}, got {self.candidates!r}"
            )

    def _check_choices(self) -> None:
        """The settings that name one of a few choices: calibration, primary metric,
        validation, class weight and ECE strategy."""
        from models.metrics import METRIC_DIRECTIONS

        if self.calibration not in CALIBRATION_METHODS:
            raise ConfigError(
                f"calibration must be one of {CALIBRATION_METHODS}, got {self.calibration!r}"
            )
        if self.primary_metric not in METRIC_DIRECTIONS:
            raise ConfigError(
                f"primary_metric must be one of {sorted(METRIC_DIRECTIONS)}, "
                f"got {self.primary_metric!r}"
            )
        if self.validation not in VALIDATION_MODES:
            raise ConfigError(
                f"validation must be one of {VALIDATION_MODES}, got {self.validation!r}"
            )
        if self.class_weight not in ("none", "balanced"):
            raise ConfigError(f"class_weight must be none or balanced, got {self.class_weight!r}")
        if self.ece_strategy not in ("quantile", "uniform"):
            raise ConfigError(f"ece_strategy must be quantile or uniform, got {self.ece_strategy}")

    def _check_counts(self) -> None:
        """The capacity share, and the counts of snapshots, positives, folds, origins, bins and
        rows that must be positive whole numbers."""
        if not 0 < self.capacity_share <= 1:
            raise ConfigError(f"capacity_share must be in (0, 1], got {self.capacity_share}")
        positive_ints = {
            "backtest_origins": self.backtest_origins,
            "holdout_snapshots": 1 if self.holdout_snapshots is None else self.holdout_snapshots,
            "max_holdout_snapshots": self.max_holdout_snapshots,
            "pooled_positives": self.pooled_positives,
            "min_train_snapshots": self.min_train_snapshots,
            "min_train_positives": self.min_train_positives,
            "min_holdout_positives": self.min_holdout_positives,
            "calibration_folds": self.calibration_folds,
            "calibration_origins": self.calibration_origins,
            "chapter_top": self.chapter_top,
            "ece_bins": self.ece_bins,
            "importance_repeats": self.importance_repeats,
            "importance_max_rows": self.importance_max_rows,
        }
        for name, value in positive_ints.items():
            if int(value) != value or value < 1:
                raise ConfigError(f"{name} must be a positive whole number, got {value!r}")

    def _check_fitting(self) -> None:
        """How models are fitted: ``logreg_c`` (``None``: the target's default), the selection
        margin, the calibration stride, threads and the row caps of the fits."""
        if self.logreg_c is None:
            object.__setattr__(self, "logreg_c", DEFAULT_LOGREG_C[self.target])
        if not self.logreg_c > 0:
            raise ConfigError(f"logreg_c must be > 0, got {self.logreg_c!r}")
        if not self.selection_margin >= 0:
            raise ConfigError(f"selection_margin must be >= 0, got {self.selection_margin!r}")
        if self.calibration_stride is not None and (
            int(self.calibration_stride) != self.calibration_stride or self.calibration_stride < 1
        ):
            raise ConfigError(
                "calibration_stride must be None (automatic) or a positive whole number, got "
                f"{self.calibration_stride!r}"
            )
        if self.threads is not None and (int(self.threads) != self.threads or self.threads < 1):
            raise ConfigError(
                f"threads must be None or a positive whole number, got {self.threads}"
            )
        for name in ("max_fit_rows", "calibration_fit_rows"):
            value = getattr(self, name)
            if value is not None and (int(value) != value or value < 1000):
                raise ConfigError(f"{name} must be None or a whole number >= 1000, got {value!r}")

    def _check_selection_and_gate(self) -> None:
        """Calibration folds, the promotion tolerance, the bootstrap and its interval level, and
        how candidates are selected (linear first below a size, the selection confidence)."""
        if self.calibration_folds < 2:
            raise ConfigError("calibration_folds must be at least 2")
        if self.promotion_tolerance < 0:
            raise ConfigError(f"promotion_tolerance must be >= 0, got {self.promotion_tolerance}")
        if int(self.bootstrap_samples) != self.bootstrap_samples or self.bootstrap_samples < 0:
            raise ConfigError(
                f"bootstrap_samples must be a whole number >= 0, got {self.bootstrap_samples!r}"
            )
        if not isinstance(self.linear_first_below_members, int) or (
            self.linear_first_below_members < 0
        ):
            raise ConfigError(
                "linear_first_below_members must be a whole number >= 0, got "
                f"{self.linear_first_below_members!r}"
            )
        if not 0 <= self.selection_confidence < 1:
            raise ConfigError(
                f"selection_confidence must be in [0, 1), got {self.selection_confidence!r}"
            )
        if not 0 < self.interval_level < 1:
            raise ConfigError(f"interval_level must be in (0, 1), got {self.interval_level!r}")

    def _check_rules(self) -> None:
        """Resolve ``rules`` to candidate names (``rule:<name>``) and check them."""
        from models.rules import RULE_PREFIX, rule_named, rules_for

        if self.rules is None:
            names = tuple(r.candidate for r in rules_for(self.target))
        else:
            names = tuple(
                n if str(n).startswith(RULE_PREFIX) else f"{RULE_PREFIX}{n}" for n in self.rules
            )
            for name in names:
                rule_named(self.target, name)
        object.__setattr__(self, "rules", names)

    def for_members(self, members: int) -> TrainConfig:
        """These settings for a training frame of ``members`` distinct members.

        Below ``linear_first_below_members`` the logistic regression (when it is a candidate)
        becomes the preferred one; the others keep their order and may still replace it when
        clearly better.
        """
        names = self.candidates
        if members >= self.linear_first_below_members or "logreg" not in names[1:]:
            return self
        ordered = ("logreg", *(name for name in names if name != "logreg"))
        return dataclasses.replace(self, candidates=ordered)

    @property
    def all_candidates(self) -> tuple[str, ...]:
        """The models, then the rules: everything the backtest compares, preferred first."""
        return (*self.candidates, *self.rules)

    def to_params(self, prefix: str = "train") -> dict[str, str]:
        """Flatten into ``{"train.<field>": str}`` for MLflow parameters."""
        return flatten_params(self, prefix)


def _plain(value: Any) -> Any:
    """Turn a config value into plain, JSON-friendly data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, pd.Timestamp | datetime | date):
        return pd.Timestamp(value).isoformat()
    return value


def flatten_params(config: Any, prefix: str) -> dict[str, str]:
    """Flatten a (possibly nested) frozen dataclass into dotted string parameters.

    Nested dataclasses and mappings become ``prefix.outer.inner``; sequences are joined with
    commas. ``None`` becomes ``"None"``.

    Args:
        config: A dataclass instance (or a mapping).
        prefix: The leading key, e.g. ``"train"`` or ``"labels"``.
    """
    out: dict[str, str] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            if not value:
                out[key] = "{}"
            for k, v in value.items():
                walk(v, f"{key}.{k}")
        elif isinstance(value, list):
            out[key] = ",".join(str(v) for v in value)
        else:
            out[key] = str(value)

    walk(_plain(config), prefix)
    return out


def to_plain(config: Any) -> Any:
    """Return a config (dataclass, mapping, …) as plain JSON-friendly data."""
    return _plain(config)
