"""The ``corecast`` command line.

Every command is a thin shell over the domain packages (or, for ``run`` and ``serve``, over the
Prefect flows). Heavy imports happen inside the commands so ``corecast --help`` stays instant.
Errors a user can cause (:class:`features.errors.CorecastError`) are printed as one clear message
and exit with status 2; nothing is half-written because every writer is atomic.
"""

from __future__ import annotations

import contextlib
import sys
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from serving.delivery import DEFAULT_HOLDOUT_SHARE, DEFAULT_MIN_DELIVERED_SHARE

__all__ = ["app", "main"]

app = typer.Typer(
    name="corecast",
    help="Who is ready to become an ambassador, who is about to drift away, and why.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

DataOption = typer.Option(
    None,
    "--data",
    "-d",
    help="Data source: a folder of CSV/Parquet tables or a SQLAlchemy URL (default: data.source "
    "of the project file).",
)


class OnInvalid(StrEnum):
    """Values of ``--on-invalid``: what loading does with rows that break the data contract."""

    strict = "strict"
    quarantine = "quarantine"


OnInvalidOption = typer.Option(
    None,
    "--on-invalid",
    help="strict: refuse data with any invalid row. quarantine: load the valid rows and set "
    "the invalid ones aside in <table>.quarantine.csv files (see docs/data-contract.md).",
)
MaxInvalidShareOption = typer.Option(
    None,
    "--max-invalid-share",
    min=0.0,
    max=1.0,
    help="With --on-invalid quarantine: refuse the data when more than this share of any "
    "table's rows is invalid (default 0.01 = 1 %).",
)
MinDeliveredShareOption = typer.Option(
    None,
    "--min-delivered-share",
    min=0.0,
    max=1.0,
    help=f"Below this share of the planned records delivered (default "
    f"{DEFAULT_MIN_DELIVERED_SHARE:g}), the push fails (exit 1; a run ends Failed); above it but "
    "short of all, it is partial (exit 3; a line in the summary).",
)
CrmUrlOption = typer.Option(
    None, "--crm-url", help="URL of the sink --to names: HubSpot API base URL, Salesforce "
    "instance URL or webhook URL (push.crm_url of the project file)."
)
CapacityOption = typer.Option(
    None, "--capacity", min=0, help="ready-now slots per chapter (default 3)."
)
AtRiskOption = typer.Option(
    None, "--at-risk", min=0.0, max=1.0, help="Risk threshold of at-risk segments (default 0.6)."
)
ReadyMinOption = typer.Option(
    None, "--ready-min", min=0.0, max=1.0, help="Minimum score for ready-now (default 0.10)."
)
NurtureMinOption = typer.Option(
    None, "--nurture-min", min=0.0, max=1.0, help="Minimum score for nurture (default 0.03)."
)
ToOption = typer.Option(
    None, "--to", help="csv, hubspot, salesforce, webhook or none (default csv)."
)
CoreRoleOption = typer.Option(
    None, "--core-role", help="Role readiness predicts (default ambassador)."
)
HorizonOption = typer.Option(
    None, "--horizon", help="Disengagement label window (default 90d)."
)
ReadinessHorizonOption = typer.Option(
    None, "--readiness-horizon", help="Readiness label window (default 180d)."
)
ActiveWithinOption = typer.Option(
    None, "--active-within",
    help="Disengagement eligibility: active within this window (default 90d).",
)
HoldoutShareOption = typer.Option(
    None, "--holdout-share", min=0.0, max=0.999,
    help=f"Share of the flagged members (ready-now, at-risk) held back this cycle as the "
    f"control group: action 'hold', do not call (default {DEFAULT_HOLDOUT_SHARE:g}; 0 = none).",
)
QuarantineDirOption = typer.Option(
    None,
    "--quarantine-dir",
    help="With --on-invalid quarantine: folder of the quarantine files "
    "(default: <corecast home>/quarantine).",
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", help="Project file (default: $CORECAST_CONFIG, ./corecast.toml, then "
        "<corecast home>/corecast.toml). Options given to a command override it.",
    ),
) -> None:
    """Who is ready to become an ambassador, who is about to drift away, and why."""
    ctx.obj = {"config": config}


def _settings(ctx: typer.Context, **options):
    """The configuration in force: defaults < project file < environment < ``options``
    (``section={key: value or None}``)."""
    from pipelines.project import load_effective

    explicit = (ctx.obj or {}).get("config") if ctx is not None else None
    return load_effective(explicit, options)


def _data_options(data, on_invalid, max_invalid_share, quarantine_dir) -> dict:
    """The ``data`` section as given on the command line (``None``: not given)."""
    return {
        "source": data,
        "on_invalid": str(on_invalid) if on_invalid is not None else None,
        "max_invalid_share": max_invalid_share,
        "quarantine_dir": str(quarantine_dir) if quarantine_dir is not None else None,
    }


def _segment_options(capacity, at_risk, ready_min, nurture_min, holdout_share=None) -> dict:
    """The ``segments`` section as given on the command line."""
    return {"capacity": capacity, "at_risk": at_risk, "ready_min": ready_min,
            "nurture_min": nurture_min, "holdout_share": holdout_share}


def _label_options(core_role, horizon, readiness_horizon, active_within) -> dict:
    """The ``labels`` section as given on the command line."""
    return {"core_role": core_role, "horizon": horizon, "readiness_horizon": readiness_horizon,
            "active_within": active_within}


def _push_options_given(to, crm_url, omit_field, min_delivered_share) -> dict:
    """The ``push`` section as given on the command line."""
    return {"to": to, "crm_url": crm_url, "omit_fields": tuple(omit_field) if omit_field else None,
            "min_delivered_share": min_delivered_share}


def _weekly_parameters(project) -> dict:
    """The flow parameters both jobs share (:func:`pipelines.project.weekly_parameters`), with
    the data source checked and its secrets moved to the environment."""
    from pipelines.project import weekly_parameters

    _check_sink(project.push.to)
    return {
        **weekly_parameters(project),
        "data": _password_out_of_parameters(_source_of(project)),
    }


def _monthly_parameters(project) -> dict:
    from pipelines.project import monthly_parameters

    return monthly_parameters(project)


def _source_of(project) -> str:
    """The data source in force, checked (``--data`` or ``data.source``)."""
    from features.errors import ConfigError

    if not project.data.source:
        raise ConfigError(
            "--data: no data source; give --data DIR (or a SQLAlchemy URL), or set data.source "
            "in the project file (corecast config init writes one)"
        )
    return _check_data(project.data.source)


def _loading_of(project) -> tuple:
    """``(on_invalid, max_invalid_share, quarantine_dir)`` of the ``data`` section."""
    data = project.data
    folder = Path(data.quarantine_dir).expanduser() if data.quarantine_dir else None
    return OnInvalid(data.on_invalid), data.max_invalid_share, folder


def _load(
    source: str,
    on_invalid: str = OnInvalid.strict,
    max_invalid_share: float = 0.01,
    quarantine_dir: Path | None = None,
):
    """Load and validate a data source, with a status line.

    With ``on_invalid="quarantine"`` the invalid rows are set aside in ``quarantine_dir``
    (default ``<corecast home>/quarantine``) and one line per table with such rows is printed:
    how many, their share, the top rules and the file.
    """
    from features.contract import describe_source, load_tables
    from features.quarantine import default_quarantine_dir

    options = {}
    if on_invalid == OnInvalid.quarantine:
        options = {
            "on_invalid": str(on_invalid),
            "max_invalid_share": max_invalid_share,
            "quarantine_dir": quarantine_dir or default_quarantine_dir(),
        }
    with console.status(f"Loading and validating {describe_source(source)} ..."):
        tables = load_tables(source, **options)
    for line in tables.quarantine.lines() if tables.quarantine is not None else ():
        console.print(f"[yellow]![/yellow] {escape(line)}", soft_wrap=True)
    return tables


@app.command()
def validate(
    ctx: typer.Context,
    data: str | None = DataOption,
    on_invalid: OnInvalid | None = OnInvalidOption,
    max_invalid_share: float | None = MaxInvalidShareOption,
    quarantine_dir: Path | None = QuarantineDirOption,
) -> None:
    """Check a data source against the data contract; exit non-zero with the problems found."""
    project = _settings(
        ctx, data=_data_options(data, on_invalid, max_invalid_share, quarantine_dir)
    ).project
    tables = _load(_source_of(project), *_loading_of(project))
    roles = "no roles table" if tables.roles is None else f"{len(tables.roles):,} role spells"
    chapters = (
        "no chapters table" if tables.chapters is None else f"{len(tables.chapters):,} chapters"
    )
    outreach = "" if tables.outreach is None else f", {len(tables.outreach):,} outreach contacts"
    console.print(
        f"[green]OK[/green] {tables.source}: {len(tables.members):,} members, "
        f"{len(tables.activities):,} activities, {roles}, {chapters}{outreach}; "
        f"activity from {tables.first_observed:%Y-%m-%d} to {tables.last_observed:%Y-%m-%d}."
    )


@app.command()
def simulate(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the community into."),
    members: int = typer.Option(20_000, "--members", "-n", min=50, help="Members who ever join."),
    years: float = typer.Option(3.0, "--years", "-y", min=0.5, help="Years of activity."),
    seed: int = typer.Option(0, "--seed", "-s", help="Random seed (same seed, same community)."),
    fmt: str = typer.Option("parquet", "--format", help="Table file format: parquet or csv."),
    outreach: bool = typer.Option(
        False, "--outreach",
        help="Add managers who call the members they flag every few weeks (an outreach table, "
        "the assignment log in assignments/ and the calls' true effects).",
    ),
    outreach_every: int | None = typer.Option(
        None, "--outreach-every", min=1, help="With --outreach: weeks between cycles (default 4)."
    ),
    holdout_share: float | None = typer.Option(
        None, "--holdout-share",
        help="With --outreach: share of the flagged members held back (default 0.1).",
    ),
) -> None:
    """Simulate a MakeSense-like community (tables, latent traits and true probabilities)."""
    from features.errors import ConfigError
    from simulator.community import SimulationConfig, simulate_community
    from simulator.model import truth_dates_that_fit
    from simulator.outreach import OutreachPlan, OutreachSimConfig, write_with_outreach

    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"--format: expected parquet or csv, got {fmt!r}")
    given = [n for n, v in (("--outreach-every", outreach_every),
                            ("--holdout-share", holdout_share)) if v is not None]
    if given and not outreach:
        verb = "apply" if len(given) > 1 else "applies"
        raise ConfigError(f"{' and '.join(given)} {verb} only with --outreach; add --outreach")
    settings = {k: v for k, v in (("every_weeks", outreach_every),
                                  ("holdout_share", holdout_share)) if v is not None}
    calls = OutreachPlan(OutreachSimConfig(**settings)) if outreach else None
    # A short simulation keeps as many truth dates as fit (the oracle needs 180 days after one).
    config = SimulationConfig(
        members=members, years=years, seed=seed, truth_dates=truth_dates_that_fit(years)
    )
    with console.status(f"Simulating {members:,} members over {years:g} years ..."):
        sim = simulate_community(config, calls)
    paths = write_with_outreach(sim, out, fmt=fmt)
    console.print(
        f"[green]Wrote[/green] {len(sim.members):,} members, {len(sim.activities):,} activities, "
        f"{len(sim.roles):,} role spells, {len(sim.chapters):,} chapters to {out} "
        f"({len(paths)} files, truth at {sim.truth['as_of'].nunique()} dates)."
    )
    if sim.outreach_summary is not None:
        done = sim.outreach_summary
        uplift = done["true_retention_uplift"]
        console.print(
            f"Outreach: {done['cycles']} cycles, {done['calls']:,} calls; the assignment log is "
            f"in {out / 'assignments'}, the true effects in outreach_truth.parquet"
            + ("" if uplift is None else f" (true retention uplift {uplift:+.3f})") + "."
        )


