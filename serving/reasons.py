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

To stay fast on large communities:

- the features tried for every member are the ``candidates`` with the largest mean absolute
  contribution on a seeded sample of members (:func:`plan_reasons`, which also fixes the
  reference; a partitioned run plans once on all members so every part gets the same reasons);
- a what-if is computed only for the members whose value differs from the typical one (for the
  others ``c_j`` is not a reason by definition), and all of them are stacked into a few large
  column-major batches, so the model is called a handful of times in all;
- for gradient-boosted trees (:func:`tree_ensemble`) only the trees that split on ``j`` are
  re-evaluated: the other trees keep their values and the sum is redone in the model's own
  order, so the scores are exactly those of ``predict_proba`` at a fraction of its cost.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.catalog import UNKNOWN_COLUMN, describe_columns
from features.errors import ConfigError

__all__ = [
    "ReasonConfig",
    "ReasonPlan",
    "plan_reasons",
    "explain_scores",
    "phrase_feature",
    "with_article",
    "topic_of",
    "tree_ensemble",
]


@dataclass(frozen=True)
class ReasonConfig:
    """Settings of the reasons.

    Attributes:
        n_reasons: Reasons per score (at most).
        candidates: Features tried for every member (chosen on a sample).
        sample_size: Members in the sample that picks the candidates.
        min_contribution: Smallest score increase (probability points) a reason must explain.
        seed: Seed of the sample.
        core_role: The community's name for the core role, as reasons say it ("ambassador",
            "maintainer"); the scorer sets the one each model was trained with.
    """

    n_reasons: int = 3
    candidates: int = 12
    sample_size: int = 2_000
    min_contribution: float = 0.002
    seed: int = 0
    core_role: str = "ambassador"

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
    """Format numbers for sentences: whole numbers without decimals, else at most
    ``decimals`` of them (2.5, but 3 rather than 3.0)."""
    arr = values.to_numpy(dtype=float)
    if decimals == 0:
        return pd.Series(np.round(arr).astype(np.int64).astype(str), index=values.index)
    text = pd.Series(np.char.mod(f"%.{decimals}f", arr), index=values.index)
    return text.str.replace(r"\.0+$", "", regex=True)


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
    v = _num(f[column])
    span = f" in the last {_window(window)}"
    said = name.replace("_", " ")  # the community's own word, never a column's spelling
    if kind == "wsum":
        what = "activities" if name == "all" else f"'{said}' activities"
        return "activity weight " + v + " from " + what + span
    if is_role:
        return v + f" activities as {said}" + span
    if name == "all":
        return v + " activities" + span
    template = _VERBS.get(name, "{v} '" + said + "' activities")
    head, tail = template.split("{v}")
    return head + v + tail + span


def _when(condition, yes: pd.Series | str, no: pd.Series | str, index) -> pd.Series:
    """``yes`` where ``condition`` holds, else ``no`` (strings or Series on ``index``)."""
    yes = yes if isinstance(yes, pd.Series) else pd.Series(yes, index=index)
    no = no if isinstance(no, pd.Series) else pd.Series(no, index=index)
    return yes.where(np.asarray(condition, dtype=bool), no)


def _weeks(days: pd.Series) -> pd.Series:
    return _num(days / 7)


def _phrase_silence(column: str, f: pd.DataFrame) -> pd.Series | None:
    """The current silence against the member's own habits, in words (no ratio shown)."""
    index = f.index
    days = f["days_since_last_activity"] if "days_since_last_activity" in f else None
    quiet = ("no activity for " + _weeks(days) + " weeks") if days is not None else None
    v = f[column]
    if column == "silence_surprise" and quiet is not None:
        return _when(v >= 2, quiet + ", unusual for someone who came most weeks",
                     quiet + ", not unusual for them", index)
    if column == "silence_vs_longest_break" and quiet is not None:
        return _when(v > 1, quiet + ", longer than any break they came back from",
                     quiet + ", within the breaks they usually take", index)
    if column == "silence_vs_usual_break" and quiet is not None:
        return _when(v > 2, quiet + ", well beyond their usual rhythm",
                     quiet + ", close to their usual rhythm", index)
    if column == "longest_break_days":
        return _when(v > 0, "came back after a break of " + _weeks(v) + " weeks before",
                     "no break yet to come back from", index)
    if column == "usual_break_days":
        return _when(v > 0, "usually active every " + _num(v.clip(lower=1)) + " days",
                     "active on a single day so far", index)
    return None


