"""Webhook sink: JSON batches POSTed to a URL, signed with Standard Webhooks headers.

Each batch is one message::

    {"type": "corecast.predictions.batch", "timestamp": "2024-05-06T07:00:00Z",
     "data": {"batch_id": "msg_…", "count": 2, "records": [{"member_id": "m1", …}, …]}}

with the headers ``webhook-id`` (stable for the same records and payloads — volatile fields
included — so a batch re-sent after a crash or a timeout carries the same id and the receiver can
drop the duplicate), ``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>``
computed by the ``standardwebhooks`` package from the ``whsec_…`` secret in
``CORECAST_WEBHOOK_SECRET``). Any ``2xx`` answer confirms the whole batch; ``429`` and ``5xx``
are retried; ``401``/``403``/``410`` stop the push; other answers mark the batch failed. The URL
may itself hold a key, so messages show only its scheme and host.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pandas as pd
import requests
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from features.errors import ConfigError, CrmError, CrmRefused
from serving.columns import PUSH_COLUMNS
from serving.crm.base import BatchOutcome, HttpSinkMixin
from serving.crm.http import ApiClient, RetryPolicy, Secret, short_body
from serving.crm.ratelimit import Clock
from serving.crm.records import (
    DEFAULT_VOLATILE_FIELDS,
    MEMBER_KEY,
    RECORD_KEY,
    SCORE_DECIMALS,
    columns_of_fields,
    hash_payloads,
    validate_volatile_fields,
)

__all__ = [
    "WEBHOOK_SECRET_ENV",
    "WEBHOOK_URL_ENV",
    "WEBHOOK_RECORD_FIELDS",
    "WEBHOOK_FIELD_COLUMNS",
    "WebhookConfig",
    "WebhookSink",
    "webhook_signer",
]

WEBHOOK_SECRET_ENV = "CORECAST_WEBHOOK_SECRET"
WEBHOOK_URL_ENV = "CORECAST_WEBHOOK_URL"
#: Fields of each webhook record: the whole predictions contract.
WEBHOOK_RECORD_FIELDS = list(PUSH_COLUMNS)
#: Record fields holding each canonical field (``model_versions`` is two fields here).
WEBHOOK_FIELD_COLUMNS: dict[str, tuple[str, ...]] = {
    **{name: (name,) for name in WEBHOOK_RECORD_FIELDS},
    "model_versions": ("readiness_model_version", "disengagement_model_version"),
}


@dataclass(frozen=True)
class WebhookConfig:
    """Settings of the webhook sink.

    Attributes:
        url: Receiver URL; when ``None`` it is read from ``url_env``.
        url_env: Environment variable with the URL.
        secret_env: Environment variable with the ``whsec_…`` signing secret.
        event_type: ``type`` of every message.
        batch_size: Records per message.
        workers: Messages in flight at once.
        retry: Retry, backoff and timeout settings.
        name: Ledger key override (default ``webhook:<scheme://host>:<digest of the URL>``).
    """

    url: str | None = None
    url_env: str = WEBHOOK_URL_ENV
    secret_env: str = WEBHOOK_SECRET_ENV
    event_type: str = "corecast.predictions.batch"
    batch_size: int = 500
    workers: int = 1
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    name: str | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.workers < 1:
            raise ConfigError("webhook batch_size and workers must be >= 1")


def webhook_signer(secret: Secret) -> Webhook:
    """Build the Standard Webhooks signer for a ``whsec_…`` secret.

    Raises:
        ConfigError: The secret is not ``whsec_`` followed by base64 (the value is not shown).
    """
    text = secret.reveal()
    body = text[len("whsec_"):] if text.startswith("whsec_") else text
    try:
        if not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", body):
            raise ValueError("not base64")
        return Webhook(text)
    except (binascii.Error, ValueError, RuntimeError, EmptyWebhookSecretError):
        raise ConfigError(
            f"{WEBHOOK_SECRET_ENV} must look like whsec_<base64 key>; the value given is not"
        ) from None


def _display(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.path.strip("/") else url


class WebhookSink(HttpSinkMixin):
    """POST signed JSON batches to a webhook receiver (see the module docstring).

    Args:
        config: Sink settings.
        url: Resolved receiver URL.
        secret: Signing secret (``None`` only for dry runs).
        session: HTTP session (a new one when ``None``).
        clock: Time source for backoff.
        seed: Seed of the backoff jitter.
        now: Wall-clock source for message timestamps (tests).
        volatile_fields: Fields that change on every scoring run and do not count as a change
            (see :data:`~serving.crm.records.DEFAULT_VOLATILE_FIELDS`); still sent.

    Raises:
        ConfigError: Invalid URL, malformed secret or unknown volatile field.
    """

    kind = "webhook"

    def __init__(
        self,
        config: WebhookConfig,
        url: str,
        secret: Secret | None,
        *,
        session: requests.Session | None = None,
        clock: Clock | None = None,
        seed: int | None = None,
        now: Callable[[], datetime] | None = None,
        volatile_fields: Sequence[str] = DEFAULT_VOLATILE_FIELDS,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError("webhook URL must be an http(s) URL")
        self.config = config
        self.volatile_fields = validate_volatile_fields(volatile_fields)
        self.volatile_columns = columns_of_fields(WEBHOOK_FIELD_COLUMNS, self.volatile_fields)
        self.url = url
        self._secret = secret
        self._signer = webhook_signer(secret) if secret is not None else None
        self._now = now or (lambda: datetime.now(UTC))
        display = _display(url)
        digest = hashlib.sha256(url.encode()).hexdigest()[:12]
        self.key = config.name or f"webhook:{display.removesuffix('/…')}:{digest}"
        self.setup_fingerprint = None
        self.batch_size = config.batch_size
        self.workers = config.workers
        self.client = ApiClient(
            session or requests.Session(),
            url,
            policy=config.retry,
            clock=clock,
            service="Webhook",
            display_url=display,
            seed=seed,
        )

    def __repr__(self) -> str:
        return f"WebhookSink(key={self.key!r}, secret=***)"


    def render(self, predictions: pd.DataFrame) -> pd.DataFrame:
        """Keep typed fields (scores rounded to 4 decimals, times as ISO 8601 UTC text)."""
        out = pd.DataFrame({
            MEMBER_KEY: predictions["member_id"].astype("str"),
            RECORD_KEY: predictions["member_id"].astype("str"),
        })
        for column in WEBHOOK_RECORD_FIELDS:
            values = predictions[column]
            if column in ("readiness_score", "disengagement_score"):
                values = values.round(SCORE_DECIMALS)
            elif column in ("as_of", "scored_at"):
                values = values.dt.strftime("%Y-%m-%dT%H:%M:%SZ").where(values.notna())
            out[column] = values
        return out

    def reject_reasons(self, rendered: pd.DataFrame) -> pd.Series:
        """Nothing is refused locally."""
        return pd.Series(pd.NA, index=rendered.index, dtype="str")

    def prepare(self) -> None:
        """Nothing to set up."""

    def message_id(self, batch: pd.DataFrame) -> str:
        """Return the idempotency key of a batch: a digest of its members and whole payloads.

        Unlike the ledger's change fingerprint, the digest covers the volatile fields too: a
        batch re-sent with new values of them (a ``full`` push after re-scoring) is a new message
        the receiver must not drop as a duplicate, while a batch re-sent as it was (after a
        timeout or a crash) keeps its id.
        """
        payload = batch.drop(columns=[MEMBER_KEY, RECORD_KEY])
        fingerprint = batch[MEMBER_KEY] + ":" + hash_payloads(payload)
        digest = hashlib.sha256((self.key + "\n" + "\n".join(fingerprint)).encode())
        return "msg_" + digest.hexdigest()[:32]

    def send_batch(self, batch: pd.DataFrame) -> BatchOutcome:
        """POST one signed message; a 2xx answer confirms every record in it."""
        if self._signer is None:
            raise CrmError(f"Webhook: no signing secret ({self.config.secret_env}); cannot send")
        members = batch[MEMBER_KEY].to_numpy(dtype=object)
        msg_id = self.message_id(batch)
        records = batch.drop(columns=[MEMBER_KEY, RECORD_KEY]).to_json(orient="records")
        stamp = self._now().strftime("%Y-%m-%dT%H:%M:%SZ")
        body = (
            f'{{"type":{json.dumps(self.config.event_type)},"timestamp":{json.dumps(stamp)},'
            f'"data":{{"batch_id":{json.dumps(msg_id)},"count":{len(batch)},'
            f'"records":{records}}}}}'
        )
        signer = self._signer

        def headers() -> dict[str, str]:
            when = self._now()
            return {
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(when.timestamp())),
                "webhook-signature": signer.sign(msg_id, when, body),
            }

        response = self.client.request(
            "POST",
            "",
            data=body.encode("utf-8"),
            headers={"Content-Type": "application/json"},
            prepare_headers=headers,
        )
        status = response.status_code
        if 200 <= status < 300:
            return BatchOutcome.all_sent(members)
        text = redact_secret(self.client.redact(short_body(response)), self._secret)
        if status in (401, 403, 410):
            raise CrmRefused(
                f"Webhook: the receiver refused the message with HTTP {status}: {text}. Check "
                f"the URL and that the receiver uses the secret in {self.config.secret_env}."
            )
        return BatchOutcome.all_failed(members, f"HTTP {status}: {text}")


def redact_secret(text: str, secret: Secret | None) -> str:
    """Mask the signing secret (and its key part without the ``whsec_`` prefix)."""
    if secret is None:
        return text
    value = secret.reveal()
    for part in (value, value.removeprefix("whsec_")):
        if part:
            text = text.replace(part, "***")
    return text
