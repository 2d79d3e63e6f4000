"""Chapter succession report: hand-computed rows, HTML content and escaping, atomic writing.

The community (also used by ``test_report_browser.py``):

Everything is relative to ``T = 2024-07-01``; ``d(n)`` is ``T - n days``. Periods of 90 days:
now = ``[d(90), T)``, 90d ago = ``[d(180), d(90))``, 180d ago = ``[d(270), d(180))``.

Chapters: paris (Paris, France), lyon (Lyon, France), xss (named ``<script>alert("x")</script>``,
city ``Nice & Côte``), bordeaux (no members). Members (chapter, joined, consent):

    p1..p5 paris (p5 joined d(100)); f1 paris joins after T (not a member yet)
    l1..l4 lyon (l4 did NOT consent: counted, never named)
    s1, s2 xss
    n1     no chapter

Roles: p1, l1, l4 hold the ambassador role at T.

Activities (member, time, type, event, chapter, counterpart):

    p1 p2 p4 n1  d(10)  attend e1 paris        -> active now; ties p1-p2, p1-p4, p2-p4
    p2 p5        d(50)  attend e2 paris        -> tie p2-p5
    p3           d(90)  post (exactly the start of "now")
    p1 p3        d(150) attend e3 paris        -> tie p1-p3
    p2           d(200) post
    p4           T      attend e4 (at as_of: not counted)
    f1           T+5    post (future)
    l1 -> l2     d(30)  message                -> direct tie l1-l2
    l1 l3 l4     d(100) attend e5 lyon         -> ties l1-l3, l1-l4, l3-l4
    l2           d(200) post
    l4           d(250) attend e6 lyon
    s1           d(120) attend e7 xss

Hand-computed report (period 90 days, 2 previous periods):

=========== ======= ===== ===== ===== ==== ============= ==================== =========
chapter     members now   -90d  -180d amb  at risk       successors           density
=========== ======= ===== ===== ===== ==== ============= ==================== =========
xss         2       0     1     0     0    0             -                    0
lyon        4       1     3     2     2    0             -                    4/6
paris       5       5     2     1     1    1 (p1)        p4; p2; p3           5/10
(no chap.)  1       1     0     0     0    0             n1                   NaN
bordeaux    0       0     0     0     0    0             -                    NaN
=========== ======= ===== ===== ===== ==== ============= ==================== =========

Lyon is active "now" through l1 only: l2 was the counterpart of l1's message, which is an activity
of l1, not of l2. Quiet links (ties to members without activity in the last 90 days): lyon: l1 3
ties (l2, l3, l4 all quiet), l2 1 (l1: not quiet), l3 2 (l4 quiet), l4 2 (l3 quiet) -> 5 / 8;
paris 0; xss no ties.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from features.build import build_features
from features.contract import validate_tables
from features.errors import ConfigError, ContractError
from features.tables import Tables
from serving.report import (
    HealthThresholds,
    build_chapter_report,
    render_report_html,
    write_report,
)

T = pd.Timestamp("2024-07-01")
XSS_NAME = '<script>alert("x")</script>'


def d(days: float) -> pd.Timestamp:
    """``T - days``."""
    return T - pd.Timedelta(days=days)


_MEMBERS = [
    ("p1", d(800), "paris", True),
    ("p2", d(700), "paris", True),
    ("p3", d(600), "paris", True),
    ("p4", d(500), "paris", True),
    ("p5", d(100), "paris", True),
    ("f1", T + pd.Timedelta(days=1), "paris", True),
    ("l1", d(800), "lyon", True),
    ("l2", d(400), "lyon", True),
    ("l3", d(300), "lyon", True),
    ("l4", d(300), "lyon", False),
    ("s1", d(300), "xss", True),
    ("s2", d(300), "xss", True),
    ("n1", d(200), None, True),
]

EMAILS = {m[0]: f"{m[0]}.member@corecast.invalid" for m in _MEMBERS}

_ACTIVITIES = [
    # member, time, type, event, chapter, role, counterpart, weight
    ("p1", d(10), "attend", "e1", "paris", "attendee", None, 1.0),
    ("p2", d(10), "attend", "e1", "paris", "attendee", None, 1.0),
    ("p4", d(10), "attend", "e1", "paris", "attendee", None, 1.0),
    ("n1", d(10), "attend", "e1", "paris", "attendee", None, 1.0),
    ("p2", d(50), "attend", "e2", "paris", "attendee", None, 1.0),
    ("p5", d(50), "attend", "e2", "paris", "attendee", None, 1.0),
    ("p3", d(90), "post", None, "paris", None, None, 1.0),
    ("p1", d(150), "attend", "e3", "paris", "attendee", None, 1.0),
    ("p3", d(150), "attend", "e3", "paris", "attendee", None, 1.0),
    ("p2", d(200), "post", None, "paris", None, None, 1.0),
    ("p4", T, "attend", "e4", "paris", "attendee", None, 1.0),
    ("f1", T + pd.Timedelta(days=5), "post", None, "paris", None, None, 1.0),
    ("l1", d(30), "message", None, "lyon", None, "l2", 0.5),
    ("l1", d(100), "attend", "e5", "lyon", "organizer", None, 5.0),
    ("l3", d(100), "attend", "e5", "lyon", "attendee", None, 1.0),
    ("l4", d(100), "attend", "e5", "lyon", "attendee", None, 1.0),
    ("l2", d(200), "post", None, "lyon", None, None, 1.0),
    ("l4", d(250), "attend", "e6", "lyon", "attendee", None, 1.0),
    ("s1", d(120), "attend", "e7", "xss", "attendee", None, 1.0),
]

_ROLES = [
    ("p1", "ambassador", d(500), None, "paris"),
    ("l1", "ambassador", d(600), None, "lyon"),
    ("l4", "ambassador", d(200), None, "lyon"),
]

_CHAPTERS = [
    ("paris", "Paris", "Paris", "France"),
    ("lyon", "Lyon", "Lyon", "France"),
    ("xss", XSS_NAME, "Nice & Côte", "France"),
    ("bordeaux", "Bordeaux", "Bordeaux", "France"),
]

# member, chapter, readiness, rank, risk, segment, core, reasons
_PREDICTIONS = [
    ("p1", "paris", np.nan, None, 0.75, "ambassador-at-risk", True,
     "Came to 1 event in the last 90 days, down from 3; Fewer links than usual"),
    ("p2", "paris", 0.30, 2, 0.10, "ready-now", False,
     "Organised 2 events this year; Linked to 3 members of the chapter"),
    ("p3", "paris", 0.05, 3, 0.20, "nurture", False, "Posted regularly"),
    ("p4", "paris", 0.45, 1, 0.05, "ready-now", False,
     "Hosted a workshop; Came to 4 events in 90 days; Active 10 weeks in a row"),
    ("p5", "paris", 0.02, 4, 0.65, "at-risk", False, "Quiet for 7 weeks"),
    ("l1", "lyon", np.nan, None, 0.20, "ambassador", True, "Organises every month"),
    ("l2", "lyon", 0.01, 1, 0.80, "at-risk", False, "Quiet since the spring"),
    ("l3", "lyon", 0.005, 2, np.nan, "dormant", False, ""),
    ("s1", "xss", 0.01, 1, 0.30, "steady", False, "Came to 1 event"),
    ("s2", "xss", np.nan, None, np.nan, "dormant", False, ""),
    ("n1", None, 0.06, 1, 0.10, "nurture", False, "Came to an event in Paris"),
]


def make_community() -> Tables:
    """The hand-built community, validated through the data contract."""
    m = list(zip(*_MEMBERS, strict=True))
    members = pd.DataFrame(
        {
            "member_id": m[0],
            "joined_at": m[1],
            "chapter_id": m[2],
            "email": [EMAILS[x] for x in m[0]],
            "consent": m[3],
        }
    )
    activities = pd.DataFrame(
        _ACTIVITIES,
        columns=[
            "member_id", "occurred_at", "activity_type", "event_id", "chapter_id", "role",
            "counterpart_id", "weight",
        ],
    )
    roles = pd.DataFrame(
        _ROLES, columns=["member_id", "role", "started_at", "ended_at", "chapter_id"]
    )
    chapters = pd.DataFrame(_CHAPTERS, columns=["chapter_id", "name", "city", "country"])
    return validate_tables(
        {"members": members, "activities": activities, "roles": roles, "chapters": chapters},
        source="<report test>",
    )


def make_predictions() -> pd.DataFrame:
    """Predictions of the consenting members, shaped like batch scoring's output."""
    p = list(zip(*_PREDICTIONS, strict=True))
    frame = pd.DataFrame(
        {
            "member_id": pd.Series(p[0], dtype="str"),
            "email": pd.Series([EMAILS[x] for x in p[0]], dtype="str"),
            "chapter_id": pd.Series(p[1], dtype="str"),
            "as_of": T,
            "readiness_score": pd.Series(p[2], dtype="float64"),
            "readiness_rank": pd.Series(p[3], dtype="Int64"),
            "disengagement_score": pd.Series(p[4], dtype="float64"),
            "segment": pd.Series(p[5], dtype="str"),
            "reasons": pd.Series(p[7], dtype="str"),
            "holds_core_role": pd.Series(p[6], dtype=bool),
            "readiness_model_version": "3",
            "disengagement_model_version": "5",
            "run_id": "run-42",
            "scored_at": T + pd.Timedelta(hours=7),
        }
    )
    frame["reasons"] = frame["reasons"].where(frame["reasons"] != "")
    return frame


