"""The behavioural model shared by the community simulator and its oracle.

:class:`SimulationConfig` holds the size of the simulated community and every behavioural
parameter. The functions below turn a member's latent traits and state into the weekly
probabilities the simulator draws from; :mod:`simulator.truth` integrates the very same
functions forward in time, so the simulator and its true probabilities can never drift apart.

The model, one weekly step at a time (``sigmoid`` is the logistic function, ``ties`` the member's
tie strength, ``tenure`` the number of whole weeks since the member's first eligible week):

- departure (absorbing): ``sigmoid(depart_base - depart_motivation * motivation
  - depart_ties * log1p(ties) + depart_newcomer * exp(-tenure / newcomer_weeks)
  + shock * [an ambassador of the home chapter left in the last shock_weeks weeks]
  - depart_ambassador * [holds the role])``;
- activity: ``sigmoid(active_base + active_motivation * motivation + tenure effect
  + seasonality + active_ties * log1p(ties) + active_ambassador * [holds the role])``;
- leading (organising or volunteering) given active:
  ``sigmoid(lead_base + lead_initiative * initiative + lead_ambassador * [holds the role])``;
- promotion given active, eligible (tenure of at least ``min_tenure_weeks`` and led within
  ``pipeline_weeks`` weeks, this week included) and not holding the role:
  ``sigmoid(promote_base + promote_motivation * motivation + promote_ties * log1p(ties)
  + promote_gap * gap)`` where ``gap`` is the chapter's shortfall below its target number of
  ambassadors (``max(1, round(ambassador_share * members active in the last
  active_window_weeks weeks))``), as a share of the target;
- stepping down, for role holders: ``sigmoid(stepdown_base - stepdown_motivation * motivation)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd
from scipy.special import expit

from features.errors import ConfigError

__all__ = [
    "SimulationConfig",
    "INITIATIVE_LOADING",
    "INITIATIVE_NOISE",
    "SOCIABILITY_LOADING",
    "WEEK_NS",
    "DAY_NS",
    "sigmoid",
    "start_ns",
    "n_weeks",
    "week_of",
    "seasonality",
    "tenure_effect",
    "tie_weekly_decay",
    "activity_logit",
    "departure_logit",
    "lead_logit",
    "promotion_logit",
    "stepdown_logit",
    "chapter_gap",
    "truth_as_of_dates",
    "config_to_dict",
    "config_from_dict",
]

DAY_NS = 86_400 * 10**9
WEEK_NS = 7 * DAY_NS

#: How the latent traits are drawn: motivation ~ N(0, 1); initiative = INITIATIVE_LOADING *
#: motivation + INITIATIVE_NOISE * N(0, 1); sociability = SOCIABILITY_LOADING * motivation +
#: sqrt(1 - SOCIABILITY_LOADING**2) * N(0, 1).
INITIATIVE_LOADING = 0.6
INITIATIVE_NOISE = 0.8
SOCIABILITY_LOADING = 0.3


@dataclass(frozen=True)
class SimulationConfig:
    """Size, seed and behavioural parameters of a simulated community.

    Attributes:
        members: Members who ever join over the simulated period.
        years: Simulated duration in years (rounded to whole weeks).
        seed: Seed of the random generator; the same config gives identical tables.
        start: First day of the simulation, a Monday (ISO date); time advances weekly from here.
        chapters: Number of local chapters; ``None`` means ``max(6, round(members / 2000))``.
        truth_every_days: Spacing in days of the dates written to the truth table.
        truth_dates: How many truth dates; the last one is 180 days before the end.
        growth: How many times faster members join at the end than at the start.
        founding_share: Share of members who join in the first week (the founding cohort).
        consent_rate: Share of members who consented to being contacted.
        chapter_size_exponent: Zipf exponent of chapter sizes (0 = all chapters equal).
        active_base: Intercept of the weekly activity logit.
        active_motivation: Weight of motivation in the activity logit.
        honeymoon: Extra activity logit right after joining, fading over ``honeymoon_weeks``.
        honeymoon_weeks: Time constant (weeks) of the honeymoon.
        tenure_decay: Activity logit lost as tenure grows, reached over ``tenure_decay_weeks``.
        tenure_decay_weeks: Time constant (weeks) of the long-term decay.
        summer_dip: Activity logit lost at the height of summer (early August).
        december_dip: Activity logit lost over the end-of-year holidays.
        active_ties: Weight of ``log1p(tie strength)`` in the activity logit (network effect).
        active_ambassador: Extra activity logit of role holders.
        depart_base: Intercept of the weekly departure logit.
        depart_motivation: How much motivation lowers the departure logit.
        depart_ties: How much ``log1p(tie strength)`` lowers the departure logit.
        depart_newcomer: Extra departure logit of newcomers, fading over ``newcomer_weeks``.
        newcomer_weeks: Time constant (weeks) of the newcomer departure bump.
        depart_ambassador: How much holding the role lowers the departure logit.
        shock: Extra departure logit in a chapter whose ambassador just left the role.
        shock_weeks: How many weeks the shock lasts.
        lead_base: Intercept of the logit of leading (organising / volunteering) when active.
        lead_initiative: Weight of the initiative trait in the leading logit.
        lead_ambassador: Extra leading logit of role holders.
        attend_share: Share of active, non-leading members who attend an event (the others
            only send messages that week).
        online_alpha: First Beta parameter of the members' liking for online events.
        online_beta: Second Beta parameter of the members' liking for online events.
        event_size: Mean number of participants of a local event.
        online_event_size: Mean number of participants of an online event.
        festival_rate: Weekly probability of a big festival, hosted by a chapter drawn by size.
        festival_country_share: Share of event-goers of the host country who travel to it.
        message_rate: Mean number of direct messages of an active member at sociability 0.
        message_sociability: Log-rate increase of messages per unit of sociability.
        intro_base: Intercept of the logit of introducing oneself to a co-attendee.
        intro_sociability: Weight of sociability in the introduction logit.
        tie_monthly_decay: Share of tie strength lost per 30 days.
        ambassador_share: Target share of ambassadors among a chapter's active members.
        active_window_weeks: Weeks of activity that count a member as active for the target.
        pipeline_weeks: A member is eligible for the role only if they led within this many
            weeks.
        min_tenure_weeks: A member is eligible for the role only after this many weeks of
            tenure.
        promote_base: Intercept of the weekly promotion logit of an eligible active member.
        promote_motivation: Weight of motivation in the promotion logit.
        promote_ties: Weight of ``log1p(tie strength)`` in the promotion logit.
        promote_gap: Weight of the chapter's ambassador shortfall in the promotion logit.
        stepdown_base: Intercept of the weekly step-down logit of role holders.
        stepdown_motivation: How much motivation lowers the step-down logit.
    """

    members: int = 20_000
    years: float = 3.0
    seed: int = 0
    start: str = "2020-01-06"
    chapters: int | None = None
    truth_every_days: int = 30
    truth_dates: int = 6
    growth: float = 3.0
    founding_share: float = 0.03
    consent_rate: float = 0.97
    chapter_size_exponent: float = 0.9
    active_base: float = -2.2
    active_motivation: float = 1.1
    honeymoon: float = 1.3
    honeymoon_weeks: float = 6.0
    tenure_decay: float = 1.0
    tenure_decay_weeks: float = 40.0
    summer_dip: float = 0.8
    december_dip: float = 1.0
    active_ties: float = 0.12
    active_ambassador: float = 1.5
    depart_base: float = -4.6
    depart_motivation: float = 0.5
    depart_ties: float = 0.15
    depart_newcomer: float = 1.4
    newcomer_weeks: float = 10.0
    depart_ambassador: float = 1.0
    shock: float = 0.8
    shock_weeks: int = 8
    lead_base: float = -2.8
    lead_initiative: float = 1.0
    lead_ambassador: float = 4.0
    attend_share: float = 0.75
    online_alpha: float = 1.2
    online_beta: float = 6.0
    event_size: float = 14.0
    online_event_size: float = 25.0
    festival_rate: float = 0.06
    festival_country_share: float = 0.4
    message_rate: float = 0.9
    message_sociability: float = 0.6
    intro_base: float = -2.5
    intro_sociability: float = 0.8
    tie_monthly_decay: float = 0.1
    ambassador_share: float = 0.02
    active_window_weeks: int = 13
    pipeline_weeks: int = 12
    min_tenure_weeks: int = 26
    promote_base: float = -7.1
    promote_motivation: float = 0.4
    promote_ties: float = 0.3
    promote_gap: float = 3.0
    stepdown_base: float = -3.4
    stepdown_motivation: float = 0.4

    def __post_init__(self) -> None:
        if not isinstance(self.members, int | np.integer) or self.members < 1:
            raise ConfigError(f"members: {self.members!r} must be a positive whole number")
        if not self.years > 0:
            raise ConfigError(f"years: {self.years!r} must be positive")
        if self.chapters is not None and self.chapters < 1:
            raise ConfigError(f"chapters: {self.chapters!r} must be a positive whole number")
        try:
            first = pd.Timestamp(self.start)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"start: cannot parse {self.start!r} as an ISO date") from exc
        if pd.isna(first) or first.tzinfo is not None or first != first.normalize():
            raise ConfigError(f"start: {self.start!r} must be a plain date such as 2020-01-06")
        if first.day_of_week != 0:
            raise ConfigError(f"start: {self.start} is a {first.day_name()}; use a Monday")
        if self.truth_every_days < 1 or self.truth_dates < 0:
            raise ConfigError("truth_every_days must be >= 1 and truth_dates >= 0")
        for name in ("founding_share", "consent_rate", "attend_share", "festival_rate",
                     "festival_country_share", "tie_monthly_decay", "ambassador_share"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ConfigError(f"{name}: {value!r} must be between 0 and 1")
        for name in ("honeymoon_weeks", "tenure_decay_weeks", "newcomer_weeks", "event_size",
                     "online_event_size", "online_alpha", "online_beta", "growth"):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigError(f"{name}: {value!r} must be positive")
        for name in ("shock_weeks", "active_window_weeks", "pipeline_weeks"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1 week")
        if self.min_tenure_weeks < 0:
            raise ConfigError("min_tenure_weeks: must not be negative")

    @property
    def n_chapters(self) -> int:
        """The number of chapters (explicit, or one per 2,000 members with at least six)."""
        if self.chapters is not None:
            return int(self.chapters)
        return max(6, round(self.members / 2000))


def config_to_dict(config: SimulationConfig) -> dict:
    """Return the config as a JSON-serialisable dict."""
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in asdict(config).items()}


def config_from_dict(values: dict) -> SimulationConfig:
    """Build a config from a dict, ignoring keys this version does not know."""
    known = {f.name for f in fields(SimulationConfig)}
    return SimulationConfig(**{k: v for k, v in values.items() if k in known})


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function."""
    return expit(x)


