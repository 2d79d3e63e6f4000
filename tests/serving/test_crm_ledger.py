"""The delivery ledger: states, guarded updates, plans, dead letters, locks, read-only use."""

from __future__ import annotations

import os
import sqlite3

import pandas as pd
import pytest

from features.errors import CrmError
from serving.crm.ledger import (
    Ledger,
    default_ledger_path,
    read_dead_letters,
    read_push_history,
    read_push_status,
)
from serving.crm.push import plan_push

SINK = "hubspot:test"


def test_default_path_is_in_the_corecast_home(isolated_home):
    assert default_ledger_path() == isolated_home / "ledger.sqlite"
    with Ledger() as ledger:
        assert ledger.path == isolated_home / "ledger.sqlite"
    assert (isolated_home / "ledger.sqlite").exists()


def test_wal_mode_and_schema(tmp_path):
    with Ledger(tmp_path / "l.sqlite") as ledger:
        mode = ledger._conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_pending_then_outcomes(tmp_path):
    with Ledger(tmp_path / "l.sqlite") as ledger:
        push = ledger.begin_push(SINK, 3)
        ledger.mark_pending(SINK, push, ["a", "b", "c"], ["h1", "h2", "h3"])
        state = ledger.read_state(SINK).set_index("member_id")
        assert state["status"].tolist() == ["pending"] * 3
        assert state["sent_hash"].isna().all()
        ledger.record_outcomes(
            SINK, push, ["a", "b"], ["sent", "failed"], [None, "Email address x is invalid"],
            ["101", None],
        )
        state = ledger.read_state(SINK).set_index("member_id")
        assert state.loc["a", ["status", "sent_hash", "attempts"]].tolist() == ["sent", "h1", 1]
        assert state.loc["b", ["status", "attempts"]].tolist() == ["failed", 1]
        assert pd.isna(state.loc["b", "sent_hash"])
        assert state.loc["c", "status"] == "pending"
        assert ledger.counts(SINK) == {"pending": 1, "sent": 1, "failed": 1}
        dead = ledger.dead_letters()
        assert dead[["member_id", "reason"]].values.tolist() == [
            ["b", "Email address x is invalid"]
        ]


def test_a_late_answer_of_an_older_push_does_not_overwrite(tmp_path):
    with Ledger(tmp_path / "l.sqlite") as ledger:
        old = ledger.begin_push(SINK, 1)
        ledger.mark_pending(SINK, old, ["a"], ["h1"])
        new = ledger.begin_push(SINK, 1)
        ledger.mark_pending(SINK, new, ["a"], ["h2"])
        ledger.record_outcomes(SINK, old, ["a"], ["sent"], [None])
        row = ledger.read_state(SINK).iloc[0]
        assert row["status"] == "pending" and pd.isna(row["sent_hash"])
        ledger.record_outcomes(SINK, new, ["a"], ["sent"], [None])
        assert ledger.read_state(SINK).iloc[0]["sent_hash"] == "h2"


def test_pushes_history_and_interrupted_runs(tmp_path):
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        first = ledger.begin_push(SINK, 5)  # never finished: a crash
        second = ledger.begin_push(SINK, 2)
        ledger.finish_push(second, "done", sent=2, failed=0)
    history = read_push_history(path).set_index("push_id")
    assert history.loc[first, "state"] == "interrupted"
    assert history.loc[second, ["state", "sent"]].tolist() == ["done", 2]


def test_plan_push_classifies_by_hand():
    state = pd.DataFrame({
        "member_id": ["same", "moved", "crashed", "refused"],
        "status": ["sent", "sent", "pending", "failed"],
        "payload_hash": ["h1", "h2", "h3", "h4"],
        "sent_hash": ["h1", "h2", None, None],
        "attempts": [1, 1, 0, 2],
    })
    members = pd.Series(["same", "moved", "crashed", "refused", "fresh"])
    hashes = pd.Series(["h1", "h2-new", "h3", "h4", "h5"])
    plan = plan_push(members, hashes, state)
    assert plan["change"].tolist() == ["unchanged", "changed", "retry", "retry", "new"]
    assert plan["send"].tolist() == [False, True, True, True, True]
    assert plan_push(members, hashes, state, full=True)["send"].all()


def test_status_summary_and_dead_letters_by_path(tmp_path):
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        push = ledger.begin_push(SINK, 3)
        ledger.mark_pending(SINK, push, ["a", "b", "c"], ["1", "2", "3"])
        ledger.record_outcomes(SINK, push, ["a", "b"], ["sent", "failed"], [None, "no email"])
        other = ledger.begin_push("csv:x", 1)
        ledger.mark_pending("csv:x", other, ["a"], ["1"])
    status = read_push_status(path)
    got = {(r.sink, r.status): r.records for r in status.itertuples()}
    assert got == {(SINK, "failed"): 1, (SINK, "pending"): 1, (SINK, "sent"): 1,
                   ("csv:x", "pending"): 1}
    assert read_dead_letters(path)["reason"].tolist() == ["no email"]
    assert read_dead_letters(path, sink="csv:x").empty


def test_readonly_ledger_of_a_missing_file_creates_nothing(tmp_path):
    path = tmp_path / "absent.sqlite"
    assert read_push_status(path).empty
    with Ledger(path, readonly=True) as ledger:
        assert ledger.read_state(SINK).empty
        with pytest.raises(CrmError, match="read-only"):
            ledger.begin_push(SINK, 1)
    assert not path.exists()


def test_readonly_ledger_refuses_writes_on_an_existing_file(tmp_path):
    path = tmp_path / "l.sqlite"
    Ledger(path).close()
    with Ledger(path, readonly=True) as ledger:
        with pytest.raises((CrmError, sqlite3.OperationalError)):
            ledger.mark_pending(SINK, "p", ["a"], ["h"])


def test_one_push_per_sink_at_a_time(tmp_path):
    path = tmp_path / "l.sqlite"
    with Ledger(path) as one, Ledger(path) as two:
        with one.lock(SINK):
            with pytest.raises(CrmError, match="another push to hubspot:test is running"):
                with two.lock(SINK):
                    pass
            with two.lock("csv:other"):
                pass
        with two.lock(SINK):
            pass
    # no lock file is left behind, one per sink ever pushed to
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".lock") == []


def test_a_lock_file_removed_under_a_waiting_push_is_not_shared(tmp_path):
    import fcntl

    from serving.crm.ledger import _lock_file

    path = tmp_path / "x.lock"
    first = _lock_file(path, fcntl, "busy")
    stale = os.open(path, os.O_RDWR)  # a second push opened the file before it went away
    path.unlink()
    os.close(first)
    second = _lock_file(path, fcntl, "busy")  # locks the new file, not the removed one
    assert os.fstat(second).st_ino == os.stat(path).st_ino != os.fstat(stale).st_ino
    with pytest.raises(CrmError, match="busy"):
        _lock_file(path, fcntl, "busy")
    os.close(stale)
    os.close(second)


def test_a_failed_transaction_leaves_nothing_behind(tmp_path):
    with Ledger(tmp_path / "l.sqlite") as ledger:
        push = ledger.begin_push(SINK, 2)
        with pytest.raises(ValueError):
            ledger.mark_pending(SINK, push, ["a", "b"], ["h1"])  # lengths differ
        assert ledger.read_state(SINK).empty
