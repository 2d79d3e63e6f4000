"""The quarantine report, its option checks and its files (the loading itself: test_contract)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.errors import ConfigError
from features.quarantine import (
    QuarantineReport,
    check_max_invalid_share,
    check_on_invalid,
    format_share,
    share_needed,
    write_quarantine_files,
)


def test_option_checks():
    assert check_on_invalid("quarantine") == "quarantine"
    assert check_max_invalid_share(0) == 0.0 and check_max_invalid_share("0.05") == 0.05
    for bad in (-0.01, 1.01, float("nan"), "lots", True):
        with pytest.raises(ConfigError, match="--max-invalid-share: expected a share"):
            check_max_invalid_share(bad, "--max-invalid-share")
    with pytest.raises(ConfigError, match="got 'Strict'"):
        check_on_invalid("Strict")


def test_shares_are_shown_as_percentages_and_the_needed_limit_rounds_up():
    assert format_share(0.005) == "0.50%" and format_share(4 / 60_000) == "<0.01%"
    assert format_share(0) == "0.00%" and format_share(1) == "100.00%"
    assert share_needed(2 / 6) == "0.3334" and share_needed(0.005) == "0.005"
    assert share_needed(4 / 60_000) == "0.0001"


def test_report_lines_list_tables_with_rows_set_aside_and_top_rules():
    report = QuarantineReport(
        rows_in={"members": 50, "activities": 1_000, "roles": 0},
        rows_quarantined={"members": 0, "activities": 7, "roles": 0},
        by_rule={"activities": {"orphan": 1, "timestamp": 3, "negative": 2, "number": 1}},
        paths={},
    )
    assert report.share == {"members": 0.0, "activities": 0.007, "roles": 0.0}
    assert report.total_quarantined == 7
    assert report.lines() == [
        "activities: 7 of 1,000 rows quarantined (0.70%): timestamp 3, negative 2, number 1 "
        "and 1 more rule(s) (no quarantine file written)"
    ]
    assert report.as_dict()["by_rule"]["activities"]["timestamp"] == 3


def test_files_are_written_all_or_none(tmp_path, monkeypatch):
    frames = {
        "members": pd.DataFrame({"member_id": ["m9"], "rule": ["timestamp"], "detail": ["x"]}),
        "activities": pd.DataFrame({"member_id": ["m1"], "rule": ["orphan"], "detail": ["y"]}),
        "roles": pd.DataFrame({"member_id": [], "rule": [], "detail": []}),
    }
    folder = tmp_path / "q"
    original = pd.DataFrame.to_csv

    def failing(self, path, *args, **kwargs):
        if "activities" in Path(path).name:
            raise OSError("disk full")
        return original(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", failing)
    with pytest.raises(OSError, match="disk full"):
        write_quarantine_files(folder, frames, tuple(frames))
    assert not folder.exists()
    monkeypatch.setattr(pd.DataFrame, "to_csv", original)
    paths = write_quarantine_files(folder, frames, tuple(frames))
    assert paths == {
        "members": folder / "members.quarantine.csv",
        "activities": folder / "activities.quarantine.csv",
    }
    assert sorted(p.name for p in folder.iterdir()) == [
        "activities.quarantine.csv", "members.quarantine.csv",
    ]
