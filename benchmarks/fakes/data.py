"""Predictions tables for CRM push tests and the push benchmark (vectorised, deterministic)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["make_predictions", "change_scores"]

SEGMENTS = np.array(["ready-now", "nurture", "ambassador-at-risk", "at-risk", "steady"])


def make_predictions(n: int, *, seed: int = 0, email_missing_every: int = 0) -> pd.DataFrame:
    """Build ``n`` predictions with the full contract columns.

    Args:
        n: Number of members (``m000000``, ``m000001``, …).
        seed: Random seed of the scores.
        email_missing_every: When > 0, every k-th member (k-1, 2k-1, …) has no email.
    """
    rng = np.random.default_rng(seed)
    ids = pd.Series(np.char.add("m", np.char.zfill(np.arange(n).astype(str), 6)), dtype="str")
    email = ids + "@members.test"
    if email_missing_every:
        email = email.where((np.arange(n) + 1) % email_missing_every != 0)
    chapter = pd.Series(np.char.add("c", (np.arange(n) % 7).astype(str)), dtype="str")
    readiness = rng.random(n).round(6)
    eligible = rng.random(n) > 0.1
    readiness = np.where(eligible, readiness, np.nan)
    frame = pd.DataFrame({
        "member_id": ids,
        "email": email.astype("str"),
        "chapter_id": chapter,
        "as_of": pd.Timestamp("2024-05-06"),
        "readiness_score": readiness,
        "disengagement_score": np.where(eligible, rng.random(n).round(6), np.nan),
        "segment": pd.Series(SEGMENTS[np.arange(n) % len(SEGMENTS)], dtype="str"),
        "reasons": pd.Series(
            np.where(eligible, "Came to 4 events in 90 days; Hosted a workshop", ""), dtype="str"
        ),
        "readiness_model_version": "3",
        "disengagement_model_version": "5",
        "readiness_method": "model",
        "readiness_validated": True,
        "disengagement_method": "rule:silence_vs_rhythm",
        "disengagement_validated": False,
        "run_id": "run-1",
        "scored_at": pd.Timestamp("2024-05-06 07:00:00"),
    })
    frame["readiness_rank"] = (
        frame.groupby("chapter_id")["readiness_score"]
        .rank(ascending=False, method="first")
        .astype("Int64")
    )
    frame["reasons"] = frame["reasons"].where(frame["reasons"] != "")
    return frame


def change_scores(frame: pd.DataFrame, fraction: float, *, seed: int = 1) -> pd.DataFrame:
    """Return a copy where ``fraction`` of the eligible members get a new readiness score."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    eligible = np.flatnonzero(out["readiness_score"].notna().to_numpy())
    k = int(round(fraction * len(frame)))
    chosen = rng.choice(eligible, size=min(k, len(eligible)), replace=False)
    column = out.columns.get_loc("readiness_score")
    old = out.iloc[chosen, column].to_numpy()
    out.iloc[chosen, column] = np.round((old + 0.25) % 1.0, 6)
    return out
