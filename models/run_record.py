"""What a training run records: its tags, parameters, name and artifacts (pure; no MLflow).

:func:`models.registry.log_training_run` hands these to MLflow. Nothing here identifies a
person: columns that could (:data:`_PERSONAL_COLUMNS`) are dropped from the logged dataset, and
member ids are never logged.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pandas as pd

from models.config import flatten_params, to_plain
from models.gate import evaluation_dates
from models.plots import write_evaluation_plots
from models.train import TrainResult, render_card

__all__ = [
    "now_text",
    "actor_name",
    "code_version",
    "safe_frame",
    "pip_requirements",
    "training_config",
    "write_artifacts",
    "metric_key",
    "method_tags",
    "run_tags",
    "run_params",
    "run_name",
]

# Columns that could identify a person; never logged in any form.
_PERSONAL_COLUMNS = ("email", "name", "first_name", "last_name", "full_name", "phone")


def now_text() -> str:
    """Now, in UTC, to the second (ISO 8601): when an alias moved or a decision was made."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def actor_name(actor: str | None) -> str:
    """Who acts: ``actor`` when given, else the OS user (``unknown`` when there is none)."""
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or "unknown"


def code_version() -> str:
    """``corecast <version>`` plus the git commit of the source tree when available."""
    try:
        package = metadata.version("corecast")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        package = "0.1.0"
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"corecast {package}" + (f" ({sha})" if sha else "")


def safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Drop every column that could identify a person."""
    drop = [c for c in df.columns if str(c).lower() in _PERSONAL_COLUMNS]
    return df.drop(columns=drop)


def pip_requirements() -> list[str]:
    """The pinned libraries a logged model needs to be loaded."""
    return [
        f"{package}=={metadata.version(package)}"
        for package in ("scikit-learn", "numpy", "pandas", "scipy", "skops")
    ]


def training_config(result: TrainResult) -> dict:
    feature_config = result.feature_config
    features = (
        feature_config.to_dict() if hasattr(feature_config, "to_dict") else to_plain(feature_config)
    )
    return {
        "target": result.target,
        "train": to_plain(result.config),
        "labels": to_plain(result.label_config),
        "frame": to_plain(result.frame_config),
        "features": to_plain(features),
        "feature_columns": list(result.feature_columns),
        "candidate": result.candidate,
        "method": result.method,
        "validated": bool(result.validated),
        "notes": list(result.notes),
        "calibration": result.calibration_method,
        "horizon_days": result.split.horizon_days,
        "train_dates": [d.isoformat() for d in result.split.train_dates],
        "holdout_dates": [d.isoformat() for d in result.split.holdout_dates],
    }


def _both_classes(holdout: pd.DataFrame) -> bool:
    """Whether the holdout has labels of both classes (plots and holdout tables need them)."""
    return "label" in holdout.columns and holdout["label"].nunique() == 2


def write_artifacts(result: TrainResult, folder: Path) -> None:
    """Plots, tables, model card and training configuration of a result into ``folder``.

    Plots and the holdout table need a holdout with both classes (an unvalidated rule has no
    holdout); empty tables are left out.
    """
    if _both_classes(result.holdout_data):
        (folder / "plots").mkdir()
        importance = result.importance.dropna(subset=["importance_mean"])
        write_evaluation_plots(
            folder / "plots",
            target=result.target,
            y=result.holdout_data["label"].to_numpy(),
            prob=result.holdout_data["score"].to_numpy(),
            others=result.other_scores,
            importance=importance,
            n_bins=result.config.ece_bins,
        )
    tables = {
        "feature_importance.csv": (result.importance, False),
        "backtest.csv": (result.backtest, False),
        "calibration.csv": (result.calibration_table, False),
        "holdout_metrics.csv": (result.comparison, True),
    }
    for filename, (table, index) in tables.items():
        if filename == "feature_importance.csv" or not table.empty:
            table.to_csv(folder / filename, index=index)
    (folder / "model_card.md").write_text(render_card(result), encoding="utf-8")
    (folder / "training_config.json").write_text(
        json.dumps(training_config(result), indent=2, default=str), encoding="utf-8"
    )


def metric_key(name: str) -> str:
    """A metric name as MLflow stores it (``precision@k`` -> ``precision_at_k``)."""
    return name.replace("@", "_at_").replace(":", ".")


#: Longest ``corecast.notes`` tag value kept (MLflow limits tag values; the card has them all).
_NOTES_TAG_CHARS = 4000


def method_tags(result: TrainResult) -> dict[str, str]:
    """``corecast.method``, ``corecast.validated``, ``corecast.notes`` and
    ``corecast.validation_snapshots`` of a result (on its run and its version)."""
    notes = " ".join(result.notes)
    if len(notes) > _NOTES_TAG_CHARS:
        notes = notes[: _NOTES_TAG_CHARS - 3] + "..."
    snapshots = len(evaluation_dates(result)) if result.validated else 0
    return {
        "corecast.method": result.method,
        "corecast.validated": "true" if result.validated else "false",
        "corecast.notes": notes,
        "corecast.validation_snapshots": str(snapshots),
    }


def run_tags(result: TrainResult, actor: str | None) -> dict[str, str]:
    """Tags of a training run: data, dates, code, who trained, and the method."""
    dates = result.snapshot_dates
    return {
        "corecast.target": result.target,
        "corecast.candidate": result.candidate,
        "corecast.calibration": result.calibration_method,
        "corecast.primary_metric": result.primary_metric,
        "corecast.data_fingerprint": result.data_fingerprint,
        "corecast.data_source": result.source,
        "corecast.as_of_first": dates[0].isoformat(),
        "corecast.as_of_last": dates[-1].isoformat(),
        "corecast.holdout_as_of": ",".join(d.isoformat() for d in evaluation_dates(result)),
        "corecast.snapshot_count": str(len(dates)),
        "corecast.code_version": code_version(),
        "corecast.trained_by": actor_name(actor),
        "corecast.labels_fingerprint": result.label_config.fingerprint(),
        **method_tags(result),
    }


def run_params(result: TrainResult) -> dict[str, str]:
    params = {
        **result.config.to_params("train"),
        **flatten_params(result.label_config, "labels"),
        **flatten_params(result.frame_config, "frame"),
        **flatten_params(training_config(result)["features"], "features"),
    }
    return {k: (v if len(v) <= 6000 else v[:5990] + "...") for k, v in params.items()}


def run_name(result: TrainResult) -> str:
    """``<target>-<candidate>-<newest date>``; a rule's candidate is its method."""
    return f"{result.target}-{result.candidate}-{result.snapshot_dates[-1]:%Y%m%d}"
