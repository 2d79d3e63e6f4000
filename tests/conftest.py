"""Test-wide isolation: every test gets its own corecast home, MLflow store and Prefect home."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Point CORECAST_HOME (and so the MLflow store) at a fresh temporary folder."""
    home = tmp_path / "corecast-home"
    home.mkdir()
    monkeypatch.setenv("CORECAST_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("CORECAST_HUBSPOT_TOKEN", raising=False)
    return home
