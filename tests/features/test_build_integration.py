"""Features on validated data: hand fixtures, the benchmark generator and the simulator."""

from __future__ import annotations

import pandas as pd

from benchmarks.bench_features import generate_tables, run_benchmark
from features.build import build_features
from features.contract import validate_tables
from features.frames import FrameConfig, build_training_frame
from simulator.community import SimulationConfig, simulate_community
from tests.features.conftest import T


def _validated(tables):
    return validate_tables(
        {"members": tables.members, "activities": tables.activities, "roles": tables.roles}
    )


def test_hand_fixture_is_already_in_canonical_form(community):
    validated = _validated(community)
    for name in ("members", "activities", "roles"):
        pd.testing.assert_frame_equal(getattr(validated, name), getattr(community, name))
    pd.testing.assert_frame_equal(build_features(validated, T), build_features(community, T))


def test_benchmark_generator_is_contract_shaped():
    tables = generate_tables(members=400, activities=4000, days=400, max_event_size=60)
    validated = _validated(tables)
    as_of = "2024-10-01"
    pd.testing.assert_frame_equal(build_features(validated, as_of), build_features(tables, as_of))


def test_benchmark_runs_quickly_at_small_size():
    figures = run_benchmark(members=300, activities=3000, max_event_size=40)
    assert figures["activities"] == 3000
    assert 0 < figures["rows"] <= 300
    assert figures["columns"] > 100
    assert figures["largest_event"] <= 40
    assert figures["snapshot_s"] >= figures["snapshot_network_s"] > 0


def test_training_frames_on_a_simulated_community():
    tables = simulate_community(SimulationConfig(members=600, years=2, seed=3)).tables()
    frame = FrameConfig(every_days=60, snapshots=4)
    for target in ("disengagement", "readiness"):
        tf = build_training_frame(tables, target, frame=frame)
        assert len(tf.as_of_dates) == 4
        assert tf.data["label"].isin([0, 1]).all()
        assert tf.data["label"].sum() > 0, target
        assert not tf.data[list(tf.feature_columns)].isna().any().any()