META = {"data_window": "2022-05-01 to 2024-07-01", "run_id": "run-42"}


@pytest.fixture(scope="module")
def community() -> Tables:
    return make_community()


@pytest.fixture(scope="module")
def features(community) -> pd.DataFrame:
    return build_features(community, T)


@pytest.fixture(scope="module")
def report(community, features) -> pd.DataFrame:
    return build_chapter_report(make_predictions(), community, T, features, trend_periods=2)


@pytest.fixture(scope="module")
def page(report, features) -> str:
    return render_report_html(report, make_predictions(), as_of=T, meta=META, features=features)


def _without_css(page: str) -> str:
    """The page without its ``<style>`` element (CSS has ``@media`` rules) and image data."""
    start, end = page.index("<style>"), page.index("</style>")
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page[:start] + page[end:])


def _row(report: pd.DataFrame, name: str) -> pd.Series:
    rows = report[report["name"] == name]
    assert len(rows) == 1, f"expected one row named {name!r}"
    return rows.iloc[0]


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------

EXPECTED = {
    # name: members, scored, now, 90d ago, 180d ago, ambassadors, at risk, at-risk ids,
    #       candidates, successors, members at risk
    XSS_NAME: (2, 2, 0, 1, 0, 0, 0, "", 0, "", 0),
    "Lyon": (4, 3, 1, 3, 2, 2, 0, "", 0, "", 1),
    "Paris": (5, 5, 5, 2, 1, 1, 1, "p1", 3, "p4; p2; p3", 2),
    "(no chapter)": (1, 1, 1, 0, 0, 0, 0, "", 1, "n1", 0),
    "Bordeaux": (0, 0, 0, 0, 0, 0, 0, "", 0, "", 0),
}
COUNT_COLUMNS = [
    "members", "scored_members", "active_members_now", "active_members_90d_ago",
    "active_members_180d_ago", "ambassadors", "ambassadors_at_risk", "ambassadors_at_risk_ids",
    "successor_candidates", "ready_successors", "members_at_risk",
]


