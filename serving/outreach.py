"""Who to contact this cycle, and who to hold back: the control group that measures the effect.

Each scoring flags members a community manager should reach out to (ready-now candidates and
members at risk, :data:`FLAGGED_SEGMENTS`). A reproducible share of them (``holdout_share``) is
held back: their ``action`` is ``hold`` — do not call them this cycle — and comparing what happens
to contacted and held members later measures what the calls change. Everyone else gets ``none``.

The assignment is a hash of the member id and the cycle (the scoring date), not a random state:
the same member in the same cycle is always assigned the same way, whatever else is scored, on
any machine, and a new cycle draws anew.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.errors import ConfigError
from serving.delivery import DEFAULT_HOLDOUT_SHARE

__all__ = ["ACTIONS", "FLAGGED_SEGMENTS", "OutreachConfig", "assign_actions", "hold_draw"]

#: Values of the ``action`` column.
ACTIONS = ("contact", "hold", "none")
#: Segments whose members a manager reaches out to.
FLAGGED_SEGMENTS = ("ready-now", "at-risk", "ambassador-at-risk")


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
