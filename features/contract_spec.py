"""The data contract's specification, and how its problems are told.

The columns of each table (:data:`SPECS`: name, kind, required, nullable, unique, allowed
values), the rules in the order problems are listed (:data:`RULES`), one broken rule as a line of
a refusal message (:class:`Problem`, :func:`raise_problems`), and where a row is as the user sees
it (:class:`Locator`: ``line N`` of a CSV file, else ``row N``). Reading a source is
:mod:`features.sources`; checking and normalising it is :mod:`features.contract`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.errors import ContractError
from features.tables import (
    ACTIVITY_COLUMNS,
    CHAPTER_COLUMNS,
    MEMBER_COLUMNS,
    OUTREACH_COLUMNS,
    OUTREACH_OUTCOMES,
    OUTREACH_PURPOSES,
    ROLE_COLUMNS,
)

__all__ = [
    "REQUIRED_TABLES",
    "OPTIONAL_TABLES",
    "TABLE_NAMES",
    "FILE_FORMATS",
    "TEXT_DTYPE",
    "MAX_EXAMPLES",
    "ISO_HINT",
    "ColumnSpec",
    "SPECS",
    "CANONICAL",
    "RULES",
    "Problem",
    "raise_problems",
    "show_value",
    "table_order",
    "column_order",
    "Locator",
    "csv_line_numbers",
    "examples_of",
]

REQUIRED_TABLES: tuple[str, ...] = ("members", "activities")
OPTIONAL_TABLES: tuple[str, ...] = ("roles", "chapters", "outreach")
TABLE_NAMES: tuple[str, ...] = REQUIRED_TABLES + OPTIONAL_TABLES
FILE_FORMATS: tuple[str, ...] = ("csv", "parquet")

TEXT_DTYPE = pd.StringDtype(na_value=np.nan)
"""The dtype of every text column of :class:`Tables` (pandas' default ``str`` dtype)."""

MAX_EXAMPLES = 3
_MAX_VALUE_CHARS = 40
ISO_HINT = "e.g. 2024-05-01 or 2024-05-01T18:30:00+02:00"


# --------------------------------------------------------------------------------------------
# The column specification of each table
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnSpec:
    """One column of the contract.

    ``kind`` is one of ``id`` (text, kept as written), ``vocab`` (text, lower-cased), ``text``,
    ``timestamp``, ``weight`` and ``consent``. ``required`` means the column must exist;
    ``nullable`` whether its values may be empty; ``unique`` whether values must be unique;
    ``choices`` (``vocab`` only) the values allowed, when the contract fixes them.
    """

    name: str
    kind: str
    required: bool = False
    nullable: bool = True
    unique: bool = False
    choices: tuple[str, ...] = ()


SPECS: dict[str, tuple[ColumnSpec, ...]] = {
    "members": (
        ColumnSpec("member_id", "id", required=True, nullable=False, unique=True),
        ColumnSpec("joined_at", "timestamp", required=True, nullable=False),
        ColumnSpec("chapter_id", "id"),
        ColumnSpec("email", "text"),
        ColumnSpec("consent", "consent"),
    ),
    "activities": (
        ColumnSpec("member_id", "id", required=True, nullable=False),
        ColumnSpec("occurred_at", "timestamp", required=True, nullable=False),
        ColumnSpec("activity_type", "vocab", required=True, nullable=False),
        ColumnSpec("event_id", "id"),
        ColumnSpec("chapter_id", "id"),
        ColumnSpec("role", "vocab"),
        ColumnSpec("counterpart_id", "id"),
        ColumnSpec("weight", "weight"),
    ),
    "roles": (
        ColumnSpec("member_id", "id", required=True, nullable=False),
        ColumnSpec("role", "vocab", required=True, nullable=False),
        ColumnSpec("started_at", "timestamp", required=True, nullable=False),
        ColumnSpec("ended_at", "timestamp", required=True),
        ColumnSpec("chapter_id", "id"),
    ),
    "chapters": (
        ColumnSpec("chapter_id", "id", required=True, nullable=False, unique=True),
        ColumnSpec("name", "text"),
        ColumnSpec("city", "text"),
        ColumnSpec("country", "text"),
    ),
    "outreach": (
        ColumnSpec("member_id", "id", required=True, nullable=False),
        ColumnSpec("contacted_at", "timestamp", required=True, nullable=False),
        ColumnSpec("purpose", "vocab", required=True, nullable=False, choices=OUTREACH_PURPOSES),
        ColumnSpec("outcome", "vocab", required=True, nullable=False, choices=OUTREACH_OUTCOMES),
        ColumnSpec("outcome_at", "timestamp"),
        ColumnSpec("channel", "text"),
        ColumnSpec("contacted_by", "text"),
    ),
}

CANONICAL = {
    "members": MEMBER_COLUMNS,
    "activities": ACTIVITY_COLUMNS,
    "roles": ROLE_COLUMNS,
    "chapters": CHAPTER_COLUMNS,
    "outreach": OUTREACH_COLUMNS,
}

# Rule names, in the order problems about one column are listed.
RULES = (
    "required",
    "control",
    "unique",
    "timestamp",
    "future",
    "number",
    "negative",
    "consent",
    "choice",
    "unknown_member",
    "unknown_chapter",
    "ends_before_start",
)


# --------------------------------------------------------------------------------------------
# Problems and their messages
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One broken rule: where, which column, how many rows, a few examples."""

    where: str
    what: str
    column: str | None = None
    rows: int | None = None
    examples: tuple[str, ...] = ()
    order: tuple[int, int, int] = (0, 0, 0)

    def render(self) -> str:
        head = self.where if self.column is None else f"{self.where}, column {self.column}"
        if self.rows is None:
            body = self.what
        else:
            body = f"{self.rows:,} row{'' if self.rows == 1 else 's'} {self.what}"
        if self.examples:
            body += "; e.g. " + ", ".join(self.examples)
        return f"{head}: {body}"


def raise_problems(source_label: str, problems: Sequence[Problem]) -> None:
    ordered = sorted(problems, key=lambda p: p.order)
    count = len(ordered)
    lines = [
        f"Data source {source_label} does not meet the data contract "
        f"({count} problem{'' if count == 1 else 's'}):"
    ]
    lines += [f"  - {p.render()}" for p in ordered]
    lines.append("Fix these in the source and load it again (see docs/data-contract.md).")
    raise ContractError("\n".join(lines))


def show_value(value: Any) -> str:
    """A short, quoted rendering of a raw value for an error message."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "(empty)"
    text = str(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return repr(text)


def table_order(table: str) -> int:
    return TABLE_NAMES.index(table) if table in TABLE_NAMES else len(TABLE_NAMES)


def column_order(table: str, column: str | None) -> int:
    if column is None:
        return -1
    names = [c.name for c in SPECS.get(table, ())]
    return names.index(column) if column in names else len(names)


# --------------------------------------------------------------------------------------------
# Row locations as the user sees them
# --------------------------------------------------------------------------------------------


@dataclass
class Locator:
    """Turns 0-based row positions of a raw table into ``line N`` (CSV) or ``row N`` labels."""

    csv_path: Path | None = None
    _lines: dict[int, int] = field(default_factory=dict)

    def labels(self, positions: Sequence[int]) -> list[str]:
        positions = [int(p) for p in positions]
        if self.csv_path is None:
            return [f"row {p + 1}" for p in positions]
        missing = [p for p in positions if p not in self._lines]
        if missing:
            self._lines.update(csv_line_numbers(self.csv_path, missing))
        return [f"line {self._lines.get(p, p + 2)}" for p in positions]


def csv_line_numbers(path: Path, positions: Sequence[int]) -> dict[int, int]:
    """Map 0-based data-row positions to the 1-based line where each record starts.

    Mirrors how the CSV reader counts records (blank lines skipped, quoted fields may span lines).
    Only called on the error path, and reads no further than the last position asked for.
    """
    wanted = set(positions)
    last = max(wanted)
    found: dict[int, int] = {}
    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
            reader = csv.reader(handle)
            previous_end = 0
            seen_header = False
            row = -1
            for record in reader:
                start = previous_end + 1
                previous_end = reader.line_num
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue
                if not seen_header:
                    seen_header = True
                    continue
                row += 1
                if row in wanted:
                    found[row] = start
                if row >= last:
                    break
    except (OSError, csv.Error):
        return found
    return found


def examples_of(
    locator: Locator,
    positions: np.ndarray,
    render: Callable[[int], str] | None,
) -> tuple[str, ...]:
    first = [int(p) for p in np.sort(positions)[:MAX_EXAMPLES]]
    labels = locator.labels(first)
    if render is None:
        return tuple(labels)
    return tuple(f"{label}: {render(p)}" for label, p in zip(labels, first, strict=True))


