"""The real-data benchmark's pure helpers, on tiny hand-written data with hand-computed answers."""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from benchmarks import bench_realdata as br
from features.tables import Tables

AT = pd.Timestamp("2021-01-01")


def _activities() -> pd.DataFrame:
    rows = [
        ("d", "2020-01-02 00:00", "commit", "Lib:2020-01"),  # exactly 365 days before AT
        ("b", "2018-01-01 00:00", "commit", "Lib:2018-01"),
        ("a", "2019-06-01 00:00", "commit", "pr-1"),
        ("a", "2020-03-01 00:00", "commit", "pr-2"),
        ("a", "2020-06-01 00:00", "merge", "pr-3"),
        ("b", "2020-12-31 00:00", "commit", "pr-4"),
        ("b", "2020-12-31 12:00", "commit", "pr-4"),
        ("c", "2021-01-01 00:00", "commit", "pr-5"),  # at AT: not before it
    ]
    frame = pd.DataFrame(rows, columns=["member_id", "occurred_at", "activity_type", "event_id"])
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"])
    return frame.sort_values("occurred_at", kind="stable").reset_index(drop=True)


def test_protocol_dates_train_on_1_january_and_score_january_and_july():
    dates = br.protocol_dates([2015, 2014, 2015])
    assert [d for d, _ in dates] == [pd.Timestamp("2014-01-01"), pd.Timestamp("2015-01-01")]
    assert dates[1][1] == [pd.Timestamp("2015-01-01"), pd.Timestamp("2015-07-01")]
    assert len(br.protocol_dates(br.PROTOCOL_YEARS)) * 2 == 18


def test_rule_scores_by_hand():
    rules = br.rule_scores(_activities(), AT)
    assert sorted(rules.index) == ["a", "b", "d"]  # c's only activity is at AT
    # a: one commit in [2020-01-02, 2021-01-01) (2019-06-01 is older); events pr-2 and pr-3
    assert rules.loc["a"].to_dict() == {
        "commits_365d": 1.0, "events_365d": 2.0, "pull_requests_365d": 2.0,
        "days_since_last": 214.0,  # 2020-06-01 -> 2021-01-01: 30 + 31 + 31 + 30 + 31 + 30 + 31
        "fewer_commits": -2.0,
    }
    # b: two recent commits in one pull request, last one half a day before AT, 3 commits ever
    assert rules.loc["b"].to_dict() == {
        "commits_365d": 2.0, "events_365d": 1.0, "pull_requests_365d": 1.0,
        "days_since_last": 0.5, "fewer_commits": -3.0,
    }
    # d: the window includes its start; an area-month event is no pull request
    assert rules.loc["d", "commits_365d"] == 1.0
    assert rules.loc["d", "pull_requests_365d"] == 0.0
    assert rules.loc["d", "days_since_last"] == 365.0


def test_judge_by_hand():
    labels = pd.Series([1, 0, 1, 0], index=list("pqrs"))
    scores = pd.Series([0.9, 0.8, 0.4, 0.1], index=list("pqrs"))
    got = br.judge(labels, scores)
    # pairs (pos, neg): p>q, p>s, r<q, r>s -> 3/4; AP = 1/2 * 1 + 1/2 * 2/3
    assert got["roc_auc"] == pytest.approx(0.75)
    assert got["ap"] == pytest.approx(5 / 6)
    assert got["coverage"] == 1.0


def test_judge_ranks_unscored_members_last():
    labels = pd.Series([True, False, False], index=["a", "b", "c"])
    scores = pd.Series([0.5, 0.7, 0.9], index=["a", "c", "zz"])  # b unscored, zz not eligible
    got = br.judge(labels, scores)
    # order c (neg), a (pos), b (neg, last): a beats b not c -> 0.5; first positive at rank 2
    assert got["roc_auc"] == pytest.approx(0.5)
    assert got["ap"] == pytest.approx(0.5)
    assert got["coverage"] == pytest.approx(2 / 3)


def test_judge_without_scores_or_without_both_classes():
    labels = pd.Series([1, 0, 0, 0], index=list("abcd"))
    empty = pd.Series([np.nan] * 4, index=list("abcd"))
    for scores in (None, empty):
        assert br.judge(labels, scores) == {"roc_auc": 0.5, "ap": 0.25, "coverage": 0.0}
    assert br.judge(pd.Series([0, 0], index=["a", "b"]), empty) is None
    assert br.judge(pd.Series([1, 1], index=["a", "b"]), empty) is None


