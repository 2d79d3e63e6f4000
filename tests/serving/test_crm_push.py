"""The push engine with an in-memory sink: delta, full, dry run, consent, crashes, dead letters."""

from __future__ import annotations

import sqlite3
import threading

import numpy as np
import pandas as pd
import pytest

from benchmarks.fakes.data import change_scores, make_predictions
from features.errors import ConfigError, ContractError, CrmError
from serving.crm import (
    Ledger,
    PushOptions,
    build_sink,
    push_from_file,
    push_predictions,
    read_dead_letters,
)
from serving.crm.base import BatchOutcome
from serving.crm.records import MEMBER_KEY, RECORD_KEY, render_field_strings


class MemorySink:
    """A sink that stores records in a dict; can refuse members or stop at a batch."""

    kind = "memory"

    def __init__(self, batch_size=10, workers=1, refuse=(), stop_at_batch=None):
        self.key = "memory:test"
        self.batch_size = batch_size
        self.workers = workers
        self.refuse = set(refuse)
        self.stop_at_batch = stop_at_batch
        self.store: dict[str, dict] = {}
        self.batches: list[list[str]] = []
        self.prepared = 0
        self.cancelled = False
        self._lock = threading.Lock()

    @property
    def requests_made(self):
        return len(self.batches)

    def cancel(self):
        self.cancelled = True

    def render(self, predictions):
        fields = render_field_strings(predictions)
        out = pd.DataFrame({MEMBER_KEY: predictions["member_id"],
                            RECORD_KEY: predictions["email"]})
        return pd.concat([out, fields.drop(columns=["member_id"]).fillna("")], axis=1)

    def reject_reasons(self, rendered):
        return pd.Series(pd.NA, index=rendered.index, dtype="str").mask(
            rendered[RECORD_KEY].isna(), "no email"
        )

    def prepare(self):
        self.prepared += 1

    def send_batch(self, batch):
        with self._lock:
            number = len(self.batches) + 1
            if self.stop_at_batch is not None and number >= self.stop_at_batch:
                raise CrmError("memory sink: daily limit reached")
            self.batches.append(batch[MEMBER_KEY].tolist())
        members = batch[MEMBER_KEY].to_numpy(dtype=object)
        refused = np.isin(members, list(self.refuse))
        for row in batch[~refused].to_dict("records"):
            self.store[row[MEMBER_KEY]] = row
        statuses = np.where(refused, "failed", "sent").astype(object)
        reasons = np.where(refused, "invalid value", None).astype(object)
        return BatchOutcome(members, statuses, reasons)


def dump(path) -> list:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM deliveries ORDER BY member_id").fetchall() + \
            conn.execute("SELECT * FROM pushes").fetchall()


