"""Reasons: hand-computed what-if contributions on a linear toy model."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from features.errors import ConfigError
from serving.reasons import ReasonConfig, explain_scores, phrase_feature, plan_reasons, topic_of


class LinearModel:
    """p = sum(coef * x), a transparent stand-in for a fitted classifier."""

    def __init__(self, coefs: dict[str, float]):
        self.coefs = coefs

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        p = sum(x[c].to_numpy(dtype=float) * w for c, w in self.coefs.items())
        return np.column_stack([1 - p, p])


@pytest.fixture
def members():
    x = pd.DataFrame(
        {"n_organize_90d": [3, 0, 1], "net_ties": [24, 2, 10]},
        index=pd.Index(["a", "b", "c"], name="member_id"),
    )
    features = x.assign(net_ties_outside_chapter=[5, 0, 0])
    return x, features


def test_reasons_follow_contributions_and_point_up(members):
    x, features = members
    model = LinearModel({"n_organize_90d": 0.02, "net_ties": 0.01})
    # p: a = 0.06 + 0.24 = 0.30, b = 0.02, c = 0.12; typical (median) member: 1 organised, 10 ties
    # a: ties -> 0.30 - (0.06 + 0.10) = 0.14; organising -> 0.30 - (0.02 + 0.24) = 0.04
    # b: both below typical -> negative contributions -> no reason; c: typical -> no reason
    out = explain_scores(model, x, features, ReasonConfig(min_contribution=0.001))
    assert out.loc["a", "reason_1_feature"] == "net_ties"
    assert out.loc["a", "reason_1_contribution"] == pytest.approx(0.14)
    assert out.loc["a", "reason_2_feature"] == "n_organize_90d"
    assert out.loc["a", "reason_2_contribution"] == pytest.approx(0.04)
    assert out.loc["a", "reasons"] == (
        "linked to 24 members (5 outside the home chapter); "
        "organised 3 events in the last 90 days"
    )
    assert out.loc["b", "reasons"] == "" and out.loc["c", "reasons"] == ""
    assert pd.isna(out.loc["b", "reason_1"])


def test_min_contribution_drops_small_reasons(members):
    x, features = members
    model = LinearModel({"n_organize_90d": 0.02, "net_ties": 0.01})
    out = explain_scores(model, x, features, ReasonConfig(min_contribution=0.05))
    assert out.loc["a", "reason_features"] == "net_ties"


def test_one_reason_per_topic():
    x = pd.DataFrame({"n_attend_90d": [9.0, 1.0, 1.0], "wsum_attend_90d": [9.0, 1.0, 1.0]},
                     index=["a", "b", "c"])
    model = LinearModel({"n_attend_90d": 0.03, "wsum_attend_90d": 0.02})
    out = explain_scores(model, x, x, ReasonConfig(min_contribution=0.0))
    # both columns say "attended in 90 days": only the stronger one (0.24 vs 0.16) is kept
    assert out.loc["a", "reason_features"] == "n_attend_90d"
    assert out.loc["a", "reasons"] == "attended 9 events in the last 90 days"


def test_reasons_are_chosen_largest_first_one_per_topic_up_to_n_reasons():
    from serving.reasons import _choose_reasons, _Contributions

    # n_attend_90d and wsum_attend_90d share a topic; -inf is no reason
    contributions = _Contributions(
        candidates=("n_attend_90d", "wsum_attend_90d", "net_ties", "tenure_days"),
        values=np.array([
            [0.1, 0.3, 0.2, 0.05],
            [-np.inf, -np.inf, 0.01, -np.inf],
            [-np.inf, -np.inf, -np.inf, -np.inf],
        ]),
    )
    chosen = _choose_reasons(contributions, k_max=2)
    assert chosen.tolist() == [[1, 2], [2, -1], [-1, -1]]


def test_activity_types_and_roles_are_said_in_words():
    f = pd.DataFrame({"n_pr_review_90d": [4.0], "wsum_pr_review_365d": [9.0],
                      "role_core_now": [1.0], "role_core_past_spells": [2.0]})
    assert phrase_feature("n_pr_review_90d", f).iloc[0] == (
        "4 'pr review' activities in the last 90 days"
    )
    assert "'pr review' activities" in phrase_feature("wsum_pr_review_365d", f).iloc[0]
    assert phrase_feature("role_core_now", f).iloc[0] == "currently an ambassador"
    assert phrase_feature("role_core_past_spells", f, role="maintainer").iloc[0] == (
        "was a maintainer 2 time(s) before"
    )


def test_recency_sentence_mentions_past_cadence():
    f = pd.DataFrame({"days_since_last_activity": [41.0, 3.0], "active_weeks_365d": [40, 2]})
    text = phrase_feature("days_since_last_activity", f)
    assert text.tolist() == ["no activity for 41 days, used to come weekly",
                             "no activity for 3 days"]


def test_contact_and_chapter_core_sentences():
    f = pd.DataFrame({
        "days_since_last_contact": [12.0, 300.0],
        "has_contact": [1, 0],
        "chapter_core_members": [2, 0],
        "chapter_core_per_active_90d": [0.025, 0.0],
        "chapter_core_shortfall": [0.0, 1.0],
        "days_since_chapter_core_end": [45.0, 700.0],
    })
    assert phrase_feature("days_since_last_contact", f).tolist() == [
        "last contacted by another member 12 days ago", "never contacted by another member"
    ]
    assert phrase_feature("chapter_core_members", f).tolist() == [
        "home chapter has 2 ambassador(s)", "home chapter has 0 ambassador(s)"
    ]
    assert phrase_feature("chapter_core_per_active_90d", f).iloc[0] == (
        "home chapter has 2.5 ambassadors per 100 active members"
    )
    assert phrase_feature("chapter_core_shortfall", f).tolist() == [
        "home chapter has enough ambassadors", "home chapter has no ambassador"
    ]
    assert phrase_feature("days_since_chapter_core_end", f).iloc[1] == (
        "no ambassador of the home chapter stepped down for 700 days"
    )
    assert topic_of("has_contact") == topic_of("days_since_last_contact") == "contact"
    assert topic_of("chapter_core_shortfall") == "chapter"


def test_unknown_columns_say_their_topic_without_a_number_or_a_name():
    f = pd.DataFrame({"mystery": [1.5]})
    assert phrase_feature("mystery", f).iloc[0] == (
        "something else in their history"  # not a corecast column: nothing more to say
    )
    assert topic_of("n_attend_30d") == topic_of("wsum_attend_365d")


#: What a sentence read to a member must not contain: a column name, a formula, a raw decimal.
_NOT_SAYABLE = re.compile(
    r"[a-z]+_[a-z0-9_]+"  # an internal name
    r"|[=×*/^]|\bln\b|\bexp\b|\bsum of\b|-ln"  # a formula
    r"|\d\.\d{2,}|\b0\.\d"  # a raw decimal (2.5 per 100 is fine, 0.37 or 6.50 is not)
)


@pytest.fixture(scope="module")
def every_feature():
    """Every feature column corecast builds, on a small simulated community."""
    from features.build import build_features
    from simulator.community import SimulationConfig, simulate_community

    sim = simulate_community(SimulationConfig(members=300, years=2, seed=3))
    tables = sim.tables()
    return build_features(tables, tables.last_observed.normalize())


def test_every_feature_has_a_sentence_a_manager_can_say(every_feature):
    for column in every_feature.columns:
        for role in ("ambassador", "maintainer"):
            sentences = phrase_feature(column, every_feature, role)
            bad = [t for t in set(sentences) if _NOT_SAYABLE.search(t)]
            assert not bad, f"{column}: {bad[:3]}"
            assert not sentences.str.startswith("their ").any(), column  # a real sentence
        if column.startswith("role_core") or column.startswith("chapter_core"):
            assert not phrase_feature(column, every_feature, "maintainer").str.contains(
                "ambassador"
            ).any(), column


def test_silence_is_said_against_the_members_own_habits():
    f = pd.DataFrame({
        "days_since_last_activity": [84.0, 84.0],
        "silence_surprise": [6.5, 0.4],
        "silence_vs_longest_break": [1.5, 0.6],
        "silence_vs_usual_break": [5.0, 1.0],
        "longest_break_days": [50.0, 0.0],
        "usual_break_days": [6.6, 0.0],
    })
    assert phrase_feature("silence_surprise", f).tolist() == [
        "no activity for 12 weeks, unusual for someone who came most weeks",
        "no activity for 12 weeks, not unusual for them",
    ]
    assert phrase_feature("silence_vs_longest_break", f).tolist() == [
        "no activity for 12 weeks, longer than any break they came back from",
        "no activity for 12 weeks, within the breaks they usually take",
    ]
    assert phrase_feature("longest_break_days", f).tolist() == [
        "came back after a break of 7 weeks before", "no break yet to come back from"
    ]
    assert phrase_feature("usual_break_days", f).tolist() == [
        "usually active every 7 days", "active on a single day so far"
    ]
    assert topic_of("silence_surprise") == topic_of("days_since_last_activity") == "recency"


def test_empty_input_and_bad_config():
    empty = pd.DataFrame({"net_ties": pd.Series(dtype=float)})
    out = explain_scores(LinearModel({"net_ties": 0.1}), empty, empty)
    assert out.empty and "reasons" in out.columns
    with pytest.raises(ConfigError):
        ReasonConfig(n_reasons=0)


def _fitted_trees(calibrated: bool = False):
    from sklearn.pipeline import Pipeline

    from models.factories import build_hgb_pipeline

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.poisson(2.0, size=(600, 5)).astype(float),
                     columns=["n_attend_90d", "net_ties", "tenure_days", "has_ties", "orbit_love"])
    x["trend_count_diff"] = rng.normal(size=600)
    y = ((x["n_attend_90d"] + x["trend_count_diff"] + rng.normal(size=600)) > 2.5).astype(int)
    model = build_hgb_pipeline(max_iter=25, min_samples_leaf=20).fit(x, y)
    assert isinstance(model, Pipeline)
    return model, x


def test_tree_what_ifs_equal_full_predictions_to_the_last_bit(monkeypatch):
    import serving.reasons as reasons

    model, x = _fitted_trees()
    assert reasons.tree_ensemble(model) is not None
    assert reasons.tree_ensemble(LinearModel({"net_ties": 0.1})) is None
    values = x.to_numpy(dtype=float)
    reference = x.median().to_numpy()
    tries = [(j, np.flatnonzero(values[:, j] != reference[j])) for j in range(x.shape[1])]
    monkeypatch.setattr(reasons, "_BATCH_CELLS", 700)  # several row chunks and batches
    fast = reasons._what_if(model, values, list(x.columns), reference, tries)
    for (j, rows), got in zip(tries, fast, strict=True):
        alt = x.iloc[rows].copy()
        alt.iloc[:, j] = reference[j]
        np.testing.assert_array_equal(got, model.predict_proba(alt)[:, 1])


def test_tree_reasons_point_up_and_are_the_same_in_parts():
    model, x = _fitted_trees()
    config = ReasonConfig(min_contribution=0.01, sample_size=300)
    whole = explain_scores(model, x, x, config)
    contributions = whole[[f"reason_{k}_contribution" for k in (1, 2, 3)]].to_numpy()
    given = ~np.isnan(contributions)
    assert given.sum() > 100 and (contributions[given] >= 0.01).all()
    # a member's reasons do not depend on who else is explained with them, given the run's plan
    plan = plan_reasons(model, x, config)
    assert plan.candidates and set(plan.candidates) <= set(x.columns)
    halves = [explain_scores(model, x.iloc[rows], x.iloc[rows], config, plan=plan)
              for rows in (slice(0, 250), slice(250, None))]
    pd.testing.assert_frame_equal(pd.concat(halves), whole)


def test_batched_what_ifs_of_any_model_equal_one_at_a_time(monkeypatch):
    import serving.reasons as reasons

    rng = np.random.default_rng(2)
    x = pd.DataFrame(rng.poisson(2.0, size=(50, 3)).astype(float), columns=["a", "b", "c"])
    model = LinearModel({"a": 0.05, "b": -0.02, "c": 0.01})
    values = x.to_numpy(dtype=float)
    reference = np.array([1.0, 2.0, 9.0])
    tries = [(j, np.flatnonzero(values[:, j] != reference[j])) for j in range(3)]
    monkeypatch.setattr(reasons, "_BATCH_CELLS", 40)  # 13 rows per batch: pieces split
    got = reasons._what_if(model, values, list(x.columns), reference, tries)
    for (j, rows), scores in zip(tries, got, strict=True):
        alt = x.iloc[rows].copy()
        alt.iloc[:, j] = reference[j]
        np.testing.assert_allclose(scores, model.predict_proba(alt)[:, 1], rtol=0, atol=1e-15)
        assert len(scores) == len(rows) > 20
