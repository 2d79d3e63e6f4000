"""Read outreach outcomes back from a CRM: HubSpot contacts, Salesforce tasks, a filled-in CSV.

Each reader returns the contacts whose outcome changed in a time window as raw ``outreach``
rows (canonical column names, text values) plus the CRM's modification time of each row; the
pull engine (:mod:`serving.crm.pull`) settles the purpose, validates, merges and moves the
cursor.

- **HubSpot**: ``POST /crm/v3/objects/contacts/search`` for contacts that have
  ``corecast_outreach_outcome`` and whose ``hs_lastmodifieddate`` lies in the window, sorted by
  it, 100 per page (``after`` token). A query may page through at most 10,000 results, so a
  window holding more is split in two (recursively) before paging. Searches have their own limit
  of 4 requests per second (a client-side limiter); ``429`` answers are handled as for pushes.
  If the number of matches changes while paging (a contact was edited and left the window,
  shifting the pages), the window is read again, so no contact is skipped.
- **Salesforce**: SOQL on ``Task`` (``WhoId`` = the contact, ``Status``, a custom outcome field)
  filtered on ``LastModifiedDate`` and paged with ``nextRecordsUrl``; the contacts' member ids
  (and segments) come from a second SOQL query on ``Contact``.
- **CSV**: the file a ``--to csv`` push wrote, with the outreach columns a manager filled in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import requests

from features.contract import validate_outreach
from features.errors import ConfigError, ContractError, CrmError, crm_error_for_status
from features.tables import OUTREACH_COLUMNS
from serving.crm.csvsink import OUTREACH_CSV_COLUMNS
from serving.crm.http import ApiClient, Secret, short_body
from serving.crm.hubspot import (
    OUTREACH_AT_PROPERTY,
    OUTREACH_OUTCOME_PROPERTY,
    OUTREACH_PURPOSE_PROPERTY,
    HubSpotConfig,
    HubSpotSink,
)
from serving.crm.ratelimit import Clock, SlidingWindowLimiter
from serving.crm.records import DEFAULT_HUBSPOT_PROPERTIES, DEFAULT_SALESFORCE_FIELDS
from serving.crm.salesforce import SalesforceConfig

__all__ = [
    "Outcomes",
    "SEGMENT_PURPOSES",
    "HubSpotOutcomes",
    "SalesforceOutcomes",
    "CsvOutcomes",
    "SEARCH_PATH",
    "MAX_SEARCH_RESULTS",
    "MODIFIED",
    "SEGMENT_PURPOSE",
]

SEARCH_PATH = "/crm/v3/objects/contacts/search"
MAX_SEARCH_RESULTS = 10_000
SEARCH_PAGE = 100
SEARCH_RATE = 4  # requests per second
MAX_REREADS = 5
MODIFIED = "modified_at"
"""Extra column of the rows a reader returns: the CRM's modification time of the row."""
SEGMENT_PURPOSE = "segment_purpose"
"""Extra column of the rows a reader returns: the purpose the pushed segment implies."""

#: The purpose of a contact when the CRM does not say: the segment corecast pushed.
SEGMENT_PURPOSES = {
    "ready-now": "readiness",
    "nurture": "readiness",
    "at-risk": "retention",
    "ambassador-at-risk": "retention",
}


@dataclass
class Outcomes:
    """What a reader found in one window.

    Attributes:
        rows: Raw outreach rows (``OUTREACH_COLUMNS`` as text, ``purpose`` as the CRM gives
            it, NA when it gives none) plus ``modified_at`` (tz-naive UTC) and
            ``segment_purpose`` (what the pushed segment implies, NA when nothing).
        skipped: Records that cannot become a row, by reason.
        latest: The latest modification time seen (``None`` when nothing was read).
        positions: For a CSV file, each row's data-row position in the file.
    """

    rows: pd.DataFrame
    skipped: dict[str, int] = field(default_factory=dict)
    latest: pd.Timestamp | None = None
    positions: list[int] | None = None


def _utc(values: pd.Series) -> pd.Series:
    """Text timestamps (ISO 8601 or epoch milliseconds) as tz-naive UTC (NaT when empty)."""
    text = values.astype("str").str.strip()
    millis = text.str.fullmatch(r"\d{10,}").fillna(False)
    out = pd.to_datetime(text.where(~millis & (text != "")), utc=True, format="ISO8601",
                         errors="coerce")
    if millis.any():
        out[millis] = pd.to_datetime(text[millis].astype("int64"), unit="ms", utc=True)
    return out.dt.tz_localize(None)


