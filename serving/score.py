"""Batch scoring: both scores, ranks, segments and reasons for every consenting member, and a
talking point for every ready-now candidate (:mod:`serving.talking_points`).

The scorer takes already loaded models (:class:`models.registry.LoadedModel`) and validated
tables, so it never touches the registry or the file system itself; :func:`write_predictions`
is the only writer.

Who is scored: every member with ``consent`` true who joined before ``as_of``. The readiness
score is given to members eligible for readiness (not holding the core role), the disengagement
score to members eligible for disengagement (active within the window); the other score is NaN.
Both models rebuild features with the exact feature settings they were trained with (the frozen
vocabulary in their metadata), and eligibility follows the label settings they were trained with.

Every prediction says what produced its scores: ``<target>_method`` is ``model`` (a learned
model) or ``rule:<name>`` (a transparent ranking rule, :mod:`models.rules`) and
``<target>_validated`` whether those scores were checked against outcomes (an unvalidated
rule's scores are percentiles within the community, not probabilities). Both come from the
registered version's tags (``corecast.method`` / ``corecast.validated``); versions registered
before those tags are validated models. :func:`empty_score_reasons` says when a score column
would be empty.

:func:`score_members` is the composition of four steps, which the partitioned scorer
(:mod:`pipelines.scale`) runs separately: :func:`build_member_part` (features and eligibility of
a member partition), :func:`score_parts` (scores of all eligible members in one piece, and the
reason plans), :func:`explain_part` (reasons of a partition, the expensive step) and
:func:`finish_scores` (ranks and segments, which need whole chapters).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from features.build import build_features
from features.errors import ConfigError, TargetUnavailable
from features.feature_config import FeatureConfig
from features.frames import align_features
from features.io import write_files_atomic
from features.labels import (
    LabelConfig,
    select_disengagement_eligible,
    select_readiness_eligible,
)
from features.partition import build_features_partitioned, check_partition
from features.tables import Tables, parse_as_of
from models.estimators import CalibratedModel, apply_calibration
from serving.columns import METHOD_COLUMNS, PREDICTION_COLUMNS
from serving.outreach import ACTIONS, OutreachConfig, assign_actions
from serving.reasons import (
    ReasonConfig,
    ReasonPlan,
    explain_scores,
    plan_reasons,
    tree_ensemble,
)
from serving.segments import (
    SegmentConfig,
    assign_segments,
    declined_offer,
    rank_within_chapter,
)
from serving.talking_points import TalkingPointConfig, chapter_phrases, talking_points

__all__ = [
    "ScoringConfig",
    "ScoreResult",
    "MemberPart",
    "RunScores",
    "PREDICTION_COLUMNS",
    "score_members",
    "build_member_part",
    "score_parts",
    "explain_part",
    "finish_scores",
    "check_models",
    "default_as_of",
    "model_label_config",
    "models_with_other_labels",
    "write_predictions",
    "METHOD_COLUMNS",
    "model_method",
    "method_details",
    "empty_score_reasons",
]

_READINESS_SEGMENTS = ("ready-now", "nurture")
_RISK_SEGMENTS = ("ambassador-at-risk", "at-risk")


@dataclass(frozen=True)
class ScoringConfig:
    """Settings of a scoring run.

    Attributes:
        segments: Segment thresholds (chapter capacity, minimum scores).
        reasons: Reason settings (how many, how they are chosen).
        outreach: The control group: the share of flagged members held back this cycle.
        talking_points: Which history chooses what the core role would give a ready-now
            candidate (:mod:`serving.talking_points`).
    """

    segments: SegmentConfig = field(default_factory=SegmentConfig)
    reasons: ReasonConfig = field(default_factory=ReasonConfig)
    outreach: OutreachConfig = field(default_factory=OutreachConfig)
    talking_points: TalkingPointConfig = field(default_factory=TalkingPointConfig)


@dataclass(frozen=True, eq=False)
class ScoreResult:
    """The outcome of :func:`score_members`.

    Attributes:
        predictions: One row per scored member, columns :data:`PREDICTION_COLUMNS`.
        features: Features of every member known at as_of (for the chapter report).
        as_of: The scoring date.
        meta: Model versions, run id, counts — for reports and flow summaries.
    """

    predictions: pd.DataFrame
    features: pd.DataFrame
    as_of: pd.Timestamp
    meta: dict


def default_as_of(tables: Tables) -> pd.Timestamp:
    """The default scoring date: midnight after the last observed timestamp."""
    return tables.last_observed.normalize() + pd.Timedelta(days=1)


def model_method(model) -> tuple[str, bool]:
    """``(method, validated)`` of a loaded model, from its version's tags.

    ``method`` is ``model`` or ``rule:<name>``; versions registered before these tags existed
    (and models without metadata) are learned, validated models.
    """
    tags = (getattr(model, "metadata", None) or {}).get("tags") or {}
    method = str(tags.get("corecast.method") or "model")
    return method, str(tags.get("corecast.validated", "true")).lower() != "false"


def method_details(model) -> dict:
    """What a report says about a loaded model's scores: method, validated, the snapshots it
    was validated on and its holdout ROC-AUC with the bootstrap interval (NaN when unknown)."""
    method, validated = model_method(model)
    metadata = getattr(model, "metadata", None) or {}
    metrics, tags = metadata.get("metrics") or {}, metadata.get("tags") or {}
    snapshots = tags.get("corecast.validation_snapshots", metrics.get("holdout.snapshots", 0))
    nan = float("nan")
    return {
        "method": method,
        "validated": validated,
        "version": str(getattr(model, "version", "")),
        "snapshots": int(float(snapshots or 0)),
        "roc_auc": float(metrics.get("holdout.roc_auc", nan)),
        "roc_auc_low": float(metrics.get("holdout.roc_auc_ci_low", nan)),
        "roc_auc_high": float(metrics.get("holdout.roc_auc_ci_high", nan)),
        "level": float((metadata.get("train") or {}).get("interval_level", 0.9)),
    }


def _feature_config(model) -> FeatureConfig:
    data = (model.metadata or {}).get("features")
    return FeatureConfig.from_dict(data) if data else FeatureConfig()


def models_with_other_labels(models, labels_fingerprint: str | None) -> dict[str, str]:
    """The targets whose model was trained with label settings other than those of
    ``labels_fingerprint`` (:meth:`LabelConfig.fingerprint`), with the settings it was trained
    with, in words; empty without a fingerprint to compare with."""
    if labels_fingerprint is None:
        return {}
    found = {}
    for target, model in models.items():
        if model is None:
            continue
        labels = model_label_config(model)
        if labels.fingerprint() != labels_fingerprint:
            found[target] = labels.describe()
    return found


def model_label_config(model) -> LabelConfig:
    """The label settings a loaded model was trained with (the defaults when it does not say)."""
    data = (model.metadata or {}).get("labels")
    return LabelConfig(**data) if data else LabelConfig()


def _explainer(model):
    """The model the reasons explain: the uncalibrated score a calibrated model wraps.

    Calibration is a monotone map: its what-if changes keep their sign but are flattened by
    isotonic steps, so reasons explain the score underneath.
    """
    inner = getattr(model.model, "estimator", None)
    return inner if hasattr(inner, "predict_proba") else model.model


def _predict(model, x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The model's scores and the scores its reasons explain, from one pass where possible.

    A calibrated model without a calibration map passes its estimator's probability through;
    one with a map applies it to the estimator's decision score, from which gradient-boosted
    trees also give their own probability. Both are then the very numbers separate
    ``predict_proba`` calls would give, at the cost of one.
    """
    if not len(x):
        return np.zeros(0), np.zeros(0)
    explainer = _explainer(model)
    wrapper = model.model
    if explainer is wrapper:
        proba = np.asarray(wrapper.predict_proba(x))[:, 1]
        return proba, proba
    if isinstance(wrapper, CalibratedModel):
        if wrapper.method == "none":
            proba = np.asarray(explainer.predict_proba(x))[:, 1]
            return proba, proba
        trees = tree_ensemble(explainer)
        if trees is not None:
            decision = np.asarray(wrapper.decision_function(x), dtype=np.float64)
            proba = apply_calibration(
                decision, wrapper.method, wrapper.knots_x, wrapper.knots_y, wrapper.slope,
                wrapper.intercept,
            )
            explained = trees._loss.predict_proba(decision.reshape(-1, 1))[:, 1]
            return proba, np.asarray(explained, dtype=np.float64)
    proba = np.asarray(wrapper.predict_proba(x))[:, 1]
    return proba, np.asarray(explainer.predict_proba(x))[:, 1]


