"""The ``corecast`` command line.

Every command is a thin shell over the domain packages (or, for ``run`` and ``serve``, over the
Prefect flows). Heavy imports happen inside the commands so ``corecast --help`` stays instant.
Errors a user can cause (:class:`features.errors.CorecastError`) are printed as one clear message
and exit with status 2; nothing is half-written because every writer is atomic.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

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
    ...,
    "--data",
    "-d",
    help="Data source: a folder of CSV/Parquet tables or a SQLAlchemy URL.",
)


def _load(source: str):
    """Load and validate a data source, with a status line."""
    from features.contract import describe_source, load_tables

    with console.status(f"Loading and validating {describe_source(source)} ..."):
        return load_tables(source)


@app.command()
def validate(data: str = DataOption) -> None:
    """Check a data source against the data contract; exit non-zero with the problems found."""
    tables = _load(data)
    roles = "no roles table" if tables.roles is None else f"{len(tables.roles):,} role spells"
    chapters = (
        "no chapters table" if tables.chapters is None else f"{len(tables.chapters):,} chapters"
    )
    console.print(
        f"[green]OK[/green] {tables.source}: {len(tables.members):,} members, "
        f"{len(tables.activities):,} activities, {roles}, {chapters}; "
        f"activity from {tables.first_observed:%Y-%m-%d} to {tables.last_observed:%Y-%m-%d}."
    )


@app.command()
def simulate(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the community into."),
    members: int = typer.Option(20_000, "--members", "-n", min=50, help="Members who ever join."),
    years: float = typer.Option(3.0, "--years", "-y", min=0.5, help="Years of activity."),
    seed: int = typer.Option(0, "--seed", "-s", help="Random seed (same seed, same community)."),
    fmt: str = typer.Option("parquet", "--format", help="Table file format: parquet or csv."),
) -> None:
    """Simulate a MakeSense-like community (tables, latent traits and true probabilities)."""
    from features.errors import ConfigError
    from features.simulate import SimulationConfig, simulate_community, write_simulation

    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"--format: expected parquet or csv, got {fmt!r}")
    config = SimulationConfig(members=members, years=years, seed=seed)
    with console.status(f"Simulating {members:,} members over {years:g} years ..."):
        sim = simulate_community(config)
    paths = write_simulation(sim, out, fmt=fmt)
    console.print(
        f"[green]Wrote[/green] {len(sim.members):,} members, {len(sim.activities):,} activities, "
        f"{len(sim.roles):,} role spells, {len(sim.chapters):,} chapters to {out} "
        f"({len(paths)} files, truth at {sim.truth['as_of'].nunique()} dates)."
    )


@app.command()
def features(
    data: str = DataOption,
    out: Path = typer.Option(..., "--out", "-o", help="Parquet file to write the features to."),
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help="Snapshot date (ISO 8601). Only rows strictly before it are used. "
        "Default: the day after the last observed timestamp.",
    ),
    describe: bool = typer.Option(False, "--describe", help="Also print name -> meaning."),
) -> None:
    """Write one row of point-in-time features per member known at --as-of."""
    from features.build import build_features
    from features.catalog import describe_columns
    from features.io import write_parquet_atomic
    from features.tables import parse_as_of

    tables = _load(data)
    when = parse_as_of(as_of) if as_of else tables.last_observed.normalize() + _one_day()
    with console.status(f"Building features at {when:%Y-%m-%d} ..."):
        frame = build_features(tables, when)
    write_parquet_atomic(frame.reset_index(), out)
    console.print(
        f"[green]Wrote[/green] {len(frame):,} members x {frame.shape[1]} features "
        f"at {when:%Y-%m-%d} to {out}."
    )
    if describe:
        for name, meaning in describe_columns(frame.columns).items():
            typer.echo(f"{name}\t{meaning}")


def _one_day():
    import pandas as pd

    return pd.Timedelta(days=1)


def main() -> None:
    """Entry point: run the app and turn user errors into one clear message."""
    from features.errors import CorecastError
    from features.settings import configure_environment

    configure_environment()
    try:
        app()
    except CorecastError as exc:
        console.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
