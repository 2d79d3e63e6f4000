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
from typing import Annotated, Any, Literal

from prefect import flow
from pydantic import Field

from pipelines import tasks
from pipelines.artifacts import (
    DEFAULT_MLFLOW_UI_URL,
    build_weekly_markdown,
    publish_features,
    publish_push,
    publish_training,
    publish_weekly,
)
from serving.columns import OMITTABLE_FIELDS
from serving.delivery import DEFAULT_HOLDOUT_SHARE, DEFAULT_MIN_DELIVERED_SHARE
from serving.segments import SegmentConfig

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

#: The segment defaults the flows' parameters show (their home: ``SegmentConfig``).
_SEGMENTS = SegmentConfig()
#: Where predictions go: a CRM, a signed webhook, a CSV file, or nowhere.
SinkKind = Literal["csv", "hubspot", "salesforce", "webhook", "none"]
#: A prediction target.
TargetName = Literal["readiness", "disengagement"]
#: A CRM field that can be left out of pushes (see ``docs/crm.md``; the member id cannot).
CrmField = Literal[OMITTABLE_FIELDS]
Days = Annotated[int, Field(gt=0, description="A number of days (> 0).")]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
#: The share of flagged members held back as the control group (``serving.outreach``).
HoldoutShare = Annotated[float, Field(ge=0.0, lt=1.0)]
PauseDays = Annotated[int, Field(ge=0)]
Share = Annotated[float, Field(gt=0.0, le=1.0)]
Slots = Annotated[int, Field(ge=0)]
Count = Annotated[int, Field(ge=1)]
Tolerance = Annotated[float, Field(ge=0.0)]
#: What loading does with rows that break the data contract (see ``docs/data-contract.md``).
OnInvalid = Literal["strict", "quarantine"]
InvalidShare = Annotated[float, Field(ge=0.0, le=1.0)]


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


def _loading(on_invalid: str, max_invalid_share: float, quarantine_dir: Path | None) -> dict:
    """Keyword arguments of :data:`pipelines.tasks.load_data` for these flow parameters."""
    return {
        "on_invalid": on_invalid,
        "max_invalid_share": max_invalid_share,
        "quarantine_dir": quarantine_dir,
    }


def _source_label(data: str) -> str:
    from features.contract import describe_source

    return describe_source(data)


def _label_config(
    horizon_days: int, readiness_horizon_days: int, active_within_days: int, core_role: str
):
    from features.labels import LabelConfig

    return LabelConfig(
        horizon_days=horizon_days,
        active_within_days=active_within_days,
        readiness_horizon_days=readiness_horizon_days,
        core_role=core_role,
    )


def _feature_config(overrides: dict[str, Any] | None):
    """The feature settings of a training run (``None``: corecast's defaults)."""
    from features.feature_config import FeatureConfig

    return FeatureConfig.from_dict(dict(overrides)) if overrides else None