def with_article(role: str) -> str:
    """The role with its indefinite article: "an ambassador", "a maintainer"."""
    return ("an " if role[:1].lower() in "aeiou" else "a ") + role


#: A sentence maker of one feature column: ``(values, all features, core role) -> sentences``.
_Phrase = Callable[[pd.Series, pd.DataFrame, str], pd.Series]

_HISTORY_PHRASES: dict[str, _Phrase] = {
    "days_since_last_activity": lambda v, f, role: "no activity for " + _num(v) + " days"
    + _cadence(f),
    "days_since_first_activity": lambda v, f, role: "first activity " + _num(v) + " days ago",
    "tenure_days": lambda v, f, role: "member for " + _num(v / 30.4375) + " months",
    "has_activity": lambda v, f, role: pd.Series(
        np.where(v > 0, "has been active", "has never been active"), index=f.index
    ),
    "n_all_ever": lambda v, f, role: _num(v) + " activities in all",
    "wsum_all_ever": lambda v, f, role: "activity weight " + _num(v) + " in all",
    "active_week_share_365d": lambda v, f, role: "active in " + _pct(v) + " of weeks",
    "streak_current_weeks": lambda v, f, role: "active " + _num(v) + " weeks in a row",
    "streak_longest_weeks": lambda v, f, role: "longest run: " + _num(v)
    + " active weeks in a row",
    "season_sin": lambda v, f, role: pd.Series("the time of year", index=f.index),
    "season_cos": lambda v, f, role: pd.Series("the time of year", index=f.index),
    "orbit_love": lambda v, f, role: _when(
        v >= 1, "much recent activity, most of it in the last weeks", "little recent activity",
        f.index,
    ),
}

_ORGANIZING_PHRASES: dict[str, _Phrase] = {
    "days_since_last_organizing": lambda v, f, role: (
        "last organised something " + _num(v) + " days ago"
    ).where(f.get("has_organized", pd.Series(1, index=f.index)) > 0, "never organised"),
    "has_organized": lambda v, f, role: pd.Series(
        np.where(v > 0, "has organised before", "has never organised"), index=f.index
    ),
}

_TREND_PHRASES: dict[str, _Phrase] = {
    "trend_count_diff": lambda v, f, role: _trend(f, "count"),
    "trend_count_ratio": lambda v, f, role: _trend(f, "count"),
    "trend_count_prior": lambda v, f, role: _num(v)
    + " activities in the 90 days before the last 90",
    "trend_weight_diff": lambda v, f, role: _trend(f, "count"),
    "trend_weight_ratio": lambda v, f, role: _trend(f, "count"),
    "trend_weight_prior": lambda v, f, role: _num(v) + " activities (by weight) in the 90 days "
    "before the last 90",
}

