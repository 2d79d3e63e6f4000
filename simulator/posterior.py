"""The oracle without the secret traits: what the tables alone can tell of disengagement.

The fair oracle (:func:`simulator.truth.compute_truth`) knows every member's motivation
and initiative exactly. No model can: the data show the traits only through the weeks a member
was active, led, or stayed silent. :func:`compute_posterior_disengagement` gives the same
probability of disengaging with the traits replaced by their posterior given the tables before
``as_of``, under the simulator's own equations (:mod:`simulator.model`):

- prior: motivation ``m ~ N(0, 1)``, initiative ``i | m ~ N(0.6 m, 0.8²)`` (as
  :func:`simulator.community.simulate_community` draws them), integrated by Gauss-Hermite
  quadrature;
- likelihood of each week from joining to the last activity: the member stayed (departure
  hazard), was active or not (activity hazard), and in an active week led or not (organising or
  volunteering rows, lead hazard); after the last activity, the fair oracle's silence chain
  (departures, visible spell ends, no messages received);
- probability: ``sum_k w_k (g_k + (1 - g_k) P(no activity in the horizon | around, m_k))`` over
  the motivation nodes ``m_k``, with ``w_k`` the member's posterior weight and ``g_k`` the
  posterior probability of having already left.

It is the best prediction anyone could make from the tables if they also knew the simulator's
equations and parameters (up to the approximations below), so it bounds what a model can reach
from the data; the gap between it and the fair oracle is the price of not knowing the traits.

Approximations: messages and introductions (driven by sociability, which correlates 0.3 with
motivation) are not used as evidence; a week counts as led if it has an organising or
volunteering row; the role counts as held from the week after a spell starts to the week before
it ends; tie strength week by week is rebuilt from the rows as the oracle rebuilds it at
``as_of``.

Cost: dense (member x week) arrays, so memory grows with members x weeks (one float64 array is
8 bytes x members x weeks) and time with the 15 x 9 quadrature nodes; the quality benchmark
(``benchmarks/results/quality.md``) records what it costs. It is a yardstick for that
benchmark, not a step of training or scoring.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import log_expit, logsumexp

from features.errors import ConfigError
from features.tables import Tables, parse_as_of
from simulator.model import (
    INITIATIVE_LOADING,
    INITIATIVE_NOISE,
    WEEK_NS,
    SimulationConfig,
    activity_logit,
    departure_logit,
    lead_logit,
    seasonality,
    start_ns,
    tie_weekly_decay,
)
from simulator.truth import (
    Encoding,
    State,
    check_horizon,
    config_of,
    contact_rates,
    encode,
    p_departed,
    p_disengages,
    shock_table,
    state_at,
)

__all__ = ["compute_posterior_disengagement"]


def _normal_nodes(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and log-weights of the standard normal distribution."""
    nodes, weights = hermegauss(count)
    return nodes, np.log(weights / weights.sum())


def _weekly_history(
    enc: Encoding, state: State, joined: np.ndarray, as_ns: int, config: SimulationConfig
) -> dict:
    """Dense (member x week) arrays of what the tables show up to ``as_of``'s week."""
    k0 = state.k0
    weeks = k0 + 1
    n = enc.ids.size
    before = np.searchsorted(enc.a_ns, as_ns, side="left")
    member, week = enc.a_member[:before], enc.a_week[:before]
    ok = (member >= 0) & (week >= 0) & (week < weeks)
    active = np.zeros((n, weeks), dtype=bool)
    active[member[ok], week[ok]] = True
    led = np.zeros((n, weeks), dtype=bool)
    lead = ok & enc.is_lead[:before]
    led[member[lead], week[lead]] = True

    # tie strength at the start of each week: last week's value decayed plus last week's rows
    inc = np.zeros((n, weeks))
    np.add.at(inc, (member[ok], week[ok]), enc.contrib[:before][ok])
    other = enc.other[:before]
    to = (other >= 0) & (week >= 0) & (week < weeks)
    np.add.at(inc, (other[to], week[to]), 1.0)
    ties = np.zeros((n, weeks))
    decay = tie_weekly_decay(config)
    for w in range(1, weeks):
        ties[:, w] = ties[:, w - 1] * decay + inc[:, w - 1]

    amb = _held_weeks(enc, as_ns, weeks, config)
    grid = np.arange(weeks)

    last = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last, member[ok], week[ok])
    jw = enc.join_week
    window = (grid[None, :] > jw[joined, None]) & (grid[None, :] <= last[joined, None])
    shock = shock_table(enc, as_ns, k0, config)[enc.chapter[joined]]
    counted = window & active[joined]
    led_j = led[joined]
    holds = amb[joined]
    return {
        "window": window,
        "active": active[joined],
        # active weeks in the window, led or not, without and with the role
        "lead_counts": {
            role: ((counted & (holds == role) & led_j).sum(axis=1),
                   (counted & (holds == role) & ~led_j).sum(axis=1))
            for role in (False, True)
        },
        "log_ties": np.log1p(ties[joined]),
        "amb": holds,
        "tenure": grid[None, :] - jw[joined, None] - 1,
        "season": seasonality(grid, config)[None, :],
        "shock": shock,
    }


