"""Prefect flows: the weekly scoring job, the monthly retraining job and their building blocks.

- :func:`features_flow`: validate a data source and write point-in-time features.
- :func:`train_flow`: train both targets, register challengers, gate promotion.
- :func:`score_flow`: score with the registered models, write predictions and the report.
- :func:`push_flow`: push a predictions file to a CRM (delta push through the ledger).
- :func:`weekly_flow`: validate -> score with the champions (features are rebuilt with each
  model's own settings) -> chapter report -> push. The job to schedule every week.
- :func:`monthly_flow`: :func:`train_flow` (challenger -> gated promotion) then
  :func:`weekly_flow`. The job to schedule every month.

The weekly, monthly and train flows load the data strictly by default (any invalid row fails the
run); ``on_invalid="quarantine"`` loads the valid rows and sets the invalid ones aside
(:func:`features.contract.load_tables`), and the weekly summary records how many.

Flows are glue: each step is a task of :mod:`pipelines.tasks` over a domain function. Parameters
are typed (Prefect validates them with pydantic before a run starts, also for runs started from
the UI or a schedule). Every run publishes artifacts (:mod:`pipelines.artifacts`): a markdown
summary, a table and links to the MLflow runs.

Without ``PREFECT_API_URL`` a flow called from Python runs against a temporary local Prefect
server started for the process; with it, runs are recorded on that server.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from prefect import flow

from pipelines import tasks
from pipelines.artifacts import (
    DEFAULT_MLFLOW_UI_URL,
    build_weekly_markdown,
    publish_features,
    publish_push,
    publish_training,
    publish_weekly,
)
from pipelines.parameters import (
    CrmField,
    DeliveryParameters,
    LabelParameters,
    LoadingParameters,
    ScaleParameters,
    SegmentParameters,
    SinkKind,
    TargetName,
    TrainingParameters,
)

__all__ = [
    "SinkKind",
    "TargetName",
    "CrmField",
    "features_flow",
    "train_flow",
    "score_flow",
    "push_flow",
    "weekly_flow",
    "monthly_flow",
    "weekly_from_project",
    "monthly_from_project",
    "default_out_dir",
    "check_loading_options",
]

def default_out_dir() -> Path:
    """Default output folder of the flows: ``<corecast home>/out``."""
    from features.settings import corecast_home

    return corecast_home() / "out"


def _prepare() -> None:
    """Telemetry off in every process that runs a flow (workers and served runs too)."""
    import os

    from features.settings import TELEMETRY_OFF

    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)


def check_loading_options(on_invalid: str, dask: bool) -> None:
    """Refuse loading options a run cannot honour, before anything starts.

    Raises:
        ConfigError: ``on_invalid="quarantine"`` with Dask scoring (the workers load the data
            themselves, strictly).
    """
    from features.errors import ConfigError

    if dask and on_invalid != "strict":
        raise ConfigError(
            "on_invalid: quarantine is not available with Dask scoring (the workers load the "
            "data strictly); score on one process or fix the data"
        )


def _source_label(data: str) -> str:
    from features.contract import describe_source

    return describe_source(data)


def _feature_config(overrides: dict[str, Any] | None):
    """The feature settings of a training run (``None``: corecast's defaults)."""
    from features.feature_config import FeatureConfig

    return FeatureConfig.from_dict(dict(overrides)) if overrides else None


def _train_configs(training: TrainingParameters) -> dict:
    from dataclasses import fields

    from features.errors import ConfigError
    from models.config import TARGETS, TrainConfig

    overrides = dict(training.train_overrides or {})
    known = {f.name for f in fields(TrainConfig)} - {"target"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(
            f"train_overrides: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    base = {
        "capacity_share": training.capacity_share,
        "chapter_top": training.chapter_top,
        "promotion_tolerance": training.tolerance,
        **overrides,
    }
    return {target: TrainConfig(target=target, **base) for target in TARGETS}


def _pull_before_scoring(data: str, to: str, push_options) -> dict | None:
    """Read outreach outcomes back from the sink into the data folder before scoring.

    Only for a local data folder and a sink that can be read (HubSpot, Salesforce, or a CSV
    export that exists); a folder that keeps outreach as CSV is left alone (logged).
    """
    import logging

    from features.errors import ConfigError
    from serving.crm.pull import PULL_SOURCES, PullOptions, newest_export

    folder = Path(data)
    if to not in PULL_SOURCES or "://" in data or not folder.is_dir():
        return None
    if (folder / "outreach.csv").exists():
        logging.getLogger("corecast").warning(
            "pull: %s keeps outreach as CSV; outcomes are not pulled into it", folder
        )
        return None
    o = push_options
    options = PullOptions(ledger_path=o.ledger_path, dry_run=o.dry_run, hubspot=o.hubspot,
                          salesforce=o.salesforce, csv=o.csv)
    if to == "csv":
        try:
            if not newest_export(options).is_file():
                return None  # the fixed export file is written by this run's push
        except ConfigError:
            return None  # nothing exported yet, so nothing filled in
    task = tasks.pull_outreach if to != "csv" else tasks.pull_outreach.with_options(retries=0)
    r = task(to, folder, options)
    return {"kind": r.kind, "read": r.read, "added": r.added, "updated": r.updated,
            "skipped": r.skipped_total, "path": r.path, "dry_run": r.dry_run}


def _push_summary(push) -> dict | None:
    if push is None:
        return None
    r = push.report
    return {
        "kind": r.kind,
        "sink": r.sink,
        "dry_run": r.dry_run,
        "total": r.total,
        "new": r.new,
        "changed": r.changed,
        "retried": r.retried,
        "unchanged": r.unchanged,
        "to_send": r.to_send,
        "sent": r.sent,
        "failed": r.failed,
        "pending": r.pending,
        "files": [str(p) for p in push.files],
        "partial": push.partial,
    }


def _outcome_summary(o) -> dict:
    return {
        "target": o.target,
        "status": o.status,
        "version": o.version,
        "run_id": o.run_id,
        "promoted": None if o.decision is None else o.decision.promoted,
        "method": o.method,
        "validated": bool(o.validated) if o.method else None,
        "notes": list(o.notes),
        "gate": o.decision.reason if o.decision else o.message,
        "metrics": {
            k: float(o.metrics[k])
            for k in ("holdout.roc_auc", "holdout.pr_auc", "holdout.precision_at_k")
            if k in (o.metrics or {})
        },
    }


@flow(name="corecast-features", persist_result=False)
def features_flow(
    data: str,
    out: Path,
    as_of: dt.date | None = None,
) -> str:
    """Validate a data source and write one row of point-in-time features per member.

    Args:
        data: A folder of CSV/Parquet tables or a SQLAlchemy URL.
        out: Parquet file to write.
        as_of: Snapshot date; only rows strictly before it are used (default: the day after the
            last observed activity).

    Returns:
        The written file.
    """
    import pandas as pd

    from features.tables import parse_as_of

    _prepare()
    tables = tasks.load_data(data)
    when = parse_as_of(as_of) if as_of else tables.last_observed.normalize() + pd.Timedelta(days=1)
    path, rows, columns = tasks.build_feature_file(tables, when, Path(out))
    publish_features(_source_label(data), when, rows, columns, path)
    return str(path)


@flow(name="corecast-train", persist_result=False)
def train_flow(
    data: str,
    targets: list[TargetName] | None = None,
    labels: LabelParameters = LabelParameters(),
    training: TrainingParameters = TrainingParameters(),
    loading: LoadingParameters = LoadingParameters(),
    mlflow_ui_url: str = DEFAULT_MLFLOW_UI_URL,
) -> list[dict]:
    """Train both targets, log the runs to MLflow, register challengers and gate promotion.

    Args:
        data: A folder of CSV/Parquet tables or a SQLAlchemy URL.
        targets: Targets to train (default: every target the data supports).
        labels: The targets' windows and core role (:class:`LabelParameters`).
        training: How training judges models, overrides, forced promotion
            (:class:`TrainingParameters`).
        loading: What loading does with invalid rows (:class:`LoadingParameters`).
        mlflow_ui_url: Base URL of the MLflow UI, for the links in the artifacts.

    Returns:
        One summary per target: status, version, run id, gate decision, key metrics.
    """
    from models.config import TARGETS
    from simulator.oracle import oracle_for

    _prepare()
    configs = _train_configs(training)
    features = _feature_config(training.feature_overrides)
    tables = tasks.load_data(data, **loading.as_kwargs())
    wanted = list(dict.fromkeys(targets)) if targets else list(TARGETS)
    oracle = oracle_for(data)  # the simulator's true odds when ``data`` is a simulated folder
    outcomes = [
        tasks.train_target_model(
            tables, target, required=targets is not None, labels=labels.label_config(),
            train_configs=configs, force_promote=training.force_promote, features=features,
            oracle=oracle,
        )
        for target in wanted
    ]
    publish_training(outcomes, _source_label(data), mlflow_ui_url)
    return [_outcome_summary(o) for o in outcomes]


def _score_steps(
    data: str,
    as_of: dt.date | None,
    out: Path,
    readiness_model: str,
    disengagement_model: str,
    segments: SegmentParameters,
    scale: ScaleParameters | None = None,
    loading: LoadingParameters | None = None,
):
    tables = tasks.load_data(data, **(loading or LoadingParameters()).as_kwargs())
    readiness, disengagement = tasks.load_models(readiness_model, disengagement_model)
    config = segments.scoring_config()
    dask = _dask_scoring(scale or ScaleParameters())
    if dask:
        result = _score_on_dask(data, as_of, readiness, disengagement, config, dask)
    else:
        result = tasks.score_members_task(tables, as_of, readiness, disengagement, config)
    skipped = [t for t, ref in (("readiness", readiness_model),
                                ("disengagement", disengagement_model)) if ref == "none"]
    tasks.check_scores(result, tables, readiness, disengagement, skipped)
    models = {"readiness": readiness, "disengagement": disengagement}
    # the loop first: a log it cannot read or write fails the run before any output
    loop = tasks.outreach_loop_task(data, tables, result, models, out)
    written = tasks.write_predictions_task(result, out)
    report = tasks.write_report_task(result, tables, out, loop.lines)
    return tables, result, models, [*written, *loop.paths, *report.paths], report, loop


def _dask_scoring(scale: ScaleParameters) -> dict | None:
    """Checked options of scoring by member partitions on Dask (``None``: on one process)."""
    from pipelines.scale import check_dask_options

    check_dask_options(
        scale.dask, scale.dask_address, scale.partitions if scale.dask else None,
        scale.dask_workers,
    )
    if not scale.dask:
        return None
    return {
        "address": scale.dask_address, "n_parts": scale.partitions,
        "n_workers": scale.dask_workers,
    }


def _score_on_dask(data: str, as_of, readiness, disengagement, config, dask: dict):
    """Score by member partitions on Dask (a subflow); features are rebuilt by the workers."""
    from pipelines.scale import score_members_scaled

    result = score_members_scaled(
        data, {"readiness": readiness, "disengagement": disengagement}, as_of, config,
        dask["n_parts"], address=dask["address"], n_workers=dask["n_workers"],
    )
    tasks.log_scored(result, f"on Dask, {dask['n_parts']} partitions")
    return result


def _method_dict(method: tuple[str, bool]) -> dict:
    return {"method": method[0], "validated": method[1]}


def _other_labels(models, labels_fingerprint: str | None) -> dict[str, str]:
    from serving.score import models_with_other_labels

    return models_with_other_labels(models, labels_fingerprint)


def _scored_summary(result, models, outputs) -> dict:
    from serving.score import model_method

    return {
        "as_of": result.as_of.date().isoformat(),
        "members_scored": int(result.meta["members_scored"]),
        "segments": {str(k): int(v) for k, v in result.meta["segments"].items()},
        "actions": dict(result.meta["actions"]),
        "holdout_share": result.meta["holdout_share"],
        "models": {t: (None if m is None else m.version) for t, m in models.items()},
        "methods": {
            t: None if m is None else _method_dict(model_method(m))
            for t, m in models.items()
        },
        "outputs": [str(p) for p in outputs],
    }


def _loop_summary(loop) -> dict:
    """The outreach loop of a run, for the flow's result."""
    return {
        "assignments": str(loop.folder),
        "cycles": loop.cycles,
        "measured": loop.measured,
        "lines": list(loop.lines),
        "metrics": dict(loop.metrics),
    }


@flow(name="corecast-score", persist_result=False)
def score_flow(
    data: str,
    as_of: dt.date | None = None,
    out: Path | None = None,
    readiness_model: str = "champion",
    disengagement_model: str = "champion",
    segments: SegmentParameters = SegmentParameters(),
    mlflow_ui_url: str = DEFAULT_MLFLOW_UI_URL,
) -> dict:
    """Score every consenting member; write predictions, the chapter report and report.html.

    Args:
        data: A folder of CSV/Parquet tables or a SQLAlchemy URL.
        as_of: Scoring date (default: the day after the last observed activity).
        out: Output folder (default ``<corecast home>/out``).
        readiness_model: Alias or version of corecast-readiness, or ``none``.
        disengagement_model: Alias or version of corecast-disengagement, or ``none``.
        segments: How scores become segments, and the control group
            (:class:`SegmentParameters`).
        mlflow_ui_url: Base URL of the MLflow UI, for the links in the artifacts.

    Returns:
        Scoring date, counts per segment, model versions, written files and the outreach loop.
    """
    _prepare()
    out = Path(out) if out else default_out_dir()
    tables, result, models, outputs, report, loop = _score_steps(
        data, as_of, out, readiness_model, disengagement_model, segments
    )
    markdown = build_weekly_markdown(
        source=_source_label(data), first_observed=tables.first_observed,
        last_observed=tables.last_observed, result=result, chapters=report.chapters,
        models=models, push=None, outputs=outputs, ui_url=mlflow_ui_url,
        top=segments.chapter_capacity, outreach=loop.lines,
    )
    publish_weekly(markdown, report.chapters, models, mlflow_ui_url)
    return {**_scored_summary(result, models, outputs), "outreach": _loop_summary(loop)}


@flow(name="corecast-push", persist_result=False)
def push_flow(
    predictions: Path,
    delivery: DeliveryParameters = DeliveryParameters(),
) -> dict | None:
    """Push a predictions file to a CRM through the delivery ledger (only what changed).

    Args:
        predictions: ``predictions.parquet`` or ``.csv``.
        delivery: Where and how (:class:`DeliveryParameters`; the CSV sink's default folder is
            ``crm-exports/`` next to the predictions; ``to="none"`` does nothing).

    Returns:
        Counts of the push (``None`` with ``to="none"``).
    """
    _prepare()
    if delivery.to == "none":
        return None
    options = delivery.push_options(Path(predictions).parent)
    outcome = tasks.push_task_for(delivery.to)(Path(predictions), delivery.to, options)
    publish_push(outcome, str(predictions))
    return _push_summary(outcome)


@flow(name="corecast-weekly", persist_result=False)
def weekly_flow(
    data: str,
    as_of: dt.date | None = None,
    out: Path | None = None,
    segments: SegmentParameters = SegmentParameters(),
    delivery: DeliveryParameters = DeliveryParameters(),
    loading: LoadingParameters = LoadingParameters(),
    scale: ScaleParameters = ScaleParameters(),
    readiness_model: str = "champion",
    disengagement_model: str = "champion",
    mlflow_ui_url: str = DEFAULT_MLFLOW_UI_URL,
    labels_fingerprint: str | None = None,
) -> dict:
    """The weekly job: pull outcomes, validate, score with the champions, report, push.

    A data source that breaks the contract fails the run at once with the contract's message.
    Only the push retries (CRM outages), and the ledger makes it send only what changed.

    Args:
        data: A folder of CSV/Parquet tables or a SQLAlchemy URL.
        as_of: Scoring date (default: the day after the last observed activity).
        out: Output folder (default ``<corecast home>/out``).
        segments: How scores become segments, and the control group
            (:class:`SegmentParameters`; ``chapter_capacity`` is also the candidates listed
            per chapter in the summary).
        delivery: Where predictions go and how, and whether outcomes are pulled back first
            (:class:`DeliveryParameters`).
        loading: What loading does with invalid rows (:class:`LoadingParameters`; quarantine
            is not possible with Dask scoring).
        scale: Scoring by member partitions on Dask (:class:`ScaleParameters`).
        readiness_model: Alias or version of corecast-readiness, or ``none``.
        disengagement_model: Alias or version of corecast-disengagement, or ``none``.
        mlflow_ui_url: Base URL of the MLflow UI, for the links in the artifacts.
        labels_fingerprint: The fingerprint of the label settings the configuration expects
            (``LabelConfig.fingerprint``); a champion trained with others is named in the
            summary, the log and the result's ``other_labels``.

    Returns:
        Scoring date, counts per segment, model versions, files, the outreach loop, the push
        and pull counts (``None`` when nothing was pushed or pulled) and what was quarantined
        (``None`` when strict).
    """
    _prepare()
    check_loading_options(loading.on_invalid, scale.dask)
    _dask_scoring(scale)
    out = Path(out) if out else default_out_dir()
    pulled = None
    if delivery.pull_outcomes and delivery.to != "none":
        pulled = _pull_before_scoring(data, delivery.to, delivery.push_options(out))
    tables, result, models, outputs, report, loop = _score_steps(
        data, as_of, out, readiness_model, disengagement_model, segments, scale, loading
    )
    push = None
    if delivery.to != "none":
        options = delivery.push_options(out)
        push = tasks.push_task_for(delivery.to)(out / "predictions.parquet", delivery.to, options)
    markdown = build_weekly_markdown(
        source=_source_label(data), first_observed=tables.first_observed,
        last_observed=tables.last_observed, result=result, chapters=report.chapters,
        models=models, push=push, outputs=outputs, ui_url=mlflow_ui_url,
        top=segments.chapter_capacity, quarantine=tables.quarantine,
        labels_fingerprint=labels_fingerprint, outreach=loop.lines,
    )
    publish_weekly(markdown, report.chapters, models, mlflow_ui_url)
    quarantine = None if tables.quarantine is None else tables.quarantine.as_dict()
    return {
        **_scored_summary(result, models, outputs),
        "outreach": _loop_summary(loop),
        "push": _push_summary(push),
        "pull": pulled,
        "quarantine": quarantine,
        "other_labels": _other_labels(models, labels_fingerprint),
    }


@flow(name="corecast-monthly", persist_result=False)
def monthly_flow(
    data: str,
    as_of: dt.date | None = None,
    out: Path | None = None,
    segments: SegmentParameters = SegmentParameters(),
    delivery: DeliveryParameters = DeliveryParameters(),
    loading: LoadingParameters = LoadingParameters(),
    scale: ScaleParameters = ScaleParameters(),
    labels: LabelParameters = LabelParameters(),
    training: TrainingParameters = TrainingParameters(),
    mlflow_ui_url: str = DEFAULT_MLFLOW_UI_URL,
    labels_fingerprint: str | None = None,
) -> dict:
    """The monthly job: retrain both targets (challenger -> gated promotion), then the weekly job.

    The weekly part scores with whichever versions are champion after the gate: the new ones
    when they were promoted, the previous ones otherwise. See :func:`train_flow` and
    :func:`weekly_flow` for the parameters; ``loading`` applies to both loads (strict by
    default). ``labels_fingerprint`` defaults to the fingerprint of this run's own ``labels``.

    Returns:
        ``{"training": [...], "weekly": {...}}``.
    """
    _prepare()
    check_loading_options(loading.on_invalid, scale.dask)  # fail before training
    _dask_scoring(scale)
    trained = train_flow(
        data, labels=labels, training=training, loading=loading, mlflow_ui_url=mlflow_ui_url
    )
    weekly = weekly_flow(
        data, as_of=as_of, out=out, segments=segments, delivery=delivery, loading=loading,
        scale=scale, mlflow_ui_url=mlflow_ui_url,
        labels_fingerprint=labels_fingerprint or labels.label_config().fingerprint(),
    )
    return {"training": trained, "weekly": weekly}


def _project_parameters(config: str, monthly: bool) -> dict:
    """A job's parameters from the project file ``config``, read now (edits apply to the next
    run); a literal password of the data source goes to the environment, not to the stored
    parameters of the run it starts."""
    from features.contract import password_to_environment
    from features.errors import ConfigError
    from pipelines.project import load_effective, monthly_parameters, weekly_parameters

    project = load_effective(config).project
    if not project.data.source:
        raise ConfigError(f"{config}: data.source is not set (the folder or URL of the tables)")
    parameters = weekly_parameters(project)
    parameters["data"], secrets = password_to_environment(parameters["data"])
    os.environ.update(secrets)
    if monthly:
        parameters.update(monthly_parameters(project))
    return parameters


@flow(name="corecast-weekly-from-project", persist_result=False)
def weekly_from_project(config: str) -> dict:
    """The weekly job with every setting read from a project file when the run starts.

    For deployments (``prefect.yaml``): the file is the one place to change, and each run
    reads it anew. Same result as :func:`weekly_flow` with those settings.

    Args:
        config: Path of the project file (``corecast.toml``) on the machine that runs the flow.
    """
    _prepare()
    return weekly_flow(**_project_parameters(config, monthly=False))


@flow(name="corecast-monthly-from-project", persist_result=False)
def monthly_from_project(config: str) -> dict:
    """The monthly job (retrain with the file's core role and windows, then the weekly job)
    with every setting read from a project file when the run starts.

    Args:
        config: Path of the project file (``corecast.toml``) on the machine that runs the flow.
    """
    _prepare()
    return monthly_flow(**_project_parameters(config, monthly=True))