@app.command()
def features(
    ctx: typer.Context,
    data: str | None = DataOption,
    out: Path = typer.Option(..., "--out", "-o", help="Parquet file to write the features to."),
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help="Snapshot date (ISO 8601). Only rows strictly before it are used. "
        "Default: the day after the last observed timestamp.",
    ),
    describe: bool = typer.Option(False, "--describe", help="Also print name -> meaning."),
    on_invalid: OnInvalid | None = OnInvalidOption,
    max_invalid_share: float | None = MaxInvalidShareOption,
    quarantine_dir: Path | None = QuarantineDirOption,
) -> None:
    """Write one row of point-in-time features per member known at --as-of."""
    from features.build import build_features
    from features.catalog import describe_columns
    from features.errors import ConfigError, InsufficientDataError
    from features.io import write_parquet_atomic
    from features.tables import parse_as_of

    if out.is_dir():
        raise ConfigError(f"--out: {out} is a folder; give the path of a .parquet file to write")
    project = _settings(
        ctx, data=_data_options(data, on_invalid, max_invalid_share, quarantine_dir)
    ).project
    tables = _load(_source_of(project), *_loading_of(project))
    when = parse_as_of(as_of) if as_of else tables.last_observed.normalize() + _one_day()
    with console.status(f"Building features at {when:%Y-%m-%d} ..."):
        frame = build_features(tables, when)
    if frame.empty:
        first = tables.members["joined_at"].min()
        raise InsufficientDataError(
            f"--as-of {when:%Y-%m-%d}: no member had joined before it (the first joined on "
            f"{first:%Y-%m-%d}); nothing written to {out}"
        )
    write_parquet_atomic(frame.reset_index(), out)
    silent_days = (when - tables.last_observed).days
    if silent_days > _FAR_AFTER_DAYS:
        console.print(
            f"[yellow]warning:[/yellow] --as-of {when:%Y-%m-%d} is {silent_days:,} days after the "
            f"last activity in the data ({tables.last_observed:%Y-%m-%d}): every member looks "
            "silent since then."
        )
    console.print(
        f"[green]Wrote[/green] {len(frame):,} members x {frame.shape[1]} features "
        f"at {when:%Y-%m-%d} to {out}."
    )
    if describe:
        for name, meaning in describe_columns(frame.columns).items():
            typer.echo(f"{name}\t{meaning}")



#: A snapshot more than this many days after the last activity gets a warning.
_FAR_AFTER_DAYS = 365


def _duration(value: str | None, option: str) -> int | None:
    from features.errors import ConfigError
    from features.tables import parse_duration_days

    if value is None:
        return None
    try:
        return parse_duration_days(value)
    except ConfigError as exc:
        raise ConfigError(f"{option}: {exc}") from exc


def _with_readiness_activity(labels, readiness_active_within: str | None):
    """``labels`` with ``--readiness-active-within`` applied (``none`` = no activity condition)."""
    from dataclasses import replace

    if readiness_active_within is None:
        return labels
    if readiness_active_within.strip().lower() == "none":
        return replace(labels, readiness_active_within_days=None)
    days = _duration(readiness_active_within, "--readiness-active-within")
    return replace(labels, readiness_active_within_days=days)


def _targets(target: str) -> list[str] | None:
    from features.errors import ConfigError

    choices = {"all": None, "readiness": ["readiness"], "disengagement": ["disengagement"]}
    if target not in choices:
        raise ConfigError(f"--target: expected readiness, disengagement or all, got {target!r}")
    return choices[target]


UntilOption = typer.Option(
    None, "--until", help="Newest snapshot date (default: newest with a fully observed label)."
)
EveryOption = typer.Option(None, "--every", help="Spacing of snapshots (e.g. 30d).")
SnapshotsOption = typer.Option(
    None, "--snapshots", min=2, help="Snapshots in the training frame (default: as needed)."
)
ReadinessActiveWithinOption = typer.Option(
    None, "--readiness-active-within",
    help="Readiness eligibility: active within this window (default 365d; none = no "
    "activity condition).",
)
MaxFrameRowsOption = typer.Option(
    None, "--max-frame-rows", min=0,
    help="Above this many member-snapshots, train and evaluate on a hash sample of the "
    "members (default 2,000,000; 0 = every row).",
)
CapacityShareOption = typer.Option(
    None, "--capacity-share",
    help="Outreach capacity as a share of eligible members (k of @k; default 0.01).",
)
LegacyCapacityOption = typer.Option(
    None, "--capacity", hidden=True,
    help="Former name of --capacity-share (score and run's --capacity counts slots).",
)
ChapterTopOption = typer.Option(
    None, "--chapter-top", min=1, help="Candidates per chapter (default 3)."
)
TrainToleranceOption = typer.Option(
    None, "--tolerance", min=0.0,
    help="Allowed shortfall vs the champion on the primary metric (default 0).",
)
TrainForcePromoteOption = typer.Option(
    False, "--force-promote", help="Make the new versions champion whatever the gate says."
)


