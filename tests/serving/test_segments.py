"""Segments and within-chapter ranks on a hand-built table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import ConfigError
from serving.segments import SegmentConfig, assign_segments, declined_offer, rank_within_chapter


def test_rank_within_chapter_ranks_each_chapter_separately_and_skips_nan():
    scores = pd.Series([0.9, 0.1, 0.5, np.nan, 0.7, 0.2])
    chapters = pd.Series(["paris", "paris", "paris", "paris", "lima", None])
    ranks = rank_within_chapter(scores, chapters)
    # paris: 0.9 -> 1, 0.5 -> 2, 0.1 -> 3, NaN -> no rank; lima: 0.7 -> 1; no chapter: 0.2 -> 1
    assert ranks.tolist() == [1, 3, 2, pd.NA, 1, 1]


def test_assign_segments_follows_documented_priority():
    frame = pd.DataFrame(
        {
            # a: ambassador with high risk; b: top of chapter and ready; c: at risk, low readiness
            # d: rank 4 (beyond capacity 3) but promising -> nurture; e: calm ambassador
            # f: active, nothing special -> steady; g: not active -> dormant
            # h: ready-now beats at-risk (ready first); i: rank 1 but below ready_min -> nurture
            "readiness_score": [np.nan, 0.30, 0.01, 0.20, np.nan, 0.01, 0.02, 0.5, 0.05],
            "readiness_rank": [pd.NA, 1, 5, 4, pd.NA, 6, 7, 2, 1],
            "disengagement_score": [0.8, 0.1, 0.7, 0.2, 0.3, 0.2, np.nan, 0.9, 0.2],
            "holds_core_role": [True, False, False, False, True, False, False, False, False],
        },
        index=list("abcdefghi"),
    )
    frame["readiness_rank"] = frame["readiness_rank"].astype("Int64")
    seg = assign_segments(frame, SegmentConfig(chapter_capacity=3, ready_min=0.1,
                                               nurture_min=0.03, at_risk=0.6))
    assert seg.to_dict() == {
        "a": "ambassador-at-risk",
        "b": "ready-now",
        "c": "at-risk",
        "d": "nurture",
        "e": "ambassador",
        "f": "steady",
        "g": "dormant",
        "h": "ready-now",
        "i": "nurture",
    }


def test_segment_config_rejects_bad_thresholds():
    with pytest.raises(ConfigError, match="at_risk"):
        SegmentConfig(at_risk=1.5)
    with pytest.raises(ConfigError, match="chapter_capacity"):
        SegmentConfig(chapter_capacity=-1)


def test_a_member_who_declined_an_offer_is_not_ready_now():
    frame = pd.DataFrame(
        {
            "readiness_score": [0.30, 0.30, 0.30],
            "readiness_rank": pd.array([1, 1, 1], dtype="Int64"),
            "disengagement_score": [0.1, 0.7, 0.1],
            "holds_core_role": [False, False, False],
            "declined_offer": [False, True, True],
        },
        index=list("abc"),
    )
    seg = assign_segments(frame, SegmentConfig(chapter_capacity=3, ready_min=0.1, at_risk=0.6))
    # a is ready; b declined and is at risk; c declined: promising, so nurture
    assert seg.to_dict() == {"a": "ready-now", "b": "at-risk", "c": "nurture"}


def test_declined_offer_looks_back_the_pause_from_the_answer():
    when = pd.Timestamp("2024-07-01")
    outreach = pd.DataFrame(
        {
            "member_id": ["a", "b", "c", "d", "e", "f"],
            "contacted_at": pd.to_datetime(
                ["2024-06-01", "2023-12-01", "2024-01-10", "2024-06-01", "2024-06-01", "2024-07-02"]
            ),
            "purpose": ["readiness"] * 3 + ["retention"] + ["readiness"] * 2,
            "outcome": ["declined", "declined", "declined", "declined", "accepted", "declined"],
            # b answered 213 days before the run (beyond 180); c's answer came 165 days before
            "outcome_at": pd.to_datetime([None, "2023-12-01", "2024-01-18", None, None, None]),
        }
    )
    assert list(declined_offer(outreach, when, 180)) == ["a", "c"]
    assert list(declined_offer(outreach, when, 0)) == []
    assert list(declined_offer(None, when, 180)) == []


def test_segment_config_rejects_a_negative_pause():
    with pytest.raises(ConfigError, match="declined_pause_days"):
        SegmentConfig(declined_pause_days=-1)
