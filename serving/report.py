"""The chapter succession report: one row per chapter, as a CSV and a self-contained HTML page.

Community managers read it to see, chapter by chapter, whether the motivated core is renewing:
who the ambassadors are and whether they are drifting away, who could take over (and why), how
many members are active now and in the previous periods, and how densely members are linked.

:func:`build_chapter_report` computes the table (pure, vectorised with ``groupby``),
:func:`render_report_html` (see :mod:`serving.report_html`) turns it into a page, and
:func:`write_report` writes both files atomically. Member ids only: no email ever appears in
either file.

Columns of the chapter report (``P`` = ``period_days``):

============================  =====================================================================
``as_of``                     the report date
``chapter_id``                the chapter (missing for the ``(no chapter)`` row)
``name``, ``city``,           from the ``chapters`` table when present (the id as name otherwise;
``country``                   ``(no chapter)`` for members without a home chapter)
``members``                   members of the chapter known at as_of (consenting or not)
``scored_members``            members of the chapter in the predictions (consenting, scored)
``active_members_now``        members with an activity in ``[as_of - P, as_of)``
``active_members_<kP>d_ago``  the same for ``[t - P, t)`` with ``t = as_of - kP``, k = 1..periods
                              (members known at t, by their current home chapter)
``active_trend``              ``active_members_now`` minus the previous period
``active_trend_pct``          the same relative to the previous period (NaN when it had none)
``ambassadors``               members holding the core role (scored or not)
``ambassadors_at_risk``       ambassadors in the ``ambassador-at-risk`` segment
``ambassadors_at_risk_ids``   their member ids, most at risk first, ``"; "``-separated
``mean_ambassador_risk``      mean disengagement score of the chapter's scored ambassadors
``ready_now``                 members in the ``ready-now`` segment
``successor_candidates``      members in the ``ready-now`` or ``nurture`` segments
``ready_successors``          ids of the top ``successors`` candidates by readiness, ``"; "``-joined
``successors_per_ambassador`` ``successor_candidates / ambassadors`` (NaN without ambassadors)
``link_density``              share of the chapter's member pairs that are linked (from features)
``quiet_link_share``          share of the members' links that lead to a member with no recent
                              activity (NaN without links)
``members_at_risk``           members in the ``at-risk`` or ``ambassador-at-risk`` segments
``members_at_risk_share``     of the members scored for disengagement (active recently)
``health``                    the health flags in words, ``"; "``-separated, or ``healthy``
``urgency``                   the sum of the flags' weights (see :data:`HEALTH_FLAGS`)
``urgency_rank``              1 = the chapter that needs attention first
============================  =====================================================================

Rows are sorted by urgency (most urgent first), then members at risk, then size. Anything that
looks like an email address in the text columns is replaced by ``[email hidden]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import ConfigError, ContractError
from features.io import write_files_atomic
from features.tables import Tables, parse_as_of
from serving.columns import METHOD_COLUMNS, REPORT_COLUMNS
from serving.report_html import (
    NO_CHAPTER_NAME,
    active_column,
    hide_emails,
    render_report_html,
)

__all__ = [
    "HEALTH_FLAGS",
    "HealthThresholds",
    "OPTIONAL_PREDICTION_COLUMNS",
    "NO_CHAPTER_NAME",
    "build_chapter_report",
    "render_report_html",
    "write_report",
]

#: Columns read when present: what produced each score, for the page's note per target
#: (:func:`serving.report_html.method_notes`; the scoring ``meta`` has the details).
OPTIONAL_PREDICTION_COLUMNS = tuple(METHOD_COLUMNS)

#: Health flag -> urgency weight, in the order the flags are listed in ``health``.
HEALTH_FLAGS: dict[str, int] = {
    "no ambassador and no successor": 60,
    "ambassador at risk and no successor": 50,
    "no ambassador": 40,
    "ambassador at risk": 30,
    "no activity this period": 20,
    "no successor": 15,
    "activity falling": 10,
    "links thinning": 10,
    "many members at risk": 10,
}

_SUCCESSOR_SEGMENTS = ("ready-now", "nurture")
_RISK_SEGMENTS = ("at-risk", "ambassador-at-risk")
# Stands for "no home chapter" while grouping (never shown; the row gets a missing chapter_id).
_NO_KEY = "\x00no chapter"
_FORMULA_START = r"[=+\-@\t\r]"


@dataclass(frozen=True)
class HealthThresholds:
    """When the softer health flags are raised.

    Attributes:
        activity_drop: ``activity falling`` when the active members fell by at least this share
            against the previous period.
        quiet_link_share: ``links thinning`` when at least this share of the members' links lead
            to members with no recent activity.
        members_at_risk_share: ``many members at risk`` when at least this share of the members
            scored for disengagement are at risk.
    """

    activity_drop: float = 0.25
    quiet_link_share: float = 0.5
    members_at_risk_share: float = 0.3

    def __post_init__(self) -> None:
        for name in ("activity_drop", "quiet_link_share", "members_at_risk_share"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ConfigError(f"report.{name} must be a share in (0, 1], got {value!r}")


def _check_options(successors: int, trend_periods: int, period_days: int) -> None:
    for name, value, low in (
        ("successors", successors, 0),
        ("trend_periods", trend_periods, 1),
        ("period_days", period_days, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ConfigError(f"report.{name}: {value!r} must be a whole number >= {low}")


def _check_columns(frame: pd.DataFrame, needed, what: str, hint: str) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ContractError(f"{what}: missing column(s) {', '.join(missing)}; {hint}")


def _keys(chapter_ids: pd.Series) -> pd.Series:
    """Grouping keys: the chapter id as text, :data:`_NO_KEY` when missing."""
    return chapter_ids.astype("str").fillna(_NO_KEY)


def _active_counts(
    tables: Tables, member_key: pd.Series, ts: pd.Timestamp, periods: int, period_days: int
) -> pd.DataFrame:
    """Active members per chapter key (rows) and period k = 0..periods (columns)."""
    period = pd.Timedelta(days=period_days)
    acts = tables.activities
    start = ts - (periods + 1) * period
    window = acts.loc[
        (acts["occurred_at"] >= start) & (acts["occurred_at"] < ts), ["member_id", "occurred_at"]
    ]
    delta = (ts - window["occurred_at"]).to_numpy().astype("timedelta64[ns]").astype(np.int64)
    k = (delta - 1) // period.value
    pairs = pd.DataFrame(
        {"member_id": window["member_id"].to_numpy(), "k": k}
    ).drop_duplicates()
    members = tables.members[["member_id", "joined_at"]].assign(key=member_key.to_numpy())
    pairs = pairs.merge(members, on="member_id", how="inner")
    period_end = ts - pd.to_timedelta(pairs["k"] * period_days, unit="D")
    pairs = pairs[pairs["joined_at"] < period_end]
    counts = pairs.groupby(["key", "k"]).size().unstack("k", fill_value=0)
    return counts.reindex(columns=range(periods + 1), fill_value=0)


def _column(features: pd.DataFrame, name: str) -> np.ndarray:
    """A feature column as floats, zeros when the features do not have it."""
    if name not in features.columns:
        return np.zeros(len(features))
    return features[name].to_numpy(dtype=float)


def _join_ids(frame: pd.DataFrame) -> pd.Series:
    """``"; "``-joined member ids per chapter key, in the frame's order."""
    if frame.empty:
        return pd.Series(dtype="str")
    return frame.groupby("key", sort=False)["member_id"].agg("; ".join)


