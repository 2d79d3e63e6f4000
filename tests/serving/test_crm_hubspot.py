"""HubSpot sink against the contract-faithful fake: set-up, upserts, 207, 429, 5xx, timeouts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import requests

from benchmarks.fakes.data import make_predictions
from benchmarks.fakes.hubspot import FakeHubSpot
from benchmarks.fakes.server import FakeServer, Fault
from features.errors import CrmError
from serving.crm import HubSpotConfig, HubSpotSink, Ledger, push_predictions, read_dead_letters
from serving.crm.http import RetryPolicy, Secret
from serving.crm.ratelimit import ManualClock
from serving.crm.records import render_field_strings, validate_predictions

TOKEN = "pat-test-0123456789"
UPSERT = "/crm/v3/objects/contacts/batch/upsert"


@pytest.fixture()
def fake():
    app = FakeHubSpot(TOKEN)
    with FakeServer(app) as server:
        app.url = server.url
        yield app


@pytest.fixture()
def ledger(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite") as opened:
        yield opened


def make_sink(fake, clock=None, token=TOKEN, **config):
    config.setdefault("retry", RetryPolicy(backoff_base_s=0.01, backoff_max_s=0.05,
                                           read_timeout_s=2.0))
    config.setdefault("workers", 1)
    return HubSpotSink(
        HubSpotConfig(base_url=fake.url, **config), Secret(token),
        clock=clock.as_clock() if clock else None, seed=7,
    )


def expected_properties(preds: pd.DataFrame) -> dict[str, dict[str, str]]:
    """What the fake must hold for each member (by email), computed from the predictions."""
    fields = render_field_strings(validate_predictions(preds)).fillna("")
    fields.columns = ["corecast_" + c for c in fields.columns]
    fields.index = preds["email"].str.lower()
    return fields.to_dict("index")


def check_fake_holds(fake, preds):
    held = fake.contacts_by("email")
    want = expected_properties(preds[preds["email"].notna()])
    assert set(held) == set(want)
    for email, props in want.items():
        got = {k: v for k, v in held[email].items() if k != "email"}
        assert got == props, email


def no_duplicate_ids(fake):
    return all(len(batch) == len({i.lower() for i in batch}) for batch in fake.batches)


# -- the fake itself follows the contract ------------------------------------------------------

def raw_upsert(fake, inputs, token=TOKEN):
    return requests.post(fake.url + UPSERT, json={"inputs": inputs},
                         headers={"Authorization": f"Bearer {token}"}, timeout=5)


def test_fake_enforces_the_batch_rules(fake):
    one = {"idProperty": "email", "id": "a@x.org", "properties": {"firstname": "A"}}
    assert raw_upsert(fake, [one], token="wrong").status_code == 401
    too_many = [dict(one, id=f"u{i}@x.org") for i in range(101)]
    assert raw_upsert(fake, too_many).status_code == 400
    assert raw_upsert(fake, [one, dict(one, id="A@x.org")]).status_code == 400
    assert raw_upsert(fake, [dict(one, properties={"firstname": 3})]).status_code == 400
    assert raw_upsert(fake, [dict(one, properties={"nope": "x"})]).status_code == 400
    partial = raw_upsert(fake, [one, dict(one, id="not-an-email", objectWriteTraceId="t2")])
    assert partial.status_code == 207
    body = partial.json()
    assert len(body["results"]) == 1 and body["numErrors"] == 1
    assert body["errors"][0]["context"] == {"objectWriteTraceId": ["t2"]}


# -- set-up ------------------------------------------------------------------------------------

def test_prepare_creates_group_and_typed_properties_once(fake):
    sink = make_sink(fake, id_property="corecast_member_id")
    sink.prepare()
    assert "corecast" in fake.groups
    props = fake.properties
    assert props["corecast_readiness_score"]["type"] == "number"
    assert props["corecast_as_of"]["type"] == "datetime"
    assert props["corecast_reasons"]["fieldType"] == "textarea"
    assert props["corecast_member_id"]["hasUniqueValue"] is True
    assert props["corecast_segment"]["groupName"] == "corecast"
    calls = fake.request_count
    sink.prepare()  # everything exists now: only the two reads
    assert fake.request_count == calls + 2


def test_non_unique_id_property_is_refused(fake):
    make_sink(fake).prepare()  # creates corecast_member_id without unique values
    with pytest.raises(CrmError, match="not unique"):
        make_sink(fake, id_property="corecast_member_id").prepare()


# -- pushing -----------------------------------------------------------------------------------

def test_push_writes_exactly_the_predicted_values(fake, ledger):
    preds = make_predictions(250, email_missing_every=25)
    report = push_predictions(preds, make_sink(fake), ledger)
    assert (report.sent, report.failed) == (240, 10)
    check_fake_holds(fake, preds)
    assert [len(b) for b in fake.batches] == [100, 100, 40]
    assert no_duplicate_ids(fake)
    dead = read_dead_letters(ledger)
    assert set(dead["reason"]) == {"no email"} and len(dead) == 10
    crm_ids = ledger._conn.execute("SELECT COUNT(crm_id) FROM deliveries").fetchone()[0]
    assert crm_ids == 240


def test_shared_emails_are_refused_not_sent_twice(fake, ledger):
    preds = make_predictions(5)
    preds.loc[3, "email"] = "M000001@members.test "
    report = push_predictions(preds, make_sink(fake), ledger)
    assert (report.sent, report.failed) == (3, 2)
    dead = read_dead_letters(ledger)
    assert dead["member_id"].tolist() == ["m000001", "m000003"]
    assert dead["reason"].str.contains("shared").all()
    assert "m000001@members.test" not in fake.contacts_by("email")


def test_member_id_as_id_property_sends_members_without_email(fake, ledger):
    preds = make_predictions(30, email_missing_every=3)
    sink = make_sink(fake, id_property="corecast_member_id")
    report = push_predictions(preds, sink, ledger)
    assert (report.sent, report.failed) == (30, 0)
    held = fake.contacts_by("corecast_member_id")
    assert sorted(held) == sorted(preds["member_id"])
    assert held["m000002"]["corecast_segment"] == "ambassador-at-risk"


def test_207_partial_failures_are_recorded_per_record(fake, ledger):
    preds = make_predictions(10)
    # well-formed for corecast, refused by the server (its top-level domains are letters)
    preds.loc[[2, 6], "email"] = ["broken@address.c0m", "also@broken.x"]
    report = push_predictions(preds, make_sink(fake), ledger)
    assert (report.sent, report.failed) == (8, 2)
    dead = read_dead_letters(ledger).set_index("member_id")
    assert sorted(dead.index) == ["m000002", "m000006"]
    # the server quoted the address; the ledger keeps the member id, not the email
    assert "<email> is invalid" in dead.loc["m000002", "reason"]
    assert "broken@address.c0m" not in " ".join(dead["reason"])
    assert len(fake.contacts_by("email")) == 8


def test_csv_and_hubspot_refuse_the_same_emails_before_sending(fake, ledger, tmp_path):
    from serving.crm import CsvConfig, CsvSink, Ledger

    preds = make_predictions(7)
    preds.loc[[1, 2, 3, 4, 5], "email"] = [
        "no-at-sign", "", "same@example.org", "SAME@example.org ", "x\x00y@example.org"
    ]
    hubspot = push_predictions(preds, make_sink(fake), ledger)
    with Ledger(tmp_path / "csv-ledger.sqlite") as csv_ledger:
        csv = push_predictions(preds, CsvSink(CsvConfig(path=tmp_path / "x.csv")), csv_ledger)
    for report in (hubspot, csv):
        assert (report.sent, report.rejected) == (2, 5)
        assert report.failure_reasons == {
            "invalid email": 2,  # no "@", and a NUL byte
            "no email": 1,
            "email shared with another member (ambiguous contact)": 2,
        }
    assert len(fake.contacts_by("email")) == 2


def test_unchanged_rerun_makes_no_upsert(fake, ledger):
    preds = make_predictions(120)
    push_predictions(preds, make_sink(fake), ledger)
    upserts = fake.upsert_requests
    report = push_predictions(preds, make_sink(fake), ledger)
    assert report.sent == 0 and fake.upsert_requests == upserts and report.requests == 0


def test_429_storm_without_retry_after_waits_for_the_ten_second_window(fake, ledger):
    clock = ManualClock()
    fake.faults.add(Fault("rate_limit", policy="TEN_SECONDLY_ROLLING", path=UPSERT), times=4)
    preds = make_predictions(150)
    report = push_predictions(preds, make_sink(fake, clock), ledger)
    assert report.sent == 150
    assert clock.sleeps.count(10.0) == 4
    check_fake_holds(fake, preds)


def test_429_with_retry_after_waits_that_long(fake, ledger):
    clock = ManualClock()
    fake.faults.add(Fault("rate_limit", retry_after="3", path=UPSERT), times=2)
    report = push_predictions(make_predictions(20), make_sink(fake, clock), ledger)
    assert report.sent == 20 and clock.sleeps == [3.0, 3.0]


def test_daily_limit_stops_with_the_rest_pending_then_rerun_completes(fake, ledger):
    preds = make_predictions(500)
    fake.daily_limit = 24  # 21 set-up calls (group, properties, outreach ones) + 3 upserts
    with pytest.raises(CrmError) as info:
        push_predictions(preds, make_sink(fake), ledger)
    message = str(info.value)
    assert "daily API limit" in message and "300 sent" in message
    assert "200 still pending" in message
    assert ledger.counts(make_sink(fake).key) == {"sent": 300, "pending": 200}
    fake.daily_limit = None
    report = push_predictions(preds, make_sink(fake), ledger)
    assert (report.retried, report.sent) == (200, 200)
    check_fake_holds(fake, preds)
    assert no_duplicate_ids(fake)


def test_real_rolling_window_limit_of_the_server_is_survived(fake, ledger):
    fake.window_limit, fake.window_s = 4, 0.4
    sink = make_sink(fake, rate_limit_calls=1000)
    report = push_predictions(make_predictions(400), sink, ledger)
    assert report.sent == 400 and sink.client.rate_limited > 0
    assert report.requests == 25 + sink.client.rate_limited  # 21 set-up + 4 upserts + the 429s


def test_client_limiter_keeps_under_the_server_limit(fake, ledger):
    # like the default 190 per 10 s against HubSpot's 200: a small margin absorbs network jitter
    fake.window_limit, fake.window_s = 4, 0.4
    sink = make_sink(fake, rate_limit_calls=3, rate_limit_window_s=0.4, workers=3)
    report = push_predictions(make_predictions(400), sink, ledger)
    assert report.sent == 400
    assert sink.client.rate_limited == 0 and sink.limiter.waited_s > 0


def test_5xx_are_retried_with_backoff(fake, ledger):
    clock = ManualClock()
    fake.faults.add(Fault("status", status=503, path=UPSERT), times=2)
    fake.faults.add(Fault("status", status=500, path=UPSERT), times=1)
    report = push_predictions(make_predictions(100), make_sink(fake, clock), ledger)
    assert report.sent == 100 and len(fake.faults) == 0
    assert len(clock.sleeps) == 3 and all(0 < s <= 0.05 for s in clock.sleeps)


def test_timeouts_are_retried_and_the_record_is_sent_once_in_the_ledger(fake, ledger):
    fake.faults.add(Fault("delay", seconds=0.6, path=UPSERT))
    sink = make_sink(fake, retry=RetryPolicy(backoff_base_s=0.01, read_timeout_s=0.3))
    preds = make_predictions(40)
    report = push_predictions(preds, sink, ledger)
    assert report.sent == 40 and sink.client.retries == 1
    check_fake_holds(fake, preds)


def test_persistent_outage_stops_after_bounded_attempts(fake, ledger):
    fake.faults.add(Fault("status", status=502, path=UPSERT), times=50)
    sink = make_sink(fake, retry=RetryPolicy(max_attempts=3, backoff_base_s=0.01))
    with pytest.raises(CrmError, match="failed after 3 attempts: HTTP 502"):
        push_predictions(make_predictions(30), sink, ledger)
    assert ledger.counts(sink.key) == {"pending": 30}


def test_wrong_token_stops_with_a_clear_message(fake, ledger):
    sink = make_sink(fake, token="pat-wrong-token")
    with pytest.raises(CrmError, match="CORECAST_HUBSPOT_TOKEN was refused") as info:
        push_predictions(make_predictions(5), sink, ledger)
    assert "pat-wrong-token" not in str(info.value)
    from features.errors import CrmRefused

    assert isinstance(info.value, CrmRefused)  # refused outright: the flow does not retry it
    assert ledger.counts(sink.key) == {"pending": 5}


def test_several_workers_respect_batches_and_values(fake, ledger):
    preds = make_predictions(1000)
    report = push_predictions(preds, make_sink(fake, workers=4), ledger)
    assert report.sent == 1000 and len(fake.batches) == 10
    assert no_duplicate_ids(fake)
    check_fake_holds(fake, preds)
    assert np.array_equal(
        np.sort(np.concatenate(fake.batches)), np.sort(preds["email"].to_numpy(dtype=str))
    )


def test_set_up_is_remembered_and_redone_if_properties_vanish(fake, ledger):
    preds = make_predictions(150)
    push_predictions(preds, make_sink(fake), ledger)
    calls = fake.request_count
    changed = preds.assign(segment="nurture")
    report = push_predictions(changed, make_sink(fake), ledger)
    assert report.sent == 120  # a fifth of the members were "nurture" already
    assert report.requests == 2 and fake.request_count == calls + 2  # upserts only
    del fake.properties["corecast_segment"]  # someone deleted a property in the CRM
    report = push_predictions(preds, make_sink(fake), ledger)
    assert report.sent == 120 and "corecast_segment" in fake.properties
    check_fake_holds(fake, preds)


def test_a_sink_stopped_by_an_error_can_push_again(fake, ledger):
    sink = make_sink(fake, workers=3, retry=RetryPolicy(max_attempts=2, backoff_base_s=0.01))
    fake.faults.add(Fault("status", status=503, path=UPSERT), times=100)
    preds = make_predictions(600)
    with pytest.raises(CrmError, match="HTTP 503"):
        push_predictions(preds, sink, ledger)
    used = len(fake.faults.used)
    fake.faults = type(fake.faults)()  # the outage is over
    report = push_predictions(preds, sink, ledger)
    assert report.pending == 0 and ledger.counts(sink.key) == {"sent": 600}
    assert used < 100  # the other workers stopped instead of burning through the outage
    check_fake_holds(fake, preds)
