"""Labels and eligibility on the hand-written ``community`` fixture (see conftest).

At T, default LabelConfig (horizon 90 d, active within 90 d, readiness horizon 180 d):

- disengagement eligible: A (d(60)), B (d(10)), C (d(3)); D has no consent; E joins later.
  A's only later activity is exactly at T -> not in (T, T+90] -> disengaged.
  B's next activity is a(91) -> disengaged.  C acts at a(30) and a(90) (closed end) -> not.
- readiness eligible: A (past spell only), B (organizer, not core); C holds ambassador at T
  (spell ends exactly at T); D no consent.  A's spell starts a(180) (closed end) -> ready;
  B's starts a(181) -> not ready.
"""

from __future__ import annotations

import pandas as pd
import pytest

from features.errors import ConfigError, TargetUnavailable
from features.labels import (
    LabelConfig,
    build_disengagement_labels,
    build_readiness_labels,
    check_target_available,
    label_horizon_days,
    select_disengagement_eligible,
    select_readiness_eligible,
)
from tests.features.conftest import T, a, d, make_tables


def test_disengagement_eligibility(community):
    eligible = select_disengagement_eligible(community, T)
    assert list(eligible) == ["A", "B", "C"]
    assert eligible.name == "member_id"


def test_disengagement_labels(community):
    y = build_disengagement_labels(community, T)
    assert y.dtype == bool
    assert y.index.name == "member_id"
    assert y.to_dict() == {"A": True, "B": True, "C": False}


def test_disengagement_horizon_is_configurable(community):
    # With 91 days B's a(91) falls inside the window.
    y = build_disengagement_labels(community, T, LabelConfig(horizon_days=91))
    assert y.to_dict() == {"A": True, "B": False, "C": False}


def test_disengagement_active_window_boundaries():
    members = [("in", "2020-01-01", "x", True), ("out", "2020-01-01", "x", True),
               ("now", "2020-01-01", "x", True)]
    acts = [
        ("in", d(90), "post", None, "x", None, None, 1.0),  # exactly at T - 90 d: counts
        ("out", d(90) - pd.Timedelta(seconds=1), "post", None, "x", None, None, 1.0),
        ("now", T, "post", None, "x", None, None, 1.0),  # at T: not "before as_of"
    ]
    assert list(select_disengagement_eligible(make_tables(members, acts), T)) == ["in"]


def test_disengagement_label_window_is_open_at_as_of_and_closed_at_the_end():
    members = [(m, "2020-01-01", "x", True) for m in ("at_T", "just_after", "at_end", "late")]
    acts = [(m, d(1), "post", None, "x", None, None, 1.0) for m, *_ in members] + [
        ("at_T", T, "post", None, "x", None, None, 1.0),
        ("just_after", T + pd.Timedelta(seconds=1), "post", None, "x", None, None, 1.0),
        ("at_end", a(90), "post", None, "x", None, None, 1.0),
        ("late", a(90) + pd.Timedelta(seconds=1), "post", None, "x", None, None, 1.0),
    ]
    y = build_disengagement_labels(make_tables(members, acts), T)
    assert y.to_dict() == {"at_T": True, "just_after": False, "at_end": False, "late": True}


def test_readiness_eligibility(community):
    assert list(select_readiness_eligible(community, T)) == ["A", "B"]


def test_readiness_labels(community):
    y = build_readiness_labels(community, T)
    assert y.dtype == bool
    assert y.to_dict() == {"A": True, "B": False}
    # With a 181-day horizon B's spell counts too.
    longer = LabelConfig(readiness_horizon_days=181)
    assert build_readiness_labels(community, T, longer).to_dict() == {"A": True, "B": True}


def test_readiness_holding_boundaries():
    members = [(m, "2020-01-01", "x", True) for m in ("ends_at_T", "ended", "starts_at_T", "open")]
    roles = [
        ("ends_at_T", "ambassador", d(10), T),  # held at T (ended_at >= as_of)
        ("ended", "ambassador", d(10), T - pd.Timedelta(seconds=1)),  # ended before T
        ("starts_at_T", "ambassador", T, None),  # not started before T: not held ...
        ("open", "ambassador", d(10), None),  # held
    ]
    tables = make_tables(members, [], roles)
    anyone = LabelConfig(readiness_active_within_days=None)  # no activity needed here
    assert list(select_readiness_eligible(tables, T, anyone)) == ["ended", "starts_at_T"]
    # ... and a spell starting exactly at T is not "in (T, T + h]": not a positive.
    assert build_readiness_labels(tables, T, anyone).to_dict() == {
        "ended": False,
        "starts_at_T": False,
    }


