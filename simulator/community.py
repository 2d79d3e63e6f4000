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
from dataclasses import dataclass
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


def _simulate_arrays(config: SimulationConfig, outreach: OutreachHook | None = None) -> dict:
    """Run the weekly process. Returns integer-coded arrays (no strings yet)."""
    rng = np.random.default_rng(config.seed)
    n, n_ch, weeks = config.members, config.n_chapters, n_weeks(config)
    t0 = start_ns(config)
    chapters = _build_chapters(n_ch)
    country_code = pd.factorize(chapters["country"])[0]
    ch_weight = 1.0 / np.arange(1, n_ch + 1) ** config.chapter_size_exponent
    ch_weight /= ch_weight.sum()

    join_t = _join_times(rng, config, weeks)
    join_week = np.floor(join_t).astype(np.int64)
    joined_ns = t0 + np.floor(join_t * (WEEK_NS // _SECOND_NS)).astype(np.int64) * _SECOND_NS
    chapter = rng.choice(n_ch, size=n, p=ch_weight)
    motivation = rng.standard_normal(n)
    sociability = SOCIABILITY_LOADING * motivation + math.sqrt(
        1 - SOCIABILITY_LOADING**2) * rng.standard_normal(n)
    initiative = INITIATIVE_LOADING * motivation + INITIATIVE_NOISE * rng.standard_normal(n)
    online = rng.beta(config.online_alpha, config.online_beta, size=n)
    consent = rng.random(n) < config.consent_rate

    season = seasonality(np.arange(weeks), config)
    decay = tie_weekly_decay(config)
    ties = np.zeros(n)
    departed_week = np.full(n, -1, dtype=np.int64)
    last_active = np.full(n, -(10**6), dtype=np.int64)
    last_lead = np.full(n, -(10**6), dtype=np.int64)
    amb = np.zeros(n, dtype=bool)
    spell_of = np.full(n, -1, dtype=np.int64)
    spells = _Spells()
    n_amb = np.zeros(n_ch, dtype=np.int64)
    last_sd = np.full(n_ch, -(10**6), dtype=np.int64)
    alive = np.empty(0, dtype=np.int64)
    n_joined = 0
    n_events = 0
    event_kind: list[np.ndarray] = []
    event_chapter: list[np.ndarray] = []
    rows = _Rows()
    plan = outreach
    if plan is not None:
        plan.start(config, {
            "motivation": motivation, "chapter": chapter, "consent": consent,
            "join_week": join_week, "last_active": last_active, "last_lead": last_lead,
            "n_amb": n_amb, "ids": _member_ids(n),
        })

    def end_spells(who: np.ndarray, when: int, week: int) -> None:
        if who.size == 0:
            return
        spells.end[spell_of[who]] = when
        spell_of[who] = -1
        amb[who] = False
        np.subtract.at(n_amb, chapter[who], 1)
        last_sd[np.unique(chapter[who])] = week

    for t in range(weeks):
        ws = t0 + t * WEEK_NS
        now_joined = int(np.searchsorted(join_week, t, side="left"))
        if now_joined > n_joined:
            alive = np.concatenate([alive, np.arange(n_joined, now_joined)])
            n_joined = now_joined
        if alive.size == 0:
            ties *= decay
            continue

        # 2-3. departure and stepping down
        m = motivation[alive]
        tenure = t - join_week[alive] - 1
        log_ties = np.log1p(ties[alive])
        since_sd = t - last_sd
        shock = (since_sd >= 1) & (since_sd <= config.shock_weeks)
        ch = chapter[alive]
        is_amb = amb[alive]
        h_dep = sigmoid(departure_logit(m, tenure, log_ties, shock[ch], is_amb, config))
        if plan is not None:
            h_dep = plan.protect(alive, t, h_dep)
        leave = rng.random(alive.size) < h_dep
        if leave.any():
            gone = alive[leave]
            departed_week[gone] = t
            end_spells(gone[amb[gone]], ws, t)
            keep = ~leave
            alive, m, tenure, log_ties, ch = (
                alive[keep], m[keep], tenure[keep], log_ties[keep], ch[keep])
            is_amb = is_amb[keep]
        was_amb = is_amb.copy()
        step_down = is_amb & (rng.random(alive.size) < sigmoid(stepdown_logit(m, config)))
        if step_down.any():
            end_spells(alive[step_down], ws, t)
            is_amb = is_amb & ~step_down
        if plan is not None and plan.is_cycle(t):
            new, starts = plan.cycle(t, ws, alive, h_dep[~leave], is_amb, log_ties)
            if new.size:
                spell_of[new] = spells.open(new, starts)
                amb[new] = True
                np.add.at(n_amb, chapter[new], 1)
                is_amb, was_amb = amb[alive], was_amb | amb[alive]

        # 4. activity
        p_act = sigmoid(activity_logit(m, tenure, season[t], log_ties, is_amb, config))
        active = rng.random(alive.size) < p_act
        if plan is not None:
            active |= plan.forced(alive, t)
        a = alive[active]
        na = a.size
        if na == 0:
            ties *= decay
            continue
        a_ch = ch[active]
        a_amb = is_amb[active]
        a_lt = log_ties[active]
        lead = rng.random(na) < sigmoid(lead_logit(initiative[a], a_amb, config))
        goes_online = rng.random(na) < online[a]
        going = lead | (rng.random(na) < config.attend_share)
        score = motivation[a] + 10.0 * a_amb + rng.gumbel(size=na)

        # 5. events: festival, online, local
        event = np.full(na, -1, dtype=np.int64)
        main = np.zeros(na, dtype=bool)
        kinds_w: list[np.ndarray] = []
        chap_w: list[np.ndarray] = []
        local = going & ~goes_online
        if rng.random() < config.festival_rate:
            host = int(rng.choice(n_ch, p=ch_weight))
            at_host = local & (a_ch == host)
            if (at_host & lead).any():
                travel = (
                    local
                    & (a_ch != host)
                    & (country_code[a_ch] == country_code[host])
                    & (rng.random(na) < config.festival_country_share)
                )
                fest = np.flatnonzero(at_host | travel)
                main_rank = np.lexsort((-score[fest], ~lead[fest]))
                event[fest] = n_events
                main[fest[main_rank[:1]]] = True
                kinds_w.append(np.array([_FESTIVAL]))
                chap_w.append(np.array([host]))
                n_events += 1
                local[fest] = False
        on = np.flatnonzero(going & goes_online)
        if on.size and lead[on].any():
            ev, mn, _ = _form_events(
                rng, np.zeros(on.size, dtype=np.int64), lead[on], score[on], 1,
                config.online_event_size,
            )
            k_on = int(ev.max()) + 1
            event[on] = n_events + ev
            main[on] = mn
            host_of = np.empty(k_on, dtype=np.int64)
            host_of[ev[mn]] = a_ch[on[mn]]
            kinds_w.append(np.full(k_on, _ONLINE))
            chap_w.append(host_of)
            n_events += k_on
        elif on.size:
            local[on] = True
        loc = np.flatnonzero(local)
        if loc.size:
            ev, mn, ev_group = _form_events(
                rng, a_ch[loc], lead[loc], score[loc], n_ch, config.event_size
            )
            has = ev >= 0
            event[loc[has]] = n_events + ev[has]
            main[loc] = mn
            k_loc = ev_group.size
            kinds_w.append(rng.choice(5, size=k_loc, p=_LOCAL_KIND_P))
            chap_w.append(ev_group)
            n_events += k_loc
        first_event = n_events - sum(k.size for k in kinds_w)
        kinds = np.concatenate(kinds_w) if kinds_w else np.empty(0, dtype=np.int64)
        ev_chap = np.concatenate(chap_w) if chap_w else np.empty(0, dtype=np.int64)
        event_kind.append(kinds)
        event_chapter.append(ev_chap)
        day = rng.integers(0, 7, size=kinds.size)
        hour = np.where(kinds == _ONLINE, rng.integers(12, 22, size=kinds.size),
                        rng.integers(9, 21, size=kinds.size))
        half = rng.integers(0, 2, size=kinds.size)
        day = np.where(kinds == _FESTIVAL, 5, day)
        hour = np.where(kinds == _FESTIVAL, 10, hour)
        ev_ts = ws + day * 24 * _HOUR_NS + hour * _HOUR_NS + half * (_HOUR_NS // 2)

        # event rows
        part = np.flatnonzero(event >= 0)
        p_ev = event[part] - first_event
        p_kind = kinds[p_ev]
        p_lead = lead[part]
        p_main = main[part]
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
        other, size = _co_participant(rng, event[part])

        # messages and introductions
        soc = sociability[a]
        msg_only = np.ones(na, dtype=bool)
        msg_only[part] = False
        rate = config.message_rate * np.exp(config.message_sociability * soc)
        n_msg = np.where(msg_only, 1 + rng.poisson(rate), rng.poisson(0.5 * rate))
        sender = np.repeat(np.arange(na), n_msg)
        in_event = np.full(na, -1, dtype=np.int64)
        in_event[part] = np.arange(part.size)
        s_slot = in_event[sender]
        use_co = (s_slot >= 0) & (rng.random(sender.size) < 0.7)
        if part.size:
            use_co &= size[np.maximum(s_slot, 0)] > 1
        counterpart = _random_member_of(
            rng, alive, ch, a_ch[sender], a[sender], n_ch, local_share=0.8
        )
        counterpart[use_co] = a[part[other[s_slot[use_co]]]]
        intro = (size > 1) & (
            rng.random(part.size) < sigmoid(config.intro_base + config.intro_sociability
                                            * soc[part])
        )
        intro_from = part[intro]
        intro_to = a[part[other[intro]]]
        msg_ts = ws + rng.integers(0, WEEK_NS // _SECOND_NS, size=sender.size) * _SECOND_NS

        rows.add(
            member=np.concatenate([a[part], a[sender], a[intro_from]]),
            ts=np.concatenate([ev_ts[p_ev], msg_ts, ev_ts[p_ev[intro]] + _HOUR_NS]),
            type=np.concatenate([
                p_type, np.full(sender.size, _MESSAGE), np.full(intro_from.size, _INTRO)
            ]).astype(np.int8),
            event=np.concatenate([
                first_event + p_ev, np.full(sender.size + intro_from.size, -1)
            ]),
            chapter=np.concatenate([ev_chap[p_ev], a_ch[sender], a_ch[intro_from]]),
            role=np.concatenate([p_role, np.full(sender.size + intro_from.size, -1)]).astype(
                np.int8),
            other=np.concatenate([np.full(part.size, -1), counterpart, intro_to]),
            weight=np.concatenate([
                p_weight, np.full(sender.size, _MESSAGE_WEIGHT),
                np.full(intro_from.size, _INTRO_WEIGHT),
            ]),
        )

        # 6. promotion (chapter state at the start of the week, after step-downs)
        led = a[lead]
        last_lead[led] = t
        recent = last_active >= t - config.active_window_weeks
        active_count = np.bincount(chapter[recent], minlength=n_ch)
        gap = chapter_gap(active_count, n_amb, config)
        candidate = (
            ~was_amb[active]
            & (t - last_lead[a] <= config.pipeline_weeks)
            & (tenure[active] >= config.min_tenure_weeks)
        )
        cand = np.flatnonzero(candidate)
        if cand.size:
            h = sigmoid(promotion_logit(
                motivation[a[cand]], a_lt[cand], gap[a_ch[cand]], config))
            new = a[cand[rng.random(cand.size) < h]]
            if new.size:
                starts = ws + rng.integers(0, WEEK_NS // _SECOND_NS, size=new.size) * _SECOND_NS
                spell_of[new] = spells.open(new, starts)
                amb[new] = True
                np.add.at(n_amb, chapter[new], 1)
        last_active[a] = t

        # 7. tie strength
        ties *= decay
        ties += np.bincount(a[part], weights=(size - 1).astype(np.float64), minlength=n)
        direct = np.concatenate([a[sender], counterpart, a[intro_from], intro_to])
        ties += np.bincount(direct[direct >= 0], minlength=n)

    return {
        "chapters": chapters,
        "chapter": chapter,
        "joined_ns": joined_ns,
        "consent": consent,
        "motivation": motivation,
        "sociability": sociability,
        "initiative": initiative,
        "online": online,
        "departed_week": departed_week,
        "rows": rows.concat(),
        "event_kind": np.concatenate(event_kind) if event_kind else np.empty(0, np.int64),
        "event_chapter": (np.concatenate(event_chapter) if event_chapter
                          else np.empty(0, np.int64)),
        "spells": spells.arrays(),
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
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        names = []
        for name in _CONTRACT_FILES:
            frame: pd.DataFrame = getattr(sim, name)
            path = tmp / f"{name}.{fmt}"
            if fmt == "parquet":
                frame.to_parquet(path, index=False)
            else:
                frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S")
            names.append(path.name)
        sim.latent.to_parquet(tmp / "latent.parquet", index=False)
        sim.truth.to_parquet(tmp / "truth.parquet", index=False)
        if sim.outreach is not None:
            names += _write_outreach(sim, tmp, fmt)
        if extra is not None:
            names += extra(tmp)
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
        (tmp / "simulation.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        names += ["latent.parquet", "truth.parquet", "simulation.json"]
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
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [target / name for name in names]


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