@app.command()
def train(
    ctx: typer.Context,
    data: str | None = DataOption,
    target: str = typer.Option("all", "--target", "-t", help="readiness, disengagement or all."),
    until: str | None = UntilOption,
    horizon: str | None = HorizonOption,
    readiness_horizon: str | None = ReadinessHorizonOption,
    active_within: str | None = ActiveWithinOption,
    every: str | None = EveryOption,
    snapshots: int | None = SnapshotsOption,
    core_role: str | None = CoreRoleOption,
    readiness_active_within: str | None = ReadinessActiveWithinOption,
    max_frame_rows: int | None = MaxFrameRowsOption,
    capacity: float | None = CapacityShareOption,
    legacy_capacity: float | None = LegacyCapacityOption,
    chapter_top: int | None = ChapterTopOption,
    tolerance: float | None = TrainToleranceOption,
    force_promote: bool = TrainForcePromoteOption,
    on_invalid: OnInvalid | None = OnInvalidOption,
    max_invalid_share: float | None = MaxInvalidShareOption,
    quarantine_dir: Path | None = QuarantineDirOption,
) -> None:
    """Train both targets, log runs to MLflow, register challengers and gate promotion.

    A target whose data cannot support a learned model gets a transparent ranking rule; the
    output says per target which (method), whether it was validated, and why. Exits 1 when a
    target asked for got neither (``--target all``: when every target got neither).
    """
    capacity = _capacity_share(capacity, legacy_capacity)
    project = _settings(
        ctx,
        data=_data_options(data, on_invalid, max_invalid_share, quarantine_dir),
        labels=_label_options(core_role, horizon, readiness_horizon, active_within),
        training={"capacity": capacity, "chapter_top": chapter_top, "tolerance": tolerance},
    ).project
    labels = _with_readiness_activity(project.labels.to_label_config(), readiness_active_within)
    frame = _frame_config(every, snapshots, until, max_frame_rows)
    configs = _train_configs(project.training)
    source = _source_of(project)
    tables = _load(source, *_loading_of(project))
    wanted = _targets(target)
    outcomes = _train_targets(project, source, tables, wanted, labels, frame, configs,
                              force_promote)
    _print_outcomes(outcomes)
    _exit_if_untrained(outcomes, explicit=wanted is not None)


def _capacity_share(capacity: float | None, legacy_capacity: float | None) -> float | None:
    """``--capacity-share``, or train's former ``--capacity`` (with a warning); not both."""
    from features.errors import ConfigError

    if legacy_capacity is None:
        return capacity
    if capacity is not None:
        raise ConfigError("--capacity is the former name of --capacity-share: give one")
    console.print("[yellow]warning:[/yellow] train's --capacity is now --capacity-share "
                  "(a share of eligible members; score and run's --capacity counts slots)")
    return legacy_capacity


def _frame_config(
    every: str | None, snapshots: int | None, until: str | None, max_frame_rows: int | None
):
    """The training frame's :class:`features.frames.FrameConfig` from ``--every``,
    ``--snapshots``, ``--until`` and ``--max-frame-rows``; ``None`` when none is given."""
    from features.frames import FrameConfig
    from features.tables import parse_as_of
    from models.train import DEFAULT_SNAPSHOTS

    if not (every or snapshots or until or max_frame_rows is not None):
        return None
    base = FrameConfig()
    return FrameConfig(
        every_days=_duration(every, "--every") or base.every_days,
        snapshots=snapshots or DEFAULT_SNAPSHOTS,
        until=parse_as_of(_parse_date(until, "--until")) if until else None,
        max_rows=base.max_rows if max_frame_rows is None else (max_frame_rows or None),
    )


def _train_configs(training) -> dict:
    """``{target: TrainConfig}`` of both targets from the project's ``training`` section."""
    from models.config import TrainConfig

    return {
        t: TrainConfig(
            target=t, capacity_share=training.capacity,
            chapter_top=training.chapter_top,
            promotion_tolerance=training.tolerance,
        )
        for t in ("readiness", "disengagement")
    }


def _train_targets(project, source: str, tables, wanted: list[str] | None, labels, frame,
                   configs: dict, force_promote: bool) -> list:
    """Train, register and gate the ``wanted`` targets (``None``: both), with a status line."""
    from models.workflow import train_and_register
    from simulator.oracle import oracle_for

    with console.status("Training (frame, backtest, calibration, evaluation) ..."):
        return train_and_register(
            tables, wanted, labels=labels, frame=frame, train_configs=configs,
            features=project.features.to_feature_config(),
            force_promote=force_promote, required=False, oracle=oracle_for(source),
        )


#: Outcomes of a target that got neither a model nor a rule.
_UNTRAINED = ("insufficient_data", "unavailable")


def _exit_if_untrained(outcomes, explicit: bool) -> None:
    """Exit 1, with the reasons, when a target asked for got neither a model nor a rule.

    Asked for: a target named with ``--target``; with ``--target all``, every target failing.
    """
    failed = [o for o in outcomes if o.status in _UNTRAINED]
    if not failed or (not explicit and len(failed) < len(outcomes)):
        return
    for o in failed:
        console.print(
            f"[bold red]error:[/bold red] {o.target} got neither a model nor a rule "
            f"({o.status}): {escape(o.message)}",
            highlight=False,
        )
    raise typer.Exit(1)


def _with_interval(metrics: dict, name: str, label: str, level: float) -> str:
    """``ROC-AUC 0.812 (90 % interval 0.740–0.880)``; empty without the metric."""
    value = metrics.get(f"holdout.{name}")
    if value is None or value != value:
        return ""
    low, high = metrics.get(f"holdout.{name}_ci_low"), metrics.get(f"holdout.{name}_ci_high")
    if low is None or high is None or low != low or high != high:
        return f"{label} {value:.3f}"
    return f"{label} {value:.3f} ({100 * level:g} % interval {low:.3f}–{high:.3f})"


def _outcome_lines(o) -> list[tuple[str, str]]:
    """``(first-line indent, text)`` lines describing one training outcome."""
    head = f"{o.target}: {o.status}" + (f" v{o.version}" if o.version else "")
    if o.method:
        head += f" · {o.method} · {'validated' if o.validated else 'not validated'}"
    else:
        head += " · neither a model nor a rule"
    lines = [("", head), ("    ", f"gate: {o.decision.reason}" if o.decision else o.message)]
    m = o.metrics or {}
    level = o.result.config.interval_level if getattr(o, "result", None) else 0.9
    figures = [
        _with_interval(m, "roc_auc", "ROC-AUC", level),
        _with_interval(m, "pr_auc", "PR-AUC", level),
        _with_interval(m, "precision_at_k", "precision@k", level),
    ]
    if m.get("oracle_ratio.roc_auc") is not None:
        figures.append(f"ROC-AUC vs oracle {m['oracle_ratio.roc_auc']:.3f}")
    if any(figures):
        lines.append(("    ", " · ".join(f for f in figures if f)))
    lines += [("    - ", note) for note in getattr(o, "notes", ())]
    return lines


def _print_outcomes(outcomes) -> None:
    """Per target: status, version, method, validated, the gate, metrics with their bootstrap
    intervals, and the notes saying what was done and why (wrapped to the terminal)."""
    import shutil
    import textwrap

    width = max(60, min(shutil.get_terminal_size((100, 24)).columns, 110))
    for o in outcomes:
        for indent, text in _outcome_lines(o):
            rest = " " * len(indent) if indent else "    "
            typer.echo(textwrap.fill(text, width, initial_indent=indent, subsequent_indent=rest))


@app.command()
def models() -> None:
    """List registered model versions, their aliases and key holdout metrics."""
    from rich.table import Table

    from models.registry import list_model_versions

    frame = list_model_versions()
    if frame.empty:
        console.print("No registered models yet: run `corecast train --data DIR`.")
        return
    table = Table(title="Registered models")
    columns = ["target", "version", "aliases", "candidate", "method", "validated",
               "primary_metric", "holdout_primary", "holdout_roc_auc", "holdout_precision_at_k",
               "holdout_ece", "promotion_status", "holdout_as_of"]
    for col in columns:
        table.add_column(col)
    for _, row in frame.iterrows():
        cells = []
        for col in columns:
            value = row.get(col)
            if col == "validated":
                cells.append("yes" if bool(value) else "no")
            elif isinstance(value, float):
                cells.append("" if value != value else f"{value:.3f}")
            elif isinstance(value, list | tuple):
                cells.append(",".join(value))
            else:
                cells.append("" if value is None else str(value))
        table.add_row(*cells)
    Console().print(table)


def _load_models(readiness_model: str, disengagement_model: str):
    from models.registry import load_scoring_models

    readiness, disengagement = load_scoring_models(readiness_model, disengagement_model)
    if readiness is None and readiness_model != "none":
        console.print("[yellow]No readiness champion: scoring disengagement only.[/]")
    return readiness, disengagement