@pytest.fixture()
def ledger(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite") as opened:
        yield opened


def test_first_push_sends_everything_and_second_sends_nothing(ledger):
    preds = make_predictions(45, email_missing_every=9)  # 5 without email
    sink = MemorySink()
    report = push_predictions(preds, sink, ledger)
    assert (report.new, report.to_send, report.rejected) == (45, 45, 5)
    assert (report.sent, report.failed, report.pending) == (40, 5, 0)
    assert report.failure_reasons == {"no email": 5}
    assert len(sink.store) == 40 and len(sink.batches) == 4  # 40 deliverable in 10s
    assert sink.prepared == 1
    again = push_predictions(preds, MemorySink(), ledger)
    assert (again.unchanged, again.retried, again.sent, again.requests) == (40, 5, 0, 0)
    assert again.rejected == 5


def test_delta_push_sends_only_changed_records(ledger):
    preds = make_predictions(200)
    push_predictions(preds, MemorySink(), ledger)
    changed = change_scores(preds, 0.05)
    moved = set(preds.loc[preds["readiness_score"].ne(changed["readiness_score"])
                          & preds["readiness_score"].notna(), "member_id"])
    assert len(moved) == 10
    sink = MemorySink()
    report = push_predictions(changed, sink, ledger)
    assert (report.changed, report.unchanged, report.sent) == (10, 190, 10)
    assert {m for batch in sink.batches for m in batch} == moved
    full = push_predictions(changed, MemorySink(), ledger, full=True)
    assert (full.to_send, full.sent, full.unchanged) == (200, 200, 200)


def test_dry_run_sends_and_writes_nothing(ledger):
    preds = make_predictions(30)
    push_predictions(preds, MemorySink(), ledger)
    before = dump(ledger.path)
    sink = MemorySink()
    report = push_predictions(change_scores(preds, 0.1), sink, ledger, dry_run=True,
                              sample_size=2)
    assert report.dry_run and report.push_id is None
    assert (report.changed, report.unchanged, report.to_send, report.sent) == (3, 27, 3, 0)
    assert sink.batches == [] and sink.prepared == 0
    assert list(report.sample["change"]) == ["changed", "changed"]
    assert {"member_id", "record_id", "reject_reason", "readiness_score"} <= set(report.sample)
    assert dump(ledger.path) == before
    assert "DRY RUN" in report.summary()


def test_consent_false_members_are_never_sent(ledger):
    preds = make_predictions(6).assign(consent=[True, False, True, False, True, False])
    sink = MemorySink()
    report = push_predictions(preds, sink, ledger)
    assert report.refused_consent == 3
    assert sorted(sink.store) == ["m000000", "m000002", "m000004"]
    assert set(ledger.read_state(sink.key)["member_id"]) == set(sink.store)


def test_stopped_push_leaves_the_rest_pending_and_rerun_sends_only_that(ledger):
    preds = make_predictions(50)
    with pytest.raises(CrmError) as info:
        push_predictions(preds, MemorySink(stop_at_batch=3), ledger)
    message = str(info.value)
    assert "daily limit" in message and "20 sent" in message and "30 still pending" in message
    state = ledger.read_state("memory:test")
    assert state["status"].value_counts().to_dict() == {"pending": 30, "sent": 20}
    sink = MemorySink()
    report = push_predictions(preds, sink, ledger)
    assert (report.retried, report.unchanged, report.sent) == (30, 20, 30)
    sent_first = set(state.loc[state["status"] == "sent", "member_id"])
    assert not sent_first & {m for batch in sink.batches for m in batch}
    assert ledger.history()["state"].tolist() == ["done", "stopped"]


def test_an_unexpected_error_stops_the_push_and_is_raised_unchanged(ledger):
    class Crashing(MemorySink):
        def send_batch(self, batch):
            if len(self.batches) == 2:
                raise RuntimeError("disk full")
            return super().send_batch(batch)

    with pytest.raises(RuntimeError, match="disk full"):
        push_predictions(make_predictions(50), Crashing(), ledger)
    stopped = ledger.history().iloc[0]
    assert (stopped["state"], stopped["sent"], stopped["message"]) == (
        "stopped", 20, "RuntimeError"
    )  # a member's data never lands in the ledger's message, only the error's type
    assert ledger.counts("memory:test") == {"pending": 30, "sent": 20}


def test_refused_records_become_dead_letters_and_are_retried(ledger):
    preds = make_predictions(20)
    report = push_predictions(preds, MemorySink(refuse={"m000003", "m000007"}), ledger)
    assert (report.sent, report.failed) == (18, 2)
    dead = read_dead_letters(ledger)
    assert dead["member_id"].tolist() == ["m000003", "m000007"]
    assert set(dead["reason"]) == {"invalid value"} and set(dead["attempts"]) == {1}
    sink = MemorySink()
    retry = push_predictions(preds, sink, ledger)
    assert (retry.retried, retry.sent) == (2, 2)
    assert read_dead_letters(ledger).empty


def test_several_workers_give_the_same_result(ledger):
    preds = make_predictions(95)
    sink = MemorySink(batch_size=7, workers=3)
    report = push_predictions(preds, sink, ledger)
    assert report.sent == 95 and len(sink.batches) == 14
    ids = [m for batch in sink.batches for m in batch]
    assert sorted(ids) == sorted(preds["member_id"]) and len(ids) == len(set(ids))


def test_worker_error_stops_the_push_and_records_finished_batches(ledger):
    preds = make_predictions(100)
    sink = MemorySink(batch_size=10, workers=2, stop_at_batch=4)
    with pytest.raises(CrmError, match="daily limit"):
        push_predictions(preds, sink, ledger)
    assert sink.cancelled
    counts = ledger.counts("memory:test")
    assert counts["sent"] == 10 * len(sink.batches) and counts["pending"] == 100 - counts["sent"]


def test_bad_predictions_raise_contract_error_before_anything(ledger):
    preds = make_predictions(3)
    preds.loc[2, "member_id"] = "m000000"
    sink = MemorySink()
    with pytest.raises(ContractError, match="duplicated member id"):
        push_predictions(preds, sink, ledger)
    assert sink.batches == [] and ledger.read_state(sink.key).empty


def test_build_sink_errors():
    with pytest.raises(ConfigError, match="unknown sink 'pipedrive'"):
        build_sink("pipedrive")
    with pytest.raises(ConfigError, match="CORECAST_HUBSPOT_TOKEN is not set"):
        build_sink("hubspot")
    with pytest.raises(ConfigError, match="CORECAST_SALESFORCE_INSTANCE_URL"):
        build_sink("salesforce")
    assert build_sink("hubspot", require_credentials=False).kind == "hubspot"


def test_push_from_file_dry_run_creates_no_ledger(tmp_path):
    path = tmp_path / "predictions.parquet"
    make_predictions(12).to_parquet(path)
    ledger_path = tmp_path / "ledger.sqlite"
    options = PushOptions(ledger_path=ledger_path, dry_run=True)
    report = push_from_file(path, "csv", options)
    assert (report.new, report.to_send, report.sent) == (12, 12, 0)
    assert not ledger_path.exists()
    assert not (tmp_path / "corecast-home" / "exports").exists()


def _report_of_a_csv_push(tmp_path):
    from benchmarks.fakes.data import make_predictions
    from serving.crm import CsvConfig, CsvSink, Ledger, push_predictions

    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        return push_predictions(make_predictions(10), CsvSink(CsvConfig(path=tmp_path / "x.csv")),
                                ledger)


def test_delivery_is_judged_against_the_share_asked_for(tmp_path):
    import dataclasses

    from features.errors import DeliveryFailed
    from serving.crm import check_delivery

    report = _report_of_a_csv_push(tmp_path)
    assert report.to_send == report.sent == 10 and check_delivery(report, 0.9) is None
    nothing = dataclasses.replace(
        report, sent=0, failed=10, failure_reasons={"400 INVALID_EMAIL": 10}
    )
    with pytest.raises(DeliveryFailed, match=r"0 of 10 planned records delivered.*400 "
                       r"INVALID_EMAIL \(10\).*corecast push --status"):
        check_delivery(nothing, 0.9)
    some = dataclasses.replace(report, sent=9, failed=1, failure_reasons={"bad email": 1})
    assert check_delivery(some, 0.9).startswith("partial delivery: 9 of 10 planned")
    with pytest.raises(DeliveryFailed):
        check_delivery(some, 0.95)
    assert check_delivery(dataclasses.replace(nothing, dry_run=True), 0.9) is None
    assert check_delivery(dataclasses.replace(report, to_send=0, sent=0), 0.9) is None
    # Nothing delivered is a failure whatever the share asked for.
    with pytest.raises(DeliveryFailed, match=r"0 of 10 .*\(0\.0%\)"):
        check_delivery(nothing, 0.0)
    # The share is shown precisely enough never to contradict the threshold.
    near = dataclasses.replace(report, to_send=292, sent=262, failed=30)
    with pytest.raises(DeliveryFailed, match=r"262 of 292 .*\(89\.7%\).*below"):
        check_delivery(near, 0.9)
