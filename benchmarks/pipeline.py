"""Benchmark steps of the pipeline, each run in its own interpreter by :mod:`benchmarks.run`.

Every ``step_*`` function takes the size name and returns a dict of figures; ``core_s`` is the
time of the measured operation alone (loading the inputs excluded), the harness adds the child's
wall time and peak RSS.
"""

from __future__ import annotations

import time
from pathlib import Path

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
    from features.simulate import SimulationConfig, simulate_community, write_simulation

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


STEPS = {
    "simulate": step_simulate,
    "validate": step_validate,
    "snapshot": step_snapshot,
    "frame": step_frame,
}


def main(step: str, size: str, **kwargs) -> dict:
    """Run one step (entry point used by :func:`benchmarks.harness.run_step`)."""
    return STEPS[step](size, **kwargs)
