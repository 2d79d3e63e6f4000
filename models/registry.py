"""The MLflow side of corecast: tracking runs, registered models, aliases, loading versions, and
recording the promotion gate.

This is the only module that imports ``mlflow`` (``tests/models/test_mlflow_boundary.py`` checks
it). What a run records (tags, parameters, artifacts) is built by :mod:`models.run_record`, the
promotion rules are :mod:`models.gate`, training and registering targets end to end is
:mod:`models.workflow`; none of them imports MLflow. The store is
:func:`features.settings.mlflow_tracking_uri` (a SQLite file in the corecast home unless
``MLFLOW_TRACKING_URI`` is set). Each target has one experiment and one registered model, both
named ``corecast-<target>``.

Promotion: every new model version gets the alias ``challenger``. It becomes ``champion`` only
when it is at least as good as the current champion on the primary metric **on the same
holdout** (the champion is loaded and scored on this run's newest holdout), up to
``TrainConfig.promotion_tolerance``, or when it is worse in no more than half of the member
resamples of a paired bootstrap. An unvalidated challenger (a ranking rule with no labelled
snapshot to judge it by) never replaces a validated champion unless forced. A refusal is
recorded as tags on the version and the run;
``strict=True`` turns it into :class:`~features.errors.PromotionRefused`. ``force_promote=True``
promotes regardless (for humans, recorded as forced). Every alias change leaves tags saying who,
when, why and which version held the alias before, both on the version and as an entry of the
registered model's audit log (``audit.<timestamp>`` tags).

Every run and version says what produces its scores: ``corecast.method`` (``model`` or
``rule:<name>``, see :mod:`models.rules`), ``corecast.validated`` (``true``/``false``) and
``corecast.notes`` (why, in plain sentences). Versions registered before these tags existed are
learned, validated models.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import mlflow.artifacts
import mlflow.data
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from features.errors import ConfigError, ModelNotFound, PromotionRefused
from features.settings import mlflow_tracking_uri
from models.config import TARGETS
from models.estimators import SKOPS_TRUSTED_TYPES
from models.gate import (
    Comparison,
    PromotionDecision,
    compare_with_champion,
    decide_promotion,
    feature_columns_of,
)
from models.run_record import (
    actor_name,
    code_version,
    method_tags,
    metric_key,
    now_text,
    pip_requirements,
    run_name,
    run_params,
    run_tags,
    safe_frame,
    write_artifacts,
)
from models.store_home import rehome_store, sqlite_database
from models.train import TrainResult

__all__ = [
    "load_scoring_models",
    "CHAMPION",
    "CHALLENGER",
    "model_name",
    "experiment_name",
    "PromotionDecision",
    "LoadedModel",
    "log_training_run",
    "gate_promotion",
    "promote_version",
    "list_model_versions",
    "version_method",
    "method_tags",
    "load_champion",
    "code_version",
    "OUTREACH_EXPERIMENT",
    "log_outreach_run",
]

CHAMPION = "champion"
CHALLENGER = "challenger"
_HGB_TRUSTED = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


def model_name(target: str) -> str:
    """Registered model name of ``target``."""
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    return f"corecast-{target}"


def experiment_name(target: str) -> str:
    """Experiment name of ``target``."""
    return model_name(target)


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A registered model ready for batch scoring.

    Attributes:
        target: Target name.
        model: The scikit-learn model (``predict_proba`` on ``feature_columns``).
        feature_columns: Feature columns in model order.
        version: Model version.
        aliases: Aliases the version holds.
        run_id: Run that produced it.
        metadata: The training configuration (``train``, ``labels``, ``frame``, ``features`` -
            the resolved feature settings scoring must reuse), holdout metrics, data window.
    """

    target: str
    model: object
    feature_columns: tuple[str, ...]
    version: str
    aliases: tuple[str, ...]
    run_id: str
    metadata: dict


# --- helpers ------------------------------------------------------------------------------------


