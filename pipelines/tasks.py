"""Prefect tasks: thin wrappers over the domain functions, one step of a flow each.

Every task calls domain code and logs one line about what it did; none holds domain logic.
Results are kept in memory only (no result persistence, no caching): the inputs are data frames
and models that must not be hashed or written to Prefect's result store.

Retries: only :data:`push_scores` talks to an outside system (a CRM or a webhook) and retries,
and only on :class:`~features.errors.CrmError` (an outage that outlived the sink's own retries);
the delivery ledger makes a retry send exactly the records not yet confirmed. The CSV sink is a
local file and does not retry (see :func:`push_task_for`). A broken data source fails
:data:`load_data` at once with the data contract's message.

Unit tests call the plain functions through ``.fn``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from features.quarantine import DEFAULT_MAX_INVALID_SHARE
from features.tables import Tables
from pipelines.steps import WrittenReport, close_outreach_loop, write_report

__all__ = [
    "pull_outreach",
    "PushOutcome",
    "WrittenReport",
    "load_data",
    "build_feature_file",
    "train_target_model",
    "load_models",
    "score_members_task",
    "check_scores",
    "log_scored",
    "write_predictions_task",
    "write_report_task",
    "push_scores",
    "push_task_for",
    "retry_on_crm_outage",
]

PUSH_RETRIES = 2
PUSH_RETRY_DELAYS = [30, 120]


def _logger():
    """The run logger inside a flow or task run, a plain logger when called through ``.fn``."""
    import logging

    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("corecast.pipelines")


@dataclass(frozen=True, eq=False)
class PushOutcome:
    """What a push did.

    Attributes:
        report: The push report (counts, duration, failure reasons).
        files: Files written by the CSV sink (empty for other sinks, and when nothing changed).
        partial: The warning of a partial delivery (``None`` when everything was delivered).
    """

    report: object
    files: tuple[Path, ...]
    partial: str | None = None


@task(name="validate-data", persist_result=False, cache_policy=NO_CACHE)
def load_data(
    source: str,
    on_invalid: str = "strict",
    max_invalid_share: float = DEFAULT_MAX_INVALID_SHARE,
    quarantine_dir: Path | None = None,
) -> Tables:
    """Load a data source and validate it against the data contract.

    Args:
        source: A folder of CSV/Parquet tables or a SQLAlchemy URL.
        on_invalid: ``strict`` (any invalid row refuses the source) or ``quarantine`` (invalid
            rows are set aside, see :func:`features.contract.load_tables`); each table with rows
            set aside is logged as a warning.
        max_invalid_share: With ``quarantine``: the largest share of a table's rows set aside.
        quarantine_dir: With ``quarantine``: folder of the quarantine files (default
            ``<corecast home>/quarantine``).

    Raises:
        ContractError: The data breaks the contract (the message names file, column and rows).
    """
    from features.contract import describe_source, load_tables
    from features.quarantine import default_quarantine_dir

    if on_invalid == "quarantine" and quarantine_dir is None:
        quarantine_dir = default_quarantine_dir()
    tables = load_tables(
        source, on_invalid=on_invalid, max_invalid_share=max_invalid_share,
        quarantine_dir=quarantine_dir,
    )
    roles = 0 if tables.roles is None else len(tables.roles)
    logger = _logger()
    logger.info(
        "%s: %d members, %d activities, %d role spells; activity from %s to %s",
        describe_source(source), len(tables.members), len(tables.activities), roles,
        f"{tables.first_observed:%Y-%m-%d}", f"{tables.last_observed:%Y-%m-%d}",
    )
    if tables.quarantine is not None:
        lines = tables.quarantine.lines()
        for line in lines:
            logger.warning("quarantined %s", line)
        if not lines:
            logger.info("quarantine: no invalid rows")
    return tables


@task(name="build-features", persist_result=False, cache_policy=NO_CACHE)
def build_feature_file(tables: Tables, as_of: pd.Timestamp, out: Path) -> tuple[Path, int, int]:
    """Build point-in-time features at ``as_of`` and write them to ``out`` (Parquet).

    Returns:
        ``(path, members, features)``.
    """
    from features.build import build_features
    from features.io import write_parquet_atomic

    frame = build_features(tables, as_of)
    path = write_parquet_atomic(frame.reset_index(), out)
    _logger().info(
        "features: %d members x %d columns at %s -> %s",
        len(frame), frame.shape[1], f"{as_of:%Y-%m-%d}", path,
    )
    return path, len(frame), frame.shape[1]


@task(name="train-and-gate", persist_result=False, cache_policy=NO_CACHE)
def train_target_model(
    tables: Tables,
    target: str,
    *,
    required: bool = False,
    labels=None,
    train_configs=None,
    force_promote: bool = False,
    features=None,
    oracle=None,
):
    """Train one target (a model, else a ranking rule), log it to MLflow, register a
    challenger and gate its promotion.

    Args:
        tables: Validated data.
        target: ``"readiness"`` or ``"disengagement"``.
        required: When false (the flows' default, "every target the data supports"), a target
            that gets neither a model nor a rule gives an outcome with status
            ``"unavailable"`` / ``"insufficient_data"``; when true it raises (both as
            :func:`models.workflow.train_and_register` does with ``required``).
        oracle: The data's true probabilities (:class:`models.train.Oracle`), when known.

    Returns:
        The :class:`models.workflow.TrainOutcome` (its ``method``, ``validated`` and ``notes``
        say what produces the scores and why).
    """
    from models.workflow import train_and_register

    logger = _logger()
    logger.info("training %s on %d members ...", target, len(tables.members))
    [outcome] = train_and_register(
        tables, [target], labels=labels, train_configs=train_configs, features=features,
        force_promote=force_promote, required=required, oracle=oracle,
    )
    method = "" if outcome.method is None else (
        f" [{outcome.method}, {'validated' if outcome.validated else 'not validated'}]"
    )
    logger.info("%s: %s%s - %s", outcome.target, outcome.status, method, outcome.message)
    for note in outcome.notes:
        logger.info("%s: %s", outcome.target, note)
    return outcome


@task(name="load-models", persist_result=False, cache_policy=NO_CACHE)
def load_models(readiness: str = "champion", disengagement: str = "champion") -> tuple:
    """Load the registered models to score with.

    Args:
        readiness: Alias or version of the readiness model, or ``"none"``. A missing readiness
            champion is allowed (data without a roles table has no readiness model): that
            score is then left out.
        disengagement: Alias or version of the disengagement model, or ``"none"``.

    Returns:
        ``(readiness_model, disengagement_model)``; either may be ``None``.

    Raises:
        ModelNotFound: A model asked for (other than the readiness champion) does not exist.
    """
    from models.registry import load_scoring_models

    logger = _logger()
    models = dict(zip(("readiness", "disengagement"),
                      load_scoring_models(readiness, disengagement), strict=True))
    for target, ref in (("readiness", readiness), ("disengagement", disengagement)):
        model = models[target]
        if model is None and ref != "none":
            logger.warning("no %s champion: scoring without it", target)
        elif model is not None:
            logger.info("%s: corecast-%s v%s (%s)", target, target, model.version, ref)
    return models["readiness"], models["disengagement"]


@task(name="score-members", persist_result=False, cache_policy=NO_CACHE)
def score_members_task(tables: Tables, as_of, readiness, disengagement, config):
    """Score every consenting member (features rebuilt with each model's own settings).

    Returns:
        The :class:`serving.score.ScoreResult`.
    """
    from serving.score import score_members

    result = score_members(tables, as_of, readiness, disengagement, config)
    log_scored(result)
    return result


def log_scored(result, where: str = "") -> None:
    """Log one line about a scoring result (``where``: e.g. how it was computed)."""
    _logger().info(
        "scored %d members at %s%s (features: %d members x %d columns); segments: %s",
        result.meta["members_scored"], f"{result.as_of:%Y-%m-%d}", f" {where}" if where else "",
        len(result.features), result.features.shape[1], result.meta["segments"],
    )


@task(name="check-scores", persist_result=False, cache_policy=NO_CACHE)
def check_scores(result, tables: Tables, readiness, disengagement, skipped=()) -> None:
    """Fail before anything is written when a score column would be empty.

    Raises:
        InsufficientDataError: With every reason (:func:`serving.score.empty_score_reasons`).
    """
    from features.errors import InsufficientDataError
    from serving.score import empty_score_reasons

    reasons = empty_score_reasons(result, tables, readiness, disengagement, skipped)
    if reasons:
        raise InsufficientDataError("; ".join(reasons) + "; nothing was written")


@task(name="write-predictions", persist_result=False, cache_policy=NO_CACHE)
def write_predictions_task(result, out: Path) -> list[Path]:
    """Write ``predictions.parquet`` and ``predictions.csv`` into ``out``."""
    from serving.score import write_predictions

    paths = write_predictions(result.predictions, out)
    _logger().info("wrote %s", ", ".join(str(p) for p in paths))
    return paths


@task(name="write-report", persist_result=False, cache_policy=NO_CACHE)
def write_report_task(result, tables: Tables, out: Path, outreach=()) -> WrittenReport:
    """Build the chapter succession report and write ``chapter_report.csv`` + ``report.html``
    (:func:`pipelines.steps.write_report`)."""
    report = write_report(result, tables, out, outreach)
    _logger().info("chapter report: %d chapters -> %s", len(report.chapters), report.paths[-1])
    return report


@task(name="outreach-loop", persist_result=False, cache_policy=NO_CACHE)
def outreach_loop_task(data: str, tables: Tables, result, models: dict, out: Path):
    """Record this cycle in the assignment log, measure the earlier ones and log the figures
    (:func:`pipelines.steps.close_outreach_loop`)."""
    loop = close_outreach_loop(data, tables, result, models, out)
    for line in loop.lines:
        _logger().info("%s", line)
    return loop


def retry_on_crm_outage(task, task_run, state) -> bool:
    """Retry condition of :data:`push_scores`: retry a :class:`CrmError`, nothing else.

    A missing token or a bad option (:class:`~features.errors.ConfigError`), a broken
    predictions table (:class:`~features.errors.ContractError`), a request the CRM refused
    (:class:`~features.errors.CrmRefused`: a bad token, a missing scope, an unknown property)
    or a delivery below the share asked for will not get better by waiting.
    """
    from features.errors import CrmError, CrmRefused

    try:
        state.result()
    except CrmRefused:
        return False
    except CrmError:
        return True
    except Exception:  # noqa: BLE001 - any other failure is final
        return False
    return False


@task(
    name="push-to-crm",
    persist_result=False,
    cache_policy=NO_CACHE,
    retries=PUSH_RETRIES,
    retry_delay_seconds=PUSH_RETRY_DELAYS,
    retry_condition_fn=retry_on_crm_outage,
)
def push_scores(predictions: Path, kind: str, options) -> PushOutcome:
    """Push a predictions file to a sink through the delivery ledger (delta push).

    Args:
        predictions: ``predictions.parquet`` written by :data:`write_predictions_task`.
        kind: ``csv``, ``hubspot``, ``salesforce`` or ``webhook``.
        options: :class:`serving.crm.PushOptions`.

    Raises:
        CrmError: The sink failed after its own retries (the task then retries; the ledger
            makes that resend only what was not confirmed).
        ConfigError: A missing credential or setting (not retried).
        DeliveryFailed: Less than ``options.min_delivered_share`` of the planned records was
            delivered (not retried: the flow ends Failed, naming the dead letters).
    """
    from serving.crm import (
        Ledger,
        build_sink,
        check_delivery,
        default_ledger_path,
        load_predictions,
    )
    from serving.crm import push_predictions as push

    frame = load_predictions(predictions)
    sink = build_sink(kind, options, require_credentials=not options.dry_run)
    with Ledger(options.ledger_path or default_ledger_path(), readonly=options.dry_run) as ledger:
        report = push(
            frame, sink, ledger, full=options.full, dry_run=options.dry_run,
            sample_size=options.sample_size, source=str(predictions),
        )
    for line in report.summary().splitlines():
        _logger().info("%s", line)
    partial = check_delivery(report, options.min_delivered_share)
    if partial:
        _logger().warning("%s", partial)
    files = tuple(getattr(sink, "files_written", ()))
    return PushOutcome(report=report, files=files, partial=partial)


def push_task_for(kind: str):
    """The push task for a sink kind: the CSV sink is a local file and never retries."""
    if kind == "csv":
        return push_scores.with_options(retries=0, retry_condition_fn=None)
    return push_scores


@task(
    name="pull-outreach",
    persist_result=False,
    cache_policy=NO_CACHE,
    retries=PUSH_RETRIES,
    retry_delay_seconds=PUSH_RETRY_DELAYS,
    retry_condition_fn=retry_on_crm_outage,
)
def pull_outreach(kind: str, folder: Path, options):
    """Read outreach outcomes back from the CRM into ``folder/outreach.parquet``.

    Args:
        kind: ``hubspot``, ``salesforce`` or ``csv``.
        folder: Where ``outreach.parquet`` is kept (the data folder).
        options: :class:`serving.crm.pull.PullOptions`.

    Returns:
        The :class:`~serving.crm.pull.PullReport`.

    Raises:
        CrmError: The CRM failed after its own retries (the task then retries; nothing was
            written and the cursor did not move).
    """
    from serving.crm.pull import pull_from_options

    report = pull_from_options(kind, folder, options)
    for line in report.summary().splitlines():
        _logger().info("%s", line)
    return report
