"""HubSpot sink: contacts batch upsert with property set-up, rate limiting and per-record results.

Endpoints used (CRM v3):

- ``GET/POST /crm/v3/properties/contacts/groups[/{name}]``: the ``corecast`` property group;
- ``GET/POST /crm/v3/properties/contacts``: the corecast properties (created when missing);
- ``POST /crm/v3/objects/contacts/batch/upsert``: at most 100 inputs per call, each
  ``{"idProperty", "id", "objectWriteTraceId", "properties"}`` with string values only.

Records are identified by ``idProperty`` — ``email`` by default, or a unique property such as
``corecast_member_id``. With ``email``, members without an email (or sharing one with another
member) are refused before sending and land in the dead-letter list. A ``207`` answer is read per
record: ``objectWriteTraceId`` (set to the member id) ties each result and each error back to a
member. ``429`` answers wait for ``Retry-After`` when given, otherwise follow ``policyName``:
``TEN_SECONDLY_ROLLING`` waits for the rolling window, ``DAILY`` stops the push (records stay
pending). The token is read from ``CORECAST_HUBSPOT_TOKEN`` and only ever sent as a header.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import requests

from features.errors import ConfigError, CrmError, CrmRefused, crm_error_for_status
from features.tables import OUTREACH_OUTCOMES, OUTREACH_PURPOSES
from serving.crm.base import BatchOutcome, HttpSinkMixin
from serving.crm.http import ApiClient, RetryPolicy, Secret, short_body
from serving.crm.ratelimit import Clock, SlidingWindowLimiter
from serving.crm.records import (
    CRM_FIELDS,
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
    "DEFAULT_HUBSPOT_BASE_URL",
    "HUBSPOT_TOKEN_ENV",
    "HubSpotConfig",
    "HubSpotSink",
    "UPSERT_PATH",
    "PROPERTIES_PATH",
    "GROUPS_PATH",
    "OUTREACH_OUTCOME_PROPERTY",
    "OUTREACH_AT_PROPERTY",
    "OUTREACH_PURPOSE_PROPERTY",
    "outreach_property_bodies",
]

DEFAULT_HUBSPOT_BASE_URL = "https://api.hubapi.com"
HUBSPOT_TOKEN_ENV = "CORECAST_HUBSPOT_TOKEN"
UPSERT_PATH = "/crm/v3/objects/contacts/batch/upsert"
PROPERTIES_PATH = "/crm/v3/properties/contacts"
GROUPS_PATH = "/crm/v3/properties/contacts/groups"
MAX_BATCH = 100
PROPERTY_NAME = r"[a-z][a-z0-9_]{0,99}"
OUTREACH_OUTCOME_PROPERTY = "corecast_outreach_outcome"
OUTREACH_AT_PROPERTY = "corecast_outreach_at"
OUTREACH_PURPOSE_PROPERTY = "corecast_outreach_purpose"


def _options(values: Sequence[str]) -> list[dict]:
    return [
        {"label": v.replace("_", " ").capitalize(), "value": v, "displayOrder": i}
        for i, v in enumerate(values)
    ]


def outreach_property_bodies(group_name: str) -> list[dict]:
    """The contact properties a community manager fills after contacting a member, read back
    by ``corecast pull``: the outcome (enumeration), the contact date and, optionally, the
    purpose (enumeration; when empty the pull derives it from the segment)."""
    return [
        {"name": OUTREACH_OUTCOME_PROPERTY, "label": "Corecast outreach outcome",
         "type": "enumeration", "fieldType": "select", "groupName": group_name,
         "options": _options(OUTREACH_OUTCOMES),
         "description": "What came of the last contact about corecast's suggestion."},
        {"name": OUTREACH_AT_PROPERTY, "label": "Corecast outreach date", "type": "date",
         "fieldType": "date", "groupName": group_name,
         "description": "When the member was contacted."},
        {"name": OUTREACH_PURPOSE_PROPERTY, "label": "Corecast outreach purpose",
         "type": "enumeration", "fieldType": "select", "groupName": group_name,
         "options": _options(OUTREACH_PURPOSES),
         "description": "Why the member was contacted (empty: taken from the segment)."},
    ]


@dataclass(frozen=True)
class HubSpotConfig:
    """Settings of the HubSpot sink.

    Attributes:
        base_url: API base URL (the public HubSpot API by default; a local fake in tests).
        token_env: Environment variable holding the private-app access token.
        id_property: Contact property that identifies records: ``email`` or the (unique)
            property the ``member_id`` field maps to, e.g. ``corecast_member_id``.
        properties: Overrides of the field → property mapping (``None`` drops a field).
        group_name: Property group for the corecast properties.
        group_label: Label of that group.
        create_properties: Create the group and missing properties before the first batch.
        batch_size: Inputs per upsert call (1-100).
        rate_limit_calls: Client-side limit: requests per window (all workers together).
        rate_limit_window_s: Length of the rolling window in seconds.
        workers: Batches in flight at once.
        retry: Retry, backoff and timeout settings.
        name: Ledger key override (default ``hubspot:<base_url>:contacts:<id_property>``).
    """

    base_url: str = DEFAULT_HUBSPOT_BASE_URL
    token_env: str = HUBSPOT_TOKEN_ENV
    id_property: str = "email"
    properties: Mapping[str, str | None] = field(default_factory=dict)
    group_name: str = "corecast"
    group_label: str = "Corecast"
    create_properties: bool = True
    batch_size: int = MAX_BATCH
    rate_limit_calls: int = 190
    rate_limit_window_s: float = 10.0
    workers: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    name: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ConfigError(f"HubSpot batch_size must be 1-{MAX_BATCH}, got {self.batch_size}")
        if self.workers < 1:
            raise ConfigError(f"HubSpot workers must be >= 1, got {self.workers}")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"HubSpot base_url must be an http(s) URL, got {self.base_url!r}")


class HubSpotSink(HttpSinkMixin):
    """Push predictions to HubSpot contacts (see the module docstring).

    Args:
        config: Sink settings.
        token: The access token (``None`` only for dry runs, which never send).
        session: HTTP session to use (a new one when ``None``).
        clock: Time source for the rate limiter and backoff (tests inject a fake one).
        seed: Seed of the backoff jitter.
        volatile_fields: Fields that change on every scoring run and do not count as a change
            (see :data:`~serving.crm.records.DEFAULT_VOLATILE_FIELDS`); still sent.

    Raises:
        ConfigError: Invalid property mapping, id property or volatile field.
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
        volatile_fields: Sequence[str] = DEFAULT_VOLATILE_FIELDS,
    ) -> None:
        self.config = config
        self.mapping = resolve_mapping(
            DEFAULT_HUBSPOT_PROPERTIES, config.properties, PROPERTY_NAME, "HubSpot property"
        )
        if config.id_property != "email" and config.id_property != self.mapping.get("member_id"):
            raise ConfigError(
                f"HubSpot id_property {config.id_property!r}: use 'email' or the property the "
                f"member_id field maps to ({self.mapping.get('member_id')!r})"
            )
        self.volatile_fields = validate_volatile_fields(volatile_fields)
        sent = {name: prop for name, prop in self.mapping.items() if prop != config.id_property}
        self.volatile_columns = columns_of_fields(sent, self.volatile_fields)
        self.key = config.name or (
            f"hubspot:{config.base_url.rstrip('/')}:contacts:{config.id_property}"
        )
        self.setup_fingerprint = hashlib.sha256(
            json.dumps(
                [sorted(self.mapping.items()), config.id_property, config.group_name,
                 config.create_properties, "outreach-1"]
            ).encode()
        ).hexdigest()[:16]
        self._heal_lock = threading.Lock()
        self._healed = False
        self.batch_size = config.batch_size
        self.workers = config.workers
        clock = clock or Clock()
        self.limiter = SlidingWindowLimiter(
            config.rate_limit_calls, config.rate_limit_window_s, clock
        )
        self._token = token
        self.client = ApiClient(
            session or requests.Session(),
            config.base_url,
            token=token,
            policy=config.retry,
            limiter=self.limiter,
            clock=clock,
            on_rate_limited=self._on_rate_limited,
            service="HubSpot",
            seed=seed,
        )

    def __repr__(self) -> str:
        return f"HubSpotSink(key={self.key!r}, token=***)"


    # -- records -----------------------------------------------------------------------------

    def render(self, predictions: pd.DataFrame) -> pd.DataFrame:
        """Render contact inputs: record id (email or member id) and string properties."""
        fields = render_field_strings(predictions)
        out = pd.DataFrame({MEMBER_KEY: predictions["member_id"].astype("str")})
        if self.config.id_property == "email":
            email = predictions["email"].str.strip().str.lower()
            out[RECORD_KEY] = email.where(email.notna() & (email != ""))
        else:
            out[RECORD_KEY] = predictions["member_id"].astype("str")
        for name, prop in self.mapping.items():
            if prop != self.config.id_property:
                out[prop] = fields[name].fillna("")
        return out

    def reject_reasons(self, rendered: pd.DataFrame) -> pd.Series:
        """Refuse members without a valid email of their own (:func:`email_reject_reasons`)."""
        if self.config.id_property != "email":
            return pd.Series(pd.NA, index=rendered.index, dtype="str")
        return email_reject_reasons(rendered[RECORD_KEY])

    # -- set-up ------------------------------------------------------------------------------

    def _fail(self, what: str, response: requests.Response) -> CrmError:
        status = response.status_code
        hint = ""
        if status == 401:
            hint = (
                f" The token in {self.config.token_env} was refused; create a new private-app "
                "token."
            )
        elif status == 403:
            hint = (
                " The token lacks a scope: it needs crm.objects.contacts.write and "
                "crm.schemas.contacts.write."
            )
        return crm_error_for_status(
            status,
            f"HubSpot: {what} failed with HTTP {status}: "
            f"{self.client.redact(short_body(response))}.{hint}",
        )

    def prepare(self) -> None:
        """Create the property group and any missing corecast contact properties.

        Raises:
            CrmError: The token is refused, a property cannot be created, or the id property is
                not unique.
        """
        cfg = self.config
        if cfg.create_properties:
            got = self.client.request("GET", f"{GROUPS_PATH}/{cfg.group_name}")
            if got.status_code == 404:
                made = self.client.request(
                    "POST",
                    GROUPS_PATH,
                    json_body={"name": cfg.group_name, "label": cfg.group_label,
                               "displayOrder": -1},
                )
                if made.status_code not in (200, 201, 409):
                    raise self._fail(f"creating property group {cfg.group_name!r}", made)
            elif got.status_code != 200:
                raise self._fail(f"reading property group {cfg.group_name!r}", got)
        listed = self.client.request("GET", PROPERTIES_PATH)
        if listed.status_code != 200:
            raise self._fail("listing contact properties", listed)
        existing = {p.get("name"): p for p in listed.json().get("results", [])}
        specs = {f.name: f for f in CRM_FIELDS}
        missing = {name: prop for name, prop in self.mapping.items() if prop not in existing}
        if missing and not cfg.create_properties:
            raise CrmRefused(
                f"HubSpot: contact properties {', '.join(sorted(missing.values()))} do not exist; "
                "create them or allow create_properties"
            )
        for name, prop in missing.items():
            spec = specs[name]
            body = {
                "name": prop,
                "label": spec.label,
                "type": spec.hubspot_type,
                "fieldType": spec.hubspot_field_type,
                "groupName": cfg.group_name,
                "description": spec.description,
            }
            if prop == cfg.id_property:
                body["hasUniqueValue"] = True
            made = self.client.request("POST", PROPERTIES_PATH, json_body=body)
            if made.status_code not in (200, 201, 409):
                raise self._fail(f"creating contact property {prop!r}", made)
            existing[prop] = body
        if cfg.create_properties:
            self._create_outreach_properties(existing)
        if cfg.id_property != "email" and not existing[cfg.id_property].get("hasUniqueValue"):
            raise CrmRefused(
                f"HubSpot: property {cfg.id_property!r} exists but is not unique, so it cannot "
                "identify contacts; use id_property='email' or a property created with unique "
                "values"
            )

    def _create_outreach_properties(self, existing: Mapping[str, dict]) -> None:
        """Create the outreach properties managers fill (see :func:`outreach_property_bodies`)."""
        for body in outreach_property_bodies(self.config.group_name):
            if body["name"] in existing:
                continue
            made = self.client.request("POST", PROPERTIES_PATH, json_body=body)
            if made.status_code not in (200, 201, 409):
                raise self._fail(f"creating contact property {body['name']!r}", made)

    # -- sending -----------------------------------------------------------------------------

    def _on_rate_limited(
        self, response: requests.Response, retry_after: float | None
    ) -> float | None:
        try:
            policy = str(response.json().get("policyName") or "")
        except ValueError:
            policy = ""
        if policy == "DAILY":
            raise CrmRefused(
                "HubSpot: the account's daily API limit is reached (429, policy DAILY); stopping "
                "the push. Records not yet confirmed stay pending in the ledger — re-run the push "
                "after the limit resets (midnight in the HubSpot account's time zone)."
            )
        if retry_after is not None:
            return retry_after
        if policy == "TEN_SECONDLY_ROLLING":
            interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
            try:
                return float(interval) / 1000.0 if interval else self.config.rate_limit_window_s
            except ValueError:
                return self.config.rate_limit_window_s
        if policy == "SECONDLY":
            return 1.0
        return None  # unknown policy: jittered backoff

    def send_batch(self, batch: pd.DataFrame) -> BatchOutcome:
        """Upsert one batch (at most 100 contacts, unique ids) and read the per-record answer."""
        ids = batch[RECORD_KEY].astype("str").to_numpy(dtype=object)
        members = batch[MEMBER_KEY].to_numpy(dtype=object)
        if len(batch) > MAX_BATCH or len(pd.unique(ids)) != len(ids):
            raise ValueError("HubSpot batch must hold at most 100 records with unique ids")
        props = batch.drop(columns=[MEMBER_KEY, RECORD_KEY]).to_dict("records")
        inputs = [
            {"idProperty": self.config.id_property, "id": i, "objectWriteTraceId": m,
             "properties": p}
            for i, m, p in zip(ids.tolist(), members.tolist(), props, strict=True)
        ]
        response = self.client.request("POST", UPSERT_PATH, json_body={"inputs": inputs})
        status = response.status_code
        if status == 400 and self._missing_property(response):
            # the properties were deleted since the set-up was remembered: set up again, once
            with self._heal_lock:
                if not self._healed:
                    self.prepare()
                    self._healed = True
            response = self.client.request("POST", UPSERT_PATH, json_body={"inputs": inputs})
            status = response.status_code
        if status in (401, 403):
            raise self._fail("batch upsert", response)
        if status not in (200, 201, 207):
            reason = f"HTTP {status}: {self.client.redact(short_body(response))}"
            return BatchOutcome.all_failed(members, reason)
        try:
            body = response.json()
        except ValueError:
            return BatchOutcome.all_failed(members, f"HTTP {status} with a body that is not JSON")
        return self._read_results(body, status, members, ids)

    @staticmethod
    def _missing_property(response: requests.Response) -> bool:
        text = short_body(response, limit=2000)
        return "PROPERTY_DOESNT_EXIST" in text or "does not exist" in text

    def _read_results(
        self, body: dict, status: int, members: np.ndarray, ids: np.ndarray
    ) -> BatchOutcome:
        by_id = dict(zip(ids.tolist(), members.tolist(), strict=True))
        crm_id: dict[str, str] = {}
        for result in body.get("results") or []:
            trace = result.get("objectWriteTraceId")
            if trace is not None:
                crm_id[str(trace)] = str(result.get("id"))
        errors: dict[str, str] = {}
        for error in body.get("errors") or []:
            message = self.client.redact(
                " ".join(str(error.get("message") or error.get("category") or "error").split())
            )[:500]
            context = error.get("context") or {}
            for trace in context.get("objectWriteTraceId") or []:
                errors[str(trace)] = message
            for value in (context.get("ids") or []) + (context.get("id") or []):
                member = by_id.get(str(value)) or by_id.get(str(value).lower())
                if member is not None:
                    errors[member] = message
        member_series = pd.Series(members, dtype=object)
        crm = member_series.map(crm_id)
        error = member_series.map(errors)
        found = crm.notna().to_numpy()
        failed = error.notna().to_numpy()
        statuses = np.full(len(members), "failed", dtype=object)
        statuses[found & ~failed] = "sent"
        if status != 207 and not crm_id and not errors:
            statuses[:] = "sent"  # a plain 200 without traces: HubSpot accepted the whole batch
        reasons = error.where(error.notna(), None).to_numpy(dtype=object)
        unknown = (statuses == "failed") & ~failed
        reasons[unknown] = f"no per-record result in the HTTP {status} answer"
        reasons[statuses == "sent"] = None
        return BatchOutcome(members, statuses, reasons, crm.where(crm.notna(), None).to_numpy())
