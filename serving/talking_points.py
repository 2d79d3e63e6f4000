"""Talking points: what to say when calling a ready-now candidate, drawn from their own history.

Every member in the ``ready-now`` segment gets one short talking point (two or three sentences)
for the call; everyone else gets an empty string. It says:

1. **what they did** — how long they have been part of their chapter (by the name of the
   ``chapters`` table), how many events they took part in over the last year (or how often they
   were active), and how often they organised — else what they did most often;
2. **why them** — their strongest readiness reasons, as the reasons column says them;
3. **what the core role would give them**, chosen from their history in this order
   (:data:`GIFTS`; the first that applies wins):

   ============  ==============================================================================
   ``bigger``    active in ``wide_chapters`` chapters or more in the last year: belonging to
                 something bigger than one chapter
   ``others``    linked to ``many_ties`` members or more: meeting the other core members
   ``closer``    part of the community for ``long_months`` months or more (in one chapter, or
                 the first rule would have applied): being closer to the organisation
   ``wider``     ``wide_types`` kinds of activity or more: belonging to something bigger
   ``welcome``   none of these: meeting the other core members and being closer to the
                 organisation
   ============  ==============================================================================

The core role is named as the community names it (the readiness model's label settings:
"ambassador", "maintainer"). Like the reasons, a talking point is said, not decoded: whole
counts only, no formula, symbol, column name or decimal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.errors import ConfigError
from serving.reasons import with_article

__all__ = ["GIFTS", "TalkingPointConfig", "chapter_phrases", "choose_gift", "talking_points"]

#: What the core role would give the member, by the history it is chosen from (module docstring).
GIFTS: dict[str, str] = {
    "bigger": "Becoming {a_role} would make them part of something bigger than one chapter, "
    "which suits someone already active in {chapters}.",
    "others": "As {a_role} they would meet the other {roles}, a natural next step for someone "
    "already linked to {ties}.",
    "closer": "As {a_role} they would be closer to the organisation they have been part of for "
    "so long.",
    "wider": "Becoming {a_role} would make them part of something bigger, which suits someone "
    "who already takes part in {types}.",
    "welcome": "As {a_role} they would meet the other {roles} and be closer to the organisation.",
}

#: What a member did most often, by activity type (other types: "'<type>' activities").
_DOING = {
    "attend": "attending events",
    "organize": "organising events",
    "volunteer": "volunteering",
    "message": "exchanging messages",
    "intro": "making introductions",
    "post": "posting",
    "purchase": "making purchases",
    "commit": "making commits",
}
#: Activity counts of the last year that mean the member organised something.
_ORGANISING = ("n_organize_365d", "n_role_organizer_365d", "n_role_host_365d")
_TYPE_COLUMN = re.compile(r"^n_(?!all_|role_|other_)(.+)_365d$")
_MONTH_DAYS = 30.4375


@dataclass(frozen=True)
class TalkingPointConfig:
    """Settings of the talking points (which history chooses what the role would give).

    Attributes:
        wide_chapters: Chapters active in over the last year from which the role means
            belonging to something bigger.
        many_ties: Members linked to from which the role means meeting the other core members.
        long_months: Months in the community from which the role means being closer to the
            organisation.
        wide_types: Kinds of activity in the last year from which the role means belonging to
            something bigger.
        n_reasons: Readiness reasons quoted as "why them" (at most).
    """

    wide_chapters: int = 2
    many_ties: int = 15
    long_months: int = 12
    wide_types: int = 3
    n_reasons: int = 2

    def __post_init__(self) -> None:
        for name in ("wide_chapters", "many_ties", "long_months", "wide_types"):
            if getattr(self, name) < 1:
                raise ConfigError(f"talking points: {name} must be >= 1")
        if self.n_reasons < 0:
            raise ConfigError("talking points: n_reasons must be >= 0")


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _whole(row: Mapping[str, float], column: str) -> int:
    """A count of the member's history as a whole number (0 when the column is absent)."""
    value = row.get(column, 0.0)
    return 0 if value is None or not np.isfinite(value) else max(int(round(float(value))), 0)


def _words(name: str) -> str:
    """An activity type or chapter name as words (no underscores or dashes in a sentence)."""
    return re.sub(r"[\s_-]+", " ", str(name)).strip()