def test_coverage():
    assert br.coverage(pd.Index(["a", "b"]), pd.Series([1.0], index=["a"])) == 0.5
    assert br.coverage(pd.Index(["a"]), None) == 0.0
    assert np.isnan(br.coverage(pd.Index([]), None))


def test_readme_eligible_drops_former_maintainers_and_merge_only_members():
    roles = pd.DataFrame({
        "member_id": ["a", "b"], "role": ["maintainer", "maintainer"],
        "started_at": pd.to_datetime(["2019-01-01", "2021-06-01"]),
        "ended_at": pd.to_datetime(["2019-12-31", None]),
    })
    tables = Tables(members=pd.DataFrame(), activities=_activities(), roles=roles)
    labels = pd.Series([False, True, True], index=["a", "b", "d"])
    # a held the role before AT (ended since): out; b's spell starts after AT: in
    assert br.readme_eligible(labels, "readiness", tables, AT).index.tolist() == ["b", "d"]
    # a's only activity in the window is a merge (its 2020-03-01 commit counts: it stays)
    acts = _activities()
    acts = acts[~((acts["member_id"] == "a") & (acts["activity_type"] == "commit"))]
    tables = Tables(members=pd.DataFrame(), activities=acts, roles=roles)
    got = br.readme_eligible(labels, "disengagement", tables, AT)
    assert got.index.tolist() == ["b", "d"]


def _predictions(with_columns: bool) -> pd.DataFrame:
    frame = pd.DataFrame({
        "member_id": ["a", "b", "c"],
        "readiness_score": [0.2, np.nan, 0.6],
        "disengagement_score": [np.nan] * 3,
    })
    if with_columns:
        frame["readiness_method"] = ["rule:commits", None, "rule:commits"]
        frame["readiness_validated"] = [True, None, True]
    return frame


def test_method_of_reads_the_columns_when_present():
    assert br.method_of(_predictions(False), "readiness") == ("model", "")
    assert br.method_of(_predictions(False), "disengagement") == ("-", "")
    assert br.method_of(_predictions(True), "readiness") == ("rule:commits", "True")
    assert br.method_of(None, "readiness") == ("-", "")


def test_evaluate_target_judges_model_and_the_targets_rules():
    labels = pd.Series([True, False, False], index=["a", "b", "c"])
    rules = br.rule_scores(_activities(), AT)
    got = br.evaluate_target(labels, _predictions(False), rules, "readiness")
    assert (got["eligible"], got["positives"], got["method"]) == (3, 1, "model")
    # model: c 0.6 (neg), a 0.2 (pos), b unscored -> ROC-AUC 0.5, coverage 2/3
    assert got["model"]["roc_auc"] == pytest.approx(0.5)
    assert got["coverage"] == pytest.approx(2 / 3)
    assert set(got["rules"]) == {"commits_365d", "events_365d", "pull_requests_365d"}
    # commits_365d: a 1, b 2, c none (ranks last) -> a beats c only
    assert got["rules"]["commits_365d"]["roc_auc"] == pytest.approx(0.5)


def test_holdout_summary_prints_values_intervals_and_other_keys():
    metrics = {
        "holdout.roc_auc": 0.9, "holdout.roc_auc_ci_low": 0.8, "holdout.roc_auc_ci_high": 0.95,
        "holdout.pr_auc": 0.5, "holdout.n": 10.0, "holdout.precision_at_k_ci_low": 0.1,
    }
    assert br.holdout_summary(metrics) == (
        "roc_auc 0.900 [0.800, 0.950]; pr_auc 0.500; precision_at_k ci_low=0.100"
    )
    assert br.holdout_summary({}) == "-"
    assert br.holdout_summary(None) == "-"


def _record(date: str, model, rule) -> dict:
    fig = {"model": model, "rules": {"commits_365d": rule}}
    return {"date": pd.Timestamp(date), "figures": {"readiness": fig}}


def test_mean_over_dates_skips_one_class_dates_and_later_dates():
    records = [
        _record("2021-01-01", {"roc_auc": 0.8, "ap": 0.2}, {"roc_auc": 0.6, "ap": 0.1}),
        _record("2021-07-01", None, None),
        _record("2022-07-01", {"roc_auc": 1.0, "ap": 0.4}, None),
    ]
    assert br.mean_over_dates(records, "readiness", "model") == pytest.approx((0.9, 0.3, 2))
    last = pd.Timestamp("2022-01-01")
    assert br.mean_over_dates(records, "readiness", "model", last=last) == pytest.approx(
        (0.8, 0.2, 1))
    assert br.mean_over_dates(records, "readiness", "commits_365d")[2] == 1
    roc, ap, n = br.mean_over_dates(records[1:2], "readiness", "model")
    assert n == 0 and np.isnan(roc) and np.isnan(ap)