def _held_weeks(enc: Encoding, as_ns: int, weeks: int, config: SimulationConfig) -> np.ndarray:
    """Dense (member x week) flags, weeks ``0 .. weeks - 1``: the role is held (from the week
    after a spell starts before ``as_of`` to the week before it ends)."""
    t0 = start_ns(config)
    seen = enc.r_start < as_ns
    who = enc.r_member[seen]
    first = np.clip(np.floor_divide(enc.r_start[seen] - t0, WEEK_NS) + 1, 0, weeks)
    r_end = enc.r_end[seen]
    stop = np.where(r_end == np.iinfo(np.int64).max, weeks,
                    np.clip(np.floor_divide(r_end - t0, WEEK_NS), 0, weeks))
    spans = np.zeros((enc.ids.size, weeks + 1), dtype=np.int64)
    np.add.at(spans, (who, first), 1)
    np.add.at(spans, (who, np.maximum(stop, first)), -1)
    return np.cumsum(spans, axis=1)[:, :weeks] > 0


def _lead_log_likelihood(hist: dict, initiative: float, config) -> np.ndarray:
    """Log-probability of the led / not-led pattern of the active weeks given the initiative."""
    out = 0.0
    for holds, (led, not_led) in hist["lead_counts"].items():
        logit = lead_logit(np.float64(initiative), holds, config)
        out = out + led * log_expit(logit) + not_led * log_expit(-logit)
    return out


@dataclass(frozen=True, eq=False)
class _Evidence:
    """What every motivation node of :func:`compute_posterior_disengagement` uses.

    Attributes:
        enc, state: The encoded tables and the state at the start of ``as_of``'s week.
        joined: The members who joined before ``as_of``.
        as_ns: ``as_of`` (ns).
        hist: Their weekly history (:func:`_weekly_history`).
        contact: :func:`simulator.truth.contact_rates` at ``as_of``'s week.
        z_nodes, z_logw: Nodes and log-weights over initiative given motivation.
        horizon_days: Disengagement horizon.
        config: The simulation config.
    """

    enc: Encoding
    state: State
    joined: np.ndarray
    as_ns: int
    hist: dict
    contact: np.ndarray
    z_nodes: np.ndarray
    z_logw: np.ndarray
    horizon_days: int
    config: SimulationConfig


