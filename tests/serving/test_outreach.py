"""The control group: who to contact and who to hold back, reproducibly per member and cycle."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from features.errors import ConfigError
from serving.outreach import OutreachConfig, assign_actions, hold_draw


def test_the_draw_is_the_members_hash_for_the_cycle():
    digest = hashlib.sha256(b"2024-05-06\x1fm1").digest()
    expected = int.from_bytes(digest[:8], "big") / 2**64
    assert hold_draw(pd.Series(["m1"]), "2024-05-06")[0] == expected


def test_only_flagged_members_are_contacted_or_held():
    ids = pd.Series(["a", "b", "c", "d"])
    segments = pd.Series(["ready-now", "steady", "at-risk", "nurture"])
    actions = assign_actions(ids, segments, "2024-05-06", OutreachConfig(holdout_share=0.0))
    assert actions.tolist() == ["contact", "none", "contact", "none"]
    everyone_held = OutreachConfig(holdout_share=0.999999)
    assert assign_actions(ids, segments, "2024-05-06", everyone_held).tolist() == [
        "hold", "none", "hold", "none"
    ]


def test_the_held_share_is_the_one_asked_and_stable_per_member_and_cycle():
    ids = pd.Series([f"m{i}" for i in range(20_000)])
    flagged = pd.Series(["at-risk"] * len(ids))
    config = OutreachConfig(holdout_share=0.1)
    actions = assign_actions(ids, flagged, "2024-05-06", config)
    assert 0.09 < (actions == "hold").mean() < 0.11
    # The same member in the same cycle: the same answer, whoever else is scored, in any order.
    some = ids.iloc[::7].iloc[::-1]
    again = assign_actions(some, flagged.loc[some.index], "2024-05-06", config)
    assert again.tolist() == actions.loc[some.index].tolist()
    # A new cycle draws anew.
    later = assign_actions(ids, flagged, "2024-05-13", config)
    assert 0.8 < (later == actions).mean() < 0.85  # ~0.9 * 0.9 + 0.1 * 0.1 agree by chance


@pytest.mark.parametrize("share", [-0.1, 1.0, True])
def test_a_share_outside_0_1_is_refused(share):
    with pytest.raises(ConfigError, match="--holdout-share"):
        OutreachConfig(holdout_share=share)