def test_rows_match_the_hand_computed_report(report):
    assert list(report["name"]) == [XSS_NAME, "Lyon", "Paris", "(no chapter)", "Bordeaux"]
    for name, expected in EXPECTED.items():
        row = _row(report, name)
        assert tuple(row[COUNT_COLUMNS]) == expected, name
    assert list(report["urgency_rank"]) == [1, 2, 3, 4, 5]
    assert (report["as_of"] == T).all()


def test_chapter_reference_data_and_no_chapter_row(report):
    paris = _row(report, "Paris")
    assert (paris["chapter_id"], paris["city"], paris["country"]) == ("paris", "Paris", "France")
    xss = _row(report, XSS_NAME)
    assert (xss["chapter_id"], xss["city"]) == ("xss", "Nice & Côte")
    loose = _row(report, "(no chapter)")
    assert pd.isna(loose["chapter_id"]) and pd.isna(loose["city"])


def test_trend_and_ratios(report):
    paris, lyon, xss = _row(report, "Paris"), _row(report, "Lyon"), _row(report, XSS_NAME)
    assert (paris["active_trend"], paris["active_trend_pct"]) == (3, pytest.approx(1.5))
    assert (lyon["active_trend"], lyon["active_trend_pct"]) == (-2, pytest.approx(-2 / 3))
    assert (xss["active_trend"], xss["active_trend_pct"]) == (-1, pytest.approx(-1.0))
    assert np.isnan(_row(report, "(no chapter)")["active_trend_pct"])  # nothing to compare to
    assert paris["mean_ambassador_risk"] == pytest.approx(0.75)
    assert lyon["mean_ambassador_risk"] == pytest.approx(0.20)  # l4 is not scored
    assert paris["ready_now"] == 2
    assert paris["successors_per_ambassador"] == pytest.approx(3.0)
    assert lyon["successors_per_ambassador"] == 0.0
    assert np.isnan(xss["successors_per_ambassador"])
    assert paris["members_at_risk_share"] == pytest.approx(2 / 5)
    assert lyon["members_at_risk_share"] == pytest.approx(1 / 2)  # l3 is not scored for risk
    assert xss["members_at_risk_share"] == 0.0


