"""Outreach in the community simulator: managers who call members, with known true effects.

:func:`simulate_with_outreach` runs :func:`simulator.community.simulate_community` with an
:class:`OutreachPlan` (the simulator's outreach hook) and :func:`write_with_outreach` writes the
result with its assignment log; ``corecast simulate --outreach`` does both. The plan adds a
cycle every ``every_weeks`` weeks after ``warmup_weeks`` weeks. At a cycle (the Monday its week
starts, after that week's departures and step-downs):

1. **Flags.** Managers flag members from the simulator's own truth, not from a model (the
   measurement must not depend on how good a model is): in each chapter the
   ``ready_per_chapter`` candidates with the highest weekly promotion hazard among those who
   could be promoted now (around, consenting, not holding the role, tenure of at least
   ``min_tenure_weeks``, led within ``pipeline_weeks``) are ``ready-now``; then the
   ``risk_share`` of the consenting members active in the last 13 weeks with the highest weekly
   departure hazard are ``at-risk`` (``ambassador-at-risk`` for role holders). A member flagged
   once is not flagged again for ``cooldown_weeks`` weeks, so that a held member's outcome
   window is not spoilt by a later call.
2. **Control group.** :func:`serving.outreach.assign_actions` holds back ``holdout_share`` of
   the flagged members (the very hash corecast's scoring uses); the others are called during the
   cycle's week (``contacted_at`` 1 to 5 days after the cycle, ``outcome_at`` up to 2 days
   later).
3. **Readiness calls.** A contacted candidate accepts with probability
   ``sigmoid(accept_base + accept_motivation * motivation)`` (motivation is the trait that
   drives promotion in the simulator); accepting starts an ambassador spell at ``outcome_at``.
4. **Retention calls.** A call re-engages a contacted at-risk member with probability
   ``retention_effect``: they cannot drift away for ``protect_weeks`` weeks and they are active
   the week after the cycle (their activity is generated like anyone's: events, messages). The
   member is then surely active within the disengagement horizon, so the true uplift of the
   share still active is ``retention_effect * P(no activity in the horizon | not called)``, per
   member; the simulator records that untreated probability (the oracle of
   :mod:`simulator.truth` with the simulator's departures known) for each flagged
   member (:func:`outreach_truth`).

Every call gets an ``outreach`` row in the data contract (``accepted`` when the member accepted
or was re-engaged, else ``no_answer`` with probability ``no_answer_share`` or ``declined``); the
held members get none. The assignment log (:func:`serving.outreach.write_assignments`) records
the flags, with the simulator's current-hazard proxies as scores: ``readiness_score = 1 - (1 -
weekly promotion hazard) ** 26`` and ``disengagement_score = 1 - (1 - weekly departure hazard)
** 13``. The outreach draws use their own random stream, so the community before the first
cycle is the one simulated without outreach.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import ConfigError
from features.tables import OUTREACH_OUTCOMES, OUTREACH_PURPOSES, Tables
from serving.delivery import DEFAULT_HOLDOUT_SHARE
from serving.outreach import OutreachConfig, assign_actions, write_assignments
from simulator.community import Simulation, simulate_community, write_simulation
from simulator.model import (
    DAY_NS,
    SimulationConfig,
    chapter_gap,
    promotion_logit,
    sigmoid,
)
from simulator.truth import compute_truth_many

__all__ = [
    "OutreachSimConfig",
    "OutreachPlan",
    "outreach_truth",
    "simulate_with_outreach",
    "write_with_outreach",
    "RISK_ACTIVE_WEEKS",
]

#: An at-risk flag needs an activity within this many weeks before the cycle.
RISK_ACTIVE_WEEKS = 13
_READY_SEG, _RISK_SEG, _AMB_RISK_SEG = "ready-now", "at-risk", "ambassador-at-risk"
_READY, _RETAIN = OUTREACH_PURPOSES
_ACCEPTED, _DECLINED, _NO_ANSWER = OUTREACH_OUTCOMES[:3]


@dataclass(frozen=True)
class OutreachSimConfig:
    """Settings of the simulated outreach (see the module docstring).

    Attributes:
        every_weeks: Weeks between cycles.
        warmup_weeks: Weeks before the first cycle.
        holdout_share: Share of the flagged members held back each cycle.
        ready_per_chapter: ``ready-now`` candidates flagged per chapter and cycle.
        risk_share: Share of the recently active members flagged at risk each cycle.
        accept_base: Intercept of the acceptance logit of a readiness call.
        accept_motivation: Weight of motivation in the acceptance logit.
        retention_effect: Probability that a retention call re-engages the member.
        protect_weeks: Weeks a re-engaged member cannot drift away.
        cooldown_weeks: Weeks before a flagged member can be flagged again.
        no_answer_share: Share of the calls not accepted that get no answer (else declined).
    """

    every_weeks: int = 4
    warmup_weeks: int = 26
    holdout_share: float = DEFAULT_HOLDOUT_SHARE
    ready_per_chapter: int = 3
    risk_share: float = 0.05
    accept_base: float = -0.5
    accept_motivation: float = 1.0
    retention_effect: float = 0.15
    protect_weeks: int = 13
    cooldown_weeks: int = 26
    no_answer_share: float = 0.4

    def __post_init__(self) -> None:
        for name in ("every_weeks", "protect_weeks", "cooldown_weeks"):
            if getattr(self, name) < 1:
                raise ConfigError(f"outreach.{name}: must be at least 1 week")
        if self.warmup_weeks < 0 or self.ready_per_chapter < 0:
            raise ConfigError("outreach.warmup_weeks and ready_per_chapter must not be negative")
        if not 0.0 <= self.holdout_share < 1.0:
            raise ConfigError(f"outreach.holdout_share: {self.holdout_share!r} not in [0, 1)")
        for name in ("risk_share", "retention_effect", "no_answer_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"outreach.{name}: {getattr(self, name)!r} not in [0, 1]")

    def to_dict(self) -> dict:
        """The settings as a JSON-serialisable dict."""
        return asdict(self)


class OutreachPlan:
    """The managers during one simulation: flags, calls, and their effects.

    The simulator's outreach hook (:class:`simulator.community.OutreachHook`): it holds
    references to the simulator's per-member arrays (updated in place by the weekly loop) and
    collects the assignment and outreach rows. Use a new plan for every simulation.
    """

    def __init__(self, config: OutreachSimConfig) -> None:
        self.config = config

    def start(self, sim: SimulationConfig, state: dict) -> None:
        """Take the simulator's config and per-member arrays, and reset the plan."""
        self.sim, self.state = sim, state
        n = state["motivation"].size
        self.rng = np.random.default_rng([sim.seed, 0x0C7])
        self.protected_until = np.full(n, -1, dtype=np.int64)
        self.forced_week = np.full(n, -1, dtype=np.int64)
        self.cool_until = np.full(n, -1, dtype=np.int64)
        self.assignments: list[dict] = []
        self.contacts: list[dict] = []

    def is_cycle(self, week: int) -> bool:
        """Whether ``week`` starts a cycle."""
        c = self.config
        return week >= c.warmup_weeks and (week - c.warmup_weeks) % c.every_weeks == 0

    def protect(self, alive: np.ndarray, week: int, hazard: np.ndarray) -> np.ndarray:
        """The departure hazards of ``alive`` with the re-engaged members' set to 0."""
        return np.where(self.protected_until[alive] >= week, 0.0, hazard)

    def forced(self, alive: np.ndarray, week: int) -> np.ndarray:
        """Which of ``alive`` are active this week because a call re-engaged them."""
        return self.forced_week[alive] == week

    def _flags(self, week, alive, hazard, is_amb, log_ties) -> tuple[np.ndarray, np.ndarray]:
        """Positions in ``alive`` of the ready-now and the at-risk flags, and weekly hazards."""
        s, cfg = self.state, self.sim
        ch = s["chapter"][alive]
        free = s["consent"][alive] & (self.cool_until[alive] < week)
        recent = s["last_active"] >= week - cfg.active_window_weeks
        gap = chapter_gap(np.bincount(s["chapter"][recent], minlength=cfg.n_chapters),
                          s["n_amb"], cfg)
        promo = sigmoid(promotion_logit(s["motivation"][alive], log_ties, gap[ch], cfg))
        tenure = week - s["join_week"][alive] - 1
        can = (free & ~is_amb & (tenure >= cfg.min_tenure_weeks)
               & (week - s["last_lead"][alive] <= cfg.pipeline_weeks))
        pos = np.flatnonzero(can)
        order = pos[np.lexsort((-promo[pos], ch[pos]))]
        rank = np.arange(order.size) - np.searchsorted(ch[order], ch[order], side="left")
        ready = np.sort(order[rank < self.config.ready_per_chapter])
        risky = free & (s["last_active"][alive] >= week - RISK_ACTIVE_WEEKS)
        risky[ready] = False
        pos = np.flatnonzero(risky)
        k = int(round(self.config.risk_share * pos.size))
        risk = np.sort(pos[np.argsort(-hazard[pos], kind="stable")[:k]])
        return ready, risk, promo

    def cycle(self, week: int, week_ns: int, alive: np.ndarray, hazard: np.ndarray,
              is_amb: np.ndarray, log_ties: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run one cycle; returns the members who accepted the role and their start times."""
        ready, risk, promo = self._flags(week, alive, hazard, is_amb, log_ties)
        pos = np.concatenate([ready, risk])
        members = alive[pos]
        segment = np.where(np.arange(pos.size) < ready.size, _READY_SEG,
                           np.where(is_amb[pos], _AMB_RISK_SEG, _RISK_SEG))
        cycle = pd.Timestamp(week_ns).date().isoformat()
        action = assign_actions(pd.Series(self.state["ids"](members)), pd.Series(segment), cycle,
                                OutreachConfig(holdout_share=self.config.holdout_share))
        action = action.to_numpy(dtype=object)
        self.cool_until[members] = week + self.config.cooldown_weeks
        self.assignments.append({
            "member": members, "cycle": np.full(pos.size, week_ns), "segment": segment,
            "action": action, "readiness_score": 1.0 - (1.0 - promo[pos]) ** 26,
            "disengagement_score": 1.0 - (1.0 - hazard[pos]) ** 13,
        })
        return self._calls(week, week_ns, members, segment, action == "contact")

    def _calls(self, week, week_ns, members, segment, called) -> tuple[np.ndarray, np.ndarray]:
        """Draw the calls' outcomes and effects; returns new ambassadors and their starts."""
        cfg, rng = self.config, self.rng
        who, seg = members[called], segment[called]
        is_ready = seg == _READY_SEG
        p_yes = np.where(
            is_ready,
            sigmoid(cfg.accept_base + cfg.accept_motivation * self.state["motivation"][who]),
            cfg.retention_effect,
        )
        yes = rng.random(who.size) < p_yes
        silent = rng.random(who.size) < cfg.no_answer_share
        at = week_ns + rng.integers(DAY_NS // 10**9, 5 * DAY_NS // 10**9, size=who.size) * 10**9
        answered = at + rng.integers(0, 2 * DAY_NS // 10**9, size=who.size) * 10**9
        self.contacts.append({
            "member": who, "contacted_ns": at, "outcome_ns": answered,
            "purpose": np.where(is_ready, _READY, _RETAIN),
            "outcome": np.where(yes, _ACCEPTED, np.where(silent, _NO_ANSWER, _DECLINED)),
        })
        kept = who[~is_ready & yes]
        self.protected_until[kept] = week + cfg.protect_weeks
        self.forced_week[kept] = week + 1
        return who[is_ready & yes], answered[is_ready & yes]

    def frames(self, member_ids: pd.Series, chapter_ids: pd.Series) -> tuple[pd.DataFrame,
                                                                            pd.DataFrame]:
        """The assignment log rows and the contract ``outreach`` table."""
        a = _stack(self.assignments, ["member", "cycle", "segment", "action",
                                      "readiness_score", "disengagement_score"])
        c = _stack(self.contacts, ["member", "contacted_ns", "outcome_ns", "purpose",
                                   "outcome"])
        home = chapter_ids.to_numpy(dtype=object)
        assignments = pd.DataFrame({
            "member_id": pd.array(member_ids.to_numpy()[a["member"]], dtype="str"),
            "cycle": pd.to_datetime(a["cycle"].astype(np.int64)),
            "segment": pd.array(a["segment"], dtype="str"),
            "action": pd.array(a["action"], dtype="str"),
            "readiness_score": a["readiness_score"].astype(float),
            "disengagement_score": a["disengagement_score"].astype(float),
            "chapter_id": pd.array(home[a["member"]], dtype="str"),
        })
        order = np.argsort(c["contacted_ns"], kind="stable")
        outreach = pd.DataFrame({
            "member_id": pd.array(member_ids.to_numpy()[c["member"]][order], dtype="str"),
            "contacted_at": pd.to_datetime(c["contacted_ns"][order].astype(np.int64)),
            "purpose": pd.array(c["purpose"][order], dtype="str"),
            "outcome": pd.array(c["outcome"][order], dtype="str"),
            "outcome_at": pd.to_datetime(c["outcome_ns"][order].astype(np.int64)),
            "channel": pd.array(["phone"] * order.size, dtype="str"),
            "contacted_by": pd.array(
                ["manager-" + str(x) for x in home[c["member"]][order]], dtype="str"),
        })
        return assignments, outreach


    def finish(self, frames: dict, config: SimulationConfig) -> dict:
        """The :class:`~simulator.community.Simulation` fields of the outreach: the outreach
        table, the assignment log rows and their true effects (per member and in total)."""
        members = frames["members"]
        assignments, outreach = self.frames(members["member_id"], members["chapter_id"])
        tables = Tables(members=members, activities=frames["activities"], roles=frames["roles"],
                        chapters=frames["chapters"], outreach=outreach, source="<simulation>")
        cycles = sorted(assignments["cycle"].unique())
        untreated = compute_truth_many(tables, frames["latent"], cycles, config=config,
                                       departures="known")
        per_member, summary = outreach_truth(assignments, outreach, frames["latent"],
                                             untreated, self.config)
        return {"outreach": outreach, "assignments": assignments,
                "outreach_truth": per_member, "outreach_summary": summary}


def simulate_with_outreach(config: SimulationConfig, outreach: OutreachSimConfig) -> Simulation:
    """Simulate a community whose managers call the members they flag (module docstring)."""
    return simulate_community(config, OutreachPlan(outreach))


def write_with_outreach(sim: Simulation, out_dir: str | Path, fmt: str = "parquet") -> list[Path]:
    """:func:`simulator.community.write_simulation`, plus the assignment log in
    ``assignments/`` (:func:`serving.outreach.write_assignments`, one file per cycle)."""

    def log(folder: Path) -> list[str]:
        if sim.assignments is None:
            return []
        for cycle, part in sim.assignments.groupby("cycle", sort=True):
            write_assignments(part, folder / "assignments", cycle)
        return ["assignments"]

    return write_simulation(sim, out_dir, fmt=fmt, extra=log)


def _stack(parts: list[dict], keys: list[str]) -> dict[str, np.ndarray]:
    if not parts:
        return {k: np.empty(0, dtype=np.int64) for k in keys}
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


def outreach_truth(assignments: pd.DataFrame, outreach: pd.DataFrame, latent: pd.DataFrame,
                   untreated: pd.DataFrame, config: OutreachSimConfig) -> tuple[pd.DataFrame,
                                                                             dict]:
    """The true effects: per flagged member and in total.

    Args:
        assignments: The assignment log rows of the simulation.
        outreach: Its outreach table.
        latent: Its latent traits (member_id, motivation).
        untreated: The oracle at the cycle dates with the departures known (member_id, as_of,
            p_disengages): what would happen to each member without a call.
        config: The outreach settings.

    Returns:
        ``(per_member, summary)``: the assignment rows with ``p_disengages_untreated``,
        ``true_uplift`` (``retention_effect * p_disengages_untreated`` for the at-risk flags) and
        ``p_accept`` (for the ready-now flags, held members too: the true probability that a call
        is accepted); and a dict of the settings, the mechanisms and the averages over the
        flagged members.
    """
    truth = untreated.rename(columns={"as_of": "cycle", "p_disengages": "p_disengages_untreated"})
    rows = assignments.merge(truth[["member_id", "cycle", "p_disengages_untreated"]],
                             on=["member_id", "cycle"], how="left")
    at_risk = (rows["segment"] != _READY_SEG).to_numpy()
    rows["true_uplift"] = np.where(
        at_risk, config.retention_effect * rows["p_disengages_untreated"], np.nan)
    motivation = latent.set_index("member_id")["motivation"]
    m = rows["member_id"].astype(str).map(motivation).to_numpy(dtype=float)
    rows["p_accept"] = np.where(
        at_risk, np.nan, sigmoid(config.accept_base + config.accept_motivation * m))
    summary = {
        "settings": config.to_dict(),
        "acceptance_curve": "p_accept = sigmoid(accept_base + accept_motivation * motivation)",
        "retention_mechanism": "a call re-engages the member with probability "
                               "retention_effect; true uplift of the share still active, per "
                               "member = retention_effect * p_disengages_untreated",
        "cycles": int(rows["cycle"].nunique()),
        "flagged_at_risk": int(at_risk.sum()),
        "flagged_ready": int((~at_risk).sum()),
        "true_retention_uplift": float(np.nanmean(rows.loc[at_risk, "true_uplift"]))
        if at_risk.any() else None,
        "true_acceptance_ready": float(np.nanmean(rows.loc[~at_risk, "p_accept"]))
        if (~at_risk).any() else None,
        "calls": int(len(outreach)),
        "accepted_calls": int((outreach["outcome"] == _ACCEPTED).sum()),
    }
    return rows, summary
