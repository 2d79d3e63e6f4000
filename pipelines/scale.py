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
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd
from prefect import flow, task

from features.feature_config import FeatureConfig, resolve_vocabulary
from features.partition import build_features_partitioned, check_partition

__all__ = [
    "build_dask_runner",
    "build_part_task",
    "build_features_partitioned_flow",
    "build_features_scaled",
]


@lru_cache(maxsize=1)
def _tables(source: str):
    """The validated tables of ``source``, loaded once per worker process."""
    from features.contract import load_tables

    return load_tables(source)


def _resolved(source: str, as_of, config: FeatureConfig) -> tuple[pd.Timestamp, FeatureConfig]:
    from serving.score import default_as_of

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
