"""CSV sink: a file for manual import into any CRM, written atomically.

The file holds the records of one push (the delta since the last confirmed CSV export, or all
of them with ``full=True``): ``email`` plus one column per field, named like the HubSpot
properties by default (configurable), then the empty outreach columns a community manager
fills (:data:`OUTREACH_CSV_COLUMNS`). It is written to a temporary file in the same folder,
flushed to disk and renamed over the target, so readers never see half a file. The default
target is ``<corecast home>/exports/crm-push-<UTC time>.csv``; the ledger then tracks what has
been exported to that folder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from features.errors import CrmError
from features.io import write_csv_atomic
from features.settings import corecast_home
from serving.crm.base import BatchOutcome
from serving.crm.records import (
    DEFAULT_HUBSPOT_PROPERTIES,
    DEFAULT_VOLATILE_FIELDS,
    MEMBER_KEY,
    RECORD_KEY,
    columns_of_fields,
    email_reject_reasons,
    render_field_strings,
    resolve_mapping,
    validate_volatile_fields,
)

__all__ = [
    "CsvConfig", "CsvSink", "neutralise_formulas", "OUTREACH_CSV_COLUMNS",
]

#: Empty columns at the end of every file for a community manager to fill after contacting a
#: member (``corecast pull --from csv`` reads them back): when, what came of it, why (empty:
#: from the segment) and how. Not part of the payload, so not of the change fingerprint.
OUTREACH_CSV_COLUMNS = ("outreach_at", "outreach_outcome", "outreach_purpose", "outreach_channel")

COLUMN_NAME = r"[A-Za-z][A-Za-z0-9_ .-]{0,99}"
# A cell a spreadsheet would run as a formula: it starts with = + - @, a tab or a carriage
# return and is not a plain number.
_FORMULA = r"^[=+\-@\t\r]"
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


def neutralise_formulas(values: pd.Series) -> pd.Series:
    """Text a spreadsheet opens as text: a leading ``'`` before any cell that would be read as
    a formula (``=HYPERLINK(...)``, ``@SUM(...)``, ``+cmd|...``); numbers such as ``-3`` stay
    as they are."""
    text = values.astype("str")
    risky = text.str.contains(_FORMULA, regex=True) & ~text.str.match(_NUMBER)
    return text.where(~risky, "'" + text)


@dataclass(frozen=True)
class CsvConfig:
    """Settings of the CSV sink.

    Attributes:
        path: Target file; when ``None`` a time-stamped file in ``folder``.
        folder: Folder for time-stamped files (default ``<corecast home>/exports``).
        columns: Overrides of the field → column mapping (``None`` drops a field).
        name: Ledger key override (default ``csv:<path or folder>``).
    """

    path: Path | None = None
    folder: Path | None = None
    columns: Mapping[str, str | None] = field(default_factory=dict)
    name: str | None = None


class CsvSink:
    """Write the records of a push to one CSV file (see the module docstring).

    Args:
        config: Sink settings.
        now: Wall-clock source for time-stamped file names (tests).
        volatile_fields: Fields that change on every scoring run and do not count as a change
            (see :data:`~serving.crm.records.DEFAULT_VOLATILE_FIELDS`); still written.

    Raises:
        ConfigError: Invalid column mapping or unknown volatile field.
    """

    kind = "csv"
    batch_size = None
    workers = 1
    setup_fingerprint = None

    def __init__(
        self,
        config: CsvConfig,
        *,
        now: Callable[[], datetime] | None = None,
        volatile_fields: Sequence[str] = DEFAULT_VOLATILE_FIELDS,
    ) -> None:
        self.config = config
        self.mapping = resolve_mapping(
            DEFAULT_HUBSPOT_PROPERTIES, config.columns, COLUMN_NAME, "CSV column"
        )
        self.volatile_fields = validate_volatile_fields(volatile_fields)
        self.volatile_columns = columns_of_fields(self.mapping, self.volatile_fields)
        self._now = now or (lambda: datetime.now(UTC))
        self.folder = Path(config.folder) if config.folder else None
        if config.path is not None:
            target = str(Path(config.path).resolve())
        else:
            target = str((self.folder or corecast_home() / "exports").resolve())
        self.key = config.name or f"csv:{target}"
        self.files_written: list[Path] = []

    def __repr__(self) -> str:
        return f"CsvSink(key={self.key!r})"

    @property
    def requests_made(self) -> int:
        """Files written so far."""
        return len(self.files_written)

    def cancel(self) -> None:
        """Nothing runs in the background."""

    def target(self) -> Path:
        """The file the next batch is written to."""
        if self.config.path is not None:
            return Path(self.config.path)
        folder = self.folder or corecast_home() / "exports"
        return folder / f"crm-push-{self._now().strftime('%Y%m%dT%H%M%S%fZ')}.csv"

    def render(self, predictions: pd.DataFrame) -> pd.DataFrame:
        """Email plus one text column per field (missing = empty), formulas neutralised."""
        fields = render_field_strings(predictions)
        out = pd.DataFrame({
            MEMBER_KEY: predictions["member_id"].astype("str"),
            RECORD_KEY: predictions["member_id"].astype("str"),
            "email": neutralise_formulas(predictions["email"].fillna("")),
        })
        for name, column in self.mapping.items():
            out[column] = neutralise_formulas(fields[name].fillna(""))
        return out

    def reject_reasons(self, rendered: pd.DataFrame) -> pd.Series:
        """The rows the HubSpot sink refuses too: no email, an invalid one, or one shared by
        several members (a CRM import would merge them into one contact)."""
        return email_reject_reasons(rendered["email"])

    def prepare(self) -> None:
        """Nothing to set up."""

    def send_batch(self, batch: pd.DataFrame) -> BatchOutcome:
        """Write the whole batch to the target file atomically."""
        path = self.target()
        try:
            frame = batch.drop(columns=[MEMBER_KEY, RECORD_KEY])
            write_csv_atomic(
                frame.assign(**dict.fromkeys(OUTREACH_CSV_COLUMNS, "")), path, lineterminator="\n"
            )
        except OSError as exc:
            raise CrmError(f"CSV: cannot write {path}: {exc.strerror or exc}") from None
        self.files_written.append(path)
        return BatchOutcome.all_sent(batch[MEMBER_KEY].to_numpy(dtype=object))
