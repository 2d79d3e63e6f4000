"""The weekly and monthly flows end to end, on a small simulated community, under Prefect."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from features.contract import load_tables
from features.errors import ContractError
from tests.pipelines.conftest import FAST_TRAINING

VOLATILE = ["scored_at", "model_versions"]


def _client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _subflow_ids(client, parent_id) -> dict[str, object]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    runs = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])
        )
    )
    names = {}
    for run in runs:
        flow = client.read_flow(run.flow_id)
        names[flow.name] = run.id
    return names


def _latest_flow_run_id(flow_name: str):
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    [run] = _client().read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
        sort=FlowRunSort.START_TIME_DESC, limit=1,
    )
    return run.id


def _artifacts(client, flow_run_id) -> dict[str, list]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    found: dict[str, list] = {}
    for artifact in client.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
    ):
        found.setdefault(artifact.key, []).append(artifact)
    return found


@pytest.mark.slow
def test_monthly_then_weekly_then_monthly_again(prefect_harness, community, tmp_path):
    from models.registry import list_model_versions
    from pipelines.flows import monthly_flow

    out = tmp_path / "out"
    common = {"out": out, "delivery": {"to": "csv", "omit_fields": VOLATILE}}
    fast = {"train_overrides": FAST_TRAINING}

    # 1. Monthly: both targets trained and promoted, then scored, reported and pushed.
    state = monthly_flow(community, training=fast, return_state=True, **common)
    assert state.is_completed(), state.message
    first = state.result()
    training = {o["target"]: o for o in first["training"]}
    assert {t: o["status"] for t, o in training.items()} == {
        "readiness": "promoted", "disengagement": "promoted",
    }
    assert all(o["gate"].startswith("first champion") for o in training.values())
    versions = list_model_versions()
    champions = versions[versions["aliases"].str.contains("champion")]
    assert sorted(champions["target"]) == ["disengagement", "readiness"]
    assert set(champions["version"]) == {1}

    weekly = first["weekly"]
    tables = load_tables(community)
    predictions = pd.read_parquet(out / "predictions.parquet")
    consenting = tables.members["consent"].astype(bool).sum()
    assert weekly["members_scored"] == len(predictions) > 0
    assert len(predictions) <= consenting
    assert weekly["models"] == {"readiness": "1", "disengagement": "1"}
    assert sum(weekly["segments"].values()) == len(predictions)
    # The control group: a tenth of the flagged members held back, the rest to contact.
    assert sum(weekly["actions"].values()) == len(predictions) and weekly["holdout_share"] == 0.1
    flagged = predictions["segment"].isin(["ready-now", "at-risk", "ambassador-at-risk"])
    assert (predictions.loc[~flagged, "action"] == "none").all()
    assert set(predictions.loc[flagged, "action"]) <= {"contact", "hold"}
    assert (out / "report.html").stat().st_size > 10_000
    chapters = pd.read_csv(out / "chapter_report.csv")
    assert len(chapters) >= tables.chapters["chapter_id"].nunique()
    push = weekly["push"]
    assert push["new"] == push["sent"] == len(predictions) and push["failed"] == 0
    [export] = [Path(p) for p in push["files"]]
    exported = pd.read_csv(export)
    assert len(exported) == len(predictions)
    assert "corecast_scored_at" not in exported.columns
    assert "corecast_readiness_score" in exported.columns

    # Artifacts: training summary + run links on the train subflow, weekly summary + chapter
    # table + model links on the weekly subflow; no email anywhere.
    client = _client()
    subflows = _subflow_ids(client, state.state_details.flow_run_id)
    assert set(subflows) == {"corecast-train", "corecast-weekly"}
    train_artifacts = _artifacts(client, subflows["corecast-train"])
    assert set(train_artifacts) == {
        "corecast-training", "corecast-mlflow-run-readiness", "corecast-mlflow-run-disengagement",
    }
    summary = train_artifacts["corecast-training"][0].data
    assert "first champion" in summary and "/#/runs/" + training["readiness"]["run_id"] in summary
    link = train_artifacts["corecast-mlflow-run-readiness"][0]
    assert link.data == (
        f"[MLflow run of readiness v1 (promoted)]"
        f"(http://127.0.0.1:5000/#/runs/{training['readiness']['run_id']})"
    )
    weekly_artifacts = _artifacts(client, subflows["corecast-weekly"])
    assert {"corecast-weekly", "corecast-chapters", "corecast-scoring-model-readiness",
            "corecast-scoring-model-disengagement"} <= set(weekly_artifacts)
    markdown = weekly_artifacts["corecast-weekly"][0].data
    assert f"members scored: {len(predictions):,}" in markdown
    top = predictions[predictions["readiness_rank"] == 1]["member_id"].astype(str)
    assert any(member in markdown for member in top)
    assert f"{len(predictions)} sent" in markdown
    assert weekly_artifacts["corecast-chapters"][0].type == "table"
    emails = [e for e in tables.members["email"].dropna().astype(str) if "@" in e]
    texts = [markdown, str(weekly_artifacts["corecast-chapters"][0].data), summary]
    assert not [e for e in emails[:500] if any(e in text for text in texts)]
    assert "@" not in markdown

    # 2. Weekly alone with the same champions, as a deployment runs it: every setting read
    #    from a project file when the run starts. Nothing changed, nothing sent, no new file.
    from pipelines.flows import weekly_from_project

    project_file = tmp_path / "corecast.toml"
    project_file.write_text(
        f'[data]\nsource = "{community}"\nout = "{out}"\n\n'
        f"[push]\nto = \"csv\"\nomit_fields = {json.dumps(VOLATILE)}\n"
    )
    again = weekly_from_project(str(project_file))
    assert again["models"] == {"readiness": "1", "disengagement": "1"}
    assert again["other_labels"] == {}  # trained with the labels the file implies
    assert again["push"]["unchanged"] == len(predictions)
    assert again["push"]["sent"] == 0 and again["push"]["files"] == []

    # The building blocks run on their own too.
    from pipelines.flows import features_flow, push_flow, score_flow

    feature_file = Path(features_flow(community, out=tmp_path / "features.parquet"))
    features = pd.read_parquet(feature_file)
    assert len(features) == len(tables.members) and "member_id" in features.columns
    client_artifacts = _artifacts(_client(), _latest_flow_run_id("corecast-features"))
    assert f"{len(features):,} members x {features.shape[1] - 1} features" in (
        client_artifacts["corecast-features"][0].data
    )
    scored = score_flow(
        community, out=tmp_path / "scored", readiness_model="none", disengagement_model="1"
    )
    assert scored["members_scored"] == len(predictions)
    assert scored["models"] == {"readiness": None, "disengagement": "1"}
    assert (tmp_path / "scored" / "report.html").exists()
    planned = push_flow(
        tmp_path / "scored" / "predictions.parquet",
        delivery={"to": "csv", "dry_run": True, "full": True},
    )
    assert planned["dry_run"] and planned["to_send"] == len(predictions) and planned["sent"] == 0
    push_artifact = _artifacts(_client(), _latest_flow_run_id("corecast-push"))["corecast-push"]
    assert "dry run, nothing sent" in push_artifact[0].data
    assert not (tmp_path / "scored" / "crm-exports").exists()

    # 3. Monthly again: new challengers, the gate compares them with champion v1 on the same
    #    holdout, and the push is a delta (same data: nothing to send).
    second = monthly_flow(community, training=fast, **common)
    for outcome in second["training"]:
        assert outcome["version"] == "2"
        assert "champion v1" in outcome["gate"]
        assert outcome["promoted"] is (outcome["status"] == "promoted")
    assert second["weekly"]["push"]["sent"] == 0
    assert second["weekly"]["push"]["unchanged"] == len(predictions)
    assert len(list((out / "crm-exports").iterdir())) == 1
    assert len(list_model_versions()) == 4


@pytest.mark.slow
def test_broken_data_fails_the_flow_at_once_with_the_contract_message(
    prefect_harness, community, tmp_path
):
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId

    from pipelines.flows import weekly_flow

    broken = tmp_path / "broken"
    shutil.copytree(community, broken)
    members = pd.read_parquet(broken / "members.parquet")
    members.loc[[3, 8], "joined_at"] = pd.NaT
    (broken / "members.parquet").unlink()
    members.to_parquet(broken / "members.parquet", index=False)
    with pytest.raises(ContractError) as expected:
        load_tables(str(broken))
    contract_message = str(expected.value)
    assert "joined_at" in contract_message

    out = tmp_path / "out"
    state = weekly_flow(str(broken), out=out, return_state=True)
    assert state.is_failed()
    assert contract_message in state.message
    with pytest.raises(ContractError, match="joined_at"):
        state.result()
    assert not out.exists()

    client = _client()
    runs = client.read_task_runs(
        task_run_filter=TaskRunFilter(
            flow_run_id=TaskRunFilterFlowRunId(any_=[state.state_details.flow_run_id])
        )
    )
    assert [(r.name.rsplit("-", 1)[0], r.state.type.value, r.run_count) for r in runs] == [
        ("validate-data", "FAILED", 1)
    ]


def test_flow_parameters_are_validated_before_the_run(prefect_harness, tmp_path):
    from prefect.exceptions import ParameterTypeError

    from pipelines.flows import weekly_flow

    with pytest.raises(ParameterTypeError, match="to"):
        weekly_flow(str(tmp_path), delivery={"to": "fax"})
    with pytest.raises(ParameterTypeError, match="at_risk"):
        weekly_flow(str(tmp_path), segments={"at_risk": 1.5})
    with pytest.raises(ParameterTypeError, match="as_of"):
        weekly_flow(str(tmp_path), as_of="next tuesday")
    with pytest.raises(ParameterTypeError, match="on_invalid"):
        weekly_flow(str(tmp_path), loading={"on_invalid": "lenient"})
    with pytest.raises(ParameterTypeError, match="max_invalid_share"):
        weekly_flow(str(tmp_path), loading={"on_invalid": "quarantine", "max_invalid_share": 2})