_NETWORK_PHRASES: dict[str, _Phrase] = {
    "has_ties": lambda v, f, role: pd.Series(
        np.where(v > 0, "has ties to other members", "has no ties to other members yet"),
        index=f.index,
    ),
    "net_ties": lambda v, f, role: "linked to " + _num(v) + " members"
    + (
        (" (" + _num(f["net_ties_outside_chapter"]) + " outside the home chapter)").where(
            f["net_ties_outside_chapter"] > 0, ""
        )
        if "net_ties_outside_chapter" in f
        else ""
    ),
    "net_coparticipants": lambda v, f, role: "shared events with " + _num(v)
    + " members in the last year",
    "net_direct_ties": lambda v, f, role: "in direct contact with " + _num(v) + " members",
    "net_ties_outside_chapter": lambda v, f, role: "linked to " + _num(v)
    + " members outside the home chapter",
    "net_outside_chapter_share": lambda v, f, role: _pct(v)
    + " of their ties are outside the home chapter",
    "net_quiet_tie_share": lambda v, f, role: _pct(v) + " of their ties have gone quiet",
    "net_tie_strength_mean": lambda v, f, role: _when(
        v >= 0.5, "meets the same people again and again", "met most of their ties only once",
        f.index,
    ),
    "orbit_reach": lambda v, f, role: _when(
        v >= 1, "close to many members who are active themselves",
        "few close ties to active members", f.index,
    ),
}

_CONTACT_PHRASES: dict[str, _Phrase] = {
    "days_since_last_contact": lambda v, f, role: (
        "last contacted by another member " + _num(v) + " days ago"
    ).where(f.get("has_contact", pd.Series(1, index=f.index)) > 0, "never contacted by "
            "another member"),
    "has_contact": lambda v, f, role: pd.Series(
        np.where(v > 0, "has been contacted by other members", "never contacted by another "
                 "member"),
        index=f.index,
    ),
}

_ROLE_PHRASES: dict[str, _Phrase] = {
    "role_core_now": lambda v, f, role: pd.Series(
        np.where(v > 0, f"currently {with_article(role)}", f"not {with_article(role)}"),
        index=f.index,
    ),
    "role_core_past_spells": lambda v, f, role: f"was {with_article(role)} " + _num(v)
    + " time(s) before",
    "role_core_days_total": lambda v, f, role: _num(v)
    + f" days as {with_article(role)} in all",
    "role_core_days_current": lambda v, f, role: f"{role} for " + _num(v) + " days",
    "days_since_role_core_end": lambda v, f, role: f"stepped down as {role} " + _num(v)
    + " days ago",
    "role_any_now": lambda v, f, role: pd.Series(
        np.where(v > 0, "holds a role", "holds no role"), index=f.index
    ),
    "role_any_spells": lambda v, f, role: "held " + _num(v) + " role(s)",
}

_CHAPTER_PHRASES: dict[str, _Phrase] = {
    "chapter_size": lambda v, f, role: "home chapter has " + _num(v) + " members",
    "chapter_link_density": lambda v, f, role: _pct(v)
    + " of the home chapter's members know each other",
    "chapter_core_members": lambda v, f, role: "home chapter has " + _num(v) + f" {role}(s)",
    "chapter_core_per_active_90d": lambda v, f, role: "home chapter has "
    + _num(v * 100, 1) + f" {role}s per 100 active members",
    "chapter_core_shortfall": lambda v, f, role: pd.Series(
        np.where(
            v >= 1,
            f"home chapter has no {role}",
            np.where(v > 0, f"home chapter is short of {role}s", f"home chapter has enough "
                     f"{role}s"),
        ),
        index=f.index,
    ),
    # Without a spell that ended the value is the tenure: "for N days" is true either way.
    "days_since_chapter_core_end": lambda v, f, role: f"no {role} of the home chapter stepped "
    "down for " + _num(v) + " days",
}

#: The sentence makers of the columns with a fixed name, by feature family.
_FIXED_PHRASES: dict[str, _Phrase] = {
    **_HISTORY_PHRASES,
    **_ORGANIZING_PHRASES,
    **_TREND_PHRASES,
    **_NETWORK_PHRASES,
    **_CONTACT_PHRASES,
    **_ROLE_PHRASES,
    **_CHAPTER_PHRASES,
}


def _phrase_fixed(column: str, f: pd.DataFrame, role: str = "ambassador") -> pd.Series | None:
    """The sentence of a column with a fixed name (:data:`_FIXED_PHRASES`), else ``None``."""
    v = f[column]
    maker = _FIXED_PHRASES.get(column)
    return maker(v, f, role) if maker else None


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


