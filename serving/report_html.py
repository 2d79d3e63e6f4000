"""The chapter succession report as one self-contained HTML page.

Everything is inline: the CSS in a ``<style>`` element, the charts as base64 PNG ``data:`` URIs
(see :mod:`serving.report_charts`); there are no scripts and no external URLs, so the file can be
mailed or opened offline. Every piece of text is HTML-escaped, and anything that looks like an
email address is replaced by ``[email hidden]`` (members are named by id only).

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

import html
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
    "render_report_html",
]

#: Name of the report row of members without a home chapter.
NO_CHAPTER_NAME = "(no chapter)"
EMAIL_PLACEHOLDER = "[email hidden]"

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

_EMAIL = re.compile(r"[^\s@<>\"';,()]+@[^\s@<>\"';,()]+\.[A-Za-z]{2,}")
_ACTIVE = re.compile(r"^active_members_(now|(\d+)d_ago)$")
_URGENT_FROM = 40
# An ambassador's links are shown in red when at least this share of them has gone quiet.
_QUIET_ALERT = 0.5
_CSS = """
:root { --ink: #2c3e50; --muted: #6c7a89; --line: #dfe4ea; --bg: #f6f8fa;
  --urgent: #c0392b; --watch: #b9770e; --ok: #1e8449; --empty: #95a5a6; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial,
  sans-serif; color: var(--ink); background: var(--bg); }
main { max-width: 1180px; margin: 0 auto; padding: 24px 20px 40px; }
h1 { font-size: 26px; margin: 0 0 2px; }
h2 { font-size: 20px; margin: 34px 0 10px; border-bottom: 2px solid var(--line);
  padding-bottom: 4px; }
h3 { font-size: 18px; margin: 0; }
h4 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted);
  margin: 12px 0 4px; }
.sub { color: var(--muted); margin: 0 0 18px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(165px, 1fr)); gap: 10px; }
.tile { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.tile .value { font-size: 24px; font-weight: 700; }
.tile .label { color: var(--muted); font-size: 13px; }
.segments { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start;
  background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px;
  margin-top: 12px; }
.segments img { max-width: 100%; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 14px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: #eef1f4; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.seg { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 14px; }
.card { background: #fff; border: 1px solid var(--line); border-left: 6px solid var(--empty);
  border-radius: 8px; padding: 12px 14px; break-inside: avoid; }
.card.urgent { border-left-color: var(--urgent); }
.card.watch { border-left-color: var(--watch); }
.card.ok { border-left-color: var(--ok); }
.card header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 10px; }
.where { color: var(--muted); }
.flags { display: inline-flex; flex-wrap: wrap; gap: 3px 4px; }
.badge { display: inline-block; font-size: 12.5px; font-weight: 600; line-height: 1.3;
  padding: 1px 8px; border-radius: 10px; color: #fff; background: var(--empty);
  white-space: nowrap; }
.badge.urgent { background: var(--urgent); }
.badge.watch { background: var(--watch); }
.badge.ok { background: var(--ok); }
.legend { color: var(--muted); font-size: 14px; margin: 0 0 8px; }
.stats { color: var(--muted); font-size: 14px; margin: 6px 0 0; }
.stats b { color: var(--ink); }
.cols { display: grid; grid-template-columns: 1fr 1fr; gap: 4px 18px; }
.card ul, .card ol { margin: 0; padding-left: 18px; }
.card li { margin: 2px 0; }
.reasons { color: var(--muted); font-size: 13px; list-style: disc; }
.talk { font-size: 13px; margin: 2px 0 6px; padding-left: 8px; border-left: 3px solid var(--line); }
.risk-high { color: var(--urgent); font-weight: 600; }
.none { color: var(--muted); font-style: italic; }
.trend { display: block; margin-top: 8px; max-width: 100%; }
.up { color: var(--ok); white-space: nowrap; } .down { color: var(--urgent); white-space: nowrap; }
.note { color: var(--muted); font-size: 14px; margin: 8px 0; }
.methods { margin: 0 0 16px; }
.method-note { background: #fff; border: 1px solid var(--line); border-left: 6px solid var(--ok);
  border-radius: 6px; padding: 6px 10px; margin: 0 0 6px; font-size: 14px; }
.method-note.unvalidated, .method-note.absent { border-left-color: var(--watch); }
footer { margin-top: 36px; color: var(--muted); font-size: 13px; border-top: 1px solid var(--line);
  padding-top: 10px; }
footer dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 6px 0; }
footer dt { font-weight: 600; }
footer dd { margin: 0; }
@media (max-width: 700px) { .cards { grid-template-columns: 1fr; } .cols { grid-template-columns:
  1fr; } }
