"""The chapter succession report as one self-contained HTML page.

Everything is inline: the CSS in a ``<style>`` element, the charts as base64 PNG ``data:`` URIs
(see :mod:`serving.report_charts`); there are no scripts and no external URLs, so the file can be
mailed or opened offline.

The layout is the Jinja2 template ``serving/templates/report.html.j2`` (with the styles of
``report.css`` included into it), shipped with the package. This module only prepares what the
page shows as plain data (:func:`report_page_context`: numbers already formatted as text, lists
and dicts, chart URIs) and renders it (:func:`render_report_page`). The template environment
escapes every printed value (autoescape), hides anything that looks like an email address in it
(``[email hidden]``; members are named by id only) and refuses a missing variable or key
(``StrictUndefined``), so no value can reach the page unescaped or silently empty.

The page opens with one note per target saying what produced its scores: a learned model or a
transparent ranking rule, validated or not, and how well it did on labelled snapshots (an
unvalidated rule's scores are ranks within the community, not probabilities). Then comes a
headline (community totals, segment counts and chart, link density), a
"chapters at a glance" table sorted by urgency, one card per chapter for the most urgent chapters
(ambassadors and their risk, ready successors with their top reasons and, for the ready-now ones,
their talking point, the active-members trend chart, link density) and a footer with the model
versions, run id and data window.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from features.tables import parse_as_of
from serving.report_charts import (
    SEGMENT_COLOURS,
    draw_active_trends,
    figure_to_data_uri,
    plot_segment_counts,
)
from serving.segments import SEGMENTS

__all__ = [
    "method_notes",
    "NO_CHAPTER_NAME",
    "SEGMENT_MEANINGS",
    "EMAIL_PLACEHOLDER",
    "active_column",
    "active_columns",
    "hide_emails",
    "PAGE_TEMPLATE",
    "TEMPLATE_FOLDER",
    "render_report_html",
    "render_report_page",
    "report_page_context",
]

#: Name of the report row of members without a home chapter.
NO_CHAPTER_NAME = "(no chapter)"
EMAIL_PLACEHOLDER = "[email hidden]"
#: The folder of the page's templates, inside the ``serving`` package.
TEMPLATE_FOLDER = "templates"
#: The page's template, in :data:`TEMPLATE_FOLDER` (it includes ``report.css``).
PAGE_TEMPLATE = "report.html.j2"

#: What each segment asks of a community manager.
SEGMENT_MEANINGS: dict[str, str] = {
    "ambassador-at-risk": "Ambassadors likely to drift away: reach out to them first.",
    "ready-now": "Ready to be asked, personally, to become an ambassador.",
    "at-risk": "Members likely to drift away soon.",
    "nurture": "Promising members: keep involving them.",
    "ambassador": "Ambassadors who are doing fine.",
    "steady": "Active members with nothing to flag.",
    "dormant": "No recent activity (not scored for risk).",
}

# An address starts where a run of its characters starts (the lookbehind): same matches as
# without it, but linear time on long runs such as the charts' base64 data (quadratic without).
_EMAIL = re.compile(r"(?<![^\s@<>\"';,()])[^\s@<>\"';,()]+@[^\s@<>\"';,()]+\.[A-Za-z]{2,}")
_ACTIVE = re.compile(r"^active_members_(now|(\d+)d_ago)$")
_URGENT_FROM = 40
# An ambassador's links are shown in red when at least this share of them has gone quiet.
_QUIET_ALERT = 0.5
_META_LABELS = {
    "readiness_model_version": "Readiness model version",
    "disengagement_model_version": "Disengagement model version",
    "readiness_method": "Readiness scored by",
    "readiness_validated": "Readiness validated",
    "disengagement_method": "Disengagement scored by",
    "disengagement_validated": "Disengagement validated",
    "run_id": "Scoring run",
    "data_window": "Data window",
    "scored_at": "Scored at",
    "source": "Data source",
}


#: Meta items not listed in the footer (shown elsewhere on the page).
_NOT_IN_FOOTER = ("methods",)


def _rule_description(target: str, method: str) -> str:
    """What a rule ranks by, in words (its name when unknown)."""
    from features.errors import ConfigError
    from models.rules import rule_named

    try:
        return rule_named(target, method).description
    except ConfigError:
        return method


def _method_of(target: str, meta: Mapping, predictions: pd.DataFrame) -> dict | None:
    """The method details of ``target``: from ``meta["methods"]`` when there, else from the
    predictions' method columns; ``None`` when nothing scored the target."""
    found = (meta.get("methods") or {}).get(target)
    if found:
        return dict(found)
    column = f"{target}_method"
    if column not in predictions.columns:
        return None
    methods = predictions[column].dropna().astype("str")
    methods = methods[methods != ""]
    if methods.empty:
        return None
    validated = predictions.get(f"{target}_validated", pd.Series(dtype="boolean"))
    return {"method": methods.iloc[0], "validated": bool(validated.fillna(True).all())}