def _train_configs(
    capacity_share: float, chapter_top: int, tolerance: float, overrides: dict[str, Any]
) -> dict:
    from dataclasses import fields

    from features.errors import ConfigError
    from models.config import TARGETS, TrainConfig

    known = {f.name for f in fields(TrainConfig)} - {"target"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(
            f"train_overrides: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    base = {
        "capacity_share": capacity_share,
        "chapter_top": chapter_top,
        "promotion_tolerance": tolerance,
        **overrides,
    }
    return {target: TrainConfig(target=target, **base) for target in TARGETS}


def _push_options(
    *,
    out: Path,
    dry_run: bool,
    full: bool,
    csv_path: Path | None,
    ledger: Path | None,
    crm_url: str | None,
    id_property: str,
    to: str,
    omit_fields: list[str] | None = None,
    min_delivered_share: float = DEFAULT_MIN_DELIVERED_SHARE,
    field_names: dict[str, str] | None = None,
):
    """Push options of a flow run; the CSV sink writes time-stamped files in ``out/crm-exports``.

    ``omit_fields`` leaves fields out of the payload (and so out of the change fingerprint of
    the delta push); the volatile fields never count as a change anyway
    (``PushOptions.volatile_fields``).
    """
    from dataclasses import replace

    from serving.crm import CsvConfig, PushOptions

    options = PushOptions(
        ledger_path=ledger, full=full, dry_run=dry_run, min_delivered_share=min_delivered_share
    )
    csv = CsvConfig(path=csv_path) if csv_path else CsvConfig(folder=out / "crm-exports")
    options = replace(
        options, csv=csv, hubspot=replace(options.hubspot, id_property=id_property)
    )
    options = options.with_mapping(to, field_names).without_fields(to, omit_fields)
    return options.with_crm_url(to, crm_url)


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
            newest_export(options)
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
    horizon_days: Days = 90,
    readiness_horizon_days: Days = 180,
    active_within_days: Days = 90,
    core_role: str = "ambassador",
    capacity_share: Share = 0.01,
    chapter_top: Count = 3,
    tolerance: Tolerance = 0.0,
    force_promote: bool = False,
    train_overrides: dict[str, Any] | None = None,
    feature_overrides: dict[str, Any] | None = None,
    mlflow_ui_url: str = DEFAULT_MLFLOW_UI_URL,
    on_invalid: OnInvalid = "strict",
    max_invalid_share: InvalidShare = 0.01,
    quarantine_dir: Path | None = None,
) -> list[dict]:
    """Train both targets, log the runs to MLflow, register challengers and gate promotion.

    Args:
        data: A folder of CSV/Parquet tables or a SQLAlchemy URL.
        targets: Targets to train (default: every target the data supports).
        horizon_days: Disengagement label window.
        readiness_horizon_days: Readiness label window.
        active_within_days: Disengagement eligibility: active within this many days.
        core_role: The role readiness predicts.
        capacity_share: Outreach capacity as a share of eligible members (k of precision@k).
        chapter_top: Candidates per chapter for the per-chapter precision.
        tolerance: Allowed shortfall of a challenger vs the champion on the primary metric.
        force_promote: Make the new versions champion whatever the gate says (recorded).
        feature_overrides: :class:`features.feature_config.FeatureConfig` settings by name
            (``activity_types``, ``organizing_types``, ``organizing_roles``, ...).
        train_overrides: Other :class:`models.config.TrainConfig` settings by name
            (e.g. ``{"candidates": ["logreg"], "threads": 1}``).
        mlflow_ui_url: Base URL of the MLflow UI, for the links in the artifacts.
        on_invalid: ``strict`` (any invalid row fails the run) or ``quarantine`` (invalid rows
            are set aside; see :func:`features.contract.load_tables`).
        max_invalid_share: With ``quarantine``: the largest share of a table's rows that may be
            set aside.
        quarantine_dir: With ``quarantine``: folder of the quarantine files (default
            ``<corecast home>/quarantine``).

    Returns:
        One summary per target: status, version, run id, gate decision, key metrics.
    """
    from models.config import TARGETS
    from simulator.oracle import oracle_for

    _prepare()
    labels = _label_config(horizon_days, readiness_horizon_days, active_within_days, core_role)
    configs = _train_configs(capacity_share, chapter_top, tolerance, dict(train_overrides or {}))
    features = _feature_config(feature_overrides)
    tables = tasks.load_data(data, **_loading(on_invalid, max_invalid_share, quarantine_dir))
    wanted = list(dict.fromkeys(targets)) if targets else list(TARGETS)
    oracle = oracle_for(data)  # the simulator's true odds when ``data`` is a simulated folder
    outcomes = [
        tasks.train_target_model(
            tables, target, required=targets is not None, labels=labels,
            train_configs=configs, force_promote=force_promote, features=features,
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
    chapter_capacity: int,
    at_risk: float,
    ready_min: float,
    nurture_min: float,
    dask: dict | None = None,
    loading: dict | None = None,
    holdout_share: float = DEFAULT_HOLDOUT_SHARE,
    declined_pause_days: int = _SEGMENTS.declined_pause_days,
):
    from serving.outreach import OutreachConfig
    from serving.score import ScoringConfig
    from serving.segments import SegmentConfig

    config = ScoringConfig(
        segments=SegmentConfig(
            chapter_capacity=chapter_capacity, ready_min=ready_min, nurture_min=nurture_min,
            at_risk=at_risk, declined_pause_days=declined_pause_days,
        ),
        outreach=OutreachConfig(holdout_share=holdout_share),
    )
    tables = tasks.load_data(data, **(loading or {}))
    readiness, disengagement = tasks.load_models(readiness_model, disengagement_model)
    if dask:
        result = _score_on_dask(data, as_of, readiness, disengagement, config, dask)
    else:
        result = tasks.score_members_task(tables, as_of, readiness, disengagement, config)
    skipped = [t for t, ref in (("readiness", readiness_model),
                                ("disengagement", disengagement_model)) if ref == "none"]
    tasks.check_scores(result, tables, readiness, disengagement, skipped)
    written = tasks.write_predictions_task(result, out)
    models = {"readiness": readiness, "disengagement": disengagement}
    loop = tasks.outreach_loop_task(data, tables, result, models, out)
    report = tasks.write_report_task(result, tables, out, loop.lines)
    return tables, result, models, [*written, *loop.paths, *report.paths], report, loop


def _dask_scoring(
    dask: bool, dask_address: str | None, partitions: int, dask_workers: int | None
) -> dict | None:
    """Checked options of scoring by member partitions on Dask (``None``: on one process)."""
    from pipelines.scale import check_dask_options

    check_dask_options(dask, dask_address, partitions if dask else None, dask_workers)
    if not dask:
        return None
    return {"address": dask_address, "n_parts": partitions, "n_workers": dask_workers}


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
    chapter_capacity: Slots = _SEGMENTS.chapter_capacity,
    at_risk: Probability = _SEGMENTS.at_risk,
    ready_min: Probability = _SEGMENTS.ready_min,
    nurture_min: Probability = _SEGMENTS.nurture_min,
    holdout_share: HoldoutShare = DEFAULT_HOLDOUT_SHARE,
    declined_pause_days: PauseDays = _SEGMENTS.declined_pause_days,
    mlflow_ui_url: str = DEFAULT_MLFLOW_UI_URL,
) -> dict:
    """Score every consenting member; write predictions, the chapter report and report.html.

    Args:
        data: A folder of CSV/Parquet tables or a SQLAlchemy URL.
        as_of: Scoring date (default: the day after the last observed activity).
        out: Output folder (default ``<corecast home>/out``).
        readiness_model: Alias or version of corecast-readiness, or ``none``.
        disengagement_model: Alias or version of corecast-disengagement, or ``none``.
        chapter_capacity: ``ready-now`` slots per chapter.
        at_risk: Disengagement score from which a member is at risk.
        ready_min: Minimum readiness score for ``ready-now``.
        nurture_min: Minimum readiness score for ``nurture``.
        holdout_share: Share of the flagged members held back this cycle as the control group.
        declined_pause_days: Days after declining an offer of the core role during which a
            member is not ``ready-now`` (``serving.segments``; 0: no pause).
        mlflow_ui_url: Base URL of the MLflow UI, for the links in the artifacts.

    Returns:
        Scoring date, counts per segment, model versions and written files.
    """
    _prepare()
    out = Path(out) if out else default_out_dir()
    tables, result, models, outputs, report, loop = _score_steps(
        data, as_of, out, readiness_model, disengagement_model, chapter_capacity, at_risk,
        ready_min, nurture_min, holdout_share=holdout_share,
        declined_pause_days=declined_pause_days,
    )
    markdown = build_weekly_markdown(
        source=_source_label(data), first_observed=tables.first_observed,
        last_observed=tables.last_observed, result=result, chapters=report.chapters,
        models=models, push=None, outputs=outputs, ui_url=mlflow_ui_url, top=chapter_capacity,
        outreach=loop.lines,
    )
    publish_weekly(markdown, report.chapters, models, mlflow_ui_url)
    return {**_scored_summary(result, models, outputs), "outreach": _loop_summary(loop)}


