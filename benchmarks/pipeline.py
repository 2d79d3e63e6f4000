"""Benchmark steps of the pipeline, each run in its own interpreter by :mod:`benchmarks.run`.

Every ``step_*`` function takes the size name and returns a dict of figures; ``core_s`` is the
time of the measured operation alone (loading the inputs excluded), the harness adds the child's
wall time and peak RSS.
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.monthly import step_monthly, step_push, step_score, step_train

__all__ = ["SIZES", "data_dir", "main"]

#: Size name -> simulator settings.
SIZES = {
    "tiny": {"members": 2_000, "years": 2.0},
    "small": {"members": 20_000, "years": 3.0},
    "national": {"members": 200_000, "years": 6.0},
    "federation": {"members": 2_000_000, "years": 6.0},
}

DATA_ROOT = Path(__file__).resolve().parent / "data"


def data_dir(size: str) -> Path:
    """Folder of the simulated community of ``size`` (not committed)."""
    return DATA_ROOT / size


def step_simulate(size: str) -> dict:
    from simulator.community import SimulationConfig, simulate_community, write_simulation

    t0 = time.perf_counter()
    sim = simulate_community(SimulationConfig(seed=0, **SIZES[size]))
    write_simulation(sim, data_dir(size))
    return {
        "core_s": time.perf_counter() - t0,
        "members": len(sim.members),
        "activities": len(sim.activities),
        "role_spells": len(sim.roles),
    }


def step_validate(size: str) -> dict:
    from features.contract import load_tables

    t0 = time.perf_counter()
    tables = load_tables(data_dir(size))
    return {"core_s": time.perf_counter() - t0, "activities": len(tables.activities)}


def step_snapshot(size: str) -> dict:
    from features.build import build_features
    from features.contract import load_tables
    from serving.score import default_as_of

    tables = load_tables(data_dir(size))
    t0 = time.perf_counter()
    frame = build_features(tables, default_as_of(tables))
    return {"core_s": time.perf_counter() - t0, "rows": len(frame), "columns": frame.shape[1]}


def step_frame(size: str, snapshots: int = 24) -> dict:
    from features.contract import load_tables
    from features.frames import FrameConfig, build_training_frame
    from features.labels import LabelConfig

    tables = load_tables(data_dir(size))
    t0 = time.perf_counter()
    frame = build_training_frame(
        tables, "disengagement", LabelConfig(), FrameConfig(every_days=30, snapshots=snapshots)
    )
    return {
        "core_s": time.perf_counter() - t0,
        "rows": len(frame.data),
        "snapshots": len(frame.as_of_dates),
    }


def step_partitioned(size: str, workers: int = 2, parts: int = 4) -> dict:
    """One snapshot built by the Dask flow of :mod:`pipelines.scale` (``parts`` member
    partitions on a ``workers``-process LocalCluster); the time includes starting the cluster,
    each worker loading the tables, and concatenating (Prefect's own server is started before
    the clock). Checked equal to ``build_features``."""
    import pandas as pd
    from prefect import flow

    from features.build import build_features
    from features.contract import load_tables
    from features.feature_config import FeatureConfig, resolve_vocabulary
    from pipelines.scale import build_features_scaled
    from serving.score import default_as_of

    @flow(name="bench-warm-up")
    def warm_up() -> int:
        return 1

    warm_up()  # starts Prefect's local server outside the clock
    folder = str(data_dir(size))
    t0 = time.perf_counter()
    frame = build_features_scaled(folder, None, FeatureConfig(), parts, n_workers=workers)
    core = time.perf_counter() - t0
    tables = load_tables(folder)
    when = default_as_of(tables)
    expected = build_features(tables, when, resolve_vocabulary(tables, when, FeatureConfig()))
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    return {"core_s": core, "rows": len(frame), "workers": workers, "parts": parts}


def step_score_small(size: str) -> dict:
    """Score ``size`` with the models of the ``small`` size's train step (see
    :func:`benchmarks.monthly.step_score`): measures scoring at a size whose own training is
    too long to wait for."""
    return step_score(size, models_from="small")


def step_score_dask(size: str, workers: int = 2, parts: int = 2) -> dict:
    """Score ``size`` by member partitions on a ``workers``-process LocalCluster
    (:func:`pipelines.scale.score_members_scaled`) with the models of the ``small`` size's
    train step. The time includes starting the cluster and each worker loading the tables
    (Prefect's own server is started before the clock)."""
    from prefect import flow

    from benchmarks.monthly import _models
    from pipelines.scale import score_members_scaled

    @flow(name="bench-warm-up")
    def warm_up() -> int:
        return 1

    warm_up()
    models = _models("small")
    t0 = time.perf_counter()
    result = score_members_scaled(str(data_dir(size)), models, None, n_parts=parts,
                                  n_workers=workers)
    return {"core_s": time.perf_counter() - t0, "members": len(result.predictions),
            "workers": workers, "parts": parts}


def step_train_1(size: str) -> dict:
    from benchmarks.monthly import step_train as train

    return train(size, threads=1)


def step_partitioned_1(size: str) -> dict:
    return step_partitioned(size, workers=1, parts=4)


def step_partitioned_2(size: str) -> dict:
    return step_partitioned(size, workers=2, parts=4)


STEPS = {
    "simulate": step_simulate,
    "validate": step_validate,
    "snapshot": step_snapshot,
    "frame": step_frame,
    "train": step_train,
    "score": step_score,
    "push": step_push,
    "monthly": step_monthly,
    "train1": step_train_1,
    "dask1": step_partitioned_1,
    "dask2": step_partitioned_2,
    "score_small": step_score_small,
    "score_dask": step_score_dask,
}


def main(step: str, size: str, **kwargs) -> dict:
    """Run one step (entry point used by :func:`benchmarks.harness.run_step`)."""
    return STEPS[step](size, **kwargs)
