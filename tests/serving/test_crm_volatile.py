"""Delta push ignores volatile fields (scoring time, as-of, model versions, run id), all sinks."""

from __future__ import annotations

import base64

import pandas as pd
import pytest

from benchmarks.fakes.hubspot import FakeHubSpot
from benchmarks.fakes.salesforce import FakeSalesforce
from benchmarks.fakes.server import FakeServer
from benchmarks.fakes.webhook import FakeWebhookReceiver
from features.errors import ConfigError
from serving.crm import (
    CsvConfig,
    CsvSink,
    HubSpotConfig,
    HubSpotSink,
    Ledger,
    PushOptions,
    SalesforceConfig,
    SalesforceSink,
    WebhookConfig,
    WebhookSink,
    build_sink,
    push_predictions,
)
from serving.crm.http import RetryPolicy, Secret
from serving.crm.push import FINGERPRINT_META_PREFIX
from serving.crm.ratelimit import ManualClock
from serving.crm.records import (
    DEFAULT_VOLATILE_FIELDS,
    MEMBER_KEY,
    fingerprint_content,
    hash_payloads,
    validate_predictions,
    validate_volatile_fields,
)

TOKEN = "pat-volatile-0123456789"
SF_TOKEN = "00Dxx!sf-volatile-token"
SECRET = "whsec_" + base64.b64encode(b"corecast-volatile-test-key-12345").decode()
FAST = RetryPolicy(backoff_base_s=0.01, backoff_max_s=0.02, read_timeout_s=2.0)
NEW_SCORED_AT = "2024-05-13T07:00:00Z"


def week_one() -> pd.DataFrame:
    """Three members scored on 2024-05-06 by models 3 and 5 in run r1."""
    return pd.DataFrame({
        "member_id": ["m1", "m2", "m3"],
        "email": ["ana@chapter.test", "ben@chapter.test", "cy@chapter.test"],
        "chapter_id": ["paris", "paris", "lyon"],
        "as_of": pd.to_datetime(["2024-05-06"] * 3),
        "readiness_score": [0.8, 0.3, None],
        "readiness_rank": pd.array([1, 2, None], dtype="Int64"),
        "disengagement_score": [0.1, 0.6, None],
        "segment": ["ready-now", "at-risk", "steady"],
        "reasons": ["Hosted 2 workshops", "No event in 60 days", None],
        "readiness_model_version": ["3", "3", "3"],
        "disengagement_model_version": ["5", "5", "5"],
        "run_id": ["r1", "r1", "r1"],
        "scored_at": pd.to_datetime(["2024-05-06 07:00:00"] * 3),
    })


def rescored(frame: pd.DataFrame) -> pd.DataFrame:
    """The same predictions scored a week later by new model versions in another run."""
    return frame.assign(
        as_of=pd.Timestamp("2024-05-13"),
        scored_at=pd.Timestamp("2024-05-13 07:00:00"),
        readiness_model_version="4",
        disengagement_model_version="6",
        run_id="r2",
    )


@pytest.fixture()
def ledger(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite") as opened:
        yield opened


def files_in(folder) -> list:
    return sorted(folder.iterdir()) if folder.exists() else []


# -- choosing the volatile fields ----------------------------------------------------------------

def test_unknown_volatile_field_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match="unknown field.*'score_time'"):
        PushOptions(volatile_fields=("scored_at", "score_time"))
    with pytest.raises(ConfigError, match="'member_id' identifies the record"):
        PushOptions(volatile_fields=("member_id",))
    with pytest.raises(ConfigError, match="list of field names, not the string 'scored_at'"):
        PushOptions(volatile_fields="scored_at")
    with pytest.raises(ConfigError, match="'nope'"):
        CsvSink(CsvConfig(path="x.csv"), volatile_fields=("nope",))


def test_default_and_normalised_volatile_fields():
    assert PushOptions().volatile_fields == ("scored_at", "as_of", "model_versions", "run_id")
    assert PushOptions(volatile_fields=["as_of", "as_of"]).volatile_fields == ("as_of",)
    assert validate_volatile_fields(()) == ()