def _iso(values: pd.Series) -> pd.Series:
    """Timestamps as ISO text for the contract's parser (NA stays NA)."""
    return values.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").where(values.notna())


def _clean(values: pd.Series) -> pd.Series:
    """Values as stripped text with empty ones as NA."""
    text = values.astype("str").str.strip()
    return text.where(values.notna() & (text != ""))


def _text(frame: pd.DataFrame, column: str | None) -> pd.Series:
    """A column as stripped text with empty values as NA (all NA when absent)."""
    if column is None or column not in frame.columns:
        return pd.Series(pd.NA, index=frame.index, dtype="str")
    return _clean(frame[column])


def _outcome_time(outcome: pd.Series, when: pd.Series, contacted: pd.Series) -> pd.Series:
    """When an outcome was known: ``when`` (not before the contact), none while pending."""
    contact = _utc(contacted.fillna(""))
    known = when.where(when.isna() | contact.isna() | (when >= contact), contact)
    return known.where(outcome.str.lower() != "pending")


def _frame(
    columns: dict[str, pd.Series], modified: pd.Series, segment: pd.Series | None = None
) -> pd.DataFrame:
    frame = pd.DataFrame({name: columns.get(name) for name in OUTREACH_COLUMNS})
    frame[MODIFIED] = modified
    implied = None if segment is None else segment.str.lower().map(SEGMENT_PURPOSES)
    frame[SEGMENT_PURPOSE] = implied
    return frame


