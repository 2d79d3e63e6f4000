"""The tasks and the flows' option glue, called directly (``.fn``) on tiny inputs."""

from __future__ import annotations

import base64
from dataclasses import replace

import pandas as pd
import pytest
from prefect.states import Completed, Failed

from benchmarks.fakes.data import change_scores, make_predictions
from benchmarks.fakes.server import FakeServer, Fault
from benchmarks.fakes.webhook import FakeWebhookReceiver
from features.contract import load_tables
from features.errors import ConfigError, ContractError, CrmError
from pipelines import tasks
from pipelines.flows import _train_configs
from pipelines.parameters import DeliveryParameters, TrainingParameters
from serving.crm.http import RetryPolicy

SECRET = "whsec_" + base64.b64encode(b"corecast-webhook-test-key-123456").decode()


def _options(tmp_path, **kw):
    return DeliveryParameters(**{"ledger": tmp_path / "ledger.sqlite", **kw}).push_options(tmp_path)


def _training(capacity_share, chapter_top, tolerance, overrides):
    return TrainingParameters.model_construct(
        capacity_share=capacity_share, chapter_top=chapter_top, tolerance=tolerance,
        train_overrides=overrides,
    )


def test_load_data_raises_the_contract_error(tmp_path):
    (tmp_path / "members.csv").write_text("member_id,joined_at\nm1,yesterday\n")
    (tmp_path / "activities.csv").write_text("member_id,occurred_at,type\nm1,2024-01-01,event\n")
    with pytest.raises(ContractError, match="members"):
        tasks.load_data.fn(str(tmp_path))


def test_only_the_crm_push_retries_and_only_on_crm_outages():
    assert tasks.push_scores.retries == 2
    assert tasks.push_task_for("hubspot").retries == 2
    assert tasks.push_task_for("csv").retries == 0
    for step in (tasks.load_data, tasks.train_target_model, tasks.score_members_task,
                 tasks.write_predictions_task, tasks.write_report_task, tasks.load_models):
        assert step.retries == 0, step.name
    retry = tasks.retry_on_crm_outage
    assert retry(None, None, Failed(data=CrmError("503 after 5 attempts"))) is True
    assert retry(None, None, Failed(data=ConfigError("CORECAST_HUBSPOT_TOKEN is not set"))) is False
    assert retry(None, None, Failed(data=ContractError("predictions: column email"))) is False
    assert retry(None, None, Completed()) is False
    # what the CRM refused outright is not retried: a bad token, a scope, an unknown property
    from features.errors import CrmRefused, crm_error_for_status

    assert retry(None, None, Failed(data=CrmRefused("HubSpot: HTTP 401"))) is False
    assert isinstance(crm_error_for_status(400, "bad property"), CrmRefused)
    assert isinstance(crm_error_for_status(403, "scope"), CrmRefused)
    for transient in (408, 429, 500, 503):
        error = crm_error_for_status(transient, "later")
        assert type(error) is CrmError and retry(None, None, Failed(data=error)) is True


def test_csv_push_writes_a_delta_file_per_push(tmp_path):
    path = tmp_path / "predictions.parquet"
    preds = make_predictions(30)
    preds.to_parquet(path, index=False)
    options = _options(tmp_path)
    first = tasks.push_scores.fn(path, "csv", options)
    assert first.report.sent == 30 and len(first.files) == 1
    assert first.files[0].parent == tmp_path / "crm-exports"
    second = tasks.push_scores.fn(path, "csv", options)
    assert second.report.unchanged == 30 and second.report.sent == 0 and second.files == ()
    change_scores(preds, 0.1).to_parquet(path, index=False)
    third = tasks.push_scores.fn(path, "csv", options)
    assert third.report.changed == third.report.sent == 3
    assert len(pd.read_csv(third.files[0])) == 3