def _evidence(details: Mapping) -> str:
    """`` on 6 snapshots (ROC-AUC 0.85, 90 % interval 0.80–0.89)`` (what is known of it)."""
    snapshots = int(details.get("snapshots") or 0)
    text = f" on {snapshots} snapshot{'s' if snapshots != 1 else ''}" if snapshots else ""
    auc = details.get("roc_auc", float("nan"))
    if auc is None or pd.isna(auc):
        return text
    low, high = details.get("roc_auc_low"), details.get("roc_auc_high")
    spread = ""
    if low is not None and high is not None and not (pd.isna(low) or pd.isna(high)):
        level = float(details.get("level") or 0.9)
        spread = f", {100 * level:g}\u00a0% interval {low:.2f}–{high:.2f}"
    return f"{text} (ROC-AUC {auc:.2f}{spread})"


def method_notes(meta: Mapping, predictions: pd.DataFrame) -> list[tuple[str, str, str]]:
    """One sentence per target on what produced its scores.

    Returns:
        ``(target, kind, sentence)`` with kind ``validated``, ``unvalidated`` or ``absent``,
        e.g. "Readiness: ranked by a rule (most activities in the last year), not validated —
        scores are ranks within the community, not probabilities".
    """
    notes = []
    for target in ("readiness", "disengagement"):
        label = target.capitalize()
        details = _method_of(target, meta, predictions)
        if details is None:
            notes.append((target, "absent", f"{label}: not scored (no model)."))
            continue
        method, validated = str(details["method"]), bool(details["validated"])
        what = (
            "learned model" if method == "model"
            else f"ranked by a rule ({_rule_description(target, method)})"
        )
        if not validated:
            tail = (
                ", not validated — scores are ranks within the community, not probabilities."
                if method != "model"
                else ", not validated — its probabilities were not checked against outcomes."
            )
            notes.append((target, "unvalidated", f"{label}: {what}{tail}"))
            continue
        notes.append((target, "validated", f"{label}: {what}, validated{_evidence(details)}."))
    return notes


def active_column(k: int, period_days: int) -> str:
    """Name of the active-members column of period ``k`` (0 = the current period)."""
    return "active_members_now" if k == 0 else f"active_members_{k * period_days}d_ago"


def active_columns(chapter_report: pd.DataFrame) -> list[tuple[int, str]]:
    """``(days ago, column)`` of the active-members columns of a report, oldest first."""
    found = []
    for column in chapter_report.columns:
        match = _ACTIVE.match(str(column))
        if match:
            found.append((0 if match.group(1) == "now" else int(match.group(2)), column))
    return sorted(found, reverse=True)


def hide_emails(text: str) -> str:
    """Replace anything that looks like an email address with :data:`EMAIL_PLACEHOLDER`."""
    return _EMAIL.sub(EMAIL_PLACEHOLDER, text)


