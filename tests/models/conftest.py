"""Shared tiny data for the model tests: one simulated 300-member community, written once."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from features.contract import load_tables
from features.tables import Tables
from models.config import TrainConfig
from simulator.community import SimulationConfig, simulate_community, write_simulation

#: Small, fast model settings for tests (few boosting rounds, few importance repeats), with the
#: classic procedure (one holdout snapshot, models only, no resampling) that the procedure tests
#: count fits of; the tests of pooled holdouts, rules and intervals set those themselves.
FAST = {
    "hgb_max_iter": 30,
    "importance_repeats": 1,
    "min_train_positives": 10,
    "threads": 1,
    "holdout_snapshots": 1,
    "rules": (),
    "bootstrap_samples": 0,
}


def fast_config(target: str, **overrides) -> TrainConfig:
    """A quick TrainConfig for tests."""
    return TrainConfig(target=target, **{**FAST, **overrides})


@pytest.fixture(scope="session")
def small_source(tmp_path_factory) -> str:
    """Folder of a simulated 300-member, 2-year community (with its latent truth)."""
    folder = tmp_path_factory.mktemp("small-community")
    sim = simulate_community(SimulationConfig(members=300, years=2, seed=7))
    write_simulation(sim, folder)
    return str(folder)


@pytest.fixture(scope="session")
def small_tables(small_source) -> Tables:
    """The validated tables of :func:`small_source`."""
    return load_tables(small_source)


def without_roles(tables: Tables) -> Tables:
    """The same data as a purchase log would give: no roles table."""
    return Tables(
        members=tables.members,
        activities=tables.activities,
        roles=None,
        chapters=tables.chapters,
        source="<no roles>",
    )


def emails_of(tables: Tables) -> list[str]:
    """Every non-empty email of the members table."""
    return [e for e in tables.members["email"].dropna().astype(str) if "@" in e]


@pytest.fixture(scope="session")
def empty_store_template(tmp_path_factory) -> Path:
    """An initialised, empty MLflow SQLite store (creating the schema takes seconds)."""
    from models.registry import list_model_versions

    home = tmp_path_factory.mktemp("store-template")
    before = os.environ.get("CORECAST_HOME")
    os.environ["CORECAST_HOME"] = str(home)
    try:
        list_model_versions()
    finally:
        if before is None:
            os.environ.pop("CORECAST_HOME", None)
        else:
            os.environ["CORECAST_HOME"] = before
    return home / "mlflow.db"


@pytest.fixture
def mlflow_store(isolated_home, empty_store_template) -> Path:
    """This test's own MLflow store, copied from the empty template."""
    target = isolated_home / "mlflow.db"
    shutil.copyfile(empty_store_template, target)
    return target


@pytest.fixture(scope="session")
def trained_disengagement(small_tables, small_source):
    """Disengagement trained once on the small community, with every fit's rows recorded.

    Returns:
        ``(calls, result)``: the training-row index of each model fit, in order, and the
        :class:`~models.train.TrainResult` (with oracle metrics).
    """
    from features.feature_config import FeatureConfig
    from features.labels import LabelConfig
    from models import fitting
    from models import train as train_module
    from simulator.oracle import oracle_for

    calls = []
    original = fitting.fit

    def spy(name, config, x, y):
        calls.append(x.index.to_numpy().copy())
        return original(name, config, x, y)

    labels = LabelConfig()
    config = fast_config("disengagement")
    fitting.fit = spy
    try:
        result = train_module.train_target(
            small_tables,
            "disengagement",
            labels,
            train_module.default_frame_config("disengagement", labels, config),
            FeatureConfig(),
            config,
            oracle=oracle_for(small_source),
        )
    finally:
        fitting.fit = original
    return calls, result