def test_links_pass_through_from_features(report, features):
    assert _row(report, "Paris")["link_density"] == pytest.approx(5 / 10)
    assert _row(report, "Lyon")["link_density"] == pytest.approx(4 / 6)
    assert _row(report, XSS_NAME)["link_density"] == 0.0
    assert np.isnan(_row(report, "(no chapter)")["link_density"])
    assert np.isnan(_row(report, "Bordeaux")["link_density"])
    by_member = features["chapter_link_density"]
    assert _row(report, "Lyon")["link_density"] == by_member["l1"]
    assert _row(report, "Paris")["link_density"] == by_member["p3"]
    assert _row(report, "Lyon")["quiet_link_share"] == pytest.approx(5 / 8)
    assert _row(report, "Paris")["quiet_link_share"] == 0.0
    assert np.isnan(_row(report, XSS_NAME)["quiet_link_share"])


def test_current_period_agrees_with_the_chapter_features(report, features):
    chapter_of = {"Paris": "p1", "Lyon": "l1", XSS_NAME: "s1"}
    for name, member in chapter_of.items():
        row = _row(report, name)
        assert row["members"] == features.loc[member, "chapter_size"], name
        assert row["active_members_now"] == features.loc[member, "chapter_active_members_90d"]


def test_health_flags_and_urgency(report):
    health = dict(zip(report["name"], report["health"], strict=True))
    assert health == {
        XSS_NAME: "no ambassador and no successor; no activity this period",
        "Lyon": "no successor; activity falling; links thinning; many members at risk",
        "Paris": "ambassador at risk; many members at risk",
        "(no chapter)": "healthy",
        "Bordeaux": "no members yet",
    }
    assert list(report["urgency"]) == [80, 45, 40, 0, 0]


