"""Pull outreach outcomes from a CRM into ``DIR/outreach.parquet``: merged, incremental, safe.

What ``corecast pull`` runs:

1. read the cursor of this source and file (the latest CRM modification time seen by the last
   pull), kept in the delivery ledger's ``meta`` table as ``pull-cursor:<source>:<file>``;
2. ask the source for the outcomes modified from the cursor minus :attr:`PullOptions.overlap_s`
   (so records modified in the same second as the cursor, or indexed late, are read again) up to
   now (:mod:`serving.crm.outcomes`);
3. settle each row's purpose: the CRM's, else the stored row's of the same member and contact
   time, else the one the pushed segment implies; rows left without one are skipped (counted);
4. validate the rows (:func:`features.contract.validate_outreach`) and merge them with the file
   on (``member_id``, ``contacted_at``, ``purpose``): a later outcome replaces the earlier one,
   never adds a second row; an outcome that did not change keeps its ``outcome_at``;
5. write the file atomically when something changed, then move the cursor.

A pull killed at any point leaves the old file and the old cursor, or the new file and the old
cursor (re-read and merged to the same result). A dry run reads and reports, and writes neither
file nor cursor nor anything in the CRM. Reading the same outcomes twice changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import requests

from features.contract import validate_outreach
from features.errors import ConfigError, ContractError
from features.io import write_parquet_atomic
from features.settings import corecast_home
from features.tables import OUTREACH_COLUMNS
from serving.crm.csvsink import CsvConfig
from serving.crm.hubspot import HubSpotConfig
from serving.crm.ledger import Ledger, default_ledger_path
from serving.crm.outcomes import (
    MODIFIED,
    SEGMENT_PURPOSE,
    CsvOutcomes,
    HubSpotOutcomes,
    Outcomes,
    SalesforceOutcomes,
)
from serving.crm.ratelimit import Clock
from serving.crm.salesforce import SalesforceConfig

__all__ = [
    "PULL_SOURCES",
    "OUTREACH_FILE",
    "PullOptions",
    "PullReport",
    "build_reader",
    "merge_outreach",
    "newest_export",
    "pull_outcomes",
    "pull_from_options",
    "read_outreach_file",
]

PULL_SOURCES = ("hubspot", "salesforce", "csv")
OUTREACH_FILE = "outreach.parquet"
KEY = ["member_id", "contacted_at", "purpose"]
CURSOR_PREFIX = "pull-cursor:"
#: Stored rows were checked against the clock when they were written; not again.
_NO_FUTURE_CHECK = pd.Timestamp("2200-01-01")


@dataclass(frozen=True)
class PullOptions:
    """Everything the command line and the flows can set for a pull.

    Attributes:
        ledger_path: Delivery ledger holding the cursor (default ``<corecast home>/ledger.sqlite``).
        dry_run: Read and report; write nothing (neither the file nor the cursor nor CRM set-up).
        overlap_s: Seconds before the cursor the next pull starts reading again (default 300).
        file: The filled-in CSV file (``--from csv``; default: the newest ``crm-push-*.csv`` of
            the CSV sink's folder, or its fixed ``path``).
        salesforce_outcome_field: Task field holding the outcome.
        salesforce_purpose_field: Task field holding the purpose.
        hubspot: HubSpot settings (as for pushes).
        salesforce: Salesforce settings (as for pushes).
        csv: CSV sink settings (as for pushes: where the exports are, the column names).
    """

    ledger_path: Path | None = None
    dry_run: bool = False
    overlap_s: float = 300.0
    file: Path | None = None
    salesforce_outcome_field: str = "Corecast_Outcome__c"
    salesforce_purpose_field: str = "Corecast_Purpose__c"
    hubspot: HubSpotConfig = field(default_factory=HubSpotConfig)
    salesforce: SalesforceConfig = field(default_factory=SalesforceConfig)
    csv: CsvConfig = field(default_factory=CsvConfig)

    def __post_init__(self) -> None:
        if self.overlap_s < 0:
            raise ConfigError(f"pull overlap must be >= 0 seconds, got {self.overlap_s}")


@dataclass(frozen=True)
class PullReport:
    """What a pull read and did (or, for a dry run, would do).

    Attributes:
        source: Key of the source (never a secret).
        kind: ``hubspot``, ``salesforce`` or ``csv``.
        path: The outreach file.
        dry_run: Whether this was a dry run.
        read: Rows read from the source (before skipping).
        added: Contacts new to the file.
        updated: Contacts whose outcome (or other values) changed.
        unchanged: Contacts read again with nothing new.
        skipped: Records that could not become a row, by reason.
        rows: Rows in the file after the pull.
        cursor_before: The cursor the pull started from (``None``: first pull).
        cursor_after: The cursor after the pull (unchanged by a dry run).
        written: Whether the file was written.
        requests: Requests made (or files read).
        seconds: Wall-clock duration.
    """

    source: str
    kind: str
    path: str
    dry_run: bool
    read: int
    added: int
    updated: int
    unchanged: int
    skipped: dict[str, int]
    rows: int
    cursor_before: str | None
    cursor_after: str | None
    written: bool
    requests: int
    seconds: float

    @property
    def skipped_total(self) -> int:
        """Records skipped, all reasons together."""
        return sum(self.skipped.values())

    def summary(self) -> str:
        """A few human-readable lines for the command line."""
        head = "DRY RUN — nothing written. " if self.dry_run else ""
        lines = [
            f"{head}{self.kind} ({self.source}): {self.read} outcomes read, {self.added} added, "
            f"{self.updated} updated, {self.unchanged} unchanged, {self.skipped_total} skipped",
            f"file: {self.path} ({self.rows} contacts"
            f"{'' if self.written else ', not rewritten'})",
            f"cursor: {self.cursor_before or 'none'} -> {self.cursor_after or 'none'} "
            f"({self.requests} requests in {self.seconds:.1f} s)",
        ]
        lines += [f"  {n} × skipped: {why}" for why, n in self.skipped.items() if n]
        return "\n".join(lines)


def read_outreach_file(path: Path) -> pd.DataFrame:
    """The outreach table in ``path`` (normalised), or an empty one when there is no file."""
    if not path.is_file():
        return validate_outreach(pd.DataFrame(columns=OUTREACH_COLUMNS), str(path))
    try:
        stored = pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
        raise ContractError(
            f"{path}: cannot be read as the outreach table ({exc}); move it aside, then pull "
            "with a new --ledger to read every outcome again (the cursor is kept in the ledger)"
        ) from None
    return validate_outreach(stored, str(path), now=_NO_FUTURE_CHECK)


def _known_members(rows: pd.DataFrame, folder: Path) -> tuple[pd.DataFrame, int]:
    """The rows whose member is in the folder's members table (all when it has none), and how
    many were left out: an outcome of a member the data does not know would make the next load
    refuse the whole source."""
    members = next((folder / f"members.{ext}" for ext in ("parquet", "csv")
                    if (folder / f"members.{ext}").is_file()), None)
    if members is None or rows.empty:
        return rows, 0
    try:
        if members.suffix == ".parquet":
            ids = pd.read_parquet(members, columns=["member_id"])["member_id"]
        else:
            ids = pd.read_csv(members, dtype="str", usecols=["member_id"])["member_id"]
    except (OSError, ValueError):
        return rows, 0  # the load names that file's problem; the pull is not the place
    known = rows["member_id"].isin(set(ids.astype("str").str.strip()))
    return rows[known], int((~known).sum())


def _fingerprints(frame: pd.DataFrame) -> pd.Series:
    return pd.util.hash_pandas_object(frame[OUTREACH_COLUMNS], index=False)


def merge_outreach(
    existing: pd.DataFrame, incoming: pd.DataFrame
) -> tuple[pd.DataFrame, int, int, int]:
    """Merge validated rows into the stored table on (member_id, contacted_at, purpose).

    ``incoming`` may carry ``modified_at``: among rows of one contact the latest wins. A row
    whose outcome equals the stored one keeps the stored ``outcome_at``.

    Returns:
        ``(merged, added, updated, unchanged)``; ``merged`` sorted by contact time, member and
        purpose, so the same content always gives the same file.
    """
    if MODIFIED in incoming.columns:
        incoming = incoming.sort_values(MODIFIED, kind="stable")
    incoming = incoming.drop_duplicates(KEY, keep="last")[OUTREACH_COLUMNS]
    stored = existing.set_index(KEY)
    keys = pd.MultiIndex.from_frame(incoming[KEY])
    known = keys.isin(stored.index)
    if known.any():
        before = stored.reindex(keys[known])
        same = (before["outcome"].to_numpy() == incoming.loc[known, "outcome"].to_numpy())
        keep = same & before["outcome_at"].notna().to_numpy()
        at = incoming.loc[known, "outcome_at"].to_numpy().copy()
        at[keep] = before["outcome_at"].to_numpy()[keep]
        incoming.loc[known, "outcome_at"] = at
    old = _fingerprints(existing.set_index(KEY).reindex(keys[known]).reset_index())
    new = _fingerprints(incoming[known])
    unchanged = int((old.to_numpy() == new.to_numpy()).sum())
    updated = int(known.sum()) - unchanged
    rest = existing[~pd.MultiIndex.from_frame(existing[KEY]).isin(keys)]
    merged = pd.concat([rest, incoming], ignore_index=True) if len(rest) else incoming.copy()
    merged = merged.sort_values(["contacted_at", "member_id", "purpose"], kind="stable")
    merged = validate_outreach(merged.reset_index(drop=True), "<merged>", now=_NO_FUTURE_CHECK)
    return merged, int((~known).sum()), updated, unchanged


def _settle_purposes(
    outcomes: Outcomes, existing: pd.DataFrame, from_file: bool
) -> tuple[pd.DataFrame, int]:
    """Purpose: the CRM's, else the stored row's of the same contact, else the segment's.

    Returns the rows (CRM rows without a purpose dropped; a file's kept for the contract to
    name) and how many were dropped.
    """
    rows = outcomes.rows
    contacted = pd.to_datetime(rows["contacted_at"], errors="coerce", format="ISO8601", utc=True)
    stored = existing.drop_duplicates(["member_id", "contacted_at"]).set_index(
        ["member_id", "contacted_at"]
    )["purpose"]
    lookup = pd.MultiIndex.from_arrays(
        [rows["member_id"].astype("str"), contacted.dt.tz_localize(None)]
    )
    before = pd.Series(stored.reindex(lookup).to_numpy(), index=rows.index)
    purpose = rows["purpose"].fillna(before).fillna(rows[SEGMENT_PURPOSE])
    rows = rows.assign(purpose=purpose).drop(columns=[SEGMENT_PURPOSE])
    if from_file:
        return rows, 0
    missing = rows["purpose"].isna()
    return rows[~missing], int(missing.sum())


def _cursor_key(reader, target: Path) -> str:
    return f"{CURSOR_PREFIX}{reader.key}:{target.resolve()}"


def _check_target(out_dir: Path) -> Path:
    folder = Path(out_dir).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out: {folder} is a file; give the folder to keep outreach.parquet in")
    if (folder / "outreach.csv").exists():
        raise ConfigError(
            f"--out: {folder} holds outreach.csv; the pull keeps the table as outreach.parquet, "
            "and a folder may hold only one file per table (convert it, or pull elsewhere)"
        )
    return folder / OUTREACH_FILE


def pull_outcomes(
    reader,
    out_dir: str | Path,
    ledger: Ledger,
    *,
    dry_run: bool = False,
    overlap_s: float = 300.0,
    now: Callable[[], pd.Timestamp] | None = None,
) -> PullReport:
    """Pull from one reader into ``out_dir/outreach.parquet`` (see the module docstring).

    Raises:
        CrmError: The source failed (nothing written, cursor unchanged).
        ContractError: The source's rows break the contract (nothing written).
        ConfigError: ``out_dir`` cannot hold the file.
    """
    started = time.monotonic()
    target = _check_target(Path(out_dir))
    key = _cursor_key(reader, target)
    guard = contextlib.nullcontext() if dry_run else ledger.lock(f"pull:{key}")
    with guard:
        cursor = ledger.get_meta(key)
        since = None if cursor is None else pd.Timestamp(cursor) - pd.Timedelta(seconds=overlap_s)
        until = (now or _utc_now)()
        if not dry_run:
            reader.prepare(ledger)
        outcomes = reader.read(since, until)
        existing = read_outreach_file(target)
        rows, no_purpose = _settle_purposes(outcomes, existing, outcomes.positions is not None)
        valid = reader.validate(rows.drop(columns=[MODIFIED]), outcomes)
        valid[MODIFIED] = rows[MODIFIED].to_numpy()
        valid, unknown = _known_members(valid, target.parent)
        merged, added, updated, unchanged = merge_outreach(existing, valid)
        written = False
        after = cursor
        if outcomes.latest is not None:
            latest = min(outcomes.latest, until)
            if cursor is None or latest > pd.Timestamp(cursor):
                after = latest.isoformat()
        if not dry_run:
            if added or updated:
                write_parquet_atomic(merged, target)
                written = True
            if after != cursor:
                ledger.set_meta(key, after)  # only once the file is safely in place
    skipped = {
        **outcomes.skipped,
        "no purpose (fill the outreach purpose)": no_purpose,
        "member not in the data's members table": unknown,
    }
    return PullReport(
        source=reader.key, kind=reader.kind, path=str(target), dry_run=dry_run,
        read=len(outcomes.rows) + sum(outcomes.skipped.values()), added=added, updated=updated,
        unchanged=unchanged, skipped={k: v for k, v in skipped.items() if v},
        rows=len(merged) if (written or dry_run) else len(existing),
        cursor_before=cursor, cursor_after=cursor if dry_run else after, written=written,
        requests=reader.requests_made, seconds=time.monotonic() - started,
    )


def _utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").tz_localize(None)


def export_folders(options: PullOptions) -> list[Path]:
    """Where CSV exports are looked for: the CSV sink's folder when set, else both defaults
    (``corecast push``'s ``<home>/exports`` and the runs' ``<home>/out/crm-exports``)."""
    if options.csv.folder:
        return [Path(options.csv.folder)]
    home = corecast_home(create=False)
    return [home / "exports", home / "out" / "crm-exports"]


def newest_export(options: PullOptions) -> Path:
    """The CSV file to read: ``--file``, the CSV sink's fixed path, or the newest export (the
    file names carry the push time, so the newest of all the folders is the last by name)."""
    if options.file is not None:
        return Path(options.file)
    if options.csv.path is not None:
        return Path(options.csv.path)
    folders = export_folders(options)
    files = [f for d in folders if d.is_dir() for f in d.glob("crm-push-*.csv")]
    if not files:
        where = " or ".join(str(d) for d in folders)
        raise ConfigError(
            f"--file: no filled-in CSV given and no crm-push-*.csv export in {where}; name the "
            "file a manager filled in with --file"
        )
    return max(files, key=lambda f: f.name)


def build_reader(
    kind: str,
    options: PullOptions | None = None,
    *,
    session: requests.Session | None = None,
    clock: Clock | None = None,
    require_credentials: bool = True,
    seed: int | None = None,
):
    """Build the reader of a source from options and the environment.

    Raises:
        ConfigError: Unknown source, or a required setting or credential is missing.
    """
    from serving.crm.push import _secret_from_env

    options = options or PullOptions()
    if kind == "hubspot":
        cfg = options.hubspot
        token = _secret_from_env(cfg.token_env, require_credentials, "HubSpot")
        return HubSpotOutcomes(cfg, token, session=session, clock=clock, seed=seed)
    if kind == "salesforce":
        cfg = options.salesforce
        url = cfg.instance_url or os.environ.get(cfg.instance_url_env, "").strip()
        if not url:
            raise ConfigError(
                f"Salesforce: set the instance URL (--salesforce-url) or {cfg.instance_url_env}"
            )
        token = _secret_from_env(cfg.token_env, require_credentials, "Salesforce")
        return SalesforceOutcomes(
            cfg, url, token, outcome_field=options.salesforce_outcome_field,
            purpose_field=options.salesforce_purpose_field, session=session, clock=clock,
            seed=seed,
        )
    if kind == "csv":
        return CsvOutcomes(newest_export(options), dict(options.csv.columns or {}))
    raise ConfigError(f"--from: unknown source {kind!r}; choose one of {', '.join(PULL_SOURCES)}")


def pull_from_options(
    kind: str,
    out_dir: str | Path,
    options: PullOptions | None = None,
    *,
    session: requests.Session | None = None,
    clock: Clock | None = None,
    now: Callable[[], pd.Timestamp] | None = None,
) -> PullReport:
    """Build the reader, open the ledger and pull (what ``corecast pull`` runs)."""
    options = options or PullOptions()
    reader = build_reader(kind, options, session=session, clock=clock)
    with Ledger(options.ledger_path or default_ledger_path(), readonly=options.dry_run) as ledger:
        return pull_outcomes(
            reader, out_dir, ledger, dry_run=options.dry_run, overlap_s=options.overlap_s,
            now=now,
        )