def test_each_sink_maps_volatile_fields_to_its_own_columns():
    csv = CsvSink(CsvConfig(path="x.csv", columns={"as_of": None}))
    assert csv.volatile_columns == ("corecast_scored_at", "corecast_model_versions")
    hub = HubSpotSink(HubSpotConfig(), None)
    assert hub.volatile_columns == (
        "corecast_scored_at", "corecast_as_of", "corecast_model_versions"
    )
    sf = SalesforceSink(SalesforceConfig(), "https://sf.test", None)
    assert sf.volatile_columns == (
        "Corecast_Scored_At__c", "Corecast_As_Of__c", "Corecast_Model_Versions__c"
    )
    hook = WebhookSink(WebhookConfig(), "https://hook.test/x", None)
    assert hook.volatile_columns == (
        "scored_at", "as_of", "readiness_model_version", "disengagement_model_version", "run_id"
    )
    none = build_sink("csv", PushOptions(volatile_fields=()))
    assert none.volatile_columns == ()


def test_content_fingerprint_leaves_out_only_the_volatile_columns():
    sink = CsvSink(CsvConfig(path="x.csv"))
    before = sink.render(validate_predictions(week_one()))
    after = sink.render(validate_predictions(rescored(week_one())))
    volatile = sink.volatile_columns
    assert fingerprint_content(before, volatile).tolist() == \
        fingerprint_content(after, volatile).tolist()
    assert (fingerprint_content(before) != fingerprint_content(after)).all()
    # no volatile columns = the whole-payload fingerprint of earlier ledgers
    assert fingerprint_content(before).tolist() == \
        hash_payloads(before.drop(columns=[MEMBER_KEY])).tolist()
    edited = after.copy()
    edited.loc[2, "corecast_reasons"] = "Joined the mentoring circle"
    changed = fingerprint_content(edited, volatile) != fingerprint_content(before, volatile)
    assert changed.tolist() == [False, False, True]


# -- CSV -----------------------------------------------------------------------------------------

def test_csv_rescore_sends_nothing_then_only_the_changed_member(tmp_path, ledger):
    folder = tmp_path / "exports"
    stamps = iter(pd.date_range("2024-05-06 08:00", periods=5, freq="D"))
    sink = CsvSink(CsvConfig(folder=folder), now=lambda: next(stamps).to_pydatetime())
    first = push_predictions(week_one(), sink, ledger)
    assert (first.new, first.sent) == (3, 3)

    again = push_predictions(rescored(week_one()), sink, ledger)
    assert (again.unchanged, again.changed, again.to_send, again.sent) == (3, 0, 0, 0)
    assert len(files_in(folder)) == 1  # nothing to export: no new file

    moved = rescored(week_one())
    moved.loc[1, "readiness_score"] = 0.45
    report = push_predictions(moved, sink, ledger)
    assert (report.changed, report.unchanged, report.sent) == (1, 2, 1)
    written = pd.read_csv(files_in(folder)[-1], dtype=str, keep_default_na=False)
    assert written["corecast_member_id"].tolist() == ["m2"]
    assert written.loc[0, "corecast_readiness_score"] == "0.45"
    assert written.loc[0, "corecast_scored_at"] == NEW_SCORED_AT
    assert written.loc[0, "corecast_as_of"] == "2024-05-13T00:00:00Z"
    assert written.loc[0, "corecast_model_versions"] == "readiness=4; disengagement=6"


def test_csv_reasons_text_change_is_sent(tmp_path, ledger):
    target = tmp_path / "push.csv"
    sink = CsvSink(CsvConfig(path=target))
    push_predictions(week_one(), sink, ledger)
    edited = rescored(week_one())
    edited.loc[0, "reasons"] = "Hosted 3 workshops"
    report = push_predictions(edited, sink, ledger)
    assert (report.changed, report.sent) == (1, 1)
    written = pd.read_csv(target, dtype=str, keep_default_na=False)
    assert written["corecast_member_id"].tolist() == ["m1"]
    assert written.loc[0, "corecast_reasons"] == "Hosted 3 workshops"


def test_empty_volatile_fields_make_every_field_count(tmp_path, ledger):
    options = PushOptions(volatile_fields=(), csv=CsvConfig(path=tmp_path / "push.csv"))
    sink = build_sink("csv", options)
    push_predictions(week_one(), sink, ledger)
    report = push_predictions(rescored(week_one()), sink, ledger)
    assert (report.changed, report.unchanged, report.sent) == (3, 0, 3)