def _chapter_frame(tables: Tables, keys: pd.Index) -> pd.DataFrame:
    """chapter_id, name, city, country for each key."""
    out = pd.DataFrame(index=keys)
    out["chapter_id"] = pd.Series(keys, index=keys, dtype="str").where(keys != _NO_KEY)
    for column in ("name", "city", "country"):
        out[column] = pd.Series(pd.NA, index=keys, dtype="str")
    if tables.chapters is not None and len(tables.chapters):
        ref = tables.chapters.drop_duplicates("chapter_id").set_index("chapter_id")
        for column in ("name", "city", "country"):
            if column in ref.columns:
                out[column] = ref[column].astype("str").reindex(keys)
    out["name"] = out["name"].fillna(out["chapter_id"])
    out.loc[out.index == _NO_KEY, "name"] = NO_CHAPTER_NAME
    return out


def _health(report: pd.DataFrame, thresholds: HealthThresholds, prev_col: str) -> pd.DataFrame:
    """Health flags in words and the urgency score (vectorised over chapters)."""
    real = report.index != _NO_KEY
    has_members = report["members"] > 0
    no_amb = real & has_members & (report["ambassadors"] == 0)
    no_succ = report["successor_candidates"] == 0
    amb_risk = report["ambassadors_at_risk"] > 0
    now, prev = report["active_members_now"], report[prev_col]
    flags = {
        "no ambassador and no successor": no_amb & no_succ,
        "ambassador at risk and no successor": amb_risk & no_succ,
        "no ambassador": no_amb & ~no_succ,
        "ambassador at risk": amb_risk & ~no_succ,
        "no activity this period": has_members & (now == 0),
        "no successor": real & has_members & ~no_amb & ~amb_risk & no_succ,
        "activity falling": (now > 0) & (prev > 0)
        & (now <= (1.0 - thresholds.activity_drop) * prev),
        "links thinning": report["quiet_link_share"].fillna(0.0) >= thresholds.quiet_link_share,
        "many members at risk": report["members_at_risk_share"].fillna(0.0)
        >= thresholds.members_at_risk_share,
    }
    urgency = pd.Series(0, index=report.index, dtype="int64")
    text = pd.Series("", index=report.index, dtype="str")
    for flag, weight in HEALTH_FLAGS.items():
        raised = pd.Series(np.asarray(flags[flag], dtype=bool), index=report.index)
        urgency += raised.astype("int64") * weight
        text = text.where(~raised, text + np.where(text == "", "", "; ") + flag)
    text = text.mask(text == "", "healthy").mask(~has_members, "no members yet")
    urgency = urgency.where(has_members, 0)
    return pd.DataFrame({"health": text, "urgency": urgency})


