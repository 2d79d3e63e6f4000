"""Local state: the corecast home folder and the environment it sets for MLflow and Prefect."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["corecast_home", "mlflow_tracking_uri", "configure_environment", "TELEMETRY_OFF"]

#: The variables that turn off the libraries' telemetry, in every process corecast starts or runs
#: in (the command line, flow runs, the MLflow UI, benchmarks).
TELEMETRY_OFF = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}

DEFAULT_HOME = ".corecast"


def corecast_home(create: bool = True) -> Path:
    """Return the home folder for local state (``$CORECAST_HOME`` or ``./.corecast``).

    Args:
        create: Create the folder if it does not exist.

    Returns:
        The absolute path of the home folder.
    """
    home = Path(os.environ.get("CORECAST_HOME") or DEFAULT_HOME).expanduser().resolve()
    if create:
        home.mkdir(parents=True, exist_ok=True)
    return home


def mlflow_tracking_uri() -> str:
    """Return the MLflow tracking URI: ``$MLFLOW_TRACKING_URI`` or a SQLite store in the home."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{corecast_home() / 'mlflow.db'}"


def configure_environment() -> dict[str, str]:
    """Set the environment variables corecast relies on, unless the user set them already.

    Called explicitly by the command line and the flows (never at import). Puts Prefect's state
    under the home folder, turns off telemetry and analytics, and points MLflow at the home store.

    Returns:
        The variables that were set by this call.
    """
    home = corecast_home()
    wanted = {
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        **TELEMETRY_OFF,
        "MLFLOW_TRACKING_URI": mlflow_tracking_uri(),
    }
    set_now = {}
    for key, value in wanted.items():
        if not os.environ.get(key):
            os.environ[key] = value
            set_now[key] = value
    return set_now
