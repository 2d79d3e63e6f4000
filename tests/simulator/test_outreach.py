"""The simulator's outreach: flags, the control group, the calls and their true effects."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features.contract import load_tables
from features.errors import ConfigError
from serving.outreach import FLAGGED_SEGMENTS, OutreachConfig, assign_actions, read_assignments
from simulator.community import SimulationConfig, simulate_community
from simulator.model import truth_dates_that_fit
from simulator.outreach import (
    OutreachSimConfig,
    simulate_with_outreach,
    write_with_outreach,
)

CONFIG = SimulationConfig(members=3_000, years=1.5, seed=5, truth_dates=truth_dates_that_fit(1.5))
CALLS = OutreachSimConfig(holdout_share=0.3, warmup_weeks=20)


@pytest.fixture(scope="module")
def sim():
    return simulate_with_outreach(CONFIG, CALLS)


def test_before_the_first_cycle_the_community_is_the_one_without_outreach(sim):
    plain = simulate_community(CONFIG)
    first = pd.Timestamp(CONFIG.start) + pd.Timedelta(weeks=CALLS.warmup_weeks)
    mine = sim.activities[sim.activities["occurred_at"] < first].reset_index(drop=True)
    theirs = plain.activities[plain.activities["occurred_at"] < first].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, theirs)
    assert plain.outreach is None and plain.assignments is None
    assert len(sim.activities) != len(plain.activities)


def test_cycles_flags_and_the_control_group(sim):
    log = sim.assignments
    cycles = pd.Series(sorted(log["cycle"].unique()))
    assert cycles.diff().dropna().eq(pd.Timedelta(weeks=CALLS.every_weeks)).all()
    assert cycles[0] == pd.Timestamp(CONFIG.start) + pd.Timedelta(weeks=CALLS.warmup_weeks)
    assert set(log["segment"]) <= set(FLAGGED_SEGMENTS) and set(log["action"]) == {"contact",
                                                                                 "hold"}
    for cycle, part in log.groupby("cycle"):
        again = assign_actions(part["member_id"], part["segment"], cycle.date().isoformat(),
                               OutreachConfig(holdout_share=CALLS.holdout_share))
        assert again.tolist() == part["action"].tolist()
    assert 0.25 < (log["action"] == "hold").mean() < 0.35
    # at most ready_per_chapter candidates per chapter and cycle
    ready = log[log["segment"] == "ready-now"]
    assert ready.groupby(["cycle", "chapter_id"]).size().max() <= CALLS.ready_per_chapter
    # a flagged member is not flagged again within the cool-down
    gaps = log.sort_values("cycle").groupby("member_id")["cycle"].diff().dropna()
    assert (gaps >= pd.Timedelta(weeks=CALLS.cooldown_weeks)).all()


def test_every_contact_is_a_call_in_the_cycle_week_and_held_members_get_none(sim):
    calls, log = sim.outreach, sim.assignments
    contacted = log[log["action"] == "contact"]
    assert len(calls) == len(contacted)
    merged = contacted.merge(calls, on="member_id")
    merged = merged[(merged["contacted_at"] >= merged["cycle"])
                    & (merged["contacted_at"] < merged["cycle"] + pd.Timedelta(days=7))]
    assert len(merged) == len(contacted)
    expected = np.where(merged["segment"] == "ready-now", "readiness", "retention")
    assert (merged["purpose"].to_numpy() == expected).all()
    assert (merged["outcome_at"] >= merged["contacted_at"]).all()


def test_accepted_calls_start_the_role_or_bring_the_member_back(sim):
    calls = sim.outreach[sim.outreach["outcome"] == "accepted"]
    ready = calls[calls["purpose"] == "readiness"]
    starts = ready.merge(sim.roles, left_on=["member_id", "outcome_at"],
                         right_on=["member_id", "started_at"])
    assert len(ready) > 0 and len(starts) == len(ready)
    kept = calls[calls["purpose"] == "retention"]
    cycle = kept["contacted_at"].dt.normalize() - pd.to_timedelta(
        kept["contacted_at"].dt.weekday, unit="D")
    week = pd.DataFrame({"member_id": kept["member_id"], "lo": cycle + pd.Timedelta(days=7),
                         "hi": cycle + pd.Timedelta(days=14)})
    acts = sim.activities.merge(week, on="member_id")
    back = acts[(acts["occurred_at"] >= acts["lo"]) & (acts["occurred_at"] < acts["hi"])]
    assert len(kept) > 0 and back["member_id"].nunique() == kept["member_id"].nunique()


def test_the_truth_records_the_true_effects(sim):
    truth, summary = sim.outreach_truth, sim.outreach_summary
    risk = truth["segment"] != "ready-now"
    assert truth.loc[risk, "p_disengages_untreated"].between(0, 1).all()
    np.testing.assert_allclose(truth.loc[risk, "true_uplift"],
                               CALLS.retention_effect * truth.loc[risk, "p_disengages_untreated"])
    assert truth.loc[~risk, "p_accept"].between(0, 1).all()
    assert truth.loc[risk, "p_accept"].isna().all()
    assert summary["settings"]["retention_effect"] == CALLS.retention_effect
    assert summary["true_retention_uplift"] == pytest.approx(truth.loc[risk, "true_uplift"].mean())


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_the_written_folder_is_a_data_source_with_its_assignment_log(sim, tmp_path, fmt):
    out = tmp_path / "sim"
    write_with_outreach(sim, out, fmt=fmt)
    tables = load_tables(str(out))
    assert len(tables.outreach) == len(sim.outreach)
    log = read_assignments(out / "assignments")
    pd.testing.assert_frame_equal(
        log, sim.assignments.sort_values(["cycle", "member_id"], ignore_index=True))
    meta = json.loads((out / "simulation.json").read_text())
    assert meta["outreach"]["calls"] == len(sim.outreach)
    assert "config" in meta and "outreach" not in meta["config"]
    assert (out / "outreach_truth.parquet").is_file()


def test_outreach_settings_are_checked():
    with pytest.raises(ConfigError, match="holdout_share"):
        OutreachSimConfig(holdout_share=1.0)
    with pytest.raises(ConfigError, match="every_weeks"):
        OutreachSimConfig(every_weeks=0)
    with pytest.raises(ConfigError, match="retention_effect"):
        OutreachSimConfig(retention_effect=1.5)