@dataclass(frozen=True, eq=False)
class _Succession:
    """The members the succession and risk columns count (frames with ``member_id`` and the
    chapter ``key``; the scored ones also with readiness, rank, risk, segment and core).

    Attributes:
        ambassadors: Core role holders, scored or not.
        scored_ambassadors: Scored core role holders.
        ambassadors_at_risk: Scored ambassadors in ``ambassador-at-risk``, most at risk first
            within a chapter.
        ready_now: Members in the ``ready-now`` segment.
        candidates: Members in the successor segments who do not hold the role.
        top: The first ``successors`` candidates of each chapter by readiness.
        risk_scored: Members with a disengagement score.
        at_risk: Members in the risk segments.
    """

    ambassadors: pd.DataFrame
    scored_ambassadors: pd.DataFrame
    ambassadors_at_risk: pd.DataFrame
    ready_now: pd.DataFrame
    candidates: pd.DataFrame
    top: pd.DataFrame
    risk_scored: pd.DataFrame
    at_risk: pd.DataFrame


def build_chapter_report(
    predictions: pd.DataFrame,
    tables: Tables,
    as_of,
    features: pd.DataFrame,
    *,
    successors: int = 3,
    trend_periods: int = 4,
    period_days: int = 90,
    thresholds: HealthThresholds = HealthThresholds(),
) -> pd.DataFrame:
    """Build the chapter succession report: one row per chapter, most urgent first.

    Args:
        predictions: Scored members (columns :data:`serving.columns.REPORT_COLUMNS`; other
            columns such as ``email`` are ignored and never copied).
        tables: The data source the predictions were scored from.
        as_of: The scoring date.
        features: ``features.build.build_features(tables, as_of)`` (index ``member_id``); the
            report reads ``chapter_link_density`` and, when present, ``role_core_now``,
            ``net_ties`` and ``net_quiet_tie_share``.
        successors: How many successor ids to list per chapter.
        trend_periods: How many previous periods of active members to count.
        period_days: Length of one period in days.
        thresholds: When the softer health flags are raised.

    Returns:
        The report (columns in the module docstring), one row per chapter of the ``chapters``
        table, of the members and of the predictions, plus ``(no chapter)`` when some members
        have no home chapter.

    Raises:
        ConfigError: If an option is out of range.
        ContractError: If predictions or features lack a column the report needs.
    """
    _check_inputs(predictions, features, successors, trend_periods, period_days)
    ts = parse_as_of(as_of)
    member_key = _keys(tables.members["chapter_id"])
    key_of = pd.Series(member_key.to_numpy(), index=tables.members["member_id"].to_numpy())
    known = tables.members["joined_at"].to_numpy() < ts.to_datetime64()
    members_n = member_key[known].value_counts()
    pred = _prediction_frame(predictions)
    feat = _feature_frame(features, key_of)
    keys = _report_keys(tables, members_n, pred)
    out = _chapter_frame(tables, keys)
    out.insert(0, "as_of", ts)
    out["members"] = _count(members_n, keys)
    out["scored_members"] = _count(pred.groupby("key").size(), keys)
    active = _active_counts(tables, member_key, ts, trend_periods, period_days)
    groups = _succession_groups(pred, feat, successors)
    columns = [
        _activity_columns(active, keys, trend_periods, period_days),
        _succession_columns(groups, keys),
        _link_columns(feat, features, keys),
        _risk_columns(groups, keys),
    ]
    out = pd.concat([out, *columns], axis=1)
    return _rank_by_urgency(out, thresholds, active_column(1, period_days))


