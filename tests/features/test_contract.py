"""The data contract: reading, every validation rule, normalisation, SQL sources and writing."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.contract import (
    TEXT_DTYPE,
    describe_source,
    load_tables,
    password_to_environment,
    read_raw_tables,
    validate_tables,
    write_tables,
)
from features.errors import ConfigError, ContractError
from features.tables import (
    ACTIVITY_COLUMNS,
    CHAPTER_COLUMNS,
    MEMBER_COLUMNS,
    OUTREACH_COLUMNS,
    ROLE_COLUMNS,
)

# ------------------------------------------------------------------------------------ helpers

MEMBERS = """\
member_id,joined_at,chapter_id,email,consent
m1,2024-01-01,c1,ana@example.org,yes
m2,2024-01-02T10:00:00+02:00,c2,,
007,2024-01-03 09:30:00,,bo@example.org,No
"""

ACTIVITIES = """\
member_id,occurred_at,activity_type,event_id,chapter_id,role,counterpart_id,weight
m1,2024-02-02T18:00:00,Attend,e1,c1,attendee,,
m2,2024-02-01T18:00:00,attend,e1,c1,Organizer,,2.5
007,2024-02-03T08:00:00Z,message,,,,m1,
m1,2024-02-02T18:00:00,post,,c1,,,0
"""

ROLES = """\
member_id,role,started_at,ended_at,chapter_id
m2,Ambassador,2024-03-01,,c1
m1,ambassador,2024-01-15,2024-02-15,c1
"""

CHAPTERS = """\
chapter_id,name,city,country
c1,Paris,Paris,FR
c2,Lyon,Lyon,FR
"""


def write_source(folder: Path, **tables: str) -> Path:
    """Write CSV tables (name=text) into ``folder`` and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        (folder / f"{name}.csv").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def good_source(folder: Path, **overrides: str) -> Path:
    tables = {"members": MEMBERS, "activities": ACTIVITIES, "roles": ROLES, "chapters": CHAPTERS}
    tables.update(overrides)
    return write_source(folder, **{k: v for k, v in tables.items() if v is not None})


def contract_message(source) -> str:
    with pytest.raises(ContractError) as info:
        load_tables(source)
    return str(info.value)


def problem_line(message: str, *needles: str) -> str:
    """The one problem line of a message that contains all needles."""
    lines = [line for line in message.splitlines() if all(n in line for n in needles)]
    assert len(lines) == 1, f"expected one line with {needles} in:\n{message}"
    return lines[0]


def assert_tables_equal(left, right) -> None:
    for name in ("members", "activities", "roles", "chapters"):
        a, b = getattr(left, name), getattr(right, name)
        if a is None or b is None:
            assert a is None and b is None, name
            continue
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=name)


def expected_tables_frames() -> dict[str, pd.DataFrame]:
    """The good source above, normalised by hand."""
    text = TEXT_DTYPE
    members = pd.DataFrame(
        {
            "member_id": pd.array(["m1", "m2", "007"], dtype=text),
            "joined_at": pd.to_datetime(
                ["2024-01-01 00:00", "2024-01-02 08:00", "2024-01-03 09:30"]
            ).astype("datetime64[ns]"),
            "chapter_id": pd.array(["c1", "c2", None], dtype=text),
            "email": pd.array(["ana@example.org", None, "bo@example.org"], dtype=text),
            "consent": np.array([True, True, False]),
        }
    )
    # Sorted by occurred_at; the two rows at 2024-02-02 18:00 keep their file order.
    activities = pd.DataFrame(
        {
            "member_id": pd.array(["m2", "m1", "m1", "007"], dtype=text),
            "occurred_at": pd.to_datetime(
                ["2024-02-01 18:00", "2024-02-02 18:00", "2024-02-02 18:00", "2024-02-03 08:00"]
            ).astype("datetime64[ns]"),
            "activity_type": pd.array(["attend", "attend", "post", "message"], dtype=text),
            "event_id": pd.array(["e1", "e1", None, None], dtype=text),
            "chapter_id": pd.array(["c1", "c1", "c1", None], dtype=text),
            "role": pd.array(["organizer", "attendee", None, None], dtype=text),
            "counterpart_id": pd.array([None, None, None, "m1"], dtype=text),
            "weight": np.array([2.5, 1.0, 0.0, 1.0]),
        }
    )
    roles = pd.DataFrame(
        {
            "member_id": pd.array(["m2", "m1"], dtype=text),
            "role": pd.array(["ambassador", "ambassador"], dtype=text),
            "started_at": pd.to_datetime(["2024-03-01", "2024-01-15"]).astype("datetime64[ns]"),
            "ended_at": pd.to_datetime([None, "2024-02-15"]).astype("datetime64[ns]"),
            "chapter_id": pd.array(["c1", "c1"], dtype=text),
        }
    )
    chapters = pd.DataFrame(
        {
            "chapter_id": pd.array(["c1", "c2"], dtype=text),
            "name": pd.array(["Paris", "Lyon"], dtype=text),
            "city": pd.array(["Paris", "Lyon"], dtype=text),
            "country": pd.array(["FR", "FR"], dtype=text),
        }
    )
    return {"members": members, "activities": activities, "roles": roles, "chapters": chapters}


# ------------------------------------------------------------------------ good data, dtypes


def test_good_csv_source_loads_to_the_canonical_tables(tmp_path):
    tables = load_tables(good_source(tmp_path / "src"))
    expected = expected_tables_frames()
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(getattr(tables, name), frame, check_exact=True, obj=name)
    assert list(tables.members.columns) == MEMBER_COLUMNS
    assert list(tables.activities.columns) == ACTIVITY_COLUMNS
    assert list(tables.roles.columns) == ROLE_COLUMNS
    assert list(tables.chapters.columns) == CHAPTER_COLUMNS
    assert isinstance(tables.activities.index, pd.RangeIndex)
    assert tables.source == str(tmp_path / "src")


def test_optional_tables_and_columns_are_filled_with_defaults(tmp_path):
    folder = write_source(
        tmp_path / "src",
        members="member_id,joined_at\nm1,2024-01-01\n",
        activities="member_id,occurred_at,activity_type\nm1,2024-01-05,attend\n",
    )
    tables = load_tables(folder)
    assert tables.roles is None and tables.chapters is None
    assert list(tables.members.columns) == MEMBER_COLUMNS
    assert tables.members["consent"].tolist() == [True]
    assert tables.members["consent"].dtype == bool
    assert tables.members["chapter_id"].dtype == TEXT_DTYPE
    assert tables.members["chapter_id"].isna().all()
    assert tables.activities["weight"].tolist() == [1.0]
    assert tables.activities["weight"].dtype == np.float64
    assert tables.activities["counterpart_id"].isna().all()