def _models(readiness, disengagement) -> dict:
    """The given models by target, readiness first (``None`` when absent)."""
    return {"readiness": readiness, "disengagement": disengagement}


@dataclass(frozen=True, eq=False)
class MemberPart:
    """The features of one member partition and who in it is eligible for each model.

    Attributes:
        as_of: The scoring date.
        features: Features of the partition's members, one frame per distinct feature setting
            (in the order the models ask for them), members-table order.
        feature_keys: Target -> key of the frame in ``features`` its model reads.
        eligible: Target -> eligible, consenting members of the partition (members-table
            order), for the targets with a model.
    """

    as_of: pd.Timestamp
    features: dict[str, pd.DataFrame]
    feature_keys: dict[str, str]
    eligible: dict[str, pd.Index]

    def model_input(self, target: str, model) -> pd.DataFrame:
        """The model's input for the partition's eligible members.

        Features are rounded to float32, the precision of the training frames
        (:func:`features.frames.build_training_frame`), so a member is scored on exactly the
        values a model of that member's history was trained on (a split threshold between a
        value and its float32 rounding cannot send them different ways).
        """
        feats = self.features[self.feature_keys[target]]
        return align_features(feats.loc[self.eligible[target]], model.feature_columns).astype(
            np.float32
        )


@dataclass(frozen=True, eq=False)
class RunScores:
    """The scores of a whole run, before reasons, ranks and segments.

    Attributes:
        scores: Target -> the model's probability per eligible member (scoring order).
        explained: Target -> the score the reasons explain (the uncalibrated score of a
            calibrated model), same index.
        plans: Target -> the run's :class:`ReasonPlan` (typical member and candidates).
    """

    scores: dict[str, pd.Series]
    explained: dict[str, pd.Series]
    plans: dict[str, ReasonPlan]


