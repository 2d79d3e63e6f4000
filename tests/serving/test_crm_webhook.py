"""Webhook sink: Standard Webhooks signatures, idempotent message ids, retries."""

from __future__ import annotations

import base64
import math

import pytest

from benchmarks.fakes.data import make_predictions
from benchmarks.fakes.server import FakeServer, Fault
from benchmarks.fakes.webhook import FakeWebhookReceiver
from features.errors import ConfigError, CrmError
from serving.crm import Ledger, WebhookConfig, WebhookSink, build_sink, push_predictions
from serving.crm.http import RetryPolicy, Secret
from serving.crm.push import PushOptions

SECRET = "whsec_" + base64.b64encode(b"corecast-webhook-test-key-123456").decode()


@pytest.fixture()
def receiver():
    app = FakeWebhookReceiver(SECRET)
    with FakeServer(app) as server:
        app.url = server.url + "/hooks/corecast/k3y-in-path"
        yield app


@pytest.fixture()
def ledger(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite") as opened:
        yield opened


def make_sink(receiver, secret=SECRET, **config):
    config.setdefault("retry", RetryPolicy(backoff_base_s=0.01, backoff_max_s=0.02))
    return WebhookSink(WebhookConfig(**config), receiver.url, Secret(secret), seed=1)


def test_signed_batches_arrive_with_typed_records(receiver, ledger):
    preds = make_predictions(7)
    report = push_predictions(preds, make_sink(receiver, batch_size=3), ledger)
    assert report.sent == 7 and len(receiver.messages) == 3 and receiver.refused == 0
    message = next(iter(receiver.messages.values()))
    assert message["type"] == "corecast.predictions.batch" and message["data"]["count"] == 3
    first = receiver.records["m000000"]
    row = preds.iloc[0]
    assert first["readiness_score"] == pytest.approx(round(row.readiness_score, 4))
    assert first["readiness_rank"] == int(row.readiness_rank)
    assert first["email"] == "m000000@members.test"
    assert first["as_of"] == "2024-05-06T00:00:00Z"
    assert first["readiness_method"] == "model" and first["readiness_validated"] is True
    assert first["disengagement_method"] == "rule:silence_vs_rhythm"
    assert first["disengagement_validated"] is False
    missing = preds.loc[preds["readiness_score"].isna(), "member_id"]
    for member in missing:
        assert receiver.records[member]["readiness_score"] is None
    assert not any(isinstance(v, float) and math.isnan(v) for v in first.values())


def test_retry_after_5xx_reuses_the_same_webhook_id(receiver, ledger):
    receiver.faults.add(Fault("status", status=503), times=2)
    report = push_predictions(make_predictions(4), make_sink(receiver), ledger)
    assert report.sent == 4
    ids = [d["id"] for d in receiver.deliveries]
    assert len(ids) == 3 and len(set(ids)) == 1 and ids[0].startswith("msg_")
    assert len(receiver.messages) == 1


def test_batch_sent_again_after_a_crash_is_deduplicated_by_the_receiver(receiver, tmp_path):
    preds = make_predictions(5)
    with Ledger(tmp_path / "a.sqlite") as first:
        push_predictions(preds, make_sink(receiver), first)
    # a crash after delivery but before the ledger write looks like a fresh ledger
    with Ledger(tmp_path / "b.sqlite") as second:
        push_predictions(preds, make_sink(receiver), second)
    assert len(receiver.deliveries) == 2 and receiver.duplicates == 1
    assert len(receiver.messages) == 1


def test_wrong_secret_is_refused_and_stops_the_push(receiver, ledger):
    other = "whsec_" + base64.b64encode(b"another-key-another-key-another!").decode()
    with pytest.raises(CrmError, match="refused the message with HTTP 401") as info:
        push_predictions(make_predictions(3), make_sink(receiver, secret=other), ledger)
    assert other not in str(info.value) and other[6:] not in str(info.value)
    assert "k3y-in-path" not in str(info.value)
    assert receiver.refused == 1


def test_other_4xx_marks_the_batch_failed(receiver, ledger):
    receiver.faults.add(Fault("status", status=422, body='{"error":"schema mismatch"}'))
    report = push_predictions(make_predictions(3), make_sink(receiver), ledger)
    assert (report.sent, report.failed) == (0, 3)
    assert "HTTP 422" in next(iter(report.failure_reasons))


def test_secret_format_is_checked_without_echoing_it(monkeypatch, receiver):
    monkeypatch.setenv("CORECAST_WEBHOOK_SECRET", "whsec_not base64 at all!")
    with pytest.raises(ConfigError) as info:
        build_sink("webhook", PushOptions(webhook=WebhookConfig(url=receiver.url)))
    assert "not base64" not in str(info.value)


def test_ledger_key_hides_the_url_path(receiver):
    sink = make_sink(receiver)
    assert "k3y-in-path" not in sink.key and sink.key.startswith("webhook:http://127.0.0.1:")