def test_full_push_resends_unchanged_with_their_new_volatile_values(tmp_path, ledger):
    target = tmp_path / "push.csv"
    sink = CsvSink(CsvConfig(path=target))
    push_predictions(week_one(), sink, ledger)
    report = push_predictions(rescored(week_one()), sink, ledger, full=True)
    assert (report.unchanged, report.to_send, report.sent) == (3, 3, 3)
    written = pd.read_csv(target, dtype=str, keep_default_na=False)
    assert set(written["corecast_scored_at"]) == {NEW_SCORED_AT}
    after = push_predictions(rescored(week_one()), sink, ledger)
    assert (after.unchanged, after.sent) == (3, 0)


def test_dry_run_plans_only_the_content_change(tmp_path, ledger):
    folder = tmp_path / "exports"
    sink = CsvSink(CsvConfig(folder=folder))
    push_predictions(week_one(), sink, ledger)
    moved = rescored(week_one())
    moved.loc[2, "segment"] = "nurture"
    report = push_predictions(moved, sink, ledger, dry_run=True)
    assert (report.changed, report.unchanged, report.to_send, report.sent) == (1, 2, 1, 0)
    assert report.sample["member_id"].tolist() == ["m3"]
    assert report.sample.loc[0, "corecast_scored_at"] == NEW_SCORED_AT
    assert report.volatile_columns == sink.volatile_columns and not report.fingerprint_changed
    assert len(files_in(folder)) == 1


# -- ledgers written by the whole-payload fingerprint ----------------------------------------------

def write_old_ledger(ledger: Ledger, sink: CsvSink, predictions: pd.DataFrame) -> None:
    """Record a confirmed push the way earlier versions did: whole-payload hashes, no meta."""
    rendered = sink.render(validate_predictions(predictions))
    old_hashes = hash_payloads(rendered.drop(columns=[MEMBER_KEY]))
    push_id = ledger.begin_push(sink.key, len(rendered))
    ledger.mark_pending(sink.key, push_id, rendered[MEMBER_KEY], old_hashes)
    members = rendered[MEMBER_KEY].to_numpy(dtype=object)
    ledger.record_outcomes(sink.key, push_id, members, ["sent"] * 3, [None] * 3)
    ledger.finish_push(push_id, "done", sent=3, failed=0)


def test_old_ledger_gets_one_full_resend_with_a_note_then_deltas(tmp_path):
    path = tmp_path / "ledger.sqlite"
    sink = CsvSink(CsvConfig(path=tmp_path / "push.csv"))
    with Ledger(path) as ledger:
        write_old_ledger(ledger, sink, week_one())
    with Ledger(path, readonly=True) as readonly:
        planned = push_predictions(week_one(), sink, readonly, dry_run=True)
    assert (planned.changed, planned.to_send) == (3, 3) and planned.fingerprint_changed
    assert "change fingerprint of this sink changed" in planned.summary()
    with Ledger(path) as ledger:
        assert ledger.get_meta(FINGERPRINT_META_PREFIX + sink.key) is None  # dry run wrote nothing
        upgrade = push_predictions(week_one(), sink, ledger)
        assert (upgrade.changed, upgrade.sent) == (3, 3) and upgrade.fingerprint_changed
        assert ledger.get_meta(FINGERPRINT_META_PREFIX + sink.key) == (
            "excluded=corecast_as_of,corecast_model_versions,corecast_scored_at"
        )
        weekly = push_predictions(rescored(week_one()), sink, ledger)
        assert (weekly.unchanged, weekly.sent) == (3, 0) and not weekly.fingerprint_changed
        assert "note:" not in weekly.summary()


def test_old_ledger_with_no_volatile_fields_sees_no_change(tmp_path, ledger):
    write_old_ledger(ledger, CsvSink(CsvConfig(path=tmp_path / "push.csv")), week_one())
    sink = CsvSink(CsvConfig(path=tmp_path / "push.csv"), volatile_fields=())
    report = push_predictions(week_one(), sink, ledger)
    assert (report.unchanged, report.sent) == (3, 0) and not report.fingerprint_changed


# -- HTTP sinks ------------------------------------------------------------------------------------

@pytest.fixture()
def hubspot():
    app = FakeHubSpot(TOKEN)
    with FakeServer(app) as server:
        app.url = server.url
        yield app


