"""A synthetic volunteer community, written in corecast's data contract, with its true odds.

:func:`simulate_community` grows a community of local chapters week by week (vectorised over
members; the only Python loop is over weeks) and returns the four contract tables, the members'
latent traits, and the oracle: each member's true probability of becoming an ambassador and of
disengaging, computed by :func:`simulator.truth.compute_truth` from the same hazards the
simulator draws from (see :mod:`simulator.model` for the equations). The oracle is fair:
a departure that left no trace in the tables yet is inferred from the member's silence, not read
from the simulator's hidden state.

What happens in a week, in order:

1. Members whose join week is over become part of the community.
2. Departure: each member still around may drift away for good (absorbing). Leaving ambassadors
   give up the role, which raises the departure hazard in their chapter for a few weeks.
3. Ambassadors may step down (same chapter shock).
4. Activity: each member is active with a probability driven by motivation, tenure (honeymoon,
   then decay), seasonality (summer and December dips), tie strength and the role.
5. Active members lead (organise or volunteer) with a probability driven by their initiative (most
   ambassadors lead every active week), go out online or locally, or only send messages. Local
   events are formed per chapter from its leaders (the best-placed leaders, ambassadors first,
   organise; the others co-organise or volunteer) and attendees; online events draw members of
   every chapter; now and then a chapter hosts a festival that also draws event-goers from the
   rest of its country. Members also message and introduce themselves to co-attendees.
6. Promotion: active, eligible members (members for ``min_tenure_weeks`` weeks at least, who
   led in the last ``pipeline_weeks`` weeks) become
   ambassadors with a hazard that rises with motivation and when their chapter is below its
   target (``ambassador_share`` of its active members).
7. Tie strength: decays by ``tie_monthly_decay`` per 30 days, and grows by ``attendees - 1`` for
   every event attended (any role) and by 1 per message or introduction, sent or received.

Every activity row of a member falls in a week they were drawn active, so the oracle's
"probability of no activity" is exactly the simulator's.

With an outreach hook (:class:`OutreachHook`; corecast's is
:class:`simulator.outreach.OutreachPlan`, behind ``corecast simulate --outreach``),
community managers also call the members they flag every few weeks, and the calls change what
happens next. Without it, nothing changes (the same config gives the same tables as before
outreach existed).
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.errors import ConfigError, ContractError
from features.tables import Tables
from simulator.cities import CITIES
from simulator.model import (
    INITIATIVE_LOADING,
    INITIATIVE_NOISE,
    SOCIABILITY_LOADING,
    WEEK_NS,
    SimulationConfig,
    activity_logit,
    chapter_gap,
    config_from_dict,
    config_to_dict,
    departure_logit,
    lead_logit,
    n_weeks,
    promotion_logit,
    seasonality,
    sigmoid,
    start_ns,
    stepdown_logit,
    tie_weekly_decay,
    truth_as_of_dates,
)
from simulator.truth import compute_truth, compute_truth_many

__all__ = [
    "SimulationConfig",
    "OutreachHook",
    "Simulation",
    "simulate_community",
    "write_simulation",
    "read_latent",
    "compute_truth",
    "SIMULATION_MARKER",
    "EVENT_KINDS",
    "ACTIVITY_TYPES",
    "ACTIVITY_ROLES",
]

SIMULATION_MARKER = "corecast-simulation"
EVENT_KINDS = ("meetup", "dinner", "debate", "visit", "workshop", "online", "festival")
_LOCAL_KIND_P = np.array([0.35, 0.15, 0.15, 0.12, 0.23])
_KIND_HOURS = np.array([2.0, 2.5, 2.0, 3.0, 3.0, 1.0, 6.0])
_ONLINE, _FESTIVAL = 5, 6
ACTIVITY_TYPES = ("attend", "organize", "volunteer", "message", "intro")
_ATTEND, _ORGANIZE, _VOLUNTEER, _MESSAGE, _INTRO = range(5)
ACTIVITY_ROLES = ("attendee", "organizer", "host", "speaker", "volunteer")
_R_ATTENDEE, _R_ORGANIZER, _R_HOST, _R_SPEAKER, _R_VOLUNTEER = range(5)
_TYPE_WEIGHT = np.array([1.0, 2.0, 1.5])  # x event hours, for attend / organize / volunteer
_MESSAGE_WEIGHT, _INTRO_WEIGHT = 0.1, 0.25
_SECOND_NS = 10**9
_HOUR_NS = 3600 * _SECOND_NS
_NAT = np.iinfo(np.int64).min
_CONTRACT_FILES = ("members", "activities", "roles", "chapters")


@dataclass(frozen=True)
class Simulation:
    """A simulated community.

    Attributes:
        members: Contract ``members`` table.
        activities: Contract ``activities`` table, sorted by ``occurred_at``.
        roles: Contract ``roles`` table (ambassador spells).
        chapters: Contract ``chapters`` table.
        latent: One row per member: member_id, motivation, sociability, initiative,
            online_propensity (the traits the oracle uses) and departed_at (when the member
            drifted away for good, NaT if never). Its ``attrs["simulation_config"]`` holds the
            config as a dict.
        truth: member_id, as_of, p_becomes_ambassador, p_disengages at the config's truth dates
            (the fair oracle: hidden departures inferred, see
            :func:`simulator.truth.compute_truth`).
        config: The config that produced it.
        outreach: Contract ``outreach`` table (the calls managers made), ``None`` without
            outreach.
        assignments: The assignment log rows (who was flagged, contacted or held, per cycle).
        outreach_truth: The assignment rows with their true effects
            (:func:`simulator.outreach.outreach_truth`).
        outreach_summary: The outreach settings and true effects in total.
    """

    members: pd.DataFrame
    activities: pd.DataFrame
    roles: pd.DataFrame
    chapters: pd.DataFrame
    latent: pd.DataFrame
    truth: pd.DataFrame
    config: SimulationConfig
    outreach: pd.DataFrame | None = None
    assignments: pd.DataFrame | None = None
    outreach_truth: pd.DataFrame | None = None
    outreach_summary: dict | None = None

    def tables(self) -> Tables:
        """The contract tables as a :class:`~features.tables.Tables`."""
        return Tables(
            members=self.members,
            activities=self.activities,
            roles=self.roles,
            chapters=self.chapters,
            outreach=self.outreach,
            source=f"<simulation seed={self.config.seed}>",
        )


# ----------------------------------------------------------------------------- the world


def _build_chapters(n: int) -> pd.DataFrame:
    """Chapter reference data: real cities, several countries; ids like ``fr-paris``."""
    cities = [CITIES[i % len(CITIES)] for i in range(n)]
    rounds = [i // len(CITIES) for i in range(n)]
    ids, names, city_names, countries = [], [], [], []
    for (city, country, code), r in zip(cities, rounds, strict=True):
        slug = "".join(ch if ch.isalnum() else "-" for ch in city.lower()).strip("-")
        suffix = "" if r == 0 else f"-{r + 1}"
        ids.append(f"{code}-{slug}{suffix}")
        names.append(f"{city} chapter" if r == 0 else f"{city} chapter {r + 1}")
        city_names.append(city)
        countries.append(country)
    return pd.DataFrame(
        {
            "chapter_id": pd.array(ids, dtype="str"),
            "name": pd.array(names, dtype="str"),
            "city": pd.array(city_names, dtype="str"),
            "country": pd.array(countries, dtype="str"),
        }
    )


def _join_times(rng: np.random.Generator, config: SimulationConfig, weeks: int) -> np.ndarray:
    """Sorted join times in (fractional) weeks: a founding cohort, then exponential growth."""
    n = config.members
    founders = int(round(n * config.founding_share))
    u = rng.random(n - founders)
    if abs(config.growth - 1.0) < 1e-9:
        later = u * weeks
    else:
        g = math.log(config.growth)
        later = weeks * np.log1p(u * (config.growth - 1.0)) / g
    t = np.concatenate([rng.random(founders), later])
    return np.sort(np.minimum(t, weeks - 1e-6))


# ----------------------------------------------------------------------------- events


def _group_starts(sorted_keys: np.ndarray, n_groups: int) -> np.ndarray:
    """Start offset of each group in an array sorted by group code."""
    return np.searchsorted(sorted_keys, np.arange(n_groups), side="left")


def _form_events(
    rng: np.random.Generator,
    group: np.ndarray,
    is_lead: np.ndarray,
    score: np.ndarray,
    n_groups: int,
    mean_size: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split the participants of each group (chapter) into events.

    A group holds events only if it has at least one leader. It holds ``min(leaders, 1 +
    Poisson(participants / mean_size))`` events; the best-scored leaders are
    the main organisers, one per event, and every other participant joins an event at random.

    Returns:
        ``(event, main, event_group)``: the event number of each participant (-1 when its group
        has no leader), whether it is an event's main organiser, and the group of each event.
    """
    n_lead = np.bincount(group[is_lead], minlength=n_groups)
    n_all = np.bincount(group, minlength=n_groups)
    k = np.minimum(n_lead, 1 + rng.poisson(n_all / mean_size))
    offsets = np.cumsum(k) - k
    event = np.full(group.size, -1, dtype=np.int64)
    main = np.zeros(group.size, dtype=bool)
    lead_pos = np.flatnonzero(is_lead)
    order = lead_pos[np.lexsort((-score[lead_pos], group[lead_pos]))]
    g_sorted = group[order]
    rank = np.arange(order.size) - _group_starts(g_sorted, n_groups)[g_sorted]
    is_main = rank < k[g_sorted]
    main[order[is_main]] = True
    event[order[is_main]] = offsets[g_sorted[is_main]] + rank[is_main]
    rest = np.flatnonzero(~main & (k[group] > 0))
    event[rest] = offsets[group[rest]] + (rng.random(rest.size) * k[group[rest]]).astype(np.int64)
    return event, main, np.repeat(np.arange(n_groups), k)