def build_member_part(
    tables: Tables,
    as_of,
    readiness=None,
    disengagement=None,
    n_parts: int = 1,
    part: int = 0,
) -> MemberPart:
    """Features and eligibility of the members of one partition (all with ``n_parts=1``).

    Each model rebuilds the features with the settings it was trained with (models sharing
    them share one frame). Eligibility follows each model's label settings.

    Args:
        tables: Validated data (read whole: features of one member depend on others).
        as_of: Scoring date.
        readiness: Loaded readiness model, or ``None``.
        disengagement: Loaded disengagement model, or ``None``.
        n_parts: Number of member partitions (:func:`features.partition.partition_of`).
        part: Which partition (0-based).

    Returns:
        The partition's :class:`MemberPart`.
    """
    when = parse_as_of(as_of)
    check_partition(n_parts, part)
    features: dict[str, pd.DataFrame] = {}
    keys: dict[str, str] = {}
    eligible: dict[str, pd.Index] = {}
    for target, model in _models(readiness, disengagement).items():
        if model is None:
            continue
        fcfg = _feature_config(model)
        key = repr(fcfg.to_dict())
        if key not in features:
            features[key] = (
                build_features(tables, when, fcfg)
                if n_parts == 1
                else build_features_partitioned(tables, when, fcfg, n_parts, part)
            )
        labels = model_label_config(model)
        if target == "readiness":
            # a rule may rank readiness before anyone holds the core role
            who = select_readiness_eligible(tables, when, labels, allow_no_spells=True)
        else:
            who = select_disengagement_eligible(tables, when, labels)
        keys[target] = key
        eligible[target] = features[key].index.intersection(who)
    return MemberPart(as_of=when, features=features, feature_keys=keys, eligible=eligible)


