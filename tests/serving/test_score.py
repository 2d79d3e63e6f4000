"""Batch scoring on a hand-built community with transparent linear models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import ConfigError
from models.registry import LoadedModel
from serving.score import PREDICTION_COLUMNS, score_members, write_predictions
from tests.features.conftest import make_tables

AS_OF = pd.Timestamp("2024-06-01")


def ago(days: int) -> pd.Timestamp:
    return AS_OF - pd.Timedelta(days=days)


class LinearModel:
    """p = sum(coef * x): a transparent stand-in for a fitted classifier."""

    def __init__(self, coefs: dict[str, float]):
        self.coefs = coefs

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        p = sum(x[c].to_numpy(dtype=float) * w for c, w in self.coefs.items())
        return np.column_stack([1 - p, p])


def loaded(target: str, coefs: dict[str, float], version: str) -> LoadedModel:
    return LoadedModel(target=target, model=LinearModel(coefs), feature_columns=tuple(coefs),
                       version=version, aliases=("champion",), run_id="r", metadata={})


@pytest.fixture
def community():
    members = [
        ("a", "2023-01-01", "paris", True),
        ("b", "2023-01-01", "paris", True),
        ("c", "2023-01-01", "lima", True),
        ("d", "2023-01-01", "lima", False),  # no consent: never scored
        ("e", "2024-07-01", "lima", True),  # joins after as_of
    ]
    acts = [(m, ago(n), "attend", None, None, None, None, 1.0)
            for m, n in [("a", 10), ("a", 20), ("a", 30), ("b", 200), ("c", 5), ("c", 50),
                         ("d", 5), ("e", -40)]]
    roles = [("c", "ambassador", "2023-06-01", None)]
    return make_tables(members, acts, roles)


def test_scores_eligibility_ranks_segments_and_reasons(community):
    # readiness (active in the year, not holding the role): a (3 activities), b (1) -> 0.3, 0.1
    # disengagement (active in 90 days): a (last 10 days ago), c (5 days ago) -> 0.10, 0.05
    result = score_members(
        community, AS_OF,
        loaded("readiness", {"n_all_365d": 0.1}, "7"),
        loaded("disengagement", {"days_since_last_activity": 0.01}, "9"),
        run_id="run-1",
    )
    p = result.predictions.set_index("member_id")
    assert list(result.predictions.columns) == PREDICTION_COLUMNS
    assert sorted(p.index) == ["a", "b", "c"]
    assert p.loc["a", "readiness_score"] == pytest.approx(0.3)
    assert p.loc["b", "readiness_score"] == pytest.approx(0.1)
    assert np.isnan(p.loc["c", "readiness_score"])  # holds the role
    assert p.loc["a", "disengagement_score"] == pytest.approx(0.10)
    assert p.loc["c", "disengagement_score"] == pytest.approx(0.05)
    assert np.isnan(p.loc["b", "disengagement_score"])  # not active in 90 days
    assert p["readiness_rank"].tolist() == [1, 2, pd.NA]
    assert p["segment"].to_dict() == {"a": "ready-now", "b": "ready-now", "c": "ambassador"}
    # a is above the typical (median 2) activity count: the reason points up; b is below: none
    assert p.loc["a", "readiness_reasons"] == "3 activities in the last year"
    assert p.loc["b", "readiness_reasons"] == ""
    assert p.loc["a", "reasons"] == p.loc["a", "readiness_reasons"]
    assert p["readiness_model_version"].unique().tolist() == ["7"]
    assert p["disengagement_model_version"].unique().tolist() == ["9"]
    assert (p["run_id"] == "run-1").all() and (p["as_of"] == AS_OF).all()
    assert p["holds_core_role"].to_dict() == {"a": False, "b": False, "c": True}
    assert result.meta["segments"] == {"ready-now": 2, "ambassador": 1}
    assert "d" in result.features.index  # features cover everyone (network needs them)


def test_scoring_with_one_model_leaves_the_other_score_empty(community):
    result = score_members(community, AS_OF, None,
                           loaded("disengagement", {"days_since_last_activity": 0.01}, "1"))
    p = result.predictions.set_index("member_id")
    assert p["readiness_score"].isna().all()
    assert p["readiness_model_version"].eq("").all()
    assert p.loc["a", "segment"] == "steady" and p.loc["b", "segment"] == "dormant"


def test_scoring_needs_a_model(community):
    with pytest.raises(ConfigError, match="corecast train"):
        score_members(community, AS_OF, None, None)


def test_write_predictions_writes_both_files(community, tmp_path):
    result = score_members(community, AS_OF, None,
                           loaded("disengagement", {"days_since_last_activity": 0.01}, "1"))
    paths = write_predictions(result.predictions, tmp_path / "out")
    assert [p.name for p in paths] == ["predictions.parquet", "predictions.csv"]
    back = pd.read_parquet(paths[0])
    assert back["member_id"].tolist() == result.predictions["member_id"].tolist()
    assert pd.read_csv(paths[1])["member_id"].tolist() == back["member_id"].tolist()


def test_scoring_by_partitions_equals_scoring_at_once(community):
    from serving.score import build_member_part, explain_part, finish_scores, score_parts

    models = {
        "readiness": loaded("readiness", {"n_all_365d": 0.1}, "7"),
        "disengagement": loaded("disengagement", {"days_since_last_activity": 0.01}, "9"),
    }
    expected = score_members(community, AS_OF, **models, run_id="run-1")
    parts = [build_member_part(community, AS_OF, **models, n_parts=2, part=k) for k in (1, 0)]
    # both parts hold someone, and every known member is in exactly one of them
    sizes = [len(p.features[next(iter(p.features))]) for p in parts]
    assert min(sizes) >= 1 and sum(sizes) == 4  # a, b, c, d (e joins after as_of)
    run = score_parts(community, parts, **models)
    reasons = [explain_part(p, run, **models) for p in parts]
    got = finish_scores(community, parts, run, reasons, **models, run_id="run-1")
    pd.testing.assert_frame_equal(
        got.predictions.drop(columns="scored_at"),
        expected.predictions.drop(columns="scored_at"),
    )
    pd.testing.assert_frame_equal(got.features, expected.features)
    assert got.predictions.set_index("member_id").loc["a", "readiness_reasons"] == (
        "3 activities in the last year"
    )


@pytest.mark.parametrize("method", ["isotonic", "sigmoid", "none"])
def test_scores_from_one_pass_equal_the_models_own(method):
    from models.estimators import CalibratedModel, fit_calibrator
    from models.factories import build_hgb_pipeline, build_logreg_pipeline
    from serving.score import _predict

    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.poisson(3.0, size=(400, 4)).astype(float), columns=list("abcd"))
    y = (x["a"] + rng.normal(size=400) > 3).astype(int)
    for inner in (build_hgb_pipeline(max_iter=10, min_samples_leaf=10).fit(x, y),
                  build_logreg_pipeline().fit(x, y)):
        calibration = (fit_calibrator(inner.decision_function(x), y, method)
                       if method != "none" else {"method": "none"})
        model = CalibratedModel(inner, **calibration)
        wrapped = LoadedModel(target="readiness", model=model, feature_columns=tuple(x.columns),
                              version="1", aliases=(), run_id="r", metadata={})
        proba, explained = _predict(wrapped, x)
        np.testing.assert_array_equal(proba, model.predict_proba(x)[:, 1])
        np.testing.assert_array_equal(explained, inner.predict_proba(x)[:, 1])


def test_model_input_has_the_training_frames_float32_precision():
    from types import SimpleNamespace

    from serving.score import MemberPart

    third = 1 / 3  # not a float32 value: its float32 rounding differs from it
    feats = pd.DataFrame(
        {"a": [third, 2.0], "b": [5.0, 0.1]}, index=pd.Index(["m1", "m2"], name="member_id")
    )
    part = MemberPart(
        as_of=pd.Timestamp("2024-01-01"),
        features={"k": feats},
        feature_keys={"readiness": "k"},
        eligible={"readiness": pd.Index(["m2", "m1"])},
    )
    x = part.model_input("readiness", SimpleNamespace(feature_columns=("b", "a", "missing")))
    assert list(x.index) == ["m2", "m1"] and list(x.columns) == ["b", "a", "missing"]
    assert set(x.dtypes) == {np.dtype(np.float32)}
    assert x.loc["m1", "a"] == np.float32(third) and float(x.loc["m1", "a"]) != third
    assert x.loc["m2", "b"] == np.float32(0.1) and x["missing"].tolist() == [0.0, 0.0]


def rule_champion(target: str, column: str, version: str, *, validated: bool) -> LoadedModel:
    """A registered-looking ranking rule: a RuleScorer, uncalibrated, tagged as a rule."""
    from models.estimators import CalibratedModel
    from models.rules import RuleScorer

    scorer = RuleScorer(column, 1).fit(pd.DataFrame({column: [0.0, 1.0, 2.0, 3.0]}))
    tags = {"corecast.method": "rule:activity_365d",
            "corecast.validated": "true" if validated else "false"}
    return LoadedModel(target=target, model=CalibratedModel(scorer, method="none"),
                       feature_columns=(column,), version=version, aliases=("champion",),
                       run_id="r", metadata={"tags": tags})


def test_predictions_say_which_method_scored_them(community):
    from serving.columns import METHOD_COLUMNS

    rule = rule_champion("readiness", "n_all_365d", "2", validated=False)
    result = score_members(community, AS_OF, rule,
                           loaded("disengagement", {"days_since_last_activity": 0.01}, "9"))
    p = result.predictions.set_index("member_id")
    assert set(METHOD_COLUMNS) <= set(p.columns)
    assert (p["readiness_method"] == "rule:activity_365d").all()
    assert not p["readiness_validated"].any()
    # a version without method tags (registered before them) is a validated model
    assert (p["disengagement_method"] == "model").all() and p["disengagement_validated"].all()
    # the rule's score is a percentile of its fitted knots: a (3 activities) ranks above b (1)
    assert p.loc["a", "readiness_score"] > p.loc["b", "readiness_score"]
    assert p.loc["a", "readiness_rank"] == 1
    assert result.meta["readiness_method"] == "rule:activity_365d"
    assert result.meta["readiness_validated"] is False
    assert result.meta["methods"]["disengagement"]["method"] == "model"


def test_predictions_of_a_missing_model_have_no_method(community):
    result = score_members(community, AS_OF, None,
                           loaded("disengagement", {"days_since_last_activity": 0.01}, "1"))
    p = result.predictions
    assert p["readiness_method"].eq("").all() and p["readiness_validated"].isna().all()
    assert "readiness" not in result.meta["methods"]


def test_empty_score_columns_are_named_with_the_reason(community):
    from serving.score import empty_score_reasons

    disengagement = loaded("disengagement", {"days_since_last_activity": 0.01}, "1")
    result = score_members(community, AS_OF, None, disengagement)
    # a and b are eligible for readiness, but there is no readiness champion
    [reason] = empty_score_reasons(result, community, None, disengagement)
    assert "readiness_score would be empty" in reason and "2 eligible" in reason
    assert "corecast train --target readiness" in reason
    assert empty_score_reasons(result, community, None, disengagement, ["readiness"]) == []
    # two years later nobody is active: every disengagement score is missing
    later = score_members(community, AS_OF + pd.Timedelta(days=730), None, disengagement)
    reasons = empty_score_reasons(later, community, None, disengagement, ["readiness"])
    assert len(reasons) == 1 and reasons[0].startswith("disengagement_score would be empty")


def test_the_flows_scoring_step_fails_before_writing_when_a_column_would_be_empty(community):
    from features.errors import InsufficientDataError
    from pipelines.tasks import check_scores

    disengagement = loaded("disengagement", {"days_since_last_activity": 0.01}, "1")
    result = score_members(community, AS_OF, None, disengagement)
    with pytest.raises(InsufficientDataError, match="readiness_score would be empty.*nothing"):
        check_scores.fn(result, community, None, disengagement)
    assert check_scores.fn(result, community, None, disengagement, ["readiness"]) is None


def test_a_member_who_declined_is_out_of_line_and_the_next_moves_up(community):
    # a (0.3) and b (0.1) share paris; with one slot a is ready-now, unless a said no last month
    from dataclasses import replace

    from serving.score import ScoringConfig
    from serving.segments import SegmentConfig

    outreach = pd.DataFrame(
        {
            "member_id": ["a"],
            "contacted_at": [ago(40)],
            "purpose": ["readiness"],
            "outcome": ["declined"],
            "outcome_at": [ago(30)],
        }
    )
    config = ScoringConfig(segments=SegmentConfig(chapter_capacity=1, ready_min=0.05))
    model = loaded("readiness", {"n_all_365d": 0.1}, "7")
    before = score_members(community, AS_OF, model, None, config).predictions
    assert before.set_index("member_id")["segment"][["a", "b"]].tolist() == ["ready-now", "nurture"]
    after = score_members(replace(community, outreach=outreach), AS_OF, model, None, config)
    p = after.predictions.set_index("member_id")
    assert p["segment"][["a", "b"]].tolist() == ["nurture", "ready-now"]
    assert pd.isna(p.loc["a", "readiness_rank"]) and p.loc["b", "readiness_rank"] == 1
    # a 20-day pause has ended by now
    short = replace(config, segments=replace(config.segments, declined_pause_days=20))
    again = score_members(replace(community, outreach=outreach), AS_OF, model, None, short)
    assert again.predictions.set_index("member_id")["segment"]["a"] == "ready-now"


def test_ready_now_candidates_get_a_talking_point_from_their_history(community):
    import dataclasses

    from features.tables import CHAPTER_COLUMNS

    chapters = pd.DataFrame([["paris", "Paris", "Paris", "France"]], columns=CHAPTER_COLUMNS)
    tables = dataclasses.replace(community, chapters=chapters)
    result = score_members(
        tables, AS_OF,
        loaded("readiness", {"n_all_365d": 0.1}, "7"),
        loaded("disengagement", {"days_since_last_activity": 0.01}, "9"),
    )
    p = result.predictions.set_index("member_id")
    assert p["segment"].to_dict() == {"a": "ready-now", "b": "ready-now", "c": "ambassador"}
    # a: joined 517 days before as_of (16 months), 3 'attend' activities in the year without
    # an event id, the reason "3 activities in the last year", no ties and one chapter: the
    # long tenure chooses "closer to the organisation"
    assert p.loc["a", "talking_point"] == (
        "They have been part of the Paris chapter for 16 months and in the last year were "
        "active 3 times, most often attending events. What stands out: 3 activities in the "
        "last year. As an ambassador they would be closer to the organisation they have been "
        "part of for so long."
    )
    assert p.loc["b", "talking_point"].startswith("They have been part of the Paris chapter")
    assert p.loc["c", "talking_point"] == ""  # not a ready-now candidate


def test_each_segment_shows_the_reasons_of_its_score():
    from serving.score import _chosen_reasons

    segments = pd.Series(["at-risk", "ambassador-at-risk", "ready-now", "nurture", "steady",
                          "dormant"])
    readiness = pd.Series([f"ready {i}" for i in range(6)])
    disengagement = pd.Series(["risk 0", "risk 1", "risk 2", "risk 3", "risk 4", ""])
    chosen = _chosen_reasons(segments, readiness, disengagement)
    # risk segments: why they may drift; readiness segments: why they could take over; the
    # others: the risk reasons, or the readiness ones when there is none
    assert chosen.tolist() == ["risk 0", "risk 1", "ready 2", "ready 3", "risk 4", "ready 5"]
