"""Data sources: their safe labels, reading them raw, and writing tables back.

A data source is a folder holding one file per table (``members.csv`` or ``members.parquet``,
and so on; other files are ignored) or a SQLAlchemy URL whose database holds tables of the same
names. :func:`read_raw_tables` reads one as it is (problems of reading are collected, not
raised); :func:`describe_source` labels it without a password; :func:`write_tables` writes
validated tables back as a folder, all files or none. Checking the content is
:mod:`features.contract`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa_arrow
import pyarrow.parquet as pq

from features.contract_spec import (
    FILE_FORMATS,
    TABLE_NAMES,
    Problem,
    raise_problems,
    table_order,
)
from features.errors import ConfigError
from features.io import write_files_atomic
from features.tables import (
    Tables,
)

__all__ = [
    "DATA_PASSWORD_VARIABLE",
    "RawSource",
    "describe_source",
    "is_url",
    "password_to_environment",
    "read_raw_tables",
    "read_source",
    "write_tables",
]

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_SECRET_KEYS = re.compile(r"pass|pwd|secret|token|key", re.IGNORECASE)
#: A data URL's password written ``${NAME}`` is read from the environment variable ``NAME``
#: when the data is loaded: the URL itself (a flow parameter, a log line) then holds no secret.
_PASSWORD_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
#: The variable ``corecast run`` and ``serve`` move a data URL's literal password into.
DATA_PASSWORD_VARIABLE = "CORECAST_DATA_PASSWORD"


# --------------------------------------------------------------------------------------------
# Source labels (never a password)
# --------------------------------------------------------------------------------------------


def is_url(source: str | os.PathLike) -> bool:
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
    if not is_url(source):
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
    if not is_url(source):
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
    if not is_url(source):
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
class RawSource:
    """What reading produced: frames, labels, and problems found while reading."""

    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
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


def _read_csv(path: Path, table: str, raw: RawSource) -> None:
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
        raw.problems.append(Problem(path.name, what, order=(table_order(table), -1, 0)))
        return
    except pd.errors.EmptyDataError:
        raw.unreadable.add(table)
        raw.problems.append(
            Problem(
                path.name,
                "is empty: expected a header row with the column names",
                order=(table_order(table), -1, 0),
            )
        )
        return
    except (pd.errors.ParserError, OSError, ValueError) as exc:
        raw.unreadable.add(table)
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raw.problems.append(
            Problem(
                path.name, f"cannot be read as CSV ({detail})", order=(table_order(table), -1, 0)
            )
        )
        return
    raw.frames[table] = frame
    raw.files[table] = str(path)


def _read_parquet(path: Path, table: str, raw: RawSource) -> None:
    try:
        frame = pq.read_table(path).to_pandas()
    except (pa_arrow.ArrowException, OSError, ValueError) as exc:
        raw.unreadable.add(table)
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raw.problems.append(
            Problem(
                path.name,
                f"cannot be read as Parquet ({detail}); re-export the file",
                order=(table_order(table), -1, 0),
            )
        )
        return
    raw.frames[table] = frame.reset_index(drop=True)
    raw.files[table] = str(path)


def _read_folder(folder: Path) -> RawSource:
    raw = RawSource(where_hint=str(folder))
    if not folder.exists():
        raw.fatal = True
        raw.problems.append(
            Problem(
                str(folder),
                "does not exist; give a folder of CSV/Parquet files or a SQLAlchemy URL",
            )
        )
        return raw
    if not folder.is_dir():
        raw.fatal = True
        raw.problems.append(
            Problem(
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
                Problem(
                    table,
                    f"is ambiguous: both {names} exist in {folder}; keep only one of them",
                    order=(table_order(table), -1, 0),
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


def _read_sql(source: str) -> RawSource:
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.engine import make_url

    label = describe_source(source)
    raw = RawSource(where_hint=label, kind="sql")

    def fatal(what: str) -> RawSource:
        raw.fatal = True
        raw.problems.append(Problem(label, what))
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


def read_source(source: str | os.PathLike) -> RawSource:
    if is_url(source):
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
    raw = read_source(source)
    if raw.problems:
        raise_problems(describe_source(source), raw.problems)
    return raw.frames, raw.files


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