def _member_order(tables: Tables, frame):
    """Rows of ``frame`` (a frame or Series on member ids) in members-table order."""
    order = tables.members["member_id"]
    index = pd.Index(order[order.isin(frame.index)], name="member_id")
    return frame.reindex(index)


def score_parts(
    tables: Tables,
    parts: list[MemberPart],
    readiness=None,
    disengagement=None,
    config: ScoringConfig = ScoringConfig(),
) -> RunScores:
    """Score the eligible members of all partitions together and fix the reason plans.

    The models see every eligible member in one matrix, in members-table order, exactly as
    on one process: a score never depends on how members were partitioned (linear algebra
    libraries may round a row differently depending on its place in a block).

    Args:
        tables: The validated data (for the members-table order).
        parts: Every partition of the run.
        readiness: Loaded readiness model, or ``None``.
        disengagement: Loaded disengagement model, or ``None``.
        config: Reason settings (in ``config.reasons``).

    Returns:
        Scores, explained scores and reason plans of the targets with a model.
    """
    scores, explained, plans = {}, {}, {}
    for target, model in _models(readiness, disengagement).items():
        if model is None:
            continue
        inputs = [p.model_input(target, model) for p in parts]
        x = inputs[0] if len(inputs) == 1 else _member_order(tables, pd.concat(inputs))
        # one OpenMP thread (tree ensembles): on a shared machine a busy core holds every
        # parallel region back; scores do not depend on the thread count
        with threadpool_limits(limits=1, user_api="openmp"):
            proba, base = _predict(model, x)
        scores[target] = pd.Series(proba, index=x.index, dtype=float)
        explained[target] = pd.Series(base, index=x.index, dtype=float)
        plans[target] = plan_reasons(_explainer(model), x, config.reasons, base)
    return RunScores(scores=scores, explained=explained, plans=plans)


def explain_part(
    part: MemberPart,
    run: RunScores,
    readiness=None,
    disengagement=None,
    config: ScoringConfig = ScoringConfig(),
) -> dict[str, pd.Series]:
    """The reasons (sentences joined by "; ") of every scored member of one partition.

    Args:
        part: The partition (:func:`build_member_part`).
        run: The run's scores and reason plans (:func:`score_parts`).
        readiness: Loaded readiness model, or ``None``.
        disengagement: Loaded disengagement model, or ``None``.
        config: Reason settings (in ``config.reasons``).

    Returns:
        ``{target: reasons}`` on the eligible members of the partition.
    """
    out = {}
    for target, model in _models(readiness, disengagement).items():
        if model is None:
            continue
        x = part.model_input(target, model)
        base = run.explained[target].reindex(x.index).to_numpy(dtype=float)
        feats = part.features[part.feature_keys[target]].loc[x.index]
        said = replace(config.reasons, core_role=model_label_config(model).core_role)
        reasons = explain_scores(
            _explainer(model), x, feats, said, scores=base, plan=run.plans[target]
        )
        out[target] = reasons["reasons"]
    return out


@dataclass(frozen=True)
class _RunStamp:
    """When, and as which run, a scoring run's predictions are made.

    Attributes:
        as_of: The scoring date.
        run_id: Identifier of the run.
        scored_at: When the run scored (UTC, tz-naive, whole seconds).
    """

    as_of: pd.Timestamp
    run_id: str
    scored_at: pd.Timestamp


