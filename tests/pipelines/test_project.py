"""The project file: precedence, validation, discovery, the starter file, and its readers."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.errors import ConfigError
from features.labels import LabelConfig
from pipelines.cli import app
from pipelines.project import (
    SECTIONS,
    Project,
    load_effective,
    propose_labels,
    starter_file,
)

runner = CliRunner()

FILE = """
[data]
source = "{source}"

[labels]
core_role = "maintainer"
horizon = "60d"
readiness_horizon = "1y"

[features]
activity_types = ["commit", "merge"]
organizing_types = ["merge"]
organizing_roles = ["organize"]

[segments]
at_risk = 0.7

[schedule]
weekly = "0 7 * * 2"
timezone = "Europe/Paris"
"""


@pytest.fixture
def project_file(tmp_path, monkeypatch, isolated_home):
    for name in ("CORECAST_CONFIG", "CORECAST_LABELS_HORIZON", "CORECAST_SEGMENTS_AT_RISK"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    data.mkdir()
    path = tmp_path / "corecast.toml"
    path.write_text(FILE.format(source=data))
    return path


def test_defaults_then_file_then_environment_then_option(project_file, monkeypatch):
    monkeypatch.setenv("CORECAST_LABELS_HORIZON", "120d")
    monkeypatch.setenv("CORECAST_SEGMENTS_AT_RISK", "0.8")
    settings = load_effective(project_file, {"labels": {"horizon": "30d", "core_role": None}})
    p = settings.project
    assert (p.labels.core_role, p.labels.readiness_horizon) == ("maintainer", "1y")  # file
    assert p.labels.horizon == "30d" and p.segments.at_risk == 0.8  # option, environment
    assert p.labels.active_within == "90d" and p.segments.capacity == 3  # defaults
    assert settings.source_of("labels.horizon") == "option"
    assert settings.source_of("segments.at_risk") == "environment"
    assert settings.source_of("labels.core_role") == "file"
    assert settings.source_of("segments.capacity") == "default"
    labels = p.labels.to_label_config()
    assert (labels.horizon_days, labels.readiness_horizon_days) == (30, 365)


@pytest.mark.parametrize(("text", "said"), [
    ("[labels]\ncore_rol = 'x'\n", "labels.core_rol: unknown key; allowed: active_within, "
     "core_role, horizon, readiness_horizon"),
    ("[label]\ncore_role = 'x'\n", "label: unknown key; allowed: data, features, labels, push, "
     "schedule, segments, training"),
    ("[segments]\nat_risk = 1.5\n", "segments.at_risk: Input should be less than or equal to 1 "
     "(got 1.5)"),
    ("[labels]\nhorizon = 'soon'\n", "labels.horizon: cannot parse 'soon'; use e.g. 90d"),
    ("[labels]\nhorizon = '200y'\n", "labels.horizon: '200y' is 73,000 days; at most 3,650"),
    ("labels = 3\n", "labels: must be a table"),
    ("[segments]\ncapacity = true\n", "segments.capacity: expected a number, not true/false"),
    ("[push]\nomit_fields = 'reasons'\n", "push.omit_fields: must be a list"),
    ("[push]\nomit_fields = ['chapter_id']\n", "push.omit_fields.0: Input should be"),
    ("[schedule]\nweekly = 'not a cron'\n", "schedule.weekly: 'not a cron' is not a cron"),
    ("[schedule]\ntimezone = 'Mars/Olympus'\n", "schedule.timezone: 'Mars/Olympus' is not an"),
    ("[push]\nto = 'fax'\n", "push.to: Input should be 'csv', 'hubspot', 'salesforce', "
     "'webhook' or 'none' (got 'fax')"),
    ("[labels\n", "not valid TOML"),
    ("[segments]\nready_min = 0.01\nnurture_min = 0.5\n",
     "segments: nurture_min (0.5) is above ready_min (0.01)"),
    ("[features]\nactivity_types = ['commit', ' ']\n", "features.activity_types.1:"),
])
def test_every_mistake_names_the_file_and_the_key(tmp_path, isolated_home, text, said):
    path = tmp_path / "corecast.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_effective(path)
    message = " ".join(str(info.value).split())
    assert str(path) in message and said in message


def test_a_bad_value_from_the_environment_or_an_option_names_it(tmp_path, isolated_home,
                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CORECAST_SEGMENTS_AT_RISK", "lots")
    with pytest.raises(ConfigError, match="CORECAST_SEGMENTS_AT_RISK: Input should be a valid"):
        load_effective()
    monkeypatch.delenv("CORECAST_SEGMENTS_AT_RISK")
    with pytest.raises(ConfigError, match="--horizon: '-3d' must be a positive whole number"):
        load_effective(None, {"labels": {"horizon": "-3d"}})


def test_the_file_is_found_by_option_variable_folder_then_home(tmp_path, isolated_home,
                                                                monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CORECAST_CONFIG", raising=False)
    assert load_effective().path is None  # none anywhere: the defaults
    home_file = isolated_home / "corecast.toml"
    home_file.write_text("[labels]\ncore_role = 'home'\n")
    assert load_effective().project.labels.core_role == "home"
    (tmp_path / "corecast.toml").write_text("[labels]\ncore_role = 'here'\n")
    assert load_effective().project.labels.core_role == "here"
    named = tmp_path / "other.toml"
    named.write_text("[labels]\ncore_role = 'named'\n")
    monkeypatch.setenv("CORECAST_CONFIG", str(named))
    assert load_effective().path == named
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("[labels]\ncore_role = 'explicit'\n")
    assert load_effective(explicit).project.labels.core_role == "explicit"
    with pytest.raises(ConfigError, match="--config: the project file .*missing.toml"):
        load_effective(tmp_path / "missing.toml")
    monkeypatch.setenv("CORECAST_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigError, match="CORECAST_CONFIG: the project file"):
        load_effective()


def test_the_starter_file_reads_back_as_the_project_it_was_written_from(tmp_path,
                                                                       isolated_home):
    project = Project.model_validate({"labels": {"core_role": "maintainer", "horizon": "30d"},
                                      "push": {"omit_fields": ["reasons"],
                                               "field_names": {"segment": "stage"}}})
    path = tmp_path / "corecast.toml"
    path.write_text(starter_file(project, {"labels.core_role": "the most frequent role"}))
    assert load_effective(path).project == project
    assert "# the most frequent role" in path.read_text()


def test_proposed_labels_follow_the_roles_and_the_length_of_the_history():
    roles = pd.DataFrame({"role": ["maintainer", "maintainer", "triager"]})
    short = SimpleNamespace(roles=roles, first_observed=pd.Timestamp("2024-01-01"),
                            last_observed=pd.Timestamp("2024-07-01"))  # 182 days
    labels, notes = propose_labels(short)
    assert labels.core_role == "maintainer" and "2 spells" in notes["labels.core_role"]
    with_default = SimpleNamespace(**{**vars(short), "roles": pd.DataFrame(
        {"role": ["organizer", "organizer", "ambassador"]})})
    assert propose_labels(with_default)[0].core_role == "ambassador"  # the default, when there
    # a sixth and a third of 182 days
    assert (labels.horizon, labels.active_within, labels.readiness_horizon) == (
        "30d", "30d", "60d")
    long = SimpleNamespace(roles=None, first_observed=pd.Timestamp("2020-01-01"),
                           last_observed=pd.Timestamp("2024-01-01"))
    labels, notes = propose_labels(long)
    assert labels == Project().labels and "no roles table" in notes["labels.core_role"]


def test_serve_and_run_take_their_parameters_from_the_file(project_file, monkeypatch):
    served = {}

    def fake_serve(build, weekly, monthly, timezone, parameters, api, monthly_parameters=None):
        served.update(weekly=weekly, monthly=monthly, timezone=timezone,
                      parameters=parameters, monthly_parameters=monthly_parameters)

    monkeypatch.setattr("pipelines.cli._serve", fake_serve)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    result = runner.invoke(app, ["--config", str(project_file), "serve"])
    assert result.exit_code == 0, result.output
    assert (served["weekly"], served["monthly"], served["timezone"]) == (
        "0 7 * * 2", "0 5 1 * *", "Europe/Paris")
    assert served["parameters"]["segments"].at_risk == 0.7
    assert served["parameters"]["data"] == str(project_file.parent / "data")
    monthly = served["monthly_parameters"]
    assert monthly["labels"].model_dump() == {
        "core_role": "maintainer", "horizon_days": 60, "readiness_horizon_days": 365,
        "active_within_days": 90,
    }
    assert monthly["training"].model_dump() == {
        "capacity_share": 0.01, "chapter_top": 3, "tolerance": 0.0, "force_promote": False,
        "train_overrides": None,
        "feature_overrides": {"activity_types": ["commit", "merge"],
                              "organizing_types": ["merge"], "organizing_roles": ["organize"]},
    }

    ran = {}

    def fake_run_flow(flow, **parameters):
        ran.update(parameters, flow=flow.name)
        return {"training": [], "weekly": {"as_of": "2024-03-02", "members_scored": 1,
                                           "models": {}, "segments": {}, "push": None}}

    monkeypatch.setattr("pipelines.cli._run_flow", fake_run_flow)
    result = runner.invoke(app, ["--config", str(project_file), "run", "--retrain",
                                 "--core-role", "steward", "--out", str(project_file.parent)])
    assert result.exit_code == 0, result.output
    assert ran["flow"] == "corecast-monthly"
    assert ran["labels"].core_role == "steward"  # the option
    assert ran["labels"].horizon_days == 60 and ran["segments"].at_risk == 0.7  # the file

    def mismatched(flow, **parameters):
        return {"as_of": "2024-03-02", "members_scored": 1, "models": {}, "segments": {},
                "push": None,
                "other_labels": {"readiness": "core role ambassador, readiness window 180 days"}}

    monkeypatch.setattr("pipelines.cli._run_flow", mismatched)
    result = runner.invoke(app, ["--config", str(project_file), "run", "--out",
                                 str(project_file.parent)])
    said = " ".join(result.output.split())
    assert result.exit_code == 0
    assert "the readiness champion was trained with core role ambassador, readiness window" in said


def test_scoring_with_a_model_trained_on_other_labels_says_so(capsys):
    from pipelines.cli import _warn_on_other_labels

    trained = {"core_role": "ambassador", "horizon_days": 90, "active_within_days": 90,
               "readiness_horizon_days": 180, "readiness_active_within_days": 365}
    model = SimpleNamespace(metadata={"labels": trained}, version="4")
    _warn_on_other_labels(LabelConfig(), readiness=model, disengagement=None)
    assert "warning" not in capsys.readouterr().err
    _warn_on_other_labels(LabelConfig(core_role="maintainer"), readiness=model)
    said = " ".join(capsys.readouterr().err.split())
    assert "the readiness model (v4) was trained with core role ambassador" in said
    assert "the configuration says core role maintainer" in said


def test_the_label_fingerprint_tells_label_settings_apart():
    assert LabelConfig().fingerprint() == LabelConfig().fingerprint()
    assert LabelConfig(core_role="maintainer").fingerprint() != LabelConfig().fingerprint()
    assert len(LabelConfig().fingerprint()) == 12


def test_the_project_flows_read_every_setting_from_the_file_at_run_time(
    project_file, monkeypatch
):
    import os

    from pipelines import flows

    seen = {}
    monkeypatch.setattr(flows, "weekly_flow", lambda **p: seen.setdefault("weekly", p))
    monkeypatch.setattr(flows, "monthly_flow", lambda **p: seen.setdefault("monthly", p))
    monkeypatch.delenv("CORECAST_DATA_PASSWORD", raising=False)
    flows.weekly_from_project.fn(str(project_file))
    weekly = seen["weekly"]
    assert weekly["data"] == str(project_file.parent / "data")
    assert weekly["segments"].at_risk == 0.7
    assert "labels" not in weekly  # the weekly job does not train
    labels = LabelConfig(core_role="maintainer", horizon_days=60, readiness_horizon_days=365)
    assert weekly["labels_fingerprint"] == labels.fingerprint()
    flows.monthly_from_project.fn(str(project_file))
    assert seen["monthly"]["labels"].core_role == "maintainer"
    assert seen["monthly"]["labels"].horizon_days == 60

    # A literal password in the file reaches the run through the environment only.
    project_file.write_text('[data]\nsource = "postgresql+psycopg2://u:PW@127.0.0.1/db"\n')
    seen.clear()
    flows.weekly_from_project.fn(str(project_file))
    assert seen["weekly"]["data"] == "postgresql+psycopg2://u:${CORECAST_DATA_PASSWORD}@127.0.0.1/db"
    assert os.environ.pop("CORECAST_DATA_PASSWORD") == "PW"
    project_file.write_text("[labels]\ncore_role = 'x'\n")
    with pytest.raises(ConfigError, match="data.source is not set"):
        flows.weekly_from_project.fn(str(project_file))


def _bad_value(section: str, key: str):
    """A value of the wrong kind for a key (a number for text, text for numbers, ...)."""
    default = SECTIONS[section].model_fields[key].default
    if isinstance(default, bool):
        return "maybe"
    if isinstance(default, int | float):
        return "lots"
    if isinstance(default, tuple):
        return 5
    return 12  # text keys (and optional text) refuse a number


@pytest.mark.parametrize("key", [
    f"{section}.{key}"
    for section, model in SECTIONS.items()
    for key in model.model_fields
])
def test_every_key_is_validated_and_named(tmp_path, isolated_home, key):
    section, name = key.split(".")
    value = _bad_value(section, name)
    path = tmp_path / "corecast.toml"
    text = f'"{value}"' if isinstance(value, str) else str(value)
    path.write_text(f"[{section}]\n{name} = {text}\n")
    with pytest.raises(ConfigError) as info:
        load_effective(path)
    assert f"{path}: {key}:" in str(info.value)


def test_a_file_that_is_not_text_or_a_folder_given_as_the_file_is_refused(tmp_path,
                                                                         isolated_home):
    path = tmp_path / "corecast.toml"
    path.write_bytes(b"\xff\xfe[labels]\x00")
    with pytest.raises(ConfigError, match="not valid TOML, UTF-8 text"):
        load_effective(path)
    with pytest.raises(ConfigError, match="--config: .* is a folder"):
        load_effective(tmp_path)


def test_relative_paths_in_the_file_are_read_from_its_folder(tmp_path, isolated_home,
                                                            monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    (project / "corecast.toml").write_text(
        '[data]\nsource = "../tables"\nout = "out"\n'
    )
    monkeypatch.chdir(isolated_home)  # anywhere else
    data = load_effective(project / "corecast.toml").project.data
    assert data.source == str(tmp_path / "tables") and data.out == str(project / "out")
    # URLs are left as they are; an option's relative path is the user's working folder's.
    (project / "corecast.toml").write_text('[data]\nsource = "sqlite:///rel.db"\n')
    assert load_effective(project / "corecast.toml").project.data.source == "sqlite:///rel.db"


def test_config_show_masks_every_secret(tmp_path, isolated_home):
    path = tmp_path / "corecast.toml"
    path.write_text(
        '[data]\nsource = "postgresql+psycopg2://u:SECRETPW@127.0.0.1:1/db"\n\n'
        '[push]\ncrm_url = "http://hook:CRMPASS@127.0.0.1:9/h?token=TOK&x=1"\n'
    )
    result = runner.invoke(app, ["--config", str(path), "config", "show"])
    assert result.exit_code == 0, result.output
    assert "SECRETPW" not in result.output and "CRMPASS" not in result.output
    assert "TOK" not in result.output
    assert "data.source = postgresql+psycopg2://u:***@127.0.0.1:1/db    (file)" in result.output
    assert "push.crm_url = http://hook:***@127.0.0.1:9/h?token=***&x=1    (file)" in result.output


def test_push_takes_its_sink_and_left_out_fields_from_the_file(tmp_path, isolated_home):
    from benchmarks.fakes.data import make_predictions

    predictions = tmp_path / "predictions.parquet"
    make_predictions(5).to_parquet(predictions, index=False)
    path = tmp_path / "corecast.toml"
    path.write_text('[push]\nto = "csv"\nomit_fields = ["reasons"]\n'
                    'field_names = { segment = "ambassador_stage" }\n')
    sink = tmp_path / "crm.csv"
    result = runner.invoke(app, ["--config", str(path), "push", "--predictions",
                                 str(predictions), "--csv-path", str(sink)])
    assert result.exit_code == 0, result.output
    exported = pd.read_csv(sink)
    assert len(exported) == 5 and "corecast_reasons" not in exported.columns
    assert "ambassador_stage" in exported.columns and "corecast_segment" not in exported.columns
    path.write_text('[push]\nto = "none"\n')
    result = runner.invoke(app, ["--config", str(path), "push", "--predictions",
                                 str(predictions)])
    assert isinstance(result.exception, ConfigError)
    assert "sends nothing" in str(result.exception)


def test_the_features_section_reaches_training(project_file, monkeypatch, tmp_path):
    seen = {}

    def fake_train(tables, targets, **kwargs):
        seen.update(kwargs)
        return []

    monkeypatch.setattr("models.workflow.train_and_register", fake_train)
    monkeypatch.setattr("pipelines.cli._load", lambda *args, **kwargs: None)
    result = runner.invoke(app, ["--config", str(project_file), "train"])
    assert result.exit_code == 0, result.output
    features = seen["features"]
    assert features.activity_types == ("commit", "merge")
    assert (features.organizing_types, features.organizing_roles) == (("merge",), ("organize",))
    assert seen["labels"].core_role == "maintainer"


def test_lists_and_tables_can_come_from_variables(tmp_path, isolated_home, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CORECAST_FEATURES_ACTIVITY_TYPES", "commit, merge")
    monkeypatch.setenv("CORECAST_PUSH_FIELD_NAMES", "segment=stage,reasons=why")
    project = load_effective().project
    assert project.features.activity_types == ("commit", "merge")
    assert project.push.field_names == {"segment": "stage", "reasons": "why"}
    monkeypatch.setenv("CORECAST_PUSH_FIELD_NAMES", "segment")
    with pytest.raises(ConfigError, match="CORECAST_PUSH_FIELD_NAMES"):
        load_effective()


@pytest.mark.parametrize(("text", "said"), [
    ('[push]\nfield_names = { segment = "" }\n', "push.field_names.segment"),
    ("[training]\ntolerance = inf\n", "training.tolerance"),
])
def test_empty_names_and_infinite_numbers_are_refused(tmp_path, isolated_home, text, said):
    path = tmp_path / "corecast.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=said):
        load_effective(path)


def test_push_refuses_a_url_with_a_credential_and_score_writes_to_data_out(
    tmp_path, isolated_home, monkeypatch
):
    from benchmarks.fakes.data import make_predictions

    predictions = tmp_path / "predictions.parquet"
    make_predictions(3).to_parquet(predictions, index=False)
    path = tmp_path / "corecast.toml"
    path.write_text('[push]\nto = "webhook"\ncrm_url = "http://a:PW@127.0.0.1:9/h"\n')
    result = runner.invoke(app, ["--config", str(path), "push", "-p", str(predictions)])
    assert isinstance(result.exception, ConfigError) and "PW" not in str(result.exception)
    assert not (isolated_home / "ledger.sqlite").exists()

    seen = {}

    def fake_score(data, as_of, out, *args, **kwargs):
        seen["out"] = out
        meta = {"members_scored": 1, "segments": {}, "actions": {}, "holdout_share": 0.1}
        return SimpleNamespace(meta=meta, as_of=pd.Timestamp("2024-01-01"))

    monkeypatch.setattr("pipelines.cli._score", fake_score)
    (tmp_path / "tables").mkdir()
    path.write_text('[data]\nsource = "tables"\nout = "scores"\n')
    monkeypatch.chdir(isolated_home)
    result = runner.invoke(app, ["--config", str(path), "score"])
    assert result.exit_code == 0, result.output
    assert seen["out"] == tmp_path / "scores"


def test_push_without_a_file_pushes_what_the_last_run_wrote(tmp_path, isolated_home):
    from benchmarks.fakes.data import make_predictions

    path = tmp_path / "corecast.toml"
    path.write_text(f'[data]\nout = "{tmp_path / "out"}"\n')
    result = runner.invoke(app, ["--config", str(path), "push", "--csv-path",
                                 str(tmp_path / "crm.csv")])
    assert isinstance(result.exception, ConfigError)
    assert "there is no" in str(result.exception) and "predictions.parquet" in str(
        result.exception)
    (tmp_path / "out").mkdir()
    make_predictions(4).to_parquet(tmp_path / "out" / "predictions.parquet", index=False)
    result = runner.invoke(app, ["--config", str(path), "push", "--csv-path",
                                 str(tmp_path / "crm.csv")])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "crm.csv")) == 4
