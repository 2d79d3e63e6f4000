"""The flows' parameters, grouped and typed once for the flows, the CLI and the project file.

Each group is a frozen pydantic model that validates its values when a run starts (a deployment
run included) and knows the domain settings it stands for: :class:`SegmentParameters` (how
scores become segments and the control group), :class:`DeliveryParameters` (where predictions
go and how), :class:`LoadingParameters` (what loading does with invalid rows),
:class:`ScaleParameters` (scoring on Dask), :class:`LabelParameters` (the targets' windows and
core role) and :class:`TrainingParameters` (how training judges models). The flows take the
groups (``weekly_flow(data, segments=..., delivery=...)``) and pass them on whole, the CLI and
:mod:`pipelines.project` build them, and a deployment's parameters are the groups as JSON
objects, e.g. ``{"segments": {"at_risk": 0.7}, "delivery": {"to": "hubspot"}}``.

Defaults come from their homes (``SegmentConfig``, ``LabelConfig``, ``TrainConfig``,
``serving.delivery``, ``features.quarantine``), never written here again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from features.labels import LabelConfig
from features.quarantine import DEFAULT_MAX_INVALID_SHARE
from models.config import TrainConfig
from serving.columns import OMITTABLE_FIELDS
from serving.delivery import DEFAULT_HOLDOUT_SHARE, DEFAULT_MIN_DELIVERED_SHARE
from serving.segments import SegmentConfig

__all__ = [
    "SinkKind",
    "TargetName",
    "CrmField",
    "OnInvalid",
    "SegmentParameters",
    "DeliveryParameters",
    "LoadingParameters",
    "ScaleParameters",
    "LabelParameters",
    "TrainingParameters",
]

_SEGMENTS = SegmentConfig()
_LABELS = LabelConfig()
_TRAINING = TrainConfig()

#: Where predictions go: a CRM, a signed webhook, a CSV file, or nowhere.
SinkKind = Literal["csv", "hubspot", "salesforce", "webhook", "none"]
#: A prediction target.
TargetName = Literal["readiness", "disengagement"]
#: A CRM field that can be left out of pushes (see ``docs/crm.md``; the member id cannot).
CrmField = Literal[OMITTABLE_FIELDS]
#: What loading does with rows that break the data contract (see ``docs/data-contract.md``).
OnInvalid = Literal["strict", "quarantine"]
Days = Annotated[int, Field(gt=0, description="A number of days (> 0).")]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Share = Annotated[float, Field(gt=0.0, le=1.0)]
Count = Annotated[int, Field(ge=1)]


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SegmentParameters(_Group):
    """How scores become segments, and the control group (:class:`SegmentConfig`)."""

    chapter_capacity: Annotated[int, Field(ge=0)] = _SEGMENTS.chapter_capacity
    at_risk: Probability = _SEGMENTS.at_risk
    ready_min: Probability = _SEGMENTS.ready_min
    nurture_min: Probability = _SEGMENTS.nurture_min
    holdout_share: Annotated[float, Field(ge=0.0, lt=1.0)] = DEFAULT_HOLDOUT_SHARE
    declined_pause_days: Annotated[int, Field(ge=0)] = _SEGMENTS.declined_pause_days

    def scoring_config(self):
        """The :class:`serving.score.ScoringConfig` these parameters stand for."""
        from pipelines.steps import scoring_config

        return scoring_config(
            self.chapter_capacity, self.at_risk, self.ready_min, self.nurture_min,
            self.holdout_share, self.declined_pause_days,
        )


class DeliveryParameters(_Group):
    """Where predictions go and how (:class:`serving.crm.PushOptions`).

    Attributes:
        to: ``csv``, ``hubspot``, ``salesforce``, ``webhook`` or ``none``.
        dry_run: Plan the push only; send and write nothing to the CRM or the ledger.
        full: Push unchanged records too.
        csv_path: File of the CSV sink (default: time-stamped files in ``<out>/crm-exports``).
        ledger: Delivery ledger (default ``<corecast home>/ledger.sqlite``).
        crm_url: HubSpot API base URL, Salesforce instance URL or webhook URL.
        id_property: HubSpot unique property matching members.
        omit_fields: CRM fields left out of the payload entirely.
        min_delivered_share: Below this share of the planned records delivered, the push fails.
        field_names: CRM names of fields instead of the ``corecast_*`` defaults.
        pull_outcomes: Before scoring, read the outreach outcomes back from the sink
            (``corecast pull``) into a local data folder.
    """

    to: SinkKind = "csv"
    dry_run: bool = False
    full: bool = False
    csv_path: Path | None = None
    ledger: Path | None = None
    crm_url: str | None = None
    id_property: str = "email"
    omit_fields: list[CrmField] | None = None
    min_delivered_share: Probability = DEFAULT_MIN_DELIVERED_SHARE
    field_names: dict[CrmField, str] | None = None
    pull_outcomes: bool = True

    def push_options(self, out: Path):
        """The push options of a run whose outputs are in ``out`` (the CSV sink writes
        time-stamped files in ``out/crm-exports``)."""
        from dataclasses import replace

        from serving.crm import CsvConfig, PushOptions

        options = PushOptions(
            ledger_path=self.ledger, full=self.full, dry_run=self.dry_run,
            min_delivered_share=self.min_delivered_share,
        )
        csv = CsvConfig(path=self.csv_path) if self.csv_path else CsvConfig(
            folder=out / "crm-exports"
        )
        options = replace(
            options, csv=csv, hubspot=replace(options.hubspot, id_property=self.id_property)
        )
        options = options.with_mapping(self.to, self.field_names)
        options = options.without_fields(self.to, self.omit_fields)
        return options.with_crm_url(self.to, self.crm_url)


class LoadingParameters(_Group):
    """What loading does with rows that break the contract (``features.contract.load_tables``).

    Attributes:
        on_invalid: ``strict`` (any invalid row fails the run) or ``quarantine`` (invalid rows
            are set aside and counted; not with Dask scoring).
        max_invalid_share: With ``quarantine``: the largest share of a table's rows that may be
            set aside.
        quarantine_dir: With ``quarantine``: folder of the quarantine files (default
            ``<corecast home>/quarantine``).
    """

    on_invalid: OnInvalid = "strict"
    max_invalid_share: Probability = DEFAULT_MAX_INVALID_SHARE
    quarantine_dir: Path | None = None

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``pipelines.tasks.load_data``."""
        return self.model_dump()


