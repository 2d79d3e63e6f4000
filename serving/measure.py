"""What the outreach loop measures: did calling the flagged members change anything?

Inputs: the assignment log (:func:`serving.outreach.read_assignments`: per cycle, who was flagged
and whether they were to be contacted or held), the data source's tables (activities, roles and
the optional ``outreach`` table of the contacts managers made) and the date of the measurement.

Definitions (:class:`MeasureConfig` holds the settings):

- **Purpose** of a flag: ``ready-now`` members are called to offer the core role (purpose
  ``readiness``); ``at-risk`` and ``ambassador-at-risk`` members to keep them (``retention``).
- **Matching** a contact to a cycle: the first ``outreach`` row of the member with the flag's
  purpose and ``cycle <= contacted_at < cycle + match_days`` (default 28 days, the spacing of
  monthly cycles). Contacts outside that window, or of the other purpose, belong to no cycle.
- **Acceptance rate** (by purpose, segment, chapter and score band): among the matched contacts
  of contacted members whose outcome is known (``pending`` left out), the share ``accepted``.
  The score band is that of the score behind the flag (readiness for ``ready-now``,
  disengagement otherwise).
- **Retention**: the ``at-risk`` and ``ambassador-at-risk`` members of the cycles whose
  disengagement horizon (:attr:`LabelConfig.horizon_days`) has fully passed by ``as_of``, and
  who were eligible for the disengagement label at the cycle. *Still active* is the opposite
  of that label (:func:`features.labels.build_disengagement_labels`): at least one activity in
  ``(cycle, cycle + horizon_days]``. The uplift is the share still active among contacted members
  minus that among held ones. Members are compared as assigned (contacted or held), whether or
  not the call happened: the hold is what is random, so this is the effect of the decision to
  call.
- **Readiness**: the ``ready-now`` members of the cycles whose readiness window
  (:attr:`LabelConfig.readiness_horizon_days`) has passed and who were eligible for the
  readiness label at the cycle: the share of contacted candidates who accepted (a matched
  contact, outcome ``accepted``), the share of contacted and of held candidates with a core-role
  start in ``(cycle, cycle + window]`` (:func:`features.labels.build_readiness_labels`), the
  uplift in role starts (contacted minus held) and acceptance among contacted minus role starts
  among held.
- **Intervals**: a rate has a Wilson score interval; a difference of two rates the Newcombe
  hybrid score interval (Newcombe 1998, method 10) built from the two Wilson intervals, at the
  ``confidence`` level (default 95%). Both are closed-form: no random draws.
- **Too few to conclude**: a comparison whose contacted or held group has fewer than
  ``min_group`` members (default 30), or a rate with fewer than ``min_group`` known outcomes, is
  flagged (``conclusive`` false) and reported in words, not as a figure; :meth:`metrics` leaves
  its rate, uplift and bounds out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import pandas as pd

from features.errors import ConfigError, TargetUnavailable
from features.labels import LabelConfig, build_disengagement_labels, build_readiness_labels
from features.tables import OUTREACH_PURPOSES, Tables, parse_as_of
from serving.outreach import ACTIONS, FLAGGED_SEGMENTS

__all__ = [
    "MeasureConfig",
    "Rate",
    "Comparison",
    "OutreachMeasurement",
    "PURPOSE_OF_SEGMENT",
    "wilson_interval",
    "newcombe_interval",
    "measure_outreach",
]

_READY, _RETAIN = OUTREACH_PURPOSES
_CONTACT, _HOLD = ACTIONS[:2]
#: Why a flagged member is called, per flagged segment.
PURPOSE_OF_SEGMENT = {
    segment: (_READY if segment == "ready-now" else _RETAIN) for segment in FLAGGED_SEGMENTS
}
_DECIDED = ("accepted", "declined", "no_answer")


@dataclass(frozen=True)
class MeasureConfig:
    """Settings of the measurement.

    Attributes:
        labels: The label settings: the retention horizon is ``labels.horizon_days``, the
            readiness window ``labels.readiness_horizon_days``, the core role
            ``labels.core_role`` (use those the models were trained with).
        match_days: A contact belongs to a cycle when made within this many days from it.
        confidence: Level of the intervals.
        min_group: Fewest members per group (or known outcomes per rate) to state a figure.
        score_bands: Increasing edges of the score bands of the acceptance rates.
    """

    labels: LabelConfig = field(default_factory=LabelConfig)
    match_days: int = 28
    confidence: float = 0.95
    min_group: int = 30
    score_bands: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)

    def __post_init__(self) -> None:
        if isinstance(self.match_days, bool) or not isinstance(self.match_days, int) or (
                self.match_days < 1):
            raise ConfigError(f"match_days: {self.match_days!r} must be a positive whole number")
        if not 0.5 <= self.confidence < 1.0:
            raise ConfigError(f"confidence: {self.confidence!r} must be in [0.5, 1)")
        if isinstance(self.min_group, bool) or not isinstance(self.min_group, int) or (
                self.min_group < 1):
            raise ConfigError(f"min_group: {self.min_group!r} must be a positive whole number")
        edges = tuple(self.score_bands)
        if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
            raise ConfigError(f"score_bands: {edges!r} must be two or more increasing edges")

    @property
    def z(self) -> float:
        """The normal quantile of the two-sided ``confidence`` level."""
        return NormalDist().inv_cdf(0.5 + self.confidence / 2)


def wilson_interval(k: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (NaN, NaN when ``n`` is 0)."""
    if n <= 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(k1: int, n1: int, k2: int, n2: int, z: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval of ``k1 / n1 - k2 / n2`` (NaN when a group is empty)."""
    if n1 <= 0 or n2 <= 0:
        return math.nan, math.nan
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, z)
    l2, u2 = wilson_interval(k2, n2, z)
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


@dataclass(frozen=True)
class Rate:
    """``k`` of ``n``, with its interval (NaN when ``n`` is 0)."""

    k: int
    n: int
    low: float
    high: float

    @property
    def rate(self) -> float:
        """``k / n`` (NaN when ``n`` is 0)."""
        return self.k / self.n if self.n else math.nan

    @classmethod
    def of(cls, k: int, n: int, z: float) -> Rate:
        """The rate ``k / n`` with its Wilson interval."""
        return cls(int(k), int(n), *wilson_interval(int(k), int(n), z))


@dataclass(frozen=True)
class Comparison:
    """Contacted against held members: two rates, their difference and its interval.

    Attributes:
        contacted: The rate among contacted members.
        held: The rate among held members.
        uplift: ``contacted.rate - held.rate``.
        low: Lower bound of the uplift's interval.
        high: Upper bound.
        conclusive: Both groups have at least ``min_group`` members.
    """

    contacted: Rate
    held: Rate
    uplift: float
    low: float
    high: float
    conclusive: bool

    @classmethod
    def of(cls, contacted: Rate, held: Rate, config: MeasureConfig) -> Comparison:
        """Compare two rates (Newcombe interval of the difference)."""
        low, high = newcombe_interval(contacted.k, contacted.n, held.k, held.n, config.z)
        enough = min(contacted.n, held.n) >= config.min_group
        return cls(contacted, held, contacted.rate - held.rate, low, high, enough)


@dataclass(frozen=True)
class OutreachMeasurement:
    """What the outreach loop measured (see the module docstring for the definitions).

    Attributes:
        as_of: The date of the measurement.
        config: Its settings.
        acceptance: One row per group: ``by`` (purpose, segment, chapter, score band),
            ``group``, ``contacted``, ``recorded`` (matched contacts), ``decided`` (known
            outcomes), ``accepted``, ``rate``, ``low``, ``high``, ``conclusive``.
        retention: Share still active after the horizon, contacted vs held.
        readiness_acceptance: Contacted candidates who accepted (of all contacted candidates).
        readiness_starts: Share with a core-role start in the window, contacted vs held.
        readiness_acceptance_vs_held: Acceptance among contacted vs role starts among held.
        held_but_contacted: Held members with a matched contact anyway (the hold was not kept).
        readiness_note: Why readiness could not be measured (empty when it was).
        retention_members: The members behind the retention comparison: ``member_id``,
            ``cycle``, ``action``, ``active`` (still active after the horizon).
        readiness_members: The members behind the readiness figures: ``member_id``, ``cycle``,
            ``action``, ``accepted``, ``started`` (a core-role start in the window).
    """

    as_of: pd.Timestamp
    config: MeasureConfig
    acceptance: pd.DataFrame
    retention: Comparison
    readiness_acceptance: Rate
    readiness_starts: Comparison
    readiness_acceptance_vs_held: Comparison
    held_but_contacted: int = 0
    readiness_note: str = ""
    retention_members: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    readiness_members: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    def to_frame(self) -> pd.DataFrame:
        """Every figure as rows: measure, group, k, n, rate, low, high, conclusive."""
        rows = []
        for _, r in self.acceptance.iterrows():
            rows.append([f"acceptance by {r['by']}", r["group"], r["accepted"], r["decided"],
                         r["rate"], r["low"], r["high"], r["conclusive"]])
        for name, comp in self._comparisons().items():
            for arm in (_CONTACT, _HOLD):
                rate: Rate = getattr(comp, "contacted" if arm == _CONTACT else "held")
                rows.append([name, arm, rate.k, rate.n, rate.rate, rate.low, rate.high,
                             rate.n >= self.config.min_group])
            rows.append([name, "uplift", np.nan, np.nan, comp.uplift, comp.low, comp.high,
                         comp.conclusive])
        frame = pd.DataFrame(
            rows, columns=["measure", "group", "k", "n", "rate", "low", "high", "conclusive"]
        )
        return frame.astype({"k": "float64", "n": "float64", "conclusive": bool})

    def _comparisons(self) -> dict[str, Comparison]:
        return {
            "retention: still active": self.retention,
            "readiness: role starts": self.readiness_starts,
            "readiness: accepted (contacted) vs role starts (held)":
                self.readiness_acceptance_vs_held,
        }

    def metrics(self) -> dict[str, float]:
        """Flat figures for run tracking (see :func:`_comparison_metrics` for the names)."""
        out: dict[str, float] = {"outreach_held_but_contacted": float(self.held_but_contacted)}
        out |= _comparison_metrics("retention", self.retention, self.config)
        out |= _comparison_metrics("readiness", self.readiness_starts, self.config)
        out |= _comparison_metrics("readiness_accept_vs_held", self.readiness_acceptance_vs_held,
                                   self.config, arms=False)
        acc = self.readiness_acceptance
        out["readiness_acceptance_n"] = float(acc.n)
        if acc.n >= self.config.min_group:
            out |= {"readiness_acceptance": acc.rate, "readiness_acceptance_low": acc.low,
                    "readiness_acceptance_high": acc.high}
        for _, r in self.acceptance[self.acceptance["by"] == "purpose"].iterrows():
            out[f"acceptance_{r['group']}_n"] = float(r["decided"])
            if r["conclusive"]:
                out[f"acceptance_{r['group']}"] = float(r["rate"])
        return out

    def summary_lines(self) -> list[str]:
        """Plain sentences for the report: one per comparison, then the acceptance rates."""
        cfg = self.config
        lines = [
            _comparison_line(
                f"Retention ({cfg.labels.horizon_days} days after the cycle)",
                "still active", self.retention, cfg),
        ]
        if self.readiness_note:
            lines.append(f"Readiness could not be measured: {self.readiness_note}")
        else:
            lines.append(_comparison_line(
                f"Readiness ({cfg.labels.readiness_horizon_days} days after the cycle)",
                f"starting as {cfg.labels.core_role}", self.readiness_starts, cfg))
            lines.append(_rate_line("Contacted candidates who accepted",
                                    self.readiness_acceptance, cfg))
        for _, r in self.acceptance[self.acceptance["by"] == "purpose"].iterrows():
            rate = Rate(int(r["accepted"]), int(r["decided"]), r["low"], r["high"])
            lines.append(_rate_line(f"Acceptance of {r['group']} calls (known outcomes)", rate,
                                    cfg))
        if self.held_but_contacted:
            lines.append(f"{self.held_but_contacted} held member(s) were contacted anyway; "
                         "they still count as held, which hides part of the effect.")
        return lines


def _comparison_metrics(prefix: str, comp: Comparison, config: MeasureConfig,
                        arms: bool = True) -> dict[str, float]:
    """``<prefix>_contacted_n``, ``<prefix>_held_n``, ``<prefix>_conclusive`` (1 or 0) and, when
    conclusive, ``<prefix>_rate_contacted``, ``<prefix>_rate_held``, ``<prefix>_uplift``,
    ``<prefix>_uplift_low``, ``<prefix>_uplift_high``."""
    out = {f"{prefix}_conclusive": float(comp.conclusive)}
    if arms:
        out |= {f"{prefix}_contacted_n": float(comp.contacted.n),
                f"{prefix}_held_n": float(comp.held.n)}
    if comp.conclusive:
        if arms:
            out |= {f"{prefix}_rate_contacted": comp.contacted.rate,
                    f"{prefix}_rate_held": comp.held.rate}
        out |= {f"{prefix}_uplift": comp.uplift, f"{prefix}_uplift_low": comp.low,
                f"{prefix}_uplift_high": comp.high}
    return out


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _rate_line(what: str, rate: Rate, config: MeasureConfig) -> str:
    if rate.n < config.min_group:
        return (f"{what}: too few to conclude ({rate.k} of {rate.n}; at least "
                f"{config.min_group} needed).")
    return (f"{what}: {_pct(rate.rate)} ({rate.k} of {rate.n}; {config.confidence:.0%} "
            f"interval {_pct(rate.low)} to {_pct(rate.high)}).")


def _comparison_line(what: str, outcome: str, comp: Comparison, config: MeasureConfig) -> str:
    c, h = comp.contacted, comp.held
    counts = f"{c.n} contacted and {h.n} held member(s)"
    if not comp.conclusive:
        return (f"{what}: too few to conclude ({counts}; at least {config.min_group} in each "
                "group needed).")
    points = 100 * comp.uplift
    if comp.low > 0:
        verdict = f"calls raised the share {outcome} by {points:.1f} points"
    elif comp.high < 0:
        verdict = f"calls lowered the share {outcome} by {-points:.1f} points"
    else:
        verdict = f"no clear difference in the share {outcome} ({points:+.1f} points)"
    return (f"{what}: {verdict}; {_pct(c.rate)} of {c.n} contacted vs {_pct(h.rate)} of "
            f"{h.n} held ({config.confidence:.0%} interval of the difference "
            f"{100 * comp.low:+.1f} to {100 * comp.high:+.1f} points).")


# ----------------------------------------------------------------------------- computation


def _match_contacts(assignments: pd.DataFrame, outreach: pd.DataFrame | None,
                    match_days: int) -> pd.DataFrame:
    """The assignments with their matched contact: ``outcome`` (NA when none was matched)."""
    out = assignments.copy()
    out["purpose"] = out["segment"].astype(str).map(PURPOSE_OF_SEGMENT)
    out["outcome"] = pd.Series(pd.NA, index=out.index, dtype="string")
    if outreach is None or outreach.empty or out.empty:
        return out
    keys = out[["member_id", "cycle", "purpose"]].reset_index()
    rows = outreach[["member_id", "contacted_at", "purpose", "outcome"]].astype(
        {"member_id": "string", "purpose": "string", "outcome": "string"})
    keys["member_id"] = keys["member_id"].astype("string")
    keys["purpose"] = keys["purpose"].astype("string")
    pairs = keys.merge(rows, on=["member_id", "purpose"], how="inner")
    end = pairs["cycle"] + pd.Timedelta(days=match_days)
    pairs = pairs[(pairs["contacted_at"] >= pairs["cycle"]) & (pairs["contacted_at"] < end)]
    first = pairs.sort_values(["index", "contacted_at"], kind="stable").drop_duplicates("index")
    out.loc[first["index"].to_numpy(), "outcome"] = first["outcome"].to_numpy()
    return out


def _score_band(frame: pd.DataFrame, edges: tuple[float, ...]) -> pd.Series:
    score = np.where(frame["purpose"] == _READY, frame["readiness_score"],
                     frame["disengagement_score"]).astype(float)
    labels = [f"{a:.2f}-{b:.2f}" for a, b in zip(edges, edges[1:], strict=False)]
    band = pd.cut(score, bins=list(edges), labels=labels, include_lowest=True)
    return pd.Series(band, index=frame.index).astype("string").fillna("no score")


def _acceptance(matched: pd.DataFrame, config: MeasureConfig) -> pd.DataFrame:
    """Acceptance rates of contacted members by purpose, segment, chapter and score band."""
    contacted = matched[matched["action"] == _CONTACT].copy()
    contacted["score band"] = _score_band(contacted, config.score_bands)
    if "chapter_id" in contacted.columns:
        contacted["chapter"] = contacted["chapter_id"].astype("string").fillna("<no chapter>")
    rows = []
    for by in ("purpose", "segment", "chapter", "score band"):
        if by not in contacted.columns:
            continue
        for group, part in contacted.groupby(by, sort=True):
            decided = part["outcome"].isin(_DECIDED)
            accepted = int((part["outcome"] == "accepted").sum())
            rate = Rate.of(accepted, int(decided.sum()), config.z)
            rows.append([by, str(group), len(part), int(part["outcome"].notna().sum()),
                         rate.n, rate.k, rate.rate, rate.low, rate.high,
                         rate.n >= config.min_group])
    return pd.DataFrame(rows, columns=["by", "group", "contacted", "recorded", "decided",
                                       "accepted", "rate", "low", "high", "conclusive"])


def _labelled(matched: pd.DataFrame, segments, days: int, as_of: pd.Timestamp, build) -> \
        pd.DataFrame:
    """The flagged members of ``segments`` whose window has passed, with their label (members
    not eligible for the label at their cycle are left out)."""
    chosen = matched[matched["segment"].isin(segments)]
    chosen = chosen[chosen["cycle"] + pd.Timedelta(days=days) <= as_of]
    parts = []
    for cycle, part in chosen.groupby("cycle", sort=True):
        labels = build(cycle)
        part = part[part["member_id"].isin(labels.index)].copy()
        part["label"] = labels.reindex(part["member_id"].astype(str)).to_numpy(dtype=bool)
        parts.append(part)
    if not parts:
        return chosen.assign(label=pd.Series(dtype=bool)).iloc[0:0]
    return pd.concat(parts)


def _arm_rate(frame: pd.DataFrame, arm: str, hits: pd.Series, z: float) -> Rate:
    mine = frame["action"] == arm
    return Rate.of(int((hits & mine).sum()), int(mine.sum()), z)


_MEMBER_KEYS = ["member_id", "cycle", "action"]


def _retention(matched, tables, as_of, config) -> tuple[Comparison, pd.DataFrame]:
    labels = config.labels
    risk = [s for s in FLAGGED_SEGMENTS if PURPOSE_OF_SEGMENT[s] == _RETAIN]
    frame = _labelled(matched, risk, labels.horizon_days, as_of,
                      lambda c: build_disengagement_labels(tables, c, labels))
    active = ~frame["label"].astype(bool)
    comp = Comparison.of(_arm_rate(frame, _CONTACT, active, config.z),
                         _arm_rate(frame, _HOLD, active, config.z), config)
    return comp, frame[_MEMBER_KEYS].assign(active=active).reset_index(drop=True)


def _readiness(matched, tables, as_of, config) -> tuple[Rate, Comparison, Comparison,
                                                       pd.DataFrame]:
    labels = config.labels
    ready = [s for s in FLAGGED_SEGMENTS if PURPOSE_OF_SEGMENT[s] == _READY]
    frame = _labelled(matched, ready, labels.readiness_horizon_days, as_of,
                      lambda c: build_readiness_labels(tables, c, labels))
    started = frame["label"].astype(bool)
    accepted = (frame["outcome"] == "accepted").fillna(False).astype(bool)
    acceptance = _arm_rate(frame, _CONTACT, accepted, config.z)
    held = _arm_rate(frame, _HOLD, started, config.z)
    starts = Comparison.of(_arm_rate(frame, _CONTACT, started, config.z), held, config)
    members = frame[_MEMBER_KEYS].assign(accepted=accepted, started=started)
    return (acceptance, starts, Comparison.of(acceptance, held, config),
            members.reset_index(drop=True))


def _empty_readiness(config: MeasureConfig) -> tuple[Rate, Comparison, Comparison,
                                                     pd.DataFrame]:
    none = Rate.of(0, 0, config.z)
    comp = Comparison.of(none, none, config)
    return none, comp, comp, pd.DataFrame(columns=[*_MEMBER_KEYS, "accepted", "started"])


def _check_assignments(assignments: pd.DataFrame) -> None:
    needed = ["member_id", "cycle", "segment", "action", "readiness_score",
              "disengagement_score"]
    missing = [c for c in needed if c not in assignments.columns]
    if missing:
        raise ConfigError(f"assignments: missing columns {missing}; read them with "
                          "serving.outreach.read_assignments")


def measure_outreach(assignments: pd.DataFrame, tables: Tables, as_of,
                     config: MeasureConfig | None = None) -> OutreachMeasurement:
    """Measure what the contacts of past cycles changed (see the module docstring).

    Args:
        assignments: The assignment log (:func:`serving.outreach.read_assignments`).
        tables: The data source, observed at least up to ``as_of``: activities and roles for
            the outcomes, ``outreach`` for the contacts made (``None``: no contact recorded).
        as_of: The date of the measurement: only cycles whose window has fully passed by then
            enter the retention and readiness comparisons; cycles after it are ignored.
        config: Settings (default :class:`MeasureConfig`).

    Returns:
        The :class:`OutreachMeasurement`.

    Raises:
        ConfigError: If ``assignments`` lacks a column or ``as_of`` cannot be read.
    """
    config = config or MeasureConfig()
    when = parse_as_of(as_of)
    _check_assignments(assignments)
    log = assignments[(assignments["cycle"] <= when)
                      & assignments["segment"].isin(FLAGGED_SEGMENTS)]
    outreach = tables.outreach
    if outreach is not None:
        outreach = outreach[outreach["contacted_at"] < when]
    matched = _match_contacts(log.reset_index(drop=True), outreach, config.match_days)
    note = ""
    try:
        readiness = _readiness(matched, tables, when, config)
    except TargetUnavailable as exc:
        readiness, note = _empty_readiness(config), str(exc)
    held_contacted = int(((matched["action"] == _HOLD) & matched["outcome"].notna()).sum())
    retention, kept = _retention(matched, tables, when, config)
    return OutreachMeasurement(
        as_of=when, config=config, acceptance=_acceptance(matched, config),
        retention=retention, readiness_acceptance=readiness[0],
        readiness_starts=readiness[1], readiness_acceptance_vs_held=readiness[2],
        held_but_contacted=held_contacted, readiness_note=note, retention_members=kept,
        readiness_members=readiness[3],
    )