def _check_inputs(
    predictions: pd.DataFrame, features: pd.DataFrame, successors: int, trend_periods: int,
    period_days: int,
) -> None:
    """Raise on an option out of range or a column the report needs but does not get."""
    _check_options(successors, trend_periods, period_days)
    _check_columns(
        predictions, REPORT_COLUMNS, "predictions", "expected the scored predictions table"
    )
    _check_columns(
        features,
        ("chapter_link_density",),
        "features",
        "expected the output of features.build.build_features at the same as_of",
    )


def _prediction_frame(predictions: pd.DataFrame) -> pd.DataFrame:
    """The prediction columns the report reads, under short names, with the chapter key."""
    return pd.DataFrame(
        {
            "member_id": predictions["member_id"].astype("str").to_numpy(),
            "key": _keys(predictions["chapter_id"]).to_numpy(),
            "readiness": predictions["readiness_score"].to_numpy(dtype=float, na_value=np.nan),
            "rank": predictions["readiness_rank"].to_numpy(dtype=float, na_value=np.nan),
            "risk": predictions["disengagement_score"].to_numpy(dtype=float, na_value=np.nan),
            "segment": predictions["segment"].astype("str").to_numpy(),
            "core": predictions["holds_core_role"].to_numpy(dtype=bool, na_value=False),
        }
    )


def _feature_frame(features: pd.DataFrame, key_of: pd.Series) -> pd.DataFrame:
    """The feature columns the report reads (link density, core role, ties, quiet ties), with
    the chapter key of every member who has one in the members table."""
    feat_ids = features.index.astype("str")
    feat = pd.DataFrame(
        {
            "key": key_of.reindex(feat_ids).to_numpy(),
            "density": features["chapter_link_density"].to_numpy(dtype=float),
            "core": _column(features, "role_core_now") > 0,
            "ties": _column(features, "net_ties"),
            "quiet": _column(features, "net_ties") * _column(features, "net_quiet_tie_share"),
        },
        index=feat_ids,
    )
    return feat[feat["key"].notna()]


def _report_keys(tables: Tables, members_n: pd.Series, pred: pd.DataFrame) -> pd.Index:
    """Chapter keys of the report: the chapters table's, then the members', then the
    predictions' (each once, in that order)."""
    chapter_ids = (
        pd.Index(tables.chapters["chapter_id"].astype("str").dropna())
        if tables.chapters is not None
        else pd.Index([], dtype="str")
    )
    keys = (
        chapter_ids.append(pd.Index(members_n.index)).append(pd.Index(pred["key"])).unique()
    )
    return pd.Index(keys, dtype="str", name="key")


def _count(series: pd.Series, keys: pd.Index) -> pd.Series:
    """Counts per chapter key on ``keys`` (0 where missing)."""
    return series.reindex(keys, fill_value=0).astype("int64")


def _succession_groups(pred: pd.DataFrame, feat: pd.DataFrame, successors: int) -> _Succession:
    """Ambassadors, successor candidates and members at risk (see :class:`_Succession`)."""
    # Ambassadors: scored role holders, plus role holders of the features (non-consenting ones
    # are counted but never named).
    holders = feat[feat["core"]]
    amb = pd.concat(
        [
            pred.loc[pred["core"], ["member_id", "key"]],
            pd.DataFrame({"member_id": holders.index, "key": holders["key"].to_numpy()}),
        ]
    )
    scored_amb = pred[pred["core"]]
    candidates = pred[pred["segment"].isin(_SUCCESSOR_SEGMENTS) & ~pred["core"]]
    return _Succession(
        ambassadors=amb.drop_duplicates("member_id"),
        scored_ambassadors=scored_amb,
        ambassadors_at_risk=scored_amb[scored_amb["segment"] == "ambassador-at-risk"].sort_values(
            ["key", "risk", "member_id"], ascending=[True, False, True]
        ),
        ready_now=pred[pred["segment"] == "ready-now"],
        candidates=candidates,
        top=candidates.sort_values(
            ["key", "readiness", "rank", "member_id"],
            ascending=[True, False, True, True],
            na_position="last",
        ).groupby("key", sort=False).head(successors),
        risk_scored=pred[pred["risk"].notna()],
        at_risk=pred[pred["segment"].isin(_RISK_SEGMENTS)],
    )


def _activity_columns(
    active: pd.DataFrame, keys: pd.Index, trend_periods: int, period_days: int
) -> pd.DataFrame:
    """Active members now and in each previous period, and the trend against the last one."""
    active = active.reindex(keys, fill_value=0).astype("int64")
    out = pd.DataFrame(index=keys)
    columns = [active_column(k, period_days) for k in range(trend_periods + 1)]
    for k, column in enumerate(columns):
        out[column] = active[k].to_numpy()
    prev = out[columns[1]]
    out["active_trend"] = out["active_members_now"] - prev
    out["active_trend_pct"] = out["active_trend"] / prev.where(prev > 0)
    return out