def finish_scores(
    tables: Tables,
    parts: list[MemberPart],
    run: RunScores,
    reasons: list[dict[str, pd.Series]],
    readiness=None,
    disengagement=None,
    config: ScoringConfig = ScoringConfig(),
    *,
    run_id: str | None = None,
) -> ScoreResult:
    """Join the partitions and add what needs whole chapters: ranks, segments, chosen reasons
    and the talking points of the ready-now candidates.

    Args:
        tables: The validated data (members, roles).
        parts: Every partition of the run (:func:`build_member_part`).
        run: The run's scores (:func:`score_parts`).
        reasons: The reasons of each partition (:func:`explain_part`), any order.
        readiness: Loaded readiness model, or ``None``.
        disengagement: Loaded disengagement model, or ``None``.
        config: Segment settings.
        run_id: Identifier of this scoring run (default: a new random id).

    Returns:
        The :class:`ScoreResult` :func:`score_members` gives for the same inputs.
    """
    if not parts:
        raise ConfigError("score: no partition to join")
    stamp = _RunStamp(
        as_of=parts[0].as_of,
        run_id=run_id or uuid.uuid4().hex,
        scored_at=pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s"),
    )
    out = _scored_members(tables, stamp.as_of)
    for target, model in _models(readiness, disengagement).items():
        for column, values in _target_columns(target, model, run, reasons, out.index).items():
            out[column] = values
    # without a readiness model: the default role
    core_role = (LabelConfig() if readiness is None else model_label_config(readiness)).core_role
    features = _joined_features(tables, parts)
    _add_segments(out, tables, stamp.as_of, core_role, config)
    out["reasons"] = _chosen_reasons(
        out["segment"], out["readiness_reasons"], out["disengagement_reasons"]
    )
    out["talking_point"] = _ready_now_talking_points(out, features, tables, core_role, config)
    out["run_id"] = stamp.run_id
    out["scored_at"] = stamp.scored_at
    predictions = out[PREDICTION_COLUMNS].reset_index(drop=True)
    meta = _run_meta(predictions, stamp, tables, readiness, disengagement, config)
    return ScoreResult(predictions=predictions, features=features, as_of=stamp.as_of, meta=meta)


def _scored_members(tables: Tables, when: pd.Timestamp) -> pd.DataFrame:
    """member_id, email, chapter_id and as_of of every consenting member who joined before
    ``when``, in members-table order (index: the member ids, unnamed)."""
    members = tables.members
    known = members[(members["joined_at"] < when) & members["consent"].astype(bool)]
    out = pd.DataFrame(
        {
            "member_id": known["member_id"].to_numpy(),
            "email": known["email"].to_numpy(),
            "chapter_id": known["chapter_id"].to_numpy(),
        }
    ).set_index("member_id", drop=False)
    out.index.name = None
    out["as_of"] = when
    return out


def _target_columns(
    target: str, model, run: RunScores, reasons: list[dict[str, pd.Series]], index: pd.Index
) -> dict[str, object]:
    """Score, reasons, model version, method and validated columns of one target (empty
    ones without a model), on ``index``."""
    if model is None:
        return {
            f"{target}_score": np.nan,
            f"{target}_reasons": "",
            f"{target}_model_version": "",
            f"{target}_method": "",
            f"{target}_validated": pd.Series(pd.NA, index=index, dtype="boolean"),
        }
    texts = pd.concat([r[target] for r in reasons])
    method, validated = model_method(model)
    return {
        f"{target}_score": run.scores[target].reindex(index),
        f"{target}_reasons": texts.reindex(index).fillna("").astype(object),
        f"{target}_model_version": str(model.version),
        f"{target}_method": method,
        f"{target}_validated": pd.Series(validated, index=index, dtype="boolean"),
    }


def _joined_features(tables: Tables, parts: list[MemberPart]) -> pd.DataFrame:
    """The first feature set of every partition, in members-table order."""
    first = next(iter(parts[0].features))
    if len(parts) == 1:
        return parts[0].features[first]
    return _member_order(tables, pd.concat([p.features[first] for p in parts]))