@app.command()
def score(
    ctx: typer.Context,
    data: str | None = DataOption,
    as_of: str | None = typer.Option(
        None, "--as-of", help="Scoring date (default: the day after the last observed time)."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o",
        help="Folder for predictions + report (default: data.out of the project file, else ./out).",
    ),
    readiness_model: str = typer.Option(
        "champion", "--readiness-model", help="Alias or version of corecast-readiness ('none')."
    ),
    disengagement_model: str = typer.Option(
        "champion", "--disengagement-model", help="Alias or version of corecast-disengagement."
    ),
    capacity: int | None = CapacityOption,
    at_risk: float | None = AtRiskOption,
    ready_min: float | None = ReadyMinOption,
    nurture_min: float | None = NurtureMinOption,
    holdout_share: float | None = HoldoutShareOption,
    on_invalid: OnInvalid | None = OnInvalidOption,
    max_invalid_share: float | None = MaxInvalidShareOption,
    quarantine_dir: Path | None = QuarantineDirOption,
) -> None:
    """Score every consenting member; write predictions, chapter report and report.html.

    Exits 1, writing nothing, when a score column would be empty (a target without a champion
    although members are eligible for it, or a model that scored nobody).
    """
    project = _settings(
        ctx,
        data=_data_options(data, on_invalid, max_invalid_share, quarantine_dir),
        segments=_segment_options(capacity, at_risk, ready_min, nurture_min, holdout_share),
    ).project
    seg = project.segments
    out = _check_out_folder(out or Path(project.data.out or "out"))
    result = _score(_source_of(project), as_of, out, readiness_model, disengagement_model,
                    seg.capacity, seg.at_risk, seg.ready_min, seg.nurture_min,
                    loading=_loading_of(project), labels=project.labels.to_label_config(),
                    holdout_share=seg.holdout_share,
                    declined_pause_days=seg.declined_pause_days)
    console.print(f"[green]Scored[/green] {result.meta['members_scored']:,} members at "
                  f"{result.as_of:%Y-%m-%d}; segments: {result.meta['segments']}.")
    console.print(_outreach_line(result.meta["actions"], result.meta["holdout_share"]))


def _outreach_line(actions: dict, share: float) -> str:
    """This cycle's outreach: whom to contact, whom the control group holds back."""
    return (
        f"  outreach this cycle: {actions.get('contact', 0):,} to contact, "
        f"{actions.get('hold', 0):,} held back as the control group ({share:.0%} of those "
        "flagged; their action is 'hold': do not call them this cycle)"
    )


def _check_out_folder(out: Path) -> Path:
    """``out`` when it is a folder or can become one, and can be written to.

    Raises:
        ConfigError: When a file is in the way (the option is a folder for several files), or
            the folder cannot be created or written (read-only, no permission).
    """
    import tempfile

    from features.errors import ConfigError

    blocked = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise ConfigError(
            f"--out: {blocked} is a file; --out names a folder for the predictions and the "
            "report (e.g. --out out)"
        )
    existing = next(p for p in (out, *out.parents) if p.exists())  # created later, if need be
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ConfigError(
            f"--out: cannot write to {out} ({exc.strerror or exc}); give a folder you can write"
        ) from None
    return out


def _score(data, as_of, out, readiness_model, disengagement_model, capacity, at_risk,
           ready_min, nurture_min, loading=(), labels=None,
           holdout_share=DEFAULT_HOLDOUT_SHARE, declined_pause_days=None):
    from pipelines.steps import close_outreach_loop, scoring_config, write_report
    from serving.score import empty_score_reasons, score_members, write_predictions

    config = scoring_config(capacity, at_risk, ready_min, nurture_min, holdout_share,
                            declined_pause_days)
    tables = _load(data, *loading)
    readiness, disengagement = _load_models(readiness_model, disengagement_model)
    _warn_on_other_labels(labels, readiness=readiness, disengagement=disengagement)
    with console.status("Scoring members and explaining scores ..."):
        result = score_members(tables, as_of, readiness, disengagement, config)
    skipped = [t for t, ref in (("readiness", readiness_model),
                                ("disengagement", disengagement_model)) if ref == "none"]
    empty = empty_score_reasons(result, tables, readiness, disengagement, skipped)
    for reason in empty:
        console.print(f"[bold red]error:[/bold red] {escape(reason)}", highlight=False)
    if empty:
        console.print(f"Nothing written to {escape(str(out))}.")
        raise typer.Exit(1)
    models = {"readiness": readiness, "disengagement": disengagement}
    with console.status("Writing predictions and the chapter report ..."):
        # the loop first: a log it cannot read or write fails before any output is written
        loop = close_outreach_loop(data, tables, result, models, out)
        paths = [*write_predictions(result.predictions, out), *loop.paths]
        paths += write_report(result, tables, out, loop.lines).paths
    for path in paths:
        console.print(f"  wrote {path}")
    for line in loop.lines:
        console.print(f"  {escape(line)}", highlight=False)
    return result


def _warn_on_other_labels(labels, **models) -> None:
    """Say so when a model was trained with other label settings than the configuration's."""
    from serving.score import models_with_other_labels

    if labels is None:
        return
    for target, trained in models_with_other_labels(models, labels.fingerprint()).items():
        console.print(
            f"[yellow]warning:[/yellow] the {target} model (v{models[target].version}) was "
            f"trained with {trained}; the configuration says {labels.describe()}. "
            "Retrain (corecast train, or corecast run --retrain) to score with it.",
            highlight=False,
        )


HubspotUrlOption = typer.Option(None, "--hubspot-url", help="HubSpot API base URL.")
SalesforceUrlOption = typer.Option(None, "--salesforce-url", help="Salesforce instance URL.")
LedgerOption = typer.Option(None, "--ledger", help="Delivery ledger file.")
PredictionsOption = typer.Option(
    None, "--predictions", "-p", help="predictions.parquet or .csv from `corecast score`."
)
PushDryRunOption = typer.Option(
    False, "--dry-run", help="Show what would change; send nothing."
)
PushFullOption = typer.Option(False, "--full", help="Send unchanged records too.")
StatusOption = typer.Option(False, "--status", help="Show the ledger and dead letters.")
IdPropertyOption = typer.Option("email", "--id-property", help="HubSpot unique property.")
WebhookUrlOption = typer.Option(None, "--webhook-url", help="Webhook receiver URL.")
PushCsvPathOption = typer.Option(None, "--csv-path", help="CSV file to write.")
VolatileFieldOption = typer.Option(
    None, "--volatile-field", help="Field sent along but not counted as a change by itself "
    "(repeatable; default scored_at, as_of, model_versions, run_id; 'none' = every field "
    "counts)."
)


@app.command()
def push(
    ctx: typer.Context,
    predictions: Path | None = PredictionsOption,
    to: str | None = ToOption,
    dry_run: bool = PushDryRunOption,
    full: bool = PushFullOption,
    status: bool = StatusOption,
    crm_url: str | None = CrmUrlOption,
    hubspot_url: str | None = HubspotUrlOption,
    id_property: str = IdPropertyOption,
    salesforce_url: str | None = SalesforceUrlOption,
    webhook_url: str | None = WebhookUrlOption,
    csv_path: Path | None = PushCsvPathOption,
    ledger: Path | None = LedgerOption,
    volatile_field: list[str] | None = VolatileFieldOption,
    min_delivered_share: float | None = MinDeliveredShareOption,
) -> None:
    """Push predictions to a CRM (tokens from CORECAST_HUBSPOT_TOKEN etc.), or show --status.

    Exit codes: 0 everything planned was delivered (or nothing changed); 1 less than
    --min-delivered-share delivered (nothing delivered always counts), or the CRM stayed
    unreachable through the retries; 2 a usage, configuration or data error (a refused token
    too); 3 a partial delivery.
    """
    from serving.crm import push_from_file

    if status:
        _print_push_status(ledger)
        return
    settings = _settings(
        ctx, push={"to": to, "min_delivered_share": min_delivered_share, "crm_url": crm_url}
    )
    predictions = predictions or _latest_predictions(settings.project)
    wanted = settings.project.push
    _check_push_target(wanted, hubspot_url, salesforce_url, webhook_url)
    options = _push_options(wanted, ledger, full, dry_run, volatile_field)
    options = _with_sink_settings(
        options, hubspot_url=hubspot_url, id_property=id_property,
        salesforce_url=salesforce_url, webhook_url=webhook_url, csv_path=csv_path,
    )
    report = push_from_file(predictions, wanted.to, options)
    typer.echo(report.summary())
    _exit_on_delivery(report, wanted.min_delivered_share)