@media print { body { background: #fff; } .card { page-break-inside: avoid; } }
"""

_LEGEND = (
    '<p class="legend">Most urgent first. <span class="badge urgent">red</span> act now: an '
    "ambassador or a successor is missing or at risk, or several problems add up; "
    '<span class="badge watch">amber</span> keep an eye on it; '
    '<span class="badge ok">green</span> healthy.</p>'
)

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


def _methods_html(meta: Mapping, predictions: pd.DataFrame) -> str:
    notes = method_notes(meta, predictions)
    return '<section class="methods">' + "".join(
        f'<p class="method-note {kind}" data-target="{target}">{_t(text)}</p>'
        for target, kind, text in notes
    ) + "</section>"


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


def _t(value) -> str:
    """Text for HTML: missing as empty, emails hidden, escaped."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return html.escape(hide_emails(str(value)), quote=True)


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


def _flags_html(health, level: str) -> str:
    """One chip per health flag, coloured by the chapter's level."""
    chips = "".join(f'<span class="badge {level}">{_t(f)}</span>' for f in _ids(health))
    return f'<span class="flags">{chips}</span>'


def _trend_html(row: pd.Series) -> str:
    change = row.get("active_trend")
    if change is None or pd.isna(change):
        return ""
    change = int(change)
    pct = row.get("active_trend_pct")
    rel = "" if pct is None or pd.isna(pct) else f"\u00a0({100 * float(pct):+.0f}\u00a0%)"
    if change > 0:
        return f'<span class="up">▲ {change}{rel}</span>'
    if change < 0:
        return f'<span class="down">▼ {-change}{rel}</span>'
    return "= 0"


def _where(row: pd.Series) -> str:
    parts = [_t(row.get(c)) for c in ("city", "country")]
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


def _reasons_html(reasons, top: int = 2) -> str:
    items = [r.strip() for r in _ids(reasons)[:top] if r.strip()]
    if not items:
        return ""
    return '<ul class="reasons">' + "".join(f"<li>{_t(r)}</li>" for r in items) + "</ul>"


def _talking_point_html(text) -> str:
    """A ready-now candidate's talking point for the call ("" without one)."""
    if text is None or pd.isna(text) or not str(text).strip():
        return ""
    return f'<p class="talk">To say on the call: {_t(str(text).strip())}</p>'


def _ambassadors_html(row: pd.Series, ambassadors: pd.DataFrame) -> str:
    total = int(row["ambassadors"])
    if total == 0:
        return '<p class="none">No ambassador.</p>'
    items = []
    for member_id, amb in ambassadors.iterrows():
        at_risk = amb["segment"] == "ambassador-at-risk"
        risk = (
            "risk not scored (no recent activity)"
            if pd.isna(amb["risk"])
            else f"risk of drifting away {_pct(amb['risk'])}"
        )
        risk_html = f'<span class="risk-high">{risk} – at risk</span>' if at_risk else risk
        links = ""
        if not pd.isna(amb["ties"]):
            links = f"; {int(amb['ties'])} links"
            if amb["ties"] > 0:
                quiet = f"{_pct(amb['quiet'])} gone quiet"
                alert = amb["quiet"] >= _QUIET_ALERT
                links += f', <span class="risk-high">{quiet}</span>' if alert else f", {quiet}"
        reasons = _reasons_html(amb["reasons"]) if at_risk else ""
        items.append(f"<li><b>{_t(member_id)}</b> · {risk_html}{links}{reasons}</li>")
    hidden = total - len(ambassadors)
    if hidden > 0:
        items.append(
            f'<li class="none">{hidden} more not scored (no consent or not eligible)</li>'
        )
    return "<ul>" + "".join(items) + "</ul>"


def _successors_html(row: pd.Series, members: pd.DataFrame) -> str:
    ids = _ids(row["ready_successors"])
    if not ids:
        return '<p class="none">No one is ready or promising yet.</p>'
    items = []
    for member_id in ids:
        label = f"<b>{_t(member_id)}</b>"
        if member_id in members.index:
            m = members.loc[member_id]
            segment = "ready now" if m["segment"] == "ready-now" else "nurture"
            label += f" · readiness {_pct(m['readiness'])} · {segment}"
            label += _reasons_html(m["reasons"])
            if m["segment"] == "ready-now":
                label += _talking_point_html(m["talking_point"])
        items.append(f"<li>{label}</li>")
    more = int(row["successor_candidates"]) - len(ids)
    tail = f'<p class="note">+ {more} more promising members.</p>' if more > 0 else ""
    return "<ol>" + "".join(items) + "</ol>" + tail


def _trend_charts(carded: pd.DataFrame, columns: list[tuple[int, str]], as_of) -> list[str]:
    """The ``<img>`` of the active-members chart of each carded chapter (same order)."""
    if len(columns) < 2 or carded.empty:
        return [""] * len(carded)
    period = columns[-2][0]
    labels = [f"{(as_of - pd.Timedelta(days=days + period)):%b '%y}" for days, _ in columns]
    labels[-1] += "–now"
    counts = carded[[c for _, c in columns]].to_numpy(dtype=np.int64)
    uris = draw_active_trends(labels, counts, f"active members per {period}-day period")
    out = []
    for name, row, uri in zip(carded["name"], counts, uris, strict=True):
        alt = (
            f"Active members per {period}-day period in {name}, oldest first: "
            + ", ".join(str(c) for c in row)
        )
        out.append(f'<img class="trend" src="{uri}" alt="{_t(alt)}" width="340" height="155">')
    return out


def _card_html(
    i: int,
    row: pd.Series,
    ambassadors: pd.DataFrame,
    members: pd.DataFrame,
    chart: str,
) -> str:
    level = _level(int(row["urgency"]), int(row["members"]))
    where = _where(row)
    where_html = f'<span class="where">{where}</span>' if where else ""
    density = (
        "–" if pd.isna(row["link_density"]) else f"{_pct(row['link_density'], 1)} of pairs linked"
    )
    quiet = row.get("quiet_link_share")
    quiet_html = "" if quiet is None or pd.isna(quiet) else f" ({_pct(quiet)} of links quiet)"
    stats = (
        f"<b>{_num(row['members'])}</b> members · <b>{_num(row['active_members_now'])}</b> active "
        f"now {_trend_html(row)} · link density <b>{density}</b>{quiet_html} · "
        f"<b>{_num(row['members_at_risk'])}</b> members at risk"
    )
    return (
        f'<section class="card {level}" id="card-{i}" data-chapter="{_t(row["chapter_id"])}">'
        f"<header><h3>{_t(row['name'])}</h3>{where_html}"
        f"{_flags_html(row['health'], level)}</header>"
        f'<p class="stats">{stats}</p>'
        f'<div class="cols"><div><h4>Ambassadors</h4>{_ambassadors_html(row, ambassadors)}</div>'
        f"<div><h4>Ready successors</h4>{_successors_html(row, members)}</div></div>"
        f"{chart}</section>"
    )


def _headline_html(report: pd.DataFrame, predictions: pd.DataFrame) -> str:
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
    return '<div class="tiles">' + "".join(
        f'<div class="tile"><div class="value">{_t(v)}</div><div class="label">{_t(label)}</div>'
        "</div>"
        for v, label in tiles
    ) + "</div>"


def _segments_html(predictions: pd.DataFrame) -> str:
    counts = predictions["segment"].astype("str").value_counts()
    ordered = {s: int(counts.get(s, 0)) for s in SEGMENTS}
    for extra in counts.index.difference(pd.Index(SEGMENTS)):
        ordered[str(extra)] = int(counts[extra])
    uri = figure_to_data_uri(plot_segment_counts(ordered), dpi=100)
    alt = "Scored members per segment: " + ", ".join(f"{k} {v}" for k, v in ordered.items())
    rows = "".join(
        f'<tr><td><span class="seg" style="background:{SEGMENT_COLOURS.get(name, "#95a5a6")}">'
        f"</span>{_t(name)}</td><td class=\"num\">{n:,}</td>"
        f"<td>{_t(SEGMENT_MEANINGS.get(name, ''))}</td></tr>"
        for name, n in ordered.items()
    )
    return (
        f'<div class="segments"><img src="{uri}" alt="{_t(alt)}" width="520" height="240">'
        '<table style="flex:1;min-width:320px"><thead><tr><th>segment</th>'
        f'<th class="num">members</th><th>what it means</th></tr></thead><tbody>{rows}'
        "</tbody></table></div>"
    )


def _glance_html(report: pd.DataFrame, max_rows: int) -> str:
    shown = report.head(max_rows)
    rows = []
    for row in shown.itertuples(index=False):
        r = pd.Series(row._asdict())
        level = _level(int(r["urgency"]), int(r["members"]))
        where = _where(r)
        succ = ", ".join(_t(i) for i in _ids(r["ready_successors"])) or "–"
        rows.append(
            f"<tr><td class=\"num\">{int(r['urgency_rank'])}</td>"
            f"<td><b>{_t(r['name'])}</b>{'<br>' + where if where else ''}</td>"
            f"<td>{_flags_html(r['health'], level)}</td>"
            f"<td class=\"num\">{_num(r['members'])}</td>"
            f"<td class=\"num\">{_num(r['active_members_now'])} {_trend_html(r)}</td>"
            f"<td class=\"num\">{_num(r['ambassadors'])}</td>"
            f"<td class=\"num\">{_num(r['ambassadors_at_risk'])}</td>"
            f"<td>{succ}</td>"
            f"<td class=\"num\">{_pct(r['link_density'], 1)}</td>"
            f"<td class=\"num\">{_num(r['members_at_risk'])} "
            f"({_pct(r['members_at_risk_share'])})</td></tr>"
        )
    note = ""
    if len(report) > max_rows:
        note = (
            f'<p class="note">Showing the {max_rows:,} most urgent of {len(report):,} chapters; '
            "every chapter is in chapter_report.csv.</p>"
        )
    return (
        '<table class="glance"><thead><tr><th class="num">#</th><th>chapter</th><th>health</th>'
        '<th class="num">members</th><th class="num">active now</th>'
        '<th class="num">ambassadors</th><th class="num">ambassadors at risk</th>'
        '<th>ready successors</th><th class="num">link density</th>'
        '<th class="num">members at risk</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
        + note
    )


def _footer_html(meta: Mapping, predictions: pd.DataFrame) -> str:
    values = {k: v for k, v in meta.items() if k not in _NOT_IN_FOOTER}
    for key in ("readiness_model_version", "disengagement_model_version", "run_id"):
        if key not in values and key in predictions.columns:
            found = predictions[key].dropna().astype("str").unique()
            if len(found):
                values[key] = ", ".join(sorted(found))
    items = "".join(
        f"<dt>{_t(_META_LABELS.get(str(k), str(k)))}</dt><dd>{_t(v)}</dd>"
        for k, v in values.items()
    )
    return (
        f"<footer><dl>{items}</dl><p>Members are named by their member id only; contact "
        "details stay in your CRM. Scores are probabilities estimated from past activity: use "
        "them to decide whom to talk to, not as a verdict on anyone.</p></footer>"
    )


def _outreach_html(lines: Sequence[str]) -> str:
    """What the calls of past cycles changed (nothing when there is nothing to say)."""
    if not lines:
        return ""
    items = "".join(f"<li>{_t(line)}</li>" for line in lines)
    return f"<h2>What the calls changed</h2><ul class=\"outreach\">{items}</ul>"


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
    ts = parse_as_of(as_of)
    report = chapter_report.sort_values("urgency_rank", kind="stable")
    columns = active_columns(report)
    carded = report.head(max(int(max_cards), 0))
    in_cards = _member_rows(predictions, features, set(_keys(carded["chapter_id"])))
    ambassadors = in_cards[in_cards["core"]].sort_values(
        ["risk", "readiness"], ascending=[False, False], na_position="last"
    )
    by_chapter = dict(tuple(ambassadors.groupby("key", sort=False)))
    empty = ambassadors.iloc[0:0]
    charts = _trend_charts(carded, columns, ts)
    cards = "".join(
        _card_html(
            i,
            row,
            by_chapter.get("" if pd.isna(row["chapter_id"]) else str(row["chapter_id"]), empty),
            in_cards,
            charts[i],
        )
        for i, (_, row) in enumerate(carded.iterrows())
    )
    note = ""
    if len(report) > len(carded):
        note = (
            f'<p class="note">Cards for the {len(carded):,} most urgent of {len(report):,} '
            "chapters; every chapter is in the table above and in chapter_report.csv.</p>"
        )
    title = f"Chapter succession report – {ts:%Y-%m-%d}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_t(title)}</title><style>{_CSS}</style></head><body><main>"
        f"<h1>Chapter succession report</h1>"
        f'<p class="sub">Week of {ts.day} {ts:%B %Y}. Who carries each chapter, who could take '
        "over, and how lively and connected the chapter is.</p>"
        f"{_methods_html(meta, predictions)}"
        f"{_headline_html(report, predictions)}{_segments_html(predictions)}"
        f"{_outreach_html(outreach)}"
        f"<h2>Chapters at a glance</h2>{_LEGEND}{_glance_html(report, max_table_rows)}"
        f'<h2>Chapters, most urgent first</h2>{note}<div class="cards">{cards}</div>'
        f"{_footer_html(meta, predictions)}</main></body></html>\n"
    )