def _co_participant(rng: np.random.Generator, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each participant, the position of another random participant of the same event.

    Returns:
        ``(other, size)``: the index of a co-participant (itself when alone) and event sizes.
    """
    if event.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    order = np.argsort(event, kind="stable")
    ev_sorted = event[order]
    starts_flag = np.r_[True, ev_sorted[1:] != ev_sorted[:-1]]
    group_id = np.cumsum(starts_flag) - 1
    group_start = np.flatnonzero(starts_flag)
    sizes = np.diff(np.r_[group_start, ev_sorted.size])
    size_sorted = sizes[group_id]
    pos = np.arange(ev_sorted.size) - group_start[group_id]
    step = 1 + (rng.random(ev_sorted.size) * np.maximum(size_sorted - 1, 1)).astype(np.int64)
    other_pos = np.where(size_sorted > 1, (pos + step) % size_sorted, pos)
    other = np.empty(event.size, dtype=np.int64)
    other[order] = order[group_start[group_id] + other_pos]
    size = np.empty(event.size, dtype=np.int64)
    size[order] = size_sorted
    return other, size


def _random_member_of(
    rng: np.random.Generator,
    pool: np.ndarray,
    pool_chapter: np.ndarray,
    chapter: np.ndarray,
    me: np.ndarray,
    n_chapters: int,
    local_share: float,
) -> np.ndarray:
    """A random member of ``pool`` other than ``me``: of the same chapter with probability
    ``local_share`` (when it has another member), else of any chapter. -1 if none exists."""
    order = np.argsort(pool_chapter, kind="stable")
    pool_sorted = pool[order]
    starts = _group_starts(pool_chapter[order], n_chapters)
    counts = np.bincount(pool_chapter, minlength=n_chapters)
    local = (rng.random(me.size) < local_share) & (counts[chapter] > 1)
    u = rng.random(me.size)
    pick = np.where(
        local,
        starts[chapter] + (u * counts[chapter]).astype(np.int64),
        (u * pool.size).astype(np.int64),
    )
    other = pool_sorted[np.minimum(pick, pool.size - 1)]
    clash = other == me
    if clash.any():
        nxt = np.where(
            local[clash],
            starts[chapter[clash]] + (pick[clash] - starts[chapter[clash]] + 1) % np.maximum(
                counts[chapter[clash]], 1),
            (pick[clash] + 1) % pool.size,
        )
        other[clash] = pool_sorted[nxt]
    other[other == me] = -1
    return other


# ----------------------------------------------------------------------------- the engine


class _Rows:
    """Per-week activity arrays, concatenated once at the end."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {
            k: [] for k in ("member", "ts", "type", "event", "chapter", "role", "other", "weight")
        }

    def add(self, **arrays: np.ndarray) -> None:
        order = np.argsort(arrays["ts"], kind="stable")
        for key, value in arrays.items():
            self.parts[key].append(value[order])

    def concat(self) -> dict[str, np.ndarray]:
        empty = {"member": np.int64, "ts": np.int64, "type": np.int8, "event": np.int64,
                 "chapter": np.int64, "role": np.int8, "other": np.int64, "weight": np.float64}
        return {
            k: (np.concatenate(v) if v else np.empty(0, dtype=empty[k]))
            for k, v in self.parts.items()
        }


