"""Outreach in the training labels: accepted offers are positives, retention calls left out."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from features.frames import FrameConfig, build_training_frame
from features.labels import (
    LabelConfig,
    build_disengagement_labels,
    build_readiness_labels,
    build_training_labels,
    retention_contacted,
)
from features.tables import Tables
from tests.features.conftest import make_tables

CONFIG = LabelConfig(horizon_days=30, active_within_days=30, readiness_horizon_days=60)
AS_OF = pd.Timestamp("2024-03-01")


ACTIVE = [(m, "2024-02-10") for m in "abcd"] + [("a", "2024-03-10"), ("a", "2024-04-05")]


def _tables(outreach: pd.DataFrame | None) -> Tables:
    joined = "2024-01-01"
    # everybody active on 10 February; only "a" comes back (March, April); "d" has been an
    # ambassador since January and still is one
    tables = make_tables(
        members=[(m, joined, None, True) for m in "abcd"],
        activities=[(m, day, "attend", None, None, None, None, 1.0) for m, day in ACTIVE],
        roles=[("d", "ambassador", "2024-01-05", None)],
    )
    return replace(tables, outreach=outreach)


def _outreach(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["member_id", "contacted_at", "purpose", "outcome"])
    frame["contacted_at"] = pd.to_datetime(frame["contacted_at"])
    return frame


def test_without_outreach_training_labels_are_the_labels():
    tables = _tables(None)
    for target, build in (
        ("readiness", build_readiness_labels),
        ("disengagement", build_disengagement_labels),
    ):
        pd.testing.assert_series_equal(
            build_training_labels(tables, target, AS_OF, CONFIG), build(tables, AS_OF, CONFIG)
        )


def test_an_accepted_offer_in_the_window_is_a_positive():
    outreach = _outreach(
        [
            ("a", "2024-03-05", "readiness", "accepted"),  # in (as_of, as_of + 60 d]: positive
            ("b", "2024-03-05", "readiness", "declined"),  # declined: not a positive
            ("c", "2024-02-20", "readiness", "accepted"),  # before as_of: not this window's
            ("d", "2024-03-05", "readiness", "accepted"),  # holds the role: not eligible
        ]
    )
    y = build_training_labels(_tables(outreach), "readiness", AS_OF, CONFIG)
    assert y.to_dict() == {"a": True, "b": False, "c": False}
    assert y.name == "ready"


def test_members_called_to_stay_are_left_out_around_the_snapshot():
    outreach = _outreach(
        [
            ("b", "2024-03-20", "retention", "accepted"),  # in the label window: left out
            ("c", "2024-02-05", "retention", "no_answer"),  # 25 days before as_of: left out
            ("a", "2024-01-15", "retention", "accepted"),  # 46 days before: kept
            ("d", "2024-03-20", "readiness", "declined"),  # not a retention call: kept
        ]
    )
    tables = _tables(outreach)
    assert list(retention_contacted(tables, AS_OF, CONFIG)) == ["b", "c"]
    y = build_training_labels(tables, "disengagement", AS_OF, CONFIG)
    # a came back in March (not disengaged); d never did
    assert y.to_dict() == {"a": False, "d": True}


def test_the_training_frame_counts_the_rows_left_out():
    outreach = _outreach([("b", "2024-03-20", "retention", "accepted")])
    frame = build_training_frame(
        _tables(outreach),
        "disengagement",
        CONFIG,
        FrameConfig(snapshots=1, every_days=30, until=AS_OF, warmup_days=30),
    )
    assert frame.outreach_left_out == 1
    assert sorted(frame.data["member_id"]) == ["a", "c", "d"]