def test_other_files_in_the_folder_are_ignored(tmp_path):
    folder = good_source(tmp_path / "src")
    pd.DataFrame({"member_id": ["m1"], "motivation": [0.3]}).to_parquet(folder / "latent.parquet")
    pd.DataFrame({"member_id": ["m1"], "p": [0.1]}).to_parquet(folder / "truth.parquet")
    (folder / "simulation.json").write_text('{"seed": 1}')
    frames, files = read_raw_tables(folder)
    assert sorted(frames) == ["activities", "chapters", "members", "roles"]
    assert files["members"] == str(folder / "members.csv")
    # Raw means raw: values as written in the file, as text.
    assert frames["members"]["consent"].iloc[0] == "yes"
    assert pd.isna(frames["members"]["consent"].iloc[1])
    assert frames["members"]["member_id"].iloc[2] == "007"


def test_timezones_aware_converted_to_utc_and_naive_kept(tmp_path):
    folder = write_source(
        tmp_path / "src",
        members=(
            "member_id,joined_at\n"
            "a,2024-05-01T10:00:00+02:00\n"
            "b,2024-05-01T10:00:00\n"
            "c,2024-05-01T10:00:00Z\n"
            "d,2024-05-01T10:00:00-05:30\n"
            "e,2024-05-01\n"
        ),
        activities="member_id,occurred_at,activity_type\na,2024-06-01T00:30:00+01:00,attend\n",
    )
    tables = load_tables(folder)
    assert tables.members["joined_at"].tolist() == [
        pd.Timestamp("2024-05-01 08:00"),
        pd.Timestamp("2024-05-01 10:00"),
        pd.Timestamp("2024-05-01 10:00"),
        pd.Timestamp("2024-05-01 15:30"),
        pd.Timestamp("2024-05-01 00:00"),
    ]
    assert tables.activities["occurred_at"].tolist() == [pd.Timestamp("2024-05-31 23:30")]
    assert tables.members["joined_at"].dtype == np.dtype("datetime64[ns]")


def test_aware_datetime_column_in_memory_is_converted_to_utc():
    members = pd.DataFrame(
        {
            "member_id": ["a"],
            "joined_at": pd.to_datetime(["2024-05-01 10:00"]).tz_localize("Europe/Paris"),
        }
    )
    activities = pd.DataFrame(
        {"member_id": ["a"], "occurred_at": ["2024-05-02"], "activity_type": ["attend"]}
    )
    tables = validate_tables({"members": members, "activities": activities})
    assert tables.members["joined_at"].tolist() == [pd.Timestamp("2024-05-01 08:00")]
    assert tables.members["joined_at"].dtype == np.dtype("datetime64[ns]")


def test_numeric_looking_ids_stay_strings_from_csv(tmp_path):
    folder = write_source(
        tmp_path / "src",
        members="member_id,joined_at,chapter_id\n007,2024-01-01,1\n1.0,2024-01-01,2\n",
        activities="member_id,occurred_at,activity_type,event_id\n007,2024-01-02,attend,10\n",
    )
    tables = load_tables(folder)
    assert tables.members["member_id"].tolist() == ["007", "1.0"]
    assert tables.members["chapter_id"].tolist() == ["1", "2"]
    assert tables.activities["event_id"].tolist() == ["10"]
    assert tables.members["member_id"].dtype == TEXT_DTYPE