def _use_store() -> str:
    """Point MLflow at the corecast store and return its URI.

    A SQLite store whose artifact locations point into another folder (a copied or moved home)
    is first re-pointed into its own (:func:`models.store_home.rehome_store`).
    """
    uri = mlflow_tracking_uri()
    database = sqlite_database(uri)
    if database is not None:
        rehome_store(database)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def _client() -> MlflowClient:
    uri = _use_store()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _ensure_experiment(client: MlflowClient, name: str) -> str:
    """Return the experiment id of ``name``, creating it when missing.

    With a SQLite store the artifacts live next to the database file (``mlartifacts/``), not in
    the working directory.
    """
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    uri = client.tracking_uri
    location = None
    if uri.startswith("sqlite:///"):
        database = Path(uri.removeprefix("sqlite:///"))
        location = (database.parent / "mlartifacts" / name).as_uri()
    return client.create_experiment(name, artifact_location=location)


def _is_missing(exc: Exception) -> bool:
    return "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or (
        "not found" in str(exc).lower() or "does not exist" in str(exc).lower()
    )


# --- logging ------------------------------------------------------------------------------------


def _log_dataset(result: TrainResult) -> None:
    """The training data as the run's dataset input (no member ids; targets when labelled)."""
    dataset_df = safe_frame(result.train_data.drop(columns=["member_id"], errors="ignore"))
    source = result.source if Path(result.source).exists() else None
    targets = "label" if "label" in dataset_df.columns else None
    with warnings.catch_warnings():
        # A local folder matches two equivalent local source types; MLflow picks one and warns;
        # the dataset schema hint about integer columns concerns serving, not datasets.
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(
            dataset_df, source=source, targets=targets, name=f"{result.target}-training"
        )
        mlflow.log_input(dataset, context="training")


def _log_model(result: TrainResult, name: str):
    """Log the model (skops, with signature and an input example) and register it."""
    # Float columns in the signature: integer counts would make missing values a schema error.
    example = result.train_data[list(result.feature_columns)].head(5).astype(np.float64)
    signature = infer_signature(example, result.model.predict_proba(example))
    trusted = [t for t in SKOPS_TRUSTED_TYPES if t != _HGB_TRUSTED]
    if result.candidate == "hgb":
        trusted.append(_HGB_TRUSTED)
    return mlflow.sklearn.log_model(
        result.model,
        name="model",
        signature=signature,
        input_example=example,
        pip_requirements=pip_requirements(),
        pyfunc_predict_fn="predict_proba",
        serialization_format="skops",
        skops_trusted_types=trusted,
        registered_model_name=name,
        await_registration_for=0,
    )


def log_training_run(result: TrainResult, *, actor: str | None = None) -> tuple[str, str]:
    """Log a training result as an MLflow run and register its model as a new version.

    Logs the configurations as parameters, every metric, tags (data fingerprint, as-of range,
    snapshot count, code version, method: ``corecast.method`` / ``corecast.validated`` /
    ``corecast.notes``), the training data as a dataset input (schema and profile, no member
    identifiers), the model with its signature, and the artifacts (plots, importance, backtest,
    holdout metrics, model card, training configuration; plots and holdout tables only when the
    holdout has both classes). A ranking rule is logged like a model. The new version carries
    the method tags too and gets the ``challenger`` alias.

    Returns:
        ``(run_id, version)``.
    """
    client = _client()
    experiment_id = _ensure_experiment(client, experiment_name(result.target))
    name = model_name(result.target)
    tags = run_tags(result, actor)
    nested = mlflow.active_run() is not None
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=run_name(result), nested=nested
    ) as run:
        mlflow.set_tags(tags)
        mlflow.log_params(run_params(result))
        mlflow.log_metrics(
            {metric_key(k): float(v) for k, v in result.metrics.items() if v is not None}
        )
        _log_dataset(result)
        with tempfile.TemporaryDirectory(prefix="corecast-artifacts-") as tmp:
            write_artifacts(result, Path(tmp))
            mlflow.log_artifacts(tmp)
        info = _log_model(result, name)
        run_id = run.info.run_id
    version = str(info.registered_model_version)
    version_tags = {
        "corecast.run_id": run_id,
        "corecast.primary_metric": result.primary_metric,
        "corecast.holdout_as_of": tags["corecast.holdout_as_of"],
        **method_tags(result),
    }
    value = result.metrics.get(f"holdout.{result.primary_metric}")
    if value is not None:
        version_tags[f"corecast.holdout.{result.primary_metric}"] = f"{value:.6f}"
    for key, text in version_tags.items():
        client.set_model_version_tag(name, version, key, text)
    _set_alias(client, name, CHALLENGER, version, actor=actor, reason="newly trained version")
    return run_id, version


