"""The outreach loop at a scoring: record the cycle, measure the earlier ones, say why not."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pandas as pd
import pytest

from features.errors import ConfigError
from pipelines.outreach_loop import (
    SUMMARY_FILE,
    TABLE_FILE,
    assignments_folder,
    record_and_measure,
)
from serving.outreach import read_assignments, write_assignments
from tests.serving.test_measure import AS_OF, T, _assignments, _tables


def _scored(when) -> SimpleNamespace:
    """A scoring result flagging two members this cycle (one to contact, one held)."""
    predictions = pd.DataFrame({
        "member_id": ["r1", "c4", "r6"],
        "chapter_id": ["paris", "paris", "lyon"],
        "segment": ["at-risk", "ready-now", "steady"],
        "action": ["contact", "hold", "none"],
        "readiness_score": [0.01, 0.4, 0.01],
        "disengagement_score": [0.7, 0.1, 0.2],
    })
    return SimpleNamespace(predictions=predictions, as_of=pd.Timestamp(when),
                           meta={"run_id": "run-1"})


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def test_the_log_lives_beside_a_data_folder_else_in_the_home(data, tmp_path, monkeypatch):
    monkeypatch.setenv("CORECAST_HOME", str(tmp_path / "home"))
    assert assignments_folder(data) == data.resolve() / "assignments"
    url = "postgresql://corecast@localhost/club"
    log = assignments_folder(url)
    assert log.parent == (tmp_path / "home").resolve() / "assignments"
    # one log per database, the same for the same source whatever its password
    assert assignments_folder("postgresql://corecast:pw@localhost/club") == log
    assert assignments_folder("sqlite:////srv/other.db") != log


def test_the_first_cycle_is_recorded_and_nothing_is_measured(data, tmp_path):
    loop = record_and_measure(data, _tables(), _scored(AS_OF), tmp_path / "out")
    assert not loop.measured and loop.cycles == 1
    assert loop.recorded == data / "assignments" / f"{AS_OF}.parquet"
    log = read_assignments(data / "assignments")
    assert sorted(log["member_id"]) == ["c4", "r1"]  # the flagged members only
    assert "no cycle before this one" in loop.lines[0]
    assert "no cycle before this one" in (tmp_path / "out" / SUMMARY_FILE).read_text()
    assert not (tmp_path / "out" / TABLE_FILE).exists()


def test_without_outreach_table_it_says_to_pull_the_outcomes(data, tmp_path):
    write_assignments(_assignments(), data / "assignments", T)
    tables = replace(_tables(), outreach=None)
    loop = record_and_measure(data, tables, _scored(AS_OF), tmp_path / "out")
    assert not loop.measured and loop.cycles == 2
    assert "1 earlier cycle(s)" in loop.lines[0] and "corecast pull" in loop.lines[0]


def test_earlier_cycles_are_measured_and_written(data, tmp_path):
    write_assignments(_assignments(), data / "assignments", T)
    loop = record_and_measure(data, _tables(), _scored(AS_OF), tmp_path / "out")
    assert loop.measured and loop.cycles == 2
    # 4 contacted and 2 held at-risk members (tests/serving/test_measure.py): below the
    # 30 members a group needs, so the figure is not stated
    assert loop.metrics["retention_contacted_n"] == 4 and loop.metrics["retention_held_n"] == 2
    assert "retention_uplift" not in loop.metrics
    assert "too few to conclude" in loop.lines[0]
    summary = (tmp_path / "out" / SUMMARY_FILE).read_text()
    assert "## Acceptance by chapter" in summary and "| paris |" in summary
    table = pd.read_csv(tmp_path / "out" / TABLE_FILE)
    assert "retention: still active" in set(table["measure"])


def test_an_unwritable_log_is_a_clear_error(data, tmp_path):
    (data / "assignments").write_text("not a folder")
    with pytest.raises(ConfigError, match="assignment log"):
        record_and_measure(data, _tables(), _scored(AS_OF), tmp_path / "out")


def test_scoring_an_earlier_date_looks_back_and_records_nothing(data, tmp_path):
    write_assignments(_assignments(), data / "assignments", AS_OF)  # a later live cycle
    loop = record_and_measure(data, _tables(), _scored(T), tmp_path / "out")
    assert loop.recorded is None and loop.cycle == f"{T:%Y-%m-%d}"
    assert "not recorded as a cycle" in loop.lines[0]
    assert sorted(p.name for p in (data / "assignments").iterdir()) == [f"{AS_OF}.parquet"]
    # the same date again is the live cycle: it is recorded (replaced)
    again = record_and_measure(data, _tables(), _scored(AS_OF), tmp_path / "out")
    assert again.recorded is not None


def test_a_corrupt_log_fails_before_anything_is_recorded(data, tmp_path):
    (data / "assignments").mkdir()
    (data / "assignments" / "2023-12-01.parquet").write_text("junk")
    with pytest.raises(ConfigError, match="2023-12-01"):
        record_and_measure(data, _tables(), _scored(AS_OF), tmp_path / "out")
    assert not (data / "assignments" / f"{AS_OF}.parquet").exists()
    assert not (tmp_path / "out").exists()