@flow(name="corecast-push", persist_result=False)
def push_flow(
    predictions: Path,
    to: SinkKind = "csv",
    dry_run: bool = False,
    full: bool = False,
    csv_path: Path | None = None,
    ledger: Path | None = None,
    crm_url: str | None = None,
    id_property: str = "email",
    omit_fields: list[CrmField] | None = None,
    min_delivered_share: Probability = DEFAULT_MIN_DELIVERED_SHARE,
    field_names: dict[CrmField, str] | None = None,
) -> dict | None:
    """Push a predictions file to a CRM through the delivery ledger (only what changed).

    Args:
        predictions: ``predictions.parquet`` or ``.csv``.
        to: ``csv``, ``hubspot``, ``salesforce``, ``webhook`` (or ``none``: do nothing).
        dry_run: Report what would be sent; send and write nothing.
        full: Send unchanged records too.
        csv_path: File of the CSV sink (default: time-stamped files in ``crm-exports/`` next to
            the predictions).
        ledger: Delivery ledger (default ``<corecast home>/ledger.sqlite``).
        crm_url: HubSpot API base URL, Salesforce instance URL or webhook URL.
        id_property: HubSpot unique property matching members (``email``).
        omit_fields: CRM fields left out of the payload entirely (e.g. ``["reasons"]`` for
            a CRM without that property). Not needed to keep re-scores quiet: the delta push
            already ignores the volatile fields (scoring time, as-of, model versions).
        min_delivered_share: The push fails (and the run with it) when less than this share
            of the planned records was delivered; between it and everything, the delivery is
            partial (a line in the summary artifact).
        field_names: CRM names of fields (HubSpot properties, Salesforce fields, CSV columns)
            instead of the ``corecast_*`` defaults, e.g. ``{"segment": "ambassador_stage"}``.

    Returns:
        Counts of the push (``None`` with ``to="none"``).
    """
    _prepare()
    if to == "none":
        return None
    options = _push_options(
        out=Path(predictions).parent, dry_run=dry_run, full=full, csv_path=csv_path,
        ledger=ledger, crm_url=crm_url, id_property=id_property, to=to, omit_fields=omit_fields,
        min_delivered_share=min_delivered_share, field_names=field_names,
    )
    outcome = tasks.push_task_for(to)(Path(predictions), to, options)
    publish_push(outcome, str(predictions))
    return _push_summary(outcome)


