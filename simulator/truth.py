"""The oracle of the community simulator: each member's true probabilities at a date.

Given the contract tables of a simulated community and its latent traits, :func:`compute_truth`
rebuilds every member's state at ``as_of`` from the tables exactly as the simulator held it
(tie strength, weeks since they last led, role, chapter ambassador shortfall, recent ambassador
departures) and integrates the simulator's own weekly hazards (:mod:`simulator.model`)
forward, week by week:

- ``p_disengages`` = P(no activity in ``(as_of, as_of + horizon_days]``): a chain over
  {still around and holding the role, still around without it, gone} along the no-activity path
  (promotion needs activity, so it cannot happen on that path).
- ``p_becomes_ambassador`` = P(an ambassador spell starts in ``(as_of, as_of +
  readiness_horizon_days]``): a chain over the weeks since the member last led (the pipeline),
  with departure absorbing. Members holding the role at ``as_of`` (a spell started before
  ``as_of`` and not ended before it, as the labels count it) get **NaN**: they are not in the
  readiness population.

Departures leave no row, so the oracle is *fair* by default (``departures="inferred"``): it is
the best prediction from what could be known at ``as_of``, the true traits and hazards included,
but not the hidden date a member silently left. The probability ``g`` that a member has already
left is the posterior given the tables before ``as_of`` (:func:`p_departed`: the last
activity, the last message received, the ambassador spells, and how unlikely the silence since
is for someone still around), and ``p_disengages = g + (1 - g) * P(no activity | around)``,
``p_becomes_ambassador = (1 - g) * P(promotion | around)``. With ``departures="known"`` the
simulator's hidden state is read instead: members gone at ``as_of`` (``latent.departed_at <=
as_of``) get 1 and 0.

Tenure (honeymoon and decay), seasonality and the newcomer departure bump are integrated week by
week; the chapter shock of ambassadors who left before ``as_of`` runs its exact course. For
readiness, the chapter's ambassador count is forecast as a distribution: the current holders'
chance of staying, plus a Poisson count of the expected promotions of all candidates so far,
against a target that grows with the community's recent growth.

Approximations (small; the truth still calibrates against realised outcomes):

- on the no-activity path tie strength only decays (messages received are ignored); for
  readiness it is held at its value at the start of ``as_of``'s week;
- the chapter shortfall is taken week by week as if independent from one week to the next,
  which slightly overstates the highest readiness probabilities in small chapters;
- new ambassador departures within the horizon do not add a chapter shock;
- activity and role starts are taken as spread evenly over a week, so a partly covered week
  counts its share of the weekly probability, and what the member did in ``as_of``'s week before
  ``as_of`` is not conditioned on;
- in the departure posterior, tie strength during the silence is taken back from its value at
  ``as_of``'s week, and messages received are a Poisson count at the chapter's weekly rate to
  members who are around but inactive (computed with the simulator's count of members around).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.signal import fftconvolve

from features.errors import ConfigError, ContractError, TargetUnavailable
from features.tables import Tables, parse_as_of
from simulator.model import (
    DAY_NS,
    WEEK_NS,
    SimulationConfig,
    activity_logit,
    chapter_gap,
    config_from_dict,
    departure_logit,
    lead_logit,
    promotion_logit,
    seasonality,
    sigmoid,
    start_ns,
    stepdown_logit,
    tie_weekly_decay,
)

__all__ = [
    "compute_truth",
    "compute_truth_many",
    "LATENT_COLUMNS",
    "TRUTH_COLUMNS",
    "DEPARTURE_MODES",
    "Encoding",
    "State",
    "check_horizon",
    "config_of",
    "contact_rates",
    "encode",
    "p_departed",
    "p_disengages",
    "shock_table",
    "state_at",
]

LATENT_COLUMNS = ["member_id", "motivation", "sociability", "initiative", "online_propensity",
                  "departed_at"]
TRUTH_COLUMNS = ["member_id", "as_of", "p_becomes_ambassador", "p_disengages"]
#: How the oracle treats departures it cannot see: inferred from the data (fair) or known.
DEPARTURE_MODES = ("inferred", "known")
_LEAD_TYPES = ("organize", "volunteer")
_DIRECT_TYPES = ("message", "intro")
_NEVER = -(10**9)
_CACHE_KEY = "simulator.truth.encoding"


@dataclass(frozen=True, eq=False)
class Encoding:
    """The tables of a simulated community as integer arrays (built by :func:`encode`).

    Times are int64 nanoseconds; weeks count from the simulation's start; member positions
    index ``ids`` (-1: not a member); open spells end at the int64 maximum.

    Attributes:
        ids: The members' ids, in ``members`` order.
        n_chapters: Number of distinct home chapters.
        chapter: Each member's home chapter code.
        joined_ns, join_week: When each member joined (ns, week).
        departed_ns: When each member left for good (the simulator's hidden state; the int64
            maximum if never).
        motivation, initiative: Each member's latent traits.
        a_member, a_ns, a_week: Each activity row's member position, time and week (rows in
            time order).
        is_lead: The row is an organize / volunteer row.
        contrib: What the row adds to the member's tie strength.
        other: The counterpart's position for messages and introductions, else -1.
        r_member, r_chapter, r_start, r_end: The core role's spells (member position, chapter
            code, start and end in ns).
    """

    ids: pd.Index
    n_chapters: int
    chapter: np.ndarray
    joined_ns: np.ndarray
    join_week: np.ndarray
    departed_ns: np.ndarray
    motivation: np.ndarray
    initiative: np.ndarray
    a_member: np.ndarray
    a_ns: np.ndarray
    a_week: np.ndarray
    is_lead: np.ndarray
    contrib: np.ndarray
    other: np.ndarray
    r_member: np.ndarray
    r_chapter: np.ndarray
    r_start: np.ndarray
    r_end: np.ndarray


@dataclass(frozen=True, eq=False)
class State:
    """Member and chapter state at the start of ``as_of``'s week (built by :func:`state_at`).

    Attributes:
        k0: ``as_of``'s week.
        ties, log_ties: Each member's tie strength and ``log1p`` of it.
        last_lead: The last week each member led (a large negative number if never).
        gap: Each chapter's ambassador shortfall (0-1).
        active_count: Each chapter's active members.
        weekly_growth: Weekly growth factor of the community's active count.
        ambassador: Each member holds the core role.
        not_ready: Each member is out of the readiness population (holds the role as the labels
            count it).
        last_sd: Each chapter's last week an ambassador spell ended.
    """

    k0: int
    log_ties: np.ndarray
    last_lead: np.ndarray
    gap: np.ndarray
    active_count: np.ndarray
    weekly_growth: float
    ambassador: np.ndarray
    not_ready: np.ndarray
    last_sd: np.ndarray
    ties: np.ndarray


def config_of(latent: pd.DataFrame, config: SimulationConfig | None) -> SimulationConfig:
    """``config`` if given, else the simulation config attached to ``latent``."""
    if config is not None:
        return config
    values = latent.attrs.get("simulation_config")
    if not isinstance(values, dict):
        raise ConfigError(
            "latent: no simulation config attached (attrs['simulation_config']); read the "
            "latent table with simulator.community.read_latent or pass config="
        )
    return config_from_dict(values)


def _positions(ids: pd.Index, values: pd.Series) -> np.ndarray:
    """Position of each value in ``ids`` (-1 when missing or unknown), via its distinct values."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    where = np.append(ids.get_indexer(uniques), -1)
    return where[codes]


