"""Talking points: hand-written histories, every variant sayable, only for ready-now members."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from features.errors import ConfigError
from serving.talking_points import (
    GIFTS,
    TalkingPointConfig,
    chapter_phrases,
    choose_gift,
    talking_points,
)
from tests.serving.test_reasons import _NOT_SAYABLE

CHAPTERS = pd.DataFrame({
    "chapter_id": ["paris", "lima", "oslo"],
    "name": ["Paris chapter", "Lima", None],
    "city": ["Paris", "Lima", "Oslo"],
    "country": ["France", "Peru", "Norway"],
})


def frame(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns, index=pd.Index(list("abcd")[: len(next(iter(columns.values())))],
                                                name="member_id"))


def say(features: pd.DataFrame, reasons=None, chapters=None, role="ambassador",
        config=TalkingPointConfig()) -> list[str]:
    segments = pd.Series("ready-now", index=features.index)
    reasons = pd.Series(reasons or [""] * len(features), index=features.index)
    chapters = pd.Series(chapters or ["paris"] * len(features), index=features.index)
    where = chapter_phrases(chapters, CHAPTERS)
    return talking_points(features, segments, reasons, where, role, config).tolist()


def test_hand_written_histories():
    features = frame(
        # a: 14 months (430 / 30.4375 = 14.1), 12 events, organised 3 times (the largest of the
        #    organising counts), 20 ties -> meeting the other core members
        # b: 1 month, no event, 5 activities mostly messages, 2 ties -> the default
        # c: 29 months (900 days), 3 events, active in 2 chapters -> something bigger
        tenure_days=[430.0, 40.0, 900.0],
        distinct_events_365d=[12, 0, 3],
        n_all_365d=[30, 5, 9],
        n_organize_365d=[2, 0, 0],
        n_role_host_365d=[3, 0, 0],
        n_attend_365d=[20, 1, 5],
        n_message_365d=[7, 4, 2],
        n_other_365d=[0, 9, 0],  # pooled types are never "what they did most"
        n_role_attendee_365d=[25, 0, 9],  # nor are roles
        net_ties=[20, 2, 4],
        distinct_chapters_365d=[1, 1, 2],
        distinct_types_365d=[3, 2, 2],
    )
    reasons = ["attended 12 events in the last 90 days; linked to 20 members; has organised "
               "before", "", "has organised before"]
    got = say(features, reasons, ["paris", "oslo", None])
    assert got == [
        "They have been part of the Paris chapter for 14 months and in the last year took part "
        "in 12 events, organising 3 times. What stands out: attended 12 events in the last 90 "
        "days and linked to 20 members. As an ambassador they would meet the other ambassadors, "
        "a natural next step for someone already linked to 20 members.",
        "They have been part of their chapter for 1 month and in the last year were active 5 "
        "times, most often exchanging messages. As an ambassador they would meet the other "
        "ambassadors and be closer to the organisation.",
        "They have been part of the community for over 2 years and in the last year took part "
        "in 3 events, most often attending events. What stands out: has organised before. "
        "Becoming an ambassador would make them part of something bigger than one chapter, "
        "which suits someone already active in 2 chapters.",
    ]


def test_the_core_role_is_said_as_the_community_says_it():
    features = frame(tenure_days=[400.0], distinct_types_365d=[1], n_all_365d=[1],
                     n_pr_review_365d=[1])
    (got,) = say(features, chapters=["lima"], role="maintainer")
    assert got == (
        "They have been part of the Lima chapter for 13 months and in the last year were active "
        "1 time, most often 'pr review' activities. As a maintainer they would be closer to the "
        "organisation they have been part of for so long."
    )


def test_gifts_are_chosen_from_history_in_order():
    config = TalkingPointConfig()
    base = {"tenure_days": 0.0, "net_ties": 0, "distinct_chapters_365d": 0,
            "distinct_types_365d": 0}
    assert choose_gift(base, config) == "welcome"
    assert choose_gift({**base, "distinct_types_365d": 3}, config) == "wider"
    assert choose_gift({**base, "distinct_types_365d": 3, "tenure_days": 366}, config) == "closer"
    assert choose_gift({**base, "tenure_days": 366, "net_ties": 15}, config) == "others"
    assert choose_gift({**base, "net_ties": 15, "distinct_chapters_365d": 2}, config) == "bigger"
    assert choose_gift({**base, "tenure_days": np.nan}, config) == "welcome"
    assert choose_gift({}, config) == "welcome"  # no family of these features: the default


def test_every_variant_is_sayable():
    """Every gift, tenure wording, activity clause, type and chapter naming, for two roles."""
    values = {
        "tenure_days": [0.0, 20.0, 31.0, 700.0, 731.0, 800.0, np.nan],
        "distinct_events_365d": [0, 1, 7],
        "n_all_365d": [0, 1, 7],
        "n_organize_365d": [0, 1],
        "net_ties": [0, 1, 40],
        "distinct_chapters_365d": [0, 1, 3],
        "distinct_types_365d": [1, 5],
    }
    rows = [dict(zip(values, combo, strict=True)) for combo in itertools.product(*values.values())]
    features = pd.DataFrame(rows, index=pd.Index([f"m{i}" for i in range(len(rows))]))
    features["n_code_review_365d"] = features["n_all_365d"]
    features.loc[features.index[::2], "n_code_review_365d"] = 0
    features["n_attend_365d"] = 1.0
    chapters = pd.Series(["paris", "lima", "oslo", "nowhere", None] * len(rows),
                         dtype=object).iloc[: len(rows)].set_axis(features.index)
    reasons = pd.Series(["active in 3 chapters in the last year; linked to 40 members", ""]
                        * len(rows)).iloc[: len(rows)].set_axis(features.index)
    segments = pd.Series("ready-now", index=features.index)
    seen = set()
    for role in ("ambassador", "maintainer"):
        texts = talking_points(features, segments, reasons, chapter_phrases(chapters, CHAPTERS),
                               role)
        for text in texts:
            assert not _NOT_SAYABLE.search(text), text
            assert "_" not in text and not any(c in text for c in "=<>{}[]%"), text
            assert 2 <= text.count(". ") + 1 <= 3 and text.endswith("."), text
            assert role in text and ("ambassador" not in text or role == "ambassador"), text
        seen |= {choose_gift(row) for row in rows}
    assert seen == set(GIFTS)


def test_sayable_on_a_simulated_community():
    from features.build import build_features
    from simulator.community import SimulationConfig, simulate_community

    tables = simulate_community(SimulationConfig(members=200, years=2, seed=5)).tables()
    features = build_features(tables, tables.last_observed.normalize())
    members = tables.members.set_index("member_id").reindex(features.index)
    segments = pd.Series("ready-now", index=features.index)
    texts = talking_points(features, segments, pd.Series("", index=features.index),
                           chapter_phrases(members["chapter_id"], tables.chapters), "maintainer")
    assert (texts != "").all()
    assert not texts.str.contains(_NOT_SAYABLE).any()
    assert texts.str.contains(" chapter for ").any()  # chapter names from the chapters table


def test_only_ready_now_members_get_a_talking_point():
    features = frame(tenure_days=[400.0] * 4, n_all_365d=[3] * 4)
    segments = pd.Series(["ready-now", "nurture", "ambassador", pd.NA], index=features.index,
                         dtype="string")
    where = chapter_phrases(pd.Series(["paris"] * 4, index=features.index), CHAPTERS)
    got = talking_points(features, segments, pd.Series("x", index=features.index), where)
    assert got.index.equals(features.index)
    assert got.iloc[0].startswith("They have been part of the Paris chapter for 13 months")
    assert got.iloc[1:].tolist() == ["", "", ""]
    nobody = talking_points(features, segments.where(segments != "ready-now", "steady"),
                            pd.Series("", index=features.index), where)
    assert nobody.tolist() == [""] * 4


def test_members_missing_from_the_features_still_get_a_sentence():
    segments = pd.Series(["ready-now"], index=["ghost"])
    got = talking_points(pd.DataFrame(index=pd.Index([], name="member_id")), segments,
                         pd.Series([""], index=["ghost"]), pd.Series(["their chapter"],
                                                                       index=["ghost"]))
    assert got.tolist() == [
        "They have been part of their chapter for less than a month. As an ambassador they "
        "would meet the other ambassadors and be closer to the organisation."
    ]


def test_chapter_phrases():
    ids = pd.Series(["paris", "lima", "oslo", "nowhere", None])
    assert chapter_phrases(ids, CHAPTERS).tolist() == [
        "the Paris chapter", "the Lima chapter", "their chapter", "their chapter",
        "the community",
    ]
    assert chapter_phrases(ids, None).tolist()[:2] == ["their chapter", "their chapter"]


def test_bad_config():
    with pytest.raises(ConfigError, match="many_ties"):
        TalkingPointConfig(many_ties=0)
    with pytest.raises(ConfigError, match="n_reasons"):
        TalkingPointConfig(n_reasons=-1)
