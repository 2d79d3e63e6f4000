"""Reasons: the top factors behind each score, in words a community manager can use.

Model-agnostic "what-if to the typical member" attributions. For a fitted model ``f`` and a
member ``x``, the contribution of feature ``j`` is::

    c_j(x) = f(x) - f(x with x_j replaced by the typical value r_j)

where ``r_j`` is the median of ``j`` among the members scored in the same run. ``c_j > 0`` means
the member's value of ``j`` pushes the score *up* compared with a typical member. A member's
reasons are the (at most) ``n_reasons`` features with the largest positive contributions, one per
topic (so "3 activities in 90 days" and "activity weight 3 in 90 days" never both appear), and
only contributions of at least ``min_contribution``: every reason points in the direction of its
score — it explains why the score is *higher* than for a typical member.

To stay fast on large communities the features tried for every member are the ``candidates``
with the largest mean absolute contribution on a sample of members; each candidate costs one
vectorised prediction over all members.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.catalog import describe_columns
from features.errors import ConfigError

__all__ = ["ReasonConfig", "explain_scores", "phrase_feature", "topic_of"]


@dataclass(frozen=True)
class ReasonConfig:
    """Settings of the reasons.

    Attributes:
        n_reasons: Reasons per score (at most).
        candidates: Features tried for every member (chosen on a sample).
        sample_size: Members in the sample that picks the candidates.
        min_contribution: Smallest score increase (probability points) a reason must explain.
        seed: Seed of the sample.
    """

    n_reasons: int = 3
    candidates: int = 12
    sample_size: int = 2_000
    min_contribution: float = 0.002
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_reasons < 1 or self.candidates < 1 or self.sample_size < 1:
            raise ConfigError("reasons: n_reasons, candidates and sample_size must be >= 1")
        if self.min_contribution < 0:
            raise ConfigError("reasons: min_contribution must be >= 0")


# --- plain language -------------------------------------------------------------------------------

_VERBS = {
    "attend": "attended {v} events",
    "organize": "organised {v} events",
    "volunteer": "volunteered {v} times",
    "message": "exchanged {v} messages",
    "intro": "made or received {v} introductions",
    "post": "posted {v} times",
    "purchase": "made {v} purchases",
    "commit": "made {v} commits",
}


def _num(values: pd.Series, decimals: int = 0) -> pd.Series:
    """Format numbers for sentences (whole numbers without decimals)."""
    arr = values.to_numpy(dtype=float)
    if decimals == 0:
        return pd.Series(np.round(arr).astype(np.int64).astype(str), index=values.index)
    return pd.Series(np.char.mod(f"%.{decimals}f", arr), index=values.index)


def _pct(values: pd.Series) -> pd.Series:
    return _num(values * 100) + "%"


def _window(w: str) -> str:
    return {"30": "30 days", "90": "90 days", "365": "year"}.get(w, f"{w} days")


def _cadence(features: pd.DataFrame) -> pd.Series:
    """", used to come weekly/monthly" from active weeks in the last year (empty when unknown)."""
    out = pd.Series("", index=features.index, dtype=object)
    if "active_weeks_365d" in features:
        weeks = features["active_weeks_365d"].to_numpy(dtype=float)
        out[weeks >= 26] = ", used to come weekly"
        out[(weeks >= 8) & (weeks < 26)] = ", used to come monthly"
    return out


def _phrase_activity(column: str, f: pd.DataFrame) -> pd.Series | None:
    match = re.match(r"^(n|wsum)_(?:(role)_)?(.+)_(\d+)d$", column)
    if not match:
        return None
    kind, is_role, name, window = match.groups()
    v = _num(f[column], 0 if kind == "n" else 1)
    span = f" in the last {_window(window)}"
    if kind == "wsum":
        what = "activities" if name == "all" else f"'{name}' activities"
        return "activity weight " + v + " from " + what + span
    if is_role:
        return v + f" activities as {name}" + span
    if name == "all":
        return v + " activities" + span
    template = _VERBS.get(name, "{v} '" + name + "' activities")
    head, tail = template.split("{v}")
    return head + v + tail + span


def _phrase_fixed(column: str, f: pd.DataFrame) -> pd.Series | None:
    v = f[column]
    phrases: dict[str, Callable[[], pd.Series]] = {
        "days_since_last_activity": lambda: "no activity for " + _num(v) + " days" + _cadence(f),
        "days_since_last_organizing": lambda: (
            "last organised something " + _num(v) + " days ago"
        ).where(f.get("has_organized", pd.Series(1, index=f.index)) > 0, "never organised"),
        "days_since_first_activity": lambda: "first activity " + _num(v) + " days ago",
        "tenure_days": lambda: "member for " + _num(v / 30.4375) + " months",
        "has_organized": lambda: pd.Series(
            np.where(v > 0, "has organised before", "has never organised"), index=f.index
        ),
        "has_activity": lambda: pd.Series(
            np.where(v > 0, "has been active", "has never been active"), index=f.index
        ),
        "has_ties": lambda: pd.Series(
            np.where(v > 0, "has ties to other members", "has no ties to other members yet"),
            index=f.index,
        ),
        "net_ties": lambda: "linked to " + _num(v) + " members"
        + (
            (" (" + _num(f["net_ties_outside_chapter"]) + " outside the home chapter)").where(
                f["net_ties_outside_chapter"] > 0, ""
            )
            if "net_ties_outside_chapter" in f
            else ""
        ),
        "net_coparticipants": lambda: "shared events with " + _num(v) + " members in the last year",
        "net_direct_ties": lambda: "in direct contact with " + _num(v) + " members",
        "net_ties_outside_chapter": lambda: "linked to " + _num(v)
        + " members outside the home chapter",
        "net_outside_chapter_share": lambda: _pct(v)
        + " of their ties are outside the home chapter",
        "net_quiet_tie_share": lambda: _pct(v) + " of their ties have gone quiet",
        "net_tie_strength_mean": lambda: "average tie strength " + _num(v, 1),
        "trend_count_diff": lambda: _trend(f, "count"),
        "trend_count_ratio": lambda: _trend(f, "count"),
        "trend_count_prior": lambda: _num(v) + " activities in the 90 days before the last 90",
        "trend_weight_diff": lambda: _trend(f, "count"),
        "trend_weight_ratio": lambda: _trend(f, "count"),
        "streak_current_weeks": lambda: "active " + _num(v) + " weeks in a row",
        "streak_longest_weeks": lambda: "longest run: " + _num(v) + " active weeks in a row",
        "role_core_now": lambda: pd.Series(
            np.where(v > 0, "currently an ambassador", "not an ambassador"), index=f.index
        ),
        "role_core_past_spells": lambda: "was an ambassador " + _num(v) + " time(s) before",
        "role_core_days_total": lambda: _num(v) + " days as an ambassador in all",
        "role_core_days_current": lambda: "ambassador for " + _num(v) + " days",
        "days_since_role_core_end": lambda: "stepped down as ambassador " + _num(v) + " days ago",
        "role_any_now": lambda: pd.Series(
            np.where(v > 0, "holds a role", "holds no role"), index=f.index
        ),
        "role_any_spells": lambda: "held " + _num(v) + " role(s)",
        "chapter_size": lambda: "home chapter has " + _num(v) + " members",
        "chapter_link_density": lambda: "home chapter link density " + _pct(v),
        "orbit_love": lambda: "engagement (love) score " + _num(v, 1),
        "orbit_reach": lambda: "reach score " + _num(v, 1),
        "n_all_ever": lambda: _num(v) + " activities in all",
        "wsum_all_ever": lambda: "activity weight " + _num(v, 1) + " in all",
    }
    maker = phrases.get(column)
    return maker() if maker else None


def _trend(f: pd.DataFrame, kind: str) -> pd.Series:
    if "n_all_90d" in f and "trend_count_prior" in f:
        last, prior = _num(f["n_all_90d"]), _num(f["trend_count_prior"])
        return "activity went from " + prior + " to " + last + " over the last two quarters"
    return "activity trend " + _num(f["trend_count_diff"] if "trend_count_diff" in f else 0)


def _phrase_pattern(column: str, f: pd.DataFrame) -> pd.Series | None:
    v = f[column]
    patterns: list[tuple[str, Callable[[re.Match], pd.Series]]] = [
        (r"^active_weeks_(\d+)d$", lambda m: "active in " + _num(v) + " of the last "
         + str(round(int(m.group(1)) / 7)) + " weeks"),
        (r"^active_week_share_(\d+)d$", lambda m: "active in " + _pct(v) + " of weeks"),
        (r"^distinct_types_(\d+)d$", lambda m: _num(v) + " kinds of activity in the last "
         + _window(m.group(1))),
        (r"^distinct_events_(\d+)d$", lambda m: "took part in " + _num(v)
         + " different events in the last " + _window(m.group(1))),
        (r"^distinct_chapters_(\d+)d$", lambda m: "active in " + _num(v)
         + " chapters in the last " + _window(m.group(1))),
        (r"^chapter_active_members_(\d+)d$", lambda m: "home chapter has " + _num(v)
         + " active members"),
        (r"^chapter_active_share_(\d+)d$", lambda m: _pct(v) + " of the home chapter is active"),
        (r"^chapter_activities_per_member_(\d+)d$", lambda m: "home chapter: "
         + _num(v, 1) + " activities per member in the last " + _window(m.group(1))),
        (r"^chapter_activities_(\d+)d$", lambda m: "home chapter: " + _num(v)
         + " activities in the last " + _window(m.group(1))),
    ]
    for pattern, make in patterns:
        match = re.match(pattern, column)
        if match:
            return make(match)
    return None


def phrase_feature(column: str, features: pd.DataFrame) -> pd.Series:
    """Plain-language statement of one feature's value for every member.

    Args:
        column: Feature column name.
        features: The member's features (all columns available, not only the model's; some
            sentences use a second column for context).

    Returns:
        One sentence per row of ``features``.
    """
    for maker in (_phrase_fixed, _phrase_activity, _phrase_pattern):
        text = maker(column, features)
        if text is not None:
            if isinstance(text, str):
                text = pd.Series(text, index=features.index)
            return text.astype(object)
    meaning = describe_columns([column])[column]
    return (meaning + ": " + _num(features[column], 2)).astype(object)


def topic_of(column: str) -> str:
    """Group columns that say the same thing, so a member gets one reason per topic."""
    match = re.match(r"^(?:n|wsum)_(?:(role)_)?(.+)_(\d+)d$", column)
    if match:
        return f"activity:{'role:' if match.group(1) else ''}{match.group(2)}"
    if column.startswith("trend_"):
        return "trend"
    if column.startswith("chapter_"):
        return "chapter"
    if column in ("days_since_last_organizing", "has_organized"):
        return "organizing"
    if column in ("days_since_last_activity", "has_activity"):
        return "recency"
    if column.startswith("net_") or column in ("has_ties", "orbit_reach"):
        return "network:" + column
    if column.startswith("role_core") or column == "days_since_role_core_end":
        return "role"
    return column


# --- attribution ----------------------------------------------------------------------------------


def _proba(model, x: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.predict_proba(x))[:, 1]


def explain_scores(
    model,
    x: pd.DataFrame,
    features: pd.DataFrame,
    config: ReasonConfig = ReasonConfig(),
    scores: np.ndarray | None = None,
) -> pd.DataFrame:
    """Top reasons behind each member's score.

    Args:
        model: Fitted classifier with ``predict_proba`` taking ``x``.
        x: The model's input (its feature columns, index = member_id).
        features: All feature columns of the same members (for the sentences).
        config: Reason settings.
        scores: ``model.predict_proba(x)[:, 1]`` when already computed.

    Returns:
        Index = ``x.index``; columns ``reasons`` (sentences joined by "; ", possibly empty),
        ``reason_features`` (the columns behind them, joined by ","), and for
        ``k = 1..n_reasons`` ``reason_k`` / ``reason_k_feature`` / ``reason_k_contribution``.
    """
    n = len(x)
    k_max = config.n_reasons
    out = pd.DataFrame(index=x.index)
    if n == 0:
        for k in range(1, k_max + 1):
            out[f"reason_{k}"] = pd.Series(dtype=object)
            out[f"reason_{k}_feature"] = pd.Series(dtype=object)
            out[f"reason_{k}_contribution"] = pd.Series(dtype=float)
        out["reasons"] = pd.Series(dtype=object)
        out["reason_features"] = pd.Series(dtype=object)
        return out
    base = _proba(model, x) if scores is None else np.asarray(scores, dtype=float)
    reference = x.median()
    columns = list(x.columns)

    # 1. candidates: the features that move scores most on a sample
    rng = np.random.default_rng(config.seed)
    sample = rng.choice(n, size=min(n, config.sample_size), replace=False)
    xs = x.iloc[np.sort(sample)]
    bs = base[np.sort(sample)]
    impact = np.zeros(len(columns))
    for j, col in enumerate(columns):
        if (xs[col] == reference[col]).all():
            continue
        alt = xs.copy()
        alt[col] = reference[col]
        impact[j] = np.abs(bs - _proba(model, alt)).mean()
    order = [columns[j] for j in np.argsort(-impact) if impact[j] > 0][: config.candidates]

    # 2. contributions of the candidates for every member
    contrib = np.full((n, len(order)), -np.inf)
    for j, col in enumerate(order):
        alt = x.copy()
        alt[col] = reference[col]
        delta = base - _proba(model, alt)
        contrib[:, j] = np.where(x[col].to_numpy() == reference[col], -np.inf, delta)
    contrib[contrib < max(config.min_contribution, 1e-12)] = -np.inf

    # 3. top reasons, one per topic
    topics = np.array([topic_of(c) for c in order], dtype=object)
    ranked = np.argsort(-contrib, axis=1)
    chosen = np.full((n, k_max), -1, dtype=np.int64)
    taken = np.zeros(n, dtype=np.int64)
    topic_codes = pd.factorize(topics)[0] if len(order) else np.zeros(0, dtype=np.int64)
    seen = np.zeros((n, max(len(set(topic_codes)), 1)), dtype=bool)
    rows = np.arange(n)
    for pos in range(len(order)):
        cand = ranked[:, pos]
        value = contrib[rows, cand]
        tcode = topic_codes[cand]
        ok = np.isfinite(value) & ~seen[rows, tcode] & (taken < k_max)
        chosen[rows[ok], taken[ok]] = cand[ok]
        seen[rows[ok], tcode[ok]] = True
        taken[ok] += 1

    sentences = {col: phrase_feature(col, features.loc[x.index]) for col in order}
    texts, feats = [], []
    for k in range(k_max):
        idx = chosen[:, k]
        text = pd.Series(pd.NA, index=x.index, dtype=object)
        feat = pd.Series(pd.NA, index=x.index, dtype=object)
        value = np.full(n, np.nan)
        for j, col in enumerate(order):
            hit = idx == j
            if hit.any():
                text[hit] = sentences[col][hit].to_numpy()
                feat[hit] = col
                value[hit] = contrib[hit, j]
        out[f"reason_{k + 1}"] = text
        out[f"reason_{k + 1}_feature"] = feat
        out[f"reason_{k + 1}_contribution"] = value
        texts.append(text)
        feats.append(feat)
    out["reasons"] = _join(texts, "; ")
    out["reason_features"] = _join(feats, ",")
    return out


def _join(parts: list[pd.Series], sep: str) -> pd.Series:
    """Join the non-missing strings of several aligned Series row by row."""
    joined = parts[0].fillna("").astype(str)
    for part in parts[1:]:
        piece = part.fillna("").astype(str)
        glue = np.where((joined != "") & (piece != ""), sep, "")
        joined = joined + glue + piece
    return joined.astype(object)
