"""Feature families on the hand-written ``community`` fixture (see conftest for the data).

Every expected value is worked out by hand from the table in ``conftest.py``; as_of is ``T``.
Rows are A, B, C, D (E joins after T).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.activity import (
    build_activity_features,
    build_break_features,
    build_diversity_features,
    build_recency_features,
    build_regularity_features,
    build_tenure_features,
    build_trend_features,
)
from features.build import FAMILY_BUILDERS, build_features
from features.catalog import FEATURE_FAMILIES, UNKNOWN_COLUMN, describe_columns, family_of
from features.chapter import build_chapter_features
from features.errors import ConfigError
from features.feature_config import FeatureConfig, resolve_vocabulary
from features.network import build_network_features, build_orbit_features
from features.role_history import build_role_features
from tests.features.conftest import MEMBERS, T, a, d, make_tables

CFG = FeatureConfig(activity_types=("attend", "organize"), roles=("attendee", "organizer"))
MONTH = 30.4375


def col(frame: pd.DataFrame, name: str) -> list:
    """Values of one column for A, B, C, D."""
    assert list(frame.index) == list(MEMBERS)
    return frame[name].tolist()


def decay(days: float) -> float:
    """0.9 per month of 30.4375 days."""
    return 0.9 ** (days / MONTH)


# ---------------------------------------------------------------------------------- activity


def test_activity_counts_per_window_type_and_role(community):
    f = build_activity_features(community, T, CFG)
    # 30 d = [d(30), T): rows 10 (B message), 11 (B attend), 12 (D attend), 13 (C message).
    assert col(f, "n_all_30d") == [0, 2, 1, 1]
    assert col(f, "wsum_all_30d") == [0, 1.5, 0.5, 1]
    assert col(f, "n_attend_30d") == [0, 1, 0, 1]
    assert col(f, "n_other_30d") == [0, 1, 1, 0]
    assert col(f, "n_role_attendee_30d") == [0, 1, 0, 1]
    assert col(f, "n_role_other_30d") == [0, 0, 0, 0]  # messages have no role
    # 90 d adds rows 7, 8, 9 (d(60)); C's talk (w 3, role speaker) is "other" for both.
    assert col(f, "n_all_90d") == [1, 3, 2, 1]
    assert col(f, "wsum_all_90d") == [1, 2.5, 3.5, 1]
    assert col(f, "n_attend_90d") == [1, 2, 0, 1]
    assert col(f, "wsum_other_90d") == [0, 0.5, 3.5, 0]
    assert col(f, "n_role_other_90d") == [0, 0, 1, 0]
    assert col(f, "wsum_role_other_90d") == [0, 0, 3, 0]
    # 365 d adds rows 3 (D post), 4 (A organize 5), 5 (D attend), 6 (A message).
    assert col(f, "n_all_365d") == [3, 3, 2, 3]
    assert col(f, "wsum_all_365d") == [6.5, 2.5, 3.5, 3]
    assert col(f, "n_organize_365d") == [1, 0, 0, 0]
    assert col(f, "wsum_organize_365d") == [5, 0, 0, 0]
    assert col(f, "n_role_organizer_365d") == [1, 0, 0, 0]
    assert col(f, "wsum_role_attendee_365d") == [1, 2, 0, 2]
    assert col(f, "n_other_365d") == [1, 1, 2, 1]
    # All history before T: row 14 (A at exactly T) is excluded.
    assert col(f, "n_all_ever") == [4, 3, 2, 4]
    assert col(f, "wsum_all_ever") == [7.5, 2.5, 3.5, 4]


def test_activity_columns_follow_the_vocabulary(community):
    f = build_activity_features(community, T, CFG)
    per_window = [
        "n_all_30d", "wsum_all_30d",
        "n_attend_30d", "n_organize_30d", "n_other_30d",
        "wsum_attend_30d", "wsum_organize_30d", "wsum_other_30d",
        "n_role_attendee_30d", "n_role_organizer_30d", "n_role_other_30d",
        "wsum_role_attendee_30d", "wsum_role_organizer_30d", "wsum_role_other_30d",
    ]
    assert list(f.columns[: len(per_window)]) == per_window
    assert f.shape[1] == 3 * len(per_window) + 2
    assert f["n_all_30d"].dtype == np.int64 and f["wsum_all_30d"].dtype == np.float64


def test_window_start_is_inclusive_and_as_of_exclusive():
    members = [("A", "2020-01-01", "x", True)]
    acts = [
        ("A", d(30), "attend", None, "x", None, None, 1.0),  # exactly at the 30 d boundary
        ("A", d(30) - pd.Timedelta(seconds=1), "attend", None, "x", None, None, 1.0),
        ("A", T, "attend", None, "x", None, None, 1.0),  # at as_of: excluded
    ]
    f = build_activity_features(make_tables(members, acts), T, FeatureConfig(windows_days=(30,)))
    assert f.loc["A", "n_all_30d"] == 1
    assert f.loc["A", "n_all_ever"] == 2


def test_vocabulary_resolved_from_rows_before_as_of(community):
    # Before T: attend 7, message 3, organize / post / talk 1 each; after T post gets 3 in all.
    cfg = resolve_vocabulary(community, T, FeatureConfig(max_types=3, max_roles=2))
    assert cfg.activity_types == ("attend", "message", "organize")
    assert cfg.roles == ("attendee", "organizer")  # organizer and speaker tie: by name
    f = build_features(community, T, FeatureConfig(max_types=3, max_roles=2))
    assert "n_message_30d" in f and "n_post_30d" not in f
    assert col(f, "n_other_365d") == [0, 0, 1, 1]  # C talk, D post


def test_unknown_vocabulary_values_give_zero_columns(community):
    cfg = FeatureConfig(activity_types=("never_seen",), roles=())
    f = build_activity_features(community, T, cfg)
    assert col(f, "n_never_seen_365d") == [0, 0, 0, 0]
    assert col(f, "n_other_365d") == col(f, "n_all_365d")
    assert [c for c in f.columns if c.startswith("n_role_")] == [
        "n_role_other_30d", "n_role_other_90d", "n_role_other_365d"
    ]


def test_column_names_are_sanitised_and_unique(community):
    cfg = FeatureConfig(activity_types=("All", "Meet-Up", "meet up", "role_x"), roles=("x",))
    f = build_activity_features(community, T, cfg)
    names = [c for c in f.columns if c.endswith("_30d") and c.startswith("n_")]
    assert names == [
        "n_all_30d", "n_all_2_30d", "n_meet_up_30d", "n_meet_up_2_30d", "n_type_role_x_30d",
        "n_other_30d", "n_role_x_30d", "n_role_other_30d",
    ]


# ---------------------------------------------------------------------------------- recency


def test_recency(community):
    f = build_recency_features(community, T, CFG)
    # Last activity: A d(60) (row 14 at T ignored), B d(10), C d(3), D d(10).
    assert col(f, "days_since_last_activity") == [60, 10, 3, 10]
    # Organizing: A organize d(200); C talk as speaker d(60); B and D never -> tenure.
    assert col(f, "days_since_last_organizing") == [200, 396, 60, 912]
    assert col(f, "has_organized") == [1, 0, 1, 0]
    assert col(f, "days_since_first_activity") == [400, 60, 60, 400]
    assert col(f, "has_activity") == [1, 1, 1, 1]
    # Contact (counterpart of someone else's row): A by B d(20), B by A d(100), D by C d(3);
    # C never -> tenure 122.
    assert col(f, "days_since_last_contact") == [20, 100, 122, 3]
    assert col(f, "has_contact") == [1, 1, 0, 1]


def test_recency_fill_without_activity():
    members = [("A", "2024-01-01", "x", True), ("B", "2024-06-01", "x", True)]
    acts = [("A", d(5), "post", None, "x", None, None, 1.0)]
    f = build_recency_features(make_tables(members, acts), T, FeatureConfig())
    # B never acted: days since = tenure (30), first activity 0, indicators 0.
    assert f.loc["B"].to_dict() == {
        "days_since_last_activity": 30.0,
        "days_since_last_organizing": 30.0,
        "days_since_first_activity": 0.0,
        "has_activity": 0,
        "has_organized": 0,
        "days_since_last_contact": 30.0,
        "has_contact": 0,
    }


def test_contact_ignores_oneself_unknown_counterparts_and_rows_at_as_of():
    members = [("A", "2024-01-01", "x", True), ("B", "2024-01-01", "x", True)]
    acts = [
        ("A", d(5), "message", None, "x", None, "A", 1.0),  # to oneself
        ("A", d(4), "message", None, "x", None, "ghost", 1.0),  # unknown member
        ("A", d(9), "message", None, "x", None, "B", 1.0),
        ("A", T, "message", None, "x", None, "B", 1.0),  # at as_of: not read
    ]
    f = build_recency_features(make_tables(members, acts), T, FeatureConfig())
    assert f["days_since_last_contact"].tolist() == [182.0, 9.0]  # A: tenure 182 days
    assert f["has_contact"].tolist() == [0, 1]


def test_organizing_definition_is_configurable(community):
    cfg = FeatureConfig(organizing_types=("message",), organizing_roles=())
    f = build_recency_features(community, T, cfg)
    # Messages: A d(100), B d(20), C d(3); D none -> tenure 912.
    assert col(f, "days_since_last_organizing") == [100, 20, 3, 912]


def test_tenure(community):
    f = build_tenure_features(community, T, CFG)
    assert col(f, "tenure_days") == [547, 396, 122, 912]
    assert "E" not in f.index  # joins 2024-08-01


def test_member_joining_exactly_at_as_of_is_not_a_row():
    members = [("A", T, "x", True), ("B", d(1), "x", True)]
    f = build_features(make_tables(members, []), T)
    assert list(f.index) == ["B"]
    assert f.loc["B", "tenure_days"] == 1.0


# ---------------------------------------------------------------------------------- trend


def test_trend(community):
    f = build_trend_features(community, T, CFG)
    # last 90 d vs [d(180), d(90)): A 1 vs 1 (message d(100)); B 3 vs 0; C 2 vs 0; D 1 vs 0
    # (D's d(200) is outside both periods).
    assert col(f, "trend_count_prior") == [1, 0, 0, 0]
    assert col(f, "trend_count_diff") == [0, 3, 2, 1]
    assert col(f, "trend_count_ratio") == [0, 1, 1, 1]
    assert col(f, "trend_weight_prior") == [0.5, 0, 0, 0]
    assert col(f, "trend_weight_diff") == [0.5, 2.5, 3.5, 1]
    # A: (1 - 0.5) / (1 + 0.5)
    assert col(f, "trend_weight_ratio") == pytest.approx([1 / 3, 1, 1, 1])


def test_trend_is_zero_without_activity():
    members = [("A", "2020-01-01", "x", True)]
    acts = [("A", d(400), "post", None, "x", None, None, 1.0)]
    f = build_trend_features(make_tables(members, acts), T, FeatureConfig())
    assert f.loc["A"].tolist() == [0, 0, 0, 0, 0, 0]


# ---------------------------------------------------------------------------------- regularity


def test_regularity(community):
    f = build_regularity_features(community, T, CFG)
    # Window [d(365) = Sun 2023-07-02, T): ISO weeks from Mon 2023-06-26 to Mon 2024-06-24,
    # 53 weeks. T is a Monday, so the current week starts d(7).
    # A: d(200), d(100), d(60) -> 3 separate weeks; nothing in the last two weeks.
    # B: d(60) (week of d(63)), d(20) (week of d(21)), d(10) (week of d(14)) -> 3 weeks; the
    #    current week is empty, the run ending the week before is d(21), d(14) -> 2.
    # C: d(60), d(3) (current week) -> 2 weeks, current streak 1.
    # D: d(300), d(200), d(10) -> 3 weeks, current streak 1 (week of d(14)).
    assert col(f, "active_weeks_365d") == [3, 3, 2, 3]
    assert col(f, "streak_current_weeks") == [0, 2, 1, 1]
    assert col(f, "streak_longest_weeks") == [1, 2, 1, 1]
    # Share: C joined Fri 2024-03-01 (week of Mon 2024-02-26): 18 possible weeks.
    assert col(f, "active_week_share_365d") == pytest.approx([3 / 53, 3 / 53, 2 / 18, 3 / 53])
    # Silence: weeks since the last activity x -ln(1 - share). A: last d(60); B, D: d(10);
    # C: d(3).
    expected = [60 / 7 * -np.log(1 - 3 / 53), 10 / 7 * -np.log(1 - 3 / 53),
                3 / 7 * -np.log(1 - 2 / 18), 10 / 7 * -np.log(1 - 3 / 53)]
    assert col(f, "silence_surprise") == pytest.approx(expected)


def test_streak_over_consecutive_weeks():
    members = [("A", "2020-01-01", "x", True)]
    # Activity every week for the 5 weeks before T, twice in one week, then none in week d(42).
    days = [3, 10, 11, 17, 24, 31, 45]
    acts = [("A", d(n), "post", None, "x", None, None, 1.0) for n in days]
    f = build_regularity_features(make_tables(members, acts), T, FeatureConfig())
    assert f.loc["A", "active_weeks_365d"] == 6
    assert f.loc["A", "streak_current_weeks"] == 5
    assert f.loc["A", "streak_longest_weeks"] == 5


# ---------------------------------------------------------------------------------- diversity


def test_breaks_compare_the_silence_with_the_members_own_pauses():
    members = [("A", "2023-01-01", "x", True), ("B", "2024-01-01", "x", True),
               ("C", "2024-06-01", "x", True)]
    # A: active days d(200), d(150) twice, d(140), d(100) at noon: breaks 50, 10, 40 days.
    # Activities at or after T are not read. B: one active day, d(20). C: nothing (tenure 30).
    acts = [
        ("A", d(200), "post", None, "x", None, None, 1.0),
        ("A", d(150), "post", None, "x", None, None, 1.0),
        ("A", d(150) + pd.Timedelta(hours=3), "post", None, "x", None, None, 1.0),
        ("A", d(140), "post", None, "x", None, None, 1.0),
        ("A", d(100) + pd.Timedelta(hours=12), "post", None, "x", None, None, 1.0),
        ("A", a(0), "post", None, "x", None, None, 1.0),
        ("B", d(20), "post", None, "x", None, None, 1.0),
    ]
    f = build_break_features(make_tables(members, acts), T, FeatureConfig())
    assert list(f.index) == ["A", "B", "C"]
    assert f["longest_break_days"].tolist() == [50, 0, 0]
    # Usual break: 100 days from the first to the last active day over 4 - 1 breaks.
    assert f["usual_break_days"].tolist() == pytest.approx([100 / 3, 0, 0])
    # Silence: A 99.5 days (last activity d(100) at noon), B 20, C its tenure 30.
    assert f["silence_vs_longest_break"].tolist() == pytest.approx([99.5 / 80, 20 / 30, 30 / 30])
    assert f["silence_vs_usual_break"].tolist() == pytest.approx(
        [99.5 / (100 / 3 + 7), 20 / 7, 30 / 7]
    )


def test_diversity(community):
    f = build_diversity_features(community, T, CFG)
    # A: organize, message, attend / e2, e3 / paris.  B: attend, message / e3, e4 / paris, lyon.
    # C: talk, message / e3 / paris, lyon.            D: post, attend / e2, e7 / paris, lyon.
    assert col(f, "distinct_types_365d") == [3, 2, 2, 2]
    assert col(f, "distinct_events_365d") == [2, 2, 1, 2]
    assert col(f, "distinct_chapters_365d") == [1, 2, 2, 2]


def test_diversity_counts_repeated_events_once():
    members = [("A", "2020-01-01", "x", True)]
    acts = [
        ("A", d(5), "register", "e1", "x", None, None, 1.0),
        ("A", d(4), "attend", "e1", "x", None, None, 1.0),
        ("A", d(400), "attend", "e2", "y", None, None, 1.0),  # outside 365 d
    ]
    f = build_diversity_features(make_tables(members, acts), T, FeatureConfig())
    assert f.loc["A"].tolist() == [2, 1, 1]


# ---------------------------------------------------------------------------------- roles


def test_role_history(community):
    f = build_role_features(community, T, CFG)
    # A: ambassador d(300)..d(250) -> 1 past spell, 50 days, ended 250 days ago; the a(180)
    #    spell has not started.  B: organizer since d(30) (any role), no core spell.
    # C: ambassador d(30)..T -> held at T (ends at as_of), 30 days.  D: d(500)..d(100).
    assert col(f, "role_core_now") == [0, 0, 1, 0]
    assert col(f, "role_core_past_spells") == [1, 0, 0, 1]
    assert col(f, "role_core_days_total") == [50, 0, 30, 400]
    assert col(f, "role_core_days_current") == [0, 0, 30, 0]
    assert col(f, "days_since_role_core_end") == [250, 396, 122, 100]  # fill: tenure
    assert col(f, "role_any_now") == [0, 1, 1, 0]
    assert col(f, "role_any_spells") == [1, 1, 1, 1]


def test_role_history_without_roles_table(community_no_roles):
    f = build_role_features(community_no_roles, T, CFG)
    assert (f.drop(columns="days_since_role_core_end") == 0).all().all()
    assert col(f, "days_since_role_core_end") == [547, 396, 122, 912]
    assert list(f.columns) == list(build_role_features(community_no_roles, T, CFG).columns)


def test_role_history_follows_core_role(community):
    f = build_role_features(community, T, FeatureConfig(core_role="organizer"))
    assert col(f, "role_core_now") == [0, 1, 0, 0]
    assert col(f, "role_core_days_current") == [0, 30, 0, 0]


# ---------------------------------------------------------------------------------- network


def test_network(community):
    f = build_network_features(community, T, CFG)
    # Window [d(365), T): events e2 {A, D} d(200), e3 {A, B, C} d(60), e4 {B}, e7 {D};
    # direct: A->B d(100), B->A d(20), C->D d(3).
    # A: co-participants D, B, C; direct B; ties {B, C, D}.  B: co A, C; direct A; ties {A, C}.
    # C: co A, B; direct D; ties {A, B, D}.                   D: co A; direct C; ties {A, C}.
    assert col(f, "net_coparticipants") == [3, 2, 2, 1]
    assert col(f, "net_direct_ties") == [1, 1, 1, 1]
    assert col(f, "net_ties") == [3, 2, 3, 2]
    assert col(f, "has_ties") == [1, 1, 1, 1]
    # Home chapters: A, B, D paris; C lyon. Outside: A {C}, B {C}, C {A, B, D}, D {C}.
    assert col(f, "net_ties_outside_chapter") == [1, 1, 3, 1]
    assert col(f, "net_outside_chapter_share") == pytest.approx([1 / 3, 1 / 2, 1, 1 / 2])
    # Everyone acted in the last 90 days: no quiet ties.
    assert col(f, "net_quiet_tie_share") == [0, 0, 0, 0]
    # Strengths: shared event e -> 0.9 ** (months since e); direct message likewise.
    ab = decay(60) + decay(100) + decay(20)
    ac, ad, cd, bc = decay(60), decay(200), decay(3), decay(60)
    expected = [(ab + ac + ad) / 3, (ab + bc) / 2, (ac + bc + cd) / 3, (ad + cd) / 2]
    assert col(f, "net_tie_strength_mean") == pytest.approx(expected, rel=1e-12)


def test_network_quiet_ties(community):
    cfg = FeatureConfig(
        activity_types=("attend",), roles=(), active_within_days=30
    )
    f = build_network_features(community, T, cfg)
    # Active in [d(30), T): B, C, D. A is quiet.
    # A: ties B, C, D -> 0; B: A, C -> 1/2; C: A, B, D -> 1/3; D: A, C -> 1/2.
    assert col(f, "net_quiet_tie_share") == pytest.approx([0, 1 / 2, 1 / 3, 1 / 2])


def test_network_window_excludes_old_events(community):
    f = build_network_features(community, T, FeatureConfig(network_window_days=30))
    # [d(30), T): e4 {B}, e7 {D} (alone), direct B->A d(20), C->D d(3).
    assert col(f, "net_coparticipants") == [0, 0, 0, 0]
    assert col(f, "net_direct_ties") == [1, 1, 1, 1]
    assert col(f, "net_ties") == [1, 1, 1, 1]
    assert col(f, "net_tie_strength_mean") == pytest.approx(
        [decay(20), decay(20), decay(3), decay(3)]
    )


def test_direct_tie_weight(community):
    f = build_network_features(community, T, FeatureConfig(direct_tie_weight=10.0))
    # D: ties A (e2) and C (one message d(3), worth 10 x).
    assert f.loc["D", "net_tie_strength_mean"] == pytest.approx((decay(200) + 10 * decay(3)) / 2)


def test_self_interactions_and_unknown_counterparts_are_not_ties():
    members = [("A", "2020-01-01", "x", True), ("B", "2020-01-01", "x", True)]
    acts = [
        ("A", d(5), "message", None, "x", None, "A", 1.0),
        ("A", d(4), "message", None, "x", None, "ghost", 1.0),
        ("B", d(3), "attend", "solo", "x", None, None, 1.0),
    ]
    f = build_network_features(make_tables(members, acts), T, FeatureConfig())
    assert f["net_ties"].tolist() == [0, 0]
    assert f["net_tie_strength_mean"].tolist() == [0.0, 0.0]
    assert f["has_ties"].tolist() == [0, 0]


# ---------------------------------------------------------------------------------- chapter


def test_chapter_context(community):
    f = build_chapter_features(community, T, CFG)
    # paris: A, B, D known (3); lyon: C (E joins later).
    assert col(f, "chapter_size") == [3, 3, 1, 3]
    # Active in 90 d: A, B, D in paris; C in lyon.
    assert col(f, "chapter_active_members_90d") == [3, 3, 1, 3]
    assert col(f, "chapter_active_share_90d") == [1, 1, 1, 1]
    # Activities of [d(90), T) by the activity's chapter: rows 7-10 paris, 11-13 lyon.
    assert col(f, "chapter_activities_90d") == [4, 4, 3, 4]
    assert col(f, "chapter_activities_per_member_90d") == pytest.approx([4 / 3, 4 / 3, 3, 4 / 3])
    # paris pairs: A-B tied, A-D tied (e2), B-D not -> 2 of 3; lyon has one member -> 0.
    assert col(f, "chapter_link_density") == pytest.approx([2 / 3, 2 / 3, 0, 2 / 3])
    # Ambassadors at T: only C (lyon; its spell ends exactly at T, so still held).
    assert col(f, "chapter_core_members") == [0, 0, 1, 0]
    assert col(f, "chapter_core_per_active_90d") == [0, 0, 1, 0]
    # Community ratio 1 core / 4 active; expected max(1, 0.25 x active) = 1 in both chapters:
    # paris has none (shortfall 1), lyon has its one (0).
    assert col(f, "chapter_core_shortfall") == [1, 1, 0, 1]
    # Ended core spells: paris D d(100) and A d(250) -> 100; lyon none -> C's tenure 122.
    assert col(f, "days_since_chapter_core_end") == [100, 100, 122, 100]


def test_chapter_core_columns_without_roles_table(community_no_roles):
    f = build_chapter_features(community_no_roles, T, CFG)
    assert col(f, "chapter_core_members") == [0, 0, 0, 0]
    assert col(f, "chapter_core_shortfall") == [1, 1, 1, 1]
    assert col(f, "days_since_chapter_core_end") == [547, 396, 122, 912]


def test_chapter_fallback_and_missing_home_chapter():
    members = [("A", "2020-01-01", "x", True), ("B", "2020-01-01", None, True)]
    acts = [
        ("A", d(5), "post", None, None, None, None, 1.0),  # no chapter: A's home chapter x
        ("B", d(4), "post", None, "x", None, None, 1.0),
    ]
    f = build_chapter_features(make_tables(members, acts), T, FeatureConfig())
    assert f.loc["A", "chapter_activities_90d"] == 2
    assert f.loc["A", "chapter_size"] == 1
    # No home chapter: zeros, and "no core spell ever ended" falls back to tenure (1643 days).
    assert (f.loc["B"].drop("days_since_chapter_core_end") == 0).all()
    assert f.loc["B", "days_since_chapter_core_end"] == 1643


# ---------------------------------------------------------------------------------- orbit


def test_orbit_love_and_reach(community):
    f = build_orbit_features(community, T, CFG)
    # Love: weight x 0.9 ** months over all activities before T.
    love = [
        decay(400) + 5 * decay(200) + 0.5 * decay(100) + decay(60),  # A
        decay(60) + 0.5 * decay(20) + decay(10),  # B
        3 * decay(60) + 0.5 * decay(3),  # C
        decay(400) + decay(300) + decay(200) + decay(10),  # D
    ]
    assert col(f, "orbit_love") == pytest.approx(love, rel=1e-12)
    # Reach: sum of tie strengths (see test_network).
    ab = decay(60) + decay(100) + decay(20)
    reach = [
        ab + decay(60) + decay(200),
        ab + decay(60),
        2 * decay(60) + decay(3),
        decay(200) + decay(3),
    ]
    assert col(f, "orbit_reach") == pytest.approx(reach, rel=1e-12)


# ---------------------------------------------------------------------------------- build


def test_build_features_joins_all_families(community):
    f = build_features(community, T, CFG)
    assert f.index.name == "member_id"
    assert list(f.index) == list(MEMBERS)
    parts = [builder(community, T, CFG) for builder in FAMILY_BUILDERS.values()]
    assert list(f.columns) == [c for p in parts for c in p.columns]
    assert f.columns.is_unique
    assert set(f.dtypes) <= {np.dtype("float64"), np.dtype("int64")}
    assert not f.isna().any().any()
    assert np.isfinite(f.to_numpy(dtype=float)).all()
    pd.testing.assert_frame_equal(f[parts[0].columns], parts[0])


def test_build_features_accepts_strings_and_aware_times(community):
    a_ = build_features(community, "2024-07-01", CFG)
    b_ = build_features(community, pd.Timestamp("2024-07-01T02:00:00+02:00"), CFG)
    pd.testing.assert_frame_equal(a_, b_)


def test_build_features_without_roles_table_has_the_same_columns(community, community_no_roles):
    with_roles = build_features(community, T, CFG)
    without = build_features(community_no_roles, T, CFG)
    assert list(with_roles.columns) == list(without.columns)


def test_build_features_before_any_activity(community):
    f = build_features(community, "2023-02-01", CFG)
    # Only D (2022) and A (2023-01-01) have joined; nobody has acted yet.
    assert list(f.index) == ["A", "D"]
    assert f.loc["A", "days_since_last_activity"] == f.loc["A", "tenure_days"] == 31
    assert (f["n_all_ever"] == 0).all() and (f["net_ties"] == 0).all()
    assert not f.isna().any().any()


def test_empty_activity_log():
    members = [("A", "2024-01-01", "x", True)]
    f = build_features(make_tables(members, []), T)
    assert len(f) == 1 and not f.isna().any().any()
    assert f.loc["A", "n_all_ever"] == 0
    assert f.loc["A", "n_other_30d"] == 0


def test_bad_feature_config_is_refused():
    with pytest.raises(ConfigError, match="windows_days"):
        FeatureConfig(windows_days=(30, 0))
    with pytest.raises(ConfigError, match="windows_days"):
        FeatureConfig(windows_days=(30, 30))
    with pytest.raises(ConfigError, match="tie_decay_per_month"):
        FeatureConfig(tie_decay_per_month=1.5)
    with pytest.raises(ConfigError, match="pools"):
        FeatureConfig(activity_types=("attend", "other"))
    with pytest.raises(ConfigError, match="unknown setting"):
        FeatureConfig.from_dict({"windows": [30]})


def test_feature_config_round_trips_through_a_dict():
    cfg = FeatureConfig(windows_days=[90, 7], activity_types=["a", "b"], roles=[])
    assert cfg.windows_days == (7, 90)
    assert FeatureConfig.from_dict(cfg.to_dict()) == cfg
    assert hash(cfg) == hash(FeatureConfig.from_dict(cfg.to_dict()))


def test_input_tables_are_not_mutated(community):
    before = {
        name: getattr(community, name).copy(deep=True)
        for name in ("members", "activities", "roles")
    }
    build_features(community, T, FeatureConfig())
    build_features(community, a(40), FeatureConfig(network_window_days=30))
    for name, frame in before.items():
        pd.testing.assert_frame_equal(getattr(community, name), frame)


def test_unsorted_activities_give_the_same_features(community):
    shuffled = community.activities.sample(frac=1.0, random_state=3).reset_index(drop=True)
    other = type(community)(
        members=community.members, activities=shuffled, roles=community.roles
    )
    assert other.activities is shuffled
    pd.testing.assert_frame_equal(build_features(other, T, CFG), build_features(community, T, CFG))


# ---------------------------------------------------------------------------------- catalog


def test_every_feature_column_is_described(community):
    f = build_features(community, T, FeatureConfig())
    meanings = describe_columns(f.columns)
    assert list(meanings) == list(f.columns)
    assert UNKNOWN_COLUMN not in meanings.values()
    assert {family_of(c) for c in f.columns} == set(FEATURE_FAMILIES) == set(FAMILY_BUILDERS)


def test_pattern_columns_are_described():
    meanings = describe_columns(
        ["n_attend_30d", "wsum_role_other_90d", "n_role_speaker_365d", "active_weeks_180d",
         "n_all_7d", "not_a_feature"]
    )
    assert meanings["n_attend_30d"] == "number of activities of type 'attend' in the last 30 days"
    assert "other roles" in meanings["wsum_role_other_90d"]
    assert "role 'speaker'" in meanings["n_role_speaker_365d"]
    assert "180 days" in meanings["active_weeks_180d"]
    assert meanings["n_all_7d"] == "number of activities in the last 7 days"
    assert meanings["not_a_feature"] == UNKNOWN_COLUMN
    assert family_of("n_role_speaker_365d") == "activity"
    assert family_of("not_a_feature") is None


def test_activity_columns_add_nested_segments_to_running_totals(community):
    from features.activity import _ActivityColumns
    from features.feature_config import build_snapshot

    config = resolve_vocabulary(community, T, CFG)
    snap = build_snapshot(community, T)
    columns_of = _ActivityColumns.of(snap.enc, config)
    assert columns_of.type_slugs[-1] == "other" and columns_of.role_slugs[-1] == "other"
    acc = columns_of.totals()
    assert all(not total.any() for total in acc.values())
    lo = snap.start(30)
    columns_of.add_segment(acc, snap.enc, lo, snap.n)
    window = columns_of.window(acc, snap.rows, 30)
    expected = build_activity_features(community, T, CFG)
    assert list(window) == [c for c in expected.columns if c.endswith("_30d")]
    for name, values in window.items():
        assert values.tolist() == expected[name].tolist(), name
    columns_of.add_segment(acc, snap.enc, snap.start(90), lo)  # the 90-day window adds to it
    assert columns_of.window(acc, snap.rows, 90)["n_all_90d"].tolist() == col(
        expected, "n_all_90d"
    )
