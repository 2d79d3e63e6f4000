"""Segments: one action-oriented label per scored member.

The segments, checked in this order (the first that applies wins):

============================  =====================================================================
``ambassador-at-risk``        holds the core role and ``disengagement_score >= at_risk``
``ready-now``                 not holding the role, within the top ``chapter_capacity`` readiness
                              ranks of their chapter, ``readiness_score >= ready_min``, and not
                              having declined an offer in the last ``declined_pause_days``
``at-risk``                   ``disengagement_score >= at_risk``
``nurture``                   ``readiness_score >= nurture_min`` (promising, not yet first in line)
``ambassador``                holds the core role, not at risk
``steady``                    active recently, no flag above
``dormant``                   no activity in the eligibility window (not scored for risk)
============================  =====================================================================

The thresholds live in :class:`SegmentConfig` and are logged with every scoring run.

A member who declined the core role when a manager offered it (an ``outreach`` row with purpose
``readiness`` and outcome ``declined``, :func:`declined_offer`) is not ``ready-now`` again for
``declined_pause_days`` after the answer: calling them back next week would not be heard. They
can still be ``nurture``, ``at-risk`` or anything else that applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.errors import ConfigError

__all__ = [
    "SEGMENTS",
    "SegmentConfig",
    "assign_segments",
    "declined_offer",
    "rank_within_chapter",
]

SEGMENTS = (
    "ambassador-at-risk",
    "ready-now",
    "at-risk",
    "nurture",
    "ambassador",
    "steady",
    "dormant",
)


@dataclass(frozen=True)
class SegmentConfig:
    """Thresholds of the segments.

    Attributes:
        chapter_capacity: Candidates each chapter can approach personally (``ready-now`` slots).
        ready_min: Minimum readiness probability for ``ready-now``.
        nurture_min: Minimum readiness probability for ``nurture``.
        at_risk: Disengagement probability at or above which a member is ``at-risk``.
        declined_pause_days: Days after declining an offer of the core role during which a
            member is not ``ready-now`` (0: no pause).
    """

    chapter_capacity: int = 3
    ready_min: float = 0.10
    nurture_min: float = 0.03
    at_risk: float = 0.60
    declined_pause_days: int = 180

    def __post_init__(self) -> None:
        if self.chapter_capacity < 0:
            raise ConfigError("chapter_capacity must be >= 0")
        if isinstance(self.declined_pause_days, bool) or self.declined_pause_days < 0:
            raise ConfigError(
                f"declined_pause_days must be a whole number of days >= 0, got "
                f"{self.declined_pause_days!r}"
            )
        for name in ("ready_min", "nurture_min", "at_risk"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be a probability in [0, 1], got {value}")


def rank_within_chapter(scores: pd.Series, chapters: pd.Series) -> pd.Series:
    """Rank scores within each chapter (1 = highest); NaN scores get no rank.

    Members without a chapter are ranked together as one group. Ties are broken by order of
    appearance (``method="first"``) so ranks within a chapter are unique.

    Returns:
        An ``Int64`` Series aligned with ``scores``.
    """
    groups = chapters.astype("string").fillna("<no chapter>")
    ranks = scores.groupby(groups, sort=False).rank(method="first", ascending=False)
    return ranks.round().astype("Int64")


def assign_segments(
    frame: pd.DataFrame, config: SegmentConfig = SegmentConfig()
) -> pd.Series:
    """Assign each scored member one segment.

    Args:
        frame: Columns ``readiness_score`` and ``disengagement_score`` (NaN when the member is not
            eligible for that target), ``readiness_rank`` (rank within chapter) and
            ``holds_core_role`` (bool); optionally ``declined_offer`` (bool, see
            :func:`declined_offer`).
        config: Segment thresholds.

    Returns:
        A string Series of segment names aligned with ``frame``.
    """
    ready = frame["readiness_score"].to_numpy(dtype=float, na_value=np.nan)
    risk = frame["disengagement_score"].to_numpy(dtype=float, na_value=np.nan)
    rank = frame["readiness_rank"].to_numpy(dtype=float, na_value=np.nan)
    core = frame["holds_core_role"].to_numpy(dtype=bool)
    paused = np.zeros(len(frame), dtype=bool)
    if "declined_offer" in frame:
        paused = frame["declined_offer"].to_numpy(dtype=bool)
    with np.errstate(invalid="ignore"):
        at_risk = risk >= config.at_risk
        candidate = ~core & ~paused & (rank <= config.chapter_capacity)
        conditions = [
            core & at_risk,
            candidate & (ready >= config.ready_min),
            at_risk,
            ready >= config.nurture_min,
            core,
            ~np.isnan(risk),
        ]
    labels = np.select(conditions, list(SEGMENTS[:-1]), default=SEGMENTS[-1])
    return pd.Series(labels, index=frame.index, name="segment", dtype="string")


def declined_offer(outreach: pd.DataFrame | None, when: pd.Timestamp, days: int) -> pd.Index:
    """Members who declined an offer of the core role in the ``days`` before ``when``.

    The answer's time is ``outcome_at``, or the contact's when it is not recorded.

    Args:
        outreach: The outreach table (``None``: nobody).
        when: The scoring date.
        days: The pause (0: nobody is paused).
    """
    if outreach is None or outreach.empty or days <= 0:
        return pd.Index([], dtype=object)
    answered = outreach["outcome_at"].fillna(outreach["contacted_at"])
    declined = (
        (outreach["purpose"] == "readiness")
        & (outreach["outcome"] == "declined")
        & (answered < when)
        & (answered >= when - pd.Timedelta(days=days))
    )
    return pd.Index(outreach.loc[declined.to_numpy(dtype=bool), "member_id"].unique())