def test_omitted_fields_leave_the_payload_and_the_change_fingerprint(tmp_path):
    path = tmp_path / "predictions.parquet"
    preds = make_predictions(10)
    preds.to_parquet(path, index=False)
    options = _options(tmp_path, omit_fields=["scored_at", "model_versions"])
    first = tasks.push_scores.fn(path, "csv", options)
    written = pd.read_csv(first.files[0])
    assert "corecast_scored_at" not in written and "corecast_model_versions" not in written
    assert "corecast_as_of" in written
    rescored = preds.assign(
        scored_at=pd.Timestamp("2024-05-13 07:00"), readiness_model_version="4"
    )
    rescored.to_parquet(path, index=False)
    again = tasks.push_scores.fn(path, "csv", options)
    assert again.report.unchanged == 10 and again.report.sent == 0
    with pytest.raises(ConfigError, match="webhook payloads are fixed"):
        _options(tmp_path, to="webhook", omit_fields=["scored_at"])


def test_push_options_route_the_crm_url_to_the_chosen_sink(tmp_path):
    hub = _options(tmp_path, to="hubspot", crm_url="http://127.0.0.1:9/hub")
    assert hub.hubspot.base_url == "http://127.0.0.1:9/hub"
    sf = _options(tmp_path, to="salesforce", crm_url="http://127.0.0.1:9/sf")
    assert sf.salesforce.instance_url == "http://127.0.0.1:9/sf"
    hook = _options(tmp_path, to="webhook", crm_url="http://127.0.0.1:9/hook")
    assert hook.webhook.url == "http://127.0.0.1:9/hook"
    fixed = _options(tmp_path, csv_path=tmp_path / "x.csv", dry_run=True)
    assert fixed.csv.path == tmp_path / "x.csv" and fixed.dry_run
    named = _options(tmp_path, to="hubspot", field_names={"segment": "stage"},
                     omit_fields=["reasons"])
    assert named.hubspot.properties == {"segment": "stage", "reasons": None}
    assert named.csv.columns == named.salesforce.fields == {"segment": "stage", "reasons": None}


def test_train_overrides_reach_both_targets_and_unknown_names_fail():
    configs = _train_configs(_training(0.02, 5, 0.01, {"candidates": ["logreg"], "threads": 1}))
    assert set(configs) == {"readiness", "disengagement"}
    for target, config in configs.items():
        assert config.target == target
        assert (config.capacity_share, config.chapter_top, config.promotion_tolerance) == (
            0.02, 5, 0.01,
        )
        assert config.candidates == ("logreg",) and config.threads == 1
    with pytest.raises(ConfigError, match="unknown setting.*hgb_iterations"):
        _train_configs(_training(0.01, 3, 0.0, {"hgb_iterations": 5}))
    with pytest.raises(ConfigError, match="capacity_share"):
        _train_configs(_training(1.5, 3, 0.0, {}))


def test_a_crm_outage_is_retried_and_the_retry_sends_the_pending_records(
    prefect_harness, tmp_path, monkeypatch
):
    from prefect import flow

    monkeypatch.setenv("CORECAST_WEBHOOK_SECRET", SECRET)
    receiver = FakeWebhookReceiver(SECRET)
    path = tmp_path / "predictions.parquet"
    make_predictions(6).to_parquet(path, index=False)
    with FakeServer(receiver) as server:
        options = _options(tmp_path, to="webhook", crm_url=server.url + "/hook")
        options = replace(options, webhook=replace(
            options.webhook, batch_size=3, retry=RetryPolicy(max_attempts=1)
        ))
        receiver.faults.add(Fault("status", status=503), times=1)
        quick = tasks.push_task_for("webhook").with_options(retry_delay_seconds=0)

        @flow(name="push-once")
        def push_once():
            return quick(path, "webhook", options, return_state=True)

        state = push_once()
    assert state.is_completed()
    outcome = state.result()
    assert sorted(receiver.records) == sorted(make_predictions(6)["member_id"])
    # The first attempt stopped on the 503 (3 records pending); the retry sent the 6 records
    # it found pending or new - each exactly once in the receiver.
    assert outcome.report.sent == 6 and outcome.report.failed == 0
    assert len(receiver.deliveries) == 3 and receiver.duplicates == 0
    from prefect.client.orchestration import get_client

    task_run = get_client(sync_client=True).read_task_run(state.state_details.task_run_id)
    assert task_run.run_count == 2