def test_thresholds_change_the_soft_flags(community, features):
    strict = HealthThresholds(activity_drop=0.9, quiet_link_share=0.9, members_at_risk_share=0.9)
    report = build_chapter_report(
        make_predictions(), community, T, features, trend_periods=2, thresholds=strict
    )
    assert _row(report, "Lyon")["health"] == "no successor"
    assert _row(report, "Paris")["health"] == "ambassador at risk"
    with pytest.raises(ConfigError, match="activity_drop"):
        HealthThresholds(activity_drop=0.0)


def test_ambassador_at_risk_without_successor_is_most_urgent(community, features):
    predictions = make_predictions()
    paris_candidates = predictions["member_id"].isin(["p2", "p3", "p4"])
    predictions.loc[paris_candidates, "segment"] = "steady"
    report = build_chapter_report(predictions, community, T, features, trend_periods=2)
    paris = _row(report, "Paris")
    assert paris["health"] == "ambassador at risk and no successor; many members at risk"
    assert paris["urgency"] == 60
    assert paris["ready_successors"] == ""


def test_successors_are_ordered_by_readiness_and_capped(community, features):
    predictions = make_predictions()
    two = build_chapter_report(predictions, community, T, features, successors=2)
    assert _row(two, "Paris")["ready_successors"] == "p4; p2"
    assert _row(two, "Paris")["successor_candidates"] == 3
    none = build_chapter_report(predictions, community, T, features, successors=0)
    assert _row(none, "Paris")["ready_successors"] == ""
    # A nurture member more ready than the ready-now ones comes first (by readiness).
    predictions.loc[predictions["member_id"] == "p3", "readiness_score"] = 0.9
    reordered = build_chapter_report(predictions, community, T, features)
    assert _row(reordered, "Paris")["ready_successors"] == "p3; p4; p2"


def test_default_periods_and_other_period_lengths(community, features):
    default = build_chapter_report(make_predictions(), community, T, features)
    active = [c for c in default.columns if c.startswith("active_members_")]
    assert active == [
        "active_members_now", "active_members_90d_ago", "active_members_180d_ago",
        "active_members_270d_ago", "active_members_360d_ago",
    ]
    monthly = build_chapter_report(
        make_predictions(), community, T, features, trend_periods=2, period_days=30
    )
    paris = _row(monthly, "Paris")
    # [d30, T): p1 p2 p4; [d60, d30): p2 p5; [d90, d60): p3 (exactly at d(90)).
    assert tuple(paris[["active_members_now", "active_members_30d_ago",
                        "active_members_60d_ago"]]) == (3, 2, 1)
    # l1's message exactly at d(30) is in the current period.
    assert _row(monthly, "Lyon")["active_members_now"] == 1


def test_options_and_inputs_are_checked(community, features):
    predictions = make_predictions()
    with pytest.raises(ConfigError, match="successors"):
        build_chapter_report(predictions, community, T, features, successors=-1)
    with pytest.raises(ConfigError, match="period_days"):
        build_chapter_report(predictions, community, T, features, period_days=0)
    with pytest.raises(ConfigError, match="trend_periods"):
        build_chapter_report(predictions, community, T, features, trend_periods=0)
    with pytest.raises(ContractError, match="predictions: missing column.*segment"):
        build_chapter_report(predictions.drop(columns="segment"), community, T, features)
    with pytest.raises(ContractError, match="features: missing column.*chapter_link_density"):
        build_chapter_report(
            predictions, community, T, features.drop(columns="chapter_link_density")
        )


def test_without_chapters_table_names_are_ids(community, features):
    bare = Tables(
        members=community.members, activities=community.activities, roles=community.roles
    )
    report = build_chapter_report(make_predictions(), bare, T, features, trend_periods=2)
    assert set(report["name"]) == {"paris", "lyon", "xss", "(no chapter)"}
    assert report["city"].isna().all()


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------


