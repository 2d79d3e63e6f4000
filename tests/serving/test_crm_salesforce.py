"""Salesforce Bulk API 2.0 sink against the fake job state machine."""

from __future__ import annotations

import pandas as pd
import pytest
import requests

from benchmarks.fakes.data import make_predictions
from benchmarks.fakes.salesforce import FakeSalesforce
from benchmarks.fakes.server import FakeServer, Fault
from features.errors import CrmError
from serving.crm import (
    Ledger,
    SalesforceConfig,
    SalesforceSink,
    push_predictions,
    read_dead_letters,
)
from serving.crm.http import RetryPolicy, Secret
from serving.crm.ratelimit import ManualClock

TOKEN = "00Dxx!sf-secret-token"
PREFIX = "/services/data/v62.0/jobs/ingest"


@pytest.fixture()
def fake():
    app = FakeSalesforce(TOKEN)
    with FakeServer(app) as server:
        app.url = server.url
        yield app


@pytest.fixture()
def ledger(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite") as opened:
        yield opened


def make_sink(fake, clock=None, token=TOKEN, **config):
    config.setdefault("retry", RetryPolicy(backoff_base_s=0.01, backoff_max_s=0.05))
    config.setdefault("poll_interval_s", 0.01)
    return SalesforceSink(
        SalesforceConfig(**config), fake.url, Secret(token),
        clock=(clock or ManualClock()).as_clock(), seed=3,
    )


def seed_contacts(fake, member_ids):
    for member in member_ids:
        fake.add_record(LastName=f"Name {member}", Corecast_Member_Id__c=member)


def test_fake_job_state_machine(fake):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    base = fake.url + PREFIX
    job = requests.post(base + "/", json={"object": "Contact", "operation": "upsert",
                                          "externalIdFieldName": "Corecast_Member_Id__c",
                                          "contentType": "CSV"}, headers=headers).json()
    assert job["state"] == "Open"
    put = requests.put(f"{base}/{job['id']}/batches", data=b"Corecast_Member_Id__c,LastName\nx,X\n",
                       headers={**headers, "Content-Type": "text/csv"})
    assert put.status_code == 201
    again = requests.put(f"{base}/{job['id']}/batches", data=b"a\n",
                         headers={**headers, "Content-Type": "text/csv"})
    assert again.status_code == 400 and "multiple contents" in again.text
    early = requests.get(f"{base}/{job['id']}/successfulResults/", headers=headers)
    assert early.status_code == 400
    closed = requests.patch(f"{base}/{job['id']}", json={"state": "UploadComplete"},
                            headers=headers).json()
    states = [closed["state"]] + [
        requests.get(f"{base}/{job['id']}", headers=headers).json()["state"] for _ in range(2)
    ]
    assert states == ["UploadComplete", "InProgress", "JobComplete"]
    assert requests.get(base + "/x", headers={"Authorization": "Bearer no"}).status_code == 401


def test_upsert_updates_existing_contacts_and_reports_missing_ones(fake, ledger):
    preds = make_predictions(12)
    seed_contacts(fake, preds["member_id"].iloc[:10])
    report = push_predictions(preds, make_sink(fake), ledger)
    assert (report.sent, report.failed) == (10, 2)
    held = fake.by_external_id()
    first = preds.iloc[0]
    assert held["m000000"]["Corecast_Readiness_Score__c"] == str(round(first.readiness_score, 4))
    assert held["m000000"]["Corecast_Segment__c"] == "ready-now"
    assert held["m000000"]["Corecast_As_Of__c"] == "2024-05-06T00:00:00Z"
    assert held["m000000"]["Corecast_Readiness_Method__c"] == "model"
    assert held["m000000"]["Corecast_Disengagement_Method__c"] == "rule:silence_vs_rhythm"
    assert held["m000000"]["Corecast_Disengagement_Validated__c"] == "false"
    assert held["m000000"]["LastName"] == "Name m000000"  # untouched
    not_eligible = preds.loc[preds["readiness_score"].isna(), "member_id"]
    for member in not_eligible[not_eligible.isin(held)]:
        assert held[member]["Corecast_Readiness_Score__c"] is None  # "#N/A" cleared it
    dead = read_dead_letters(ledger)
    assert dead["member_id"].tolist() == ["m000010", "m000011"]
    assert dead["reason"].str.startswith("REQUIRED_FIELD_MISSING").all()
    sent_ids = ledger._conn.execute(
        "SELECT crm_id FROM deliveries WHERE status = 'sent' AND member_id = 'm000000'"
    ).fetchone()[0]
    assert sent_ids.startswith("003")


def test_jobs_are_polled_until_complete(fake, ledger):
    fake.polls_before_complete = 4
    clock = ManualClock()
    preds = make_predictions(25)
    seed_contacts(fake, preds["member_id"])
    report = push_predictions(preds, make_sink(fake, clock, job_size=10,
                                               poll_interval_s=1.0), ledger)
    assert report.sent == 25 and len(fake.jobs) == 3
    assert all(job["state"] == "JobComplete" for job in fake.jobs.values())
    assert clock.sleeps == [1.0, 1.5, 2.25] * 3  # polling backs off x1.5 per check


def test_record_level_errors_go_to_dead_letters_and_are_retried(fake, ledger):
    preds = make_predictions(8)
    seed_contacts(fake, preds["member_id"])
    fake.fail_ids["m000004"] = "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access:--"
    report = push_predictions(preds, make_sink(fake), ledger)
    assert (report.sent, report.failed) == (7, 1)
    assert read_dead_letters(ledger)["reason"].str.startswith("UNABLE_TO_LOCK_ROW").all()
    fake.fail_ids.clear()
    again = push_predictions(preds, make_sink(fake), ledger)
    assert (again.retried, again.sent, again.unchanged) == (1, 1, 7)
    assert read_dead_letters(ledger).empty


def test_failed_job_marks_every_record_with_the_job_error(fake, ledger):
    preds = make_predictions(5)
    seed_contacts(fake, preds["member_id"])
    sink = make_sink(fake, fields={"segment": "Corecast_Unknown__c"})
    report = push_predictions(preds, sink, ledger)
    assert (report.sent, report.failed) == (0, 5)
    reasons = read_dead_letters(ledger)["reason"]
    assert reasons.str.contains("Field name not found : Corecast_Unknown__c").all()


def test_failed_upload_aborts_the_job_and_uses_a_fresh_one(fake, ledger):
    preds = make_predictions(6)
    seed_contacts(fake, preds["member_id"])
    fake.faults.add(Fault("status", status=500, path="/batches"), times=2)
    sink = make_sink(fake, retry=RetryPolicy(max_attempts=2, backoff_base_s=0.01))
    report = push_predictions(preds, sink, ledger)
    assert report.sent == 6
    states = [job["state"] for job in fake.jobs.values()]
    assert states == ["Aborted", "JobComplete"]


def test_job_that_never_finishes_leaves_records_pending(fake, ledger):
    fake.polls_before_complete = 1000
    preds = make_predictions(4)
    sink = make_sink(fake, poll_interval_s=10.0, poll_max_interval_s=10.0, poll_timeout_s=30.0)
    with pytest.raises(CrmError, match="still InProgress after 30 s"):
        push_predictions(preds, sink, ledger)
    assert ledger.counts(sink.key) == {"pending": 4}


def test_invalid_session_stops_without_showing_the_token(fake, ledger):
    with pytest.raises(CrmError, match="CORECAST_SALESFORCE_TOKEN is invalid") as info:
        push_predictions(make_predictions(3), make_sink(fake, token="00Dxx!expired"), ledger)
    assert "00Dxx!expired" not in str(info.value)


def test_csv_upload_quotes_reasons_with_commas_and_quotes(fake, ledger):
    preds = make_predictions(2)
    preds["reasons"] = ['Said "yes", twice; Hosted, then left', None]
    seed_contacts(fake, preds["member_id"])
    push_predictions(preds, make_sink(fake), ledger)
    held = fake.by_external_id()
    assert held["m000000"]["Corecast_Reasons__c"] == 'Said "yes", twice; Hosted, then left'
    assert held["m000001"]["Corecast_Reasons__c"] is None
    assert isinstance(pd.Series(held).size, int)