def test_readiness_needs_a_roles_table(community_no_roles):
    for fn in (select_readiness_eligible, build_readiness_labels):
        with pytest.raises(TargetUnavailable, match="roles` table"):
            fn(community_no_roles, T)
    with pytest.raises(TargetUnavailable, match="no roles table"):
        check_target_available(community_no_roles, "readiness", LabelConfig())
    check_target_available(community_no_roles, "disengagement", LabelConfig())


def test_readiness_needs_spells_of_the_core_role(community):
    with pytest.raises(TargetUnavailable, match="'captain'.*roles found: 'ambassador'"):
        build_readiness_labels(community, T, LabelConfig(core_role="captain"))


def test_readiness_with_another_core_role(community):
    cfg = LabelConfig(core_role="organizer")
    # B holds organizer at T; nobody starts organizer after T.
    assert list(select_readiness_eligible(community, T, cfg)) == ["A", "C"]
    assert build_readiness_labels(community, T, cfg).to_dict() == {"A": False, "C": False}


def test_members_without_consent_are_never_eligible():
    members = [("yes", "2020-01-01", "x", True), ("no", "2020-01-01", "x", False)]
    acts = [(m, d(5), "post", None, "x", None, None, 1.0) for m, *_ in members]
    roles = [(m, "ambassador", a(5), None) for m, *_ in members]
    tables = make_tables(members, acts, roles)
    assert list(select_disengagement_eligible(tables, T)) == ["yes"]
    assert list(select_readiness_eligible(tables, T)) == ["yes"]
    assert list(build_readiness_labels(tables, T).index) == ["yes"]


def test_labels_only_for_members_joined_before_as_of():
    members = [("early", d(5), "x", True), ("late", a(1), "x", True)]
    roles = [("late", "ambassador", a(10), None), ("early", "ambassador", a(10), None)]
    tables = make_tables(members, [], roles)
    anyone = LabelConfig(readiness_active_within_days=None)
    assert build_readiness_labels(tables, T, anyone).to_dict() == {"early": True}


def test_readiness_needs_recent_activity_unless_disabled():
    members = [(m, "2020-01-01", "x", True) for m in ("recent", "edge", "gone", "never")]
    acts = [
        ("recent", d(30), "post", None, "x", None, None, 1.0),
        ("edge", d(365), "post", None, "x", None, None, 1.0),  # exactly 365 d before: counts
        ("gone", d(365) - pd.Timedelta(seconds=1), "post", None, "x", None, None, 1.0),
    ]
    roles = [("gone", "ambassador", a(10), None), ("recent", "ambassador", a(10), None)]
    tables = make_tables(members, acts, roles)
    assert list(select_readiness_eligible(tables, T)) == ["recent", "edge"]
    assert build_readiness_labels(tables, T).to_dict() == {"recent": True, "edge": False}
    short = LabelConfig(readiness_active_within_days=30)
    assert list(select_readiness_eligible(tables, T, short)) == ["recent"]
    anyone = LabelConfig(readiness_active_within_days=None)
    assert list(select_readiness_eligible(tables, T, anyone)) == ["recent", "edge", "gone", "never"]
    with pytest.raises(ConfigError, match="readiness_active_within_days"):
        LabelConfig(readiness_active_within_days=0)


def test_label_config_validation_and_horizons():
    with pytest.raises(ConfigError, match="horizon_days"):
        LabelConfig(horizon_days=0)
    with pytest.raises(ConfigError, match="core_role"):
        LabelConfig(core_role=" ")
    cfg = LabelConfig(horizon_days=30, readiness_horizon_days=60)
    assert label_horizon_days("disengagement", cfg) == 30
    assert label_horizon_days("readiness", cfg) == 60
    with pytest.raises(ConfigError, match="not one of"):
        label_horizon_days("churn", cfg)


def test_labels_do_not_mutate_inputs(community):
    before = [community.members.copy(), community.activities.copy(), community.roles.copy()]
    build_disengagement_labels(community, T)
    build_readiness_labels(community, T)
    for frame, original in zip(
        (community.members, community.activities, community.roles), before, strict=True
    ):
        pd.testing.assert_frame_equal(frame, original)