def _succession_columns(groups: _Succession, keys: pd.Index) -> pd.DataFrame:
    """Ambassadors (at risk), ready-now members and successor candidates per chapter."""
    out = pd.DataFrame(index=keys)
    out["ambassadors"] = _count(groups.ambassadors.groupby("key").size(), keys)
    at_risk = groups.ambassadors_at_risk
    out["ambassadors_at_risk"] = _count(at_risk.groupby("key").size(), keys)
    out["ambassadors_at_risk_ids"] = _join_ids(at_risk).reindex(keys).fillna("")
    scored = groups.scored_ambassadors
    out["mean_ambassador_risk"] = scored.groupby("key")["risk"].mean().reindex(keys)
    out["ready_now"] = _count(groups.ready_now.groupby("key").size(), keys)
    out["successor_candidates"] = _count(groups.candidates.groupby("key").size(), keys)
    out["ready_successors"] = _join_ids(groups.top).reindex(keys).fillna("")
    out["successors_per_ambassador"] = out["successor_candidates"] / out["ambassadors"].where(
        out["ambassadors"] > 0
    )
    return out


def _link_columns(feat: pd.DataFrame, features: pd.DataFrame, keys: pd.Index) -> pd.DataFrame:
    """Link density of each chapter and the share of its members' links gone quiet (NaN
    when the features have no network columns)."""
    out = pd.DataFrame(index=keys)
    density = feat[feat["key"] != _NO_KEY].groupby("key")["density"].max()
    out["link_density"] = density.reindex(keys)
    totals = feat.groupby("key")[["ties", "quiet"]].sum().reindex(keys)
    has_links = "net_ties" in features.columns and "net_quiet_tie_share" in features.columns
    out["quiet_link_share"] = (
        totals["quiet"] / totals["ties"].where(totals["ties"] > 0) if has_links else np.nan
    )
    return out


def _risk_columns(groups: _Succession, keys: pd.Index) -> pd.DataFrame:
    """Members at risk per chapter, and their share of the members scored for it."""
    out = pd.DataFrame(index=keys)
    out["members_at_risk"] = _count(groups.at_risk.groupby("key").size(), keys)
    risk_n = _count(groups.risk_scored.groupby("key").size(), keys)
    out["members_at_risk_share"] = out["members_at_risk"] / risk_n.where(risk_n > 0)
    return out


def _rank_by_urgency(
    out: pd.DataFrame, thresholds: HealthThresholds, prev_col: str
) -> pd.DataFrame:
    """The report with its health flags, sorted most urgent first, ranked, emails hidden."""
    out = out.join(_health(out, thresholds, prev_col))
    out = out.assign(_sort_name=out["name"].fillna("")).sort_values(
        ["urgency", "members_at_risk", "members", "_sort_name"],
        ascending=[False, False, False, True],
        kind="stable",
    )
    out["urgency_rank"] = np.arange(1, len(out) + 1, dtype=np.int64)
    for column in ("name", "city", "country", "ambassadors_at_risk_ids", "ready_successors"):
        out[column] = out[column].map(hide_emails, na_action="ignore").astype("str")
    return out.drop(columns="_sort_name").reset_index(drop=True)


def write_report(
    chapter_report: pd.DataFrame, html: str, out_dir: str | os.PathLike
) -> list[Path]:
    """Write ``chapter_report.csv`` and ``report.html`` into ``out_dir``, both or neither.

    Text cells that a spreadsheet would take for a formula (starting with ``=``, ``+``, ``-``,
    ``@``) are written with a leading ``'``.

    Args:
        chapter_report: The output of :func:`build_chapter_report`.
        html: The output of :func:`render_report_html`.
        out_dir: Destination folder (created when missing).

    Returns:
        The two written paths (CSV first).
    """
    folder = Path(out_dir)
    csv = chapter_report.copy()
    for column in csv.columns:
        if pd.api.types.is_string_dtype(csv[column]):
            text = csv[column]
            # A spreadsheet would run text starting like a formula: keep it text.
            csv[column] = text.where(~text.str.match(_FORMULA_START, na=False), "'" + text)
    return write_files_atomic(
        {
            folder / "chapter_report.csv": lambda tmp: csv.to_csv(
                tmp, index=False, encoding="utf-8", float_format="%.6g"
            ),
            folder / "report.html": lambda tmp: tmp.write_text(html, encoding="utf-8"),
        }
    )
