"""Who to contact this cycle, and who to hold back: the control group that measures the effect.

Each scoring flags members a community manager should reach out to (ready-now candidates and
members at risk, :data:`FLAGGED_SEGMENTS`). A reproducible share of them (``holdout_share``) is
held back: their ``action`` is ``hold`` — do not call them this cycle — and comparing what happens
to contacted and held members later measures what the calls change. Everyone else gets ``none``.

The assignment is a hash of the member id and the cycle (the scoring date), not a random state:
the same member in the same cycle is always assigned the same way, whatever else is scored, on
any machine, and a new cycle draws anew.

The assignment log keeps, per cycle, who was flagged and whether they were to be contacted or
held: one Parquet file per cycle, ``<folder>/<YYYY-MM-DD>.parquet`` (columns
:data:`ASSIGNMENT_COLUMNS`; only the ``contact`` and ``hold`` rows). :func:`write_assignments`
writes one cycle atomically (writing the same cycle again replaces it) and
:func:`read_assignments` reads the whole log back, validated. Measuring what the calls changed
(:mod:`serving.measure`) starts from it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import ConfigError
from features.io import write_parquet_atomic
from features.tables import parse_as_of
from serving.delivery import DEFAULT_HOLDOUT_SHARE
from serving.segments import SEGMENTS

__all__ = [
    "ACTIONS",
    "ASSIGNMENT_COLUMNS",
    "FLAGGED_SEGMENTS",
    "OutreachConfig",
    "assign_actions",
    "hold_draw",
    "assignment_path",
    "write_assignments",
    "read_assignments",
]

#: Values of the ``action`` column.
ACTIONS = ("contact", "hold", "none")
#: Segments whose members a manager reaches out to.
FLAGGED_SEGMENTS = ("ready-now", "at-risk", "ambassador-at-risk")
#: Columns of the assignment log, in order (``chapter_id`` is missing when the data has none).
ASSIGNMENT_COLUMNS = [
    "member_id",
    "cycle",
    "segment",
    "action",
    "readiness_score",
    "disengagement_score",
    "chapter_id",
]
_REQUIRED = ASSIGNMENT_COLUMNS[:-1]
_CYCLE_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.parquet$")


@dataclass(frozen=True)
class OutreachConfig:
    """Settings of the control group.

    Attributes:
        holdout_share: Share of the flagged members held back each cycle (0 = none, everyone
            flagged is to contact).
    """

    holdout_share: float = DEFAULT_HOLDOUT_SHARE

    def __post_init__(self) -> None:
        share = self.holdout_share
        if isinstance(share, bool) or not 0.0 <= share < 1.0:
            raise ConfigError(f"--holdout-share must be in [0, 1), got {share!r}")


def hold_draw(member_ids: pd.Series, cycle: str) -> np.ndarray:
    """A uniform number in [0, 1) per member, fixed by the member id and the cycle."""
    draws = np.empty(len(member_ids), dtype=np.float64)
    for i, member in enumerate(member_ids.astype(str)):
        digest = hashlib.sha256(f"{cycle}\x1f{member}".encode()).digest()
        draws[i] = int.from_bytes(digest[:8], "big") / 2.0**64
    return draws


def assign_actions(
    member_ids: pd.Series, segments: pd.Series, cycle: str, config: OutreachConfig
) -> pd.Series:
    """``contact``, ``hold`` or ``none`` per member (see the module docstring).

    Args:
        member_ids: The members' ids.
        segments: Their segments (same index).
        cycle: The cycle the assignment is for (the scoring date, ``YYYY-MM-DD``).
        config: The holdout share.
    """
    flagged = segments.isin(FLAGGED_SEGMENTS).to_numpy()
    held = np.zeros(len(flagged), dtype=bool)
    if config.holdout_share > 0:  # draw only for the flagged few, not every member
        held[flagged] = hold_draw(member_ids[flagged], cycle) < config.holdout_share
    action = np.where(held, "hold", np.where(flagged, "contact", "none"))
    return pd.Series(action, index=member_ids.index, dtype=object)


def assignment_path(folder: str | Path, cycle) -> Path:
    """The file of one cycle in an assignment log folder: ``<folder>/<YYYY-MM-DD>.parquet``."""
    return Path(folder) / f"{parse_as_of(cycle).date().isoformat()}.parquet"


def write_assignments(frame: pd.DataFrame, folder: str | Path, cycle) -> Path:
    """Write one cycle of the assignment log (atomically; the cycle's previous file is replaced).

    Args:
        frame: One row per scored member with ``member_id``, ``segment``, ``action``,
            ``readiness_score``, ``disengagement_score`` and, when known, ``chapter_id``; only the
            rows whose action is ``contact`` or ``hold`` are kept.
        folder: The assignment log folder (created if missing).
        cycle: The cycle: the scoring date (anything :func:`~features.tables.parse_as_of` reads;
            only the day is kept).

    Returns:
        The file written.

    Raises:
        ConfigError: If a required column is missing or an action is unknown.
    """
    missing = [c for c in _REQUIRED if c != "cycle" and c not in frame.columns]
    if missing:
        raise ConfigError(f"assignments: missing columns {missing}; expected {_REQUIRED}")
    unknown = sorted(set(frame["action"].astype(str)) - set(ACTIONS))
    if unknown:
        raise ConfigError(f"assignments: unknown actions {unknown}; expected one of {ACTIONS}")
    day = parse_as_of(cycle).normalize()
    kept = frame[frame["action"].isin(ACTIONS[:2])]
    out = pd.DataFrame({
        "member_id": kept["member_id"].astype("str").to_numpy(),
        "cycle": pd.Series(day, index=range(len(kept)), dtype="datetime64[ns]"),
        "segment": kept["segment"].astype("str").to_numpy(),
        "action": kept["action"].astype("str").to_numpy(),
        "readiness_score": kept["readiness_score"].to_numpy(dtype=float, na_value=np.nan),
        "disengagement_score": kept["disengagement_score"].to_numpy(dtype=float, na_value=np.nan),
    })
    if "chapter_id" in kept.columns:
        out["chapter_id"] = kept["chapter_id"].astype("str").to_numpy()
    return write_parquet_atomic(out, assignment_path(folder, day))


def _check_log_file(path: Path, frame: pd.DataFrame) -> None:
    """Raise ConfigError naming ``path`` when ``frame`` is not one cycle of an assignment log."""
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"{path}: not an assignment log file (missing columns {missing}; expected "
            f"{_REQUIRED} and optionally chapter_id)"
        )
    problems = []
    if not pd.api.types.is_datetime64_any_dtype(frame["cycle"]):
        problems.append("cycle is not a date")
    elif len(frame) and (frame["cycle"] != pd.Timestamp(path.stem)).any():
        problems.append(f"its cycle column is not {path.stem}")
    bad_action = sorted(set(frame["action"].dropna().astype(str)) - set(ACTIONS[:2]))
    if bad_action or frame["action"].isna().any():
        problems.append(f"actions other than contact/hold: {bad_action or ['<missing>']}")
    bad_segment = sorted(set(frame["segment"].dropna().astype(str)) - set(SEGMENTS))
    if bad_segment:
        problems.append(f"unknown segments {bad_segment}")
    if frame["member_id"].isna().any() or frame["member_id"].duplicated().any():
        problems.append("member_id missing or repeated")
    for name in ("readiness_score", "disengagement_score"):
        if not pd.api.types.is_numeric_dtype(frame[name]):
            problems.append(f"{name} is not numeric")
    if problems:
        raise ConfigError(f"{path}: not a valid assignment log file: {'; '.join(problems)}")


def read_assignments(folder: str | Path) -> pd.DataFrame:
    """Read a whole assignment log back, every cycle, validated.

    Args:
        folder: The folder :func:`write_assignments` wrote to. Files whose name is not
            ``YYYY-MM-DD.parquet`` (hidden files, temporary files of a write in progress) are
            ignored.

    Returns:
        The rows of every cycle (:data:`ASSIGNMENT_COLUMNS`; ``chapter_id`` is missing where a
        cycle had none), sorted by cycle then member; empty when the folder has no cycle yet.

    Raises:
        ConfigError: If ``folder`` is not a folder, or a file is not an assignment log file (the
            message names it).
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ConfigError(f"{root}: no assignment log folder here")
    frames = []
    for path in sorted(p for p in root.iterdir() if _CYCLE_FILE.match(p.name)):
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is named to the user
            raise ConfigError(f"{path}: not an assignment log file ({exc})") from exc
        _check_log_file(path, frame)
        frames.append(frame)
    if not frames:
        empty = {c: pd.Series(dtype="str") for c in ASSIGNMENT_COLUMNS}
        empty["cycle"] = pd.Series(dtype="datetime64[ns]")
        empty["readiness_score"] = empty["disengagement_score"] = pd.Series(dtype=float)
        return pd.DataFrame(empty)
    log = pd.concat(frames, ignore_index=True)
    columns = [c for c in ASSIGNMENT_COLUMNS if c in log.columns]
    return log[columns].sort_values(["cycle", "member_id"], ignore_index=True)