@dataclass(frozen=True, eq=False)
class _MemberCodes:
    """The member part of an :class:`Encoding` (``chapter_ids``: the chapters in code order)."""

    ids: pd.Index
    chapter_ids: pd.Index
    chapter: np.ndarray
    joined_ns: np.ndarray
    join_week: np.ndarray
    departed_ns: np.ndarray
    motivation: np.ndarray
    initiative: np.ndarray


@dataclass(frozen=True, eq=False)
class _ActivityCodes:
    """The activity part of an :class:`Encoding`."""

    a_member: np.ndarray
    a_ns: np.ndarray
    a_week: np.ndarray
    is_lead: np.ndarray
    contrib: np.ndarray
    other: np.ndarray


@dataclass(frozen=True, eq=False)
class _RoleCodes:
    """The role part of an :class:`Encoding`."""

    r_member: np.ndarray
    r_chapter: np.ndarray
    r_start: np.ndarray
    r_end: np.ndarray


def encode(
    tables: Tables, latent: pd.DataFrame, config: SimulationConfig, core_role: str
) -> Encoding:
    """Integer encodings of the tables, memoised in ``tables.cache``.

    Raises:
        ContractError: If ``latent`` lacks columns or members.
        TargetUnavailable: If ``tables`` has no roles table.
    """
    key = _encoding_key(latent, config, core_role)
    cached = tables.cache.get(_CACHE_KEY)
    if cached is not None and cached[0] == key:
        return cached[1]
    if tables.roles is None:
        raise TargetUnavailable(
            f"{tables.source}: no roles table, so the true readiness cannot be computed"
        )
    mem = _encode_members(tables, latent, config)
    act = _encode_activities(tables.activities, mem.ids, config)
    rol = _encode_roles(tables.roles[tables.roles["role"] == core_role], mem)
    enc = Encoding(
        ids=mem.ids,
        n_chapters=len(mem.chapter_ids),
        chapter=mem.chapter,
        joined_ns=mem.joined_ns,
        join_week=mem.join_week,
        departed_ns=mem.departed_ns,
        motivation=mem.motivation,
        initiative=mem.initiative,
        a_member=act.a_member,
        a_ns=act.a_ns,
        a_week=act.a_week,
        is_lead=act.is_lead,
        contrib=act.contrib,
        other=act.other,
        r_member=rol.r_member,
        r_chapter=rol.r_chapter,
        r_start=rol.r_start,
        r_end=rol.r_end,
    )
    tables.cache[_CACHE_KEY] = (key, enc)
    return enc


def _encoding_key(latent: pd.DataFrame, config: SimulationConfig, core_role: str) -> tuple:
    """What an encoding depends on besides the tables: a fingerprint of ``latent``, the config
    and the role.

    Raises:
        ContractError: If ``latent`` lacks columns.
    """
    missing = [c for c in LATENT_COLUMNS if c not in latent.columns]
    if missing:
        raise ContractError(f"latent: missing columns {missing}; expected {LATENT_COLUMNS}")
    fingerprint = hashlib.blake2b(digest_size=16)
    fingerprint.update(pd.util.hash_pandas_object(latent[LATENT_COLUMNS], index=False).to_numpy())
    return (fingerprint.hexdigest(), config, core_role)