def test_numeric_ids_from_parquet_never_become_floats(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    pd.DataFrame(
        {
            "member_id": np.array([1, 2, 3], dtype=np.int64),
            "joined_at": pd.to_datetime(["2024-01-01"] * 3),
            "chapter_id": [10.0, np.nan, 12.0],  # a float column because of the missing value
        }
    ).to_parquet(folder / "members.parquet")
    pd.DataFrame(
        {
            "member_id": [1, 3],
            "occurred_at": pd.to_datetime(["2024-01-02", "2024-01-03"]),
            "activity_type": ["attend", "post"],
            "counterpart_id": [3.0, np.nan],
        }
    ).to_parquet(folder / "activities.parquet")
    tables = load_tables(folder)
    assert tables.members["member_id"].tolist() == ["1", "2", "3"]
    assert tables.members["chapter_id"].iloc[0] == "10"
    assert pd.isna(tables.members["chapter_id"].iloc[1])
    assert tables.activities["counterpart_id"].iloc[0] == "3"
    assert tables.activities["member_id"].dtype == TEXT_DTYPE


def test_mixed_object_id_columns_render_whole_floats_without_decimals():
    members = pd.DataFrame(
        {
            "member_id": pd.Series([7.0, "a", 2.5, None, 8], dtype=object),
            "joined_at": ["2024-01-01"] * 5,
        }
    )
    activities = pd.DataFrame(
        {"member_id": ["7"], "occurred_at": ["2024-01-02"], "activity_type": ["attend"]}
    )
    with pytest.raises(ContractError) as info:
        validate_tables({"members": members, "activities": activities})
    # Only the empty id is a problem; 7.0 became "7" (which activities refers to).
    assert "(1 problem)" in str(info.value)
    assert "1 row where member_id is empty" in str(info.value)
    members = members.dropna()
    tables = validate_tables({"members": members, "activities": activities})
    assert tables.members["member_id"].tolist() == ["7", "a", "2.5", "8"]


def test_consent_parsing(tmp_path):
    folder = write_source(
        tmp_path / "src",
        members=(
            "member_id,joined_at,consent\n"
            "a,2024-01-01,TRUE\nb,2024-01-01,false\nc,2024-01-01,1\nd,2024-01-01,0\n"
            "e,2024-01-01,Yes\nf,2024-01-01,NO\ng,2024-01-01,\nh,2024-01-01, no \n"
        ),
        activities="member_id,occurred_at,activity_type\na,2024-01-02,attend\n",
    )
    tables = load_tables(folder)
    assert tables.members["consent"].tolist() == [
        True,
        False,
        True,
        False,
        True,
        False,
        True,
        False,
    ]
    assert tables.members["consent"].dtype == bool


def test_consent_from_bool_and_integer_columns():
    activities = pd.DataFrame(
        {"member_id": ["a"], "occurred_at": ["2024-01-02"], "activity_type": ["attend"]}
    )
    for values, expected in (
        ([True, False, None], [True, False, True]),
        ([1, 0, None], [True, False, True]),
    ):
        members = pd.DataFrame(
            {"member_id": ["a", "b", "c"], "joined_at": ["2024-01-01"] * 3, "consent": values}
        )
        tables = validate_tables({"members": members, "activities": activities})
        assert tables.members["consent"].tolist() == expected


def test_text_is_trimmed_and_vocabulary_lower_cased(tmp_path):
    folder = write_source(
        tmp_path / "src",
        members="member_id,joined_at,email\n  m1 ,2024-01-01, a@x.org \n",
        activities="member_id,occurred_at,activity_type,role\nm1 , 2024-01-02 , ATTEND , Host\n",
    )
    tables = load_tables(folder)
    assert tables.members["member_id"].tolist() == ["m1"]
    assert tables.members["email"].tolist() == ["a@x.org"]
    assert tables.activities["activity_type"].tolist() == ["attend"]
    assert tables.activities["role"].tolist() == ["host"]
    assert tables.activities["occurred_at"].tolist() == [pd.Timestamp("2024-01-02")]


def test_column_names_are_matched_ignoring_case_and_spaces(tmp_path):
    folder = write_source(
        tmp_path / "src",
        members="Member_ID , Joined_At\nm1,2024-01-01\n",
        activities="member_id,OCCURRED_AT,activity_type,extra\nm1,2024-01-02,attend,x\n",
    )
    tables = load_tables(folder)
    assert tables.members["member_id"].tolist() == ["m1"]
    assert list(tables.activities.columns) == ACTIVITY_COLUMNS  # "extra" dropped


# ----------------------------------------------------------------------- one test per rule


def test_missing_required_file(tmp_path):
    folder = write_source(tmp_path / "src", members=MEMBERS)
    (folder / "notes.txt").write_text("hello")
    message = contract_message(folder)
    line = problem_line(message, "activities:")
    assert "required table is missing" in line
    assert "activities.csv or activities.parquet" in line
    assert "files found: members.csv, notes.txt" in line
    assert "(1 problem)" in message


def test_same_table_as_csv_and_parquet_is_ambiguous(tmp_path):
    folder = good_source(tmp_path / "src")
    pd.DataFrame({"member_id": ["m1"], "joined_at": ["2024-01-01"]}).to_parquet(
        folder / "members.parquet"
    )
    message = contract_message(folder)
    line = problem_line(message, "members:", "ambiguous")
    assert "members.csv and members.parquet" in line
    # An ambiguous table is not also reported as missing.
    assert "required table is missing" not in message


def test_missing_required_columns_lists_the_columns_found(tmp_path):
    folder = good_source(
        tmp_path / "src",
        members="member_id,chapter_id\nm1,c1\nm2,c2\n007,\n",
        roles="member_id,role,started_at\nm1,ambassador,2024-01-01\n",
    )
    message = contract_message(folder)
    line = problem_line(message, "members.csv:")
    assert "missing required column joined_at" in line
    assert "columns found: member_id, chapter_id" in line
    line = problem_line(message, "roles.csv:")
    assert "missing required column ended_at" in line
    assert "columns found: member_id, role, started_at" in line


def test_empty_required_table(tmp_path):
    folder = good_source(
        tmp_path / "src",
        activities="member_id,occurred_at,activity_type\n",
    )
    message = contract_message(folder)
    line = problem_line(message, "activities.csv:")
    assert "has no rows" in line


def test_empty_file_without_header(tmp_path):
    folder = good_source(tmp_path / "src", chapters="")
    line = problem_line(contract_message(folder), "chapters.csv:")
    assert "is empty" in line and "header" in line


def test_duplicate_member_ids(tmp_path):
    folder = good_source(
        tmp_path / "src",
        members=(
            "member_id,joined_at\n"
            "m1,2024-01-01\n"  # line 2
            "m2,2024-01-01\n"
            "m1,2024-01-05\n"  # line 4
            "007,2024-01-01\n"
            "m2,2024-01-07\n"  # line 6
        ),
    )
    line = problem_line(contract_message(folder), "not unique")
    assert line.strip().startswith("- members.csv, column member_id: 4 rows")
    assert "line 2: 'm1', line 3: 'm2', line 4: 'm1'" in line


def test_null_and_blank_ids(tmp_path):
    folder = good_source(
        tmp_path / "src",
        activities=(
            "member_id,occurred_at,activity_type\n"
            "m1,2024-02-01,attend\n"
            ",2024-02-01,attend\n"  # line 3: empty
            "   ,2024-02-01,attend\n"  # line 4: blank counts as empty
        ),
    )
    line = problem_line(contract_message(folder), "activities.csv, column member_id", "empty")
    assert "2 rows where member_id is empty" in line
    assert "line 3, line 4" in line


def test_unparseable_dates(tmp_path):
    folder = good_source(
        tmp_path / "src",
        members=(
            "member_id,joined_at\n"
            "m1,2024-01-01\n"
            "m2,01/02/2024\n"  # line 3: not ISO 8601
            "007,3000-01-01\n"  # line 4: out of range
        ),
    )
    line = problem_line(contract_message(folder), "members.csv, column joined_at")
    assert "2 rows where joined_at is not an ISO 8601 timestamp" in line
    assert "line 3: '01/02/2024', line 4: '3000-01-01'" in line


def test_missing_required_date(tmp_path):
    folder = good_source(
        tmp_path / "src",
        roles="member_id,role,started_at,ended_at\nm1,ambassador,,\n",
    )
    line = problem_line(contract_message(folder), "roles.csv, column started_at")
    assert "1 row where started_at is empty" in line
    assert "line 2" in line


def test_negative_and_non_numeric_weights(tmp_path):
    folder = good_source(
        tmp_path / "src",
        activities=(
            "member_id,occurred_at,activity_type,weight\n"
            "m1,2024-02-01,attend,1\n"
            "m1,2024-02-01,attend,-2\n"  # line 3
            "m2,2024-02-01,attend,heavy\n"  # line 4
            "m2,2024-02-01,attend,-0.5\n"  # line 5
            "m2,2024-02-01,attend,inf\n"  # line 6
        ),
    )
    message = contract_message(folder)
    line = problem_line(message, "activities.csv, column weight", "negative")
    assert "2 rows where weight is negative" in line
    assert "line 3: '-2', line 5: '-0.5'" in line
    line = problem_line(message, "activities.csv, column weight", "not a number")
    assert "2 rows where weight is not a number" in line
    assert "line 4: 'heavy', line 6: 'inf'" in line


def test_roles_ending_before_they_start(tmp_path):
    folder = good_source(
        tmp_path / "src",
        roles=(
            "member_id,role,started_at,ended_at\n"
            "m1,ambassador,2024-01-01,2024-03-01\n"
            "m2,ambassador,2024-03-01,2024-02-01\n"  # line 3
        ),
    )
    line = problem_line(contract_message(folder), "roles.csv, column ended_at")
    assert "1 row where ended_at is before started_at" in line
    assert "line 3: started_at '2024-03-01', ended_at '2024-02-01'" in line


def test_unknown_members_in_activities_and_roles(tmp_path):
    folder = good_source(
        tmp_path / "src",
        activities=(
            "member_id,occurred_at,activity_type\n"
            "m1,2024-02-01,attend\n"
            "m9,2024-02-01,attend\n"  # line 3
            "M1,2024-02-01,attend\n"  # line 4: ids are case-sensitive
        ),
        roles="member_id,role,started_at,ended_at\nghost,ambassador,2024-01-01,\n",
    )
    message = contract_message(folder)
    line = problem_line(message, "activities.csv, column member_id")
    assert "2 rows where member_id is not in members.csv" in line
    assert "line 3: 'm9', line 4: 'M1'" in line
    line = problem_line(message, "roles.csv, column member_id")
    assert "1 row where member_id is not in members.csv" in line
    assert "line 2: 'ghost'" in line


def test_unknown_counterpart(tmp_path):
    folder = good_source(
        tmp_path / "src",
        activities=(
            "member_id,occurred_at,activity_type,counterpart_id\n"
            "m1,2024-02-01,message,m2\n"
            "m1,2024-02-01,message,stranger\n"  # line 3
            "m1,2024-02-01,message,\n"
        ),
    )
    line = problem_line(contract_message(folder), "activities.csv, column counterpart_id")
    assert "1 row where counterpart_id is not in members.csv" in line
    assert "line 3: 'stranger'" in line


def test_unknown_chapter_when_chapters_exist(tmp_path):
    folder = good_source(
        tmp_path / "src",
        members="member_id,joined_at,chapter_id\nm1,2024-01-01,c1\nm2,2024-01-01,c7\n",
        activities=(
            "member_id,occurred_at,activity_type,chapter_id\n"
            "m1,2024-02-01,attend,c1\nm2,2024-02-01,attend,nowhere\n"
        ),
        roles="member_id,role,started_at,ended_at\nm1,ambassador,2024-01-01,\n",
    )
    message = contract_message(folder)
    line = problem_line(message, "members.csv, column chapter_id")
    assert "1 row where chapter_id is not in chapters.csv" in line
    assert "line 3: 'c7'" in line
    line = problem_line(message, "activities.csv, column chapter_id")
    assert "1 row where chapter_id is not in chapters.csv" in line and "line 3: 'nowhere'" in line


def test_chapter_ids_are_free_without_a_chapters_table(tmp_path):
    folder = good_source(
        tmp_path / "src",
        members="member_id,joined_at,chapter_id\nm1,2024-01-01,c7\nm2,2024-01-01,\n007,2024-01-01,\n",
        chapters=None,
    )
    tables = load_tables(folder)
    assert tables.chapters is None
    assert tables.members["chapter_id"].iloc[0] == "c7"


def test_duplicate_chapter_ids(tmp_path):
    folder = good_source(tmp_path / "src", chapters="chapter_id,name\nc1,Paris\nc2,Lyon\nc1,X\n")
    line = problem_line(contract_message(folder), "chapters.csv, column chapter_id")
    assert "2 rows where chapter_id is not unique" in line
    assert "line 2: 'c1', line 4: 'c1'" in line


def test_bad_consent_values(tmp_path):
    folder = good_source(
        tmp_path / "src",
        members=(
            "member_id,joined_at,consent\n"
            "m1,2024-01-01,yes\n"
            "m2,2024-01-01,maybe\n"  # line 3
            "007,2024-01-01,2\n"  # line 4
        ),
    )
    line = problem_line(contract_message(folder), "members.csv, column consent")
    assert "2 rows where consent is not one of true/false/1/0/yes/no" in line
    assert "line 3: 'maybe', line 4: '2'" in line


def test_file_not_utf8_names_line_and_byte(tmp_path):
    folder = good_source(tmp_path / "src")
    text = "member_id,joined_at,email\nm1,2024-01-01,a@x.org\nm2,2024-01-02,ren\u00e9@x.org\n"
    (folder / "members.csv").write_bytes(text.encode("latin-1"))
    # Bytes before the bad one: "member_id,joined_at,email\n" (26), "m1,2024-01-01,a@x.org\n"
    # (22) and "m2,2024-01-02,ren" (17): offset 65.
    message = contract_message(folder)
    line = problem_line(message, "members.csv:")
    assert "is not UTF-8" in line
    assert "byte 0xe9 at line 3 (byte offset 65)" in line


def test_utf8_error_after_a_large_clean_prefix_is_located(tmp_path):
    folder = good_source(tmp_path / "src")
    rows = "".join(f"m1,2024-02-01,attend{i % 10}\n" for i in range(60_000))  # > 1 MiB
    prefix = "member_id,occurred_at,activity_type\n" + rows
    data = prefix.encode() + b"m2,2024-02-01,caf\xe9\n"
    (folder / "activities.csv").write_bytes(data)
    line = problem_line(contract_message(folder), "activities.csv:")
    assert f"at line {60_002} (byte offset {len(prefix.encode()) + 17})" in line


def test_utf8_with_bom_is_accepted(tmp_path):
    folder = good_source(tmp_path / "src")
    (folder / "chapters.csv").write_bytes(b"\xef\xbb\xbf" + CHAPTERS.encode())
    tables = load_tables(folder)
    assert tables.chapters["chapter_id"].tolist() == ["c1", "c2"]


def test_corrupt_parquet(tmp_path):
    folder = good_source(tmp_path / "src")
    (folder / "activities.csv").unlink()
    (folder / "activities.parquet").write_bytes(b"PAR1 this is not really parquet")
    message = contract_message(folder)
    line = problem_line(message, "activities.parquet:")
    assert "cannot be read as Parquet" in line
    assert "required table is missing" not in message


def test_malformed_csv_row(tmp_path):
    folder = good_source(
        tmp_path / "src", chapters="chapter_id,name\nc1,Paris\nc2,Lyon,extra,fields\n"
    )
    line = problem_line(contract_message(folder), "chapters.csv:")
    assert "cannot be read as CSV" in line and "line 3" in line


def test_all_problems_are_reported_together(tmp_path):
    folder = good_source(
        tmp_path / "src",
        members="member_id,joined_at,consent\nm1,2024-01-01,perhaps\nm1,someday,\n",
        activities="member_id,occurred_at,activity_type,weight\nm1,2024-02-01,attend,-1\n",
        roles="member_id,role,started_at\nm1,ambassador,2024-01-01\n",
    )
    message = contract_message(folder)
    assert "(5 problems)" in message
    for needle in (
        "members.csv, column member_id: 2 rows where member_id is not unique",
        "members.csv, column joined_at: 1 row where joined_at is not an ISO 8601",
        "members.csv, column consent: 1 row",
        "activities.csv, column weight: 1 row where weight is negative",
        "roles.csv: missing required column ended_at",
    ):
        assert needle in message
    # Problems are listed table by table, in contract order.
    assert message.index("members.csv") < message.index("activities.csv")
    assert message.index("activities.csv") < message.index("roles.csv")


def test_line_numbers_follow_the_file_with_blank_lines_and_multiline_fields(tmp_path):
    folder = good_source(
        tmp_path / "src",
        chapters=(
            "chapter_id,name\n"
            'c1,"Paris\n(centre)"\n'  # lines 2-3
            "\n"  # line 4: blank, skipped
            "c2,Lyon\n"  # line 5
            "c1,Again\n"  # line 6
        ),
    )
    line = problem_line(contract_message(folder), "chapters.csv, column chapter_id")
    assert "line 2: 'c1', line 6: 'c1'" in line


def test_in_memory_frames_number_rows_from_one():
    members = pd.DataFrame({"member_id": ["a", "b"], "joined_at": ["2024-01-01", "never"]})
    activities = pd.DataFrame(
        {"member_id": ["a"], "occurred_at": ["2024-01-02"], "activity_type": ["attend"]}
    )
    with pytest.raises(ContractError) as info:
        validate_tables({"members": members, "activities": activities, "latent": None})
    line = problem_line(str(info.value), "members, column joined_at")
    assert "row 2: 'never'" in line
    assert str(info.value).startswith("Data source <memory>")


# ------------------------------------------------------------------------------ round trips


def test_csv_and_parquet_round_trip_to_identical_tables(tmp_path):
    original = load_tables(good_source(tmp_path / "src"))
    written = write_tables(original, tmp_path / "pq", fmt="parquet")
    assert [p.name for p in written] == [
        "members.parquet",
        "activities.parquet",
        "roles.parquet",
        "chapters.parquet",
    ]
    from_parquet = load_tables(tmp_path / "pq")
    assert_tables_equal(original, from_parquet)
    write_tables(from_parquet, tmp_path / "csv", fmt="csv")
    from_csv = load_tables(tmp_path / "csv")
    assert_tables_equal(original, from_csv)


def test_round_trip_keeps_nanoseconds_and_odd_floats(tmp_path):
    members = pd.DataFrame(
        {"member_id": ["a"], "joined_at": ["2024-01-01T10:00:00.123456789"], "consent": ["no"]}
    )
    activities = pd.DataFrame(
        {
            "member_id": ["a", "a"],
            "occurred_at": ["2024-01-02T00:00:00.000000001", "2024-01-03"],
            "activity_type": ["attend", "post"],
            "weight": [0.1 + 0.2, 1e-300],
        }
    )
    tables = validate_tables({"members": members, "activities": activities})
    for fmt in ("csv", "parquet"):
        write_tables(tables, tmp_path / fmt, fmt=fmt)
        assert_tables_equal(tables, load_tables(tmp_path / fmt))


def test_write_tables_replaces_the_other_format_and_dropped_optional_tables(tmp_path):
    tables = load_tables(good_source(tmp_path / "src"))
    out = tmp_path / "out"
    write_tables(tables, out, fmt="parquet")
    without_roles = type(tables)(
        members=tables.members, activities=tables.activities, chapters=tables.chapters
    )
    write_tables(without_roles, out, fmt="csv")
    assert sorted(p.name for p in out.iterdir()) == [
        "activities.csv",
        "chapters.csv",
        "members.csv",
    ]
    assert load_tables(out).roles is None


def test_write_tables_is_all_or_nothing(tmp_path, monkeypatch):
    tables = load_tables(good_source(tmp_path / "src"))
    real = pd.DataFrame.to_parquet
    calls = {"n": 0}

    def failing(self, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", failing)
    fresh = tmp_path / "fresh" / "out"
    with pytest.raises(OSError, match="disk full"):
        write_tables(tables, fresh)
    assert not fresh.exists()
    assert not (tmp_path / "fresh").exists()

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "members.parquet").write_bytes(b"old members")
    (existing / "keep.txt").write_text("mine")
    calls["n"] = 0
    with pytest.raises(OSError, match="disk full"):
        write_tables(tables, existing)
    assert sorted(p.name for p in existing.iterdir()) == ["keep.txt", "members.parquet"]
    assert (existing / "members.parquet").read_bytes() == b"old members"


def test_write_tables_rejects_unknown_format(tmp_path):
    tables = load_tables(good_source(tmp_path / "src"))
    with pytest.raises(ConfigError, match="xlsx"):
        write_tables(tables, tmp_path / "out", fmt="xlsx")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------- SQL URLs


def _write_sql(tables, url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        for name in ("members", "activities", "roles", "chapters"):
            getattr(tables, name).to_sql(name, engine, index=False)
    finally:
        engine.dispose()


def test_sqlite_url_gives_the_same_tables_as_the_folder(tmp_path):
    folder_tables = load_tables(good_source(tmp_path / "src"))
    url = f"sqlite:///{tmp_path / 'community.db'}"
    _write_sql(folder_tables, url)
    sql_tables = load_tables(url)
    assert_tables_equal(folder_tables, sql_tables)
    frames, files = read_raw_tables(url)
    assert files["members"] == f"{url} table members"
    assert sql_tables.source == url


def test_sqlite_problems_name_the_table_and_rows(tmp_path):
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'bad.db'}"
    engine = sa.create_engine(url)
    pd.DataFrame({"member_id": ["a", "a"], "joined_at": ["2024-01-01", "2024-01-02"]}).to_sql(
        "members", engine, index=False
    )
    engine.dispose()
    message = contract_message(url)
    line = problem_line(message, "table members, column member_id")
    assert "2 rows where member_id is not unique" in line and "row 1: 'a', row 2: 'a'" in line
    line = problem_line(message, "activities:")
    assert "expected a table named activities" in line and "tables found: members" in line


def test_missing_sqlite_file_is_an_error_and_is_not_created(tmp_path):
    path = tmp_path / "nothing.db"
    message = contract_message(f"sqlite:///{path}")
    assert "does not exist" in message and str(path) in message
    assert not path.exists()


def test_unopenable_url_never_echoes_the_password():
    for url in (
        "nosuchdialect://admin:hunter2secret@db.internal/community",
        "postgresql+psycopg2://admin:hunter2secret@127.0.0.1:1/community",
    ):
        message = contract_message(url)
        assert "hunter2secret" not in message
        assert "admin:***@" in message
        assert "cannot be opened" in message


def test_describe_source_hides_secrets(tmp_path):
    label = describe_source(
        "postgresql+psycopg2://u:p%40ss@h:5432/db?sslpassword=zz&sslmode=require"
    )
    assert "p%40ss" not in label and "p@ss" not in label and "zz" not in label
    assert label == "postgresql+psycopg2://u:***@h:5432/db?sslmode=require&sslpassword=***"
    assert describe_source(tmp_path) == str(tmp_path)
    assert describe_source("sqlite:///x.db") == "sqlite:///x.db"


# ---------------------------------------------------------------------- PostgreSQL (real)


def _postgres_bin() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    which = shutil.which("initdb")
    if which:
        candidates.append(str(Path(which).parent))
    for folder in candidates:
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PG_PASSWORD = "s3cret-pw"


@pytest.fixture
def postgres_url(tmp_path):
    """A throwaway PostgreSQL cluster on a loopback port; yields its SQLAlchemy URL."""
    pytest.importorskip("psycopg2")
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not found under "
            "/usr/lib/postgresql/*/bin or on PATH"
        )
    run_kwargs: dict = {}
    if os.geteuid() == 0:
        # initdb refuses to run as root: run the server as the 'postgres' OS user. pytest's
        # tmp_path is private to root (mode 0700), so the cluster lives in its own temp folder.
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' OS user to run initdb as")
        base = Path(tempfile.mkdtemp(prefix="corecast-pg-"))
        os.chown(base, user.pw_uid, user.pw_gid)
        run_kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    else:
        base = tmp_path / "pg"
        base.mkdir()
    data = base / "data"
    pwfile = base / "pwfile"
    pwfile.write_text(PG_PASSWORD + "\n")
    if run_kwargs:
        os.chown(pwfile, run_kwargs["user"], run_kwargs["group"])
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    port = _free_port()

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(a) for a in args],
            cwd=base,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **run_kwargs,
        )

    started = False
    try:
        done = run(
            bin_dir / "initdb",
            "-D",
            data,
            "-U",
            "corecast",
            "--pwfile",
            pwfile,
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )
        if done.returncode != 0:
            pytest.skip(f"initdb failed: {done.stderr.strip()[-300:]}")
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
        done = run(
            bin_dir / "pg_ctl",
            "-D",
            data,
            "-l",
            base / "log",
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )
        if done.returncode != 0:
            log = (base / "log").read_text() if (base / "log").exists() else ""
            pytest.fail(f"pg_ctl start failed: {done.stderr.strip()} {log[-500:]}")
        started = True
        yield f"postgresql+psycopg2://corecast:{PG_PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        if started:
            run(bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_postgresql_url_gives_the_same_tables_as_the_folder(tmp_path, postgres_url):
    started = time.perf_counter()
    folder_tables = load_tables(good_source(tmp_path / "src"))
    _write_sql(folder_tables, postgres_url)
    sql_tables = load_tables(postgres_url)
    assert_tables_equal(folder_tables, sql_tables)
    assert PG_PASSWORD not in sql_tables.source
    assert sql_tables.source.startswith("postgresql+psycopg2://corecast:***@127.0.0.1:")
    assert time.perf_counter() - started < 60

    # The password can stay out of the URL: ${NAME} is read from the environment at load time.
    reference, secrets = password_to_environment(postgres_url, "CORECAST_TEST_PG")
    assert PG_PASSWORD not in reference and secrets == {"CORECAST_TEST_PG": PG_PASSWORD}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CORECAST_TEST_PG", PG_PASSWORD)
        assert_tables_equal(folder_tables, load_tables(reference))
        env.delenv("CORECAST_TEST_PG")
        unset = contract_message(reference)
    assert "environment variable CORECAST_TEST_PG, which is not set" in unset

    wrong = postgres_url.replace(PG_PASSWORD, "not-the-password")
    message = contract_message(wrong)
    assert "not-the-password" not in message and PG_PASSWORD not in message
    assert "password authentication failed" in message


# ---------------------------------------------------------------- on_invalid="quarantine"

# ACTIVITIES plus two broken rows: line 6 has a date that is not ISO 8601, line 7 a negative
# weight. Everything else in the good source is valid.
MESSY_ACTIVITIES = ACTIVITIES + (
    "m1,03/02/2024,attend,,,,,\n"  # line 6
    "m2,2024-02-04,attend,,,,,-1\n"  # line 7
)


def quarantine_csv(folder: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{table}.quarantine.csv", dtype=str, keep_default_na=False)


def test_quarantine_drops_exactly_the_bad_rows_and_writes_them_with_their_rule(tmp_path):
    source = good_source(tmp_path / "src", activities=MESSY_ACTIVITIES)
    qdir = tmp_path / "quarantine"
    tables = load_tables(
        source, on_invalid="quarantine", max_invalid_share=0.5, quarantine_dir=qdir
    )
    # What is left is exactly the good source.
    assert_tables_equal(tables, load_tables(good_source(tmp_path / "good")))
    report = tables.quarantine
    assert report.rows_in == {"members": 3, "activities": 6, "roles": 2, "chapters": 2}
    assert report.rows_quarantined == {"members": 0, "activities": 2, "roles": 0, "chapters": 0}
    assert report.by_rule["activities"] == {"timestamp": 1, "negative": 1}
    assert report.share["activities"] == pytest.approx(2 / 6)
    assert report.paths == {"activities": qdir / "activities.quarantine.csv"}
    assert sorted(p.name for p in qdir.iterdir()) == ["activities.quarantine.csv"]
    rejected = quarantine_csv(qdir, "activities")
    assert list(rejected.columns) == [*ACTIVITY_COLUMNS, "rule", "detail"]
    assert rejected["occurred_at"].tolist() == ["03/02/2024", "2024-02-04"]  # as written
    assert rejected["weight"].tolist() == ["", "-1"]
    assert rejected["rule"].tolist() == ["timestamp", "negative"]
    assert rejected["detail"][0].startswith("activities.csv, line 6, column occurred_at: ")
    assert "(found '03/02/2024')" in rejected["detail"][0]
    assert rejected["detail"][1] == (
        "activities.csv, line 7, column weight: weight is negative (it must be >= 0) "
        "(found '-1')"
    )


def test_strict_still_refuses_and_writes_nothing(tmp_path):
    source = good_source(tmp_path / "src", activities=MESSY_ACTIVITIES)
    message = contract_message(source)
    with pytest.raises(ContractError) as info:
        load_tables(source, on_invalid="strict", quarantine_dir=tmp_path / "q")
    assert str(info.value) == message
    assert "(2 problems)" in message and "line 6: '03/02/2024'" in message
    assert not (tmp_path / "q").exists()
    assert load_tables(good_source(tmp_path / "good")).quarantine is None


def test_share_above_the_limit_refuses_names_rules_and_option_and_writes_nothing(tmp_path):
    source = good_source(tmp_path / "src", activities=MESSY_ACTIVITIES)
    qdir = tmp_path / "q"
    for limit in (None, 0.25):  # default 1 %, then 25 %: 2 of 6 rows is 33.33 %
        kwargs = {} if limit is None else {"max_invalid_share": limit}
        with pytest.raises(ContractError) as info:
            load_tables(source, on_invalid="quarantine", quarantine_dir=qdir, **kwargs)
        message = str(info.value)
        line = problem_line(message, "activities.csv: 2 of 6 rows (33.33%)")
        assert "timestamp 1" in line and "negative 1" in line
        assert "--max-invalid-share 0.3334." in message and "load_tables" not in message
        assert "activities.csv, column weight: 1 row where weight is negative" in message
        assert "members.csv" not in message
    assert not qdir.exists()


def test_invalid_member_takes_the_rows_that_refer_to_it_along(tmp_path):
    members = MEMBERS + "m1,2024-01-05,c2,,\n"  # line 5: m1 again (first row kept)
    members = members.replace("m2,2024-01-02T10:00:00+02:00", "m2,soon")  # line 3
    activities = ACTIVITIES + "m1,2024-02-05,message,,,,m2,\n"  # line 6: counterpart m2
    source = good_source(tmp_path / "src", members=members, activities=activities)
    qdir = tmp_path / "q"
    tables = load_tables(source, on_invalid="quarantine", max_invalid_share=1, quarantine_dir=qdir)
    report = tables.quarantine
    assert report.by_rule == {
        "members": {"timestamp": 1, "duplicate": 1},
        "activities": {"orphan": 2},  # line 3 (member m2) and line 6 (counterpart m2)
        "roles": {"orphan": 1},  # m2's ambassador spell
        "chapters": {},
    }
    assert tables.members["member_id"].tolist() == ["m1", "007"]
    assert tables.activities["member_id"].tolist() == ["m1", "m1", "007"]
    assert tables.roles["member_id"].tolist() == ["m1"]
    # Consistent: every reference left points to a member left.
    kept = set(tables.members["member_id"])
    assert set(tables.activities["member_id"]) <= kept
    assert set(tables.activities["counterpart_id"].dropna()) <= kept
    rejected = quarantine_csv(qdir, "activities")
    assert rejected["rule"].tolist() == ["orphan", "orphan"]
    assert rejected["detail"].tolist() == [
        "activities.csv, line 3, column member_id: member_id refers to a quarantined row of "
        "members.csv (member_id) (found 'm2')",
        "activities.csv, line 6, column counterpart_id: counterpart_id refers to a quarantined "
        "row of members.csv (member_id) (found 'm2')",
    ]
    assert quarantine_csv(qdir, "members")["rule"].tolist() == ["timestamp", "duplicate"]


def test_counterpart_who_joined_after_the_export_cut_is_quarantined(tmp_path):
    # Cut at 2024-03-01: m3 joined on 2024-03-10, so the export has no m3, but two of the 400
    # activities before the cut name m3 as their counterpart (0.5 % <= the default 1 %).
    members = "member_id,joined_at\nm1,2024-01-01\nm2,2024-01-02\n"
    rows = [f"m{1 + i % 2},2024-02-{1 + i % 28:02d},message,m{2 - i % 2}" for i in range(400)]
    rows[99] = "m1,2024-02-28,message,m3"  # line 101
    rows[299] = "m2,2024-02-28,message,m3"  # line 301
    activities = "member_id,occurred_at,activity_type,counterpart_id\n" + "\n".join(rows)
    source = write_source(tmp_path / "src", members=members, activities=activities + "\n")
    line = problem_line(contract_message(source), "column counterpart_id")
    assert "2 rows where counterpart_id is not in members.csv" in line

    qdir = tmp_path / "q"
    tables = load_tables(source, on_invalid="quarantine", quarantine_dir=qdir)
    assert len(tables.activities) == 398 and len(tables.members) == 2
    assert tables.quarantine.rows_quarantined["activities"] == 2
    assert tables.quarantine.by_rule["activities"] == {"unknown_counterpart": 2}
    assert tables.quarantine.lines() == [
        f"activities: 2 of 400 rows quarantined (0.50%): unknown_counterpart 2 -> "
        f"{qdir / 'activities.quarantine.csv'}"
    ]
    rejected = quarantine_csv(qdir, "activities")
    assert rejected["counterpart_id"].tolist() == ["m3", "m3"]
    assert rejected["detail"].str.contains("column counterpart_id").all()
    assert rejected["detail"].str.extract(r"line (\d+)")[0].tolist() == ["101", "301"]


def test_table_level_problems_still_refuse_in_quarantine_mode(tmp_path):
    source = good_source(
        tmp_path / "src", members="member_id,chapter_id\nm1,c1\n", activities=MESSY_ACTIVITIES
    )
    with pytest.raises(ContractError) as info:
        load_tables(source, on_invalid="quarantine", max_invalid_share=1, quarantine_dir=tmp_path)
    assert "missing required column joined_at" in str(info.value)
    assert not list(tmp_path.glob("*.quarantine.csv"))
    only_members = write_source(tmp_path / "only-members", members=MEMBERS)
    with pytest.raises(ContractError, match="activities: required table is missing"):
        load_tables(only_members, on_invalid="quarantine", quarantine_dir=tmp_path)
    assert not list(tmp_path.glob("*.quarantine.csv"))


def test_a_clean_quarantine_load_writes_nothing_and_clears_stale_files(tmp_path):
    qdir = tmp_path / "q"
    qdir.mkdir()
    (qdir / "activities.quarantine.csv").write_text("old\n", encoding="utf-8")
    (qdir / "notes.txt").write_text("mine\n", encoding="utf-8")
    source = good_source(tmp_path / "src")
    tables = load_tables(source, on_invalid="quarantine", quarantine_dir=qdir)
    assert tables.quarantine.total_quarantined == 0 and tables.quarantine.paths == {}
    assert tables.quarantine.lines() == []
    assert sorted(p.name for p in qdir.iterdir()) == ["notes.txt"]


def test_quarantine_without_a_folder_counts_but_writes_nothing(tmp_path):
    source = good_source(tmp_path / "src", activities=MESSY_ACTIVITIES)
    tables = load_tables(source, on_invalid="quarantine", max_invalid_share=0.5)
    assert tables.quarantine.rows_quarantined["activities"] == 2
    assert tables.quarantine.paths == {}
    assert not list(tmp_path.rglob("*.quarantine.csv"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_invalid": "lenient"}, "on_invalid: expected one of strict, quarantine, got"),
        ({"on_invalid": "quarantine", "max_invalid_share": 1.5}, "max_invalid_share: expected"),
        ({"on_invalid": "quarantine", "max_invalid_share": -0.1}, "between 0 and 1"),
    ],
)
def test_invalid_quarantine_options_are_config_errors(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        load_tables(good_source(tmp_path / "src"), **kwargs)


def test_a_missing_database_driver_names_the_extra_that_installs_it(monkeypatch):
    import sqlalchemy

    def no_driver(url, *args, **kwargs):
        raise ModuleNotFoundError("No module named 'psycopg2'", name="psycopg2")

    monkeypatch.setattr(sqlalchemy, "create_engine", no_driver)
    with pytest.raises(ContractError) as info:
        load_tables("postgresql+psycopg2://crm:secret@127.0.0.1:5432/community")
    message = str(info.value)
    assert "the postgresql driver 'psycopg2' is not installed" in message
    assert "pip install 'corecast[postgres]'" in message and "secret" not in message

    def no_other_driver(url, *args, **kwargs):
        raise ModuleNotFoundError("No module named 'pg8000'", name="pg8000")

    monkeypatch.setattr(sqlalchemy, "create_engine", no_other_driver)
    with pytest.raises(ContractError) as info:
        load_tables("postgresql+pg8000://crm@127.0.0.1:5432/community")
    message = " ".join(str(info.value).split())
    # The extra does not install pg8000: the message says what does, and which URL the extra fits.
    assert "install the Python package 'pg8000'" in message
    assert "write the URL postgresql+psycopg2://... and pip install 'corecast[postgres]'" in message


def test_a_nul_byte_in_an_email_is_refused_or_set_aside_never_loaded(tmp_path):
    members = ("member_id,joined_at,email\n"
               "a,2024-01-01,a@example.org\nb,2024-01-02,b\x00@example.org\n")
    acts = "member_id,occurred_at,activity_type\na,2024-02-01,attend\n"
    source = write_source(tmp_path / "src", members=members, activities=acts)
    line = problem_line(contract_message(source), "column email")
    assert "control character (such as a NUL byte)" in line and "line 3" in line
    tables = load_tables(source, on_invalid="quarantine", max_invalid_share=0.5,
                         quarantine_dir=tmp_path / "q")
    assert tables.members["member_id"].tolist() == ["a"]
    assert not tables.members["email"].str.contains("\x00").any()
    set_aside = pd.read_csv(tmp_path / "q" / "members.quarantine.csv")
    assert set_aside["rule"].tolist() == ["control"]
    # The file shows the byte instead of holding it: it opens in any editor.
    assert set_aside["email"].tolist() == ["b\\x00@example.org"]
    assert b"\x00" not in (tmp_path / "q" / "members.quarantine.csv").read_bytes()


def test_an_activity_dated_in_the_future_is_refused_or_set_aside(tmp_path):
    members = "member_id,joined_at\na,2024-01-01\nb,2024-01-02\n"
    acts = ("member_id,occurred_at,activity_type\na,2024-02-01,attend\n"
            "b,2099-02-01,attend\nb,2024-03-05,attend\n")
    source = write_source(tmp_path / "src", members=members, activities=acts)
    now = pd.Timestamp("2024-03-10")
    with pytest.raises(ContractError) as info:
        load_tables(source, now=now)
    line = problem_line(str(info.value), "column occurred_at")
    assert "in the future (on or after 2024-03-12; this run is on 2024-03-10)" in line
    assert "line 3" in line and "2099-02-01" in line
    tables = load_tables(source, on_invalid="quarantine", max_invalid_share=0.5,
                         quarantine_dir=tmp_path / "q", now=now)
    # one row dated 2099 no longer moves the data's end (the default scoring date) to 2099
    assert tables.last_observed == pd.Timestamp("2024-03-05")
    assert pd.read_csv(tmp_path / "q" / "activities.quarantine.csv")["rule"].tolist() == [
        "future"
    ]
    # tomorrow is not the future: a run late in the day sees activities time-stamped in UTC
    assert len(load_tables(source.parent / "src", now=pd.Timestamp("2099-01-31")).activities) == 3


@pytest.mark.parametrize(
    ("source", "moved", "secrets"),
    [
        ("postgresql://bob:p%40ss@db.local/c", "postgresql://bob:${CORECAST_DATA_PASSWORD}@db.local/c",
         {"CORECAST_DATA_PASSWORD": "p@ss"}),
        ("postgresql://bob:${MINE}@db.local/c", "postgresql://bob:${MINE}@db.local/c", {}),
        ("postgresql://bob@db.local/c", "postgresql://bob@db.local/c", {}),
        ("postgresql://bob@db.local/c?sslpassword=x%26y&sslmode=require",
         "postgresql://bob@db.local/c?sslmode=require"
         "&sslpassword=${CORECAST_DATA_PASSWORD_SSLPASSWORD}",
         {"CORECAST_DATA_PASSWORD_SSLPASSWORD": "x&y"}),
        ("sqlite:///tmp/c.db", "sqlite:///tmp/c.db", {}),
        ("data/folder", "data/folder", {}),
    ],
)
def test_a_literal_password_moves_out_of_the_url_and_nothing_else_does(source, moved, secrets):
    assert password_to_environment(source) == (moved, secrets)


# ------------------------------------------------------------------------------------ outreach

OUTREACH = """\
member_id,contacted_at,purpose,outcome,outcome_at,channel,contacted_by
m1,2024-03-01T10:00:00,Readiness,accepted,2024-03-04,phone,lea
m2,2024-03-02,retention,No answer,,,
007,2024-03-03,retention,pending,,email,
"""


def test_outreach_loads_with_its_vocabulary_normalised(tmp_path):
    tables = load_tables(good_source(tmp_path / "src", outreach=OUTREACH))
    out = tables.outreach
    assert list(out.columns) == OUTREACH_COLUMNS
    assert out["member_id"].tolist() == ["m1", "m2", "007"]
    assert out["purpose"].tolist() == ["readiness", "retention", "retention"]
    assert out["outcome"].tolist() == ["accepted", "no_answer", "pending"]
    assert out["outcome_at"].iloc[0] == pd.Timestamp("2024-03-04")
    assert out["outcome_at"].iloc[1:].isna().all()
    assert out["channel"].tolist()[0] == "phone" and pd.isna(out["channel"].iloc[1])


def test_outreach_is_optional(tmp_path):
    assert load_tables(good_source(tmp_path / "src")).outreach is None


def test_outreach_rules_name_file_line_and_column(tmp_path):
    folder = good_source(
        tmp_path / "src",
        outreach=(
            "member_id,contacted_at,purpose,outcome,outcome_at\n"
            "m1,2024-03-01,readiness,accepted,2024-03-04\n"
            "m1,2024-03-01,recruitment,accepted,\n"  # line 3: unknown purpose
            "m2,2024-03-01,retention,maybe,\n"  # line 4: unknown outcome
            "ghost,2024-03-01,retention,pending,\n"  # line 5: unknown member
            "m2,2024-03-05,retention,declined,2024-03-01\n"  # line 6: outcome before contact
            "m2,2099-01-01,retention,pending,\n"  # line 7: in the future
        ),
    )
    message = contract_message(folder)
    line = problem_line(message, "outreach.csv, column purpose")
    assert "where purpose is not one of readiness/retention" in line
    assert "line 3: 'recruitment'" in line
    line = problem_line(message, "outreach.csv, column outcome:")
    assert "where outcome is not one of accepted/declined/no_answer/pending" in line
    assert "line 4: 'maybe'" in line
    assert "line 5: 'ghost'" in problem_line(message, "outreach.csv, column member_id")
    line = problem_line(message, "outreach.csv, column outcome_at")
    assert "where outcome_at is before contacted_at" in line
    assert "line 6" in line
    assert "line 7: '2099-01-01'" in problem_line(message, "outreach.csv, column contacted_at")


def test_outreach_missing_required_column(tmp_path):
    folder = good_source(
        tmp_path / "src", outreach="member_id,contacted_at,purpose\nm1,2024-03-01,readiness\n"
    )
    line = problem_line(contract_message(folder), "outreach.csv")
    assert "missing required column outcome" in line


def test_outreach_invalid_rows_can_be_quarantined(tmp_path):
    folder = good_source(
        tmp_path / "src",
        outreach=(
            "member_id,contacted_at,purpose,outcome\n"
            + "m1,2024-03-01,readiness,accepted\n" * 9
            + "m2,2024-03-01,retention,maybe\n"
        ),
    )
    tables = load_tables(folder, on_invalid="quarantine", max_invalid_share=0.2)
    assert len(tables.outreach) == 9
    assert tables.quarantine.by_rule["outreach"] == {"choice": 1}


def test_outreach_round_trips_through_write_tables(tmp_path):
    tables = load_tables(good_source(tmp_path / "src", outreach=OUTREACH))
    for fmt in ("parquet", "csv"):
        write_tables(tables, tmp_path / fmt, fmt=fmt)
        back = load_tables(tmp_path / fmt)
        pd.testing.assert_frame_equal(back.outreach, tables.outreach)


def test_outreach_from_sql(tmp_path):
    sqlalchemy = pytest.importorskip("sqlalchemy")
    tables = load_tables(good_source(tmp_path / "src", outreach=OUTREACH))
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.begin() as connection:
        for name in ("members", "activities", "outreach"):
            getattr(tables, name).to_sql(name, connection, index=False)
    back = load_tables(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert back.outreach["outcome"].tolist() == ["accepted", "no_answer", "pending"]