def _add_segments(
    out: pd.DataFrame, tables: Tables, when: pd.Timestamp, core_role: str,
    config: ScoringConfig,
) -> None:
    """Add ``holds_core_role``, ``readiness_rank``, ``segment`` and ``action`` to ``out``."""
    holds = _holds_core_role(tables, when, core_role)
    out["holds_core_role"] = out["member_id"].isin(holds)
    # a member who just declined an offer is out of line: the next candidate moves up
    paused = out["member_id"].isin(
        declined_offer(tables.outreach, when, config.segments.declined_pause_days)
    )
    out["readiness_rank"] = rank_within_chapter(
        out["readiness_score"].where(~paused), out["chapter_id"]
    )
    out["segment"] = assign_segments(out.assign(declined_offer=paused), config.segments)
    out["action"] = assign_actions(
        out["member_id"], out["segment"], when.date().isoformat(), config.outreach
    )


def _chosen_reasons(
    segments: pd.Series, readiness_reasons: pd.Series, disengagement_reasons: pd.Series
) -> np.ndarray:
    """The reasons a member's segment calls for: the disengagement ones in the risk segments,
    the readiness ones in the readiness segments or when there is no disengagement reason,
    else the disengagement ones."""
    return np.where(
        segments.isin(_RISK_SEGMENTS),
        disengagement_reasons,
        np.where(
            segments.isin(_READINESS_SEGMENTS) | (disengagement_reasons == ""),
            readiness_reasons,
            disengagement_reasons,
        ),
    )


def _ready_now_talking_points(
    out: pd.DataFrame, features: pd.DataFrame, tables: Tables, core_role: str,
    config: ScoringConfig,
) -> pd.Series:
    """The talking point of every ready-now candidate of ``out`` (empty for the others)."""
    seg = out["segment"]
    ready = (seg == "ready-now").fillna(False).to_numpy(dtype=bool)
    return talking_points(
        features, seg, out["readiness_reasons"],
        chapter_phrases(out.loc[ready, "chapter_id"], tables.chapters), core_role,
        config.talking_points,
    )


def _run_meta(
    predictions: pd.DataFrame, stamp: _RunStamp, tables: Tables, readiness, disengagement,
    config: ScoringConfig,
) -> dict:
    """Model versions, run id, counts and methods of a scoring run."""
    return {
        "run_id": stamp.run_id,
        "as_of": stamp.as_of.isoformat(),
        "scored_at": stamp.scored_at.isoformat(),
        "members_scored": int(len(predictions)),
        "readiness_model_version": "" if readiness is None else str(readiness.version),
        "disengagement_model_version": (
            "" if disengagement is None else str(disengagement.version)
        ),
        "segments": predictions["segment"].value_counts().to_dict(),
        "actions": {a: int((predictions["action"] == a).sum()) for a in ACTIONS},
        "holdout_share": config.outreach.holdout_share,
        "source": tables.source,
        **_method_meta(readiness, disengagement),
    }


def _method_meta(readiness, disengagement) -> dict:
    """``<target>_method`` / ``<target>_validated`` of the scoring models and their
    :func:`method_details` under ``methods`` (targets without a model are left out)."""
    meta: dict = {"methods": {}}
    for target, model in _models(readiness, disengagement).items():
        if model is None:
            continue
        details = method_details(model)
        meta[f"{target}_method"] = details["method"]
        meta[f"{target}_validated"] = details["validated"]
        meta["methods"][target] = details
    return meta


