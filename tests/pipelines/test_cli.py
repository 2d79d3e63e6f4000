"""Argument errors of ``corecast run``, ``serve`` and ``ui``: clear messages, nothing started."""

from __future__ import annotations

import socket
import sys

import pytest
from typer.testing import CliRunner

from features.errors import ConfigError
from pipelines.cli import app, main
from pipelines.deploy import check_cron, check_timezone

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture()
def data_dir(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    return str(folder)


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 6 * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
        ("0 6 * * 1 2024", "got 6"),
        ("61 6 * * 1", "'61 6 * * 1' is not a valid cron expression"),
        ("0 6 * * funday", "not a valid cron expression"),
        ("", "got 0"),
    ],
)
def test_serve_rejects_a_bad_weekly_cron(data_dir, cron, message):
    result = invoke("serve", "--data", data_dir, "--weekly", cron)
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception).startswith("--weekly: ")
    assert message in str(result.exception)
    assert "e.g. '0 6 * * 1'" in str(result.exception)


def test_serve_rejects_a_bad_monthly_cron_and_a_bad_timezone(data_dir):
    result = invoke("serve", "--data", data_dir, "--monthly", "0 5 32 * *")
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception).startswith("--monthly: '0 5 32 * *' is not a valid cron")
    result = invoke("serve", "--data", data_dir, "--timezone", "Europe/Pariss")
    assert isinstance(result.exception, ConfigError)
    assert "'Europe/Pariss' is not an IANA time zone name" in str(result.exception)
    assert "did you mean Europe/Paris" in str(result.exception)
    result = invoke("serve", "--data", data_dir, "--tz", "CEST+2")
    assert "is not an IANA time zone name" in str(result.exception)


def test_serve_checks_the_data_folder_and_the_sink(tmp_path, data_dir):
    result = invoke("serve", "--data", str(tmp_path / "nowhere"))
    assert isinstance(result.exception, ConfigError)
    assert "does not exist" in str(result.exception)
    result = invoke("serve", "--data", data_dir, "--to", "fax")
    assert "--to: Input should be 'csv', 'hubspot', 'salesforce', 'webhook' or 'none'" in str(
        result.exception
    )


def test_run_rejects_bad_arguments_before_starting_anything(tmp_path, data_dir):
    result = invoke("run", "--data", data_dir, "--to", "excel")
    assert isinstance(result.exception, ConfigError) and "'excel'" in str(result.exception)
    result = invoke("run", "--data", data_dir, "--as-of", "31/12/2024")
    assert isinstance(result.exception, ConfigError)
    assert "--as-of: '31/12/2024' is not a date (YYYY-MM-DD)" == str(result.exception)
    result = invoke("run", "--data", str(tmp_path / "missing"))
    assert isinstance(result.exception, ConfigError)
    result = invoke("run", "--data", data_dir, "--capacity", "-1")
    assert result.exit_code == 2 and "--capacity" in result.output


def test_bad_flow_parameters_become_a_config_error(data_dir):
    from pipelines.cli import _run_flow
    from pipelines.flows import weekly_flow

    result = invoke("run", "--data", data_dir, "--at-risk", "1.5")
    assert result.exit_code == 2 and "--at-risk" in result.output
    with pytest.raises(ConfigError, match="(?s)corecast-weekly: invalid parameters.*at_risk"):
        _run_flow(weekly_flow, data=data_dir, segments={"at_risk": 1.5})


def test_ui_refuses_a_port_in_use():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("ui", "--port", str(port))
    assert isinstance(result.exception, ConfigError)
    assert f"127.0.0.1:{port} is already in use" in str(result.exception)


