"""corecast pull: HubSpot search and Salesforce SOQL fakes, merge, cursor, idempotence, CLI."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from benchmarks.fakes.hubspot import FakeHubSpot
from benchmarks.fakes.salesforce import FakeSalesforce
from benchmarks.fakes.server import FakeServer, Fault
from features.errors import CrmError
from serving.crm import HubSpotConfig, Ledger, SalesforceConfig
from serving.crm.http import RetryPolicy
from serving.crm.pull import PullOptions, pull_from_options
from serving.crm.ratelimit import ManualClock

TOKEN = "pat-pull-0123456789"
SF_TOKEN = "sf-pull-token"
T0 = 1_714_550_400_000  # 2024-05-01T08:00:00Z in ms
FAST = RetryPolicy(backoff_base_s=0.01, backoff_max_s=0.02, read_timeout_s=5.0)


@pytest.fixture()
def hubspot(monkeypatch):
    monkeypatch.setenv("CORECAST_HUBSPOT_TOKEN", TOKEN)
    app = FakeHubSpot(TOKEN)
    with FakeServer(app) as server:
        app.url = server.url
        yield app


@pytest.fixture()
def salesforce(monkeypatch):
    monkeypatch.setenv("CORECAST_SALESFORCE_TOKEN", SF_TOKEN)
    app = FakeSalesforce(SF_TOKEN)
    with FakeServer(app) as server:
        app.url = server.url
        yield app


def now_at(ms: int):
    return lambda: pd.Timestamp(ms, unit="ms")


def hs_options(fake, tmp_path, **extra) -> PullOptions:
    return PullOptions(
        ledger_path=tmp_path / "ledger.sqlite",
        hubspot=HubSpotConfig(base_url=fake.url, id_property="corecast_member_id", retry=FAST),
        **extra,
    )


def pull_hs(fake, tmp_path, now_ms, clock=None, **extra):
    clock = clock or ManualClock()
    return pull_from_options(
        "hubspot", tmp_path / "data", hs_options(fake, tmp_path, **extra),
        clock=clock.as_clock(), now=now_at(now_ms),
    )


def contact(fake, i: int, ms: int, outcome="pending", segment="ready-now", **props):
    return fake.set_contact(
        f"m{i:05d}", ms, corecast_outreach_outcome=outcome, corecast_outreach_at="2024-04-30",
        corecast_segment=segment, **props,
    )


def cursor(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite", readonly=True) as ledger:
        rows = ledger._conn.execute(
            "SELECT value FROM meta WHERE key LIKE 'pull-cursor:%'"
        ).fetchall()
    return [r[0] for r in rows]


def stored(tmp_path) -> pd.DataFrame:
    return pd.read_parquet(tmp_path / "data" / "outreach.parquet")


# -- HubSpot -----------------------------------------------------------------------------------

def test_hubspot_pull_creates_properties_reads_and_is_idempotent(hubspot, tmp_path):
    for i in range(5):
        contact(hubspot, i, T0 + i * 1000, segment="ready-now" if i % 2 else "at-risk")
    hubspot.set_contact("m00009", T0, firstname="no outcome")
    report = pull_hs(hubspot, tmp_path, T0 + 60_000)
    assert "corecast_outreach_outcome" in hubspot.properties
    assert hubspot.properties["corecast_outreach_outcome"]["type"] == "enumeration"
    assert hubspot.properties["corecast_outreach_at"]["type"] == "date"
    assert (report.read, report.added, report.updated) == (5, 5, 0)
    frame = stored(tmp_path)
    assert sorted(frame["member_id"]) == [f"m{i:05d}" for i in range(5)]
    assert set(frame.loc[frame["member_id"] == "m00000", "purpose"]) == {"retention"}
    assert set(frame.loc[frame["member_id"] == "m00001", "purpose"]) == {"readiness"}
    before = (tmp_path / "data" / "outreach.parquet").read_bytes()
    again = pull_hs(hubspot, tmp_path, T0 + 120_000)
    assert (again.added, again.updated, again.written) == (0, 0, False)
    assert (tmp_path / "data" / "outreach.parquet").read_bytes() == before
    assert cursor(tmp_path) == [pd.Timestamp(T0 + 4000, unit="ms").isoformat()]


def test_a_later_outcome_replaces_the_pending_one(hubspot, tmp_path):
    contact(hubspot, 1, T0)
    pull_hs(hubspot, tmp_path, T0 + 1000)
    contact(hubspot, 1, T0 + 5000, outcome="accepted", segment="ambassador")
    report = pull_hs(hubspot, tmp_path, T0 + 10_000)
    assert (report.added, report.updated) == (0, 1)
    frame = stored(tmp_path)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert (row["outcome"], row["purpose"]) == ("accepted", "readiness")  # purpose kept
    assert row["outcome_at"] == pd.Timestamp(T0 + 5000, unit="ms")


def test_cursor_never_skips_a_record_modified_in_the_cursor_millisecond(hubspot, tmp_path):
    contact(hubspot, 1, T0)
    pull_hs(hubspot, tmp_path, T0 + 1, overlap_s=0.0)
    assert cursor(tmp_path) == [pd.Timestamp(T0, unit="ms").isoformat()]
    contact(hubspot, 2, T0)  # same millisecond as the cursor, seen only now
    report = pull_hs(hubspot, tmp_path, T0 + 2, overlap_s=0.0)
    assert (report.added, report.unchanged) == (1, 1)  # m1 read again, not counted twice
    assert sorted(stored(tmp_path)["member_id"]) == ["m00001", "m00002"]


def test_records_modified_while_paging_are_not_skipped(hubspot, tmp_path):
    for i in range(250):
        contact(hubspot, i, T0 + i)

    def edit_during_the_pull(number):
        if number == 2:  # between the first and the second page
            contact(hubspot, 3, T0 + 100_000, outcome="accepted")

    hubspot.on_search = edit_during_the_pull
    report = pull_hs(hubspot, tmp_path, T0 + 50_000)
    frame = stored(tmp_path)
    assert frame["member_id"].nunique() == 250 and report.added == 250
    # m3 left the window while paging: read at its old value now, its new one next time
    hubspot.on_search = None
    later = pull_hs(hubspot, tmp_path, T0 + 200_000)
    assert later.updated == 1
    assert stored(tmp_path).set_index("member_id").loc["m00003", "outcome"] == "accepted"


def test_a_window_over_10000_results_is_split(hubspot, tmp_path):
    for i in range(10_050):
        contact(hubspot, i, T0 + i * 10)
    clock = ManualClock()
    report = pull_hs(hubspot, tmp_path, T0 + 200_000, clock=clock)
    assert report.added == 10_050
    windows = {
        tuple(f.get("value") for f in body["filterGroups"][0]["filters"][1:])
        for body in hubspot.search_requests
    }
    assert len(windows) >= 3  # the whole window, then its halves
    assert all(int(b.get("after") or 0) < 10_000 for b in hubspot.search_requests)
    # 4 searches per second at most (on the injected clock)
    assert sum(clock.sleeps) >= (len(hubspot.search_requests) - 4) / 4 - 1


def test_429_is_waited_out(hubspot, tmp_path):
    contact(hubspot, 1, T0)
    hubspot.faults.add(Fault("rate_limit", policy="SECONDLY", path="/search"), times=2)
    hubspot.faults.add(Fault("rate_limit", retry_after="3", path="/search"))
    clock = ManualClock()
    report = pull_hs(hubspot, tmp_path, T0 + 1000, clock=clock)
    assert report.added == 1 and len(hubspot.faults) == 0
    assert clock.sleeps.count(1.0) >= 2 and 3.0 in clock.sleeps


def test_daily_limit_stops_the_pull_and_writes_nothing(hubspot, tmp_path):
    contact(hubspot, 1, T0)
    hubspot.faults.add(Fault("rate_limit", policy="DAILY", path="/search"))
    with pytest.raises(CrmError, match="daily"):
        pull_hs(hubspot, tmp_path, T0 + 1000)
    assert not (tmp_path / "data" / "outreach.parquet").exists() and cursor(tmp_path) == []


def test_a_pull_failing_between_pages_leaves_file_and_cursor_then_reruns_fully(
    hubspot, tmp_path
):
    for i in range(150):
        contact(hubspot, i, T0 + i)
    pull_hs(hubspot, tmp_path, T0 + 100)  # first 101 contacts
    before = (tmp_path / "data" / "outreach.parquet").read_bytes()
    old_cursor = cursor(tmp_path)
    for i in range(150, 400):
        contact(hubspot, i, T0 + 1000 + i)

    def fail_after_first_page(number):
        if number == 3:  # the pull's first page is search 2: the CRM goes down after it
            hubspot.faults.add(Fault("status", status=503, path="/search"), times=10)

    hubspot.on_search = fail_after_first_page
    with pytest.raises(CrmError):
        pull_hs(hubspot, tmp_path, T0 + 10_000)
    assert (tmp_path / "data" / "outreach.parquet").read_bytes() == before
    assert cursor(tmp_path) == old_cursor
    hubspot.on_search = None
    hubspot.faults = type(hubspot.faults)()
    report = pull_hs(hubspot, tmp_path, T0 + 10_000)
    assert stored(tmp_path)["member_id"].nunique() == 400 and report.added == 299


def test_dry_run_reads_and_writes_nothing(hubspot, tmp_path):
    hubspot.properties["corecast_outreach_outcome"] = {"name": "corecast_outreach_outcome",
                                                       "type": "enumeration"}
    contact(hubspot, 1, T0)
    report = pull_hs(hubspot, tmp_path, T0 + 1000, dry_run=True)
    assert report.dry_run and report.added == 1 and not report.written
    assert not (tmp_path / "data").exists()
    assert not (tmp_path / "ledger.sqlite").exists()
    assert "corecast_outreach_at" not in hubspot.properties  # no CRM set-up either


def test_contacts_without_member_or_date_are_skipped_and_counted(hubspot, tmp_path):
    contact(hubspot, 1, T0)
    hubspot.set_contact("m00002", T0, corecast_outreach_outcome="declined",
                        corecast_segment="steady", corecast_outreach_at="2024-04-30")
    hubspot.set_contact("m00003", T0, corecast_outreach_outcome="declined")
    report = pull_hs(hubspot, tmp_path, T0 + 1000)
    assert report.added == 1
    assert report.skipped == {"no corecast_outreach_at": 1,
                              "no purpose (fill the outreach purpose)": 1}


# -- Salesforce --------------------------------------------------------------------------------

def sf_time(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_salesforce_tasks_paged_merged_and_idempotent(salesforce, tmp_path):
    salesforce.query_batch = 2
    who = [salesforce.add_record(Corecast_Member_Id__c=f"m{i}", Corecast_Segment__c=seg,
                                 LastName="x")
           for i, seg in enumerate(["ready-now", "at-risk", "steady"])]
    for i, w in enumerate(who):
        salesforce.add_task(WhoId=w, Status="Completed", Corecast_Outcome__c="declined",
                            Corecast_Purpose__c="retention" if i == 2 else None,
                            ActivityDate="2024-04-29", CreatedDate=sf_time(T0),
                            CompletedDateTime=sf_time(T0 + 500), TaskSubtype="Call",
                            OwnerId="005A", LastModifiedDate=sf_time(T0 + i))
    salesforce.add_task(WhoId=who[0], Status="Not Started", Corecast_Outcome__c=None,
                        LastModifiedDate=sf_time(T0))
    options = PullOptions(
        ledger_path=tmp_path / "ledger.sqlite",
        salesforce=SalesforceConfig(instance_url=salesforce.url, retry=FAST),
    )
    report = pull_from_options("salesforce", tmp_path / "data", options, now=now_at(T0 + 1000))
    assert report.added == 3
    frame = stored(tmp_path).set_index("member_id")
    assert frame.loc["m0", "purpose"] == "readiness" and frame.loc["m1", "purpose"] == "retention"
    assert frame.loc["m0", "channel"] == "call"
    assert frame.loc["m0", "outcome_at"] == pd.Timestamp(T0 + 500, unit="ms")
    assert any("nextRecordsUrl" not in q for q in salesforce.queries)
    task_queries = [q for q in salesforce.queries if "FROM Task" in q]
    assert "LastModifiedDate >=" not in task_queries[0]
    again = pull_from_options("salesforce", tmp_path / "data", options, now=now_at(T0 + 2000))
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
    assert "LastModifiedDate >=" in [q for q in salesforce.queries if "FROM Task" in q][-1]


def test_salesforce_429_is_retried(salesforce, tmp_path):
    w = salesforce.add_record(Corecast_Member_Id__c="m1", Corecast_Segment__c="nurture")
    salesforce.add_task(WhoId=w, Status="Open", Corecast_Outcome__c="pending",
                        ActivityDate="2024-04-29", LastModifiedDate=sf_time(T0))
    salesforce.faults.add(Fault("status", status=429, path="/query"), times=2)
    options = PullOptions(
        ledger_path=tmp_path / "ledger.sqlite",
        salesforce=SalesforceConfig(instance_url=salesforce.url, retry=FAST),
    )
    clock = ManualClock()
    report = pull_from_options("salesforce", tmp_path / "data", options,
                               clock=clock.as_clock(), now=now_at(T0 + 1000))
    assert report.added == 1 and len(salesforce.faults) == 0


# -- CSV and the command line ------------------------------------------------------------------

HEADER = ("email,corecast_member_id,corecast_segment,outreach_at,outreach_outcome,"
          "outreach_purpose,outreach_channel\n")


def run_cli(*args):
    from pipelines.cli import app

    return CliRunner().invoke(app, list(args))


def test_cli_pulls_a_filled_csv_and_again_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    filled = tmp_path / "filled.csv"
    filled.write_text(HEADER + "a@x.org,m1,ready-now,2024-05-01,accepted,,phone\n"
                      "b@x.org,m2,at-risk,,,,\n")
    args = ["pull", "--from", "csv", "--file", str(filled), "--out", str(tmp_path / "data"),
            "--ledger", str(tmp_path / "ledger.sqlite")]
    first = run_cli(*args)
    assert first.exit_code == 0, first.output
    assert "1 added" in first.output
    before = (tmp_path / "data" / "outreach.parquet").read_bytes()
    second = run_cli(*args)
    assert second.exit_code == 0 and "0 added, 0 updated, 1 unchanged" in second.output
    assert (tmp_path / "data" / "outreach.parquet").read_bytes() == before


def test_an_export_nobody_filled_in_writes_nothing(tmp_path):
    from benchmarks.fakes.data import make_predictions
    from serving.crm import CsvConfig, CsvSink

    sink = CsvSink(CsvConfig(folder=tmp_path / "exports"))
    preds = make_predictions(3)
    sink.send_batch(sink.render(preds))
    written = sink.files_written[0]
    assert written.read_text().splitlines()[0].endswith(
        "outreach_at,outreach_outcome,outreach_purpose,outreach_channel"
    )
    exports = CsvConfig(folder=tmp_path / "exports")
    options = PullOptions(ledger_path=tmp_path / "l.sqlite", csv=exports)
    report = pull_from_options("csv", tmp_path / "data", options)
    assert (report.read, report.written) == (0, False)
    assert not (tmp_path / "data" / "outreach.parquet").exists()


def test_cli_refuses_a_bad_csv_naming_line_and_column(tmp_path, monkeypatch):
    from features.errors import ContractError
    from pipelines.cli import exit_code

    monkeypatch.chdir(tmp_path)
    filled = tmp_path / "filled.csv"
    filled.write_text(HEADER + "b@x.org,m2,at-risk,,,,\n"
                      "a@x.org,m1,ready-now,2024-05-01,maybe,,phone\n")
    result = run_cli("pull", "--from", "csv", "--file", str(filled),
                     "--out", str(tmp_path / "data"), "--ledger", str(tmp_path / "l.sqlite"))
    assert isinstance(result.exception, ContractError)
    assert exit_code(result.exception) == 2
    message = str(result.exception)
    assert "column outreach_outcome" in message and "line 3" in message
    assert not (tmp_path / "data").exists()


def test_cli_usage_errors(tmp_path, monkeypatch):
    from features.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    unknown = run_cli("pull", "--from", "webhook", "--out", str(tmp_path))
    assert isinstance(unknown.exception, ConfigError) and "--from" in str(unknown.exception)
    missing = run_cli("pull", "--from", "csv")
    assert missing.exit_code == 2 and "--out" in missing.output


def test_the_newest_export_is_found_where_push_and_the_runs_write_them(tmp_path, monkeypatch):
    from features.errors import ConfigError
    from serving.crm.pull import newest_export

    monkeypatch.setenv("CORECAST_HOME", str(tmp_path / "home"))
    with pytest.raises(ConfigError, match="--file"):
        newest_export(PullOptions())
    pushed = tmp_path / "home" / "exports" / "crm-push-20240101T000000Z.csv"
    ran = tmp_path / "home" / "out" / "crm-exports" / "crm-push-20240301T000000Z.csv"
    for path in (pushed, ran):
        path.parent.mkdir(parents=True)
        path.write_text("email\n", encoding="utf-8")
    assert newest_export(PullOptions()) == ran  # the later push, whichever folder holds it
    given = tmp_path / "filled.csv"
    assert newest_export(PullOptions(file=given)) == given


@pytest.mark.slow
def test_a_pull_killed_mid_way_leaves_file_and_cursor_and_the_rerun_completes(
    hubspot, tmp_path
):
    import os
    import signal
    import subprocess
    import sys
    import threading
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for i in range(150):
        contact(hubspot, i, T0 + i)
    pull_hs(hubspot, tmp_path, T0 + 100)  # the first 101 contacts, a cursor
    before = (tmp_path / "data" / "outreach.parquet").read_bytes()
    old_cursor = cursor(tmp_path)
    for i in range(150, 400):
        contact(hubspot, i, T0 + 1000 + i)
    reached, release = threading.Event(), threading.Event()

    def hang_on_the_second_page(number):
        if number == 3:  # the process has read one page of the new contacts
            reached.set()
            release.wait(30)

    hubspot.on_search = hang_on_the_second_page
    command = [
        sys.executable, "-m", "pipelines.cli", "pull", "--from", "hubspot",
        "--hubspot-url", hubspot.url, "--out", str(tmp_path / "data"),
        "--ledger", str(tmp_path / "ledger.sqlite"),
    ]
    env = dict(os.environ, CORECAST_HUBSPOT_TOKEN=TOKEN, PYTHONPATH=str(root),
               CORECAST_HOME=str(tmp_path / "home"))
    process = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        assert reached.wait(60), process.communicate(timeout=5)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        release.set()
    assert process.returncode == -signal.SIGKILL
    assert (tmp_path / "data" / "outreach.parquet").read_bytes() == before
    assert cursor(tmp_path) == old_cursor
    hubspot.on_search = None
    rerun = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True,
                           timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert stored(tmp_path)["member_id"].nunique() == 400


def test_outcomes_of_members_the_data_does_not_know_are_skipped_and_counted(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"member_id": ["m1", "m2"], "joined_at": ["2024-01-01"] * 2}).to_csv(
        data / "members.csv", index=False
    )
    filled = tmp_path / "filled.csv"
    filled.write_text(HEADER + "a@x.org,m1,ready-now,2024-05-01,accepted,,phone\n"
                      "g@x.org,m999,at-risk,2024-05-02,declined,,\n")
    result = run_cli("pull", "--from", "csv", "--file", str(filled), "--out", str(data),
                     "--ledger", str(tmp_path / "ledger.sqlite"))
    assert result.exit_code == 3, result.output  # some outcomes could not be used
    assert "1 added" in result.output and "member not in the data's members table" in result.output
    assert stored(tmp_path)["member_id"].tolist() == ["m1"]


@pytest.mark.parametrize(("content", "said"), [
    ("", "the file is empty"),
    ("email;corecast_member_id\na@x.org;m1\n", "missing column"),
])
def test_an_empty_or_foreign_csv_is_a_clear_error(tmp_path, content, said):
    from features.errors import ContractError

    filled = tmp_path / "filled.csv"
    filled.write_text(content)
    result = run_cli("pull", "--from", "csv", "--file", str(filled), "--out",
                     str(tmp_path / "data"), "--ledger", str(tmp_path / "ledger.sqlite"))
    assert isinstance(result.exception, ContractError), result.output
    assert said in str(result.exception)
    assert not (tmp_path / "data" / "outreach.parquet").exists()


def test_a_corrupt_outreach_file_is_named_and_left_alone(tmp_path):
    from features.errors import ContractError

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "outreach.parquet").write_text("junk")
    filled = tmp_path / "filled.csv"
    filled.write_text(HEADER + "a@x.org,m1,ready-now,2024-05-01,accepted,,phone\n")
    result = run_cli("pull", "--from", "csv", "--file", str(filled), "--out",
                     str(tmp_path / "data"), "--ledger", str(tmp_path / "ledger.sqlite"))
    assert isinstance(result.exception, ContractError)
    assert "outreach.parquet: cannot be read as the outreach table" in str(result.exception)
    assert (tmp_path / "data" / "outreach.parquet").read_text() == "junk"
