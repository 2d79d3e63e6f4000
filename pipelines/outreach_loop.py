"""The outreach loop at each scoring: record whom this cycle flags, measure what past calls did.

Every scoring run (``corecast score``, ``corecast run``, the score and weekly flows) appends its
cycle to the assignment log (:func:`serving.outreach.write_assignments`): who was flagged, to
contact or to hold. With the contacts and outcomes the managers recorded (the ``outreach`` table,
e.g. from ``corecast pull``), the cycles whose windows have passed are measured
(:func:`serving.measure.measure_outreach`): ``outreach.md`` and ``outreach_measurement.csv`` in
the output folder, the lines of the report and the run summary, and a run of the
``corecast-outreach`` MLflow experiment.

The assignment log of a data folder lives beside the data (``<folder>/assignments``, where
``corecast pull`` writes ``outreach.parquet`` too); for a database source it lives in the
corecast home (``<home>/assignments``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.errors import ConfigError
from features.io import write_csv_atomic, write_text_atomic
from features.labels import LabelConfig
from features.settings import corecast_home
from features.tables import Tables, cut_tables

__all__ = [
    "OutreachLoop",
    "assignments_folder",
    "measurement_labels",
    "record_and_measure",
    "log_measurement",
]

#: Files the loop writes into the output folder.
SUMMARY_FILE = "outreach.md"
TABLE_FILE = "outreach_measurement.csv"


@dataclass(frozen=True)
class OutreachLoop:
    """What one scoring run did for the outreach loop.

    Attributes:
        folder: The assignment log.
        recorded: This cycle's file of the log.
        cycles: Cycles in the log (this one included).
        measured: Whether past cycles could be measured (the lines say why not otherwise).
        lines: Plain sentences for the report and the run summary.
        metrics: The measurement's figures (empty when not measured).
        paths: The files written into the output folder.
        table: Every figure with its counts and interval (empty when not measured).
    """

    folder: Path
    recorded: Path
    cycles: int
    measured: bool
    lines: list[str]
    metrics: dict[str, float] = field(default_factory=dict)
    paths: tuple[Path, ...] = ()
    table: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)


def assignments_folder(data: str | Path) -> Path:
    """The assignment log of a data source: beside a data folder, else in the corecast home."""
    text = str(data)
    if "://" not in text and Path(text).expanduser().is_dir():
        return Path(text).expanduser().resolve() / "assignments"
    return corecast_home() / "assignments"


def measurement_labels(readiness=None, disengagement=None) -> LabelConfig:
    """The label settings to measure with: each target's window as its model was trained."""
    from serving.score import model_label_config

    if readiness is None and disengagement is None:
        return LabelConfig()
    ready = model_label_config(readiness or disengagement)
    gone = model_label_config(disengagement or readiness)
    return LabelConfig(
        horizon_days=gone.horizon_days,
        active_within_days=gone.active_within_days,
        readiness_horizon_days=ready.readiness_horizon_days,
        core_role=ready.core_role,
        readiness_active_within_days=ready.readiness_active_within_days,
    )


def _record(predictions: pd.DataFrame, folder: Path, cycle: pd.Timestamp) -> Path:
    from serving.outreach import write_assignments

    try:
        return write_assignments(predictions, folder, cycle)
    except OSError as exc:
        raise ConfigError(
            f"cannot write this cycle's assignment log to {folder} ({exc}); the folder keeps "
            "whom each cycle flagged, to measure what the calls change: make it writable"
        ) from exc


def _not_measured(tables: Tables, log: pd.DataFrame, cycle: pd.Timestamp) -> str | None:
    """Why past cycles cannot be measured yet (``None``: they can)."""
    earlier = log[log["cycle"] < cycle]
    if earlier.empty:
        return (
            "Outreach: nothing to measure yet; this is the first cycle in the assignment log. "
            "Each cycle's contacts and their outcomes are compared with the held members later."
        )
    if tables.outreach is None or tables.outreach.empty:
        return (
            f"Outreach: {earlier['cycle'].nunique()} earlier cycle(s) in the assignment log, "
            "but the data has no outreach table yet: record the calls and their outcomes in the "
            "CRM and read them back with corecast pull."
        )
    return None