def _text(value) -> str:
    """Text for the page: missing (``None``, NaN, ``NA``) as empty, anything else as ``str``."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value)


def _pct(value, digits: int = 0) -> str:
    if value is None or pd.isna(value):
        return "–"
    return f"{100 * float(value):.{digits}f}\u00a0%"


def _num(value) -> str:
    return f"{int(value):,}"


def _ids(value) -> list[str]:
    if value is None or (not isinstance(value, str) and pd.isna(value)) or not str(value):
        return []
    return [part for part in str(value).split("; ") if part]


def _level(urgency: int, members: int) -> str:
    if members == 0:
        return "empty"
    if urgency >= _URGENT_FROM:
        return "urgent"
    return "watch" if urgency > 0 else "ok"


def _trend(row: pd.Series) -> dict | None:
    """The change of active members: ``{"direction": "up" | "down" | None, "text"}``."""
    change = row.get("active_trend")
    if change is None or pd.isna(change):
        return None
    change = int(change)
    pct = row.get("active_trend_pct")
    rel = "" if pct is None or pd.isna(pct) else f"\u00a0({100 * float(pct):+.0f}\u00a0%)"
    if change > 0:
        return {"direction": "up", "text": f"▲ {change}{rel}"}
    if change < 0:
        return {"direction": "down", "text": f"▼ {-change}{rel}"}
    return {"direction": None, "text": "= 0"}


def _where(row: pd.Series) -> str:
    parts = [_text(row.get(c)) for c in ("city", "country")]
    return ", ".join(p for p in parts if p)


def _keys(chapter_ids: pd.Series) -> pd.Series:
    return chapter_ids.astype("str").fillna("")


def _member_rows(
    predictions: pd.DataFrame, features: pd.DataFrame | None, keys: set[str]
) -> pd.DataFrame:
    """The columns the cards show of the members of chapters ``keys``, by member id (no email)."""
    predictions = predictions[_keys(predictions["chapter_id"]).isin(keys).to_numpy()]
    out = pd.DataFrame(
        {
            "key": _keys(predictions["chapter_id"]).to_numpy(),
            "readiness": predictions["readiness_score"].to_numpy(dtype=float, na_value=np.nan),
            "risk": predictions["disengagement_score"].to_numpy(dtype=float, na_value=np.nan),
            "segment": predictions["segment"].astype("str").to_numpy(),
            "core": predictions["holds_core_role"].to_numpy(dtype=bool, na_value=False),
            "reasons": (
                predictions["reasons"].astype("str").to_numpy()
                if "reasons" in predictions.columns
                else np.full(len(predictions), None)
            ),
            "talking_point": (
                predictions["talking_point"].astype(object)
                .where(predictions["talking_point"].notna(), None).to_numpy()
                if "talking_point" in predictions.columns
                else np.full(len(predictions), None)
            ),
        },
        index=pd.Index(predictions["member_id"].astype("str").to_numpy(), name="member_id"),
    )
    out = out[~out.index.duplicated()]
    out["ties"] = np.nan
    out["quiet"] = np.nan
    if features is not None and {"net_ties", "net_quiet_tie_share"} <= set(features.columns):
        feats = features[["net_ties", "net_quiet_tie_share"]].copy()
        feats.index = feats.index.astype("str")
        feats = feats[~feats.index.duplicated()].reindex(out.index)
        out["ties"] = feats["net_ties"].to_numpy(dtype=float)
        out["quiet"] = feats["net_quiet_tie_share"].to_numpy(dtype=float)
    return out


def _reasons(reasons, top: int = 2) -> list[str]:
    return [r.strip() for r in _ids(reasons)[:top] if r.strip()]


def _ambassador(member_id: str, amb: pd.Series) -> dict:
    """One ambassador of a card: risk, links and, when at risk, the reasons."""
    at_risk = amb["segment"] == "ambassador-at-risk"
    links = None
    if not pd.isna(amb["ties"]):
        quiet = f"{_pct(amb['quiet'])} gone quiet" if amb["ties"] > 0 else ""
        links = {
            "count": int(amb["ties"]), "quiet": quiet, "alert": bool(amb["quiet"] >= _QUIET_ALERT)
        }
    return {
        "id": _text(member_id),
        "at_risk": bool(at_risk),
        "risk": (
            "risk not scored (no recent activity)"
            if pd.isna(amb["risk"])
            else f"risk of drifting away {_pct(amb['risk'])}"
        ),
        "links": links,
        "reasons": _reasons(amb["reasons"]) if at_risk else [],
    }


def _ambassadors(row: pd.Series, ambassadors: pd.DataFrame) -> dict:
    """The ambassadors of a card (those not scored are only counted)."""
    total = int(row["ambassadors"])
    items = [_ambassador(member_id, amb) for member_id, amb in ambassadors.iterrows()]
    return {"total": total, "people": items if total else [], "hidden": total - len(items)}


def _successor(member_id: str, members: pd.DataFrame) -> dict:
    """One ready successor: readiness, segment, reasons, and the talking point when ready now."""
    if member_id not in members.index:
        return {"id": member_id, "details": None}
    m = members.loc[member_id]
    ready_now = m["segment"] == "ready-now"
    point = m["talking_point"]
    if not ready_now or point is None or pd.isna(point):
        point = ""
    return {
        "id": member_id,
        "details": {
            "readiness": _pct(m["readiness"]),
            "segment": "ready now" if ready_now else "nurture",
            "reasons": _reasons(m["reasons"]),
            "talking_point": str(point).strip(),
        },
    }


def _successors(row: pd.Series, members: pd.DataFrame) -> dict:
    ids = _ids(row["ready_successors"])
    more = int(row["successor_candidates"]) - len(ids)
    return {"people": [_successor(i, members) for i in ids], "more": more}


def _trend_charts(
    carded: pd.DataFrame, columns: list[tuple[int, str]], as_of
) -> list[dict | None]:
    """The active-members chart (``uri``, ``alt``) of each carded chapter (same order)."""
    if len(columns) < 2 or carded.empty:
        return [None] * len(carded)
    period = columns[-2][0]
    labels = [f"{(as_of - pd.Timedelta(days=days + period)):%b '%y}" for days, _ in columns]
    labels[-1] += "–now"
    counts = carded[[c for _, c in columns]].to_numpy(dtype=np.int64)
    uris = draw_active_trends(labels, counts, f"active members per {period}-day period")
    return [
        {
            "uri": uri,
            "alt": f"Active members per {period}-day period in {_text(name)}, oldest first: "
            + ", ".join(str(c) for c in row),
        }
        for name, row, uri in zip(carded["name"], counts, uris, strict=True)
    ]


def _card(row: pd.Series, ambassadors: pd.DataFrame, members: pd.DataFrame, chart) -> dict:
    """One chapter card: header, figures, ambassadors, successors and the trend chart."""
    level = _level(int(row["urgency"]), int(row["members"]))
    density = row["link_density"]
    quiet = row.get("quiet_link_share")
    return {
        "level": level,
        "chapter_id": _text(row["chapter_id"]),
        "name": _text(row["name"]),
        "where": _where(row),
        "flags": _ids(row["health"]),
        "members": _num(row["members"]),
        "active_now": _num(row["active_members_now"]),
        "trend": _trend(row),
        "link_density": "–" if pd.isna(density) else f"{_pct(density, 1)} of pairs linked",
        "quiet_links": "" if quiet is None or pd.isna(quiet) else _pct(quiet),
        "members_at_risk": _num(row["members_at_risk"]),
        "ambassadors": _ambassadors(row, ambassadors),
        "successors": _successors(row, members),
        "chart": chart,
    }


def _cards(
    report: pd.DataFrame,
    predictions: pd.DataFrame,
    features: pd.DataFrame | None,
    max_cards: int,
    as_of: pd.Timestamp,
) -> dict:
    """The cards of the ``max_cards`` most urgent chapters (``report`` sorted by urgency)."""
    carded = report.head(max(int(max_cards), 0))
    in_cards = _member_rows(predictions, features, set(_keys(carded["chapter_id"])))
    ambassadors = in_cards[in_cards["core"]].sort_values(
        ["risk", "readiness"], ascending=[False, False], na_position="last"
    )
    by_chapter = dict(tuple(ambassadors.groupby("key", sort=False)))
    empty = ambassadors.iloc[0:0]
    charts = _trend_charts(carded, active_columns(report), as_of)
    items = [
        _card(
            row,
            by_chapter.get("" if pd.isna(row["chapter_id"]) else str(row["chapter_id"]), empty),
            in_cards,
            chart,
        )
        for (_, row), chart in zip(carded.iterrows(), charts, strict=True)
    ]
    return {
        "chapters": items,
        "capped": len(report) > len(carded),
        "shown": f"{len(carded):,}",
        "total": f"{len(report):,}",
    }


def _tiles(report: pd.DataFrame, predictions: pd.DataFrame) -> list[dict]:
    """The headline: community totals (``value``, ``label``)."""
    real = report["chapter_id"].notna()
    members = report["members"].to_numpy(dtype=float)
    pairs = members * (members - 1) / 2.0
    dens = report["link_density"].to_numpy(dtype=float)
    usable = real.to_numpy() & (pairs > 0) & ~np.isnan(dens)
    overall = (
        float(np.sum(dens[usable] * pairs[usable]) / np.sum(pairs[usable]))
        if usable.any()
        else float("nan")
    )
    columns = active_columns(report)
    now = int(report["active_members_now"].sum())
    trend = ""
    if len(columns) >= 2:
        prev = int(report[columns[-2][1]].sum())
        change = now - prev
        trend = f" ({'+' if change >= 0 else '−'}{abs(change):,} vs previous period)"
    segments = predictions["segment"].astype("str")
    attention = int((report["urgency"] > 0).sum())
    tiles = [
        (_num(report["members"].sum()), "members"),
        (_num(len(predictions)), "members scored (consenting)"),
        (_num(now), f"active this period{trend}"),
        (_num(report["ambassadors"].sum()), "ambassadors"),
        (_num(report["ambassadors_at_risk"].sum()), "ambassadors at risk"),
        (_num((segments == "ready-now").sum()), "ready to be approached"),
        (f"{attention:,} / {int(real.sum()):,}", "chapters needing attention"),
        (_pct(overall, 1), "link density within chapters"),
    ]
    return [{"value": value, "label": label} for value, label in tiles]


def _segments(predictions: pd.DataFrame) -> dict:
    """The segment chart (``uri``, ``alt``) and table rows, in the order of :data:`SEGMENTS`."""
    counts = predictions["segment"].astype("str").value_counts()
    ordered = {s: int(counts.get(s, 0)) for s in SEGMENTS}
    for extra in counts.index.difference(pd.Index(SEGMENTS)):
        ordered[str(extra)] = int(counts[extra])
    uri = figure_to_data_uri(plot_segment_counts(ordered), dpi=100)
    alt = "Scored members per segment: " + ", ".join(f"{k} {v}" for k, v in ordered.items())
    rows = [
        {
            "name": name,
            "colour": SEGMENT_COLOURS.get(name, "#95a5a6"),
            "count": f"{n:,}",
            "meaning": SEGMENT_MEANINGS.get(name, ""),
        }
        for name, n in ordered.items()
    ]
    return {"chart": {"uri": uri, "alt": alt}, "rows": rows}


def _glance_row(row: pd.Series) -> dict:
    level = _level(int(row["urgency"]), int(row["members"]))
    return {
        "rank": str(int(row["urgency_rank"])),
        "name": _text(row["name"]),
        "where": _where(row),
        "level": level,
        "flags": _ids(row["health"]),
        "members": _num(row["members"]),
        "active_now": _num(row["active_members_now"]),
        "trend": _trend(row),
        "ambassadors": _num(row["ambassadors"]),
        "ambassadors_at_risk": _num(row["ambassadors_at_risk"]),
        "successors": ", ".join(_ids(row["ready_successors"])) or "–",
        "link_density": _pct(row["link_density"], 1),
        "members_at_risk": _num(row["members_at_risk"]),
        "members_at_risk_share": _pct(row["members_at_risk_share"]),
    }


def _glance(report: pd.DataFrame, max_rows: int) -> dict:
    """The chapters-at-a-glance table: its first ``max_rows`` rows."""
    rows = [
        _glance_row(pd.Series(row._asdict()))
        for row in report.head(max_rows).itertuples(index=False)
    ]
    return {
        "rows": rows,
        "capped": len(report) > max_rows,
        "shown": f"{max_rows:,}",
        "total": f"{len(report):,}",
    }


def _footer(meta: Mapping, predictions: pd.DataFrame) -> list[dict]:
    """The footer items (``label``, ``value``): meta, versions and run id from the predictions."""
    values = {k: v for k, v in meta.items() if k not in _NOT_IN_FOOTER}
    for key in ("readiness_model_version", "disengagement_model_version", "run_id"):
        if key not in values and key in predictions.columns:
            found = predictions[key].dropna().astype("str").unique()
            if len(found):
                values[key] = ", ".join(sorted(found))
    return [
        {"label": _META_LABELS.get(str(k), str(k)), "value": _text(v)} for k, v in values.items()
    ]


def report_page_context(
    chapter_report: pd.DataFrame,
    predictions: pd.DataFrame,
    *,
    as_of,
    meta: Mapping,
    features: pd.DataFrame | None = None,
    max_cards: int = 60,
    max_table_rows: int = 500,
    outreach: Sequence[str] = (),
) -> dict:
    """What the page shows, as plain data for the template (arguments of
    :func:`render_report_html`): strings already formatted, lists and dicts, chart ``data:`` URIs.
    """
    ts = parse_as_of(as_of)
    report = chapter_report.sort_values("urgency_rank", kind="stable")
    return {
        "title": f"Chapter succession report – {ts:%Y-%m-%d}",
        "week": f"{ts.day} {ts:%B %Y}",
        "methods": [
            {"target": target, "kind": kind, "text": text}
            for target, kind, text in method_notes(meta, predictions)
        ],
        "tiles": _tiles(report, predictions),
        "segments": _segments(predictions),
        "outreach": [_text(line) for line in outreach],
        "glance": _glance(report, max_table_rows),
        "cards": _cards(report, predictions, features, max_cards, ts),
        "footer": _footer(meta, predictions),
    }


def _finalize(value):
    """Every value the template prints, before autoescaping: ``None`` as empty, and anything
    that looks like an email address hidden, in text and in markup alike."""
    if value is None:
        return ""
    if isinstance(value, str):
        masked = hide_emails(value)
        # markup (a macro's output) stays markup: hiding an address adds no HTML
        return type(value)(masked) if hasattr(value, "__html__") else masked
    return value


@functools.cache
def _environment():
    """The template environment, built at the first page (nothing happens at import)."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader(__name__.rpartition(".")[0], TEMPLATE_FOLDER),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_report_page(context: Mapping) -> str:
    """Lay out the page of :func:`report_page_context`'s data with the template
    :data:`PAGE_TEMPLATE`; a missing variable or key raises ``jinja2.UndefinedError``."""
    return _environment().get_template(PAGE_TEMPLATE).render(context)