def _print_push_status(ledger: Path | None) -> None:
    """``push --status``: the delivery ledger and the newest dead letters."""
    from serving.crm import read_dead_letters, read_push_status

    _print_frame("Delivery ledger", read_push_status(ledger))
    _print_frame("Dead letters", read_dead_letters(ledger).head(50))


def _check_push_target(wanted, *urls: str | None) -> None:
    """The ``push`` section's CRM URL and the ``urls`` carry no credential, and it names a sink
    that sends something (``to`` is not ``none``)."""
    from features.errors import ConfigError
    from pipelines.project import check_crm_url

    for url in (wanted.crm_url, *urls):
        check_crm_url(url)  # a credential in a URL would reach the ledger and the messages
    if wanted.to == "none":
        raise ConfigError(
            "push: --to none (or push.to = \"none\" in the project file) sends nothing; choose "
            "csv, hubspot, salesforce or webhook"
        )


def _push_options(wanted, ledger: Path | None, full: bool, dry_run: bool,
                  volatile_field: list[str] | None):
    """The :class:`serving.crm.PushOptions` of the ``push`` section and the delivery options
    (``--volatile-field none``: every field counts as a change)."""
    from dataclasses import replace

    from serving.crm import PushOptions

    to = wanted.to
    options = PushOptions(
        ledger_path=ledger, full=full, dry_run=dry_run,
        min_delivered_share=wanted.min_delivered_share,
    ).with_crm_url(to, wanted.crm_url).with_mapping(to, wanted.field_names)
    options = options.without_fields(to, wanted.omit_fields)
    if volatile_field:
        chosen = () if [v.lower() for v in volatile_field] == ["none"] else tuple(volatile_field)
        options = replace(options, volatile_fields=chosen)
    return options


def _with_sink_settings(options, *, hubspot_url: str | None = None,
                        id_property: str | None = None, salesforce_url: str | None = None,
                        webhook_url: str | None = None, csv_path: Path | None = None):
    """Push or pull ``options`` with the sink settings given on the command line (``None``:
    keep the configured one)."""
    from dataclasses import replace

    if hubspot_url:
        options = replace(options, hubspot=replace(options.hubspot, base_url=hubspot_url))
    if id_property is not None:
        options = replace(options, hubspot=replace(options.hubspot, id_property=id_property))
    if salesforce_url:
        options = replace(
            options, salesforce=replace(options.salesforce, instance_url=salesforce_url)
        )
    if webhook_url:
        options = replace(options, webhook=replace(options.webhook, url=webhook_url))
    if csv_path:
        options = replace(options, csv=replace(options.csv, path=csv_path))
    return options


PullFromOption = typer.Option(
    None, "--from", help="hubspot, salesforce or csv (default: push.to of the project file)."
)
PullOutOption = typer.Option(
    ..., "--out", "-o", help="Folder of outreach.parquet (e.g. the data folder)."
)
PullDryRunOption = typer.Option(False, "--dry-run", help="Read and report; write nothing.")
PullFileOption = typer.Option(
    None, "--file", help="With --from csv: the filled-in file (default: the newest export)."
)
PullCsvPathOption = typer.Option(
    None, "--csv-path", help="With --from csv: the fixed file the CSV push writes."
)
PullLedgerOption = typer.Option(None, "--ledger", help="Delivery ledger (holds the cursor).")
OverlapOption = typer.Option(
    300.0, "--overlap", min=0.0, help="Seconds before the cursor to read again (default 300)."
)


@app.command()
def pull(
    ctx: typer.Context,
    source: str | None = PullFromOption,
    out: Path = PullOutOption,
    dry_run: bool = PullDryRunOption,
    file: Path | None = PullFileOption,
    crm_url: str | None = CrmUrlOption,
    hubspot_url: str | None = HubspotUrlOption,
    salesforce_url: str | None = SalesforceUrlOption,
    csv_path: Path | None = PullCsvPathOption,
    ledger: Path | None = PullLedgerOption,
    overlap: float = OverlapOption,
) -> None:
    """Read outreach outcomes back from a CRM into OUT/outreach.parquet (merged, incremental).

    Exit codes as for push: 0 done; 1 the CRM stayed unreachable; 2 a usage, configuration or
    data error (a refused token too); 3 some outcomes could not be used (listed as skipped).
    """
    from pipelines.project import check_crm_url
    from serving.crm import PushOptions
    from serving.crm.pull import PullOptions, pull_from_options

    wanted = _settings(ctx, push={"crm_url": crm_url}).project.push
    kind = _pull_source(source, wanted.to)
    for url in (wanted.crm_url, hubspot_url, salesforce_url):
        check_crm_url(url)
    push = PushOptions().with_crm_url(kind, wanted.crm_url).with_mapping(kind, wanted.field_names)
    options = PullOptions(
        ledger_path=ledger, dry_run=dry_run, overlap_s=overlap, file=file,
        hubspot=push.hubspot, salesforce=push.salesforce, csv=push.csv,
    )
    options = _with_sink_settings(
        options, hubspot_url=hubspot_url, salesforce_url=salesforce_url, csv_path=csv_path
    )
    report = pull_from_options(kind, out, options)
    typer.echo(report.summary())
    if report.skipped_total:
        console.print(
            f"[yellow]warning:[/yellow] {report.skipped_total} outcomes could not be used "
            "(see skipped above)", highlight=False,
        )
        raise typer.Exit(EXIT_PARTIAL)


def _pull_source(source: str | None, configured: str) -> str:
    """The CRM ``pull`` reads: ``--from``, else ``push.to`` of the project file; checked."""
    from features.errors import ConfigError
    from serving.crm.pull import PULL_SOURCES

    kind = source or configured
    if kind not in PULL_SOURCES:
        raise ConfigError(
            f"--from: expected one of {', '.join(PULL_SOURCES)}, got {kind!r}"
            + ("" if source else " (from push.to of the project file)")
        )
    return kind


def _latest_predictions(project) -> Path:
    """The predictions the last run wrote (``data.out``, else ``<corecast home>/out``)."""
    from features.errors import ConfigError
    from features.settings import corecast_home

    folder = Path(project.data.out) if project.data.out else corecast_home() / "out"
    path = folder / "predictions.parquet"
    if not path.is_file():
        raise ConfigError(
            f"push: --predictions FILE is required (or use --status); there is no {path} from "
            "a run to push"
        )
    console.print(f"Pushing {path}")
    return path


def _exit_on_delivery(report, min_delivered_share: float) -> None:
    """Exit 1 when the push delivered too little, 3 when it delivered only part."""
    from features.errors import DeliveryFailed
    from serving.crm import check_delivery

    try:
        partial = check_delivery(report, min_delivered_share)
    except DeliveryFailed as exc:
        console.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(EXIT_DELIVERY_FAILED) from None
    if partial:
        console.print(f"[yellow]warning:[/yellow] {escape(partial)}", highlight=False)
        raise typer.Exit(EXIT_PARTIAL)


def _print_frame(title: str, frame) -> None:
    from rich.table import Table

    table = Table(title=title)
    if frame.empty:
        Console().print(f"{title}: none")
        return
    for col in frame.columns:
        table.add_column(str(col))
    for row in frame.itertuples(index=False):
        table.add_row(*["" if v is None else str(v) for v in row])
    Console().print(table)


_SINKS = ("csv", "hubspot", "salesforce", "webhook", "none")


def _parse_date(value: str | None, option: str):
    import datetime as dt

    from features.errors import ConfigError

    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option}: {value!r} is not a date (YYYY-MM-DD)") from None


def _check_sink(to: str) -> str:
    from features.errors import ConfigError

    if to not in _SINKS:
        raise ConfigError(f"--to: expected one of {', '.join(_SINKS)}, got {to!r}")
    return to


def _check_data(data: str) -> str:
    """A folder must exist (URLs are checked when the flow loads them); folders made absolute."""
    from features.errors import ConfigError

    if "://" in data:
        return data
    folder = Path(data).expanduser()
    if not folder.exists():
        raise ConfigError(
            f"--data: {data} does not exist (a folder of tables or a SQLAlchemy URL, given with "
            "--data or as data.source in the project file)"
        )
    return str(folder.resolve())


