"""Measuring the outreach loop on a tiny community whose answers are worked out by hand.

One cycle at T = 2024-01-01, measured at 2024-08-01 (after the 90-day retention horizon and the
180-day readiness window). Every member joined in 2023, consents and acted at T - 10 days.

Retention (at-risk): r1-r4 contacted, r5-r6 held. Still active in (T, T + 90 d]: r1, r2, r3 and
r5 -> contacted 3 of 4, held 1 of 2, uplift +0.25.
Readiness (ready-now): c1-c3 contacted, c4 held. c1 accepted (first contact; a later one
declined) and starts the role at T + 5 d; c2 declined; c3 has no recorded contact; c4 (held)
starts the role at T + 100 d -> acceptance 1 of 3, role starts 1 of 3 vs 1 of 1.
Contacts: r1 accepted, r2 declined, r3 pending, r4 at T + 40 d (after the 28 days: unmatched),
r5 (held) contacted anyway.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from features.errors import ConfigError
from features.tables import Tables
from serving.measure import (
    MeasureConfig,
    Rate,
    measure_outreach,
    newcombe_interval,
    wilson_interval,
)
from serving.outreach import read_assignments, write_assignments
from tests.features.conftest import make_tables

T = pd.Timestamp("2024-01-01")
AS_OF = "2024-08-01"
Z95 = 1.959963984540054


def _at(days: float) -> pd.Timestamp:
    return T + pd.Timedelta(days=days)


CHAPTER = {"r1": "paris", "r2": "paris", "c1": "paris", "r3": "lyon", "r4": "lyon",
           "c2": "lyon", "c3": "lyon", "r5": "paris", "r6": "lyon", "c4": "paris"}


def _tables() -> Tables:
    members = [(m, "2023-01-01", CHAPTER[m], True) for m in CHAPTER]
    acts = [(m, _at(-10), "attend", "e0", CHAPTER[m], "attendee", None, 1.0) for m in CHAPTER]
    acts += [(m, _at(30), "attend", "e1", CHAPTER[m], "attendee", None, 1.0)
             for m in ("r1", "r2", "r3", "r5")]
    roles = [("c1", "ambassador", _at(5), None), ("c4", "ambassador", _at(100), None),
             ("x", "ambassador", _at(-900), _at(-800))]
    tables = make_tables(members, acts, roles)
    contacts = [("r1", 2, "retention", "accepted"), ("r2", 3, "retention", "declined"),
                ("r3", 1, "retention", "pending"), ("r4", 40, "retention", "accepted"),
                ("r5", 5, "retention", "accepted"), ("c1", 2, "readiness", "accepted"),
                ("c1", 10, "readiness", "declined"), ("c2", 3, "readiness", "declined")]
    outreach = pd.DataFrame({
        "member_id": pd.Series([c[0] for c in contacts], dtype="str"),
        "contacted_at": pd.Series([_at(c[1]) for c in contacts], dtype="datetime64[ns]"),
        "purpose": pd.Series([c[2] for c in contacts], dtype="str"),
        "outcome": pd.Series([c[3] for c in contacts], dtype="str"),
        "outcome_at": pd.Series([_at(c[1]) for c in contacts], dtype="datetime64[ns]"),
        "channel": pd.Series(["phone"] * len(contacts), dtype="str"),
        "contacted_by": pd.Series(["manager"] * len(contacts), dtype="str"),
    })
    return Tables(members=tables.members, activities=tables.activities, roles=tables.roles,
                  outreach=outreach, source="<test>")


def _assignments() -> pd.DataFrame:
    rows = [("r1", "at-risk", "contact", 0.9), ("r2", "ambassador-at-risk", "contact", 0.8),
            ("r3", "at-risk", "contact", 0.6), ("r4", "at-risk", "contact", 0.7),
            ("r5", "at-risk", "hold", 0.9), ("r6", "at-risk", "hold", 0.9)]
    ready = [("c1", "contact", 0.3), ("c2", "contact", 0.2), ("c3", "contact", 0.1),
             ("c4", "hold", 0.3)]
    frame = pd.DataFrame({
        "member_id": [r[0] for r in rows] + [r[0] for r in ready],
        "segment": [r[1] for r in rows] + ["ready-now"] * len(ready),
        "action": [r[2] for r in rows] + [r[1] for r in ready],
        "readiness_score": [0.01] * len(rows) + [r[2] for r in ready],
        "disengagement_score": [r[3] for r in rows] + [0.1] * len(ready),
    })
    frame["chapter_id"] = frame["member_id"].map(CHAPTER)
    frame["cycle"] = T
    return frame


@pytest.fixture
def measured():
    return measure_outreach(_assignments(), _tables(), AS_OF, MeasureConfig(min_group=2))


def test_intervals_match_published_examples():
    # Newcombe (1998): Wilson 81/263 -> 0.2553 to 0.3662; 56/70 - 48/80 -> 0.0524 to 0.3339.
    assert wilson_interval(81, 263, Z95) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert newcombe_interval(56, 70, 48, 80, Z95) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    assert all(math.isnan(x) for x in wilson_interval(0, 0, Z95))


def test_retention_compares_contacted_and_held(measured):
    r = measured.retention
    assert (r.contacted.k, r.contacted.n, r.held.k, r.held.n) == (3, 4, 1, 2)
    assert r.uplift == pytest.approx(0.25)
    assert (r.low, r.high) == pytest.approx(newcombe_interval(3, 4, 1, 2, Z95))
    assert r.conclusive


def test_readiness_acceptance_and_role_starts(measured):
    assert (measured.readiness_acceptance.k, measured.readiness_acceptance.n) == (1, 3)
    s = measured.readiness_starts
    assert (s.contacted.k, s.contacted.n, s.held.k, s.held.n) == (1, 3, 1, 1)
    assert s.uplift == pytest.approx(1 / 3 - 1)
    assert measured.readiness_acceptance_vs_held.uplift == pytest.approx(1 / 3 - 1)
    assert measured.held_but_contacted == 1


def test_acceptance_by_purpose_chapter_and_band(measured):
    acc = measured.acceptance.set_index(["by", "group"])
    got = acc[["contacted", "recorded", "decided", "accepted"]].astype(int)
    assert got.loc[("purpose", "retention")].tolist() == [4, 3, 2, 1]
    assert got.loc[("purpose", "readiness")].tolist() == [3, 2, 2, 1]
    assert got.loc[("chapter", "paris")].tolist() == [3, 3, 3, 2]
    assert got.loc[("chapter", "lyon")].tolist() == [4, 2, 1, 0]
    assert got.loc[("score band", "0.75-1.00")].tolist() == [2, 2, 2, 1]
    assert got.loc[("score band", "0.50-0.75")].tolist() == [2, 1, 0, 0]
    assert got.loc[("score band", "0.00-0.25")].tolist() == [2, 1, 1, 0]
    assert got.loc[("segment", "ambassador-at-risk")].tolist() == [1, 1, 1, 0]
    assert acc.loc[("chapter", "paris"), "rate"] == pytest.approx(2 / 3)
    assert not acc.loc[("chapter", "lyon"), "conclusive"]


def test_metrics_and_sentences(measured):
    m = measured.metrics()
    assert m["retention_uplift"] == pytest.approx(0.25)
    assert (m["retention_contacted_n"], m["retention_held_n"], m["retention_conclusive"]) == (
        4.0, 2.0, 1.0)
    assert m["retention_uplift_low"] < 0.25 < m["retention_uplift_high"]
    assert m["acceptance_retention"] == pytest.approx(0.5)
    lines = measured.summary_lines()
    assert lines[0].startswith("Retention (90 days after the cycle): no clear difference")
    assert "75.0% of 4 contacted vs 50.0% of 2 held" in lines[0]
    frame = measured.to_frame()
    uplift = frame[(frame["measure"] == "retention: still active") & (frame["group"] == "uplift")]
    assert uplift["rate"].item() == pytest.approx(0.25)


def test_too_few_to_conclude_is_said_not_guessed():
    m = measure_outreach(_assignments(), _tables(), AS_OF)  # at least 30 per group
    assert not m.retention.conclusive
    metrics = m.metrics()
    assert metrics["retention_conclusive"] == 0.0 and "retention_uplift" not in metrics
    assert metrics["retention_contacted_n"] == 4.0
    assert m.summary_lines()[0] == (
        "Retention (90 days after the cycle): too few to conclude (4 contacted and 2 held "
        "member(s); at least 30 in each group needed).")


def test_cycles_whose_window_has_not_passed_are_left_out():
    early = measure_outreach(_assignments(), _tables(), "2024-03-01", MeasureConfig(min_group=2))
    assert early.retention.contacted.n == 0  # T + 90 d is after 2024-03-01
    assert early.readiness_starts.contacted.n == 0
    # acceptance needs no window: the contacts made before the date count
    acc = early.acceptance.set_index(["by", "group"])
    assert acc.loc[("purpose", "readiness"), "accepted"] == 1


def test_without_outreach_or_roles_the_figures_are_empty_and_said_so():
    tables = _tables()
    bare = Tables(members=tables.members, activities=tables.activities, source="<bare>")
    m = measure_outreach(_assignments(), bare, AS_OF, MeasureConfig(min_group=2))
    assert m.retention.contacted.n == 4  # outcomes come from the activities, not the calls
    assert m.acceptance["accepted"].sum() == 0
    assert "roles" in m.readiness_note
    assert any(line.startswith("Readiness could not be measured") for line in m.summary_lines())


def test_config_is_checked():
    with pytest.raises(ConfigError, match="min_group"):
        MeasureConfig(min_group=0)
    with pytest.raises(ConfigError, match="score_bands"):
        MeasureConfig(score_bands=(0.5, 0.2))
    with pytest.raises(ConfigError, match="assignments"):
        measure_outreach(pd.DataFrame({"member_id": []}), _tables(), AS_OF)
    assert Rate.of(1, 4, Z95).rate == 0.25


def test_the_assignment_log_round_trips(tmp_path):
    frame = _assignments().drop(columns="cycle")
    frame.loc[len(frame)] = ["z", "steady", "none", 0.0, 0.0, "paris"]
    path = write_assignments(frame, tmp_path, "2024-01-01T10:00")
    assert path.name == "2024-01-01.parquet"
    write_assignments(frame.iloc[:2], tmp_path, "2024-01-29")
    write_assignments(frame.iloc[:3], tmp_path, "2024-01-29")  # the same cycle: replaced
    log = read_assignments(tmp_path)
    assert len(log) == 10 + 3 and "z" not in set(log["member_id"])
    assert list(log.columns) == ["member_id", "cycle", "segment", "action", "readiness_score",
                                 "disengagement_score", "chapter_id"]
    assert log["cycle"].value_counts().to_dict() == {T: 10, pd.Timestamp("2024-01-29"): 3}
    again = measure_outreach(log, _tables(), AS_OF, MeasureConfig(min_group=2))
    # the second cycle adds r1-r3 contacted, all active at T + 30 d: 6 of 7 vs 1 of 2 held
    assert (again.retention.contacted.k, again.retention.contacted.n) == (6, 7)
    assert again.retention.uplift == pytest.approx(6 / 7 - 1 / 2)


def test_reading_a_file_that_is_not_an_assignment_log_names_it(tmp_path):
    (tmp_path / "notes.txt").write_text("ignored")
    assert read_assignments(tmp_path).empty
    pd.DataFrame({"member_id": ["a"]}).to_parquet(tmp_path / "2024-01-01.parquet")
    with pytest.raises(ConfigError, match=r"2024-01-01\.parquet: not an assignment log"):
        read_assignments(tmp_path)
    (tmp_path / "2024-01-01.parquet").write_text("not parquet")
    with pytest.raises(ConfigError, match=r"2024-01-01\.parquet: not an assignment log"):
        read_assignments(tmp_path)
    with pytest.raises(ConfigError, match="no assignment log folder"):
        read_assignments(tmp_path / "missing")
    bad = _assignments().drop(columns="cycle").assign(action="call")
    with pytest.raises(ConfigError, match="unknown actions"):
        write_assignments(bad, tmp_path, "2024-02-01")