def test_readiness_without_roles_is_ranked_by_an_unvalidated_rule_that_says_why(community):
    from features.tables import Tables

    tables = load_tables(community)
    no_roles = Tables(
        members=tables.members, activities=tables.activities, roles=None,
        chapters=tables.chapters, source="<no roles>",
    )
    outcome = tasks.train_target_model.fn(no_roles, "readiness", required=True)
    assert outcome.status == "promoted" and outcome.version is not None
    assert outcome.method == "rule:activity_365d" and outcome.validated is False
    assert "roles" in outcome.notes[0] and "--core-role" not in outcome.notes[0]


def test_load_data_quarantines_into_the_home_folder_and_logs_it(tmp_path, isolated_home, caplog):
    src = tmp_path / "src"
    src.mkdir()
    (src / "members.csv").write_text("member_id,joined_at\nm1,2024-01-01\n")
    (src / "activities.csv").write_text(
        "member_id,occurred_at,activity_type\nm1,2024-01-02,attend\nm1,someday,attend\n"
    )
    with pytest.raises(ContractError):
        tasks.load_data.fn(str(src))  # strict by default
    with caplog.at_level("INFO", logger="corecast.pipelines"):
        tables = tasks.load_data.fn(str(src), on_invalid="quarantine", max_invalid_share=0.5)
    assert len(tables.activities) == 1
    path = isolated_home / "quarantine" / "activities.quarantine.csv"
    assert tables.quarantine.paths == {"activities": path} and path.is_file()
    assert "quarantined activities: 1 of 2 rows quarantined (50.00%): timestamp 1" in caplog.text


def test_quarantine_is_refused_with_dask_before_anything_runs():
    from pipelines.flows import check_loading_options

    check_loading_options("strict", dask=True)
    check_loading_options("quarantine", dask=False)
    with pytest.raises(ConfigError, match="not available with Dask"):
        check_loading_options("quarantine", dask=True)


def test_a_push_that_delivered_too_little_fails_the_task_and_is_not_retried(
    tmp_path, monkeypatch
):
    import dataclasses

    from features.errors import DeliveryFailed
    from pipelines.artifacts import _push_lines
    from serving import crm

    path = tmp_path / "predictions.parquet"
    make_predictions(10).to_parquet(path, index=False)
    real = crm.push_predictions

    def refusing(sent):
        def push(*args, **kwargs):
            report = real(*args, **kwargs)
            return dataclasses.replace(report, sent=sent, failed=report.to_send - sent,
                                       failure_reasons={"400 INVALID_EMAIL": 10 - sent})
        return push

    monkeypatch.setattr(crm, "push_predictions", refusing(0))
    with pytest.raises(DeliveryFailed, match="0 of 10 planned records delivered") as info:
        tasks.push_scores.fn(path, "csv", _options(tmp_path))
    assert tasks.retry_on_crm_outage(None, None, Failed(data=info.value)) is False
    monkeypatch.setattr(crm, "push_predictions", refusing(9))
    outcome = tasks.push_scores.fn(path, "csv", _options(tmp_path, full=True))
    assert outcome.partial.startswith("partial delivery: 9 of 10")
    assert f"- **{outcome.partial}**" in _push_lines(outcome)
    # The flows' min_delivered_share reaches the push: 9 of 10 fails when all must arrive.
    with pytest.raises(DeliveryFailed, match="below --min-delivered-share 1"):
        tasks.push_scores.fn(path, "csv", _options(tmp_path, full=True, min_delivered_share=1.0))
