"""The steps of a scoring run, shared by the flows (as Prefect tasks) and the command line.

Plain functions, no Prefect: :mod:`pipelines.tasks` wraps them as tasks for the flows, and
``corecast score`` calls them directly, so both paths build the same settings, write the same
files and close the outreach loop the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.tables import Tables
from serving.delivery import DEFAULT_HOLDOUT_SHARE

__all__ = ["WrittenReport", "scoring_config", "write_report", "close_outreach_loop"]


@dataclass(frozen=True, eq=False)
class WrittenReport:
    """The chapter report and the files it was written to.

    Attributes:
        chapters: One row per chapter (:func:`serving.report.build_chapter_report`).
        paths: ``chapter_report.csv`` and ``report.html``.
    """

    chapters: pd.DataFrame
    paths: tuple[Path, ...]


def scoring_config(
    chapter_capacity: int,
    at_risk: float,
    ready_min: float,
    nurture_min: float,
    holdout_share: float = DEFAULT_HOLDOUT_SHARE,
    declined_pause_days: int | None = None,
):
    """The :class:`serving.score.ScoringConfig` of a run (``None``: that setting's default)."""
    from serving.outreach import OutreachConfig
    from serving.score import ScoringConfig
    from serving.segments import SegmentConfig

    pause = {} if declined_pause_days is None else {"declined_pause_days": declined_pause_days}
    return ScoringConfig(
        segments=SegmentConfig(
            chapter_capacity=chapter_capacity, ready_min=ready_min, nurture_min=nurture_min,
            at_risk=at_risk, **pause,
        ),
        outreach=OutreachConfig(holdout_share=holdout_share),
    )


def write_report(result, tables: Tables, out: Path, outreach=()) -> WrittenReport:
    """Build the chapter succession report and write ``chapter_report.csv`` + ``report.html``
    (with what the outreach loop measured, ``outreach``: its sentences)."""
    from serving.report import build_chapter_report, render_report_html
    from serving.report import write_report as write_files

    chapters = build_chapter_report(result.predictions, tables, result.as_of, result.features)
    html = render_report_html(
        chapters, result.predictions, as_of=result.as_of, meta=result.meta,
        features=result.features, outreach=outreach,
    )
    return WrittenReport(chapters=chapters, paths=tuple(write_files(chapters, html, out)))


def close_outreach_loop(data: str, tables: Tables, result, models: dict, out: Path):
    """Record this cycle in the assignment log, measure the earlier ones and log the figures
    (:mod:`pipelines.outreach_loop`)."""
    from pipelines.outreach_loop import log_measurement, measurement_labels, record_and_measure

    labels = measurement_labels(models.get("readiness"), models.get("disengagement"))
    loop = record_and_measure(data, tables, result, out, labels)
    log_measurement(loop, tables.source, result.meta["run_id"], labels)
    return loop
