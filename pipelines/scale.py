"""Scale-out of feature building over member partitions with Dask.

:func:`build_features_partitioned_flow` maps :func:`features.partition.build_features_partitioned`
over ``n_parts`` member partitions on a ``prefect_dask.DaskTaskRunner`` (a ``LocalCluster`` of
``n_workers`` single-threaded processes by default, or an existing cluster at ``address``),
concatenates the parts and restores the members-table order, so the result equals
:func:`features.build.build_features` on one process.

Workers receive the data folder, not the tables: each worker process loads and validates the
tables once (memoised per process for the folder) and keeps the integer encoding in its cache,
so several parts on one worker share it. Domain code stays free of Prefect; this module is the
glue.

:func:`score_members_partitioned_flow` scores the same way, in two mapped steps around one
step on the driver:

1. each part builds its members' features and finds who is eligible for each model
   (:func:`serving.score.build_member_part`);
2. the driver scores all eligible members in one matrix per model and fixes the reason plans
   (the typical member and the candidate features: a median and a seeded sample)
   (:func:`serving.score.score_parts`). Scores are computed in one piece on purpose: linear
   algebra libraries may round a row differently depending on its place in a block, and a
   score must not depend on the partitioning. Scoring is one pass of the model, a small part
   of the run;
3. each part computes its members' reasons against those plans, the expensive step
   (:func:`serving.score.explain_part`);

then ranks and segments, which need whole chapters, are computed once on the concatenation
(:func:`serving.score.finish_scores`). The predictions equal
:func:`serving.score.score_members` on one process: same rows, order, scores, ranks and
segments; reasons too, gradient-boosted trees to the last bit, other models unless two what-if
changes of a member tie to their last bit.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd
from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE

from features.errors import ConfigError
from features.feature_config import FeatureConfig, resolve_vocabulary
from features.partition import build_features_partitioned, check_partition
from features.tables import parse_as_of
from models.registry import LoadedModel
from serving.score import (
    MemberPart,
    RunScores,
    ScoreResult,
    ScoringConfig,
    build_member_part,
    check_models,
    default_as_of,
    explain_part,
    finish_scores,
    score_parts,
)

__all__ = [
    "build_dask_runner",
    "build_part_task",
    "build_features_partitioned_flow",
    "build_features_scaled",
    "check_dask_options",
    "build_member_part_task",
    "explain_part_task",
    "score_members_partitioned_flow",
    "score_members_scaled",
]


@lru_cache(maxsize=1)
def _tables(source: str):
    """The validated tables of ``source``, loaded once per worker process."""
    from features.contract import load_tables

    return load_tables(source)


def _resolved(source: str, as_of, config: FeatureConfig) -> tuple[pd.Timestamp, FeatureConfig]:
    tables = _tables(source)
    when = default_as_of(tables) if as_of is None else pd.Timestamp(as_of)
    return when, resolve_vocabulary(tables, when, config)


@task(name="build-features-part")
def build_part_task(
    source: str, as_of, config: FeatureConfig, n_parts: int, part: int
) -> pd.DataFrame:
    """Features of one member partition (reads the whole folder, emits the part's rows)."""
    return build_features_partitioned(_tables(source), as_of, config, n_parts, part)


@flow(name="build-features-partitioned")
def build_features_partitioned_flow(
    source: str,
    as_of=None,
    config: FeatureConfig = FeatureConfig(),
    n_parts: int = 2,
) -> pd.DataFrame:
    """Build the features of every member partition in parallel and concatenate them.

    Args:
        source: Data folder (the contract's Parquet/CSV files).
        as_of: Snapshot time (default: midnight after the last observed time).
        config: Feature settings (vocabularies are resolved once, here, for all parts).
        n_parts: Number of member partitions (tasks).

    Returns:
        Exactly the frame :func:`features.build.build_features` returns for the same inputs.
    """
    check_partition(n_parts, 0)
    when, resolved = _resolved(str(source), as_of, config)
    futures = build_part_task.map(
        str(source), when, resolved, n_parts, list(range(n_parts))
    )
    parts = [f.result() for f in futures]
    order = _tables(str(source)).members["member_id"]
    out = pd.concat(parts)
    out = out.reindex(pd.Index(order[order.isin(out.index)], name="member_id"))
    return out


def build_dask_runner(address: str | None = None, n_workers: int | None = None):
    """A ``DaskTaskRunner``: an existing scheduler at ``address`` or a new ``LocalCluster``.

    Args:
        address: ``tcp://host:port`` of a running Dask scheduler (``None`` = local cluster).
        n_workers: Worker processes of the local cluster (one thread each; ``None`` = Dask's
            default). Ignored with ``address``.
    """
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    kwargs: dict = {"threads_per_worker": 1, "processes": True, "dashboard_address": None}
    if n_workers is not None:
        kwargs["n_workers"] = int(n_workers)
    return DaskTaskRunner(cluster_kwargs=kwargs)


def build_features_scaled(
    source: str,
    as_of=None,
    config: FeatureConfig = FeatureConfig(),
    n_parts: int = 2,
    *,
    address: str | None = None,
    n_workers: int | None = None,
) -> pd.DataFrame:
    """Run :func:`build_features_partitioned_flow` on a Dask task runner and return its frame."""
    runner = build_dask_runner(address, n_workers)
    return build_features_partitioned_flow.with_options(task_runner=runner)(
        source, as_of, config, n_parts
    )


def check_dask_options(
    dask: bool,
    address: str | None = None,
    n_parts: int | None = None,
    n_workers: int | None = None,
) -> None:
    """Check the options of scoring on Dask; raise :class:`ConfigError` naming the bad one.

    Args:
        dask: Whether scoring runs on Dask at all.
        address: ``tcp://host:port`` of an existing scheduler (needs ``dask``).
        n_parts: Member partitions (needs ``dask``; a whole number >= 1).
        n_workers: Worker processes of a new local cluster (needs ``dask``; not with
            ``address``, whose cluster has its own workers).
    """
    given = {"--dask-address": address, "--partitions": n_parts, "--dask-workers": n_workers}
    if not dask:
        stray = [name for name, value in given.items() if value is not None]
        if stray:
            raise ConfigError(f"{', '.join(stray)}: only with --dask (scoring on Dask)")
        return
    for name, value in (("--partitions", n_parts), ("--dask-workers", n_workers)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ConfigError(f"{name}: expected a whole number >= 1, got {value!r}")
    if address is not None:
        if n_workers is not None:
            raise ConfigError(
                "--dask-workers: the cluster at --dask-address has its own workers; "
                "give one of the two"
            )
        if not address.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
            raise ConfigError(
                f"--dask-address: expected a scheduler address like tcp://host:8786, "
                f"got {address!r}"
            )


@task(name="build-member-part", persist_result=False, cache_policy=NO_CACHE)
def build_member_part_task(
    source: str, as_of: pd.Timestamp, readiness, disengagement, n_parts: int, part: int
) -> MemberPart:
    """Features and eligibility of one member partition (reads the whole folder)."""
    return build_member_part(_tables(source), as_of, readiness, disengagement, n_parts, part)


@task(name="explain-part", persist_result=False, cache_policy=NO_CACHE)
def explain_part_task(
    part: MemberPart, run: RunScores, readiness, disengagement, config: ScoringConfig
) -> dict[str, pd.Series]:
    """Reasons of one member partition, against the run's scores and reason plans."""
    return explain_part(part, run, readiness, disengagement, config)


@flow(name="score-members-partitioned", persist_result=False, validate_parameters=False)
def score_members_partitioned_flow(
    source: str,
    models: dict[str, LoadedModel],
    as_of=None,
    config: ScoringConfig = ScoringConfig(),
    n_parts: int = 2,
    run_id: str | None = None,
) -> ScoreResult:
    """Score every consenting member, ``n_parts`` member partitions in parallel.

    Args:
        source: Data folder or URL (each worker loads it once).
        models: ``{"readiness": LoadedModel | None, "disengagement": LoadedModel | None}``.
        as_of: Scoring date (default: midnight after the last observed time).
        config: Segment and reason settings.
        n_parts: Number of member partitions (tasks of each mapped step).
        run_id: Identifier of this scoring run (default: a new random id).

    Returns:
        What :func:`serving.score.score_members` returns for the same inputs (``run_id`` and
        ``scored_at`` aside).
    """
    check_partition(n_parts, 0)
    unknown = sorted(set(models) - {"readiness", "disengagement"})
    if unknown:
        raise ConfigError(f"models: unknown target(s) {', '.join(unknown)}")
    readiness, disengagement = models.get("readiness"), models.get("disengagement")
    check_models(readiness, disengagement)
    source = str(source)
    tables = _tables(source)
    when = default_as_of(tables) if as_of is None else parse_as_of(as_of)
    shared = (unmapped(readiness), unmapped(disengagement))
    built = build_member_part_task.map(
        source, unmapped(when), *shared, unmapped(n_parts), list(range(n_parts))
    )
    parts = [f.result() for f in built]
    run = score_parts(tables, parts, readiness, disengagement, config)
    # the parts go to the explain step as futures: each stays on (or moves between) workers
    # instead of being sent back from here
    explained = explain_part_task.map(
        list(built), unmapped(run), *shared, unmapped(config)
    )
    reasons = [f.result() for f in explained]
    return finish_scores(
        tables, parts, run, reasons, readiness, disengagement, config, run_id=run_id
    )


def score_members_scaled(
    source: str,
    models: dict[str, LoadedModel],
    as_of=None,
    config: ScoringConfig = ScoringConfig(),
    n_parts: int = 2,
    *,
    address: str | None = None,
    n_workers: int | None = None,
    run_id: str | None = None,
) -> ScoreResult:
    """Run :func:`score_members_partitioned_flow` on a Dask task runner and return its result.

    Args:
        source: Data folder or URL.
        models: Loaded models by target (``None`` for a target without one).
        as_of: Scoring date (default: midnight after the last observed time).
        config: Segment and reason settings.
        n_parts: Number of member partitions.
        address: ``tcp://host:port`` of a running Dask scheduler (``None`` = a new local
            cluster).
        n_workers: Worker processes of the local cluster (``None`` = Dask's default).
        run_id: Identifier of this scoring run (default: a new random id).

    Raises:
        ConfigError: For bad partition or cluster options, or without any model.
    """
    check_dask_options(True, address, n_parts, n_workers)
    runner = build_dask_runner(address, n_workers)
    return score_members_partitioned_flow.with_options(task_runner=runner)(
        str(source), models, as_of, config, n_parts, run_id
    )
