"""CSV sink: contents, delta files, atomic writes."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks.fakes.data import change_scores, make_predictions
from serving.crm import CsvConfig, CsvSink, Ledger, push_predictions
from serving.crm.records import MEMBER_KEY


@pytest.fixture()
def ledger(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite") as opened:
        yield opened


def test_csv_holds_email_and_properties(tmp_path, ledger):
    target = tmp_path / "out" / "push.csv"
    preds = make_predictions(4, email_missing_every=4)
    report = push_predictions(preds, CsvSink(CsvConfig(path=target)), ledger)
    # the member without an email is refused, as the HubSpot sink refuses it
    assert (report.sent, report.rejected, report.failure_reasons) == (3, 1, {"no email": 1})
    written = pd.read_csv(target, dtype=str, keep_default_na=False)
    assert list(written.columns[:3]) == ["email", "corecast_member_id", "corecast_readiness_score"]
    assert "" not in written["email"].tolist()
    assert written["corecast_member_id"].tolist() == ["m000000", "m000001", "m000002"]
    assert written.loc[0, "corecast_model_versions"] == "readiness=3; disengagement=5"
    assert written.loc[0, "corecast_readiness_method"] == "model"
    assert written.loc[0, "corecast_readiness_validated"] == "true"
    assert written.loc[0, "corecast_disengagement_method"] == "rule:silence_vs_rhythm"
    assert written.loc[0, "corecast_disengagement_validated"] == "false"
    assert [p.name for p in target.parent.iterdir()] == ["push.csv"]  # no temporary left


def test_delta_export_writes_a_new_file_with_only_changes(tmp_path, ledger):
    folder = tmp_path / "exports"
    times = iter([pd.Timestamp("2024-05-06 07:00:00"), pd.Timestamp("2024-05-13 07:00:00")])
    sink = CsvSink(CsvConfig(folder=folder), now=lambda: next(times).to_pydatetime())
    preds = make_predictions(40)
    push_predictions(preds, sink, ledger)
    report = push_predictions(change_scores(preds, 0.1), sink, ledger)
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == ["crm-push-20240506T070000000000Z.csv",
                                       "crm-push-20240513T070000000000Z.csv"]
    assert len(pd.read_csv(files[1])) == report.sent == 4


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, ledger, monkeypatch):
    target = tmp_path / "push.csv"
    target.write_text("previous export\n")
    sink = CsvSink(CsvConfig(path=target))

    def broken(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(Exception, match="No space left"):
        push_predictions(make_predictions(3), sink, ledger)
    assert target.read_text() == "previous export\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert ledger.counts(sink.key) == {"pending": 3}


def test_render_keeps_member_key():
    sink = CsvSink(CsvConfig(path="x.csv"))
    rendered = sink.render(make_predictions(2))
    assert rendered[MEMBER_KEY].tolist() == ["m000000", "m000001"]


def test_cells_a_spreadsheet_would_run_as_formulas_are_written_as_text(tmp_path, ledger):
    target = tmp_path / "push.csv"
    preds = make_predictions(3)
    preds["reasons"] = pd.Series(
        ['=HYPERLINK("http://127.0.0.1/x","call")', "@SUM(A1:A9)", "steady; 12 activities"],
        dtype=object,
    )
    preds["email"] = pd.Series(["=1+2@example.org", "b@example.org", "c@example.org"],
                               dtype=object)
    push_predictions(preds, CsvSink(CsvConfig(path=target)), ledger)
    written = pd.read_csv(target, dtype=str, keep_default_na=False)
    assert written["corecast_reasons"].tolist() == [
        '\'=HYPERLINK("http://127.0.0.1/x","call")', "'@SUM(A1:A9)", "steady; 12 activities"
    ]
    assert written.loc[0, "email"] == "'=1+2@example.org"


def test_numbers_with_a_sign_are_not_taken_for_formulas():
    from serving.crm.csvsink import neutralise_formulas

    values = pd.Series(["-3", "-0.25", "+1e5", "-", "\tx", "plain", ""])
    assert neutralise_formulas(values).tolist() == ["-3", "-0.25", "+1e5", "'-", "'\tx",
                                                    "plain", ""]