class ScaleParameters(_Group):
    """Scoring by member partitions on Dask (:mod:`pipelines.scale`).

    Attributes:
        dask: Score on Dask; the predictions are the same as on one process.
        dask_address: ``tcp://host:port`` of a running scheduler (default: a new local cluster).
        partitions: Member partitions scored in parallel.
        dask_workers: Worker processes of the local cluster (default: Dask's choice).
    """

    dask: bool = False
    dask_address: str | None = None
    partitions: Count = 2
    dask_workers: Count | None = None


class LabelParameters(_Group):
    """The targets' windows and the core role (:class:`LabelConfig`)."""

    horizon_days: Days = _LABELS.horizon_days
    readiness_horizon_days: Days = _LABELS.readiness_horizon_days
    active_within_days: Days = _LABELS.active_within_days
    core_role: str = _LABELS.core_role

    def label_config(self) -> LabelConfig:
        return LabelConfig(
            horizon_days=self.horizon_days,
            active_within_days=self.active_within_days,
            readiness_horizon_days=self.readiness_horizon_days,
            core_role=self.core_role,
        )


class TrainingParameters(_Group):
    """How training judges models (:class:`TrainConfig`) and what it may change.

    Attributes:
        capacity_share: Outreach capacity as a share of eligible members (k of precision@k).
        chapter_top: Candidates per chapter for the per-chapter precision.
        tolerance: Allowed shortfall of a challenger vs the champion on the primary metric.
        force_promote: Make the new versions champion whatever the gate says (recorded).
        train_overrides: Other ``TrainConfig`` settings by name (e.g. ``{"threads": 1}``).
        feature_overrides: ``FeatureConfig`` settings by name (``activity_types``, ...).
    """

    capacity_share: Share = _TRAINING.capacity_share
    chapter_top: Count = _TRAINING.chapter_top
    tolerance: Annotated[float, Field(ge=0.0)] = _TRAINING.promotion_tolerance
    force_promote: bool = False
    train_overrides: dict[str, Any] | None = None
    feature_overrides: dict[str, Any] | None = None
