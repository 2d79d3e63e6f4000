"""Training and registering targets end to end: load the data, build the frames, train (a
model, else a ranking rule), log and register the version, gate its promotion.

The orchestration only: no MLflow here. Logging, aliases and loading are
:mod:`models.registry` (the one module calling MLflow); the promotion decision is
:mod:`models.gate`; training one target is :mod:`models.train` and :mod:`models.fallback`.
The CLI (``corecast train``) and the flows' ``train-and-gate`` task both call
:func:`train_and_register`, so a target that gets neither a model nor a rule is reported (or
raised) in one place: :func:`untrained_outcome`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from threadpoolctl import threadpool_limits

from features.errors import InsufficientDataError, TargetUnavailable
from features.tables import Tables
from models.config import TARGETS, TrainConfig
from models.gate import PromotionDecision
from models.registry import gate_promotion, log_training_run, model_name
from models.train import TrainResult

__all__ = [
    "TrainOutcome",
    "register_result",
    "train_and_register",
    "untrained_outcome",
]


@dataclass(frozen=True, eq=False)
class TrainOutcome:
    """Result of training and registering one target.

    Attributes:
        target: Target name.
        status: ``"promoted"``, ``"refused"`` (registered as challenger only),
            ``"unavailable"`` (the data cannot express the target) or ``"insufficient_data"``
            (too little history or too few positives); nothing is trained in the last two.
        message: Human-readable summary.
        run_id: MLflow run id.
        model_name: Registered model name.
        version: New model version.
        decision: The promotion decision.
        metrics: The run's metrics.
        result: The full training result (``None`` when unavailable).
        method: What produces the scores: ``model`` or ``rule:<name>``; ``None`` when nothing
            was trained.
        validated: Whether the scores were judged on labelled snapshots.
        notes: Plain sentences on what was done and why (e.g. why a rule stands in).
    """

    target: str
    status: str
    message: str
    run_id: str | None = None
    model_name: str | None = None
    version: str | None = None
    decision: PromotionDecision | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    result: TrainResult | None = None
    method: str | None = None
    validated: bool = False
    notes: tuple[str, ...] = ()


def untrained_outcome(target: str, exc: TargetUnavailable | InsufficientDataError) -> TrainOutcome:
    """The outcome of a target that got neither a model nor a rule: status ``"unavailable"``
    (the data cannot express it) or ``"insufficient_data"`` (nobody can even be ranked)."""
    status = "unavailable" if isinstance(exc, TargetUnavailable) else "insufficient_data"
    return TrainOutcome(target=target, status=status, message=str(exc))


def register_result(
    result: TrainResult,
    *,
    force_promote: bool = False,
    strict: bool = False,
    actor: str | None = None,
) -> TrainOutcome:
    """Log, register and gate one training result."""
    with threadpool_limits(limits=result.config.threads):
        run_id, version = log_training_run(result, actor=actor)
        decision = gate_promotion(
            result, run_id, version, force_promote=force_promote, strict=strict, actor=actor
        )
    status = "promoted" if decision.promoted else "refused"
    return TrainOutcome(
        target=result.target,
        status=status,
        message=f"{model_name(result.target)} v{version} ({result.candidate}): {decision.reason}",
        run_id=run_id,
        model_name=model_name(result.target),
        version=version,
        decision=decision,
        metrics=dict(result.metrics),
        result=result,
        method=result.method,
        validated=bool(result.validated),
        notes=tuple(result.notes),
    )


def train_and_register(
    source: str | os.PathLike | Tables,
    targets: Sequence[str] | None = None,
    *,
    labels=None,
    frame=None,
    features=None,
    train_configs: Mapping[str, TrainConfig] | None = None,
    force_promote: bool = False,
    strict: bool = False,
    actor: str | None = None,
    required: bool | None = None,
    oracle=None,
) -> list[TrainOutcome]:
    """Train (a model, else a ranking rule), log, register and gate several targets.

    Each target gets a learned model when the data supports one and a transparent ranking rule
    otherwise (:func:`models.fallback.train_or_fallback`); the outcome says which
    (``method``, ``validated``, ``notes``).

    Args:
        source: A data source (folder or URL understood by ``features.contract.load_tables``)
            or already loaded tables.
        targets: Targets to train; ``None`` = every target.
        labels: ``LabelConfig`` (default settings when ``None``).
        frame: ``FrameConfig``; its snapshot count is raised per target when the backtest needs
            more; ``None`` = monthly snapshots over up to two years
            (:func:`models.train.default_frame_config`).
        features: ``FeatureConfig`` (default when ``None``).
        train_configs: ``{target: TrainConfig}``; missing targets use defaults.
        force_promote: Promote even when the gate refuses (recorded as forced).
        strict: Raise :class:`~features.errors.PromotionRefused` when the gate refuses.
        actor: Who is training (defaults to the OS user), for the audit trail.
        required: Whether a target that gets neither a model nor a rule raises
            (:class:`~features.errors.TargetUnavailable` when the data cannot express it,
            :class:`~features.errors.InsufficientDataError` when nobody can even be ranked);
            when false it is reported with status ``"unavailable"`` /
            ``"insufficient_data"`` (:func:`untrained_outcome`) and the others still train.
            Default: true when ``targets`` are named.
        oracle: The data's true probabilities (:class:`models.train.Oracle`), when known;
            the holdout is then also scored with them.

    Returns:
        One :class:`TrainOutcome` per target, in order.
    """
    from features.contract import load_tables

    wanted = _checked_targets(targets)
    required = targets is not None if required is None else required
    tables = source if isinstance(source, Tables) else load_tables(source)
    plan = _plan(tables, wanted, labels, frame, features, train_configs)
    gate = {"force_promote": force_promote, "strict": strict, "actor": actor}
    return [_outcome(plan, target, oracle, required, gate) for target in wanted]


def _checked_targets(targets: Sequence[str] | None) -> tuple[str, ...]:
    """The targets asked for (every target for ``None``), each known (else ``ConfigError``)."""
    wanted = TARGETS if targets is None else tuple(targets)
    for target in wanted:
        model_name(target)
    return wanted


@dataclass(frozen=True, eq=False)
class _Plan:
    """The settings and training frames of every target to train.

    ``built`` holds each target's frame until it is trained (then dropped, freeing it);
    ``errors`` why a target's frame could not be built.
    """

    tables: Tables
    labels: object
    features: object
    configs: dict[str, TrainConfig]
    frames: dict[str, object]
    built: dict[str, object] = field(default_factory=dict)
    errors: dict[str, Exception] = field(default_factory=dict)


def _plan(tables: Tables, wanted, labels, frame, features, train_configs) -> _Plan:
    """Default settings where none are given; every frame built in one feature pass."""
    from features.feature_config import FeatureConfig
    from features.labels import LabelConfig
    from models.train import build_target_frames, default_frame_config

    labels = labels or LabelConfig()
    features = features or FeatureConfig()
    configs = {
        target: (train_configs or {}).get(target) or TrainConfig(target=target)
        for target in wanted
    }
    target_frames = {
        target: default_frame_config(target, labels, configs[target], base=frame, tables=tables)
        for target in wanted
    }
    # One feature pass per snapshot date serves every target's frame.
    built, errors = build_target_frames(tables, target_frames, labels, features)
    return _Plan(tables, labels, features, configs, target_frames, built, errors)


def _outcome(plan: _Plan, target: str, oracle, required: bool, gate: dict) -> TrainOutcome:
    """Train, log, register and gate ``target``; a target that gets neither a model nor a rule
    raises when ``required``, else is reported (:func:`untrained_outcome`)."""
    try:
        result = _train_one(plan, target, oracle)
    except (TargetUnavailable, InsufficientDataError) as exc:
        if required:
            raise
        return untrained_outcome(target, exc)
    return register_result(result, **gate)


def _train_one(plan: _Plan, target: str, oracle) -> TrainResult:
    """A model of ``target``, else its best rule (see :func:`models.fallback.train_or_fallback`;
    readiness without any spell of the core role, or without a roles table, is ranked by an
    unvalidated rule whose notes say so).

    Raises:
        InsufficientDataError: Not even a rule can rank anyone.
    """
    from models.fallback import train_or_fallback

    return train_or_fallback(
        plan.tables, target, plan.labels, plan.frames[target], plan.features,
        plan.configs[target], oracle=oracle,
        training_frame=plan.built.pop(target, None), frame_error=plan.errors.get(target),
    )
