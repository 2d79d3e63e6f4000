"""The data contract: read a data source, check it, and normalise it into :class:`Tables`.

A data source is either a folder holding one file per table (``members.csv`` or
``members.parquet``, and so on; other files are ignored) or a SQLAlchemy URL whose database holds
tables of the same names. ``members`` and ``activities`` are required, ``roles`` and ``chapters``
are optional. The full contract, with every rule and an example of each error message, is in
``docs/data-contract.md``.

Checking is all-or-nothing by default: every problem found (missing files or columns,
unparseable dates, unknown ids, ...) is collected and raised together in one
:class:`ContractError` whose message names the file, the column, how many rows are affected and a
few examples (CSV rows by their line number in the file, other sources by row number). A strict
load never writes anything. ``load_tables(..., on_invalid="quarantine")`` instead sets aside the
rows that break a row-level rule (and the rows referring to them), up to a share of each table,
and writes them to quarantine files (:mod:`features.quarantine`).

Per-table column checks run as pandera schemas (lazy, so all failures are collected); the
cross-table checks (unknown members, counterparts and chapters) are vectorised set look-ups.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.consent import CONSENT_FALSE, CONSENT_TRUE, parse_consent
from features.errors import ConfigError, ContractError
from features.io import write_files_atomic
from features.quarantine import (
    DEFAULT_MAX_INVALID_SHARE,
    QuarantineReport,
    check_max_invalid_share,
    check_on_invalid,
    format_share,
    share_needed,
    write_quarantine_files,
)
from features.tables import (
    ACTIVITY_COLUMNS,
    CHAPTER_COLUMNS,
    MEMBER_COLUMNS,
    OUTREACH_COLUMNS,
    OUTREACH_OUTCOMES,
    OUTREACH_PURPOSES,
    ROLE_COLUMNS,
    Tables,
    parse_as_of,
)

__all__ = [
    "load_tables",
    "read_raw_tables",
    "validate_tables",
    "validate_outreach",
    "write_tables",
    "describe_source",
    "password_to_environment",
    "DATA_PASSWORD_VARIABLE",
    "REQUIRED_TABLES",
    "OPTIONAL_TABLES",
    "TABLE_NAMES",
    "FILE_FORMATS",
    "TEXT_DTYPE",
    "CONSENT_TRUE",
    "CONSENT_FALSE",
]

REQUIRED_TABLES: tuple[str, ...] = ("members", "activities")
OPTIONAL_TABLES: tuple[str, ...] = ("roles", "chapters", "outreach")
TABLE_NAMES: tuple[str, ...] = REQUIRED_TABLES + OPTIONAL_TABLES
FILE_FORMATS: tuple[str, ...] = ("csv", "parquet")

TEXT_DTYPE = pd.StringDtype(na_value=np.nan)
"""The dtype of every text column of :class:`Tables` (pandas' default ``str`` dtype)."""


MAX_EXAMPLES = 3
_MAX_VALUE_CHARS = 40
_TS_MIN = pd.Timestamp.min.as_unit("ns")
_TS_MAX = pd.Timestamp.max.as_unit("ns")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_SECRET_KEYS = re.compile(r"pass|pwd|secret|token|key", re.IGNORECASE)
#: A data URL's password written ``${NAME}`` is read from the environment variable ``NAME``
#: when the data is loaded: the URL itself (a flow parameter, a log line) then holds no secret.
_PASSWORD_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
#: The variable ``corecast run`` and ``serve`` move a data URL's literal password into.
DATA_PASSWORD_VARIABLE = "CORECAST_DATA_PASSWORD"
_ISO_HINT = "e.g. 2024-05-01 or 2024-05-01T18:30:00+02:00"


# --------------------------------------------------------------------------------------------
# The column specification of each table
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Col:
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


_SPECS: dict[str, tuple[_Col, ...]] = {
    "members": (
        _Col("member_id", "id", required=True, nullable=False, unique=True),
        _Col("joined_at", "timestamp", required=True, nullable=False),
        _Col("chapter_id", "id"),
        _Col("email", "text"),
        _Col("consent", "consent"),
    ),
    "activities": (
        _Col("member_id", "id", required=True, nullable=False),
        _Col("occurred_at", "timestamp", required=True, nullable=False),
        _Col("activity_type", "vocab", required=True, nullable=False),
        _Col("event_id", "id"),
        _Col("chapter_id", "id"),
        _Col("role", "vocab"),
        _Col("counterpart_id", "id"),
        _Col("weight", "weight"),
    ),
    "roles": (
        _Col("member_id", "id", required=True, nullable=False),
        _Col("role", "vocab", required=True, nullable=False),
        _Col("started_at", "timestamp", required=True, nullable=False),
        _Col("ended_at", "timestamp", required=True),
        _Col("chapter_id", "id"),
    ),
    "chapters": (
        _Col("chapter_id", "id", required=True, nullable=False, unique=True),
        _Col("name", "text"),
        _Col("city", "text"),
        _Col("country", "text"),
    ),
    "outreach": (
        _Col("member_id", "id", required=True, nullable=False),
        _Col("contacted_at", "timestamp", required=True, nullable=False),
        _Col("purpose", "vocab", required=True, nullable=False, choices=OUTREACH_PURPOSES),
        _Col("outcome", "vocab", required=True, nullable=False, choices=OUTREACH_OUTCOMES),
        _Col("outcome_at", "timestamp"),
        _Col("channel", "text"),
        _Col("contacted_by", "text"),
    ),
}

_CANONICAL = {
    "members": MEMBER_COLUMNS,
    "activities": ACTIVITY_COLUMNS,
    "roles": ROLE_COLUMNS,
    "chapters": CHAPTER_COLUMNS,
    "outreach": OUTREACH_COLUMNS,
}

# Rule names, in the order problems about one column are listed.
_RULES = (
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
class _Problem:
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


def _raise_problems(source_label: str, problems: Sequence[_Problem]) -> None:
    ordered = sorted(problems, key=lambda p: p.order)
    count = len(ordered)
    lines = [
        f"Data source {source_label} does not meet the data contract "
        f"({count} problem{'' if count == 1 else 's'}):"
    ]
    lines += [f"  - {p.render()}" for p in ordered]
    lines.append("Fix these in the source and load it again (see docs/data-contract.md).")
    raise ContractError("\n".join(lines))


def _show_value(value: Any) -> str:
    """A short, quoted rendering of a raw value for an error message."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "(empty)"
    text = str(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return repr(text)


def _table_order(table: str) -> int:
    return TABLE_NAMES.index(table) if table in TABLE_NAMES else len(TABLE_NAMES)


def _column_order(table: str, column: str | None) -> int:
    if column is None:
        return -1
    names = [c.name for c in _SPECS.get(table, ())]
    return names.index(column) if column in names else len(names)


# --------------------------------------------------------------------------------------------
# Row locations as the user sees them
# --------------------------------------------------------------------------------------------


@dataclass
class _Locator:
    """Turns 0-based row positions of a raw table into ``line N`` (CSV) or ``row N`` labels."""

    csv_path: Path | None = None
    _lines: dict[int, int] = field(default_factory=dict)

    def labels(self, positions: Sequence[int]) -> list[str]:
        positions = [int(p) for p in positions]
        if self.csv_path is None:
            return [f"row {p + 1}" for p in positions]
        missing = [p for p in positions if p not in self._lines]
        if missing:
            self._lines.update(_csv_line_numbers(self.csv_path, missing))
        return [f"line {self._lines.get(p, p + 2)}" for p in positions]


def _csv_line_numbers(path: Path, positions: Sequence[int]) -> dict[int, int]:
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


def _examples(
    locator: _Locator,
    positions: np.ndarray,
    render: Callable[[int], str] | None,
) -> tuple[str, ...]:
    first = [int(p) for p in np.sort(positions)[:MAX_EXAMPLES]]
    labels = locator.labels(first)
    if render is None:
        return tuple(labels)
    return tuple(f"{label}: {render(p)}" for label, p in zip(labels, first, strict=True))


# --------------------------------------------------------------------------------------------
# Source labels (never a password)
# --------------------------------------------------------------------------------------------


def _is_url(source: str | os.PathLike) -> bool:
    return isinstance(source, str) and bool(_URL_RE.match(source.strip()))


def describe_source(source: str | os.PathLike) -> str:
    """Return a label for a data source that is safe to log or show.

    Folders are shown as their path; URLs without the password (``***``) and without the values
    of query parameters that look like secrets (password, token, key, ...).

    Args:
        source: A folder path or a SQLAlchemy URL.

    Returns:
        The label.
    """
    if not _is_url(source):
        return str(Path(source))
    text = str(source).strip()
    from sqlalchemy.engine import make_url

    try:
        url = make_url(text)
    except Exception:  # noqa: BLE001 - an unparseable URL still gets a masked label
        masked = re.sub(r"(//[^/:@]*:)[^@/]*@", r"\1***@", text)
        return re.sub(
            r"([?&][^=&]*(?:pass|pwd|secret|token|key)[^=&]*=)[^&]*",
            r"\1***",
            masked,
            flags=re.IGNORECASE,
        )
    if url.query:
        query = {k: ("***" if _SECRET_KEYS.search(k) else v) for k, v in url.query.items()}
        url = url.set(query=query)
    return url.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def _referenced_variable(value: object) -> str | None:
    """The environment variable a URL part names (``${NAME}``), if any."""
    match = _PASSWORD_REFERENCE.match(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def _secret_parts(url) -> dict[str, str]:
    """The literal secrets of a parsed URL: ``{"": password, "<query key>": value, ...}``."""
    parts = {}
    if url.password is not None and not _referenced_variable(url.password):
        parts[""] = str(url.password)
    for key, value in url.query.items():
        if _SECRET_KEYS.search(key) and isinstance(value, str) and not _referenced_variable(value):
            parts[key] = value
    return parts


def password_to_environment(
    source: str, variable: str = DATA_PASSWORD_VARIABLE
) -> tuple[str, dict[str, str]]:
    """Take a data URL's literal secrets out of it, for a parameter that gets stored.

    The password goes to ``variable``; a query value whose key looks like a secret (``password``,
    ``sslpassword``, ``token``, ...) to ``<variable>_<KEY>``.

    Args:
        source: A folder or a SQLAlchemy URL.
        variable: The environment variable the password goes to.

    Returns:
        ``(source, {})`` when there is no literal secret (a folder, none in the URL, or only
        ``${NAME}`` references); else the URL with each secret written ``${NAME}`` and
        ``{NAME: secret}`` for the caller to put in the environment.
    """
    if not _is_url(source):
        return source, {}
    from sqlalchemy.engine import make_url

    try:
        url = make_url(source.strip())
    except Exception:  # noqa: BLE001 - loading reports an unparseable URL with its reason
        return source, {}
    parts = _secret_parts(url)
    if not parts:
        return source, {}
    names = {
        key: variable if key == "" else f"{variable}_{re.sub(r'[^A-Za-z0-9]', '_', key).upper()}"
        for key in parts
    }
    # Placeholders render as they are, unlike "$", "{" and "}".
    holders = {key: f"CORECASTSECRETREFERENCE{i}X" for i, key in enumerate(parts)}
    if "" in parts:
        url = url.set(password=holders[""])
    query = {k: holders.get(k, v) for k, v in url.query.items()}
    reference = url.set(query=query).render_as_string(hide_password=False)
    for key, holder in holders.items():
        reference = reference.replace(holder, f"${{{names[key]}}}")
    return reference, {names[key]: value for key, value in parts.items()}


def _resolve_password(url):
    """The URL with each ``${NAME}`` (password or query value) replaced by that variable.

    Raises:
        KeyError: A variable is not set (its name is the key).
    """

    def value_of(part):
        name = _referenced_variable(part)
        if name is None:
            return part
        if name not in os.environ:
            raise KeyError(name)
        return os.environ[name]

    query = {key: value_of(value) for key, value in url.query.items()}
    return url.set(password=value_of(url.password), query=query)


def _scrub(text: str, source: str) -> str:
    """Remove a URL's password and secret query values from an error text."""
    if not _is_url(source):
        return text
    from sqlalchemy.engine import make_url

    secrets: list[str] = []
    try:
        url = make_url(source.strip())
        if url.password:
            secrets.append(str(url.password))
        for key, value in url.query.items():
            if _SECRET_KEYS.search(key):
                secrets.extend([value] if isinstance(value, str) else list(value))
    except Exception:  # noqa: BLE001 - fall back to masking the whole URL string
        pass
    text = text.replace(source.strip(), describe_source(source))
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


@dataclass
class _RawSource:
    """What reading produced: frames, labels, and problems found while reading."""

    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    problems: list[_Problem] = field(default_factory=list)
    unreadable: set[str] = field(default_factory=set)
    fatal: bool = False
    kind: str = "folder"
    found_names: list[str] = field(default_factory=list)
    where_hint: str = ""


def _locate_utf8_error(path: Path) -> tuple[int, int, bytes] | None:
    """Find the first byte that is not valid UTF-8: (line, byte offset, offending bytes)."""
    offset = 0
    line = 1
    carry = b""
    with open(path, "rb") as handle:
        while True:
            block = handle.read(1 << 20)
            data = carry + block
            if not data:
                return None
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                truncated_tail = block and exc.reason == "unexpected end of data"
                if truncated_tail and exc.start >= len(data) - 3:
                    carry = data[exc.start :]
                    line += data[: exc.start].count(b"\n")
                    offset += exc.start
                    continue
                return (
                    line + data[: exc.start].count(b"\n"),
                    offset + exc.start,
                    data[exc.start : exc.end],
                )
            if not block:
                return None
            line += data.count(b"\n")
            offset += len(data)
            carry = b""


def _read_csv(path: Path, table: str, raw: _RawSource) -> None:
    try:
        frame = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8",
            encoding_errors="strict",
        )
    except UnicodeError:
        raw.unreadable.add(table)
        where = _locate_utf8_error(path)
        if where is None:
            what = "is not UTF-8 text; re-save the file as UTF-8"
        else:
            line, offset, bad = where
            what = (
                f"is not UTF-8 text: byte 0x{bad[:1].hex()} at line {line} (byte offset "
                f"{offset}) cannot be decoded; re-save the file as UTF-8"
            )
        raw.problems.append(_Problem(path.name, what, order=(_table_order(table), -1, 0)))
        return
    except pd.errors.EmptyDataError:
        raw.unreadable.add(table)
        raw.problems.append(
            _Problem(
                path.name,
                "is empty: expected a header row with the column names",
                order=(_table_order(table), -1, 0),
            )
        )
        return
    except (pd.errors.ParserError, OSError, ValueError) as exc:
        raw.unreadable.add(table)
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raw.problems.append(
            _Problem(
                path.name, f"cannot be read as CSV ({detail})", order=(_table_order(table), -1, 0)
            )
        )
        return
    raw.frames[table] = frame
    raw.files[table] = str(path)


def _read_parquet(path: Path, table: str, raw: _RawSource) -> None:
    try:
        frame = pq.read_table(path).to_pandas()
    except (pa_arrow.ArrowException, OSError, ValueError) as exc:
        raw.unreadable.add(table)
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raw.problems.append(
            _Problem(
                path.name,
                f"cannot be read as Parquet ({detail}); re-export the file",
                order=(_table_order(table), -1, 0),
            )
        )
        return
    raw.frames[table] = frame.reset_index(drop=True)
    raw.files[table] = str(path)


def _read_folder(folder: Path) -> _RawSource:
    raw = _RawSource(where_hint=str(folder))
    if not folder.exists():
        raw.fatal = True
        raw.problems.append(
            _Problem(
                str(folder),
                "does not exist; give a folder of CSV/Parquet files or a SQLAlchemy URL",
            )
        )
        return raw
    if not folder.is_dir():
        raw.fatal = True
        raw.problems.append(
            _Problem(
                str(folder),
                "is a file, not a folder; give the folder that holds members and activities "
                "(CSV or Parquet) or a SQLAlchemy URL",
            )
        )
        return raw
    entries = sorted(p for p in folder.iterdir() if p.is_file())
    raw.found_names = [p.name for p in entries if not p.name.startswith(".")]
    by_table: dict[str, list[Path]] = {}
    for path in entries:
        stem, dot, ext = path.name.rpartition(".")
        if dot and stem.lower() in TABLE_NAMES and ext.lower() in FILE_FORMATS:
            by_table.setdefault(stem.lower(), []).append(path)
    for table in TABLE_NAMES:
        paths = by_table.get(table, [])
        if len(paths) > 1:
            raw.unreadable.add(table)
            names = " and ".join(p.name for p in paths)
            raw.problems.append(
                _Problem(
                    table,
                    f"is ambiguous: both {names} exist in {folder}; keep only one of them",
                    order=(_table_order(table), -1, 0),
                )
            )
        elif paths:
            path = paths[0]
            if path.suffix.lower() == ".csv":
                _read_csv(path, table, raw)
            else:
                _read_parquet(path, table, raw)
    return raw


def _sql_error_text(exc: BaseException, source: str) -> str:
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip() or type(inner).__name__
    text = text.split("(Background on this error")[0].strip()
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return _scrub(text, source)


#: The extra of corecast that installs a database driver, by the driver's module.
DRIVER_EXTRAS = {"psycopg2": "postgres"}
#: The driver an extra installs, per database: the URL to write for it.
EXTRA_DRIVERS = {"postgresql": "psycopg2"}


def _missing_driver_text(url, exc: ModuleNotFoundError) -> str:
    """Which driver is missing, and how to install it (or which URL uses the extra's)."""
    backend = url.get_backend_name()
    module = (exc.name or "").split(".")[0]
    extra = DRIVER_EXTRAS.get(module)
    if extra:
        how = f"install it with pip install 'corecast[{extra}]'"
    else:
        how = f"install the Python package {module!r}"
        bundled = EXTRA_DRIVERS.get(backend)
        if bundled:
            how += (
                f", or write the URL {backend}+{bundled}://... and pip install "
                f"'corecast[{DRIVER_EXTRAS[bundled]}]'"
            )
    return f"the {backend} driver {module!r} is not installed; {how}"


def _read_sql(source: str) -> _RawSource:
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.engine import make_url

    label = describe_source(source)
    raw = _RawSource(where_hint=label, kind="sql")

    def fatal(what: str) -> _RawSource:
        raw.fatal = True
        raw.problems.append(_Problem(label, what))
        return raw

    try:
        url = make_url(source.strip())
    except Exception as exc:  # noqa: BLE001 - any parse failure is the user's URL
        return fatal(f"is not a valid SQLAlchemy URL ({_sql_error_text(exc, source)})")
    try:
        url = _resolve_password(url)
    except KeyError as exc:
        return fatal(
            f"cannot be opened: its password names the environment variable {exc.args[0]}, "
            "which is not set"
        )
    source = url.render_as_string(hide_password=False)  # what error texts must be scrubbed of
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database not in ("", ":memory:") and not database.startswith("file:"):
            if not Path(database).is_file():
                return fatal(f"cannot be opened: the SQLite file {database} does not exist")
    try:
        engine = create_engine(url)
    except ModuleNotFoundError as exc:
        return fatal(f"cannot be opened: {_missing_driver_text(url, exc)}")
    except Exception as exc:  # noqa: BLE001 - unknown dialect, missing driver, bad options
        return fatal(f"cannot be opened ({_sql_error_text(exc, source)})")
    current = None
    try:
        with engine.connect() as connection:
            names = inspect(connection).get_table_names()
            raw.found_names = sorted(names)
            lookup = {name.lower(): name for name in names}
            for table in TABLE_NAMES:
                if table in lookup:
                    current = lookup[table]
                    frame = pd.read_sql_table(current, connection)
                    raw.frames[table] = frame.reset_index(drop=True)
                    raw.files[table] = f"{label} table {current}"
    except Exception as exc:  # noqa: BLE001 - connection, permission or driver failures
        where = f" while reading table {current}" if current else ""
        return fatal(f"cannot be opened or read{where} ({_sql_error_text(exc, source)})")
    finally:
        engine.dispose()
    return raw


def _read_source(source: str | os.PathLike) -> _RawSource:
    if _is_url(source):
        return _read_sql(str(source))
    return _read_folder(Path(source))


def read_raw_tables(source: str | os.PathLike) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Read the tables of a data source as they are, without checking their content.

    CSV files are read with every column as text (so ``007`` stays ``007``), empty cells as
    missing. Files that are not tables of the contract are ignored.

    Args:
        source: A folder of ``<table>.csv`` / ``<table>.parquet`` files, or a SQLAlchemy URL.

    Returns:
        ``(frames, files)``: the raw frames by table name (only the tables found) and, for each,
        the file path or ``<url> table <name>`` label it came from.

    Raises:
        ContractError: The source cannot be opened, or a file cannot be read (not UTF-8, corrupt
            Parquet, the same table both as CSV and Parquet); all such problems together.
    """
    raw = _read_source(source)
    if raw.problems:
        _raise_problems(describe_source(source), raw.problems)
    return raw.frames, raw.files


# --------------------------------------------------------------------------------------------
# Normalising columns
# --------------------------------------------------------------------------------------------


@dataclass
class _Parsed:
    """A normalised column plus the masks of raw values that were missing or malformed."""

    values: pd.Series
    missing: np.ndarray
    bad: np.ndarray


def _floats_as_text(values: pd.Series) -> pd.Series:
    """Render floats as text, whole numbers without a trailing ``.0`` (``1.0`` -> ``1``)."""
    numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    text = values.astype("str")
    whole = np.isfinite(numbers) & (np.abs(numbers) < 2**53)
    whole[whole] = numbers[whole] == np.round(numbers[whole])
    if whole.any():
        text = text.copy()
        text[whole] = numbers[whole].astype(np.int64).astype(str)
    return text


def _as_text(values: pd.Series) -> pd.Series:
    """Convert a raw column to the ``str`` dtype without any numeric artefacts."""
    dtype = values.dtype
    if pd.api.types.is_float_dtype(dtype):
        return _floats_as_text(values)
    if pd.api.types.is_object_dtype(dtype):
        kind = pd.api.types.infer_dtype(values, skipna=True)
        if kind not in ("string", "empty", "integer", "boolean"):
            # Python floats among other values (e.g. from a SQL driver): 7.0 -> "7".
            is_float = values.map(lambda v: isinstance(v, float)).to_numpy(dtype=bool)
            if is_float.any():
                text = values.astype("str").copy()
                floats = pd.Series(values[is_float].to_numpy(dtype="float64"))
                text[is_float] = _floats_as_text(floats).to_numpy()
                return text
    return values.astype("str")


_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"


def _parse_text(values: pd.Series, lower: bool) -> _Parsed:
    text = _as_text(values).str.strip()
    if lower:
        text = text.str.lower()
    empty = text.eq("").to_numpy(dtype=bool, na_value=False)
    if empty.any():
        text = text.mask(empty)
    missing = text.isna().to_numpy()
    # A NUL or another control character is never part of an id, an email or a name; it is
    # what a broken export leaves behind, and a CRM or a spreadsheet would choke on it.
    control = text.str.contains(_CONTROL, regex=True).to_numpy(dtype=bool, na_value=False)
    return _Parsed(text.astype(TEXT_DTYPE), missing, control)


def _parse_timestamp(values: pd.Series) -> _Parsed:
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        parsed = values.dt.tz_convert("UTC").dt.tz_localize(None)
        missing = parsed.isna().to_numpy()
    elif pd.api.types.is_datetime64_dtype(dtype):
        parsed = values
        missing = parsed.isna().to_numpy()
    elif pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        missing = values.isna().to_numpy()
        parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    else:
        if pd.api.types.is_object_dtype(dtype) and (
            pd.api.types.infer_dtype(values, skipna=True) != "string"
        ):
            # Datetime objects (e.g. from a SQL driver), possibly mixed with text.
            cleaned = values.mask(values.eq("").to_numpy(dtype=bool, na_value=False))
        else:
            cleaned = values.astype("str").str.strip()
            empty = cleaned.eq("").to_numpy(dtype=bool, na_value=False)
            if empty.any():
                cleaned = cleaned.mask(empty)
        missing = cleaned.isna().to_numpy()
        parsed = pd.to_datetime(cleaned, utc=True, format="ISO8601", errors="coerce")
        parsed = parsed.dt.tz_localize(None)
    if (
        parsed.dtype != np.dtype("datetime64[ns]")
        and len(parsed)
        and (parsed.min() < _TS_MIN or parsed.max() > _TS_MAX)
    ):
        out_of_range = (parsed.notna() & ((parsed < _TS_MIN) | (parsed > _TS_MAX))).to_numpy()
        parsed = parsed.mask(out_of_range)
    parsed = parsed.astype("datetime64[ns]")
    bad = ~missing & parsed.isna().to_numpy()
    return _Parsed(parsed, missing, bad)


def _parse_weight(values: pd.Series) -> _Parsed:
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        missing = values.isna().to_numpy()
        return _Parsed(pd.Series(np.nan, index=values.index), missing, ~missing)
    if pd.api.types.is_numeric_dtype(dtype):
        numbers = values.astype("float64")
        missing = numbers.isna().to_numpy()
    else:
        text = values.astype("str").str.strip()
        text = text.mask(text.eq("").to_numpy(dtype=bool, na_value=False))
        missing = text.isna().to_numpy()
        numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    finite = np.isfinite(numbers.to_numpy())
    bad = ~missing & ~finite
    numbers = numbers.where(finite)
    return _Parsed(numbers, missing, bad)


def _parse_consent(values: pd.Series) -> _Parsed:
    return _Parsed(*parse_consent(values))


_PARSERS: dict[str, Callable[[pd.Series], _Parsed]] = {
    "id": lambda s: _parse_text(s, lower=False),
    "text": lambda s: _parse_text(s, lower=False),
    "vocab": lambda s: _parse_text(s, lower=True),
    "timestamp": _parse_timestamp,
    "weight": _parse_weight,
    "consent": _parse_consent,
}


def _default_column(kind: str, n: int) -> pd.Series:
    if kind == "weight":
        return pd.Series(np.ones(n), dtype="float64")
    if kind == "consent":
        return pd.Series(np.ones(n, dtype=bool))
    if kind == "timestamp":
        return pd.Series(pd.NaT, index=pd.RangeIndex(n), dtype="datetime64[ns]")
    return pd.Series(np.full(n, np.nan, dtype=object)).astype(TEXT_DTYPE)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


@dataclass
class _TableState:
    """One table during validation."""

    name: str
    raw: pd.DataFrame
    display: str
    locator: _Locator
    present: set[str]
    parsed: dict[str, _Parsed] = field(default_factory=dict)

    def column(self, name: str) -> pd.Series:
        return self.parsed[name].values


def _display_name(table: str, files: Mapping[str, str] | None) -> str:
    label = (files or {}).get(table)
    if not label:
        return table
    if _is_url(label):
        return "table " + label.rsplit(" table ", 1)[-1]
    return Path(label).name


def _locator_for(table: str, files: Mapping[str, str] | None) -> _Locator:
    label = (files or {}).get(table, "")
    if label.lower().endswith(".csv") and not _is_url(label) and Path(label).is_file():
        return _Locator(csv_path=Path(label))
    return _Locator()


def _normalise_names(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Strip and lower-case column names; report names that collide afterwards."""
    names = [str(c).strip().lower() for c in frame.columns]
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    duplicates = sorted(n for n, k in seen.items() if k > 1)
    frame = frame.copy(deep=False)
    frame.columns = names
    if duplicates:
        frame = frame.loc[:, ~frame.columns.duplicated()]
    return frame, duplicates


def _mask_check(mask: np.ndarray, name: str) -> pa.Check:
    """A pandera check that fails exactly where ``mask`` is true (nulls are not skipped)."""
    return pa.Check(
        lambda s: pd.Series(~mask, index=s.index),
        name=name,
        ignore_na=False,
        element_wise=False,
    )


def _unique_check() -> pa.Check:
    return pa.Check(
        lambda s: ~(s.duplicated(keep=False) & s.notna()),
        name="unique",
        ignore_na=False,
    )


def _choice_check(choices: tuple[str, ...]) -> pa.Check:
    return pa.Check(lambda s: s.isin(choices) | s.isna(), name="choice", ignore_na=False)


_PANDERA_RULES = {
    "not_nullable": "required",
    "greater_than_or_equal_to(0)": "negative",
}


def _schema_for(state: _TableState) -> pa.DataFrameSchema:
    columns: dict[str, pa.Column] = {}
    for spec in _SPECS[state.name]:
        if spec.name not in state.present:
            continue
        parsed = state.parsed[spec.name]
        checks: list[pa.Check] = []
        nullable = True
        if spec.kind in ("id", "text", "vocab"):
            nullable = spec.nullable
            checks.append(_mask_check(parsed.bad, "control"))
            if spec.choices:
                checks.append(_choice_check(spec.choices))
            if spec.unique:
                checks.append(_unique_check())
        elif spec.kind == "timestamp":
            if not spec.nullable:
                checks.append(_mask_check(parsed.missing, "required"))
            checks.append(_mask_check(parsed.bad, "timestamp"))
        elif spec.kind == "weight":
            checks.append(_mask_check(parsed.bad, "number"))
            checks.append(pa.Check.ge(0))
        elif spec.kind == "consent":
            checks.append(_mask_check(parsed.bad, "consent"))
        columns[spec.name] = pa.Column(nullable=nullable, checks=checks, required=True)
    return pa.DataFrameSchema(columns, name=state.name, strict=False)


def _choices_of(column: str) -> tuple[str, ...]:
    """The values a fixed-vocabulary column allows (column names are unique across them)."""
    return next(c.choices for cs in _SPECS.values() for c in cs if c.name == column and c.choices)


def _rule_text(rule: str, column: str) -> str:
    texts = {
        "required": f"where {column} is empty (a value is required)",
        "control": f"where {column} holds a control character (such as a NUL byte)",
        "unique": f"where {column} is not unique (each {column} may appear only once)",
        "timestamp": f"where {column} is not an ISO 8601 timestamp ({_ISO_HINT}) "
        "within the years 1678-2261",
        "number": f"where {column} is not a number",
        "negative": f"where {column} is negative (it must be >= 0)",
        "consent": f"where {column} is not one of true/false/1/0/yes/no (empty means true)",
    }
    if rule == "choice":
        return f"where {column} is not one of {'/'.join(_choices_of(column))}"
    return texts[rule]


# --------------------------------------------------------------------------------------------
# Row-level findings
# --------------------------------------------------------------------------------------------

# Rule ids written to quarantine files, where they differ from the internal names.
_QUARANTINE_RULES = {"unique": "duplicate"}
_ORPHAN_ORDER = len(_RULES) + 1


@dataclass(frozen=True, eq=False)
class _Finding:
    """Rows of one table that break one row-level rule.

    ``positions`` are 0-based rows of the raw table; ``what`` is the rule as the strict message
    words it (``where weight is negative (it must be >= 0)``); ``rule`` the short id written to
    quarantine files; ``render`` shows the offending raw value of a row (``None``: no value).
    """

    state: _TableState
    column: str
    rule: str
    what: str
    positions: np.ndarray
    order: tuple[int, int, int]
    render: Callable[[int], str] | None = None

    def problem(self) -> _Problem:
        """The finding as one problem line of a refusal message."""
        return _Problem(
            self.state.display,
            self.what,
            column=self.column,
            rows=len(self.positions),
            examples=_examples(self.state.locator, self.positions, self.render),
            order=self.order,
        )

    def detail(self, position: int, label: str) -> str:
        """One row's message: file, line (or row), column, the rule broken and the value."""
        text = self.what.removeprefix("where ")
        found = f" (found {self.render(position)})" if self.render is not None else ""
        return f"{self.state.display}, {label}, column {self.column}: {text}{found}"


def _finding_key(finding: _Finding) -> tuple:
    """Order of the rules a row breaks: its own defects first, then orphaned references."""
    return (finding.rule == "orphan", finding.order)


def _column_findings(state: _TableState) -> list[_Finding]:
    """Run the table's pandera schema and turn its failure cases into findings."""
    frame = pd.DataFrame({name: state.column(name) for name in state.parsed})
    try:
        _schema_for(state).validate(frame, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return []
    findings = []
    cases = cases[cases["index"].notna()]
    for (column, check), group in cases.groupby(["column", "check"], sort=False):
        column = str(column)
        rule = _PANDERA_RULES.get(str(check), str(check))
        if rule in _RULES:
            what, rule_order = _rule_text(rule, column), _RULES.index(rule)
        else:
            what, rule_order = f"that fail the check {check}", len(_RULES)
        raw_column = state.raw[column]
        render = None if rule == "required" else (lambda p, s=raw_column: _show_value(s.iat[p]))
        findings.append(
            _Finding(
                state,
                column,
                _QUARANTINE_RULES.get(rule, rule),
                what,
                np.unique(group["index"].to_numpy(dtype=np.int64)),
                (_table_order(state.name), _column_order(state.name, column), rule_order),
                render,
            )
        )
    return findings


def _beyond_first(finding: _Finding) -> _Finding:
    """A duplicate-id finding reduced to the repeats: the first row of each id is kept."""
    if finding.rule != "duplicate":
        return finding
    values = finding.state.column(finding.column)
    repeats = (values.duplicated(keep="first") & values.notna()).to_numpy()
    return replace(finding, positions=np.flatnonzero(repeats))


def _isin(values: pd.Series, allowed: pd.Series) -> np.ndarray:
    """Vectorised membership test of text values (missing values are never members)."""
    try:
        hits = pc.is_in(
            pa_arrow.array(values, from_pandas=True),
            value_set=pa_arrow.array(allowed.dropna(), from_pandas=True),
        )
        return np.asarray(pc.fill_null(hits, False).to_numpy(zero_copy_only=False), dtype=bool)
    except (pa_arrow.ArrowException, TypeError):
        return values.isin(set(allowed.dropna())).to_numpy(dtype=bool)


def _reference_findings(
    state: _TableState,
    column: str,
    allowed: pd.Series,
    rule: str,
    target: str,
    kept: pd.Series | None = None,
) -> list[_Finding]:
    """Values of ``column`` not in ``allowed`` and, with ``kept``, in it but quarantined."""
    if column not in state.present:
        return []
    values = state.column(column)
    present = values.notna().to_numpy()
    known = _isin(values, allowed)
    raw_column = state.raw[column]

    def render(p: int) -> str:
        return _show_value(raw_column.iat[p])

    order = (_table_order(state.name), _column_order(state.name, column), _RULES.index(rule))
    findings = []
    unknown = present & ~known
    if unknown.any():
        rule_id = "unknown_counterpart" if column == "counterpart_id" else rule
        what = f"where {column} is not in {target}"
        findings.append(
            _Finding(state, column, rule_id, what, np.flatnonzero(unknown), order, render)
        )
    if kept is not None:
        orphan = present & known & ~_isin(values, kept)
        if orphan.any():
            what = f"where {column} refers to a quarantined row of {target}"
            order = (order[0], order[1], _ORPHAN_ORDER)
            positions = np.flatnonzero(orphan)
            findings.append(_Finding(state, column, "orphan", what, positions, order, render))
    return findings


#: The tables whose rows are spans: (start column, end column, what the end may not precede).
_SPANS = {
    "roles": ("started_at", "ended_at", "a role cannot end before it starts"),
    "outreach": ("contacted_at", "outcome_at", "an outcome cannot come before the contact"),
}


def _span_findings(state: _TableState) -> list[_Finding]:
    """Rows whose end column lies before their start column (rule ``ends_before_start``)."""
    if state.name not in _SPANS:
        return []
    start, end, why = _SPANS[state.name]
    if not {start, end} <= state.present:
        return []
    began, ended = state.column(start), state.column(end)
    wrong = (began.notna() & ended.notna() & (ended < began)).to_numpy()
    if not wrong.any():
        return []
    raw_start, raw_end = state.raw[start], state.raw[end]

    def render(p: int) -> str:
        return f"{start} {_show_value(raw_start.iat[p])}, {end} {_show_value(raw_end.iat[p])}"

    order = (
        _table_order(state.name),
        _column_order(state.name, end),
        _RULES.index("ends_before_start"),
    )
    what = f"where {end} is before {start} ({why})"
    positions = np.flatnonzero(wrong)
    return [_Finding(state, end, "ends_before_start", what, positions, order, render)]


def _primary_rules(n: int, findings: Sequence[_Finding]) -> np.ndarray:
    """Per raw row, the first rule it breaks (``None`` for a valid row)."""
    rules = np.full(n, None, dtype=object)
    for finding in sorted(findings, key=_finding_key):
        positions = finding.positions[pd.isna(rules[finding.positions])]
        rules[positions] = finding.rule
    return rules


def _kept_ids(state: _TableState, findings: Sequence[_Finding], column: str) -> pd.Series:
    """The ids of the rows of ``state`` that no finding sets aside."""
    dropped = pd.notna(_primary_rules(len(state.raw), findings))
    return state.column(column)[~dropped]


#: The timestamp of each table that cannot lie after the run (role ends may be planned).
_NOT_IN_FUTURE = {
    "members": "joined_at",
    "activities": "occurred_at",
    "roles": "started_at",
    "outreach": "contacted_at",
}


def _future_findings(state: _TableState, now: pd.Timestamp) -> list[_Finding]:
    """Rows dated after the day after ``now``: a typo (2099) or a broken clock, never data.

    One such row would move the default scoring date to its day and leave everybody dormant.
    """
    column = _NOT_IN_FUTURE.get(state.name)
    if column is None or column not in state.present:
        return []
    limit = now.normalize() + pd.Timedelta(days=2)
    values = state.column(column)
    late = (values.notna() & (values >= limit)).to_numpy()
    if not late.any():
        return []
    raw = state.raw[column]
    return [
        _Finding(
            state,
            column,
            "future",
            f"where {column} is in the future (on or after {limit:%Y-%m-%d}; this run is on "
            f"{now:%Y-%m-%d})",
            np.flatnonzero(late),
            (_table_order(state.name), _column_order(state.name, column), _RULES.index("future")),
            lambda p: _show_value(raw.iat[p]),
        )
    ]


def _row_findings(
    states: Mapping[str, _TableState], quarantine: bool, now: pd.Timestamp
) -> dict[str, list[_Finding]]:
    """Every row-level finding, by table.

    In quarantine mode a duplicated id keeps its first row, and a reference to a row that is set
    aside (a quarantined chapter or member) is an ``orphan`` finding, so the rows kept are
    consistent. Chapters are settled before members, members before activities and roles.
    """
    found = {
        name: _column_findings(state) + _future_findings(state, now)
        for name, state in states.items()
    }
    if quarantine:
        found = {
            name: [f for f in map(_beyond_first, fs) if len(f.positions)]
            for name, fs in found.items()
        }
    for name, state in states.items():
        found[name] += _span_findings(state)
    chapters = states.get("chapters")
    if chapters is not None and "chapter_id" in chapters.present:
        ids = chapters.column("chapter_id")
        kept = _kept_ids(chapters, found["chapters"], "chapter_id") if quarantine else None
        target = f"{chapters.display} (chapter_id)"
        for name in ("members", "activities", "roles"):
            if name in states:
                found[name] += _reference_findings(
                    states[name], "chapter_id", ids, "unknown_chapter", target, kept
                )
    members = states.get("members")
    if members is not None and "member_id" in members.present:
        ids = members.column("member_id")
        kept = _kept_ids(members, found["members"], "member_id") if quarantine else None
        target = f"{members.display} (member_id)"
        for name, column in (
            ("activities", "member_id"),
            ("activities", "counterpart_id"),
            ("roles", "member_id"),
            ("outreach", "member_id"),
        ):
            if name in states:
                found[name] += _reference_findings(
                    states[name], column, ids, "unknown_member", target, kept
                )
    return found


# --------------------------------------------------------------------------------------------
# Building the tables
# --------------------------------------------------------------------------------------------


def _finish_table(state: _TableState) -> pd.DataFrame:
    n = len(state.raw)
    columns = {}
    for spec in _SPECS[state.name]:
        if spec.name in state.present:
            series = state.column(spec.name).reset_index(drop=True)
            if spec.kind == "weight":
                series = series.fillna(1.0).astype("float64")
        else:
            series = _default_column(spec.kind, n)
        columns[spec.name] = series
    frame = pd.DataFrame(columns, index=pd.RangeIndex(n))
    return frame[_CANONICAL[state.name]]


def _sort_activities(frame: pd.DataFrame) -> pd.DataFrame:
    occurred = frame["occurred_at"]
    if occurred.is_monotonic_increasing:
        return frame
    order = np.argsort(occurred.to_numpy().view("int64"), kind="stable")
    return frame.take(order).reset_index(drop=True)


def _build_tables(
    states: Mapping[str, _TableState], source: str, quarantine: QuarantineReport | None = None
) -> Tables:
    return Tables(
        members=_finish_table(states["members"]),
        activities=_sort_activities(_finish_table(states["activities"])),
        roles=_finish_table(states["roles"]) if "roles" in states else None,
        chapters=_finish_table(states["chapters"]) if "chapters" in states else None,
        outreach=_finish_table(states["outreach"]) if "outreach" in states else None,
        source=source,
        quarantine=quarantine,
    )


def _subset(state: _TableState, keep: np.ndarray) -> _TableState:
    """The table restricted to the rows where ``keep`` is true (re-numbered from 0)."""
    if keep.all():
        return state
    rows = np.flatnonzero(keep)
    parsed = {
        name: _Parsed(p.values.iloc[rows].reset_index(drop=True), p.missing[rows], p.bad[rows])
        for name, p in state.parsed.items()
    }
    raw = state.raw.iloc[rows].reset_index(drop=True)
    return _TableState(state.name, raw, state.display, _Locator(), state.present, parsed)


# --------------------------------------------------------------------------------------------
# Quarantine
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Policy:
    """How a quarantine load behaves: the share limit and where the rejected rows go."""

    max_invalid_share: float
    quarantine_dir: Path | None


def _rule_counts(rules: np.ndarray) -> dict[str, int]:
    """Rows set aside by rule, most frequent first (ties by rule id)."""
    counts = pd.Series(rules[pd.notna(rules)], dtype=object).value_counts()
    return {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}


def _refuse_too_many(
    source: str,
    states: Mapping[str, _TableState],
    found: Mapping[str, list[_Finding]],
    rules: Mapping[str, np.ndarray],
    limit: float,
) -> None:
    """Raise when a table has more invalid rows than ``limit`` allows, or no valid row left."""
    lines, needed = [], 0.0
    for name, state in states.items():
        n, bad = len(state.raw), int(pd.notna(rules[name]).sum())
        share = bad / n if n else 0.0
        if not (share > limit or (bad == n > 0 and name in REQUIRED_TABLES)):
            continue
        broken = ", ".join(f"{rule} {count:,}" for rule, count in _rule_counts(rules[name]).items())
        lines.append(
            f"  - {state.display}: {bad:,} of {n:,} rows ({format_share(share)}) break the "
            f"contract: {broken}" + (" (no valid row would be left)" if bad == n else "")
        )
        if bad < n or name not in REQUIRED_TABLES:  # a higher limit would admit these
            needed = max(needed, share)
    if not lines:
        return
    problems = sorted((f.problem() for fs in found.values() for f in fs), key=lambda p: p.order)
    head = (
        f"Data source {source} has too many invalid rows to set aside (--on-invalid quarantine "
        f"allows at most {format_share(limit)} of each table's rows):"
    )
    advice = "Nothing was loaded or written. Fix these in the source (see docs/data-contract.md)"
    if needed > limit:
        value = share_needed(needed)
        advice += f", or raise the limit with --max-invalid-share {value}"
    body = [head, *lines, "The invalid rows:", *(f"  - {p.render()}" for p in problems)]
    raise ContractError("\n".join([*body, advice + "."]))


def _quarantine_frame(
    state: _TableState, findings: Sequence[_Finding], rules: np.ndarray
) -> pd.DataFrame:
    """The set-aside rows as read (all their columns) plus ``rule`` and ``detail``."""
    positions = np.flatnonzero(pd.notna(rules))
    labels = dict(zip(positions.tolist(), state.locator.labels(positions), strict=True))
    details: dict[int, list[str]] = {int(p): [] for p in positions}
    for finding in sorted(findings, key=_finding_key):
        for p in finding.positions.tolist():
            details[p].append(finding.detail(p, labels[p]))
    frame = state.raw.iloc[positions].reset_index(drop=True)
    rule_column, detail_column = ("rule", "detail")
    if {"rule", "detail"} & set(frame.columns):  # never overwrite a column of the source
        rule_column, detail_column = ("quarantine_rule", "quarantine_detail")
    return frame.assign(
        **{
            rule_column: rules[positions].astype(str),
            detail_column: [" | ".join(details[int(p)]) for p in positions],
        }
    )


def _write_quarantine(folder: Path, frames: Mapping[str, pd.DataFrame]) -> dict[str, Path]:
    try:
        return write_quarantine_files(folder, frames, tuple(frames))
    except OSError as exc:
        raise ConfigError(
            f"quarantine_dir: cannot write the quarantine files to {folder} ({exc})"
        ) from exc


def _quarantine_load(
    states: Mapping[str, _TableState],
    found: Mapping[str, list[_Finding]],
    source: str,
    policy: _Policy,
) -> Tables:
    """Set the invalid rows aside (refusing above the share limit) and build the tables."""
    rules = {name: _primary_rules(len(state.raw), found[name]) for name, state in states.items()}
    _refuse_too_many(source, states, found, rules, policy.max_invalid_share)
    paths: dict[str, Path] = {}
    if policy.quarantine_dir is not None:
        frames = {
            name: _quarantine_frame(state, found[name], rules[name])
            for name, state in states.items()
        }
        paths = _write_quarantine(policy.quarantine_dir, frames)
    report = QuarantineReport(
        rows_in={name: len(state.raw) for name, state in states.items()},
        rows_quarantined={name: int(pd.notna(r).sum()) for name, r in rules.items()},
        by_rule={name: _rule_counts(r) for name, r in rules.items()},
        paths=paths,
        max_invalid_share=policy.max_invalid_share,
    )
    kept = {name: _subset(state, pd.isna(rules[name])) for name, state in states.items()}
    return _build_tables(kept, source, report)


# --------------------------------------------------------------------------------------------
# Validation entry points
# --------------------------------------------------------------------------------------------


def _missing_table_text(
    table: str, source_kind: str, found_names: Sequence[str], where_hint: str
) -> str:
    found = ", ".join(found_names) if found_names else "none"
    if source_kind == "folder":
        return (
            f"required table is missing: expected {table}.csv or {table}.parquet in "
            f"{where_hint}; files found: {found}"
        )
    if source_kind == "sql":
        return (
            f"required table is missing: expected a table named {table} in {where_hint}; "
            f"tables found: {found}"
        )
    return f"required table is missing: no frame named {table} was given"


def _table_state(
    table: str, frame: pd.DataFrame, files: Mapping[str, str] | None, problems: list[_Problem]
) -> _TableState:
    """Parse one raw table; table-level problems (column names, empty table) go to ``problems``."""
    frame, duplicates = _normalise_names(frame.reset_index(drop=True))
    display = _display_name(table, files)
    order = (_table_order(table), -1, 0)
    if duplicates:
        problems.append(
            _Problem(
                display,
                "has duplicate column names (after trimming and ignoring case): "
                + ", ".join(duplicates),
                order=order,
            )
        )
    specs = _SPECS[table]
    absent = [c.name for c in specs if c.required and c.name not in frame.columns]
    if absent:
        plural = "s" if len(absent) > 1 else ""
        problems.append(
            _Problem(
                display,
                f"missing required column{plural} {', '.join(absent)}; columns found: "
                + (", ".join(map(str, frame.columns)) or "none"),
                order=order,
            )
        )
    if table in REQUIRED_TABLES and len(frame) == 0:
        problems.append(_Problem(display, "has no rows: the table must not be empty", order=order))
    present = {c.name for c in specs if c.name in frame.columns}
    state = _TableState(table, frame, display, _locator_for(table, files), present)
    for spec in specs:
        if spec.name in present:
            state.parsed[spec.name] = _PARSERS[spec.kind](frame[spec.name])
            if spec.choices:
                state.parsed[spec.name] = _as_choice(state.parsed[spec.name])
    return state


def _as_choice(parsed: _Parsed) -> _Parsed:
    """A fixed-vocabulary value as the contract spells it: ``No answer`` is ``no_answer``."""
    values = parsed.values.str.replace(r"[\s\-]+", "_", regex=True).astype(TEXT_DTYPE)
    return _Parsed(values, parsed.missing, parsed.bad)


def _validate(
    frames: Mapping[str, pd.DataFrame | None],
    source: str,
    files: Mapping[str, str] | None,
    problems: list[_Problem],
    unreadable: set[str],
    found_names: Sequence[str] = (),
    where_hint: str = "",
    source_kind: str = "memory",
    policy: _Policy | None = None,
    now=None,
) -> Tables:
    """Check and normalise raw frames; ``policy`` set means quarantine invalid rows; ``now``
    (default: the wall clock) is the time rows may not lie after."""
    states: dict[str, _TableState] = {}
    for table in TABLE_NAMES:
        frame = frames.get(table)
        if frame is None:
            if table in REQUIRED_TABLES and table not in unreadable:
                problems.append(
                    _Problem(
                        table,
                        _missing_table_text(table, source_kind, found_names, where_hint),
                        order=(_table_order(table), -1, 0),
                    )
                )
            continue
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{table}: expected a pandas DataFrame, got {type(frame).__name__}")
        states[table] = _table_state(table, frame, files, problems)

    # Table-level problems refuse the source in every mode, with every row problem listed too.
    quarantine = policy is not None and not problems
    now = pd.Timestamp.now(tz="UTC").tz_localize(None) if now is None else parse_as_of(now)
    found = _row_findings(states, quarantine, now)
    if quarantine:
        return _quarantine_load(states, found, source, policy)
    problems.extend(f.problem() for fs in found.values() for f in fs)
    if problems:
        _raise_problems(source, problems)
    return _build_tables(states, source)


def validate_tables(
    frames: Mapping[str, pd.DataFrame | None],
    source: str = "<memory>",
    files: Mapping[str, str] | None = None,
    now=None,
) -> Tables:
    """Check raw frames against the contract and normalise them into :class:`Tables`.

    Args:
        frames: Raw frames by table name (``members`` and ``activities`` required, ``roles``
            and ``chapters`` optional; other keys are ignored). Column names are matched after
            trimming and lower-casing; columns outside the contract are dropped.
        source: Label of the data source for messages and :attr:`Tables.source`.
        files: For each table, the file path (or SQL label) it was read from. CSV paths let the
            messages give line numbers in the file; otherwise rows are numbered from 1.
        now: The time of the run (default: the wall clock): joins, activities and role starts
            from the day after next on are refused (rule ``future``).

    Returns:
        The normalised tables (canonical columns and dtypes, activities sorted by time).

    Raises:
        ContractError: Listing every problem found.
    """
    return _validate(frames, source, files, problems=[], unreadable=set(), now=now)


def validate_outreach(
    frame: pd.DataFrame,
    source: str = "<outreach>",
    files: Mapping[str, str] | None = None,
    now=None,
    rows: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Check one ``outreach`` frame on its own, with the rules :func:`validate_tables` applies
    to it (columns, vocabularies, timestamps, outcome not before the contact, not in the future)
    but without the member reference, which needs the members table.

    Args:
        frame: Raw outreach rows (column names matched after trimming and lower-casing).
        source: Label of the source for the message.
        files: ``{"outreach": path}`` when the rows come from a file (CSV: line numbers).
        now: The time of the run (default: the wall clock).
        rows: For each row of ``frame``, its data-row position in that CSV file, when ``frame``
            holds only some of the file's rows (messages then name the right lines).

    Returns:
        The normalised outreach table (canonical columns and dtypes).

    Raises:
        ContractError: Listing every problem found.
    """
    problems: list[_Problem] = []
    state = _table_state("outreach", frame, files, problems)
    if rows and state.locator.csv_path is not None:
        lines = _csv_line_numbers(state.locator.csv_path, list(rows))
        state.locator = _Locator(
            state.locator.csv_path,
            {i: lines.get(int(r), int(r) + 2) for i, r in enumerate(rows)},
        )
    if not problems:
        now = pd.Timestamp.now(tz="UTC").tz_localize(None) if now is None else parse_as_of(now)
        found = _column_findings(state) + _future_findings(state, now) + _span_findings(state)
        problems.extend(f.problem() for f in found)
    if problems:
        _raise_problems(source, problems)
    return _finish_table(state)


def load_tables(
    source: str | os.PathLike,
    *,
    on_invalid: str = "strict",
    max_invalid_share: float = DEFAULT_MAX_INVALID_SHARE,
    quarantine_dir: str | os.PathLike | None = None,
    now=None,
) -> Tables:
    """Read, check and normalise a data source.

    With ``on_invalid="strict"`` (the default) any problem refuses the source. With
    ``on_invalid="quarantine"``, rows that break a row-level rule (a missing or malformed value,
    a negative weight, a repeated id after its first row, an unknown member, counterpart or
    chapter, a role ending before it starts) are set aside instead, together with the rows that
    refer to a member or chapter set aside (rule ``orphan``). Table-level problems (the source
    cannot be read, a required table or column is missing, a required table is empty) still
    refuse it, and so does a table with more than ``max_invalid_share`` of its rows invalid;
    nothing is written then. Otherwise the rows set aside are written, with a ``rule`` and a
    ``detail`` column, to ``<quarantine_dir>/<table>.quarantine.csv`` (atomically, only for
    tables with such rows) and counted in ``tables.quarantine``.

    Args:
        source: A folder of ``<table>.csv`` / ``<table>.parquet`` files or a SQLAlchemy URL
            (``sqlite:///path.db``, ``postgresql+psycopg2://user:password@host/db``).
        on_invalid: ``"strict"`` or ``"quarantine"``.
        max_invalid_share: With quarantine: the largest share of any table's rows that may be
            set aside (0-1; default 0.01).
        quarantine_dir: With quarantine: the folder of the quarantine files (``None``: count
            the rows set aside, write nothing).
        now: The time of the run (default: the wall clock): joins, activities and role starts
            from the day after next on are refused, or set aside (rule ``future``).

    Returns:
        The validated :class:`Tables`; ``source`` is set to :func:`describe_source`'s label;
        ``quarantine`` is a :class:`~features.quarantine.QuarantineReport` with quarantine and
        ``None`` when strict.

    Raises:
        ContractError: Every problem found, reading and content together, in one message; or,
            with quarantine, the invalid rows when they are too many.
        ConfigError: An invalid ``on_invalid`` or ``max_invalid_share``, or quarantine files
            that cannot be written.
    """
    check_on_invalid(on_invalid)
    policy = None
    if on_invalid == "quarantine":
        folder = None if quarantine_dir is None else Path(quarantine_dir)
        policy = _Policy(check_max_invalid_share(max_invalid_share), folder)
    label = describe_source(source)
    raw = _read_source(source)
    if raw.fatal:
        _raise_problems(label, raw.problems)
    return _validate(
        raw.frames,
        label,
        raw.files,
        problems=list(raw.problems),
        unreadable=raw.unreadable,
        found_names=raw.found_names,
        where_hint=raw.where_hint,
        source_kind=raw.kind,
        policy=policy,
        now=now,
    )


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_tables(tables: Tables, out_dir: str | os.PathLike, fmt: str = "parquet") -> list[Path]:
    """Write :class:`Tables` as a data source folder, all files or none.

    Every table is first written to a temporary file in ``out_dir``; only when all of them are
    complete are they moved into place. If anything fails, the temporary files are removed, the
    folder keeps its previous content (and is removed again if this call created it). After a
    successful write the folder loads back to equal tables: a file of the same table in the other
    format, and the file of an optional table that ``tables`` does not have, are removed.

    Args:
        tables: The tables to write.
        out_dir: The destination folder (created if needed).
        fmt: ``"parquet"`` (default) or ``"csv"``.

    Returns:
        The paths written, in the order members, activities, roles, chapters, outreach.

    Raises:
        ConfigError: If ``fmt`` is not ``csv`` or ``parquet``.
    """
    fmt = str(fmt).lower().lstrip(".")
    if fmt not in FILE_FORMATS:
        raise ConfigError(f"write_tables: unknown format {fmt!r}; use one of {FILE_FORMATS}")
    folder = Path(out_dir)
    frames = {name: getattr(tables, name) for name in TABLE_NAMES}
    writers: dict[Path, Callable[[Path], Any]] = {}
    for name, frame in frames.items():
        if frame is None:
            continue
        if fmt == "parquet":
            writers[folder / f"{name}.parquet"] = lambda tmp, f=frame: f.to_parquet(
                tmp, index=False
            )
        else:
            writers[folder / f"{name}.csv"] = lambda tmp, f=frame: f.to_csv(
                tmp, index=False, encoding="utf-8"
            )
    written = write_files_atomic(writers)
    for name, frame in frames.items():
        for other in FILE_FORMATS:
            stale = folder / f"{name}.{other}"
            if (frame is None or other != fmt) and stale.is_file():
                stale.unlink()
    return written