def _encode_members(tables: Tables, latent: pd.DataFrame, config: SimulationConfig) -> _MemberCodes:
    """The members' positions, chapters, join and departure times and traits.

    Raises:
        ContractError: If ``latent`` lacks members of ``tables``.
    """
    members = tables.members
    ids = pd.Index(members["member_id"])
    lat = latent.set_index("member_id").reindex(ids)
    absent = lat["motivation"].isna().to_numpy()
    if absent.any():
        examples = list(ids[absent][:3])
        raise ContractError(
            f"latent: {int(absent.sum())} member(s) of {tables.source} have no latent traits "
            f"(e.g. {examples}); use the latent table written with this simulation"
        )
    joined = members["joined_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    ch_codes, ch_uniques = pd.factorize(members["chapter_id"])
    departed = lat["departed_at"].to_numpy(dtype="datetime64[ns]")
    return _MemberCodes(
        ids=ids,
        chapter_ids=pd.Index(ch_uniques),
        chapter=ch_codes.astype(np.int64),
        joined_ns=joined,
        join_week=np.floor_divide(joined - start_ns(config), WEEK_NS),
        departed_ns=np.where(np.isnat(departed), np.iinfo(np.int64).max,
                             departed.astype(np.int64)),
        motivation=lat["motivation"].to_numpy(dtype=np.float64),
        initiative=lat["initiative"].to_numpy(dtype=np.float64),
    )


def _encode_activities(act: pd.DataFrame, ids: pd.Index, config: SimulationConfig
                       ) -> _ActivityCodes:
    """The activity rows: member, time, week, leading or not, tie contribution, counterpart."""
    a_ns = act["occurred_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    a_type = act["activity_type"]
    is_lead = a_type.isin(_LEAD_TYPES).to_numpy()
    is_direct = a_type.isin(_DIRECT_TYPES).to_numpy()
    ev_codes = pd.factorize(act["event_id"], use_na_sentinel=True)[0]
    contrib = np.zeros(ev_codes.size)
    in_event = ev_codes >= 0
    if in_event.any():
        contrib[in_event] = np.bincount(ev_codes[in_event])[ev_codes[in_event]] - 1.0
    contrib[is_direct] = 1.0
    other = _positions(ids, act["counterpart_id"])
    return _ActivityCodes(
        a_member=_positions(ids, act["member_id"]),
        a_ns=a_ns,
        a_week=np.floor_divide(a_ns - start_ns(config), WEEK_NS),
        is_lead=is_lead,
        contrib=contrib,
        other=np.where(is_direct, other, -1),
    )


def _encode_roles(roles: pd.DataFrame, mem: _MemberCodes) -> _RoleCodes:
    """The core role's spells of known members: member, chapter, start and end (ns)."""
    r_member = mem.ids.get_indexer(roles["member_id"])
    r_start = roles["started_at"].to_numpy(dtype="datetime64[ns]")
    r_end = roles["ended_at"].to_numpy(dtype="datetime64[ns]")
    keep = r_member >= 0
    r_chapter = mem.chapter_ids.get_indexer(roles["chapter_id"])
    return _RoleCodes(
        r_member=r_member[keep],
        r_chapter=r_chapter[keep],
        r_start=r_start[keep].astype(np.int64),
        r_end=np.where(np.isnat(r_end[keep]), np.iinfo(np.int64).max,
                       r_end[keep].astype(np.int64)),
    )


@dataclass(frozen=True, eq=False)
class _RoleStatus:
    """Role status at ``as_of`` (built by :func:`_role_status`).

    Attributes:
        ambassador: Each member holds the core role.
        not_ready: Each member is out of the readiness population.
        n_amb: Each chapter's role holders at the start of ``as_of``'s week.
        last_sd: Each chapter's last week an ambassador spell ended.
    """

    ambassador: np.ndarray
    not_ready: np.ndarray
    n_amb: np.ndarray
    last_sd: np.ndarray


def state_at(enc: Encoding, as_ns: int, config: SimulationConfig, observed: bool = False) -> State:
    """Member and chapter state at the start of ``as_of``'s week (plus role status at as_of).

    With ``observed``, role status is what the tables show strictly before ``as_of``: a spell
    ending exactly at ``as_of`` is still held, and only spells that ended before ``as_of`` set
    off a chapter shock.
    """
    n = enc.ids.size
    t0 = start_ns(config)
    k0 = (as_ns - t0) // WEEK_NS
    before = np.searchsorted(enc.a_ns, t0 + k0 * WEEK_NS, side="left")
    weeks = enc.a_week[:before]
    member = enc.a_member[:before]
    ties = _ties_at(enc, before, k0, config)

    lead_rows = np.flatnonzero(enc.is_lead[:before] & (member >= 0))
    last_lead = np.full(n, _NEVER, dtype=np.int64)
    np.maximum.at(last_lead, member[lead_rows], weeks[lead_rows])

    aw = config.active_window_weeks
    recent = _active_members(weeks, member, n, k0, aw)
    active_count = np.bincount(enc.chapter[recent], minlength=enc.n_chapters)
    roles = _role_status(enc, as_ns, k0, observed, config)
    return State(
        k0=int(k0),
        log_ties=np.log1p(ties),
        last_lead=last_lead,
        gap=chapter_gap(active_count, roles.n_amb, config),
        active_count=active_count,
        weekly_growth=_weekly_growth(weeks, member, n, k0, recent, aw),
        ambassador=roles.ambassador,
        not_ready=roles.not_ready,
        last_sd=roles.last_sd,
        ties=ties,
    )


def _ties_at(enc: Encoding, before: int, k0: int, config: SimulationConfig) -> np.ndarray:
    """Each member's tie strength at the start of week ``k0`` from the first ``before`` rows."""
    weeks = enc.a_week[:before]
    member = enc.a_member[:before]
    decay = tie_weekly_decay(config) ** (k0 - 1 - weeks).astype(np.float64)
    w = enc.contrib[:before] * decay
    ok = member >= 0
    ties = np.bincount(member[ok], weights=w[ok], minlength=enc.ids.size)
    other = enc.other[:before]
    ok = other >= 0
    ties += np.bincount(other[ok], weights=decay[ok], minlength=enc.ids.size)
    return ties


def _active_members(
    weeks: np.ndarray, member: np.ndarray, n: int, end_week: int, window: int
) -> np.ndarray:
    """Members with a row in the ``window`` weeks before ``end_week`` (rows sorted by week)."""
    lo, hi = np.searchsorted(weeks, [end_week - window, end_week], side="left")
    who = np.zeros(n, dtype=bool)
    sel = member[lo:hi]
    who[sel[sel >= 0]] = True
    return who


def _weekly_growth(
    weeks: np.ndarray, member: np.ndarray, n: int, k0: int, recent: np.ndarray, window: int
) -> float:
    """Weekly growth factor of the community's active count (``recent``: active now), over the
    longest lag of a year, half a year or a quarter the rows cover; 1 when none does, to
    project chapter targets over the horizon."""
    first_week = int(weeks[0]) if weeks.size else k0
    weekly_growth = 1.0
    for lag in (52, 26, 13):
        if k0 - lag - window >= first_week:
            earlier = int(_active_members(weeks, member, n, k0 - lag, window).sum())
            if earlier > 0 and recent.any():
                ratio = float(np.clip(recent.sum() / earlier, 0.5, 4.0))
                weekly_growth = ratio ** (1.0 / lag)
            break
    return weekly_growth


def _role_status(
    enc: Encoding, as_ns: int, k0: int, observed: bool, config: SimulationConfig
) -> _RoleStatus:
    """Who holds the role at ``as_of``, who is out of the readiness population, each chapter's
    holders at the start of week ``k0`` and last spell end (``observed``: see :func:`state_at`)."""
    n, n_ch, t0 = enc.ids.size, enc.n_chapters, start_ns(config)
    r_start, r_end = enc.r_start, enc.r_end
    holds = (r_start <= as_ns) & (as_ns < r_end)
    # the readiness population excludes anyone holding the role at as_of as the labels count it
    # (started before as_of, not ended before it), and anyone whose spell starts exactly then
    counted_held = holds | ((r_start < as_ns) & (r_end >= as_ns))
    ambassador = np.zeros(n, dtype=bool)
    ambassador[enc.r_member[counted_held if observed else holds]] = True
    not_ready = np.zeros(n, dtype=bool)
    not_ready[enc.r_member[counted_held]] = True
    start_week = np.floor_divide(r_start - t0, WEEK_NS)
    end_week = np.where(r_end == np.iinfo(np.int64).max, np.iinfo(np.int64).max,
                        np.floor_divide(r_end - t0, WEEK_NS))
    ch_ok = enc.r_chapter >= 0
    counted = ch_ok & (start_week < k0) & (end_week > k0)
    n_amb = np.bincount(enc.r_chapter[counted], minlength=n_ch)
    ended = ch_ok & ((r_end < as_ns) if observed else (r_end <= as_ns))
    last_sd = np.full(n_ch, _NEVER, dtype=np.int64)
    np.maximum.at(last_sd, enc.r_chapter[ended], end_week[ended])
    return _RoleStatus(ambassador=ambassador, not_ready=not_ready, n_amb=n_amb, last_sd=last_sd)


def shock_table(enc: Encoding, as_ns: int, k0: int, config: SimulationConfig) -> np.ndarray:
    """``shock[chapter, week]`` for weeks ``0..k0``: an ambassador spell of the chapter ended
    (visibly, before ``as_of``) within the ``shock_weeks`` weeks before that week."""
    n_ch = enc.n_chapters
    t0 = start_ns(config)
    ended = (enc.r_chapter >= 0) & (enc.r_end < as_ns) & (enc.r_end >= t0)
    weeks = np.floor_divide(enc.r_end[ended] - t0, WEEK_NS)
    flat = enc.r_chapter[ended] * (k0 + 1) + weeks
    ends = np.bincount(flat, minlength=n_ch * (k0 + 1)).reshape(n_ch, k0 + 1)
    # before[c, w] = spell ends of chapter c in weeks < w
    before = np.zeros((n_ch, k0 + 2), dtype=np.int64)
    np.cumsum(ends, axis=1, out=before[:, 1:])
    w = np.arange(k0 + 1)
    lo = np.clip(w - config.shock_weeks, 0, None)
    return (before[:, w] - before[:, lo]) > 0


def contact_rates(enc: Encoding, k0: int, config: SimulationConfig) -> np.ndarray:
    """``rate[chapter, week]`` for weeks ``0..k0 - 1``: the mean number of messages a member of
    the chapter who is still around but inactive that week receives.

    Members who are active that week are left out (they also hear from the people they meet),
    so the rate is that of messages sent to anyone still around. The number of members still
    around comes from the simulator's state (a community-wide count, not a member's secret).
    """
    n_ch = enc.n_chapters
    t0 = start_ns(config)
    before = np.searchsorted(enc.a_ns, t0 + k0 * WEEK_NS, side="left")
    member, weeks = enc.a_member[:before], enc.a_week[:before]
    other = enc.other[:before]
    active_keys = np.unique(member[member >= 0] * (k0 + 1) + weeks[member >= 0])
    to = other >= 0
    keys = other[to] * (k0 + 1) + weeks[to]
    idle = ~np.isin(keys, active_keys, assume_unique=False)
    received = np.bincount(
        enc.chapter[other[to][idle]] * k0 + weeks[to][idle], minlength=n_ch * k0
    ).reshape(n_ch, k0)
    # members around in week w: joined before it, not yet gone at its start
    joined = np.clip(enc.join_week + 1, 0, k0)
    gone_week = np.where(
        enc.departed_ns == np.iinfo(np.int64).max,
        k0,
        np.clip(np.floor_divide(enc.departed_ns - t0, WEEK_NS), 0, k0),
    )
    change = np.zeros((n_ch, k0 + 1))
    np.add.at(change, (enc.chapter, joined), 1.0)
    np.add.at(change, (enc.chapter, np.maximum(gone_week, joined)), -1.0)
    around = np.cumsum(change, axis=1)[:, :k0]
    active_pairs = active_keys[(active_keys % (k0 + 1)) < k0]
    active = np.bincount(
        enc.chapter[active_pairs // (k0 + 1)] * k0 + active_pairs % (k0 + 1),
        minlength=n_ch * k0,
    ).reshape(n_ch, k0)
    return received / np.maximum(around - active, 1.0)


@dataclass(frozen=True, eq=False)
class _Silence:
    """The members of :func:`p_departed`'s chain (silent since before ``as_of``'s week), aligned
    arrays, and the chain's constants.

    Attributes:
        jw, start: Join week and the week the silence starts after (the chain covers weeks
            ``start + 1 .. k0``).
        seen: The last week with a row of the member or a message to them.
        m, ch, ties0: Motivation, chapter and tie strength at the start of week ``k0``.
        decay: The weekly decay factor of tie strength.
        held: A spell still open at ``as_of``.
        end_week: The week the member's last visible spell ended.
        ends_in_silence: That end falls in the silence.
        h_sd: Weekly step-down hazard.
        k0, c0: ``as_of``'s week and the share of it before ``as_of``.
        t0, as_ns: The simulation start and ``as_of`` (ns).
        shocks, contact: :func:`shock_table` and :func:`contact_rates` at ``as_of``'s week.
    """

    jw: np.ndarray
    start: np.ndarray
    seen: np.ndarray
    m: np.ndarray
    ch: np.ndarray
    ties0: np.ndarray
    decay: float
    held: np.ndarray
    end_week: np.ndarray
    ends_in_silence: np.ndarray
    h_sd: np.ndarray
    k0: int
    c0: float
    t0: int
    as_ns: int
    shocks: np.ndarray
    contact: np.ndarray
    config: SimulationConfig


@dataclass(frozen=True, eq=False)
class _Masses:
    """The chain's masses (around with the role, around without it, gone), rescaled each week
    to sum to 1, and the log of the scale (the likelihood of the silence)."""

    amb: np.ndarray
    non: np.ndarray
    gone: np.ndarray
    log_total: np.ndarray


def p_departed(enc: Encoding, state: State, idx: np.ndarray, as_ns: int,
               config: SimulationConfig, with_likelihood: bool = False,
               contact: np.ndarray | None = None):
    """Posterior probability that each member of ``idx`` has already left for good at ``as_of``.

    Departure itself leaves no row. What the tables show strictly before ``as_of`` is the
    member's last activity, the last time another member messaged them (the simulator only
    messages members still around), and their ambassador spells (a leaving ambassador's spell
    ends the week they leave). Starting after the last activity (or the join week), a weekly
    chain over {around with the role, around without it, gone} applies the departure hazard
    (not before the last message received), the visible end of a spell (left or stepped down),
    and the likelihood of the silence: no activity in each week up to ``as_of`` (the share of
    ``as_of``'s week before it).

    With ``with_likelihood``, also returns the log-probability of that silence (and of the
    visible spell ends and the absence of messages) given the member's traits, 0 for members
    without a silence: ``(p_departed, log_likelihood)``. ``contact`` is
    :func:`contact_rates` at ``as_of``'s week when the caller already has it (it does not
    depend on the traits).
    """
    last_act, seen = _last_rows(enc, as_ns)
    jw = enc.join_week[idx]
    start = np.maximum(last_act[idx], jw)  # the chain covers weeks start + 1 .. k0
    out = np.zeros(idx.size)
    log_lik = np.zeros(idx.size)
    todo = np.flatnonzero(start < state.k0)
    if todo.size:
        sil = _silence(enc, state, idx[todo], jw[todo], start[todo], seen, as_ns, config,
                       contact)
        amb = (sil.held | sil.ends_in_silence).astype(np.float64)
        masses = _Masses(amb=amb, non=1.0 - amb, gone=np.zeros(todo.size),
                         log_total=np.zeros(todo.size))
        for k in range(int(sil.start.min()) + 1, sil.k0 + 1):
            masses = _silence_week(sil, masses, k)
        out[todo] = masses.gone
        log_lik[todo] = masses.log_total
    return (out, log_lik) if with_likelihood else out


def _last_rows(enc: Encoding, as_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Each member's last week with a row before ``as_of``, and last week with a row or a
    message received (``_NEVER`` if none)."""
    before = np.searchsorted(enc.a_ns, as_ns, side="left")
    member, weeks = enc.a_member[:before], enc.a_week[:before]
    last_act = np.full(enc.ids.size, _NEVER, dtype=np.int64)
    ok = member >= 0
    np.maximum.at(last_act, member[ok], weeks[ok])
    seen = last_act.copy()
    other = enc.other[:before]
    ok = other >= 0
    np.maximum.at(seen, other[ok], weeks[ok])
    return last_act, seen


def _silence(
    enc: Encoding, state: State, sel: np.ndarray, jw: np.ndarray, start: np.ndarray,
    seen: np.ndarray, as_ns: int, config: SimulationConfig, contact: np.ndarray | None,
) -> _Silence:
    """The chain's inputs for the members ``sel`` (join week ``jw``, silent after ``start``;
    ``seen``: :func:`_last_rows`' second array, for every member)."""
    t0 = start_ns(config)
    k0 = state.k0
    r_start, r_end, r_member = enc.r_start, enc.r_end, enc.r_member
    position = np.full(enc.ids.size, -1, dtype=np.int64)
    position[sel] = np.arange(sel.size)
    held = np.zeros(sel.size, dtype=bool)
    spell_now = (r_start < as_ns) & (r_end >= as_ns) & (position[r_member] >= 0)
    held[position[r_member[spell_now]]] = True
    end_week = np.full(sel.size, _NEVER, dtype=np.int64)
    past = (r_start < as_ns) & (r_end < as_ns) & (position[r_member] >= 0)
    np.maximum.at(end_week, position[r_member[past]],
                  np.floor_divide(r_end[past] - t0, WEEK_NS))
    m = enc.motivation[sel]
    return _Silence(
        jw=jw, start=start, seen=seen[sel], m=m, ch=enc.chapter[sel], ties0=state.ties[sel],
        decay=tie_weekly_decay(config), held=held, end_week=end_week,
        # role held through the silence: still held at as_of, or its end falls in the silence
        ends_in_silence=~held & (end_week > start),
        h_sd=sigmoid(stepdown_logit(m, config)),
        k0=k0, c0=(as_ns - (t0 + k0 * WEEK_NS)) / WEEK_NS, t0=t0, as_ns=as_ns,
        shocks=shock_table(enc, as_ns, k0, config),
        contact=contact_rates(enc, k0, config) if contact is None else contact,
        config=config,
    )


def _silence_week(s: _Silence, masses: _Masses, k: int) -> _Masses:
    """One week ``k`` of the chain: departures, visible spell ends, no activity, no messages."""
    config, m = s.config, s.m
    live = (k > s.start) & (k > s.jw)
    if not live.any():
        return masses
    amb, non, gone = masses.amb, masses.non, masses.gone
    tenure = k - s.jw - 1
    lt = np.log1p(s.ties0 * s.decay ** (k - s.k0))
    shock = s.shocks[s.ch, max(k, 0)]
    may_leave = live & (k > s.seen)
    hd_a = np.where(may_leave, sigmoid(departure_logit(m, tenure, lt, shock, 1.0, config)), 0.0)
    hd_n = np.where(may_leave, sigmoid(departure_logit(m, tenure, lt, shock, 0.0, config)), 0.0)
    gone = gone + non * hd_n
    non = non * (1.0 - hd_n)
    # the visible end of a spell: left (gone) or stepped down (around without the role)
    at_end = s.ends_in_silence & (k == s.end_week)
    gone = gone + np.where(at_end, amb * hd_a, 0.0)
    non = non + np.where(at_end, amb * (1.0 - hd_a) * s.h_sd, 0.0)
    # a spell still open in the data cannot have ended before as_of
    hidden = s.held & (s.t0 + k * WEEK_NS >= s.as_ns)
    gone = gone + np.where(hidden, amb * hd_a, 0.0)
    amb = np.where(at_end, 0.0, np.where(hidden, amb * (1.0 - hd_a), amb))
    season = seasonality(np.array([k]), config)[0]
    cover = 1.0 if k < s.k0 else s.c0
    pa_a = sigmoid(activity_logit(m, tenure, season, lt, 1.0, config))
    pa_n = sigmoid(activity_logit(m, tenure, season, lt, 0.0, config))
    amb = amb * (1.0 - np.where(live, pa_a * cover, 0.0))
    non = non * (1.0 - np.where(live, pa_n * cover, 0.0))
    # nobody messaged them either (weeks after the last message received)
    if s.k0 > 0:
        rate = s.contact[s.ch, min(k, s.k0 - 1)] * cover
        quiet = np.where(may_leave, np.exp(-rate), 1.0)
        amb, non = amb * quiet, non * quiet
    # keep the masses on a readable scale (only their ratio matters)
    total = amb + non + gone
    return _Masses(amb=amb / total, non=non / total, gone=gone / total,
                   log_total=masses.log_total + np.log(total))


def _coverage(as_ns: int, horizon_days: int, config: SimulationConfig) -> tuple[int, np.ndarray]:
    """First week and the share of each week from it covered by ``(as_of, as_of + horizon]``."""
    t0 = start_ns(config)
    end_ns = as_ns + horizon_days * DAY_NS
    k0 = (as_ns - t0) // WEEK_NS
    k1 = (end_ns - 1 - t0) // WEEK_NS
    ks = np.arange(k0, k1 + 1)
    lo = np.maximum(t0 + ks * WEEK_NS, as_ns)
    hi = np.minimum(t0 + (ks + 1) * WEEK_NS, end_ns)
    return int(k0), np.clip(hi - lo, 0, None) / WEEK_NS


def _shock(state: State, chapter: np.ndarray, week: int, config: SimulationConfig) -> np.ndarray:
    since = week - state.last_sd[chapter]
    return (since >= 1) & (since <= config.shock_weeks)


def p_disengages(
    enc: Encoding, state: State, idx: np.ndarray, as_ns: int, horizon_days: int,
    config: SimulationConfig,
) -> np.ndarray:
    """P(no activity in ``(as_of, as_of + horizon]``) for the members ``idx``, taken as still
    around at ``as_of``."""
    k0, cover = _coverage(as_ns, horizon_days, config)
    m = enc.motivation[idx]
    jw = enc.join_week[idx]
    ch = enc.chapter[idx]
    ties0 = np.expm1(state.log_ties[idx])
    decay = tie_weekly_decay(config)
    amb = state.ambassador[idx].astype(np.float64)
    non = 1.0 - amb
    gone = np.zeros(idx.size)
    h_sd = sigmoid(stepdown_logit(m, config))
    for j, c in enumerate(cover):
        k = k0 + j
        eligible = k > jw
        tenure = k - jw - 1
        lt = np.log1p(ties0 * decay ** (k - k0))  # no activity: ties only decay
        if k > k0:
            shock = _shock(state, ch, k, config)
            hd_a = np.where(eligible, sigmoid(departure_logit(m, tenure, lt, shock, 1.0, config)),
                            0.0)
            hd_n = np.where(eligible, sigmoid(departure_logit(m, tenure, lt, shock, 0.0, config)),
                            0.0)
            gone += amb * hd_a + non * hd_n
            amb = amb * (1.0 - hd_a)
            non = non * (1.0 - hd_n)
            step = np.where(eligible, h_sd, 0.0) * amb
            non = non + step
            amb = amb - step
        season = seasonality(np.array([k]), config)[0]
        pa_a = sigmoid(activity_logit(m, tenure, season, lt, 1.0, config))
        pa_n = sigmoid(activity_logit(m, tenure, season, lt, 0.0, config))
        amb = amb * (1.0 - np.where(eligible, pa_a * c, 0.0))
        non = non * (1.0 - np.where(eligible, pa_n * c, 0.0))
    return np.clip(amb + non + gone, 0.0, 1.0)


_GAP_LEVELS = np.linspace(0.0, 1.0, 11)


def _ambassador_count_pmf(stay: np.ndarray, chapter: np.ndarray, n_ch: int, size: int):
    """P(n of the current role holders still hold it), n < ``size``, per chapter (a
    Poisson-binomial distribution, built one holder rank at a time across all chapters)."""
    pmf = np.zeros((n_ch, size))
    pmf[:, 0] = 1.0
    if stay.size == 0:
        return pmf
    order = np.argsort(chapter, kind="stable")
    ch_sorted = chapter[order]
    rank = np.arange(order.size) - np.searchsorted(ch_sorted, ch_sorted, side="left")
    for r in range(int(rank.max()) + 1):
        sel = order[rank == r]
        c, p = chapter[sel], stay[sel][:, None]
        row = pmf[c]
        new = row * (1.0 - p)
        new[:, 1:] += row[:, :-1] * p
        pmf[c] = new
    return pmf


def _gap_distribution(held_pmf: np.ndarray, promoted: np.ndarray, target: np.ndarray):
    """Distribution of each chapter's gap over ``_GAP_LEVELS``: ambassadors = current holders
    still in the role (``held_pmf``) + Poisson(expected promotions so far)."""
    n_ch, size = held_pmf.shape
    n = np.arange(size)
    steps = np.concatenate(
        [np.ones((n_ch, 1)), promoted[:, None] / np.maximum(n[None, 1:], 1)], axis=1
    )
    new_pmf = np.exp(-promoted)[:, None] * np.cumprod(steps[:, :size], axis=1)
    # Truncated convolution of the two count distributions, per chapter (FFT: the direct sum
    # grows with the square of the largest chapter's target).
    total = np.clip(fftconvolve(held_pmf, new_pmf[:, :size], axes=1)[:, :size], 0.0, None)
    gap = np.clip(target[:, None] - n[None, :], 0.0, None) / target[:, None]
    level = np.rint(gap * (_GAP_LEVELS.size - 1)).astype(np.int64)
    flat = (np.arange(n_ch)[:, None] * _GAP_LEVELS.size + level).ravel()
    dist = np.bincount(flat, weights=total.ravel(), minlength=n_ch * _GAP_LEVELS.size)
    dist = dist.reshape(n_ch, _GAP_LEVELS.size)
    dist[:, 0] += np.clip(1.0 - total.sum(axis=1), 0.0, None)
    return dist


@dataclass(frozen=True, eq=False)
class _Pipeline:
    """The inputs of :func:`_p_becomes`'s chain, aligned on the candidates (``idx``) or on the
    current role holders (``h_``).

    Attributes:
        state: The state at the start of ``as_of``'s week.
        k0, cover: The first week and each week's share covered by the horizon.
        m, jw, ch, lt: The candidates' motivation, join week, chapter and log tie strength.
        p_lead: Their chance of leading in an active week.
        base: Their promotion logit without the chapter shortfall.
        by_level: Their weekly promotion hazard at each level of ``_GAP_LEVELS``.
        targets: Each chapter's target number of ambassadors, week by week.
        size: The largest target (the count distributions' support).
        n_ch: The number of chapters.
        h_m, h_jw, h_ch, h_lt, h_sd: The holders' motivation, join week, chapter, log tie
            strength and weekly step-down hazard.
        config: The simulation config.
    """

    state: State
    k0: int
    cover: np.ndarray
    m: np.ndarray
    jw: np.ndarray
    ch: np.ndarray
    lt: np.ndarray
    p_lead: np.ndarray
    base: np.ndarray
    by_level: np.ndarray
    targets: np.ndarray
    size: int
    n_ch: int
    h_m: np.ndarray
    h_jw: np.ndarray
    h_ch: np.ndarray
    h_lt: np.ndarray
    h_sd: np.ndarray
    config: SimulationConfig


@dataclass(frozen=True, eq=False)
class _Readiness:
    """Where :func:`_p_becomes`'s chain stands: each candidate's distribution over the weeks
    since they last led (``prob``), each holder's chance of still holding the role, and the
    expected promotions so far per candidate and per chapter."""

    prob: np.ndarray
    h_stay: np.ndarray
    promoted: np.ndarray
    promoted_by_chapter: np.ndarray


def _p_becomes(
    enc: Encoding, state: State, idx: np.ndarray, holders: np.ndarray, as_ns: int,
    horizon_days: int, config: SimulationConfig, around: np.ndarray | None = None,
) -> np.ndarray:
    """P(first promotion within the horizon) for members around and not holding the role.

    The chapter shortfall is known in ``as_of``'s week; after that its distribution follows the
    current holders' chance of staying (step-down and departure hazards), the expected
    promotions of all candidates so far (as a Poisson count), and a target that grows with the
    community (the growth of the active count over the past year, or less when the data is
    shorter). ``around`` is each member's probability of still being around at ``as_of``
    (default 1).
    """
    pipe = _pipeline(enc, state, idx, holders, as_ns, horizon_days, config)
    since = np.clip(pipe.k0 - 1 - state.last_lead[idx], 0, config.pipeline_weeks + 1)
    prob = np.zeros((idx.size, config.pipeline_weeks + 2))
    prob[np.arange(idx.size), since] = 1.0 if around is None else around
    run = _Readiness(prob=prob, h_stay=np.ones(holders.size),
                     promoted=np.zeros(idx.size), promoted_by_chapter=np.zeros(enc.n_chapters))
    for j, c in enumerate(pipe.cover):
        run = _readiness_week(pipe, run, j, c)
    return np.clip(run.promoted, 0.0, 1.0)


def _pipeline(
    enc: Encoding, state: State, idx: np.ndarray, holders: np.ndarray, as_ns: int,
    horizon_days: int, config: SimulationConfig,
) -> _Pipeline:
    """The chain's inputs for the candidates ``idx`` and the current holders ``holders``."""
    k0, cover = _coverage(as_ns, horizon_days, config)
    m = enc.motivation[idx]
    base = promotion_logit(m, state.log_ties[idx], 0.0, config)
    growth = state.weekly_growth ** np.arange(cover.size)
    targets = np.maximum(
        1.0, np.round(config.ambassador_share * state.active_count[None, :] * growth[:, None])
    )
    h_m = enc.motivation[holders]
    return _Pipeline(
        state=state, k0=k0, cover=cover, m=m, jw=enc.join_week[idx], ch=enc.chapter[idx],
        lt=state.log_ties[idx],
        p_lead=sigmoid(lead_logit(enc.initiative[idx], 0.0, config)),
        base=base,
        by_level=sigmoid(base[:, None] + config.promote_gap * _GAP_LEVELS[None, :]),
        targets=targets,
        size=int(targets.max()) if enc.n_chapters else 1,
        n_ch=enc.n_chapters,
        h_m=h_m, h_jw=enc.join_week[holders], h_ch=enc.chapter[holders],
        h_lt=state.log_ties[holders], h_sd=sigmoid(stepdown_logit(h_m, config)),
        config=config,
    )


def _readiness_week(p: _Pipeline, run: _Readiness, j: int, c: float) -> _Readiness:
    """Week ``j`` of the horizon (covered share ``c``): the promotion hazard, then the moves
    along the pipeline (led, active without leading, idle)."""
    config = p.config
    L = config.pipeline_weeks
    k = p.k0 + j
    eligible = k > p.jw
    tenure = k - p.jw - 1
    if k == p.k0:
        hazard = sigmoid(p.base + config.promote_gap * p.state.gap[p.ch])
    else:
        run = _survive_week(p, run, k, eligible, tenure)
        dist = _gap_distribution(
            _ambassador_count_pmf(run.h_stay, p.h_ch, p.n_ch, p.size),
            run.promoted_by_chapter, p.targets[j],
        )
        hazard = np.einsum("ij,ij->i", p.by_level, dist[p.ch])
    season = seasonality(np.array([k]), config)[0]
    p_act = np.where(eligible, sigmoid(activity_logit(p.m, tenure, season, p.lt, 0.0, config)),
                     0.0)
    hazard = np.where(tenure >= config.min_tenure_weeks, hazard, 0.0)
    prob = run.prob
    total = prob.sum(axis=1)
    led = total * p_act * p.p_lead
    not_led = prob * (p_act * (1.0 - p.p_lead))[:, None]
    idle = prob * (1.0 - p_act)[:, None]
    still_eligible = not_led[:, :L].sum(axis=1)
    this_week = (led + still_eligible) * hazard
    promoted = run.promoted + this_week * c
    promoted_by_chapter = run.promoted_by_chapter + np.bincount(
        p.ch, weights=this_week, minlength=p.n_ch)
    not_led[:, :L] *= (1.0 - hazard)[:, None]
    moved = idle + not_led
    prob = np.zeros_like(prob)
    prob[:, 1:] = moved[:, :-1]
    prob[:, L + 1] += moved[:, L + 1]
    prob[:, 0] = led * (1.0 - hazard)
    return _Readiness(prob=prob, h_stay=run.h_stay, promoted=promoted,
                      promoted_by_chapter=promoted_by_chapter)


def _survive_week(
    p: _Pipeline, run: _Readiness, k: int, eligible: np.ndarray, tenure: np.ndarray
) -> _Readiness:
    """Week ``k``'s departures of the candidates and the holders' chance of keeping the role."""
    config = p.config
    shock = _shock(p.state, p.ch, k, config)
    hd = np.where(eligible, sigmoid(departure_logit(p.m, tenure, p.lt, shock, 0.0, config)),
                  0.0)
    h_shock = _shock(p.state, p.h_ch, k, config)
    h_dep = sigmoid(departure_logit(p.h_m, k - p.h_jw - 1, p.h_lt, h_shock, 1.0, config))
    return replace(run, prob=run.prob * (1.0 - hd)[:, None],
                   h_stay=run.h_stay * ((1.0 - h_dep) * (1.0 - p.h_sd)))


def _truth_at(enc, as_ns, horizon_days, readiness_days, config, departures) -> pd.DataFrame:
    observed = departures == "inferred"
    state = state_at(enc, as_ns, config, observed=observed)
    joined = np.flatnonzero(enc.joined_ns < as_ns)
    if observed:
        gone_p = p_departed(enc, state, joined, as_ns, config)
        around = joined
    else:
        gone = enc.departed_ns[joined] <= as_ns
        gone_p = gone.astype(np.float64)
        around = joined[~gone]
    stay = 1.0 - gone_p if observed else None
    p_dis = gone_p.copy()
    p_dis_around = p_disengages(enc, state, around, as_ns, horizon_days, config)
    if observed:
        p_dis = gone_p + (1.0 - gone_p) * p_dis_around
    else:
        p_dis[gone_p == 0.0] = p_dis_around
    p_bec = np.zeros(joined.size)
    out = state.not_ready[around]
    ready = np.full(around.size, np.nan)
    holders = around[state.ambassador[around]]
    ready[~out] = _p_becomes(enc, state, around[~out], holders, as_ns, readiness_days, config,
                             around=None if stay is None else stay[~out])
    if observed:
        p_bec = ready
    else:
        p_bec[gone_p == 0.0] = ready
    return pd.DataFrame({
        "member_id": pd.array(enc.ids[joined], dtype="str"),
        "as_of": pd.Series(np.full(joined.size, as_ns, dtype=np.int64)).astype("datetime64[ns]"),
        "p_becomes_ambassador": p_bec,
        "p_disengages": np.clip(p_dis, 0.0, 1.0),
    })


def check_horizon(name: str, value: int) -> int:
    """``value`` as an int; :class:`ConfigError` unless it is a positive whole number."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{name}: {value!r} must be a positive whole number of days")
    return int(value)


def compute_truth_many(
    tables: Tables,
    latent: pd.DataFrame,
    as_ofs,
    *,
    horizon_days: int = 90,
    readiness_horizon_days: int = 180,
    core_role: str = "ambassador",
    config: SimulationConfig | None = None,
    departures: str = "inferred",
) -> pd.DataFrame:
    """:func:`compute_truth` at several dates, stacked (encodes the tables once)."""
    if departures not in DEPARTURE_MODES:
        raise ConfigError(
            f"departures: {departures!r} is not one of {', '.join(DEPARTURE_MODES)}"
        )
    config = config_of(latent, config)
    horizon_days = check_horizon("horizon_days", horizon_days)
    readiness_horizon_days = check_horizon("readiness_horizon_days", readiness_horizon_days)
    enc = encode(tables, latent, config, core_role)
    frames = [
        _truth_at(enc, parse_as_of(d).value, horizon_days, readiness_horizon_days, config,
                  departures)
        for d in as_ofs
    ]
    if not frames:
        return pd.DataFrame({
            "member_id": pd.array([], dtype="str"),
            "as_of": pd.Series([], dtype="datetime64[ns]"),
            "p_becomes_ambassador": pd.Series([], dtype=np.float64),
            "p_disengages": pd.Series([], dtype=np.float64),
        })
    return pd.concat(frames, ignore_index=True)


def compute_truth(
    tables: Tables,
    latent: pd.DataFrame,
    as_of,
    *,
    horizon_days: int = 90,
    readiness_horizon_days: int = 180,
    core_role: str = "ambassador",
    config: SimulationConfig | None = None,
    departures: str = "inferred",
) -> pd.DataFrame:
    """True probabilities of each member's outcomes after ``as_of`` (see module docstring).

    Args:
        tables: The simulated community's contract tables (as written or as validated).
        latent: Its latent table (from :func:`simulator.community.read_latent` or the
            :class:`~simulator.community.Simulation`), carrying the simulation config in
            ``attrs["simulation_config"]``.
        as_of: Any date (ISO string, date or Timestamp).
        horizon_days: Disengagement horizon.
        readiness_horizon_days: Readiness horizon.
        core_role: The role whose spells count as becoming an ambassador.
        config: Overrides the config attached to ``latent``.
        departures: ``"inferred"`` (default, the fair oracle): whether a member has already
            left for good is inferred from what the tables show before ``as_of`` (see the
            module docstring); ``"known"``: the simulator's hidden departure dates are used, so
            members gone at ``as_of`` get ``p_disengages`` 1 and ``p_becomes_ambassador`` 0.

    Returns:
        member_id, as_of, p_becomes_ambassador (NaN for members holding the role at ``as_of``),
        p_disengages, for every member who joined before ``as_of``, in member order.

    Raises:
        ConfigError: On a bad horizon, date or ``departures``, or if no simulation config is
            available.
        ContractError: If ``latent`` lacks columns or members.
        TargetUnavailable: If ``tables`` has no roles table.
    """
    return compute_truth_many(
        tables, latent, [as_of], horizon_days=horizon_days,
        readiness_horizon_days=readiness_horizon_days, core_role=core_role, config=config,
        departures=departures,
    )
