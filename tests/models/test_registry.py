"""Registry: logging into a temporary MLflow store, the promotion gate, audit trail, loading."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest

from features.errors import ModelNotFound, PromotionRefused
from features.feature_config import FeatureConfig
from features.labels import LabelConfig
from features.settings import corecast_home
from models.estimators import CalibratedModel, fit_calibrator
from models.factories import build_logreg_pipeline
from models.registry import gate_promotion, list_model_versions, load_champion, promote_version
from models.train import TrainResult, evaluate_on_holdout
from models.workflow import register_result, train_and_register
from tests.models.conftest import emails_of, fast_config, without_roles

LABELS = LabelConfig()
EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")

pytestmark = pytest.mark.usefixtures("mlflow_store")


@pytest.fixture
def good_result(trained_disengagement) -> TrainResult:
    return trained_disengagement[1]


def worse_result(result: TrainResult) -> TrainResult:
    """The same run with a model fitted on shuffled labels (no signal), honestly re-evaluated."""
    rng = np.random.default_rng(0)
    x = result.train_data[list(result.feature_columns)]
    y = rng.permutation(result.train_data["label"].to_numpy())
    pipe = build_logreg_pipeline().fit(x, y)
    model = CalibratedModel(pipe, **fit_calibrator(pipe.decision_function(x), y, "sigmoid"))
    held = result.holdout_data.assign(
        score=model.predict_proba(result.holdout_data[list(result.feature_columns)])[:, 1]
    )
    bad = dataclasses.replace(result, model=model, holdout_data=held)
    holdout = evaluate_on_holdout(model, result.feature_columns, bad)
    metrics = dict(result.metrics) | {f"holdout.{k}": v for k, v in holdout.items()}
    return dataclasses.replace(bad, metrics=metrics)


def version_tags(target: str, version: str) -> dict[str, str]:
    return load_champion(target, version).metadata["tags"]


@pytest.mark.slow
def test_promotion_gate_refuses_worse_promotes_better_and_force_works(good_result):
    bad = worse_result(good_result)
    assert bad.holdout_value < good_result.holdout_value

    first = register_result(good_result, actor="tester")
    assert first.status == "promoted" and first.version == "1"
    assert load_champion("disengagement").version == "1"

    # with a paired bootstrap over members (the fast test settings have none)
    boot = dataclasses.replace(bad.config, bootstrap_samples=100)
    resampled = dataclasses.replace(bad, config=boot)
    refused = register_result(resampled, actor="tester")
    assert refused.status == "refused"
    assert refused.decision.champion_version == "1"
    assert refused.decision.champion_value == pytest.approx(good_result.holdout_value)
    tags = version_tags("disengagement", refused.version)
    assert tags["promotion.status"] == "refused"
    # tags hold the values rounded to 6 decimals
    assert float(tags["promotion.champion_value"]) == pytest.approx(
        good_result.holdout_value, abs=1e-6
    )
    assert float(tags["promotion.challenger_value"]) == pytest.approx(bad.holdout_value, abs=1e-6)
    assert load_champion("disengagement").version == "1"
    assert load_champion("disengagement", "challenger").version == refused.version

    # worse on the point estimate and in (nearly) every member resample of the paired bootstrap
    assert float(tags["promotion.p_challenger_worse"]) > 0.5
    assert float(tags["promotion.difference_high"]) < 0
    assert "member resamples" in refused.decision.reason
    with pytest.raises(PromotionRefused, match="worse than champion v1"):
        gate_promotion(bad, refused.run_id, refused.version, actor="tester", strict=True)

    forced = register_result(bad, actor="alice", force_promote=True)
    assert forced.status == "promoted" and forced.decision.forced
    champion = load_champion("disengagement")
    assert champion.version == forced.version
    tags = champion.metadata["tags"]
    assert tags["audit.champion.set_by"] == "alice"
    assert tags["audit.champion.previous_version"] == "1"
    assert "forced by alice" in tags["audit.champion.reason"]
    assert tags["audit.champion.set_at"]
    assert version_tags("disengagement", "1")["audit.champion.replaced_by"] == forced.version

    better = register_result(good_result, actor="tester")
    assert better.status == "promoted"
    assert better.decision.champion_version == forced.version
    assert load_champion("disengagement").version == better.version

    # a human rollback is audited too
    promote_version("disengagement", 1, reason="rollback drill", actor="bob")
    rolled = load_champion("disengagement")
    assert rolled.version == "1"
    assert rolled.metadata["tags"]["audit.champion.reason"] == "manual: rollback drill"
    assert rolled.metadata["tags"]["audit.champion.previous_version"] == better.version

    listing = list_model_versions()
    assert list(listing["version"]) == [4, 3, 2, 1]
    assert listing.loc[listing["version"] == 1, "aliases"].item() == "champion"
    # the challenger alias moved on to each newer version and left with its promotion
    assert not listing["aliases"].str.contains("challenger").any()
    assert listing.loc[listing["version"] == 3, "promotion_status"].item() == "forced"
    assert listing.loc[listing["version"] == 4, "promotion_status"].item() == "promoted"
    assert listing.loc[listing["version"] == 2, "promotion_status"].item() == "refused"
    assert listing["holdout_roc_auc"].notna().all()


@pytest.mark.slow
def test_logged_run_is_complete_and_free_of_emails(good_result, small_tables):
    outcome = register_result(good_result, actor="tester")
    loaded = load_champion("disengagement")
    assert loaded.version == outcome.version
    assert loaded.feature_columns == good_result.feature_columns
    assert loaded.metadata["feature_columns"] == list(good_result.feature_columns)
    # the resolved feature settings round-trip, so scoring builds exactly the same columns
    assert FeatureConfig.from_dict(loaded.metadata["features"]) == good_result.feature_config
    assert loaded.metadata["features"]["activity_types"]
    with pytest.raises(ModelNotFound, match="alias 'staging'"):
        load_champion("disengagement", "staging")
    with pytest.raises(ModelNotFound, match="version '99'"):
        load_champion("disengagement", 99)
    assert loaded.metadata["metrics"]["holdout.roc_auc"] == pytest.approx(
        good_result.metrics["holdout.roc_auc"]
    )
    assert loaded.metadata["run_tags"]["corecast.data_fingerprint"] == good_result.data_fingerprint
    x = good_result.holdout_data[list(loaded.feature_columns)]
    np.testing.assert_allclose(
        loaded.model.predict_proba(x)[:, 1], good_result.holdout_data["score"]
    )

    home = corecast_home()
    artifacts = sorted(p for p in (home / "mlartifacts").rglob("*") if p.is_file())
    names = {p.name for p in artifacts}
    assert {
        "roc.png",
        "precision_recall.png",
        "calibration.png",
        "lift.png",
        "feature_importance.png",
        "feature_importance.csv",
        "backtest.csv",
        "model_card.md",
        "training_config.json",
        "MLmodel",
    } <= names
    card = next(p for p in artifacts if p.name == "model_card.md").read_text()
    assert "oracle" in card and "baseline:recency" in card
    config = json.loads(next(p for p in artifacts if p.name == "training_config.json").read_text())
    assert config["candidate"] == good_result.candidate
    mlmodel = next(p for p in artifacts if p.name == "MLmodel").read_text()
    assert "predict_proba" in mlmodel and "skops" in mlmodel

    emails = emails_of(small_tables)
    assert emails, "the test data must contain emails for this test to mean anything"
    stores = [*artifacts, home / "mlflow.db"]
    for path in stores:
        blob = path.read_bytes()
        assert not EMAIL.search(blob) or path.suffix in (".png",), path
        for email in emails[:200]:
            assert email.encode() not in blob, (path, email)


def test_missing_models_raise_model_not_found():
    with pytest.raises(ModelNotFound, match="train one first"):
        load_champion("readiness")
    assert list_model_versions().empty


@pytest.mark.slow
def test_train_and_register_without_roles_ranks_readiness_by_an_unvalidated_rule(small_tables):
    config = fast_config("disengagement", candidates=("logreg",))
    outcomes = train_and_register(
        without_roles(small_tables),
        train_configs={"disengagement": config},
        actor="tester",
    )
    by_target = {o.target: o for o in outcomes}
    readiness = by_target["readiness"]
    assert readiness.status == "promoted" and readiness.method == "rule:activity_365d"
    assert not readiness.validated and "no roles table" in readiness.notes[0]
    assert by_target["disengagement"].status == "promoted"
    listing = list_model_versions().set_index("target")
    assert listing.loc["readiness", "method"] == "rule:activity_365d"
    assert pd.isna(listing.loc["readiness", "holdout_primary"])  # nothing to judge it by
    assert pd.notna(listing.loc["disengagement", "holdout_primary"])


def test_load_scoring_models_tolerates_only_a_missing_readiness_champion():
    from features.errors import ModelNotFound
    from models.registry import load_scoring_models

    # empty store: a missing readiness champion is allowed, a missing disengagement one is not
    assert load_scoring_models("champion", "none") == (None, None)
    with pytest.raises(ModelNotFound):
        load_scoring_models("none", "champion")
    with pytest.raises(ModelNotFound):
        load_scoring_models("3", "none")


# --- ranking rules in the registry ---------------------------------------------------------------


@pytest.fixture(scope="module")
def rule_results(small_tables) -> tuple[TrainResult, TrainResult]:
    """A validated and an unvalidated disengagement rule on the small community."""
    from models.fallback import train_rule
    from models.train import build_target_frames, default_frame_config

    config = fast_config("disengagement", bootstrap_samples=100)
    frame = default_frame_config("disengagement", LABELS, config)
    built, _ = build_target_frames(small_tables, {"disengagement": frame}, LABELS, FeatureConfig())
    common = (small_tables, "disengagement", LABELS, frame, FeatureConfig(), config)
    validated = train_rule(*common, built["disengagement"], "test: no model wanted")
    unvalidated = train_rule(*common, None, "test: no labelled history")
    assert validated.validated and not unvalidated.validated
    return validated, unvalidated


def _artifact_names(run_id: str) -> set[str]:
    folder = next((corecast_home() / "mlartifacts").rglob(run_id))
    return {p.name for p in folder.rglob("*") if p.is_file()}


def test_an_unvalidated_rule_registers_loads_back_and_predicts_identically(rule_results):
    _, rule = rule_results
    outcome = register_result(rule, actor="tester")
    assert outcome.status == "promoted" and outcome.decision.reason.startswith("first champion")
    assert (outcome.method, outcome.validated) == (rule.method, False)
    assert outcome.notes == rule.notes and rule.method.startswith("rule:")
    loaded = load_champion("disengagement")
    tags = loaded.metadata["tags"]
    assert tags["corecast.method"] == rule.method and tags["corecast.validated"] == "false"
    assert tags["corecast.notes"].startswith("No learned model and no validation: test:")
    assert tags["promotion.challenger_value"] == "none"
    assert "corecast.holdout.pr_auc" not in tags
    assert loaded.metadata["run_tags"]["corecast.method"] == rule.method
    assert loaded.metadata["method"] == rule.method and loaded.metadata["validated"] is False
    x = rule.train_data[list(loaded.feature_columns)]
    np.testing.assert_array_equal(loaded.model.predict_proba(x), rule.model.predict_proba(x))
    names = _artifact_names(outcome.run_id)
    assert {"model_card.md", "training_config.json", "feature_importance.csv"} <= names
    assert not names & {"roc.png", "holdout_metrics.csv", "backtest.csv"}
    card = next((corecast_home() / "mlartifacts").rglob("model_card.md")).read_text()
    assert f"Ranking rule `{rule.method}`" in card and "**Not validated.**" in card
    listing = list_model_versions()
    assert listing[["method", "validated"]].values.tolist() == [[rule.method, False]]


def test_a_validated_rule_is_compared_with_a_paired_bootstrap(rule_results):
    import dataclasses

    rule, _ = rule_results
    # the first version learned from every snapshot but the newest (its calibration map)
    older = dataclasses.replace(
        rule, split=dataclasses.replace(rule.split, train_dates=rule.split.train_dates[:-1])
    )
    first = register_result(older, actor="tester")
    assert first.validated and first.status == "promoted"
    loaded = load_champion("disengagement", first.version)
    x = rule.holdout_data[list(loaded.feature_columns)]
    np.testing.assert_allclose(loaded.model.predict_proba(x)[:, 1], rule.holdout_data["score"])
    assert loaded.metadata["tags"]["corecast.validated"] == "true"
    assert int(loaded.metadata["tags"]["corecast.validation_snapshots"]) == len(
        rule.split.holdout_dates
    )
    assert "roc.png" in _artifact_names(first.run_id)
    # judged on the one snapshot the champion never learned from; the same ranking there
    again = register_result(rule, actor="tester")
    assert again.status == "promoted"
    assert again.decision.paired == {"difference": 0.0, "low": 0.0, "high": 0.0, "p_a_worse": 0.0}
    newest = max(rule.split.holdout_dates)
    assert f"on holdout {newest:%Y-%m-%d} " in again.decision.reason
    tags = version_tags("disengagement", again.version)
    assert tags["promotion.difference"] == "0.000000"
    assert tags["promotion.difference_low"] == tags["promotion.difference_high"] == "0.000000"
    assert tags["promotion.p_challenger_worse"] == "0.000000"


def test_a_champion_is_never_judged_on_outcomes_it_learned_from(rule_results):
    rule, _ = rule_results
    register_result(rule, actor="tester")
    again = register_result(rule, actor="tester")  # every row was the champion's training data
    assert again.status == "promoted" and again.decision.paired == {}
    assert "no outcome unseen by champion" in again.decision.reason


def test_an_unvalidated_challenger_never_replaces_a_validated_champion(rule_results):
    validated, unvalidated = rule_results
    champion = register_result(validated, actor="tester")
    refused = register_result(unvalidated, actor="tester")
    assert refused.status == "refused"
    assert "is not validated" in refused.decision.reason
    assert refused.decision.champion_version == champion.version
    assert load_champion("disengagement").version == champion.version
    forced = register_result(unvalidated, actor="alice", force_promote=True)
    assert forced.status == "promoted" and forced.decision.forced
    # the champion is now unvalidated too: a newer unvalidated ranking replaces it
    newer = register_result(unvalidated, actor="tester")
    assert newer.status == "promoted" and "neither is champion" in newer.decision.reason
    listing = list_model_versions().set_index("version")
    assert listing.loc[int(champion.version), "validated"]
    assert not listing.loc[int(newer.version), "validated"]
    assert listing.loc[int(newer.version), "aliases"] == "champion"


def test_the_gate_refuses_only_when_worse_in_most_member_resamples(rule_results):
    from models.gate import _decide

    rule, _ = rule_results
    champion = ("1", 0.35, True)
    wide = {"difference": -0.05, "low": -0.20, "high": 0.10}
    promoted, reason = _decide(rule, 0.30, champion, {**wide, "p_a_worse": 0.4})
    assert promoted and "not in most resamples" in reason and "40 % of member" in reason
    promoted, reason = _decide(rule, 0.30, champion, {**wide, "p_a_worse": 0.8})
    assert not promoted and reason.startswith("refused: challenger pr_auc 0.3000 is worse")
    assert not _decide(rule, 0.30, champion, {})[0]  # no bootstrap: the point estimate decides
    assert _decide(rule, 0.35, champion, {**wide, "p_a_worse": 0.8})[0]  # not worse at all


def test_train_and_register_falls_back_to_a_rule_on_a_short_history():
    from features.errors import InsufficientDataError
    from features.frames import FrameConfig
    from tests.features.conftest import make_tables

    members = [("a", "2024-01-01", "paris", True), ("b", "2024-01-05", "paris", True),
               ("c", "2024-02-01", "lima", True)]
    acts = [(m, pd.Timestamp(t), "attend", e, None, None, None, 1.0)
            for m, t, e in [("a", "2024-02-01", "e1"), ("b", "2024-02-01", "e1"),
                            ("c", "2024-02-10", "e2"), ("a", "2024-03-01", "e3")]]
    tables = make_tables(members, acts)  # two months, no roles table
    by_target = {o.target: o for o in train_and_register(tables, actor="tester")}
    assert by_target["readiness"].method == "rule:activity_365d"
    rule = by_target["disengagement"]
    assert rule.status == "promoted" and rule.method.startswith("rule:") and not rule.validated
    assert "not enough history" in rule.notes[0]
    early = FrameConfig(until=pd.Timestamp("2023-06-01"))  # before anyone was active
    with pytest.raises(InsufficientDataError, match="no member is eligible"):
        train_and_register(tables, ["readiness"], frame=early, actor="tester")
    [outcome] = train_and_register(
        tables, ["readiness"], frame=early, actor="tester", required=False
    )
    assert outcome.status == "insufficient_data" and "no member is eligible" in outcome.message


def test_an_outreach_measurement_is_a_run_of_its_own_experiment():
    from mlflow.tracking import MlflowClient

    from features.settings import mlflow_tracking_uri
    from models.registry import OUTREACH_EXPERIMENT, log_outreach_run

    run_id = log_outreach_run(
        "2024-06-01",
        {"retention.uplift": 0.12, "retention.uplift_low": float("nan"), "contacted": 40},
        {"horizon_days": "90"},
        {"outreach.md": "# Outreach\n", "acceptance.csv": "segment,rate\nready-now,0.5\n"},
        tags={"corecast.source": "club"},
    )
    client = MlflowClient(tracking_uri=mlflow_tracking_uri())
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == OUTREACH_EXPERIMENT
    assert run.info.run_name == "outreach 2024-06-01"
    assert run.data.metrics == {"retention.uplift": 0.12, "contacted": 40.0}  # NaN left out
    assert run.data.params == {"horizon_days": "90"}
    assert run.data.tags["corecast.cycle"] == "2024-06-01"
    assert run.data.tags["corecast.source"] == "club"
    paths = sorted(a.path for a in client.list_artifacts(run_id))
    assert paths == ["acceptance.csv", "outreach.md"]
    # scoring the same cycle again replaces its run: one run per cycle and source
    again = log_outreach_run("2024-06-01", {"contacted": 41}, {}, {},
                             tags={"corecast.source": "club"})
    other = log_outreach_run("2024-06-01", {"contacted": 7}, {}, {},
                             tags={"corecast.source": "another club"})
    alive = client.search_runs([run.info.experiment_id])
    assert sorted(r.info.run_id for r in alive) == sorted([again, other])
