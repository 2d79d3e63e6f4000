"""A copied or moved corecast home keeps its MLflow artifacts inside itself."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path

import pytest

from features.errors import ConfigError
from models.store_home import KNOWN_SCHEMAS, rehome_store, sqlite_database

OLD = "file:///old/h%20ome_1/mlartifacts/"


def tiny_store(folder: Path, revision: str = next(iter(KNOWN_SCHEMAS))) -> Path:
    """A database with MLflow's artifact columns, pointing into ``/old/h ome_1``."""
    database = folder / "mlflow.db"
    with sqlite3.connect(database) as db:
        db.executescript(
            """
            CREATE TABLE alembic_version (version_num TEXT);
            CREATE TABLE experiments (experiment_id INTEGER, artifact_location TEXT);
            CREATE TABLE runs (run_uuid TEXT, artifact_uri TEXT);
            CREATE TABLE logged_models (model_id TEXT, artifact_location TEXT);
            CREATE TABLE model_versions (version INTEGER, source TEXT, storage_location TEXT);
            """
        )
        db.execute("INSERT INTO alembic_version VALUES (?)", (revision,))
        db.executemany("INSERT INTO experiments VALUES (?, ?)", [
            (0, "/somewhere/mlruns/0"),  # MLflow's Default experiment: never used, not reported
            (1, OLD + "corecast-readiness"),
            (2, "s3://bucket/elsewhere"),
        ])
        db.executemany("INSERT INTO runs VALUES (?, ?)", [
            ("r1", OLD + "corecast-readiness/r1/artifacts"),
            ("r2", "s3://bucket/elsewhere/r2"),
        ])
        db.execute("INSERT INTO logged_models VALUES ('m1', ?)",
                   (OLD + "corecast-readiness/models/m1/artifacts",))
        db.execute("INSERT INTO model_versions VALUES (1, 'models:/m1', ?)",
                   (OLD + "corecast-readiness/models/m1/artifacts",))
    return database


def column(database: Path, sql: str) -> list[str]:
    with sqlite3.connect(database) as db:
        return [row[0] for row in db.execute(sql)]


def test_locations_in_another_home_are_re_pointed_once_and_the_rest_is_reported(
    tmp_path, caplog
):
    database = tiny_store(tmp_path)
    new = (tmp_path / "mlartifacts").as_uri() + "/"

    with caplog.at_level(logging.WARNING, logger="corecast.store"):
        found = rehome_store(database)

    assert found.moved_from == (OLD,)
    assert found.rows == 4  # experiment, run, logged model, version's storage location
    assert found.outside == ("s3://bucket/elsewhere",)
    assert column(
        database, "SELECT artifact_location FROM experiments ORDER BY experiment_id"
    ) == ["/somewhere/mlruns/0", new + "corecast-readiness", "s3://bucket/elsewhere"]
    assert column(database, "SELECT artifact_uri FROM runs ORDER BY run_uuid") == [
        new + "corecast-readiness/r1/artifacts", "s3://bucket/elsewhere/r2",
    ]
    assert column(database, "SELECT artifact_location FROM logged_models") == [
        new + "corecast-readiness/models/m1/artifacts"
    ]
    assert column(database, "SELECT source || ' ' || storage_location FROM model_versions") == [
        "models:/m1 " + new + "corecast-readiness/models/m1/artifacts"
    ]
    said = caplog.text
    assert OLD in said and str(tmp_path / "mlartifacts") in said and "s3://bucket" in said

    again = rehome_store(database)
    assert again.moved_from == () and again.rows == 0  # only the bucket remains outside


def test_an_unknown_schema_is_refused_and_left_unchanged(tmp_path):
    database = tiny_store(tmp_path, revision="future-revision")
    before = column(database, "SELECT artifact_uri FROM runs ORDER BY 1")

    with pytest.raises(ConfigError, match=r"outside its folder.*future-revision.*CORECAST_HOME"):
        rehome_store(database)

    assert column(database, "SELECT artifact_uri FROM runs ORDER BY 1") == before


def test_no_store_or_no_schema_yet_is_left_alone(tmp_path):
    assert rehome_store(tmp_path / "mlflow.db") is None
    sqlite3.connect(tmp_path / "empty.db").close()
    assert rehome_store(tmp_path / "empty.db") is None
    assert sqlite_database("sqlite:////a/b/mlflow.db") == Path("/a/b/mlflow.db")
    assert sqlite_database("http://127.0.0.1:5000") is None


def test_the_store_mlflow_creates_has_the_known_schema(mlflow_store):
    assert column(mlflow_store, "SELECT version_num FROM alembic_version") == sorted(KNOWN_SCHEMAS)


@pytest.mark.slow
def test_training_in_a_copied_home_writes_nothing_into_the_original(
    trained_disengagement, isolated_home, mlflow_store, monkeypatch, tmp_path
):
    from models.registry import load_champion
    from models.workflow import register_result

    result = trained_disengagement[1]
    register_result(result, actor="tester")
    copy = tmp_path / "copied-home"
    shutil.copytree(isolated_home, copy)
    before = {p: p.stat().st_mtime_ns for p in isolated_home.rglob("*")}
    monkeypatch.setenv("CORECAST_HOME", str(copy))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    outcome = register_result(result, actor="tester")

    assert {p: p.stat().st_mtime_ns for p in isolated_home.rglob("*")} == before
    shutil.rmtree(isolated_home)  # the copy must stand alone
    champion = load_champion("disengagement", outcome.version)
    assert champion.version == outcome.version
    stored = column(copy / "mlflow.db", "SELECT artifact_uri FROM runs")
    assert stored and all(uri.startswith(copy.as_uri()) for uri in stored)
