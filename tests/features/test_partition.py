"""Member partitions: stable hashing and partitioned features equal to the single-process ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import build_features
from features.errors import ConfigError
from features.feature_config import FeatureConfig, resolve_vocabulary
from features.partition import (
    build_features_for_members,
    build_features_partitioned,
    build_network_features_for,
    partition_of,
)
from tests.features.conftest import MEMBERS, T, random_tables

CFG = FeatureConfig(activity_types=("attend", "organize"), roles=("attendee", "organizer"))


def test_partition_of_is_stable_and_covers_every_member():
    ids = [f"m{i}" for i in range(1000)]
    parts = partition_of(ids, 4)
    assert parts.dtype == np.int64
    assert set(parts.tolist()) == {0, 1, 2, 3}
    # Same id -> same part, whatever the order or container.
    again = partition_of(pd.Index(ids[::-1]), 4)[::-1]
    np.testing.assert_array_equal(parts, again)
    # Text and numbers with the same spelling share a part.
    assert partition_of([42], 7)[0] == partition_of(["42"], 7)[0]
    # Roughly balanced: 1,000 ids in 4 parts, each far from empty.
    counts = np.bincount(parts, minlength=4)
    assert counts.min() > 180 and counts.sum() == 1000
    # One part holds everybody.
    assert partition_of(ids, 1).tolist() == [0] * 1000


@pytest.mark.parametrize("n_parts, part", [(0, 0), (2, 2), (2, -1), (True, 0), (2.5, 0)])
def test_bad_partition_is_a_config_error(community, n_parts, part):
    with pytest.raises(ConfigError, match="partitions"):
        build_features_partitioned(community, T, CFG, n_parts, part)


def test_network_of_some_members_matches_hand_computed(community):
    # Codes 0 and 2 are A and C (members-table order). From test_build.test_network:
    # A: co-participants D, B, C, direct B, ties 3; C: co A, B, direct D, ties 3.
    f = build_network_features_for(community, T, CFG, np.array([2, 0]))
    assert f.index.tolist() == ["C", "A"]
    assert f["net_coparticipants"].tolist() == [2, 3]
    assert f["net_direct_ties"].tolist() == [1, 1]
    assert f["net_ties"].tolist() == [3, 3]
    assert f["net_ties_outside_chapter"].tolist() == [3, 1]


@pytest.mark.parametrize("n_parts", [1, 2, 3])
def test_partitions_concatenate_to_build_features(community, n_parts):
    full = build_features(community, T, CFG)
    parts = [build_features_partitioned(community, T, CFG, n_parts, k) for k in range(n_parts)]
    assert sum(len(p) for p in parts) == len(MEMBERS)
    assert all(list(p.columns) == list(full.columns) for p in parts)
    for k, p in enumerate(parts):
        assert (partition_of(p.index, n_parts) == k).all()
    joined = pd.concat(parts).reindex(full.index)
    pd.testing.assert_frame_equal(joined, full, check_exact=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_partitions_equal_single_process_on_random_communities(seed):
    tables = random_tables(seed=seed, n_members=60, n_activities=2500)
    as_of = pd.Timestamp("2024-01-15")
    # A tiny pair budget forces several blocks per part.
    config = resolve_vocabulary(tables, as_of, FeatureConfig(block_pairs=50))
    full = build_features(tables, as_of, config)
    assert full["net_ties"].sum() > 0  # the network is not empty
    parts = [build_features_partitioned(tables, as_of, config, 4, k) for k in range(4)]
    joined = pd.concat(parts).reindex(full.index)
    pd.testing.assert_frame_equal(joined, full, check_exact=True)
    # Members-table order within each part.
    for p in parts:
        order = full.index.get_indexer(p.index)
        assert (np.diff(order) > 0).all()


def test_features_of_some_members_equal_their_rows_of_build_features():
    tables = random_tables(seed=3, n_members=60, n_activities=2500)
    as_of = pd.Timestamp("2024-01-15")
    config = resolve_vocabulary(tables, as_of, FeatureConfig(block_pairs=50))
    full = build_features(tables, as_of, config)
    wanted = list(full.index[::-3])  # every third member, in reverse order
    some = build_features_for_members(tables, as_of, config, [*wanted, "nobody"])
    expected = full.loc[full.index.isin(wanted)]  # members-table order; unknown ids ignored
    assert len(some) == len(wanted)
    pd.testing.assert_frame_equal(some, expected, check_exact=True)
    assert build_features_for_members(tables, as_of, config, []).empty
