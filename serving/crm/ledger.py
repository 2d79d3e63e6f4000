"""The delivery ledger: a SQLite record of every CRM record and what became of it, per sink.

One row per (sink, member): the fingerprint of the payload last written down for sending
(``payload_hash``), the fingerprint the sink last *confirmed* (``sent_hash``), the status
(``pending`` / ``sent`` / ``failed``), the failure reason, the number of attempts and timestamps.

The protocol that makes pushes restartable:

1. Before anything is sent, every record of the push is written down as ``pending`` with its
   payload hash, in one transaction.
2. After the sink answers for a batch, the outcome of each of its records is written in one
   transaction: ``sent`` (and ``sent_hash := payload_hash``) or ``failed`` with a reason.
3. A record is skipped by the next push only if it is ``sent`` and its new payload hash equals
   ``sent_hash`` (delta push). Everything else — new, changed, still ``pending`` after a crash,
   ``failed`` — is sent again. CRM writes are upserts, so sending twice is harmless.

The database uses WAL journaling and explicit ``BEGIN IMMEDIATE`` transactions, so a process
killed at any point (SIGKILL included) leaves it consistent: a batch is either wholly recorded
or not at all, and unrecorded records are simply still ``pending``. With ``synchronous=NORMAL``
the last few commits can be lost on power failure (not on a process crash); that only makes
records pending again, which is safe. A per-sink lock file stops two pushes to the same sink
from running at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import ConfigError, CrmError
from features.settings import corecast_home

__all__ = [
    "Ledger",
    "LEDGER_FILENAME",
    "default_ledger_path",
    "read_dead_letters",
    "read_push_status",
    "read_push_history",
]

LEDGER_FILENAME = "ledger.sqlite"
SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    sink TEXT NOT NULL,
    member_id TEXT NOT NULL,
    payload_hash TEXT NOT NULL,
    sent_hash TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    crm_id TEXT,
    push_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    sent_at TEXT,
    PRIMARY KEY (sink, member_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pushes (
    push_id TEXT PRIMARY KEY,
    sink TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    state TEXT NOT NULL CHECK (state IN ('running', 'done', 'stopped', 'interrupted')),
    records INTEGER NOT NULL DEFAULT 0,
    sent INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    message TEXT
);
"""

STATE_COLUMNS = ["member_id", "status", "payload_hash", "sent_hash", "attempts"]
DEAD_LETTER_COLUMNS = ["sink", "member_id", "reason", "attempts", "updated_at", "push_id"]
STATUS_COLUMNS = ["sink", "status", "records", "max_attempts", "last_update"]
HISTORY_COLUMNS = [
    "push_id", "sink", "started_at", "finished_at", "state", "records", "sent", "failed",
    "message",
]


