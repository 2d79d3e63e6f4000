"""The tokens never appear in messages, reprs, logs, the ledger or any file — even when a
server echoes them back."""

from __future__ import annotations

import base64
import logging
import traceback
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.fakes.data import make_predictions
from benchmarks.fakes.hubspot import FakeHubSpot
from benchmarks.fakes.salesforce import FakeSalesforce
from benchmarks.fakes.server import FakeServer, Fault
from benchmarks.fakes.webhook import FakeWebhookReceiver
from features.errors import CrmError
from serving.crm import (
    HubSpotConfig,
    PushOptions,
    SalesforceConfig,
    WebhookConfig,
    build_sink,
    push_from_file,
    read_dead_letters,
    read_push_status,
)
from serving.crm.http import RetryPolicy

HUBSPOT_TOKEN = "pat-na1-SECRET-7f3a9c1e-token"
SALESFORCE_TOKEN = "00D5g000SECRET!AQ4AQ-sf-token"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"SECRET-webhook-key-0123456789ab").decode()
UPSERT = "/crm/v3/objects/contacts/batch/upsert"
FAST = RetryPolicy(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.02, read_timeout_s=0.3)


def everything_written(root: Path) -> bytes:
    """Every byte of every file under ``root`` (ledger, WAL, exports, lock files)."""
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


@pytest.fixture()
def predictions_file(tmp_path):
    path = tmp_path / "predictions.parquet"
    make_predictions(250, email_missing_every=10).to_parquet(path)
    return path


def test_hubspot_token_never_leaks(monkeypatch, tmp_path, predictions_file, caplog):
    caplog.set_level(logging.DEBUG)  # urllib3 and corecast at their chattiest
    monkeypatch.setenv("CORECAST_HUBSPOT_TOKEN", HUBSPOT_TOKEN)
    home = tmp_path / "corecast-home"
    app = FakeHubSpot(HUBSPOT_TOKEN, leak_auth_in_errors=True)
    texts = []
    with FakeServer(app) as server:
        options = PushOptions(hubspot=HubSpotConfig(base_url=server.url, retry=FAST, workers=2))
        # 1. a server that echoes the Authorization header in its 500 answers
        app.faults.add(Fault("status", status=500, path=UPSERT), times=4)
        with pytest.raises(CrmError, match="HTTP 500") as outage:
            push_from_file(predictions_file, "hubspot", options)
        assert "Bearer ***" in str(outage.value)  # the echo was there, and masked
        texts.append(describe(outage.value))
        # 2. timeouts until the retries run out
        app.faults.add(Fault("delay", seconds=0.5, path=UPSERT), times=4)
        with pytest.raises(CrmError, match="timed out") as slow:
            push_from_file(predictions_file, "hubspot", options)
        texts.append(describe(slow.value))
        # 3. the daily quota (a full push needs 3 upserts; the quota allows 1 more request)
        app.daily_limit = app.request_count + 1
        with pytest.raises(CrmError, match="daily") as daily:
            push_from_file(predictions_file, "hubspot", replace(options, full=True))
        texts.append(describe(daily.value))
        # 4. a refused token (the refused one must not leak either)
        monkeypatch.setenv("CORECAST_HUBSPOT_TOKEN", HUBSPOT_TOKEN + "-old")
        with pytest.raises(CrmError, match="refused") as refused:
            push_from_file(predictions_file, "hubspot", options)
        texts.append(describe(refused.value))
        # 5. a successful push, then status, dead letters, report and sink reprs
        monkeypatch.setenv("CORECAST_HUBSPOT_TOKEN", HUBSPOT_TOKEN)
        app.daily_limit = None
        report = push_from_file(predictions_file, "hubspot", options)
        sink = build_sink("hubspot", options)
        texts += [repr(report), report.summary(), repr(sink), repr(sink.client), repr(options),
                  read_push_status().to_string(), read_dead_letters().to_string()]
    status = read_push_status().set_index("status")["records"].to_dict()
    assert status == {"sent": 225, "failed": 25} and report.pending == 0
    texts.append(caplog.text)
    blob = "\n".join(texts)
    for secret in (HUBSPOT_TOKEN, HUBSPOT_TOKEN + "-old"):
        assert secret not in blob
    assert HUBSPOT_TOKEN.encode() not in everything_written(home)
    assert "7f3a9c1e" not in blob  # not even a part of it


def test_salesforce_and_webhook_secrets_never_leak(monkeypatch, tmp_path, predictions_file,
                                                   caplog):
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "corecast-home"
    monkeypatch.setenv("CORECAST_SALESFORCE_TOKEN", SALESFORCE_TOKEN)
    monkeypatch.setenv("CORECAST_WEBHOOK_SECRET", WEBHOOK_SECRET)
    texts = []
    sf_app = FakeSalesforce(SALESFORCE_TOKEN)
    hook_app = FakeWebhookReceiver("whsec_" + base64.b64encode(b"x" * 24).decode())
    with FakeServer(sf_app) as sf, FakeServer(hook_app) as hook:
        options = PushOptions(
            salesforce=SalesforceConfig(instance_url=sf.url, retry=FAST, poll_interval_s=0.01),
            webhook=WebhookConfig(url=hook.url + "/in/SECRET-path-key", retry=FAST),
        )
        sf_app.faults.add(Fault("status", status=503, body=f'{{"echo":"{SALESFORCE_TOKEN}"}}'),
                          times=2)
        with pytest.raises(CrmError, match="HTTP 503") as sf_error:
            push_from_file(predictions_file, "salesforce", options)
        texts.append(describe(sf_error.value))
        report = push_from_file(predictions_file, "salesforce", options)
        texts += [repr(report), report.summary(), read_dead_letters().to_string()]
        with pytest.raises(CrmError, match="401") as hook_error:  # receiver has another secret
            push_from_file(predictions_file, "webhook", options)
        texts.append(describe(hook_error.value))
        texts.append(repr(build_sink("webhook", options)))
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("corecast"))
    blob = "\n".join(texts)
    assert report.failed == 250  # no such contacts in the org: REQUIRED_FIELD_MISSING
    for secret in (SALESFORCE_TOKEN, WEBHOOK_SECRET, WEBHOOK_SECRET[6:]):
        assert secret not in blob + caplog.text  # every logger, the HTTP library's included
        assert secret.encode() not in everything_written(home)
    # a key in the webhook URL path: hidden from our messages, logs and ledger (the HTTP
    # library's own DEBUG log prints request paths, so it is not checked here)
    assert "SECRET-path-key" not in blob + ours
    assert b"SECRET-path-key" not in everything_written(home)


def test_a_token_echoed_in_another_case_or_encoding_is_masked_too():
    import base64
    from urllib.parse import quote

    from serving.crm.http import MASK, Secret, redact

    token = "pat-na1-AbCdEf/123+456"
    echoes = [
        token.lower(),
        token.upper(),
        quote(token, safe=""),
        base64.b64encode(token.encode()).decode(),
        base64.urlsafe_b64encode(token.encode()).decode().rstrip("="),
    ]
    for echo in echoes:
        assert redact(f"server said: {echo}!", [Secret(token)]) == f"server said: {MASK}!"


def test_emails_quoted_by_a_server_leave_the_failure_reasons():
    import numpy as np

    from serving.crm.push import without_emails

    reasons = np.array(['Email address "Ann.Lee@example.org" is invalid', None, "HTTP 500"],
                       dtype=object)
    assert without_emails(reasons).tolist() == ['Email address "<email>" is invalid', None,
                                                "HTTP 500"]