def render_report_html(
    chapter_report: pd.DataFrame,
    predictions: pd.DataFrame,
    *,
    as_of,
    meta: Mapping,
    features: pd.DataFrame | None = None,
    max_cards: int = 60,
    max_table_rows: int = 500,
    outreach: Sequence[str] = (),
) -> str:
    """Render the chapter report as one self-contained HTML page.

    Args:
        chapter_report: The output of :func:`serving.report.build_chapter_report`.
        predictions: The scored members the report was built from (emails are never read).
        as_of: The report date.
        meta: Footer items, e.g. ``readiness_model_version``, ``disengagement_model_version``,
            ``run_id``, ``data_window`` (model versions and run id default to the predictions'),
            and ``methods`` (``{target: serving.score.method_details(model)}``) for the note on
            each target at the top (without it, the predictions' method columns are used).
        features: Optionally the features at as_of, to show each ambassador's links and the
            share of them gone quiet.
        max_cards: Chapter cards shown (the most urgent); the others are in the table and CSV.
        max_table_rows: Rows of the chapters-at-a-glance table.
        outreach: What the outreach loop measured, as sentences
            (:func:`serving.measure.OutreachMeasurement.summary_lines`), or why it could not.

    Returns:
        The HTML document.
    """
    return render_report_page(
        report_page_context(
            chapter_report, predictions, as_of=as_of, meta=meta, features=features,
            max_cards=max_cards, max_table_rows=max_table_rows, outreach=outreach,
        )
    )