def test_page_names_every_chapter_and_successor(page):
    for name in ("Paris", "Lyon", "Bordeaux", "(no chapter)", "Nice &amp; Côte"):
        assert name in page
    for member in ("p1", "p2", "p3", "p4", "n1"):
        assert f"<b>{member}</b>" in page
    assert page.count('<section class="card ') == 5
    # A successor's top two reasons, not the third.
    assert "Hosted a workshop" in page and "Came to 4 events in 90 days" in page
    assert "Active 10 weeks in a row" not in page
    # The ambassador's links (from the features): p1 has 4 links, none quiet.
    assert "4 links, 0\u00a0% gone quiet" in page
    assert "run-42" in page and "2022-05-01 to 2024-07-01" in page
    assert "Readiness model version</dt><dd>3" in page  # defaulted from the predictions


def test_page_shows_the_talking_point_of_ready_now_successors_only(report, features):
    predictions = make_predictions()
    said = {"p4": "They have been part of the Paris chapter for 14 months <b>& more</b>.",
            "p3": "A nurture member is not called yet.",
            "p2": "Write to p2@example.org first."}
    predictions["talking_point"] = predictions["member_id"].map(said)
    html = render_report_html(report, predictions, as_of=T, meta=META, features=features)
    assert ('<p class="talk">To say on the call: They have been part of the Paris chapter for 14 '
            "months &lt;b&gt;&amp; more&lt;/b&gt;.</p>") in html
    assert "A nurture member is not called yet." not in html
    assert "Write to [email hidden] first." in html
    # predictions written before talking points: the page is the same as without the column
    assert 'class="talk"' not in _without_css(
        render_report_html(report, make_predictions(), as_of=T, meta=META, features=features)
    )


def test_page_has_inline_png_charts_and_nothing_external(page):
    assert page.count('<img src="data:image/png;base64,') == 1  # the segment chart
    assert page.count('<img class="trend" src="data:image/png;base64,') == 5
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()


def test_page_has_no_email_and_no_non_consenting_member(page, report, tmp_path):
    for email in EMAILS.values():
        assert email not in page
    assert "@" not in _without_css(page)
    assert "l4" not in _without_css(page)
    assert "1 more not scored" in page  # l4 is counted in Lyon, not named
    paths = write_report(report, page, tmp_path)
    csv_text = paths[0].read_text(encoding="utf-8")
    assert "@" not in csv_text and "l4" not in csv_text


def test_chapter_named_script_is_escaped(page):
    assert XSS_NAME not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page  # autoescape writes " as &#34;


def test_email_like_text_is_hidden(community, features):
    chapters = community.chapters.copy()
    chapters.loc[chapters["chapter_id"] == "paris", "name"] = "Paris (ask jo@paris.example)"
    tables = Tables(
        members=community.members, activities=community.activities,
        roles=community.roles, chapters=chapters,
    )
    predictions = make_predictions()
    predictions["reasons"] = predictions["reasons"].str.replace(
        "Hosted a workshop", "Wrote from jo.b@example.org"
    )
    report = build_chapter_report(predictions, tables, T, features)
    html = render_report_html(report, predictions, as_of=T, meta={"contact": "x@example.org"})
    assert "@" not in _without_css(html)
    assert "Paris (ask [email hidden])" in html and "Wrote from [email hidden]" in html
    assert "Paris (ask [email hidden])" in set(report["name"])


def test_cards_are_capped_for_large_communities(report):
    html = render_report_html(report, make_predictions(), as_of=T, meta={}, max_cards=2,
                              max_table_rows=3)
    assert html.count('<section class="card ') == 2
    assert "Cards for the 2 most urgent of 5 chapters" in html
    assert "Showing the 3 most urgent of 5 chapters" in html
    # The two most urgent: the <script> chapter and Lyon.
    assert 'data-chapter="xss"' in html and 'data-chapter="lyon"' in html
    assert 'data-chapter="paris"' not in html


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def test_write_report_writes_both_files(report, page, tmp_path):
    paths = write_report(report, page, tmp_path / "out")
    assert [p.name for p in paths] == ["chapter_report.csv", "report.html"]
    assert paths[1].read_text(encoding="utf-8") == page
    back = pd.read_csv(paths[0], keep_default_na=False)
    assert list(back.columns) == list(report.columns)
    assert list(back["name"]) == list(report["name"])
    assert list(back["ready_successors"]) == ["", "", "p4; p2; p3", "n1", ""]
    assert list(back["members"]) == [2, 4, 5, 1, 0]