def phrase_feature(column: str, features: pd.DataFrame, role: str = "ambassador") -> pd.Series:
    """Plain-language statement of one feature's value for every member.

    Written for a community manager to say on the phone: no formula, symbol, column name or raw
    decimal (``tests/serving/test_reasons.py`` walks every feature column).

    Args:
        column: Feature column name.
        features: The member's features (all columns available, not only the model's; some
            sentences use a second column for context).
        role: The community's name for the core role.

    Returns:
        One sentence per row of ``features``.
    """
    makers = (
        _phrase_silence, lambda c, f: _phrase_fixed(c, f, role), _phrase_activity,
        _phrase_pattern,
    )
    for maker in makers:
        text = maker(column, features)
        if text is not None:
            if isinstance(text, str):
                text = pd.Series(text, index=features.index)
            return text.astype(object)
    # A column of a newer feature family without its own sentence yet: say what it is about.
    description = describe_columns([column])[column]
    topic = description.split(":")[0].split("(")[0].strip()
    said = "something else in their history" if description == UNKNOWN_COLUMN else f"their {topic}"
    return pd.Series(said, index=features.index, dtype=object)


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
    if column in ("days_since_last_activity", "has_activity", "silence_surprise",
                  "silence_vs_longest_break", "silence_vs_usual_break"):
        return "recency"
    if column in ("longest_break_days", "usual_break_days"):
        return "rhythm"
    if column in ("days_since_last_contact", "has_contact"):
        return "contact"
    if column.startswith("net_") or column in ("has_ties", "orbit_reach"):
        return "network:" + column
    if column.startswith("role_core") or column == "days_since_role_core_end":
        return "role"
    return column


# --- attribution ----------------------------------------------------------------------------------

#: Most cells (rows x model columns) of one what-if batch handed to the model (~64 MB).
_BATCH_CELLS = 8_000_000


@dataclass(frozen=True, eq=False)
class ReasonPlan:
    """What the reasons of one scoring run are measured against, fixed on all scored members.

    Computed once per model and run (:func:`plan_reasons`) so that members scored in separate
    partitions get exactly the reasons they would get scored together.

    Attributes:
        reference: The typical value (median over the scored members) of every model column.
        candidates: The features tried for every member, strongest first.
    """

    reference: pd.Series
    candidates: tuple[str, ...]


def _proba(model, x: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.predict_proba(x))[:, 1]


