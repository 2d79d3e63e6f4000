"""Partitioned feature building on a Dask task runner equals the single-process build."""

from __future__ import annotations

import pandas as pd
import pytest

from features.build import build_features
from features.contract import load_tables
from features.errors import ConfigError
from features.feature_config import FeatureConfig, resolve_vocabulary
from pipelines.scale import build_dask_runner, build_features_scaled
from serving.score import default_as_of


def test_runner_uses_the_given_address_or_a_local_cluster():
    remote = build_dask_runner("tcp://127.0.0.1:8786")
    assert remote.address == "tcp://127.0.0.1:8786"
    local = build_dask_runner(n_workers=2)
    assert local.address is None
    assert local.cluster_kwargs["n_workers"] == 2
    assert local.cluster_kwargs["threads_per_worker"] == 1


@pytest.mark.slow
def test_dask_flow_equals_single_process(prefect_harness, community):
    tables = load_tables(community)
    as_of = default_as_of(tables)
    expected = build_features(tables, as_of, resolve_vocabulary(tables, as_of, FeatureConfig()))
    got = build_features_scaled(community, None, FeatureConfig(), n_parts=3, n_workers=2)
    assert len(got) == len(expected) > 1000
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_bad_part_count_is_a_config_error(community):
    from pipelines.scale import build_features_partitioned_flow

    with pytest.raises(ConfigError, match="n_parts"):
        build_features_partitioned_flow.fn(community, None, FeatureConfig(), 0)