def test_write_report_is_all_or_nothing(report, page, tmp_path):
    out = tmp_path / "out"
    write_report(report, page, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(TypeError):
        write_report(report.assign(members=report["members"] + 1), None, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_csv_keeps_formula_like_text_as_text(report, tmp_path):
    tricky = report.assign(name=report["name"].where(report["name"] != "Lyon", "=HYPERLINK(1)"))
    csv_path = write_report(tricky, "<html></html>", tmp_path)[0]
    back = pd.read_csv(csv_path, keep_default_na=False)
    assert "'=HYPERLINK(1)" in set(back["name"])
    assert "Paris" in set(back["name"])


def test_ambassador_links_gone_quiet_are_highlighted(page):
    # l1's three links all lead to members without recent activity.
    assert '3 links, <span class="risk-high">100\u00a0% gone quiet</span>' in page


def test_no_predictions_still_gives_every_chapter(community, features):
    empty = make_predictions().iloc[0:0]
    report = build_chapter_report(empty, community, T, features, trend_periods=2)
    assert len(report) == 5  # chapters and "(no chapter)" come from the data, not the scores
    paris = _row(report, "Paris")
    assert (paris["members"], paris["scored_members"], paris["active_members_now"]) == (5, 0, 5)
    assert paris["ambassadors"] == 1  # from the features' role history
    assert paris["health"] == "no successor"
    html = render_report_html(report, empty, as_of=T, meta={})
    assert html.count('<section class="card ') == 5


def test_page_opens_with_a_note_on_each_targets_method(report, features):
    meta = {
        **META,
        "methods": {
            "readiness": {"method": "rule:activity_365d", "validated": False},
            "disengagement": {
                "method": "model", "validated": True, "snapshots": 6, "roc_auc": 0.8512,
                "roc_auc_low": 0.8012, "roc_auc_high": 0.8911, "level": 0.9,
            },
        },
    }
    page = render_report_html(report, make_predictions(), as_of=T, meta=meta, features=features)
    body = _without_css(page)
    readiness = (
        "Readiness: ranked by a rule (most activities in the last year), not validated — scores "
        "are ranks within the community, not probabilities."
    )
    disengagement = (
        "Disengagement: learned model, validated on 6 snapshots (ROC-AUC 0.85, 90\u00a0% "
        "interval 0.80–0.89)."
    )
    assert readiness in body and disengagement in body
    # at the top, before the headline; the nested details are not dumped into the footer
    assert body.index(readiness) < body.index('class="tiles"')
    assert 'class="method-note unvalidated" data-target="readiness"' in body
    assert "{" not in body[body.index("<footer>"):]


def test_method_notes_fall_back_to_the_prediction_columns():
    from serving.report_html import method_notes

    predictions = make_predictions().assign(
        readiness_method="rule:active_weeks_365d", readiness_validated=True,
        disengagement_method="", disengagement_validated=pd.NA,
    )
    notes = {target: (kind, text) for target, kind, text in method_notes({}, predictions)}
    assert notes["readiness"] == (
        "validated",
        "Readiness: ranked by a rule (most active weeks in the last year), validated.",
    )
    assert notes["disengagement"] == ("absent", "Disengagement: not scored (no model).")
    unchecked = make_predictions().assign(disengagement_method="model",
                                          disengagement_validated=False)
    [_, (_, kind, text)] = method_notes({}, unchecked)
    assert kind == "unvalidated" and text == (
        "Disengagement: learned model, not validated — its probabilities were not checked "
        "against outcomes."
    )
