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
corecast home, one folder per source (``<home>/assignments/<key of the source>``).

Only a live cycle is recorded: scoring a date before the newest cycle of the log is a look back
(a backtest, a re-run of an old week), not a list managers act on, so it measures the cycles
before that date and records nothing.
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
        cycle: The scoring date (``YYYY-MM-DD``).
        recorded: This cycle's file of the log (``None``: a look back, not recorded).
        cycles: Cycles in the log (this one included).
        measured: Whether past cycles could be measured (the lines say why not otherwise).
        lines: Plain sentences for the report and the run summary.
        metrics: The measurement's figures (empty when not measured).
        paths: The files written into the output folder.
        table: Every figure with its counts and interval (empty when not measured).
    """

    folder: Path
    cycle: str
    recorded: Path | None
    cycles: int
    measured: bool
    lines: list[str]
    metrics: dict[str, float] = field(default_factory=dict)
    paths: tuple[Path, ...] = ()
    table: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)


def assignments_folder(data: str | Path) -> Path:
    """The assignment log of a data source: beside a data folder, else in the corecast home
    under a key of the source (its label without secrets), so two databases never share one."""
    import hashlib

    from features.contract import describe_source

    text = str(data)
    if "://" not in text and Path(text).expanduser().is_dir():
        return Path(text).expanduser().resolve() / "assignments"
    label = describe_source(text).replace(":***@", "@")  # with or without its password
    key = hashlib.sha256(label.encode()).hexdigest()[:12]
    return corecast_home() / "assignments" / key


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
            "Outreach: nothing to measure yet; the assignment log has no cycle before this one. "
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
    log = read_assignments(folder) if folder.is_dir() else pd.DataFrame(columns=["cycle"])
    newest = log["cycle"].max() if len(log) else None
    recorded, lines = None, []
    if newest is None or cycle >= newest:
        recorded = _record(result.predictions, folder, cycle)
        log = read_assignments(folder)
    else:
        lines.append(
            f"Outreach: this scoring was not recorded as a cycle: {cycle:%Y-%m-%d} is before "
            f"the newest cycle of the assignment log ({newest:%Y-%m-%d}), so it looks back; "
            "managers act on the newest list."
        )
    cycles = int(log["cycle"].nunique()) if len(log) else 0
    stamp = f"{cycle:%Y-%m-%d}"
    reason = _not_measured(tables, log, cycle)
    if reason is not None:
        lines.append(reason)
        text = "# Outreach\n\n" + "".join(f"{line}\n\n" for line in lines)
        paths = (write_text_atomic(text, out / SUMMARY_FILE),)
        return OutreachLoop(folder, stamp, recorded, cycles, False, lines, paths=paths)
    config = MeasureConfig(labels=labels or LabelConfig())
    measurement = measure_outreach(log, cut_tables(tables, cycle), cycle, config)
    lines += measurement.summary_lines()
    table = measurement.to_frame()
    earlier = int(log.loc[log["cycle"] < cycle, "cycle"].nunique())
    text = _summary_markdown(lines, earlier, config) + _acceptance_markdown(table)
    paths = (
        write_text_atomic(text, out / SUMMARY_FILE),
        write_csv_atomic(table, out / TABLE_FILE),
    )
    return OutreachLoop(
        folder, stamp, recorded, cycles, True, lines, measurement.metrics(), paths, table
    )


def _summary_markdown(lines: list[str], cycles: int, config) -> str:
    head = (
        f"# Outreach\n\nWhat the calls of the {cycles} earlier cycle(s) of the assignment log "
        "changed, "
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
        order = "group" if by == "score band" else "n"  # bands in their order, else largest
        rows = rows.sort_values(order, ascending=by == "score band", kind="stable")
        rows = rows.head(_MAX_GROUPS)
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
    """Log a measured live cycle as a run of the ``corecast-outreach`` experiment (a look back,
    or nothing measured: no run)."""
    if not loop.measured or loop.recorded is None:
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
    tags = {"corecast.source": source, "corecast.scoring_run_id": run_id}
    return log_outreach_run(loop.cycle, loop.metrics, params, files, tags=tags)