def record_and_measure(
    data: str | Path,
    tables: Tables,
    result,
    out: Path,
    labels: LabelConfig | None = None,
) -> OutreachLoop:
    """Record the cycle of a scoring ``result`` and measure the earlier ones.

    Args:
        data: The data source (where the assignment log lives, :func:`assignments_folder`).
        tables: The data scored.
        result: The scoring result (its predictions and ``as_of`` are the cycle).
        out: The output folder of the run.
        labels: The windows to measure with (default: :func:`measurement_labels`' defaults).

    Raises:
        ConfigError: The assignment log cannot be written or read.
    """
    from serving.measure import MeasureConfig, measure_outreach
    from serving.outreach import read_assignments

    folder = assignments_folder(data)
    cycle = pd.Timestamp(result.as_of)
    recorded = _record(result.predictions, folder, cycle)
    log = read_assignments(folder)
    cycles = int(log["cycle"].nunique()) if len(log) else 0
    reason = _not_measured(tables, log, cycle)
    if reason is not None:
        paths = (write_text_atomic(f"# Outreach\n\n{reason}\n", out / SUMMARY_FILE),)
        return OutreachLoop(folder, recorded, cycles, False, [reason], paths=paths)
    config = MeasureConfig(labels=labels or LabelConfig())
    measurement = measure_outreach(log, cut_tables(tables, cycle), cycle, config)
    lines = measurement.summary_lines()
    table = measurement.to_frame()
    text = _summary_markdown(lines, cycles, config) + _acceptance_markdown(table)
    paths = (
        write_text_atomic(text, out / SUMMARY_FILE),
        write_csv_atomic(table, out / TABLE_FILE),
    )
    return OutreachLoop(folder, recorded, cycles, True, lines, measurement.metrics(), paths, table)


def _summary_markdown(lines: list[str], cycles: int, config) -> str:
    head = (
        f"# Outreach\n\nWhat the calls of the {cycles} cycle(s) in the assignment log changed, "
        "contacted members against the members held back (95 % intervals unless said; a "
        f"group under {config.min_group} members is too few to conclude).\n\n"
    )
    return head + "".join(f"- {line}\n" for line in lines)


#: Rows of each acceptance table in outreach.md (the CSV has them all).
_MAX_GROUPS = 20


def _acceptance_markdown(table: pd.DataFrame) -> str:
    """Acceptance by segment, chapter and score band, as Markdown tables."""
    parts = []
    for by in ("segment", "chapter", "score band"):
        rows = table[table["measure"] == f"acceptance by {by}"]
        rows = rows.sort_values("n", ascending=False, kind="stable").head(_MAX_GROUPS)
        if rows.empty:
            continue
        lines = [f"\n## Acceptance by {by}\n", f"| {by} | accepted | rate (95 % interval) |",
                 "| --- | --- | --- |"]
        for _, r in rows.iterrows():
            said = (f"{r['rate']:.0%} ({r['low']:.0%} to {r['high']:.0%})" if r["conclusive"]
                    else "too few to conclude")
            lines.append(f"| {r['group']} | {int(r['k'])} of {int(r['n'])} | {said} |")
        parts.append("\n".join(lines) + "\n")
    return "".join(parts)


def log_measurement(
    loop: OutreachLoop, source: str, run_id: str, labels: LabelConfig
) -> str | None:
    """Log a measured cycle as a run of the ``corecast-outreach`` experiment (else nothing)."""
    if not loop.measured:
        return None
    from models.registry import log_outreach_run

    files = {SUMMARY_FILE: Path(loop.paths[0]).read_text(encoding="utf-8"),
             TABLE_FILE: loop.table.to_csv(index=False)}
    params = {
        "horizon_days": str(labels.horizon_days),
        "readiness_horizon_days": str(labels.readiness_horizon_days),
        "core_role": labels.core_role,
        "cycles": str(loop.cycles),
    }
    cycle = loop.recorded.stem
    tags = {"corecast.source": source, "corecast.scoring_run_id": run_id}
    return log_outreach_run(cycle, loop.metrics, params, files, tags=tags)