def start_ns(config: SimulationConfig) -> int:
    """The simulation start as nanoseconds since the epoch."""
    return int(pd.Timestamp(config.start).value)


def n_weeks(config: SimulationConfig) -> int:
    """The number of simulated weeks."""
    return max(1, int(round(config.years * 365.25 / 7)))


def week_of(ts_ns: np.ndarray, config: SimulationConfig) -> np.ndarray:
    """Week index (0 = the week starting at ``config.start``) of nanosecond timestamps."""
    return np.floor_divide(np.asarray(ts_ns, dtype=np.int64) - start_ns(config), WEEK_NS)


def seasonality(weeks: np.ndarray, config: SimulationConfig) -> np.ndarray:
    """Seasonal activity logit of week indices: a summer dip and an end-of-year dip."""
    weeks = np.asarray(weeks, dtype=np.int64)
    mid = np.datetime64(config.start, "D") + (weeks * 7 + 3).astype("timedelta64[D]")
    doy = (mid - mid.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64)
    summer = np.exp(-0.5 * ((doy - 218) / 20.0) ** 2)
    to_new_year = (doy - 362 + 182) % 365 - 182
    december = np.exp(-0.5 * (to_new_year / 6.0) ** 2)
    return -config.summer_dip * summer - config.december_dip * december