def _password_out_of_parameters(data: str) -> str:
    """A data URL's literal password moves to an environment variable of this process.

    Flow parameters are stored by Prefect (its database, its UI); the URL passed to a flow names
    the variable instead (``${CORECAST_DATA_PASSWORD}``), and the flow reads it when it loads.
    """
    import os

    from features.contract import password_to_environment

    data, secrets = password_to_environment(data)
    for name, value in secrets.items():
        os.environ[name] = value
        console.print(
            f"A secret of the data URL reaches the flow as ${{{name}}} (an environment variable "
            "of this process), not among the parameters Prefect stores."
        )
    return data


def _run_flow(flow, **parameters):
    """Run a flow in this process; bad parameters become one clear ConfigError."""
    import logging

    from prefect.exceptions import ParameterTypeError

    from features.errors import ConfigError

    flow_logger = logging.getLogger("prefect.flows")
    level = flow_logger.level
    flow_logger.setLevel(logging.CRITICAL)  # the message below says it once, plainly
    try:
        flow.validate_parameters(parameters)  # before any server starts
    except ParameterTypeError as exc:
        raise ConfigError(f"{flow.name}: invalid parameters: {exc}") from None
    finally:
        flow_logger.setLevel(level)
    _prefect_note()
    with _no_tracebacks_for_user_errors():
        return flow(**parameters)


class _UserErrorFilter:
    """A logging filter keeping the message of a user error (a ``CorecastError``: bad data, a
    refused push, ...) but not its traceback; bugs keep theirs."""

    def filter(self, record) -> bool:
        from features.errors import CorecastError

        info = record.exc_info
        if info and isinstance(info[1], CorecastError):
            record.exc_info, record.exc_text = None, None
        return True


@contextlib.contextmanager
def _no_tracebacks_for_user_errors():
    """While a flow runs, Prefect's log handlers print a user error as one line: the command
    then prints the error itself, once, plainly."""
    import logging

    handlers = {
        handler
        for name in ("prefect", "prefect.flow_runs", "prefect.task_runs", "")
        for handler in logging.getLogger(name).handlers
    }
    user_errors = _UserErrorFilter()
    for handler in handlers:
        handler.addFilter(user_errors)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(user_errors)


def _prefect_note() -> None:
    import os

    url = os.environ.get("PREFECT_API_URL")
    if url:
        console.print(f"[dim]Prefect: recording runs on {escape(url)}[/]")
    else:
        console.print(
            "[dim]Prefect: no PREFECT_API_URL, starting a temporary local server for this run "
            "(about 10 s) ...[/]"
        )


def _method_suffix(weekly: dict, target: str) -> str:
    """`` (rule:activity_365d, not validated)`` for a scoring summary's target, if known."""
    method = (weekly.get("methods") or {}).get(target)
    if not method:
        return ""
    validated = "validated" if method["validated"] else "not validated"
    return f" ({escape(method['method'])}, {validated})"


def _print_run(summary: dict, out: Path) -> None:
    weekly = summary.get("weekly", summary)
    for target, trained in (weekly.get("other_labels") or {}).items():
        console.print(
            f"  [yellow]warning:[/yellow] the {target} champion was trained with {trained}, "
            "other label settings than the configuration's; retrain with corecast run "
            "--retrain", highlight=False,
        )
    for line in (weekly.get("quarantine") or {}).get("lines", []):
        console.print(f"  [yellow]![/yellow] {escape(line)}", soft_wrap=True)
    for outcome in summary.get("training", []):
        method = outcome.get("method")
        validated = "validated" if outcome.get("validated") else "not validated"
        console.print(
            f"  train {outcome['target']}: {outcome['status']}"
            + (f" v{outcome['version']}" if outcome.get("version") else "")
            + (f" ({escape(method)}, {validated})" if method else "")
            + f" - {escape(str(outcome['gate']))}"
        )
    console.print(
        f"  scored {weekly['members_scored']:,} members at {weekly['as_of']} with "
        + ", ".join(f"{t} v{v}{_method_suffix(weekly, t)}"
                    for t, v in weekly["models"].items() if v)
        + "; segments: "
        + ", ".join(f"{name} {count:,}" for name, count in weekly["segments"].items())
    )
    if weekly.get("actions") is not None:
        console.print(_outreach_line(weekly["actions"], weekly["holdout_share"]))
    for line in (weekly.get("outreach") or {}).get("lines", []):
        console.print(f"  {escape(line)}", highlight=False)
    push = weekly.get("push")
    if push:
        dry = " (dry run)" if push["dry_run"] else ""
        console.print(
            f"  push {push['kind']}{dry}: {push['new']} new, {push['changed']} changed, "
            f"{push['unchanged']} unchanged -> {push['sent']} sent, {push['failed']} failed"
        )
        for path in push["files"]:
            console.print(f"  CRM import file: {path}")
        if push["kind"] == "csv" and not push["dry_run"] and not push["files"]:
            console.print("  no CRM import file this time: nothing changed since the last push")
    console.print(f"  outputs in {out}")


OutFolderOption = typer.Option(
    None, "--out", "-o", help="Output folder (default: <corecast home>/out)."
)
RetrainOption = typer.Option(
    False, "--retrain", help="Run the monthly job: retrain both targets (gated), then score."
)
RunAsOfOption = typer.Option(
    None, "--as-of", help="Scoring date YYYY-MM-DD (default: the day after the last activity)."
)
RunDryRunOption = typer.Option(False, "--dry-run", help="Plan the push only; send nothing.")
RunFullOption = typer.Option(False, "--full", help="Push unchanged records too.")
RunCsvPathOption = typer.Option(
    None, "--csv-path", help="CSV sink file (default: time-stamped files in OUT/crm-exports)."
)
RunToleranceOption = typer.Option(
    None, "--tolerance", min=0.0,
    help="With --retrain: allowed shortfall vs the champion (default 0).",
)
RunForcePromoteOption = typer.Option(
    False, "--force-promote", help="With --retrain: promote whatever the gate says."
)
RunOmitFieldOption = typer.Option(
    None, "--omit-field", help="CRM field to leave out of the push (repeatable), e.g. "
    "reasons for a CRM without that property."
)
DaskOption = typer.Option(
    False, "--dask", help="Score by member partitions on Dask (a local cluster by default); "
    "same predictions as on one process. Training stays on one process."
)
DaskAddressOption = typer.Option(
    None, "--dask-address", help="With --dask: a running scheduler, tcp://host:port."
)
PartitionsOption = typer.Option(
    None, "--partitions", help="With --dask: member partitions scored in parallel "
    "(default 2)."
)
DaskWorkersOption = typer.Option(
    None, "--dask-workers", help="With --dask: worker processes of the local cluster "
    "(default: Dask's choice; not with --dask-address)."
)


@app.command()
def run(
    ctx: typer.Context,
    data: str | None = DataOption,
    retrain: bool = RetrainOption,
    as_of: str | None = RunAsOfOption,
    out: Path | None = OutFolderOption,
    to: str | None = ToOption,
    dry_run: bool = RunDryRunOption,
    full: bool = RunFullOption,
    capacity: int | None = CapacityOption,
    at_risk: float | None = AtRiskOption,
    holdout_share: float | None = HoldoutShareOption,
    csv_path: Path | None = RunCsvPathOption,
    ledger: Path | None = LedgerOption,
    crm_url: str | None = CrmUrlOption,
    tolerance: float | None = RunToleranceOption,
    core_role: str | None = CoreRoleOption,
    horizon: str | None = HorizonOption,
    readiness_horizon: str | None = ReadinessHorizonOption,
    active_within: str | None = ActiveWithinOption,
    force_promote: bool = RunForcePromoteOption,
    omit_field: list[str] | None = RunOmitFieldOption,
    dask: bool = DaskOption,
    dask_address: str | None = DaskAddressOption,
    partitions: int | None = PartitionsOption,
    dask_workers: int | None = DaskWorkersOption,
    on_invalid: OnInvalid | None = OnInvalidOption,
    max_invalid_share: float | None = MaxInvalidShareOption,
    quarantine_dir: Path | None = QuarantineDirOption,
    min_delivered_share: float | None = MinDeliveredShareOption,
) -> None:
    """Run the weekly job (or the monthly one with --retrain) once, here, as a Prefect flow.

    Exit codes as for push: 0 done; 1 the push delivered less than --min-delivered-share, or the
    CRM stayed unreachable; 2 a usage, configuration or data error; 3 a partial delivery.
    """
    from pipelines.flows import check_loading_options
    from pipelines.scale import check_dask_options

    project = _settings(
        ctx,
        data=_data_options(data, on_invalid, max_invalid_share, quarantine_dir),
        segments=_segment_options(capacity, at_risk, None, None, holdout_share),
        push=_push_options_given(to, crm_url, omit_field, min_delivered_share),
        labels=_label_options(core_role, horizon, readiness_horizon, active_within),
        training={"tolerance": tolerance},
    ).project
    when = _parse_date(as_of, "--as-of")
    check_dask_options(dask, dask_address, partitions, dask_workers)
    check_loading_options(project.data.on_invalid, dask)
    scale = None
    if dask:
        scale = {"dask": True, "dask_address": dask_address, "partitions": partitions or 2,
                 "dask_workers": dask_workers}
    delivery = {"dry_run": dry_run, "full": full, "csv_path": csv_path, "ledger": ledger}
    parameters = _run_parameters(project, when, out, delivery, scale)
    summary = _run_once(project, parameters, retrain, force_promote)
    _print_run_end(summary, parameters["out"])


