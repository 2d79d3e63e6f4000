"""Tests of the community simulator and its oracle (simulator.community, simulator.truth)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.errors import ConfigError, ContractError
from features.tables import (
    ACTIVITY_COLUMNS,
    CHAPTER_COLUMNS,
    MEMBER_COLUMNS,
    ROLE_COLUMNS,
    Tables,
)
from simulator.community import (
    Simulation,
    SimulationConfig,
    compute_truth,
    read_latent,
    simulate_community,
    write_simulation,
)

DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def small() -> Simulation:
    """A small community, for the structural checks."""
    return simulate_community(SimulationConfig(members=2_000, years=1.5, seed=11))


@pytest.fixture(scope="module")
def community() -> Simulation:
    """A mid-sized community over three years, for the statistical checks."""
    return simulate_community(SimulationConfig(members=8_000, years=3.0, seed=3))


@pytest.fixture(scope="module")
def realised(community) -> pd.DataFrame:
    """The community's truth table with realised outcomes and prior activity."""
    return _realised(community)


def _realised(sim: Simulation) -> pd.DataFrame:
    """The truth table with realised outcomes and whether the member was active before."""
    act, roles = sim.activities, sim.roles
    frames = []
    for as_of, truth in sim.truth.groupby("as_of"):
        when = act["occurred_at"]
        before = set(act.loc[(when > as_of - 90 * DAY) & (when <= as_of), "member_id"])
        after = set(act.loc[(when > as_of) & (when <= as_of + 90 * DAY), "member_id"])
        starts = roles["started_at"]
        started = set(roles.loc[(starts > as_of) & (starts <= as_of + 180 * DAY), "member_id"])
        frames.append(
            truth.assign(
                active_before=truth["member_id"].isin(before),
                disengaged=~truth["member_id"].isin(after),
                became=truth["member_id"].isin(started),
            )
        )
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_tables_and_other_seeds_differ():
    config = SimulationConfig(members=1_500, years=1.2, seed=5)
    first, second = simulate_community(config), simulate_community(config)
    for name in ("members", "activities", "roles", "chapters", "latent", "truth"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    other = simulate_community(SimulationConfig(members=1_500, years=1.2, seed=6))
    assert len(other.activities) != len(first.activities) or not other.activities.equals(
        first.activities
    )
    assert not np.allclose(other.latent["motivation"], first.latent["motivation"])


# ----------------------------------------------------------------------------- contract


def test_tables_have_canonical_columns_and_dtypes(small):
    assert list(small.members.columns) == MEMBER_COLUMNS
    assert list(small.activities.columns) == ACTIVITY_COLUMNS
    assert list(small.roles.columns) == ROLE_COLUMNS
    assert list(small.chapters.columns) == CHAPTER_COLUMNS
    text = {
        "members": ["member_id", "chapter_id", "email"],
        "activities": ["member_id", "activity_type", "event_id", "chapter_id", "role",
                       "counterpart_id"],
        "roles": ["member_id", "role", "chapter_id"],
        "chapters": CHAPTER_COLUMNS,
    }
    for table, columns in text.items():
        for column in columns:
            assert getattr(small, table)[column].dtype == "str", (table, column)
    assert small.members["joined_at"].dtype == "datetime64[ns]"
    assert small.activities["occurred_at"].dtype == "datetime64[ns]"
    assert small.roles["started_at"].dtype == "datetime64[ns]"
    assert small.roles["ended_at"].dtype == "datetime64[ns]"
    assert small.members["consent"].dtype == bool
    assert small.activities["weight"].dtype == np.float64
    assert (small.activities["weight"] >= 0).all()
    assert small.activities.index.equals(pd.RangeIndex(len(small.activities)))
    tables = Tables(members=small.members, activities=small.activities, roles=small.roles,
                    chapters=small.chapters)
    assert tables.last_observed > tables.first_observed


def test_members_ids_emails_consent_and_chapters(small):
    members = small.members
    assert members["member_id"].is_unique
    assert members["member_id"].str.fullmatch(r"m\d{6}").all()
    assert members["member_id"].iloc[0] == "m000001"
    assert (members["email"] == members["member_id"] + "@example.org").all()
    assert 0.005 < (~members["consent"]).mean() < 0.06  # about 3 % refuse contact
    assert members["joined_at"].is_monotonic_increasing
    assert set(members["chapter_id"]) <= set(small.chapters["chapter_id"])
    chapters = small.chapters
    assert len(chapters) == 6  # default: max(6, members / 2000)
    assert chapters["chapter_id"].is_unique
    assert {"Paris", "Lima", "Manila", "Dakar"} <= set(chapters["city"])
    assert {"France", "Peru", "Philippines", "Senegal"} <= set(chapters["country"])


def test_activities_sorted_and_never_before_joining(small):
    act = small.activities
    assert act["occurred_at"].is_monotonic_increasing
    joined = act["member_id"].map(small.members.set_index("member_id")["joined_at"])
    assert joined.notna().all()
    assert (act["occurred_at"] > joined).all()
    end = pd.Timestamp(small.config.start) + pd.Timedelta(weeks=78)
    assert act["occurred_at"].max() < end


def test_counterparts_are_other_real_members(small):
    act = small.activities
    direct = act[act["activity_type"].isin(["message", "intro"])]
    assert len(direct) > 0
    assert direct["counterpart_id"].notna().mean() > 0.99
    named = direct.dropna(subset=["counterpart_id"])
    assert named["counterpart_id"].isin(small.members["member_id"]).all()
    assert (named["counterpart_id"] != named["member_id"]).all()
    joined = small.members.set_index("member_id")["joined_at"]
    assert (named["counterpart_id"].map(joined) < named["occurred_at"]).all()
    assert act.loc[~act["activity_type"].isin(["message", "intro"]), "counterpart_id"].isna().all()


def test_events_share_id_time_and_chapter_with_realistic_roles(community):
    act = community.activities
    events = act.dropna(subset=["event_id"])
    assert set(events["activity_type"]) == {"attend", "organize", "volunteer"}
    assert act.loc[act["event_id"].isna(), "activity_type"].isin(["message", "intro"]).all()
    per_event = events.groupby("event_id").agg(
        times=("occurred_at", "nunique"), chapters=("chapter_id", "nunique"),
        members=("member_id", "nunique"), rows=("member_id", "size"),
        organizers=("activity_type", lambda s: (s == "organize").sum()),
    )
    assert (per_event["times"] == 1).all() and (per_event["chapters"] == 1).all()
    assert (per_event["members"] == per_event["rows"]).all()  # one row per member and event
    assert (per_event["organizers"] >= 1).all()  # every event has an organiser
    kinds = set(per_event.index.str.split("-").str[0])
    assert kinds == {"meetup", "dinner", "debate", "visit", "workshop", "online", "festival"}
    festivals = per_event[per_event.index.str.startswith("festival-")]
    assert festivals["rows"].max() >= 100  # big gatherings
    assert set(events["role"]) == {"attendee", "organizer", "host", "speaker", "volunteer"}
    home = community.members.set_index("member_id")["chapter_id"]
    online = events[events["event_id"].str.startswith("online-")]
    away = online["member_id"].map(home) != online["chapter_id"]
    assert away.mean() > 0.3  # online events draw members of other chapters
    local = events[~events["event_id"].str.startswith(("online-", "festival-"))]
    assert (local["member_id"].map(home) == local["chapter_id"]).all()


def test_roles_are_ambassador_spells_that_end_after_they_start(community):
    roles = community.roles
    assert (roles["role"] == "ambassador").all()
    ended = roles.dropna(subset=["ended_at"])
    assert (ended["ended_at"] > ended["started_at"]).all()
    assert roles["ended_at"].isna().any() and len(ended) > 0
    joined = roles["member_id"].map(community.members.set_index("member_id")["joined_at"])
    assert (roles["started_at"] > joined).all()
    # a member never holds two spells at once
    spells = roles.sort_values(["member_id", "started_at"])
    previous_end = spells.groupby("member_id")["ended_at"].shift()
    follow_on = previous_end.notna() | spells["member_id"].duplicated()
    assert (spells.loc[follow_on, "started_at"] >= previous_end[follow_on]).all()
    home = community.members.set_index("member_id")["chapter_id"]
    assert (roles["chapter_id"] == roles["member_id"].map(home)).all()


def test_departed_members_never_act_again(community):
    departed = community.latent.set_index("member_id")["departed_at"]
    act = community.activities
    gone_at = act["member_id"].map(departed)
    assert departed.notna().mean() > 0.3
    assert not (gone_at.notna() & (act["occurred_at"] >= gone_at)).any()
    roles = community.roles
    role_gone = roles["member_id"].map(departed)
    still_open = roles["ended_at"].isna()
    assert not (still_open & role_gone.notna()).any()  # leaving ends the role


# ----------------------------------------------------------------------------- realism


def test_rates_are_in_the_intended_ranges(community, realised):
    done = realised
    active = done[done["active_before"]]
    assert 0.25 <= active["disengaged"].mean() <= 0.45
    n_years = community.config.years
    starts_per_20k_year = len(community.roles) / n_years * 20_000 / community.config.members
    assert 40 <= starts_per_20k_year <= 200  # a few hundred per 20k members over 3 years
    for as_of in community.truth["as_of"].unique()[:3]:
        as_of = pd.Timestamp(as_of)
        roles = community.roles
        held = roles[(roles["started_at"] <= as_of)
                     & (roles["ended_at"].isna() | (roles["ended_at"] > as_of))]
        n_active = done[(done["as_of"] == as_of) & done["active_before"]].shape[0]
        assert 0.01 <= len(held) / n_active <= 0.035


def test_ambassadors_come_from_the_top_engagement_decile(community):
    act = community.activities
    times = act["occurred_at"].to_numpy()
    members = act["member_id"].to_numpy()
    in_top = []
    for member, start in zip(community.roles["member_id"], community.roles["started_at"],
                             strict=True):
        lo, hi = np.searchsorted(times, [np.datetime64(start - 180 * DAY), np.datetime64(start)])
        counts = pd.Series(members[lo:hi]).value_counts()
        in_top.append(counts.get(member, 0) >= counts.quantile(0.9))
    assert len(in_top) >= 40
    assert np.mean(in_top) > 0.55


def _tie_strength(act: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """Tie strength the way features measure it: per event attended (any role) attendees - 1,
    plus 1 per message or introduction sent or received, decayed 10 % per 30 days."""
    past = act[act["occurred_at"] < as_of]
    decay = 0.9 ** ((as_of - past["occurred_at"]).dt.total_seconds() / 86_400 / 30)
    size = past.groupby("event_id")["member_id"].transform("size")
    events = past["event_id"].notna()
    direct = past["activity_type"].isin(["message", "intro"])
    parts = [
        ((size[events] - 1) * decay[events]).groupby(past.loc[events, "member_id"]).sum(),
        decay[direct].groupby(past.loc[direct, "member_id"]).sum(),
        decay[direct].groupby(past.loc[direct, "counterpart_id"]).sum(),
    ]
    return pd.concat(parts).groupby(level=0).sum()


def test_members_with_more_ties_churn_less(community, realised):
    done = realised
    for as_of in community.truth["as_of"].unique()[::2]:
        as_of = pd.Timestamp(as_of)
        ties = _tie_strength(community.activities, as_of)
        pop = done[(done["as_of"] == as_of) & done["active_before"]]
        strength = pop["member_id"].map(ties).fillna(0.0)
        tercile = pd.qcut(strength.rank(method="first"), 3, labels=False)
        rate = pop["disengaged"].groupby(tercile.to_numpy()).mean()
        assert rate.iloc[0] > rate.iloc[1] > rate.iloc[2], rate.to_dict()
        assert rate.iloc[0] - rate.iloc[2] > 0.15


# ----------------------------------------------------------------------------- the oracle


def test_truth_covers_members_joined_before_each_date(community):
    truth = community.truth
    dates = sorted(truth["as_of"].unique())
    assert len(dates) == 6
    assert all(b - a == np.timedelta64(30, "D") for a, b in zip(dates, dates[1:], strict=False))
    end = pd.Timestamp(community.config.start) + pd.Timedelta(weeks=round(3 * 365.25 / 7))
    assert pd.Timestamp(dates[-1]) == end - 180 * DAY
    joined = community.members.set_index("member_id")["joined_at"]
    for as_of, part in truth.groupby("as_of"):
        assert set(part["member_id"]) == set(joined[joined < as_of].index)
    assert truth["p_disengages"].between(0, 1).all()
    assert truth["p_becomes_ambassador"].dropna().between(0, 1).all()


def test_truth_rules_for_departed_members_and_role_holders(community):
    truth = community.truth
    departed = truth["member_id"].map(community.latent.set_index("member_id")["departed_at"])
    gone = departed.notna() & (departed <= truth["as_of"])
    assert gone.any()
    # The stored (fair) truth infers departures: long-gone members are near-certain, those who
    # left recently are not (yet); gone members keep a negligible readiness on average.
    assert truth.loc[gone, "p_disengages"].median() > 0.99
    assert truth.loc[gone, "p_disengages"].quantile(0.01) < 0.9
    ready = truth["p_becomes_ambassador"]
    assert ready[gone].mean() < 0.05 * ready[~gone].mean()
    known = compute_truth(
        community.tables(), community.latent, truth["as_of"].iloc[-1], departures="known"
    )
    last = truth["as_of"].iloc[-1]
    gone_last = known["member_id"].map(
        community.latent.set_index("member_id")["departed_at"]
    ) <= last
    assert (known.loc[gone_last, "p_disengages"] == 1.0).all()
    assert (known.loc[gone_last, "p_becomes_ambassador"] == 0.0).all()
    roles = community.roles
    merged = truth.merge(roles, on="member_id")
    held = (merged["started_at"] < merged["as_of"]) & (
        merged["ended_at"].isna() | (merged["ended_at"] >= merged["as_of"])
    )
    holders = merged.loc[held, ["member_id", "as_of"]].drop_duplicates()
    assert len(holders) > 0
    flagged = truth.merge(holders, on=["member_id", "as_of"])
    assert flagged["p_becomes_ambassador"].isna().all()
    assert truth["p_becomes_ambassador"].isna().sum() == len(holders)


def test_truth_calibrates_against_realised_outcomes(realised):
    done = realised
    decile = pd.qcut(done["p_disengages"].rank(method="first"), 10, labels=False)
    by = done.groupby(decile.to_numpy())[["p_disengages", "disengaged"]].mean()
    assert np.abs(by["p_disengages"] - by["disengaged"]).max() < 0.03, by
    ready = done.dropna(subset=["p_becomes_ambassador"])
    decile = pd.qcut(ready["p_becomes_ambassador"].rank(method="first"), 10, labels=False)
    by = ready.groupby(decile.to_numpy())[["p_becomes_ambassador", "became"]].mean()
    assert (by.iloc[:9].max() < 0.01).all(), by  # nine deciles of near-certain "no"
    top_p, top_y = by.iloc[9]
    assert 0.7 < top_y / top_p < 1.3, by
    assert 0.7 < ready["became"].sum() / ready["p_becomes_ambassador"].sum() < 1.3
    high = ready[ready["p_becomes_ambassador"] > 0.05]
    assert len(high) > 100
    sd = math.sqrt((high["p_becomes_ambassador"] * (1 - high["p_becomes_ambassador"])).sum())
    assert abs(high["became"].sum() - high["p_becomes_ambassador"].sum()) < 3 * sd + 5


def test_oracle_is_strong_but_not_trivial(realised):
    done = realised
    active = done[done["active_before"]]
    auc_dis = roc_auc_score(active["disengaged"], active["p_disengages"])
    ready = active.dropna(subset=["p_becomes_ambassador"])
    auc_ready = roc_auc_score(ready["became"], ready["p_becomes_ambassador"])
    assert 0.75 < auc_dis < 0.95
    assert 0.75 < auc_ready < 0.95


def test_compute_truth_matches_the_stored_truth_and_any_date(community):
    tables = community.tables()
    as_of = community.truth["as_of"].iloc[-1]
    again = compute_truth(tables, community.latent, as_of)
    stored = community.truth[community.truth["as_of"] == as_of].reset_index(drop=True)
    pd.testing.assert_frame_equal(again, stored)
    midweek = compute_truth(tables, community.latent, "2021-03-03T12:00:00+01:00")
    assert (midweek["as_of"] == pd.Timestamp("2021-03-03 11:00")).all()
    assert midweek["p_disengages"].between(0, 1).all()
    longer = compute_truth(tables, community.latent, as_of, horizon_days=180)
    assert (longer["p_disengages"] <= again["p_disengages"] + 1e-12).all()
    assert (longer["p_disengages"] < again["p_disengages"]).any()


# ----------------------------------------------------------------------------- oracle by hand


def _hand_config(**overrides) -> SimulationConfig:
    """Constant hazards: no tenure, season, ties or newcomer effects."""
    values = dict(
        start="2024-01-01", members=10, years=1.0, truth_dates=0, honeymoon=0.0,
        tenure_decay=0.0, summer_dip=0.0, december_dip=0.0, active_ties=0.0,
        active_base=0.0, active_motivation=0.0, depart_base=math.log(0.2 / 0.8),
        depart_motivation=0.0, depart_ties=0.0, depart_newcomer=0.0, shock=math.log(4.0),
        shock_weeks=4, lead_base=0.0, lead_initiative=0.0, promote_base=-2.0,
        promote_motivation=0.0, promote_ties=0.0, promote_gap=2.0, min_tenure_weeks=0,
    )
    values.update(overrides)
    return SimulationConfig(**values)


def _hand_tables() -> tuple[Tables, pd.DataFrame]:
    """Four members of chapter x (weeks start on Mondays from 2024-01-01):

    - a: led (organized) in the week before as_of = 2024-03-04 (week 9);
    - b: only attended, in week 8;
    - c: left for good on 2024-02-12;
    - d: ambassador since week 2; joins nothing else.
    """
    ts = pd.Timestamp
    members = pd.DataFrame({
        "member_id": pd.array(["a", "b", "c", "d"], dtype="str"),
        "joined_at": pd.to_datetime(["2024-01-01 10:00"] * 4).astype("datetime64[ns]"),
        "chapter_id": pd.array(["x"] * 4, dtype="str"),
        "email": pd.array(["a@x.org", "b@x.org", "c@x.org", "d@x.org"], dtype="str"),
        "consent": [True] * 4,
    })
    activities = pd.DataFrame({
        "member_id": pd.array(["b", "a", "b"], dtype="str"),
        "occurred_at": pd.Series([ts("2024-02-20 19:00"), ts("2024-02-27 19:00"),
                                  ts("2024-02-27 19:00")]).astype("datetime64[ns]"),
        "activity_type": pd.array(["attend", "organize", "attend"], dtype="str"),
        "event_id": pd.array(["e1", "e2", "e2"], dtype="str"),
        "chapter_id": pd.array(["x"] * 3, dtype="str"),
        "role": pd.array(["attendee", "organizer", "attendee"], dtype="str"),
        "counterpart_id": pd.array([None] * 3, dtype="str"),
        "weight": [1.0, 2.0, 1.0],
    })
    roles = pd.DataFrame({
        "member_id": pd.array(["d"], dtype="str"),
        "role": pd.array(["ambassador"], dtype="str"),
        "started_at": pd.Series([ts("2024-01-17")]).astype("datetime64[ns]"),
        "ended_at": pd.Series([pd.NaT]).astype("datetime64[ns]"),
        "chapter_id": pd.array(["x"], dtype="str"),
    })
    latent = pd.DataFrame({
        "member_id": ["a", "b", "c", "d"],
        "motivation": 0.0, "sociability": 0.0, "initiative": 0.0, "online_propensity": 0.1,
        "departed_at": pd.Series([pd.NaT, pd.NaT, ts("2024-02-12"), pd.NaT]).astype(
            "datetime64[ns]"),
    })
    return Tables(members=members, activities=activities, roles=roles), latent


def test_oracle_by_hand_two_weeks():
    tables, latent = _hand_tables()
    config = _hand_config(active_ambassador=0.0, depart_ambassador=0.0,
                          stepdown_base=-50.0, ambassador_share=0.02)
    truth = compute_truth(tables, latent, "2024-03-04", horizon_days=14,
                          readiness_horizon_days=7, config=config,
                          departures="known").set_index("member_id")
    assert list(truth.index) == ["a", "b", "c", "d"]
    # Week 9 (no departure draw: known around): active w.p. 1/2. Week 10: leave w.p. 0.2,
    # else active w.p. 1/2. P(no activity) = 1/2 * (0.2 + 0.8 * 1/2) = 0.3.
    assert truth.loc["a", "p_disengages"] == pytest.approx(0.3)
    assert truth.loc["c", "p_disengages"] == 1.0
    assert truth.loc["c", "p_becomes_ambassador"] == 0.0
    assert np.isnan(truth.loc["d", "p_becomes_ambassador"])
    # Chapter x: 2 active members in the last 13 weeks -> target 1, held by d -> gap 0,
    # promotion hazard sigmoid(-2). a led last week (eligible whatever it does); b never led
    # (eligible only if it leads this week, w.p. 1/2).
    h = 1 / (1 + math.exp(2.0))
    assert truth.loc["a", "p_becomes_ambassador"] == pytest.approx(0.5 * h)
    assert truth.loc["b", "p_becomes_ambassador"] == pytest.approx(0.5 * 0.5 * h)


def test_oracle_by_hand_gap_and_leaving_ambassador_shock():
    tables, latent = _hand_tables()
    ended = tables.roles.assign(
        ended_at=pd.Series([pd.Timestamp("2024-02-26")]).astype("datetime64[ns]")
    )
    tables = Tables(members=tables.members, activities=tables.activities, roles=ended)
    config = _hand_config()
    truth = compute_truth(tables, latent, "2024-03-04", horizon_days=14,
                          readiness_horizon_days=7, config=config,
                          departures="known").set_index("member_id")
    # d left the role in week 8: in week 10 (2 weeks later, within 4) the departure hazard is
    # sigmoid(logit(0.2) + log 4) = 0.5, so P(no activity) = 1/2 * (0.5 + 0.5 * 1/2) = 0.375.
    assert truth.loc["a", "p_disengages"] == pytest.approx(0.375)
    # The chapter has no ambassador: gap 1, hazard sigmoid(-2 + 2) = 1/2.
    assert truth.loc["a", "p_becomes_ambassador"] == pytest.approx(0.25)
    assert truth.loc["b", "p_becomes_ambassador"] == pytest.approx(0.125)
    assert truth.loc["d", "p_becomes_ambassador"] == pytest.approx(0.5 * 0.5 * 0.5)


def test_fair_oracle_by_hand_infers_departures_from_silence():
    tables, latent = _hand_tables()
    config = _hand_config(active_ambassador=0.0, depart_ambassador=0.0,
                          stepdown_base=-50.0, ambassador_share=0.02)
    fair = compute_truth(tables, latent, "2024-03-04", horizon_days=14,
                         readiness_horizon_days=7, config=config).set_index("member_id")
    # as_of = 2024-03-04 is the start of week 9: its departure draw (at as_of) is hidden, and
    # nothing of week 9 is observed yet. Weekly: leave w.p. 0.2, then active w.p. 1/2.
    # a and b were active in week 8: gone w.p. 0.2, else the known-departures answer (0.3).
    assert fair.loc["a", "p_disengages"] == pytest.approx(0.2 + 0.8 * 0.3)
    assert fair.loc["b", "p_disengages"] == pytest.approx(0.2 + 0.8 * 0.3)
    # c never showed up (eligible from week 1): silent through weeks 1-8 and nobody messaged
    # anyone, so P(around and silent) = 0.4 ** 8 and P(gone and silent) = 0.2 * sum 0.4 ** j.
    around = 0.4**8
    gone = 0.2 * sum(0.4**j for j in range(8))
    p_gone = 1 - around * 0.8 / (around + gone)
    assert fair.loc["c", "p_disengages"] == pytest.approx(p_gone + (1 - p_gone) * 0.3)
    # d holds the role with a spell still open in the data: around until week 9's draw.
    assert fair.loc["d", "p_disengages"] == pytest.approx(0.2 + 0.8 * 0.3)
    # readiness: a (led in week 8) is ready w.p. 1/2 x h if still around (0.8).
    h = 1 / (1 + math.exp(2.0))
    assert fair.loc["a", "p_becomes_ambassador"] == pytest.approx(0.8 * 0.5 * h)
    assert fair.loc["c", "p_becomes_ambassador"] == pytest.approx(
        (1 - p_gone) * 0.5 * 0.5 * h
    )


def test_fair_oracle_uses_messages_received_as_proof_of_presence():
    tables, latent = _hand_tables()
    acts = pd.concat([tables.activities, pd.DataFrame({
        "member_id": pd.array(["b"], dtype="str"),
        "occurred_at": pd.Series([pd.Timestamp("2024-02-28 12:00")]).astype("datetime64[ns]"),
        "activity_type": pd.array(["message"], dtype="str"),
        "event_id": pd.array([None], dtype="str"),
        "chapter_id": pd.array(["x"], dtype="str"),
        "role": pd.array([None], dtype="str"),
        "counterpart_id": pd.array(["c"], dtype="str"),
        "weight": [0.1],
    })]).sort_values("occurred_at", kind="stable").reset_index(drop=True)
    tables = Tables(members=tables.members, activities=acts, roles=tables.roles)
    config = _hand_config(active_ambassador=0.0, depart_ambassador=0.0,
                          stepdown_base=-50.0, ambassador_share=0.02)
    fair = compute_truth(tables, latent, "2024-03-04", horizon_days=14,
                         readiness_horizon_days=7, config=config).set_index("member_id")
    # c received a message in week 8, so was still around then: only week 9's draw is hidden.
    assert fair.loc["c", "p_disengages"] == pytest.approx(0.2 + 0.8 * 0.3)


def test_fair_oracle_is_calibrated_on_hidden_departures(community):
    tables = community.tables()
    last = community.truth["as_of"].max()
    fair = compute_truth(tables, community.latent, last)
    departed = fair["member_id"].map(community.latent.set_index("member_id")["departed_at"])
    gone = (departed <= last).to_numpy()
    # Among members active in the last 90 days (the disengagement population) the expected
    # number already gone matches the hidden count; the known-departures truth gives them 1.
    act = community.activities
    recent = set(act.loc[(act["occurred_at"] > last - 90 * DAY)
                         & (act["occurred_at"] < last), "member_id"])
    pop = fair["member_id"].isin(recent).to_numpy()
    known = compute_truth(tables, community.latent, last, departures="known")
    assert gone[pop].sum() > 20
    assert (known["p_disengages"].to_numpy()[gone] == 1.0).all()
    # Both truths are calibrated, so they expect the same number of disengaged members; the
    # fair one spreads the hidden departures over the silent members instead of naming them.
    p_fair = fair["p_disengages"].to_numpy()[pop]
    p_known = known["p_disengages"].to_numpy()[pop]
    assert abs(p_fair.sum() - p_known.sum()) < 0.25 * gone[pop].sum() + 10
    assert p_fair[gone[pop]].mean() < 0.99  # not named with certainty
    assert p_fair[gone[pop]].mean() > p_fair[~gone[pop]].mean() + 0.2  # 0.60 vs 0.31 (seed 3)


def test_compute_truth_refuses_bad_inputs():
    tables, latent = _hand_tables()
    with pytest.raises(ConfigError, match="simulation config"):
        compute_truth(tables, latent, "2024-03-04")
    with pytest.raises(ContractError, match="initiative"):
        compute_truth(tables, latent.drop(columns="initiative"), "2024-03-04",
                      config=_hand_config())
    with pytest.raises(ContractError, match="no latent traits"):
        compute_truth(tables, latent.iloc[:2], "2024-03-04", config=_hand_config())
    with pytest.raises(ConfigError, match="horizon_days"):
        compute_truth(tables, latent, "2024-03-04", horizon_days=0, config=_hand_config())
    with pytest.raises(ConfigError, match="departures"):
        compute_truth(tables, latent, "2024-03-04", config=_hand_config(), departures="psychic")


# ----------------------------------------------------------------------------- config


def test_config_validation():
    with pytest.raises(ConfigError, match="Monday"):
        SimulationConfig(start="2020-01-07")
    with pytest.raises(ConfigError, match="members"):
        SimulationConfig(members=0)
    with pytest.raises(ConfigError, match="founding_share"):
        SimulationConfig(founding_share=1.5)
    with pytest.raises(ConfigError, match="too short"):
        simulate_community(SimulationConfig(members=100, years=0.5))
    assert SimulationConfig(members=200_000).n_chapters == 100
    assert SimulationConfig(members=3_000).n_chapters == 6
    assert SimulationConfig(members=3_000, chapters=2).n_chapters == 2


# ----------------------------------------------------------------------------- files


@pytest.fixture
def workdir(tmp_path):
    """An empty folder of its own (tmp_path also holds the test's corecast home)."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_write_simulation_writes_the_expected_files(small, workdir, fmt):
    out = workdir / "sim"
    paths = write_simulation(small, out, fmt=fmt)
    names = sorted(p.name for p in paths)
    assert names == sorted([f"members.{fmt}", f"activities.{fmt}", f"roles.{fmt}",
                            f"chapters.{fmt}", "latent.parquet", "truth.parquet",
                            "simulation.json"])
    assert sorted(p.name for p in out.iterdir()) == names
    assert [p.name for p in workdir.iterdir()] == ["sim"]  # no temporary folder left
    meta = json.loads((out / "simulation.json").read_text())
    assert meta["config"]["seed"] == 11 and meta["counts"]["members"] == 2_000
    latent = read_latent(out)
    pd.testing.assert_frame_equal(latent, small.latent)
    assert latent.attrs["simulation_config"]["members"] == 2_000
    pd.testing.assert_frame_equal(pd.read_parquet(out / "truth.parquet"), small.truth)
    if fmt == "parquet":
        pd.testing.assert_frame_equal(pd.read_parquet(out / "activities.parquet"),
                                      small.activities)
    else:
        back = pd.read_csv(out / "members.csv")
        assert list(back.columns) == MEMBER_COLUMNS and len(back) == 2_000


def test_write_simulation_replaces_a_previous_output(small, workdir):
    out = workdir / "sim"
    write_simulation(small, out, fmt="csv")
    write_simulation(small, out, fmt="parquet")
    assert not (out / "members.csv").exists()
    assert (out / "members.parquet").exists()
    assert [p.name for p in workdir.iterdir()] == ["sim"]


def test_write_simulation_refuses_to_clobber_a_foreign_folder(small, workdir):
    foreign = workdir / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a previous simulation output"):
        write_simulation(small, foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in workdir.iterdir()) == ["mine"]
    (workdir / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        write_simulation(small, workdir / "file")
    with pytest.raises(ConfigError, match="fmt"):
        write_simulation(small, workdir / "new", fmt="xlsx")
    assert not (workdir / "new").exists()


def test_read_latent_is_none_for_other_sources(workdir):
    assert read_latent(workdir) is None
    assert read_latent(workdir / "missing") is None
    assert read_latent("sqlite:///somewhere.db") is None
    (workdir / "simulation.json").write_text(json.dumps({"kind": "something else"}))
    assert read_latent(workdir) is None


def test_a_short_simulation_keeps_the_truth_dates_that_fit():
    from simulator.model import truth_dates_that_fit

    assert truth_dates_that_fit(3.0) == 6
    # 0.75 years = 273.9 days: (273.9 - 210) / 30 = 2.1 -> dates at 0, 30 and 60 days back
    assert truth_dates_that_fit(0.75) == 3
    assert truth_dates_that_fit(0.5) == 0  # 182.6 days: not even one date 180 days from the end
