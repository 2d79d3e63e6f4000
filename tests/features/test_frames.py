"""Snapshot dates and training frames.

On the ``community`` fixture (see conftest): first observed = 2022-01-01 (D joins), last observed
= a(181) = 2024-12-29 (B's ambassador spell starts).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import build_features
from features.errors import ConfigError, InsufficientDataError, TargetUnavailable
from features.feature_config import FeatureConfig, resolve_vocabulary
from features.frames import (
    FrameConfig,
    TrainingFrame,
    align_features,
    build_training_frame,
    build_training_frames,
    sample_members,
    snapshot_dates,
)
from features.labels import (
    LabelConfig,
    build_disengagement_labels,
    build_readiness_labels,
    select_disengagement_eligible,
    select_readiness_eligible,
)
from tests.features.conftest import T, a, d, make_tables, random_tables

LABELS = LabelConfig()


def test_snapshot_dates_end_one_horizon_before_the_last_observed_time(community):
    assert community.last_observed == a(181)
    frame = FrameConfig(every_days=30, snapshots=3)
    # Disengagement: a(181) - 90 d = a(91).
    assert snapshot_dates(community, "disengagement", LABELS, frame) == [a(31), a(61), a(91)]
    # Readiness: a(181) - 180 d = a(1).
    assert snapshot_dates(community, "readiness", LABELS, frame) == [d(59), d(29), a(1)]


def test_snapshot_dates_respect_until(community):
    frame = FrameConfig(every_days=30, snapshots=3, until=T)
    assert snapshot_dates(community, "disengagement", LABELS, frame) == [d(60), d(30), T]
    # An until later than the labels allow is clipped.
    late = FrameConfig(every_days=7, snapshots=2, until="2030-01-01")
    assert snapshot_dates(community, "disengagement", LABELS, late) == [a(84), a(91)]


def test_snapshot_dates_are_normalised_to_midnight():
    members = [("A", "2024-01-01", "x", True)]
    acts = [("A", pd.Timestamp("2024-09-10 15:30"), "post", None, "x", None, None, 1.0)]
    tables = make_tables(members, acts)
    dates = snapshot_dates(tables, "disengagement", LABELS, FrameConfig(snapshots=2))
    # 2024-09-10 15:30 - 90 d = 2024-06-12 15:30 -> 2024-06-12.
    assert dates == [pd.Timestamp("2024-05-13"), pd.Timestamp("2024-06-12")]
    assert all(x == x.normalize() for x in dates)


def test_snapshot_dates_skip_the_warm_up(community):
    frame = FrameConfig(every_days=30, snapshots=5, until="2022-03-15", warmup_days=60)
    # Candidates 2022-03-15, 02-13, 01-14, ...; warm-up ends 2022-01-01 + 60 d = 2022-03-02.
    assert snapshot_dates(community, "disengagement", LABELS, frame) == [
        pd.Timestamp("2022-03-15")
    ]


def test_snapshot_dates_raise_when_history_is_too_short(community):
    frame = FrameConfig(until="2022-02-01")
    with pytest.raises(InsufficientDataError, match=r"at least 181 days"):
        snapshot_dates(community, "disengagement", LABELS, frame)
    members = [("A", "2024-01-01", "x", True)]
    acts = [("A", pd.Timestamp("2024-03-01"), "post", None, "x", None, None, 1.0)]
    with pytest.raises(InsufficientDataError, match=r"spans 60 days.*at least 271 days"):
        snapshot_dates(make_tables(members, acts), "readiness", LABELS, FrameConfig())


def test_snapshot_dates_unknown_target(community):
    with pytest.raises(ConfigError, match="not one of"):
        snapshot_dates(community, "churn", LABELS, FrameConfig())


def test_frame_config_validation():
    with pytest.raises(ConfigError, match="every_days"):
        FrameConfig(every_days=0)
    assert FrameConfig(until="2024-07-01T02:00:00+02:00").until == pd.Timestamp("2024-07-01")


def test_training_frame_on_the_fixture(community):
    frame = FrameConfig(every_days=30, snapshots=3, until=T)
    tf = build_training_frame(community, "disengagement", LABELS, frame)
    assert isinstance(tf, TrainingFrame)
    assert tf.target == "disengagement"
    assert tf.as_of_dates == (d(60), d(30), T)
    assert list(tf.data.columns) == ["member_id", "as_of", *tf.feature_columns, "label"]
    # Vocabulary frozen from the rows before the newest date (T): 'talk' (first seen at d(60))
    # has columns even in the d(60) snapshot.
    assert tf.feature_config.activity_types == ("attend", "message", "organize", "post", "talk")
    assert tf.feature_config.roles == ("attendee", "organizer", "speaker")
    assert "n_talk_30d" in tf.feature_columns
    # At T: eligible A, B, C with labels 1, 1, 0 (see test_labels).
    at_t = tf.data[tf.data["as_of"] == T].set_index("member_id")
    assert at_t["label"].to_dict() == {"A": 1, "B": 1, "C": 0}
    expected = build_features(community, T, tf.feature_config).loc[["A", "B", "C"]]
    pd.testing.assert_frame_equal(
        at_t[list(tf.feature_columns)], expected.astype(np.float32), check_names=False
    )


def test_training_frame_core_role_follows_the_labels(community):
    frame = FrameConfig(every_days=30, snapshots=1, until=T)
    tf = build_training_frame(
        community, "readiness", LabelConfig(core_role="organizer"), frame,
        FeatureConfig(core_role="ambassador"),
    )
    assert tf.feature_config.core_role == "organizer"


def _check_frame(tables, tf: TrainingFrame, labels: LabelConfig) -> None:
    data = tf.data
    assert data["label"].dtype == np.int64 and set(data["label"]) <= {0, 1}
    assert data["as_of"].dtype == "datetime64[ns]"
    keys = data[["as_of", "member_id"]]
    assert keys.equals(keys.sort_values(["as_of", "member_id"], ignore_index=True))
    assert not data.duplicated(["as_of", "member_id"]).any()
    assert not data[list(tf.feature_columns)].isna().any().any()
    assert (data[list(tf.feature_columns)].dtypes == np.float32).all()
    assert data["member_id"].dtype == tables.members["member_id"].dtype
    horizon = labels.horizon_days if tf.target == "disengagement" else labels.readiness_horizon_days
    select = select_disengagement_eligible if tf.target == "disengagement" else (
        select_readiness_eligible
    )
    label_fn = build_disengagement_labels if tf.target == "disengagement" else (
        build_readiness_labels
    )
    no_consent = set(tables.members.loc[~tables.members["consent"], "member_id"])
    for as_of in tf.as_of_dates:
        # Every label window is fully observed.
        assert as_of + pd.Timedelta(days=horizon) <= tables.last_observed
        part = data[data["as_of"] == as_of].set_index("member_id")
        assert set(part.index) == set(select(tables, as_of, labels))
        assert not set(part.index) & no_consent
        y = label_fn(tables, as_of, labels)
        assert part["label"].to_dict() == y.astype(int).to_dict()
        # The same columns at every date, equal to a fresh build with the frozen config.
        x = build_features(tables, as_of, tf.feature_config)
        assert tuple(x.columns) == tf.feature_columns
        pd.testing.assert_frame_equal(
            part[list(tf.feature_columns)], x.loc[part.index].astype(np.float32),
            check_names=False, check_exact=True,
        )


@pytest.mark.parametrize("target", ["disengagement", "readiness"])
def test_training_frame_on_random_data(target):
    tables = random_tables(seed=1)
    frame = FrameConfig(every_days=45, snapshots=6)
    tf = build_training_frame(tables, target, LABELS, frame)
    assert len(tf.as_of_dates) == 6
    assert len(tf.data) > 20 and tf.data["label"].nunique() == 2
    _check_frame(tables, tf, LABELS)


def test_training_frame_vocabulary_ignores_types_after_the_newest_date():
    tables = random_tables(seed=2)
    frame = FrameConfig(every_days=30, snapshots=2)
    newest = snapshot_dates(tables, "disengagement", LABELS, frame)[-1]
    extra = tables.activities.iloc[[0]].copy()
    extra["occurred_at"] = newest + pd.Timedelta(days=1)
    extra["activity_type"] = pd.Series(["brand_new"], dtype="str", index=extra.index)
    acts = pd.concat([tables.activities, extra], ignore_index=True)
    acts = acts.sort_values("occurred_at", kind="stable", ignore_index=True)
    changed = type(tables)(members=tables.members, activities=acts, roles=tables.roles)
    tf = build_training_frame(changed, "disengagement", LABELS, frame)
    assert "brand_new" not in tf.feature_config.activity_types
    assert tf.feature_config == resolve_vocabulary(tables, newest, FeatureConfig())


def test_readiness_frame_needs_roles(community_no_roles):
    with pytest.raises(TargetUnavailable, match="roles"):
        build_training_frame(community_no_roles, "readiness")


def test_training_frame_without_history_raises(community):
    with pytest.raises(InsufficientDataError, match="needs at least"):
        build_training_frame(community, "disengagement", frame=FrameConfig(until="2022-02-01"))


def test_training_frame_without_eligible_members_raises():
    members = [("A", "2023-01-01", "x", False)]
    acts = [("A", pd.Timestamp("2023-01-01") + pd.Timedelta(days=n), "post", None, "x", None,
             None, 1.0) for n in range(0, 400, 5)]
    with pytest.raises(InsufficientDataError, match="no member is eligible"):
        build_training_frame(make_tables(members, acts), "disengagement")


def test_align_features():
    x = pd.DataFrame({"b": [1.0, 2.0], "extra": [5, 6], "a": [3, 4]}, index=["m1", "m2"])
    out = align_features(x, ["a", "b", "missing"])
    assert list(out.columns) == ["a", "b", "missing"]
    assert out["missing"].tolist() == [0, 0]
    assert out["a"].tolist() == [3, 4] and list(out.index) == ["m1", "m2"]
    assert list(x.columns) == ["b", "extra", "a"]  # input untouched


def test_training_frame_does_not_mutate_inputs(community):
    before = [community.members.copy(), community.activities.copy(), community.roles.copy()]
    build_training_frame(community, "readiness", frame=FrameConfig(snapshots=2, until=T))
    for frame, original in zip(
        (community.members, community.activities, community.roles), before, strict=True
    ):
        pd.testing.assert_frame_equal(frame, original)


def _skipping_tables():
    # Members in table order C, B, A (not sorted by id); A joins at 08:00.
    members = [
        ("C", "2024-05-01", "x", True),
        ("B", "2024-02-01", "x", True),
        ("A", pd.Timestamp("2024-01-01 08:00"), "x", True),
    ]
    acts = [
        ("A", pd.Timestamp("2024-04-10"), "post", None, "x", None, None, 1.0),
        ("B", pd.Timestamp("2024-05-10"), "post", None, "x", None, None, 1.0),
        ("C", pd.Timestamp("2024-05-20"), "post", None, "x", None, None, 1.0),
        ("A", pd.Timestamp("2024-07-15"), "post", None, "x", None, None, 1.0),
        ("A", pd.Timestamp("2024-09-10"), "post", None, "x", None, None, 1.0),
    ]
    return make_tables(members, acts)


def test_training_frame_skips_dates_without_eligible_members_and_sorts_rows():
    tables = _skipping_tables()
    frame = FrameConfig(every_days=30, snapshots=3, until="2024-06-01")
    tf = build_training_frame(tables, "disengagement", LABELS, frame)
    # Dates 04-02, 05-02, 06-01. Active in the 90 days before: nobody at 04-02 (A's first
    # activity is 04-10); A at 05-02; A, B, C at 06-01. Disengaged = nothing in the next 90 days:
    # A acts on 07-15 (0), B and C never again (1).
    dates = [pd.Timestamp("2024-04-02"), pd.Timestamp("2024-05-02"), pd.Timestamp("2024-06-01")]
    assert tf.as_of_dates == tuple(dates)
    assert tf.data[["member_id", "as_of", "label"]].values.tolist() == [
        ["A", dates[1], 0],
        ["A", dates[2], 0],
        ["B", dates[2], 1],
        ["C", dates[2], 1],
    ]
    assert tf.data.index.equals(pd.RangeIndex(4))


def test_training_frame_features_are_float32_roundings():
    tables = _skipping_tables()
    frame = FrameConfig(every_days=30, snapshots=3, until="2024-06-01")
    tf = build_training_frame(tables, "disengagement", LABELS, frame)
    assert tf.data["label"].dtype == np.int64
    assert tf.data["as_of"].dtype == "datetime64[ns]"
    assert set(tf.data[list(tf.feature_columns)].dtypes) == {np.dtype(np.float32)}
    # A at 05-02 (2024 is a leap year): joined 2024-01-01 08:00, so 121 days and 16 hours.
    tenure = tf.data.loc[0, "tenure_days"]
    assert isinstance(tenure, np.float32)
    assert tenure == np.float32(121 + 2 / 3) and float(tenure) != 121 + 2 / 3
    assert tf.data.loc[1, "tenure_days"] == np.float32(151 + 2 / 3)
    # Counts stay exact: at 06-01 A posted once (04-10) in the last 90 days.
    assert tf.data.loc[1, "n_post_90d"] == 1.0


# --- several targets at once, and the row cap ----------------------------------------------------


def test_frames_of_both_targets_share_one_feature_pass_per_date(community, monkeypatch):
    import features.frames as frames_module

    calls = []
    real = frames_module.build_features

    def counting(tables, as_of, config):
        calls.append(as_of)
        return real(tables, as_of, config)

    monkeypatch.setattr(frames_module, "build_features", counting)
    frame = FrameConfig(every_days=30, snapshots=5)
    both = build_training_frames(
        community, {"readiness": frame, "disengagement": frame}, LABELS
    )
    # Readiness dates end at a(1), disengagement at a(91) (90 days later, on the same 30-day
    # grid): they share a(1) and d(29), so 8 feature passes serve 10 snapshots.
    r_dates = snapshot_dates(community, "readiness", LABELS, frame)
    e_dates = snapshot_dates(community, "disengagement", LABELS, frame)
    assert set(r_dates) & set(e_dates) == {a(1), d(29)}
    assert len(calls) == 8
    assert sorted(calls) == sorted(set(r_dates) | set(e_dates))
    assert len(calls) == len(set(calls))
    assert list(both) == ["readiness", "disengagement"]
    # One vocabulary, resolved at the newest date of all (disengagement's), for both frames.
    newest = e_dates[-1]
    expected_config = resolve_vocabulary(
        community, newest, FeatureConfig(core_role=LABELS.core_role)
    )
    for target, tf in both.items():
        assert tf.feature_config == expected_config
        assert tf.target == target
        assert tf.member_share == 1.0 and tf.eligible_rows == len(tf.data)
        _check_frame(community, tf, LABELS)
    # The disengagement frame is exactly what it is alone (its newest date sets the vocabulary).
    alone = build_training_frame(community, "disengagement", LABELS, frame)
    pd.testing.assert_frame_equal(both["disengagement"].data, alone.data)


def test_build_training_frames_without_targets():
    with pytest.raises(ConfigError, match="no target"):
        build_training_frames(random_tables(seed=1), {})


def test_sample_members_is_stable_nested_and_near_the_share():
    ids = [f"m{i}" for i in range(20_000)]
    half = sample_members(ids, 0.5)
    tenth = sample_members(ids, 0.1)
    assert half.dtype == bool and len(half) == len(ids)
    assert np.array_equal(half, sample_members(list(reversed(ids)), 0.5)[::-1])  # per id
    assert not (tenth & ~half).any()  # a smaller share keeps a subset
    assert abs(half.mean() - 0.5) < 0.02 and abs(tenth.mean() - 0.1) < 0.01
    assert sample_members(ids, 1.0).all()
    assert np.array_equal(sample_members([42, "42"], 0.5)[:1], sample_members(["42"], 0.5))
    with pytest.raises(ConfigError, match="share"):
        sample_members(ids, 0.0)


def test_frame_config_rejects_a_bad_row_cap():
    with pytest.raises(ConfigError, match="max_rows"):
        FrameConfig(max_rows=0)
    with pytest.raises(ConfigError, match="max_rows"):
        FrameConfig(max_rows=1.5)
    assert FrameConfig(max_rows=None).max_rows is None


def test_row_cap_keeps_whole_members_at_every_date():
    tables = random_tables(seed=1, n_members=200, n_activities=6000)
    frame = FrameConfig(every_days=45, snapshots=6, max_rows=None)
    full = build_training_frame(tables, "disengagement", LABELS, frame)
    cap = len(full.data) // 3
    capped = build_training_frame(
        tables, "disengagement", LABELS, FrameConfig(every_days=45, snapshots=6, max_rows=cap)
    )
    assert capped.eligible_rows == len(full.data)
    assert capped.member_share == pytest.approx(cap / len(full.data))
    kept = set(capped.data["member_id"])
    # Exactly the hash sample of the members, with all their rows and values.
    chosen = full.data["member_id"][
        sample_members(full.data["member_id"], capped.member_share)
    ]
    assert kept == set(chosen)
    expected = full.data[full.data["member_id"].isin(kept)].reset_index(drop=True)
    pd.testing.assert_frame_equal(capped.data, expected)
    assert 0 < len(capped.data) < len(full.data)
    assert abs(len(capped.data) - cap) < 0.5 * cap  # near the cap (a sample of members)


def test_a_row_cap_that_keeps_nobody_says_to_raise_it():
    tables = random_tables(seed=1)
    message = r"--max-frame-rows 1 keeps .*raise --max-frame-rows"
    with pytest.raises(InsufficientDataError, match=message):
        build_training_frame(
            tables, "disengagement", LABELS, FrameConfig(every_days=45, snapshots=6, max_rows=1)
        )


def test_frames_leave_out_a_target_that_cannot_be_built_when_asked(community_no_roles):
    frame = FrameConfig(every_days=30, snapshots=3)
    asked = {"readiness": frame, "disengagement": frame}
    with pytest.raises(TargetUnavailable, match="roles"):
        build_training_frames(community_no_roles, asked, LABELS)
    errors = {}
    built = build_training_frames(community_no_roles, asked, LABELS, errors=errors)
    assert list(built) == ["disengagement"] and list(errors) == ["readiness"]
    assert isinstance(errors["readiness"], TargetUnavailable)
    alone = build_training_frame(community_no_roles, "disengagement", LABELS, frame)
    pd.testing.assert_frame_equal(built["disengagement"].data, alone.data)