def _run_parameters(project, as_of, out: Path | None, delivery: dict,
                    scale: dict | None) -> dict:
    """The weekly flow's parameters for ``run``: the project's, with this run's scoring date,
    output folder (checked), ``delivery`` settings and ``scale`` (``None``: one process)."""
    from pipelines.flows import default_out_dir
    from pipelines.parameters import ScaleParameters

    parameters = _weekly_parameters(project)
    out = _check_out_folder((out or parameters["out"] or default_out_dir()).expanduser().resolve())
    delivery = parameters["delivery"].model_copy(update=delivery)
    parameters.update(as_of=as_of, out=out, delivery=delivery)
    if scale is not None:
        parameters["scale"] = ScaleParameters(**scale)
    return parameters


def _run_once(project, parameters: dict, retrain: bool, force_promote: bool) -> dict:
    """Run the weekly flow, or the monthly one (training gated unless ``force_promote``)."""
    from pipelines.flows import monthly_flow, weekly_flow

    if not retrain:
        return _run_flow(weekly_flow, **parameters)
    monthly = _monthly_parameters(project)
    monthly["training"] = monthly["training"].model_copy(update={"force_promote": force_promote})
    return _run_flow(monthly_flow, **parameters, **monthly)


def _print_run_end(summary: dict, out: Path) -> None:
    """Print how the run ended; exit 3 after a partial delivery."""
    push = summary.get("weekly", summary).get("push") or {}
    if push.get("partial"):
        console.print("[bold yellow]Run finished with a partial delivery[/]")
        _print_run(summary, out)
        console.print(f"[yellow]warning:[/yellow] {escape(push['partial'])}", highlight=False)
        raise typer.Exit(EXIT_PARTIAL)
    console.print("[bold green]Run finished[/]")
    _print_run(summary, out)


WeeklyCronOption = typer.Option(
    None, "--weekly", help="Cron of the weekly job (default: Mondays 06:00, "
    "schedule.weekly of the project file)."
)
MonthlyCronOption = typer.Option(
    None, "--monthly", help="Cron of the monthly job (default: the 1st, 05:00, "
    "schedule.monthly of the project file)."
)
TimezoneOption = typer.Option(
    None, "--timezone", "--tz", help="IANA time zone of both schedules (default UTC)."
)
ServeDryRunOption = typer.Option(False, "--dry-run", help="Plan pushes only; send nothing.")
ServeOmitFieldOption = typer.Option(
    None, "--omit-field", help="CRM field to leave out of pushes (repeatable)."
)
ServerPortOption = typer.Option(
    4200, "--server-port", help="Port of the local Prefect server started when no "
    "PREFECT_API_URL is set."
)


@app.command()
def serve(
    ctx: typer.Context,
    data: str | None = DataOption,
    weekly: str | None = WeeklyCronOption,
    monthly: str | None = MonthlyCronOption,
    timezone: str | None = TimezoneOption,
    out: Path | None = OutFolderOption,
    to: str | None = ToOption,
    dry_run: bool = ServeDryRunOption,
    crm_url: str | None = CrmUrlOption,
    omit_field: list[str] | None = ServeOmitFieldOption,
    server_port: int = ServerPortOption,
    min_delivered_share: float | None = MinDeliveredShareOption,
    core_role: str | None = CoreRoleOption,
    horizon: str | None = HorizonOption,
    readiness_horizon: str | None = ReadinessHorizonOption,
    active_within: str | None = ActiveWithinOption,
) -> None:
    """Register the weekly and monthly deployments with cron schedules and run them when due.

    Runs until stopped (Ctrl-C). With PREFECT_API_URL set, the deployments live on that server;
    without it, a local Prefect server is started on 127.0.0.1 (its UI shows runs and artifacts).
    """
    from pipelines.deploy import check_cron, check_timezone
    from pipelines.flows import default_out_dir

    project = _settings(
        ctx,
        data={"source": data},
        push=_push_options_given(to, crm_url, omit_field, min_delivered_share),
        labels=_label_options(core_role, horizon, readiness_horizon, active_within),
        schedule={"weekly": weekly, "monthly": monthly, "timezone": timezone},
    ).project
    weekly, monthly = project.schedule.weekly, project.schedule.monthly
    timezone = project.schedule.timezone
    check_cron(weekly, "--weekly")
    check_cron(monthly, "--monthly")
    check_timezone(timezone)
    parameters = _weekly_parameters(project)
    out = (out or parameters["out"] or default_out_dir()).expanduser().resolve()
    delivery = parameters["delivery"].model_copy(update={"dry_run": dry_run})
    parameters.update(out=str(out), delivery=delivery)
    monthly_parameters = _monthly_parameters(project)
    _serve_until_stopped(weekly, monthly, timezone, parameters, monthly_parameters, server_port)


def _serve_until_stopped(weekly: str, monthly: str, timezone: str, parameters: dict,
                         monthly_parameters: dict, server_port: int) -> None:
    """Serve the deployments on ``PREFECT_API_URL``, else on a local Prefect server started on
    ``server_port``, until Ctrl-C or SIGTERM."""
    import os

    from features.settings import corecast_home
    from pipelines.deploy import build_deployments, local_prefect_server, stop_on_sigterm

    # SIGTERM (a supervisor's stop) behaves like Ctrl-C from here on, also in the moment
    # before Prefect's runner installs its own handler: the local server is stopped and the
    # schedules are paused whenever the stop arrives.
    with stop_on_sigterm():
        try:
            api = os.environ.get("PREFECT_API_URL")
            if api:
                _serve(build_deployments, weekly, monthly, timezone, parameters, api,
                       monthly_parameters)
                return
            log = corecast_home() / "prefect" / "server.log"
            console.print(
                f"Starting a local Prefect server on 127.0.0.1:{server_port} (log: {log}) ..."
            )
            with local_prefect_server(server_port, log) as api:
                os.environ["PREFECT_API_URL"] = api
                try:
                    _serve(build_deployments, weekly, monthly, timezone, parameters, api,
                           monthly_parameters)
                finally:
                    os.environ.pop("PREFECT_API_URL", None)
        except KeyboardInterrupt:
            console.print("Stopped.")


def _serve(build, weekly, monthly, timezone, parameters, api, monthly_parameters=None) -> None:
    from prefect import serve as prefect_serve
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pipelines.deploy import MONTHLY_DEPLOYMENT, WEEKLY_DEPLOYMENT, pause_deployments
    from pipelines.flows import monthly_flow, weekly_flow

    names = [
        f"{weekly_flow.name}/{WEEKLY_DEPLOYMENT}",
        f"{monthly_flow.name}/{MONTHLY_DEPLOYMENT}",
    ]
    # The runner pauses the schedules when it shuts down; a stop that lands before it started
    # (or during registration) must leave them paused too. Pausing is idempotent.
    try:
        with temporary_settings(updates={PREFECT_API_URL: api}):
            deployments = build(
                weekly_cron=weekly, monthly_cron=monthly, timezone=timezone,
                parameters=parameters, monthly_parameters=monthly_parameters,
            )
            ui = api.removesuffix("/api")
            console.print(
                f"Serving corecast-weekly/weekly ({weekly}) and corecast-monthly/monthly "
                f"({monthly}), time zone {timezone}, on {escape(api)}.\n"
                f"  Prefect UI: {ui}   list: PREFECT_API_URL={api} prefect deployment ls\n"
                "  Run one now: prefect deployment run corecast-weekly/weekly   Stop: Ctrl-C"
            )
            prefect_serve(*deployments, limit=1, print_starting_message=False)
    except (KeyboardInterrupt, SystemExit):
        pause_deployments(names, api)
        raise
    pause_deployments(names, api)