class _Spells:
    """Growable arrays of role spells (member, start ns, end ns or ``_NAT``)."""

    def __init__(self, capacity: int = 256) -> None:
        self.member = np.empty(capacity, dtype=np.int64)
        self.start = np.empty(capacity, dtype=np.int64)
        self.end = np.empty(capacity, dtype=np.int64)
        self.size = 0

    def open(self, members: np.ndarray, starts: np.ndarray) -> np.ndarray:
        need = self.size + members.size
        if need > self.member.size:
            cap = max(need, 2 * self.member.size)
            for name in ("member", "start", "end"):
                grown = np.empty(cap, dtype=np.int64)
                grown[: self.size] = getattr(self, name)[: self.size]
                setattr(self, name, grown)
        slots = np.arange(self.size, need)
        self.member[slots] = members
        self.start[slots] = starts
        self.end[slots] = _NAT
        self.size = need
        return slots

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k)[: self.size].copy() for k in ("member", "start", "end")}


def _member_ids(n: int):
    """The member id of simulated members by index (``m000001`` ...), as a function."""
    width = max(6, len(str(n)))
    return lambda index: [f"m{i + 1:0{width}d}" for i in index]


class OutreachHook(Protocol):
    """What the weekly loop asks of simulated outreach (the managers and their calls).

    The simulator calls :meth:`start` once with its per-member arrays (updated in place as
    the weeks go by: ``motivation``, ``chapter``, ``consent``, ``join_week``, ``last_active``,
    ``last_lead``, ``n_amb``, and ``ids``, a function from member indices to ids), then, every
    week, :meth:`protect` on the departure hazards, :meth:`cycle` when :meth:`is_cycle`
    (after departures and step-downs; it returns the members who take the role and when) and
    :meth:`forced` on the activity draws; :meth:`finish` turns what happened into the
    :class:`Simulation` fields ``outreach``, ``assignments``, ``outreach_truth`` and
    ``outreach_summary``.
    """

    def start(self, config: SimulationConfig, state: dict) -> None: ...

    def is_cycle(self, week: int) -> bool: ...

    def protect(self, alive: np.ndarray, week: int, hazard: np.ndarray) -> np.ndarray: ...

    def cycle(self, week: int, week_ns: int, alive: np.ndarray, hazard: np.ndarray,
              is_amb: np.ndarray, log_ties: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def forced(self, alive: np.ndarray, week: int) -> np.ndarray: ...

    def finish(self, frames: dict, config: SimulationConfig) -> dict: ...


@dataclass(frozen=True, eq=False)
class _World:
    """The chapters and the members' fixed traits, drawn before the first week.

    Attributes:
        config: The simulation config.
        t0: The start of week 0 (ns).
        chapters: The chapters table.
        country_code: Each chapter's country code.
        ch_weight: Each chapter's share of the members who join (and of festivals).
        join_week, joined_ns: When each member joins (week, ns).
        chapter: Each member's home chapter.
        motivation, sociability, initiative, online, consent: Each member's traits.
        season: Each week's seasonality term.
        decay: The weekly decay factor of tie strength.
    """

    config: SimulationConfig
    t0: int
    chapters: pd.DataFrame
    country_code: np.ndarray
    ch_weight: np.ndarray
    join_week: np.ndarray
    joined_ns: np.ndarray
    chapter: np.ndarray
    motivation: np.ndarray
    sociability: np.ndarray
    initiative: np.ndarray
    online: np.ndarray
    consent: np.ndarray
    season: np.ndarray
    decay: float


@dataclass(frozen=True, eq=False)
class _Ledger:
    """What the weeks change; the arrays, lists and builders are updated in place.

    Attributes:
        ties: Each member's tie strength.
        departed_week: The week each member left for good (-1: never).
        last_active, last_lead: Each member's last week active, and last week they led.
        amb: Each member holds the role.
        spell_of: Each member's open spell in ``spells`` (-1: none).
        spells: The role spells.
        n_amb: Each chapter's role holders.
        last_sd: Each chapter's last week a spell ended.
        rows: The activity rows.
        event_kind, event_chapter: Each week's events: kind and chapter.
    """

    ties: np.ndarray
    departed_week: np.ndarray
    last_active: np.ndarray
    last_lead: np.ndarray
    amb: np.ndarray
    spell_of: np.ndarray
    spells: _Spells
    n_amb: np.ndarray
    last_sd: np.ndarray
    rows: _Rows
    event_kind: list[np.ndarray]
    event_chapter: list[np.ndarray]


@dataclass(frozen=True, eq=False)
class _Around:
    """The members still around this week (after departures) and their covariates.

    ``is_amb``: holds the role now; ``was_amb``: held it at the start of the week (after
    departures) or took it from an outreach call; the other arrays are aligned on ``alive``.
    """

    alive: np.ndarray
    m: np.ndarray
    tenure: np.ndarray
    log_ties: np.ndarray
    ch: np.ndarray
    is_amb: np.ndarray
    was_amb: np.ndarray


@dataclass(frozen=True, eq=False)
class _Active:
    """This week's active members (``a``, positions ``active`` in ``_Around.alive``) and their
    draws: chapter, role, log tie strength, who leads, goes online, goes out, and the score that
    ranks event organisers."""

    active: np.ndarray
    a: np.ndarray
    a_ch: np.ndarray
    a_amb: np.ndarray
    a_lt: np.ndarray
    lead: np.ndarray
    goes_online: np.ndarray
    going: np.ndarray
    score: np.ndarray


@dataclass(frozen=True, eq=False)
class _Batch:
    """Events of one kind formed this week: the active members in them (positions ``who``),
    each one's event within the batch (-1: none) and whether they are its main organiser, and
    each event's kind and chapter."""

    who: np.ndarray
    event: np.ndarray
    main: np.ndarray
    kinds: np.ndarray
    chapters: np.ndarray


@dataclass(frozen=True, eq=False)
class _Events:
    """This week's events: each active member's event number (-1: none) and main organiser
    flag; the number of the week's first event; each event's kind, chapter and time (ns)."""

    event: np.ndarray
    main: np.ndarray
    first: int
    kinds: np.ndarray
    chapters: np.ndarray
    ts: np.ndarray


@dataclass(frozen=True, eq=False)
class _Participation:
    """The active members at an event (positions ``part``), with their event (counted from the
    week's first), activity type, role, weight, a co-participant and the event's size."""

    part: np.ndarray
    p_ev: np.ndarray
    p_type: np.ndarray
    p_role: np.ndarray
    p_weight: np.ndarray
    other: np.ndarray
    size: np.ndarray


@dataclass(frozen=True, eq=False)
class _Messages:
    """This week's messages (sender positions, counterparts, times) and introductions (the
    introducing participants ``intro`` among ``part``, from and to)."""

    sender: np.ndarray
    counterpart: np.ndarray
    ts: np.ndarray
    intro: np.ndarray
    intro_from: np.ndarray
    intro_to: np.ndarray


def _draw_world(rng: np.random.Generator, config: SimulationConfig) -> _World:
    """Chapters, join times and traits (the draws made before the first week)."""
    n, n_ch, weeks = config.members, config.n_chapters, n_weeks(config)
    t0 = start_ns(config)
    chapters = _build_chapters(n_ch)
    ch_weight = 1.0 / np.arange(1, n_ch + 1) ** config.chapter_size_exponent
    ch_weight /= ch_weight.sum()

    join_t = _join_times(rng, config, weeks)
    chapter = rng.choice(n_ch, size=n, p=ch_weight)
    motivation = rng.standard_normal(n)
    sociability = SOCIABILITY_LOADING * motivation + math.sqrt(
        1 - SOCIABILITY_LOADING**2) * rng.standard_normal(n)
    initiative = INITIATIVE_LOADING * motivation + INITIATIVE_NOISE * rng.standard_normal(n)
    online = rng.beta(config.online_alpha, config.online_beta, size=n)
    consent = rng.random(n) < config.consent_rate
    return _World(
        config=config,
        t0=t0,
        chapters=chapters,
        country_code=pd.factorize(chapters["country"])[0],
        ch_weight=ch_weight,
        join_week=np.floor(join_t).astype(np.int64),
        joined_ns=t0 + np.floor(join_t * (WEEK_NS // _SECOND_NS)).astype(np.int64) * _SECOND_NS,
        chapter=chapter,
        motivation=motivation,
        sociability=sociability,
        initiative=initiative,
        online=online,
        consent=consent,
        season=seasonality(np.arange(weeks), config),
        decay=tie_weekly_decay(config),
    )


def _new_ledger(n: int, n_ch: int) -> _Ledger:
    """The ledger before the first week: nobody active, led, left or holding the role."""
    return _Ledger(
        ties=np.zeros(n),
        departed_week=np.full(n, -1, dtype=np.int64),
        last_active=np.full(n, -(10**6), dtype=np.int64),
        last_lead=np.full(n, -(10**6), dtype=np.int64),
        amb=np.zeros(n, dtype=bool),
        spell_of=np.full(n, -1, dtype=np.int64),
        spells=_Spells(),
        n_amb=np.zeros(n_ch, dtype=np.int64),
        last_sd=np.full(n_ch, -(10**6), dtype=np.int64),
        rows=_Rows(),
        event_kind=[],
        event_chapter=[],
    )


def _end_spells(world: _World, ledger: _Ledger, who: np.ndarray, when: int, week: int) -> None:
    """End the role spells of ``who`` at ``when`` (ns), in ``week``."""
    if who.size == 0:
        return
    ledger.spells.end[ledger.spell_of[who]] = when
    ledger.spell_of[who] = -1
    ledger.amb[who] = False
    np.subtract.at(ledger.n_amb, world.chapter[who], 1)
    ledger.last_sd[np.unique(world.chapter[who])] = week


def _open_spells(world: _World, ledger: _Ledger, new: np.ndarray, starts: np.ndarray) -> None:
    """Open role spells for the members ``new``, starting at ``starts`` (ns)."""
    ledger.spell_of[new] = ledger.spells.open(new, starts)
    ledger.amb[new] = True
    np.add.at(ledger.n_amb, world.chapter[new], 1)


def _simulate_arrays(config: SimulationConfig, outreach: OutreachHook | None = None) -> dict:
    """Run the weekly process. Returns integer-coded arrays (no strings yet)."""
    rng = np.random.default_rng(config.seed)
    world = _draw_world(rng, config)
    n = config.members
    ledger = _new_ledger(n, config.n_chapters)
    plan = outreach
    if plan is not None:
        plan.start(config, {
            "motivation": world.motivation, "chapter": world.chapter, "consent": world.consent,
            "join_week": world.join_week, "last_active": ledger.last_active,
            "last_lead": ledger.last_lead, "n_amb": ledger.n_amb, "ids": _member_ids(n),
        })
    alive = np.empty(0, dtype=np.int64)
    n_joined = 0
    n_events = 0
    for t in range(n_weeks(config)):
        now_joined = int(np.searchsorted(world.join_week, t, side="left"))
        if now_joined > n_joined:
            alive = np.concatenate([alive, np.arange(n_joined, now_joined)])
            n_joined = now_joined
        if alive.size == 0:
            ties = ledger.ties
            ties *= world.decay
            continue
        alive, k = _simulate_week(rng, world, ledger, plan, alive, t, n_events)
        n_events += k
    return _engine_output(world, ledger, plan)


def _simulate_week(
    rng: np.random.Generator, world: _World, ledger: _Ledger, plan: OutreachHook | None,
    alive: np.ndarray, t: int, first_event: int,
) -> tuple[np.ndarray, int]:
    """Steps 2-7 of week ``t`` for the members ``alive`` (numbered events from
    ``first_event``). Returns the members still around and the number of events held."""
    ws = world.t0 + t * WEEK_NS
    around, h_dep = _depart(rng, world, ledger, plan, alive, t, ws)
    around = _step_down(rng, world, ledger, plan, around, h_dep, t, ws)
    act = _draw_activity(rng, world, plan, around, t)
    if act is None:
        ties = ledger.ties
        ties *= world.decay
        return around.alive, 0
    events = _week_events(rng, world, act, ws, first_event)
    ledger.event_kind.append(events.kinds)
    ledger.event_chapter.append(events.chapters)
    part = _participation(rng, act, events)
    msgs = _messages(rng, world, around, act, part, ws)
    _add_rows(ledger.rows, act, events, part, msgs)
    _promote(rng, world, ledger, around, act, t, ws)
    _grow_ties(world, ledger, act, part, msgs)
    return around.alive, events.kinds.size


def _depart(
    rng: np.random.Generator, world: _World, ledger: _Ledger, plan: OutreachHook | None,
    alive: np.ndarray, t: int, ws: int,
) -> tuple[_Around, np.ndarray]:
    """Step 2, departure: who drifts away for good (leaving ambassadors give up the role).

    Returns the members still around (``is_amb`` and ``was_amb``: the role they hold) and their
    departure hazards.
    """
    config = world.config
    m = world.motivation[alive]
    tenure = t - world.join_week[alive] - 1
    log_ties = np.log1p(ledger.ties[alive])
    since_sd = t - ledger.last_sd
    shock = (since_sd >= 1) & (since_sd <= config.shock_weeks)
    ch = world.chapter[alive]
    is_amb = ledger.amb[alive]
    h_dep = sigmoid(departure_logit(m, tenure, log_ties, shock[ch], is_amb, config))
    if plan is not None:
        h_dep = plan.protect(alive, t, h_dep)
    leave = rng.random(alive.size) < h_dep
    if leave.any():
        gone = alive[leave]
        ledger.departed_week[gone] = t
        _end_spells(world, ledger, gone[ledger.amb[gone]], ws, t)
        keep = ~leave
        alive, m, tenure, log_ties, ch = (
            alive[keep], m[keep], tenure[keep], log_ties[keep], ch[keep])
        is_amb = is_amb[keep]
    around = _Around(alive=alive, m=m, tenure=tenure, log_ties=log_ties, ch=ch, is_amb=is_amb,
                     was_amb=is_amb.copy())
    return around, h_dep[~leave]


def _step_down(
    rng: np.random.Generator, world: _World, ledger: _Ledger, plan: OutreachHook | None,
    around: _Around, h_dep: np.ndarray, t: int, ws: int,
) -> _Around:
    """Step 3, stepping down; then, in an outreach cycle, the managers' calls (``h_dep``: the
    departure hazards of the members around)."""
    alive, is_amb, was_amb = around.alive, around.is_amb, around.was_amb
    step_down = is_amb & (rng.random(alive.size) < sigmoid(stepdown_logit(around.m,
                                                                          world.config)))
    if step_down.any():
        _end_spells(world, ledger, alive[step_down], ws, t)
        is_amb = is_amb & ~step_down
    if plan is not None and plan.is_cycle(t):
        new, starts = plan.cycle(t, ws, alive, h_dep, is_amb, around.log_ties)
        if new.size:
            _open_spells(world, ledger, new, starts)
            is_amb, was_amb = ledger.amb[alive], was_amb | ledger.amb[alive]
    return replace(around, is_amb=is_amb, was_amb=was_amb)


def _draw_activity(
    rng: np.random.Generator, world: _World, plan: OutreachHook | None, around: _Around, t: int,
) -> _Active | None:
    """Step 4, activity, and what the active members do (lead, go online, go out); ``None``
    when nobody is active."""
    config = world.config
    is_amb = around.is_amb
    p_act = sigmoid(activity_logit(around.m, around.tenure, world.season[t], around.log_ties,
                                   is_amb, config))
    active = rng.random(around.alive.size) < p_act
    if plan is not None:
        active |= plan.forced(around.alive, t)
    a = around.alive[active]
    na = a.size
    if na == 0:
        return None
    a_amb = is_amb[active]
    lead = rng.random(na) < sigmoid(lead_logit(world.initiative[a], a_amb, config))
    goes_online = rng.random(na) < world.online[a]
    going = lead | (rng.random(na) < config.attend_share)
    score = world.motivation[a] + 10.0 * a_amb + rng.gumbel(size=na)
    return _Active(active=active, a=a, a_ch=around.ch[active], a_amb=a_amb,
                   a_lt=around.log_ties[active], lead=lead, goes_online=goes_online,
                   going=going, score=score)


def _week_events(
    rng: np.random.Generator, world: _World, act: _Active, ws: int, first: int
) -> _Events:
    """Step 5, events: a festival, online events, local events; numbered from ``first``."""
    local = act.going & ~act.goes_online
    batches = []
    festival = _festival(rng, world, act, local)
    if festival is not None:
        batches.append(festival)
        local[festival.who] = False
    on = np.flatnonzero(act.going & act.goes_online)
    if on.size and act.lead[on].any():
        batches.append(_online_events(rng, world, act, on))
    elif on.size:
        local[on] = True
    loc = np.flatnonzero(local)
    if loc.size:
        batches.append(_local_events(rng, world, act, loc))

    event = np.full(act.a.size, -1, dtype=np.int64)
    main = np.zeros(act.a.size, dtype=bool)
    number = first
    for batch in batches:
        has = batch.event >= 0
        event[batch.who[has]] = number + batch.event[has]
        main[batch.who] = batch.main
        number += batch.kinds.size
    kinds = (np.concatenate([b.kinds for b in batches]) if batches
             else np.empty(0, dtype=np.int64))
    chapters = (np.concatenate([b.chapters for b in batches]) if batches
                else np.empty(0, dtype=np.int64))
    return _Events(event=event, main=main, first=first, kinds=kinds, chapters=chapters,
                   ts=_event_times(rng, kinds, ws))


def _festival(
    rng: np.random.Generator, world: _World, act: _Active, local: np.ndarray
) -> _Batch | None:
    """Now and then a chapter with a leader out this week hosts a festival, which also draws
    local event-goers from the rest of its country (``local``); ``None`` when there is none."""
    config = world.config
    if not rng.random() < config.festival_rate:
        return None
    host = int(rng.choice(config.n_chapters, p=world.ch_weight))
    at_host = local & (act.a_ch == host)
    if not (at_host & act.lead).any():
        return None
    travel = (
        local
        & (act.a_ch != host)
        & (world.country_code[act.a_ch] == world.country_code[host])
        & (rng.random(act.a.size) < config.festival_country_share)
    )
    fest = np.flatnonzero(at_host | travel)
    main_rank = np.lexsort((-act.score[fest], ~act.lead[fest]))
    main = np.zeros(fest.size, dtype=bool)
    main[main_rank[:1]] = True
    return _Batch(who=fest, event=np.zeros(fest.size, dtype=np.int64), main=main,
                  kinds=np.array([_FESTIVAL]), chapters=np.array([host]))


def _online_events(
    rng: np.random.Generator, world: _World, act: _Active, on: np.ndarray
) -> _Batch:
    """Online events for the members ``on`` (at least one of them leads); each event's chapter
    is its main organiser's."""
    ev, mn, _ = _form_events(
        rng, np.zeros(on.size, dtype=np.int64), act.lead[on], act.score[on], 1,
        world.config.online_event_size,
    )
    k_on = int(ev.max()) + 1
    host_of = np.empty(k_on, dtype=np.int64)
    host_of[ev[mn]] = act.a_ch[on[mn]]
    return _Batch(who=on, event=ev, main=mn, kinds=np.full(k_on, _ONLINE), chapters=host_of)


def _local_events(
    rng: np.random.Generator, world: _World, act: _Active, loc: np.ndarray
) -> _Batch:
    """Local events, per chapter, for the members ``loc``, with a random local kind each."""
    ev, mn, ev_group = _form_events(
        rng, act.a_ch[loc], act.lead[loc], act.score[loc], world.config.n_chapters,
        world.config.event_size,
    )
    kinds = rng.choice(5, size=ev_group.size, p=_LOCAL_KIND_P)
    return _Batch(who=loc, event=ev, main=mn, kinds=kinds, chapters=ev_group)


def _event_times(rng: np.random.Generator, kinds: np.ndarray, ws: int) -> np.ndarray:
    """When each event of the week starting at ``ws`` takes place (festivals: Saturday 10:00)."""
    day = rng.integers(0, 7, size=kinds.size)
    hour = np.where(kinds == _ONLINE, rng.integers(12, 22, size=kinds.size),
                    rng.integers(9, 21, size=kinds.size))
    half = rng.integers(0, 2, size=kinds.size)
    day = np.where(kinds == _FESTIVAL, 5, day)
    hour = np.where(kinds == _FESTIVAL, 10, hour)
    return ws + day * 24 * _HOUR_NS + hour * _HOUR_NS + half * (_HOUR_NS // 2)


def _participation(rng: np.random.Generator, act: _Active, events: _Events) -> _Participation:
    """The event rows: each participant's type (organise, co-organise, volunteer, attend), role
    and weight, and a co-participant."""
    part = np.flatnonzero(events.event >= 0)
    p_ev = events.event[part] - events.first
    p_kind = events.kinds[p_ev]
    p_lead = act.lead[part]
    p_main = events.main[part]
    co_org = p_lead & ~p_main & (rng.random(part.size) < 0.3)
    p_type = np.where(p_main | co_org, _ORGANIZE, np.where(p_lead, _VOLUNTEER, _ATTEND))
    dinner_like = (p_kind == 1) | (p_kind == 3)
    talk_like = (p_kind == 2) | (p_kind == 4) | (p_kind >= _ONLINE)
    p_role = np.select(
        [p_type == _ATTEND, p_type == _VOLUNTEER, p_main & (p_kind == 1),
         co_org & dinner_like, co_org & talk_like],
        [_R_ATTENDEE, _R_VOLUNTEER, _R_HOST, _R_HOST, _R_SPEAKER],
        _R_ORGANIZER,
    )
    p_weight = _KIND_HOURS[p_kind] * _TYPE_WEIGHT[p_type]
    other, size = _co_participant(rng, events.event[part])
    return _Participation(part=part, p_ev=p_ev, p_type=p_type, p_role=p_role, p_weight=p_weight,
                          other=other, size=size)


def _messages(
    rng: np.random.Generator, world: _World, around: _Around, act: _Active,
    part: _Participation, ws: int,
) -> _Messages:
    """Messages (to a co-attendee or a member around, mostly of the same chapter) and
    introductions to co-attendees."""
    config = world.config
    a, na, p = act.a, act.a.size, part.part
    soc = world.sociability[a]
    msg_only = np.ones(na, dtype=bool)
    msg_only[p] = False
    rate = config.message_rate * np.exp(config.message_sociability * soc)
    n_msg = np.where(msg_only, 1 + rng.poisson(rate), rng.poisson(0.5 * rate))
    sender = np.repeat(np.arange(na), n_msg)
    in_event = np.full(na, -1, dtype=np.int64)
    in_event[p] = np.arange(p.size)
    s_slot = in_event[sender]
    use_co = (s_slot >= 0) & (rng.random(sender.size) < 0.7)
    if p.size:
        use_co &= part.size[np.maximum(s_slot, 0)] > 1
    counterpart = _random_member_of(
        rng, around.alive, around.ch, act.a_ch[sender], a[sender], config.n_chapters,
        local_share=0.8,
    )
    counterpart[use_co] = a[p[part.other[s_slot[use_co]]]]
    intro = (part.size > 1) & (
        rng.random(p.size) < sigmoid(config.intro_base + config.intro_sociability * soc[p])
    )
    msg_ts = ws + rng.integers(0, WEEK_NS // _SECOND_NS, size=sender.size) * _SECOND_NS
    return _Messages(sender=sender, counterpart=counterpart, ts=msg_ts, intro=intro,
                     intro_from=p[intro], intro_to=a[p[part.other[intro]]])


def _add_rows(
    rows: _Rows, act: _Active, events: _Events, part: _Participation, msgs: _Messages
) -> None:
    """The week's activity rows: event rows, messages, introductions."""
    a, p, p_ev = act.a, part.part, part.p_ev
    sender, intro_from = msgs.sender, msgs.intro_from
    rows.add(
        member=np.concatenate([a[p], a[sender], a[intro_from]]),
        ts=np.concatenate([events.ts[p_ev], msgs.ts, events.ts[p_ev[msgs.intro]] + _HOUR_NS]),
        type=np.concatenate([
            part.p_type, np.full(sender.size, _MESSAGE), np.full(intro_from.size, _INTRO)
        ]).astype(np.int8),
        event=np.concatenate([
            events.first + p_ev, np.full(sender.size + intro_from.size, -1)
        ]),
        chapter=np.concatenate([events.chapters[p_ev], act.a_ch[sender], act.a_ch[intro_from]]),
        role=np.concatenate([part.p_role, np.full(sender.size + intro_from.size, -1)]).astype(
            np.int8),
        other=np.concatenate([np.full(p.size, -1), msgs.counterpart, msgs.intro_to]),
        weight=np.concatenate([
            part.p_weight, np.full(sender.size, _MESSAGE_WEIGHT),
            np.full(intro_from.size, _INTRO_WEIGHT),
        ]),
    )


def _promote(
    rng: np.random.Generator, world: _World, ledger: _Ledger, around: _Around, act: _Active,
    t: int, ws: int,
) -> None:
    """Step 6, promotion (chapter state at the start of the week, after step-downs)."""
    config = world.config
    a = act.a
    ledger.last_lead[a[act.lead]] = t
    recent = ledger.last_active >= t - config.active_window_weeks
    active_count = np.bincount(world.chapter[recent], minlength=config.n_chapters)
    gap = chapter_gap(active_count, ledger.n_amb, config)
    candidate = (
        ~around.was_amb[act.active]
        & (t - ledger.last_lead[a] <= config.pipeline_weeks)
        & (around.tenure[act.active] >= config.min_tenure_weeks)
    )
    cand = np.flatnonzero(candidate)
    if cand.size:
        h = sigmoid(promotion_logit(
            world.motivation[a[cand]], act.a_lt[cand], gap[act.a_ch[cand]], config))
        new = a[cand[rng.random(cand.size) < h]]
        if new.size:
            starts = ws + rng.integers(0, WEEK_NS // _SECOND_NS, size=new.size) * _SECOND_NS
            _open_spells(world, ledger, new, starts)
    ledger.last_active[a] = t


def _grow_ties(
    world: _World, ledger: _Ledger, act: _Active, part: _Participation, msgs: _Messages
) -> None:
    """Step 7, tie strength: decay, then what the week's events and messages add."""
    n = world.config.members
    a = act.a
    ties = ledger.ties
    ties *= world.decay
    ties += np.bincount(a[part.part], weights=(part.size - 1).astype(np.float64), minlength=n)
    direct = np.concatenate([a[msgs.sender], msgs.counterpart, a[msgs.intro_from],
                             msgs.intro_to])
    ties += np.bincount(direct[direct >= 0], minlength=n)


def _engine_output(world: _World, ledger: _Ledger, plan: OutreachHook | None) -> dict:
    """The integer-coded arrays :func:`_build_tables` turns into tables."""
    return {
        "chapters": world.chapters,
        "chapter": world.chapter,
        "joined_ns": world.joined_ns,
        "consent": world.consent,
        "motivation": world.motivation,
        "sociability": world.sociability,
        "initiative": world.initiative,
        "online": world.online,
        "departed_week": ledger.departed_week,
        "rows": ledger.rows.concat(),
        "event_kind": (np.concatenate(ledger.event_kind) if ledger.event_kind
                       else np.empty(0, np.int64)),
        "event_chapter": (np.concatenate(ledger.event_chapter) if ledger.event_chapter
                          else np.empty(0, np.int64)),
        "spells": ledger.spells.arrays(),
        "plan": plan,
    }


# ----------------------------------------------------------------------------- tables


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Vectorised ``prefix`` + zero-padded number strings."""
    digits = pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _take(values: pa.Array, codes: np.ndarray) -> pa.Array:
    """``values[codes]`` with nulls where ``codes`` < 0."""
    missing = codes < 0
    return pc.take(values, pa.array(np.where(missing, 0, codes), mask=missing))


def _ts(values: np.ndarray) -> pa.Array:
    """Nanosecond integers as an Arrow timestamp array (``_NAT`` = null)."""
    missing = values == _NAT
    return pa.array(values, mask=missing if missing.any() else None).cast(pa.timestamp("ns"))


def _build_tables(out: dict, config: SimulationConfig) -> dict[str, pd.DataFrame]:
    n = config.members
    width = max(6, len(str(n)))
    member_ids = _ids("m", np.arange(1, n + 1), width)
    chapters: pd.DataFrame = out["chapters"]
    chapter_ids = pa.array(chapters["chapter_id"].to_numpy(dtype=object), type=pa.string())
    members = pa.table({
        "member_id": member_ids,
        "joined_at": _ts(out["joined_ns"]),
        "chapter_id": pc.take(chapter_ids, out["chapter"]),
        "email": pc.binary_join_element_wise(member_ids, "example.org", "@"),
        "consent": pa.array(out["consent"]),
    }).to_pandas()

    r = out["rows"]
    n_ev = out["event_kind"].size
    kind_names = pa.array([f"{k}-" for k in EVENT_KINDS])
    ev_width = max(7, len(str(n_ev)))
    event_ids = pc.binary_join_element_wise(
        pc.take(kind_names, out["event_kind"]), _ids("", np.arange(1, n_ev + 1), ev_width), ""
    )
    activities = pa.table({
        "member_id": pc.take(member_ids, r["member"]),
        "occurred_at": _ts(r["ts"]),
        "activity_type": pc.take(pa.array(ACTIVITY_TYPES), r["type"].astype(np.int64)),
        "event_id": _take(event_ids, r["event"]),
        "chapter_id": pc.take(chapter_ids, r["chapter"]),
        "role": _take(pa.array(ACTIVITY_ROLES), r["role"].astype(np.int64)),
        "counterpart_id": _take(member_ids, r["other"]),
        "weight": pa.array(r["weight"], type=pa.float64()),
    }).to_pandas()

    sp = out["spells"]
    order = np.argsort(sp["start"], kind="stable")
    roles = pa.table({
        "member_id": pc.take(member_ids, sp["member"][order]),
        "role": pa.array(["ambassador"] * order.size, type=pa.string()),
        "started_at": _ts(sp["start"][order]),
        "ended_at": _ts(sp["end"][order]),
        "chapter_id": pc.take(chapter_ids, out["chapter"][sp["member"][order]]),
    }).to_pandas()

    dep = out["departed_week"]
    departed_ns = np.where(dep >= 0, start_ns(config) + dep * WEEK_NS, _NAT)
    latent = pa.table({
        "member_id": member_ids,
        "motivation": out["motivation"],
        "sociability": out["sociability"],
        "initiative": out["initiative"],
        "online_propensity": out["online"],
        "departed_at": _ts(departed_ns),
    }).to_pandas()
    latent.attrs["simulation_config"] = config_to_dict(config)
    return {"members": members, "activities": activities, "roles": roles,
            "chapters": chapters, "latent": latent}


def simulate_community(
    config: SimulationConfig, outreach: OutreachHook | None = None
) -> Simulation:
    """Simulate a volunteer community and compute its oracle at the config's truth dates.

    Args:
        config: Size, seed and behavioural parameters.
        outreach: Managers who call the members they flag, with known true effects (an
            :class:`OutreachHook` such as :class:`simulator.outreach.OutreachPlan`, used
            once); ``None`` (default): no outreach, and the community is exactly the one
            simulated before outreach existed.

    Returns:
        The :class:`Simulation` (contract tables in canonical columns and dtypes, latent traits,
        truth table, config). Deterministic for a given config.

    Raises:
        ConfigError: If the config cannot produce its truth dates (simulation too short).
    """
    dates = truth_as_of_dates(config)
    out = _simulate_arrays(config, outreach)
    frames = _build_tables(out, config)
    tables = Tables(
        members=frames["members"], activities=frames["activities"], roles=frames["roles"],
        chapters=frames["chapters"], source="<simulation>",
    )
    truth = compute_truth_many(tables, frames["latent"], dates, config=config)
    extras = {} if out["plan"] is None else out["plan"].finish(frames, config)
    return Simulation(
        members=frames["members"],
        activities=frames["activities"],
        roles=frames["roles"],
        chapters=frames["chapters"],
        latent=frames["latent"],
        truth=truth,
        config=config,
        **extras,
    )


# ----------------------------------------------------------------------------- files


def _is_simulation_folder(folder: Path) -> bool:
    meta = folder / "simulation.json"
    if not meta.is_file():
        return False
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("kind") == SIMULATION_MARKER


def _write_outreach(sim: Simulation, folder: Path, fmt: str) -> list[str]:
    """Write the outreach table and the true effects into ``folder``."""
    path = folder / f"outreach.{fmt}"
    if fmt == "parquet":
        sim.outreach.to_parquet(path, index=False)
    else:
        sim.outreach.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S")
    sim.outreach_truth.to_parquet(folder / "outreach_truth.parquet", index=False)
    return [path.name, "outreach_truth.parquet"]


def write_simulation(
    sim: Simulation,
    out_dir: str | Path,
    fmt: str = "parquet",
    extra: Callable[[Path], list[str]] | None = None,
) -> list[Path]:
    """Write a simulation as a data source folder.

    Writes ``members``, ``activities``, ``roles`` and ``chapters`` as ``.parquet`` or ``.csv``
    (``fmt``), and always ``latent.parquet``, ``truth.parquet`` and ``simulation.json`` (the
    config and a few counts). With outreach, also ``outreach`` (``fmt``, the contract table),
    ``outreach_truth.parquet`` (the true effect per flagged member) and, in ``simulation.json``,
    ``outreach``: the settings and the true effects in total; ``extra`` may add more (corecast's
    :func:`simulator.outreach.write_with_outreach` adds the assignment log). Everything is
    written into a temporary sibling folder that then replaces ``out_dir``, so a failure leaves
    nothing half-written.

    Args:
        sim: The simulation.
        out_dir: Target folder; created if missing. It may be empty or a previous simulation
            output (which is replaced).
        fmt: ``"parquet"`` or ``"csv"``.
        extra: Called with the folder being written; writes more files into it and returns
            their names.

    Returns:
        The paths written, inside ``out_dir``.

    Raises:
        ConfigError: If ``fmt`` is unknown, or ``out_dir`` is a file or a non-empty folder that
            is not a previous simulation output.
    """
    target = _output_folder(out_dir, fmt)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        names = _write_files(sim, tmp, fmt, extra)
        _replace_folder(target, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [target / name for name in names]


def _output_folder(out_dir: str | Path, fmt: str) -> Path:
    """``out_dir`` as an absolute path, once it is known that a simulation may be written there.

    Raises:
        ConfigError: If ``fmt`` is unknown, or ``out_dir`` is a file or a non-empty folder that
            is not a previous simulation output.
    """
    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"fmt: {fmt!r} is not supported; use 'parquet' or 'csv'")
    target = Path(out_dir).expanduser().absolute()
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target}: exists and is not a folder; choose another output folder")
    if target.is_dir() and any(target.iterdir()) and not _is_simulation_folder(target):
        raise ConfigError(
            f"{target}: folder is not empty and is not a previous simulation output; "
            "refusing to overwrite it. Choose an empty or new folder."
        )
    return target


def _write_files(
    sim: Simulation, folder: Path, fmt: str, extra: Callable[[Path], list[str]] | None
) -> list[str]:
    """Write every file of the simulation into ``folder``; returns their names."""
    names = []
    for name in _CONTRACT_FILES:
        frame: pd.DataFrame = getattr(sim, name)
        path = folder / f"{name}.{fmt}"
        if fmt == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S")
        names.append(path.name)
    sim.latent.to_parquet(folder / "latent.parquet", index=False)
    sim.truth.to_parquet(folder / "truth.parquet", index=False)
    if sim.outreach is not None:
        names += _write_outreach(sim, folder, fmt)
    if extra is not None:
        names += extra(folder)
    meta = _simulation_meta(sim, fmt)
    (folder / "simulation.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return names + ["latent.parquet", "truth.parquet", "simulation.json"]


def _simulation_meta(sim: Simulation, fmt: str) -> dict:
    """The content of ``simulation.json``: marker, format, config, counts (and outreach)."""
    meta = {
        "kind": SIMULATION_MARKER,
        "version": 1,
        "format": fmt,
        "config": config_to_dict(sim.config),
        "counts": {
            "members": int(len(sim.members)),
            "activities": int(len(sim.activities)),
            "role_spells": int(len(sim.roles)),
            "chapters": int(len(sim.chapters)),
            "truth_rows": int(len(sim.truth)),
        },
    }
    if sim.outreach_summary is not None:
        meta["outreach"] = sim.outreach_summary
    return meta


def _replace_folder(target: Path, tmp: Path) -> None:
    """Move the written folder ``tmp`` to ``target``, replacing a previous output (put back if
    the move fails)."""
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        old.rmdir()
        target.rename(old)
        try:
            tmp.rename(target)
        except BaseException:
            old.rename(target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(target)


def read_latent(source: str | Path) -> pd.DataFrame | None:
    """Read the latent traits of a simulated data source folder.

    Args:
        source: A folder written by :func:`write_simulation` (other sources give ``None``).

    Returns:
        The latent frame with ``attrs["simulation_config"]`` set from ``simulation.json``, or
        ``None`` when ``source`` is not a simulated folder.

    Raises:
        ContractError: If the folder is a simulation output but ``latent.parquet`` is missing.
    """
    try:
        folder = Path(source).expanduser()
        if not folder.is_dir() or not _is_simulation_folder(folder):
            return None
    except (OSError, ValueError):
        return None
    path = folder / "latent.parquet"
    if not path.is_file():
        raise ContractError(f"{path}: missing; the simulation folder is incomplete, rewrite it")
    latent = pd.read_parquet(path)
    meta = json.loads((folder / "simulation.json").read_text(encoding="utf-8"))
    latent.attrs["simulation_config"] = config_to_dict(config_from_dict(meta.get("config", {})))
    return latent
