"""Salesforce sink: Bulk API 2.0 upsert jobs, one job per chunk of records.

For each chunk (default 10,000 records) the sink:

1. creates an ingest job — ``POST /services/data/vXX.X/jobs/ingest`` with ``operation: upsert``,
   the object (default ``Contact``) and ``externalIdFieldName`` (default
   ``Corecast_Member_Id__c``);
2. uploads the CSV once — ``PUT .../jobs/ingest/{id}/batches`` (a job accepts one upload; if
   the upload fails the job is aborted and the chunk goes to one fresh job);
3. closes it — ``PATCH .../jobs/ingest/{id}`` with ``{"state": "UploadComplete"}``;
4. polls ``GET .../jobs/ingest/{id}`` until ``JobComplete``, ``Failed`` or ``Aborted``;
5. reads ``successfulResults`` (``sf__Id``), ``failedResults`` (``sf__Error``) and, for jobs
   that did not complete, ``unprocessedrecords``, and records the outcome of every member.

Missing values are sent as ``#N/A`` (clears the field). The fields must exist on the object
(an administrator creates them; see the documentation for the list). Upserts are idempotent,
so a chunk sent again after a crash leaves the same values. The access token comes from
``CORECAST_SALESFORCE_TOKEN`` and the instance URL from the configuration or
``CORECAST_SALESFORCE_INSTANCE_URL``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
import requests

from features.errors import ConfigError, CrmError, crm_error_for_status
from serving.crm.base import BatchOutcome, HttpSinkMixin
from serving.crm.http import ApiClient, PushCancelled, RetryPolicy, Secret, short_body
from serving.crm.ratelimit import Clock
from serving.crm.records import (
    DEFAULT_SALESFORCE_FIELDS,
    DEFAULT_VOLATILE_FIELDS,
    MEMBER_KEY,
    RECORD_KEY,
    columns_of_fields,
    render_field_strings,
    resolve_mapping,
    validate_volatile_fields,
)

__all__ = [
    "SALESFORCE_TOKEN_ENV",
    "SALESFORCE_INSTANCE_ENV",
    "SalesforceConfig",
    "SalesforceSink",
]

SALESFORCE_TOKEN_ENV = "CORECAST_SALESFORCE_TOKEN"
SALESFORCE_INSTANCE_ENV = "CORECAST_SALESFORCE_INSTANCE_URL"
FIELD_NAME = r"[A-Za-z][A-Za-z0-9_]{0,79}"
NULL_TOKEN = "#N/A"
TERMINAL_STATES = ("JobComplete", "Failed", "Aborted")


@dataclass(frozen=True)
class SalesforceConfig:
    """Settings of the Salesforce sink.

    Attributes:
        instance_url: Your org's instance URL (scheme and host); when ``None`` it is read from
            ``instance_url_env``.
        instance_url_env: Environment variable with the instance URL.
        token_env: Environment variable holding the OAuth access token.
        api_version: REST API version, e.g. ``v62.0``.
        object_name: sObject to upsert (``Contact``).
        external_id_field: External id field matching ``member_id``.
        fields: Overrides of the field → Salesforce field mapping (``None`` drops a field).
        job_size: Records per ingest job.
        poll_interval_s: First wait between job status checks (grows x1.5 per check).
        poll_max_interval_s: Longest wait between checks.
        poll_timeout_s: Give up waiting for a job after this long (records stay pending).
        workers: Jobs in flight at once.
        retry: Retry, backoff and timeout settings.
        name: Ledger key override (default ``salesforce:<url>:<object>:<external id>``).
    """

    instance_url: str | None = None
    instance_url_env: str = SALESFORCE_INSTANCE_ENV
    token_env: str = SALESFORCE_TOKEN_ENV
    api_version: str = "v62.0"
    object_name: str = "Contact"
    external_id_field: str = "Corecast_Member_Id__c"
    fields: Mapping[str, str | None] = field(default_factory=dict)
    job_size: int = 10_000
    poll_interval_s: float = 2.0
    poll_max_interval_s: float = 15.0
    poll_timeout_s: float = 1800.0
    workers: int = 1
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    name: str | None = None

    def __post_init__(self) -> None:
        if self.job_size < 1 or self.workers < 1:
            raise ConfigError("Salesforce job_size and workers must be >= 1")
        if not self.api_version.startswith("v"):
            raise ConfigError(f"Salesforce api_version looks like v62.0, got {self.api_version!r}")


class SalesforceSink(HttpSinkMixin):
    """Push predictions to Salesforce with Bulk API 2.0 upsert jobs (see module docstring).

    Args:
        config: Sink settings.
        instance_url: Resolved instance URL.
        token: The access token (``None`` only for dry runs).
        session: HTTP session (a new one when ``None``).
        clock: Time source for polling and backoff.
        seed: Seed of the backoff jitter.
        volatile_fields: Fields that change on every scoring run and do not count as a change
            (see :data:`~serving.crm.records.DEFAULT_VOLATILE_FIELDS`); still sent.

    Raises:
        ConfigError: Invalid instance URL, field mapping or volatile field.
    """

    kind = "salesforce"

    def __init__(
        self,
        config: SalesforceConfig,
        instance_url: str,
        token: Secret | None,
        *,
        session: requests.Session | None = None,
        clock: Clock | None = None,
        seed: int | None = None,
        volatile_fields: Sequence[str] = DEFAULT_VOLATILE_FIELDS,
    ) -> None:
        if not instance_url.startswith(("http://", "https://")):
            raise ConfigError(f"Salesforce instance URL must be http(s), got {instance_url!r}")
        self.config = config
        defaults = dict(DEFAULT_SALESFORCE_FIELDS, member_id=config.external_id_field)
        self.mapping = resolve_mapping(defaults, config.fields, FIELD_NAME, "Salesforce field")
        if self.mapping.get("member_id") != config.external_id_field:
            raise ConfigError(
                f"Salesforce: the member_id field must map to the external id field "
                f"{config.external_id_field!r}"
            )
        self.volatile_fields = validate_volatile_fields(volatile_fields)
        self.volatile_columns = columns_of_fields(self.mapping, self.volatile_fields)
        self.instance_url = instance_url.rstrip("/")
        self.key = config.name or (
            f"salesforce:{self.instance_url}:{config.object_name}:{config.external_id_field}"
        )
        self.setup_fingerprint = None
        self.batch_size = config.job_size
        self.workers = config.workers
        self.clock = clock or Clock()
        self.client = ApiClient(
            session or requests.Session(),
            f"{self.instance_url}/services/data/{config.api_version}/jobs/ingest",
            token=token,
            policy=config.retry,
            clock=self.clock,
            service="Salesforce",
            seed=seed,
        )
        self.jobs: list[str] = []

    def __repr__(self) -> str:
        return f"SalesforceSink(key={self.key!r}, token=***)"


    def render(self, predictions: pd.DataFrame) -> pd.DataFrame:
        """Render one CSV row per member; missing values become ``#N/A``."""
        fields = render_field_strings(predictions)
        out = pd.DataFrame({
            MEMBER_KEY: predictions["member_id"].astype("str"),
            RECORD_KEY: predictions["member_id"].astype("str"),
        })
        for name, column in self.mapping.items():
            out[column] = fields[name].fillna(NULL_TOKEN)
        return out

    def reject_reasons(self, rendered: pd.DataFrame) -> pd.Series:
        """Nothing is refused locally: every member has an external id."""
        return pd.Series(pd.NA, index=rendered.index, dtype="str")

    def prepare(self) -> None:
        """Nothing to set up: the fields are created by a Salesforce administrator."""

    def _error(self, what: str, response: requests.Response) -> CrmError:
        hint = ""
        if response.status_code == 401:
            hint = f" The token in {self.config.token_env} is invalid or expired; get a new one."
        return crm_error_for_status(
            response.status_code,
            f"Salesforce: {what} failed with HTTP {response.status_code}: "
            f"{self.client.redact(short_body(response))}.{hint}",
        )

    def _abort(self, job_id: str) -> None:
        self.client.request("PATCH", f"/{job_id}", json_body={"state": "Aborted"})

    def _create_and_upload(self, csv_text: str) -> str:
        """Create a job and upload the CSV once; on a failed upload abort and try one new job."""
        body = {
            "object": self.config.object_name,
            "externalIdFieldName": self.config.external_id_field,
            "contentType": "CSV",
            "operation": "upsert",
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
        }
        problem = None
        for _ in range(2):
            created = self.client.request("POST", "/", json_body=body)
            if created.status_code not in (200, 201):
                raise self._error("creating an ingest job", created)
            job_id = str(created.json()["id"])
            self.jobs.append(job_id)
            try:
                put = self.client.request(
                    "PUT",
                    f"/{job_id}/batches",
                    data=csv_text.encode("utf-8"),
                    headers={"Content-Type": "text/csv"},
                )
            except PushCancelled:
                raise
            except CrmError as exc:  # retries exhausted: this job is spoiled, try a fresh one
                problem = exc
            else:
                if put.status_code == 201:
                    return job_id
                problem = self._error(f"uploading data to job {job_id}", put)
            self._abort(job_id)
        raise problem

    def _wait(self, job_id: str) -> dict:
        """Poll a job until it reaches a terminal state."""
        waited = 0.0
        interval = self.config.poll_interval_s
        while True:
            got = self.client.request("GET", f"/{job_id}")
            if got.status_code != 200:
                raise self._error(f"reading job {job_id}", got)
            info = got.json()
            if info.get("state") in TERMINAL_STATES:
                return info
            if waited >= self.config.poll_timeout_s:
                raise CrmError(
                    f"Salesforce: job {job_id} is still {info.get('state')} after "
                    f"{waited:.0f} s; its records stay pending — re-run the push later"
                )
            self.clock.sleep(interval)
            waited += interval
            interval = min(self.config.poll_max_interval_s, interval * 1.5)

    def _results(self, job_id: str, which: str) -> pd.DataFrame:
        got = self.client.request("GET", f"/{job_id}/{which}/")
        if got.status_code != 200:
            raise self._error(f"reading {which} of job {job_id}", got)
        if not got.text.strip():
            return pd.DataFrame(columns=[self.config.external_id_field])
        return pd.read_csv(io.StringIO(got.text), dtype="str", keep_default_na=False)

    def send_batch(self, batch: pd.DataFrame) -> BatchOutcome:
        """Run one ingest job for the batch and record each member's result."""
        members = batch[MEMBER_KEY].to_numpy(dtype=object)
        csv_text = batch.drop(columns=[MEMBER_KEY, RECORD_KEY]).to_csv(
            index=False, lineterminator="\n"
        )
        job_id = self._create_and_upload(csv_text)
        closed = self.client.request("PATCH", f"/{job_id}", json_body={"state": "UploadComplete"})
        if closed.status_code != 200:
            raise self._error(f"closing job {job_id}", closed)
        info = self._wait(job_id)
        state = info.get("state")
        ext = self.config.external_id_field
        good = self._results(job_id, "successfulResults")
        bad = self._results(job_id, "failedResults")
        index = pd.Index(members)
        reason = pd.Series(None, index=index, dtype="object")
        crm = pd.Series(None, index=index, dtype="object")
        status = pd.Series("failed", index=index, dtype="object")
        if len(good):
            ok = good[good[ext].isin(members)]
            status.loc[ok[ext].to_numpy()] = "sent"
            if "sf__Id" in ok.columns:
                crm.loc[ok[ext].to_numpy()] = ok["sf__Id"].to_numpy()
        if len(bad):
            ko = bad[bad[ext].isin(members)]
            if "sf__Error" in ko.columns:
                reason.loc[ko[ext].to_numpy()] = ko["sf__Error"].to_numpy()
            else:
                reason.loc[ko[ext].to_numpy()] = "failed (no sf__Error in the results)"
        if state != "JobComplete":
            left = self._results(job_id, "unprocessedrecords")
            message = info.get("errorMessage") or "no error message"
            if len(left):
                todo = left[left[ext].isin(members)][ext].to_numpy()
                reason.loc[todo] = f"not processed: job {state}: {message}"
        missing = (status == "failed") & reason.isna()
        reason[missing] = f"no result for this record in job {job_id} ({state})"
        reason = self.client.redact_many(reason.where(status == "failed"))
        return BatchOutcome(
            members,
            status.to_numpy(dtype=object),
            reason.where(reason.notna(), None).to_numpy(dtype=object),
            crm.to_numpy(dtype=object),
        )