def score_members(
    tables: Tables,
    as_of=None,
    readiness=None,
    disengagement=None,
    config: ScoringConfig = ScoringConfig(),
    *,
    run_id: str | None = None,
) -> ScoreResult:
    """Score every consenting member at ``as_of``.

    The single-process composition of :func:`build_member_part` (one partition),
    :func:`score_parts`, :func:`explain_part` and :func:`finish_scores`.

    Args:
        tables: Validated data.
        as_of: Scoring date (default :func:`default_as_of`); only rows before it are used.
        readiness: Loaded readiness model, or ``None`` when the data has no readiness target.
        disengagement: Loaded disengagement model, or ``None``.
        config: Segment and reason settings.
        run_id: Identifier of this scoring run (default: a new random id).

    Returns:
        Predictions, the features used, and metadata.

    Raises:
        ConfigError: If neither model is given.
    """
    check_models(readiness, disengagement)
    when = default_as_of(tables) if as_of is None else parse_as_of(as_of)
    part = build_member_part(tables, when, readiness, disengagement)
    run = score_parts(tables, [part], readiness, disengagement, config)
    reasons = explain_part(part, run, readiness, disengagement, config)
    return finish_scores(
        tables, [part], run, [reasons], readiness, disengagement, config, run_id=run_id
    )


def check_models(readiness, disengagement) -> None:
    """Raise :class:`ConfigError` unless at least one model is given."""
    if readiness is None and disengagement is None:
        raise ConfigError("score: no model to score with (train one first: corecast train)")


def _holds_core_role(tables: Tables, when: pd.Timestamp, core_role: str) -> pd.Index:
    """Member ids holding ``core_role`` at ``when`` (started before, not ended before)."""
    roles = tables.roles
    if roles is None or roles.empty:
        return pd.Index([], dtype=object)
    held = (
        (roles["role"] == core_role)
        & (roles["started_at"] < when)
        & (roles["ended_at"].isna() | (roles["ended_at"] >= when))
    )
    return pd.Index(roles.loc[held, "member_id"].unique())


def write_predictions(predictions: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write ``predictions.parquet`` and ``predictions.csv`` into ``out_dir`` (all or nothing)."""
    folder = Path(out_dir)
    paths = {
        folder / "predictions.parquet": lambda p: predictions.to_parquet(p, index=False),
        folder / "predictions.csv": lambda p: predictions.to_csv(p, index=False),
    }
    return write_files_atomic(paths)


def _eligible_count(tables: Tables, target: str, as_of: pd.Timestamp, scored: pd.Index) -> int:
    """How many scored members are eligible for ``target`` under the default label settings
    (none when the data cannot express the target, e.g. readiness without roles)."""
    select = select_readiness_eligible if target == "readiness" else select_disengagement_eligible
    try:
        return int(select(tables, as_of, LabelConfig()).isin(scored).sum())
    except TargetUnavailable:
        return 0


def empty_score_reasons(
    result: ScoreResult, tables: Tables, readiness=None, disengagement=None, skipped=()
) -> list[str]:
    """Why a score column of ``result`` would be empty; none when every column has scores.

    A column is empty when its target has no model although the data has members eligible for
    it (the champion is missing), or when every value of it is missing (nobody eligible, or a
    model that gave no score).

    Args:
        result: The scores, before they are written.
        tables: The data they were scored from.
        readiness: The readiness model used, or ``None``.
        disengagement: The disengagement model used, or ``None``.
        skipped: Targets left out on purpose (``--readiness-model none``): never a reason.
    """
    reasons = []
    scored = pd.Index(result.predictions["member_id"])
    for target, model in _models(readiness, disengagement).items():
        if target in skipped:
            continue
        column = result.predictions[f"{target}_score"]
        if model is None:
            eligible = _eligible_count(tables, target, result.as_of, scored)
            if eligible:
                reasons.append(
                    f"{target}_score would be empty: there is no {target} champion to score the "
                    f"{eligible:,} eligible member(s) with; train one (corecast train --target "
                    f"{target}) or leave the score out (--{target}-model none)"
                )
        elif column.isna().all():
            reasons.append(
                f"{target}_score would be empty: none of the {len(column):,} scored member(s) "
                f"got a {target} score from v{model.version} ({model_method(model)[0]}) at "
                f"{result.as_of:%Y-%m-%d}; is anyone eligible at that date (--as-of)?"
            )
    return reasons
