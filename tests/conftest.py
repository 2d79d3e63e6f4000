"""Test-wide isolation: every test gets its own corecast home, MLflow store and Prefect home."""

from __future__ import annotations

import os

import pytest

# Browser fixtures are registered once here: one Playwright instance per test module that uses it.
from tests.browser import chromium_browser, chromium_page  # noqa: F401

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
    # MLflow's set_tracking_uri also writes MLFLOW_TRACKING_URI into the environment; setting then
    # deleting it here makes monkeypatch remove whatever a test left behind at teardown.
    for name in ("MLFLOW_TRACKING_URI", "CORECAST_HUBSPOT_TOKEN"):
        monkeypatch.setenv(name, "unset")
        monkeypatch.delenv(name)
    return home