class HubSpotOutcomes:
    """Outcomes from HubSpot contacts through the search API (see the module docstring).

    Args:
        config: HubSpot settings (base URL, property mapping, retries); the member id is read
            from the property the ``member_id`` field maps to.
        token: The access token (``None`` only when nothing is sent).
        session: HTTP session.
        clock: Time source for the limiters and backoff.
        seed: Seed of the backoff jitter.
    """

    kind = "hubspot"

    def __init__(
        self,
        config: HubSpotConfig,
        token: Secret | None,
        *,
        session: requests.Session | None = None,
        clock: Clock | None = None,
        seed: int | None = None,
    ) -> None:
        session = session or requests.Session()
        clock = clock or Clock()
        self.sink = HubSpotSink(config, token, session=session, clock=clock, seed=seed)
        self.member_property = self.sink.mapping.get("member_id")
        if not self.member_property:
            raise ConfigError("pull: HubSpot needs the member_id property to read members back")
        self.segment_property = self.sink.mapping.get("segment")
        self.key = f"hubspot:{config.base_url.rstrip('/')}:contacts"
        self.client = ApiClient(
            session, config.base_url, token=token, policy=config.retry,
            limiter=SlidingWindowLimiter(SEARCH_RATE, 1.0, clock), clock=clock,
            on_rate_limited=self.sink._on_rate_limited, service="HubSpot", seed=seed,
        )

    @property
    def requests_made(self) -> int:
        """Requests sent (set-up and searches)."""
        return self.client.requests_sent + self.sink.client.requests_sent

    def prepare(self, ledger) -> None:
        """Create the outreach properties (once per mapping, remembered in the ledger)."""
        from serving.crm.push import _prepare_once

        _prepare_once(self.sink, ledger)

    def _body(self, start: int, end: int, after: str | None) -> dict:
        props = [self.member_property, OUTREACH_OUTCOME_PROPERTY, OUTREACH_AT_PROPERTY,
                 OUTREACH_PURPOSE_PROPERTY, "hs_lastmodifieddate"]
        if self.segment_property:
            props.append(self.segment_property)
        body = {
            "filterGroups": [{"filters": [
                {"propertyName": OUTREACH_OUTCOME_PROPERTY, "operator": "HAS_PROPERTY"},
                {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(start)},
                {"propertyName": "hs_lastmodifieddate", "operator": "LTE", "value": str(end)},
            ]}],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": props,
            "limit": SEARCH_PAGE,
        }
        if after is not None:
            body["after"] = after
        return body

    def _search(self, start: int, end: int, after: str | None) -> dict:
        response = self.client.request("POST", SEARCH_PATH, json_body=self._body(start, end, after))
        if response.status_code != 200:
            hint = ""
            if response.status_code == 400:
                hint = (" (a first pull without --dry-run creates the outreach properties; the "
                        "token needs crm.objects.contacts.read)")
            raise crm_error_for_status(
                response.status_code,
                f"HubSpot: contact search failed with HTTP {response.status_code}: "
                f"{self.client.redact(short_body(response))}{hint}",
            )
        try:
            return response.json()
        except ValueError:
            raise CrmError(
                "HubSpot: the contact search answered with a body that is not JSON"
            ) from None

    def _window(self, start: int, end: int) -> list[dict]:
        """Every contact of one window; split in two while it holds more than 10,000."""
        for _ in range(MAX_REREADS):
            page = self._search(start, end, None)
            total = int(page.get("total", 0))
            if total > MAX_SEARCH_RESULTS:
                if end <= start:
                    raise CrmError(
                        f"HubSpot: {total} contacts were modified in the same millisecond; "
                        "the search API cannot page through more than 10,000"
                    )
                middle = (start + end) // 2
                return self._window(start, middle) + self._window(middle + 1, end)
            found = list(page.get("results") or [])
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            while after is not None and int(page.get("total", 0)) == total:
                page = self._search(start, end, str(after))
                found.extend(page.get("results") or [])
                after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if int(page.get("total", 0)) == total:
                return found
        raise CrmError(
            "HubSpot: the contacts kept changing while they were read; nothing was written, "
            "run the pull again"
        )

    def read(self, since: pd.Timestamp | None, until: pd.Timestamp) -> Outcomes:
        """The contacts with an outcome modified in ``[since, until]`` (``None``: from the
        beginning)."""
        start = 0 if since is None else int(since.value // 1_000_000)
        results = self._window(max(0, start), int(until.value // 1_000_000))
        props = pd.DataFrame([r.get("properties") or {} for r in results], dtype="str")
        props["__id"] = [str(r.get("id")) for r in results]
        props = props.drop_duplicates("__id", keep="last")
        modified = _utc(_text(props, "hs_lastmodifieddate").fillna(""))
        outcome = _text(props, OUTREACH_OUTCOME_PROPERTY)
        contacted = _iso(_utc(_text(props, OUTREACH_AT_PROPERTY).fillna("")))
        rows = _frame({
            "member_id": _text(props, self.member_property),
            "contacted_at": contacted,
            "purpose": _text(props, OUTREACH_PURPOSE_PROPERTY),
            "outcome": outcome,
            "outcome_at": _iso(_outcome_time(outcome.fillna(""), modified, contacted)),
        }, modified, _text(props, self.segment_property))
        skipped = {
            f"no {self.member_property}": int(rows["member_id"].isna().sum()),
            f"no {OUTREACH_AT_PROPERTY}": int(
                (rows["member_id"].notna() & rows["contacted_at"].isna()).sum()
            ),
        }
        keep = rows["member_id"].notna() & rows["contacted_at"].notna()
        latest = modified.max() if len(modified) and modified.notna().any() else None
        return Outcomes(rows[keep].reset_index(drop=True), skipped, latest)

    def validate(self, frame: pd.DataFrame, outcomes: Outcomes) -> pd.DataFrame:
        """Check the rows against the contract."""
        return validate_outreach(frame, f"HubSpot contacts ({self.key})")


_SF_ID = re.compile(r"^[A-Za-z0-9]{15,18}$")
SOQL_CHUNK = 200


def _soql_time(when: pd.Timestamp) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


class SalesforceOutcomes:
    """Outcomes from Salesforce ``Task`` records through SOQL (see the module docstring).

    Args:
        config: Salesforce settings (API version, external id field, field mapping, retries).
        instance_url: Resolved instance URL.
        token: The access token.
        outcome_field: Custom Task field holding the outcome.
        purpose_field: Custom Task field holding the purpose (empty: from the segment).
        session: HTTP session.
        clock: Time source for backoff.
        seed: Seed of the backoff jitter.
    """

    kind = "salesforce"

    def __init__(
        self,
        config: SalesforceConfig,
        instance_url: str,
        token: Secret | None,
        *,
        outcome_field: str = "Corecast_Outcome__c",
        purpose_field: str = "Corecast_Purpose__c",
        session: requests.Session | None = None,
        clock: Clock | None = None,
        seed: int | None = None,
    ) -> None:
        for name in (outcome_field, purpose_field):
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,79}", name):
                raise ConfigError(f"pull: {name!r} is not a Salesforce field name")
        self.config = config
        self.outcome_field, self.purpose_field = outcome_field, purpose_field
        self.segment_field = dict(DEFAULT_SALESFORCE_FIELDS, **config.fields).get("segment")
        url = instance_url.rstrip("/")
        self.key = f"salesforce:{url}:Task"
        self.prefix = f"/services/data/{config.api_version}"
        self.client = ApiClient(
            session or requests.Session(), url, token=token, policy=config.retry,
            clock=clock, service="Salesforce", seed=seed,
        )

    @property
    def requests_made(self) -> int:
        """Requests sent."""
        return self.client.requests_sent

    def prepare(self, ledger) -> None:
        """Nothing to set up: an administrator creates the Task fields."""

    def _query(self, soql: str) -> list[dict]:
        """Every record of a SOQL query, following ``nextRecordsUrl``."""
        response = self.client.request("GET", f"{self.prefix}/query", params={"q": soql})
        records: list[dict] = []
        while True:
            if response.status_code != 200:
                raise crm_error_for_status(
                    response.status_code,
                    f"Salesforce: SOQL query failed with HTTP {response.status_code}: "
                    f"{self.client.redact(short_body(response))}",
                )
            body = response.json()
            records.extend(body.get("records") or [])
            following = body.get("nextRecordsUrl")
            if body.get("done", True) or not following:
                return records
            if not str(following).startswith(self.prefix + "/query/"):
                raise CrmError(f"Salesforce: unexpected nextRecordsUrl {following!r}")
            response = self.client.request("GET", str(following))

    def _contacts(self, ids: list[str]) -> pd.DataFrame:
        """Member id and segment of the contacts ``ids``."""
        member, segment = self.config.external_id_field, self.segment_field
        wanted = [i for i in dict.fromkeys(ids) if _SF_ID.match(i)]
        fields = ", ".join(["Id", member] + ([segment] if segment else []))
        found: list[dict] = []
        for start in range(0, len(wanted), SOQL_CHUNK):
            chunk = ", ".join(f"'{i}'" for i in wanted[start:start + SOQL_CHUNK])
            found += self._query(f"SELECT {fields} FROM Contact WHERE Id IN ({chunk})")
        frame = pd.DataFrame(found, columns=["Id", member, *([segment] if segment else [])])
        return frame.set_index("Id")

    def read(self, since: pd.Timestamp | None, until: pd.Timestamp) -> Outcomes:
        """The tasks with an outcome modified in ``[since, until]``."""
        where = [f"{self.outcome_field} != null", f"LastModifiedDate <= {_soql_time(until)}"]
        if since is not None:
            where.append(f"LastModifiedDate >= {_soql_time(since)}")
        tasks = pd.DataFrame(self._query(
            f"SELECT Id, WhoId, Status, {self.outcome_field}, {self.purpose_field}, "
            "ActivityDate, CreatedDate, CompletedDateTime, TaskSubtype, OwnerId, "
            f"LastModifiedDate FROM Task WHERE {' AND '.join(where)} "
            "ORDER BY LastModifiedDate, Id"
        ), dtype="object")
        if tasks.empty:
            return Outcomes(_frame({}, pd.Series(dtype="datetime64[ns]")))
        contacts = self._contacts(_text(tasks, "WhoId").dropna().tolist())
        who = _text(tasks, "WhoId")
        member = _clean(who.map(contacts[self.config.external_id_field]))
        segment = _clean(who.map(contacts[self.segment_field]) if self.segment_field else who)
        if not self.segment_field:
            segment[:] = pd.NA
        modified = _utc(_text(tasks, "LastModifiedDate").fillna(""))
        outcome = _text(tasks, self.outcome_field)
        contacted = _text(tasks, "ActivityDate").fillna(_text(tasks, "CreatedDate"))
        done = _utc(_text(tasks, "CompletedDateTime").fillna(""))
        closed = done.where(_text(tasks, "Status").eq("Completed") & done.notna(), modified)
        rows = _frame({
            "member_id": member,
            "contacted_at": contacted,
            "purpose": _text(tasks, self.purpose_field),
            "outcome": outcome,
            "outcome_at": _iso(_outcome_time(outcome.fillna(""), closed, contacted)),
            "channel": _text(tasks, "TaskSubtype").str.lower(),
            "contacted_by": _text(tasks, "OwnerId"),
        }, modified, segment)
        keep = rows["member_id"].notna()
        skipped = {f"no contact with a {self.config.external_id_field}": int((~keep).sum())}
        latest = modified.max() if modified.notna().any() else None
        return Outcomes(rows[keep].reset_index(drop=True), skipped, latest)

    def validate(self, frame: pd.DataFrame, outcomes: Outcomes) -> pd.DataFrame:
        """Check the rows against the contract."""
        return validate_outreach(frame, f"Salesforce tasks ({self.key})")


#: Contract column -> the column of the CSV file a manager fills.
CSV_COLUMNS = {
    "contacted_at": "outreach_at",
    "outcome": "outreach_outcome",
    "purpose": "outreach_purpose",
    "channel": "outreach_channel",
}


class CsvOutcomes:
    """Outcomes from a CSV file a ``--to csv`` push wrote and a manager filled in.

    Rows whose ``outreach_at`` and ``outreach_outcome`` are both empty are not contacts and are
    ignored; every other row must be a valid contact (messages name the line and column).

    Args:
        path: The filled-in file.
        columns: The column mapping of the CSV sink (the member id and segment columns are
            ``corecast_member_id`` and ``corecast_segment`` by default).
    """

    kind = "csv"

    def __init__(self, path: str | Path, columns: dict[str, str | None] | None = None) -> None:
        self.path = Path(path)
        names = dict(DEFAULT_HUBSPOT_PROPERTIES, **(columns or {}))
        self.member_column = names.get("member_id") or "member_id"
        self.segment_column = names.get("segment")
        self.key = f"csv:{self.path.resolve()}"
        self.requests_made = 0

    def prepare(self, ledger) -> None:
        """Nothing to set up."""

    def _load(self) -> pd.DataFrame:
        if not self.path.is_file():
            raise ConfigError(f"--file: {self.path} is not a file")
        try:
            raw = pd.read_csv(self.path, dtype="str", keep_default_na=False, encoding="utf-8-sig")
        except pd.errors.EmptyDataError:
            raise ContractError(
                f"{self.path}: the file is empty; fill the file a push with --to csv writes"
            ) from None
        except UnicodeDecodeError as exc:
            raise ContractError(
                f"{self.path}: not UTF-8 text ({exc}); save it again as CSV UTF-8"
            ) from None
        except (OSError, pd.errors.ParserError) as exc:
            raise ContractError(
                f"{self.path}: cannot be read as comma-separated CSV ({exc}); a spreadsheet "
                "saving with semicolons must save as CSV UTF-8 (comma-delimited)"
            ) from None
        raw.columns = [str(c).strip() for c in raw.columns]
        needed = [self.member_column, "outreach_at", "outreach_outcome"]
        absent = [c for c in needed if c not in raw.columns]
        if absent:
            raise ContractError(
                f"{self.path}: missing column{'s' if len(absent) > 1 else ''} "
                f"{', '.join(absent)}; fill the file a push with --to csv writes (its last "
                f"columns are {', '.join(OUTREACH_CSV_COLUMNS)})"
            )
        return raw

    def read(self, since: pd.Timestamp | None, until: pd.Timestamp) -> Outcomes:
        """Every filled-in row of the file (a manager's file is read whole each time)."""
        raw = self._load()
        member = _text(raw, self.member_column).str.replace(r"^'(?=[=+\-@\t\r])", "", regex=True)
        filled = _text(raw, "outreach_at").notna() | _text(raw, "outreach_outcome").notna()
        modified = pd.Timestamp(self.path.stat().st_mtime_ns, unit="ns")
        rows = _frame({
            "member_id": member,
            "contacted_at": _text(raw, "outreach_at"),
            "purpose": _text(raw, "outreach_purpose"),
            "outcome": _text(raw, "outreach_outcome"),
            "channel": _text(raw, "outreach_channel"),
        }, pd.Series(modified, index=raw.index), _text(raw, self.segment_column))
        positions = np.flatnonzero(filled.to_numpy()).tolist()
        rows = rows[filled.to_numpy()].reset_index(drop=True)
        return Outcomes(rows, {}, None, positions)

    def validate(self, frame: pd.DataFrame, outcomes: Outcomes) -> pd.DataFrame:
        """Check the rows, naming the file's lines and columns."""
        rows = None
        if outcomes.positions is not None:
            kept = frame.index.to_numpy()
            rows = [outcomes.positions[int(i)] for i in kept]
        try:
            return validate_outreach(
                frame.reset_index(drop=True), str(self.path),
                files={"outreach": str(self.path)}, rows=rows,
            )
        except ContractError as exc:
            raise ContractError(_file_columns(str(exc), self.member_column)) from None


def _file_columns(message: str, member_column: str) -> str:
    """A contract message with the file's column names instead of the contract's."""
    names = dict(CSV_COLUMNS, member_id=member_column)
    pattern = r"\b(column|where) (" + "|".join(names) + r")\b"
    return re.sub(pattern, lambda m: f"{m.group(1)} {names[m.group(2)]}", message)