def tenure_effect(tenure_weeks: np.ndarray, config: SimulationConfig) -> np.ndarray:
    """Activity logit of tenure: a honeymoon right after joining, then a slow decay."""
    w = np.asarray(tenure_weeks, dtype=np.float64)
    return config.honeymoon * np.exp(-w / config.honeymoon_weeks) - config.tenure_decay * (
        1.0 - np.exp(-w / config.tenure_decay_weeks)
    )


def tie_weekly_decay(config: SimulationConfig) -> float:
    """Factor by which tie strength is multiplied every week."""
    return (1.0 - config.tie_monthly_decay) ** (7.0 / 30.0)


def activity_logit(
    motivation: np.ndarray,
    tenure_weeks: np.ndarray,
    season: np.ndarray | float,
    log_ties: np.ndarray,
    ambassador: np.ndarray | bool,
    config: SimulationConfig,
) -> np.ndarray:
    """Logit of the weekly probability of any activity of a member still around."""
    return (
        config.active_base
        + config.active_motivation * motivation
        + tenure_effect(tenure_weeks, config)
        + season
        + config.active_ties * log_ties
        + config.active_ambassador * np.asarray(ambassador, dtype=np.float64)
    )


def departure_logit(
    motivation: np.ndarray,
    tenure_weeks: np.ndarray,
    log_ties: np.ndarray,
    shock: np.ndarray | bool,
    ambassador: np.ndarray | bool,
    config: SimulationConfig,
) -> np.ndarray:
    """Logit of the weekly hazard of drifting away for good."""
    return (
        config.depart_base
        - config.depart_motivation * motivation
        - config.depart_ties * log_ties
        + config.depart_newcomer * np.exp(-np.asarray(tenure_weeks) / config.newcomer_weeks)
        + config.shock * np.asarray(shock, dtype=np.float64)
        - config.depart_ambassador * np.asarray(ambassador, dtype=np.float64)
    )