def _months(row: Mapping[str, float]) -> int:
    """Whole months since the member joined (0 when unknown)."""
    days = float(row.get("tenure_days", 0.0) or 0.0)
    return int(days // _MONTH_DAYS) if np.isfinite(days) and days > 0 else 0


def _tenure(months: int) -> str:
    if months < 1:
        return "less than a month"
    if months < 24:
        return _count(months, "month")
    years, rest = divmod(months, 12)
    return ("over " if rest else "") + _count(years, "year")


def _most_often(row: Mapping[str, float]) -> str:
    """What the member did most often in the last year (first type on a tie; "" without)."""
    best, name = 0, ""
    for column in row:
        match = _TYPE_COLUMN.match(column)
        if match and _whole(row, column) > best:
            best, name = _whole(row, column), match.group(1)
    if not name:
        return ""
    return _DOING.get(name, f"'{_words(name)}' activities")


def _history(row: Mapping[str, float], where: str) -> str:
    """First sentence: how long they have been part of their chapter and what they did."""
    text = f"They have been part of {where} for {_tenure(_months(row))}"
    events, active = _whole(row, "distinct_events_365d"), _whole(row, "n_all_365d")
    if events:
        text += f" and in the last year took part in {_count(events, 'event')}"
    elif active:
        text += f" and in the last year were active {_count(active, 'time')}"
    organised = max((_whole(row, c) for c in _ORGANISING), default=0)
    doing = _most_often(row)
    if organised:
        text += f", organising {_count(organised, 'time')}"
    elif doing and (events or active):
        text += f", most often {doing}"
    return text + "."


def _why(reasons: str, n_reasons: int) -> str:
    """Second sentence: their strongest readiness reasons ("" without any)."""
    said = [r.strip() for r in str(reasons or "").split(";") if r.strip()][:n_reasons]
    return f"What stands out: {' and '.join(said)}." if said else ""


def choose_gift(row: Mapping[str, float], config: TalkingPointConfig = TalkingPointConfig()) -> str:
    """The key of :data:`GIFTS` the member's history chooses (module docstring, in order)."""
    if _whole(row, "distinct_chapters_365d") >= config.wide_chapters:
        return "bigger"
    if _whole(row, "net_ties") >= config.many_ties:
        return "others"
    if _months(row) >= config.long_months:
        return "closer"
    if _whole(row, "distinct_types_365d") >= config.wide_types:
        return "wider"
    return "welcome"


def _gift(row: Mapping[str, float], role: str, config: TalkingPointConfig) -> str:
    """Third sentence: what the core role would give them."""
    return GIFTS[choose_gift(row, config)].format(
        a_role=with_article(role),
        roles=role + "s",
        chapters=_count(_whole(row, "distinct_chapters_365d"), "chapter"),
        ties=_count(_whole(row, "net_ties"), "member"),
        types=_count(_whole(row, "distinct_types_365d"), "kind", "kinds") + " of activity",
    )


def chapter_phrases(chapter_ids: pd.Series, chapters: pd.DataFrame | None) -> pd.Series:
    """How a talking point names each member's home chapter: "the Paris chapter" (from the
    ``chapters`` table's ``name``; "the <name> chapter" when the name does not say chapter),
    "their chapter" when the table has no name for it, "the community" without a chapter."""
    names = pd.Series(dtype=object)
    if chapters is not None and len(chapters) and "name" in chapters:
        ref = chapters.dropna(subset=["chapter_id", "name"]).drop_duplicates("chapter_id")
        wording = ref["name"].astype("str").map(_words)
        wording = wording.where(wording.str.lower().str.contains("chapter"), wording + " chapter")
        wording = wording.where(wording.str.lower().str.startswith("the "), "the " + wording)
        names = pd.Series(wording.to_numpy(dtype=object), index=ref["chapter_id"].astype("str"))
        names = names[ref["name"].astype("str").map(_words).to_numpy() != ""]
    ids = chapter_ids.astype("str").where(chapter_ids.notna())
    out = ids.map(names).where(ids.notna(), "the community").fillna("their chapter")
    return out.astype(object)


def talking_points(
    features: pd.DataFrame,
    segments: pd.Series,
    reasons: pd.Series,
    where: pd.Series,
    core_role: str = "ambassador",
    config: TalkingPointConfig = TalkingPointConfig(),
) -> pd.Series:
    """One talking point per ready-now candidate, an empty string for everyone else.

    Args:
        features: The members' features at the scoring date (index = member id); absent
            columns count as nothing done.
        segments: Segment of every member (index = member id); only ``ready-now`` members get
            a talking point.
        reasons: Their readiness reasons, sentences joined by "; " (same index).
        where: How their home chapter is named (:func:`chapter_phrases`, same index).
        core_role: The community's name for the core role.
        config: Which history chooses what the role would give them.

    Returns:
        A Series of strings on ``segments.index``.
    """
    out = pd.Series("", index=segments.index, dtype=object)
    ready = segments.astype("str").eq("ready-now").fillna(False).to_numpy(dtype=bool)
    if not ready.any():
        return out
    ids = segments.index[ready]
    wanted = [c for c in features.columns if _wanted(c)]
    rows = features[wanted].reindex(ids).astype(float).to_dict("records")
    said_reasons = reasons.reindex(ids).fillna("").astype(str).tolist()
    said_where = where.reindex(ids).fillna("the community").astype(str).tolist()
    texts = []
    for row, why, place in zip(rows, said_reasons, said_where, strict=True):
        sentences = (_history(row, place), _why(why, config.n_reasons),
                     _gift(row, core_role, config))
        texts.append(" ".join(s for s in sentences if s))
    out[ready] = texts
    return out


def _wanted(column: str) -> bool:
    """The feature columns a talking point reads."""
    fixed = ("tenure_days", "n_all_365d", "distinct_events_365d", "distinct_chapters_365d",
             "distinct_types_365d", "net_ties", *_ORGANISING)
    return column in fixed or bool(_TYPE_COLUMN.match(column))
