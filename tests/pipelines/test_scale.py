"""Partitioned feature building on a Dask task runner equals the single-process build."""

from __future__ import annotations

import numpy as np
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


# --- partitioned scoring ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def scoring_models(community) -> dict:
    """Two small fitted models on the community's own features: calibrated trees, a logreg."""
    from features.build import build_features
    from models.estimators import CalibratedModel, fit_calibrator
    from models.factories import build_hgb_pipeline, build_logreg_pipeline
    from models.registry import LoadedModel

    tables = load_tables(community)
    as_of = default_as_of(tables)
    config = resolve_vocabulary(tables, as_of, FeatureConfig())
    feats = build_features(tables, as_of, config)
    columns = [c for c in feats.columns if c != "has_activity"][:40] + ["net_ties", "has_ties"]
    x = feats[columns]
    noise = np.random.default_rng(0).normal(0.0, 4.0, len(feats))
    active = (feats["n_all_365d"] + noise > feats["n_all_365d"].median() + 4).astype(int)
    trees = build_hgb_pipeline(max_iter=15, min_samples_leaf=20).fit(x, active)
    calibrated = CalibratedModel(
        trees, **fit_calibrator(trees.decision_function(x), active, "isotonic")
    )
    quiet = (feats["days_since_last_activity"] > 60).astype(int)
    logreg = build_logreg_pipeline(max_iter=200).fit(x, quiet)

    def loaded(target, model):
        return LoadedModel(target=target, model=model, feature_columns=tuple(columns),
                           version="1", aliases=(), run_id="r",
                           metadata={"features": config.to_dict()})

    return {"readiness": loaded("readiness", calibrated),
            "disengagement": loaded("disengagement", logreg)}


@pytest.mark.slow
def test_partitioned_scoring_equals_single_process(prefect_harness, community, scoring_models):
    from pipelines.scale import score_members_scaled
    from serving.score import score_members

    tables = load_tables(community)
    expected = score_members(tables, None, **scoring_models, run_id="run")
    got = score_members_scaled(community, scoring_models, n_parts=2, n_workers=2, run_id="run")
    assert len(got.predictions) == len(expected.predictions) > 1000
    assert got.predictions["readiness_reasons"].ne("").sum() > 100  # reasons were computed
    assert got.predictions["disengagement_reasons"].ne("").sum() > 100
    pd.testing.assert_frame_equal(
        got.predictions.drop(columns="scored_at"),
        expected.predictions.drop(columns="scored_at"),
        check_exact=True,
    )
    pd.testing.assert_frame_equal(got.features, expected.features, check_exact=True)
    assert got.meta["segments"] == expected.meta["segments"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dask": False, "address": "tcp://127.0.0.1:8786"}, "only with --dask"),
        ({"dask": False, "n_parts": 2}, "only with --dask"),
        ({"dask": True, "n_parts": 0}, "--partitions"),
        ({"dask": True, "n_workers": 0}, "--dask-workers"),
        ({"dask": True, "address": "tcp://127.0.0.1:8786", "n_workers": 2}, "its own workers"),
        ({"dask": True, "address": "127.0.0.1:8786"}, "tcp://host"),
    ],
)
def test_dask_options_are_checked(options, message):
    from pipelines.scale import check_dask_options

    with pytest.raises(ConfigError, match=message):
        check_dask_options(**options)
    check_dask_options(True, None, 3, 2)  # a valid combination passes


def test_partitioned_scoring_needs_a_model_and_known_targets(community):
    from pipelines.scale import score_members_partitioned_flow

    with pytest.raises(ConfigError, match="no model"):
        score_members_partitioned_flow.fn(community, {"readiness": None}, n_parts=2)
    with pytest.raises(ConfigError, match="unknown target"):
        score_members_partitioned_flow.fn(community, {"churn": None}, n_parts=2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dask-address", "tcp://127.0.0.1:8786"], "--dask-address: only with --dask"),
        (["--partitions", "3"], "--partitions: only with --dask"),
        (["--dask", "--partitions", "0"], "--partitions: expected a whole number >= 1"),
        (["--dask", "--dask-workers", "-1"], "--dask-workers: expected a whole number >= 1"),
    ],
)
def test_cli_run_checks_the_dask_options_before_starting(tmp_path, args, message):
    from typer.testing import CliRunner

    from pipelines.cli import app

    result = CliRunner().invoke(app, ["run", "--data", str(tmp_path), *args])
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception).startswith(message)


@pytest.mark.slow
def test_cli_run_with_dask_writes_the_single_process_predictions(
    prefect_harness, community, scoring_models, tmp_path, monkeypatch
):
    from typer.testing import CliRunner

    from pipelines.cli import app
    from serving.score import score_members, write_predictions

    # the champions of the registry are these two models (registering is not under test here)
    monkeypatch.setattr(
        "models.registry.load_scoring_models",
        lambda readiness, disengagement: (
            scoring_models["readiness"], scoring_models["disengagement"]
        ),
    )
    import pipelines.scale

    calls = []
    scaled = pipelines.scale.score_members_scaled

    def spy(*args, **kwargs):
        calls.append((args[4], kwargs))
        return scaled(*args, **kwargs)

    monkeypatch.setattr(pipelines.scale, "score_members_scaled", spy)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["run", "--data", community, "--dask", "--partitions", "2", "--dask-workers", "2",
         "--to", "none", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert calls == [(2, {"address": None, "n_workers": 2})]  # scored on the Dask path
    got = pd.read_parquet(out / "predictions.parquet")
    single = score_members(load_tables(community), None, **scoring_models).predictions
    expected = pd.read_parquet(write_predictions(single, tmp_path / "single")[0])
    assert len(got) == len(expected) > 1000
    volatile = ["run_id", "scored_at"]
    pd.testing.assert_frame_equal(
        got.drop(columns=volatile), expected.drop(columns=volatile), check_exact=True
    )
    assert (out / "report.html").exists()


def test_flow_parameters_of_dask_scoring_are_typed_and_checked():
    from prefect.exceptions import ParameterTypeError

    from pipelines.flows import monthly_flow, weekly_flow
    from pipelines.parameters import ScaleParameters

    for flow in (weekly_flow, monthly_flow):
        ok = flow.validate_parameters(
            {"data": "d", "scale": {"dask": True, "partitions": "3", "dask_workers": 2}}
        )
        assert ok["scale"].partitions == 3 and ok["scale"].dask is True
        with pytest.raises(ParameterTypeError, match="partitions"):
            flow.validate_parameters({"data": "d", "scale": {"dask": True, "partitions": 0}})
        with pytest.raises(ParameterTypeError, match="dask_workers"):
            flow.validate_parameters({"data": "d", "scale": {"dask": True, "dask_workers": 0}})
    # the flows check the combination before doing anything (here without a server)
    with pytest.raises(ConfigError, match="--dask-address: only with --dask"):
        weekly_flow.fn("d", scale=ScaleParameters(dask_address="tcp://127.0.0.1:8786"))
    with pytest.raises(ConfigError, match="its own workers"):
        monthly_flow.fn("d", scale=ScaleParameters(
            dask=True, dask_address="tcp://127.0.0.1:8786", dask_workers=2
        ))