def default_ledger_path() -> Path:
    """Return the default ledger location, ``corecast_home() / "ledger.sqlite"``."""
    return corecast_home() / LEDGER_FILENAME


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Ledger:
    """The delivery ledger (see the module docstring for the protocol).

    Args:
        path: SQLite file; default :func:`default_ledger_path`. ``":memory:"`` for a throw-away
            ledger.
        readonly: Open without the right to write (used by dry runs and status reports). A
            missing file is then treated as an empty ledger and is not created.

    Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: str | Path | None = None, *, readonly: bool = False) -> None:
        self.readonly = readonly
        self.path = Path(path) if path not in (None, ":memory:") else path
        if self.path is None:
            self.path = default_ledger_path()
        if self.path == ":memory:" or (readonly and not Path(self.path).exists()):
            self._conn = sqlite3.connect(":memory:", isolation_level=None)
            self._conn.executescript(_SCHEMA)
        elif readonly:
            uri = Path(self.path).resolve().as_uri() + "?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, isolation_level=None)
            self._conn.execute("PRAGMA busy_timeout = 10000")
        else:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            try:
                self._conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=10)
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA synchronous = NORMAL")
                self._conn.execute("PRAGMA busy_timeout = 10000")
                self._conn.executescript(_SCHEMA)
                self._conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (SCHEMA_VERSION,),
                )
            except sqlite3.DatabaseError as exc:
                raise ConfigError(f"ledger {self.path}: cannot open it as SQLite ({exc})") from None
            version = self._conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
            if version is None or version[0] != SCHEMA_VERSION:
                raise ConfigError(
                    f"ledger {self.path}: schema version {version and version[0]!r} is not "
                    f"{SCHEMA_VERSION!r}; use a fresh ledger file"
                )

    def __repr__(self) -> str:
        return f"Ledger(path={str(self.path)!r}, readonly={self.readonly})"

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

    # -- transactions and locking ------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self.readonly:
            raise CrmError(f"ledger {self.path} is open read-only (dry run); nothing is written")
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    @contextlib.contextmanager
    def lock(self, sink: str) -> Iterator[None]:
        """Hold an exclusive lock for pushing to ``sink`` (released on exit or process death).

        The lock file (``<ledger>.<digest>.lock``) is removed when the push ends, while it is
        still held; a push that opened the file just before it was removed notices (the path no
        longer leads to the file it locked) and locks the new one instead.

        Raises:
            CrmError: Another push to the same sink with the same ledger is running.
        """
        if self.path == ":memory:":
            yield
            return
        try:
            import fcntl
        except ImportError:  # pragma: no cover - platforms without flock
            yield
            return
        digest = hashlib.sha256(sink.encode()).hexdigest()[:12]
        lock_path = Path(f"{self.path}.{digest}.lock")
        fd = _lock_file(lock_path, fcntl, f"another push to {sink} is running with ledger "
                        f"{self.path}; wait for it to finish")
        try:
            yield
        finally:
            lock_path.unlink(missing_ok=True)
            os.close(fd)

    # -- reading -----------------------------------------------------------------------------

    def read_state(self, sink: str) -> pd.DataFrame:
        """Return the ledger rows of ``sink``: member_id, status, payload_hash, sent_hash,
        attempts."""
        rows = self._conn.execute(
            "SELECT member_id, status, payload_hash, sent_hash, attempts FROM deliveries "
            "WHERE sink = ?",
            (sink,),
        ).fetchall()
        frame = pd.DataFrame(rows, columns=STATE_COLUMNS)
        for column in ["member_id", "status", "payload_hash", "sent_hash"]:
            frame[column] = frame[column].astype("str").where(frame[column].notna())
        frame["attempts"] = frame["attempts"].astype("int64")
        return frame

    def dead_letters(self, sink: str | None = None) -> pd.DataFrame:
        """Return the failed records (all sinks, or one), oldest failure first."""
        sql = (
            "SELECT sink, member_id, reason, attempts, updated_at, push_id FROM deliveries "
            "WHERE status = 'failed'"
        )
        args: tuple = ()
        if sink is not None:
            sql += " AND sink = ?"
            args = (sink,)
        rows = self._conn.execute(sql + " ORDER BY updated_at, sink, member_id", args).fetchall()
        return pd.DataFrame(rows, columns=DEAD_LETTER_COLUMNS)

    def status_summary(self) -> pd.DataFrame:
        """Return record counts per sink and status, with the largest attempt count and the
        latest update."""
        rows = self._conn.execute(
            "SELECT sink, status, COUNT(*), MAX(attempts), MAX(updated_at) FROM deliveries "
            "GROUP BY sink, status ORDER BY sink, status"
        ).fetchall()
        return pd.DataFrame(rows, columns=STATUS_COLUMNS)

    def history(self, limit: int = 20) -> pd.DataFrame:
        """Return the latest pushes, newest first."""
        rows = self._conn.execute(
            f"SELECT {', '.join(HISTORY_COLUMNS)} FROM pushes ORDER BY started_at DESC LIMIT ?",
            (int(limit),),
        ).fetchall()
        return pd.DataFrame(rows, columns=HISTORY_COLUMNS)

    def counts(self, sink: str) -> dict[str, int]:
        """Return ``{status: records}`` for one sink."""
        rows = self._conn.execute(
            "SELECT status, COUNT(*) FROM deliveries WHERE sink = ? GROUP BY status", (sink,)
        ).fetchall()
        return {status: int(n) for status, n in rows}

    def get_meta(self, key: str) -> str | None:
        """Return a value stored with :meth:`set_meta` (``None`` when absent)."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # -- writing -----------------------------------------------------------------------------

    def set_meta(self, key: str, value: str | None) -> None:
        """Store (or with ``None`` delete) a small value, e.g. "CRM set-up done for this sink"."""
        with self._transaction() as conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    def begin_push(self, sink: str, records: int) -> str:
        """Record the start of a push (and mark earlier pushes of the sink that never finished
        as ``interrupted``); return its id."""
        push_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        with self._transaction() as conn:
            conn.execute(
                "UPDATE pushes SET state = 'interrupted', finished_at = ? "
                "WHERE sink = ? AND state = 'running'",
                (_now(), sink),
            )
            conn.execute(
                "INSERT INTO pushes (push_id, sink, started_at, state, records) "
                "VALUES (?, ?, ?, 'running', ?)",
                (push_id, sink, _now(), int(records)),
            )
        return push_id

    def finish_push(
        self, push_id: str, state: str, *, sent: int, failed: int, message: str | None = None
    ) -> None:
        """Record the end of a push (``done`` or ``stopped``)."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE pushes SET state = ?, finished_at = ?, sent = ?, failed = ?, message = ? "
                "WHERE push_id = ?",
                (state, _now(), int(sent), int(failed), message, push_id),
            )

    def mark_pending(
        self, sink: str, push_id: str, member_ids: Sequence[str], payload_hashes: Sequence[str]
    ) -> None:
        """Write down records as ``pending`` with their payload hashes, in one transaction."""
        now = _now()
        rows = list(
            zip(
                [sink] * len(member_ids),
                np.asarray(member_ids, dtype=object).tolist(),
                np.asarray(payload_hashes, dtype=object).tolist(),
                [push_id] * len(member_ids),
                [now] * len(member_ids),
                strict=True,
            )
        )
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO deliveries (sink, member_id, payload_hash, status, push_id, "
                "created_at, updated_at) VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?5) "
                "ON CONFLICT (sink, member_id) DO UPDATE SET payload_hash = excluded.payload_hash, "
                "status = 'pending', reason = NULL, push_id = excluded.push_id, "
                "updated_at = excluded.updated_at",
                rows,
            )

    def record_outcomes(
        self,
        sink: str,
        push_id: str,
        member_ids: Sequence[str],
        statuses: Sequence[str],
        reasons: Sequence[str | None],
        crm_ids: Sequence[str | None] | None = None,
    ) -> None:
        """Write the outcome of a batch (``sent`` or ``failed`` per record) in one transaction.

        Only rows written down by this push are updated, so a late answer can never overwrite
        a newer push.
        """
        n = len(member_ids)
        statuses = np.asarray(statuses, dtype=object)
        if not set(statuses.tolist()) <= {"sent", "failed", "pending"}:
            raise ValueError(f"unknown statuses {set(statuses.tolist())}")
        crm = [None] * n if crm_ids is None else np.asarray(crm_ids, dtype=object).tolist()
        now = _now()
        rows = list(
            zip(
                statuses.tolist(),
                np.asarray(reasons, dtype=object).tolist(),
                crm,
                [now] * n,
                [sink] * n,
                np.asarray(member_ids, dtype=object).tolist(),
                [push_id] * n,
                strict=True,
            )
        )
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE deliveries SET status = ?1, "
                "reason = CASE WHEN ?1 = 'sent' THEN NULL ELSE ?2 END, "
                "attempts = attempts + CASE WHEN ?1 = 'pending' THEN 0 ELSE 1 END, "
                "crm_id = COALESCE(?3, crm_id), updated_at = ?4, "
                "sent_hash = CASE WHEN ?1 = 'sent' THEN payload_hash ELSE sent_hash END, "
                "sent_at = CASE WHEN ?1 = 'sent' THEN ?4 ELSE sent_at END "
                "WHERE sink = ?5 AND member_id = ?6 AND push_id = ?7",
                rows,
            )


def _open_for_reading(ledger: Ledger | str | Path | None) -> tuple[Ledger, bool]:
    if isinstance(ledger, Ledger):
        return ledger, False
    return Ledger(ledger, readonly=True), True


def read_dead_letters(ledger: Ledger | str | Path | None = None, sink: str | None = None):
    """Return the dead-letter list: every record whose last delivery failed, with its reason.

    Args:
        ledger: A :class:`Ledger`, a ledger path, or ``None`` for the default ledger.
        sink: Only this sink (its ledger key, e.g. ``PushReport.sink``), or all.

    Returns:
        DataFrame with columns sink, member_id, reason, attempts, updated_at, push_id.
    """
    opened, owned = _open_for_reading(ledger)
    try:
        return opened.dead_letters(sink)
    finally:
        if owned:
            opened.close()


def read_push_status(ledger_path: str | Path | None = None) -> pd.DataFrame:
    """Return the status summary behind ``corecast push --status``.

    Args:
        ledger_path: Ledger file (default :func:`default_ledger_path`); a missing file gives an
            empty summary.

    Returns:
        One row per sink and status: sink, status, records, max_attempts, last_update.
    """
    opened, _ = _open_for_reading(ledger_path)
    try:
        return opened.status_summary()
    finally:
        opened.close()


def read_push_history(ledger_path: str | Path | None = None, limit: int = 20) -> pd.DataFrame:
    """Return the latest pushes (newest first): push_id, sink, started_at, finished_at, state
    (running / done / stopped / interrupted), records, sent, failed, message."""
    opened, _ = _open_for_reading(ledger_path)
    try:
        return opened.history(limit)
    finally:
        opened.close()


def _lock_file(path: Path, fcntl, busy: str) -> int:
    """An open descriptor holding an exclusive ``flock`` on the file now at ``path``.

    Raises:
        CrmError: ``busy``, when another process holds the lock.
    """
    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CrmError(busy) from None
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            return fd
        os.close(fd)  # removed by the push that held it before us: lock the new file