def test_verdicts():
    lines = br.verdicts({"readiness": (0.93, 0.39, 16), "disengagement": (0.88, 0.9, 17)})
    assert lines == [
        "readiness mean ROC-AUC 0.930 >= 0.92: met (16 dates)",
        "readiness mean AP 0.390 >= 0.4: NOT met (16 dates)",
        "disengagement mean ROC-AUC 0.880 >= 0.88: met (17 dates)",
    ]


def test_fresh_home_sets_and_restores_the_environment(monkeypatch):
    monkeypatch.setenv("CORECAST_HOME", "/somewhere")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x.db")
    with br.fresh_home() as home:
        assert os.environ["CORECAST_HOME"] == str(home) and home.is_dir()
        assert "MLFLOW_TRACKING_URI" not in os.environ
    assert os.environ["CORECAST_HOME"] == "/somewhere"
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:///x.db"
    assert not home.exists()


def test_main_exits_2_without_the_data(tmp_path, capsys):
    out = tmp_path / "r.md"
    status = br.main(["--data", str(tmp_path / "missing"), "--skip-simulated", "--out", str(out)])
    assert status == 2
    assert "no SciPy data" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit):
        br.main(["--years", "2013", "--skip-simulated"])


def test_outcome_method_reads_the_outcome_then_its_result():
    assert br.outcome_method(SimpleNamespace(status="error")) == ""
    assert br.outcome_method(SimpleNamespace(method="rule:commits", validated=False)) == (
        "rule:commits (validated=False)")
    result = SimpleNamespace(method="model", validated=True)
    assert br.outcome_method(SimpleNamespace(result=result)) == "model (validated=True)"


def test_sim_config_keeps_the_truth_dates_that_fit():
    from simulator.model import truth_as_of_dates

    assert br.sim_config(300, 2.0, 0).truth_dates == 6
    short = br.sim_config(300, 0.75, 1)
    # 0.75 year ~ 39 weeks = 273 days: the first truth date must be >= 30 days after the start
    # and the last 180 days before the end -> 273 - 210 = 63 days for (n - 1) x 30 -> n = 3
    assert (short.truth_dates, short.members, short.seed) == (3, 300, 1)
    assert len(truth_as_of_dates(short)) == 3


def test_failed_outcomes_keep_the_registrys_statuses():
    from features.errors import InsufficientDataError

    assert br._failed("readiness", InsufficientDataError("few")).status == "insufficient_data"
    failed = br._failed("readiness", RuntimeError("boom"))
    assert (failed.status, failed.message, failed.metrics) == ("error", "RuntimeError: boom", {})


def test_eligible_at_without_core_role_spells_counts_every_recent_member():
    from features.labels import LabelConfig

    members = pd.DataFrame({
        "member_id": ["a", "b", "c", "d"],
        "joined_at": pd.to_datetime(["2019-01-01", "2019-01-01", "2019-01-01", "2021-01-01"]),
        "chapter_id": [pd.NA] * 4, "email": ["x"] * 4, "consent": [True, True, False, True],
    }).astype({"chapter_id": "string", "email": "string"})
    acts = _activities()
    for col in ("chapter_id", "role", "counterpart_id"):
        acts[col] = pd.Series([pd.NA] * len(acts), dtype="string")
    acts["weight"] = 1.0
    acts = acts[acts["member_id"] != "d"].reset_index(drop=True)
    tables = Tables(members=members, activities=acts, roles=None, source="tiny")
    labels = LabelConfig()
    # a and b active in the 365 days before AT; c has no consent; d joined at AT
    got = br.eligible_at(tables, AT, "readiness", labels)
    assert list(got) == ["a", "b"]
    # disengagement: active in the last 90 days -> only b (a's last activity is 214 days back)
    assert list(br.eligible_at(tables, AT, "disengagement", labels)) == ["b"]


def test_outcome_method_is_empty_when_nothing_ranks():
    assert br.outcome_method(SimpleNamespace(method=None, validated=False)) == ""
