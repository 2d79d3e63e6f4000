"""Setting invalid rows aside: the options, the report and the files of a quarantine load.

``features.contract.load_tables(source, on_invalid="quarantine")`` loads what is valid and sets
aside the rows that break a row-level rule of the data contract (see ``docs/data-contract.md``,
"Messy exports"). This module holds what is not about checking itself:

- the option values (:data:`ON_INVALID_CHOICES`, :data:`DEFAULT_MAX_INVALID_SHARE`) and their
  checks (:func:`check_on_invalid`, :func:`check_max_invalid_share`);
- :class:`QuarantineReport`, attached to the loaded ``Tables`` as ``tables.quarantine``;
- :func:`write_quarantine_files`, which writes ``<folder>/<table>.quarantine.csv`` atomically.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.errors import ConfigError
from features.io import write_files_atomic

__all__ = [
    "ON_INVALID_CHOICES",
    "DEFAULT_MAX_INVALID_SHARE",
    "QUARANTINE_SUFFIX",
    "QuarantineReport",
    "check_on_invalid",
    "check_max_invalid_share",
    "default_quarantine_dir",
    "quarantine_path",
    "write_quarantine_files",
    "format_share",
    "share_needed",
]

ON_INVALID_CHOICES: tuple[str, ...] = ("strict", "quarantine")
"""``strict``: refuse a source with any invalid row; ``quarantine``: set invalid rows aside."""

DEFAULT_MAX_INVALID_SHARE = 0.01
"""Largest share of any one table's rows that a quarantine load may set aside (1 %)."""

QUARANTINE_SUFFIX = ".quarantine.csv"


def check_on_invalid(value: str, name: str = "on_invalid") -> str:
    """Return ``value`` if it is one of :data:`ON_INVALID_CHOICES`.

    Raises:
        ConfigError: Naming ``name`` and the allowed values.
    """
    if value not in ON_INVALID_CHOICES:
        raise ConfigError(
            f"{name}: expected one of {', '.join(ON_INVALID_CHOICES)}, got {value!r}"
        )
    return value


def check_max_invalid_share(value: float, name: str = "max_invalid_share") -> float:
    """Return ``value`` as a float if it is a share between 0 and 1.

    Raises:
        ConfigError: Naming ``name``, when the value is not a number in ``[0, 1]``.
    """
    try:
        share = float(value)
    except (TypeError, ValueError):
        share = math.nan
    if isinstance(value, bool) or not 0.0 <= share <= 1.0:
        raise ConfigError(
            f"{name}: expected a share of rows between 0 and 1 (0.01 = 1 %), got {value!r}"
        )
    return share


def default_quarantine_dir() -> Path:
    """Where the command line and the flows put quarantine files: ``<corecast home>/quarantine``."""
    from features.settings import corecast_home

    return corecast_home() / "quarantine"


def quarantine_path(folder: str | os.PathLike, table: str) -> Path:
    """The quarantine file of ``table`` in ``folder``: ``<folder>/<table>.quarantine.csv``."""
    return Path(folder) / f"{table}{QUARANTINE_SUFFIX}"


def format_share(share: float) -> str:
    """A share as a percentage for messages (``0.0067%`` is shown as ``<0.01%``)."""
    if 0 < share < 0.0001:
        return "<0.01%"
    return f"{share:.2%}"


def share_needed(share: float) -> str:
    """The smallest round ``max_invalid_share`` (4 decimals, rounded up) that admits ``share``."""
    return f"{math.ceil(share * 10_000 - 1e-9) / 10_000:g}"