def lead_logit(
    initiative: np.ndarray, ambassador: np.ndarray | bool, config: SimulationConfig
) -> np.ndarray:
    """Logit of organising or volunteering in a week the member is active."""
    return (
        config.lead_base
        + config.lead_initiative * initiative
        + config.lead_ambassador * np.asarray(ambassador, dtype=np.float64)
    )


def promotion_logit(
    motivation: np.ndarray,
    log_ties: np.ndarray,
    gap: np.ndarray | float,
    config: SimulationConfig,
) -> np.ndarray:
    """Logit of the weekly hazard that an eligible, active member takes the role."""
    return (
        config.promote_base
        + config.promote_motivation * motivation
        + config.promote_ties * log_ties
        + config.promote_gap * gap
    )


def stepdown_logit(motivation: np.ndarray, config: SimulationConfig) -> np.ndarray:
    """Logit of the weekly hazard that a role holder steps down."""
    return config.stepdown_base - config.stepdown_motivation * motivation


def chapter_gap(
    active_members: np.ndarray, ambassadors: np.ndarray, config: SimulationConfig
) -> np.ndarray:
    """Shortfall of each chapter below its ambassador target, as a share of the target.

    The target is ``max(1, round(ambassador_share * active members))``.
    """
    target = np.maximum(1.0, np.round(config.ambassador_share * active_members))
    return np.clip(target - ambassadors, 0.0, None) / target


def truth_dates_that_fit(years: float, every_days: int = 30, wanted: int = 6) -> int:
    """How many of ``wanted`` truth dates ``every_days`` apart fit in ``years`` (the last one
    180 days before the end, the first at least 30 days after the start); 0 when none does."""
    room = (years * 365.25 - 210) / every_days
    return 0 if room < 0 else min(int(wanted), int(math.floor(room)) + 1)


def truth_as_of_dates(config: SimulationConfig) -> list[pd.Timestamp]:
    """The dates of the truth table: ``truth_dates`` dates ``truth_every_days`` apart, the last
    one 180 days before the end of the simulation.

    Raises:
        ConfigError: If the first date would fall within the first 30 days of the simulation.
    """
    if config.truth_dates == 0:
        return []
    begin = pd.Timestamp(config.start)
    end = begin + pd.Timedelta(weeks=n_weeks(config))
    last = end - pd.Timedelta(days=180)
    dates = [
        last - pd.Timedelta(days=config.truth_every_days * k)
        for k in range(config.truth_dates - 1, -1, -1)
    ]
    if dates[0] < begin + pd.Timedelta(days=30):
        need = math.ceil((210 + config.truth_every_days * (config.truth_dates - 1)) / 365.25 * 100)
        raise ConfigError(
            f"years={config.years} is too short for {config.truth_dates} truth dates "
            f"{config.truth_every_days} days apart ending 180 days before the end; use "
            f"years >= {need / 100:.2f} or fewer truth_dates"
        )
    return [d.as_unit("ns") for d in dates]
