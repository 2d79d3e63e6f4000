"""The oracle with the traits inferred from the tables, checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from features.errors import ConfigError
from simulator.community import compute_truth
from simulator.model import config_to_dict
from simulator.posterior import compute_posterior_disengagement
from tests.simulator.test_community import _hand_config, _hand_tables


def _with_config(latent, config):
    latent = latent.copy()
    latent.attrs["simulation_config"] = config_to_dict(config)
    return latent


def _config():
    # activity depends on motivation only: P(active) = sigmoid(m); leaving 0.2 a week
    return _hand_config(active_ambassador=0.0, depart_ambassador=0.0, stepdown_base=-50.0,
                        ambassador_share=0.02, active_motivation=1.0)


def test_one_node_is_the_fair_oracle_of_an_average_member():
    tables, latent = _hand_tables()
    latent = _with_config(latent, _config())
    post = compute_posterior_disengagement(tables, latent, "2024-03-04", horizon_days=14,
                                           motivation_nodes=1, initiative_nodes=1)
    fair = compute_truth(tables, latent, "2024-03-04", horizon_days=14, readiness_horizon_days=7)
    assert list(post["member_id"]) == ["a", "b", "c", "d"]
    # the single node is motivation 0, every hand member's true motivation
    np.testing.assert_allclose(post["p_disengages"], fair["p_disengages"], rtol=1e-12)
    # a: gone w.p. 0.2 at week 9's draw, else 1/2 * (0.2 + 0.8 * 1/2)
    assert post.set_index("member_id").loc["a", "p_disengages"] == pytest.approx(0.44)


def test_two_nodes_weigh_motivation_by_the_weeks_seen():
    tables, latent = _hand_tables()
    latent = _with_config(latent, _config())
    post = compute_posterior_disengagement(
        tables, latent, "2024-03-04", horizon_days=14, motivation_nodes=2, initiative_nodes=1
    ).set_index("member_id")["p_disengages"]
    # two nodes: motivation -1 and +1, prior 1/2 each; P(active) = sigmoid(m)
    nodes = [1 / (1 + math.exp(1.0)), 1 / (1 + math.exp(-1.0))]

    def ahead(p):  # around at as_of: no activity in weeks 9 and 10 (leave 0.2 before week 10)
        return (1 - p) * (0.2 + 0.8 * (1 - p))

    # a: stayed weeks 1-8 (0.8 each), inactive weeks 1-7, active in week 8 (led: 1/2 whatever
    # the traits); after it only week 9's hidden draw: gone w.p. 0.2
    w = [(1 - p) ** 7 * p for p in nodes]
    want_a = sum(wk * (0.2 + 0.8 * ahead(p)) for wk, p in zip(w, nodes, strict=True)) / sum(w)
    assert post["a"] == pytest.approx(want_a)
    # c: never active, silent weeks 1-8: around 0.8 (1 - p) a week, or gone (0.2)
    def silence(p):
        q = 0.8 * (1 - p)
        return q**8, 0.2 * sum(q**j for j in range(8))

    want_c, total = 0.0, 0.0
    for p in nodes:
        around, gone = silence(p)
        g = 1 - around * 0.8 / (around + gone)
        want_c += (around + gone) * (g + (1 - g) * ahead(p))
        total += around + gone
    assert post["c"] == pytest.approx(want_c / total)
    # the silent member is judged less motivated than the one active last week
    assert post["c"] > post["a"]


def test_refuses_bad_node_counts():
    tables, latent = _hand_tables()
    latent = _with_config(latent, _config())
    with pytest.raises(ConfigError, match="motivation_nodes"):
        compute_posterior_disengagement(tables, latent, "2024-03-04", motivation_nodes=0)
    with pytest.raises(ConfigError, match="horizon_days"):
        compute_posterior_disengagement(tables, latent, "2024-03-04", horizon_days=0)
