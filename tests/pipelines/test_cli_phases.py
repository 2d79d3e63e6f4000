"""The phases the long commands of ``pipelines.cli`` are made of, one by one: settings given,
checks, parameters built, runs and printing."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from features.errors import ConfigError
from pipelines import cli

runner = CliRunner()


def test_capacity_share_takes_the_former_name_with_a_warning_but_not_both(capsys):
    assert cli._capacity_share(0.05, None) == 0.05
    assert cli._capacity_share(None, None) is None
    assert cli._capacity_share(None, 0.02) == 0.02
    assert "now --capacity-share" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="former name of --capacity-share"):
        cli._capacity_share(0.05, 0.02)


def test_frame_config_is_none_unless_a_frame_option_is_given():
    from features.frames import FrameConfig
    from models.train import DEFAULT_SNAPSHOTS

    assert cli._frame_config(None, None, None, None) is None
    frame = cli._frame_config("14d", None, "2024-03-01", 0)
    base = FrameConfig()
    assert (frame.every_days, frame.snapshots, frame.max_rows) == (14, DEFAULT_SNAPSHOTS, None)
    assert frame.until.strftime("%Y-%m-%d") == "2024-03-01"
    assert cli._frame_config(None, 5, None, None).max_rows == base.max_rows
    with pytest.raises(ConfigError, match="--until"):
        cli._frame_config(None, None, "March", None)


def test_train_configs_carry_the_training_section_to_both_targets():
    from pipelines.project import Project

    training = Project.model_validate(
        {"training": {"capacity": 0.05, "chapter_top": 4, "tolerance": 0.01}}
    ).training
    configs = cli._train_configs(training)
    assert sorted(configs) == ["disengagement", "readiness"]
    for target, config in configs.items():
        assert config.target == target
        assert (config.capacity_share, config.chapter_top, config.promotion_tolerance) == (
            0.05, 4, 0.01
        )


def _push_section(**values):
    from pipelines.project import Project

    return Project.model_validate({"push": values}).push


def test_check_push_target_refuses_none_and_a_credential_in_a_url():
    cli._check_push_target(_push_section(to="csv"), None, "https://example.test/hook")
    with pytest.raises(ConfigError, match="sends nothing"):
        cli._check_push_target(_push_section(to="none"), None)
    with pytest.raises(ConfigError):
        cli._check_push_target(_push_section(to="webhook"), "https://bob:secret@example.test/")


def test_push_options_and_sink_settings_given_on_the_command_line(tmp_path):
    from serving.crm import PushOptions

    wanted = _push_section(to="csv", min_delivered_share=0.5)
    options = cli._push_options(wanted, tmp_path / "ledger", True, False, ["NONE"])
    assert (options.ledger_path, options.full, options.dry_run) == (tmp_path / "ledger", True,
                                                                    False)
    assert options.min_delivered_share == 0.5 and options.volatile_fields == ()
    assert cli._push_options(wanted, None, False, True, ["as_of"]).volatile_fields == ("as_of",)
    assert cli._push_options(wanted, None, False, True, None).volatile_fields == (
        PushOptions().volatile_fields
    )

    same = cli._with_sink_settings(options)
    assert same == options
    changed = cli._with_sink_settings(
        options, hubspot_url="https://hub.test", id_property="member_key",
        salesforce_url="https://sf.test", webhook_url="https://hook.test",
        csv_path=tmp_path / "out.csv",
    )
    assert (changed.hubspot.base_url, changed.hubspot.id_property) == ("https://hub.test",
                                                                      "member_key")
    assert changed.salesforce.instance_url == "https://sf.test"
    assert changed.webhook.url == "https://hook.test"
    assert changed.csv.path == tmp_path / "out.csv"


def test_sink_settings_apply_to_pull_options_too(tmp_path):
    from serving.crm.pull import PullOptions

    options = cli._with_sink_settings(
        PullOptions(), hubspot_url="https://hub.test", csv_path=tmp_path / "in.csv"
    )
    assert options.hubspot.base_url == "https://hub.test"
    assert options.hubspot.id_property == PullOptions().hubspot.id_property
    assert options.csv.path == tmp_path / "in.csv"


def test_pull_source_is_from_or_the_push_sink_and_says_which_was_wrong():
    assert cli._pull_source("csv", "webhook") == "csv"
    assert cli._pull_source(None, "hubspot") == "hubspot"
    with pytest.raises(ConfigError, match="got 'webhook'$"):
        cli._pull_source("webhook", "csv")
    with pytest.raises(ConfigError, match=r"\(from push.to of the project file\)"):
        cli._pull_source(None, "webhook")


def test_push_status_prints_the_ledger_and_the_dead_letters(tmp_path):
    result = runner.invoke(cli.app, ["push", "--status", "--ledger", str(tmp_path / "l.sqlite")])
    assert result.exit_code == 0, result.output
    assert "Delivery ledger" in result.output and "Dead letters" in result.output


def _project(data: Path, **sections):
    from pipelines.project import Project

    return Project.model_validate({"data": {"source": str(data)}, **sections})


def test_run_parameters_add_the_date_folder_delivery_and_scale(tmp_path):
    import datetime as dt

    data = tmp_path / "data"
    data.mkdir()
    project = _project(data, push={"to": "csv"})
    when = dt.date(2024, 3, 1)
    delivery = {"dry_run": True, "full": True, "csv_path": tmp_path / "x.csv", "ledger": None}
    parameters = cli._run_parameters(project, when, tmp_path / "out", delivery, None)
    assert parameters["as_of"] == when and parameters["out"] == (tmp_path / "out").resolve()
    assert parameters["data"] == str(data.resolve())
    assert (parameters["delivery"].dry_run, parameters["delivery"].full) == (True, True)
    assert parameters["delivery"].csv_path == tmp_path / "x.csv"
    assert "scale" not in parameters or not parameters["scale"].dask
    scale = {"dask": True, "dask_address": None, "partitions": 3, "dask_workers": None}
    scaled = cli._run_parameters(project, None, tmp_path / "out", delivery, scale)
    assert scaled["scale"].dask and scaled["scale"].partitions == 3
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        cli._run_parameters(project, None, tmp_path / "file", delivery, None)


def test_run_once_runs_the_weekly_flow_or_the_monthly_one_with_force_promote(
    tmp_path, monkeypatch
):
    seen = {}

    def fake_run_flow(flow, **parameters):
        seen.update(parameters, flow=flow.name)
        return {"ran": flow.name}

    monkeypatch.setattr("pipelines.cli._run_flow", fake_run_flow)
    project = _project(tmp_path)
    assert cli._run_once(project, {"data": "d"}, False, True) == {"ran": "corecast-weekly"}
    assert "training" not in seen
    assert cli._run_once(project, {"data": "d"}, True, True) == {"ran": "corecast-monthly"}
    assert seen["data"] == "d" and seen["training"].force_promote is True


def test_print_run_end_exits_3_after_a_partial_delivery(tmp_path, monkeypatch):
    import typer

    printed = []
    monkeypatch.setattr("pipelines.cli._print_run", lambda summary, out: printed.append(out))
    cli._print_run_end({"push": None}, tmp_path)
    assert printed == [tmp_path]
    with pytest.raises(typer.Exit) as stopped:
        cli._print_run_end({"weekly": {"push": {"partial": "partial delivery: 9 of 10"}}},
                           tmp_path)
    assert stopped.value.exit_code == cli.EXIT_PARTIAL and printed == [tmp_path, tmp_path]


def test_serve_until_stopped_serves_on_the_api_url_and_says_stopped(monkeypatch, capsys):
    calls = []

    def fake_serve(build, weekly, monthly, timezone, parameters, api, monthly_parameters):
        calls.append((weekly, monthly, timezone, parameters, api, monthly_parameters))
        raise KeyboardInterrupt

    monkeypatch.setattr("pipelines.cli._serve", fake_serve)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    cli._serve_until_stopped("0 6 * * 1", "0 5 1 * *", "UTC", {"p": 1}, {"m": 2}, 4200)
    assert calls == [("0 6 * * 1", "0 5 1 * *", "UTC", {"p": 1}, "http://127.0.0.1:9/api",
                      {"m": 2})]
    assert "Stopped." in capsys.readouterr().err