@flow(name="corecast-weekly", persist_result=False)
def weekly_flow(
    data: str,
    as_of: dt.date | None = None,
    out: Path | None = None,
    to: SinkKind = "csv",
    dry_run: bool = False,
    full: bool = False,
    chapter_capacity: Slots = _SEGMENTS.chapter_capacity,
    at_risk: Probability = _SEGMENTS.at_risk,
    ready_min: Probability = _SEGMENTS.ready_min,
    nurture_min: Probability = _SEGMENTS.nurture_min,
    holdout_share: HoldoutShare = DEFAULT_HOLDOUT_SHARE,
    declined_pause_days: PauseDays = _SEGMENTS.declined_pause_days,
    readiness_model: str = "champion",
    disengagement_model: str = "champion",
    csv_path: Path | None = None,
    ledger: Path | None = None,
    crm_url: str | None = None,
    id_property: str = "email",
    omit_fields: list[CrmField] | None = None,
    min_delivered_share: Probability = DEFAULT_MIN_DELIVERED_SHARE,
    field_names: dict[CrmField, str] | None = None,
    mlflow_ui_url: str = DEFAULT_MLFLOW_UI_URL,
    dask: bool = False,
    dask_address: str | None = None,
    partitions: Count = 2,
    dask_workers: Count | None = None,
    on_invalid: OnInvalid = "strict",
    max_invalid_share: InvalidShare = 0.01,
    quarantine_dir: Path | None = None,
    labels_fingerprint: str | None = None,
    pull_outcomes: bool = True,
) -> dict:
    """The weekly job: validate, score with the champions, write the report, push to a CRM.

    A data source that breaks the contract fails the run at once with the contract's message.
    Only the push retries (CRM outages), and the ledger makes it send only what changed.

    Args:
        data: A folder of CSV/Parquet tables or a SQLAlchemy URL.
        as_of: Scoring date (default: the day after the last observed activity).
        out: Output folder (default ``<corecast home>/out``).
        to: Where to push: ``csv``, ``hubspot``, ``salesforce``, ``webhook`` or ``none``.
        dry_run: Plan the push only; send and write nothing to the CRM or the ledger.
        full: Push unchanged records too.
        chapter_capacity: ``ready-now`` slots per chapter (also the candidates listed per
            chapter in the summary).
        at_risk: Disengagement score from which a member is at risk.
        ready_min: Minimum readiness score for ``ready-now``.
        nurture_min: Minimum readiness score for ``nurture``.
        readiness_model: Alias or version of corecast-readiness, or ``none``.
        disengagement_model: Alias or version of corecast-disengagement, or ``none``.
        csv_path: File of the CSV sink (default: time-stamped files in ``<out>/crm-exports``).
        ledger: Delivery ledger (default ``<corecast home>/ledger.sqlite``).
        crm_url: HubSpot API base URL, Salesforce instance URL or webhook URL.
        id_property: HubSpot unique property matching members.
        omit_fields: CRM fields left out of the payload entirely (e.g. ``["reasons"]`` for
            a CRM without that property). Not needed to keep re-scores quiet: the delta push
            already ignores the volatile fields (scoring time, as-of, model versions).
        min_delivered_share: The push fails (and the run with it) when less than this share
            of the planned records was delivered; between it and everything, the delivery is
            partial (a line in the summary artifact).
        field_names: CRM names of fields (HubSpot properties, Salesforce fields, CSV columns)
            instead of the ``corecast_*`` defaults, e.g. ``{"segment": "ambassador_stage"}``.
        holdout_share: Share of the flagged members (ready-now, at-risk) held back this cycle
            as the control group: their ``action`` is ``hold`` (``serving.outreach``).
        declined_pause_days: Days after declining an offer of the core role during which a
            member is not ``ready-now`` (``serving.segments``; 0: no pause).
        mlflow_ui_url: Base URL of the MLflow UI, for the links in the artifacts.
        dask: Score by member partitions on Dask (:mod:`pipelines.scale`); the predictions
            are the same as on one process.
        dask_address: ``tcp://host:port`` of a running Dask scheduler (default: a new local
            cluster for the run).
        partitions: Member partitions scored in parallel (with ``dask``).
        dask_workers: Worker processes of the local cluster (default: Dask's choice).
        on_invalid: ``strict`` (the default: any invalid row fails the run) or ``quarantine``
            (invalid rows are set aside and counted in the summary; not with ``dask``).
        max_invalid_share: With ``quarantine``: the largest share of a table's rows that may be
            set aside (above it the run fails).
        quarantine_dir: With ``quarantine``: folder of the quarantine files (default
            ``<corecast home>/quarantine``).
        labels_fingerprint: The fingerprint of the label settings the configuration expects
            (``LabelConfig.fingerprint``); a champion trained with others is named in the
            summary, the log and the result's ``other_labels``.
        pull_outcomes: Before scoring, read the outreach outcomes back from the sink
            (HubSpot, Salesforce, or the newest CSV export) into ``<data>/outreach.parquet``
            (a local data folder only; see ``corecast pull``).

    Returns:
        Scoring date, counts per segment, model versions, files, the push counts, the pull
        counts (``None`` when nothing was pulled) and what was quarantined (``None`` when
        strict).
    """
    _prepare()
    check_loading_options(on_invalid, dask)
    scaled = _dask_scoring(dask, dask_address, partitions, dask_workers)
    out = Path(out) if out else default_out_dir()
    pulled = None
    if pull_outcomes and to != "none":
        pulled = _pull_before_scoring(data, to, _push_options(
            out=out, dry_run=dry_run, full=full, csv_path=csv_path, ledger=ledger,
            crm_url=crm_url, id_property=id_property, to=to, field_names=field_names,
        ))
    tables, result, models, outputs, report, loop = _score_steps(
        data, as_of, out, readiness_model, disengagement_model, chapter_capacity, at_risk,
        ready_min, nurture_min, scaled, _loading(on_invalid, max_invalid_share, quarantine_dir),
        holdout_share=holdout_share,
        declined_pause_days=declined_pause_days,
    )
    push = None
    if to != "none":
        options = _push_options(
            out=out, dry_run=dry_run, full=full, csv_path=csv_path, ledger=ledger,
            crm_url=crm_url, id_property=id_property, to=to, omit_fields=omit_fields,
            min_delivered_share=min_delivered_share, field_names=field_names,
        )
        push = tasks.push_task_for(to)(out / "predictions.parquet", to, options)
    markdown = build_weekly_markdown(
        source=_source_label(data), first_observed=tables.first_observed,
        last_observed=tables.last_observed, result=result, chapters=report.chapters,
        models=models, push=push, outputs=outputs, ui_url=mlflow_ui_url, top=chapter_capacity,
        quarantine=tables.quarantine, labels_fingerprint=labels_fingerprint,
        outreach=loop.lines,
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
    to: SinkKind = "csv",
    dry_run: bool = False,
    full: bool = False,
    chapter_capacity: Slots = _SEGMENTS.chapter_capacity,
    at_risk: Probability = _SEGMENTS.at_risk,
    ready_min: Probability = _SEGMENTS.ready_min,
    nurture_min: Probability = _SEGMENTS.nurture_min,
    holdout_share: HoldoutShare = DEFAULT_HOLDOUT_SHARE,
    declined_pause_days: PauseDays = _SEGMENTS.declined_pause_days,
    csv_path: Path | None = None,
    ledger: Path | None = None,
    crm_url: str | None = None,
    id_property: str = "email",
    omit_fields: list[CrmField] | None = None,
    min_delivered_share: Probability = DEFAULT_MIN_DELIVERED_SHARE,
    field_names: dict[CrmField, str] | None = None,
    horizon_days: Days = 90,
    readiness_horizon_days: Days = 180,
    active_within_days: Days = 90,
    core_role: str = "ambassador",
    capacity_share: Share = 0.01,
    chapter_top: Count = 3,
    tolerance: Tolerance = 0.0,
    force_promote: bool = False,
    train_overrides: dict[str, Any] | None = None,
    feature_overrides: dict[str, Any] | None = None,
    mlflow_ui_url: str = DEFAULT_MLFLOW_UI_URL,
    dask: bool = False,
    dask_address: str | None = None,
    partitions: Count = 2,
    dask_workers: Count | None = None,
    on_invalid: OnInvalid = "strict",
    max_invalid_share: InvalidShare = 0.01,
    quarantine_dir: Path | None = None,
    labels_fingerprint: str | None = None,
) -> dict:
    """The monthly job: retrain both targets (challenger -> gated promotion), then the weekly job.

    The weekly part scores with whichever versions are champion after the gate: the new ones
    when they were promoted, the previous ones otherwise. See :func:`train_flow` and
    :func:`weekly_flow` for the parameters; ``on_invalid``, ``max_invalid_share`` and
    ``quarantine_dir`` apply to both loads (strict by default). ``labels_fingerprint`` defaults
    to the fingerprint of this run's own label settings.

    Returns:
        ``{"training": [...], "weekly": {...}}``.
    """
    _prepare()
    check_loading_options(on_invalid, dask)  # fail before training
    _dask_scoring(dask, dask_address, partitions, dask_workers)
    loading = _loading(on_invalid, max_invalid_share, quarantine_dir)
    training = train_flow(
        data,
        horizon_days=horizon_days,
        readiness_horizon_days=readiness_horizon_days,
        active_within_days=active_within_days,
        core_role=core_role,
        capacity_share=capacity_share,
        chapter_top=chapter_top,
        tolerance=tolerance,
        force_promote=force_promote,
        train_overrides=train_overrides,
        feature_overrides=feature_overrides,
        mlflow_ui_url=mlflow_ui_url,
        **loading,
    )
    weekly = weekly_flow(
        data,
        as_of=as_of,
        out=out,
        to=to,
        dry_run=dry_run,
        full=full,
        chapter_capacity=chapter_capacity,
        at_risk=at_risk,
        ready_min=ready_min,
        nurture_min=nurture_min,
        holdout_share=holdout_share,
        declined_pause_days=declined_pause_days,
        csv_path=csv_path,
        ledger=ledger,
        crm_url=crm_url,
        id_property=id_property,
        omit_fields=omit_fields,
        min_delivered_share=min_delivered_share,
        field_names=field_names,
        mlflow_ui_url=mlflow_ui_url,
        dask=dask,
        dask_address=dask_address,
        partitions=partitions,
        dask_workers=dask_workers,
        labels_fingerprint=labels_fingerprint or _label_config(
            horizon_days, readiness_horizon_days, active_within_days, core_role
        ).fingerprint(),
        **loading,
    )
    return {"training": training, "weekly": weekly}


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
