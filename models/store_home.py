"""Keep a SQLite MLflow store's artifacts inside the folder that holds it.

MLflow records every artifact location of a SQLite store as an *absolute* ``file://`` URI. A
corecast home that is copied, moved or restored from a backup therefore keeps pointing at the old
folder: new runs would write their models into the original home (or fail once it is gone).

corecast keeps its artifacts beside the database, in ``<home>/mlartifacts/`` (see
:func:`models.registry._ensure_experiment`). Before each use of a SQLite store,
:func:`rehome_store` looks at the locations the store records. Those of the form
``file://<elsewhere>/mlartifacts/...`` are re-pointed to ``file://<home>/mlartifacts/...`` in one
transaction, and the change is reported; any other location outside the home (a remote bucket,
say) is left as it is and reported.

Rewriting the locations means writing to MLflow's own tables, which MLflow does not offer as an
API. It is done only on a schema known to work (:data:`KNOWN_SCHEMAS`, checked against the
store's Alembic revision); on any other schema corecast refuses, naming the folders, rather than
write into another home.
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from features.errors import ConfigError

__all__ = ["KNOWN_SCHEMAS", "ARTIFACT_COLUMNS", "Rehomed", "rehome_store", "sqlite_database"]

logger = logging.getLogger("corecast.store")

#: Alembic revisions of the MLflow SQLite schema whose artifact columns are listed below
#: (MLflow 3.17). Another revision is refused rather than rewritten.
KNOWN_SCHEMAS = frozenset({"dc11669786a5"})
#: Every column of that schema that records where artifacts are: ``(table, column)``.
ARTIFACT_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
    ("model_versions", "source"),
)
#: The folder, beside the database, where corecast keeps a store's artifacts.
ARTIFACTS_FOLDER = "mlartifacts"


@dataclass(frozen=True)
class Rehomed:
    """What :func:`rehome_store` found and did.

    Attributes:
        moved_from: The old artifact folders now re-pointed into the home.
        rows: How many recorded locations were rewritten.
        outside: Locations outside the home left as they are (not corecast's own folder).
    """

    moved_from: tuple[str, ...]
    rows: int
    outside: tuple[str, ...]


def sqlite_database(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI; ``None`` for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///"))


def _artifact_prefix(folder: Path) -> str:
    """``file://`` prefix of the artifact folder beside a database, ending with ``/``."""
    return (folder / ARTIFACTS_FOLDER).as_uri().rstrip("/") + "/"


def _foreign_roots(locations: list[str], home: Path) -> tuple[set[str], set[str]]:
    """Split the experiments' locations that are outside ``home``.

    Returns:
        ``(prefixes, outside)``: the ``file://.../mlartifacts/`` prefixes of other folders (to
        re-point) and the remaining locations outside the home (to report only).
    """
    own = _artifact_prefix(home)
    prefixes: set[str] = set()
    outside: set[str] = set()
    for location in locations:
        if not location or location.startswith(own):
            continue
        parsed = urlparse(location)
        marker = f"/{ARTIFACTS_FOLDER}/"
        if parsed.scheme == "file" and marker in location:
            prefixes.add(location[: location.index(marker) + len(marker)])
            continue
        local = Path(unquote(parsed.path)) if parsed.scheme in ("", "file") else None
        if local is None or not local.is_relative_to(home):
            outside.add(location)
    return prefixes, outside


def _schema_revision(connection: sqlite3.Connection) -> str | None:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return row[0] if row else None


def _existing_columns(connection: sqlite3.Connection) -> list[tuple[str, str]]:
    """The :data:`ARTIFACT_COLUMNS` present in this database."""
    present = []
    for table, column in ARTIFACT_COLUMNS:
        names = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        if column in names:
            present.append((table, column))
    return present


def _rewrite(connection: sqlite3.Connection, prefixes: set[str], new_prefix: str) -> int:
    """Replace each old prefix by ``new_prefix`` in every artifact column; rows changed."""
    changed = 0
    with connection:  # one transaction: all rows re-pointed, or none
        for table, column in _existing_columns(connection):
            for old in sorted(prefixes):
                cursor = connection.execute(
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                    f"WHERE substr({column}, 1, ?) = ?",
                    (new_prefix, len(old) + 1, len(old), old),
                )
                changed += cursor.rowcount
    return changed


def _refuse(database: Path, prefixes: set[str], revision: str | None) -> ConfigError:
    folders = ", ".join(sorted(prefixes))
    return ConfigError(
        f"the MLflow store {database} keeps its artifacts in {folders}, outside its folder "
        f"{database.parent} (the corecast home was copied or moved). corecast re-points them "
        f"only on the store schema it knows ({', '.join(sorted(KNOWN_SCHEMAS))}); this store has "
        f"{revision or 'no schema revision'}. Use the original home (CORECAST_HOME), or train "
        "again in a new one."
    )


def rehome_store(database: Path) -> Rehomed | None:
    """Re-point a SQLite store's artifact locations into the folder that holds it.

    Args:
        database: The store's SQLite file; its folder is the home.

    Returns:
        What was found outside the home, or ``None`` when everything is inside it (or the store
        does not exist yet).

    Raises:
        ConfigError: Locations point into another home and the schema is not a known one.
    """
    if not database.is_file():
        return None
    home = database.parent.resolve()
    with closing(sqlite3.connect(database, timeout=30)) as connection:
        try:
            # MLflow's "Default" experiment (id 0) points at the working folder it was created
            # in; corecast never logs to it.
            locations = [row[0] for row in connection.execute(
                "SELECT artifact_location FROM experiments WHERE experiment_id != 0"
            )]
        except sqlite3.DatabaseError:
            return None  # no schema yet: MLflow creates it on first use
        prefixes, outside = _foreign_roots(locations, home)
        if not prefixes and not outside:
            return None
        rows = 0
        if prefixes:
            revision = _schema_revision(connection)
            if revision not in KNOWN_SCHEMAS:
                raise _refuse(database, prefixes, revision)
            rows = _rewrite(connection, prefixes, _artifact_prefix(home))
    found = Rehomed(tuple(sorted(prefixes)), rows, tuple(sorted(outside)))
    _report(database, found)
    return found


#: Stores whose locations outside the home were already reported by this process.
_REPORTED_OUTSIDE: set[tuple[str, tuple[str, ...]]] = set()


def _report(database: Path, found: Rehomed) -> None:
    if found.moved_from:
        logger.warning(
            "The MLflow store %s pointed its artifacts at %s, outside its home (the home was "
            "copied or moved): %d recorded location(s) now point inside %s.",
            database, ", ".join(found.moved_from), found.rows,
            database.parent / ARTIFACTS_FOLDER,
        )
    key = (str(database), found.outside)
    if found.outside and key not in _REPORTED_OUTSIDE:
        _REPORTED_OUTSIDE.add(key)
        logger.warning(
            "The MLflow store %s keeps artifacts outside its home, left as they are: %s",
            database, ", ".join(found.outside),
        )