def test_main_prints_one_line_and_exits_2(monkeypatch, capsys, data_dir):
    monkeypatch.setattr(sys, "argv", ["corecast", "serve", "--data", data_dir, "--tz", "Mars"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "'Mars' is not an IANA time zone name" in err
    assert "Traceback" not in err


def test_check_helpers_normalise_valid_values():
    assert check_cron("  0   6 * *  1 ") == "0 6 * * 1"
    assert check_cron("*/15 8-18 * * mon-fri") == "*/15 8-18 * * mon-fri"
    assert check_timezone("Europe/Paris") == "Europe/Paris"
    with pytest.raises(ConfigError, match="'H 6 \\* \\* 1' is not a valid cron expression"):
        check_cron("H 6 * * 1")


def test_run_refuses_quarantine_with_dask_and_bad_on_invalid_values(data_dir):
    result = invoke("run", "--data", data_dir, "--on-invalid", "quarantine", "--dask")
    assert isinstance(result.exception, ConfigError)
    assert "quarantine is not available with Dask scoring" in str(result.exception)
    result = invoke("run", "--data", data_dir, "--on-invalid", "sometimes")
    assert result.exit_code == 2 and "--on-invalid" in result.output


def test_run_passes_the_loading_options_to_the_flow_and_prints_what_was_set_aside(
    data_dir, tmp_path, monkeypatch
):
    seen = {}
    line = "activities: 1 of 200 rows quarantined (0.50%): unknown_member 1 -> /q/a.csv"

    def fake_run_flow(flow, **parameters):
        seen.update(parameters, flow=flow.name)
        return {
            "as_of": "2024-03-02", "members_scored": 3, "models": {}, "segments": {},
            "push": None, "quarantine": {"lines": [line]},
        }

    monkeypatch.setattr("pipelines.cli._run_flow", fake_run_flow)
    result = invoke("run", "--data", data_dir, "--on-invalid", "quarantine",
                    "--max-invalid-share", "0.02", "--quarantine-dir", str(tmp_path / "q"))
    assert result.exit_code == 0, result.output
    assert seen["flow"] == "corecast-weekly"
    loading = seen["loading"]
    assert (loading.on_invalid, loading.max_invalid_share) == ("quarantine", 0.02)
    assert loading.quarantine_dir == (tmp_path / "q").resolve()
    assert line in result.output
    invoke("run", "--data", data_dir, "--retrain")
    assert seen["flow"] == "corecast-monthly" and seen["loading"].on_invalid == "strict"


def test_a_user_error_is_logged_without_its_traceback_and_a_bug_with_it():
    import logging

    from features.errors import ContractError
    from pipelines.cli import _UserErrorFilter

    def record_of(exc):
        try:
            raise exc
        except Exception:  # noqa: BLE001 - the record carries whatever was raised
            return logging.LogRecord("prefect.task_runs", logging.ERROR, __file__, 1,
                                     "Task run failed with exception: %r", (exc,), sys.exc_info())

    user = record_of(ContractError("members.csv, column joined_at: 1 row"))
    assert _UserErrorFilter().filter(user) and user.exc_info is None
    assert "members.csv" in user.getMessage()
    bug = record_of(RuntimeError("a bug"))
    assert _UserErrorFilter().filter(bug) and bug.exc_info[0] is RuntimeError


def test_run_and_serve_keep_a_data_password_out_of_the_stored_flow_parameters(
    tmp_path, monkeypatch
):
    import os

    seen = {}
    url = "postgresql+psycopg2://bob:p%40ss-word@127.0.0.1:5432/community"

    def fake_run_flow(flow, **parameters):
        seen.update(parameters)
        return {"as_of": "2024-03-02", "members_scored": 3, "models": {}, "segments": {},
                "push": None, "quarantine": None}

    monkeypatch.setattr("pipelines.cli._run_flow", fake_run_flow)
    monkeypatch.delenv("CORECAST_DATA_PASSWORD", raising=False)
    result = invoke("run", "--data", url, "--to", "none", "--min-delivered-share", "0.5",
                    "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert seen["data"] == (
        "postgresql+psycopg2://bob:${CORECAST_DATA_PASSWORD}@127.0.0.1:5432/community"
    )
    assert "p@ss-word" not in repr(seen) and "p%40ss-word" not in repr(seen)
    assert os.environ["CORECAST_DATA_PASSWORD"] == "p@ss-word"
    assert "${CORECAST_DATA_PASSWORD}" in result.output and "p@ss" not in result.output
    assert seen["delivery"].min_delivered_share == 0.5

    served = {}
    monkeypatch.setattr("pipelines.cli._serve",
                        lambda build, w, m, tz, parameters, api, *rest: served.update(parameters))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    result = invoke("serve", "--data", url, "--min-delivered-share", "0.25")
    assert result.exit_code == 0, result.output
    assert served["data"] == seen["data"] and served["delivery"].min_delivered_share == 0.25

    result = invoke("run", "--data", url, "--min-delivered-share", "1.5")
    assert result.exit_code == 2 and "--min-delivered-share" in result.output

    # A secret query value moves too; a CRM URL carrying a credential is refused.
    result = invoke("run", "--data", url + "?sslpassword=QPW&sslmode=require", "--to", "none",
                    "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "QPW" not in repr(seen) and os.environ["CORECAST_DATA_PASSWORD_SSLPASSWORD"] == "QPW"
    assert seen["data"].endswith("?sslmode=require"
                                 "&sslpassword=${CORECAST_DATA_PASSWORD_SSLPASSWORD}")
    for crm_url in ("http://hook:HOOKSECRET@127.0.0.1:9/hook", "http://127.0.0.1:9/h?token=T"):
        seen.clear()
        result = invoke("run", "--data", url, "--to", "webhook", "--crm-url", crm_url)
        assert isinstance(result.exception, ConfigError) and not seen  # main() exits 2
        assert "CORECAST_WEBHOOK_URL" in str(result.exception)
        assert "HOOKSECRET" not in str(result.exception)
