"""The summaries a flow run publishes: hand-made inputs, exact expected content, no emails."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd

from features.labels import LabelConfig
from pipelines.artifacts import (
    build_chapter_rows,
    build_top_candidates,
    build_training_markdown,
    build_weekly_markdown,
    mlflow_model_url,
    mlflow_run_url,
)

UI = "http://127.0.0.1:5000/"
T = pd.Timestamp("2024-07-01")


def predictions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "member_id": ["a1", "a2", "a3", "b1", "b2", "ann@example.org", "x"],
            "email": ["a1@x.org", "a2@x.org", "a3@x.org", "b1@x.org", "b2@x.org",
                      "ann@example.org", "x@x.org"],
            "chapter_id": ["paris", "paris", "paris", "lyon", "lyon", "lyon", None],
            "readiness_score": [0.50, 0.30, 0.10, 0.20, np.nan, 0.40, 0.05],
            "readiness_rank": pd.array([1, 2, 3, 2, pd.NA, 1, 1], dtype="Int64"),
            "disengagement_score": [0.1, 0.2, 0.9, 0.3, 0.8, 0.2, 0.1],
            "segment": ["ready-now", "ready-now", "at-risk", "ready-now", "ambassador-at-risk",
                        "ready-now", "steady"],
            "readiness_reasons": ["Hosted 3 events", "Many ties", "", "Regular | weekly",
                                  "", "Wrote to bob@example.org", "New"],
        }
    )


def chapters() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "urgency_rank": [1, 2, 3],
            "chapter_id": ["lyon", "paris", None],
            "name": ["Lyon", "Paris", "(no chapter)"],
            "city": ["Lyon", "Paris", None],
            "members": np.array([3, 3, 1], dtype=np.int64),
            "link_density": [0.123456, np.nan, 0.0],
            "health": ["ambassadors at risk; contact carol@example.org", "healthy", "healthy"],
            "not_copied": [1, 2, 3],
        }
    )


def test_mlflow_links():
    assert mlflow_run_url(UI, "abc") == "http://127.0.0.1:5000/#/runs/abc"
    assert mlflow_model_url(UI, "corecast-readiness", 3) == (
        "http://127.0.0.1:5000/#/models/corecast-readiness/versions/3"
    )


def test_top_candidates_per_chapter_use_ids_and_chapter_names_never_emails():
    top = build_top_candidates(predictions(), chapters(), top=2)
    assert list(top.columns) == ["chapter", "member_id", "rank", "readiness", "segment", "reasons"]
    assert top[["chapter", "member_id", "rank"]].values.tolist() == [
        ["Lyon", "[email hidden]", 1],
        ["Lyon", "b1", 2],
        ["Paris", "a1", 1],
        ["Paris", "a2", 2],
        ["(no chapter)", "x", 1],
    ]
    assert top["reasons"].tolist()[0] == "Wrote to [email hidden]"
    assert "@" not in top.to_csv()


def test_top_candidates_of_a_community_without_chapters():
    # No member has a chapter (an open-source project, say), and there is no chapters table.
    frame = predictions().assign(chapter_id=pd.Series([pd.NA] * 7, dtype="string"))
    frame["readiness_rank"] = frame["readiness_score"].rank(ascending=False).astype("Int64")
    top = build_top_candidates(frame, None, top=2)
    assert top["chapter"].tolist() == ["(no chapter)", "(no chapter)"]
    assert top[["member_id", "rank"]].values.tolist() == [["a1", 1], ["[email hidden]", 2]]


def test_top_candidates_without_readiness_scores_is_empty():
    frame = predictions().assign(readiness_score=np.nan, readiness_rank=pd.NA)
    assert build_top_candidates(frame, chapters()).empty


def test_chapter_rows_keep_known_columns_as_plain_json_values():
    rows = build_chapter_rows(chapters())
    assert rows[0] == {
        "urgency_rank": 1,
        "chapter_id": "lyon",
        "name": "Lyon",
        "city": "Lyon",
        "members": 3,
        "link_density": 0.1235,
        "health": "ambassadors at risk; contact [email hidden]",
    }
    assert rows[1]["link_density"] is None
    assert rows[2]["chapter_id"] is None and rows[2]["city"] is None
    assert type(rows[0]["members"]) is int


def _outcome(target, status, version, run_id, reason, metrics, method=None, validated=False,
             notes=()):
    decision = SimpleNamespace(reason=reason) if reason else None
    return SimpleNamespace(
        target=target, status=status, version=version, run_id=run_id, decision=decision,
        message=f"{target}: not trained", metrics=metrics, method=method, validated=validated,
        notes=notes,
    )


def test_training_markdown_lists_metrics_gate_and_run_links():
    outcomes = [
        _outcome("readiness", "refused", "4", "run4", "refused: challenger pr_auc 0.1 is worse",
                 {"holdout.roc_auc": 0.81234, "holdout.pr_auc": 0.1,
                  "holdout.precision_at_k": 0.25, "holdout.ece": 0.02},
                 method="rule:activity_365d", validated=True,
                 notes=("No learned model: too few promotions.",)),
        _outcome("disengagement", "unavailable", None, None, None, {}),
    ]
    text = build_training_markdown(outcomes, "/data/community", UI)
    lines = text.splitlines()
    header = (
        "| target | status | version | method | ROC-AUC | PR-AUC | precision@k | ECE | gate | "
        "MLflow run |"
    )
    assert header in lines
    assert (
        "| readiness | refused | v4 | rule:activity_365d, validated | 0.812 | 0.100 | 0.250 | "
        "0.020 | refused: challenger pr_auc 0.1 is worse | "
        "[run4](http://127.0.0.1:5000/#/runs/run4) |"
    ) in lines
    assert (
        "| disengagement | unavailable |  |  |  |  |  |  | disengagement: not trained |  |"
    ) in lines
    assert "- readiness: No learned model: too few promotions." in lines
    assert "Data: `/data/community`" in text


def test_weekly_markdown_summarises_window_segments_models_candidates_and_push():
    preds = predictions()
    result = SimpleNamespace(predictions=preds, as_of=T)
    labels = {"core_role": "maintainer", "horizon_days": 365, "active_within_days": 365,
              "readiness_horizon_days": 730, "readiness_active_within_days": 365}
    model = SimpleNamespace(version="3", aliases=("champion",), run_id="r3",
                            metadata={"labels": labels})
    fingerprint = LabelConfig(**labels).fingerprint()
    report = SimpleNamespace(
        kind="csv", dry_run=False, total=7, new=2, changed=1, retried=0, unchanged=4,
        to_send=3, sent=3, failed=0, pending=0, seconds=0.25,
    )
    push = SimpleNamespace(report=report, files=("/out/crm-exports/x.csv",))
    text = build_weekly_markdown(
        source="/data", first_observed=pd.Timestamp("2022-01-03 10:00"),
        last_observed=pd.Timestamp("2024-06-30 18:00"), result=result, chapters=chapters(),
        models={"readiness": model, "disengagement": None}, push=push,
        outputs=["/out/predictions.parquet"], ui_url=UI, top=1,
    )
    assert "- data: `/data`, activity from 2022-01-03 to 2024-06-30" in text
    assert "- scored at: 2024-07-01" in text
    assert "- members scored: 7" in text
    assert (
        "- readiness: [corecast-readiness v3](http://127.0.0.1:5000/#/models/corecast-readiness/"
        "versions/3) (champion; model, validated) - [training run](http://127.0.0.1:5000/#/runs/r3)"
        "; trained with core role maintainer, readiness window 730 days, disengagement window "
        f"365 days (active within 365 days) (labels fingerprint `{fingerprint}`)"
    ) in text
    assert "- disengagement: not scored (no model)" in text
    assert "other label settings" not in text and "outreach" not in text  # no action column
    acted = SimpleNamespace(predictions=preds.assign(
        action=["contact", "hold", "none", "contact", "contact", "none", "none"]), as_of=T)
    with_actions = build_weekly_markdown(
        source="/data", first_observed=pd.Timestamp("2022-01-03 10:00"),
        last_observed=pd.Timestamp("2024-06-30 18:00"), result=acted, chapters=chapters(),
        models={}, push=None, outputs=[], ui_url=UI, top=1,
    )
    assert ("- outreach this cycle: 3 to contact, 1 held back as the control group (action "
            "`hold`: do not call them this cycle)") in with_actions
    expected = LabelConfig().fingerprint()  # the configuration's: ambassador, 180 / 90 days
    other = build_weekly_markdown(
        source="/data", first_observed=pd.Timestamp("2022-01-03 10:00"),
        last_observed=pd.Timestamp("2024-06-30 18:00"), result=result, chapters=chapters(),
        models={"readiness": model, "disengagement": None}, push=push,
        outputs=["/out/predictions.parquet"], ui_url=UI, top=1, labels_fingerprint=expected,
    )
    assert (
        f"  - **readiness: trained with other label settings than the configuration's "
        f"(`{expected}`): retrain (`corecast run --retrain`) to score with them**"
    ) in other
    assert "→ 3 to send" in text and "- push result: 3 sent, 0 failed, 0 pending" in text
    assert "- CRM import file: `/out/crm-exports/x.csv`" in text
    assert "| ready-now | 4 |" in text and "| at-risk | 1 |" in text
    assert "| Paris | a1 | 1 | 0.500 | ready-now | Hosted 3 events |" in text
    assert "a2" not in text  # top=1: only the first of each chapter
    assert "@" not in text


def test_weekly_markdown_without_push_says_so():
    result = SimpleNamespace(predictions=predictions(), as_of=T)
    text = build_weekly_markdown(
        source="/data", first_observed=T, last_observed=T, result=result, chapters=chapters(),
        models={}, push=None, outputs=[], ui_url=UI,
    )
    assert "- push: skipped (no CRM target)" in text


def test_weekly_markdown_records_what_a_quarantine_load_set_aside():
    from pathlib import Path

    from features.quarantine import QuarantineReport

    result = SimpleNamespace(predictions=predictions(), as_of=T)
    common = dict(
        source="/data", first_observed=T, last_observed=T, result=result, chapters=chapters(),
        models={}, push=None, outputs=[], ui_url=UI,
    )
    report = QuarantineReport(
        rows_in={"members": 10, "activities": 400},
        rows_quarantined={"members": 0, "activities": 2},
        by_rule={"members": {}, "activities": {"unknown_counterpart": 2}},
        paths={"activities": Path("/q/activities.quarantine.csv")},
    )
    text = build_weekly_markdown(**common, quarantine=report)
    assert (
        "- quarantined activities: 2 of 400 rows quarantined (0.50%): unknown_counterpart 2 "
        "-> /q/activities.quarantine.csv"
    ) in text
    clean = replace(report, rows_quarantined={"members": 0, "activities": 0}, paths={})
    text = build_weekly_markdown(**common, quarantine=clean)
    assert "- invalid rows: none (loaded with on_invalid=quarantine)" in text
    assert "quarantine" not in build_weekly_markdown(**common)


def test_the_weekly_summary_counts_segments_and_describes_each_target_model():
    from pipelines.artifacts import _model_lines, _segment_counts

    counts = _segment_counts(predictions())
    assert counts.to_dict("records")[0] == {"segment": "ready-now", "members": 4}
    assert counts["members"].sum() == 7 and list(counts.columns) == ["segment", "members"]

    labels = {"core_role": "maintainer", "horizon_days": 365, "active_within_days": 365,
              "readiness_horizon_days": 730, "readiness_active_within_days": 365}
    model = SimpleNamespace(version="3", aliases=(), run_id="r3", metadata={"labels": labels})
    fingerprint = LabelConfig(**labels).fingerprint()
    lines = _model_lines({"disengagement": None, "readiness": model}, UI, fingerprint)
    assert lines[0] == "- disengagement: not scored (no model)"
    assert lines[1].startswith("- readiness: [corecast-readiness v3](") and "(no alias;" in lines[1]
    assert len(lines) == 2 and _model_lines({}, UI, None) == []
    other = _model_lines({"readiness": model}, UI, LabelConfig().fingerprint())
    assert len(other) == 2 and other[1].startswith("  - **readiness: trained with other label")