def _current_alias_version(client, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if _is_missing(exc):
            return None
        raise


def _set_alias(client, name: str, alias: str, version: str, *, actor, reason: str) -> None:
    """Point ``alias`` at ``version`` and leave an audit trail."""
    who = actor_name(actor)
    when = now_text()
    previous = _current_alias_version(client, name, alias)
    client.set_registered_model_alias(name, alias, version)
    for key, value in {
        f"audit.{alias}.set_by": who,
        f"audit.{alias}.set_at": when,
        f"audit.{alias}.reason": reason,
        f"audit.{alias}.previous_version": previous or "none",
    }.items():
        client.set_model_version_tag(name, version, key, value)
    if previous and previous != version:
        client.set_model_version_tag(name, previous, f"audit.{alias}.removed_at", when)
        client.set_model_version_tag(name, previous, f"audit.{alias}.removed_by", who)
        client.set_model_version_tag(name, previous, f"audit.{alias}.replaced_by", version)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
    client.set_registered_model_tag(
        name,
        f"audit.{stamp}",
        json.dumps(
            {
                "alias": alias,
                "version": version,
                "previous_version": previous,
                "by": who,
                "at": when,
                "reason": reason,
            }
        ),
    )


def _remove_alias(client, name: str, alias: str, *, actor, reason: str) -> None:
    previous = _current_alias_version(client, name, alias)
    if previous is None:
        return
    client.delete_registered_model_alias(name, alias)
    client.set_model_version_tag(name, previous, f"audit.{alias}.removed_at", now_text())
    client.set_model_version_tag(name, previous, f"audit.{alias}.removed_by", actor_name(actor))
    client.set_model_version_tag(name, previous, f"audit.{alias}.removed_reason", reason)


def _load_version(name: str, version: str):
    _use_store()
    return mlflow.sklearn.load_model(f"models:/{name}/{version}")


# --- promotion ----------------------------------------------------------------------------------


def _version_validated(client, name: str, version: str) -> bool:
    """Whether a registered version's scores were validated (versions without the tag were)."""
    tags = client.get_model_version(name, version).tags or {}
    return str(tags.get("corecast.validated", "true")).lower() != "false"


def gate_promotion(
    result: TrainResult,
    run_id: str,
    version: str,
    *,
    force_promote: bool = False,
    strict: bool = False,
    actor: str | None = None,
) -> PromotionDecision:
    """Decide whether the new version replaces the champion, and record the decision.

    The champion is read from the registry (and loaded to be scored on the challenger's
    holdout when both are validated); the rules are :mod:`models.gate`'s
    (:func:`~models.gate.compare_with_champion`, :func:`~models.gate.decide_promotion`).

    The decision's numbers are stored as ``promotion.*`` tags on the version and the run
    (``promotion.difference_low`` / ``_high`` and ``promotion.p_challenger_worse`` from the
    bootstrap). A promotion moves the ``champion`` alias to the version and removes
    ``challenger``.

    Raises:
        PromotionRefused: If the gate refuses and ``strict`` is true (after recording).
    """
    client = _client()
    name = model_name(result.target)
    champion_version = _current_alias_version(client, name, CHAMPION)
    comparison = _compare(client, name, result, champion_version, version)
    decision = decide_promotion(
        result, comparison, champion_version, force_promote=force_promote,
        forced_by=actor_name(actor),
    )
    _record_decision(client, name, version, run_id, decision, actor)
    if decision.promoted:
        _set_alias(client, name, CHAMPION, version, actor=actor, reason=decision.reason)
        _remove_alias(client, name, CHALLENGER, actor=actor, reason=f"v{version} promoted")
    elif strict:
        raise PromotionRefused(f"{name} v{version}: {decision.reason}")
    return decision


def _compare(
    client, name: str, result: TrainResult, champion_version: str | None, version: str
) -> Comparison:
    """The challenger next to the champion: the champion is loaded only when both are
    validated (an unvalidated challenger is not compared on figures)."""
    rival = champion_version if champion_version != version else None
    if rival is None:
        return compare_with_champion(result, None)
    validated = _version_validated(client, name, rival)
    if not result.validated:
        return compare_with_champion(result, rival, rival_validated=validated)
    loaded = load_champion(result.target, rival)
    return compare_with_champion(
        result, rival, rival_validated=validated, champion=loaded.model,
        champion_train_dates=loaded.metadata.get("train_dates") or (),
    )


def _number(value: float | None) -> str:
    return "none" if value is None or np.isnan(value) else f"{value:.6f}"


def _record_decision(
    client, name: str, version: str, run_id: str, decision: PromotionDecision, actor
) -> None:
    """The decision as ``promotion.*`` tags on the version and the run, and gate metrics."""
    metric, paired = decision.metric, decision.paired
    tags = {
        "promotion.status": (
            "forced" if decision.forced else ("promoted" if decision.promoted else "refused")
        ),
        "promotion.reason": decision.reason,
        "promotion.metric": metric,
        "promotion.challenger_value": _number(decision.challenger_value),
        "promotion.champion_value": _number(decision.champion_value),
        "promotion.champion_version": decision.champion_version or "none",
        "promotion.tolerance": f"{decision.tolerance:g}",
        "promotion.difference": _number(paired.get("difference")),
        "promotion.difference_low": _number(paired.get("low")),
        "promotion.difference_high": _number(paired.get("high")),
        "promotion.p_challenger_worse": _number(paired.get("p_a_worse")),
        "promotion.decided_by": actor_name(actor),
        "promotion.decided_at": now_text(),
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    stamp = int(datetime.now(UTC).timestamp() * 1000)
    gate_metrics = {
        f"gate.challenger.{metric}": decision.challenger_value,
        f"gate.champion.{metric}": decision.champion_value,
    }
    client.log_batch(
        run_id,
        metrics=[
            Metric(k, float(v), stamp, 0)
            for k, v in gate_metrics.items()
            if v is not None and not np.isnan(v)
        ],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )


def promote_version(
    target: str, version: str | int, *, reason: str, actor: str | None = None
) -> None:
    """Make an existing version the champion by hand (rollback or override), audited.

    Raises:
        ModelNotFound: If the version does not exist.
        ConfigError: If no reason is given.
    """
    if not reason or not reason.strip():
        raise ConfigError("promote_version: say why (reason) - it is kept in the audit trail")
    client = _client()
    name = model_name(target)
    _get_version(client, name, str(version))
    _set_alias(client, name, CHAMPION, str(version), actor=actor, reason=f"manual: {reason}")
    client.set_model_version_tag(name, str(version), "promotion.status", "forced")


def _get_version(client, name: str, version: str):
    try:
        return client.get_model_version(name, version)
    except MlflowException as exc:
        if _is_missing(exc) or "INVALID_PARAMETER_VALUE" in str(getattr(exc, "error_code", "")):
            raise ModelNotFound(f"{name}: version {version!r} does not exist") from exc
        raise


# --- reading the registry -----------------------------------------------------------------------


_LIST_COLUMNS = [
    "target",
    "model",
    "version",
    "aliases",
    "created_at",
    "candidate",
    "method",
    "validated",
    "primary_metric",
    "holdout_primary",
    "holdout_roc_auc",
    "holdout_precision_at_k",
    "holdout_ece",
    "promotion_status",
    "holdout_as_of",
    "run_id",
]


def version_method(tags: Mapping[str, str] | None) -> tuple[str, bool]:
    """``(method, validated)`` from a version's tags; untagged (older) versions are learned,
    validated models."""
    tags = tags or {}
    method = str(tags.get("corecast.method") or "model")
    return method, str(tags.get("corecast.validated", "true")).lower() != "false"


def list_model_versions(targets: Sequence[str] | None = None) -> pd.DataFrame:
    """Every registered version of the corecast models with aliases and key holdout metrics.

    Returns:
        One row per version (newest first within a target), columns: target, model, version,
        aliases, created_at, candidate, method (``model`` or ``rule:<name>``), validated (bool;
        versions registered before these tags: ``model`` and true), primary_metric,
        holdout_primary, holdout_roc_auc, holdout_precision_at_k, holdout_ece, promotion_status,
        holdout_as_of, run_id. Empty when nothing is registered.
    """
    client = _client()
    rows = []
    for target in targets or TARGETS:
        name = model_name(target)
        versions = client.search_model_versions(f"name='{name}'")
        aliases: dict[str, list[str]] = {}
        if versions:
            for alias, held_by in client.get_registered_model(name).aliases.items():
                aliases.setdefault(str(held_by), []).append(alias)
        for mv in versions:
            metrics: dict[str, float] = {}
            tags_of_run: dict[str, str] = {}
            if mv.run_id:
                run = client.get_run(mv.run_id)
                metrics, tags_of_run = run.data.metrics, run.data.tags
            primary = mv.tags.get("corecast.primary_metric") or tags_of_run.get(
                "corecast.primary_metric", ""
            )
            rows.append(
                {
                    "target": target,
                    "model": name,
                    "version": int(mv.version),
                    "aliases": ",".join(sorted(aliases.get(str(mv.version), []))),
                    "created_at": pd.Timestamp(mv.creation_timestamp, unit="ms"),
                    "candidate": tags_of_run.get("corecast.candidate", ""),
                    "method": version_method(mv.tags)[0],
                    "validated": version_method(mv.tags)[1],
                    "primary_metric": primary,
                    "holdout_primary": metrics.get(f"holdout.{primary}", np.nan),
                    "holdout_roc_auc": metrics.get("holdout.roc_auc", np.nan),
                    "holdout_precision_at_k": metrics.get("holdout.precision_at_k", np.nan),
                    "holdout_ece": metrics.get("holdout.ece", np.nan),
                    "promotion_status": mv.tags.get("promotion.status", ""),
                    "holdout_as_of": mv.tags.get("corecast.holdout_as_of", ""),
                    "run_id": mv.run_id,
                }
            )
    frame = pd.DataFrame(rows, columns=_LIST_COLUMNS)
    if frame.empty:
        return frame
    return frame.sort_values(["target", "version"], ascending=[True, False]).reset_index(drop=True)


def load_champion(target: str, version_or_alias: str | int = CHAMPION) -> LoadedModel:
    """Load a registered model for batch scoring.

    Args:
        target: ``"readiness"`` or ``"disengagement"``.
        version_or_alias: An alias (``"champion"``, ``"challenger"``) or a version number.

    Returns:
        The model with its feature columns and training metadata.

    Raises:
        ModelNotFound: If the model, alias or version does not exist.
    """
    client = _client()
    name = model_name(target)
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if _is_missing(exc):
            raise ModelNotFound(
                f"no registered model {name!r} in {mlflow.get_tracking_uri()}; "
                "train one first (corecast train)"
            ) from exc
        raise
    ref = str(version_or_alias)
    if ref.isdigit():
        mv = _get_version(client, name, ref)
    else:
        try:
            mv = client.get_model_version_by_alias(name, ref)
        except MlflowException as exc:
            if _is_missing(exc) or "alias" in str(exc).lower():
                raise ModelNotFound(
                    f"{name} has no version with alias {ref!r}; see `corecast models`"
                ) from exc
            raise
    version = str(mv.version)
    model = _load_version(name, version)
    metadata: dict = {"model": name, "version": version, "run_id": mv.run_id, "tags": mv.tags}
    if mv.run_id:
        with tempfile.TemporaryDirectory(prefix="corecast-meta-") as tmp:
            path = mlflow.artifacts.download_artifacts(
                run_id=mv.run_id, artifact_path="training_config.json", dst_path=tmp
            )
            metadata.update(json.loads(Path(path).read_text(encoding="utf-8")))
        run = client.get_run(mv.run_id)
        metadata["metrics"] = dict(run.data.metrics)
        metadata["run_tags"] = {k: v for k, v in run.data.tags.items() if k.startswith("corecast.")}
    return LoadedModel(
        target=target,
        model=model,
        feature_columns=feature_columns_of(model),
        version=version,
        aliases=tuple(sorted(mv.aliases or [])),
        run_id=mv.run_id,
        metadata=metadata,
    )


def load_scoring_models(
    readiness: str | int = CHAMPION, disengagement: str | int = CHAMPION
) -> tuple[LoadedModel | None, LoadedModel | None]:
    """Load the two models batch scoring uses.

    Args:
        readiness: Alias or version of the readiness model, or ``"none"`` to skip it. A missing
            readiness *champion* is allowed (data without a roles table has no readiness
            model): it comes back as ``None``.
        disengagement: Alias or version of the disengagement model, or ``"none"``.

    Returns:
        ``(readiness_model, disengagement_model)``; either may be ``None``.

    Raises:
        ModelNotFound: A model asked for (other than the readiness champion) does not exist.
    """
    loaded: dict[str, LoadedModel | None] = {}
    for target, ref in (("readiness", readiness), ("disengagement", disengagement)):
        if str(ref) == "none":
            loaded[target] = None
            continue
        try:
            loaded[target] = load_champion(target, ref)
        except ModelNotFound:
            if target == "readiness" and str(ref) == CHAMPION:
                loaded[target] = None
                continue
            raise
    return loaded["readiness"], loaded["disengagement"]


#: The experiment of the outreach measurements: one run per measured cycle.
OUTREACH_EXPERIMENT = "corecast-outreach"


def _drop_earlier_measurements(client, experiment_id: str, cycle: str, tags: dict) -> None:
    """Delete the runs of the same cycle (and source) a re-scoring replaces: one per cycle."""
    source = tags.get("corecast.source")
    query = f"tags.`corecast.cycle` = '{cycle}'"
    if source is not None:
        query += " and tags.`corecast.source` = '" + source.replace("'", "") + "'"
    for earlier in client.search_runs([experiment_id], filter_string=query):
        client.delete_run(earlier.info.run_id)


def log_outreach_run(
    cycle: str,
    metrics: Mapping[str, float],
    params: Mapping[str, str],
    files: Mapping[str, str],
    *,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Log what the outreach loop measured at ``cycle`` as a run of :data:`OUTREACH_EXPERIMENT`.

    Args:
        cycle: The scoring date the measurement was made at (``YYYY-MM-DD``); the run's name.
        metrics: Figures (missing ones, ``NaN`` or ``None``, are left out).
        params: The measurement's settings.
        files: Artifact file name -> text (a table as CSV, a summary as Markdown).
        tags: Extra tags (the data source, the scoring run id).

    Returns:
        The MLflow run id.
    """
    client = _client()
    experiment_id = _ensure_experiment(client, OUTREACH_EXPERIMENT)
    _drop_earlier_measurements(client, experiment_id, cycle, dict(tags or {}))
    nested = mlflow.active_run() is not None
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"outreach {cycle}", nested=nested
    ) as run:
        mlflow.set_tags({"corecast.cycle": cycle, "corecast.code_version": code_version(),
                         **dict(tags or {})})
        mlflow.log_params(dict(params))
        mlflow.log_metrics(
            {metric_key(k): float(v) for k, v in metrics.items()
             if v is not None and np.isfinite(float(v))}
        )
        with tempfile.TemporaryDirectory(prefix="corecast-outreach-") as tmp:
            for name, text in files.items():
                (Path(tmp) / name).write_text(text, encoding="utf-8")
            mlflow.log_artifacts(tmp)
        return run.info.run_id