def test_hubspot_rescore_sends_nothing_and_one_change_sends_one(hubspot, ledger):
    def sink():
        return HubSpotSink(HubSpotConfig(base_url=hubspot.url, retry=FAST, workers=1),
                           Secret(TOKEN), seed=1)

    push_predictions(week_one(), sink(), ledger)
    assert hubspot.batches == [["ana@chapter.test", "ben@chapter.test", "cy@chapter.test"]]
    again = push_predictions(rescored(week_one()), sink(), ledger)
    assert (again.unchanged, again.sent, again.requests) == (3, 0, 0)
    assert len(hubspot.batches) == 1

    moved = rescored(week_one())
    moved.loc[0, "disengagement_score"] = 0.35
    report = push_predictions(moved, sink(), ledger)
    assert (report.changed, report.unchanged, report.sent) == (1, 2, 1)
    assert hubspot.batches[-1] == ["ana@chapter.test"]
    held = hubspot.contacts_by("email")
    assert held["ana@chapter.test"]["corecast_disengagement_score"] == "0.35"
    assert held["ana@chapter.test"]["corecast_scored_at"] == NEW_SCORED_AT
    assert held["ana@chapter.test"]["corecast_model_versions"] == "readiness=4; disengagement=6"
    # members not re-sent keep the scoring time of the values the CRM holds
    assert held["ben@chapter.test"]["corecast_scored_at"] == "2024-05-06T07:00:00Z"


@pytest.fixture()
def salesforce():
    app = FakeSalesforce(SF_TOKEN)
    with FakeServer(app) as server:
        app.url = server.url
        for member in ["m1", "m2", "m3"]:
            app.add_record(LastName=f"Name {member}", Corecast_Member_Id__c=member)
        yield app


def test_salesforce_rescore_sends_nothing_and_one_change_sends_one(salesforce, ledger):
    def sink():
        return SalesforceSink(SalesforceConfig(retry=FAST, poll_interval_s=0.01), salesforce.url,
                              Secret(SF_TOKEN), clock=ManualClock().as_clock(), seed=1)

    push_predictions(week_one(), sink(), ledger)
    assert len(salesforce.jobs) == 1
    again = push_predictions(rescored(week_one()), sink(), ledger)
    assert (again.unchanged, again.sent, again.requests) == (3, 0, 0)
    moved = rescored(week_one())
    moved.loc[2, "reasons"] = "Came back to 2 events"
    report = push_predictions(moved, sink(), ledger)
    assert (report.changed, report.sent) == (1, 1) and len(salesforce.jobs) == 2
    held = salesforce.by_external_id()
    assert held["m3"]["Corecast_Reasons__c"] == "Came back to 2 events"
    assert held["m3"]["Corecast_Scored_At__c"] == NEW_SCORED_AT
    assert held["m1"]["Corecast_Scored_At__c"] == "2024-05-06T07:00:00Z"


@pytest.fixture()
def receiver():
    app = FakeWebhookReceiver(SECRET)
    with FakeServer(app) as server:
        app.url = server.url + "/hooks/corecast"
        yield app


def test_webhook_rescore_sends_nothing_but_a_full_push_is_a_new_message(receiver, ledger):
    def sink():
        return WebhookSink(WebhookConfig(retry=FAST), receiver.url, Secret(SECRET), seed=1)

    push_predictions(week_one(), sink(), ledger)
    again = push_predictions(rescored(week_one()), sink(), ledger)
    assert (again.unchanged, again.sent, again.requests) == (3, 0, 0)
    assert len(receiver.deliveries) == 1
    # the message id covers the volatile fields: re-sending new values is not a duplicate
    full = push_predictions(rescored(week_one()), sink(), ledger, full=True)
    assert full.sent == 3 and receiver.duplicates == 0 and len(receiver.messages) == 2
    assert receiver.records["m2"]["scored_at"] == NEW_SCORED_AT
    assert receiver.records["m2"]["run_id"] == "r2"


def test_webhook_message_id_changes_with_volatile_fields_only_when_they_differ():
    sink = WebhookSink(WebhookConfig(), "https://hook.test/x", None)
    before = sink.render(validate_predictions(week_one()))
    after = sink.render(validate_predictions(rescored(week_one())))
    assert sink.message_id(before) == sink.message_id(before.copy())
    assert sink.message_id(before) != sink.message_id(after)
    assert DEFAULT_VOLATILE_FIELDS == sink.volatile_fields