config_app = typer.Typer(
    help="The project file (corecast.toml): show the configuration in force, or write one.",
    no_args_is_help=True,
)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Print the configuration in force and where each value comes from."""
    from pipelines.project import SECTIONS, shown

    settings = _settings(ctx)
    where = settings.path or "none found (defaults apply)"
    typer.echo(f"# project file: {where}")
    for section, model in SECTIONS.items():
        values = getattr(settings.project, section)
        for key in model.model_fields:
            name = f"{section}.{key}"
            value = shown(name, getattr(values, key))
            typer.echo(f"{name} = {value}    ({settings.source_of(name)})")


@config_app.command("init")
def config_init(
    ctx: typer.Context,
    data: str | None = DataOption,
    out: Path = typer.Option(
        Path("corecast.toml"), "--out", "-o", help="File to write (default ./corecast.toml)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
) -> None:
    """Write a commented project file proposed from the data it sees (core role, windows)."""
    from features.errors import ConfigError
    from features.io import write_text_atomic
    from pipelines.project import starter_file

    if out.is_dir():
        raise ConfigError(f"--out: {out} is a folder; name the file to write (corecast.toml)")
    if not out.parent.is_dir():
        raise ConfigError(f"--out: the folder {out.parent} does not exist")
    if out.exists() and not force:
        raise ConfigError(f"--out: {out} exists; pass --force to replace it")
    project = _settings(ctx, data={"source": data}).project
    tables = _load(_source_of(project))
    proposed, notes = _proposal(project, tables, _source_of(project))
    write_text_atomic(starter_file(proposed, notes), out)
    console.print(f"[green]Wrote[/green] {out}: check the proposed values, then every command "
                  "and scheduled run reads it.")


def _proposal(project, tables, source: str):
    """The project with a core role and label windows that fit ``tables``, and why."""
    from pipelines.project import propose_labels

    labels, notes = propose_labels(tables)
    data = project.data.model_copy(update={"source": source})
    return project.model_copy(update={"data": data, "labels": labels}), notes


@app.command()
def ui(
    port: int = typer.Option(5000, "--port", "-p", help="Port on 127.0.0.1."),
) -> None:
    """Open the MLflow UI on the project's store (127.0.0.1 only); Ctrl-C stops it."""
    import signal
    import subprocess

    from features.settings import corecast_home, mlflow_tracking_uri
    from models.store_home import rehome_store, sqlite_database
    from pipelines.deploy import (
        check_port_free,
        mlflow_ui_command,
        mlflow_ui_environment,
        wait_for_http,
    )

    check_port_free(port)
    uri = mlflow_tracking_uri()
    database = sqlite_database(uri)
    if database is not None:
        rehome_store(database)
    command = mlflow_ui_command(uri, port, corecast_home() / "mlartifacts")
    url = f"http://127.0.0.1:{port}"
    console.print(f"Starting the MLflow UI on {escape(uri)} ...")

    def stop_on_sigterm(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop_on_sigterm)
    # Its own session: Ctrl-C interrupts this command, which then stops the server in order.
    process = subprocess.Popen(
        command, env=mlflow_ui_environment(), stdin=subprocess.DEVNULL, start_new_session=True
    )
    try:
        if wait_for_http(f"{url}/health", 120, process):
            console.print(f"[bold green]MLflow UI:[/] {url}   (Ctrl-C to stop)")
        code = process.wait()
    except KeyboardInterrupt:
        code = None
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        signal.signal(signal.SIGTERM, previous)
    if code is None:
        console.print("MLflow UI stopped.")
        return
    if code != 0:
        from features.errors import ConfigError

        raise ConfigError(f"the MLflow UI exited with status {code} (see the messages above)")


@app.command()
def demo(
    members: int = typer.Option(20_000, "--members", "-n", min=300, help="Simulated members."),
    years: float = typer.Option(3.0, "--years", min=1.5, help="Simulated years."),
    seed: int = typer.Option(0, "--seed", help="Simulation seed."),
) -> None:
    """Simulate a community, then run the monthly flow on it (train, gate, score, report, push).

    The simulated managers call the members they flag every four weeks, so the run also shows
    what the calls changed (the outreach loop).

    Runs the whole job offline: the push goes to CSV files. Running it again reuses the
    community and shows a new challenger, the gate's decision and a delta push.
    """
    import time

    from features.settings import corecast_home, mlflow_tracking_uri
    from pipelines.flows import monthly_flow
    from simulator.community import SimulationConfig, simulate_community
    from simulator.outreach import OutreachPlan, OutreachSimConfig, write_with_outreach

    started = time.perf_counter()
    home = corecast_home()
    data = home / "demo" / "data"
    out = home / "demo" / "out"
    step = "[bold cyan]›[/]"
    if (data / "simulation.json").exists() and _same_simulation(data, members, years, seed):
        console.print(f"{step} Reusing the simulated community in {data}")
    else:
        console.print(f"{step} Simulating {members:,} members over {years:g} years ...")
        with console.status("simulating ..."):  # with managers calling, to show the loop
            config = SimulationConfig(members=members, years=years, seed=seed)
            sim = simulate_community(config, OutreachPlan(OutreachSimConfig()))
            write_with_outreach(sim, data)
    console.print(
        f"{step} Monthly flow: validate, train both targets (MLflow runs, challenger, promotion "
        "gate), score with the champions, chapter report, delta push to a CSV file ..."
    )
    project = _demo_project(data, home / "demo" / "corecast.toml")
    parameters = {**_weekly_parameters(project), **_monthly_parameters(project), "out": out}
    summary = _run_flow(monthly_flow, **parameters)
    elapsed = time.perf_counter() - started
    console.print(f"\n[bold green]Demo finished[/] in {elapsed:.0f} s.")
    _print_run(summary, out)
    console.print(
        f"  data:         {data}\n"
        f"  predictions:  {out / 'predictions.parquet'} (and .csv)\n"
        f"  report:       {out / 'report.html'}  (open it in a browser)\n"
        f"  chapters:     {out / 'chapter_report.csv'}\n"
        f"  CRM exports:  {out / 'crm-exports'}  (one file per push, only what changed)\n"
        f"  MLflow store: {mlflow_tracking_uri()}\n"
        f"  project file: {home / 'demo' / 'corecast.toml'}  (corecast --config FILE run ...)\n"
        "  MLflow UI:    corecast ui   (then open http://127.0.0.1:5000)\n"
        "  Run again:    make demo   (new challenger, gate decision, delta push)"
    )


def _demo_project(data: Path, path: Path):
    """The demo's project file (written once, from the simulated data), read back."""
    from features.io import write_text_atomic
    from pipelines.project import Project, load_effective, starter_file

    if not path.is_file():
        # the demo's own settings, never those of a corecast.toml in the working folder
        base = Project.model_validate({"push": {"to": "csv"}})
        proposed, notes = _proposal(base, _load(str(data)), str(data))
        write_text_atomic(starter_file(proposed, notes), path)
        console.print(f"[bold cyan]›[/] Wrote the demo's project file {path}")
    return load_effective(path, {"data": {"source": str(data)}}).project


def _same_simulation(folder: Path, members: int, years: float, seed: int) -> bool:
    import json

    try:
        saved = json.loads((folder / "simulation.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    config = saved.get("config", saved)
    return (config.get("members"), float(config.get("years", -1)), config.get("seed")) == (
        members, float(years), seed,
    )


def _one_day():
    import pandas as pd

    return pd.Timedelta(days=1)


#: Exit codes of every command: 0 done; 1 a delivery failed (below --min-delivered-share, or the
#: CRM stayed unreachable through the retries); 2 a usage, configuration or data error (a refused
#: token included); 3 a partial delivery. Training and scoring add their own 1 (nothing trained,
#: a score column would be empty).
EXIT_DELIVERY_FAILED, EXIT_USER_ERROR, EXIT_PARTIAL = 1, 2, 3


def exit_code(exc: BaseException) -> int:
    """The exit code of a user error (see :data:`EXIT_USER_ERROR` and its neighbours)."""
    from features.errors import CrmError, CrmRefused, DeliveryFailed

    if isinstance(exc, DeliveryFailed) or (
        isinstance(exc, CrmError) and not isinstance(exc, CrmRefused)
    ):
        return EXIT_DELIVERY_FAILED
    return EXIT_USER_ERROR


def main() -> None:
    """Entry point: run the app and turn user errors into one clear message."""
    from features.errors import CorecastError
    from features.settings import configure_environment

    configure_environment()
    try:
        app()
    except CorecastError as exc:
        console.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False)
        sys.exit(exit_code(exc))


if __name__ == "__main__":  # pragma: no cover
    main()
