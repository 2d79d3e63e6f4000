"""Batch scoring: both scores, ranks, segments and reasons for every consenting member.

The scorer takes already loaded models (:class:`models.registry.LoadedModel`) and validated
tables, so it never touches the registry or the file system itself; :func:`write_predictions`
is the only writer.

Who is scored: every member with ``consent`` true who joined before ``as_of``. The readiness
score is given to members eligible for readiness (not holding the core role), the disengagement
score to members eligible for disengagement (active within the window); the other score is NaN.
Both models rebuild features with the exact feature settings they were trained with (the frozen
vocabulary in their metadata), and eligibility follows the label settings they were trained with.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.build import build_features
from features.errors import ConfigError
from features.feature_config import FeatureConfig
from features.frames import align_features
from features.io import write_files_atomic
from features.labels import (
    LabelConfig,
    select_disengagement_eligible,
    select_readiness_eligible,
)
from features.tables import Tables, parse_as_of
from serving.reasons import ReasonConfig, explain_scores
from serving.segments import SegmentConfig, assign_segments, rank_within_chapter

__all__ = [
    "ScoringConfig",
    "ScoreResult",
    "PREDICTION_COLUMNS",
    "score_members",
    "default_as_of",
    "write_predictions",
]

#: Columns of ``predictions.parquet`` / ``predictions.csv``, in order.
PREDICTION_COLUMNS = [
    "member_id",
    "email",
    "chapter_id",
    "as_of",
    "readiness_score",
    "readiness_rank",
    "disengagement_score",
    "segment",
    "reasons",
    "readiness_reasons",
    "disengagement_reasons",
    "holds_core_role",
    "readiness_model_version",
    "disengagement_model_version",
    "run_id",
    "scored_at",
]

_READINESS_SEGMENTS = ("ready-now", "nurture")
_RISK_SEGMENTS = ("ambassador-at-risk", "at-risk")


@dataclass(frozen=True)
class ScoringConfig:
    """Settings of a scoring run.

    Attributes:
        segments: Segment thresholds (chapter capacity, minimum scores).
        reasons: Reason settings (how many, how they are chosen).
    """

    segments: SegmentConfig = field(default_factory=SegmentConfig)
    reasons: ReasonConfig = field(default_factory=ReasonConfig)


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


def _feature_config(model) -> FeatureConfig:
    data = (model.metadata or {}).get("features")
    return FeatureConfig.from_dict(data) if data else FeatureConfig()


def _label_config(model) -> LabelConfig:
    data = (model.metadata or {}).get("labels")
    return LabelConfig(**data) if data else LabelConfig()


def _score_one(model, target, tables, when, features_by_config, config):
    """Scores and reasons of one model for its eligible, consenting members."""
    fcfg = _feature_config(model)
    key = repr(fcfg.to_dict())
    if key not in features_by_config:
        features_by_config[key] = build_features(tables, when, fcfg)
    feats = features_by_config[key]
    labels = _label_config(model)
    if target == "readiness":
        eligible = select_readiness_eligible(tables, when, labels)
    else:
        eligible = select_disengagement_eligible(tables, when, labels)
    eligible = feats.index.intersection(eligible)
    x = align_features(feats.loc[eligible], model.feature_columns)
    if len(x):
        proba = np.asarray(model.model.predict_proba(x))[:, 1]
    else:
        proba = np.zeros(0)
    # Calibration is a monotone map: explain the uncalibrated score it wraps, whose what-if
    # changes keep their sign but are not flattened by isotonic steps.
    inner = getattr(model.model, "estimator", None)
    explainer = inner if hasattr(inner, "predict_proba") else model.model
    raw = proba if explainer is model.model or not len(x) else None
    reasons = explain_scores(explainer, x, feats.loc[eligible], config.reasons, scores=raw)
    return pd.Series(proba, index=x.index, dtype=float), reasons["reasons"], labels


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
    if readiness is None and disengagement is None:
        raise ConfigError("score: no model to score with (train one first: corecast train)")
    when = default_as_of(tables) if as_of is None else parse_as_of(as_of)
    run_id = run_id or uuid.uuid4().hex
    scored_at = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    by_config: dict[str, pd.DataFrame] = {}

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

    core_role = "ambassador"
    for target, model in (("readiness", readiness), ("disengagement", disengagement)):
        if model is None:
            out[f"{target}_score"] = np.nan
            out[f"{target}_reasons"] = ""
            out[f"{target}_model_version"] = ""
            continue
        scores, reasons, labels = _score_one(model, target, tables, when, by_config, config)
        if target == "readiness":
            core_role = labels.core_role
        out[f"{target}_score"] = scores.reindex(out.index)
        out[f"{target}_reasons"] = reasons.reindex(out.index).fillna("").astype(object)
        out[f"{target}_model_version"] = str(model.version)

    features = next(iter(by_config.values()))
    holds = _holds_core_role(tables, when, core_role)
    out["holds_core_role"] = out["member_id"].isin(holds)
    out["readiness_rank"] = rank_within_chapter(out["readiness_score"], out["chapter_id"])
    out["segment"] = assign_segments(out, config.segments)
    seg = out["segment"]
    out["reasons"] = np.where(
        seg.isin(_RISK_SEGMENTS),
        out["disengagement_reasons"],
        np.where(
            seg.isin(_READINESS_SEGMENTS) | (out["disengagement_reasons"] == ""),
            out["readiness_reasons"],
            out["disengagement_reasons"],
        ),
    )
    out["run_id"] = run_id
    out["scored_at"] = scored_at
    predictions = out[PREDICTION_COLUMNS].reset_index(drop=True)
    meta = {
        "run_id": run_id,
        "as_of": when.isoformat(),
        "scored_at": scored_at.isoformat(),
        "members_scored": int(len(predictions)),
        "readiness_model_version": "" if readiness is None else str(readiness.version),
        "disengagement_model_version": (
            "" if disengagement is None else str(disengagement.version)
        ),
        "segments": predictions["segment"].value_counts().to_dict(),
        "source": tables.source,
    }
    return ScoreResult(predictions=predictions, features=features, as_of=when, meta=meta)


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