@dataclass(frozen=True)
class QuarantineReport:
    """What a quarantine load set aside, per table (attached to ``Tables.quarantine``).

    Attributes:
        rows_in: Rows read, per loaded table.
        rows_quarantined: Rows set aside, per loaded table (0 for a clean table).
        by_rule: Per table, rows set aside by rule id (``timestamp``, ``unknown_counterpart``,
            ``orphan``, ...). Each row counts once, under the first rule it breaks, so the counts
            of a table add up to its ``rows_quarantined``.
        paths: The ``<table>.quarantine.csv`` file written, per table with rows set aside
            (empty when no quarantine folder was given).
        max_invalid_share: The limit the load applied.
    """

    rows_in: dict[str, int]
    rows_quarantined: dict[str, int]
    by_rule: dict[str, dict[str, int]]
    paths: dict[str, Path]
    max_invalid_share: float = DEFAULT_MAX_INVALID_SHARE

    @property
    def share(self) -> dict[str, float]:
        """Share of each table's rows that was set aside (0 for an empty table)."""
        return {
            table: (self.rows_quarantined.get(table, 0) / n if n else 0.0)
            for table, n in self.rows_in.items()
        }

    @property
    def total_quarantined(self) -> int:
        """Rows set aside over all tables."""
        return sum(self.rows_quarantined.values())

    def lines(self) -> list[str]:
        """One line per table with rows set aside: count, share, top rules, file."""
        out = []
        for table, count in self.rows_quarantined.items():
            if not count:
                continue
            rules = sorted(self.by_rule.get(table, {}).items(), key=lambda kv: (-kv[1], kv[0]))
            top = ", ".join(f"{rule} {n:,}" for rule, n in rules[:3])
            more = f" and {len(rules) - 3} more rule(s)" if len(rules) > 3 else ""
            path = self.paths.get(table)
            where = f" -> {path}" if path else " (no quarantine file written)"
            out.append(
                f"{table}: {count:,} of {self.rows_in[table]:,} rows quarantined "
                f"({format_share(self.share[table])}): {top}{more}{where}"
            )
        return out

    def as_dict(self) -> dict:
        """Plain JSON-ready values, with the :meth:`lines` too (for flow summaries)."""
        return {
            "rows_in": dict(self.rows_in),
            "rows_quarantined": dict(self.rows_quarantined),
            "by_rule": {t: dict(r) for t, r in self.by_rule.items()},
            "share": self.share,
            "paths": {t: str(p) for t, p in self.paths.items()},
            "max_invalid_share": self.max_invalid_share,
            "lines": self.lines(),
        }


#: Control characters (a NUL, say) other than tab, line feed and carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _visible_controls(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows with each control character written as ``\\xNN``: a quarantine file holds the
    rows a tool choked on, and must open in any editor or spreadsheet."""
    text = frame.select_dtypes(include=["object", "string"]).columns
    shown = frame.copy()
    for column in text:
        shown[column] = frame[column].map(
            lambda v: _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", v)
            if isinstance(v, str) else v
        )
    return shown


def write_quarantine_files(
    folder: str | os.PathLike, frames: Mapping[str, pd.DataFrame], tables: tuple[str, ...]
) -> dict[str, Path]:
    """Write the quarantined rows of each table to ``<folder>/<table>.quarantine.csv``.

    All files are written atomically and together (all or none). Only tables with rows get a
    file; the stale file of a table in ``tables`` that has no quarantined rows this time is
    removed, so the folder always describes the latest quarantine load.

    Args:
        folder: The quarantine folder (created when needed).
        frames: Quarantined rows (original values plus ``rule`` and ``detail``) by table.
        tables: Every table of the load (for the stale-file clean-up).

    Returns:
        The written files by table.
    """
    writers = {
        quarantine_path(folder, table): (
            lambda tmp, f=frame: _visible_controls(f).to_csv(tmp, index=False, encoding="utf-8")
        )
        for table, frame in frames.items()
        if len(frame)
    }
    written = write_files_atomic(writers) if writers else []
    for table in tables:
        stale = quarantine_path(folder, table)
        if stale not in written and stale.is_file():
            stale.unlink()
    return {path.name.removesuffix(QUARANTINE_SUFFIX): path for path in written}
