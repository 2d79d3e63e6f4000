"""Atomic writers: complete files or the previous content, never a half-written file."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from features.io import (
    TEMP_SUFFIX,
    atomic_write_path,
    write_bytes_atomic,
    write_csv_atomic,
    write_files_atomic,
    write_parquet_atomic,
    write_text_atomic,
)


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(TEMP_SUFFIX))


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"member_id": ["a", "007", None], "score": [0.5, 1.0, 0.25]})


def test_parquet_and_csv_writers_round_trip_and_create_folders(tmp_path, frame):
    pq_path = write_parquet_atomic(frame, tmp_path / "deep" / "er" / "scores.parquet")
    assert pq_path == tmp_path / "deep" / "er" / "scores.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(pq_path), frame)

    csv_path = write_csv_atomic(frame, tmp_path / "scores.csv")
    assert csv_path.read_text(encoding="utf-8") == "member_id,score\na,0.5\n007,1.0\n,0.25\n"
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "deep" / "er") == []


def test_text_and_bytes_writers_replace_existing_content(tmp_path):
    path = tmp_path / "report.md"
    path.write_text("old")
    write_text_atomic("# Réunion\n", path)
    assert path.read_text(encoding="utf-8") == "# Réunion\n"
    write_bytes_atomic(b"\x00\x01", tmp_path / "blob.bin")
    assert (tmp_path / "blob.bin").read_bytes() == b"\x00\x01"
    assert leftovers(tmp_path) == []


def test_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, frame):
    path = tmp_path / "report.txt"
    path.write_text("previous report")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic("caf\u00e9", path, encoding="ascii")
    assert path.read_text() == "previous report"
    assert leftovers(tmp_path) == []

    target = tmp_path / "scores.parquet"
    target.write_bytes(b"old parquet")
    bad = frame.assign(obj=[object(), object(), object()])  # pyarrow cannot store these
    with pytest.raises(Exception):  # noqa: B017 - whatever pyarrow raises
        write_parquet_atomic(bad, target)
    assert target.read_bytes() == b"old parquet"
    assert leftovers(tmp_path) == []


def test_permissions_follow_umask_or_the_replaced_file(tmp_path):
    old = os.umask(0o027)
    try:
        fresh = write_text_atomic("x", tmp_path / "fresh.txt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640

    existing = tmp_path / "existing.txt"
    existing.write_text("y")
    existing.chmod(0o600)
    write_text_atomic("z", existing)
    assert stat.S_IMODE(existing.stat().st_mode) == 0o600
    assert existing.read_text() == "z"


def test_atomic_write_path_context_manager(tmp_path):
    dest = tmp_path / "model.bin"
    with atomic_write_path(dest) as tmp:
        assert tmp.parent == tmp_path and tmp != dest
        tmp.write_bytes(b"weights")
        assert not dest.exists()  # not visible until the block ends
    assert dest.read_bytes() == b"weights"

    with pytest.raises(RuntimeError):
        with atomic_write_path(dest) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert dest.read_bytes() == b"weights"
    assert leftovers(tmp_path) == []


def test_write_files_atomic_writes_all_or_none(tmp_path):
    out = tmp_path / "new" / "run"

    def fail(path):
        path.write_bytes(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_files_atomic({out / "a.txt": lambda p: p.write_text("a"), out / "b.txt": fail})
    assert not (tmp_path / "new").exists()

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "a.txt").write_text("old a")
    with pytest.raises(OSError):
        write_files_atomic(
            {existing / "a.txt": lambda p: p.write_text("new a"), existing / "b.txt": fail}
        )
    assert sorted(p.name for p in existing.iterdir()) == ["a.txt"]
    assert (existing / "a.txt").read_text() == "old a"

    written = write_files_atomic(
        {
            existing / "a.txt": lambda p: p.write_text("new a"),
            existing / "b.txt": lambda p: p.write_text("b"),
        }
    )
    assert written == [existing / "a.txt", existing / "b.txt"]
    assert (existing / "a.txt").read_text() == "new a" and (existing / "b.txt").read_text() == "b"
    assert leftovers(existing) == []