def compute_posterior_disengagement(
    tables: Tables,
    latent: pd.DataFrame,
    as_of,
    *,
    horizon_days: int = 90,
    core_role: str = "ambassador",
    motivation_nodes: int = 15,
    initiative_nodes: int = 9,
) -> pd.DataFrame:
    """Probability of disengaging with the traits inferred from the tables (module docstring).

    Args:
        tables: The simulated community's contract tables.
        latent: Its latent table (for the simulation config and the community-wide counts the
            fair oracle uses; the members' own traits are not read).
        as_of: Any date (ISO string, date or Timestamp).
        horizon_days: Disengagement horizon.
        core_role: The role whose spells count as the ambassador role.
        motivation_nodes: Quadrature nodes over motivation.
        initiative_nodes: Quadrature nodes over initiative given motivation.

    Returns:
        member_id, as_of, p_disengages, for every member who joined before ``as_of``, in member
        order (the rows of :func:`simulator.truth.compute_truth`).

    Raises:
        ConfigError: On a bad horizon, date or node count, or without a simulation config.
        ContractError: If ``latent`` lacks columns or members.
        TargetUnavailable: If ``tables`` has no roles table.
    """
    horizon_days = check_horizon("horizon_days", horizon_days)
    _check_nodes(motivation_nodes, initiative_nodes)
    ev = _evidence(tables, latent, as_of, horizon_days, core_role, initiative_nodes)
    m_nodes, m_logw = _normal_nodes(motivation_nodes)
    log_post = np.empty((ev.joined.size, m_nodes.size))
    p_dis = np.empty((ev.joined.size, m_nodes.size))
    for k, m in enumerate(m_nodes):
        log_post[:, k], p_dis[:, k] = _at_motivation(ev, m, m_logw[k])
    weights = np.exp(log_post - logsumexp(log_post, axis=1, keepdims=True))
    return pd.DataFrame({
        "member_id": pd.array(ev.enc.ids[ev.joined], dtype="str"),
        "as_of": pd.Series(np.full(ev.joined.size, ev.as_ns, dtype=np.int64)).astype(
            "datetime64[ns]"),
        "p_disengages": np.clip((weights * p_dis).sum(axis=1), 0.0, 1.0),
    })


def _check_nodes(motivation_nodes: int, initiative_nodes: int) -> None:
    """:class:`ConfigError` unless both node counts are positive whole numbers."""
    for name, value in (("motivation_nodes", motivation_nodes),
                        ("initiative_nodes", initiative_nodes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name}: {value!r} must be a positive whole number")


def _evidence(
    tables: Tables, latent: pd.DataFrame, as_of, horizon_days: int, core_role: str,
    initiative_nodes: int,
) -> _Evidence:
    """Encode the tables and gather what the tables show up to ``as_of``."""
    config = config_of(latent, None)
    as_ns = parse_as_of(as_of).value
    enc = encode(tables, latent, config, core_role)
    state = state_at(enc, as_ns, config, observed=True)
    joined = np.flatnonzero(enc.joined_ns < as_ns)
    z_nodes, z_logw = _normal_nodes(initiative_nodes)
    return _Evidence(
        enc=enc, state=state, joined=joined, as_ns=as_ns,
        hist=_weekly_history(enc, state, joined, as_ns, config),
        contact=contact_rates(enc, state.k0, config),  # the same for every node
        z_nodes=z_nodes, z_logw=z_logw, horizon_days=horizon_days, config=config,
    )


def _at_motivation(ev: _Evidence, m: float, log_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """At motivation ``m`` (prior log-weight ``log_weight``): each member's unnormalised log
    posterior weight and probability of disengaging."""
    hist, config, joined = ev.hist, ev.config, ev.joined
    act = activity_logit(m, hist["tenure"], hist["season"], hist["log_ties"], hist["amb"],
                         config)
    dep = departure_logit(m, hist["tenure"], hist["log_ties"], hist["shock"], hist["amb"],
                          config)
    weekly = np.where(hist["active"], log_expit(act), log_expit(-act)) + log_expit(-dep)
    ll = np.where(hist["window"], weekly, 0.0).sum(axis=1)
    lead = [ev.z_logw[j] + _lead_log_likelihood(
        hist, INITIATIVE_LOADING * m + INITIATIVE_NOISE * z, config)
        for j, z in enumerate(ev.z_nodes)]
    ll += logsumexp(np.column_stack(lead), axis=1)
    node = replace(ev.enc, motivation=np.full(ev.enc.ids.size, m))
    gone, silence = p_departed(node, ev.state, joined, ev.as_ns, config, with_likelihood=True,
                               contact=ev.contact)
    around = p_disengages(node, ev.state, joined, ev.as_ns, ev.horizon_days, config)
    return log_weight + ll + silence, gone + (1.0 - gone) * around