def _what_if(
    model, values: np.ndarray, columns: list[str], reference: np.ndarray, tries: list
) -> list[np.ndarray]:
    """Scores with one column set to its typical value, for several (column, rows) at once.

    Args:
        model: Classifier with ``predict_proba`` on a frame of ``columns``.
        values: The members' model input as a float matrix (rows x columns).
        columns: Column names of ``values``.
        reference: Typical value of every column.
        tries: ``(j, rows)`` pairs: set column ``j`` to ``reference[j]`` in rows ``rows``.

    Returns:
        One array of scores per pair, aligned with its ``rows``. The pairs are stacked into
        batches of at most :data:`_BATCH_CELLS` cells, so the model is called a few times in all
        rather than once per column, and only on the rows whose value actually changes.
    """
    trees = tree_ensemble(model)
    if trees is not None:
        return _what_if_trees(trees, values, columns, reference, tries)
    width = max(len(columns), 1)
    budget = max(_BATCH_CELLS // width, 1)
    pieces: list[tuple[int, int, int, int]] = []  # (pair, start, stop, batch)
    batch, filled = 0, 0
    for pair, (_, rows) in enumerate(tries):
        start = 0
        while start < len(rows):
            if filled >= budget:
                batch, filled = batch + 1, 0
            stop = min(len(rows), start + budget - filled)
            pieces.append((pair, start, stop, batch))
            filled += stop - start
            start = stop
    results: list[list[np.ndarray]] = [[] for _ in tries]
    for b in range(batch + 1):
        mine = [p for p in pieces if p[3] == b]
        if not mine:
            continue
        # column-major, as scikit-learn gets a mixed-dtype frame: tree ensembles walk one tree
        # over all rows at a time and read a column at a time (several times faster than rows)
        stacked = np.empty((sum(p[2] - p[1] for p in mine), len(columns)), order="F")
        offset = 0
        for pair, start, stop, _ in mine:
            j, rows = tries[pair]
            stacked[offset : offset + stop - start] = values[rows[start:stop]]
            stacked[offset : offset + stop - start, j] = reference[j]
            offset += stop - start
        scores = _proba(model, pd.DataFrame(stacked, columns=columns, copy=False))
        offset = 0
        for pair, start, stop, _ in mine:
            results[pair].append(scores[offset : offset + stop - start])
            offset += stop - start
    return [np.concatenate(r) if r else np.zeros(0) for r in results]


#: scikit-learn releases (lowest, highest minor version, both included) whose private
#: HistGradientBoostingClassifier internals the exact tree what-if was checked on:
#: ``_predictors`` (each tree's ``nodes`` and ``predict``), ``_bin_mapper``
#: (``make_known_categories_bitsets``), ``_preprocess_X``, ``_baseline_prediction``, ``_loss``
#: and ``_preprocessor``. Outside the range, or when one of them is missing,
#: :func:`tree_ensemble` returns ``None`` and reasons take the generic what-if (the same
#: scores from ``predict_proba``, in more model calls). Widen it once
#: ``tests/serving/test_reasons.py`` passes on the new release (see :mod:`features.versions`).
HGB_INTERNALS_KNOWN_GOOD = ("1.6", "1.9")
_HGB_INTERNALS = (
    "_predictors", "_baseline_prediction", "_loss", "_bin_mapper", "_preprocessor",
    "_preprocess_X",
)


def tree_ensemble(model):
    """The binary gradient-boosted trees behind ``model``, when their sum can be redone.

    A :class:`~sklearn.ensemble.HistGradientBoostingClassifier` (alone or as the only step of
    a pipeline, without its own categorical preprocessing) scores a row as
    ``link(baseline + tree_1(x) + ... + tree_T(x))``, added in tree order. Setting one column
    to its typical value only changes the trees that split on it, so a what-if needs only
    those trees re-evaluated; the others keep their values and the sum is redone in the same
    order, which gives exactly the model's own ``predict_proba``.

    The private internals this relies on are guarded: on a scikit-learn release outside
    :data:`HGB_INTERNALS_KNOWN_GOOD`, or when one of them is missing, the answer is ``None``.

    Returns:
        The fitted estimator, or ``None`` for any other model (scored the generic way).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    from features.versions import known_good

    est = model
    if isinstance(est, Pipeline):
        if len(est.steps) != 1:
            return None
        est = est.steps[-1][1]
    if not isinstance(est, HistGradientBoostingClassifier):
        return None
    if not known_good("scikit-learn", HGB_INTERNALS_KNOWN_GOOD):
        return None
    if not all(hasattr(est, name) for name in _HGB_INTERNALS) or est._preprocessor is not None:
        return None
    if not hasattr(est._bin_mapper, "make_known_categories_bitsets"):
        return None
    if est.n_trees_per_iteration_ != 1:
        return None
    return est


def _what_if_trees(
    est, values: np.ndarray, columns: list[str], reference: np.ndarray, tries: list
) -> list[np.ndarray]:
    """:func:`_what_if` for :func:`_tree_ensemble` models: only the trees using a column rerun."""
    frame = pd.DataFrame(values, columns=columns, copy=False)
    matrix = np.asfortranarray(est._preprocess_X(frame, reset=False))
    bitsets, f_idx_map = est._bin_mapper.make_known_categories_bitsets()
    trees = [iteration[0] for iteration in est._predictors]
    n_trees = len(trees)
    splits_on = np.zeros((len(columns), n_trees), dtype=bool)
    for t, tree in enumerate(trees):
        inner = ~tree.nodes["is_leaf"].astype(bool)
        splits_on[tree.nodes["feature_idx"][inner], t] = True
    baseline = np.asarray(est._baseline_prediction, dtype=np.float64).ravel()[0]

    def run(block: np.ndarray, which) -> np.ndarray:
        """Values of trees ``which`` on the rows of ``block``, one column per tree."""
        block = np.asfortranarray(block)
        out = np.empty((len(block), len(which)), order="F")
        # One thread: each call walks one shallow tree, too little work to share, and on a
        # shared machine a busy core holds every parallel region back (3-4x slower measured).
        # Partitions are the way to use more cores.
        for i, t in enumerate(which):
            out[:, i] = trees[t].predict(block, bitsets, f_idx_map, 1)
        return out

    results: list[list[np.ndarray]] = [[] for _ in tries]
    wanted = np.zeros(len(values), dtype=bool)
    for _, rows in tries:
        wanted[rows] = True
    union = np.flatnonzero(wanted)
    local = np.full(len(values), -1, dtype=np.int64)
    step = max(_BATCH_CELLS // (n_trees + 1), 1)
    for lo in range(0, len(union), step):
        chunk = union[lo : lo + step]
        local[chunk] = np.arange(len(chunk))
        block_of_chunk = _take_rows(matrix, chunk)
        own = run(block_of_chunk, range(n_trees))  # every tree's value, per row
        # running sums exactly as the model adds them: baseline, then tree after tree
        prefix = np.empty((len(chunk), n_trees + 1), order="F")
        prefix[:, 0] = baseline
        for t in range(n_trees):
            np.add(prefix[:, t], own[:, t], out=prefix[:, t + 1])
        for pair, (j, rows) in enumerate(tries):
            rows = rows[(rows >= chunk[0]) & (rows <= chunk[-1])]
            if not len(rows):
                continue
            at = local[rows]
            whole = len(rows) == len(chunk)  # then at == 0, 1, 2, ...
            changed = np.flatnonzero(splits_on[j])
            if len(changed):
                block = block_of_chunk.copy(order="F") if whole else _take_rows(block_of_chunk, at)
                block[:, j] = reference[j]
                alt = run(block, changed)
                first = changed[0]
                kept = own if whole else np.asfortranarray(own[at])
                raw = prefix[:, first].copy() if whole else prefix[at, first]
                slot = dict(zip(changed.tolist(), range(len(changed)), strict=True))
                for t in range(first, n_trees):
                    raw += alt[:, slot[t]] if t in slot else kept[:, t]
            else:
                raw = prefix[at, -1]
            proba = est._loss.predict_proba(raw.reshape(-1, 1))
            results[pair].append(np.asarray(proba)[:, 1])
        local[chunk] = -1
    return [np.concatenate(r) if r else np.zeros(0) for r in results]


def _take_rows(matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rows of a column-major matrix as a new column-major matrix (column by column: fast)."""
    out = np.empty((len(rows), matrix.shape[1]), order="F")
    for c in range(matrix.shape[1]):
        np.take(matrix[:, c], rows, out=out[:, c])
    return out


def _model_values(x: pd.DataFrame) -> np.ndarray:
    """The model input as one float64 matrix (a copy; what scikit-learn converts it to)."""
    return x.to_numpy(dtype=np.float64, copy=True)


def plan_reasons(
    model,
    x: pd.DataFrame,
    config: ReasonConfig = ReasonConfig(),
    scores: np.ndarray | None = None,
) -> ReasonPlan:
    """Fix the typical member and the candidate features of a scoring run.

    The reference is the median of every column of ``x``; the candidates are the
    ``config.candidates`` features with the largest mean absolute what-if change on a seeded
    sample of ``config.sample_size`` rows (features that change no score are never candidates).

    Args:
        model: Fitted classifier with ``predict_proba`` taking ``x``.
        x: The model's input for every member scored in the run (in scoring order).
        config: Reason settings.
        scores: ``model.predict_proba(x)[:, 1]`` when already computed.

    Returns:
        The :class:`ReasonPlan` (no candidates when ``x`` is empty).
    """
    n = len(x)
    reference = x.median() if n else pd.Series(0.0, index=x.columns)
    if n == 0:
        return ReasonPlan(reference=reference, candidates=())
    columns = list(x.columns)
    rng = np.random.default_rng(config.seed)
    sample = np.sort(rng.choice(n, size=min(n, config.sample_size), replace=False))
    xs = x.iloc[sample]
    bs = _proba(model, xs) if scores is None else np.asarray(scores, dtype=float)[sample]
    values = _model_values(xs)
    ref = reference.to_numpy(dtype=np.float64)
    differs = values != ref
    tries = [(j, np.flatnonzero(differs[:, j])) for j in range(len(columns))]
    tries = [(j, rows) for j, rows in tries if len(rows)]
    impact = np.zeros(len(columns))
    for (j, rows), alt in zip(tries, _what_if(model, values, columns, ref, tries), strict=True):
        # rows whose value is already typical change nothing: they add 0 to the mean
        impact[j] = np.abs(bs[rows] - alt).sum() / len(sample)
    order = [columns[j] for j in np.argsort(-impact) if impact[j] > 0][: config.candidates]
    return ReasonPlan(reference=reference, candidates=tuple(order))


@dataclass(frozen=True, eq=False)
class _Contributions:
    """What each candidate feature adds to each member's score (see :func:`explain_scores`).

    Attributes:
        candidates: The features tried, strongest first.
        values: Score increase per member (rows) and candidate (columns); ``-inf`` where the
            candidate is no reason (the member's value is typical, or the increase is below
            ``min_contribution``).
    """

    candidates: tuple[str, ...]
    values: np.ndarray


@dataclass(frozen=True, eq=False)
class _ReasonSlots:
    """The chosen reasons by slot ``k = 0..n_reasons - 1``, one array per slot, on the members:
    sentences and feature columns (missing where a slot is empty) and contributions (NaN)."""

    texts: list[np.ndarray]
    features: list[np.ndarray]
    contributions: list[np.ndarray]


def explain_scores(
    model,
    x: pd.DataFrame,
    features: pd.DataFrame,
    config: ReasonConfig = ReasonConfig(),
    scores: np.ndarray | None = None,
    plan: ReasonPlan | None = None,
) -> pd.DataFrame:
    """Top reasons behind each member's score.

    Args:
        model: Fitted classifier with ``predict_proba`` taking ``x``.
        x: The model's input (its feature columns, index = member_id).
        features: All feature columns of the same members (for the sentences).
        config: Reason settings.
        scores: ``model.predict_proba(x)[:, 1]`` when already computed.
        plan: Reference and candidates fixed on all members of the run
            (:func:`plan_reasons`); default: planned on ``x`` itself. Pass the run's plan when
            ``x`` is one partition of the scored members.

    Returns:
        Index = ``x.index``; columns ``reasons`` (sentences joined by "; ", possibly empty),
        ``reason_features`` (the columns behind them, joined by ","), and for
        ``k = 1..n_reasons`` ``reason_k`` / ``reason_k_feature`` / ``reason_k_contribution``.
    """
    if len(x) == 0:
        return _empty_reasons(x.index, config.n_reasons)
    base = _proba(model, x) if scores is None else np.asarray(scores, dtype=float)
    if plan is None:
        plan = plan_reasons(model, x, config, base)
    contributions = _contributions(model, x, base, plan, config.min_contribution)
    chosen = _choose_reasons(contributions, config.n_reasons)
    slots = _phrase_reasons(chosen, contributions, features.loc[x.index], config.core_role)
    return _reason_frame(slots, x.index)


def _empty_reasons(index: pd.Index, k_max: int) -> pd.DataFrame:
    """The columns of :func:`explain_scores` for no member."""
    out = pd.DataFrame(index=index)
    for k in range(1, k_max + 1):
        out[f"reason_{k}"] = pd.Series(dtype=object)
        out[f"reason_{k}_feature"] = pd.Series(dtype=object)
        out[f"reason_{k}_contribution"] = pd.Series(dtype=float)
    out["reasons"] = pd.Series(dtype=object)
    out["reason_features"] = pd.Series(dtype=object)
    return out


def _contributions(
    model, x: pd.DataFrame, base: np.ndarray, plan: ReasonPlan, min_contribution: float
) -> _Contributions:
    """Contributions of the plan's candidates, computed only where the member is not typical."""
    columns = list(x.columns)
    order = list(plan.candidates)
    ref = plan.reference.reindex(columns).to_numpy(dtype=np.float64)
    values = _model_values(x)
    position = {c: j for j, c in enumerate(columns)}
    tries = [(position[c], np.flatnonzero(values[:, position[c]] != ref[position[c]]))
             for c in order]
    contrib = np.full((len(x), len(order)), -np.inf)
    for i, ((_, rows), alt) in enumerate(
        zip(tries, _what_if(model, values, columns, ref, tries), strict=True)
    ):
        contrib[rows, i] = base[rows] - alt
    contrib[contrib < max(min_contribution, 1e-12)] = -np.inf
    return _Contributions(candidates=tuple(order), values=contrib)


def _choose_reasons(contributions: _Contributions, k_max: int) -> np.ndarray:
    """The top ``k_max`` reasons of every member, one per topic, largest contribution first.

    Returns:
        Members x ``k_max`` positions in ``contributions.candidates``; -1 for an empty slot.
    """
    contrib = contributions.values
    order = contributions.candidates
    n = len(contrib)
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
    return chosen


def _phrase_reasons(
    chosen: np.ndarray, contributions: _Contributions, context: pd.DataFrame, role: str
) -> _ReasonSlots:
    """Sentences of the chosen reasons, phrased only for the members a feature is a reason of.

    Args:
        chosen: :func:`_choose_reasons`.
        contributions: The contributions the reasons were chosen from.
        context: All features of the same members, in the same order (for the sentences).
        role: The community's name for the core role.
    """
    n, k_max = chosen.shape
    texts = [np.full(n, pd.NA, dtype=object) for _ in range(k_max)]
    feats = [np.full(n, pd.NA, dtype=object) for _ in range(k_max)]
    values = [np.full(n, np.nan) for _ in range(k_max)]
    for j, col in enumerate(contributions.candidates):
        hits = chosen == j
        any_hit = np.flatnonzero(hits.any(axis=1))
        if not len(any_hit):
            continue
        sentence = np.full(n, pd.NA, dtype=object)
        sentence[any_hit] = phrase_feature(col, context.iloc[any_hit], role).to_numpy(
            dtype=object
        )
        for k in range(k_max):
            hit = hits[:, k]
            texts[k][hit] = sentence[hit]
            feats[k][hit] = col
            values[k][hit] = contributions.values[hit, j]
    return _ReasonSlots(texts=texts, features=feats, contributions=values)


def _reason_frame(slots: _ReasonSlots, index: pd.Index) -> pd.DataFrame:
    """The columns of :func:`explain_scores` from the phrased reason slots."""
    out = pd.DataFrame(index=index)
    texts, feats = [], []
    for k in range(len(slots.texts)):
        text = pd.Series(slots.texts[k], index=index, dtype=object)
        feat = pd.Series(slots.features[k], index=index, dtype=object)
        out[f"reason_{k + 1}"] = text
        out[f"reason_{k + 1}_feature"] = feat
        out[f"reason_{k + 1}_contribution"] = slots.contributions[k]
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
