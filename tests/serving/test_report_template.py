"""The report page's template: user text escaped wherever it lands, a missing value refused, the
template files shipped with the ``serving`` package.

Uses the community of ``test_report.py``.
"""

from __future__ import annotations

import fnmatch
import re
import time
import tomllib
from html.parser import HTMLParser
from importlib.resources import files
from pathlib import Path

import jinja2
import pytest

from features.build import build_features
from serving.report import build_chapter_report
from serving.report_html import (
    PAGE_TEMPLATE,
    TEMPLATE_FOLDER,
    hide_emails,
    render_report_html,
    render_report_page,
    report_page_context,
)
from tests.serving.test_report import META, T, make_community, make_predictions

ROOT = Path(__file__).resolve().parents[2]


def hostile(tag: str) -> str:
    """User text that breaks a page that does not escape it: a tag, an entity and both quotes."""
    return f"<script>zz-{tag}</script>&\"'"


def escaped(tag: str) -> str:
    return f"&lt;script&gt;zz-{tag}&lt;/script&gt;&amp;&#34;&#39;"


@pytest.fixture(scope="module")
def tables():
    return make_community()


@pytest.fixture(scope="module")
def features(tables):
    return build_features(tables, T)


@pytest.fixture(scope="module")
def context(tables, features) -> dict:
    predictions = make_predictions()
    return report_page_context(
        build_chapter_report(predictions, tables, T, features, trend_periods=2),
        predictions, as_of=T, meta=META, features=features,
    )


class _Parsed(HTMLParser):
    """The tags, attribute names, and text and attribute values (entities decoded) of a page."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: set[str] = set()
        self.values: list[str] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes |= {name for name, _ in attrs}
        self.values += [value or "" for _, value in attrs]

    def handle_data(self, data):
        self.values.append(data)


def _hostile_page(tables, features) -> tuple[str, dict[str, int]]:
    """Paris and its people renamed with :func:`hostile` text; the places each should show."""
    predictions = make_predictions()
    paris = predictions["chapter_id"] == "paris"
    predictions.loc[paris, "chapter_id"] = hostile("cid")
    rename = {"p1": hostile("ambassador"), "p4": hostile("successor")}
    predictions.loc[predictions["member_id"] == "p1", "reasons"] = hostile("why-at-risk")
    predictions.loc[predictions["member_id"] == "p4", "reasons"] = hostile("why-ready")
    predictions["talking_point"] = predictions["member_id"].map({"p4": hostile("talk")})
    predictions["member_id"] = predictions["member_id"].replace(rename)
    predictions.loc[predictions["member_id"] == "s1", "segment"] = hostile("segment")
    report = build_chapter_report(make_predictions(), tables, T, features, trend_periods=2)
    row = report["chapter_id"] == "paris"
    report.loc[row, ["chapter_id", "name", "city", "health"]] = [
        hostile("cid"), hostile("chapter"), hostile("city"), hostile("flag"),
    ]
    report.loc[row, "ready_successors"] = f"{hostile('successor')}; p2; p3"
    meta = {**META, "source": hostile("meta"), hostile("metakey"): "x"}
    page = render_report_html(
        report, predictions, as_of=T, meta=meta, features=features,
        outreach=[hostile("outreach")],
    )
    places = {
        "chapter": 3,  # the table, the card's title, the trend chart's alt text
        "cid": 1,  # the card's data-chapter attribute
        "city": 2, "flag": 2, "successor": 2,  # the table and the card
        "ambassador": 1, "why-at-risk": 1, "why-ready": 1, "talk": 1,  # the card
        "segment": 2,  # the segment table and the chart's alt text
        "outreach": 1, "meta": 1, "metakey": 1,
    }
    return page, places


def test_user_text_is_escaped_wherever_it_appears(tables, features):
    page, places = _hostile_page(tables, features)
    assert "<script" not in page.lower()
    for tag, count in places.items():
        # shown in each of its places, and escaped in every one of them
        anywhere = len(re.findall(rf"zz-{tag}(?![\w-])", page))
        assert page.count(escaped(tag)) == anywhere == count, tag
    parsed = _Parsed(page)
    assert "script" not in parsed.tags
    # no quote broke out of an attribute
    assert parsed.attributes <= {
        "lang", "charset", "name", "content", "class", "data-target", "src", "alt", "width",
        "height", "style", "id", "data-chapter",
    }
    # and the reader sees the text as it was written
    shown = "\n".join(parsed.values)
    for tag, count in places.items():
        assert shown.count(hostile(tag)) == count, tag


def test_emails_are_hidden_in_every_printed_value(context):
    context = {
        **context,
        "title": "Report for jo@example.org",
        "outreach": ["Wrote to a.b@example.org"],
        "footer": [{"label": "contact", "value": "x@example.org"}],
    }
    page = render_report_page(context)
    assert "@" not in page[: page.index("<style>")] + page[page.index("</style>"):]
    assert "Report for [email hidden]" in page and "Wrote to [email hidden]" in page


def test_a_missing_value_is_an_error_not_an_empty_string(context):
    assert render_report_page(context).startswith("<!DOCTYPE html>")
    without_footer = {k: v for k, v in context.items() if k != "footer"}
    with pytest.raises(jinja2.UndefinedError, match="footer"):
        render_report_page(without_footer)
    card = dict(context["cards"]["chapters"][0])
    del card["name"]
    cards = {**context["cards"], "chapters": [card, *context["cards"]["chapters"][1:]]}
    with pytest.raises(jinja2.UndefinedError, match="name"):
        render_report_page({**context, "cards": cards})


def test_the_templates_are_package_resources_and_the_css_is_inlined(context):
    folder = files("serving").joinpath(TEMPLATE_FOLDER)
    assert folder.joinpath(PAGE_TEMPLATE).is_file()
    css = folder.joinpath("report.css").read_text(encoding="utf-8")
    page = render_report_page(context)
    assert f"<style>\n{css}</style>" in page  # verbatim: the CSS holds no template syntax
    # the template language is gone from the page
    assert "{{" not in page and "{%" not in page and "{#" not in page


def test_the_templates_are_shipped_with_the_package():
    """pyproject.toml's package data takes every file of the template folder into the wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["serving"]
    shipped = [p.name for p in (ROOT / "serving" / TEMPLATE_FOLDER).iterdir()]
    assert PAGE_TEMPLATE in shipped and "report.css" in shipped
    for name in shipped:
        assert any(fnmatch.fnmatch(f"{TEMPLATE_FOLDER}/{name}", p) for p in patterns), name


def test_hiding_emails_takes_linear_time_on_long_runs():
    """Every printed value is searched for addresses, the charts' base64 data too (~10 kB each):
    the search must not be quadratic in the length of a run without a separator."""
    data = "data:image/png;base64," + "QUJD" * 50_000
    start = time.perf_counter()
    assert hide_emails(data) == data
    assert time.perf_counter() - start < 1.0  # about 1 ms; minutes when quadratic
    assert hide_emails("a@b@c.org, (x.y@z.example)") == "a@[email hidden], ([email hidden])"
